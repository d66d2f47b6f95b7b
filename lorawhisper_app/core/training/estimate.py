"""How long a training run will take here, from throughput measured on these machines.

A clip always costs one padded 30 s window, so the work is counted in clips: optimiser
steps times the batch, plus a greedy decoding of the dev set at every evaluation, plus a
fixed part (loading the backbone, the similarity pass) and decoding the data once; with
`--warm-start fit`, a teacher-forced pass over a sample of clips per installed adapter.
The figures come from docs/experiments.md ("Training speed"); a run that stops early
(no better dev WER for `patience` evaluations) takes less.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .config import FIT_CLIPS, TrainConfig


@dataclass(frozen=True)
class Throughput:
    train_clips_per_s: float
    eval_clips_per_s: float
    setup_s: float
    decode_audio_per_s: float  # seconds of audio decoded (and checked) per second
    fit_clips_per_s: float  # clips scored per second by --warm-start fit (forward passes only)
    basis: str


# CPU: train_bench on 5 min of Swahili, 2 cores (13 train and 4 dev clips, batch 16, an
# evaluation every step). float32: 160 clips trained in 467 s, 11 evaluations in 116 s,
# 625 s end to end. bfloat16 (two runs): 128 clips in 235 and 233 s, 9 evaluations in 80
# and 71 s, 340 and 329 s end to end. GPU: the Hausa run alone on an
# H200: 15,360 clips in 92 s; 9 evaluations of 141 dev clips and the set-up took the other
# 122 s of 214. Decoding and checking the data runs on the CPU either way: 48 min of
# Swahili Opus took 7.4 s here (386 audio s/s). Fit scoring, bfloat16 on this CPU: 6 scores of
# 16 clips in 51.6 s (the Kinyarwanda fit run, seed 1, docs/experiments.md), 3.4 times the
# training rate; float32 is taken at the same ratio to its training rate, and a GPU at its
# training rate (forward passes cost less than training steps, so that errs long).
MEASURED = {
    ("cpu", "float32"): Throughput(0.343, 0.38, 33.0, 350.0, 1.16, "measured on a 2-core CPU in float32"),
    ("cpu", "bfloat16"): Throughput(0.55, 0.48, 17.0, 350.0, 1.86, "measured on a 2-core CPU in bfloat16"),
    ("cuda", "bfloat16"): Throughput(166.0, 13.0, 25.0, 350.0, 166.0, "measured on an NVIDIA H200; other GPUs differ"),
}


@dataclass(frozen=True)
class Estimate:
    device: str
    steps: int
    evaluations: int
    setup_s: float
    train_s: float
    eval_s: float
    basis: str
    fit_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.setup_s + self.fit_s + self.train_s + self.eval_s


def steps_for(train_clips: int, batch_size: int, epochs: int) -> int:
    """The trainer's step count for an epoch budget."""
    return epochs * max(1, math.ceil(train_clips / batch_size))


def evaluation_count(steps: int, eval_every: int, *, starts_from_adapter: bool = False) -> int:
    """Dev evaluations in a run: the bare backbone, every `eval_every` steps and the last
    step, plus one at the start when it warm-starts or mixes in other adapters."""
    return 1 + int(starts_from_adapter) + math.ceil(steps / eval_every)


def estimate_training(
    *,
    device: str,
    train_clips: int,
    dev_clips: int,
    data_seconds: float,
    steps: int,
    batch_size: int,
    eval_every: int,
    starts_from_adapter: bool = False,
    fit_candidates: int = 0,
    precision: str | None = None,
    rates: Throughput | None = None,
) -> Estimate:
    """Seconds a run of `steps` optimiser steps takes on `device` ("cpu" or "cuda") in
    `precision` (default: what `--precision auto` trains in here). `fit_candidates`: the installed
    adapters that `--warm-start fit` scores (0 for any other start). `rates`: speeds measured on
    this machine (speed_log.SpeedLog.throughput) instead of the project's figures."""
    devices = sorted({d for d, _ in MEASURED})
    if device not in devices:
        raise ValueError(f"no throughput measured for device {device!r}; known: {', '.join(devices)}")
    if min(steps, batch_size, eval_every) < 1 or min(train_clips, dev_clips, fit_candidates) < 0 or data_seconds < 0:
        raise ValueError("steps, batch size and eval cadence must be at least 1, clips, candidates and seconds not negative")
    precision = precision or auto_precision(device)
    if (device, precision) not in MEASURED:
        raise ValueError(f"no throughput measured for {device} in {precision}")
    rate = rates or MEASURED[device, precision]
    evaluations = evaluation_count(steps, eval_every, starts_from_adapter=starts_from_adapter)
    scored = min(dev_clips, TrainConfig.dev_max_clips)
    return Estimate(
        device=device,
        steps=steps,
        evaluations=evaluations,
        setup_s=rate.setup_s + data_seconds / rate.decode_audio_per_s,
        train_s=steps * batch_size / rate.train_clips_per_s,
        eval_s=evaluations * scored / rate.eval_clips_per_s,
        basis=rate.basis,
        # the candidates and the fresh start, each on the same sample (FIT_CLIPS, or all when fewer)
        fit_s=(fit_candidates + 1) * min(train_clips, FIT_CLIPS) / rate.fit_clips_per_s if fit_candidates else 0.0,
    )


def training_device(requested: str = "auto") -> str:
    """Where `lorawhisper train --device REQUESTED` runs here: "cuda" or "cpu" (for "auto",
    imports torch to look)."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def auto_precision(device: str) -> str:
    """The precision of the figures that fit `--precision auto` on `device` here: a CPU trains
    in bfloat16 only where it computes it natively; the GPU figures are bfloat16 ones (a GPU
    without it trains in float16). Imports torch; cached."""
    if device == "cuda":
        return "bfloat16"
    from ..fast_linear import cpu_has_fast_bf16

    return "bfloat16" if cpu_has_fast_bf16() else "float32"


def duration_text(seconds: float) -> str:
    """e.g. "about 40 s", "about 25 min", "about 2 h 10 min"."""
    if seconds < 90:
        return f"about {max(10, round(seconds / 10) * 10)} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
