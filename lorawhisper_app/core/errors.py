"""Errors the engine raises for problems a user can act on.

Each carries a one-line message that names the file and the problem; the CLI and the
GUI show that line as it is, never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class LoraWhisperError(Exception):
    """Base of every error that is the user's input, not a bug."""


class Cancelled(Exception):
    """Raised inside the engine when a cancel event is set."""


class AudioError(LoraWhisperError):
    """An audio file that cannot be read or holds no audio."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class AdapterError(LoraWhisperError):
    """An adapter that is missing, malformed, unsafe or made for another backbone."""


class BackboneError(LoraWhisperError):
    """A backbone that cannot be found, converted or loaded."""


class StorageError(LoraWhisperError):
    """Files that could not be written: a full disk, a folder without permission."""


def write_problem(error: Exception) -> str:
    """Why a write failed, for people: an OSError's own words ("No space left on device"), the
    I/O part of a safetensors error, which wraps the OS's words in its own, else any error's one line."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return re.sub(r" \(os error \d+\)$", "", one_line(error).split("I/O error: ")[-1])


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its lines joined), or its type's name when it has none."""
    return " ".join(str(error).split()) or type(error).__name__
