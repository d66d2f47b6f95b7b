"""The Live tab: pick a microphone, watch the level, read the words as they are spoken."""

from __future__ import annotations

import html
import math
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.languages import whisper_languages
from lorawhisper_app.core.routing import RoutingOptions
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.message_bar import MessageBar

METER_FLOOR_DB = -60.0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _badge(event) -> str:  # noqa: ANN001 - LiveEvent
    """e.g. "sw 93 % → sw": detected language, its probability, the adapter used."""
    language = event.language or "?"
    prob = f" {event.probability * 100:.0f} %" if event.probability is not None else ""
    return f"{language}{prob} → {event.adapter or 'no adapter'}"


class LivePanel(QWidget):
    saved = Signal(dict)  # what a save wrote ({"audio": path, "transcript": path}); {} when it failed

    def __init__(self, holder: EngineHolder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.holder = holder
        self.worker = None
        self.saving: BackgroundTask | None = None
        self.finals: list = []
        self.partial = None
        self.auto_threshold = RoutingOptions().threshold  # the Settings' value, see set_routing_defaults

        self.device_box = QComboBox(objectName="liveDevice", toolTip="The microphone to record from")
        self.language_box = QComboBox(objectName="liveLanguage", toolTip="Auto detects the language of each utterance")
        self.language_box.addItem("Auto (each utterance)", "auto")
        for code, name in whisper_languages().items():
            self.language_box.addItem(f"{name} ({code})", code)
        self.start_button = QPushButton("&Start", objectName="liveStart", toolTip="Start listening (Ctrl+R)")
        self.start_button.setShortcut("Ctrl+R")
        self.pause_button = QPushButton("&Pause", objectName="livePause", checkable=True, enabled=False)
        self.pause_button.setToolTip("Pause recording; the utterance in progress is kept")
        self.stop_button = QPushButton("S&top", objectName="liveStop", enabled=False)
        self.stop_button.setToolTip("Stop recording after the last utterance is transcribed")
        self.meter = QProgressBar(objectName="liveLevel", minimum=0, maximum=100, textVisible=False)
        self.meter.setToolTip("Input level")
        self.meter.setFixedWidth(140)
        self.state = QLabel("Idle", objectName="liveState")
        self.message_bar = MessageBar("live")
        self.transcript = QTextBrowser(objectName="liveTranscript")
        self.transcript.setPlaceholderText("Press Start and speak: words appear here as you talk.")
        self.save_button = QPushButton("Save session…", objectName="liveSave", enabled=False)
        self.save_button.setToolTip("Save the recording (FLAC) and its transcript to a folder")
        self.export_button = QPushButton("Export transcript…", objectName="liveExport", enabled=False)
        self.export_button.setToolTip("Write the transcript as TXT, SRT, VTT or JSON")

        controls = QHBoxLayout()
        for widget in (QLabel("Microphone:"), self.device_box, QLabel("Language:"), self.language_box):
            controls.addWidget(widget)
        controls.addStretch(1)
        buttons = QHBoxLayout()
        for widget in (self.start_button, self.pause_button, self.stop_button, QLabel("Level:"), self.meter, self.state):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(buttons)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.transcript, 1)

        self.start_button.clicked.connect(self.start)
        self.pause_button.toggled.connect(self._pause)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self._save_dialog)
        self.export_button.clicked.connect(self._export_dialog)
        self.refresh_devices()

    def set_routing_defaults(self, threshold: float) -> None:
        """The Settings' auto-routing threshold, used from the next Start."""
        self.auto_threshold = threshold

    def refresh_devices(self) -> None:
        self.device_box.clear()
        try:
            from lorawhisper_app.core.capture import list_input_devices

            devices = list_input_devices()
        except (OSError, RuntimeError) as exc:  # PortAudio missing or broken
            devices = []
            self.state.setText(f"No audio input: {exc}")
        for device in devices:
            label = f"{device.name}{' (default)' if device.is_default else ''}"
            self.device_box.addItem(label, device.index)
        if not devices:
            self.device_box.addItem("No input device found", None)
        self.start_button.setEnabled(bool(devices))

    # -- running --------------------------------------------------------------------

    @Slot()
    def start(self) -> None:
        from lorawhisper_app.gui.live_worker import LiveWorker

        self.finals, self.partial = [], None
        self.message_bar.hide()
        self._render()
        self.worker = LiveWorker(
            self.holder, self.device_box.currentData(), self.language_box.currentData(), self.auto_threshold
        )
        self.worker.event.connect(self._on_event)
        self.worker.meter.connect(self._on_meter)
        self.worker.status.connect(self.state.setText)
        self.worker.failed.connect(self._on_failed)
        self.worker.warning.connect(self.message_bar.show_message)
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.worker.start()

    @Slot()
    def stop(self) -> None:
        if self.worker is not None:
            self.state.setText("Finishing the last utterance…")
            self.worker.stop()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop recording and wait for the worker and a save in progress (the window is closing)."""
        if self.worker is not None and self.worker.isRunning():
            self.worker.stop()
            self.worker.wait(timeout_ms)
        if self.saving is not None:
            self.saving.wait(timeout_ms / 1000)

    def _pause(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)

    def _set_running(self, running: bool) -> None:
        busy = running or self.saving is not None  # a save moves the recording: nothing starts meanwhile
        self.start_button.setEnabled(not busy)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.device_box.setEnabled(not busy)
        self.language_box.setEnabled(not busy)
        has_session = not busy and bool(self.finals)
        self.save_button.setEnabled(has_session)
        self.export_button.setEnabled(has_session)

    @Slot(object)
    def _on_event(self, event) -> None:  # noqa: ANN001 - LiveEvent
        if event.kind == "final":
            self.finals.append(event)
            self.partial = None
        else:
            self.partial = event
        self._render()

    @Slot(float, float, int)
    def _on_meter(self, level_db: float, backlog: float, overflows: int) -> None:
        level = 0.0 if math.isinf(level_db) else min(1.0, max(0.0, 1 - level_db / METER_FLOOR_DB))
        self.meter.setValue(int(level * 100))
        notes = []
        if backlog > 1.0:
            notes.append(f"behind by {backlog:.1f} s")
        if overflows:
            notes.append(f"{overflows} input overflow(s)")
        if self.state.text().startswith("Listening"):
            self.state.setText("Listening" + (f" ({', '.join(notes)})" if notes else ""))

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Live transcription stopped", message)

    @Slot()
    def _on_finished(self) -> None:
        self.pause_button.setChecked(False)
        self._set_running(False)

    def _render(self) -> None:
        rows = [
            f'<p><span style="color:#666">{_clock(e.start)}</span> '
            f'<span style="background:#e3ecff;color:#1b3a8a">&nbsp;{html.escape(_badge(e))}&nbsp;</span> '
            f"{html.escape(e.text)}</p>"
            for e in self.finals
        ]
        if self.partial is not None and self.partial.text:
            rows.append(f'<p style="color:#888"><i>{html.escape(self.partial.text)} …</i></p>')
        self.transcript.setHtml("".join(rows))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    # -- keeping it ------------------------------------------------------------------

    def _save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the live session to a folder")
        if folder:
            self.save(Path(folder))

    def save(self, folder: Path, fmt: str = "json") -> None:
        """The session's audio and transcript into `folder`, off the GUI thread (moving a long
        recording across file systems copies it); `saved` tells when it is done."""
        session = self.worker.session  # type: ignore[union-attr]
        self.saving = BackgroundTask(lambda _progress, _cancel: session.save(folder, fmt), "live-save", self)
        self.saving.done.connect(lambda paths: self._saved(folder, paths))
        self.saving.failed.connect(self._save_failed)
        self.state.setText(f"Saving to {folder}…")
        self._set_running(False)
        self.saving.start()

    def _saved(self, folder: Path, paths: dict[str, Path]) -> None:
        self.saving = None
        self._set_running(False)
        self.state.setText(f"Saved to {folder}" + ("" if "audio" in paths else " (the transcript only)"))
        self.saved.emit(paths)

    def _save_failed(self, message: str) -> None:
        self.saving = None
        self._set_running(False)
        self.state.setText("Not saved")
        self.message_bar.show_message(message, "error")
        self.saved.emit({})

    def _export_dialog(self) -> None:
        from lorawhisper_app.core.writers import WRITERS, render, write_atomic

        filters = ";;".join(f"{fmt.upper()} (*.{fmt})" for fmt in WRITERS)
        path, chosen = QFileDialog.getSaveFileName(self, "Export the transcript", "live.txt", filters)
        if not path:
            return
        fmt = chosen.split()[0].lower()
        result = self.worker.session.result()  # type: ignore[union-attr]
        try:
            write_atomic(Path(path).with_suffix(f".{fmt}"), render(result, fmt))
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"{path}: {exc.strerror or exc}")
