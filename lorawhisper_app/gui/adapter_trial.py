"""Trying an installed adapter on the user's own recordings: each clip transcribed with it and
with the bare backbone, in the background, and the two word error rates side by side."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.adapter_store import AdapterInfo
from lorawhisper_app.core.errors import Cancelled, LoraWhisperError
from lorawhisper_app.core.evaluation import Clips, Comparison, compare_with_bare, read_clips
from lorawhisper_app.core.training.datasets import clip_count
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.comparison_table import ComparisonTable
from lorawhisper_app.gui.engine_holder import EngineHolder

TABLE_FILTER = "Clips with transcripts (*.jsonl *.csv *.tsv)"


def comparison_text(comparison: Comparison, clips: Clips, source: Path) -> str:
    """e.g. "sw on 12 clips of talks: 35.7 % of words wrong with it, 95.5 % without (63 % fewer errors)"."""
    after, before = comparison.with_adapter.words.rate, comparison.without.words.rate
    where = f"{source.name} ({clips.part})" if clips.part else source.name
    text = (f"{comparison.adapter} on {clip_count(comparison.with_adapter.clips)} of {where}: "
            f"{after * 100:.1f} % of words wrong with it, {before * 100:.1f} % without")
    fewer = comparison.fewer_errors
    if fewer is not None:
        text += f" ({fewer * 100:.0f} % fewer errors)" if fewer >= 0 else f" ({-fewer * 100:.0f} % more errors)"
    skipped = clips.left_out + comparison.unreadable
    if skipped:
        more = f", and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        text += f". Left out: {skipped[0]}{more}"
    return text


class TrialResults(QDialog):
    """A finished trial clip by clip: where the adapter helped and where it did not."""

    def __init__(self, summary: str, comparison: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="adapterTrialResults")
        self.setWindowTitle(f"{comparison.adapter}: with and without it")
        self.resize(900, 520)
        self.summary = QLabel(summary, wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = ComparisonTable()
        self.table.show_clips(comparison.clips)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)


class AdapterTrial(QWidget):
    """A "Try on Recordings…" button; while a trial runs, its progress and a Cancel button.
    `report(text, kind)` gives the outcome ("info" or "error") for the tab's message bar; the
    clips of a finished trial open in a `TrialResults` window."""

    report = Signal(str, str)

    def __init__(self, holder: EngineHolder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.holder = holder
        self.adapter: AdapterInfo | None = None
        self.task: BackgroundTask | None = None
        self.results: TrialResults | None = None  # the last finished trial's window
        self.button = QPushButton("Try on Recordings…", objectName="adapterTry")
        menu = QMenu(self.button)
        self.folder_action = QAction("Folder of recordings…", self)
        self.table_action = QAction("Manifest or table…", self)
        self.folder_action.triggered.connect(lambda: self._choose(folder=True))
        self.table_action.triggered.connect(lambda: self._choose(folder=False))
        menu.addAction(self.folder_action)
        menu.addAction(self.table_action)
        self.button.setMenu(menu)
        self.progress = QProgressBar(objectName="adapterTryProgress", visible=False)
        self.progress.setFormat("%v of %m clips")
        self.cancel_button = QPushButton("Cancel", objectName="adapterTryCancel", visible=False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        self.set_adapter(None, False)

    def set_adapter(self, info: AdapterInfo | None, usable: bool) -> None:
        """The selected adapter; `usable`: made for the backbone in use."""
        self.adapter = info if usable else None
        self._show_state()
        if info is not None and not usable:
            self.button.setToolTip("This adapter was made for another backbone: it cannot run on this one")
        else:
            self.button.setToolTip(
                "Transcribe your own recordings (a folder of audio files with same-name .txt transcripts, "
                "or a manifest or table) with the selected adapter and without it, and compare the word error rates"
            )

    def _choose(self, folder: bool) -> None:
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, "Recordings with their transcripts")
        else:
            chosen = QFileDialog.getOpenFileName(self, "Clips with their transcripts", "", TABLE_FILTER)[0]
        if chosen:
            self.run(Path(chosen))

    def run(self, source: Path) -> None:
        """Try the selected adapter on the clips at `source` (any layout `lorawhisper train` reads)."""
        if self.adapter is None or self.task is not None:
            return
        name, language, holder = self.adapter.name, self.adapter.meta.language, self.holder

        def work(progress: Callable[[int, int], None], cancel: threading.Event) -> tuple[Comparison, Clips]:
            clips = read_clips(source, language)
            # A manifest of several languages: only this adapter's clips.
            rows = [row for row in clips.rows if row.language == language]
            if not rows:
                left_out = clips.left_out
                reason = f" ({left_out[0]}{', and more' if len(left_out) > 1 else ''})" if left_out else ""
                among = f" in {language}" if clips.rows else ""
                raise LoraWhisperError(f"{source}: no clips with transcripts{among} to try {name} on{reason}")
            progress(0, len(rows))
            engine = holder.wait_unless_cancelled(cancel)  # the backbone may still be loading
            if engine is None:
                raise Cancelled
            return compare_with_bare(engine, rows, name, progress, cancel), clips

        self.task = BackgroundTask(work, "adapter-trial", self)
        self.task.progress.connect(self._progress)
        self.task.done.connect(lambda result: self._done(*result, source))
        self.task.failed.connect(lambda message: self._finished(message, "error"))
        self.task.cancelled.connect(lambda: self._finished(f"Trying {name} on {source.name} was cancelled.", "info"))
        self.progress.setRange(0, 0)  # busy until the clips are listed
        self._show_state()
        self.task.start()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop a trial and wait for it (the window is closing)."""
        if self.task is not None:
            self.task.discard()
            self.task.wait(timeout_s)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _done(self, comparison: Comparison, clips: Clips, source: Path) -> None:
        text = comparison_text(comparison, clips, source)
        if self.results is not None:  # one trial's window at a time
            self.results.close()
            self.results.deleteLater()
            self.results = None
        if comparison.clips:
            self.results = TrialResults(text, comparison, self.window())
            self.results.show()
        self._finished(text, "info")

    def _finished(self, text: str, kind: str) -> None:
        self.task = None
        self._show_state()
        self.report.emit(text, kind)

    def _show_state(self) -> None:
        """The button, progress and Cancel as the adapter and the trial under way (if any) have them."""
        running = self.task is not None
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.button.setEnabled(not running and self.adapter is not None)
