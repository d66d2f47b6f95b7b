"""Long work for a widget on a plain Python thread, reported through Qt signals.

A plain thread rather than a QThread: should the widget (a wizard page, say) go while work
runs, the thread just finishes and its result is dropped, instead of Qt aborting over a
running QThread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from lorawhisper_app.core.errors import LoraWhisperError

Work = Callable[[Callable[[int, int], None], threading.Event], object]


class BackgroundTask(QObject):
    """Runs `work(progress, cancel)` once; `progress(done, total)` may be called from it.

    Exactly one of `done` (the return value), `failed` (a one-line reason) or `cancelled`
    is emitted, unless the task was dropped with `discard`.
    """

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, work: Work, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self._cancel = threading.Event()
        self._discarded = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Block until the work is over or `timeout` seconds have passed; True when it is over."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()

    def discard(self) -> None:
        """Cancel and emit nothing more: the caller has moved on."""
        self._discarded = True
        self._cancel.set()

    def _run(self) -> None:
        try:
            result = self._work(self._report, self._cancel)
        except LoraWhisperError as exc:
            failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the page, not kill a thread silently
            failure = f"{type(exc).__name__}: {exc}"
        else:
            failure = None
        if self._cancel.is_set():
            self._emit(self.cancelled)
        elif failure is not None:
            self._emit(self.failed, failure)
        else:
            self._emit(self.done, result)

    def _report(self, done: int, total: int) -> None:
        self._emit(self.progress, done, total)

    def _emit(self, signal: Signal, *args: object) -> None:
        if self._discarded:
            return
        try:
            signal.emit(*args)
        except RuntimeError:  # the page that owned the task is gone: nobody is listening
            pass
