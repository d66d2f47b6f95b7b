"""The training loop: one new LoRA adapter on the frozen backbone.

Reads top to bottom as the run goes: load the backbone, measure the new language's
similarity to the installed adapters, score the dev set without an adapter, attach the
new adapter (cold, warm-started, or beside frozen neighbours for LoRA MoE), then train
with AdamW, a warm-up and a cosine decay, scoring the dev set every `eval_every` steps.
Each evaluation writes a checkpoint, keeps the best weights and may stop early. The
result is an adapter folder that the store can import; nothing else is written.

A cancel is seen between batches of every long stage, not only between steps: before
training it stops without a checkpoint (an earlier one stands); during an evaluation it
checkpoints the step unscored, and resuming scores it first.

Given a `BaselineMemo`, a single-process run takes the bare backbone's figures for data it
has seen before (LID profile, router features, dev WER without an adapter) from there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable
from typing import NoReturn

import numpy as np
import torch
from peft import PeftModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel

from ..adapter_meta import AdapterMeta, BaseModelRef, DevWer, LoraSpec
from ..adapter_store import ROUTER_FILE, WEIGHTS_FILE, AdapterInfo, AdapterStore, validate_adapter_dir
from ..backbone import LoadedBackbone, load_backbone
from ..decoding import SpecialTokens, WindowDecoder
from ..errors import AdapterError, LoraWhisperError, StorageError, write_problem
from ..fast_linear import cpu_has_fast_bf16
from ..languages import is_whisper_language, language_name
from ..router import RouterProfile, clip_features, load_profiles, profile_sample, routing_accuracy
from .baseline_memo import BaselineMemo, Entry, memo_key
from .batches import Example, collate, make_example, uses_timestamps
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import (
    FIT_CLIPS,
    FIT_HELPS_MAX_PASSES,
    WARM_AUTO,
    WARM_FIT,
    WARM_NONE,
    TrainConfig,
    passes,
    start_problem,
)
from .datasets import Clip, DatasetReport
from .dev_eval import METHOD as EVAL_METHOD
from .dev_eval import dev_wer, greedy_texts
from .distributed import DistContext, init_distributed
from .events import EventSink, TrainEvent
from .fit_ranking import FRESH, Fit, choose_start, rank_by_fit
from .lora_setup import attach, load_trainable_state, start_from, trainable_state
from .run_registry import DEV_CLIPS
from .similarity import Neighbour, lid_sample, mean_lid, moe_weights, profile, rank_neighbours
from .speed_log import RunSpeed, SpeedLog

BEST = "best.safetensors"
ADAPTER = "adapter"
UNSCORED = "unscored_loss"  # in a checkpoint's state: its step still needs its evaluation (the value: its loss)


class TrainingCancelled(LoraWhisperError):
    """The run was cancelled; its last checkpoint lets the same command resume it."""


class _EvaluationStopped(Exception):
    """Rank 0 left a dev evaluation part-way because the run was cancelled."""


@dataclass
class TrainResult:
    adapter_dir: Path
    meta: AdapterMeta
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _data_fingerprint(clips: list[Clip]) -> str:
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(f"{clip.id}\t{clip.text}\n".encode())
    return digest.hexdigest()[:16]


AMP_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        if device.type != "cuda":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return AMP_DTYPES[precision]


def _peak_memory(device: torch.device) -> int:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        data: DatasetReport,
        audio: dict[str, np.ndarray],
        *,
        store: AdapterStore,
        run_dir: Path,
        model: str | None = None,
        device: str = "auto",
        events: EventSink | None = None,
        cancel: threading.Event | None = None,
        fresh: bool = False,
        memo: BaselineMemo | None = None,
        speeds: SpeedLog | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.audio = audio
        self.store = store
        self.run_dir = Path(run_dir)
        self.model_name = model
        self.device_name = device
        self.cancel = cancel or threading.Event()
        self.fresh = fresh
        self.memo = memo
        self.speeds = speeds
        self._scored = (0, 0.0)  # dev clips decoded by this process's evaluations, and the seconds they took
        self._kept_step: int | None = None  # the step of the checkpoint in run_dir, once there is one
        self._sink = events
        self.ctx = DistContext()
        self.timings: dict[str, float] = {}  # seconds this process spent in each stage
        self.fits: list[Fit] = []  # the fit ranking, when the warm start is chosen by fit

    @contextlib.contextmanager
    def _writing(self, what: str):  # noqa: ANN202 - a context manager
        """A write to the run folder that fails (a full disk) ends the run with one line saying what was kept."""
        try:
            yield
        except (OSError, SafetensorError) as exc:
            kept = ("no checkpoint had been written yet" if self._kept_step is None else
                    f"the checkpoint of step {self._kept_step} is kept: make room and run the same command to go on from it")
            raise StorageError(f"{self.run_dir}: could not write {what} ({write_problem(exc)}); {kept}") from exc

    @contextlib.contextmanager
    def _timed(self, stage: str):  # noqa: ANN202 - a context manager
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.monotonic() - began

    # -- small helpers ----------------------------------------------------------------

    def emit(self, kind: str, **fields: object) -> None:
        if self._sink is not None and self.ctx.is_main:
            self._sink(TrainEvent(kind, **fields))  # type: ignore[arg-type]

    def _examples(self, clips: list[Clip], timestamps: bool) -> list[Example]:
        tokenizer = self.backbone.processor.tokenizer
        max_length = self.backbone.model.config.max_target_positions
        out = []
        for clip in clips:
            ids = tokenizer.encode(" " + clip.text.strip(), add_special_tokens=False)
            ts = timestamps and uses_timestamps(clip.id, self.config.timestamp_fraction)
            out.append(make_example(clip.id, self.audio[clip.id], ids, self.tokens, self.decode_token, ts, max_length))
        return out

    def _evaluate(self, net: torch.nn.Module) -> float | None:
        """Dev WER on rank 0 (the other ranks wait); every rank gets the value, or None when a
        cancel stopped rank 0 part-way."""
        value = 0.0
        if self.ctx.is_main:
            was_training = net.training
            net.eval()
            began = time.monotonic()
            try:
                texts = greedy_texts(
                    self.backbone.model, self.dev, self.tokens, self.decode_token,
                    lambda ids: self.backbone.processor.tokenizer.decode(ids, skip_special_tokens=True),
                    batch_size=self._eval_batch, autocast=self.amp,
                    encoder_only=self.device.type == "cpu", before_batch=self._stop_evaluating,
                )
                value = dev_wer([c.text for c in self.dev_clips], texts)
                clips, seconds = self._scored
                self._scored = (clips + len(texts), seconds + time.monotonic() - began)
            except _EvaluationStopped:
                value = math.nan
            finally:
                net.train(was_training)
        value = self.ctx.share(value)
        return None if math.isnan(value) else value

    @property
    def _eval_batch(self) -> int:
        return 64 if self.device.type == "cuda" else self.micro

    def _stop_evaluating(self) -> None:
        """Between evaluation batches on rank 0 (alone, so no collective call here)."""
        if self.cancel.is_set():
            raise _EvaluationStopped

    def _check_cancel_before_training(self, doing: str) -> None:
        """Between batches of a stage before training (every rank runs it alike)."""
        if self.ctx.agree(self.cancel.is_set()):
            self._cancelled_before_training(doing)

    def _cancelled_before_training(self, doing: str) -> NoReturn:
        """Nothing is trained in this process yet, so no checkpoint is written; an earlier one stands."""
        self.emit("cancelled", message=f"cancelled while {doing}, before a step was trained", data={"checkpoint": False})
        raise TrainingCancelled(
            f"training cancelled while {doing}, before a step was trained; run the same command to start again "
            "(a run with a checkpoint resumes from it)"
        )

    def _cancelled_at(self, peft: PeftModel, optimizer: torch.optim.Optimizer, state: dict, total: int) -> NoReturn:
        step = state["step"]
        self._checkpoint(peft, optimizer, state)
        self.emit("cancelled", step=step, total_steps=total, message=f"cancelled at step {step}; the same command resumes",
                  data={"checkpoint": True})
        raise TrainingCancelled(f"training cancelled at step {step} of {total}; run the same command to resume")

    def _batch_indices(self, step: int) -> list[np.ndarray]:
        """This rank's micro-batches for `step`: epochs are seeded permutations, so the
        order depends only on the seed and the step (a resumed run sees the same data)."""
        n = len(self.train)
        positions = np.arange(step * self.config.batch_size, (step + 1) * self.config.batch_size)
        epochs = positions // n
        picked = np.array([self._permutation(int(e))[p % n] for p, e in zip(positions, epochs)])
        share = picked[self.ctx.rank :: self.ctx.world]
        per_rank = math.ceil(self.config.batch_size / self.ctx.world)
        return [chunk for chunk in np.array_split(share, math.ceil(per_rank / self.micro)) if len(chunk)]

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms[epoch] = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train))
        return self._perms[epoch]

    # -- the bare backbone's figures, measured or recalled -------------------------------

    def _memo_key(self, kind: str, sections: dict[str, list[Clip]], **inputs: object) -> str | None:
        """The memo entry for these figures; None without a memo, or under DDP (ranks could disagree on a hit)."""
        if self.memo is None or self.ctx.active:
            return None
        settings = {"backbone": self.backbone.files.fingerprint, "device": self.device.type, "amp": str(self.amp),
                    "micro": self.micro, **inputs}
        clips: dict[str, Iterable[tuple[str, str, np.ndarray]]] = {
            name: [(c.id, c.text, self.audio[c.id]) for c in group] for name, group in sections.items()
        }
        return memo_key(kind, settings, clips)

    def _recall(self, key: str | None) -> Entry | None:
        return self.memo.load(key) if self.memo is not None and key is not None else None

    def _remember(self, key: str | None, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
        if self.memo is not None and key is not None and not self.memo.save(key, tensors, metadata):
            self.emit("phase", message=f"could not keep the bare backbone's figures in {self.memo.folder}; "
                                       "the next run on this data measures them again")

    def _bare_features(self, sample: list[Clip], profiled: list[Clip], dev_clips: list[Clip]) -> None:
        """The new data's mean LID distribution, and router features of its profile sample and dev clips."""
        key = self._memo_key("bare-features", {"lid": sample, "router": profiled, "dev": dev_clips})
        kept = self._recall(key)
        if kept is not None:
            with contextlib.suppress(KeyError, ValueError):
                tensors, meta = kept
                codes = json.loads(meta["lid_codes"])
                self.mean_lid = dict(zip(codes, tensors["lid"].tolist(), strict=True))
                self.router_features = tensors["router"].numpy()
                self.router_dev_features = tensors["router_dev"].numpy()
                self.emit("phase", message="similarity: the new data's LID profile as measured by an earlier run")
                return
        decoder = WindowDecoder(self.backbone.model, self.tokens, self.amp)
        # Batches of a micro-batch (4 clips on the CPU) keep a cancel waiting seconds, not a minute.
        check = functools.partial(self._check_cancel_before_training, "measuring similarity")
        self.mean_lid = mean_lid(decoder, [self.audio[c.id] for c in sample], self.micro, before_batch=check)
        # Features for the automatic router: its profile of the new language, and the dev clips it is scored on.
        self.router_features = clip_features(decoder, [self.audio[c.id] for c in profiled], self.micro, before_batch=check)
        self.router_dev_features = clip_features(decoder, [self.audio[c.id] for c in dev_clips], self.micro, before_batch=check)
        self._remember(
            key,
            {"lid": torch.tensor(list(self.mean_lid.values()), dtype=torch.float64),
             "router": torch.from_numpy(self.router_features), "router_dev": torch.from_numpy(self.router_dev_features)},
            {"lid_codes": json.dumps(list(self.mean_lid))},
        )

    def _bare_dev_wer(self, peft: PeftModel) -> float | None:
        """Dev WER with the adapters off; None when a cancel stopped it."""
        key = self._memo_key("bare-dev-wer", {"dev": self.dev_clips}, decode_token=self.decode_token,
                             method=EVAL_METHOD, batch=self._eval_batch)
        kept = self._recall(key)
        if kept is not None and "wer" in kept[0]:
            self.emit("phase", message="dev WER without an adapter: as measured by an earlier run on the same data")
            return float(kept[0]["wer"].item())
        self.emit("phase", message="scoring the dev set without an adapter")
        with peft.disable_adapter():
            value = self._evaluate(peft)
        if value is not None:
            self._remember(key, {"wer": torch.tensor([value], dtype=torch.float64)})
        return value

    # -- stages ------------------------------------------------------------------------

    def _load(self) -> None:
        self.emit("phase", message="loading the backbone")
        self.backbone: LoadedBackbone = load_backbone(self.model_name, self.ctx.device(self.device_name), "float32")
        net = self.backbone.model
        self.device = self.backbone.device
        self.amp = _amp_dtype(self.config.precision, self.device)
        self.micro = self.config.micro_batch_for(self.device.type)
        self.tokens = SpecialTokens.from_model(net, self.backbone.processor.tokenizer)
        self.installed = {i.name: i for i in self.store.list() if i.compatible_with(self.backbone.files.fingerprint)}

    def _similarity(self) -> list[Neighbour]:
        self.emit("phase", message="measuring similarity to the installed adapters")
        train = {c.id: c for c in self.data.train}
        self._bare_features(
            [train[cid] for cid in lid_sample(list(train))],
            [train[cid] for cid in profile_sample(train)],
            self.data.dev[: self.config.dev_max_clips],
        )
        neighbours = rank_neighbours(self.mean_lid, list(self.installed.values()), exclude=self.config.language)
        self.decode_token = self.config.decode_token or (
            self.config.language if is_whisper_language(self.config.language) else next(iter(self.mean_lid))
        )
        self.emit(
            "similarity",
            message=", ".join(f"{n.language} {n.similarity:.3f}" for n in neighbours) or "no installed adapters",
            data={
                "ranking": [{"language": n.language, "adapter": n.adapter, "similarity": n.similarity} for n in neighbours],
                "lid": dict(list(self.mean_lid.items())[:5]),
                "decode_token": self.decode_token,
            },
        )
        return neighbours

    def _start_problem(self, info: AdapterInfo) -> str | None:
        """Why `info` cannot seed this run's adapter (another rank or other targets); None when it can."""
        return start_problem(info.name, info.meta.lora, self.config.rank, self.config.targets)

    def _named_source(self) -> AdapterInfo | None:
        """The adapter `--warm-start NAME|CODE` names (None for none, auto and fit), checked before the long stages."""
        choice = self.config.warm_start
        if choice in (WARM_NONE, WARM_AUTO, WARM_FIT):
            return None
        by_language = [i for i in self.installed.values() if i.meta.language == choice]
        info = self.installed.get(choice) or (by_language[0] if by_language else None)
        if info is None:
            raise AdapterError(f"--warm-start {choice}: no installed adapter for this backbone has that name or language")
        problem = self._start_problem(info)
        if problem is not None:
            raise AdapterError(f"--warm-start {choice}: {problem}; train at its rank and targets to start from it")
        return info

    def _most_similar_source(self, neighbours: list[Neighbour]) -> AdapterInfo | None:
        """`--warm-start auto` without MoE: the most similar adapter that fits this run's shape."""
        if self.config.warm_start != WARM_AUTO or self.config.moe_k:
            return None
        for n in neighbours:
            info = self.installed[n.adapter]
            problem = self._start_problem(info)
            if problem is None:
                return info
            self.emit("phase", message=f"not warm-starting from {n.adapter}: {problem}")
        return None

    def _suggest_fit(self, neighbours: list[Neighbour], total: int, mixed: bool) -> None:
        """Point a short fresh run to `--warm-start fit`, which measured better at such budgets."""
        seen = passes(total, self.config.batch_size, len(self.train))
        if self.config.warm_start != WARM_NONE or mixed or seen > FIT_HELPS_MAX_PASSES:
            return
        if any(self._start_problem(self.installed[n.adapter]) is None for n in neighbours):
            self.emit("phase", message=(
                f"tip: this run sees each clip about {seen:.1f} times; in runs of up to 5.7 passes, --warm-start fit "
                "(the installed adapter that fits the new data best, a related language's; fresh when none fits "
                "closely) gave 3 to 9 % fewer word errors than a fresh start (docs/experiments.md)"
            ))

    def _fit_source(self, peft: PeftModel, neighbours: list[Neighbour]) -> AdapterInfo | None:
        """Start `peft`'s new adapter from the best-fitting installed adapter (fresh when there is none)."""
        candidates = []
        for n in neighbours:
            info = self.installed[n.adapter]
            problem = self._start_problem(info)
            if problem is None:
                candidates.append(info)
            else:
                self.emit("phase", message=f"not scoring {n.adapter}: {problem}")
        self.emit("phase", message=f"measuring how well {len(candidates)} installed adapters fit the new data")
        sample = set(lid_sample([c.id for c in self.data.train], FIT_CLIPS))
        examples = [ex for ex in self.train if ex.clip_id in sample]
        batches = [
            collate(examples[i : i + self.micro], self.backbone.model.config.num_mel_bins, self.device, self.tokens.eot)
            for i in range(0, len(examples), self.micro)
        ]
        fits = rank_by_fit(peft, self.config, candidates, batches, self.amp, self._fit_progress)
        best, why_fresh = choose_start(fits)
        # Every rank scores the same sample; rank 0's choice holds should the losses differ in the last digits.
        names = [FRESH, *(c.name for c in candidates)]
        chosen = names[int(self.ctx.share(float(names.index(best))))]
        self.fits = fits
        self.emit(
            "fit",
            message="fit to the new data (loss per token, lower is better): "
                    + ", ".join(f"{f.adapter} {f.loss:.3f}" for f in fits) + f"; starting from {chosen}"
                    + (f" ({why_fresh})" if chosen == FRESH and why_fresh else ""),
            data={"ranking": [{"adapter": f.adapter, "language": f.language, "loss": f.loss} for f in fits],
                  "chosen": chosen, "clips": len(examples), "why_fresh": why_fresh if chosen == FRESH else ""},
        )
        if chosen == FRESH:
            return None
        start_from(peft, self.config, self.installed[chosen], trainable_state(peft, self.config.name))
        return self.installed[chosen]

    def _fit_progress(self, index: int, count: int, adapter: str) -> None:
        """Before each fit score: progress, and the place to stop when cancelled."""
        self._check_cancel_before_training("measuring fit")
        what = "the fresh start" if adapter == FRESH else adapter
        self.emit("phase", message=f"fit: scoring {what} ({index} of {count})")

    def _resume(self, peft: PeftModel, optimizer: torch.optim.Optimizer, run_id: str) -> Checkpoint | None:
        if self.fresh:
            return None
        ckpt = load_checkpoint(self.run_dir)
        if ckpt is None:
            return None
        if ckpt.state.get("run_id") != run_id:
            self.emit("phase", message=f"{self.run_dir}: the checkpoint there is of other settings or data; starting over")
            return None
        self._kept_step = ckpt.state["step"]
        load_trainable_state(peft, self.config.name, ckpt.adapter)
        optimizer.load_state_dict(ckpt.optimizer)
        torch.set_rng_state(ckpt.rng["cpu"])
        if "cuda" in ckpt.rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(ckpt.rng["cuda"], self.device)
        return ckpt

    def _checkpoint(self, peft: PeftModel, optimizer: torch.optim.Optimizer, state: dict) -> None:
        if not self.ctx.is_main:
            return
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        with self._writing(f"the checkpoint of step {state['step']}"):
            save_checkpoint(self.run_dir, Checkpoint(trainable_state(peft, self.config.name), optimizer.state_dict(), rng, state))
        self._kept_step = state["step"]

    def _save_best(self, peft: PeftModel) -> None:
        if self.ctx.is_main:
            tmp = self.run_dir / f".{BEST}.tmp"
            try:
                with self._writing("the best weights so far"):
                    save_file({k: v.detach().cpu().contiguous() for k, v in trainable_state(peft, self.config.name).items()}, tmp)
                    os.replace(tmp, self.run_dir / BEST)
            finally:
                tmp.unlink(missing_ok=True)

    def _router_report(self) -> dict[str, object]:
        """How well automatic routing will recognise the new language beside the installed ones."""
        own = RouterProfile(self.config.language, self.router_features)
        others = load_profiles({
            info.meta.language: info.path / ROUTER_FILE
            for info in self.installed.values()
            if info.meta.language != self.config.language and (info.path / ROUTER_FILE).is_file()
        })
        profiles = [*others, own]
        accuracy = routing_accuracy(profiles, own.language, self.router_dev_features)
        return {"languages": sorted(p.language for p in profiles), "dev_clips": len(self.router_dev_features),
                "dev_accuracy": accuracy}

    # -- the run -----------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.ctx = init_distributed()
        try:
            return self._run()
        finally:
            if self.ctx.active and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

    def _run(self) -> TrainResult:
        config = self.config
        if config.batch_size < self.ctx.world:
            raise LoraWhisperError(f"--batch-size {config.batch_size} is smaller than the {self.ctx.world} processes")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self._timed("load"):
            self._load()
        named = self._named_source()
        with self._timed("similarity"):
            neighbours = self._similarity()
        warm = named or self._most_similar_source(neighbours)  # a fit start is chosen once the new adapter exists
        mixture = moe_weights(neighbours, config.moe_k) if config.moe_k else {}
        frozen = [(self.installed[name], w) for name, w in mixture.items()]

        self.train = self._examples(self.data.train, timestamps=True)
        self.dev_clips = self.data.dev[: config.dev_max_clips]
        self.dev = self._examples(self.dev_clips, timestamps=False)
        self._perms: dict[int, np.ndarray] = {}
        steps_per_epoch = config.steps_per_epoch(len(self.train))
        total = config.total_steps(len(self.train))
        eval_every = config.evaluation_interval(total)
        self._suggest_fit(neighbours, total, bool(frozen))
        warmup = max(1, round(config.warmup_fraction * total))
        run_id = f"{config.fingerprint()}-{_data_fingerprint(self.data.train + self.dev_clips)}-{self.backbone.files.fingerprint[-16:]}"

        net = self.backbone.model
        if config.gradient_checkpointing:
            net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        peft = attach(net, config, warm=warm, frozen=frozen)
        if config.warm_start == WARM_FIT and not frozen:
            with self._timed("fit"):
                warm = self._fit_source(peft, neighbours)
        params = [p for p in peft.parameters() if p.requires_grad]
        anchors = [p.detach().clone() for p in params] if config.anchor else []
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        ckpt = self._resume(peft, optimizer, run_id)
        resumed_from = ckpt.state["step"] if ckpt is not None else None
        if ckpt is not None:
            state = ckpt.state
            self.emit("resumed", step=state["step"], total_steps=total, message=f"resuming from step {state['step']}")
        else:
            state = {"run_id": run_id, "step": 0, "history": [], "bad_evals": 0}
            with self._timed("dev_before"):
                before = self._bare_dev_wer(peft)
                start = self._evaluate(peft) if (warm or frozen) and before is not None else before
            if before is None or start is None:
                self._cancelled_before_training("scoring the dev set")
            state["before"] = before
            state["history"] = [{"step": 0, "dev_wer": start}]
            state.update(best_wer=start, best_step=0)
            self._save_best(peft)
            self.emit("eval", step=0, total_steps=total, dev_wer=start,
                      message=f"dev WER without adapter {state['before']:.3f}, at the start {start:.3f}")

        model = (
            DistributedDataParallel(peft, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.ctx.active else peft
        )
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        amp = (lambda: torch.autocast(self.device.type, dtype=self.amp)) if self.amp else contextlib.nullcontext
        peft.train()
        self.emit("phase", message=f"training {total} steps, {len(self.train)} clips, batch {config.batch_size}")
        began, first_step, trained_before = time.monotonic(), state["step"], state.get("train_seconds", 0.0)
        evals_run = 0
        step = state["step"]
        eta: float | None = None
        while True:
            if UNSCORED in state:  # `step` ends an evaluation interval, or a cancel stopped its evaluation
                stop_early = self._score(peft, optimizer, state, total, steps_per_epoch, eta)
                evals_run += 1
                if stop_early:
                    break
            if step >= total:
                break
            if self.ctx.agree(self.cancel.is_set()):
                state["step"] = step
                self._cancelled_at(peft, optimizer, state, total)
            lr = learning_rate(step, total, warmup, config.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr
            chunks = self._batch_indices(step)
            losses = []
            step_began = time.monotonic()
            for i, chunk in enumerate(chunks):
                batch = collate([self.train[j] for j in chunk], net.config.num_mel_bins, self.device, self.tokens.eot)
                sync = model.no_sync() if self.ctx.active and i < len(chunks) - 1 else contextlib.nullcontext()
                with sync:
                    with amp():
                        logits = model(input_features=batch.features, decoder_input_ids=batch.decoder_input_ids).logits
                    loss = torch.nn.functional.cross_entropy(
                        logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=-100
                    )
                    total_loss = loss
                    if anchors:
                        total_loss = loss + config.anchor * sum(((p - a) ** 2).sum() for p, a in zip(params, anchors))
                    scaler.scale(total_loss / len(chunks)).backward()
                losses.append(loss.item())
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            state["train_seconds"] = state.get("train_seconds", 0.0) + time.monotonic() - step_began
            seen = sum(len(self.train[j].audio) for chunk in chunks for j in chunk) / 16000
            state["audio_seconds"] = state.get("audio_seconds", 0.0) + self.ctx.mean(seen) * self.ctx.world
            step += 1
            loss_value = self.ctx.mean(float(np.mean(losses)))
            eval_seconds = self.timings.get("evaluations", 0.0)
            per_step = (time.monotonic() - began - eval_seconds) / (step - first_step)
            per_eval = eval_seconds / evals_run if evals_run else per_step
            eta = per_step * (total - step) + per_eval * ((total - step) // eval_every + 1)
            self.emit("step", step=step, total_steps=total, epoch=step / steps_per_epoch, loss=loss_value,
                      learning_rate=lr, eta_s=eta)
            if step % eval_every == 0 or step == total:
                state.update({"step": step, UNSCORED: loss_value})
        self.ctx.barrier()
        self.timings["training"] = time.monotonic() - began - self.timings.get("evaluations", 0.0)
        self._record_speed(step - first_step, state.get("train_seconds", 0.0) - trained_before)
        with self._timed("finish"):
            result = self._finish(peft, state, warm, mixture, total, resumed_from)
        self.emit("done", step=state["step"], total_steps=total, dev_wer=state["best_wer"],
                  message=f"dev WER {state['before']:.3f} -> {state['best_wer']:.3f}",
                  data={"train_seconds": state.get("train_seconds", 0.0), "audio_seconds": state.get("audio_seconds", 0.0),
                        "peak_memory_bytes": _peak_memory(self.device), "before": state["before"],
                        "best_step": state["best_step"], "history": state["history"],
                        "timings": {k: round(v, 3) for k, v in self.timings.items()}})
        self.ctx.barrier()
        return result

    def _record_speed(self, steps: int, seconds: float) -> None:
        """Add this run's training and dev-scoring speeds to the machine's log (one process only:
        under DDP a step's batch is split across processes)."""
        if self.speeds is None or self.ctx.active or steps < 1 or seconds <= 0:
            return
        clips, scoring = self._scored
        precision = next(name for name, dtype in AMP_DTYPES.items() if dtype == self.amp)
        speed = RunSpeed(steps * self.config.batch_size / seconds, clips / scoring if clips and scoring > 0 else None)
        self.speeds.record(self.device.type, precision, self.backbone.files.fingerprint, speed)

    def _score(
        self, peft: PeftModel, optimizer: torch.optim.Optimizer, state: dict, total: int, steps_per_epoch: int,
        eta: float | None,
    ) -> bool:
        """Score the dev set at state["step"], keep the best weights and checkpoint; True to stop early.
        Cancelled part-way, the step is checkpointed still unscored, so a resumed run scores it first."""
        step, loss = state["step"], state[UNSCORED]
        with self._timed("evaluations"):
            wer = self._evaluate(peft)
        if wer is None:
            self._cancelled_at(peft, optimizer, state, total)
        del state[UNSCORED]
        state["history"].append({"step": step, "dev_wer": wer, "loss": loss})
        if wer < state["best_wer"]:
            state.update(best_wer=wer, best_step=step, bad_evals=0)
            self._save_best(peft)
        else:
            state["bad_evals"] += 1
        self._checkpoint(peft, optimizer, state)
        self.emit("eval", step=step, total_steps=total, epoch=step / steps_per_epoch, dev_wer=wer, loss=loss, eta_s=eta,
                  message=f"best {state['best_wer']:.3f} at step {state['best_step']}")
        if self.ctx.agree(state["bad_evals"] >= self.config.patience):
            self.emit("phase", message=f"no better dev WER in {self.config.patience} evaluations: stopping early")
            return True
        return False

    def _finish(
        self, peft: PeftModel, state: dict, warm: AdapterInfo | None, mixture: dict[str, float], total: int,
        resumed_from: int | None,
    ) -> TrainResult:
        config = self.config
        folder = self.run_dir / ADAPTER
        if self.ctx.is_main:
            best = load_file(self.run_dir / BEST)
            training = dict(self.data.to_dict())
            training.update(
                lid_profile=profile(self.mean_lid),
                warm_start=warm.name if warm else "none",
                **({"warm_rank": config.warm_rank} if warm and config.warm_rank else {}),
                **({"warm_start_fit": {f.adapter: round(f.loss, 4) for f in self.fits}} if self.fits else {}),
                steps=state["step"], planned_steps=total, best_step=state["best_step"],
                batch_size=config.batch_size, learning_rate=config.learning_rate, seed=config.seed,
                history=state["history"], dev_wer_method=EVAL_METHOD,
                router=self._router_report(),
            )
            meta = AdapterMeta(
                name=config.name,
                language=config.language,
                language_name=language_name(config.language),
                decode_token=self.decode_token,
                base_model=BaseModelRef(self.backbone.files.name, self.backbone.files.fingerprint),
                lora=LoraSpec(config.rank, config.alpha, config.dropout, config.targets),
                training_data=training,
                dev_wer=DevWer(before=state["before"], after=state["best_wer"]),
                mixture={config.name: 1.0, **mixture} if mixture else None,
            )
            dev = [{"id": c.id, "audio": str(c.audio), "text": c.text, "duration": c.duration} for c in self.dev_clips]
            with self._writing(f"the adapter to {folder}"):
                folder.mkdir(exist_ok=True)
                peft.peft_config[config.name].save_pretrained(str(folder))
                save_file({k: v.to(torch.float16).contiguous() for k, v in best.items()}, folder / WEIGHTS_FILE,
                          metadata={"format": "pt"})
                meta.save(folder)
                RouterProfile(config.language, self.router_features).save(folder)
                (self.run_dir / "history.json").write_text(json.dumps(state["history"], indent=1), encoding="utf-8")
                (self.run_dir / DEV_CLIPS).write_text(json.dumps(dev, indent=1, ensure_ascii=False), encoding="utf-8")
            validate_adapter_dir(folder, self.backbone.files.fingerprint)
        else:
            meta = None  # type: ignore[assignment]
        return TrainResult(folder, meta, state["history"], resumed_from)
