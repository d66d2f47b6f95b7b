"""Training speed: one adapter trained end to end from a few minutes of real speech.

    python -m lorawhisper_app.benchmarks.train_bench --minutes 5 --language sw --device cpu

Runs `lorawhisper train` on about `--minutes` of the language's clips (a fixed subset; the
dev set is the trainer's own hold-out, as for a user's data) and prints the end-to-end time,
the training throughput (seconds of audio per second of training), peak memory, and, measured
in the same run on the same clips as the baseline, the throughput of forward passes alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SPEECH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"


def subset(manifest: Path, language: str, minutes: float, out: Path) -> tuple[Path, list[dict]]:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["language"] == language and not r.get("synthetic")]
    rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    kept, total = [], 0.0
    for row in rows:
        if total >= minutes * 60:
            break
        kept.append({**row, "path": str(manifest.parent / row["path"])})
        total += row["duration_s"]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    return out, kept


def forward_throughput(rows: list[dict], device: str, batch: int, repeats: int) -> float:
    """Audio seconds per second of no-grad forward passes (encoder and one decoder pass)."""
    from lorawhisper_app.core.audio import load_audio
    from lorawhisper_app.core.backbone import load_backbone
    from lorawhisper_app.core.features import window_features

    backbone = load_backbone(None, device, "float32")
    model = backbone.model
    audios = [load_audio(r["path"]) for r in rows[:batch]]
    feats = torch.cat([window_features(a) for a in audios]).to(backbone.device)
    ids = torch.full((len(audios), 32), model.config.decoder_start_token_id, device=backbone.device)
    seconds = sum(len(a) for a in audios) / 16000
    with torch.inference_mode():
        model(input_features=feats, decoder_input_ids=ids)  # warm-up
        began = time.perf_counter()
        for _ in range(repeats):
            model(input_features=feats, decoder_input_ids=ids)
        elapsed = time.perf_counter() - began
    return seconds * repeats / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="sw")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--speech", default=str(SPEECH))
    parser.add_argument("train_args", nargs="*", help="passed to lorawhisper train after --, e.g. -- --steps 4")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data, rows = subset(Path(args.speech) / "train" / "manifest.jsonl", args.language, args.minutes, Path(tmp) / "train.jsonl")
        minutes = sum(r["duration_s"] for r in rows) / 60
        command = [sys.executable, "-m", "lorawhisper_app.cli.main", "train", str(data), "--language", args.language,
                   "--device", args.device, "--no-install", "--run-dir", str(Path(tmp) / "run"), "--json",
                   "--remeasure", *args.train_args]  # a first run on this data: no figures kept from an earlier one
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.monotonic() - began
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return done.returncode
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        final = next(e for e in events if e["event"] == "done")
        report = next(e for e in events if e["event"] == "report")
        stats = final["data"]
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        baseline = forward_throughput(rows, device, batch=4, repeats=2)
    train_rate = stats["audio_seconds"] / stats["train_seconds"]
    print(f"data: {len(rows)} clips, {minutes:.1f} min ({report['train']['clips']} train, {report['dev']['clips']} dev)")
    print(f"end to end (decode, features, similarity, training, evaluations): {wall:.0f} s = {wall / 60:.1f} min")
    stages = {"reading the data": report["seconds"], **stats["timings"]}
    print("stages: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in stages.items()))
    print(f"training: {final['step']} steps, {stats['train_seconds']:.0f} s, {train_rate:.2f} audio s/s")
    print(f"baseline, same run: forward passes alone {baseline:.2f} audio s/s; training costs {baseline / train_rate:.1f}x a forward pass")
    print(f"peak memory: {stats['peak_memory_bytes'] / 2**30:.2f} GiB ({'GPU' if device.startswith('cuda') else 'process RSS'})")
    print(f"dev WER {stats['before']:.3f} -> {final['dev_wer']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
