"""The Files tab: a queue of audio files on the left, the selected transcript on the right."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, QTimer, Slot
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionComboBox,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.audio import AUDIO_EXTENSIONS
from lorawhisper_app.core.job_store import RETRYABLE, Job, JobStatus, JobStore, StoreError
from lorawhisper_app.core.routing import AUTO, RoutingOptions
from lorawhisper_app.core.writers import WRITERS
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.job_queue import (
    FRACTION_ROLE,
    JOB_ID_ROLE,
    Column,
    ExportSettings,
    JobQueue,
    language_codes,
    language_label,
    routing_choices,
)
from lorawhisper_app.gui.message_bar import MessageBar, bar_style
from lorawhisper_app.gui.transcript_view import TranscriptView

Index = QModelIndex | QPersistentModelIndex
RoutingChoices = Callable[[RoutingOptions], list[tuple[str, RoutingOptions]]]
MAX_LISTED = 6  # refused files named in the message bar; the rest are counted
EDIT_SAVE_DELAY_MS = 500

BANNER_STYLE = bar_style("filesInterrupted", "info")


def paths_from_mime(mime: QMimeData) -> list[Path]:
    """The local files and folders a drag carries."""
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def collect_audio(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Audio files among `paths` (folders searched recursively, sorted), and one line for
    each path refused, naming it and why."""
    accepted: list[Path] = []
    refused: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file()
            )
            accepted += found
            if not found:
                refused.append(f"{path.name}/: no audio files inside")
        elif not path.exists():
            refused.append(f"{path.name}: not found")
        elif path.suffix.lower() in AUDIO_EXTENSIONS:
            accepted.append(path)
        else:
            refused.append(f"{path.name}: not an audio file")
    return accepted, refused


# -- delegates and row widgets ---------------------------------------------------------------


class ProgressDelegate(QStyledItemDelegate):
    """Paints a progress bar, with the cell's text on it, where the model gives a fraction
    (the running job); other cells as usual."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight  # "failed: <reason>" keeps its start

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        fraction = index.data(FRACTION_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        style = option.widget.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(4, 5, -4, -5)
        bar.state = option.state | QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(fraction * 1000)
        bar.text = index.data()
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)


class LanguageDelegate(QStyledItemDelegate):
    """A file's language: drawn as a drop-down where it may be changed, edited with a combo box."""

    def __init__(self, choices: RoutingChoices, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._choices = choices

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        if not index.flags() & Qt.ItemFlag.ItemIsEditable:
            super().paint(painter, option, index)
            return
        style = option.widget.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        box = QStyleOptionComboBox()
        box.rect = option.rect.adjusted(2, 2, -2, -2)
        box.state = QStyle.StateFlag.State_Enabled
        box.palette = option.palette
        box.fontMetrics = option.fontMetrics
        box.currentText = box.fontMetrics.elidedText(index.data(), Qt.TextElideMode.ElideRight, box.rect.width() - 28)
        style.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, box, painter, option.widget)
        style.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, box, painter, option.widget)

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        box = QComboBox(parent, objectName="jobLanguage")
        box.setMaxVisibleItems(20)
        for label, options in self._choices(index.data(Qt.ItemDataRole.EditRole)):
            box.addItem(label, options)
        box.activated.connect(lambda _row: (self.commitData.emit(box), self.closeEditor.emit(box)))
        QTimer.singleShot(0, box.showPopup)
        return box

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        current = index.data(Qt.ItemDataRole.EditRole)
        assert isinstance(editor, QComboBox)
        editor.setCurrentIndex(next((i for i in range(editor.count()) if editor.itemData(i) == current), -1))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:
        assert isinstance(editor, QComboBox)
        if editor.currentIndex() >= 0:
            model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


class RowActions(QWidget):
    """A job's Cancel, Retry and Remove buttons (icons, named in their tooltips); only
    those that apply are shown."""

    def __init__(self, queue: JobQueue, job_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.job_id = job_id
        icons = QStyle.StandardPixmap
        self.cancel_button = self._button(icons.SP_BrowserStop, "Cancel", "stop this file, or take it out of the line")
        self.retry_button = self._button(icons.SP_BrowserReload, "Retry", "queue this file again")
        self.remove_button = self._button(icons.SP_TrashIcon, "Remove", "drop this file and its transcript")
        self.cancel_button.clicked.connect(lambda: queue.cancel(job_id))
        self.retry_button.clicked.connect(lambda: queue.retry(job_id))
        self.remove_button.clicked.connect(lambda: queue.remove(job_id))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.setSpacing(2)
        for button in (self.cancel_button, self.retry_button, self.remove_button):
            layout.addWidget(button)
        layout.addStretch(1)
        self.refresh()

    def _button(self, icon: QStyle.StandardPixmap, text: str, tip: str) -> QToolButton:
        button = QToolButton(self, text=text, objectName=f"job{text}", toolTip=f"{text}: {tip}", autoRaise=True)
        button.setIcon(self.style().standardIcon(icon))
        button.setAccessibleName(text)
        return button

    def refresh(self) -> None:
        status = self.queue.job(self.job_id).status
        self.cancel_button.setVisible(status in (JobStatus.QUEUED, JobStatus.RUNNING))
        self.retry_button.setVisible(status in RETRYABLE)
        self.remove_button.setVisible(status is not JobStatus.RUNNING)


# -- the panel ---------------------------------------------------------------------------------


class FilesPanel(QWidget):
    """Queue files (drop, File › Open, Add buttons), choose their language, watch them run,
    read and correct the transcripts. `store` defaults to the user's job folder."""

    def __init__(self, holder: EngineHolder, store: JobStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filesPanel")
        self.holder = holder
        self.queue = JobQueue(holder, store or JobStore(), self)
        self.open_dialog: QFileDialog | None = None
        self.auto_threshold = RoutingOptions().threshold  # LID probability Auto needs to use an adapter
        self._shown_job: str | None = None
        self._edit_timer = QTimer(self, singleShot=True, interval=EDIT_SAVE_DELAY_MS)
        self._edit_timer.timeout.connect(self._save_edits)

        self._build_controls()
        self._build_bars()
        self._build_table()
        self.transcript = TranscriptView()
        self.placeholder = QLabel(objectName="filesResultPlaceholder", wordWrap=True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setMargin(24)
        self.result_pane = QStackedWidget(objectName="resultPane")
        self.result_pane.addWidget(self.placeholder)
        self.result_pane.addWidget(self.transcript)
        splitter = QSplitter(Qt.Orientation.Horizontal, objectName="filesSplitter", childrenCollapsible=False)
        splitter.addWidget(self.table)
        splitter.addWidget(self.result_pane)
        splitter.setSizes([600, 460])  # a proportion: the transcript needs about 460 px

        layout = QVBoxLayout(self)
        layout.addLayout(self._controls)
        layout.addLayout(self._export_row)
        layout.addWidget(self.banner)
        layout.addWidget(self.message_bar)
        layout.addWidget(splitter, 1)
        # Language, the Add buttons, the export row, the queue; the transcript follows.
        chain = (
            self.language_box, self.moe_box, self.moe_k, self.apply_button, self.add_button, self.add_folder_button,
            self.export_box, self.export_folder, self.export_choose, self.export_format, self.table,
        )
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

        self.queue.message.connect(self.show_message)
        self.queue.job_finished.connect(self._on_job_finished)
        self.queue.rowsInserted.connect(lambda _parent, first, last: self._add_row_widgets(range(first, last + 1)))
        self.queue.dataChanged.connect(self._on_data_changed)
        self.table.selectionModel().currentRowChanged.connect(self._show_selected)
        self.transcript.edited.connect(self._edit_timer.start)
        self.transcript.rerun_requested.connect(self._rerun)
        self.holder.ready.connect(self._on_engine_ready)

        self._add_row_widgets(range(self.queue.rowCount()))
        self._offer_interrupted()
        if self.queue.load_notice:
            self.show_message(self.queue.load_notice)
        self._set_adapter_languages(frozenset())
        if holder.engine is not None:
            self._on_engine_ready()
        self._show_selected()

    # -- building --------------------------------------------------------------------

    def _build_controls(self) -> None:
        self.add_button = QPushButton("Add files…", objectName="filesAdd", toolTip="Add audio files (Ctrl+O)")
        self.add_folder_button = QPushButton("Add folder…", objectName="filesAddFolder")
        self.add_folder_button.setToolTip("Add every audio file in a folder and its subfolders (Ctrl+Shift+O)")
        self.language_box = QComboBox(objectName="filesLanguage")
        self.language_box.setToolTip("The language of files added from now on; ★ marks languages with an adapter")
        self.language_box.setMaxVisibleItems(20)
        self.language_box.setMinimumContentsLength(22)
        self.language_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.moe_box = QCheckBox("MoE", objectName="filesMoe")
        self.moe_box.setToolTip("Auto only: mix the adapters of the K likeliest detected languages")
        self.moe_k = QSpinBox(objectName="filesMoeK", minimum=1, maximum=5, value=2, prefix="K = ")
        self.moe_k.setToolTip("How many languages' adapters to mix")
        self.apply_button = QPushButton("Apply to queued", objectName="filesApplyLanguage")
        self.apply_button.setToolTip("Give this language choice to every file still waiting")
        self.add_button.clicked.connect(self.open_files_dialog)
        self.add_folder_button.clicked.connect(self.open_folder_dialog)
        self.language_box.currentIndexChanged.connect(self._sync_moe)
        self.moe_box.toggled.connect(self._sync_moe)
        self.apply_button.clicked.connect(lambda: self.queue.apply_routing_to_queued(self.default_routing()))

        # The language first: it applies to the files added after it is chosen.
        row = QHBoxLayout()
        for widget in (QLabel("Language:"), self.language_box, self.moe_box, self.moe_k, self.apply_button):
            row.addWidget(widget)
        row.addSpacing(16)
        for widget in (self.add_button, self.add_folder_button):
            row.addWidget(widget)
        row.addStretch(1)
        self._controls = row

    def _build_bars(self) -> None:
        self.export_box = QCheckBox("Export each finished file to", objectName="filesAutoExport")
        self.export_folder = QLineEdit(objectName="filesExportFolder", placeholderText="choose a folder")
        self.export_folder.setAcceptDrops(False)  # files dropped here go to the queue
        self.export_box.setToolTip("Save each transcript as a file in this folder as soon as it is finished")
        self.export_choose = QPushButton("Choose…", objectName="filesExportChoose")
        self.export_choose.setToolTip("Choose the folder for the automatic export")
        self.export_format = QComboBox(objectName="filesExportFormat")
        self.export_format.setToolTip("The format of the automatic export")
        for fmt in WRITERS:
            self.export_format.addItem(fmt.upper(), fmt)
        self.export_box.toggled.connect(self._export_settings_changed)
        self.export_folder.editingFinished.connect(self._export_settings_changed)
        self.export_format.currentIndexChanged.connect(self._export_settings_changed)
        self.export_choose.clicked.connect(self.open_export_folder_dialog)
        row = QHBoxLayout()
        for widget in (self.export_box, self.export_folder, self.export_choose, QLabel("as"), self.export_format):
            row.addWidget(widget)
        row.setStretch(1, 1)
        self._export_row = row

        self.banner = QFrame(objectName="filesInterrupted", styleSheet=BANNER_STYLE)
        self.banner_label = QLabel(objectName="filesInterruptedText")
        self.resume_button = QPushButton("Resume all", objectName="filesResumeAll")
        self.resume_button.setToolTip("Queue the unfinished files again")
        self.dismiss_button = QPushButton("Dismiss", objectName="filesDismiss")
        self.dismiss_button.setToolTip("Hide this; the files stay in the list with a Retry button")
        self.resume_button.clicked.connect(self.resume_interrupted)
        self.dismiss_button.clicked.connect(self.banner.hide)
        banner_row = QHBoxLayout(self.banner)
        banner_row.setContentsMargins(8, 4, 8, 4)
        banner_row.addWidget(self.banner_label, 1)
        banner_row.addWidget(self.resume_button)
        banner_row.addWidget(self.dismiss_button)
        self.banner.hide()

        self.message_bar = MessageBar("files")
        self.message = self.message_bar.message

    def _build_table(self) -> None:
        table = QTableView(objectName="filesQueue")
        table.setModel(self.queue)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)  # and a click: see _on_clicked
        table.setTabKeyNavigation(False)  # Tab goes on to the transcript; the arrows move between rows
        table.setItemDelegateForColumn(Column.LANGUAGE, LanguageDelegate(self._row_choices, table))
        table.setItemDelegateForColumn(Column.STATUS, ProgressDelegate(table))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(30)
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(Column.FILE, QHeaderView.ResizeMode.Stretch)
        widths = {Column.DURATION: 54, Column.LANGUAGE: 150, Column.STATUS: 116, Column.ACTIONS: 62}
        for column, width in widths.items():
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        table.clicked.connect(self._on_clicked)
        self.table = table

    # -- adding files ------------------------------------------------------------------

    def add_paths(self, paths: Iterable[Path | str]) -> list[Job]:
        """Queue the audio files among `paths` (folders included); says which were refused."""
        accepted, refused = collect_audio(Path(p) for p in paths)
        jobs = self.queue.add(accepted, self.default_routing())
        queued = {job.path for job in jobs}
        refused += [f"{path.name}: already waiting in the queue" for path in accepted if str(path) not in queued]
        if refused:
            listed = "; ".join(refused[:MAX_LISTED])
            more = f"; and {len(refused) - MAX_LISTED} more" if len(refused) > MAX_LISTED else ""
            self.show_message(f"Not added: {listed}{more}")
        self._show_selected()
        return jobs

    def open_files_dialog(self) -> QFileDialog:
        """File › Open: a non-blocking dialog for one or more files."""
        dialog = self._dialog("Add audio files to the queue", QFileDialog.FileMode.ExistingFiles)
        patterns = " ".join(f"*{ext}" for ext in sorted(AUDIO_EXTENSIONS))
        dialog.setNameFilters([f"Audio files ({patterns})", "All files (*)"])
        dialog.filesSelected.connect(self.add_paths)
        dialog.open()
        return dialog

    def open_folder_dialog(self) -> QFileDialog:
        dialog = self._dialog("Add a folder of audio files", QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly)
        dialog.fileSelected.connect(lambda folder: self.add_paths([folder]))
        dialog.open()
        return dialog

    def open_export_folder_dialog(self) -> QFileDialog:
        dialog = self._dialog("Export finished files to", QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly)
        if self.export_folder.text():
            dialog.setDirectory(self.export_folder.text())
        dialog.fileSelected.connect(self.set_export)
        dialog.open()
        return dialog

    def _dialog(self, title: str, mode: QFileDialog.FileMode) -> QFileDialog:
        dialog = QFileDialog(self, title)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setFileMode(mode)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(self._forget_dialog)
        self.open_dialog = dialog
        return dialog

    @Slot()
    def _forget_dialog(self) -> None:
        self.open_dialog = None

    # -- language and export choices ----------------------------------------------------

    def default_routing(self) -> RoutingOptions:
        """The language choice given to files added now."""
        language = self.language_box.currentData() or AUTO
        moe = self.moe_box.isChecked() and language == AUTO
        return RoutingOptions(language, moe_k=self.moe_k.value() if moe else 0, threshold=self.auto_threshold)

    def set_routing_defaults(self, threshold: float, moe_k: int) -> None:
        """The Settings' auto-routing threshold, and their MoE K for Auto (0: off)."""
        self.auto_threshold = threshold
        self.moe_box.setChecked(moe_k > 0)
        if moe_k:
            self.moe_k.setValue(moe_k)

    def set_default_language(self, code: str, moe_k: int = 0) -> None:
        self.language_box.setCurrentIndex(max(0, self.language_box.findData(code)))
        self.moe_box.setChecked(moe_k > 0)
        if moe_k:
            self.moe_k.setValue(moe_k)

    def _row_choices(self, current: RoutingOptions) -> list[tuple[str, RoutingOptions]]:
        choices = routing_choices(self.queue.adapter_languages, {self.moe_k.value(), current.moe_k})
        return [(label, replace(options, threshold=self.auto_threshold)) for label, options in choices]

    def _sync_moe(self) -> None:
        auto = self.language_box.currentData() == AUTO
        self.moe_box.setEnabled(auto)
        self.moe_k.setEnabled(auto and self.moe_box.isChecked())

    def _set_adapter_languages(self, languages: frozenset[str]) -> None:
        self.queue.set_adapter_languages(languages)
        current = self.language_box.currentData() or AUTO
        self.language_box.blockSignals(True)
        self.language_box.clear()
        for label, options in routing_choices(languages, ()):
            self.language_box.addItem(label, options.language)
        self.language_box.setCurrentIndex(max(0, self.language_box.findData(current)))
        self.language_box.blockSignals(False)
        self._sync_moe()
        codes = language_codes(languages)
        self.transcript.set_rerun_languages([(code, language_label(code, languages)) for code in codes])

    @Slot()
    def _on_engine_ready(self) -> None:
        engine = self.holder.engine
        if engine is not None:
            infos = engine.store.list()
            self._set_adapter_languages(
                frozenset(info.meta.language for info in infos if info.compatible_with(engine.fingerprint))
            )

    def set_export(self, folder: str | Path | None, fmt: str | None = None) -> None:
        """Turn automatic export on to `folder` (off with None), as `fmt` if given."""
        if fmt is not None:
            self.export_format.setCurrentIndex(self.export_format.findData(fmt))
        self.export_folder.setText(str(folder) if folder else "")
        self.export_box.setChecked(folder is not None)
        self._export_settings_changed()

    @Slot()
    def _export_settings_changed(self) -> None:
        folder = self.export_folder.text().strip()
        if self.export_box.isChecked() and not folder:
            self.queue.export = None
            self.show_message("Choose a folder for the automatic export (Choose…).")
            return
        on = self.export_box.isChecked()
        self.queue.export = ExportSettings(Path(folder).expanduser(), self.export_format.currentData()) if on else None

    # -- running -------------------------------------------------------------------------

    def resume_interrupted(self) -> None:
        self.queue.resume_interrupted()
        self.banner.hide()

    def _offer_interrupted(self) -> None:
        count = len(self.queue.interrupted())
        if count:
            files = "file" if count == 1 else "files"
            self.banner_label.setText(f"{count} unfinished {files} from the last session.")
            self.banner.show()

    def row_actions(self, job_id: str) -> RowActions:
        widget = self.table.indexWidget(self.queue.index(self.queue.row_of(job_id), Column.ACTIONS))
        assert isinstance(widget, RowActions)
        return widget

    def _add_row_widgets(self, rows: Iterable[int]) -> None:
        for row in rows:
            index = self.queue.index(row, Column.ACTIONS)
            self.table.setIndexWidget(index, RowActions(self.queue, index.data(JOB_ID_ROLE)))

    @Slot(QModelIndex, QModelIndex)
    def _on_data_changed(self, top: QModelIndex, bottom: QModelIndex) -> None:
        for row in range(top.row(), bottom.row() + 1):
            widget = self.table.indexWidget(self.queue.index(row, Column.ACTIONS))
            if isinstance(widget, RowActions):
                widget.refresh()
        current = self.table.currentIndex()
        if current.isValid() and top.row() <= current.row() <= bottom.row() and top.column() != bottom.column():
            self._show_selected()

    @Slot(QModelIndex)
    def _on_clicked(self, index: QModelIndex) -> None:
        if index.column() == Column.LANGUAGE and index.flags() & Qt.ItemFlag.ItemIsEditable:
            self.table.edit(index)

    @Slot(str)
    def _on_job_finished(self, job_id: str) -> None:
        if not self.table.currentIndex().isValid():
            self.table.selectRow(self.queue.row_of(job_id))

    @Slot(str)
    def _rerun(self, language: str) -> None:
        if self._shown_job is None:
            return
        path = Path(self.queue.job(self._shown_job).path)
        if not self.queue.add([path], RoutingOptions(language)):
            self.show_message(f"Not added: {path.name}: already waiting in the queue")

    def cancel_selected(self) -> bool:
        """Cancel the selected file, or the running one when none is selected; False when
        that file neither waits nor runs."""
        index = self.table.currentIndex()
        if index.isValid():
            job: Job | None = self.queue.job(index.data(JOB_ID_ROLE))
        else:
            job = next((j for j in self.queue.jobs() if j.status is JobStatus.RUNNING), None)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return False
        self.queue.cancel(job.id)
        return True

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Keep pending corrections and stop the worker (the window is closing)."""
        self._save_edits()
        self.queue.shutdown(timeout_ms)

    # -- the result pane ------------------------------------------------------------------

    @Slot()
    def _show_selected(self) -> None:
        index = self.table.currentIndex()
        job = self.queue.job(index.data(JOB_ID_ROLE)) if index.isValid() else None
        if job is not None and job.id == self._shown_job and self.result_pane.currentWidget() is self.transcript:
            return  # already shown: keep the reader's place and edits
        self._save_edits()
        self._shown_job = None
        if job is not None and job.status is JobStatus.DONE:
            try:
                result = self.queue.result(job.id)
            except StoreError as exc:
                self._show_placeholder(str(exc))
                return
            audio = Path(job.path)
            self.transcript.show_result(result, audio if audio.is_file() else None)
            self._shown_job = job.id
            self.result_pane.setCurrentWidget(self.transcript)
            return
        self._show_placeholder(self._placeholder_text(job))

    def _show_placeholder(self, text: str) -> None:
        self.transcript.clear()
        self.placeholder.setText(text)
        self.result_pane.setCurrentWidget(self.placeholder)

    def _placeholder_text(self, job: Job | None) -> str:
        if job is None:
            if self.queue.rowCount():
                return "Select a finished file to read its transcript."
            return "Drop audio files or folders anywhere on this window,\nor use File › Open (Ctrl+O)."
        texts = {
            JobStatus.QUEUED: "Waiting for its turn…",
            JobStatus.RUNNING: "Transcribing…",
            JobStatus.FAILED: f"This file failed:\n{job.error}",
            JobStatus.CANCELLED: "Cancelled. Retry queues it again.",
            JobStatus.INTERRUPTED: "Stopped when the app closed. Retry queues it again.",
        }
        return f"{job.name}\n\n{texts.get(job.status, '')}"

    @Slot()
    def _save_edits(self) -> None:
        self._edit_timer.stop()
        job_id, edited = self._shown_job, self.transcript.result()
        if job_id is not None and edited is not None and self.queue.has(job_id) and edited != self.queue.result(job_id):
            self.queue.save_edited(job_id, edited)

    # -- messages ------------------------------------------------------------------------

    @Slot(str)
    def show_message(self, text: str) -> None:
        self.message_bar.show_message(text, "warning")
