"""Training speeds measured by the runs that finished on this machine.

The time estimate starts from figures measured on this project's 2-core CPU and one GPU
(estimate.MEASURED), which say little about another machine. Each run that finishes here
adds how fast it trained and scored its dev set, under the device, precision and backbone
it ran with; later estimates for the same three take the median of the last `KEEP` runs.
A run that shared the machine with other work was slow, and the median keeps one such run
from moving the estimate much.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from ..settings import cache_dir
from ..writers import write_atomic
from .estimate import MEASURED, Throughput

FILE_NAME = "training-speeds.json"
FORMAT = 1
KEEP = 5  # runs kept per device, precision and backbone


@dataclass(frozen=True)
class RunSpeed:
    """What one run measured: clips trained per second (each clip one 30 s window, in
    optimiser steps of the configured batch) and dev clips decoded per second (None when
    the run scored none)."""

    train_clips_per_s: float
    eval_clips_per_s: float | None


def speed_key(device: str, precision: str, fingerprint: str) -> str:
    return f"{device}/{precision}/{fingerprint}"


class SpeedLog:
    """One JSON file of recent runs' speeds; a log that cannot be read or written is treated as empty."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, list[dict[str, object]]]:
        """Each key's runs; anything of another shape (an edited or damaged file) is left out."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        runs = data.get("runs") if isinstance(data, dict) and data.get("format") == FORMAT else None
        if not isinstance(runs, dict):
            return {}
        return {key: [r for r in kept if isinstance(r, dict)] for key, kept in runs.items() if isinstance(kept, list)}

    def record(self, device: str, precision: str, fingerprint: str, speed: RunSpeed) -> bool:
        """Add a finished run's speeds; False when the file could not be written (the estimate then keeps its figures)."""
        if not speed.train_clips_per_s > 0:
            return False
        runs = self._read()
        key = speed_key(device, precision, fingerprint)
        runs[key] = [*runs.get(key, []), {"train_clips_per_s": speed.train_clips_per_s, "eval_clips_per_s": speed.eval_clips_per_s}][-KEEP:]
        try:
            write_atomic(self.path, json.dumps({"format": FORMAT, "runs": runs}, indent=1) + "\n")
        except OSError:
            return False
        return True

    def speeds(self, device: str, precision: str, fingerprint: str) -> list[RunSpeed]:
        found = []
        for run in self._read().get(speed_key(device, precision, fingerprint), []):
            train, evaluate = run.get("train_clips_per_s"), run.get("eval_clips_per_s")
            if isinstance(train, (int, float)) and train > 0:
                found.append(RunSpeed(float(train), float(evaluate) if isinstance(evaluate, (int, float)) and evaluate > 0 else None))
        return found

    def throughput(self, device: str, precision: str, fingerprint: str) -> Throughput | None:
        """The project's figures for `device` and `precision` with the training and dev-scoring
        rates of this machine's recent runs (fit scoring keeps its measured ratio to training);
        None when no run has finished here with these three."""
        base = MEASURED.get((device, precision))
        found = self.speeds(device, precision, fingerprint)
        if base is None or not found:
            return None
        train = statistics.median(s.train_clips_per_s for s in found)
        evals = [s.eval_clips_per_s for s in found if s.eval_clips_per_s is not None]
        runs = "the last training run" if len(found) == 1 else f"the last {len(found)} training runs"
        return replace(
            base,
            train_clips_per_s=train,
            eval_clips_per_s=statistics.median(evals) if evals else base.eval_clips_per_s,
            fit_clips_per_s=base.fit_clips_per_s * train / base.train_clips_per_s,
            basis=f"measured by {runs} on this machine ({precision})",
        )


def default_speed_log() -> SpeedLog:
    """The log in the app's cache folder, shared by `lorawhisper train` and the wizard's estimate."""
    return SpeedLog(cache_dir() / FILE_NAME)
