"""Page 3: how close the new recordings sound to each language that has an adapter; the
warm-start source and LoRA MoE."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.languages import is_whisper_language, language_name
from lorawhisper_app.core.training.config import DEFAULT_TARGETS, WARM_FIT, WARM_NONE, start_problem
from lorawhisper_app.core.training.datasets import DatasetReport, pcm16
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.bar_chart import Bar, BarChart
from lorawhisper_app.gui.lid_chart import percent
from lorawhisper_app.gui.wizard.state import Similarity, WizardState

if TYPE_CHECKING:
    from lorawhisper_app.core.training.similarity import Neighbour

WARM_NOTE = (
    "Measured on this project's data (docs/experiments.md): over a full training budget a start copied from "
    "the most similar adapter ended worse than a fresh one (Kinyarwanda on 90 minutes: 0.56 against 0.49 "
    "word error rate), and mixing in the neighbours (MoE) was no better, so the trainer starts fresh by default. "
    "For a short run (each clip seen up to 5.7 times), Best fit did better than fresh with every seed tried: "
    "Kinyarwanda on 10 minutes 0.80, 0.81 and 0.82 against 0.85, 0.86 and 0.86 (15 steps) and 0.78 and 0.79 "
    "against 0.85 and 0.85 (20 steps), on 90 minutes 0.82, "
    "0.81 and 0.80 against 0.85, 0.86 and 0.83 (15 steps) and 0.66 and 0.63 against 0.69 and 0.70 (45 steps); "
    "Luganda on 10 minutes 0.90, 0.91 and 0.92 against 0.99, 0.95 and 0.96 (15 steps). Those starts were a related "
    "language's adapter; with only unrelated ones installed, a copy did no better or far worse, so Best fit then starts fresh."
)
_MIX_BATCH = 4  # clips per LID pass: small enough for steady progress and a quick cancel


class SimilarityChart(BarChart):
    """One bar per language with an adapter, most similar first; the suggested one in the accent colour."""

    ROW_PADDING = 10
    LABEL_SHARE = 0.5
    WIDEST_VALUE = "0.000"
    MIN_WIDTH = 240

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("no installed adapters to compare with", parent)
        self.setObjectName("similarityChart")
        self._bars: list[tuple[str, str, float]] = []  # language, adapter, similarity
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_bars(self, bars: list[tuple[str, str, float]], highlight: str | None) -> None:
        self._bars = list(bars)
        self.set_rows(
            [Bar(self._label(code, adapter), value, f"{value:.3f}", code == highlight) for code, adapter, value in bars],
            "; ".join(f"{language_name(code)} {value:.2f}" for code, _, value in bars),
        )

    def bars(self) -> list[tuple[str, str, float]]:
        return list(self._bars)

    def sizeHint(self) -> QSize:
        return QSize(420, max(3, len(self._bars)) * self.row_height() + 8)

    @staticmethod
    def _label(code: str, adapter: str) -> str:
        named = f"{code} {language_name(code)}"
        return named if adapter == code else f"{named} ({adapter})"


class SimilarityPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.task: BackgroundTask | None = None
        self.key: tuple[int, str] | None = None
        self.error: str | None = None
        self.setTitle("Similarity")
        self.setSubTitle(
            "How close your recordings sound to each language that has an adapter: Whisper's language "
            "identification (adapters off) on a sample of your clips, compared with each adapter's own."
        )
        self.progress = QProgressBar(objectName="similarityProgress")
        self.progress.setFormat("%v of %m clips")
        self.status = QLabel(objectName="similarityStatus", wordWrap=True)
        self.chart = SimilarityChart()
        self.heard = QLabel(objectName="similarityHeard", wordWrap=True)
        self.warm_box = QComboBox(objectName="warmStart")
        self.warm_box.setToolTip("Start the new adapter from a copy of another language's adapter, or fresh")
        self.moe_check = QCheckBox("Train beside the adapters of the most similar languages (LoRA MoE)", objectName="moe")
        self.moe_k = QSpinBox(objectName="moeK", minimum=1, maximum=1, value=2, prefix="K = ")
        self.moe_k.setToolTip("How many of the most similar languages' adapters stay active, frozen, weighted by similarity")
        self.moe_k.setEnabled(False)
        note = QLabel(WARM_NOTE, objectName="warmNote", wordWrap=True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        moe_row = QHBoxLayout()
        moe_row.addWidget(self.moe_check)
        moe_row.addWidget(self.moe_k)
        moe_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Warm start:", self.warm_box)
        form.addRow("", moe_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.chart)
        layout.addWidget(self.heard)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addStretch(1)
        self.moe_check.toggled.connect(self.moe_k.setEnabled)
        self._show(None)

    # -- measuring -----------------------------------------------------------------

    def initializePage(self) -> None:
        report, language = self.state.report, self.state.plan.language
        if report is None:
            return
        key = (id(report), language)
        if key == self.key and (self.state.similarity is not None or self.task is not None):
            return
        self.key, self.error, self.state.similarity = key, None, None
        self._show(None)
        if self.task is not None:
            self.task.discard()
        self.status.setText("Waiting for the Whisper backbone…" if self.state.holder.engine is None else "Listening to a sample of your clips…")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        task = self.task = BackgroundTask(
            lambda progress, cancel: self._measure(report, language, progress, cancel), "wizard-similarity", self,
        )
        task.progress.connect(self._progress)
        task.done.connect(lambda result: self._measured(task, result))
        task.failed.connect(lambda message: self._failed(task, message))
        task.start()
        self.completeChanged.emit()

    def _measure(
        self, report: DatasetReport, language: str, progress: Callable[[int, int], None], cancel: threading.Event,
    ) -> Similarity:
        from lorawhisper_app.core.audio import load_audio
        from lorawhisper_app.core.features import N_SAMPLES
        from lorawhisper_app.core.training.estimate import training_device
        from lorawhisper_app.core.training.similarity import lid_sample, mean_lid, rank_neighbours

        engine = self.state.holder.wait_unless_cancelled(cancel)  # the backbone may still be loading
        if engine is None:
            raise LoraWhisperError("cancelled")
        by_id = {clip.id: clip for clip in report.train}
        sample = [by_id[cid] for cid in lid_sample(list(by_id))]
        totals: dict[str, float] = {}
        for start in range(0, len(sample), _MIX_BATCH):
            progress(start, len(sample))
            if cancel.is_set():
                raise LoraWhisperError("cancelled")
            batch = [load_audio(clip.audio)[:N_SAMPLES] for clip in sample[start : start + _MIX_BATCH]]
            pcm = [pcm16(a) for a in batch]
            with engine.lock:
                engine.use_adapters({})
                mean = mean_lid(engine.decoder, pcm)
            for code, p in mean.items():
                totals[code] = totals.get(code, 0.0) + p * len(batch)
        progress(len(sample), len(sample))
        lid = dict(sorted(((c, p / len(sample)) for c, p in totals.items()), key=lambda kv: -kv[1]))
        compatible = [i for i in self.state.store.list() if i.compatible_with(engine.fingerprint)]
        neighbours = rank_neighbours(lid, compatible, exclude=language)
        decode_token = language if is_whisper_language(language) else next(iter(lid))
        return Similarity(lid, neighbours, decode_token, training_device(self.state.plan.device))

    def _progress(self, done: int, total: int) -> None:
        self.status.setText("Listening to a sample of your clips…")
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _measured(self, task: BackgroundTask, result: Similarity) -> None:
        if task is not self.task:
            return
        self.task = None
        self.state.similarity = result
        self._show(result)
        self.completeChanged.emit()

    def _failed(self, task: BackgroundTask, message: str) -> None:
        if task is not self.task:
            return
        self.task, self.error = None, message
        self._show(None)
        self.status.setText(
            f"Could not measure the similarity: {message}. You can go on: training starts fresh "
            "and measures it again."
        )
        self.status.setStyleSheet("color: #b00020;")
        self.completeChanged.emit()

    # -- showing and choosing ------------------------------------------------------

    def _show(self, result: Similarity | None) -> None:
        self.progress.setVisible(result is None and self.task is not None)
        self.status.setStyleSheet("")
        self.warm_box.clear()
        self.warm_box.addItem("None: start fresh (the trainer's default)", WARM_NONE)
        if result is None:
            self.chart.set_bars([], None)
            self.heard.setText("")
            self.status.setText("")
            self.moe_check.setChecked(False)
            self.moe_check.setEnabled(False)
            return
        neighbours = result.neighbours
        best = neighbours[0] if neighbours else None
        self.chart.set_bars([(n.language, n.adapter, n.similarity) for n in neighbours], best.language if best else None)
        for n in neighbours:
            self._add_source(n, suggested=n is best)
        if neighbours:
            self.warm_box.addItem("Best fit: the adapter that already fits your recordings best, or fresh if none fits closely (scored as training starts)", WARM_FIT)
        top = ", ".join(f"{language_name(code)} {percent(p)}" for code, p in list(result.lid.items())[:4])
        token = f"<|{result.decode_token}|>"
        self.heard.setText(f"Whisper hears your recordings as: {top}. The adapter decodes with {token}.")
        self.status.setText(
            f"Most similar: {language_name(best.language)} ({best.similarity:.3f})." if best
            else "No installed adapter fits this backbone: nothing to compare with."
        )
        self.moe_check.setEnabled(bool(neighbours))
        self.moe_k.setMaximum(max(1, len(neighbours)))
        self.moe_k.setValue(min(2, len(neighbours)) or 1)

    def _add_source(self, n: Neighbour, suggested: bool) -> None:
        """One adapter to start from; one of other targets than the wizard trains is listed, greyed, with why."""
        text = f"{language_name(n.language)} ({n.adapter}), similarity {n.similarity:.3f}"
        # The settings page follows the source's rank; only the targets can rule it out.
        problem = start_problem(n.adapter, n.lora, n.lora.rank, DEFAULT_TARGETS)
        if problem is not None:
            text += f": cannot start from it, {problem}"
        elif suggested:
            text += " (most similar: suggested to try)"
        self.warm_box.addItem(text, n.language)
        if problem is not None:
            item = self.warm_box.model().item(self.warm_box.count() - 1)
            item.setEnabled(False)

    def show_start(self, start: str) -> None:
        """Select the plan's start in the list, where it is there (it is not before the first measurement)."""
        index = self.warm_box.findData(start)
        if index >= 0:
            self.warm_box.setCurrentIndex(index)

    def isComplete(self) -> bool:
        return self.task is None and (self.state.similarity is not None or self.error is not None)

    def validatePage(self) -> bool:
        if not self.isComplete():
            return False
        plan = self.state.plan
        plan.warm_start = self.warm_box.currentData() or WARM_NONE
        plan.moe = self.moe_k.value() if self.moe_check.isChecked() else 0
        return True

    def cleanupPage(self) -> None:
        if self.task is not None:
            self.task.discard()
            self.task, self.key = None, None
