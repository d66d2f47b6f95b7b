"""The step-by-step decoder gives the transformers decoder's logits bit for bit.

Teacher-forced over the greedy tokens of real dev clips, on the real built-in backbone:
bare, with a shipped adapter merged (the default) and with it unmerged (peft's LoRA
forward), and batched for language identification.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.decoder_steps import DecoderSteps
from lorawhisper_app.core.engine import Engine

pytestmark = pytest.mark.integration
LANGUAGES = ("en", "sw", "yo", "rw")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def clips(speech_dev: Path) -> dict[str, Path]:
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    found: dict[str, Path] = {}
    for row in rows:
        if row["synthetic"] is None and row["language"] in LANGUAGES and row["language"] not in found:
            found[row["language"]] = speech_dev / row["path"]
    return found


def _reference_logits(engine: Engine, enc: torch.Tensor, tokens: list[int], prompt: list[int]) -> list[torch.Tensor]:
    """The transformers decoder with its own cache: the prompt at once, then one token a step."""
    model = engine.decoder.model
    with torch.inference_mode():
        out = model.model.decoder(input_ids=torch.tensor([prompt]), encoder_hidden_states=enc, use_cache=True)
        logits, cache = [model.proj_out(out.last_hidden_state[0]).float()], out.cache
        for token in tokens:
            out = model.model.decoder(input_ids=torch.tensor([[token]]), encoder_hidden_states=enc, cache=cache, use_cache=True)
            logits.append(model.proj_out(out.last_hidden_state[0]).float())
            cache = out.cache
    return logits


def _step_logits(engine: Engine, enc: torch.Tensor, tokens: list[int], prompt: list[int]) -> list[torch.Tensor]:
    model = engine.decoder.model
    steps = DecoderSteps(model)
    with torch.inference_mode():
        cache = steps.start(enc)
        logits = [model.proj_out(steps(torch.tensor([prompt]), cache)[0]).float()]
        logits += [model.proj_out(steps(torch.tensor([[token]]), cache)[0]).float() for token in tokens]
    return logits


@pytest.mark.parametrize("adapters", ["bare", "sw merged", "sw unmerged"])
def test_same_logits_as_the_transformers_decoder(engine: Engine, clips: dict[str, Path], adapters: str) -> None:
    with engine.lock:
        engine.use_adapters({} if adapters == "bare" else {"sw": 1.0}, unmerged=adapters.endswith("unmerged"))
        try:
            for language, path in clips.items():
                enc = engine.decoder.encode_audio(load_audio(path))
                prompt = engine.tokens.prompt(language if language in engine.decoder.tokens.lang_ids else None, timestamps=True)
                tokens = engine.decoder.decode(enc, prompt).tokens
                assert len(tokens) > 3, language
                reference = _reference_logits(engine, enc, tokens, prompt)
                ours = _step_logits(engine, enc, tokens, prompt)
                assert len(ours) == len(reference)
                for step, (a, b) in enumerate(zip(reference, ours)):
                    assert torch.equal(a, b), (language, step, (a - b).abs().max().item())
        finally:
            engine.use_adapters({})


def test_batched_language_identification_matches(engine: Engine, clips: dict[str, Path]) -> None:
    with engine.lock:
        engine.use_adapters({})
        enc = torch.cat([engine.decoder.encode_audio(load_audio(path)) for path in clips.values()])
    model, tokens = engine.decoder.model, engine.decoder.tokens
    ids = torch.full((enc.shape[0], 1), tokens.sot)
    with torch.inference_mode():
        reference = model.proj_out(model.model.decoder(input_ids=ids, encoder_hidden_states=enc).last_hidden_state[:, -1])
        steps = DecoderSteps(model)
        ours = model.proj_out(steps(ids, steps.start(enc))[:, -1])
    assert torch.equal(reference, ours)
    top = [next(iter(p)) for p in engine.decoder.language_probs(enc)]
    assert top[list(clips).index("en")] == "en"
