"""`lorawhisper bench`: the engine's real-time factor against faster-whisper, in one run.

On the same real dev clips (decoded to 16 kHz beforehand) and the same backbone weights:
this engine with no adapter, with one adapter merged (the default) and unmerged (peft's
own LoRA forward), and faster-whisper int8 and float32 on the CTranslate2 files of the
same backbone. Everything is greedy with no temperature fallback, the clip's language is
given (no language identification), timestamps on, no VAD, no conditioning on previous
text. Each configuration is warmed up once, repeats are interleaved, totals are medians.
CTranslate2 gets as many threads as torch uses (set OMP_NUM_THREADS to change both).

Also measured: switching between two loaded adapters, loading one from disk, a
per-window/per-token breakdown of where the time goes, and on CUDA only, the encoder's
throughput batched over windows against one window at a time.
The adapters are LoRA adapters at peft's initialisation (B = 0), made afresh in a temporary folder: timing only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Callable

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import WhisperConfig, WhisperForConditionalGeneration

import lorawhisper_app
from lorawhisper_app.core.adapter_meta import AdapterMeta, BaseModelRef, LoraSpec
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.audio import SAMPLE_RATE, load_audio
from lorawhisper_app.core.backbone import (
    BUILTIN_NAME,
    BackboneFiles,
    write_builtin_ct2_folder,
)
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.features import N_FRAMES, window_features
from lorawhisper_app.core.languages import language_name
from lorawhisper_app.core.settings import cache_dir
from lorawhisper_app.core.transcriber import AudioWindows, DecodeOptions

LANGUAGE_ORDER = ("en", "sw", "de", "yo", "fr", "es", "pt")  # clips are taken round-robin in this order
MIN_SECONDS, MAX_SECONDS = 10.0, 18.0
LORA_RANK = 32
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "fc1", "fc2")
ADAPTER_NOTE = "timing adapter at peft's initialisation (random A, B = 0)"
SWITCHES = 10
LOADS = 3
GPU_BATCH = 16
FW_INT8 = "faster-whisper int8"
FW_FP32 = "faster-whisper float32"


@dataclass(frozen=True)
class Clip:
    path: Path
    language: str
    audio: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Config:
    """One way of transcribing a clip; `prepare` runs untimed before each pass."""

    name: str
    prepare: Callable[[], None]
    run: Callable[[Clip], str]
    walls: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class Stages:
    """Time spent per stage over the first window of every clip."""

    windows: int = 0
    features_s: float = 0.0
    encode_s: float = 0.0
    decode_s: float = 0.0
    tokens: int = 0  # sampled tokens including the end token

    def as_dict(self) -> dict[str, float]:
        return {
            "features_ms_per_window": round(1000 * self.features_s / self.windows, 1),
            "encoder_ms_per_window": round(1000 * self.encode_s / self.windows, 1),
            "decoder_ms_per_token": round(1000 * self.decode_s / max(1, self.tokens), 2),
            "tokens": self.tokens,
        }


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def default_dev_dir() -> Path:
    return Path(lorawhisper_app.__file__).resolve().parents[2] / "shared" / "data" / "speech" / "dev"


def select_clips(dev: Path, count: int) -> list[Clip]:
    """`count` real (not synthetic) dev clips of 10-18 s, languages taken in turn."""
    manifest = dev / "manifest.jsonl"
    if not manifest.is_file():
        raise LoraWhisperError(f"{manifest}: no dev set manifest here; pass --dev DIR")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    pools = [
        sorted(
            (r for r in rows if r["language"] == lang and r.get("synthetic") is None
             and MIN_SECONDS <= r["duration_s"] <= MAX_SECONDS),
            key=lambda r: r["path"],
        )
        for lang in LANGUAGE_ORDER
    ]
    picked = [r for r in itertools.chain.from_iterable(itertools.zip_longest(*pools)) if r is not None][:count]
    if not picked:
        raise LoraWhisperError(f"{manifest}: no real clips of {MIN_SECONDS:g}-{MAX_SECONDS:g} s")
    return [Clip(dev / r["path"], r["language"], load_audio(dev / r["path"])) for r in picked]


def make_timing_adapter(
    folder: Path, name: str, language: str, config: WhisperConfig, backbone: BackboneFiles, seed: int
) -> Path:
    """Save a peft LoRA adapter at peft's initialisation (random A, B = 0) as `folder/name`.

    B = 0 keeps the decoded tokens those of the bare backbone, so every configuration does
    the same work; merging, switching and the unmerged LoRA compute cost the same whatever
    the values. (Even a 1e-6 perturbation flipped a Yoruba clip into a 224-token loop.)
    """
    lora = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, lora_dropout=0.0, target_modules=list(LORA_TARGETS))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated in 5.x
        torch.manual_seed(seed)
        model = get_peft_model(WhisperForConditionalGeneration(config), lora)
    path = folder / name
    model.save_pretrained(path)
    AdapterMeta(
        name=name,
        language=language,
        language_name=language_name(language),
        decode_token=language,
        base_model=BaseModelRef(name=backbone.name, fingerprint=backbone.fingerprint),
        lora=LoraSpec(rank=LORA_RANK, alpha=2 * LORA_RANK, dropout=0.0, targets=LORA_TARGETS),
        training_data={"source": "synthetic", "description": ADAPTER_NOTE},
    ).save(path)
    return path


def ct2_model_dir(backbone: BackboneFiles) -> Path:
    """The backbone as a CTranslate2 folder in the cache, made once.

    The built-in backbone uses its original package files (parts joined into model.bin);
    other models go through CTranslate2's own transformers converter.
    """
    folder = cache_dir() / "ct2" / backbone.fingerprint.removeprefix("sha256:")[:16]
    if (folder / "model.bin").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    staging = tmp / "model"
    try:
        if backbone.name == BUILTIN_NAME:
            write_builtin_ct2_folder(staging)
        else:
            from ctranslate2.converters import TransformersConverter

            extra = [n for n in ("tokenizer.json", "preprocessor_config.json") if (backbone.path / n).is_file()]
            TransformersConverter(str(backbone.path), copy_files=extra).convert(str(staging))
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "model.bin").is_file():  # not a concurrent run that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _engine_config(engine: Engine, name: str, mixture: dict[str, float], unmerged: bool) -> Config:
    """This engine's windowed transcription (as Engine.transcribe runs it after routing)."""

    def run(clip: Clip) -> str:
        windows = AudioWindows(iter([clip.audio]))
        return " ".join(s.text for s in engine.transcriber.run(windows, clip.language, clip.seconds))

    return Config(name, lambda: engine.use_adapters(mixture, unmerged=unmerged), run)


def _faster_whisper_config(model: Any, name: str) -> Config:  # noqa: ANN401 - faster_whisper.WhisperModel
    def run(clip: Clip) -> str:
        segments, _ = model.transcribe(
            clip.audio,
            language=clip.language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=False,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(s.text.strip() for s in segments)

    return Config(name, lambda: None, run)


def _timed_pass(config: Config, clips: list[Clip]) -> None:
    config.prepare()
    start = perf_counter()
    texts = [config.run(clip) for clip in clips]
    config.walls.append(perf_counter() - start)
    config.texts = texts


def _engine_stages(engine: Engine, clips: list[Clip]) -> Stages:
    """Features, encoder and greedy decoder loop of our engine, with the active adapters."""
    stages = Stages()
    decoder = engine.decoder
    for clip in clips:
        t0 = perf_counter()
        features = window_features(clip.audio, engine.backbone.model.config.num_mel_bins)
        t1 = perf_counter()
        enc = decoder.encode(features)
        t2 = perf_counter()
        result = decoder.decode(enc, decoder.tokens.prompt(clip.language, timestamps=True))
        t3 = perf_counter()
        stages.windows += 1
        stages.features_s += t1 - t0
        stages.encode_s += t2 - t1
        stages.decode_s += t3 - t2
        stages.tokens += len(result.tokens) + 1
    return stages


def _ct2_stages(model: Any, clips: list[Clip], prompts: list[list[int]]) -> Stages:  # noqa: ANN401
    """The same stages for faster-whisper: its feature extractor, CTranslate2 encode and generate."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    stages = Stages()
    for clip, prompt in zip(clips, prompts):
        t0 = perf_counter()
        features = pad_or_trim(model.feature_extractor(clip.audio), N_FRAMES)[None]
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        t1 = perf_counter()
        enc = model.model.encode(storage)
        t2 = perf_counter()
        result = model.model.generate(enc, [prompt], beam_size=1, suppress_blank=True, suppress_tokens=[-1])
        t3 = perf_counter()
        stages.windows += 1
        stages.features_s += t1 - t0
        stages.encode_s += t2 - t1
        stages.decode_s += t3 - t2
        stages.tokens += len(result[0].sequences_ids[0]) + 1
    return stages


def _median_ms(action: Callable[[], None], times: int, before: Callable[[], None] = lambda: None) -> float:
    samples = []
    for _ in range(times):
        before()
        start = perf_counter()
        action()
        samples.append(perf_counter() - start)
    return round(1000 * statistics.median(samples), 1)


def _gpu_batched(engine: Engine, clips: list[Clip]) -> dict[str, float] | None:
    """Encoder windows/s one at a time and in one batch (CUDA only; not run on the CPU-only dev machine)."""
    if engine.backbone.device.type != "cuda":
        return None
    n_mels = engine.backbone.model.config.num_mel_bins
    features = torch.cat([window_features(c.audio, n_mels) for c in itertools.islice(itertools.cycle(clips), GPU_BATCH)])
    engine.use_adapters({})
    engine.decoder.encode(features[:1])
    torch.cuda.synchronize()
    start = perf_counter()
    for i in range(GPU_BATCH):
        engine.decoder.encode(features[i : i + 1])
    torch.cuda.synchronize()
    single = perf_counter() - start
    start = perf_counter()
    engine.decoder.encode(features)
    torch.cuda.synchronize()
    batched = perf_counter() - start
    return {
        "windows": GPU_BATCH,
        "single_windows_per_s": round(GPU_BATCH / single, 1),
        "batched_windows_per_s": round(GPU_BATCH / batched, 1),
    }


def _same_text(a: str, b: str) -> bool:
    return a.split() == b.split()


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement, print the table (unless --json) and return the numbers."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise LoraWhisperError("the benchmark needs faster-whisper and ctranslate2 (pip install -e '.[test]')") from exc
    if args.clips < 1 or args.repeats < 1:
        raise LoraWhisperError("--clips and --repeats must be at least 1")
    clips = select_clips(Path(args.dev) if args.dev else default_dev_dir(), args.clips)
    audio_s = sum(c.seconds for c in clips)
    _say(f"{len(clips)} clips, {audio_s:.1f} s of audio; loading the backbone")

    with tempfile.TemporaryDirectory(prefix="lorawhisper-bench-") as tmp:
        engine = Engine(
            args.model, device=args.device, dtype=args.dtype, threads=args.threads,
            store=AdapterStore(None, Path(tmp)), decode_options=DecodeOptions(temperatures=(0.0,)),
        )
        files, device = engine.backbone.files, engine.backbone.device
        dtype = engine.backbone.compute.name
        threads = torch.get_num_threads()
        adapters = ["bench-a", "bench-b"]
        for seed, (name, lang) in enumerate(zip(adapters, ("en", "de"))):
            make_timing_adapter(Path(tmp), name, lang, engine.backbone.model.config, files, seed)
        ct2_dir = ct2_model_dir(files)
        fw = {
            compute: WhisperModel(str(ct2_dir), device=device.type, compute_type=compute, cpu_threads=threads)
            for compute in ("int8", "float32")
        }
        ours = f"lorawhisper {dtype}"
        configs = [
            _engine_config(engine, f"{ours}, no adapter", {}, False),
            _engine_config(engine, f"{ours}, adapter merged", {adapters[0]: 1.0}, False),
            _engine_config(engine, f"{ours}, adapter unmerged (peft)", {adapters[0]: 1.0}, True),
            _faster_whisper_config(fw["int8"], FW_INT8),
            _faster_whisper_config(fw["float32"], FW_FP32),
        ]
        if dtype != "float32":  # plain float32 transformers compute, as a second baseline
            plain = Engine(
                args.model, device=args.device, dtype="float32", threads=args.threads,
                store=AdapterStore(None, Path(tmp)), decode_options=DecodeOptions(temperatures=(0.0,)),
            )
            configs.append(_engine_config(plain, "lorawhisper float32, no adapter", {}, False))
        for config in configs:
            _say(f"warming up {config.name}")
            config.prepare()
            config.run(clips[0])

        _say("per-stage breakdown")
        prompts = [engine.tokens.prompt(c.language, timestamps=True) for c in clips]
        breakdown = {}
        for config in configs[:3]:
            config.prepare()
            breakdown[config.name] = _engine_stages(engine, clips).as_dict()
        for compute, model in fw.items():
            breakdown[f"faster-whisper {compute}"] = _ct2_stages(model, clips, prompts).as_dict()

        for repeat in range(args.repeats):
            for config in configs:
                _say(f"repeat {repeat + 1}/{args.repeats}: {config.name}")
                _timed_pass(config, clips)

        _say("adapter switching and loading")
        engine.use_adapters({adapters[0]: 1.0})
        cycle = itertools.cycle(reversed(adapters))
        switch_ms = _median_ms(lambda: engine.use_adapters({next(cycle): 1.0}), SWITCHES)

        def forget() -> None:
            engine.use_adapters({})
            engine.runtime.unload(adapters[1])

        load_ms = _median_ms(lambda: engine.use_adapters({adapters[1]: 1.0}), LOADS, before=forget)
        gpu = _gpu_batched(engine, clips)

    walls = {c.name: statistics.median(c.walls) for c in configs}
    bare, merged, unmerged = (walls[c.name] for c in configs[:3])
    reference = next(c for c in configs if c.name == FW_FP32)
    agree = [_same_text(a, b) for a, b in zip(configs[0].texts, reference.texts)]
    report: dict[str, Any] = {
        "clips": [{"path": str(c.path), "language": c.language, "seconds": round(c.seconds, 2)} for c in clips],
        "audio_s": round(audio_s, 2),
        "backbone": files.name,
        "device": str(device),
        "dtype": dtype,
        "threads": threads,
        "repeats": args.repeats,
        "adapter": f"{ADAPTER_NOTE}: LoRA r={LORA_RANK}, alpha={2 * LORA_RANK}, on {', '.join(LORA_TARGETS)}",
        "configurations": {
            c.name: {
                "wall_s": round(walls[c.name], 3),
                "rtf": round(walls[c.name] / audio_s, 4),
                "vs_faster_whisper_int8": round(walls[c.name] / walls[FW_INT8], 2),
                "chars": sum(len(t) for t in c.texts),
                "runs_s": [round(w, 3) for w in c.walls],
            }
            for c in configs
        },
        "adapter_overhead_pct": {
            "merged": round(100 * (merged / bare - 1), 1),
            "unmerged": round(100 * (unmerged / bare - 1), 1),
        },
        "adapter_switch_ms": switch_ms,
        "adapter_load_ms": load_ms,
        "texts_no_adapter_vs_faster_whisper_fp32": {
            "identical": sum(agree),
            "clips": len(agree),
            "differing": [
                {"path": str(c.path), "ours": a, "faster_whisper": b}
                for c, a, b, same in zip(clips, configs[0].texts, reference.texts, agree)
                if not same
            ],
        },
        "breakdown_first_window": breakdown,
        "gpu_batched_encoder": gpu,
    }
    if not args.json:
        print(format_report(report))
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a readable table."""
    langs = ", ".join(c["language"] for c in report["clips"])
    lines = [
        f"{len(report['clips'])} real dev clips ({langs}), {report['audio_s']:.1f} s of audio; "
        f"{report['backbone']} on {report['device']}, {report['threads']} threads (torch and CTranslate2)",
        "greedy, no temperature fallback, language given, timestamps on, no VAD; "
        f"median of {report['repeats']} interleaved repeat(s) after one warm-up",
        "",
        f"{'configuration':<44}{'audio s':>9}{'wall s':>9}{'RTF':>8}{'x fw int8':>11}{'chars':>7}",
    ]
    for name, row in report["configurations"].items():
        lines.append(
            f"{name:<44}{report['audio_s']:>9.1f}{row['wall_s']:>9.2f}{row['rtf']:>8.3f}"
            f"{row['vs_faster_whisper_int8']:>11.2f}{row['chars']:>7}"
        )
    overhead = report["adapter_overhead_pct"]
    texts = report["texts_no_adapter_vs_faster_whisper_fp32"]
    lines += [
        "",
        f"adapter: {report['adapter']}",
        f"adapter overhead vs no adapter: merged {overhead['merged']:+.1f} %, unmerged {overhead['unmerged']:+.1f} %",
        f"adapter switch between two loaded adapters (cached merged weights): median {report['adapter_switch_ms']:.1f} ms",
        f"adapter load from disk (validate, peft load, merge): median {report['adapter_load_ms']:.1f} ms",
        f"texts, no adapter vs faster-whisper float32: {texts['identical']}/{texts['clips']} clips identical",
        "",
        "where the time goes (first window of each clip, no fallback):",
        f"{'configuration':<44}{'features ms':>12}{'encoder ms':>12}{'ms/token':>10}{'tokens':>8}",
    ]
    for name, row in report["breakdown_first_window"].items():
        lines.append(
            f"{name:<44}{row['features_ms_per_window']:>12.1f}{row['encoder_ms_per_window']:>12.1f}"
            f"{row['decoder_ms_per_token']:>10.2f}{row['tokens']:>8}"
        )
    gpu = report["gpu_batched_encoder"]
    lines.append("")
    if gpu is None:
        lines.append("batched GPU encoder throughput: n/a on CPU")
    else:
        lines.append(
            f"batched GPU encoder throughput (untested on the dev machine): {gpu['batched_windows_per_s']} windows/s "
            f"in batches of {gpu['windows']}, {gpu['single_windows_per_s']} windows/s one at a time"
        )
    return "\n".join(lines)
