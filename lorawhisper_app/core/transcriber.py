"""Long-form transcription: slide a 30 s window through the audio, one piece at a time.

Each window is decoded with timestamps; the window then advances to the last complete
timestamp (or by a whole window when the text ran to its end), as openai/whisper does.
Audio is pulled from a chunk iterator only as far as the next window needs, so a file
of any length is transcribed without holding all of it in memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from .audio import SAMPLE_RATE, is_silent
from .decoding import SECONDS_PER_TIMESTAMP, WindowDecoder, WindowResult
from .features import N_SAMPLES
from .results import Segment

ProgressFn = Callable[[float, float], None]  # (seconds done, seconds in all)

# Windows quieter than this are skipped undecoded. Whisper's features are normalised to
# the window's loudest frame, so quiet speech (some FLEURS clips peak at -48 dBFS) still
# decodes well; only near-digital silence is skipped here, the rest is left to no-speech.
SILENCE_DB = -80.0


@dataclass(frozen=True)
class DecodeOptions:
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    seed: int = 0


class AudioWindows:
    """A sliding view over an audio chunk stream; keeps only what is ahead of `seek`."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self._chunks = chunks
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0  # sample index of _buffer[0]
        self._exhausted = False

    def window(self, seek: int) -> np.ndarray:
        """Up to 30 s of audio starting at sample `seek` (shorter only at the end)."""
        if seek > self._offset:
            drop = min(seek - self._offset, len(self._buffer))
            self._buffer = self._buffer[drop:]
            self._offset += drop
        while not self._exhausted and self._offset + len(self._buffer) < seek + N_SAMPLES:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._buffer = np.concatenate([self._buffer, chunk])
        start = seek - self._offset
        return self._buffer[start : start + N_SAMPLES]


@dataclass
class _WindowText:
    segments: list[Segment] = field(default_factory=list)
    advance: int = 0  # samples


class Transcriber:
    def __init__(self, decoder: WindowDecoder, decode_text: Callable[[list[int]], str], options: DecodeOptions) -> None:
        self.decoder = decoder
        self.decode_text = decode_text
        self.options = options

    def _decode_with_fallback(
        self, enc: torch.Tensor, prompt: list[int], window_index: int, cancel: threading.Event | None
    ) -> WindowResult | None:
        """Decode, retrying at higher temperatures when the text looks repetitive or unlikely.

        Returns None for a window judged to hold no speech.
        """
        opts = self.options
        tb = self.decoder.tokens.timestamp_begin
        generator = torch.Generator().manual_seed(opts.seed * 100003 + window_index)
        result = None
        for temperature in opts.temperatures:
            result = self.decoder.decode(enc, prompt, temperature=temperature, generator=generator, cancel=cancel)
            text = self.decode_text([t for t in result.tokens if t < tb])
            if result.no_speech_prob > opts.no_speech_threshold and result.avg_logprob < opts.logprob_threshold:
                return None
            if (
                result.compression_ratio(text) <= opts.compression_ratio_threshold
                and result.avg_logprob >= opts.logprob_threshold
            ):
                break
        return result

    def _segments(self, tokens: list[int], offset: float, length: int) -> _WindowText:
        tb = self.decoder.tokens.timestamp_begin
        window_end = offset + length / SAMPLE_RATE
        is_ts = [t >= tb for t in tokens]
        single_ending = len(tokens) >= 2 and is_ts[-1] and not is_ts[-2]
        pairs = [i for i in range(1, len(tokens)) if is_ts[i] and is_ts[i - 1]]
        out = _WindowText()

        def add(start: float, end: float, piece: list[int]) -> None:
            text = self.decode_text([t for t in piece if t < tb]).strip()
            if text:
                end = min(max(end, start), window_end)
                out.segments.append(Segment(round(min(start, end), 3), round(end, 3), text))

        if pairs:
            cuts = pairs + ([len(tokens)] if single_ending else [])
            last = 0
            for cut in cuts:
                piece = tokens[last:cut]
                add(offset + (piece[0] - tb) * SECONDS_PER_TIMESTAMP, offset + (piece[-1] - tb) * SECONDS_PER_TIMESTAMP, piece)
                last = cut
            if single_ending:
                out.advance = length
            else:
                out.advance = int((tokens[last - 1] - tb) * SECONDS_PER_TIMESTAMP * SAMPLE_RATE)
        else:
            stamps = [t for t in tokens if t >= tb]
            end = offset + length / SAMPLE_RATE
            if stamps and stamps[-1] != tb:
                end = offset + (stamps[-1] - tb) * SECONDS_PER_TIMESTAMP
            add(offset, end, tokens)
            out.advance = length
        if out.advance <= 0:
            out.advance = length
        return out

    def run(
        self,
        windows: AudioWindows,
        language_token: str | None,
        duration: float,
        *,
        first_encoding: torch.Tensor | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Segment]:
        """Transcribe from sample 0 to the end of the stream.

        `first_encoding` is the encoder output of the first window when the caller already
        has it (computed with the same adapters), so it is not computed twice.
        """
        prompt = self.decoder.tokens.prompt(language_token, timestamps=True)
        segments: list[Segment] = []
        seek = 0
        index = 0
        while True:
            audio = windows.window(seek)
            if len(audio) < SAMPLE_RATE // 10:  # under 0.1 s left: nothing to decode
                break
            if is_silent(audio, SILENCE_DB):
                seek += len(audio)
            else:
                enc = first_encoding if (seek == 0 and first_encoding is not None) else None
                if enc is None:
                    enc = self.decoder.encode_audio(audio)
                result = self._decode_with_fallback(enc, prompt, index, cancel)
                if result is None:
                    seek += len(audio)
                else:
                    parsed = self._segments(result.tokens, seek / SAMPLE_RATE, len(audio))
                    segments.extend(parsed.segments)
                    seek += min(parsed.advance, len(audio))
            index += 1
            if progress is not None:
                progress(min(seek / SAMPLE_RATE, duration), duration)
        return segments
