"""The record of the app's training runs: saved atomically, read back, the unfinished ones
offered newest first, unreadable ones named, discarding leaves folders it did not make."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorawhisper_app.core.training import checkpoint, trainer
from lorawhisper_app.core.training.run_registry import (
    CHECKPOINT_DIRS,
    DEV_CLIPS,
    RECORD_FILE,
    RegistryError,
    RunRecord,
    RunRegistry,
    RunState,
    default_runs_dir,
    process_alive,
)


def _record(registry: RunRegistry, language: str = "sw", **fields: object) -> RunRecord:
    run_id = registry.new_id(language)
    defaults: dict[str, object] = dict(
        language=language, language_name="Swahili", run_dir=registry.run_dir(run_id),
        args=["data.jsonl", "--language", language, "--json"], plan={"language": language, "overrides": {"steps": 6}},
    )
    defaults.update(fields)
    return RunRecord(run_id, **defaults)  # type: ignore[arg-type]


def test_a_record_round_trips_and_is_replaced_atomically(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    record = _record(registry, step=4, total_steps=6, checkpoint_step=3, losses=[[1, 2.5], [2, 2.25]], evals=[[0, 0.9]])
    registry.save(record)
    loaded = registry.load(record.id)
    assert loaded == record and loaded.state is RunState.RUNNING and isinstance(loaded.run_dir, Path)
    loaded.state = RunState.PAUSED
    registry.save(loaded)
    assert registry.load(record.id).state is RunState.PAUSED
    assert sorted(p.name for p in (tmp_path / record.id).iterdir()) == [RECORD_FILE]  # no temporary file left
    assert json.loads((tmp_path / record.id / RECORD_FILE).read_text())["state"] == "paused"


def test_ids_are_unique_and_safe_as_folder_names(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    first = _record(registry, language="sw")
    registry.save(first)
    second = registry.new_id("sw")
    assert second != first.id and second.startswith(first.id)
    assert "/" not in registry.new_id("../x") and ".." not in registry.new_id("../x")


def test_unfinished_runs_are_offered_newest_first_and_finished_ones_not(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    older = _record(registry, language="yo", state=RunState.PAUSED)
    registry.save(older)
    finished = _record(registry, language="ha", state=RunState.FINISHED, adapter="ha")
    registry.save(finished)
    newer = _record(registry, language="sw", state=RunState.CANCELLED)
    registry.save(newer)
    (tmp_path / newer.id / RECORD_FILE).write_text(  # saved a second later
        json.dumps({**json.loads((tmp_path / newer.id / RECORD_FILE).read_text()), "updated": "2999-01-01T00:00:00Z"})
    )
    assert [r.id for r in registry.unfinished()] == [newer.id, older.id]
    assert not finished.resumable and newer.resumable


def test_an_unreadable_record_is_named_and_the_others_still_listed(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    good = _record(registry)
    registry.save(good)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / RECORD_FILE).write_text("{not json")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / RECORD_FILE).write_text(json.dumps({**good.to_dict(), "id": "odd", "state": "sleeping"}))
    records, problems = registry.records()
    assert [r.id for r in records] == [good.id]
    assert len(problems) == 2 and all(RECORD_FILE in p and "not a readable training run record" in p for p in problems)
    with pytest.raises(RegistryError, match="no such training run record"):
        registry.load("absent")


def test_checkpoint_presence_and_describe(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    record = _record(registry, state=RunState.PAUSED, step=40, total_steps=120)
    assert not record.has_checkpoint
    (record.run_dir / CHECKPOINT_DIRS[1]).mkdir(parents=True)  # a save interrupted between its renames
    assert record.has_checkpoint
    assert record.describe() == "Swahili (sw), paused at step 40 of 120"
    record.state = RunState.RUNNING
    assert record.describe() == "Swahili (sw), stopped when the app closed at step 40 of 120"


def test_the_folder_names_match_what_the_trainer_writes() -> None:
    assert CHECKPOINT_DIRS[0] == checkpoint.CHECKPOINT
    assert trainer.DEV_CLIPS == DEV_CLIPS


def test_discard_deletes_its_own_run_folder_but_not_a_given_one(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path / "runs")
    own = _record(registry)
    registry.save(own)
    (own.run_dir / "checkpoint").mkdir()
    registry.discard(own)
    assert not own.run_dir.exists()
    given = tmp_path / "my-run"
    (given / "checkpoint").mkdir(parents=True)
    other = _record(registry, language="yo", run_dir=given)
    registry.save(other)
    registry.discard(other)
    assert (given / "checkpoint").is_dir() and not (registry.root / other.id).exists()
    assert registry.records() == ([], [])


def test_the_default_folder_follows_the_data_folder_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWHISPER_DATA_DIR", str(tmp_path))
    assert default_runs_dir() == tmp_path / "training-runs"
    assert RunRegistry().root == tmp_path / "training-runs"


@pytest.mark.skipif(os.name == "nt", reason="process ids are not checked on Windows")
def test_process_alive() -> None:
    assert process_alive(os.getpid())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not process_alive(int(child.stdout))
    assert not process_alive(None)


def test_forget_finished_discards_finished_runs_only(tmp_path: Path) -> None:
    registry = RunRegistry(tmp_path)
    finished = _record(registry, language="ha", state=RunState.FINISHED, adapter="ha")
    paused = _record(registry, language="yo", state=RunState.PAUSED)
    for record in (finished, paused):
        registry.save(record)
        (record.run_dir / "checkpoint").mkdir()
    assert registry.forget_finished() == 1
    assert not finished.run_dir.exists() and (paused.run_dir / "checkpoint").is_dir()
    assert [r.id for r in registry.records()[0]] == [paused.id] and registry.forget_finished() == 0
