"""Greedy/temperature decoding of one 30 s window with Whisper's timestamp rules.

A decoding loop of our own (not `generate()`): it reuses the encoder output for language
identification and decoding, applies openai/whisper's timestamp constraints, reports the
no-speech probability and the average log-probability that drive the fallback rules,
and can be cancelled between tokens.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from transformers import WhisperForConditionalGeneration, WhisperTokenizer

from .decoder_steps import DecoderSteps
from .errors import Cancelled
from .features import window_features

SECONDS_PER_TIMESTAMP = 0.02


@dataclass(frozen=True)
class SpecialTokens:
    sot: int
    eot: int
    transcribe: int
    no_timestamps: int
    timestamp_begin: int
    no_speech: int | None
    prev: int
    lang_ids: dict[str, int]  # language code -> token id
    suppress: tuple[int, ...]
    suppress_begin: tuple[int, ...]

    @classmethod
    def from_model(cls, model: WhisperForConditionalGeneration, tokenizer: WhisperTokenizer) -> "SpecialTokens":
        gc = model.generation_config
        eot = gc.eos_token_id[0] if isinstance(gc.eos_token_id, list) else gc.eos_token_id
        no_speech = next(
            (tid for name in ("<|nospeech|>", "<|nocaptions|>")
             if (tid := tokenizer.convert_tokens_to_ids(name)) not in (None, tokenizer.unk_token_id)),
            None,
        )
        return cls(
            sot=gc.decoder_start_token_id,
            eot=eot,
            transcribe=gc.task_to_id["transcribe"],
            no_timestamps=gc.no_timestamps_token_id,
            timestamp_begin=gc.no_timestamps_token_id + 1,
            no_speech=no_speech,
            prev=gc.prev_sot_token_id,
            lang_ids={tok[2:-2]: tid for tok, tid in gc.lang_to_id.items()},
            suppress=tuple(gc.suppress_tokens or ()),
            suppress_begin=tuple(gc.begin_suppress_tokens or ()),
        )

    def prompt(self, language: str | None, timestamps: bool) -> list[int]:
        ids = [self.sot]
        if language is not None:
            ids.append(self.lang_ids[language])
        ids.append(self.transcribe)
        if not timestamps:
            ids.append(self.no_timestamps)
        return ids


@dataclass
class WindowResult:
    tokens: list[int]  # sampled tokens, without the prompt and without the end token
    avg_logprob: float
    no_speech_prob: float
    temperature: float

    def compression_ratio(self, text: str) -> float:
        raw = text.encode("utf-8")
        return len(raw) / max(1, len(zlib.compress(raw)))


def _timestamp_rules(logits: torch.Tensor, seq: list[int], tokens: SpecialTokens, max_initial: int) -> None:
    """openai/whisper's ApplyTimestampRules for one sequence, in place on 1-D logits."""
    tb = tokens.timestamp_begin
    logits[tokens.no_timestamps] = -torch.inf
    last_ts = len(seq) >= 1 and seq[-1] >= tb
    penultimate_ts = len(seq) < 2 or seq[-2] >= tb
    if last_ts:
        if penultimate_ts:
            logits[tb:] = -torch.inf
        else:
            logits[: tokens.eot] = -torch.inf
    stamps = [t for t in seq if t >= tb]
    if stamps:
        floor = stamps[-1] if (last_ts and not penultimate_ts) else stamps[-1] + 1
        logits[tb:floor] = -torch.inf
    if not seq:
        logits[:tb] = -torch.inf
        logits[tb + max_initial + 1 :] = -torch.inf
    # Timestamps win when their total probability beats every text token's: compared on
    # the logits, since the softmax normaliser is common to both sides.
    if torch.logsumexp(logits[tb:], dim=-1) > logits[:tb].max():
        logits[:tb] = -torch.inf


class WindowDecoder:
    """Runs the encoder and the decoder loop of a (possibly adapted) Whisper model."""

    def __init__(
        self, model: WhisperForConditionalGeneration, tokens: SpecialTokens, encoder_autocast: torch.dtype | None = None
    ) -> None:
        self.model = model
        self.tokens = tokens
        self.encoder_autocast = encoder_autocast
        vocab = model.config.vocab_size
        self._suppress = torch.zeros(vocab, dtype=torch.bool)
        self._suppress[[t for t in tokens.suppress if 0 <= t < vocab]] = True
        self._suppress_begin = [t for t in tokens.suppress_begin if 0 <= t < vocab]
        self.max_tokens = model.config.max_target_positions // 2
        self._steps = DecoderSteps(model)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def encode_audio(self, audio: np.ndarray) -> torch.Tensor:
        """Encoder output for up to 30 s of 16 kHz audio, as one padded window."""
        return self.encode(window_features(audio, self.model.config.num_mel_bins))

    @torch.inference_mode()
    def encode(self, features: torch.Tensor) -> torch.Tensor:
        features = features.to(self.device, self.model.dtype)
        if self.encoder_autocast is None:
            return self.model.model.encoder(features).last_hidden_state
        with torch.autocast(self.device.type, dtype=self.encoder_autocast):
            return self.model.model.encoder(features).last_hidden_state.to(self.model.dtype)

    @torch.inference_mode()
    def language_probs(self, enc: torch.Tensor) -> list[dict[str, float]]:
        """P(language) per batch item from one decoder step after <|startoftranscript|>."""
        ids = torch.full((enc.shape[0], 1), self.tokens.sot, device=self.device)
        logits = self.model.proj_out(self._steps(ids, self._steps.start(enc))[:, -1]).float()
        codes = list(self.tokens.lang_ids)
        lang_logits = logits[:, list(self.tokens.lang_ids.values())]
        probs = torch.softmax(lang_logits, dim=-1).cpu()
        return [dict(sorted(zip(codes, row.tolist()), key=lambda kv: -kv[1])) for row in probs]

    @torch.inference_mode()
    def decode(
        self,
        enc: torch.Tensor,
        prompt: list[int],
        *,
        timestamps: bool = True,
        temperature: float = 0.0,
        max_initial_timestamp: int = 50,
        generator: torch.Generator | None = None,
        cancel: threading.Event | None = None,
        stop_when: Callable[[list[int]], bool] | None = None,
    ) -> WindowResult:
        """Decode one window (batch of one) from `prompt` until the end token, or until
        `stop_when`, asked with the tokens so far after each one, says to stop there."""
        cache = self._steps.start(enc)
        ids = torch.tensor([prompt], device=self.device)
        seq: list[int] = []
        total_logprob = 0.0
        no_speech_prob = 0.0
        suppress = self._suppress.to(self.device)
        sot_index = prompt.index(self.tokens.sot)
        for step in range(self.max_tokens):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            hidden = self._steps(ids, cache)[0]
            if step == 0 and self.tokens.no_speech is not None:
                sot_logits = self.model.proj_out(hidden[sot_index : sot_index + 1])[0].float()
                no_speech_prob = torch.softmax(sot_logits, -1)[self.tokens.no_speech].item()
            logits = self.model.proj_out(hidden[-1:])[0].float()
            logits.masked_fill_(suppress, -torch.inf)
            if step == 0:
                logits[self._suppress_begin] = -torch.inf
            if timestamps:
                _timestamp_rules(logits, seq, self.tokens, max_initial_timestamp)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, -1)
                token = int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
            else:
                token = int(logits.argmax().item())
            logprob = (logits[token] - torch.logsumexp(logits, -1)).item()
            if token == self.tokens.eot:
                total_logprob += logprob
                break
            total_logprob += logprob
            seq.append(token)
            if stop_when is not None and stop_when(seq):
                break
            ids = torch.tensor([[token]], device=self.device)
        avg = total_logprob / (len(seq) + 1)
        return WindowResult(seq, avg, no_speech_prob, temperature)
