"""The live-transcription loop on its own thread: capture, stream, emit events."""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QThread, Signal

from lorawhisper_app.core.capture import AudioCapture
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.live import CAPTURE_BLOCK_S, LiveSession
from lorawhisper_app.gui.engine_holder import EngineHolder

POLL_SECONDS = 0.1


class LiveWorker(QThread):
    """Records from `device` and transcribes until `stop()`; the session stays readable after."""

    event = Signal(object)  # LiveEvent
    meter = Signal(float, float, int)  # level dBFS, backlog seconds, input overflows
    status = Signal(str)
    failed = Signal(str)
    warning = Signal(str)  # something went wrong that does not stop transcribing (the recording's disk filled)

    def __init__(self, holder: EngineHolder, device: str | int | None, language: str, threshold: float) -> None:
        super().__init__()
        self._holder = holder
        self._device = device
        self._language = language
        self._threshold = threshold
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.session: LiveSession | None = None

    def stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def run(self) -> None:
        try:
            self.status.emit("Waiting for the backbone…")
            engine = self._holder.wait()
            self.status.emit("Loading the adapters…")
            self.session = LiveSession(engine, self._language, threshold=self._threshold)
            with AudioCapture(self._device, block_seconds=CAPTURE_BLOCK_S) as capture:
                capture.start()
                self.status.emit("Listening")
                paused = False
                while not self._stop.is_set():
                    if self._paused.is_set() != paused:
                        paused = self._paused.is_set()
                        (capture.pause if paused else capture.resume)()
                        self.status.emit("Paused" if paused else "Listening")
                    block = capture.read(timeout=POLL_SECONDS)
                    audio = capture.read_available()
                    if block is not None:
                        audio = np.concatenate([block, audio])
                    for item in self.session.process(audio, capture.read_available):
                        self.event.emit(item)
                    if problem := self.session.untold_recording_problem():
                        self.warning.emit(problem)
                    self.meter.emit(capture.level_db, capture.backlog_seconds, capture.overflows)
                    if not paused and not capture.running:
                        name = capture.device.describe() if capture.device else "the microphone"
                        self.failed.emit(f"{name}: stopped delivering audio")
                        break
                capture.stop()
            for item in self.session.finish():
                self.event.emit(item)
            self.status.emit("Stopped")
        except LoraWhisperError as exc:
            self.failed.emit(str(exc))
