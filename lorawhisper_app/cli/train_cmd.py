"""`lorawhisper train`: validate the data, train a language adapter, install it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lorawhisper_app.cli.interrupts import interrupts_cancel
from lorawhisper_app.cli.progress import ProgressBar
from lorawhisper_app.core.errors import LoraWhisperError

if TYPE_CHECKING:
    from lorawhisper_app.core.adapter_store import AdapterStore
    from lorawhisper_app.core.training.config import TrainConfig
    from lorawhisper_app.core.training.datasets import DatasetReport


def _estimate_line(config: TrainConfig, report: DatasetReport, store: AdapterStore, device: str, model: str | None) -> str:
    """How long the run should take here, before the minutes of set-up that precede the first ETA:
    the wizard's estimate, from this machine's logged speeds once a run has finished here."""
    from lorawhisper_app.core.backbone import resolve_backbone
    from lorawhisper_app.core.training.config import WARM_FIT, WARM_NONE
    from lorawhisper_app.core.training.estimate import (
        MEASURED,
        auto_precision,
        duration_text,
        estimate_training,
        training_device,
    )
    from lorawhisper_app.core.training.speed_log import default_speed_log

    device = training_device(device)
    precision = auto_precision(device) if config.precision == "auto" else config.precision
    if (device, precision) not in MEASURED:
        return f"estimated time: unknown (no training speed measured on {device} in {precision})"
    fingerprint = resolve_backbone(model).fingerprint
    steps = config.total_steps(len(report.train))
    fits = sum(info.compatible_with(fingerprint) for info in store.list()) if config.warm_start == WARM_FIT else 0
    estimate = estimate_training(
        device=device, train_clips=len(report.train), dev_clips=len(report.dev),
        data_seconds=report.train_seconds() + report.dev_seconds(), steps=steps, batch_size=config.batch_size,
        eval_every=config.evaluation_interval(steps), starts_from_adapter=config.warm_start != WARM_NONE or config.moe_k > 0,
        fit_candidates=fits, precision=precision, rates=default_speed_log().throughput(device, precision, fingerprint),
    )
    return (f"estimated time: {duration_text(estimate.total_s)} for {steps} steps on the {device.upper()}, from speeds "
            f"{estimate.basis}; a run that stops improving ends sooner")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a LoRA adapter for a language from recordings and transcripts",
        description="DATA: a folder of audio files with same-stem .txt transcripts, a CSV/TSV with path and "
        "text columns, a JSONL manifest, or a Common Voice folder. Runs unchanged under torchrun.",
    )
    p.add_argument("data", metavar="DATA")
    p.add_argument("--language", required=True, help="ISO 639-1 or 639-3 code of the new language, e.g. sw or rw")
    p.add_argument("--name", default=None, help="adapter name (default: the language code, or code-2... when taken)")
    p.add_argument("--language-name", default=None, metavar="NAME",
                   help="the language's English name in the adapter's metadata (default: Whisper's or the app's name, else the code)")
    p.add_argument("--dev", default=None, metavar="DATA", help="a separate dev set (default: a fixed share of DATA)")
    p.add_argument("--warm-start", default="none", metavar="none|auto|fit|CODE",
                   help="peft's initialisation (none, the default: it measured best), the most similar language's adapter "
                   "(auto), the installed adapter whose start has the lowest loss on a sample of DATA (fit), "
                   "or a given language's or adapter's weights")
    p.add_argument("--warm-rank", type=int, default=0, metavar="K",
                   help="copy only the K strongest directions of each layer of the warm-start adapter (default 0: all)")
    p.add_argument("--anchor", type=float, default=0.0, metavar="L",
                   help="pull the new adapter toward its starting weights with L * squared distance (L2-SP; default 0: off)")
    p.add_argument("--moe", type=int, default=0, metavar="K", help="train beside the adapters of the K most similar languages, frozen")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, default=12, help="passes over the training data (default 12)")
    budget.add_argument("--steps", type=int, default=None, help="optimiser steps instead of epochs")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--alpha", type=float, default=64.0)
    p.add_argument("--dropout", type=float, default=0.05)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,fc1,fc2", help="comma-separated module names to adapt")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per optimiser step (default 16)")
    p.add_argument("--micro-batch", type=int, default=None, help="clips per forward pass (default 16 on GPU, 4 on CPU)")
    p.add_argument("--eval-every", type=int, default=None, help="steps between dev evaluations (default: an eighth of the run)")
    p.add_argument("--patience", type=int, default=3, help="stop after this many evaluations without a better dev WER")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    p.add_argument("--decode-token", default=None, metavar="CODE",
                   help="Whisper language token to decode with (default: the language's own, else the most similar)")
    p.add_argument("--run-dir", default=None, help="checkpoints and logs (default: the user data folder)")
    p.add_argument("--fresh", action="store_true", help="ignore an earlier checkpoint of this run")
    p.add_argument("--remeasure", action="store_true",
                   help="measure the data with the bare backbone again (LID profile, dev WER without an adapter) "
                        "instead of taking an earlier run's figures for the same data and settings")
    p.add_argument("--no-install", action="store_true", help="keep the adapter in the run folder only")
    p.add_argument("--replace", action="store_true", help="replace an installed adapter of the same name")
    p.add_argument("--adapter-dir", default=None, metavar="DIR",
                   help="the user adapter folder to install into (default: the one in the user data folder)")
    p.add_argument("--model", default=None, help="backbone: built-in Whisper base (default), a Hugging Face id or a local folder")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", action="store_true", help="print the report and every event as JSON lines")
    p.set_defaults(func=cmd_train)


class _Printer:
    """Training events as human lines and a progress bar, or as JSON lines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.bar = ProgressBar("training", enabled=not as_json)

    def __call__(self, event) -> None:  # noqa: ANN001 - TrainEvent
        if self.as_json:
            fields = {k: v for k, v in event.to_dict().items() if k != "kind"}
            print(json.dumps({"event": event.kind, **fields}, ensure_ascii=False), flush=True)
            return
        if event.kind == "step":
            self.bar.update(event.step, event.total_steps)
            return
        self.bar.close()
        if event.kind == "similarity":
            ranking = event.data["ranking"]
            print("Whisper's language identification of the new data: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in event.data["lid"].items()))
            print(f"decoding with the language token: {event.data['decode_token']}")
            print("similarity to the installed adapters:" if ranking else "no installed adapters to compare with")
            for row in ranking:
                print(f"  {row['language']:4} {row['adapter']:16} {row['similarity']:.3f}")
        elif event.kind == "fit":
            print(f"fit to the new data ({event.data['clips']} clips; loss per token, lower is better):")
            for row in event.data["ranking"]:
                print(f"  {row['language']:4} {row['adapter']:16} {row['loss']:.3f}")
            why = event.data.get("why_fresh")
            print(f"starting from {event.data['chosen']}" + (f": {why}" if why else ""), flush=True)
        elif event.kind == "eval":
            eta = f", ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
            print(f"step {event.step}/{event.total_steps}: dev WER {event.dev_wer:.3f} ({event.message}){eta}", flush=True)
        else:
            print(event.message, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    import platformdirs

    from lorawhisper_app.core.adapter_store import (
        AdapterStore,
        bundled_adapter_dir,
        default_user_adapter_dir,
        free_adapter_name,
    )
    from lorawhisper_app.core.languages import normalize_language_code
    from lorawhisper_app.core.settings import cache_dir
    from lorawhisper_app.core.training.baseline_memo import BaselineMemo
    from lorawhisper_app.core.training.config import TrainConfig
    from lorawhisper_app.core.training.datasets import load_dataset, require_enough
    from lorawhisper_app.core.training.distributed import DistContext
    from lorawhisper_app.core.training.speed_log import default_speed_log
    from lorawhisper_app.core.training.trainer import Trainer

    language = normalize_language_code(args.language)
    store = AdapterStore(bundled_adapter_dir(), Path(args.adapter_dir) if args.adapter_dir else default_user_adapter_dir())
    taken = {i.name for i in store.list()}
    name = args.name or free_adapter_name(language, taken)
    if not args.no_install and name in taken and not args.replace:
        raise LoraWhisperError(f"an adapter named {name} is installed; choose another --name, or --replace it")
    config = TrainConfig(
        language=language, name=name, rank=args.rank, alpha=args.alpha, dropout=args.dropout,
        targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()), learning_rate=args.lr,
        batch_size=args.batch_size, micro_batch=args.micro_batch, epochs=args.epochs, steps=args.steps,
        eval_every=args.eval_every, patience=args.patience, seed=args.seed, precision=args.precision,
        gradient_checkpointing=args.gradient_checkpointing, warm_start=args.warm_start, anchor=args.anchor,
        warm_rank=args.warm_rank, moe_k=args.moe,
        decode_token=normalize_language_code(args.decode_token) if args.decode_token else None,
    )
    main_rank = DistContext.from_env_rank() == 0
    printer = _Printer(args.json) if main_rank else None
    # SIGTERM too: the app's Pause and Cancel send it.
    with interrupts_cancel("cancelling at the end of this step or batch (Ctrl+C again to stop at once)", sigterm=True) as cancel:
        audio: dict = {}
        bar = ProgressBar("checking the data", enabled=not args.json and main_rank)
        began = time.monotonic()
        report = load_dataset(
            args.data, language=language, dev=args.dev, audio_store=audio, progress=bar.update, cancel=cancel
        )
        bar.close()
        if main_rank:
            if args.json:
                print(json.dumps({"event": "report", **report.to_dict(), "seconds": round(time.monotonic() - began, 3)},
                                 ensure_ascii=False), flush=True)
            else:
                print("\n".join(report.summary_lines()), flush=True)
        require_enough(report)
        if main_rank and not args.json:
            print(_estimate_line(config, report, store, args.device, args.model), flush=True)

        run_dir = Path(args.run_dir) if args.run_dir else (
            platformdirs.user_data_path("lorawhisper-studio", appauthor=False) / "training" / name
        )
        trainer = Trainer(config, report, audio, store=store, run_dir=run_dir, model=args.model, device=args.device,
                          events=printer, cancel=cancel, fresh=args.fresh,
                          memo=None if args.remeasure else BaselineMemo(cache_dir() / "baselines"),
                          speeds=default_speed_log())
        result = trainer.run()
        if not main_rank:
            return 0
        if args.language_name and args.language_name.strip() != result.meta.language_name:
            result.meta = dataclasses.replace(result.meta, language_name=args.language_name.strip())
            result.meta.save(result.adapter_dir)
        if args.no_install:
            message, path = f"adapter kept in {result.adapter_dir}", result.adapter_dir
        else:
            fingerprint = result.meta.base_model.fingerprint
            info = store.import_(result.adapter_dir, fingerprint, name=name, replace=args.replace)
            message, path = f"installed adapter {info.name} ({info.meta.language_name}) in {info.path}", info.path
        wer = result.meta.dev_wer
        if args.json:
            print(json.dumps({"event": "installed", "name": name, "path": str(path),
                              "dev_wer": {"before": wer.before, "after": wer.after}}), flush=True)
        else:
            print(f"{message}; dev WER {wer.before:.3f} -> {wer.after:.3f}", flush=True)
        return 0
