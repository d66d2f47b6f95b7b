"""The Files tab's result pane: header, LID chart, editable segments, search, playback, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette
from PySide6.QtWidgets import QFileDialog, QLineEdit

from lorawhisper_app.core.playback import list_output_devices
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.writers import WRITERS, render
from lorawhisper_app.gui.lid_chart import LidChart
from lorawhisper_app.gui.segment_table import format_time
from lorawhisper_app.gui.transcript_view import TranscriptView, describe_adapters, describe_language

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "screenshots"
RERUN_CHOICES = [("sw", "Swahili (sw) · adapter"), ("yo", "Yoruba (yo) · adapter"), ("en", "English (en)")]
LID = {"sw": 0.91, "en": 0.04, "yo": 0.02, "lg": 0.012, "so": 0.006, "ha": 0.002}


@pytest.fixture(scope="module")
def swahili_clip(speech_dev: Path) -> dict:
    """A real Swahili recording under 20 s, with its reference text."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["language"] == "sw" and r["synthetic"] is None and r["duration_s"] < 20)
    return {**row, "path": speech_dev / row["path"]}


def make_result(clip: dict, route: Route | None = None, probs: dict[str, float] | None = None) -> TranscriptionResult:
    """The clip's reference text cut into segments of five words, timed evenly over the clip."""
    words = clip["text"].split()
    chunks = [" ".join(words[i : i + 5]) for i in range(0, len(words), 5)]
    step = clip["duration_s"] / len(chunks)
    segments = [Segment(round(i * step, 2), round((i + 1) * step, 2), f" {text}") for i, text in enumerate(chunks)]
    return TranscriptionResult(
        path=str(clip["path"]),
        duration=clip["duration_s"],
        segments=segments,
        route=route or Route("auto", "sw", 0.91, {"sw": 1.0}, "<|sw|>"),
        language_probabilities=dict(LID if probs is None else probs),
    )


@pytest.fixture
def view(qtbot) -> Iterator[TranscriptView]:
    widget = TranscriptView()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.clear()  # stops playback before a virtual audio device (set up earlier) goes


def differing_pixels(image: QImage, background: QColor) -> int:
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    stride = image.bytesPerLine() // 4
    pixels = np.frombuffer(image.constBits(), dtype=np.uint32, count=stride * image.height())
    pixels = pixels.reshape(image.height(), stride)[:, : image.width()]
    return int(np.count_nonzero(pixels != np.uint32(background.rgba())))


def pixels_of(image: QImage, colour: QColor) -> int:
    return image.width() * image.height() - differing_pixels(image, colour)


def cell_centre(view: TranscriptView, row: int, column: int) -> QPoint:
    view.table.scrollTo(view.model.index(row, column))
    return view.table.visualRect(view.model.index(row, column)).center()


def test_times_read_as_minutes_and_tenths() -> None:
    assert format_time(0) == "0:00.0"
    assert format_time(5.04) == "0:05.0"
    assert format_time(65.46) == "1:05.5"
    assert format_time(59.96) == "1:00.0"  # rounded before it is split
    assert format_time(3723.3) == "1:02:03.3"


def test_route_descriptions() -> None:
    assert describe_language(Route("auto", "sw", 0.968)) == "Swahili (sw) · 97 %"
    assert describe_language(Route("manual", "yo", None)) == "Yoruba (yo) · set by hand"
    assert describe_adapters({}) == "bare backbone"
    assert describe_adapters({"sw": 1.0}) == "sw"
    assert describe_adapters({"yo": 0.3, "sw": 0.7}) == "sw 0.70 + yo 0.30"


def test_header_shows_file_language_adapters_and_notice(view: TranscriptView, swahili_clip: dict) -> None:
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    assert view.file_label.text().startswith(swahili_clip["path"].name)
    assert view.language_label.text() == "Swahili (sw) · 91 %"
    assert view.adapter_label.text() == "sw"
    assert not view.notice_label.isVisible()

    mixed = make_result(
        swahili_clip,
        Route("moe", "sw", None, {"sw": 0.7, "yo": 0.3}, notice="No adapter for Swahili scored above 0.5."),
    )
    view.show_result(mixed, swahili_clip["path"])
    assert view.language_label.text() == "Swahili (sw) · set by hand"
    assert view.adapter_label.text() == "sw 0.70 + yo 0.30"
    assert view.notice_label.isVisible()
    assert "No adapter for Swahili scored above 0.5." in view.notice_label.text()

    view.show_result(make_result(swahili_clip, Route("auto", "sw", 0.5, {})), None)
    assert view.adapter_label.text() == "bare backbone"
    assert not view.play_button.isEnabled()

    view.clear()
    assert view.result() is None
    assert view.model.rowCount() == 0
    assert not view.export_button.isEnabled() and not view.copy_button.isEnabled()
    assert view.lid_chart.bars() == []


def test_table_lists_segments_with_times(view: TranscriptView, swahili_clip: dict) -> None:
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    model = view.model
    assert model.rowCount() == len(result.segments) >= 4
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(3)] == ["Start", "End", "Text"]
    second = result.segments[1]
    assert model.index(1, 0).data() == format_time(second.start)
    assert model.index(1, 1).data() == format_time(second.end)
    assert model.index(1, 2).data() == second.text.strip()
    assert model.index(0, 0).data() == "0:00.0"
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable
    assert model.flags(model.index(0, 2)) & Qt.ItemFlag.ItemIsEditable


def test_editing_a_segment_changes_the_result_and_its_exports(
    qtbot, view: TranscriptView, swahili_clip: dict, tmp_path: Path
) -> None:
    original = make_result(swahili_clip)
    view.show_result(original, swahili_clip["path"])
    index = view.model.index(1, 2)
    view.table.setCurrentIndex(index)
    view.table.edit(index)
    editor = view.table.viewport().findChild(QLineEdit)
    assert editor is not None and editor.text() == original.segments[1].text.strip()
    editor.setText("Maandishi yaliyosahihishwa na mtumiaji")
    with qtbot.waitSignal(view.edited, timeout=2000):
        qtbot.keyClick(editor, Qt.Key.Key_Return)

    edited = view.result()
    assert edited is not None
    assert edited.segments[1].text == "Maandishi yaliyosahihishwa na mtumiaji"
    assert edited.segments[1].start == original.segments[1].start
    assert original.segments[1].text != edited.segments[1].text  # the caller's result is left alone
    assert "Maandishi yaliyosahihishwa" in edited.text

    written = view.export_to(tmp_path / "fixed.srt", "srt")
    assert "Maandishi yaliyosahihishwa na mtumiaji" in written.read_text(encoding="utf-8")
    view.copy_text()
    assert QGuiApplication.clipboard().text() == render(edited, "txt")

    # Committing the same text again is no edit.
    with qtbot.assertNotEmitted(view.edited):
        view.model.setData(index, "  Maandishi yaliyosahihishwa na mtumiaji ")


def test_search_counts_matches_and_moves_the_selection(qtbot, view: TranscriptView, swahili_clip: dict) -> None:
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    needle = "wa"
    expected = [i for i, s in enumerate(result.segments) if needle in s.text.lower()]
    assert len(expected) >= 2

    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.search.hasFocus()
    qtbot.keyClicks(view.search, needle.upper())  # case does not matter

    def selected() -> list[int]:
        return [index.row() for index in view.table.selectionModel().selectedRows()]

    assert view.matches() == expected
    assert view.match_label.text() == f"1 of {len(expected)}"
    assert selected() == [expected[0]]
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert view.match_label.text() == f"2 of {len(expected)}"
    assert selected() == [expected[1]]
    qtbot.mouseClick(view.previous_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.previous_button, Qt.MouseButton.LeftButton)  # wraps round to the last
    assert view.match_label.text() == f"{len(expected)} of {len(expected)}"
    assert selected() == [expected[-1]]
    qtbot.keyClick(view.search, Qt.Key.Key_Return)  # and forward again to the first
    assert selected() == [expected[0]]
    qtbot.keyClick(view.search, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert selected() == [expected[-1]]
    tinted = view.model.index(expected[0], 2).data(Qt.ItemDataRole.BackgroundRole)
    assert tinted is not None

    view.search.setText("hakuna kitu kama hiki")
    assert view.matches() == [] and view.match_label.text() == "no match"
    view.search.clear()
    assert view.match_label.text() == ""


def test_clicking_a_time_plays_from_the_segment_start(qtbot, mic, view: TranscriptView, swahili_clip: dict) -> None:
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    assert view.player() is None  # created on first use only
    row = 2
    start = result.segments[row].start
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_centre(view, row, 0))
    assert view.play_request == (swahili_clip["path"], round(start * 1000))
    player = view.player()
    assert player is not None and player.path == swahili_clip["path"]
    assert player.is_playing and view.play_button.text() == "Pause"
    assert not view.message.isVisible()
    # The position advances, and the label follows it.
    qtbot.waitUntil(lambda: player.position() > start + 0.3, timeout=5000)
    qtbot.waitUntil(lambda: view.position_label.text() != f"{format_time(start)} / {format_time(result.duration)}")
    assert player.position() < start + 2.0

    # Clicking the text does not play; a later segment's End time plays from its start.
    request = view.play_request
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_centre(view, row, 2))
    assert view.play_request == request
    later = result.segments[row + 1].start
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_centre(view, row + 1, 1))
    assert view.play_request == (swahili_clip["path"], round(later * 1000))
    assert later <= player.position() < later + 0.5

    # Play/Pause pauses and goes on from there.
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    assert not player.is_playing and view.play_button.text() == "Play"
    paused_at = player.position()
    assert view.position_label.text().startswith(format_time(paused_at))
    qtbot.wait(300)
    assert player.position() == paused_at
    qtbot.mouseClick(view.play_button, Qt.MouseButton.LeftButton)
    assert player.is_playing and view.play_button.text() == "Pause"
    assert paused_at <= player.position() < paused_at + 0.3

    # From the last segment, playback ends by itself and the button says so.
    last = result.segments[-1]
    view.play_from(last.start)
    qtbot.waitUntil(lambda: view.play_button.text() == "Play", timeout=(last.end - last.start + 3) * 1000)
    assert not player.is_playing
    assert view.position_label.text() == f"{format_time(result.duration)} / {format_time(result.duration)}"

    view.clear()  # stops and forgets the file
    assert not player.is_playing and player.path is None


def test_audio_that_cannot_be_decoded_is_reported(
    qtbot, mic, view: TranscriptView, swahili_clip: dict, tmp_path: Path
) -> None:
    not_audio = tmp_path / "broken.opus"
    not_audio.write_text("no sound in here\n" * 20)
    view.show_result(make_result(swahili_clip), not_audio)
    view.toggle_playback()
    qtbot.waitUntil(lambda: view.message.isVisible(), timeout=5000)
    problem = "not an audio file or an unsupported format"
    assert view.message.text() == f"Cannot play the audio: cannot play {not_audio}: {problem}"
    assert view.play_button.text() == "Play"

    view.show_result(make_result(swahili_clip), swahili_clip["path"])  # a good file plays again
    view.toggle_playback()
    assert view.player().is_playing and not view.message.isVisible()


def test_without_an_output_device_the_message_line_says_so(qtbot, view: TranscriptView, swahili_clip: dict) -> None:
    if list_output_devices():
        pytest.skip("this machine has an audio output device")
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_centre(view, 1, 0))
    assert view.play_request == (swahili_clip["path"], round(result.segments[1].start * 1000))
    assert view.message.isVisible()
    assert view.message.text() == "Cannot play the audio: no audio output device is available"
    assert view.play_button.text() == "Play"
    view.toggle_playback()  # tries again, says the same, raises nothing
    assert view.message.text() == "Cannot play the audio: no audio output device is available"


def test_export_to_writes_every_format_atomically(view: TranscriptView, swahili_clip: dict, tmp_path: Path) -> None:
    view.show_result(make_result(swahili_clip), swahili_clip["path"])
    view.model.setData(view.model.index(0, 2), "Sentensi ya kwanza imesahihishwa")
    edited = view.result()
    assert edited is not None
    out = tmp_path / "out"
    for fmt in WRITERS:
        path = view.export_to(out / f"clip.{fmt}", fmt)
        assert path == out / f"clip.{fmt}"
        assert path.read_text(encoding="utf-8") == render(edited, fmt)
        assert str(path) in view.message.text()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"clip.{fmt}" for fmt in WRITERS)  # no temp files
    assert json.loads((out / "clip.json").read_text())["segments"][0]["text"] == "Sentensi ya kwanza imesahihishwa"


def test_export_dialog_proposes_the_stem_and_writes_there(
    qtbot, view: TranscriptView, swahili_clip: dict, tmp_path: Path
) -> None:
    result = make_result(swahili_clip)
    view.show_result(result, swahili_clip["path"])
    view.export_actions["vtt"].trigger()
    dialog = view.export_dialog
    assert isinstance(dialog, QFileDialog)
    assert dialog.isVisible() and dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
    assert Path(dialog.selectedFiles()[0]).name == f"{swahili_clip['path'].stem}.vtt"
    target = tmp_path / f"{swahili_clip['path'].stem}.vtt"
    dialog.setDirectory(str(tmp_path))
    dialog.selectFile(str(target))
    dialog.accept()
    qtbot.waitUntil(lambda: target.is_file())
    assert target.read_text(encoding="utf-8") == render(result, "vtt")
    qtbot.waitUntil(lambda: view.export_dialog is None)


def test_export_to_an_unwritable_place_shows_the_error(
    qtbot, view: TranscriptView, swahili_clip: dict, tmp_path: Path
) -> None:
    view.show_result(make_result(swahili_clip), swahili_clip["path"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OSError):
        view.export_to(blocker / "clip.srt", "srt")
    assert view.message.isVisible()
    assert view.message.text().startswith(f"Could not export to {blocker / 'clip.srt'}")
    view.message.hide()

    view.export_actions["txt"].trigger()  # through the dialog: the error shows, nothing is raised
    dialog = view.export_dialog
    assert dialog is not None
    dialog.selectFile(str(blocker / "clip.txt"))
    dialog.fileSelected.emit(str(blocker / "clip.txt"))
    assert view.message.isVisible() and "Could not export" in view.message.text()
    dialog.reject()


def test_rerun_buttons_emit_the_language(qtbot, view: TranscriptView, swahili_clip: dict) -> None:
    view.show_result(make_result(swahili_clip), swahili_clip["path"])
    assert not view.rerun_button.isEnabled()  # no languages offered yet
    view.set_rerun_languages(RERUN_CHOICES)
    view.rerun_box.setCurrentIndex(1)
    with qtbot.waitSignal(view.rerun_requested, timeout=1000) as chosen:
        qtbot.mouseClick(view.rerun_button, Qt.MouseButton.LeftButton)
    assert chosen.args == ["yo"]

    assert view.rerun_second_button.isVisible()
    assert view.rerun_second_button.text() == "Re-run as English (en)"
    with qtbot.waitSignal(view.rerun_requested, timeout=1000) as second:
        qtbot.mouseClick(view.rerun_second_button, Qt.MouseButton.LeftButton)
    assert second.args == ["en"]

    view.show_result(make_result(swahili_clip, probs={"sw": 1.0}), swahili_clip["path"])
    assert not view.rerun_second_button.isVisible()


def test_lid_chart_paints_the_top_five_and_highlights_the_route(qtbot) -> None:
    chart = LidChart()
    qtbot.addWidget(chart)
    chart.resize(chart.sizeHint())
    chart.show()
    qtbot.waitExposed(chart)
    assert 240 <= chart.sizeHint().width() <= 300 and 100 <= chart.sizeHint().height() <= 160
    background = chart.palette().color(QPalette.ColorRole.Window)
    accent = chart.palette().color(QPalette.ColorRole.Highlight)

    chart.set_probabilities({})
    empty = chart.grab().toImage()
    assert differing_pixels(empty, background) > 0  # the "no language identification" text

    chart.set_probabilities(LID, highlight="sw")
    assert [code for code, _ in chart.bars()] == ["sw", "en", "yo", "lg", "so"]
    image = chart.grab().toImage()
    assert differing_pixels(image, background) > differing_pixels(empty, background)
    accented = pixels_of(image, accent)
    assert accented > 200  # the 91 % bar

    chart.set_probabilities(LID, highlight="en")
    assert 0 < pixels_of(chart.grab().toImage(), accent) < accented / 5  # a 4 % bar is short
    chart.set_probabilities(LID)
    assert pixels_of(chart.grab().toImage(), accent) == 0

    chart.set_probabilities(LID, highlight="sw")
    SCREENSHOTS.mkdir(exist_ok=True)
    assert chart.grab().save(str(SCREENSHOTS / "lid_chart.png"))


def test_screenshot_of_a_swahili_transcript(qtbot, view: TranscriptView, speech_dev: Path, swahili_clip: dict) -> None:
    """Several Swahili recordings' texts, one after the other, as one longer transcript."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    readings = [r for r in rows if r["language"] == "sw" and r["synthetic"] is None][:4]
    segments: list[Segment] = []
    clock = 0.0
    for reading in readings:
        words = reading["text"].split()
        chunks = [" ".join(words[i : i + 9]) for i in range(0, len(words), 9)]
        step = reading["duration_s"] / len(chunks)
        for chunk in chunks:
            segments.append(Segment(round(clock, 2), round(clock + step, 2), f" {chunk}"))
            clock += step
    result = make_result(swahili_clip)
    result.segments, result.duration = segments, clock
    view.set_rerun_languages(RERUN_CHOICES)
    view.show_result(result, swahili_clip["path"])
    view.search.setText("Israeli")
    assert view.match_label.text() == "1 of 2"
    button = view.rerun_second_button
    qtbot.waitUntil(lambda: button.width() >= button.sizeHint().width())  # the layout has caught up
    SCREENSHOTS.mkdir(exist_ok=True)
    image = view.grab()
    assert (image.width(), image.height()) == (900, 600)
    assert image.save(str(SCREENSHOTS / "transcript_view.png"))
