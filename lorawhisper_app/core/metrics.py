"""Word and character error rates on normalised text, for `lorawhisper evaluate`."""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Deleted rather than turned into a space, so "don't" compares as "dont".
_APOSTROPHES = frozenset("'\u2018\u2019`\u00b4")


def normalize_text(text: str) -> str:
    """Text reduced to what a transcript is scored on.

    - Unicode NFC after case folding, so precomposed and decomposed spellings compare
      equal; letters keep their diacritics and combining marks (Yoruba "ọ̀" stays "ọ̀").
    - Apostrophes (' ‘ ’ ` ´) are deleted: "don't" becomes "dont".
    - Every other punctuation (Unicode P*) or symbol (S*) character, hyphens and dashes
      included, becomes a space: "well-known" becomes "well known".
    - Runs of whitespace become one space; no space at either end.
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
    kept = []
    for char in folded:
        if char in _APOSTROPHES:
            continue
        kept.append(" " if unicodedata.category(char)[0] in "PS" else char)
    return " ".join("".join(kept).split())


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (unit-cost substitutions, insertions, deletions).

    One row of the table at a time, as long as the shorter sequence; each row is a few
    numpy operations, the insertions folded in by a running minimum.
    """
    long, short = (ref, hyp) if len(ref) >= len(hyp) else (hyp, ref)
    if not short:
        return len(long)
    ids: dict[Hashable, int] = {}
    long_ids = [ids.setdefault(item, len(ids)) for item in long]
    short_ids = np.array([ids.setdefault(item, len(ids)) for item in short])
    offsets = np.arange(len(short_ids) + 1)
    row = offsets.copy()
    for i, item in enumerate(long_ids, start=1):
        best = np.empty_like(row)
        best[0] = i
        np.minimum(row[:-1] + (short_ids != item), row[1:] + 1, out=best[1:])
        # row[j] = min(best[j], row[j-1] + 1) for all j at once: j + min over k <= j of (best[k] - k).
        row = np.minimum.accumulate(best - offsets) + offsets
    return int(row[-1])


@dataclass(frozen=True)
class ErrorCounts:
    """Edit errors against a reference of `ref_len` units (words or characters)."""

    errors: int = 0
    ref_len: int = 0

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(self.errors + other.errors, self.ref_len + other.ref_len)

    @property
    def rate(self) -> float:
        """errors / ref_len (above 1 when there are many insertions).

        An empty reference scores 0.0 against an empty hypothesis and 1.0 against
        anything else: all of it is wrong, but it is not counted per inserted unit.
        """
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.ref_len


def word_errors(ref: str, hyp: str) -> ErrorCounts:
    """Edits between the normalised words of `ref` and `hyp`."""
    ref_words = normalize_text(ref).split()
    return ErrorCounts(edit_distance(ref_words, normalize_text(hyp).split()), len(ref_words))


def char_errors(ref: str, hyp: str) -> ErrorCounts:
    """Edits between the characters of the normalised strings, single spaces between words included.

    Characters are NFC code points, so a wrong tone mark on "ọ" is one edit of the
    combining mark.
    """
    ref_chars = normalize_text(ref)
    return ErrorCounts(edit_distance(ref_chars, normalize_text(hyp)), len(ref_chars))


def corpus_rates(pairs: Iterable[tuple[str, str]]) -> tuple[float, float]:
    """(WER, CER) of (reference, hypothesis) pairs: errors summed over the corpus, then divided."""
    words = chars = ErrorCounts()
    for ref, hyp in pairs:
        words += word_errors(ref, hyp)
        chars += char_errors(ref, hyp)
    return words.rate, chars.rate
