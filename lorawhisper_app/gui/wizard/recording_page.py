"""Recording training data in the app: one sentence at a time, with a level meter, replay,
re-record and skip, into a folder of audio and transcript pairs the data page then checks."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.capture import AudioCapture, list_input_devices
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.training.datasets import MAX_CLIP_SECONDS
from lorawhisper_app.core.training.recording_session import QUIET_DB, RecordingSession, peak_db

METER_FLOOR_DB = -60.0
TAKE_LIMIT_S = MAX_CLIP_SECONDS - 0.5  # stop a take before the trainer would leave it out
_POLL_S = 0.05


class Recorder(QObject):
    """Records one take of sentence `index` on its own thread and saves it into the session."""

    level = Signal(float, float)  # dBFS of the latest block, seconds recorded
    saved = Signal(int, float, float)  # sentence index, seconds, peak dBFS
    failed = Signal(str)

    def __init__(self, session: RecordingSession, index: int, device: str | int | None) -> None:
        super().__init__()
        self.session, self.index, self.device = session, index, device
        self.hit_limit = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wizard-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def finish(self, timeout: float = 2.0) -> None:
        """Stop and wait for the take to be saved (a block's time plus writing it)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        pieces: list[np.ndarray] = []
        samples = 0
        try:
            with AudioCapture(self.device) as capture:
                while not self._stop.is_set() and samples < TAKE_LIMIT_S * 16000:
                    block = capture.read(timeout=_POLL_S)
                    if block is not None:
                        pieces.append(block)
                        samples += len(block)
                    self.level.emit(capture.level_db, samples / 16000)
                    if not capture.running:
                        raise LoraWhisperError(f"{capture.device.describe() if capture.device else 'the microphone'}: stopped delivering audio")
                self.hit_limit = samples >= TAKE_LIMIT_S * 16000
                capture.stop()
                pieces.append(capture.read_available())
            audio = np.concatenate(pieces)[: int(TAKE_LIMIT_S * 16000)]
            self.session.save(self.index, audio)
        except LoraWhisperError as exc:
            self.failed.emit(str(exc))
            return
        self.saved.emit(self.index, len(audio) / 16000, peak_db(audio))


class RecordingDialog(QDialog):
    """Choose a sentences file, a folder and a microphone; then read the sentences aloud."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record training data")
        self.setObjectName("recordingDialog")
        self.session: RecordingSession | None = None
        self.index = 0
        self.recorder: Recorder | None = None
        self.player = None  # an AudioPlayer, made on the first replay

        self.sentences_edit = QLineEdit(objectName="sentencesFile", placeholderText="a UTF-8 text file, one sentence per line")
        self.folder_edit = QLineEdit(objectName="recordingsFolder", placeholderText="a folder of your own for the recordings")
        self.device_box = QComboBox(objectName="recordingDevice")
        self.open_button = QPushButton("&Open", objectName="openSession")
        sentences_browse = QPushButton("Browse…")
        folder_browse = QPushButton("Browse…")
        setup = QGridLayout()
        setup.addWidget(QLabel("Sentences:"), 0, 0)
        setup.addWidget(self.sentences_edit, 0, 1)
        setup.addWidget(sentences_browse, 0, 2)
        setup.addWidget(QLabel("Save into:"), 1, 0)
        setup.addWidget(self.folder_edit, 1, 1)
        setup.addWidget(folder_browse, 1, 2)
        setup.addWidget(QLabel("Microphone:"), 2, 0)
        setup.addWidget(self.device_box, 2, 1)
        setup.addWidget(self.open_button, 2, 2)

        self.position = QLabel(objectName="recordingPosition")
        self.sentence = QLabel(objectName="sentenceText", wordWrap=True)
        self.sentence.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.sentence.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.sentence.setFont(font)
        self.sentence.setFrameShape(QFrame.Shape.StyledPanel)
        self.sentence.setMinimumHeight(110)
        self.sentence.setMargin(12)
        self.sentence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.meter = QProgressBar(objectName="recordingLevel", minimum=0, maximum=100, textVisible=False)
        self.meter.setToolTip("Input level")
        self.status = QLabel(objectName="recordingStatus", wordWrap=True)
        self.record_button = QPushButton("● &Record", objectName="recordTake")
        self.stop_button = QPushButton("■ S&top", objectName="stopTake")
        self.replay_button = QPushButton("▶ Re&play", objectName="replayTake")
        self.back_button = QPushButton("◀ &Back", objectName="previousSentence")
        self.next_button = QPushButton("&Skip ▶", objectName="nextSentence")
        controls = QHBoxLayout()
        for button in (self.record_button, self.stop_button, self.replay_button):
            controls.addWidget(button)
        controls.addWidget(QLabel("Level:"))
        controls.addWidget(self.meter, 1)
        controls.addWidget(self.back_button)
        controls.addWidget(self.next_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText("&Done")
        buttons.rejected.connect(self.accept)

        layout = QVBoxLayout(self)
        layout.addLayout(setup)
        layout.addSpacing(8)
        layout.addWidget(self.position)
        layout.addWidget(self.sentence, 1)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(720, 380)

        sentences_browse.clicked.connect(self._browse_sentences)
        folder_browse.clicked.connect(self._browse_folder)
        self.open_button.clicked.connect(self.open_session)
        self.record_button.clicked.connect(self.record)
        self.stop_button.clicked.connect(self.stop)
        self.replay_button.clicked.connect(self.replay)
        self.back_button.clicked.connect(lambda: self.show_sentence(self.index - 1))
        self.next_button.clicked.connect(self.next_sentence)
        self.device_box.currentIndexChanged.connect(self._update)
        self._list_devices()
        self._update()

    # -- set-up --------------------------------------------------------------------

    def _list_devices(self) -> None:
        try:
            devices = list_input_devices()
        except LoraWhisperError as exc:
            devices = []
            self.status.setText(f"No audio input: {exc}")
        for device in devices:
            self.device_box.addItem(f"{device.name}{' (default)' if device.is_default else ''}", device.index)
        if not devices:
            self.device_box.addItem("No input device found", None)

    def _browse_sentences(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Sentences to read, one per line", "", "Text (*.txt);;All files (*)")
        if path:
            self.sentences_edit.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the recordings")
        if path:
            self.folder_edit.setText(path)

    def open_session(self) -> None:
        sentences, folder = self.sentences_edit.text().strip(), self.folder_edit.text().strip()
        if not sentences or not folder:
            self._say("Choose the sentences file and the folder to save into.", bad=True)
            return
        try:
            self.session = RecordingSession(Path(sentences).expanduser(), Path(folder).expanduser())
        except LoraWhisperError as exc:
            self.session = None
            self._say(str(exc), bad=True)
            self._update()
            return
        pending = self.session.resume_at()
        done = len(self.session.recorded())
        self._say(f"{done} of {len(self.session)} already recorded in this folder." if done else "")
        self.show_sentence(pending if pending is not None else 0)

    # -- the sentences ---------------------------------------------------------------

    def show_sentence(self, index: int) -> None:
        if self.session is None or not 0 <= index < len(self.session):
            return
        self.index = index
        self._update()

    def next_sentence(self) -> None:
        if self.session is None:
            return
        pending = self.session.next_pending(after=self.index)
        if pending is None:
            self._say("Every sentence is recorded. Press Done to check the data.")
        else:
            self.show_sentence(pending)

    def _update(self) -> None:
        session, busy = self.session, self.recorder is not None
        opened = session is not None
        recorded = opened and session.is_recorded(self.index)
        for widget in (self.sentences_edit, self.folder_edit, self.device_box, self.open_button):
            widget.setEnabled(not busy)
        self.record_button.setEnabled(opened and not busy and self.device_box.currentData() is not None)
        self.record_button.setText("● &Re-record" if recorded else "● &Record")
        self.stop_button.setEnabled(busy)
        self.replay_button.setEnabled(recorded and not busy)
        self.back_button.setEnabled(opened and not busy and self.index > 0)
        self.next_button.setEnabled(opened and not busy)
        self.next_button.setText("&Next ▶" if recorded else "&Skip ▶")
        if session is None:
            self.position.setText("Open a sentences file and a folder to start.")
            self.sentence.setText("")
            return
        count = len(session.recorded())
        self.position.setText(
            f"Sentence {self.index + 1} of {len(session)} · {count} recorded · "
            f"saved as {session.audio_path(self.index).name}{' (recorded)' if recorded else ''}"
        )
        self.sentence.setText(session.sentences[self.index])

    # -- takes -----------------------------------------------------------------------

    def record(self) -> None:
        if self.session is None or self.recorder is not None:
            return
        if self.player is not None:
            self.player.stop()
        self.recorder = Recorder(self.session, self.index, self.device_box.currentData())
        self.recorder.level.connect(self._level)
        self.recorder.saved.connect(self._saved)
        self.recorder.failed.connect(self._failed)
        self._say("Recording… read the sentence, then press Stop.")
        self._update()
        self.recorder.start()

    def stop(self) -> None:
        if self.recorder is not None:
            self._say("Saving…")
            self.recorder.stop()

    def _level(self, level_db: float, seconds: float) -> None:
        level = 0.0 if math.isinf(level_db) else min(1.0, max(0.0, 1 - level_db / METER_FLOOR_DB))
        self.meter.setValue(int(level * 100))
        if self.recorder is not None and not self.recorder.stopping:
            self._say(f"Recording… {seconds:.1f} s (stops by itself at {TAKE_LIMIT_S:g} s)")

    def _saved(self, index: int, seconds: float, peak: float) -> None:
        limit = self.recorder is not None and self.recorder.hit_limit
        self.recorder = None
        self.meter.setValue(0)
        assert self.session is not None
        name = self.session.audio_path(index).name
        if peak < QUIET_DB:
            self._say(
                f"Saved {name} ({seconds:.1f} s), but it is very quiet (peak {peak:.0f} dBFS): "
                "check the microphone and re-record.", bad=True,
            )
        elif limit:
            self._say(f"Saved {name}: stopped at the {TAKE_LIMIT_S:g} s limit; a shorter sentence trains better.", bad=True)
        else:
            self._say(f"Saved {name} ({seconds:.1f} s). Replay it, re-record it, or go on with Next.")
        self._update()

    def _failed(self, message: str) -> None:
        self.recorder = None
        self.meter.setValue(0)
        self._say(f"Not saved: {message}", bad=True)
        self._update()

    def replay(self) -> None:
        if self.session is None or not self.session.is_recorded(self.index):
            return
        from lorawhisper_app.core.playback import AudioPlayer

        if self.player is None:
            self.player = AudioPlayer()
        try:
            self.player.load(self.session.audio_path(self.index))
            self.player.play()
        except LoraWhisperError as exc:
            self._say(f"Cannot play it back: {exc}", bad=True)
            return
        self._say(f"Playing {self.session.audio_path(self.index).name}…")

    def _say(self, text: str, *, bad: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b00020;" if bad else "")

    def done(self, result: int) -> None:
        if self.recorder is not None:
            self.recorder.finish()  # the take is kept: the data page is about to read the folder
        if self.player is not None:
            self.player.close()
        super().done(result)
