"""Automatic routing on the dev sets: the router against Whisper's own LID, and what it costs.

    python -m lorawhisper_app.benchmarks.routing_bench [--dev DIR] [--adapters DIR] [--per-language N]

For every dev clip (first 30 s, bare backbone) the engine's own auto-mode identification runs
once, with the installed adapters' router profiles; the route is then chosen as `--language
auto` chooses it (threshold 0.5) for several adapter stores over the same clips:

- all adapters installed: a clip of a shipped language must go to its adapter; FLEURS clips
  (real speech, no adapter) to the bare backbone with their own language token; synthetic
  clips (no adapter) to the bare backbone;
- leave-one-out: for each shipped language, its adapter removed from the store; its clips
  must go to the bare backbone.

Each row gives the router's rate and, for comparison, the rate of routing by Whisper's LID
top-1 (the old auto mode). Timing: on a sample of clips, interleaved, Whisper's LID alone
(bare encoder + one decoder step) against the engine's identification with the router
(same, plus the feature hooks and the router); medians per file. Also timed: assembling
the router from the store. "live" checks the live session's identification, which encodes
an utterance with a few seconds of padding instead of a whole window, on a few clips per
language.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
import torch

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.features import N_SAMPLES
from lorawhisper_app.core.live import encode_prefix
from lorawhisper_app.core.results import Route
from lorawhisper_app.core.router import FeatureTap
from lorawhisper_app.core.routing import RoutingOptions

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DEV = REPO.parent / "shared" / "data" / "speech" / "dev"
LIVE_CLIPS_PER_LANGUAGE = 5


@dataclass
class Clip:
    id: str
    language: str
    group: str  # "shipped", "fleurs" or "synthetic"
    features: np.ndarray
    whisper: dict[str, float]


def _rows(dev: Path, per_language: int | None) -> list[dict]:
    rows = [json.loads(line) for line in (dev / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    if per_language:
        seen: dict[tuple[str, bool], int] = defaultdict(int)
        kept = []
        for row in rows:
            key = (row["language"], bool(row.get("synthetic")), row["id"].startswith("fleurs"))
            if seen[key] < per_language:
                seen[key] += 1
                kept.append(row)
        rows = kept
    return rows


def _group(row: dict, shipped: set[str]) -> str:
    if row.get("synthetic"):
        return "synthetic"
    return "shipped" if row["language"] in shipped else "fleurs"


def _right(route: Route, clip: Clip, adapter: str | None) -> bool:
    """The right route: the language's adapter, else the bare backbone (FLEURS: with its own token)."""
    if adapter is not None:
        return route.adapters == {adapter: 1.0}
    if clip.group == "fleurs":
        return not route.adapters and route.decode_token == clip.language
    return not route.adapters


def _store_without(adapters: Path, language: str | None, into: Path) -> AdapterStore:
    """A store of the adapters in `adapters`, less those serving `language` (links, no copies)."""
    into.mkdir()
    for folder in sorted(adapters.iterdir()):
        meta = folder / "lorawhisper.json"
        if meta.is_file() and json.loads(meta.read_text(encoding="utf-8"))["language"] != language:
            (into / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return AdapterStore(None, into)


def _rates(engine: Engine, clips: list[Clip], adapter_of: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """Per language: (clips, right with the router, right with Whisper's top-1) under engine.store."""
    options = RoutingOptions()
    router = engine.router()
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for clip in clips:
        adapter = adapter_of.get(clip.language)
        probs = router.probabilities(clip.features, clip.whisper) if router else clip.whisper
        counts = out[f"{clip.group}:{clip.language}"]
        counts[0] += 1
        counts[1] += _right(engine.route(options, probs), clip, adapter)
        counts[2] += _right(engine.route(options, clip.whisper), clip, adapter)
    return {key: (n, a, b) for key, (n, a, b) in out.items()}


def _print_block(title: str, rates: dict[str, tuple[int, int, int]], keys: list[str]) -> None:
    print(f"\n{title}")
    print(f"  {'clips':<22}{'n':>5}  {'router':>8}  {'Whisper LID':>11}")
    for key in keys:
        if key in rates:
            n, router, whisper = rates[key]
            print(f"  {key:<22}{n:>5}  {router / n:>8.1%}  {whisper / n:>11.1%}")


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--adapters", type=Path, default=bundled_adapter_dir())
    parser.add_argument("--per-language", type=int, default=None, help="at most N clips per language and kind")
    parser.add_argument("--timing-clips", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="routing-bench-") as tmp:
        store = _store_without(args.adapters, None, Path(tmp) / "all")
        engine = Engine(device="cpu", store=store, threads=args.threads)
        infos = [i for i in store.list() if i.compatible_with(engine.fingerprint)]
        adapter_of = {i.meta.language: i.name for i in infos}
        shipped = set(adapter_of)
        t0 = perf_counter()
        engine.router()
        assemble_ms = (perf_counter() - t0) * 1000
        print(f"adapters: {', '.join(sorted(adapter_of))}; router over {', '.join(engine.router().languages)}; "
              f"CPU, {args.threads} thread(s), compute {engine.backbone.compute.name}")

        rows = _rows(args.dev, args.per_language)
        clips: list[Clip] = []
        audio_of: dict[str, np.ndarray] = {}
        for index, row in enumerate(rows):
            audio = load_audio(args.dev / row["path"])[:N_SAMPLES]
            with FeatureTap(engine.backbone.model) as tap:
                found = engine.identify(audio)
            clip = Clip(row["id"], row["language"], _group(row, shipped), tap.pooled([len(audio)])[0], found.whisper)
            clips.append(clip)
            if clip.group != "synthetic":
                audio_of[clip.id] = audio
            if index % 100 == 0:
                print(f"  identified {index}/{len(rows)}", flush=True)

        rates = _rates(engine, clips, adapter_of)
        keys = sorted(rates, key=lambda k: (k.split(":")[0] != "shipped", k.split(":")[0], k))
        _print_block("All adapters installed: right route (adapter, or bare backbone where none)", rates, keys)

        loo: dict[str, tuple[int, int, int]] = {}
        for language in sorted(shipped):
            engine.store = _store_without(args.adapters, language, Path(tmp) / f"without-{language}")
            own = [c for c in clips if c.language == language and c.group == "shipped"]
            loo[f"without {language}"] = _rates(engine, own, {})[f"shipped:{language}"]
        engine.store = store
        _print_block("Leave-one-out: the language's adapter removed; right = bare backbone", loo, list(loo))

        # Timing on the same clips, interleaved (which goes first alternates): Whisper's LID alone,
        # and the engine's identification with the router; then the router's own parts alone.
        sample = [c for c in clips if c.id in audio_of][:: max(1, len(audio_of) // args.timing_clips)][: args.timing_clips]
        engine.identify(audio_of[sample[0].id])  # warm-up
        plain, routed, lookup, scoring = [], [], [], []
        for index, clip in enumerate(sample):
            audio = audio_of[clip.id]
            runs = [("plain", lambda: engine.language_probabilities(audio)), ("routed", lambda: engine.identify(audio))]
            for name, run in runs if index % 2 == 0 else runs[::-1]:
                t0 = perf_counter()
                run()
                (plain if name == "plain" else routed).append(perf_counter() - t0)
            t0 = perf_counter()
            router = engine.router()
            t1 = perf_counter()
            router.probabilities(clip.features, clip.whisper)
            t2 = perf_counter()
            lookup.append(t1 - t0)
            scoring.append(t2 - t1)
        added = _ms([b - a for a, b in zip(plain, routed)])
        print(f"\nTime per file (median of {len(sample)}, CPU, interleaved): Whisper LID {_ms(plain):.0f} ms, "
              f"with the router {_ms(routed):.0f} ms, added {added:+.1f} ms per file (paired median); of which "
              f"finding the installed profiles {_ms(lookup):.1f} ms and scoring {_ms(scoring):.2f} ms; "
              f"assembling the router when the adapters change: {assemble_ms:.0f} ms")

        # Live: identification from a short encoding of the whole utterance.
        live: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        taken: dict[str, int] = defaultdict(int)
        for clip in clips:
            if clip.id not in audio_of or taken[clip.language] >= LIVE_CLIPS_PER_LANGUAGE:
                continue
            taken[clip.language] += 1
            found = engine.identify(audio_of[clip.id], lambda a: encode_prefix(engine.decoder, a))
            route = engine.route(RoutingOptions(), found.probabilities)
            live[f"{clip.group}:{clip.language}"][0] += 1
            live[f"{clip.group}:{clip.language}"][1] += _right(route, clip, adapter_of.get(clip.language))
        print("\nLive session identification (short encoding), right route: " + ", ".join(
            f"{key.split(':')[1]} {right}/{n}" for key, (n, right) in sorted(live.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
