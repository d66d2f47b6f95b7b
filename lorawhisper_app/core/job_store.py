"""The batch queue on disk: the jobs and each finished transcript, one JSON file each.

Layout under the data folder (``$LORAWHISPER_DATA_DIR/jobs`` or the user's data folder):

    queue.json              every job: file, routing options, status, error, timestamps
    results/<job id>.json   the transcript of a finished job (TranscriptionResult.to_dict())

Every file is replaced atomically (temp file, fsync, rename), so a crash or ``kill -9``
leaves the previous or the new version, never half of one. Jobs that were queued or
running when the app stopped come back as "interrupted".
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable

import platformdirs

from .errors import LoraWhisperError
from .results import Route, Segment, TranscriptionResult
from .routing import RoutingOptions
from .writers import write_atomic

QUEUE_FILE = "queue.json"
RESULTS_DIR = "results"
FORMAT_VERSION = 1


class StoreError(LoraWhisperError):
    """A job store file that is missing or cannot be read."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # queued or running when the app last stopped


UNFINISHED = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED})


def default_jobs_dir() -> Path:
    """``$LORAWHISPER_DATA_DIR/jobs`` when that is set, else the user's data folder."""
    root = os.environ.get("LORAWHISPER_DATA_DIR")
    base = Path(root) if root else platformdirs.user_data_path("lorawhisper-studio", appauthor=False)
    return base / "jobs"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def result_from_dict(data: dict[str, Any]) -> TranscriptionResult:
    """The inverse of ``TranscriptionResult.to_dict()`` (its derived "text" is ignored)."""
    return TranscriptionResult(
        path=str(data["path"]),
        duration=float(data["duration"]),
        segments=[Segment(float(s["start"]), float(s["end"]), str(s["text"])) for s in data["segments"]],
        route=Route(**data["route"]),
        language_probabilities={str(k): float(v) for k, v in data.get("language_probabilities", {}).items()},
    )


@dataclass
class Job:
    """One file in the queue. `error` is why it failed (or, once done, why its transcript
    could not be saved); `detected_language` and `note` (the route's notice) are filled in
    when it finishes, `export_error` when its automatic export failed."""

    path: str
    routing: RoutingOptions = field(default_factory=RoutingOptions)
    status: JobStatus = JobStatus.QUEUED
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    error: str | None = None
    duration: float | None = None
    detected_language: str | None = None
    note: str | None = None
    export_error: str | None = None
    added: str = field(default_factory=now_iso)
    started: str | None = None
    finished: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    def requeued(self) -> Job:
        """This job back in the queue, its outcome cleared."""
        return replace(
            self, status=JobStatus.QUEUED, error=None, detected_language=None, note=None, export_error=None,
            started=None, finished=None,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """Unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["routing"] = RoutingOptions(**values.get("routing", {}))
        values["status"] = JobStatus(values["status"])
        return cls(**values)


@dataclass
class LoadedQueue:
    """What `JobStore.load` found: the jobs, the ids of the interrupted ones, and a line
    to show when the queue file had to be set aside."""

    jobs: list[Job]
    interrupted: list[str]
    notice: str | None = None


class JobStore:
    """Reads and writes the queue and the transcripts under `root`. Nothing is written
    (not even the folder) until there is something to keep."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_jobs_dir()

    @property
    def queue_path(self) -> Path:
        return self.root / QUEUE_FILE

    def result_path(self, job_id: str) -> Path:
        return self.root / RESULTS_DIR / f"{job_id}.json"

    # -- the queue -----------------------------------------------------------------

    def load(self) -> LoadedQueue:
        """The saved jobs; those left queued or running are returned as interrupted
        (or as done when their transcript was saved just before the app stopped)."""
        self._sweep_temp_files()
        if not self.queue_path.exists():
            return LoadedQueue([], [])
        try:
            data = json.loads(self.queue_path.read_text(encoding="utf-8"))
            jobs = [Job.from_dict(item) for item in data["jobs"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, LoraWhisperError) as exc:
            return LoadedQueue([], [], self._set_aside(exc))
        interrupted = []
        for index, job in enumerate(jobs):
            if job.status in UNFINISHED and self.result_path(job.id).exists():
                jobs[index] = replace(job, status=JobStatus.DONE, finished=job.finished or now_iso())
            elif job.status in UNFINISHED or job.status is JobStatus.INTERRUPTED:
                jobs[index] = replace(job, status=JobStatus.INTERRUPTED)
                interrupted.append(job.id)
        return LoadedQueue(jobs, interrupted)

    def save(self, jobs: Iterable[Job]) -> None:
        document = {"version": FORMAT_VERSION, "saved": now_iso(), "jobs": [job.to_dict() for job in jobs]}
        write_atomic(self.queue_path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    def _set_aside(self, exc: Exception) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = self.queue_path.with_name(f"{QUEUE_FILE}.corrupt-{stamp}")
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        try:
            os.replace(self.queue_path, aside)
        except OSError as move_error:
            return f"The saved queue {self.queue_path} is unreadable ({reason}); moving it aside failed: {move_error}"
        return f"The saved queue could not be read ({reason}); it was moved aside to {aside} and a new queue started."

    def _sweep_temp_files(self) -> None:
        """Remove temp files a killed writer left behind (write_atomic names them .NAME.HEX.tmp)."""
        for folder in (self.root, self.root / RESULTS_DIR):
            if folder.is_dir():
                for temp in folder.glob(".*.tmp"):
                    temp.unlink(missing_ok=True)

    # -- transcripts -----------------------------------------------------------------

    def save_result(self, job_id: str, result: TranscriptionResult) -> Path:
        text = json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n"
        return write_atomic(self.result_path(job_id), text)

    def load_result(self, job_id: str) -> TranscriptionResult:
        """The saved transcript; a corrupt file is moved aside and StoreError raised."""
        path = self.result_path(job_id)
        try:
            return result_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise StoreError(f"{path}: the transcript file is missing") from None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            aside = path.with_name(f"{path.name}.corrupt-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
            try:
                os.replace(path, aside)
            except OSError:
                aside = path
            reason = type(exc).__name__
            raise StoreError(f"{path}: the transcript file is unreadable ({reason}); kept as {aside}") from None

    def delete_result(self, job_id: str) -> None:
        self.result_path(job_id).unlink(missing_ok=True)
