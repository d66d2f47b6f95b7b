"""The training-time estimate against the runs it was measured on (docs/experiments.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lorawhisper_app.core.training.estimate import (
    MEASURED,
    auto_precision,
    duration_text,
    estimate_training,
    evaluation_count,
    steps_for,
    training_device,
)
from lorawhisper_app.core.training.speed_log import RunSpeed, SpeedLog
from lorawhisper_app.core.training.trainer import _amp_dtype


def test_steps_follow_the_trainer_epoch_rule() -> None:
    assert steps_for(13, 16, 12) == 12  # 13 clips make one batch of 16
    assert steps_for(177, 16, 12) == 12 * 12
    assert steps_for(17, 4, 2) == 10


@pytest.mark.parametrize(("steps", "every"), [(12, 1), (96, 12), (10, 3), (250, 50), (7, 10)])
def test_evaluations_match_the_trainer_loop(steps: int, every: int) -> None:
    # The trainer scores the bare backbone once, then after every `every`-th step and the last.
    in_loop = sum(1 for step in range(1, steps + 1) if step % every == 0 or step == steps)
    assert evaluation_count(steps, every) == 1 + in_loop
    assert evaluation_count(steps, every, starts_from_adapter=True) == 2 + in_loop


@pytest.mark.parametrize(
    ("precision", "steps", "total", "train"), [("float32", 10, 625, 467), ("bfloat16", 8, 335, 234)]
)
def test_cpu_estimate_reproduces_the_measured_benchmark(precision: str, steps: int, total: float, train: float) -> None:
    # train_bench, 5 min of Swahili on this 2-core CPU: 13 train and 4 dev clips, batch 16,
    # evaluating every step; float32 ran 10 steps, bfloat16 stopped early at 8 (two runs).
    estimate = estimate_training(device="cpu", train_clips=13, dev_clips=4, data_seconds=300.0,
                                 steps=steps, batch_size=16, eval_every=1, precision=precision)
    assert estimate.evaluations == steps + 1
    assert estimate.total_s == pytest.approx(total, rel=0.10)
    assert estimate.train_s == pytest.approx(train, rel=0.05)


def test_auto_precision_is_what_the_trainer_picks() -> None:
    amp = _amp_dtype("auto", torch.device("cpu"))
    assert auto_precision("cpu") == ("float32" if amp is None else "bfloat16")
    assert auto_precision("cuda") == "bfloat16"


def test_gpu_estimate_reproduces_the_measured_h200_run() -> None:
    # Hausa alone on the H200: 960 steps of 16, 141 dev clips every 120 steps, 90 min: 214 s.
    estimate = estimate_training(device="cuda", train_clips=1200, dev_clips=141, data_seconds=5400.0,
                                 steps=960, batch_size=16, eval_every=120)
    assert estimate.total_s == pytest.approx(214, rel=0.10)
    assert estimate.train_s == pytest.approx(92.4, rel=0.05)


def test_estimate_grows_with_the_work_and_depends_on_the_device() -> None:
    plan = dict(train_clips=60, dev_clips=8, data_seconds=900.0, steps=48, batch_size=16, eval_every=6, precision="float32")
    cpu = estimate_training(device="cpu", **plan)
    assert estimate_training(device="cuda", **{**plan, "precision": "bfloat16"}).total_s < cpu.total_s / 20
    assert estimate_training(device="cpu", **{**plan, "precision": "bfloat16"}).total_s < cpu.total_s
    assert estimate_training(device="cpu", **{**plan, "steps": 96}).train_s == pytest.approx(2 * cpu.train_s)
    assert estimate_training(device="cpu", **{**plan, "data_seconds": 3600.0}).setup_s > cpu.setup_s
    assert estimate_training(device="cpu", **{**plan, "dev_clips": 16}).eval_s == pytest.approx(2 * cpu.eval_s)
    assert estimate_training(device="cpu", **plan, starts_from_adapter=True).evaluations == cpu.evaluations + 1
    fit = estimate_training(device="cpu", **plan, fit_candidates=5)
    assert cpu.fit_s == 0 and fit.total_s == pytest.approx(cpu.total_s + fit.fit_s)
    assert estimate_training(device="cpu", **plan, fit_candidates=2).fit_s == pytest.approx(fit.fit_s / 2)


def test_fit_estimate_reproduces_the_measured_scoring() -> None:
    # Kinyarwanda's fit run (seed 1) on this CPU in bfloat16: five adapters and the fresh start,
    # 16 of the 10-minute set's clips each, in 51.6 s.
    estimate = estimate_training(device="cpu", train_clips=56, dev_clips=141, data_seconds=600.0, steps=15,
                                 batch_size=16, eval_every=5, fit_candidates=5, precision="bfloat16")
    assert estimate.fit_s == pytest.approx(51.6, rel=0.05)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no throughput measured for device 'mps'"):
        estimate_training(device="mps", train_clips=1, dev_clips=1, data_seconds=1, steps=1, batch_size=1, eval_every=1)
    with pytest.raises(ValueError, match="must be at least 1"):
        estimate_training(device="cpu", train_clips=1, dev_clips=1, data_seconds=1, steps=0, batch_size=1, eval_every=1)
    with pytest.raises(ValueError, match="no throughput measured for cuda in float32"):
        estimate_training(device="cuda", train_clips=1, dev_clips=1, data_seconds=1, steps=1, batch_size=1, eval_every=1,
                          precision="float32")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3, "about 10 s"), (44, "about 40 s"), (600, "about 10 min"), (1541, "about 26 min"), (7800, "about 2 h 10 min"), (7200, "about 2 h")],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_app_setting_decides_the_training_device() -> None:
    assert training_device("cpu") == "cpu" and training_device("cuda") == "cuda"
    assert training_device() in ("cpu", "cuda")


def test_speed_log_keeps_the_last_runs_per_machine_setting_and_takes_their_median(tmp_path: Path) -> None:
    log = SpeedLog(tmp_path / "cache" / "speeds.json")
    assert log.throughput("cpu", "bfloat16", "sha256:a") is None  # nothing finished here yet
    for train, evaluate in [(0.1, None), (2.0, 1.0), (1.0, 3.0), (1.2, 2.0), (0.9, 2.5), (1.1, None)]:
        assert log.record("cpu", "bfloat16", "sha256:a", RunSpeed(train, evaluate))
    assert log.record("cpu", "bfloat16", "sha256:b", RunSpeed(9.0, 9.0))  # another backbone: kept apart
    kept = log.speeds("cpu", "bfloat16", "sha256:a")
    assert [s.train_clips_per_s for s in kept] == [2.0, 1.0, 1.2, 0.9, 1.1]  # the oldest of six dropped
    rates = log.throughput("cpu", "bfloat16", "sha256:a")
    base = MEASURED["cpu", "bfloat16"]
    assert rates is not None and rates.train_clips_per_s == 1.1 and rates.eval_clips_per_s == 2.25
    assert rates.fit_clips_per_s == pytest.approx(base.fit_clips_per_s * 1.1 / base.train_clips_per_s)
    assert (rates.setup_s, rates.decode_audio_per_s) == (base.setup_s, base.decode_audio_per_s)
    assert rates.basis == "measured by the last 5 training runs on this machine (bfloat16)"
    assert log.throughput("cpu", "float32", "sha256:a") is None and log.throughput("cuda", "bfloat16", "sha256:a") is None
    # The estimate follows the measured rates: twice the speed, half the training time.
    work = dict(device="cpu", train_clips=40, dev_clips=8, data_seconds=600, steps=30, batch_size=16, eval_every=10,
                precision="bfloat16")
    mine = estimate_training(**work, rates=rates)
    assert mine.train_s == pytest.approx(30 * 16 / 1.1) and mine.eval_s == pytest.approx(4 * 8 / 2.25)
    assert mine.basis == rates.basis and mine.setup_s == estimate_training(**work).setup_s


def test_speed_log_that_cannot_be_read_or_written_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "speeds.json"
    path.write_text("{not json", encoding="utf-8")
    log = SpeedLog(path)
    assert log.speeds("cpu", "float32", "sha256:a") == [] and log.throughput("cpu", "float32", "sha256:a") is None
    assert log.record("cpu", "float32", "sha256:a", RunSpeed(0.5, None))  # a damaged log is started again
    assert [s.train_clips_per_s for s in log.speeds("cpu", "float32", "sha256:a")] == [0.5]
    assert not log.record("cpu", "float32", "sha256:a", RunSpeed(0.0, None))  # no time measured: nothing to keep
    key = "cpu/float32/sha256:a"
    path.write_text(json.dumps({"format": 1, "runs": {"x": 3, key: [7, {"train_clips_per_s": "fast"}, {
        "train_clips_per_s": 0.4, "eval_clips_per_s": None}]}}), encoding="utf-8")  # edited by hand
    assert [s.train_clips_per_s for s in log.speeds("cpu", "float32", "sha256:a")] == [0.4]
    assert log.record("cpu", "float32", "sha256:a", RunSpeed(0.6, 1.0))
    assert json.loads(path.read_text(encoding="utf-8"))["runs"] == {key: [
        {"train_clips_per_s": "fast"}, {"train_clips_per_s": 0.4, "eval_clips_per_s": None},
        {"train_clips_per_s": 0.6, "eval_clips_per_s": 1.0}]}
    blocked = SpeedLog(tmp_path / "a-file" / "speeds.json")
    (tmp_path / "a-file").write_text("", encoding="utf-8")  # its folder cannot be made
    assert not blocked.record("cpu", "float32", "sha256:a", RunSpeed(0.5, None))
