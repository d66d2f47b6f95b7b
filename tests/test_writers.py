import errno
import json
import os
import re
from pathlib import Path

import pytest
from conftest import fill_up

from lorawhisper_app.core import writers
from lorawhisper_app.core.results import Route, Segment, TranscriptionResult
from lorawhisper_app.core.writers import WRITERS, render, write_result

RESULT = TranscriptionResult(
    path="/recordings/morning talk.wav",
    duration=3730.0,
    segments=[
        Segment(0.0, 2.5004, " Ẹ kú àárọ̀, Grüße "),
        Segment(2.5004, 59.9996, "Tom & Jerry --> <i>now</i>"),
        Segment(59.9996, 61.0, "   "),
        Segment(3725.1234, 3729.0, " Line one\n\nline two "),
    ],
    route=Route(mode="manual", language="yo", language_probability=None, adapters={"yo": 1.0}),
)
SPOKEN = [s for s in RESULT.segments if s.text.strip()]

EXPECTED = {
    "txt": "Ẹ kú àárọ̀, Grüße\nTom & Jerry --> <i>now</i>\nLine one line two\n",
    "srt": (
        "1\n00:00:00,000 --> 00:00:02,500\nẸ kú àárọ̀, Grüße\n\n"
        "2\n00:00:02,500 --> 00:01:00,000\nTom & Jerry -> <i>now</i>\n\n"
        "3\n01:02:05,123 --> 01:02:09,000\nLine one line two\n"
    ),
    "vtt": (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.500\nẸ kú àárọ̀, Grüße\n\n"
        "00:00:02.500 --> 00:01:00.000\nTom &amp; Jerry --&gt; &lt;i&gt;now&lt;/i&gt;\n\n"
        "01:02:05.123 --> 01:02:09.000\nLine one line two\n"
    ),
}
TIMING = re.compile(r"^(\d{2}):(\d{2}):(\d{2})[,.](\d{3}) --> (\d{2}):(\d{2}):(\d{2})[,.](\d{3})$")


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt"])
def test_render_exact(fmt):
    assert render(RESULT, fmt) == EXPECTED[fmt]


def test_json_is_the_result_dict_unescaped():
    text = render(RESULT, "json")
    assert json.loads(text) == RESULT.to_dict()
    assert "Ẹ kú àárọ̀" in text and "Grüße" in text
    assert text.startswith('{\n  "path"') and text.endswith("}\n")


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_timestamps_parse_back(fmt):
    timings = [TIMING.match(line) for line in render(RESULT, fmt).splitlines() if "-->" in line]
    assert all(timings) and len(timings) == len(SPOKEN)
    for match, segment in zip(timings, SPOKEN):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        assert 0 <= m1 < 60 and 0 <= s1 < 60 and ms1 < 1000 and m2 < 60 and s2 < 60 and ms2 < 1000
        assert abs(h1 * 3600 + m1 * 60 + s1 + ms1 / 1000 - segment.start) <= 0.0005 + 1e-9
        assert abs(h2 * 3600 + m2 * 60 + s2 + ms2 / 1000 - segment.end) <= 0.0005 + 1e-9


def test_empty_transcript():
    empty = TranscriptionResult("a.wav", 1.0, [Segment(0.0, 1.0, " ")], RESULT.route)
    assert render(empty, "txt") == ""
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="txt, srt, vtt, json"):
        render(RESULT, "docx")
    with pytest.raises(ValueError):
        write_result(RESULT, "docx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_writers_table():
    assert sorted(WRITERS) == ["json", "srt", "txt", "vtt"]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_write_result_creates_folder_and_file(tmp_path, fmt):
    out_dir = tmp_path / "a" / "b"
    path = write_result(RESULT, fmt, out_dir)
    assert path == out_dir / f"morning talk.{fmt}"
    assert path.read_bytes() == render(RESULT, fmt).encode("utf-8")
    assert os.listdir(out_dir) == [path.name]


def test_write_result_replaces_existing(tmp_path):
    (tmp_path / "morning talk.txt").write_text("old\n", encoding="utf-8")
    write_result(RESULT, "txt", tmp_path)
    assert (tmp_path / "morning talk.txt").read_text(encoding="utf-8") == EXPECTED["txt"]


def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, step):
    target = tmp_path / "morning talk.srt"
    target.write_text("old subtitles\n", encoding="utf-8")
    monkeypatch.setattr(writers.os, step, _fail)
    with pytest.raises(OSError, match="No space left"):
        write_result(RESULT, "srt", tmp_path)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "old subtitles\n"
    assert os.listdir(tmp_path) == [target.name]


def test_failed_write_without_old_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(writers.os, "replace", _fail)
    with pytest.raises(OSError):
        write_result(RESULT, "json", tmp_path)
    monkeypatch.undo()
    assert list(Path(tmp_path).iterdir()) == []


def test_a_really_full_disk_keeps_the_old_file_and_leaves_no_temp(small_disk):
    """The same on a real filesystem that has no room left (a 64 KiB tmpfs filled by dd)."""
    disk = small_disk("64k")
    target = disk / "morning talk.srt"
    target.write_text("old subtitles\n", encoding="utf-8")
    fill_up(disk)
    with pytest.raises(OSError) as caught:
        write_result(RESULT, "srt", disk)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text(encoding="utf-8") == "old subtitles\n"
    assert sorted(os.listdir(disk)) == ["filler", target.name]
