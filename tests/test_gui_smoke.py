"""The desktop app opens: title, icon, its three tabs, About box, and a screenshot that is
not blank; the transcript pane leaves the file queue its room."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox, QSplitter

from lorawhisper_app import __version__
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.gui.adapter_manager import AdapterManager
from lorawhisper_app.gui.files_panel import FilesPanel
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
    tabs = window.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["F&iles", "&Live", "&Adapters"]
    assert isinstance(tabs.widget(0), FilesPanel) and tabs.currentWidget() is window.files_panel
    assert isinstance(tabs.widget(2), AdapterManager) and tabs.widget(2) is window.adapter_manager
    assert "Drop audio files" in window.files_panel.placeholder.text()
    assert window.engine_state.text() == "Backbone not loaded"  # the app starts loading it, not the window

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


def test_the_transcript_pane_stays_narrow_enough_for_the_queue(qtbot):
    """A long file name, a re-run offer and an hour-long duration: the pane stacks its parts
    rather than asking for more width, and the title is shortened with the path in its tooltip."""
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    view = window.files_panel.transcript
    view.set_rerun_languages([("rw", "Kinyarwanda (rw) ★ adapter"), ("sw", "Swahili (sw) ★ adapter")])
    path = "/recordings/2024/kigali_city_council_meeting_morning_session_part_three_of_five.flac"
    route = Route("auto", "rw", 0.64, {"rw": 0.7, "sw": 0.3}, "sw")
    segments = [Segment(0.0, 4.0, " Muraho neza")]
    view.show_result(TranscriptionResult(path, 3725.0, segments, route, {"rw": 0.64, "sw": 0.31}), None)
    window.files_panel.result_pane.setCurrentWidget(view)
    assert view.rerun_second_button.isVisible()
    assert view.minimumSizeHint().width() <= 380

    splitter = window.files_panel.findChild(QSplitter, "filesSplitter")
    splitter.setSizes([10_000, 1])  # the queue as wide as it may be
    qtbot.waitUntil(lambda: view.width() <= 380)
    title = view.file_label
    assert "…" in title.text() and title.text().endswith("·  1:02:05.0") and title.toolTip() == path
    assert title.fontMetrics().horizontalAdvance(title.text()) <= title.width()
    assert view.lid_chart.y() > view.rerun_second_button.y()  # the chart went under the text
