"""Loads the engine once, off the GUI thread, and tells the window how that goes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, Signal

from lorawhisper_app.core.errors import LoraWhisperError

if TYPE_CHECKING:  # importing the engine pulls in torch: seconds the window should not wait for
    from lorawhisper_app.core.engine import Engine


def _default_engine() -> "Engine":
    from lorawhisper_app.core.engine import Engine

    return Engine()


class EngineHolder(QObject):
    """Owns the app's single Engine. `state_changed` carries a line for the status bar."""

    state_changed = Signal(str)
    ready = Signal()
    failed = Signal(str)

    def __init__(self, factory: Callable[[], "Engine"] = _default_engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._engine: "Engine | None" = None
        self._error: str | None = None
        self._loaded = threading.Event()
        self._started = False

    @property
    def engine(self) -> "Engine | None":
        return self._engine

    @property
    def error(self) -> str | None:
        return self._error

    def start(self) -> None:
        """Begin loading in a background thread (once)."""
        if self._started:
            return
        self._started = True
        self.state_changed.emit("Loading the Whisper backbone…")
        threading.Thread(target=self._load, name="engine-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            self._engine = self._factory()
        except LoraWhisperError as exc:
            self._error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the window, not kill a thread silently
            self._error = f"the backbone could not be loaded: {type(exc).__name__}: {exc}"
        self._loaded.set()
        if self._engine is not None:
            backbone = self._engine.backbone
            self.state_changed.emit(f"Ready: {backbone.files.name} on {backbone.device.type}, {backbone.compute.name}")
            self.ready.emit()
        else:
            self.state_changed.emit(f"Backbone failed to load: {self._error}")
            self.failed.emit(self._error or "unknown error")

    def wait(self, timeout: float | None = None) -> "Engine":
        """Block until loaded (worker threads only) and return the engine."""
        self.start()
        self._loaded.wait(timeout)
        if self._engine is None:
            raise LoraWhisperError(self._error or "the backbone is still loading")
        return self._engine
