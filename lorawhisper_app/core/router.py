"""Automatic routing: which installed adapter's language is spoken, or none of them.

Whisper's own language identification does not know most of the languages the adapters
serve (Hausa and Luganda are taken for Malay, Arabic or Italian, Lingala and Kinyarwanda
for Swahili), so auto mode asks this router instead. A clip is described by its bare
backbone's encoder states over its first 30 s: the mean over the frames that hold audio
of the hidden states after encoder layers 2 and 4 (FEATURE_LAYERS). The encoder runs for
Whisper's LID anyway; the hooks that keep those states cost a fraction of a millisecond.

Each adapter folder may hold its language's profile, `router.safetensors`: the features of
a sample of its training clips (:func:`write_router_profile`). The router is assembled from
the installed adapters' profiles, so installing an adapter adds its language and removing
it removes that language; nothing else is retrained. It models each language as a Gaussian
around its mean with one shared covariance (the pooled within-language covariance, shrunk
towards its diagonal). A clip goes to its nearest language only when it lies clearly nearer
to that mean than to the centre of all the installed languages' means: speech of a language
without an adapter lies about as far from every installed language as from their centre.
The distance ratio becomes a probability against "none of these" (logistic, 0.5 at RATIO),
and "none of these" is shared out over the other languages as Whisper's LID ranks them.

Chosen by measurement on the dev sets (figures: lorawhisper_app.benchmarks.routing_bench),
scoring each design by its worst language: the share of a shipped language's clips routed
to its adapter, and the share of clips without an adapter (synthetic, FLEURS, each shipped
language with its adapter removed) routed to the bare backbone. With profiles of 60 train
clips per language: the last encoder layer's mean with Whisper's LID log-probabilities
reached 0.83 at best (Hausa, whose second voice lies far from the first), the decoder state
of the LID step rejected languages without an adapter worst, and per-language covariances
against a background Gaussian, k nearest clips, two means per language and absolute
distance thresholds each stayed at or under 0.92 somewhere. Layers 2 and 4 with the ratio
test did best; SHRINKAGE and RATIO give the widest worst-case margin over two independent
profile samples. Caveat: every shipped language is one or two voices, and layer-2 states
carry voice and recording more than language (they sent 1 of 15 FLEURS clips to the
synthetic-voice profile of their language, the LID decoder state 15 of 15), so speech of a
new voice in a shipped language may well go to the bare backbone: the safe way to fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from transformers import WhisperForConditionalGeneration

from .adapter_meta import META_FILE
from .adapter_store import ROUTER_FILE
from .decoding import WindowDecoder
from .features import N_SAMPLES, SAMPLE_RATE, window_features

FEATURE_LAYERS = (2, 4)  # hidden states after these encoder layers (1-based; at most the last), concatenated
FEATURE_KIND = "encoder-speech-mean:2,4"  # written into each profile; others are ignored
ENCODER_FRAMES_PER_SECOND = 50
SHRINKAGE = 0.4  # weight of the diagonal in the shared covariance
RATIO = 0.93  # distance to the language over distance to the centre where P(language) = 0.5
SHARPNESS = 40.0  # logistic slope per unit of that ratio: P = 0.9 at RATIO - 0.055
PROFILE_CLIPS = 60
MIN_LANGUAGES = 2  # the centre of a single language is that language: no "none" test


def speech_frames(n_samples: int) -> int:
    """Encoder frames covering `n_samples` of audio at the start of a 30 s window."""
    seconds = min(n_samples, N_SAMPLES) / SAMPLE_RATE
    return max(1, math.ceil(seconds * ENCODER_FRAMES_PER_SECOND))


class FeatureTap:
    """While open, keeps the outputs of the encoder layers that make the router's features.

    Works for any caller that runs the encoder's layers (a whole window or a short prefix).
    """

    def __init__(self, model: WhisperForConditionalGeneration) -> None:
        layers = model.model.encoder.layers
        self.layers = [layers[min(i, len(layers)) - 1] for i in FEATURE_LAYERS]
        self.states: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> FeatureTap:
        self.states = []
        self._handles = [layer.register_forward_hook(self._keep) for layer in self.layers]
        return self

    def __exit__(self, *_: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _keep(self, _module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        self.states.append(output.detach())

    def pooled(self, lengths: Sequence[int]) -> np.ndarray:
        """[batch, features]: each item's mean over the frames of its `lengths` samples."""
        rows = []
        for item, n in enumerate(lengths):
            frames = speech_frames(n)
            rows.append(torch.cat([s[item, :frames].float().mean(0) for s in self.states]))
        return torch.stack(rows).cpu().numpy()


def _as_float(audio: np.ndarray) -> np.ndarray:
    """16 kHz audio as float32 in [-1, 1]; int16 samples (as the trainer keeps them) are scaled."""
    audio = np.asarray(audio)
    if np.issubdtype(audio.dtype, np.integer):
        return audio.astype(np.float32) / 32768.0
    return audio.astype(np.float32, copy=False)


@torch.inference_mode()
def clip_features(
    decoder: WindowDecoder, audios: Iterable[np.ndarray], batch_size: int = 8, before_batch: Callable[[], None] | None = None,
) -> np.ndarray:
    """[clips, features] of the first 30 s of each clip. Turn the adapters off first.
    `before_batch` runs before each batch is encoded; it may raise to stop (a cancel)."""
    rows: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if before_batch is not None:
            before_batch()
        feats = torch.cat([window_features(a, decoder.model.config.num_mel_bins) for a in batch])
        with FeatureTap(decoder.model) as tap:
            decoder.encode(feats)
        rows.extend(tap.pooled([len(a) for a in batch]))
        batch.clear()

    for audio in audios:
        batch.append(_as_float(audio)[:N_SAMPLES])
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return np.stack(rows).astype(np.float32)


# --- profiles -----------------------------------------------------------------------


@dataclass(frozen=True)
class RouterProfile:
    """One language's router profile: the features of a sample of its training clips."""

    language: str
    features: np.ndarray  # [clips, features] float32

    def save(self, folder: Path) -> Path:
        """Write `router.safetensors` into `folder` (under a temporary name, then renamed)."""
        path = Path(folder) / ROUTER_FILE
        temp = path.with_name(f".{ROUTER_FILE}.tmp")
        metadata = {"language": self.language, "feature_kind": FEATURE_KIND, "clips": str(len(self.features))}
        save_file({"features": np.ascontiguousarray(self.features, dtype=np.float32)}, str(temp), metadata=metadata)
        os.replace(temp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> RouterProfile | None:
        """The profile in `path`, or None when it was made with other features (or is unusable)."""
        with safe_open(str(path), "np") as opened:
            metadata = opened.metadata() or {}
        if metadata.get("feature_kind") != FEATURE_KIND or not metadata.get("language"):
            return None
        features = load_file(str(path)).get("features")
        if features is None or features.ndim != 2 or len(features) < 2:
            return None
        return cls(metadata["language"], features.astype(np.float32))


def profile_sample(clip_ids: Iterable[str], size: int = PROFILE_CLIPS) -> list[str]:
    """A fixed sample of clip ids, independent of their order."""
    return sorted(clip_ids, key=lambda cid: hashlib.sha1(cid.encode()).hexdigest())[:size]


def write_router_profile(folder: Path, decoder: WindowDecoder, audios: Iterable[np.ndarray]) -> Path:
    """Compute and write the router profile of the adapter in `folder` from its training audio.

    `decoder` must run the bare backbone (no LoRA active); `audios`: 16 kHz training clips
    (float, or int16 as the trainer keeps them), a sample of about PROFILE_CLIPS
    (:func:`profile_sample` picks one). The language is the one in the folder's lorawhisper.json.
    """
    folder = Path(folder)
    language = json.loads((folder / META_FILE).read_text(encoding="utf-8"))["language"]
    return RouterProfile(language, clip_features(decoder, audios)).save(folder)


# --- the router -----------------------------------------------------------------------


class Router:
    """Languages from profiles, plus "none of these"; see the module's docstring."""

    def __init__(
        self, profiles: Sequence[RouterProfile], *, shrinkage: float = SHRINKAGE, ratio: float = RATIO,
        sharpness: float = SHARPNESS,
    ) -> None:
        if len({p.language for p in profiles}) != len(profiles):
            raise ValueError("one profile per language")
        self.languages = [p.language for p in profiles]
        self.ratio, self.sharpness = ratio, sharpness
        means = np.stack([p.features.mean(0) for p in profiles]).astype(np.float64)
        centred = [p.features.astype(np.float64) - mean for p, mean in zip(profiles, means)]
        dof = sum(len(c) for c in centred) - len(centred)
        within = sum(c.T @ c for c in centred) / max(1, dof)
        covariance = (1 - shrinkage) * within + shrinkage * np.diag(np.diag(within))
        # Distances are taken after whitening: z = x @ W with W W^T = covariance^-1.
        self._whiten = np.linalg.cholesky(np.linalg.inv(covariance))
        self._means = means @ self._whiten
        self._centre = self._means.mean(0)

    def distances(self, features: np.ndarray) -> tuple[np.ndarray, float]:
        """Squared Mahalanobis distances (per dimension) of one clip to each language's mean and to the centre."""
        z = np.asarray(features, dtype=np.float64) @ self._whiten
        dim = z.shape[-1]
        return ((z - self._means) ** 2).sum(-1) / dim, float(((z - self._centre) ** 2).sum() / dim)

    def scores(self, features: np.ndarray) -> dict[str | None, float]:
        """P(language) for each profiled language and P(none of these) under the key None."""
        to_languages, to_centre = self.distances(features)
        if len(self.languages) < MIN_LANGUAGES:
            logits = np.full(len(self.languages), -np.inf)
        else:
            logits = self.sharpness * (self.ratio - to_languages / max(to_centre, 1e-12))
        top = max(0.0, float(logits.max()))
        weights = np.exp(logits - top)
        total = math.exp(-top) + float(weights.sum())
        out: dict[str | None, float] = {lang: float(w) / total for lang, w in zip(self.languages, weights)}
        out[None] = math.exp(-top) / total
        return out

    def probabilities(self, features: np.ndarray, whisper: dict[str, float]) -> dict[str, float]:
        """One distribution over languages, largest first: the router's languages with their
        probabilities, "none of these" shared out over the others in proportion to Whisper's LID."""
        scores = self.scores(features)
        other = scores.pop(None)
        out = {code: p for code, p in scores.items() if code is not None}
        rest = {code: p for code, p in whisper.items() if code not in out}
        mass = sum(rest.values())
        for code, p in rest.items():
            out[code] = other * p / mass if mass > 0 else 0.0
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def routing_accuracy(
    profiles: Sequence[RouterProfile], language: str, features: np.ndarray, threshold: float = 0.5
) -> float | None:
    """Share of clips (rows of `features`) in `language` that a router over `profiles` sends
    to that language with at least `threshold`; None without enough languages to route."""
    if len(profiles) < MIN_LANGUAGES or not len(features):
        return None
    router = Router(profiles)
    hits = 0
    for row in features:
        scores = router.scores(row)
        hits += scores.get(language, 0.0) >= max(threshold, max(scores.values()))
    return hits / len(features)


def load_profiles(paths: dict[str, Path]) -> list[RouterProfile]:
    """The usable profiles among `paths` (language -> router.safetensors)."""
    profiles = []
    for language, path in paths.items():
        profile = RouterProfile.load(path)
        if profile is not None and profile.language == language:
            profiles.append(profile)
    return profiles


# --- profiles of the shipped adapters --------------------------------------------------


def _manifest_rows(manifest_dir: Path) -> list[dict]:
    """The entries of `manifest_dir/manifest.jsonl` (the shared speech sets' format)."""
    lines = (manifest_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def write_profiles_from_manifest(manifest_dir: Path, adapters_dir: Path, decoder: WindowDecoder) -> list[Path]:
    """Write the profile of every adapter in `adapters_dir` from the real-speech clips of its
    language in `manifest_dir/manifest.jsonl` (PROFILE_CLIPS of them at most)."""
    from .audio import load_audio

    rows = _manifest_rows(manifest_dir)
    written = []
    for folder in sorted(p for p in adapters_dir.iterdir() if (p / META_FILE).is_file()):
        language = json.loads((folder / META_FILE).read_text(encoding="utf-8"))["language"]
        paths = {r["id"]: manifest_dir / r["path"] for r in rows if r["language"] == language and not r.get("synthetic")}
        chosen = profile_sample(paths)
        if chosen:
            written.append(write_router_profile(folder, decoder, (load_audio(paths[cid]) for cid in chosen)))
    return written


def write_router_reports(manifest_dir: Path, adapters_dir: Path, decoder: WindowDecoder) -> dict[str, float | None]:
    """Measure, on the clips of `manifest_dir/manifest.jsonl`, how often the router over the
    profiles in `adapters_dir` recognises each adapter's language, and record it in the
    adapter's metadata as the trainer does (`training_data["router"]`)."""
    from dataclasses import replace

    from .adapter_meta import AdapterMeta
    from .audio import load_audio

    rows = _manifest_rows(manifest_dir)
    folders = sorted(p for p in adapters_dir.iterdir() if (p / ROUTER_FILE).is_file() and (p / META_FILE).is_file())
    metas = {folder: AdapterMeta.load(folder) for folder in folders}
    profiles = load_profiles({meta.language: folder / ROUTER_FILE for folder, meta in metas.items()})
    found: dict[str, float | None] = {}
    for folder, meta in metas.items():
        paths = [manifest_dir / r["path"] for r in rows if r["language"] == meta.language]
        features = clip_features(decoder, (load_audio(path) for path in paths)) if paths else np.zeros((0, 1))
        found[meta.name] = routing_accuracy(profiles, meta.language, features)
        report = {"languages": sorted(p.language for p in profiles), "dev_clips": len(paths),
                  "dev_accuracy": found[meta.name], "dev_set": manifest_dir.name}
        replace(meta, training_data={**meta.training_data, "router": report}).save(folder)
    return found


if __name__ == "__main__":  # python -m lorawhisper_app.core.router [TRAIN_DIR [ADAPTERS_DIR [DEV_DIR]]]
    import sys

    from .adapter_store import bundled_adapter_dir
    from .backbone import load_backbone
    from .decoding import SpecialTokens

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[2]
    speech = root.parent / "shared" / "data" / "speech"
    train = Path(sys.argv[1]) if len(sys.argv) > 1 else speech / "train"
    adapters = Path(sys.argv[2]) if len(sys.argv) > 2 else bundled_adapter_dir()
    dev = Path(sys.argv[3]) if len(sys.argv) > 3 else speech / "dev"
    backbone = load_backbone(None, "cpu")
    tokens = SpecialTokens.from_model(backbone.model, backbone.processor.tokenizer)
    bare = WindowDecoder(backbone.model, tokens, backbone.compute.encoder_autocast)
    for written in write_profiles_from_manifest(train, adapters, bare):
        print(written)
    for name, accuracy in write_router_reports(dev, adapters, bare).items():
        print(f"{name}: {accuracy} of its language's clips in {dev} recognised")
