"""The Files tab's batch queue: the jobs as a table model, and the thread that runs them.

`JobQueue` keeps the jobs (saved through `JobStore` at every change of state) and hands
them one at a time to `QueueWorker`, which transcribes on its own thread and reports back
through signals, so the GUI thread never waits for the engine.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QThreadPool, Signal
from PySide6.QtGui import QBrush, QColor

from lorawhisper_app.core.audio import audio_duration
from lorawhisper_app.core.errors import Cancelled, LoraWhisperError, one_line
from lorawhisper_app.core.job_store import RETRYABLE, Job, JobStatus, JobStore, now_iso
from lorawhisper_app.core.languages import language_name, whisper_languages
from lorawhisper_app.core.results import TranscriptionResult
from lorawhisper_app.core.routing import AUTO, RoutingOptions
from lorawhisper_app.core.writers import write_result
from lorawhisper_app.gui.engine_holder import EngineHolder

if TYPE_CHECKING:  # these pull in torch, which the window should not wait for
    from lorawhisper_app.core.transcriber import ProgressFn

Index = QModelIndex | QPersistentModelIndex

JOB_ID_ROLE = Qt.ItemDataRole.UserRole
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 1  # float 0-1 in the Status column while the job runs

STATUS_COLOURS = {
    JobStatus.RUNNING: "#1f5fbf",
    JobStatus.DONE: "#1e7b34",
    JobStatus.FAILED: "#b3261e",
    JobStatus.CANCELLED: "#6b6b6b",
    JobStatus.INTERRUPTED: "#8a5a00",
}


class Column(IntEnum):
    FILE = 0
    DURATION = 1
    LANGUAGE = 2
    STATUS = 3  # the status word, or a progress bar with the time left while running
    ACTIONS = 4


HEADERS = {
    Column.FILE: "File",
    Column.DURATION: "Length",
    Column.LANGUAGE: "Language",
    Column.STATUS: "Status",
    Column.ACTIONS: "",
}


def clock(seconds: float) -> str:
    """m:ss (h:mm:ss from an hour on)."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# -- language choices ---------------------------------------------------------------------


def language_label(code: str, adapter_languages: frozenset[str], long: bool = False) -> str:
    """e.g. "Swahili (sw)", marked "★" ("★ adapter" when `long`) when an adapter serves it."""
    mark = (" ★ adapter" if long else " ★") if code in adapter_languages else ""
    return f"{language_name(code)} ({code}){mark}"


def routing_label(options: RoutingOptions, adapter_languages: frozenset[str] = frozenset()) -> str:
    if options.adapter:
        return f"Adapter {options.adapter}"
    if options.language == AUTO:
        return f"Auto · MoE K={options.moe_k}" if options.moe_k else "Auto"
    return language_label(options.language, adapter_languages)


def language_codes(adapter_languages: frozenset[str]) -> list[str]:
    """Languages served by an adapter first, then every other Whisper language, by name."""
    rest = set(whisper_languages()) - adapter_languages
    return sorted(adapter_languages, key=language_name) + sorted(rest, key=language_name)


def routing_choices(adapter_languages: frozenset[str], moe_ks: Iterable[int]) -> list[tuple[str, RoutingOptions]]:
    """(label, options) for a language menu: Auto, Auto with MoE for each K, then languages."""
    choices = [("Auto (detect the language)", RoutingOptions())]
    choices += [(f"Auto, mix adapters (MoE, K={k})", RoutingOptions(moe_k=k)) for k in sorted(set(moe_ks)) if k > 0]
    codes = language_codes(adapter_languages)
    choices += [(language_label(code, adapter_languages, long=True), RoutingOptions(code)) for code in codes]
    return choices


# -- the worker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSettings:
    folder: Path
    fmt: str  # a key of writers.WRITERS


@dataclass(frozen=True)
class Task:
    job_id: str
    path: str
    routing: RoutingOptions
    export: ExportSettings | None


class QueueWorker(QObject):
    """Transcribes submitted tasks one at a time on its own (daemon) thread. Each finished
    transcript is saved to the store, and exported, there, before `job_done` is emitted.

    A plain Python thread rather than a QThread: should the window go without calling
    `stop`, the idle thread just waits, instead of Qt aborting over a running QThread."""

    job_progress = Signal(str, float, float)  # job id, fraction done, seconds left (-1: not known yet)
    job_done = Signal(str, object, str, str)  # job id, TranscriptionResult, save problem, export problem ("": none)
    job_failed = Signal(str, str)  # job id, one-line reason
    job_cancelled = Signal(str)

    def __init__(self, holder: EngineHolder, store: JobStore) -> None:
        super().__init__()
        self._holder = holder
        self._store = store
        self._tasks: queue.Queue[Task | None] = queue.Queue()
        self._cancels: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="files-queue", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, task: Task) -> None:
        self._cancels[task.job_id] = threading.Event()
        self._tasks.put(task)

    def cancel(self, job_id: str) -> None:
        if job_id in self._cancels:
            self._cancels[job_id].set()

    def stop(self, timeout_s: float) -> bool:
        """Cancel whatever runs and end the thread; False if it is still running after `timeout_s`."""
        self._stop.set()
        for event in list(self._cancels.values()):
            event.set()
        self._tasks.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None and not self._stop.is_set():
            try:
                self._run(task, self._cancels[task.job_id])
            finally:
                self._cancels.pop(task.job_id, None)

    def _run(self, task: Task, cancel: threading.Event) -> None:
        """Transcribe one task and report how it ended, by exactly one signal."""
        try:
            engine = self._holder.wait_unless_cancelled(cancel)
            if engine is None:
                raise Cancelled()
            result = engine.transcribe(task.path, task.routing, progress=self._reporter(task.job_id), cancel=cancel)
        except Cancelled:
            self.job_cancelled.emit(task.job_id)
        except LoraWhisperError as exc:
            self.job_failed.emit(task.job_id, one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not end the queue
            self.job_failed.emit(task.job_id, f"{type(exc).__name__}: {one_line(exc)}")
        else:
            self.job_done.emit(task.job_id, result, *self._keep(task, result))

    def _reporter(self, job_id: str) -> ProgressFn:
        """A progress callback that emits the fraction done and the time left (elapsed / fraction)."""
        started = time.monotonic()

        def progress(done: float, total: float) -> None:
            fraction = min(1.0, done / total) if total > 0 else 0.0
            elapsed = time.monotonic() - started
            self.job_progress.emit(job_id, fraction, elapsed / fraction - elapsed if fraction > 0 else -1.0)

        return progress

    def _keep(self, task: Task, result: TranscriptionResult) -> tuple[str, str]:
        """Save the transcript and export it; returns (save problem, export problem), "" for none."""
        save_problem = export_problem = ""
        try:
            self._store.save_result(task.job_id, result)
        except OSError as exc:
            save_problem = f"the transcript could not be saved: {exc.strerror or exc}"
        if task.export is not None:
            try:
                write_result(result, task.export.fmt, task.export.folder)
            except OSError as exc:
                export_problem = f"export to {task.export.folder} failed: {exc.strerror or exc}"
        return save_problem, export_problem


# -- the queue -----------------------------------------------------------------------------


class JobQueue(QAbstractTableModel):
    """The jobs of the Files tab, one per row, run in order by a `QueueWorker`.

    Jobs start as soon as they are queued. `message` carries lines for the panel's message
    bar (save and export problems); `job_finished` fires once a transcript is saved.
    """

    message = Signal(str)
    job_finished = Signal(str)
    _probed = Signal(str, float)  # job id, duration (-1: unreadable); from the probe thread

    def __init__(self, holder: EngineHolder, store: JobStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        loaded = store.load()
        self._jobs: list[Job] = loaded.jobs
        self.load_notice = loaded.notice
        self.adapter_languages: frozenset[str] = frozenset()
        self.export: ExportSettings | None = None
        self._progress: dict[str, tuple[float, float]] = {}
        self._results: dict[str, TranscriptionResult] = {}
        self._running: str | None = None
        self._closing = False
        self._probes = QThreadPool(self)
        self._probes.setMaxThreadCount(1)
        self._probed.connect(self._on_probed)
        self.worker = QueueWorker(holder, store)
        self.worker.job_progress.connect(self._on_progress)
        self.worker.job_done.connect(self._on_done)
        self.worker.job_failed.connect(self._on_failed)
        self.worker.job_cancelled.connect(self._on_cancelled)
        self.worker.start()

    # -- reading ---------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def job(self, job_id: str) -> Job:
        return self._jobs[self.row_of(job_id)]

    def has(self, job_id: str) -> bool:
        return any(job.id == job_id for job in self._jobs)

    def row_of(self, job_id: str) -> int:
        return next(row for row, job in enumerate(self._jobs) if job.id == job_id)

    def interrupted(self) -> list[Job]:
        return [job for job in self._jobs if job.status is JobStatus.INTERRUPTED]

    def result(self, job_id: str) -> TranscriptionResult:
        """A finished job's transcript, read from the store once; raises StoreError."""
        if job_id not in self._results:
            self._results[job_id] = self.store.load_result(job_id)
        return self._results[job_id]

    # -- changing --------------------------------------------------------------------

    def add(self, paths: Iterable[Path], routing: RoutingOptions) -> list[Job]:
        """Queue one job per file (a file already waiting or running is skipped)."""
        waiting = {job.path for job in self._jobs if job.status in (JobStatus.QUEUED, JobStatus.RUNNING)}
        jobs = [Job(str(path), routing) for path in dict.fromkeys(paths) if str(path) not in waiting]
        if jobs:
            self.beginInsertRows(QModelIndex(), len(self._jobs), len(self._jobs) + len(jobs) - 1)
            self._jobs.extend(jobs)
            self.endInsertRows()
            for job in jobs:
                self._probes.start(lambda job_id=job.id, path=job.path: self._probe(job_id, path))
            self._saved()
        return jobs

    def cancel(self, job_id: str) -> None:
        job = self.job(job_id)
        if job.id == self._running:
            self.worker.cancel(job_id)
        elif job.status is JobStatus.QUEUED:
            self._update(job, status=JobStatus.CANCELLED, finished=now_iso())

    def retry(self, job_id: str) -> None:
        job = self.job(job_id)
        if job.status in RETRYABLE:
            self._replace(job.requeued())

    def resume_interrupted(self) -> None:
        for job in self.interrupted():
            self._replace(job.requeued(), save=False)
        self._saved()

    def remove(self, job_id: str) -> None:
        """Drop a job that is not running, and its saved transcript."""
        row = self.row_of(job_id)
        if job_id == self._running:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        self.endRemoveRows()
        self._results.pop(job_id, None)
        try:
            self.store.delete_result(job_id)
        except OSError as exc:
            self.message.emit(f"Could not delete the saved transcript: {exc.strerror or exc}")
        self._saved()

    def set_routing(self, job_id: str, routing: RoutingOptions) -> None:
        """A file's own language choice; only before it runs."""
        job = self.job(job_id)
        if job.status is JobStatus.QUEUED or job.status in RETRYABLE:
            self._update(job, routing=routing)

    def apply_routing_to_queued(self, routing: RoutingOptions) -> None:
        for job in self._jobs:
            if job.status is JobStatus.QUEUED:
                self._update(job, routing=routing, save=False)
        self._saved()

    def save_edited(self, job_id: str, result: TranscriptionResult) -> None:
        """Keep the user's corrections of a finished transcript."""
        self._results[job_id] = result
        try:
            self.store.save_result(job_id, result)
        except OSError as exc:
            self.message.emit(f"Could not save your corrections: {exc.strerror or exc}")

    def set_adapter_languages(self, languages: frozenset[str]) -> None:
        self.adapter_languages = languages
        if self._jobs:
            self.dataChanged.emit(self.index(0, Column.LANGUAGE), self.index(len(self._jobs) - 1, Column.LANGUAGE))

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop the worker (a running job stays "running" on disk: offered again next time)."""
        self._closing = True
        self.worker.stop(timeout_ms / 1000)
        self._probes.clear()
        self._probes.waitForDone(timeout_ms)

    def _update(self, job: Job, save: bool = True, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(job, name, value)
        row = self.row_of(job.id)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))
        if save:
            self._saved()

    def _replace(self, job: Job, save: bool = True) -> None:
        self._jobs[self.row_of(job.id)] = job
        self._results.pop(job.id, None)
        self._update(job, save=save)

    def _saved(self) -> None:
        """Persist the queue, then start the next job if none is running."""
        try:
            self.store.save(self._jobs)
        except OSError as exc:
            self.message.emit(f"Could not save the queue to {self.store.root}: {exc.strerror or exc}")
        self._start_next()

    def _start_next(self) -> None:
        if self._running is not None or self._closing:
            return
        job = next((job for job in self._jobs if job.status is JobStatus.QUEUED), None)
        if job is None:
            return
        self._running = job.id
        self._progress[job.id] = (0.0, -1.0)
        self._update(job, status=JobStatus.RUNNING, started=now_iso())
        self.worker.submit(Task(job.id, job.path, job.routing, self.export))

    # -- worker and probe reports ----------------------------------------------------------

    def _probe(self, job_id: str, path: str) -> None:
        """Runs on the probe thread."""
        try:
            seconds = audio_duration(path)
        except (LoraWhisperError, OSError):
            seconds = -1.0
        if not self._closing:
            self._probed.emit(job_id, seconds)

    def _on_probed(self, job_id: str, seconds: float) -> None:
        if seconds >= 0 and self.has(job_id):
            self._update(self.job(job_id), save=False, duration=seconds)

    def _finish(self, job_id: str, **changes: Any) -> None:
        self._running = None
        self._progress.pop(job_id, None)
        if self._closing or not self.has(job_id):
            return
        self._update(self.job(job_id), finished=now_iso(), **changes)

    def _on_progress(self, job_id: str, fraction: float, eta: float) -> None:
        if job_id == self._running:
            self._progress[job_id] = (fraction, eta)
            row = self.row_of(job_id)
            self.dataChanged.emit(self.index(row, Column.STATUS), self.index(row, Column.STATUS))

    def _on_done(self, job_id: str, result: TranscriptionResult, save_problem: str, export_problem: str) -> None:
        self._results[job_id] = result
        self._finish(
            job_id, status=JobStatus.DONE, duration=result.duration, detected_language=result.route.language,
            note=result.route.notice, error=save_problem or None, export_error=export_problem or None,
        )
        for problem in (save_problem, export_problem):
            if problem and not self._closing:
                self.message.emit(f"{Path(result.path).name}: {problem}")
        self.job_finished.emit(job_id)

    def _on_failed(self, job_id: str, reason: str) -> None:
        self._finish(job_id, status=JobStatus.FAILED, error=reason)

    def _on_cancelled(self, job_id: str) -> None:
        self._finish(job_id, status=JobStatus.CANCELLED)

    # -- the model -------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == Column.LANGUAGE:
            status = self._jobs[index.row()].status
            if status is JobStatus.QUEUED or status in RETRYABLE:
                flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not (index.isValid() and index.column() == Column.LANGUAGE and role == Qt.ItemDataRole.EditRole):
            return False
        if not isinstance(value, RoutingOptions) or not self.flags(index) & Qt.ItemFlag.ItemIsEditable:
            return False
        self.set_routing(self._jobs[index.row()].id, value)
        return True

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self._jobs[index.row()]
        column = Column(index.column())
        if role == JOB_ID_ROLE:
            return job.id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(job, column)
        if role == Qt.ItemDataRole.EditRole and column == Column.LANGUAGE:
            return job.routing
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(job, column, bool(self.flags(index) & Qt.ItemFlag.ItemIsEditable))
        if role == FRACTION_ROLE and column == Column.STATUS and job.status is JobStatus.RUNNING:
            return self._progress.get(job.id, (0.0, -1.0))[0]
        if role == Qt.ItemDataRole.ForegroundRole and column == Column.STATUS:
            colour = STATUS_COLOURS.get(job.status)
            return QBrush(QColor(colour)) if colour else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == Column.DURATION:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, job: Job, column: Column) -> str:
        if column == Column.FILE:
            return job.name
        if column == Column.DURATION:
            return clock(job.duration) if job.duration is not None else "–"
        if column == Column.LANGUAGE:
            chosen = routing_label(job.routing, self.adapter_languages)
            if job.detected_language and job.routing.language == AUTO:
                return f"{chosen} → {language_label(job.detected_language, self.adapter_languages)}"
            return chosen
        if column == Column.STATUS:
            return self._status_text(job)
        return ""

    def _status_text(self, job: Job) -> str:
        if job.status is JobStatus.RUNNING:
            fraction, eta = self._progress.get(job.id, (0.0, -1.0))
            # Rounded up: 0.4 s left reads 0:01, not 0:00.
            return f"{fraction * 100:.0f} % · {clock(math.ceil(eta))} left" if eta >= 0 else "running…"
        if job.status is JobStatus.DONE and (job.error or job.export_error):
            return "done · not saved" if job.error else "done · export failed"
        if job.status is JobStatus.FAILED:
            return f"failed: {job.error}"
        return str(job.status)

    def _tooltip(self, job: Job, column: Column, editable: bool) -> str | None:
        if column == Column.FILE:
            return job.path
        if column == Column.LANGUAGE:
            lines = [job.note, "Click to choose this file's language" if editable else None]
        else:
            lines = [str(job.status), job.error, job.export_error and f"Export: {job.export_error}", job.note]
        return "\n".join(line for line in lines if line) or None
