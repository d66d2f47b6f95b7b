"""Ctrl+C as a request to stop at the next safe point, not an exception raised anywhere.

Python raises KeyboardInterrupt wherever the main thread happens to be when the signal is
handled, and inside a C extension it can be lost: PyAV's error check swallowed it while an
audio file was being resampled (1 run in 5 of `tests/test_cli_interrupt.py`; the command
then ran to the end and exited 0). So the first Ctrl+C (or SIGTERM, where asked) only sets
an event that the command checks between files and the engine checks at each token; a
second one raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interrupts_cancel(notice: str | None = None, *, sigterm: bool = False) -> Iterator[threading.Event]:
    """Within the block the first interrupt sets the event (and prints `notice`); the
    previous handlers come back afterwards."""
    cancel = threading.Event()
    signals = [signal.SIGINT, signal.SIGTERM] if sigterm else [signal.SIGINT]

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        if notice:
            print(f"lorawhisper: {notice}", file=sys.stderr, flush=True)

    previous = {number: signal.signal(number, handler) for number in signals}
    # A blocked mask is inherited from whoever started us (a CI runner, a service manager):
    # the app's Pause and Cancel send SIGTERM to `lorawhisper train` and rely on it arriving.
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    try:
        yield cancel
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for number, old in previous.items():
            signal.signal(number, old)
