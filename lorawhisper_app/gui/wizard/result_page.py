"""Page 6: what the new adapter does. Dev WER without and with it on the held-back part of
the user's data, a few of those clips transcribed both ways side by side (on the app's
engine, in the background), and the adapter's name; Finish leaves it installed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from lorawhisper_app.core.adapter_store import AdapterInfo, AdapterStore
from lorawhisper_app.core.errors import Cancelled, LoraWhisperError
from lorawhisper_app.core.evaluation import ClipComparison, compare_with_bare
from lorawhisper_app.core.training.datasets import ListedClip
from lorawhisper_app.core.training.run_registry import DEV_CLIPS
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.comparison_table import ComparisonTable
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.wizard.state import adapter_name_problem
from lorawhisper_app.gui.wizard.training_page import CLOSE_TEXT, TrainingOutcome, TrainingPage

SAMPLE_CLIPS = 3


def dev_clips(run_dir: Path) -> list[dict[str, object]]:
    """The dev clips the run scored, as the trainer listed them."""
    path = run_dir / DEV_CLIPS
    try:
        clips = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LoraWhisperError(f"{path}: cannot read the run's dev clips ({error})") from None
    if not isinstance(clips, list):
        raise LoraWhisperError(f"{path}: not a list of dev clips")
    return clips


def transcribe_samples(
    holder: EngineHolder, adapter: str, run_dir: Path, progress: Callable[[int, int], None], cancel: threading.Event
) -> list[ClipComparison]:
    """The shortest few dev clips, transcribed by the bare backbone and with `adapter`,
    both with the adapter's language token."""
    listed = sorted(dev_clips(run_dir), key=lambda c: float(c.get("duration", 0.0)))[:SAMPLE_CLIPS]
    rows = [ListedClip(Path(str(c["audio"])), "", str(c["text"]), str(c.get("id", ""))) for c in listed]
    engine = holder.wait_unless_cancelled(cancel)
    if engine is None:
        raise Cancelled
    return compare_with_bare(engine, rows, adapter, progress, cancel).clips


def rename_adapter(store: AdapterStore, old: str, new: str) -> AdapterInfo:
    """Install adapter `old` again as `new`, then remove `old`: a failure leaves `old` in place."""
    info = store.get(old)
    renamed = store.import_(info.path, info.meta.base_model.fingerprint, name=new)
    store.remove(old)
    return renamed


class ResultPage(QWizardPage):
    """`adapter_ready(name)` fires when Finish leaves the adapter installed under its name."""

    adapter_ready = Signal(str)

    def __init__(self, store: AdapterStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.outcome: TrainingOutcome | None = None
        self.adapter_name = ""  # its name in the store now
        self.samples: list[ClipComparison] = []
        self._task: BackgroundTask | None = None
        self._rename: BackgroundTask | None = None
        self._taken: set[str] = set()
        self.setObjectName("resultPage")
        self.setTitle("Result")
        self.setSubTitle("How the new adapter does on the part of your data held back from training.")
        self.setFinalPage(True)
        # The adapter is installed before this page shows: leaving without Finish keeps it.
        self.setButtonText(QWizard.WizardButton.CancelButton, CLOSE_TEXT)

        self.wer_label = QLabel(objectName="resultWer")
        self.wer_label.setTextFormat(Qt.TextFormat.RichText)
        self.wer_label.setWordWrap(True)
        self.samples_status = QLabel(objectName="samplesStatus")
        self.samples_status.setWordWrap(True)
        self.table = ComparisonTable()
        self.table.setObjectName("sampleTable")
        self.name_edit = QLineEdit(objectName="resultName")
        self.name_edit.textChanged.connect(self._name_changed)
        self.name_problem = QLabel(objectName="resultNameProblem")
        self.name_problem.setStyleSheet("color: #b3261e;")
        self.name_problem.setWordWrap(True)
        self.ready_label = QLabel(objectName="resultReady")
        self.ready_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Adapter &name:", self.name_edit)
        form.addRow("", self.name_problem)
        layout = QVBoxLayout(self)
        layout.addWidget(self.wer_label)
        layout.addWidget(self.samples_status)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addWidget(self.ready_label)

    def _training_page(self) -> TrainingPage:
        wizard = self.wizard()
        return next(page for i in wizard.pageIds() if isinstance(page := wizard.page(i), TrainingPage))

    def initializePage(self) -> None:
        outcome = self._training_page().outcome
        if outcome is None or outcome == self.outcome:
            return
        self.outcome, self.adapter_name = outcome, outcome.adapter
        self._taken = set()
        before, after = outcome.dev_wer_before, outcome.dev_wer_after
        change = (before - after) / before * 100 if before else 0.0
        trend = f"{change:.0f} % fewer errors" if change >= 0 else f"{-change:.0f} % more errors"
        self.wer_label.setText(
            f"Word error rate on your held-back clips: <b>{before * 100:.1f} %</b> without the adapter, "
            f"<b>{after * 100:.1f} %</b> with it ({trend})."
        )
        self.name_edit.setText(outcome.adapter)
        self.ready_label.setText(
            f"The adapter is installed for {outcome.language_name} ({outcome.language}) and appears in the "
            "Adapters tab; files in that language are routed to it."
        )
        self.table.setRowCount(0)
        self.samples = []
        self.samples_status.setText(f"Transcribing {SAMPLE_CLIPS} held-back clips without and with the adapter…")
        holder: EngineHolder = self.wizard().state.holder
        name, run_dir = outcome.adapter, outcome.run_dir

        def work(progress: Callable[[int, int], None], cancel: threading.Event) -> tuple[list[ClipComparison], set[str]]:
            taken = {info.name for info in self.store.list()}
            return transcribe_samples(holder, name, run_dir, progress, cancel), taken

        if self._task is not None:
            self._task.discard()
        self._task = BackgroundTask(work, "result-samples", self)
        self._task.progress.connect(lambda done, total: self.samples_status.setText(
            f"Transcribing held-back clips without and with the adapter… {done} of {total}"))
        self._task.done.connect(self._show_samples)
        self._task.failed.connect(lambda reason: self.samples_status.setText(f"No samples: {reason}"))
        self._task.start()

    def _show_samples(self, result: tuple[list[ClipComparison], set[str]]) -> None:
        self.samples, self._taken = result
        self.table.show_clips(self.samples)
        self.samples_status.setText(f"{len(self.samples)} held-back clips, transcribed without and with the adapter:")
        self._name_changed()

    def name_problem_text(self) -> str:
        name = self.name_edit.text().strip()
        return adapter_name_problem(name, self._taken - {self.adapter_name})

    def _name_changed(self) -> None:
        self.name_problem.setText(self.name_problem_text())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.outcome is not None and not self.name_problem_text() and self._rename is None

    def validatePage(self) -> bool:
        """Finish: a new name is applied in the background first, then the wizard closes."""
        new = self.name_edit.text().strip()
        if new == self.adapter_name:
            self._training_page().discard_run()
            self.adapter_ready.emit(self.adapter_name)
            return True
        old, store = self.adapter_name, self.store
        self._rename = BackgroundTask(lambda _p, _c: rename_adapter(store, old, new), "rename-adapter", self)
        self._rename.done.connect(self._renamed)
        self._rename.failed.connect(self._rename_failed)
        self._rename.start()
        self.name_problem.setText(f"Renaming {old} to {new}…")
        self.completeChanged.emit()
        return False

    def _renamed(self, info: AdapterInfo) -> None:
        self._rename = None
        self.adapter_name = info.name
        self.wizard().accept()

    def _rename_failed(self, reason: str) -> None:
        self._rename = None
        self._name_changed()
        self.name_problem.setText(f"Could not rename the adapter: {reason}")
