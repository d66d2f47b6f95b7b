"""The Adapters tab and File › Settings… on a real Qt event loop, with real adapters in a
temporary store. The engine is a stand-in: what these tests need of it is its backbone's
fingerprint, its store and, for the queue, a transcribe method."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget
from tiny_whisper import make_lora_adapter

from lorawhisper_app.core.adapter_meta import AdapterMeta, DevWer
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.backbone import BUILTIN_NAME, resolve_backbone
from lorawhisper_app.core.job_store import JobStatus
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.routing import RoutingOptions
from lorawhisper_app.core.settings import Settings, load_settings, settings_path
from lorawhisper_app.gui.adapter_manager import AdapterManager
from lorawhisper_app.gui.adapter_table import Column, format_size
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.main_window import MainWindow
from lorawhisper_app.gui.settings_dialog import SettingsDialog

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
OTHER_FP = "sha256:" + "b2" * 32
TINY_FP = "sha256:" + "c3" * 32
TIMEOUT_MS = 30_000


# -- adapters and a stand-in engine ---------------------------------------------------------


@pytest.fixture(scope="session")
def builtin_fp() -> str:
    """The real built-in backbone's fingerprint (converted once into the session's cache)."""
    return resolve_backbone(None).fingerprint


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, builtin_fp: str) -> Path:
    """One real peft adapter for the built-in backbone; tests copy it rather than train new ones."""
    folder = make_lora_adapter(tmp_path_factory.mktemp("template"), language="sw", fingerprint=builtin_fp, rank=8)
    meta = AdapterMeta.load(folder)
    dataclasses.replace(meta, base_model=dataclasses.replace(meta.base_model, name=BUILTIN_NAME)).save(folder)
    return folder


def install(template: Path, root: Path, folder_name: str, **changes: object) -> Path:
    """Copy the template to `root/folder_name` with its metadata changed (its name too,
    unless `changes` names it otherwise)."""
    folder = root / folder_name
    shutil.copytree(template, folder)
    changes.setdefault("name", folder_name)
    dataclasses.replace(AdapterMeta.load(folder), **changes).save(folder)
    return folder


def for_other_backbone(meta_folder: Path) -> dict:
    meta = AdapterMeta.load(meta_folder)
    return {"base_model": dataclasses.replace(meta.base_model, name="openai/whisper-small", fingerprint=OTHER_FP)}


def training(hours: float, source: str) -> dict:
    return {"source": source, "hours": hours, "utterances": int(hours * 900), "epochs": 3}


@pytest.fixture
def store(tmp_path: Path, template: Path) -> AdapterStore:
    """Swahili, Yoruba, Kinyarwanda (decoded with the Swahili token), a LoRA-MoE mixture,
    one made for another backbone, and a bundled English one."""
    user, bundled = tmp_path / "user-adapters", tmp_path / "bundled-adapters"
    user.mkdir()
    bundled.mkdir()
    install(template, user, "sw", dev_wer=DevWer(0.62, 0.41), training_data=training(12.5, "Common Voice sw 17.0"))
    install(template, user, "yo", language="yo", language_name="Yoruba", decode_token="yo",
            dev_wer=DevWer(0.71, 0.48), training_data=training(6.0, "Common Voice yo 17.0"))
    install(template, user, "rw", language="rw", language_name="Kinyarwanda", decode_token="sw",
            dev_wer=DevWer(0.93, 0.55), training_data=training(20.0, "Common Voice rw 17.0"))
    install(template, user, "sw-rw-moe", dev_wer=DevWer(0.62, 0.39), mixture={"sw": 0.6, "rw": 0.4})
    install(template, user, "ha-small", language="ha", language_name="Hausa", decode_token="ha",
            dev_wer=DevWer(0.58, 0.33), **for_other_backbone(template))
    install(template, bundled, "en-accents", language="en", language_name="English", decode_token="en",
            dev_wer=DevWer(0.18, 0.15), training_data=training(3.0, "bundled demo"))
    return AdapterStore(bundled, user)


class FakeEngine:
    """What the window asks of an engine; `transcribe` answers in a fixed way and says who ran."""

    def __init__(self, fingerprint: str, store: AdapterStore, name: str = "openai/whisper-base (built-in)") -> None:
        self.fingerprint = fingerprint
        self.store = store
        self.backbone = SimpleNamespace(
            files=SimpleNamespace(name=name), device=SimpleNamespace(type="cpu"), compute=SimpleNamespace(name="int8")
        )
        self.lock = threading.RLock()
        self.entered = threading.Event()  # a transcription has begun (it may wait for the lock)
        self.transcribed: list[str] = []

    def transcribe(self, path, options, *, progress=None, cancel=None) -> TranscriptionResult:  # noqa: ANN001
        self.entered.set()
        with self.lock:
            self.transcribed.append(str(path))
            return TranscriptionResult(str(path), 1.0, [Segment(0.0, 1.0, " habari")], Route("manual", "sw", None))


class Factories:
    """The window's engine factory: records the settings each engine is built from."""

    def __init__(self, builtin_fp: str) -> None:
        self.builtin_fp = builtin_fp
        self.calls: list[Settings] = []
        self.engines: list[FakeEngine] = []

    def __call__(self, settings: Settings, store: AdapterStore):  # noqa: ANN204
        self.calls.append(settings)

        def build() -> FakeEngine:
            fingerprint = TINY_FP if settings.backbone != "builtin" else self.builtin_fp
            engine = FakeEngine(fingerprint, store, name=settings.backbone)
            self.engines.append(engine)
            return engine

        return build


@pytest.fixture(autouse=True)
def private_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own settings file and job queue."""
    monkeypatch.setenv("LORAWHISPER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def factories(builtin_fp: str) -> Factories:
    return Factories(builtin_fp)


@pytest.fixture
def holder(store: AdapterStore, builtin_fp: str) -> EngineHolder:
    return EngineHolder(lambda: FakeEngine(builtin_fp, store))


def open_window(qtbot, holder: EngineHolder | None, store: AdapterStore, factories: Factories) -> MainWindow:
    window = MainWindow(holder, store=store, engine_factory=factories)
    qtbot.addWidget(window)
    window.resize(1000, 640)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, holder: EngineHolder, store: AdapterStore, factories: Factories) -> MainWindow:
    """The window with the engine loaded and the Adapters tab showing its listing."""
    window = open_window(qtbot, holder, store, factories)
    with qtbot.waitSignal(holder.ready, timeout=TIMEOUT_MS):
        holder.start()
    window.tabs.setCurrentWidget(window.adapter_manager)
    manager = window.adapter_manager
    qtbot.waitUntil(lambda: manager.model.rowCount() == 6 and not manager.busy, timeout=TIMEOUT_MS)
    return window


def cell(manager: AdapterManager, name: str, column: Column) -> str:
    return manager.model.index(manager.model.row_of(name), column).data()


def settle(qtbot, manager: AdapterManager) -> None:
    qtbot.waitUntil(lambda: not manager.busy, timeout=TIMEOUT_MS)


def drag_and_drop(widget: QWidget, paths: list[Path]) -> bool:
    """Drag `paths` over `widget` and drop them, as a file manager would; False if refused."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    at = widget.rect().center()
    copy, no_button, no_modifier = Qt.DropAction.CopyAction, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(at, copy, mime, no_button, no_modifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(at), copy, mime, no_button, no_modifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def tone(path: Path) -> Path:
    soundfile.write(path, (0.1 * np.sin(np.arange(16000) * 0.05)).astype(np.float32), 16000)
    return path


# -- the list and the details ---------------------------------------------------------------------


def test_the_list_shows_sizes_wer_sources_and_backbones(qtbot, window: MainWindow, store: AdapterStore) -> None:
    manager = window.adapter_manager
    assert [info.name for info in manager.model.adapters()] == [
        "en-accents", "ha-small", "rw", "sw", "sw-rw-moe", "yo"
    ]
    sizes = {info.name: info.size_bytes for info in store.list()}
    assert cell(manager, "sw", Column.SIZE) == format_size(sizes["sw"])
    assert format_size(140_000) == "0.14 MB" and format_size(31_457_280) == "31.5 MB"
    assert cell(manager, "sw", Column.WER) == "62.0 % → 41.0 %"
    assert cell(manager, "sw", Column.LANGUAGE) == "sw · Swahili"
    assert cell(manager, "rw", Column.LANGUAGE) == "rw · Kinyarwanda (sw token)"
    assert cell(manager, "en-accents", Column.SOURCE) == "bundled" and cell(manager, "yo", Column.SOURCE) == "user"
    assert cell(manager, "sw-rw-moe", Column.MIXTURE) == "sw 0.60 + rw 0.40"
    assert cell(manager, "sw", Column.MIXTURE) == ""
    assert cell(manager, "sw", Column.BACKBONE) == "this backbone"
    assert cell(manager, "ha-small", Column.BACKBONE) == "another backbone"
    assert "openai/whisper-small" in manager.model.index(manager.model.row_of("ha-small"), Column.BACKBONE).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert "openai/whisper-base (built-in)" in manager.backbone_label.text()
    assert not manager.problems_frame.isVisible()

    manager.select("rw")
    details = manager.details.toPlainText()
    for words in ("Decode token", "sw (Swahili)", "rank 8, alpha 16", "q_proj, k_proj, v_proj, fc1, fc2",
                  "Common Voice rw 17.0", "Training: hours", "93.0 % → 55.0 %", "Created"):
        assert words in details
    # The Files tab marks the languages with an adapter for this backbone: not Hausa.
    box = window.files_panel.language_box
    labels = [box.itemText(i) for i in range(box.count())]
    assert "Kinyarwanda (rw) ★ adapter" in labels and "Yoruba (yo) ★ adapter" in labels
    assert "Hausa (ha)" in labels


def test_store_problems_are_listed(qtbot, window: MainWindow, store: AdapterStore) -> None:
    manager = window.adapter_manager
    broken = store.user_dir / "half-copied"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    qtbot.mouseClick(manager.refresh_button, Qt.MouseButton.LeftButton)
    settle(qtbot, manager)
    assert manager.problems_frame.isVisible()
    assert "1 folder is in the adapter store but not usable" in manager.problems_label.text()
    assert str(broken) in manager.problems_label.text()
    assert manager.model.rowCount() == 6


def test_screenshot_of_the_adapter_manager(qtbot, window: MainWindow) -> None:
    manager = window.adapter_manager
    manager.select("rw")
    qtbot.wait(50)
    SCREENSHOTS.mkdir(exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "adapter_manager.png"))


def test_screenshot_of_the_settings_dialog(qtbot, window: MainWindow) -> None:
    dialog = window.open_settings()
    dialog.show_settings(
        Settings(
            backbone="openai/whisper-small",
            device="cpu",
            compute_type="int8",
            threshold=0.6,
            moe_k=2,
            export_format="srt",
            export_folder=str(Path.home() / "Transcripts"),
            auto_export=True,
        )
    )
    qtbot.waitExposed(dialog)
    assert dialog.hub_edit.isEnabled() and not dialog.folder_edit.isEnabled()
    SCREENSHOTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(SCREENSHOTS / "settings_dialog.png"))
    dialog.reject()


def test_until_the_engine_is_ready_the_configured_backbone_is_checked(
    qtbot, store: AdapterStore, factories: Factories, builtin_fp: str
) -> None:
    window = open_window(qtbot, None, store, factories)  # the engine is not started
    manager = window.adapter_manager
    assert factories.calls == [Settings()]  # the engine would be built from the saved settings
    settle(qtbot, manager)
    assert manager.model.rowCount() == 6 and cell(manager, "sw", Column.BACKBONE) == "checking…"
    assert not manager.import_button.isEnabled()
    window.tabs.setCurrentWidget(manager)  # shown: the backbone is resolved off the GUI thread
    qtbot.waitUntil(lambda: manager.fingerprint == builtin_fp, timeout=TIMEOUT_MS)
    assert cell(manager, "sw", Column.BACKBONE) == "this backbone"
    assert cell(manager, "ha-small", Column.BACKBONE) == "another backbone"
    assert manager.import_button.isEnabled()
    assert window.holder.engine is None and not window.holder.loading


# -- import, export, remove ------------------------------------------------------------------------


def test_import_a_folder_and_a_zip_through_the_dialogs(
    qtbot, window: MainWindow, template: Path, tmp_path: Path
) -> None:
    manager = window.adapter_manager
    incoming = tmp_path / "downloads"
    incoming.mkdir()
    folder = install(template, incoming, "lg", language="lg", language_name="Luganda", decode_token="sw")
    manager.import_folder_action.trigger()
    dialog = manager.file_dialog
    assert isinstance(dialog, QFileDialog) and dialog.isVisible()
    assert dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
    assert dialog.fileMode() == QFileDialog.FileMode.Directory
    dialog.setDirectory(str(incoming))
    dialog.selectFile(str(folder))
    dialog.accept()
    settle(qtbot, manager)
    assert manager.model.row_of("lg") is not None and manager.selected().name == "lg"
    assert "Imported lg (Luganda)." in manager.message.text()
    assert "Luganda (lg) ★ adapter" in [
        window.files_panel.language_box.itemText(i) for i in range(window.files_panel.language_box.count())
    ]

    archive = incoming / "so.zip"
    so = install(template, incoming, "so", language="so", language_name="Somali", decode_token="so")
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in so.iterdir():
            zipped.write(file, f"so/{file.name}")
    manager.import_zip_action.trigger()
    dialog = manager.file_dialog
    assert dialog.fileMode() == QFileDialog.FileMode.ExistingFiles
    dialog.setDirectory(str(incoming))
    dialog.selectFile(str(archive))
    dialog.accept()
    settle(qtbot, manager)
    assert manager.selected().name == "so" and cell(manager, "so", Column.SOURCE) == "user"
    assert (manager.store.user_dir / "so" / "adapter_model.safetensors").is_file()


def test_import_problems_are_clear_messages(qtbot, window: MainWindow, template: Path, tmp_path: Path) -> None:
    manager = window.adapter_manager
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    pickled = install(template, incoming, "ig", language="ig", language_name="Igbo", decode_token="yo")
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04\x95")
    other = install(template, incoming, "zu", language="zu", language_name="Zulu", decode_token="sw",
                    **for_other_backbone(template))
    broken = install(template, incoming, "am", language="am", language_name="Amharic", decode_token="am")
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    not_a_zip = incoming / "notes.zip"
    not_a_zip.write_text("not an archive")
    clash = install(template, incoming, "sw-copy", name="sw")

    cases = [
        (pickled, "pickle-format weights; only safetensors adapters are accepted"),
        (other, "was made for another backbone (openai/whisper-small"),
        (broken, "truncated"),
        (not_a_zip, "not a readable zip archive"),
        (clash, "an adapter named sw is already installed"),
    ]
    for path, words in cases:
        manager.import_paths([path])
        settle(qtbot, manager)
        text = manager.message.text()
        assert manager.message_bar.isVisible() and text.startswith("Not imported: "), text
        assert words in text and "Traceback" not in text
        assert "fde7e9" in manager.message_bar.styleSheet()  # drawn as an error
    assert manager.model.rowCount() == 6
    assert sorted(p.name for p in manager.store.user_dir.iterdir()) == ["ha-small", "rw", "sw", "sw-rw-moe", "yo"]


def test_export_to_a_zip(qtbot, window: MainWindow, tmp_path: Path) -> None:
    manager = window.adapter_manager
    manager.select("yo")
    qtbot.mouseClick(manager.export_button, Qt.MouseButton.LeftButton)
    dialog = manager.file_dialog
    assert dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave
    assert Path(dialog.selectedFiles()[0]).name == "yo.zip"
    dialog.setDirectory(str(tmp_path))
    dialog.selectFile(str(tmp_path / "yoruba-adapter"))
    dialog.accept()
    target = tmp_path / "yoruba-adapter.zip"
    qtbot.waitUntil(target.is_file, timeout=TIMEOUT_MS)
    settle(qtbot, manager)
    with zipfile.ZipFile(target) as zipped:
        assert sorted(zipped.namelist()) == [
            "yo/README.md", "yo/adapter_config.json", "yo/adapter_model.safetensors", "yo/lorawhisper.json"
        ]
        assert json.loads(zipped.read("yo/lorawhisper.json"))["language"] == "yo"
    assert f"Exported yo to {target}." == manager.message.text()


def remove_button_of(box: QMessageBox):  # noqa: ANN201
    return next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.DestructiveRole)


def test_remove_asks_first_and_bundled_adapters_stay(qtbot, window: MainWindow) -> None:
    manager = window.adapter_manager
    manager.select("en-accents")
    assert not manager.remove_button.isEnabled()
    assert "cannot be removed" in manager.remove_button.toolTip()
    assert manager.confirm_remove() is None

    manager.select("yo")
    assert manager.remove_button.isEnabled()
    qtbot.mouseClick(manager.remove_button, Qt.MouseButton.LeftButton)
    box = manager.remove_box
    assert isinstance(box, QMessageBox) and box.isVisible() and "Remove the adapter yo (Yoruba)?" == box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    settle(qtbot, manager)
    assert (manager.store.user_dir / "yo").is_dir() and manager.model.row_of("yo") is not None

    qtbot.mouseClick(manager.remove_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(remove_button_of(manager.remove_box), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: manager.model.row_of("yo") is None and not manager.busy, timeout=TIMEOUT_MS)
    assert not (manager.store.user_dir / "yo").exists()
    assert manager.message.text() == "Removed yo."
    labels = [window.files_panel.language_box.itemText(i) for i in range(window.files_panel.language_box.count())]
    assert "Yoruba (yo)" in labels and "Yoruba (yo) ★ adapter" not in labels


def test_dropped_folders_and_zips_are_imported(qtbot, window: MainWindow, template: Path, tmp_path: Path) -> None:
    manager = window.adapter_manager
    folder = install(template, tmp_path, "lg", language="lg", language_name="Luganda", decode_token="sw")
    archive = tmp_path / "ny.zip"
    staging = tmp_path / "staging"
    staging.mkdir()
    ny = install(template, staging, "ny", language="ny", language_name="Chichewa", decode_token="sw")
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in ny.iterdir():
            zipped.write(file, file.name)  # at the archive's root
    assert drag_and_drop(manager.table.viewport(), [folder, archive])
    settle(qtbot, manager)
    assert "Imported lg (Luganda), ny (Chichewa)." == manager.message.text()
    assert manager.model.row_of("lg") is not None and manager.model.row_of("ny") is not None
    # Dropped on the tab beside the table (the details pane's side): imported the same way.
    rn = install(template, staging, "rn", language="rn", language_name="Kirundi", decode_token="sw")
    assert drag_and_drop(manager, [rn])
    settle(qtbot, manager)
    assert manager.message.text() == "Imported rn (Kirundi)." and manager.model.row_of("rn") is not None
    # Audio dropped here is not an adapter: it passes on to the window, which queues it.
    audio = tone(tmp_path / "clip.wav")
    assert drag_and_drop(manager.table.viewport(), [audio])
    assert [job.path for job in window.files_panel.queue.jobs()] == [str(audio)]
    assert window.tabs.currentWidget() is window.files_panel and manager.model.rowCount() == 9


# -- settings ------------------------------------------------------------------------------------


def test_settings_set_the_files_tab_defaults(qtbot, window: MainWindow, factories: Factories, tmp_path: Path) -> None:
    window.settings_action.trigger()
    dialog = window.settings_dialog
    assert isinstance(dialog, SettingsDialog) and dialog.isVisible() and dialog.isModal()
    assert window.settings_action.shortcuts()[-1].toString() == "Ctrl+,"
    assert not dialog.busy_note.isVisible()
    dialog.threshold_box.setValue(0.7)
    dialog.moe_box.setValue(3)
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("srt"))
    dialog.export_folder_edit.setText(str(tmp_path / "exports"))
    dialog.auto_export_box.setChecked(True)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.settings_dialog is None)

    panel = window.files_panel
    assert panel.default_routing() == RoutingOptions(moe_k=3, threshold=0.7)
    assert panel.export_box.isChecked() and panel.export_format.currentData() == "srt"
    assert panel.queue.export.folder == tmp_path / "exports"
    saved, warning = load_settings()
    assert warning is None and (saved.threshold, saved.moe_k, saved.auto_export) == (0.7, 3, True)
    assert factories.calls == []  # same backbone, device and compute type: no reload
    assert window.holder.engine is not None


def test_a_bad_choice_keeps_the_dialog_open_with_the_reason(qtbot, window: MainWindow, tmp_path: Path) -> None:
    dialog = window.open_settings()
    dialog.folder_radio.setChecked(True)
    dialog.folder_edit.setText(str(tmp_path / "no-such-model"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.error.isVisible()
    assert dialog.error.text() == f"Backbone: the backbone folder {tmp_path / 'no-such-model'} does not exist"
    dialog.folder_edit.setText("models/whisper")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert "give the full path of the folder" in dialog.error.text()
    dialog.reject()
    assert load_settings() == (Settings(), None)


def test_a_new_backbone_reloads_the_engine_in_the_background(
    qtbot, window: MainWindow, factories: Factories, tmp_path: Path
) -> None:
    model = tmp_path / "whisper-small-sw"
    model.mkdir()
    (model / "config.json").write_text("{}")
    manager = window.adapter_manager
    dialog = window.open_settings()
    browse = dialog.open_folder_dialog()
    assert browse.testOption(QFileDialog.Option.DontUseNativeDialog) and browse.isVisible()
    browse.setDirectory(str(tmp_path))
    browse.selectFile(str(model))
    browse.accept()
    assert dialog.folder_radio.isChecked() and dialog.folder_edit.text() == str(model)
    dialog.device_box.setCurrentIndex(dialog.device_box.findData("cpu"))
    with qtbot.waitSignal(window.holder.ready, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert [(s.backbone, s.device) for s in factories.calls] == [(str(model), "cpu")]
    assert window.holder.engine is factories.engines[-1] and window.holder.engine.fingerprint == TINY_FP
    assert window.engine_state.text() == f"Ready: {model} on cpu, int8"
    # The adapters were made for the built-in backbone: all marked, and the Files tab has none.
    qtbot.waitUntil(lambda: cell(manager, "sw", Column.BACKBONE) == "another backbone", timeout=TIMEOUT_MS)
    settle(qtbot, manager)
    assert all(cell(manager, info.name, Column.BACKBONE) == "another backbone" for info in manager.model.adapters())
    box = window.files_panel.language_box
    assert not any("★" in box.itemText(i) for i in range(box.count()))


def test_settings_survive_a_new_window(qtbot, store: AdapterStore, factories: Factories, tmp_path: Path) -> None:
    first = open_window(qtbot, None, store, factories)
    dialog = first.open_settings()
    dialog.hub_radio.setChecked(True)
    dialog.hub_edit.setText("openai/whisper-small")
    dialog.compute_box.setCurrentIndex(dialog.compute_box.findData("float32"))
    dialog.threshold_box.setValue(0.35)
    dialog.moe_box.setValue(2)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert factories.calls[-1].engine_key == ("openai/whisper-small", "auto", "float32")
    first.close()

    factories.calls.clear()
    second = open_window(qtbot, None, store, factories)
    expected = Settings(backbone="openai/whisper-small", compute_type="float32", threshold=0.35, moe_k=2)
    assert second.settings == expected and factories.calls == [expected]
    assert second.files_panel.default_routing() == RoutingOptions(moe_k=2, threshold=0.35)
    reopened = second.open_settings()
    assert reopened.hub_radio.isChecked() and reopened.hub_edit.text() == "openai/whisper-small"
    assert reopened.settings() == expected
    reopened.reject()


def test_a_corrupt_settings_file_is_reported_not_fatal(qtbot, store: AdapterStore, factories: Factories) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"threshold": 7, "moe_k": 2')
    window = open_window(qtbot, None, store, factories)
    assert window.settings == Settings()
    assert window.files_panel.message_bar.isVisible()
    assert "is not valid JSON" in window.files_panel.message.text()


def test_a_running_transcription_is_named_and_finishes_before_the_reload(
    qtbot, store: AdapterStore, factories: Factories, builtin_fp: str, tmp_path: Path
) -> None:
    old = FakeEngine(builtin_fp, store)
    holder = EngineHolder(lambda: old)
    window = open_window(qtbot, holder, store, factories)
    with qtbot.waitSignal(holder.ready, timeout=TIMEOUT_MS):
        holder.start()
    old.lock.acquire()  # a transcription on the old engine is under way
    try:
        window.files_panel.add_paths([tone(tmp_path / "interview.wav")])
        qtbot.waitUntil(old.entered.is_set, timeout=TIMEOUT_MS)
        assert window.files_panel.queue.jobs()[0].status is JobStatus.RUNNING
        dialog = window.open_settings()
        assert dialog.busy_note.isVisible() and "interview.wav is being transcribed" in dialog.busy_note.text()
        dialog.compute_box.setCurrentIndex(dialog.compute_box.findData("float32"))
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "waiting for the running transcription" in window.engine_state.text())
        time.sleep(0.3)
        assert factories.engines == [] and holder.engine is None  # nothing loads beside the busy engine
    finally:
        old.lock.release()
    qtbot.waitUntil(lambda: window.files_panel.queue.jobs()[0].status is JobStatus.DONE, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: holder.engine is not None, timeout=TIMEOUT_MS)
    assert holder.engine is factories.engines[0] and factories.calls[-1].compute_type == "float32"
    assert old.transcribed == [str(tmp_path / "interview.wav")]  # it finished on the engine it started on


def test_only_the_latest_reload_is_kept(qtbot, store: AdapterStore, builtin_fp: str) -> None:
    gate = threading.Event()
    first, second = FakeEngine(builtin_fp, store, "first"), FakeEngine(TINY_FP, store, "second")
    holder = EngineHolder(lambda: (gate.wait(TIMEOUT_MS / 1000), first)[1])
    states: list[str] = []
    holder.state_changed.connect(states.append)
    holder.start()
    assert holder.loading
    holder.reload(lambda: second)
    with qtbot.waitSignal(holder.ready, timeout=TIMEOUT_MS):
        gate.set()
    assert holder.engine is second and not holder.loading
    qtbot.wait(100)
    assert holder.engine is second and states[-1] == "Ready: second on cpu, int8"
