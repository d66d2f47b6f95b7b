"""Recording training data in the app: a list of sentences read aloud one at a time.

Sentence i (counted from 0, blank lines skipped) is saved as `NNNN.flac` and `NNNN.txt`
(NNNN = i + 1, four digits) in a folder the user owns, so the folder is the trainer's
"folder of audio files with same-name .txt transcripts" layout. Both files are written
to a temporary name and renamed, the transcript last: a pair whose .txt exists is whole.
Opening the same sentences and folder again finds the pairs already there and goes on
after the last sentence recorded: sentences skipped before it come round at the end.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE
from ..errors import LoraWhisperError
from ..writers import write_atomic
from .datasets import MAX_CLIP_SECONDS

AUDIO_FORMAT = "flac"
MIN_SECONDS = 0.3
QUIET_DB = -45.0  # a take whose peak stays below this is most likely not speech


class RecordingError(LoraWhisperError):
    """A sentences file or recordings folder that cannot be used, or a take that cannot be saved."""


def read_sentences(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file, whitespace collapsed."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordingError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise RecordingError(f"{path}: cannot read ({e.strerror or e})") from None
    sentences = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not sentences:
        raise RecordingError(f"{path}: no sentences in it (one sentence per line)")
    return sentences


def peak_db(audio: np.ndarray) -> float:
    """Peak level in dBFS of float audio in [-1, 1]; -inf for silence."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


class RecordingSession:
    """The sentences of `sentences_file`, recorded into `folder`."""

    def __init__(self, sentences_file: Path, folder: Path) -> None:
        self.sentences_file = Path(os.path.abspath(sentences_file))
        self.folder = Path(os.path.abspath(folder))
        if self.sentences_file.is_relative_to(self.folder):
            raise RecordingError(
                f"{self.sentences_file}: keep the sentences file outside the recordings folder "
                f"{self.folder}: the trainer would take it for a transcript without audio"
            )
        if self.folder.exists() and not self.folder.is_dir():
            raise RecordingError(f"{self.folder}: not a folder")
        self.sentences = read_sentences(self.sentences_file)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordingError(f"{self.folder}: cannot create the folder ({e.strerror or e})") from None
        if not os.access(self.folder, os.W_OK):
            raise RecordingError(f"{self.folder}: not writable: choose a folder of your own")
        self._check_existing()

    def __len__(self) -> int:
        return len(self.sentences)

    def stem(self, index: int) -> str:
        return f"{index + 1:04d}"

    def audio_path(self, index: int) -> Path:
        return self.folder / f"{self.stem(index)}.{AUDIO_FORMAT}"

    def text_path(self, index: int) -> Path:
        return self.folder / f"{self.stem(index)}.txt"

    def is_recorded(self, index: int) -> bool:
        return self.text_path(index).is_file() and self.audio_path(index).is_file()

    def recorded(self) -> list[int]:
        return [i for i in range(len(self)) if self.is_recorded(i)]

    def next_pending(self, after: int = -1) -> int | None:
        """The first sentence after `after` not recorded yet, wrapping round; None when all are."""
        order = [*range(after + 1, len(self)), *range(0, after + 1)]
        return next((i for i in order if not self.is_recorded(i)), None)

    def resume_at(self) -> int | None:
        """Where a reopened session goes on: the first sentence not recorded after the last
        one recorded (so that skipped ones stay skipped until the end); None when all are."""
        return self.next_pending(after=max(self.recorded(), default=-1))

    def recorded_seconds(self) -> float:
        return sum(sf.info(str(self.audio_path(i))).duration for i in self.recorded())

    def save(self, index: int, audio: np.ndarray) -> Path:
        """Save a take (16 kHz mono float32) of sentence `index`, replacing an earlier one."""
        if not 0 <= index < len(self):
            raise IndexError(f"sentence {index + 1} of {len(self)}")
        seconds = len(audio) / SAMPLE_RATE
        if seconds < MIN_SECONDS:
            raise RecordingError(f"sentence {index + 1}: the take is {seconds:.1f} s long: nothing to save")
        if seconds > MAX_CLIP_SECONDS:
            raise RecordingError(
                f"sentence {index + 1}: the take is {seconds:.1f} s long, over the trainer's "
                f"{MAX_CLIP_SECONDS:g} s limit per clip: split the sentence"
            )
        target = self.audio_path(index)
        temp = self.folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            sf.write(str(temp), np.asarray(audio, dtype=np.float32), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            os.replace(temp, target)
            write_atomic(self.text_path(index), self.sentences[index] + "\n")
        except (OSError, sf.LibsndfileError) as e:
            raise RecordingError(f"{target}: cannot save the take ({getattr(e, 'strerror', None) or e})") from None
        finally:
            temp.unlink(missing_ok=True)
        return target

    def _check_existing(self) -> None:
        """Refuse a folder that holds recordings of other sentences."""
        for index in range(len(self)):
            path = self.text_path(index)
            if not path.is_file():
                continue
            try:
                saved = " ".join(path.read_text(encoding="utf-8-sig").split())
            except (OSError, UnicodeDecodeError):
                saved = None
            if saved != self.sentences[index]:
                raise RecordingError(
                    f"{self.folder}: {path.name} does not hold sentence {index + 1} of {self.sentences_file.name}: "
                    "the folder has recordings of other sentences; choose an empty folder or the same sentences file"
                )
