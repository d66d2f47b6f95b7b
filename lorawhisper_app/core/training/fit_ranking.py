"""Warm start by fit: the installed adapter that already transcribes the new data best.

Whisper's LID ranks neighbours by how the audio sounds to the bare model, and on this
project's data it puts the related language low (Luganda: Lingala first, Kinyarwanda third).
Fit asks the adapters themselves: each candidate in turn is loaded as the new adapter's start
(cut to `--warm-rank` directions when that is set, exactly as training would start from it)
and scored by its teacher-forced cross-entropy per token on a fixed sample of the training
clips. The fresh (cold) start is scored beside them: it fits better than any whole adapter
(adapters are confident on their own language), yet a copy of a related language's adapter leads
a short run (docs/experiments.md). What decides is how much worse the best copy fits: a related
language's within FIT_MAX_LOSS_RATIO times the fresh start's loss, an unrelated one's beyond it,
and then the run starts fresh. Forward passes only: 9 to 16 s per adapter on a 2-core CPU
(bfloat16, 16 clips).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peft import PeftModel

from ..adapter_store import AdapterInfo
from .batches import IGNORE, Batch
from .config import FIT_MAX_LOSS_RATIO, FRESH, TrainConfig
from .lora_setup import load_trainable_state, start_from, trainable_state


@dataclass(frozen=True)
class Fit:
    adapter: str  # FRESH for the cold start
    language: str  # "" for the cold start
    loss: float  # mean cross-entropy per target token


def mean_loss(peft: PeftModel, batches: list[Batch], autocast: torch.dtype | None) -> float:
    """Teacher-forced cross-entropy per target token over `batches`, dropout off."""
    was_training = peft.training
    peft.eval()
    total, tokens = 0.0, 0
    amp = torch.autocast(batches[0].features.device.type, dtype=autocast) if autocast else contextlib.nullcontext()
    with torch.no_grad(), amp:
        for batch in batches:
            logits = peft(input_features=batch.features, decoder_input_ids=batch.decoder_input_ids).logits
            total += float(torch.nn.functional.cross_entropy(
                logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE, reduction="sum"))
            tokens += batch.target_tokens
    peft.train(was_training)
    return total / max(tokens, 1)


def rank_by_fit(
    peft: PeftModel, config: TrainConfig, candidates: list[AdapterInfo], batches: list[Batch], autocast: torch.dtype | None,
    before_each: Callable[[int, int, str], None] | None = None,
) -> list[Fit]:
    """Every candidate and the fresh start, best fit (lowest loss) first. `before_each(i, n, name)` runs
    before the i-th of n scores (progress; it may raise to stop). The new adapter is left at its fresh
    start, also when scoring stops early."""
    fresh = {k: v.detach().clone() for k, v in trainable_state(peft, config.name).items()}
    names = [FRESH, *(info.name for info in candidates)]
    fits = []
    try:
        for i, info in enumerate([None, *candidates]):
            if before_each is not None:
                before_each(i + 1, len(names), names[i])
            if info is not None:
                start_from(peft, config, info, fresh)
            fits.append(Fit(names[i], info.meta.language if info else "", mean_loss(peft, batches, autocast)))
    finally:
        load_trainable_state(peft, config.name, fresh)
    return sorted(fits, key=lambda f: f.loss)


def choose_start(fits: list[Fit], max_ratio: float = FIT_MAX_LOSS_RATIO) -> tuple[str, str]:
    """The adapter a fit start copies (the best-fitting one), or FRESH when none is scored or the
    best has more than `max_ratio` times the fresh start's loss; and, for FRESH, why in words."""
    fresh = next(f.loss for f in fits if f.adapter == FRESH)
    best = next((f for f in fits if f.adapter != FRESH), None)
    if best is None:
        return FRESH, "no installed adapter can be a start"
    ratio = best.loss / fresh
    if ratio > max_ratio:
        return FRESH, (f"the best-fitting adapter, {best.adapter}, has {ratio:.2f} times a fresh start's loss; "
                       f"copies beyond {max_ratio:.2f} times (unrelated languages) measured worse than fresh")
    return best.adapter, ""
