"""The main window: the Files tab (a batch queue), the Live tab and the Adapters tab;
File › Settings… chooses the backbone and the Files tab's defaults; File › Add a Language…
opens the wizard that trains a new adapter.

A training run outlives its wizard window: the window is kept (hidden) while its run is
going or stopped, a status-bar entry shows the run and reopens it, and quitting asks
whether to stop it (it keeps a checkpoint). At start, a run the app did not finish is
offered for resuming in a bar above the tabs."""

from __future__ import annotations

import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lorawhisper_app import __version__
from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir, default_user_adapter_dir
from lorawhisper_app.core.job_store import JobStatus
from lorawhisper_app.core.settings import Settings, load_settings
from lorawhisper_app.core.training.run_registry import RunRecord, RunRegistry, RunState
from lorawhisper_app.gui.adapter_manager import AdapterManager
from lorawhisper_app.gui.engine_holder import EngineFactory, EngineHolder
from lorawhisper_app.gui.files_panel import FilesPanel, paths_from_mime
from lorawhisper_app.gui.first_run import show_welcome
from lorawhisper_app.gui.live_panel import LivePanel
from lorawhisper_app.gui.message_bar import bar_style
from lorawhisper_app.gui.settings_dialog import SettingsDialog
from lorawhisper_app.gui.transcript_view import TranscriptView
from lorawhisper_app.gui.wizard.plan import TrainingPlan
from lorawhisper_app.gui.wizard.wizard import RESULT_PAGE, TRAINING_PAGE, AddLanguageWizard

if TYPE_CHECKING:  # the engine pulls in torch
    from lorawhisper_app.core.engine import Engine

APP_NAME = "LoRA-Whisper Studio"
STATUS_MESSAGE_MS = 4000
ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icon.svg"
RESUME_BAR_STYLE = bar_style("resumeBar", "info")


def _installed_version(dist: str) -> str:
    """A package's version without importing it (importing torch takes seconds)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_text() -> str:
    """The About box's text (rich text): versions and licence."""
    rows = [
        (APP_NAME, __version__),
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("PyTorch", _installed_version("torch")),
    ]
    table = "".join(f"<tr><td>{name}</td><td>&nbsp;{version}</td></tr>" for name, version in rows)
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        "<p>Local speech recognition on a frozen Whisper backbone, "
        "with one LoRA adapter per language.</p>"
        f"<table>{table}</table>"
        "<p>Licence: MIT</p>"
    )


def app_icon() -> QIcon:
    return QIcon(str(ICON_PATH)) if ICON_PATH.is_file() else QIcon()


def standard_keys(key: QKeySequence.StandardKey, also: str) -> list[QKeySequence]:
    """The platform's keys for `key`, and `also`: the platform may bind none, or another."""
    keys = QKeySequence.keyBindings(key)
    if QKeySequence(also) not in keys:
        keys.append(QKeySequence(also))
    return keys


def settings_engine(settings: Settings, store: AdapterStore) -> EngineFactory:
    """How the engine is built from the settings (run later, on the holder's thread)."""

    def build() -> "Engine":
        from lorawhisper_app.core.engine import Engine

        return Engine(settings.model, device=settings.device, dtype=settings.compute_type, store=store)

    return build


class MainWindow(QMainWindow):
    """`holder` loads the engine in the background; the app starts it, tests may inject one.

    The settings are read from their file unless given; `engine_factory` turns settings
    into what builds the engine, at start-up (without a `holder`) and when File › Settings…
    changes the backbone, device or compute type. `store` defaults to the bundled
    adapters and the user's adapter folder; `registry` to the user's record of training runs.
    """

    def __init__(
        self,
        holder: EngineHolder | None = None,
        *,
        settings: Settings | None = None,
        store: AdapterStore | None = None,
        engine_factory: Callable[[Settings, AdapterStore], EngineFactory] = settings_engine,
        registry: RunRegistry | None = None,
    ) -> None:
        super().__init__()
        settings_warning = None
        if settings is None:
            settings, settings_warning = load_settings()
        self.settings = settings
        self.store = store or AdapterStore(bundled_adapter_dir(), default_user_adapter_dir())
        self._engine_factory = engine_factory
        self.holder = holder or EngineHolder(engine_factory(settings, self.store), parent=self)
        self.settings_dialog: SettingsDialog | None = None
        self.registry = registry or RunRegistry()
        self.wizard: AddLanguageWizard | None = None
        self._quitting = False  # the user chose to stop training and quit: close once it has stopped
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.resize(900, 560)

        self.setAcceptDrops(True)  # files dropped anywhere on the window go to the Files tab
        self.files_panel = FilesPanel(self.holder)
        self.live_panel = LivePanel(self.holder)
        self.adapter_manager = AdapterManager(self.holder, self.store, settings.backbone)
        self.tabs = QTabWidget(objectName="mainTabs")
        self.tabs.addTab(self.files_panel, "F&iles")  # Alt+F is the File menu
        self.tabs.addTab(self.live_panel, "&Live")
        self.tabs.addTab(self.adapter_manager, "&Adapters")
        self._build_resume_bar()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.resume_bar)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.training_status = QPushButton(objectName="trainingStatus")
        self.training_status.setFlat(True)
        self.training_status.setCursor(Qt.CursorShape.PointingHandCursor)
        self.training_status.setStyleSheet(
            "#trainingStatus { border: none; padding: 0 6px; color: palette(link); text-decoration: underline; }"
        )
        self.training_status.setToolTip("Show the training run")
        self.training_status.clicked.connect(self.show_wizard)
        self.training_status.hide()
        self.statusBar().addPermanentWidget(self.training_status)
        self.engine_state = QLabel("Backbone not loaded", objectName="engineState")
        self.statusBar().addPermanentWidget(self.engine_state)
        self.holder.state_changed.connect(self.engine_state.setText)
        # The Files tab's language lists mark the languages that have an adapter.
        self.adapter_manager.adapters_changed.connect(self.files_panel._set_adapter_languages)
        self.files_panel.queue.dataChanged.connect(self._update_settings_busy)

        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setStatusTip("Add audio files to the Files tab's queue")
        self.open_action.triggered.connect(self.open_files)
        file_menu.addAction(self.open_action)
        self.add_folder_action = self._add_action(
            file_menu, "Add &Folder…", "Ctrl+Shift+O", self.open_folder,
            "Add every audio file in a folder and its subfolders to the queue",
        )
        self.add_language_action = self._add_action(
            file_menu, "Add a &Language…", "Ctrl+Shift+L", self.open_add_language,
            "Train an adapter for a new language from your recordings and transcripts",
        )
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcuts(standard_keys(QKeySequence.StandardKey.Preferences, "Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.setStatusTip("Backbone, device, language routing and export defaults")
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcuts(standard_keys(QKeySequence.StandardKey.Quit, "Ctrl+Q"))
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        # The transcript's own Ctrl+F works only with the focus inside it; the window's
        # works anywhere. Both enabled, the key would be ambiguous and do nothing.
        self.files_panel.transcript.find_shortcut.setEnabled(False)
        edit_menu = self.menuBar().addMenu("&Edit")
        self.find_action = self._add_action(
            edit_menu, "&Find in Transcript", QKeySequence.StandardKey.Find, self.find_in_transcript,
            "Search the transcript shown in the Files tab",
        )
        self.copy_action = self._add_action(
            edit_menu, "&Copy Transcript Text", "Ctrl+Shift+C", self.copy_transcript,
            "Copy the shown transcript's text to the clipboard, one segment a line",
        )
        self.export_action = self._add_action(
            edit_menu, "&Export Transcript…", "Ctrl+E", self.export_transcript,
            "Save the shown transcript as a text or subtitle file",
        )
        edit_menu.addSeparator()
        # Ctrl+. is "cancel" on macOS (Qt turns Ctrl into Command there).
        self.cancel_action = self._add_action(
            edit_menu, "Cancel &File", "Ctrl+.", self.cancel_file,
            "Stop the selected file, or take it out of the line; without a selection, the running one",
        )

        view_menu = self.menuBar().addMenu("&View")
        self.tab_actions = [
            self._add_action(
                view_menu, self.tabs.tabText(index), f"Ctrl+{index + 1}",
                lambda _checked=False, index=index: self.tabs.setCurrentIndex(index),
                f"Show the {self.tabs.tabText(index).replace('&', '')} tab",
            )
            for index in range(self.tabs.count())
        ]

        help_menu = self.menuBar().addMenu("&Help")
        self.welcome_action = self._add_action(
            help_menu, "&Welcome…", "", lambda: show_welcome(self),
            "Where models, adapters and transcripts are kept; adding a language; a larger backbone",
        )
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

        self._apply_defaults(settings)
        if settings_warning:
            self.files_panel.show_message(settings_warning)
        self.registry.forget_finished()  # left by an app that quit on a run's result page
        self.offer_resume()

    def _add_action(
        self, menu: QMenu, text: str, shortcut: str | QKeySequence.StandardKey, slot: Callable[..., object], tip: str
    ) -> QAction:
        """A menu entry with a shortcut (shown in the menu) and a status-bar tip."""
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def closeEvent(self, event) -> None:  # noqa: ANN001 - QCloseEvent
        page = self.wizard.training_page if self.wizard is not None else None
        if page is not None and page.active:
            event.ignore()
            if self._quitting:  # asked again while the run saves its checkpoint: stop it at once
                page.process.kill()
            else:
                self._ask_to_stop_training()
            return
        if page is not None:
            self.wizard.close()  # may drop the wizard (self.wizard becomes None)
            page.discard_finished_run()  # its result page goes with the app
        self.files_panel.shutdown()
        self.live_panel.shutdown()
        self.adapter_manager.shutdown()
        super().closeEvent(event)

    # -- adding a language ---------------------------------------------------------------

    def _build_resume_bar(self) -> None:
        self.resume_bar = QFrame(objectName="resumeBar")
        self.resume_bar.setStyleSheet(RESUME_BAR_STYLE)
        self.resume_label = QLabel(objectName="resumeText", wordWrap=True)
        self.resume_button = QPushButton("&Resume Training", objectName="resumeTrainingRun")
        self.discard_button = QPushButton("&Discard", objectName="discardTrainingRun")
        self.discard_button.setToolTip("Forget this run and delete its checkpoints")
        self.resume_button.clicked.connect(lambda: self._resume_offered(discard=False))
        self.discard_button.clicked.connect(lambda: self._resume_offered(discard=True))
        row = QHBoxLayout(self.resume_bar)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.resume_label, 1)
        row.addWidget(self.resume_button)
        row.addWidget(self.discard_button)
        self.resume_bar.hide()
        self.offered_run: RunRecord | None = None

    def offer_resume(self) -> None:
        """Show the newest run that did not finish (if any) in the bar above the tabs."""
        runs = [r for r in self.registry.unfinished() if self._shown_run_id() != r.id]
        self.offered_run = runs[0] if runs else None
        if self.offered_run is None:
            self.resume_bar.hide()
            return
        more = f" ({len(runs) - 1} more after it)" if len(runs) > 1 else ""
        self.resume_label.setText(
            f"Training of {self.offered_run.describe()} did not finish{more}. "
            "Resume continues from its last checkpoint."
        )
        self.resume_bar.show()

    def _shown_run_id(self) -> str | None:
        record = self.wizard.training_page.record if self.wizard is not None else None
        return record.id if record is not None else None

    def _resume_offered(self, discard: bool) -> None:
        record = self.offered_run
        if record is None:
            return
        if discard:
            self.registry.discard(record)
            self.offer_resume()
            return
        if self.wizard is not None and self.wizard.training_page.active:
            self.statusBar().showMessage("A training run is going: pause or finish it first.", STATUS_MESSAGE_MS)
            self.show_wizard()
            return
        wizard = self._new_wizard()
        wizard.plan = TrainingPlan.from_dict(record.plan)
        wizard.training_page.adopt(record)
        wizard.setStartId(TRAINING_PAGE)
        self.resume_bar.hide()
        self.show_wizard()

    def open_add_language(self) -> AddLanguageWizard:
        """File › Add a Language…: the wizard (non-modal); the one there is, if any."""
        if self.wizard is None:
            self._new_wizard()
        assert self.wizard is not None
        self.show_wizard()
        return self.wizard

    def _new_wizard(self) -> AddLanguageWizard:
        if self.wizard is not None:
            self._drop_wizard()
        wizard = AddLanguageWizard(self.store, self.holder, self)
        wizard.plan.model = self.settings.model  # the adapter must fit the backbone the app runs
        wizard.plan.device = self.settings.device
        page = wizard.training_page
        page.registry = self.registry
        page.status_changed.connect(self._show_training_status)
        page.adapter_installed.connect(self._adapter_installed)
        page.run_ended.connect(self._training_ended)
        wizard.result_page.adapter_ready.connect(self._adapter_ready)
        wizard.finished.connect(self._wizard_closed)
        self.wizard = wizard
        return wizard

    def show_wizard(self) -> None:
        """Shows the wizard; one closed with a run (QWizard resets on closing) reopens on that run's page."""
        if self.wizard is not None:
            page = self.wizard.training_page
            if self.wizard.currentId() == -1 and page.record is not None:
                self.wizard.setStartId(RESULT_PAGE if page.outcome is not None else TRAINING_PAGE)
            self.wizard.show()
            self.wizard.raise_()
            self.wizard.activateWindow()

    def _drop_wizard(self) -> None:
        wizard, self.wizard = self.wizard, None
        if wizard is not None:
            wizard.finished.disconnect(self._wizard_closed)
            wizard.hide()
            wizard.deleteLater()
        self.training_status.hide()

    def _wizard_closed(self, result: int) -> None:
        """Finished, or closed with no run worth coming back to: let the wizard go. Closed
        while its run goes on, is stopped, or waits on the result page: keep it for the status entry."""
        page = self.wizard.training_page if self.wizard is not None else None
        record = page.record if page is not None else None
        keep = page is not None and record is not None and (page.active or record.state is not RunState.CANCELLED)
        if result == AddLanguageWizard.DialogCode.Accepted or not keep:
            self._drop_wizard()
            self.offer_resume()

    def _show_training_status(self, text: str) -> None:
        self.training_status.setText(text)
        self.training_status.setVisible(bool(text))

    def _adapter_installed(self, name: str) -> None:
        self.adapter_manager.refresh()
        self.statusBar().showMessage(f"Adapter {name} is installed.", STATUS_MESSAGE_MS)

    def _adapter_ready(self, name: str) -> None:
        self.adapter_manager.refresh()
        self.adapter_manager.show_message(f"The new adapter {name} is installed and ready for routing.")

    def _training_ended(self) -> None:
        if self._quitting:
            self.close()

    def _ask_to_stop_training(self) -> QMessageBox:
        """Quitting while a run goes: a window-modal question that does not block."""
        record = self.wizard.training_page.record if self.wizard is not None else None
        what = f"Training of {record.language_name}" if record is not None else "Training"
        box = QMessageBox(self)
        box.setObjectName("stopTrainingBox")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Training is running")
        box.setText(f"{what} is running. Stop it and quit?")
        box.setInformativeText(
            "It stops after its current step and keeps a checkpoint; the next time the app starts, "
            "it offers to resume from there."
        )
        stop = box.addButton("&Stop Training and Quit", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(stop)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        stop.clicked.connect(self._stop_training_and_quit)
        box.open()
        return box

    def _stop_training_and_quit(self) -> None:
        if self.wizard is None or not self.wizard.training_page.active:
            self.close()
            return
        self._quitting = True
        self.wizard.training_page.stop(RunState.INTERRUPTED)
        self.statusBar().showMessage("Stopping training: saving a checkpoint, then quitting…")

    # -- settings ------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """File › Settings…: a window-modal dialog that does not block; OK applies."""
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        dialog = SettingsDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.applied.connect(self.apply_settings)
        dialog.destroyed.connect(self._forget_settings_dialog)
        self.settings_dialog = dialog
        self._update_settings_busy()
        dialog.open()
        return dialog

    def _forget_settings_dialog(self) -> None:
        self.settings_dialog = None

    def busy_text(self) -> str | None:
        """What a backbone change would have to wait for, if anything runs."""
        running = [job for job in self.files_panel.queue.jobs() if job.status is JobStatus.RUNNING]
        worker = self.live_panel.worker
        parts = []
        if running:
            parts.append(
                f"{running[0].name} is being transcribed: a new backbone, device or compute type is loaded "
                "once it finishes. To switch sooner, cancel it in the Files tab; files still waiting use the new one."
            )
        if worker is not None and worker.isRunning():
            parts.append("A live session is running: it keeps the current backbone until you stop it.")
        return " ".join(parts) or None

    def _update_settings_busy(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.set_busy(self.busy_text())

    def apply_settings(self, settings: Settings) -> None:
        """Use new (already saved) settings: Files tab defaults at once; the engine is
        reloaded in the background when the backbone, device or compute type changed."""
        old, self.settings = self.settings, settings
        self._apply_defaults(settings)
        if settings.engine_key != old.engine_key:
            self.holder.reload(self._engine_factory(settings, self.store))
            if settings.backbone != old.backbone:
                self.adapter_manager.set_backbone(settings.backbone)

    def _apply_defaults(self, settings: Settings) -> None:
        panel = self.files_panel
        panel.set_routing_defaults(settings.threshold, settings.moe_k)
        self.live_panel.set_routing_defaults(settings.threshold)
        if settings.auto_export and settings.export_folder:
            panel.set_export(settings.export_folder, settings.export_format)
        else:
            panel.set_export(None, settings.export_format)
            panel.export_folder.setText(settings.export_folder or "")  # ready for ticking the box

    def open_files(self) -> None:
        self.tabs.setCurrentWidget(self.files_panel)
        self.files_panel.open_files_dialog()

    def open_folder(self) -> None:
        self.tabs.setCurrentWidget(self.files_panel)
        self.files_panel.open_folder_dialog()

    # -- the Edit menu: the Files tab's transcript and queue ------------------------------

    def _shown_transcript(self) -> TranscriptView | None:
        """The Files tab, brought forward, and its transcript view if one is shown (else
        a word in the status bar)."""
        self.tabs.setCurrentWidget(self.files_panel)
        panel = self.files_panel
        if panel.result_pane.currentWidget() is panel.transcript:
            return panel.transcript
        self.statusBar().showMessage("Select a finished file in the Files tab first.", STATUS_MESSAGE_MS)
        return None

    def find_in_transcript(self) -> None:
        if view := self._shown_transcript():
            view.focus_search()

    def copy_transcript(self) -> None:
        if view := self._shown_transcript():
            view.copy_text()

    def export_transcript(self) -> None:
        """Opens the transcript's Export menu (its formats) under its button, without blocking."""
        if view := self._shown_transcript():
            button = view.export_button
            button.menu().popup(button.mapToGlobal(button.rect().bottomLeft()))

    def cancel_file(self) -> None:
        self.tabs.setCurrentWidget(self.files_panel)
        if not self.files_panel.cancel_selected():
            self.statusBar().showMessage(
                "Nothing to cancel: select a file that is waiting or being transcribed.", STATUS_MESSAGE_MS
            )

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001 - QDragEnterEvent
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: ANN001 - QDragMoveEvent
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001 - QDropEvent
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.files_panel)
            self.files_panel.add_paths(paths)

    def show_about(self) -> QMessageBox:
        """Opens the About box (window-modal, does not block) and returns it."""
        box = QMessageBox(self)
        box.setObjectName("aboutBox")
        box.setWindowTitle(f"About {APP_NAME}")
        box.setIconPixmap(app_icon().pixmap(64, 64))
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(about_text())
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box
