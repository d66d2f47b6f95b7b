"""The main window. For now a placeholder: the desktop app is in progress; the CLI works."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox

from lorawhisper_app import __version__

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
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.resize(820, 520)

        icon_html = (
            f'<p><img src="{ICON_PATH.as_uri()}" width="96" height="96"></p>' if ICON_PATH.is_file() else ""
        )
        notice = QLabel(
            f"{icon_html}<h2>{APP_NAME}</h2>"
            "<p>The desktop app is in progress.</p>"
            "<p>Meanwhile the command line works:</p>"
            "<p><code>lorawhisper transcribe FILE</code></p>"
        )
        notice.setObjectName("placeholderNotice")
        notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        notice.setWordWrap(True)
        notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        notice.setMargin(24)
        self.setCentralWidget(notice)

        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction(f"&About {APP_NAME}", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

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
