"""The whole "Add a language" wizard from the main window, on a few minutes of real Swahili:
pages 1-4, then training in a child process (`lorawhisper train`) with a pause and a resume on
the page, a cancel, an app restart that offers the run and resumes it, and the result page,
which renames the installed adapter. Screenshots of the training and result pages and of the
main window's status entry go to screenshots/.

The backbone is the built-in Whisper base, as the app uses it; the budget is 12 steps of 4 clips
at rank 4 (about 3 minutes here), so the adapter barely changes: what is tested is the path."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWizard

from lorawhisper_app.core.adapter_store import ADAPTER_FILES, PICKLE_SUFFIXES, AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.routing import RoutingOptions
from lorawhisper_app.core.settings import BUILTIN, Settings
from lorawhisper_app.core.training.run_registry import RunRegistry, RunState
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow
from lorawhisper_app.gui.wizard.plan import TrainingPlan
from lorawhisper_app.gui.wizard.training_page import TrainingPage
from lorawhisper_app.gui.wizard.wizard import DATA_PAGE, RESULT_PAGE, SETTINGS_PAGE, SIMILARITY_PAGE, TRAINING_PAGE
from test_wizard_pages import click_next, shoot

STEPS = 12  # with the Quick preset's 4 dev checks: one every 3 steps
TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def swahili(speech_train: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 real Swahili clips of 8.6 to 12 s (about 3 minutes): 4 are held back as the dev set,
    leaving the 2 minutes of training audio the trainer asks for."""
    rows = [json.loads(line) for line in (speech_train / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rows = sorted((r for r in rows if r["language"] == "sw" and 8.6 <= r["duration_s"] <= 12), key=lambda r: r["id"])[:18]
    assert len(rows) == 18
    manifest = tmp_path_factory.mktemp("swahili") / "train.jsonl"
    manifest.write_text("".join(
        json.dumps({"id": r["id"], "path": str(speech_train / r["path"]), "text": r["text"]}, ensure_ascii=False) + "\n"
        for r in rows
    ))
    return manifest


def test_add_a_language_end_to_end(qtbot, tmp_path: Path, swahili: Path) -> None:  # noqa: ANN001
    began = time.monotonic()
    store = AdapterStore(bundled_adapter_dir(), tmp_path / "adapters")  # the shipped sw adapter takes the name "sw"
    registry = RunRegistry(tmp_path / "runs")
    settings = Settings(backbone=BUILTIN, device="cpu")  # the app's device setting reaches the trainer
    engines: list[Engine] = []

    def make_window() -> MainWindow:
        def build() -> Engine:
            if not engines:
                engines.append(Engine(settings.model, device="cpu", store=store))
            return engines[0]

        holder = EngineHolder(build)
        window = MainWindow(holder, settings=settings, store=store, registry=registry)
        qtbot.addWidget(window)
        window.show()
        holder.start()
        return window

    window = make_window()
    assert not window.resume_bar.isVisible() and not window.training_status.isVisible()
    assert window.add_language_action.shortcut().toString() == "Ctrl+Shift+L"
    window.add_language_action.trigger()
    wizard = window.wizard
    assert wizard is not None and wizard.isVisible() and not wizard.isModal()

    # Pages 1-4: Swahili, the manifest, the similarity (no other adapter here), a tiny budget.
    qtbot.waitUntil(lambda: "sw" in wizard.state.adapter_names, timeout=30_000)  # listed in the background
    wizard.language_page.select("sw")
    click_next(qtbot, wizard, DATA_PAGE, TIMEOUT_MS)
    wizard.data_page.set_source(swahili)
    click_next(qtbot, wizard, SIMILARITY_PAGE, TIMEOUT_MS)
    click_next(qtbot, wizard, SETTINGS_PAGE, TIMEOUT_MS)
    settings_page = wizard.settings_page
    qtbot.waitUntil(lambda: settings_page.estimate is not None, timeout=TIMEOUT_MS)
    settings_page.preset_buttons["Quick"].click()
    settings_page.batch_spin.setValue(4)
    settings_page.rank_spin.setValue(4)
    settings_page.steps_spin.setValue(STEPS)
    assert settings_page.name_edit.text() == "sw-2"

    # 5. Training starts on entering the page, in a child process.
    page = wizard.training_page
    events: list[dict[str, Any]] = []
    page.process.event.connect(events.append)
    click_next(qtbot, wizard, TRAINING_PAGE, TIMEOUT_MS)
    assert wizard.plan.model == settings.model and page.active
    assert wizard.button(QWizard.WizardButton.CancelButton).text() == "Close"  # the run would go on
    record = page.record
    assert record is not None and record.state is RunState.RUNNING
    assert record.args[record.args.index("--device") + 1] == "cpu"
    assert registry.load(record.id).args == record.args and "--adapter-dir" in record.args

    def step_at_least(n: int) -> bool:
        assert not page.error_box.isVisible(), page.error_label.text()
        return any(e["event"] == "step" and e["step"] >= n for e in events)

    def stopped() -> bool:
        assert not page.error_box.isVisible(), page.error_label.text()
        return not page.active

    qtbot.waitUntil(lambda: step_at_least(1), timeout=TIMEOUT_MS)
    assert window.training_status.isVisible() and window.training_status.text().startswith("Training sw: step ")
    shoot(window, "main_window_training.png")

    # Closing the wizard leaves the run going; the status entry brings it back.
    wizard.close()
    assert not wizard.isVisible() and page.active and window.wizard is wizard
    qtbot.mouseClick(window.training_status, Qt.MouseButton.LeftButton)
    assert wizard.isVisible() and wizard.currentId() == TRAINING_PAGE

    # Pause once the first checkpoint (the dev check at step 3) is written, then resume.
    qtbot.waitUntil(lambda: step_at_least(4), timeout=TIMEOUT_MS)
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    assert "stopping" in window.training_status.text()
    qtbot.waitUntil(stopped, timeout=TIMEOUT_MS)
    paused = registry.load(record.id)
    assert paused.state is RunState.PAUSED and paused.has_checkpoint and paused.checkpoint_step >= 4
    assert any(e["event"] == "cancelled" and e["step"] == paused.checkpoint_step for e in events)
    assert page.resume_button.isVisible() and not page.pause_button.isVisible()
    assert window.training_status.text() == f"Training sw: paused at step {paused.step}/{STEPS}"
    losses_before = list(page.plot.losses)
    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(e["event"] == "resumed" for e in events), timeout=TIMEOUT_MS)
    assert [e["step"] for e in events if e["event"] == "resumed"] == [paused.checkpoint_step]
    assert page.plot.losses[: len(losses_before)] == losses_before

    # Cancel: the run stops with its checkpoint and is recorded as resumable.
    qtbot.waitUntil(lambda: step_at_least(paused.checkpoint_step + 1), timeout=TIMEOUT_MS)
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(stopped, timeout=TIMEOUT_MS)
    cancelled = registry.load(record.id)
    assert cancelled.state is RunState.CANCELLED and cancelled.resumable and cancelled.has_checkpoint
    assert cancelled.checkpoint_step > paused.checkpoint_step and not [i for i in store.list() if i.source == "user"]
    wizard.close()
    assert window.wizard is None and not window.training_status.isVisible()
    assert window.offered_run is not None and window.offered_run.id == record.id
    window.close()

    # The app starts again and offers the run; Resume continues it from its checkpoint.
    window = make_window()
    assert window.resume_bar.isVisible()
    assert f"Swahili (sw), cancelled at step {cancelled.step} of {STEPS}" in window.resume_label.text()
    events.clear()
    qtbot.mouseClick(window.resume_button, Qt.MouseButton.LeftButton)
    wizard = window.wizard
    assert wizard is not None and wizard.isVisible() and wizard.currentId() == TRAINING_PAGE
    page = wizard.training_page
    page.process.event.connect(events.append)
    assert page.record is not None and page.record.id == record.id and not window.resume_bar.isVisible()
    assert len(page.plot.losses) == cancelled.step  # the progress so far, from the record
    qtbot.waitUntil(lambda: page.isComplete() or page.error_box.isVisible(), timeout=TIMEOUT_MS)
    assert not page.error_box.isVisible(), page.error_label.text()
    assert [e["step"] for e in events if e["event"] == "resumed"] == [cancelled.checkpoint_step]
    installed = next(e for e in events if e["event"] == "installed")
    assert installed["name"] == "sw-2" and registry.load(record.id).state is RunState.FINISHED
    assert window.training_status.text() == "Training sw: finished, adapter sw-2"
    assert page.plot.wers and page.plot.losses
    shoot(wizard, "wizard_5_training.png")

    # 6. Result: dev WER before and after, held-back clips both ways, a new name.
    click_next(qtbot, wizard, RESULT_PAGE, TIMEOUT_MS)
    result = wizard.result_page
    assert wizard.button(QWizard.WizardButton.CancelButton).text() == "Close"
    wer = installed["dev_wer"]
    assert f"{wer['before'] * 100:.1f} %" in result.wer_label.text()
    assert f"{wer['after'] * 100:.1f} %" in result.wer_label.text()
    qtbot.waitUntil(lambda: result.table.rowCount() > 0 or "No samples" in result.samples_status.text(),
                    timeout=TIMEOUT_MS)
    dev = json.loads((record.run_dir / "dev.json").read_text(encoding="utf-8"))
    assert result.table.rowCount() == min(3, len(dev)) == len(result.samples)
    references = {clip["text"] for clip in dev}
    assert all(sample.clip.text in references for sample in result.samples)
    assert result.table.item(0, 0).text() == result.samples[0].clip.text
    shoot(wizard, "wizard_6_result.png")
    result.name_edit.setText("Bad Name")
    assert not result.isComplete()
    result.name_edit.setText("sw-wizard")
    assert result.isComplete()
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.wizard is None, timeout=60_000)

    # The adapter is in the store under its new name, and routing uses it for Swahili.
    assert [info.name for info in store.list() if info.source == "user"] == ["sw-wizard"]
    info = store.get("sw-wizard")
    assert (info.meta.language, info.meta.language_name, info.meta.decode_token) == ("sw", "Swahili", "sw")
    assert info.meta.dev_wer is not None
    assert (info.meta.dev_wer.before, info.meta.dev_wer.after) == pytest.approx((wer["before"], wer["after"]))
    assert info.meta.lora.rank == 4 and info.meta.training_data["planned_steps"] == STEPS
    assert set(ADAPTER_FILES) <= {p.name for p in info.path.iterdir()}
    assert not [p for p in info.path.iterdir() if p.suffix in PICKLE_SUFFIXES]
    engine = engines[0]
    assert engine.route(RoutingOptions(language="sw"), None).adapters == {"sw-wizard": 1.0}
    adapters = window.adapter_manager
    qtbot.waitUntil(lambda: adapters.model.row_of("sw-wizard") is not None, timeout=30_000)
    assert not registry.unfinished() and not record.run_dir.exists()
    print("\nwizard end to end on the built-in backbone: "
          f"{time.monotonic() - began:.0f} s")


def test_a_run_that_fails_says_why_and_quitting_stops_a_run_for_later(
    qtbot, tmp_path: Path, swahili: Path  # noqa: ANN001
) -> None:
    """Training data that is not there: the page shows the child's error naming the file.
    Then a run is started and the app quits: it asks, stops the run, closes once the child
    has ended, and the next start offers the run."""
    store = AdapterStore(bundled_adapter_dir(), tmp_path / "adapters")
    registry = RunRegistry(tmp_path / "runs")
    settings = Settings(backbone=BUILTIN)
    window = MainWindow(EngineHolder(lambda: Engine(settings.model, device="cpu", store=store)), settings=settings,
                        store=store, registry=registry)
    qtbot.addWidget(window)
    window.show()

    def start(data: Path) -> TrainingPage:
        wizard = window.open_add_language()
        wizard.plan = TrainingPlan(language="sw", language_name="Swahili", data=data, adapter_name="sw-new",
                                   overrides={"steps": STEPS, "rank": 4, "batch_size": 4}, model=settings.model)
        wizard.setStartId(TRAINING_PAGE)
        wizard.restart()
        return wizard.training_page

    page = start(tmp_path / "missing.jsonl")
    qtbot.waitUntil(lambda: not page.active, timeout=TIMEOUT_MS)
    message = page.error_label.text()
    assert page.error_box.isVisible() and "exit code 2" in message and str(tmp_path / "missing.jsonl") in message
    assert page.resume_button.text() == "&Try again" and window.training_status.text() == "Training sw: failed"
    failed = registry.load(page.record.id)
    assert failed.state is RunState.FAILED and failed.error == message
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)  # give it up: the wizard goes on closing
    assert registry.load(failed.id).state is RunState.CANCELLED
    window.wizard.close()
    assert window.wizard is None and window.offered_run is not None and window.offered_run.id == failed.id
    qtbot.mouseClick(window.discard_button, Qt.MouseButton.LeftButton)
    assert not registry.records()[0] and not window.resume_bar.isVisible()

    page = start(swahili)
    assert page.active
    window.close()
    box = window.findChild(QMessageBox, "stopTrainingBox")
    assert box is not None and box.isVisible() and window.isVisible() and page.active
    stop = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT_MS)
    assert not page.active
    stopped = registry.load(page.record.id)
    assert stopped.state is RunState.INTERRUPTED and stopped.resumable

    again = MainWindow(EngineHolder(lambda: Engine(settings.model, device="cpu", store=store)), settings=settings,
                       store=store, registry=registry)
    qtbot.addWidget(again)
    assert again.offered_run is not None and again.offered_run.id == stopped.id
    assert "Swahili (sw), interrupted" in again.resume_label.text()
