"""How close a new language is to the languages that already have adapters.

Whisper's language identification (adapters off), averaged over a sample of the new
data, gives the new language's LID profile. An adapter's own profile is stored in its
metadata when it is trained (`training_data.lid_profile`); an adapter without one is
taken to sit on its decode token alone. Similarity is the Bhattacharyya coefficient of
the two profiles (sum of sqrt(p*q), 1 for identical ones). With one-hot profiles it
ranks languages exactly as the mean LID probability does, which is the paper's measure;
with real profiles it also tells apart adapters whose languages share a stand-in token
(Kinyarwanda and Luganda both decode with Swahili's).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..adapter_meta import LoraSpec
from ..adapter_store import AdapterInfo
from ..decoding import WindowDecoder
from ..features import window_features

PROFILE_SIZE = 20
SAMPLE_CLIPS = 32


@dataclass(frozen=True)
class Neighbour:
    language: str
    adapter: str
    similarity: float
    lora: LoraSpec  # the adapter's shape: a warm start needs the same rank and targets


def lid_sample(clip_ids: list[str], size: int = SAMPLE_CLIPS) -> list[str]:
    """A fixed sample of clips, independent of their order."""
    return sorted(clip_ids, key=lambda cid: hashlib.sha1(cid.encode()).hexdigest())[:size]


def mean_lid(
    decoder: WindowDecoder, audios: list[np.ndarray], batch_size: int = 16, before_batch: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Mean LID distribution of the clips (the caller turns adapters off), largest first.
    `before_batch` runs before each batch; it may raise to stop (a cancel)."""
    total: dict[str, float] = {}
    for start in range(0, len(audios), batch_size):
        if before_batch is not None:
            before_batch()
        feats = torch.cat([
            window_features(torch.from_numpy(a).to(decoder.device, torch.float32) / 32768.0)
            for a in audios[start : start + batch_size]
        ])
        for probs in decoder.language_probs(decoder.encode(feats)):
            for code, p in probs.items():
                total[code] = total.get(code, 0.0) + p
    mean = {code: p / len(audios) for code, p in total.items()}
    return dict(sorted(mean.items(), key=lambda kv: -kv[1]))


def profile(mean: dict[str, float]) -> dict[str, float]:
    """The top of a LID distribution, as stored in adapter metadata."""
    return {code: round(p, 5) for code, p in list(mean.items())[:PROFILE_SIZE]}


def adapter_profile(info: AdapterInfo) -> dict[str, float]:
    stored = info.meta.training_data.get("lid_profile")
    if isinstance(stored, dict) and stored:
        return {str(k): float(v) for k, v in stored.items()}
    return {info.meta.decode_token: 1.0}


def bhattacharyya(p: dict[str, float], q: dict[str, float]) -> float:
    return sum(math.sqrt(max(p.get(code, 0.0), 0.0) * max(w, 0.0)) for code, w in q.items())


def rank_neighbours(mean: dict[str, float], adapters: list[AdapterInfo], exclude: str) -> list[Neighbour]:
    """One entry per language that has an adapter (its preferred adapter), most similar first."""
    by_language: dict[str, Neighbour] = {}
    for info in adapters:
        if info.meta.language == exclude or info.meta.mixture:
            continue
        score = bhattacharyya(mean, adapter_profile(info))
        best = by_language.get(info.meta.language)
        if best is None or score > best.similarity:
            by_language[info.meta.language] = Neighbour(info.meta.language, info.name, score, info.meta.lora)
    return sorted(by_language.values(), key=lambda n: (-n.similarity, n.language))


def moe_weights(neighbours: list[Neighbour], k: int) -> dict[str, float]:
    """Adapter name -> weight for the top-k neighbours, weights normalised to sum to 1."""
    top = neighbours[:k]
    total = sum(n.similarity for n in top)
    if not top or total <= 0:
        return {}
    return {n.adapter: n.similarity / total for n in top}
