"""A message shown above a panel's content until it is dismissed, coloured by its kind."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

# Light bars with dark text of their own, so that they read the same under a dark theme:
# background, border, text.
COLOURS = {
    "info": ("#e3ecff", "#9db4e8", "#1b2f5e"),
    "warning": ("#fff4ce", "#e0c060", "#3d3000"),
    "error": ("#fde7e9", "#e8a0a8", "#5f1018"),
}


def bar_style(object_name: str, kind: str) -> str:
    """The style sheet of a framed bar named `object_name`, in the colours of `kind`."""
    background, border, colour = COLOURS[kind]
    return (f"#{object_name} {{ background: {background}; border: 1px solid {border}; border-radius: 4px; }}"
            f"#{object_name} QLabel {{ color: {colour}; }}")


class MessageBar(QFrame):
    """Hidden until `show_message`; its ✕ hides it. Object names: `<prefix>MessageBar`, and
    `<prefix>Message` and `<prefix>MessageClose` for the text and the button."""

    def __init__(self, prefix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName=f"{prefix}MessageBar")
        self.message = QLabel(objectName=f"{prefix}Message", wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self, text="✕", objectName=f"{prefix}MessageClose", autoRaise=True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.message, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: str = "warning") -> None:
        self.setStyleSheet(bar_style(self.objectName(), kind))
        self.message.setText(text)
        self.show()
