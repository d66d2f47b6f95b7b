"""Word and character error rates of the engine on clips with their transcripts.

A JSONL manifest is that of ../shared/data/speech/*/manifest.jsonl: one JSON object a line
with at least `path` (relative to the manifest's folder, or absolute) and `text`, and
`language` for per-language scores. Any other layout `lorawhisper train` reads (a folder of
audio with same-stem .txt files, a CSV/TSV table, a Common Voice folder) is scored too, its
clips under the language the caller names. A clip whose audio cannot be read is reported
and left out of the scores; the others go on.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .audio import load_audio
from .errors import AudioError
from .metrics import ErrorCounts, char_errors, word_errors
from .routing import AUTO, NO_ADAPTER, RoutingOptions
from .training.datasets import ListedClip, list_transcribed

if TYPE_CHECKING:  # the engine pulls in torch; scoring code is also imported by the window at start
    from .engine import Engine

FROM_MANIFEST = "from-manifest"


@dataclass(frozen=True)
class Clips:
    rows: list[ListedClip]
    left_out: list[str]  # one line for each listed clip left out, naming it and why
    part: str            # "dev.tsv" when only a Common Voice folder's dev part is scored, else ""


def read_clips(source: str | Path, language: str = "") -> Clips:
    """The clips to score at `source`. A JSONL row keeps its own language; the other clips
    get `language`."""
    listed = list_transcribed(source)
    rows = [replace(clip, language=clip.language or language) for clip in listed.clips]
    return Clips(rows, [f"{problem.path}: {problem.detail}" for problem in listed.problems], listed.part)


@dataclass
class LanguageScore:
    clips: int = 0
    words: ErrorCounts = field(default_factory=ErrorCounts)
    chars: ErrorCounts = field(default_factory=ErrorCounts)

    def add(self, ref: str, hyp: str) -> None:
        self.clips += 1
        self.words = self.words + word_errors(ref, hyp)
        self.chars = self.chars + char_errors(ref, hyp)

    def to_dict(self) -> dict[str, float | int]:
        return {"clips": self.clips, "wer": self.words.rate, "cer": self.chars.rate, "ref_words": self.words.ref_len}


@dataclass
class EvaluationReport:
    per_language: dict[str, LanguageScore]
    overall: LanguageScore
    hypotheses: list[dict[str, object]]
    unreadable: list[dict[str, object]] = field(default_factory=list)  # records with an error, not scored

    def to_dict(self) -> dict[str, object]:
        return {
            "overall": self.overall.to_dict(),
            "languages": {k: v.to_dict() for k, v in sorted(self.per_language.items())},
            "clips": self.hypotheses,
            "unreadable": self.unreadable,
        }


def iter_evaluation(
    engine: Engine,
    rows: list[ListedClip],
    language: str,
    moe_k: int = 0,
    adapter: str | None = None,
    threshold: float = 0.5,
    cancel: threading.Event | None = None,
) -> Iterator[dict[str, object]]:
    """Transcribe each row; yield one record per clip (reference, hypothesis, route), or for a
    clip whose audio cannot be read, one with its `error` instead of a hypothesis."""
    for row in rows:
        chosen = row.language if language == FROM_MANIFEST else language
        options = RoutingOptions(chosen or "auto", moe_k, adapter, threshold)
        try:
            result = engine.transcribe(row.audio, options, cancel=cancel)
        except AudioError as exc:
            yield {"id": row.id, "language": row.language, "reference": row.text, "error": str(exc)}
            continue
        yield {
            "id": row.id,
            "language": row.language,
            "reference": row.text,
            "hypothesis": result.text,
            "route_language": result.route.language,
            "adapters": result.route.adapters,
        }


def score(records: list[dict[str, object]]) -> EvaluationReport:
    per_language: dict[str, LanguageScore] = defaultdict(LanguageScore)
    overall = LanguageScore()
    scored = [r for r in records if "error" not in r]
    for record in scored:
        ref, hyp = str(record["reference"]), str(record["hypothesis"])
        per_language[str(record["language"])].add(ref, hyp)
        overall.add(ref, hyp)
    return EvaluationReport(dict(per_language), overall, scored, [r for r in records if "error" in r])


@dataclass(frozen=True)
class ClipComparison:
    """One clip's transcripts without and with the adapter."""

    clip: ListedClip
    without: str
    with_adapter: str

    @property
    def word_errors(self) -> tuple[int, int]:
        """Wrong words without and with the adapter."""
        return word_errors(self.clip.text, self.without).errors, word_errors(self.clip.text, self.with_adapter).errors


@dataclass
class Comparison:
    """An adapter against the bare backbone on the same clips: what its "dev WER before and after" means."""

    adapter: str
    decode_token: str | None
    with_adapter: LanguageScore = field(default_factory=LanguageScore)
    without: LanguageScore = field(default_factory=LanguageScore)
    unreadable: list[str] = field(default_factory=list)  # one line a clip whose audio could not be read
    clips: list[ClipComparison] = field(default_factory=list)  # the clips scored, in order

    @property
    def fewer_errors(self) -> float | None:
        """The share of the bare backbone's word errors that the adapter avoids (negative: it makes more)."""
        before, after = self.without.words.rate, self.with_adapter.words.rate
        return (before - after) / before if before > 0 else None


def compare_with_bare(
    engine: Engine,
    rows: list[ListedClip],
    adapter: str,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Comparison:
    """Each clip transcribed with `adapter` and with no adapter, both decoding with the adapter's
    token (a language Whisper lacks keeps its stand-in). Each clip's audio is decoded once.
    `progress(done, total)` counts clips; a set `cancel` raises errors.Cancelled."""
    token = engine.route(RoutingOptions(adapter=adapter), None).decode_token
    bare = RoutingOptions(token or AUTO, adapter=NO_ADAPTER)
    comparison = Comparison(adapter, token)
    for done, row in enumerate(rows):
        if progress is not None:
            progress(done, len(rows))
        try:
            audio = load_audio(row.audio)
        except AudioError as exc:
            comparison.unreadable.append(str(exc))
            continue
        adapted = engine.transcribe(audio, RoutingOptions(adapter=adapter), cancel=cancel).text.strip()
        plain = engine.transcribe(audio, bare, cancel=cancel).text.strip()
        comparison.with_adapter.add(row.text, adapted)
        comparison.without.add(row.text, plain)
        comparison.clips.append(ClipComparison(row, plain, adapted))
    if progress is not None:
        progress(len(rows), len(rows))
    return comparison
