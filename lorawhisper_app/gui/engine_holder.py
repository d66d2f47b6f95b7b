"""Loads the engine off the GUI thread, reloads it when the settings change, and tells the
window how that goes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, Signal

from lorawhisper_app.core.errors import LoraWhisperError

if TYPE_CHECKING:  # importing the engine pulls in torch: seconds the window should not wait for
    from lorawhisper_app.core.engine import Engine

EngineFactory = Callable[[], "Engine"]


def _default_engine() -> "Engine":
    from lorawhisper_app.core.engine import Engine

    return Engine()


class EngineHolder(QObject):
    """Owns the app's single Engine. `state_changed` carries a line for the status bar.

    `reload(factory)` replaces the engine: callers of `wait` get the new one, while a
    transcription already running on the old one (it holds the engine's lock) finishes
    first; only then is the old engine let go and the new one loaded, so two models are
    not loaded side by side. Loads run one at a time; a load overtaken by a newer reload
    is dropped.
    """

    state_changed = Signal(str)
    ready = Signal()
    failed = Signal(str)

    def __init__(self, factory: EngineFactory = _default_engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._engine: "Engine | None" = None
        self._error: str | None = None
        self._loaded = threading.Event()
        self._started = False
        self._generation = 0
        self._guard = threading.Lock()  # engine, error, generation and the loaded flag change together
        self._one_load = threading.Lock()  # one factory call at a time

    @property
    def engine(self) -> "Engine | None":
        return self._engine

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def loading(self) -> bool:
        """True from start (or reload) until the engine is ready or has failed."""
        return self._started and not self._loaded.is_set()

    def start(self) -> None:
        """Begin loading in a background thread (once)."""
        if not self._started:
            self._begin(self._factory)

    def reload(self, factory: EngineFactory) -> None:
        """Load a new engine with `factory` in the background, replacing the current one."""
        self._begin(factory)

    def _begin(self, factory: EngineFactory) -> None:
        with self._guard:
            self._factory = factory
            self._started = True
            self._generation += 1
            generation = self._generation
            old, self._engine, self._error = self._engine, None, None
            self._loaded.clear()
        self.state_changed.emit("Loading the Whisper backbone…")
        # In a list that the thread empties: the Thread object keeps its args until it ends.
        retiring = [old] if old is not None else []
        loader = threading.Thread(target=self._load, args=(generation, factory, retiring), name="engine-loader")
        loader.daemon = True
        loader.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    def _load(self, generation: int, factory: EngineFactory, retiring: list["Engine"]) -> None:
        if retiring:
            lock = retiring.pop().lock  # the old engine itself is let go here
            if not lock.acquire(blocking=False):
                self.state_changed.emit("New backbone settings: waiting for the running transcription to finish…")
                lock.acquire()
                if self._current(generation):
                    self.state_changed.emit("Loading the Whisper backbone…")
            lock.release()  # nothing runs on the old engine now; new work waits for the new one
        with self._one_load:
            if not self._current(generation):
                return
            engine, error = None, None
            try:
                engine = factory()
            except LoraWhisperError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure must reach the window, not kill a thread silently
                error = f"the backbone could not be loaded: {type(exc).__name__}: {exc}"
            with self._guard:
                if not self._current(generation):
                    return
                self._engine, self._error = engine, error
                self._loaded.set()
        if engine is not None:
            backbone = engine.backbone
            self.state_changed.emit(f"Ready: {backbone.files.name} on {backbone.device.type}, {backbone.compute.name}")
            self.ready.emit()
        else:
            self.state_changed.emit(f"Backbone failed to load: {error}")
            self.failed.emit(error or "unknown error")

    def wait(self, timeout: float | None = None) -> "Engine":
        """Block until loaded (worker threads only) and return the engine."""
        self.start()
        self._loaded.wait(timeout)
        engine = self._engine
        if engine is None:
            raise LoraWhisperError(self._error or "the backbone is still loading")
        return engine

    def wait_unless_cancelled(self, cancel: threading.Event, poll_s: float = 0.2) -> "Engine | None":
        """Like `wait`, in short steps so that setting `cancel` ends the wait (None);
        raises when the backbone failed to load."""
        while not cancel.is_set():
            try:
                return self.wait(poll_s)
            except LoraWhisperError:
                if self._error is not None:
                    raise
        return None
