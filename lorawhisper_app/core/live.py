"""Live transcription: a stream of audio in, partial and final text per utterance out.

The voice-activity detector cuts the stream into utterances. While one is spoken, a
partial hypothesis comes every `partial_interval` seconds of audio: greedy, without
timestamps or temperature fallback, from an encoder that sees only the audio so far and
a few seconds of padding (not a whole 30 s window: a fifth of the cost), and decoding
only past the words the last two partials agreed on.

Each utterance is routed on its own: language identification with the adapters off,
then the adapters of that language (or the locked language's, without identification).
The route of the final is decided once, on the whole utterance, not early on: measured on
the dev clips, identification from the first 1.5 s of speech named Swahili in 0 of 6
clips and from the first 4 s in 3 of 6, but from whole utterances in 23 of 25. It runs on
the partials' short encoder (whole utterances: 55 of 71 right, against 51 of 71 with a
whole window, at 0.16 s instead of 0.5 s). Partials show the route of the audio so far.
When no adapter is installed the route is the bare backbone whatever the language, and
the final identifies on its whole window and decodes from that same encoding.

The final text is the engine's decoding of the utterance with timestamps and temperature
fallback, as a file's (the fallback is shorter: FINAL_TEMPERATURES). It is decoded as soon
as its audio is complete, `postroll_s` after the last voiced frame, and confirmed when the
hangover has passed without more speech: the hangover and the final's decoding overlap
instead of adding up. When speech comes back first, that text was a partial after all.

A decode keeps listening while it runs, when the caller lets it (`process(audio, more)`):
between encoder layers and decoded tokens it takes what was captured meanwhile and feeds
the voice-activity detector. A final decoded ahead is dropped as soon as speech comes
back (a pause inside a sentence, not its end), and a partial once the pause has lasted
PARTIAL_FINISH_S (the final is due): neither holds up what comes next. Measured on the
dev clips, finals were decoded ahead 2.7 times per utterance, mostly at pauses inside it,
each blocking the session for 0.8 s.

Every adapter a route may use is loaded and merged when the session starts, so that a
switch of language between utterances costs 2 ms, not 0.3 s.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import soundfile as sf
import torch

from .decoding import WindowDecoder
from .errors import Cancelled, StorageError, one_line, write_problem
from .features import FRAMES_PER_SECOND, N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel, pad_frames
from .results import Route, Segment, TranscriptionResult
from .routing import AUTO, RoutingOptions
from .transcriber import AudioWindows, Transcriber
from .vad import Utterance, VoiceActivityDetector
from .writers import write_result

if TYPE_CHECKING:
    from .engine import Engine

# A partial's encoder sees its audio plus PARTIAL_PAD_S of padding, PARTIAL_MIN_S in all at
# least. Measured on 115 dev-clip prefixes of 0.8-4.8 s, a partial looped (ran past
# PARTIAL_TOKENS_PER_S) in 18 % of them with the audio + 1 s, in 4-5 % with + 4 s or 10 s
# at least, and in 2 % with the whole 30 s window, at 0.07 s, 0.13-0.16 s and 0.6 s a
# partial. One that loops is dropped (the text shown stays until the next): retried on the
# whole window, it held the text still for up to 2 s, and retried at once, it looped again.
PARTIAL_PAD_S = 4.0
PARTIAL_MIN_S = 10.0
PARTIAL_TOKENS_PER_S = 12  # plus 8: dev references run at most 10 tokens per second of speech
# Most loops repeat a phrase word for word ("kasi kaka ko, na nsɔni te," six times in a
# Lingala partial). A partial stops at the second copy of a phrase that fills LOOP_MIN_SPAN
# tokens in two copies (a shorter phrase must fill it in more: "no, no" stays) and shows the
# text before that copy, instead of running to its budget and showing nothing.
LOOP_MIN_SPAN = 16
LOOP_MAX_PERIOD = 32
# A partial in flight when the speech pauses goes on unless the pause reaches PARTIAL_FINISH_S;
# then it is dropped, so that the final can be decoded ahead. Dropped at the post-roll (0.1 s),
# partials at pauses inside sentences were lost, and then the final decoded ahead too when the
# speech came back: 5 to 8 of about 140 intervals between partials ran over 1 s (live_bench,
# the adapter languages), against 0 of 149 at 0.2 s; finals came 0.05-0.1 s later (p50).
PARTIAL_FINISH_S = 0.2
# Blocks this short (rather than AudioCapture's 0.1 s) let a final start sooner after speech ends.
CAPTURE_BLOCK_S = 0.05
# A final routes on the latest partial's identification when that partial heard at least
# this share of the utterance's speech, and this much of it, instead of identifying again
# (0.11 s). Shorter ones identify again: a 2.1 s Yoruba clip went from 0.63 (routed) on the
# whole utterance to 0.45 (below the threshold) on its last partial's 1.7 s.
REUSE_COVERAGE = 0.8
REUSE_MIN_S = 4.0
MAX_LAG_S = 1.5  # more audio than this in one call: behind, so no partial until caught up
# A final's temperature fallback, shorter than a file's (0.0 to 1.0 by 0.2), bounds what an
# utterance that fails every pass costs: measured 1.8 s with six passes on a 5.6 s Swahili
# utterance of the bare backbone, 1.2 s with three. Finals that pass greedily are unchanged.
FINAL_TEMPERATURES = (0.0, 0.4, 0.8)


@dataclass(frozen=True)
class LiveEvent:
    """A partial or final text of utterance `index`; times in seconds from the session start."""

    kind: str  # "partial" | "final"
    index: int
    text: str
    start: float
    end: float
    language: str | None
    probability: float | None
    adapter: str | None  # adapter name, "+"-joined for a mixture, None for the bare backbone

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _Open:
    """What the session knows of the utterance being spoken."""

    start: int  # the VAD's start sample: identifies the utterance
    decoded_to: int  # stream position of the latest partial (or of speech start)
    index: int | None = None
    tokens: tuple[str | None, list[int]] = (None, [])  # the latest partial's language token and tokens
    identified: tuple[int, dict[str, float]] | None = None  # (up to which sample, P(language)) of the latest partial
    agreed: list[int] = field(default_factory=list)  # what the latest two partials agreed on
    final: tuple[int, str, Route] | None = None  # (end sample, text, route) decoded before the VAD closed it


class _TokenBudget:
    """Stands in for the cancel Event of `WindowDecoder.decode`, which asks it once per
    token: it reads as set after `tokens` tokens, and the decode raises Cancelled.
    It listens (see `_Listener`) at each token too."""

    def __init__(self, tokens: int, listener: _Listener | None = None) -> None:
        self.left = tokens
        self.listener = listener

    def is_set(self) -> bool:
        if self.listener is not None:
            self.listener.is_set()
        self.left -= 1
        return self.left < 0


class _Superseded(Exception):
    """What a decode was for changed while it ran: its result would be thrown away."""


class _Listener:
    """Takes in the audio captured while a decode runs; raises _Superseded when `stale()`
    says the decode is no longer wanted. Asked at each token (as the decode's cancel
    Event) and before each encoder layer."""

    def __init__(self, take: Callable[[], None], stale: Callable[[], bool]) -> None:
        self.take = take
        self.stale = stale

    def is_set(self) -> bool:
        self.take()
        if self.stale():
            raise _Superseded
        return False


def encode_prefix(decoder: WindowDecoder, audio: np.ndarray) -> torch.Tensor:
    """Encoder output over the audio and a little padding, not a whole 30 s window.

    Whisper's encoder costs as much for 1 s of speech as for 30 s when fed a padded
    window; cut short (as whisper.cpp's audio_ctx), 5 s cost a fifth. Fit for partials
    and language identification, not finals: the decoder was trained on whole windows.
    """
    model = decoder.model
    seconds = max(min(len(audio), N_SAMPLES) / SAMPLE_RATE + PARTIAL_PAD_S, PARTIAL_MIN_S)
    frames = min(N_FRAMES, 2 * math.ceil(seconds * FRAMES_PER_SECOND / 2))
    features = pad_frames(log_mel(audio[:N_SAMPLES], model.config.num_mel_bins), frames)
    features = features.unsqueeze(0).to(decoder.device, model.dtype)
    encoder = model.model.encoder
    with torch.inference_mode(), torch.autocast(
        decoder.device.type, dtype=decoder.encoder_autocast, enabled=decoder.encoder_autocast is not None
    ):
        hidden = torch.nn.functional.gelu(encoder.conv1(features))
        hidden = torch.nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        for layer in encoder.layers:
            hidden = layer(hidden, None)
        return encoder.layer_norm(hidden).to(model.dtype)


class _Recording:
    """The session's audio, streamed to a FLAC file (16-bit) as it comes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16", format="FLAC")

    def write(self, audio: np.ndarray) -> None:
        self.file.write(np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16))

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class LiveSession:
    """Feed it what was captured, from one thread; it returns partial and final events.

    `engine`: a loaded Engine; `language`: "auto" (each utterance identified and routed)
    or a code that locks every utterance to it. The audio is recorded to a FLAC file in
    `record_to` (a folder; default: a private temporary folder) until :meth:`save`.
    """

    def __init__(
        self,
        engine: Engine,
        language: str = AUTO,
        *,
        threshold: float = 0.5,
        partial_interval: float = 0.5,
        vad: VoiceActivityDetector | None = None,
        record_to: Path | None = None,
    ) -> None:
        self.engine = engine
        self.options = RoutingOptions(language=language, threshold=threshold)
        self.locked = None if language == AUTO else engine.route(self.options, None)
        options = replace(engine.transcriber.options, temperatures=FINAL_TEMPERATURES)
        self._transcriber = Transcriber(engine.decoder, engine.transcriber.decode_text, options)
        self._adapters_installed = any(info.compatible_with(engine.fingerprint) for info in engine.store.list())
        # Each adapter an utterance may route to is loaded and merged now (see the module notes).
        if self.locked is not None:
            with engine.lock:
                engine.use_adapters(self.locked.adapters)
        elif self._adapters_installed:
            engine.preload_adapters()
        self.partial_interval = round(partial_interval * SAMPLE_RATE)
        self.vad = vad or VoiceActivityDetector()
        self.name = time.strftime("live-%Y%m%d-%H%M%S")
        self.finals: list[LiveEvent] = []
        self._postroll = round(self.vad.config.postroll_s * SAMPLE_RATE)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream position of _buffer[0]
        self._open: _Open | None = None
        self._next_index = 0
        self._temp = None if record_to else tempfile.TemporaryDirectory(prefix="lorawhisper-live-")
        self._record_dir = Path(record_to) if record_to else Path(self._temp.name)
        self._recording: _Recording | None = None
        self._audio_path: Path | None = None  # where the audio lies once the recording ended
        # Why the recording stopped (a full disk); transcribing goes on without it.
        self.recording_problem: str | None = None
        self._problem_told = False
        # The engine's lock guards its active adapters against other users of the engine.
        self._lock: threading.RLock = engine.lock
        self._ended: list[Utterance] = []  # closed by the VAD, final not yet sent
        self._more: Callable[[], np.ndarray] | None = None  # set during process()

    # -- feeding -------------------------------------------------------------------------

    def process(self, audio: np.ndarray, more: Callable[[], np.ndarray] | None = None) -> list[LiveEvent]:
        """Take everything captured since the last call; run the decodes due now.

        `more`, when given, returns what was captured since it was last called (a
        capture's `read_available`): decodes call it as they run, to notice at once when
        what they decode for has changed.
        """
        events: list[LiveEvent] = []
        with self._lock:
            self._more = more
            try:
                self._take(audio)
                events += self._close_ended()
                current = self.vad.current
                if current is not None:
                    state = self._state(current)
                    if self.vad.silence < self._postroll and (
                        not events
                        and len(audio) <= MAX_LAG_S * SAMPLE_RATE
                        and self.vad.position - state.decoded_to >= self.partial_interval
                    ):
                        events += self._partial(state, current)
                        events += self._close_ended()
                        current = self.vad.current  # a partial stops early when the speech ends
                        state = self._state(current) if current is not None else state
                    if current is not None and self.vad.silence >= self._postroll:
                        if state.final is None or state.final[0] != current.end:
                            events += self._decode_final_ahead(state, current)
                    events += self._close_ended()
            finally:
                self._more = None
        self._trim()
        return events

    def finish(self) -> list[LiveEvent]:
        """End of the session: the open utterance, if any, gets its final."""
        with self._lock:
            self._ended += self.vad.flush()
            return self._close_ended()

    def _take(self, audio: np.ndarray) -> None:
        """Record `audio`, keep it for decoding and run the VAD over it."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not len(audio):
            return
        self._record(audio)
        self._buffer = np.concatenate([self._buffer, audio])
        self._ended += self.vad.feed(audio)

    def _close_ended(self) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        while self._ended:
            events += self._close(self._ended.pop(0))
        return events

    def _listener(self, stale: Callable[[], bool]) -> _Listener | None:
        more = self._more
        return None if more is None else _Listener(lambda: self._take(more()), stale)

    @contextmanager
    def _encoder_listens(self, listener: _Listener | None) -> Iterator[None]:
        """Ask `listener` before each encoder layer runs."""
        if listener is None:
            yield
            return

        def before_layer(*_: object) -> None:  # a pre-hook returning None leaves the inputs as they are
            listener.is_set()

        layers = self.engine.decoder.model.model.encoder.layers
        hooks = [layer.register_forward_pre_hook(before_layer) for layer in layers]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()

    # -- utterances ----------------------------------------------------------------------

    def _state(self, current: Utterance) -> _Open:
        if self._open is None or self._open.start != current.start:
            self._open = _Open(current.start, current.speech_start)
        return self._open

    def _audio(self, start: int, end: int) -> np.ndarray:
        return self._buffer[start - self._buffer_start : end - self._buffer_start]

    def _trim(self) -> None:
        drop = self.vad.keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop

    def _close(self, utterance: Utterance) -> list[LiveEvent]:
        state = self._open if self._open is not None and self._open.start == utterance.start else None
        self._open = None
        state = state or _Open(utterance.start, utterance.speech_start)
        if state.final is not None and state.final[0] == utterance.end:
            _, text, route = state.final
        else:
            text, route = self._final(self._audio(utterance.start, utterance.end), identified=self._heard(state, utterance))
        if not text and state.index is None:
            return []  # a noise that never showed as text
        event = self._event("final", state, text, utterance.speech_start, utterance.speech_end, route)
        if text:
            self.finals.append(event)
        return [event]

    def _decode_final_ahead(self, state: _Open, current: Utterance) -> list[LiveEvent]:
        """The final of an utterance whose audio is complete, before the hangover confirms
        it; given up when the speaker goes on."""

        def speech_came_back() -> bool:
            now = self.vad.current
            return now is not None and now.start == current.start and now.speech_end != current.speech_end

        try:
            text, route = self._final(
                self._audio(current.start, current.end), self._listener(speech_came_back), self._heard(state, current)
            )
        except _Superseded:
            return []
        state.final = (current.end, text, route)
        state.decoded_to = self.vad.position
        if not text:
            return []
        return [self._event("partial", state, text, current.speech_start, current.speech_end, route)]

    def _event(self, kind: str, state: _Open, text: str, start: int, end: int, route: Route) -> LiveEvent:
        if state.index is None:
            state.index = self._next_index
            self._next_index += 1
        adapter = "+".join(route.adapters) or None
        return LiveEvent(
            kind, state.index, text, start / SAMPLE_RATE, end / SAMPLE_RATE,
            route.language, route.language_probability, adapter,
        )

    # -- decoding ------------------------------------------------------------------------

    def _identify(self, audio: np.ndarray) -> tuple[dict[str, float], torch.Tensor]:
        """P(language) of `audio` with the adapters off (the router's where the installed
        adapters have router profiles, see Engine.identify), and the short encoding it came from."""
        found = self.engine.identify(audio, lambda window: encode_prefix(self.engine.decoder, window))
        return found.probabilities, found.encoding

    def _heard(self, state: _Open, utterance: Utterance) -> dict[str, float] | None:
        """The latest partial's P(language) when it heard nearly all of a long enough utterance."""
        if state.identified is None:
            return None
        heard_to, probs = state.identified
        speech = utterance.speech_end - utterance.speech_start
        heard = heard_to - utterance.speech_start
        return probs if heard >= REUSE_COVERAGE * speech and heard >= REUSE_MIN_S * SAMPLE_RATE else None

    def _final(
        self, audio: np.ndarray, listener: _Listener | None = None, identified: dict[str, float] | None = None
    ) -> tuple[str, Route]:
        engine = self.engine
        first = None
        with self._encoder_listens(listener):
            if self.locked is not None:
                route = self.locked
            elif self._adapters_installed:
                route = engine.route(self.options, identified or self._identify(audio)[0])
            else:  # the bare backbone either way: identify on the whole window and decode from that encoding
                engine.use_adapters({})
                first = engine.decoder.encode_audio(audio)
                route = engine.route(self.options, engine.decoder.language_probs(first)[0])
            engine.use_adapters(route.adapters)
            segments = self._transcriber.run(
                AudioWindows(iter([audio])), route.decode_token, len(audio) / SAMPLE_RATE,
                first_encoding=first, cancel=listener,  # type: ignore[arg-type]
            )
        return " ".join(s.text.strip() for s in segments if s.text.strip()), route

    def _partial(self, state: _Open, current: Utterance) -> list[LiveEvent]:
        """A partial of the open utterance; given up when its speech ends meanwhile (a pause
        of PARTIAL_FINISH_S)."""
        finish = round(PARTIAL_FINISH_S * SAMPLE_RATE)

        def speech_ended() -> bool:
            now = self.vad.current
            return now is None or now.start != current.start or self.vad.silence >= finish

        audio = self._audio(current.start, self.vad.position)
        end, before = self.vad.position, state.decoded_to
        state.decoded_to = end
        listener = self._listener(speech_ended)
        try:
            with self._encoder_listens(listener):
                return self._decode_partial(state, current, audio, end, listener)
        except _Superseded:  # if that was only a pause, the next partial is due at once
            state.decoded_to = before
            return []

    def _decode_partial(
        self, state: _Open, current: Utterance, audio: np.ndarray, end: int, listener: _Listener | None
    ) -> list[LiveEvent]:
        engine = self.engine
        if self.locked is not None:
            route, encoding = self.locked, None
        else:
            probs, encoding = self._identify(audio)
            state.identified = (end, probs)
            route = engine.route(self.options, probs)
        if encoding is None or route.adapters:
            engine.use_adapters(route.adapters)
            encoding = encode_prefix(engine.decoder, audio)
        # The tokens the last two partials agreed on are not decoded again (LocalAgreement-2,
        # as whisper_streaming): a partial costs its new words only, and its text holds still.
        token, previous = state.tokens
        agreed = state.agreed if token == route.decode_token else []
        prompt = engine.tokens.prompt(route.decode_token, timestamps=False) + agreed
        limit = 8 + round(PARTIAL_TOKENS_PER_S * len(audio) / SAMPLE_RATE) - len(agreed)
        new = self._greedy(encoding, prompt, limit, listener)
        if new is None:
            return []  # it looped
        tokens = agreed + new
        state.agreed = _common_prefix(previous, tokens) if token == route.decode_token else []
        state.tokens = (route.decode_token, tokens)
        text = engine.transcriber.decode_text(tokens).strip()
        if not text:
            return []
        return [self._event("partial", state, text, current.speech_start, end, route)]

    def _greedy(
        self, encoding: torch.Tensor, prompt: list[int], limit: int, listener: _Listener | None
    ) -> list[int] | None:
        """Greedy tokens without timestamps, cut before a phrase repeats (see LOOP_MIN_SPAN);
        None when there would be more than `limit`."""
        try:
            budget = _TokenBudget(limit, listener)
            tokens = self.engine.decoder.decode(
                encoding, prompt, timestamps=False, cancel=budget, stop_when=lambda seq: _repeat_start(seq) is not None
            ).tokens
        except Cancelled:
            return None
        # The decode was asked after every token, so its tokens end in a repeat only if it stopped there.
        start = _repeat_start(tokens)
        return tokens if start is None else tokens[:start]

    # -- keeping it ----------------------------------------------------------------------

    def _record(self, audio: np.ndarray) -> None:
        if self.recording_problem is not None:
            return
        try:
            if self._recording is None and self._audio_path is None:
                self._record_dir.mkdir(parents=True, exist_ok=True)
                self._recording = _Recording(self._record_dir / f".{self.name}.flac.part")
            if self._recording is not None:
                self._recording.write(audio)
        except (OSError, sf.LibsndfileError) as exc:
            self._give_up_recording(exc)

    def _give_up_recording(self, error: Exception) -> None:
        """The recording cannot go on (a full disk): drop its partial file, keep transcribing."""
        recording, self._recording = self._recording, None
        if recording is not None:
            with suppress(OSError, RuntimeError):  # closing flushes, which fails for the same reason
                recording.close()
            recording.path.unlink(missing_ok=True)
        try:
            free = f"; {shutil.disk_usage(self._record_dir).free / 1e6:.1f} MB free there"
        except OSError:
            free = ""
        self.recording_problem = (
            f"{self._record_dir}: the recording stopped at {self.vad.position / SAMPLE_RATE:.1f} s "
            f"({one_line(error).rstrip('.')}{free}); the transcript goes on, the audio will not be kept"
        )

    def untold_recording_problem(self) -> str | None:
        """`recording_problem` the first time it is asked for after it arose, else None: what a
        caller polling after each `process` should tell the user, once."""
        if self.recording_problem is None or self._problem_told:
            return None
        self._problem_told = True
        return self.recording_problem

    def result(self) -> TranscriptionResult:
        """The finals so far as one transcript, for the writers."""
        segments = [Segment(round(e.start, 3), round(e.end, 3), e.text) for e in self.finals]
        return TranscriptionResult(f"{self.name}.flac", self.vad.position / SAMPLE_RATE, segments, self._session_route())

    def _session_route(self) -> Route:
        """The session's route: the locked one, or the languages and adapters its utterances used."""
        if self.locked is not None:
            return self.locked
        languages = dict.fromkeys(e.language for e in self.finals if e.language)
        adapters = dict.fromkeys((n for e in self.finals if e.adapter for n in e.adapter.split("+")), 1.0)
        notice = f"{len(self.finals)} utterances, each identified and routed on its own" if len(self.finals) > 1 else None
        return Route("auto", "+".join(languages), None, adapters, None, notice)

    def save(self, folder: Path, fmt: str = "json") -> dict[str, Path]:
        """Write the audio (FLAC) and the transcript into `folder`; ends the recording.

        Both files appear whole or not at all (each written under a temporary name, then
        renamed); returns their paths under "audio" and "transcript" (the transcript only
        when the recording had to stop, see `recording_problem`).
        """
        folder = Path(folder)
        target = folder / f"{self.name}.flac"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if self._recording is not None:
                self._recording.close()
                _move_into(self._recording.path, target)
                self._recording, self._audio_path = None, target
            elif self._audio_path is not None and self._audio_path != target:
                _copy_into(self._audio_path, target)  # saved before, elsewhere: that copy stays
            saved: dict[str, Path] = {}
            if self._audio_path is not None:
                saved["audio"] = target
            saved["transcript"] = write_result(self.result(), fmt, folder)
        except (OSError, sf.LibsndfileError) as exc:
            raise StorageError(f"{folder}: could not save the live session ({write_problem(exc)})") from exc
        return saved


def _repeat_start(tokens: list[int]) -> int | None:
    """Where the second copy begins when `tokens` end in copies of one phrase that fill
    LOOP_MIN_SPAN tokens (two copies at least); None when they do not."""
    for period in range(1, LOOP_MAX_PERIOD + 1):
        copies = max(2, math.ceil(LOOP_MIN_SPAN / period))
        span = copies * period
        if len(tokens) < span:
            continue
        tail = tokens[-span:]
        if all(tail[i] == tail[i - period] for i in range(period, span)):
            return len(tokens) - (copies - 1) * period
    return None


def _common_prefix(a: list[int], b: list[int]) -> list[int]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _copy_into(source: Path, target: Path) -> None:
    temp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _move_into(source: Path, target: Path) -> None:
    """Rename `source` to `target`, or copy it across file systems and remove it."""
    try:
        os.replace(source, target)
    except OSError:
        _copy_into(source, target)
        source.unlink()
