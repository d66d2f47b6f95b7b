"""The training loop on a tiny random Whisper and real Swahili clips: events, resume after
SIGKILL, cancel, determinism, warm start, LoRA MoE, nothing else changed, and DDP."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lorawhisper_app.core.adapter_meta import AdapterMeta
from lorawhisper_app.core.adapter_store import WEIGHTS_FILE, AdapterStore
from lorawhisper_app.core.backbone import resolve_backbone
from lorawhisper_app.core.errors import AdapterError, StorageError
from lorawhisper_app.core.training.baseline_memo import BaselineMemo, memo_key
from lorawhisper_app.core.training.checkpoint import load_checkpoint
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.datasets import load_dataset
from lorawhisper_app.core.training.estimate import auto_precision
from lorawhisper_app.core.training.events import TrainEvent
from lorawhisper_app.core.training.speed_log import SpeedLog
from lorawhisper_app.core.training.trainer import UNSCORED, Trainer, TrainingCancelled, learning_rate

from conftest import SHARED_SPEECH
from tiny_whisper import save_tiny_backbone

TINY = dict(rank=4, alpha=8.0, batch_size=4, eval_every=2)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_backbone(tmp_path_factory.mktemp("tiny") / "whisper-tiny-random")


@pytest.fixture(scope="module")
def sw_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 short real Swahili clips (about 2.5 minutes), as a JSONL manifest with absolute paths."""
    source = SHARED_SPEECH / "train" / "manifest.jsonl"
    if not source.is_file():
        pytest.skip(f"../shared/data/speech/train is absent: no {source}")
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    rows = sorted((r for r in rows if r["language"] == "sw"), key=lambda r: r["duration_s"])[:28]
    out = tmp_path_factory.mktemp("sw-data") / "manifest.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "path": str(SHARED_SPEECH / "train" / r["path"]), "text": r["text"]}) + "\n")
    return out


def _train(model: Path, manifest: Path, run_dir: Path, store: AdapterStore, events: list[TrainEvent] | None = None,
           cancel: threading.Event | None = None, memo: BaselineMemo | None = None, speeds: SpeedLog | None = None,
           **config: object):
    audio: dict = {}
    report = load_dataset(manifest, audio_store=audio)
    cfg = TrainConfig(**{"language": "sw", "name": "sw", **TINY, "steps": 6, **config})  # type: ignore[arg-type]
    sink = events.append if events is not None else None
    return Trainer(cfg, report, audio, store=store, run_dir=run_dir, model=str(model), device="cpu",
                   events=sink, cancel=cancel, memo=memo, speeds=speeds).run()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    rates = [learning_rate(s, 100, 10, 1e-3) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert learning_rate(100, 100, 10, 1e-3) == pytest.approx(0.0)


def test_training_writes_a_valid_adapter_and_reports_progress(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    store = AdapterStore(None, tmp_path / "store")
    events: list[TrainEvent] = []
    speeds = SpeedLog(tmp_path / "speeds.json")
    result = _train(tiny_model, sw_manifest, tmp_path / "run", store, events, speeds=speeds)
    kinds = [e.kind for e in events]
    assert kinds[-1] == "done" and "similarity" in kinds
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6]
    assert all(e.loss is not None and e.learning_rate and e.eta_s is not None for e in steps)
    assert [e.step for e in events if e.kind == "eval"] == [0, 2, 4, 6]
    assert not [m for m in _phases(events) if m.startswith("tip:")], "no installed adapter to start from"
    timings = events[-1].data["timings"]  # where the run's time went, stage by stage
    assert set(timings) == {"load", "similarity", "dev_before", "training", "evaluations", "finish"}
    assert all(seconds > 0 for seconds in timings.values()), timings
    # The machine's speed log now holds this run: its step time and its dev scoring.
    fingerprint = resolve_backbone(str(tiny_model)).fingerprint
    [speed] = speeds.speeds("cpu", auto_precision("cpu"), fingerprint)
    assert speed.train_clips_per_s == pytest.approx(6 * TINY["batch_size"] / events[-1].data["train_seconds"])
    assert speed.eval_clips_per_s is not None and speed.eval_clips_per_s > 0
    meta = AdapterMeta.load(result.adapter_dir)
    assert meta.language == "sw" and meta.decode_token == "sw" and meta.mixture is None
    assert meta.base_model.fingerprint == resolve_backbone(str(tiny_model)).fingerprint
    assert meta.dev_wer is not None and meta.dev_wer.after <= meta.dev_wer.before
    assert meta.training_data["warm_start"] == "none" and meta.training_data["lid_profile"]
    weights = load_file(result.adapter_dir / WEIGHTS_FILE)
    assert weights and all(t.dtype == torch.float16 for t in weights.values())
    assert any("encoder" in k and "fc1.lora_A" in k for k in weights) and any("decoder" in k and "v_proj.lora_B" in k for k in weights)
    installed = store.import_(result.adapter_dir, meta.base_model.fingerprint)
    assert installed.name == "sw"


def test_same_seed_same_adapter_other_seed_other_adapter(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    store = AdapterStore(None, tmp_path / "store")
    a = load_file(_train(tiny_model, sw_manifest, tmp_path / "a", store, steps=3).adapter_dir / WEIGHTS_FILE)
    b = load_file(_train(tiny_model, sw_manifest, tmp_path / "b", store, steps=3).adapter_dir / WEIGHTS_FILE)
    c = load_file(_train(tiny_model, sw_manifest, tmp_path / "c", store, steps=3, seed=1).adapter_dir / WEIGHTS_FILE)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def _run_cancelled_when(
    model: Path, manifest: Path, run_dir: Path, store: AdapterStore, when: Callable[[TrainEvent], bool], match: str,
    **config: object,
) -> list[TrainEvent]:
    """Run until `when(event)` sets the cancel; the run must stop with TrainingCancelled matching `match`."""
    cancel, events = threading.Event(), []

    def sink(event: TrainEvent) -> None:
        events.append(event)
        if when(event):
            cancel.set()

    audio: dict = {}
    report = load_dataset(manifest, audio_store=audio)
    cfg = TrainConfig(**{"language": "sw", "name": "sw", **TINY, "steps": 6, **config})  # type: ignore[arg-type]
    with pytest.raises(TrainingCancelled, match=match):
        Trainer(cfg, report, audio, store=store, run_dir=run_dir, model=str(model), device="cpu", events=sink,
                cancel=cancel).run()
    assert events[-1].kind == "cancelled"
    return events


def test_cancel_keeps_a_checkpoint_and_the_run_resumes(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    """Cancelled between steps (after step 3), then during the evaluation at step 4: each time a
    checkpoint is kept, and the run that resumes ends where an uninterrupted one does."""
    store = AdapterStore(None, tmp_path / "store")
    run = tmp_path / "run"
    events = _run_cancelled_when(tiny_model, sw_manifest, run, store, lambda e: e.kind == "step" and e.step == 3,
                                 "step 3 of 6")
    assert events[-1].data == {"checkpoint": True}
    assert load_checkpoint(run).state["step"] == 3

    # eval_every=2: the cancel is set as step 4 ends, and is seen inside the evaluation that follows.
    events = _run_cancelled_when(tiny_model, sw_manifest, run, store, lambda e: e.kind == "step" and e.step == 4,
                                 "step 4 of 6")
    assert [e.step for e in events if e.kind in ("resumed", "step")] == [3, 4]
    assert not [e for e in events if e.kind == "eval"], "the evaluation at step 4 stopped part-way"
    state = load_checkpoint(run).state
    assert state["step"] == 4 and UNSCORED in state and [h["step"] for h in state["history"]] == [0, 2]

    resumed: list[TrainEvent] = []
    result = _train(tiny_model, sw_manifest, run, store, resumed)
    assert result.resumed_from == 4
    assert [(e.kind, e.step) for e in resumed if e.kind in ("resumed", "eval", "step")] == [
        ("resumed", 4), ("eval", 4), ("step", 5), ("step", 6), ("eval", 6)]
    straight = _train(tiny_model, sw_manifest, tmp_path / "straight", store)
    assert result.history == straight.history
    a, b = load_file(result.adapter_dir / WEIGHTS_FILE), load_file(straight.adapter_dir / WEIGHTS_FILE)
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must end where an uninterrupted one does"


def test_a_full_disk_stops_the_run_with_one_line_and_the_last_checkpoint_resumes(
    tiny_model: Path, sw_manifest: Path, small_disk: Callable[[str], Path], tmp_path: Path,
) -> None:
    """300 KiB: room for the tiny model's best weights and one checkpoint, not for the next one beside it."""
    store = AdapterStore(None, tmp_path / "store")
    run = small_disk("300k") / "run"
    with pytest.raises(StorageError) as caught:
        _train(tiny_model, sw_manifest, run, store)
    assert str(caught.value) == (
        f"{run}: could not write the checkpoint of step 4 (No space left on device); the checkpoint of step 2 is "
        "kept: make room and run the same command to go on from it")
    assert load_checkpoint(run).state["step"] == 2
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors", "checkpoint"]  # the partial one is gone
    moved = tmp_path / "run"  # room again: the run goes on from step 2 and ends where an uninterrupted one does
    shutil.copytree(run, moved)
    events: list[TrainEvent] = []
    result = _train(tiny_model, sw_manifest, moved, store, events)
    assert result.resumed_from == 2 and [e.step for e in events if e.kind == "step"] == [3, 4, 5, 6]
    straight = _train(tiny_model, sw_manifest, tmp_path / "straight", store)
    assert result.history == straight.history


@pytest.mark.parametrize(("phase", "doing"), [
    ("measuring similarity to the installed adapters", "measuring similarity"),
    ("scoring the dev set without an adapter", "scoring the dev set"),
])
def test_cancel_before_training_stops_inside_the_stage_without_a_checkpoint(
    tiny_model: Path, sw_manifest: Path, tmp_path: Path, phase: str, doing: str
) -> None:
    store = AdapterStore(None, tmp_path / "store")
    events = _run_cancelled_when(tiny_model, sw_manifest, tmp_path / "run", store,
                                 lambda e: e.kind == "phase" and e.message == phase,
                                 f"while {doing}, before a step was trained")
    assert events[-1].data == {"checkpoint": False} and events[-1].message.startswith(f"cancelled while {doing}")
    after = [e.kind for e in events[[e.message for e in events].index(phase) + 1 :]]
    assert after == ["cancelled"], "the stage stops at its first batch: no similarity ranking, no dev WER"
    assert load_checkpoint(tmp_path / "run") is None


BARE_DEV = "scoring the dev set without an adapter"
RECALLED_DEV = "dev WER without an adapter: as measured by an earlier run on the same data"
RECALLED_LID = "similarity: the new data's LID profile as measured by an earlier run"


TIP_FIT_2_STEPS = (  # 2 steps of 4 clips over 21
    "tip: this run sees each clip about 0.4 times; in runs of up to 5.7 passes, --warm-start fit (the installed "
    "adapter that fits the new data best, a related language's; fresh when none fits closely) gave 3 to 9 % fewer "
    "word errors than a fresh start (docs/experiments.md)"
)


def _phases(events: list[TrainEvent]) -> list[str]:
    return [e.message for e in events if e.kind == "phase"]


def test_a_second_run_on_the_same_data_takes_the_bare_figures_from_the_memo(
    tiny_model: Path, sw_manifest: Path, tmp_path: Path
) -> None:
    store, memo = AdapterStore(None, tmp_path / "store"), BaselineMemo(tmp_path / "memo")
    first: list[TrainEvent] = []
    a = _train(tiny_model, sw_manifest, tmp_path / "a", store, first, memo=memo)
    kept = sorted(p.name.split("-")[1] for p in memo.folder.iterdir())
    assert kept == ["dev", "features"], kept
    assert BARE_DEV in _phases(first) and RECALLED_DEV not in _phases(first)

    second: list[TrainEvent] = []
    b = _train(tiny_model, sw_manifest, tmp_path / "b", store, second, memo=memo, learning_rate=2e-3)  # other settings, same data
    assert BARE_DEV not in _phases(second) and RECALLED_DEV in _phases(second)
    assert RECALLED_LID in _phases(second)
    alone = _train(tiny_model, sw_manifest, tmp_path / "alone", store, learning_rate=2e-3)  # the same run without a memo
    assert b.history == alone.history and b.history[0] == {"step": 0, "dev_wer": a.history[0]["dev_wer"]}
    assert b.meta.dev_wer == alone.meta.dev_wer
    assert b.meta.training_data["lid_profile"] == alone.meta.training_data["lid_profile"]
    assert b.meta.training_data["router"] == alone.meta.training_data["router"]
    x, y = load_file(b.adapter_dir / WEIGHTS_FILE), load_file(alone.adapter_dir / WEIGHTS_FILE)
    assert all(torch.equal(x[k], y[k]) for k in x), "recalled figures must train the same adapter"


def test_a_damaged_or_unwritable_memo_is_measured_again(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    store, memo = AdapterStore(None, tmp_path / "store"), BaselineMemo(tmp_path / "memo")
    _train(tiny_model, sw_manifest, tmp_path / "a", store, memo=memo, steps=2)
    for entry in memo.folder.iterdir():
        entry.write_bytes(entry.read_bytes()[:40])  # cut short, as by a crash of another program
    events: list[TrainEvent] = []
    _train(tiny_model, sw_manifest, tmp_path / "b", store, events, memo=memo, steps=2)
    assert BARE_DEV in _phases(events) and RECALLED_LID not in _phases(events)
    assert all(memo.load(p.stem) is not None for p in memo.folder.iterdir()), "the measured figures replace the damaged entries"

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the memo folder should be")
    events = []
    result = _train(tiny_model, sw_manifest, tmp_path / "c", store, events, memo=BaselineMemo(blocked), steps=2)
    assert result.meta.dev_wer is not None and blocked.read_text().startswith("a file")
    assert any(m.startswith(f"could not keep the bare backbone's figures in {blocked}") for m in _phases(events))


def test_the_memo_key_follows_every_sample_and_setting() -> None:
    audio = np.arange(1600, dtype=np.int16)
    key = memo_key("bare-dev-wer", {"device": "cpu"}, {"dev": [("c1", "habari", audio)]})
    assert key == memo_key("bare-dev-wer", {"device": "cpu"}, {"dev": [("c1", "habari", audio.copy())]})
    changed = audio.copy()
    changed[800] += 1
    assert key != memo_key("bare-dev-wer", {"device": "cpu"}, {"dev": [("c1", "habari", changed)]})
    assert key != memo_key("bare-dev-wer", {"device": "cpu"}, {"dev": [("c1", "habari yako", audio)]})
    assert key != memo_key("bare-dev-wer", {"device": "cuda"}, {"dev": [("c1", "habari", audio)]})
    assert key != memo_key("bare-dev-wer", {"device": "cpu"}, {"train": [("c1", "habari", audio)]})


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lorawhisper_app.cli.main", "train", *args]


def test_sigkill_during_training_then_the_same_command_resumes(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    command = _cli(str(sw_manifest), "--language", "sw", "--model", str(tiny_model), "--device", "cpu", "--steps", "8",
                   "--batch-size", "4", "--rank", "4", "--alpha", "8", "--eval-every", "2", "--patience", "100",
                   "--run-dir", str(tmp_path / "run"), "--json")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "eval" and event["step"] == 4:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "run").state["step"] == 4
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(e["event"] == "resumed" and e["step"] == 4 for e in events)
    assert [e["step"] for e in events if e["event"] == "step"] == [5, 6, 7, 8]
    installed = [e for e in events if e["event"] == "installed"]
    assert installed and Path(installed[0]["path"]).is_dir()
    assert installed[0]["name"] == "sw-2", "the bundled Swahili adapter keeps its name"


def test_warm_start_and_moe_use_the_installed_neighbour_and_change_nothing(
    tiny_model: Path, sw_manifest: Path, tmp_path: Path
) -> None:
    store = AdapterStore(None, tmp_path / "store")
    sw = _train(tiny_model, sw_manifest, tmp_path / "sw", store, steps=4)
    fingerprint = sw.meta.base_model.fingerprint
    installed = store.import_(sw.adapter_dir, fingerprint)
    before = {"sw": _digest(installed.path), "backbone": _digest(tiny_model)}

    events: list[TrainEvent] = []
    warm = _train(tiny_model, sw_manifest, tmp_path / "rw-warm", store, events, language="rw", name="rw", steps=2,
                  warm_start="auto")
    ranking = next(e for e in events if e.kind == "similarity").data["ranking"]
    assert [r["adapter"] for r in ranking] == ["sw"] and ranking[0]["similarity"] > 0
    start = next(e for e in events if e.kind == "eval" and e.step == 0)
    assert warm.meta.training_data["warm_start"] == "sw"
    assert warm.meta.decode_token == next(iter(warm.meta.training_data["lid_profile"]))
    assert start.dev_wer == pytest.approx(sw.meta.dev_wer.after), "a warm start begins where its source ended"

    refused: list[TrainEvent] = []
    with pytest.raises(AdapterError, match="--warm-start sw: sw has rank 4, this run 8"):
        _train(tiny_model, sw_manifest, tmp_path / "rw-rank-8", store, refused, language="rw", name="rw", rank=8,
               alpha=16.0, warm_start="sw")
    assert [e.message for e in refused] == ["loading the backbone"], "refused before measuring anything"

    cut = _train(tiny_model, sw_manifest, tmp_path / "rw-cut", store, language="rw", name="rw", steps=2,
                 warm_start="sw", warm_rank=2)
    assert (cut.meta.training_data["warm_start"], cut.meta.training_data["warm_rank"]) == ("sw", 2)
    fit_cut = _train(tiny_model, sw_manifest, tmp_path / "rw-fit-cut", store, language="rw", name="rw", steps=2,
                     warm_start="fit", warm_rank=2)
    got, want = load_file(fit_cut.adapter_dir / WEIGHTS_FILE), load_file(cut.adapter_dir / WEIGHTS_FILE)
    assert all(torch.equal(got[k], want[k]) for k in want), "with --warm-rank too, fit starts as the named source does"

    events = []
    fit = _train(tiny_model, sw_manifest, tmp_path / "rw-fit", store, events, language="rw", name="rw", steps=2,
                 warm_start="fit")
    scored = next(e for e in events if e.kind == "fit").data
    losses = {r["adapter"]: r["loss"] for r in scored["ranking"]}
    assert set(losses) == {"(fresh)", "sw"} and scored["clips"] == 16
    assert scored["chosen"] == "sw" and fit.meta.training_data["warm_start"] == "sw"
    assert fit.meta.training_data["warm_start_fit"] == {k: round(v, 4) for k, v in losses.items()}
    got, want = load_file(fit.adapter_dir / WEIGHTS_FILE), load_file(warm.adapter_dir / WEIGHTS_FILE)
    assert all(torch.equal(got[k], want[k]) for k in want), "scoring leaves no trace: the same run as --warm-start sw"
    assert [e.message for e in events if e.message.startswith("fit: scoring")] == [
        "fit: scoring the fresh start (1 of 2)", "fit: scoring sw (2 of 2)"]

    cancel, seen = threading.Event(), []

    def cancel_while_scoring(event: TrainEvent) -> None:
        seen.append(event)
        if event.message.startswith("fit: scoring the fresh start"):
            cancel.set()

    audio: dict = {}
    report = load_dataset(sw_manifest, audio_store=audio)
    cfg = TrainConfig(**{**TINY, "language": "rw", "name": "rw", "steps": 2, "warm_start": "fit"})  # type: ignore[arg-type]
    with pytest.raises(TrainingCancelled, match="while measuring fit, before a step was trained"):
        Trainer(cfg, report, audio, store=store, run_dir=tmp_path / "rw-fit-stopped", model=str(tiny_model), device="cpu",
                events=cancel_while_scoring, cancel=cancel).run()
    assert seen[-1].kind == "cancelled" and "fit: scoring sw (2 of 2)" not in [e.message for e in seen]
    assert load_checkpoint(tmp_path / "rw-fit-stopped") is None, "cancelled before training: nothing to resume from"

    events = []
    cold = _train(tiny_model, sw_manifest, tmp_path / "rw-cold", store, events, language="rw", name="rw", steps=2)
    assert cold.meta.training_data["warm_start"] == "none", "cold start is the default"
    tips = [m for m in _phases(events) if m.startswith("tip:")]
    assert tips == [TIP_FIT_2_STEPS], "a short fresh run with a possible fit start is pointed to it"

    events = []
    moe = _train(tiny_model, sw_manifest, tmp_path / "rw-moe", store, events, language="rw", name="rw", steps=2,
                 moe_k=1)
    assert not [m for m in _phases(events) if m.startswith("tip:")], "MoE never starts from a copy"
    assert moe.meta.mixture == {"rw": 1.0, "sw": 1.0}
    assert set(load_file(moe.adapter_dir / WEIGHTS_FILE)) == set(load_file(cold.adapter_dir / WEIGHTS_FILE))

    assert {"sw": _digest(installed.path), "backbone": _digest(tiny_model)} == before


def test_too_little_data_is_refused_with_the_amounts(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(sw_manifest.read_text().splitlines()[:3]) + "\n")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    done = subprocess.run(_cli(str(small), "--language", "sw", "--model", str(tiny_model)),
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "not enough training data" in done.stderr and "min in 3 usable clips, need at least 2.0 min" in done.stderr


def test_two_process_ddp_trains_and_saves_one_adapter(tiny_model: Path, sw_manifest: Path, tmp_path: Path) -> None:
    """The same entry point under torchrun: two CPU processes (gloo), one adapter from rank 0."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
               "-m", "lorawhisper_app.cli.main", "train", str(sw_manifest), "--language", "sw", "--model", str(tiny_model),
               "--device", "cpu", "--steps", "4", "--batch-size", "4", "--rank", "4", "--alpha", "8",
               "--eval-every", "2", "--run-dir", str(tmp_path / "run"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4], "only rank 0 reports"
    assert len([e for e in events if e["event"] == "installed"]) == 1
    adapters = list((tmp_path / "data" / "lorawhisper-studio" / "adapters").iterdir())
    assert [a.name for a in adapters] == ["sw-2"]
    assert AdapterMeta.load(adapters[0]).training_data["steps"] == 4


def test_sigterm_cancels_at_a_step_even_when_the_parent_blocked_it(
    tiny_model: Path, sw_manifest: Path, tmp_path: Path
) -> None:
    """The wizard's Pause sends SIGTERM; a mask inherited from a CI runner or service manager must not swallow it."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    command = _cli(str(sw_manifest), "--language", "sw", "--model", str(tiny_model), "--device", "cpu", "--steps", "40",
                   "--batch-size", "4", "--rank", "4", "--alpha", "8", "--eval-every", "20", "--patience", "100",
                   "--run-dir", str(tmp_path / "run"), "--no-install", "--json")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}))
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "step" and events[-1]["step"] == 2:
            proc.send_signal(signal.SIGTERM)
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.wait(timeout=120)
    assert proc.returncode not in (0, -signal.SIGTERM), stderr
    assert events[-1]["event"] == "cancelled", events[-1]
    stopped_at = max(e["step"] for e in events if e["event"] == "step")
    assert stopped_at < 40
    assert load_checkpoint(tmp_path / "run").state["step"] == stopped_at
    assert "Traceback" not in stderr


def test_the_cli_estimates_the_time_first_from_the_project_then_from_this_machine(
    tiny_model: Path, sw_manifest: Path, tmp_path: Path,
) -> None:
    """Before the set-up's minutes: an estimate from the project's figures, then, once a run has
    finished here with this backbone, from the speed that run logged."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "LORAWHISPER_CACHE_DIR": str(tmp_path / "cache")}
    precision = auto_precision("cpu")

    def estimate_line(run: str) -> str:
        done = subprocess.run(_cli(str(sw_manifest), "--language", "sw", "--model", str(tiny_model), "--device", "cpu",
                                   "--steps", "2", "--batch-size", "4", "--rank", "4", "--alpha", "8",
                                   "--run-dir", str(tmp_path / run), "--no-install"),
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stdout.splitlines()
        assert lines.index("Problems: none") + 1 == next(i for i, line in enumerate(lines) if line.startswith("estimated"))
        return next(line for line in lines if line.startswith("estimated time: about "))

    first = estimate_line("first")
    assert first.endswith(f"for 2 steps on the CPU, from speeds measured on a 2-core CPU in {precision}; "
                          "a run that stops improving ends sooner"), first
    second = estimate_line("second")
    assert f"from speeds measured by the last training run on this machine ({precision});" in second, second
