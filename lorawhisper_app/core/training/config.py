"""What a training run is asked to do: LoRA shape, optimiser, budget, warm start, MoE."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ..adapter_meta import LoraSpec
from ..errors import LoraWhisperError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "fc1", "fc2")
WARM_AUTO = "auto"
WARM_FIT = "fit"
WARM_NONE = "none"
FIT_CLIPS = 16  # training clips each --warm-start fit candidate is scored on
FRESH = "(fresh)"  # the fresh start among fit's candidates: not a valid adapter name, so it names none
# In docs/experiments.md a start from the related language's adapter (what fit picks) beat a
# fresh one in each of 13 pairs of runs that passed over the training data 0.5 to 5.7 times
# (Kinyarwanda on 10 and 90 minutes, Luganda on 10; 15, 20 and 45 steps; up to three seeds), tied at
# 7.3 passes (Luganda, 10 minutes, 45 steps, two seeds), and a copy lost to a fresh start at 8 and
# 34 passes (the GPU runs): fresh runs of up to this many passes, between the two, are pointed to it.
FIT_HELPS_MAX_PASSES = 6.0
# What the adapter fit picks must fit the new data within this multiple of a fresh start's loss
# per token, else the run starts fresh. Related languages' copies measured 1.12 (lg for rw) and
# 1.16 (rw for lg) and helped; the best unrelated one, sw, 1.38 and 1.34, and for rw its copy
# ended far behind a fresh start (docs/experiments.md, "When no related adapter is installed").
FIT_MAX_LOSS_RATIO = 1.25


def passes(steps: int, batch_size: int, train_clips: int) -> float:
    """How many times a run of `steps` optimiser steps sees each training clip, on average."""
    return steps * batch_size / max(1, train_clips)


def start_problem(source: str, lora: LoraSpec, rank: int, targets: Iterable[str]) -> str | None:
    """Why adapter `source`, of shape `lora`, cannot seed a new adapter of `rank` on `targets`; None when it can."""
    targets = tuple(targets)
    if lora.rank != rank:
        return f"{source} has rank {lora.rank}, this run {rank}"
    if set(lora.targets) != set(targets):
        return f"{source} adapts {', '.join(lora.targets)}, this run {', '.join(targets)}"
    return None


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `steps` wins over `epochs` when given.

    `batch_size` is the batch one optimiser step sees; it is split into micro-batches of
    `micro_batch` clips (default: 16 on a GPU, 4 on the CPU) with gradient accumulation,
    so the same settings train the same adapter on either. `warm_start` is "none" by
    default (it measured best: docs/experiments.md), "auto" (the most similar language that has an adapter), "none"
    (peft's standard initialisation), "fit" (the installed adapter whose start gives the lowest loss on a sample of the
    new data: fit_ranking.py) or a language code or adapter name. `moe_k` > 0
    keeps the adapters of the K most similar languages active and frozen beside the new
    one, weighted by normalised similarity. `anchor` > 0 adds anchor * ||w - w_start||^2
    over the new adapter's weights to the loss (L2-SP: a warm-started adapter is pulled
    toward where it started rather than toward zero). `warm_rank` > 0 copies only that many of
    the strongest directions of each layer's source update (a truncated SVD of B @ A); the
    other rank slots start as in a cold run. `precision` "auto" is bfloat16 autocast on
    a GPU that has it (else float16), and on a CPU that computes bfloat16 natively (AVX512-BF16
    or AMX; there the dev evaluations autocast only the encoder), else float32.
    """

    language: str
    name: str
    rank: int = 32
    alpha: float = 64.0
    dropout: float = 0.05
    targets: tuple[str, ...] = DEFAULT_TARGETS
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    batch_size: int = 16
    micro_batch: int | None = None
    epochs: int = 12
    steps: int | None = None
    eval_every: int | None = None
    patience: int = 3
    seed: int = 0
    precision: str = "auto"
    gradient_checkpointing: bool = False
    warm_start: str = WARM_NONE
    anchor: float = 0.0
    warm_rank: int = 0
    moe_k: int = 0
    decode_token: str | None = None
    timestamp_fraction: float = 0.5
    dev_max_clips: int = 150
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        checks = [
            (self.rank >= 1, "--rank must be at least 1"),
            (self.alpha > 0, "--alpha must be positive"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (self.learning_rate > 0, "--lr must be positive"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.micro_batch is None or self.micro_batch >= 1, "--micro-batch must be at least 1"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.steps is None or self.steps >= 1, "--steps must be at least 1"),
            (self.eval_every is None or self.eval_every >= 1, "--eval-every must be at least 1"),
            (self.moe_k >= 0, "--moe K needs K >= 0"),
            (self.anchor >= 0, "--anchor must be zero or positive"),
            (0 <= self.warm_rank <= self.rank, f"--warm-rank must be between 0 and the rank, {self.rank}"),
            (not self.warm_rank or self.warm_start != WARM_NONE, "--warm-rank needs --warm-start auto or an adapter"),
            (self.precision in ("auto", "float32", "bfloat16", "float16"), "--precision is auto, float32, bfloat16 or float16"),
            (0 <= self.timestamp_fraction <= 1, "timestamp_fraction must be in [0, 1]"),
            (bool(self.targets), "--targets needs at least one module name"),
        ]
        for ok, message in checks:
            if not ok:
                raise LoraWhisperError(message)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    def steps_per_epoch(self, train_clips: int) -> int:
        return math.ceil(train_clips / self.batch_size)

    def total_steps(self, train_clips: int) -> int:
        """The run's optimiser steps: `steps`, or `epochs` passes over `train_clips` clips."""
        return self.steps or self.epochs * self.steps_per_epoch(train_clips)

    def evaluation_interval(self, total_steps: int) -> int:
        """Steps between dev evaluations: `eval_every`, or an eighth of the run."""
        return self.eval_every or max(1, total_steps // 8)

    def micro_batch_for(self, device_type: str) -> int:
        size = self.micro_batch or (16 if device_type == "cuda" else 4)
        return min(size, self.batch_size)

    def fingerprint(self) -> str:
        """Identifies a run for resuming: the same config and data give the same value."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
