"""Transcript writers: plain text, SubRip, WebVTT and JSON, one small class per format."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from .results import Segment, TranscriptionResult


def _one_line(text: str) -> str:
    """The text on a single line: line breaks (a blank line ends a cue) become spaces."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _timestamp(seconds: float, decimal_marker: str) -> str:
    """HH:MM:SS<marker>mmm, rounded to the millisecond before splitting, so 59.9996 s is 00:01:00."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _spoken(result: TranscriptionResult) -> list[tuple[Segment, str]]:
    """The segments that have text, each with that text on one line."""
    return [(s, line) for s in result.segments if (line := _one_line(s.text))]


class Writer(ABC):
    """Renders a result as the text of one file format."""

    extension: ClassVar[str]

    @abstractmethod
    def render(self, result: TranscriptionResult) -> str: ...


class TxtWriter(Writer):
    extension = "txt"

    def render(self, result: TranscriptionResult) -> str:
        return "".join(f"{line}\n" for _, line in _spoken(result))


class SrtWriter(Writer):
    extension = "srt"

    def render(self, result: TranscriptionResult) -> str:
        cues = []
        for number, (segment, line) in enumerate(_spoken(result), start=1):
            start = _timestamp(segment.start, ",")
            end = _timestamp(segment.end, ",")
            # An arrow in the text would read as a timing line.
            cues.append(f"{number}\n{start} --> {end}\n{line.replace('-->', '->')}\n")
        return "\n".join(cues)


class VttWriter(Writer):
    extension = "vtt"

    def render(self, result: TranscriptionResult) -> str:
        cues = []
        for segment, line in _spoken(result):
            start = _timestamp(segment.start, ".")
            end = _timestamp(segment.end, ".")
            # Escaping ">" also turns a "-->" in the text into "--&gt;", which WebVTT forbids unescaped.
            text = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            cues.append(f"{start} --> {end}\n{text}\n")
        return "WEBVTT\n\n" + "\n".join(cues)


class JsonWriter(Writer):
    extension = "json"

    def render(self, result: TranscriptionResult) -> str:
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


WRITERS: dict[str, type[Writer]] = {w.extension: w for w in (TxtWriter, SrtWriter, VttWriter, JsonWriter)}


def _writer(fmt: str) -> Writer:
    try:
        return WRITERS[fmt]()
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(WRITERS)}") from None


def render(result: TranscriptionResult, fmt: str) -> str:
    """The text `write_result` would write, for the clipboard or a preview."""
    return _writer(fmt).render(result)


def write_atomic(target: Path, text: str) -> Path:
    """Write `text` to `target` through a temporary file in the same folder.

    The text is flushed to disk and then renamed over the target, so a failure leaves
    any earlier file of that name whole and no temporary file behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    # os.open with mode 0o666 gives the file the usual umask-based permissions (mkstemp's are 0o600).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise
    return target


def write_result(result: TranscriptionResult, fmt: str, out_dir: Path) -> Path:
    """Write `out_dir/<stem of result.path>.<fmt>` atomically and return its path."""
    text = render(result, fmt)
    return write_atomic(Path(out_dir) / f"{Path(result.path).stem}.{fmt}", text)
