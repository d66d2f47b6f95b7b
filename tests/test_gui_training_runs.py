"""The main window keeps the training-run folder tidy: a finished run's checkpoints go when its
result page goes (quitting on it, or left by an earlier app); a run that can resume stays."""

from __future__ import annotations

from pathlib import Path

from test_run_registry import _record

from lorawhisper_app.core.training.run_registry import RunRegistry, RunState
from lorawhisper_app.gui.main_window import MainWindow


def _saved(registry: RunRegistry, language: str, state: RunState):  # noqa: ANN202 - RunRecord
    record = _record(registry, language=language, state=state, adapter=language)
    registry.save(record)
    (record.run_dir / "checkpoint").mkdir()
    return record


def test_finished_runs_left_by_an_earlier_app_are_discarded_at_start(qtbot, tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path / "runs")
    finished, paused = _saved(registry, "ha", RunState.FINISHED), _saved(registry, "yo", RunState.PAUSED)
    window = MainWindow(registry=registry)
    qtbot.addWidget(window)
    assert not finished.run_dir.exists() and (paused.run_dir / "checkpoint").is_dir()
    assert window.offered_run is not None and window.offered_run.id == paused.id


def test_quitting_on_the_result_page_discards_the_finished_run_only(qtbot, tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path / "runs")
    for state, kept in ((RunState.FINISHED, False), (RunState.CANCELLED, True)):
        window = MainWindow(registry=registry)
        qtbot.addWidget(window)
        record = _saved(registry, "sw", state)
        window.open_add_language().training_page.record = record  # as a run that ended in this wizard leaves it
        window.close()
        assert (record.run_dir / "checkpoint").is_dir() is kept, state
