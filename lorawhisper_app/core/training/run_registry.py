"""The app's record of the training runs it started, so that one that did not finish can be
resumed after the app is closed or crashes.

Layout under the data folder (``$LORAWHISPER_DATA_DIR/training-runs`` or the user's data folder):

    <run id>/run.json      the record: the `lorawhisper train` arguments, state, progress
    <run id>/...           the run folder itself (checkpoint/, best.safetensors, adapter/),
                           unless the run was given another one

Every record is replaced atomically, so a crash leaves the previous or the new version.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import platformdirs

from ..errors import LoraWhisperError
from ..writers import write_atomic

RECORD_FILE = "run.json"
# What the trainer writes in a run folder, named here so that the app reads it without importing torch:
CHECKPOINT_DIRS = ("checkpoint", ".checkpoint.old")  # checkpoint.py's folder, and where a save in progress left the last one
DEV_CLIPS = "dev.json"  # the dev clips a finished run scored: id, audio, text, duration
FORMAT_VERSION = 1
_ID_CHARS = re.compile(r"[^a-z0-9-]+")


class RunState(StrEnum):
    RUNNING = "running"  # a child process trains (or the app stopped without noting the end)
    PAUSED = "paused"  # stopped by the user, to be resumed
    INTERRUPTED = "interrupted"  # stopped because the app quit
    CANCELLED = "cancelled"  # stopped by the user; the checkpoint is kept until discarded
    FAILED = "failed"
    FINISHED = "finished"  # the adapter is installed


UNFINISHED = frozenset({RunState.RUNNING, RunState.PAUSED, RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED})


class RegistryError(LoraWhisperError):
    """A run record that cannot be read or written."""


def default_runs_dir() -> Path:
    """``$LORAWHISPER_DATA_DIR/training-runs`` when that is set, else the user's data folder."""
    root = os.environ.get("LORAWHISPER_DATA_DIR")
    base = Path(root) if root else platformdirs.user_data_path("lorawhisper-studio", appauthor=False)
    return base / "training-runs"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """One run. `args` are the `lorawhisper train` arguments that start it and, run again,
    resume it from `run_dir`'s checkpoint; `plan` is what the app's wizard chose, kept as
    it wrote it. `losses` holds [step, loss] pairs and `evals` [step, dev WER] pairs."""

    id: str
    language: str
    language_name: str
    run_dir: Path
    args: list[str]
    plan: dict[str, Any] = field(default_factory=dict)
    state: RunState = RunState.RUNNING
    step: int = 0
    total_steps: int = 0
    checkpoint_step: int | None = None
    losses: list[list[float]] = field(default_factory=list)
    evals: list[list[float]] = field(default_factory=list)
    adapter: str | None = None
    error: str | None = None
    pid: int | None = None
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)

    @property
    def has_checkpoint(self) -> bool:
        return any((self.run_dir / name).is_dir() for name in CHECKPOINT_DIRS)

    @property
    def resumable(self) -> bool:
        """Not finished: running it again continues (from the checkpoint, when there is one)."""
        return self.state in UNFINISHED

    def describe(self) -> str:
        """e.g. "Swahili (sw), paused at step 40 of 120"."""
        where = f" at step {self.step} of {self.total_steps}" if self.total_steps else ""
        state = "stopped when the app closed" if self.state is RunState.RUNNING else self.state.value
        return f"{self.language_name} ({self.language}), {state}{where}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(format_version=FORMAT_VERSION, run_dir=str(self.run_dir), state=self.state.value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.run_dir = Path(record.run_dir)
        record.state = RunState(record.state)
        if not (isinstance(record.args, list) and all(isinstance(a, str) for a in record.args)):
            raise ValueError("args must be a list of strings")
        return record


class RunRegistry:
    """The records under `root` (default: `default_runs_dir()`), one folder a run."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def new_id(self, language: str) -> str:
        """A fresh run id such as "sw-20250101-120000" (a suffix when that one is taken)."""
        stem = _ID_CHARS.sub("-", f"{language.lower()}-{datetime.now():%Y%m%d-%H%M%S}").strip("-")
        candidate, n = stem, 2
        while (self.root / candidate).exists():
            candidate, n = f"{stem}-{n}", n + 1
        return candidate

    def run_dir(self, run_id: str) -> Path:
        """The folder a run of this id trains in unless given another."""
        return self.root / run_id

    def save(self, record: RunRecord) -> None:
        record.updated = _now()
        try:
            write_atomic(self.root / record.id / RECORD_FILE, json.dumps(record.to_dict(), indent=1))
        except OSError as error:
            raise RegistryError(f"{self.root / record.id / RECORD_FILE}: could not write the run record ({error})") from None

    def load(self, run_id: str) -> RunRecord:
        path = self.root / run_id / RECORD_FILE
        try:
            return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RegistryError(f"{path}: no such training run record") from None
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise RegistryError(f"{path}: not a readable training run record ({error})") from None

    def records(self) -> tuple[list[RunRecord], list[str]]:
        """Every record, newest first, and one line for each that could not be read."""
        found: list[RunRecord] = []
        problems: list[str] = []
        if not self.root.is_dir():
            return found, problems
        for folder in sorted(self.root.iterdir()):
            if not (folder / RECORD_FILE).is_file():
                continue
            try:
                found.append(self.load(folder.name))
            except RegistryError as error:
                problems.append(str(error))
        found.sort(key=lambda r: (r.updated, r.id), reverse=True)
        return found, problems

    def unfinished(self) -> list[RunRecord]:
        """The runs that did not finish, newest first: what the app offers to resume."""
        return [r for r in self.records()[0] if r.resumable]

    def forget_finished(self) -> int:
        """Discard every finished run: its adapter is installed, so its checkpoints (tens of MB at
        rank 32) serve nothing once its result page is gone. How many were discarded."""
        finished = [r for r in self.records()[0] if r.state is RunState.FINISHED]
        for record in finished:
            self.discard(record)
        return len(finished)

    def discard(self, record: RunRecord) -> None:
        """Forget a run. Its run folder goes too when the registry made it (checkpoints only:
        an installed adapter lives in the adapter store); a folder given to it stays."""
        folder = self.root / record.id
        if record.run_dir.resolve() == folder.resolve():
            shutil.rmtree(folder, ignore_errors=True)
            return
        (folder / RECORD_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def process_alive(pid: int | None) -> bool:
    """Whether a process of that id still runs (a stopped app's training child may linger)."""
    if not pid or os.name == "nt":  # on Windows, os.kill(pid, 0) would send Ctrl+C
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
