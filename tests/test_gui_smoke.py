"""The desktop app opens: title, icon, About box, and a screenshot that is not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QMessageBox

from lorawhisper_app import __version__
from lorawhisper_app.gui.main_window import ICON_PATH, MainWindow, about_text

# Git-ignored; later tests put their screenshots here too.
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def distinct_colours(image: QImage) -> int:
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    width, height = image.width(), image.height()
    stride = image.bytesPerLine() // 4
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=stride * height)
    return len(np.unique(pixels.reshape(height, stride)[:, :width]))


def test_main_window_opens_and_renders(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)

    assert window.windowTitle() == "LoRA-Whisper Studio"
    assert ICON_PATH.is_file()
    assert not window.windowIcon().isNull()
    notice = window.findChild(QLabel, "placeholderNotice")
    assert "lorawhisper transcribe FILE" in notice.text()

    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "main_window.png"
    pixmap = window.grab()
    assert pixmap.save(str(shot))
    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 400 and image.height() >= 300
    # A blank or single-colour grab has a handful of colours; rendered text has many.
    assert distinct_colours(image) > 16


def test_about_box_names_versions_and_licence(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()

    text = about_text()
    assert __version__ in text
    for name in ("Python", "Qt", "PySide6", "PyTorch", "MIT"):
        assert name in text

    window.about_action.trigger()
    box = window.findChild(QMessageBox, "aboutBox")
    assert box is not None and box.isVisible()
    assert __version__ in box.text()
    box.accept()
