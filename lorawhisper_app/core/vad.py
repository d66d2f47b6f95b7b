"""Voice-activity detection: cut a stream of 16 kHz audio into utterances at pauses.

Energy on 20 ms frames (a causal 60 ms running mean of the power, so that a single
noisy frame decides nothing) against an adaptive noise floor, with hysteresis. The floor
is the lowest level of the last `floor_window_s` (minimum statistics): it drops at once
to a quieter background and rises to a louder one within that window, so it settles on
the background whatever it is. Some real dev clips carry speech at -60 dBFS over a
-90 dBFS background, where any fixed threshold fails. Digital silence (a muted input,
the gap between two played files) has no floor: the floor starts afresh after it.

An utterance starts after `start_frames` frames in a row at least `start_db` above the
floor, stays open while frames come at least `continue_db` above it, and ends after
`hangover_s` without one. It keeps `preroll_s` before its first voiced frame, so onsets
are not clipped, and `postroll_s` after its last. One longer than `max_utterance_s` is
cut at its quietest frame of the last `cut_search_s`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class VadConfig:
    frame_s: float = 0.02
    smooth_frames: int = 3
    floor_window_s: float = 2.0
    start_db: float = 12.0
    continue_db: float = 6.0
    start_frames: int = 3
    # FLEURS sentences pause for up to 0.6 s inside: with 0.5 s, some come out as two utterances.
    hangover_s: float = 0.5
    preroll_s: float = 0.2
    # A live final is decoded once this much silence is in: dev-clip WER was the same with 0.05-0.3 s.
    postroll_s: float = 0.1
    max_utterance_s: float = 25.0
    cut_search_s: float = 3.0
    silence_db: float = -100.0  # frames quieter than this are digital silence


@dataclass(frozen=True)
class Utterance:
    """Sample positions from the start of the stream: the audio to transcribe is
    [start, end); [speech_start, speech_end) is its voiced part (without pre/post-roll)."""

    start: int
    end: int
    speech_start: int
    speech_end: int


class VoiceActivityDetector:
    """Feed blocks of audio in order; get back the utterances they complete."""

    def __init__(self, config: VadConfig | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        self.config = cfg = config or VadConfig()
        self.frame = round(cfg.frame_s * sample_rate)
        self._hangover = round(cfg.hangover_s * sample_rate)
        self._preroll = round(cfg.preroll_s * sample_rate)
        self._postroll = round(cfg.postroll_s * sample_rate)
        self._max_length = round(cfg.max_utterance_s * sample_rate)
        self._powers: deque[float] = deque(maxlen=cfg.smooth_frames)
        self._levels: deque[float] = deque(maxlen=max(1, round(cfg.floor_window_s / cfg.frame_s)))
        self._recent: deque[tuple[int, float]] = deque(maxlen=max(1, round(cfg.cut_search_s / cfg.frame_s)))
        self._pending = np.zeros(0, dtype=np.float32)
        self.position = 0  # samples analysed (whole frames)
        self._loud_run = 0
        self._last_end = 0  # end of the previous utterance: the next pre-roll stops there
        self._open: tuple[int, int] | None = None  # (start, speech_start)
        self._voiced_end = 0  # end of the open utterance's last voiced frame

    @property
    def noise_floor_db(self) -> float | None:
        return min(self._levels) if self._levels else None

    @property
    def current(self) -> Utterance | None:
        """The open utterance as it would end if no more speech came."""
        if self._open is None:
            return None
        end = min(self._voiced_end + self._postroll, self.position)
        return Utterance(self._open[0], end, self._open[1], self._voiced_end)

    @property
    def silence(self) -> int:
        """Samples since the open utterance's last voiced frame (0 when none is open)."""
        return self.position - self._voiced_end if self._open else 0

    @property
    def keep_from(self) -> int:
        """The earliest sample that an utterance not yet closed can include."""
        if self._open is not None:
            return self._open[0]
        onset = self.position - self._loud_run * self.frame
        return max(self._last_end, onset - self._preroll)

    def feed(self, audio: np.ndarray) -> list[Utterance]:
        audio = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32).reshape(-1)])
        count = len(audio) // self.frame
        self._pending = audio[count * self.frame :]
        frames = audio[: count * self.frame].reshape(count, self.frame).astype(np.float64)
        powers = np.mean(frames * frames, axis=1)
        return [u for power in powers if (u := self._step(float(power))) is not None]

    def flush(self) -> list[Utterance]:
        """End of the stream: close the open utterance, if any."""
        last = self.current
        self._open = None
        self._loud_run = 0
        if last is None:
            return []
        self._last_end = last.end
        return [last]

    def _above_floor(self, power: float) -> float:
        """How far (dB) this frame's smoothed level is above the noise floor."""
        if 10.0 * math.log10(max(power, 1e-12)) <= self.config.silence_db:
            self._powers.clear()
            self._levels.clear()
            self._recent.append((self.position, -math.inf))
            return -math.inf
        self._powers.append(power)
        if len(self._powers) < self.config.smooth_frames:  # just after silence: not enough to judge
            self._recent.append((self.position, -math.inf))
            return -math.inf
        level = 10.0 * math.log10(sum(self._powers) / len(self._powers))
        self._levels.append(level)
        self._recent.append((self.position, level))
        return level - min(self._levels)

    def _step(self, power: float) -> Utterance | None:
        cfg = self.config
        above = self._above_floor(power)
        self.position += self.frame
        if self._open is None:
            self._loud_run = self._loud_run + 1 if above > cfg.start_db else 0
            if self._loud_run >= cfg.start_frames:
                speech_start = self.position - self._loud_run * self.frame
                self._open = (max(speech_start - self._preroll, self._last_end), speech_start)
                self._voiced_end = self.position
                self._loud_run = 0
            return None
        if above > cfg.continue_db:
            self._voiced_end = self.position
        if self.silence >= self._hangover:
            return self.flush()[0]
        if self.position - self._open[0] >= self._max_length:
            return self._cut()
        return None

    def _cut(self) -> Utterance:
        """Close a too-long utterance at its quietest recent frame and go on with a new one."""
        assert self._open is not None
        cut = min(self._recent, key=lambda item: item[1])[0]
        if cut <= self._open[1]:
            cut = self.position
        utterance = Utterance(self._open[0], cut, self._open[1], min(self._voiced_end, cut))
        self._open = (cut, cut)
        self._voiced_end = max(self._voiced_end, cut)
        self._last_end = cut
        return utterance


def detect_utterances(audio: np.ndarray, config: VadConfig | None = None) -> list[Utterance]:
    """The utterances of a whole recording (16 kHz mono)."""
    vad = VoiceActivityDetector(config)
    return vad.feed(audio) + vad.flush()
