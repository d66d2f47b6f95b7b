"""Recording sessions (the engine side of the wizard's recording flow), on a real clip."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lorawhisper_app.core.audio import SAMPLE_RATE, load_audio
from lorawhisper_app.core.training.datasets import load_dataset
from lorawhisper_app.core.training.recording_session import RecordingError, RecordingSession, peak_db, read_sentences

SENTENCES = ["Habari ya asubuhi.", "Leo ni siku nzuri sana.", "Watoto wanacheza nje.", "Asante kwa kusikiliza."]


@pytest.fixture(scope="module")
def speech(speech_dev: Path) -> np.ndarray:
    """A real Swahili dev clip, 16 kHz float32."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    row = next(r for r in rows if r["language"] == "sw" and 3 < r["duration_s"] < 10)
    return load_audio(speech_dev / row["path"])


@pytest.fixture
def sentences(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    # A blank line and stray spaces: neither makes a sentence or changes one.
    path.write_text(f"{SENTENCES[0]}\n\n  {SENTENCES[1].replace(' ', '  ')}  \n" + "\n".join(SENTENCES[2:]) + "\n")
    return path


def test_sentences_skip_blank_lines_and_collapse_spaces(sentences: Path) -> None:
    assert read_sentences(sentences) == SENTENCES


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"\n  \n", "no sentences in it"), (b"caf\xe9\n", "not UTF-8 text (byte 3)")],
)
def test_unusable_sentences_file_is_named_with_the_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=f"{path}: {re.escape(problem)}"):
        RecordingSession(path, tmp_path / "takes")


def test_takes_are_saved_as_audio_and_transcript_pairs_the_trainer_reads(
    sentences: Path, tmp_path: Path, speech: np.ndarray
) -> None:
    folder = tmp_path / "takes"
    session = RecordingSession(sentences, folder)
    takes = {0: speech, 2: speech[: len(speech) // 2]}
    for index, audio in takes.items():
        assert session.save(index, audio) == folder / f"{index + 1:04d}.flac"

    assert sorted(p.name for p in folder.iterdir()) == ["0001.flac", "0001.txt", "0003.flac", "0003.txt"]
    for index, audio in takes.items():
        saved, rate = sf.read(folder / f"{index + 1:04d}.flac", dtype="float32")
        assert rate == SAMPLE_RATE and len(saved) == len(audio)
        assert np.max(np.abs(saved - audio)) <= 1 / 32767 + 1e-6  # 16-bit FLAC: quantised, nothing else
        assert (folder / f"{index + 1:04d}.txt").read_text() == SENTENCES[index] + "\n"
    assert session.recorded() == [0, 2]
    assert session.recorded_seconds() == pytest.approx(sum(len(a) for a in takes.values()) / SAMPLE_RATE, abs=1e-3)

    report = load_dataset(folder, dev_fraction=0.0)
    assert report.layout == "folder" and not report.problems
    assert sorted((c.id, c.text) for c in report.train + report.dev) == [
        ("0001.flac", SENTENCES[0]), ("0003.flac", SENTENCES[2]),
    ]


def test_reopening_goes_on_after_the_last_sentence_recorded(sentences: Path, tmp_path: Path, speech: np.ndarray) -> None:
    folder = tmp_path / "takes"
    first = RecordingSession(sentences, folder)
    assert first.next_pending() == 0 and first.resume_at() == 0
    first.save(0, speech)
    first.save(2, speech)  # sentence 1 was skipped

    again = RecordingSession(sentences, folder)
    assert again.recorded() == [0, 2]
    assert again.resume_at() == 3  # not back to the skipped one
    assert again.next_pending() == 1
    assert again.next_pending(after=1) == 3
    assert again.next_pending(after=3) == 1  # wraps round to what was skipped
    again.save(1, speech)
    again.save(3, speech)
    assert again.next_pending() is None


def test_a_second_take_replaces_the_first(sentences: Path, tmp_path: Path, speech: np.ndarray) -> None:
    session = RecordingSession(sentences, tmp_path / "takes")
    session.save(1, speech)
    session.save(1, speech[: SAMPLE_RATE])
    assert sf.info(session.audio_path(1)).duration == pytest.approx(1.0)
    assert sorted(p.name for p in session.folder.iterdir()) == ["0002.flac", "0002.txt"]  # no temporary file left


def test_a_folder_of_other_sentences_is_refused(sentences: Path, tmp_path: Path, speech: np.ndarray) -> None:
    folder = tmp_path / "takes"
    RecordingSession(sentences, folder).save(1, speech)
    other = tmp_path / "other.txt"
    other.write_text("Moja.\nMbili.\n")
    with pytest.raises(RecordingError, match="0002.txt does not hold sentence 2 of other.txt"):
        RecordingSession(other, folder)


def test_sentences_file_inside_the_folder_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "takes" / "sentences.txt"
    inside.parent.mkdir()
    inside.write_text("Habari.\n")
    with pytest.raises(RecordingError, match="keep the sentences file outside the recordings folder"):
        RecordingSession(inside, tmp_path / "takes")


@pytest.mark.parametrize(("seconds", "problem"), [(0.1, "0.1 s long: nothing to save"), (31.0, "over the trainer's 30 s limit")])
def test_takes_too_short_or_too_long_are_refused(sentences: Path, tmp_path: Path, seconds: float, problem: str) -> None:
    session = RecordingSession(sentences, tmp_path / "takes")
    with pytest.raises(RecordingError, match=f"sentence 1: .*{re.escape(problem)}"):
        session.save(0, np.full(int(seconds * SAMPLE_RATE), 0.1, np.float32))
    assert session.recorded() == [] and list(session.folder.iterdir()) == []


def test_peak_level(speech: np.ndarray) -> None:
    assert peak_db(np.zeros(100, np.float32)) == -math.inf
    assert peak_db(np.array([0.0, -0.5, 0.25], np.float32)) == pytest.approx(-6.02, abs=0.01)
    assert -30 < peak_db(speech) <= 0
