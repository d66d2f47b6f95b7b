"""The Adapters tab: the installed LoRA adapters with their metadata; import, export, remove,
and a trial of one on the user's own recordings (gui/adapter_trial.py).

Every store operation (listing included: it reads each adapter's weight header) runs on
one worker thread, in order, and reports back through a signal. Which backbone the
adapters are checked against comes from the loaded engine, or, until there is one, from
resolving the configured backbone on a thread of its own.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app.core.adapter_store import AdapterInfo, AdapterStore
from lorawhisper_app.core.errors import LoraWhisperError, one_line
from lorawhisper_app.core.settings import BUILTIN
from lorawhisper_app.gui.adapter_table import AdapterDropTarget, AdapterModel, AdapterTable, details_html
from lorawhisper_app.gui.adapter_trial import AdapterTrial
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.message_bar import MessageBar, bar_style

log = logging.getLogger(__name__)

PROBLEMS_STYLE = bar_style("adapterProblems", "warning")
DETAILS_HINT = (
    "Select an adapter to see everything known about it.\n\n"
    "To add one, use Import… or drop an adapter folder or .zip archive on this tab."
)


class AdapterManager(AdapterDropTarget, QWidget):
    """Lists the adapters of `store` (the loaded engine's, once there is one) and checks
    them against the backbone: the engine's, or `backbone` (a Settings value) resolved in
    the background when the tab is shown before the engine is ready.

    `adapters_changed(languages)` gives the languages with an adapter for the current
    backbone after each listing.
    """

    adapters_changed = Signal(frozenset)
    _work_done = Signal(object, object)  # Future, (callback, changes the store)
    _resolved = Signal(str, str, str, str)  # backbone, fingerprint, backbone's name, error

    def __init__(
        self, holder: EngineHolder, store: AdapterStore, backbone: str = BUILTIN, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("adapterManager")
        self.setAcceptDrops(True)
        self.holder = holder
        self.store = store
        self.backbone = backbone
        self.backbone_name: str | None = None
        self.backbone_error: str | None = None
        self.file_dialog: QFileDialog | None = None
        self.remove_box: QMessageBox | None = None
        self._resolving: str | None = None  # the backbone a resolver thread works on
        self._select_after_listing: str | None = None  # an adapter just imported
        self._pending = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adapter-store")

        self.model = AdapterModel(self)
        self._build_buttons()
        self._build_bars()
        self._build_views()
        layout = QVBoxLayout(self)
        layout.addLayout(self._buttons_row)
        layout.addWidget(self.backbone_label)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.problems_frame)
        layout.addWidget(self._splitter, 1)

        self._work_done.connect(self._on_work_done)
        self._resolved.connect(self._on_resolved)
        self.table.selectionModel().currentRowChanged.connect(self._show_selected)
        self.table.paths_dropped.connect(self.import_paths)
        holder.ready.connect(self._on_engine_ready)
        holder.failed.connect(self._ensure_fingerprint)

        if holder.engine is not None and not holder.loading:
            self._on_engine_ready()
        else:
            self._show_backbone()
            self.refresh()
        self._show_selected()

    # -- building --------------------------------------------------------------------

    def _build_buttons(self) -> None:
        self.import_button = QPushButton("Import…", objectName="adapterImport")
        menu = QMenu(self.import_button)
        self.import_folder_action = QAction("Adapter folder…", self)
        self.import_zip_action = QAction("Zip archive…", self)
        self.import_folder_action.triggered.connect(lambda: self.open_import_dialog(folder=True))
        self.import_zip_action.triggered.connect(lambda: self.open_import_dialog(folder=False))
        menu.addAction(self.import_folder_action)
        menu.addAction(self.import_zip_action)
        self.import_button.setMenu(menu)
        self.export_button = QPushButton("Export…", objectName="adapterExport")
        self.export_button.setToolTip("Save the selected adapter as a .zip archive, to share or back up")
        self.remove_button = QPushButton("Remove", objectName="adapterRemove")
        self.refresh_button = QPushButton("Refresh", objectName="adapterRefresh")
        self.refresh_button.setToolTip("Read the adapter folders again")
        self.export_button.clicked.connect(self.open_export_dialog)
        self.remove_button.clicked.connect(self.confirm_remove)
        self.refresh_button.clicked.connect(self.refresh)
        self.trial = AdapterTrial(self.holder)
        self.trial.report.connect(self.show_message)
        row = QHBoxLayout()
        for button in (self.import_button, self.export_button, self.remove_button, self.trial):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        self._buttons_row = row

    def _build_bars(self) -> None:
        self.backbone_label = QLabel(objectName="adapterBackbone", wordWrap=True)
        self.backbone_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_bar = MessageBar("adapter")
        self.message = self.message_bar.message

        self.problems_frame = QFrame(objectName="adapterProblems", styleSheet=PROBLEMS_STYLE)
        self.problems_label = QLabel(objectName="adapterProblemsText", wordWrap=True)
        self.problems_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        problems_row = QHBoxLayout(self.problems_frame)
        problems_row.setContentsMargins(8, 4, 8, 4)
        problems_row.addWidget(self.problems_label)
        self.problems_frame.hide()

    def _build_views(self) -> None:
        table = AdapterTable(self)
        table.setObjectName("adapterTable")
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        table.setShowGrid(False)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table = table
        self.details = QTextBrowser(objectName="adapterDetails")
        self.details.setOpenLinks(False)
        splitter = QSplitter(Qt.Orientation.Vertical, objectName="adapterSplitter", childrenCollapsible=False)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setSizes([240, 300])
        self._splitter = splitter

    # -- the backbone ------------------------------------------------------------------

    def set_backbone(self, backbone: str) -> None:
        """The configured backbone changed: the compatibility is checked again (after the
        engine is reloaded, from it)."""
        self.backbone = backbone
        self.backbone_name = self.backbone_error = None
        self.model.set_fingerprint(None)
        self._show_backbone()
        self._ensure_fingerprint()

    @property
    def fingerprint(self) -> str | None:
        return self.model.fingerprint

    @Slot()
    def _on_engine_ready(self) -> None:
        engine = self.holder.engine
        if engine is None:  # reloaded again meanwhile
            return
        self.store = engine.store
        self.backbone_name, self.backbone_error = engine.backbone.files.name, None
        self.model.set_fingerprint(engine.fingerprint)
        self._show_backbone()
        self.refresh()

    @Slot()
    def _ensure_fingerprint(self) -> None:
        """Resolve the configured backbone on a thread, unless it is known, being resolved,
        or the engine is loading (which will tell), or this tab is not shown yet."""
        if self.fingerprint is not None or self._resolving == self.backbone:
            return
        if self.holder.engine is not None:
            self._on_engine_ready()
            return
        if self.holder.loading or not self.isVisible():
            return
        self._resolving = self.backbone
        self.backbone_error = None
        self._show_backbone()
        threading.Thread(target=self._resolve, args=(self.backbone,), name="backbone-check", daemon=True).start()

    def _resolve(self, backbone: str) -> None:
        """Runs on its own thread: converting the built-in backbone the first time, or
        hashing a model's weights, takes seconds."""
        try:
            from lorawhisper_app.core.backbone import resolve_backbone  # pulls in torch

            files = resolve_backbone(None if backbone == BUILTIN else backbone)
            found = (backbone, files.fingerprint, files.name, "")
        except LoraWhisperError as exc:
            found = (backbone, "", "", one_line(exc))
        except Exception as exc:  # noqa: BLE001 - whatever it was, the tab says so
            log.exception("checking the backbone %s failed", backbone)
            found = (backbone, "", "", f"{type(exc).__name__}: {one_line(exc)}")
        try:
            self._resolved.emit(*found)
        except RuntimeError:  # the window has gone
            pass

    @Slot(str, str, str, str)
    def _on_resolved(self, backbone: str, fingerprint: str, name: str, error: str) -> None:
        if self._resolving == backbone:
            self._resolving = None
        if backbone != self.backbone:
            self._ensure_fingerprint()
            return
        if self.fingerprint is not None:  # the engine answered first
            return
        if fingerprint:
            self.backbone_name = name
            self.model.set_fingerprint(fingerprint)
            self._announce_languages()
        else:
            self.backbone_error = error
            self.model.set_fingerprint(None, "unknown")
        self._show_backbone()
        self._show_selected()

    def _show_backbone(self) -> None:
        if self.fingerprint is not None:
            short = self.fingerprint.removeprefix("sha256:")[:12]
            text = f"Backbone in use: <b>{html.escape(self.backbone_name or '')}</b> ({short}…)."
            text += " Adapters made for another backbone cannot be used with it."
        elif self.backbone_error:
            text = f"Backbone in use: not known ({html.escape(self.backbone_error)})."
        else:
            text = "Backbone in use: checking…"
        self.backbone_label.setText(text)
        self._update_buttons()

    # -- listing ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while store operations are queued or running."""
        return self._pending > 0

    @Slot()
    def refresh(self) -> None:
        """Read the store again (in the background)."""
        store = self.store
        self._run(lambda: (store.list(), store.problems()), self._show_adapters)

    def _show_adapters(self, listing: tuple[list[AdapterInfo], list[str]]) -> None:
        infos, problems = listing
        selected = self.selected()
        wanted = self._select_after_listing or (selected.name if selected else None)
        self._select_after_listing = None
        self.model.set_adapters(infos)
        if wanted is not None:
            self.select(wanted)
        count = len(problems)
        if problems:
            folders = "folder is" if count == 1 else "folders are"
            lines = "\n".join(f"• {problem}" for problem in problems)
            self.problems_label.setText(f"{count} {folders} in the adapter store but not usable adapters:\n{lines}")
        self.problems_frame.setVisible(bool(problems))
        self._show_selected()
        self._announce_languages()

    def _announce_languages(self) -> None:
        if self.fingerprint is not None:
            infos = self.model.adapters()
            self.adapters_changed.emit(frozenset(i.meta.language for i in infos if i.compatible_with(self.fingerprint)))

    def selected(self) -> AdapterInfo | None:
        index = self.table.currentIndex()
        return self.model.info(index.row()) if index.isValid() else None

    def select(self, name: str) -> None:
        row = self.model.row_of(name)
        if row is not None:
            self.table.selectRow(row)

    @Slot()
    def _show_selected(self) -> None:
        info = self.selected()
        if info is None:
            self.details.setPlainText(DETAILS_HINT)
        else:
            self.details.setHtml(details_html(info, self.model.compatible(info), self.model.backbone_note))
        self._update_buttons()

    def _update_buttons(self) -> None:
        info = self.selected()
        self.trial.set_adapter(info, info is not None and self.model.compatible(info) is True)
        self.export_button.setEnabled(info is not None)
        self.remove_button.setEnabled(info is not None and info.source == "user")
        if info is not None and info.source == "bundled":
            self.remove_button.setToolTip("Bundled with the app: it cannot be removed")
        else:
            self.remove_button.setToolTip("Delete the selected adapter from your adapter folder")
        known = self.fingerprint is not None
        self.import_button.setEnabled(known)
        self.import_button.setToolTip(
            "Install an adapter folder or .zip archive (or drop one on this tab)"
            if known
            else "Waiting to know the current backbone: adapters are checked against it"
        )

    # -- changing the store ------------------------------------------------------------------

    @Slot(list)
    def import_paths(self, paths: Iterable[Path | str]) -> None:
        """Install adapter folders or .zip archives (in the background); says how each went."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        fingerprint = self.fingerprint
        if fingerprint is None:
            why = self.backbone_error or "still checking"
            self.show_message(f"Not imported: the backbone that adapters must fit is not known yet ({why}).", "error")
            return
        store = self.store

        def work() -> tuple[list[AdapterInfo], list[str]]:
            done, failed = [], []
            for path in paths:
                try:
                    done.append(store.import_(path, fingerprint))
                except (LoraWhisperError, OSError) as exc:
                    failed.append(_problem_text(path, exc))
            return done, failed

        names = ", ".join(p.name for p in paths)
        self.show_message(f"Importing {names}…", "info")
        self._run(work, self._imported, changes_store=True)

    def _imported(self, outcome: tuple[list[AdapterInfo], list[str]]) -> None:
        done, failed = outcome
        parts = []
        if done:
            parts.append("Imported " + ", ".join(f"{i.name} ({i.meta.language_name})" for i in done) + ".")
        if failed:
            parts.append("Not imported: " + "\n".join(failed))
        self.show_message("\n".join(parts), "error" if failed else "info")
        if done:
            self._select_after_listing = done[0].name  # the listing that follows selects it

    def open_import_dialog(self, folder: bool) -> QFileDialog:
        """A non-blocking dialog for an adapter folder, or for .zip archives."""
        if folder:
            dialog = self._file_dialog("Import an adapter folder", QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly)
            dialog.fileSelected.connect(lambda path: self.import_paths([path]))
        else:
            dialog = self._file_dialog("Import adapter archives", QFileDialog.FileMode.ExistingFiles)
            dialog.setNameFilters(["Adapter archives (*.zip)", "All files (*)"])
            dialog.filesSelected.connect(self.import_paths)
        dialog.open()
        return dialog

    def open_export_dialog(self) -> QFileDialog | None:
        """Export… the selected adapter to a .zip archive chosen in a non-blocking dialog."""
        info = self.selected()
        if info is None:
            return None
        dialog = self._file_dialog(f"Export the adapter {info.name}", QFileDialog.FileMode.AnyFile)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(["Zip archives (*.zip)"])
        dialog.setDefaultSuffix("zip")
        dialog.selectFile(f"{info.name}.zip")
        dialog.fileSelected.connect(lambda path, name=info.name: self.export_to(name, Path(path)))
        dialog.open()
        return dialog

    def export_to(self, name: str, dest: Path) -> None:
        if dest.suffix.lower() != ".zip":
            dest = dest.with_name(dest.name + ".zip")
        store = self.store
        self._run(lambda: store.export(name, dest), lambda path: self.show_message(f"Exported {name} to {path}."))

    def confirm_remove(self) -> QMessageBox | None:
        """Ask (without blocking) before removing the selected user adapter."""
        info = self.selected()
        if info is None or info.source != "user":
            return None
        box = QMessageBox(self)
        box.setObjectName("removeAdapterBox")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Remove adapter")
        box.setText(f"Remove the adapter {info.name} ({info.meta.language_name})?")
        box.setInformativeText(f"Its folder {info.path} is deleted. Transcripts made with it stay as they are.")
        box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(
            lambda button, name=info.name: self.remove(name)
            if box.buttonRole(button) == QMessageBox.ButtonRole.DestructiveRole
            else None
        )
        box.destroyed.connect(self._forget_remove_box)
        self.remove_box = box
        box.open()
        return box

    def remove(self, name: str) -> None:
        store = self.store
        self._run(lambda: store.remove(name), lambda _: self.show_message(f"Removed {name}."), changes_store=True)

    def _file_dialog(self, title: str, mode: QFileDialog.FileMode) -> QFileDialog:
        dialog = QFileDialog(self, title)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setFileMode(mode)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(self._forget_file_dialog)
        self.file_dialog = dialog
        return dialog

    @Slot()
    def _forget_file_dialog(self) -> None:
        self.file_dialog = None

    @Slot()
    def _forget_remove_box(self) -> None:
        self.remove_box = None

    # -- the worker ------------------------------------------------------------------------

    def _run(self, work: Callable[[], Any], done: Callable[[Any], None], *, changes_store: bool = False) -> None:
        """Run `work` on the store's thread; `done(result)` then runs on the GUI thread, and
        a failure becomes a message. The store is listed again after a change."""
        if self._closed:
            return
        self._pending += 1
        future = self._executor.submit(work)
        future.add_done_callback(lambda f: self._deliver(f, done, changes_store))

    def _deliver(self, future: Future, done: Callable[[Any], None], changes_store: bool) -> None:
        try:
            self._work_done.emit(future, (done, changes_store))
        except RuntimeError:  # the window has gone
            pass

    @Slot(object, object)
    def _on_work_done(self, future: Future, how: tuple[Callable[[Any], None], bool]) -> None:
        done, changes_store = how
        self._pending -= 1
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            done(future.result())
        elif isinstance(error, (LoraWhisperError, OSError)):
            self.show_message(_problem_text(None, error), "error")
        else:
            log.error("adapter store operation failed", exc_info=error)
            self.show_message(f"{type(error).__name__}: {one_line(error)}", "error")
        if changes_store:
            self.refresh()

    def shutdown(self) -> None:
        """Finish the store operation under way and drop queued ones (the window is closing)."""
        self._closed = True
        self.trial.shutdown()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- messages and drops ------------------------------------------------------------------

    def show_message(self, text: str, kind: str = "info") -> None:
        self.message_bar.show_message(text, kind)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._ensure_fingerprint()

    def adapters_dropped(self, paths: list[Path]) -> None:
        self.import_paths(paths)


def _problem_text(path: Path | None, error: BaseException) -> str:
    """One line for a failed store operation, naming the file unless the message does."""
    if isinstance(error, OSError) and error.strerror:
        where = error.filename or path
        return f"{where}: {error.strerror}" if where else error.strerror
    text = one_line(error)
    return text if path is None or str(path) in text else f"{path.name}: {text}"
