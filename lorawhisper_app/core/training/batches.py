"""Training examples: decoder targets from transcripts, encoder features from audio.

A target is Whisper's prompt (start, language, transcribe) followed by the text and the
end token. A share of the examples carries timestamps (`<|0.00|> text <|end|>`), the
rest `<|notimestamps|>`, so an adapter keeps the timestamped decoding the engine uses
for long files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from ..decoding import SpecialTokens
from ..features import N_FRAMES, log_mel, pad_frames

IGNORE = -100
SECONDS_PER_TIMESTAMP = 0.02
MAX_TIMESTAMP_INDEX = 1500


@dataclass(frozen=True)
class Example:
    clip_id: str
    audio: np.ndarray  # int16 16 kHz mono
    tokens: list[int]  # full sequence: prompt, text, end
    prompt_length: int


def uses_timestamps(clip_id: str, fraction: float) -> bool:
    """A fixed, order-independent choice per clip."""
    digest = int(hashlib.sha1(clip_id.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def make_example(
    clip_id: str, audio: np.ndarray, text_ids: list[int], tokens: SpecialTokens, decode_token: str | None,
    timestamps: bool, max_length: int,
) -> Example:
    prompt = tokens.prompt(decode_token, timestamps=timestamps)
    room = max_length - len(prompt) - 3
    body = list(text_ids[:room])
    if timestamps:
        end = min(MAX_TIMESTAMP_INDEX, round(len(audio) / 16000 / SECONDS_PER_TIMESTAMP))
        body = [tokens.timestamp_begin, *body, tokens.timestamp_begin + end]
    return Example(clip_id, audio, prompt + body + [tokens.eot], len(prompt))


@dataclass
class Batch:
    features: torch.Tensor  # [B, n_mels, 3000]
    decoder_input_ids: torch.Tensor  # [B, T]
    labels: torch.Tensor  # [B, T], IGNORE on the prompt and the padding

    @property
    def target_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())


def batch_features(examples: list[Example], n_mels: int, device: torch.device) -> torch.Tensor:
    """Encoder input [B, n_mels, 3000], computed on `device` one clip at a time (the
    normalisation is per clip)."""
    return torch.stack([
        pad_frames(log_mel(torch.from_numpy(ex.audio).to(device, torch.float32) / 32768.0, n_mels), N_FRAMES)
        for ex in examples
    ])


def collate(examples: list[Example], n_mels: int, device: torch.device, pad_id: int) -> Batch:
    feats = batch_features(examples, n_mels, device)
    width = max(len(ex.tokens) for ex in examples) - 1
    inputs = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, ex in enumerate(examples):
        seq = torch.tensor(ex.tokens)
        inputs[row, : len(seq) - 1] = seq[:-1]
        labels[row, ex.prompt_length - 1 : len(seq) - 1] = seq[ex.prompt_length :]
    return Batch(feats, inputs.to(device), labels.to(device))
