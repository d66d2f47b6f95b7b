"""The main window: a Files tab (still a placeholder: the CLI works) and the Live tab."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget

from lorawhisper_app import __version__
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.live_panel import LivePanel

APP_NAME = "LoRA-Whisper Studio"
ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icon.svg"


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


class MainWindow(QMainWindow):
    """`holder` loads the engine in the background; the app starts it, tests may inject one."""

    def __init__(self, holder: EngineHolder | None = None) -> None:
        super().__init__()
        self.holder = holder or EngineHolder(parent=self)
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.resize(900, 560)

        icon_html = (
            f'<p><img src="{ICON_PATH.as_uri()}" width="96" height="96"></p>' if ICON_PATH.is_file() else ""
        )
        notice = QLabel(
            f"{icon_html}<h2>{APP_NAME}</h2>"
            "<p>File transcription in this window is in progress.</p>"
            "<p>Meanwhile the command line works:</p>"
            "<p><code>lorawhisper transcribe FILE</code></p>"
            "<p>The Live tab transcribes the microphone.</p>"
        )
        notice.setObjectName("placeholderNotice")
        notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        notice.setWordWrap(True)
        notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        notice.setMargin(24)
        self.live_panel = LivePanel(self.holder)
        self.tabs = QTabWidget(objectName="mainTabs")
        self.tabs.addTab(notice, "&Files")
        self.tabs.addTab(self.live_panel, "&Live")
        self.setCentralWidget(self.tabs)
        self.engine_state = QLabel("Backbone not loaded", objectName="engineState")
        self.statusBar().addPermanentWidget(self.engine_state)
        self.holder.state_changed.connect(self.engine_state.setText)

        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    def closeEvent(self, event) -> None:  # noqa: ANN001 - QCloseEvent
        self.live_panel.shutdown()
        super().closeEvent(event)

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
