"""A user's training data, read from any accepted layout and checked clip by clip.

Every clip is decoded once before training starts, so durations are exact and broken
files are reported up front. Problems (bad audio, missing transcripts, duplicates, ...)
leave the clip out and are all collected in the report; only a manifest or table whose
structure cannot be read stops the load.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lorawhisper_app.core.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, audio_duration, iter_audio_chunks
from lorawhisper_app.core.errors import AudioError, LoraWhisperError

MAX_CLIP_SECONDS = 30.0
MIN_TRAIN_SECONDS = 120.0
MIN_TRAIN_CLIPS = 10

PROBLEM_KINDS = (
    "missing audio", "unreadable audio", "missing transcript", "empty transcript", "too long", "duplicate",
)
PATH_COLUMNS = ("path", "file", "filename", "audio", "audio_path", "wav")
TEXT_COLUMNS = ("text", "sentence", "transcript", "transcription", "normalized_text")
LAYOUT_HELP = (
    "expected a folder of audio files with same-name .txt transcripts, a Common Voice folder "
    "(train.tsv or validated.tsv beside clips/), a .csv/.tsv table with path and text columns, "
    "or a .jsonl manifest"
)

_DEV_MIN_CLIPS = 8
_DEV_MAX_CLIPS = 150
_EXAMPLES = 5
_CHUNK_SECONDS = 10.0
_POLL_SECONDS = 0.1


class DatasetError(LoraWhisperError):
    """Training data that cannot be read at all, or that is too small to train on."""


@dataclass(frozen=True)
class Clip:
    id: str
    audio: Path
    text: str
    duration: float


@dataclass(frozen=True)
class DataProblem:
    kind: str
    path: Path
    detail: str


@dataclass
class DatasetReport:
    source: Path
    layout: str
    train: list[Clip]
    dev: list[Clip]
    dev_given: bool
    problems: list[DataProblem]

    def train_seconds(self) -> float:
        return sum(clip.duration for clip in self.train)

    def dev_seconds(self) -> float:
        return sum(clip.duration for clip in self.dev)

    def problem_counts(self) -> dict[str, int]:
        return {kind: n for kind in PROBLEM_KINDS if (n := sum(p.kind == kind for p in self.problems))}

    def summary_lines(self) -> list[str]:
        lines = [
            f"Training data: {self.source} ({self.layout})",
            f"Train: {clip_count(len(self.train))}, {self.train_seconds() / 60:.1f} min",
            self._dev_line(),
        ]
        if not self.problems:
            return [*lines, "Problems: none"]
        lines.append(f"Left out for problems: {len(self.problems)}")
        for kind, count in self.problem_counts().items():
            examples = [p for p in self.problems if p.kind == kind][:_EXAMPLES]
            lines.append(f"  {kind}: {count}")
            lines += [f"    {self._shown(p.path)}: {p.detail}" for p in examples]
            if count > _EXAMPLES:
                lines.append(f"    and {count - _EXAMPLES} more")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "source": str(self.source),
            "layout": self.layout,
            "train": {"clips": len(self.train), "minutes": round(self.train_seconds() / 60, 2)},
            "dev": {"clips": len(self.dev), "minutes": round(self.dev_seconds() / 60, 2)},
            "dev_given": self.dev_given,
            "problems": self.problem_counts(),
        }

    def _dev_line(self) -> str:
        if not self.dev and self.dev_given:
            return "Dev: none (the given dev set has no usable clips)"
        if not self.dev:
            return "Dev: none (too few clips to hold any out)"
        head = f"Dev: {clip_count(len(self.dev))}, {self.dev_seconds() / 60:.1f} min"
        if self.dev_given:
            return f"{head}, as given"
        share = 100 * len(self.dev) / (len(self.dev) + len(self.train))
        return f"{head}, held out from the usable clips ({share:.0f} %, picked by a hash of each clip id)"

    def _shown(self, path: Path) -> str:
        base = self.source if self.source.is_dir() else self.source.parent
        return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def load_dataset(
    source: str | Path,
    *,
    language: str | None = None,
    dev: str | Path | None = None,
    dev_fraction: float = 0.1,
    audio_store: dict[str, np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> DatasetReport:
    """Read and check the training data at ``source`` (and ``dev``, when given).

    Without a given dev set, a deterministic share of the usable clips is held out.
    ``audio_store``, when given, receives each usable clip's audio as int16, by clip id.
    """
    if not 0.0 <= dev_fraction <= 1.0:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    source = _absolute(source)
    listing = _read(source, language)
    dev_part = listing.dev
    if dev is not None:
        given = _read(_absolute(dev), language)
        dev_part = given.dev or given.train
    problems = listing.train.problems + (dev_part.problems if dev_part else [])
    dev_entries = dev_part.entries if dev_part else []
    # Dev first: a clip in both sets is then left out of train, never out of the dev set.
    entries = dev_entries + listing.train.entries
    checked, found = _check_all(entries, audio_store, progress, cancel, workers)
    problems += found
    if dev_part is not None:
        dev_clips = [c for c in checked[:len(dev_entries)] if c is not None]
        train_clips = [c for c in checked[len(dev_entries):] if c is not None]
    else:
        train_clips, dev_clips = _hold_out([c for c in checked if c is not None], dev_fraction)
    return DatasetReport(source, listing.layout, train_clips, dev_clips, dev_part is not None, problems)


@dataclass(frozen=True)
class ListedClip:
    """A clip as a data source lists it, its audio not yet decoded."""

    audio: Path
    language: str  # a JSONL row's own "language"; "" where the source gives none
    text: str
    id: str


@dataclass(frozen=True)
class Listed:
    """What `list_transcribed` found: the clips to score and those it left out."""

    clips: list[ListedClip]
    problems: list[DataProblem]
    part: str  # "dev.tsv" when a Common Voice folder's held-out part was taken, else ""


def list_transcribed(source: str | Path) -> Listed:
    """For scoring rather than training: the clips at ``source`` in any layout ``load_dataset``
    reads, leaving out on the same grounds what needs no decoding to judge (missing audio or
    transcript, empty transcript, duplicate). A Common Voice folder with a dev.tsv gives that part."""
    listing = _read(_absolute(source), None)
    part, name = (listing.dev, "dev.tsv") if listing.dev is not None else (listing.train, "")
    problems = list(part.problems)
    kept = _screen(part.entries, problems)
    return Listed([ListedClip(e.audio, e.language, e.text, e.id) for e in kept.values()], problems, name)


def clip_count(n: int, adjective: str = "") -> str:
    """E.g. "1 clip", "3 usable clips"."""
    return " ".join(filter(None, (str(n), adjective, "clip" if n == 1 else "clips")))


def require_enough(report: DatasetReport) -> None:
    """Refuse to train on too little usable audio or too few clips."""
    minutes = report.train_seconds() / 60
    if report.train_seconds() >= MIN_TRAIN_SECONDS and len(report.train) >= MIN_TRAIN_CLIPS:
        return
    raise DatasetError(
        f"{report.source}: not enough training data: {minutes:.1f} min in {clip_count(len(report.train), 'usable')}, "
        f"need at least {MIN_TRAIN_SECONDS / 60:.1f} min in {MIN_TRAIN_CLIPS} clips "
        f"({len(report.problems)} left out for problems)"
    )


# Reading the layouts -------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """A clip as listed, before its audio is checked."""

    id: str
    audio: Path
    text: str
    origin: str           # where it was listed, for messages: "line 4 of train.tsv"
    text_file: Path | None = None
    language: str = ""    # a JSONL row's own language


@dataclass
class _Part:
    entries: list[_Entry]
    problems: list[DataProblem]


@dataclass
class _Listing:
    layout: str
    train: _Part
    dev: _Part | None = None


def _absolute(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _read(source: Path, language: str | None) -> _Listing:
    if not source.exists():
        raise DatasetError(f"{source}: not found")
    if source.is_dir():
        return _read_common_voice(source) or _read_folder(source)
    suffix = source.suffix.lower()
    if suffix == ".jsonl":
        return _Listing("jsonl", _read_jsonl(source, language))
    if suffix in (".csv", ".tsv"):
        return _Listing(suffix[1:], _read_table(source, source.parent, source.parent))
    raise DatasetError(f"{source}: not training data: {LAYOUT_HELP}")


def _read_common_voice(folder: Path) -> _Listing | None:
    clips = folder / "clips"
    table = next((t for t in (folder / "train.tsv", folder / "validated.tsv") if t.is_file()), None)
    if table is None or not clips.is_dir():
        return None
    train = _read_table(table, clips, folder)
    dev_table = folder / "dev.tsv"
    if not dev_table.is_file():
        return _Listing("common voice", train)
    dev = _read_table(dev_table, clips, folder)
    # validated.tsv also lists the dev clips; they belong to the dev set only.
    dev_audio = {e.audio for e in dev.entries}
    train.entries = [e for e in train.entries if e.audio not in dev_audio]
    return _Listing("common voice", train, dev)


def _read_folder(folder: Path) -> _Listing:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
    audio = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
    if not audio:
        raise DatasetError(f"{folder}: no audio files found: {LAYOUT_HELP}")
    stems = {p.with_suffix("") for p in audio}
    problems = [
        DataProblem("missing audio", p, f"no audio file named {p.stem}.* beside it: left out")
        for p in files if p.suffix.lower() == ".txt" and p.with_suffix("") not in stems
    ]
    entries = []
    for path in audio:
        transcript = path.with_suffix(".txt")
        if not transcript.is_file():
            problems.append(DataProblem("missing transcript", path, f"no {transcript.name} beside it: left out"))
            continue
        try:
            text = transcript.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            problems.append(DataProblem("missing transcript", transcript, "not UTF-8 text: left out"))
            continue
        entries.append(_Entry(_relative_id(path, folder), path, _clean(text), transcript.name, transcript))
    return _Listing("folder", _Part(entries, problems))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _read_jsonl(path: Path, language: str | None) -> _Part:
    part = _Part([], [])
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("path", "text"))):
            raise DatasetError(f"{path}:{number}: expected a JSON object with string fields path and text")
        row_language = item.get("language")
        if language and row_language and str(row_language).lower() != language.lower():
            continue
        given_id = str(item["id"]) if item.get("id") else None
        _add_row(part, item["path"], item["text"], path, number, path.parent, path.parent, given_id, str(row_language or ""))
    return part


def _read_table(path: Path, base: Path, root: Path) -> _Part:
    """A CSV/TSV table with a header; audio paths are relative to ``base``."""
    text = _read_text(path)
    delimiter = _delimiter(path, text.partition("\n")[0])
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    try:
        header = next(rows, [])
        path_col, text_col = _columns(path, header)
        part = _Part([], [])
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(path_col, text_col):
                raise DatasetError(f"{path}:{rows.line_num}: {len(row)} fields where the header has {len(header)}")
            _add_row(part, row[path_col], row[text_col], path, rows.line_num, base, root)
    except csv.Error as e:
        raise DatasetError(f"{path}:{rows.line_num}: unreadable table row ({e})") from None
    return part


def _delimiter(path: Path, header_line: str) -> str:
    """Comma for .csv, tab for .tsv, unless the header only makes sense with another one."""
    expected = "\t" if path.suffix.lower() == ".tsv" else ","
    if expected in header_line:
        return expected
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",\t;|").delimiter
    except csv.Error:
        return expected


def _columns(path: Path, header: list[str]) -> tuple[int, int]:
    names = [name.strip().lower() for name in header]
    path_col = next((names.index(c) for c in PATH_COLUMNS if c in names), None)
    text_col = next((names.index(c) for c in TEXT_COLUMNS if c in names), None)
    if path_col is None or text_col is None:
        found = ", ".join(name.strip() for name in header) or "none"
        raise DatasetError(
            f"{path}: needs an audio path column ({', '.join(PATH_COLUMNS)}) and a text column "
            f"({', '.join(TEXT_COLUMNS)}); columns found: {found}"
        )
    return path_col, text_col


def _add_row(
    part: _Part, audio: str, text: str, listing: Path, line: int, base: Path, root: Path,
    given_id: str | None = None, language: str = "",
) -> None:
    """Add one manifest or table row; paths are relative to ``base``, ids to ``root``."""
    origin = f"line {line} of {listing.name}"
    if not audio.strip():
        part.problems.append(DataProblem("missing audio", listing, f"{origin} has no audio path: left out"))
        return
    path = Path(os.path.abspath(base / Path(audio.strip()).expanduser()))
    part.entries.append(_Entry(given_id or _relative_id(path, root), path, _clean(text), origin, language=language))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None


def _relative_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _clean(text: str) -> str:
    return " ".join(text.split())


# Checking the clips --------------------------------------------------------------------


@dataclass(frozen=True)
class _Decoded:
    duration: float
    digest: str = ""
    pcm: np.ndarray | None = None     # int16, kept only when an audio store is filled


def _check_all(
    entries: list[_Entry],
    audio_store: dict[str, np.ndarray] | None,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
    workers: int | None,
) -> tuple[list[Clip | None], list[DataProblem]]:
    """Check every entry; the result holds a Clip (or None when left out) per entry."""
    problems: list[DataProblem] = []
    to_decode = _screen(entries, problems)
    results = _decode_all(to_decode, audio_store is not None, progress, cancel, workers)
    clips: list[Clip | None] = [None] * len(entries)
    first_with: dict[str, Clip] = {}
    used_ids: set[str] = set()
    for index, entry in to_decode.items():
        result = results[index]
        if isinstance(result, AudioError):
            problems.append(DataProblem("unreadable audio", entry.audio, result.problem))
        elif result.duration > MAX_CLIP_SECONDS:
            detail = f"{result.duration:.1f} s, over the {MAX_CLIP_SECONDS:g} s limit: left out"
            problems.append(DataProblem("too long", entry.audio, detail))
        elif result.digest in first_with:
            detail = f"same audio as {first_with[result.digest].id}: left out"
            problems.append(DataProblem("duplicate", entry.audio, detail))
        else:
            # Ids are store keys: a second file with the same id is known by its full path.
            clip_id = entry.id if entry.id not in used_ids else entry.audio.as_posix()
            used_ids.add(clip_id)
            clips[index] = first_with[result.digest] = Clip(clip_id, entry.audio, entry.text, result.duration)
            if audio_store is not None:
                audio_store[clip_id] = result.pcm
    return clips, problems


def _screen(entries: list[_Entry], problems: list[DataProblem]) -> dict[int, _Entry]:
    """Leave out what needs no decoding to judge; return the entries to decode, by index."""
    first_listed: dict[Path, _Entry] = {}
    keep: dict[int, _Entry] = {}
    for index, entry in enumerate(entries):
        problem = _listing_problem(entry, first_listed)
        if problem:
            problems.append(problem)
        else:
            keep[index] = entry
    return keep


def _listing_problem(entry: _Entry, first_listed: dict[Path, _Entry]) -> DataProblem | None:
    if not entry.audio.is_file():
        return DataProblem("missing audio", entry.audio, f"listed on {entry.origin}, but not found: left out")
    if not entry.text:
        where = "the transcript is empty" if entry.text_file else f"no text on {entry.origin}"
        return DataProblem("empty transcript", entry.text_file or entry.audio, f"{where}: left out")
    first = first_listed.setdefault(entry.audio.resolve(), entry)
    if first is not entry:
        detail = f"listed again on {entry.origin} (first on {first.origin}): left out"
        return DataProblem("duplicate", entry.audio, detail)
    return None


def _decode_all(
    entries: dict[int, _Entry],
    keep_audio: bool,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
    workers: int | None,
) -> dict[int, _Decoded | AudioError]:
    stop = threading.Event()  # tells the workers to give up once this call is over
    total = len(entries)
    if progress:
        progress(0, total)
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers or os.cpu_count() or 1, total)))
    try:
        futures = {pool.submit(_decode, e.audio, keep_audio, stop): i for i, e in entries.items()}
        results: dict[int, _Decoded | AudioError] = {}
        pending: Iterable[Future] = futures
        while pending:
            if cancel and cancel.is_set():
                raise DatasetError("cancelled")
            done, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = future.result()
                if progress:
                    progress(len(results), total)
        return results
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as the int16 samples the trainer keeps of every clip."""
    return np.clip(audio * 32767, -32768, 32767).astype(np.int16)


def _decode(path: Path, keep_audio: bool, stop: threading.Event) -> _Decoded | AudioError:
    """Decode in pieces, giving up early on a clip over the limit (memory stays bounded)."""
    limit = round(MAX_CLIP_SECONDS * SAMPLE_RATE)
    pieces: list[np.ndarray] = []
    samples = 0
    try:
        for chunk in iter_audio_chunks(path, _CHUNK_SECONDS):
            if stop.is_set():
                return _Decoded(0.0)
            samples += len(chunk)
            if samples > limit:
                return _Decoded(max(audio_duration(path), samples / SAMPLE_RATE))
            pieces.append(pcm16(chunk))
    except AudioError as e:
        return e
    pcm = np.concatenate(pieces)
    return _Decoded(len(pcm) / SAMPLE_RATE, hashlib.sha1(pcm.tobytes()).hexdigest(), pcm if keep_audio else None)


def _hold_out(clips: list[Clip], fraction: float) -> tuple[list[Clip], list[Clip]]:
    """Split into (train, dev) by a hash of each id, so input order does not matter."""
    size = min(max(round(fraction * len(clips)), _DEV_MIN_CLIPS), _DEV_MAX_CLIPS, len(clips) // 4)
    ranked = sorted(clips, key=lambda clip: hashlib.sha1(clip.id.encode()).hexdigest())
    dev_ids = {clip.id for clip in ranked[:size]}
    return [c for c in clips if c.id not in dev_ids], [c for c in clips if c.id in dev_ids]
