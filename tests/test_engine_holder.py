"""Waiting for the backbone from a worker thread: a cancel ends the wait while it still loads,
and a failed load reaches the waiter. The load is held back by a gate (the real backbone loads
too fast here to cancel during it reliably) and then fails as a missing backbone does."""

from __future__ import annotations

import threading
import time

import pytest

from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.gui.engine_holder import EngineHolder


def test_a_cancel_ends_the_wait_and_a_failed_load_is_raised(qtbot) -> None:
    gate = threading.Event()

    def load() -> None:
        gate.wait(30)
        raise LoraWhisperError("/nowhere/whisper-base: backbone not found")

    holder = EngineHolder(load)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    assert holder.wait_unless_cancelled(cancel) is None
    assert time.monotonic() - started < 5 and holder.loading  # ended by the cancel, not by the load

    gate.set()
    with pytest.raises(LoraWhisperError, match="backbone not found"):
        holder.wait_unless_cancelled(threading.Event())
    assert not holder.loading and holder.error == "/nowhere/whisper-base: backbone not found"
