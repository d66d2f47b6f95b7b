"""The cost of one dev evaluation during training, against transformers' own generate().

    python -m lorawhisper_app.benchmarks.dev_eval_bench --language ha --clips 40

Scores a language's dev clips twice, as a training run does before training (adapters off)
and after it (the shipped adapter attached through peft): with the trainer's evaluation
(`core/training/dev_eval.py`: token budget per clip, longest first, finished clips leave the
batch) and, as the baseline in the same run, with `model.generate()` at the same batch size
and a 160-token limit. Prints seconds, tokens decoded and dev WER for each.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.backbone import load_backbone
from lorawhisper_app.core.decoding import SpecialTokens
from lorawhisper_app.core.training.batches import Example, batch_features
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.datasets import pcm16
from lorawhisper_app.core.training.dev_eval import MAX_NEW_TOKENS, dev_wer, greedy_texts
from lorawhisper_app.core.training.lora_setup import attach

SPEECH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"


def dev_examples(speech: Path, language: str, clips: int) -> tuple[list[Example], list[str]]:
    manifest = speech / "dev" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["language"] == language and not r.get("synthetic")]
    rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    rows = rows[:clips] if clips else rows
    examples = []
    for row in rows:
        examples.append(Example(row["id"], pcm16(load_audio(manifest.parent / row["path"])), [], 0))
    return examples, [r["text"] for r in rows]


def generate_texts(model, examples, language: str, decode, batch: int, amp: torch.dtype | None) -> list[str]:  # noqa: ANN001
    """transformers' generate(), greedy, no timestamps, `batch` clips at a time."""
    texts = []
    autocast = torch.autocast(model.device.type, dtype=amp) if amp else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for start in range(0, len(examples), batch):
            feats = batch_features(examples[start : start + batch], model.config.num_mel_bins, model.device)
            out = model.generate(feats.to(model.dtype), language=language, task="transcribe", return_timestamps=False,
                                 max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
            texts += [decode(row.tolist()).strip() for row in out]
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="ha", help="a language with a shipped adapter")
    parser.add_argument("--clips", type=int, default=0, help="this many dev clips (0: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=0, help="clips per batch (default: the trainer's, 64 on a GPU, 4 on the CPU)")
    parser.add_argument("--speech", default=str(SPEECH))
    args = parser.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    backbone = load_backbone(None, device, "float32")
    model = backbone.model
    amp = torch.bfloat16 if model.device.type == "cuda" else None
    batch = args.batch or (64 if model.device.type == "cuda" else 4)
    tokens = SpecialTokens.from_model(model, backbone.processor.tokenizer)
    decode = lambda ids: backbone.processor.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        store = AdapterStore(bundled_adapter_dir(), Path(tmp))
        shipped = next((i for i in store.list() if i.meta.language == args.language), None)
    if shipped is None:
        parser.error(f"no shipped adapter for {args.language}")
    examples, references = dev_examples(Path(args.speech), args.language, args.clips)
    token = shipped.meta.decode_token
    seconds = sum(len(e.audio) for e in examples) / 16000
    print(f"{len(examples)} {args.language} dev clips, {seconds:.0f} s of audio; {device}, batch {batch}; "
          f"decoding with <|{token}|>")
    peft = attach(model, TrainConfig(language=args.language, name="bench"), warm=shipped, frozen=[])
    peft.eval()
    for label, context in (("adapter off", peft.disable_adapter), (f"adapter {shipped.name}", contextlib.nullcontext)):
        with context():
            began = time.perf_counter()
            ours = greedy_texts(model, examples, tokens, token, decode, batch_size=batch, autocast=amp)
            ours_s = time.perf_counter() - began
            began = time.perf_counter()
            theirs = generate_texts(model, examples, token, decode, batch, amp)
            theirs_s = time.perf_counter() - began
        ours_tokens = sum(len(backbone.processor.tokenizer.encode(t, add_special_tokens=False)) for t in ours)
        print(f"{label}: trainer's evaluation {ours_s:.1f} s (WER {dev_wer(references, ours):.3f}, ~{ours_tokens} text tokens); "
              f"generate() {theirs_s:.1f} s (WER {dev_wer(references, theirs):.3f}); ratio {ours_s / theirs_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
