"""Dev-set word error rate during training: batched greedy decoding without timestamps.

Faster than the engine's long-form decoder (no temperature fallback, no timestamp
rules), so it is what picks the best checkpoint; `lorawhisper evaluate` measures an
adapter the way the app will use it.

Evaluations are a large share of a run's time on a GPU, and a model that loops (the bare
backbone on these languages, an adapter early in training) would otherwise decode every
clip to the full token limit. So each clip gets a token budget from its duration, clips
are batched longest first (batch-mates end at about the same step), and a clip leaves the
batch as soon as it ends or runs out of budget.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from transformers import WhisperForConditionalGeneration

from ..decoder_steps import DecoderSteps, StepCache
from ..decoding import SpecialTokens, WindowDecoder
from ..metrics import corpus_rates
from .batches import Example, batch_features

MAX_NEW_TOKENS = 160
# The fastest speech in the shared train and dev sets is 4.5-7.4 tokens a second at the
# 99th percentile and 11 at most (one 2.8 s English clip): a hypothesis past this budget
# is a loop, and counts as wrong however much longer it runs.
TOKENS_PER_SECOND = 12
TOKEN_ALLOWANCE = 16
METHOD = (f"batched greedy decoding without timestamps, at most {TOKEN_ALLOWANCE} + {TOKENS_PER_SECOND} "
          f"tokens per second of audio and {MAX_NEW_TOKENS} in all")


def token_budget(samples: int) -> int:
    """How many tokens a clip of `samples` 16 kHz samples may decode."""
    return min(MAX_NEW_TOKENS, TOKEN_ALLOWANCE + math.ceil(TOKENS_PER_SECOND * samples / 16000))


def _keep_rows(cache: StepCache, rows: torch.Tensor) -> None:
    cache.cross = [(k[rows], v[rows]) for k, v in cache.cross]
    cache.own = [None if kv is None else (kv[0][rows], kv[1][rows]) for kv in cache.own]


def _decode_batch(
    model: WhisperForConditionalGeneration, encoder: WindowDecoder, steps: DecoderSteps, chunk: list[Example],
    prompt: list[int], blocked: torch.Tensor, eot: int,
) -> list[list[int]]:
    device = model.device
    cache = steps.start(encoder.encode(batch_features(chunk, model.config.num_mel_bins, device)))
    hidden = steps(torch.tensor([prompt] * len(chunk), device=device), cache)
    budgets = [token_budget(len(ex.audio)) for ex in chunk]
    tokens: list[list[int]] = [[] for _ in chunk]
    active = list(range(len(chunk)))  # the batch rows still decoding, as indices into `chunk`
    while True:
        logits = model.proj_out(hidden[:, -1]).float()
        logits.masked_fill_(blocked, -torch.inf)
        picked = logits.argmax(-1).tolist()
        still: list[int] = []
        for row, (index, token) in enumerate(zip(active, picked)):
            if token == eot:
                continue
            tokens[index].append(token)
            if len(tokens[index]) < budgets[index]:
                still.append(row)
        if not still:
            return tokens
        if len(still) < len(active):
            rows = torch.tensor(still, device=device)
            _keep_rows(cache, rows)
            picked = [picked[r] for r in still]
            active = [active[r] for r in still]
        hidden = steps(torch.tensor(picked, device=device)[:, None], cache)


@torch.inference_mode()
def greedy_texts(
    model: WhisperForConditionalGeneration,
    examples: list[Example],
    tokens: SpecialTokens,
    decode_token: str | None,
    decode_text: Callable[[list[int]], str],
    *,
    batch_size: int = 16,
    autocast: torch.dtype | None = None,
    encoder_only: bool = False,
    before_batch: Callable[[], None] | None = None,
) -> list[str]:
    """The greedy transcript of each example, in the order given.

    `autocast` applies to the encoder, and to the decoder too unless `encoder_only`: on the
    CPU, bfloat16 speeds the encoder up but slows the one-token decoder steps down.
    `before_batch` runs before each batch of clips; it may raise to stop (a cancel).
    """
    device = model.device
    prompt = tokens.prompt(decode_token, timestamps=False)
    vocab = model.config.vocab_size
    blocked = torch.zeros(vocab, dtype=torch.bool, device=device)
    blocked[[t for t in tokens.suppress if 0 <= t < vocab]] = True
    blocked[tokens.eot + 1 :] = True  # special and timestamp tokens: text and the end token only
    steps = DecoderSteps(model)
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].audio))
    texts = [""] * len(examples)
    encoder = WindowDecoder(model, tokens, autocast if encoder_only else None)
    whole = torch.autocast(device.type, dtype=autocast) if autocast and not encoder_only else contextlib.nullcontext()
    with whole:
        for start in range(0, len(order), batch_size):
            if before_batch is not None:
                before_batch()
            picked = order[start : start + batch_size]
            decoded = _decode_batch(model, encoder, steps, [examples[i] for i in picked], prompt, blocked, tokens.eot)
            for index, ids in zip(picked, decoded):
                texts[index] = decode_text(ids).strip()
    return texts


def dev_wer(references: list[str], hypotheses: list[str]) -> float:
    return corpus_rates(zip(references, hypotheses))[0]
