"""The welcome shown on the app's first start: where things are kept, how to add a language,
how to switch to a larger backbone.

It is shown once per user: a marker file in the config folder records that it was shown.
The dialog is not modal, so the window behind it stays usable.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from lorawhisper_app.core.adapter_store import default_user_adapter_dir
from lorawhisper_app.core.job_store import default_jobs_dir
from lorawhisper_app.core.settings import backbones_dir, config_dir, settings_path

MARKER_NAME = "welcome-shown"
CLI_NAME = "lorawhisper"
TEXT_WIDTH = 600  # pixels


def cli_command() -> str:
    """How to call the command line from here: the `lorawhisper` beside this program (the
    bundle's link, or the script in the virtual environment), else the bare name."""
    beside = Path(sys.executable).with_name(CLI_NAME)
    return str(beside) if beside.is_file() else CLI_NAME


@dataclass(frozen=True)
class Places:
    """The folders the welcome names."""

    models: Path
    adapters: Path
    transcripts: Path
    settings: Path

    @classmethod
    def current(cls) -> Places:
        return cls(backbones_dir(), default_user_adapter_dir(), default_jobs_dir(), settings_path())


def welcome_html(places: Places, cli: str) -> str:
    """The welcome's text (rich text)."""

    def code(value: object) -> str:
        return f"<code>{html.escape(str(value))}</code>"

    rows = [
        ("Models", places.models, "the built-in Whisper base, converted on first use"),
        ("Your adapters", places.adapters, "trained or imported; the shipped ones come with the app"),
        ("Transcripts", places.transcripts, "the queue and every finished transcript"),
        ("Settings", places.settings, ""),
    ]
    table = "".join(
        f"<tr><td><b>{name}</b>&nbsp;</td><td>{code(path)}<br><small>{html.escape(note)}</small></td></tr>"
        for name, path, note in rows
    )
    return (
        "<h3>Welcome to LoRA-Whisper Studio</h3>"
        "<p>Everything runs on this computer: no audio or text leaves it. "
        "Drop audio files on the window to transcribe them.</p>"
        f"<p><b>Where things are kept</b></p><table cellspacing='4'>{table}</table>"
        "<p><b>Adding a language</b>: File › Add a Language… trains an adapter for it on your "
        "own recordings, step by step, and installs it. On the command line the same is "
        f"{code(cli + ' train RECORDINGS --language CODE')}, where RECORDINGS is a folder of audio "
        "files with a same-named <code>.txt</code> transcript each, or a CSV/TSV or JSONL list. "
        "An adapter someone else trained comes in with Import… in the Adapters tab.</p>"
        "<p><b>A larger backbone</b>: File › Settings… › Backbone takes a Hugging Face model id "
        "such as <code>openai/whisper-small</code> (downloaded once, so it needs the network then) "
        "or the folder of a local transformers Whisper model. Adapters work only with the backbone "
        "they were trained on: a new backbone needs its own.</p>"
    )


def marker_path() -> Path:
    return config_dir() / MARKER_NAME


def welcome_due() -> bool:
    """Whether the welcome has not been shown to this user yet."""
    return not marker_path().exists()


def mark_welcome_shown() -> None:
    """Record that the welcome was shown. A config folder that cannot be written only means
    the welcome comes again next time."""
    try:
        marker_path().parent.mkdir(parents=True, exist_ok=True)
        marker_path().touch()
    except OSError:
        pass


class WelcomeDialog(QDialog):
    """The welcome, non-modal, closed with its one button."""

    def __init__(self, places: Places, cli: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomeDialog")
        self.setWindowTitle("Welcome")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        self.text = QLabel(welcome_html(places, cli), objectName="welcomeText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A window's layout does not ask a wrapped label how tall it is at a given width, so
        # the width is fixed and the height it needs there made its minimum: no line is cut.
        self.text.setFixedWidth(TEXT_WIDTH)
        self.text.setMinimumHeight(self.text.heightForWidth(TEXT_WIDTH))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Get started")
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


def show_welcome(parent: QWidget | None = None) -> WelcomeDialog:
    """Show the welcome now (Help › Welcome… can call this) and record it as shown."""
    dialog = WelcomeDialog(Places.current(), cli_command(), parent)
    dialog.show()
    mark_welcome_shown()
    return dialog


def show_welcome_if_first_run(parent: QWidget | None = None) -> WelcomeDialog | None:
    """Show the welcome on the first start only; returns it, or None when it was shown before."""
    return show_welcome(parent) if welcome_due() else None
