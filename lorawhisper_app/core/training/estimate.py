"""How long a training run will take here, from throughput measured on these machines.

A clip always costs one padded 30 s window, so the work is counted in clips: optimiser
steps times the batch, plus a greedy decoding of the dev set at every evaluation, plus a
fixed part (loading the backbone, the similarity pass) and decoding the data once.
The figures come from docs/experiments.md ("Training speed"); a run that stops early
(no better dev WER for `patience` evaluations) takes less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TrainConfig


@dataclass(frozen=True)
class Throughput:
    train_clips_per_s: float
    eval_clips_per_s: float
    setup_s: float
    decode_audio_per_s: float  # seconds of audio decoded (and checked) per second
    basis: str


# CPU: train_bench on 5 min of Swahili, 2 cores: 160 clips trained in 717 s; the rest of
# the 1541 s went to about 30 s of set-up and 11 evaluations of 4 dev clips.
# GPU: the Hausa run alone on an H200: 15,360 clips in 92 s; 9 evaluations of 141 dev
# clips and the set-up took the other 122 s of 214. Decoding and checking the data runs
# on the CPU either way: 48 min of Swahili Opus took 7.4 s here (386 audio s/s).
MEASURED = {
    "cpu": Throughput(0.223, 0.055, 30.0, 350.0, "measured on a 2-core CPU"),
    "cuda": Throughput(166.0, 13.0, 25.0, 350.0, "measured on an NVIDIA H200; other GPUs differ"),
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

    @property
    def total_s(self) -> float:
        return self.setup_s + self.train_s + self.eval_s


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
) -> Estimate:
    """Seconds a run of `steps` optimiser steps takes on `device` ("cpu" or "cuda")."""
    if device not in MEASURED:
        raise ValueError(f"no throughput measured for device {device!r}; known: {', '.join(MEASURED)}")
    if min(steps, batch_size, eval_every) < 1 or min(train_clips, dev_clips) < 0 or data_seconds < 0:
        raise ValueError("steps, batch size and eval cadence must be at least 1, clips and seconds not negative")
    rate = MEASURED[device]
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
    )


def training_device(requested: str = "auto") -> str:
    """Where `lorawhisper train --device REQUESTED` runs here: "cuda" or "cpu" (for "auto",
    imports torch to look)."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def duration_text(seconds: float) -> str:
    """e.g. "about 40 s", "about 25 min", "about 2 h 10 min"."""
    if seconds < 90:
        return f"about {max(10, round(seconds / 10) * 10)} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
