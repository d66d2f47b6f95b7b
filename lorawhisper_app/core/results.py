"""The data a transcription produces: segments, the route taken, the whole result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Segment:
    """A stretch of speech with its text; times in seconds from the start of the file."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Route:
    """Which language and adapters decoded a file, and why.

    `mode` is "manual", "auto", "moe" or "override". `adapters` maps adapter name to
    its weight (empty: the bare backbone). `language_probability` is the probability of
    `language` that routing went by: the router's where installed adapters have router
    profiles, else Whisper's LID (None when the language was given by hand and nothing
    was identified). `whisper_probabilities`: Whisper's own LID, top 5, when it ran.
    """

    mode: str
    language: str
    language_probability: float | None
    adapters: dict[str, float] = field(default_factory=dict)
    decode_token: str | None = None
    notice: str | None = None
    whisper_probabilities: dict[str, float] = field(default_factory=dict)


@dataclass
class TranscriptionResult:
    """Everything known about one transcribed file."""

    path: str
    duration: float
    segments: list[Segment]
    route: Route
    language_probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "duration": self.duration,
            "text": self.text,
            "route": asdict(self.route),
            "language_probabilities": self.language_probabilities,
            "segments": [asdict(s) for s in self.segments],
        }
