"""Tests for lorawhisper_app.core.training.datasets on real Swahili clips of ../shared."""

from __future__ import annotations

import csv
import json
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lorawhisper_app.core.audio import SAMPLE_RATE, load_audio
from lorawhisper_app.core.evaluation import read_clips
from lorawhisper_app.core.training.datasets import (
    MAX_CLIP_SECONDS,
    DatasetError,
    DatasetReport,
    ListedClip,
    list_transcribed,
    load_dataset,
    require_enough,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SPEECH = REPO_ROOT.parent / "shared" / "data" / "speech"
TRAIN_MANIFEST = SHARED_SPEECH / "train" / "manifest.jsonl"


@pytest.fixture(scope="session")
def swahili() -> list[dict]:
    """The Swahili rows of the shared training manifest, shortest clip first."""
    if not TRAIN_MANIFEST.is_file():
        pytest.skip(f"../shared/data/speech/train is absent: no {TRAIN_MANIFEST}")
    rows = [json.loads(line) for line in TRAIN_MANIFEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [dict(row, path=TRAIN_MANIFEST.parent / row["path"]) for row in rows if row["language"] == "sw"]
    return sorted(rows, key=lambda row: row["duration_s"])


def copy_clips(rows: list[dict], folder: Path) -> list[Path]:
    """Copy the rows' audio into ``folder``; return the copies in the same order."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(row["path"], folder / row["path"].name)) for row in rows]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def jsonl_dataset(rows: list[dict], folder: Path) -> Path:
    """A manifest in ``folder`` listing copies of ``rows`` under audio/, by relative path."""
    copies = copy_clips(rows, folder / "audio")
    items = [{"id": row["id"], "path": f"audio/{c.name}", "text": row["text"]} for row, c in zip(rows, copies)]
    return write_jsonl(folder / "manifest.jsonl", items)


def problems_by_path(report: DatasetReport) -> dict[Path, tuple[str, str]]:
    return {p.path: (p.kind, p.detail) for p in report.problems}


def test_folder_layout_pairs_audio_with_transcripts(swahili: list[dict], tmp_path: Path) -> None:
    rows = swahili[:4]
    copies = copy_clips(rows[:2], tmp_path / "a") + copy_clips(rows[2:], tmp_path / "b" / "c")
    for row, copy in zip(rows, copies):
        copy.with_suffix(".txt").write_text(f"  {row['text']}\n\n ", encoding="utf-8")
    copy_clips(swahili[4:5], tmp_path / "a")  # audio without a transcript
    (tmp_path / "b" / "orphan.txt").write_text("no audio for this", encoding="utf-8")

    report = load_dataset(tmp_path)

    assert report.layout == "folder"
    clips = {clip.id: clip for clip in report.train + report.dev}
    assert set(clips) == {c.relative_to(tmp_path).as_posix() for c in copies}
    for row, copy in zip(rows, copies):
        clip = clips[copy.relative_to(tmp_path).as_posix()]
        assert clip.audio == copy and clip.text == row["text"]
        assert clip.duration == pytest.approx(row["duration_s"], abs=0.05)
    assert problems_by_path(report) == {
        tmp_path / "a" / swahili[4]["path"].name: (
            "missing transcript", f"no {swahili[4]['path'].with_suffix('.txt').name} beside it: left out"),
        tmp_path / "b" / "orphan.txt": ("missing audio", "no audio file named orphan.* beside it: left out"),
    }


@pytest.mark.parametrize(
    ("name", "delimiter", "header"),
    [
        ("data.csv", ",", ["Speaker", "File", "Transcription"]),
        ("data.tsv", "\t", ["client_id", "AUDIO_PATH", "sentence"]),
        ("tabs.csv", "\t", ["age", "wav", "normalized_text"]),  # delimiter sniffed from the header
    ],
)
def test_table_layouts(swahili: list[dict], tmp_path: Path, name: str, delimiter: str, header: list[str]) -> None:
    rows = swahili[:3]
    copies = copy_clips(rows, tmp_path / "clips")
    texts = [row["text"] for row in rows]
    texts[0] = f"{texts[0]}, na zaidi"  # a comma inside a CSV field is quoted
    with (tmp_path / name).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(["x", f"clips/{copy.name}", text] for copy, text in zip(copies, texts))

    report = load_dataset(tmp_path / name)

    assert report.layout == Path(name).suffix[1:]
    assert [(c.id, c.audio, c.text) for c in report.train] == [
        (f"clips/{copy.name}", copy, text) for copy, text in zip(copies, texts)
    ]
    assert report.dev == [] and report.problems == []


def test_table_without_known_columns_names_file_and_columns(tmp_path: Path) -> None:
    table = tmp_path / "data.csv"
    table.write_text("clip,words\na.wav,hello\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"data\.csv: needs an audio path column .*columns found: clip, words$"):
        load_dataset(table)


def test_jsonl_layout_keeps_the_chosen_language(swahili: list[dict], tmp_path: Path) -> None:
    rows = swahili[:4]
    copies = copy_clips(rows, tmp_path / "audio")
    items = [
        {"id": rows[0]["id"], "path": f"audio/{copies[0].name}", "text": rows[0]["text"], "language": "sw"},
        {"path": str(copies[1]), "text": rows[1]["text"]},  # absolute path, no id, no language
        {"id": "english", "path": f"audio/{copies[2].name}", "text": "not Swahili", "language": "en"},
        {"id": rows[3]["id"], "path": f"audio/{copies[3].name}", "text": rows[3]["text"], "language": "SW"},
    ]
    manifest = write_jsonl(tmp_path / "manifest.jsonl", items)

    report = load_dataset(manifest, language="sw")

    assert report.layout == "jsonl"
    assert [(c.id, c.audio, c.text) for c in report.train] == [
        (rows[0]["id"], copies[0], rows[0]["text"]),
        (f"audio/{copies[1].name}", copies[1], rows[1]["text"]),
        (rows[3]["id"], copies[3], rows[3]["text"]),
    ]
    assert report.problems == []


def test_jsonl_bad_line_names_file_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"path": "a.wav", "text": "one"}\n\n{"path": "b.wav"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"manifest\.jsonl:3: expected a JSON object"):
        load_dataset(manifest)
    manifest.write_text('{"path": "a.wav", "text": "one"}\n{"path": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"manifest\.jsonl:2: not valid JSON"):
        load_dataset(manifest)


def write_cv_table(path: Path, rows: list[dict], copies: list[Path]) -> None:
    lines = ["client_id\tpath\tsentence\tup_votes"]
    lines += [f"spk\t{copy.name}\t{row['text']}\t2" for row, copy in zip(rows, copies)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_common_voice_folder_with_its_dev_split(swahili: list[dict], tmp_path: Path) -> None:
    rows = [dict(row) for row in swahili[:5]]
    rows[0]["text"] = f'"Habari" {rows[0]["text"]}'  # Common Voice tables are not quoted
    copies = copy_clips(rows, tmp_path / "clips")
    write_cv_table(tmp_path / "validated.tsv", rows, copies)  # validated.tsv lists the dev clips too
    write_cv_table(tmp_path / "dev.tsv", rows[3:], copies[3:])

    report = load_dataset(tmp_path)

    assert report.layout == "common voice" and report.dev_given
    assert [(c.id, c.text) for c in report.train] == [(f"clips/{c.name}", r["text"]) for r, c in zip(rows[:3], copies)]
    assert [c.audio for c in report.dev] == copies[3:]
    assert report.problems == []

    write_cv_table(tmp_path / "train.tsv", rows[:2], copies[:2])  # preferred over validated.tsv
    assert [c.audio for c in load_dataset(tmp_path).train] == copies[:2]


def test_listing_for_scoring_takes_the_held_out_part_and_leaves_out_what_needs_no_decoding(
    swahili: list[dict], tmp_path: Path
) -> None:
    """What `lorawhisper evaluate` scores: a Common Voice folder's dev.tsv when it has one, else its whole
    table; empty transcripts, missing audio and duplicates left out with their reasons, audio unread."""
    rows = [dict(row) for row in swahili[:5]]
    copies = copy_clips(rows, tmp_path / "clips")
    write_cv_table(tmp_path / "validated.tsv", rows, copies)
    listed = list_transcribed(tmp_path)
    assert listed.part == "" and [clip.audio for clip in listed.clips] == copies and listed.problems == []

    rows[4]["text"] = " "
    write_cv_table(tmp_path / "dev.tsv", [rows[2], rows[3], rows[3], rows[4]], [copies[2], copies[3], copies[3], copies[4]])
    copies[2].unlink()
    listed = list_transcribed(tmp_path)
    assert listed.part == "dev.tsv"
    assert listed.clips == [ListedClip(copies[3], "", rows[3]["text"], f"clips/{copies[3].name}")]
    assert [(p.kind, p.path) for p in listed.problems] == [
        ("missing audio", copies[2]), ("duplicate", copies[3]), ("empty transcript", copies[4])]


def test_scoring_a_manifest_keeps_each_rows_language(swahili: list[dict], tmp_path: Path) -> None:
    """`lorawhisper evaluate` scores a JSONL manifest per language; a row without one gets the language
    named on the command line, as the clips of the other layouts do."""
    copies = copy_clips(swahili[:3], tmp_path)
    languages = [{"language": "sw"}, {"language": "yo"}, {}]
    manifest = write_jsonl(tmp_path / "mixed.jsonl", [
        {"path": copy.name, "text": row["text"], **language} for copy, row, language in zip(copies, swahili, languages)])
    assert [clip.language for clip in list_transcribed(manifest).clips] == ["sw", "yo", ""]
    clips = read_clips(manifest, "ha")
    assert [(clip.audio, clip.language) for clip in clips.rows] == [(copies[0], "sw"), (copies[1], "yo"), (copies[2], "ha")]
    assert clips.left_out == [] and clips.part == ""


@pytest.mark.parametrize("name", ["notes.txt", "empty-folder", "missing.jsonl"])
def test_other_paths_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("hello", encoding="utf-8")
    elif "folder" in name:
        path.mkdir()
    with pytest.raises(DatasetError, match=rf"{name}: (not found|.*expected a folder of audio files)"):
        load_dataset(path)


def test_problems_are_all_reported_with_the_file(swahili: list[dict], tmp_path: Path) -> None:
    rows = swahili[:5]
    copies = copy_clips(rows, tmp_path / "audio")
    truncated = tmp_path / "audio" / "truncated.opus"
    truncated.write_bytes(copies[0].read_bytes()[:600])
    not_audio = tmp_path / "audio" / "notes.wav"
    not_audio.write_text("this is text, not audio\n", encoding="utf-8")
    same_bytes = tmp_path / "audio" / "copy.opus"
    shutil.copy(copies[1], same_bytes)
    long_wav = tmp_path / "audio" / "long.wav"
    joined = np.concatenate([load_audio(row["path"]) for row in swahili[-2:]])  # two of the longest clips
    assert len(joined) > (MAX_CLIP_SECONDS + 1) * SAMPLE_RATE
    sf.write(long_wav, joined, SAMPLE_RATE, subtype="PCM_16")
    listed = [(c, r["text"]) for c, r in zip(copies, rows)] + [
        (truncated, "kata"), (not_audio, "maandishi"), (tmp_path / "audio" / "gone.opus", "hakuna"),
        (copies[2], rows[2]["text"]), (same_bytes, "nakala"), (long_wav, "ndefu"),
    ]
    items = [{"path": f"audio/{path.name}", "text": text} for path, text in listed]
    items[4]["text"] = " \t "
    manifest = write_jsonl(tmp_path / "manifest.jsonl", items)

    report = load_dataset(manifest)

    assert [c.audio for c in report.train + report.dev] == copies[:4]
    found = problems_by_path(report)
    assert found[truncated] == ("unreadable audio", "corrupt or truncated audio: cannot read the header")
    assert found[not_audio] == ("unreadable audio", "not an audio file or an unsupported format")
    assert found[tmp_path / "audio" / "gone.opus"] == (
        "missing audio", "listed on line 8 of manifest.jsonl, but not found: left out")
    assert found[copies[4]] == ("empty transcript", "no text on line 5 of manifest.jsonl: left out")
    assert found[same_bytes] == ("duplicate", f"same audio as audio/{copies[1].name}: left out")
    assert found[long_wav] == ("too long", f"{len(joined) / SAMPLE_RATE:.1f} s, over the 30 s limit: left out")
    assert [p.detail for p in report.problems if p.path == copies[2]] == [
        "listed again on line 9 of manifest.jsonl (first on line 3 of manifest.jsonl): left out"]
    assert report.to_dict()["problems"] == {
        "missing audio": 1, "unreadable audio": 2, "empty transcript": 1, "too long": 1, "duplicate": 2,
    }
    summary = "\n".join(report.summary_lines())
    assert "Left out for problems: 7" in summary
    assert "  unreadable audio: 2\n    audio/truncated.opus: corrupt" in summary
    assert "    audio/long.wav: " in summary


def test_summary_shows_five_examples_then_a_count(swahili: list[dict], tmp_path: Path) -> None:
    rows = swahili[:1]
    copy_clips(rows, tmp_path / "audio")
    items = [{"path": f"audio/{rows[0]['path'].name}", "text": rows[0]["text"]}]
    items += [{"path": f"audio/missing{i}.wav", "text": "x"} for i in range(7)]

    lines = load_dataset(write_jsonl(tmp_path / "m.jsonl", items)).summary_lines()

    start = lines.index("  missing audio: 7")
    assert [line.split(":")[0].strip() for line in lines[start + 1:start + 6]] == [
        f"audio/missing{i}.wav" for i in range(5)]
    assert lines[start + 6] == "    and 2 more"


def test_require_enough_refuses_a_small_set(swahili: list[dict], tmp_path: Path) -> None:
    report = load_dataset(jsonl_dataset(swahili[:3], tmp_path))
    assert len(report.train) == 3 and report.dev == []
    minutes = sum(row["duration_s"] for row in swahili[:3]) / 60
    with pytest.raises(DatasetError) as caught:
        require_enough(report)
    message = str(caught.value)
    assert f"{minutes:.1f} min in 3 usable clips" in message
    assert "need at least 2.0 min in 10 clips" in message and "(0 left out for problems)" in message
    assert "\n" not in message and str(tmp_path) in message
    one = load_dataset(jsonl_dataset(swahili[:1], tmp_path / "one"))
    assert one.summary_lines()[1].startswith("Train: 1 clip, ")
    with pytest.raises(DatasetError, match=" in 1 usable clip, need"):
        require_enough(one)


def test_dev_split_does_not_depend_on_input_order(swahili: list[dict], tmp_path: Path) -> None:
    rows = swahili[:12]
    shuffled = random.Random(7).sample(rows, len(rows))
    first = load_dataset(jsonl_dataset(rows, tmp_path / "one"))
    second = load_dataset(jsonl_dataset(shuffled, tmp_path / "two"))

    assert not first.dev_given and len(first.dev) == 3  # at most a quarter of 12 clips
    assert {c.id for c in first.dev} == {c.id for c in second.dev}
    order = [row["id"] for row in shuffled]
    assert [c.id for c in second.train] == [i for i in order if i in {c.id for c in second.train}]
    assert [c.id for c in second.dev] == [i for i in order if i in {c.id for c in second.dev}]
    assert "held out from the usable clips (25 %" in "\n".join(first.summary_lines())


def test_given_dev_set_overrides_the_split(swahili: list[dict], tmp_path: Path) -> None:
    manifest = jsonl_dataset(swahili[:5], tmp_path / "train")
    dev_folder = tmp_path / "dev"
    for row, copy in zip(swahili[5:7], copy_clips(swahili[5:7], dev_folder)):
        copy.with_suffix(".txt").write_text(row["text"], encoding="utf-8")

    report = load_dataset(manifest, dev=dev_folder)

    assert report.dev_given and report.layout == "jsonl"
    assert [c.id for c in report.train] == [row["id"] for row in swahili[:5]]
    assert [c.id for c in report.dev] == sorted(row["path"].name for row in swahili[5:7])  # a folder reads sorted
    assert report.to_dict()["dev"]["clips"] == 2 and report.to_dict()["dev_given"] is True


def test_cancel_stops_the_check(swahili: list[dict], tmp_path: Path) -> None:
    manifest = jsonl_dataset(swahili[:6], tmp_path)
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done:
            cancel.set()

    with pytest.raises(DatasetError, match="^cancelled$"):
        load_dataset(manifest, progress=progress, cancel=cancel, workers=1)
    assert seen[0] == (0, 6) and len(seen) < 6


def test_audio_store_gets_int16_audio_of_each_clip(swahili: list[dict], tmp_path: Path) -> None:
    store: dict[str, np.ndarray] = {}
    seen: list[tuple[int, int]] = []
    report = load_dataset(jsonl_dataset(swahili[:4], tmp_path), audio_store=store,
                          progress=lambda done, total: seen.append((done, total)), workers=2)

    assert set(store) == {c.id for c in report.train + report.dev}
    for clip in report.train:
        assert store[clip.id].dtype == np.int16
        assert len(store[clip.id]) == round(clip.duration * SAMPLE_RATE)
        expected = np.clip(load_audio(clip.audio) * 32767, -32768, 32767).astype(np.int16)
        np.testing.assert_array_equal(store[clip.id], expected)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)


@pytest.mark.integration
def test_full_swahili_training_manifest(swahili: list[dict]) -> None:
    report = load_dataset(TRAIN_MANIFEST, language="sw")

    assert report.problems == []
    clips = report.train + report.dev
    assert len(clips) == 177 and {c.id for c in clips} == {row["id"] for row in swahili}
    assert 8 <= len(report.dev) <= 150
    assert (report.train_seconds() + report.dev_seconds()) / 60 == pytest.approx(47.6, abs=0.5)
    require_enough(report)
