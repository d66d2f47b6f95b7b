"""Page 2: the training data, checked clip by clip before anything trains; or recorded here."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.training.datasets import LAYOUT_HELP, DataProblem, DatasetReport, load_dataset, require_enough
from lorawhisper_app.gui.background import BackgroundTask
from lorawhisper_app.gui.wizard.state import WizardState

MANIFEST_FILTER = "Manifests and tables (*.jsonl *.csv *.tsv);;All files (*)"
GOOD_STYLE = "color: #1b6e20;"
BAD_STYLE = "color: #b00020;"


def _shown(path: Path, source: Path) -> str:
    """`path` relative to the data's folder where it lies inside it."""
    base = source if source.is_dir() else source.parent
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


class DataPage(QWizardPage):
    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state
        self.task: BackgroundTask | None = None
        self.report: DatasetReport | None = None
        self.report_key: tuple[str, str, str] | None = None
        self.enough = False
        self.recorder = None  # the recording dialog, while open
        self.setTitle("Data")
        self.setSubTitle(
            "Recordings of the language with their transcripts. Every clip is decoded and checked "
            "before anything trains; clips with problems are left out and listed here."
        )

        self.source_edit = QLineEdit(objectName="dataSource", placeholderText="a folder, or a .jsonl / .csv / .tsv file")
        self.dev_edit = QLineEdit(objectName="devSource", placeholderText="optional: by default a share of the data is held back")
        self.record_button = QPushButton("Record in the app…", objectName="recordButton")
        self.record_button.setToolTip("Read sentences from a text file aloud, one at a time, into a folder of your own")
        self.check_button = QPushButton("&Check the data", objectName="checkButton")
        self.cancel_button = QPushButton("Cancel", objectName="cancelCheck", enabled=False)
        self.progress = QProgressBar(objectName="checkProgress", textVisible=True)
        self.progress.setFormat("%v of %m clips")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        help_text = QLabel("Accepted: " + LAYOUT_HELP.removeprefix("expected ") + ".", wordWrap=True, objectName="layoutHelp")
        help_text.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.summary = QLabel(objectName="dataSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict = QLabel(objectName="dataVerdict", wordWrap=True)
        self.problems = QTreeWidget(objectName="dataProblems")
        self.problems.setHeaderLabels(["Problem", "File", "What is wrong"])
        self.problems.setRootIsDecorated(True)
        self.problems.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.problems.header().setStretchLastSection(True)
        self.problems.setVisible(False)

        grid = QGridLayout()
        for row, (label, edit, title) in enumerate((
            ("Data:", self.source_edit, "Choose the training data"),
            ("Dev set:", self.dev_edit, "Choose a separate dev set"),
        )):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            folder = QPushButton("Folder…", objectName=f"{edit.objectName()}Folder")
            folder.clicked.connect(lambda _=False, e=edit, t=title: self._browse(e, t, folder=True))
            file = QPushButton("File…", objectName=f"{edit.objectName()}File")
            file.clicked.connect(lambda _=False, e=edit, t=title: self._browse(e, t, folder=False))
            grid.addWidget(folder, row, 2)
            grid.addWidget(file, row, 3)
        grid.addWidget(self.record_button, 0, 4)
        actions = QHBoxLayout()
        actions.addWidget(self.check_button)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(help_text)
        layout.addLayout(actions)
        layout.addWidget(self.summary)
        layout.addWidget(self.verdict)
        layout.addWidget(self.problems, 10)
        layout.addStretch(1)  # takes the room while there is no problem list

        self.check_button.clicked.connect(self.check)
        self.cancel_button.clicked.connect(self.cancel)
        self.record_button.clicked.connect(self.open_recorder)
        self.source_edit.returnPressed.connect(self.check)
        self.dev_edit.returnPressed.connect(self.check)
        self.source_edit.textChanged.connect(self._inputs_changed)
        self.dev_edit.textChanged.connect(self._inputs_changed)

    # -- choosing ------------------------------------------------------------------

    def _browse(self, edit: QLineEdit, title: str, *, folder: bool) -> None:
        start = edit.text() or str(Path.home())
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, title, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, title, start, MANIFEST_FILTER)
        if chosen:
            edit.setText(chosen)
            self.check()

    def set_source(self, source: Path | str, dev: Path | str | None = None) -> None:
        """Choose the data (and dev set) and check it at once."""
        self.source_edit.setText(str(source))
        self.dev_edit.setText(str(dev) if dev else "")
        self.check()

    def open_recorder(self) -> None:
        from lorawhisper_app.gui.wizard.recording_page import RecordingDialog

        self.recorder = RecordingDialog(self)
        self.recorder.finished.connect(self._recorder_closed)
        self.recorder.open()

    def _recorder_closed(self) -> None:
        dialog, self.recorder = self.recorder, None
        if dialog is not None and dialog.session is not None and dialog.session.recorded():
            self.set_source(dialog.session.folder)
        if dialog is not None:
            dialog.deleteLater()

    # -- checking ------------------------------------------------------------------

    def _key(self) -> tuple[str, str, str]:
        return self.source_edit.text().strip(), self.dev_edit.text().strip(), self.state.plan.language

    def _inputs_changed(self) -> None:
        self.completeChanged.emit()

    def initializePage(self) -> None:
        if self.source_edit.text().strip() and self.report_key != self._key() and not self.checking:
            self.check()

    @property
    def checking(self) -> bool:
        return self.task is not None

    def check(self) -> None:
        source, dev, language = self._key()
        if not source:
            self._show_error("Choose the training data first: a folder or a manifest file.")
            return
        if self.task is not None:
            self.task.discard()
        self.report, self.report_key, self.enough = None, None, False
        self._show_report(None)
        self.verdict.setText("Checking every clip…")
        self.verdict.setStyleSheet("")
        self.progress.setRange(0, 0)
        key = (source, dev, language)

        def work(progress: Callable[[int, int], None], cancel: threading.Event) -> DatasetReport:
            return load_dataset(
                os.path.expanduser(source), language=language or None,
                dev=os.path.expanduser(dev) if dev else None, progress=progress, cancel=cancel,
            )

        task = self.task = BackgroundTask(work, "wizard-data-check", self)
        task.progress.connect(self._progress)
        task.done.connect(lambda report: self._checked(task, key, report))
        task.failed.connect(lambda message: self._finished(task) and self._show_error(message))
        task.cancelled.connect(lambda: self._finished(task) and self._show_error("Check cancelled.", cancelled=True))
        self._set_busy(True)
        task.start()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _finished(self, task: BackgroundTask) -> bool:
        """Forget `task` when it is the current one; False for an overtaken task."""
        if task is not self.task:
            return False
        self.task = None
        self._set_busy(False)
        return True

    def _set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.check_button.setEnabled(not busy)
        self.record_button.setEnabled(not busy)
        if not busy and self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.completeChanged.emit()

    def _checked(self, task: BackgroundTask, key: tuple[str, str, str], report: DatasetReport) -> None:
        if not self._finished(task):
            return
        self.report, self.report_key = report, key
        try:
            require_enough(report)
        except LoraWhisperError as exc:
            self.enough = False
            self.verdict.setText(f"Not enough to train on: {exc}")
            self.verdict.setStyleSheet(BAD_STYLE)
        else:
            self.enough = True
            left_out = f"; {len(report.problems)} left out, listed below" if report.problems else ""
            self.verdict.setText(f"Ready to train{left_out}.")
            self.verdict.setStyleSheet(GOOD_STYLE)
        self._show_report(report)
        self.completeChanged.emit()

    def _show_error(self, message: str, *, cancelled: bool = False) -> None:
        self.verdict.setText(message)
        self.verdict.setStyleSheet("" if cancelled else BAD_STYLE)
        self.completeChanged.emit()

    def _show_report(self, report: DatasetReport | None) -> None:
        self.problems.clear()
        if report is None:
            self.summary.setText("")
            self.problems.setVisible(False)
            return
        self.summary.setText("\n".join(report.summary_lines()[:3]))
        by_kind: dict[str, list[DataProblem]] = {}
        for problem in report.problems:
            by_kind.setdefault(problem.kind, []).append(problem)
        for kind, problems in by_kind.items():
            top = QTreeWidgetItem([f"{kind} ({len(problems)})", "", ""])
            for problem in problems:
                QTreeWidgetItem(top, ["", _shown(problem.path, report.source), problem.detail]).setToolTip(1, str(problem.path))
            self.problems.addTopLevelItem(top)
            top.setExpanded(True)
        self.problems.setVisible(bool(report.problems))

    def problem_rows(self) -> list[tuple[str, str, str]]:
        """(kind, file, detail) as listed."""
        rows = []
        for i in range(self.problems.topLevelItemCount()):
            top = self.problems.topLevelItem(i)
            kind = top.text(0).rsplit(" (", 1)[0]
            rows += [(kind, top.child(j).text(1), top.child(j).text(2)) for j in range(top.childCount())]
        return rows

    # -- handing over --------------------------------------------------------------

    def isComplete(self) -> bool:
        return self.task is None and self.enough and self.report_key == self._key()

    def validatePage(self) -> bool:
        if not self.isComplete() or self.report is None:
            return False
        source, dev, _ = self._key()
        self.state.plan.data = Path(os.path.abspath(os.path.expanduser(source)))
        self.state.plan.dev = Path(os.path.abspath(os.path.expanduser(dev))) if dev else None
        self.state.report = self.report
        return True

    def cleanupPage(self) -> None:
        if self.task is not None:
            self.task.discard()
            self.task = None
            self._set_busy(False)
