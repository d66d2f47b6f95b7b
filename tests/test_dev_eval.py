"""The training run's dev evaluation decodes what plain greedy decoding would, within each
clip's token budget, however the clips are batched, ordered and dropped from the batch.

Real backbone, real dev clips, bare and with the shipped Swahili adapter attached through
peft as a training run attaches its adapters. The reference decodes one clip at a time and
runs the whole decoder again at every token (no cache, no batch).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lorawhisper_app.core.adapter_store import AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.backbone import LoadedBackbone, load_backbone
from lorawhisper_app.core.decoding import SpecialTokens
from lorawhisper_app.core.training.batches import Example, batch_features
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.datasets import pcm16
from lorawhisper_app.core.training.dev_eval import MAX_NEW_TOKENS, greedy_texts, token_budget
from lorawhisper_app.core.training.lora_setup import attach

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backbone() -> LoadedBackbone:
    return load_backbone(None, "cpu", "float32")


@pytest.fixture(scope="module")
def examples(speech_dev: Path) -> list[Example]:
    """Seven Yoruba and Swahili dev clips of 2.5 to 10 s, shuffled so that batches mix lengths."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    picked = [r for r in rows if r["language"] == "yo" and 1.5 < r["duration_s"] < 8][:4]
    picked += [r for r in rows if r["language"] == "sw" and r["duration_s"] < 10][:3]
    out = []
    for row in picked:
        out.append(Example(row["id"], pcm16(load_audio(speech_dev / row["path"])), [], 0))
    return [out[i] for i in (3, 0, 5, 1, 6, 2, 4)]


def _one_by_one(model: torch.nn.Module, ex: Example, tokens: SpecialTokens, prompt: list[int]) -> list[int]:
    feats = batch_features([ex], model.config.num_mel_bins, model.device)
    enc = model.model.encoder(feats).last_hidden_state
    ids = list(prompt)
    for _ in range(token_budget(len(ex.audio))):
        hidden = model.model.decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=enc, use_cache=False)
        logits = model.proj_out(hidden.last_hidden_state[0, -1]).float()
        logits[[t for t in tokens.suppress if t < logits.shape[0]]] = -torch.inf
        logits[tokens.eot + 1 :] = -torch.inf
        token = int(logits.argmax())
        if token == tokens.eot:
            break
        ids.append(token)
    return ids[len(prompt) :]


def test_budget_grows_with_duration_up_to_the_limit() -> None:
    assert token_budget(16000) < token_budget(5 * 16000) < MAX_NEW_TOKENS
    assert token_budget(30 * 16000) == MAX_NEW_TOKENS


@pytest.mark.parametrize("adapter", ["bare", "sw"])
def test_batched_decoding_equals_one_clip_at_a_time(
    backbone: LoadedBackbone, examples: list[Example], adapter: str, tmp_path: Path
) -> None:
    model = backbone.model
    tokens = SpecialTokens.from_model(model, backbone.processor.tokenizer)
    decode = lambda ids: backbone.processor.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    store = AdapterStore(bundled_adapter_dir(), tmp_path / "user")
    sw = next(i for i in store.list() if i.name == "sw")
    peft = attach(model, TrainConfig(language="rw", name="new"), warm=sw, frozen=[])
    try:
        peft.eval()
        with torch.inference_mode():
            if adapter == "bare":
                with peft.disable_adapter():
                    reference = [_one_by_one(model, ex, tokens, tokens.prompt("sw", False)) for ex in examples]
                    texts = greedy_texts(model, examples, tokens, "sw", decode, batch_size=3)
            else:
                reference = [_one_by_one(model, ex, tokens, tokens.prompt("sw", False)) for ex in examples]
                texts = greedy_texts(model, examples, tokens, "sw", decode, batch_size=3)
    finally:
        peft.unload()
    assert texts == [decode(ids).strip() for ids in reference]
    assert len({len(t) for t in texts}) > 3, texts  # the clips decode to different lengths
    if adapter == "bare":  # the bare backbone loops on some of these: the budget ends them
        assert any(len(ids) == token_budget(len(ex.audio)) for ids, ex in zip(reference, examples)), reference


@pytest.mark.parametrize("encoder_only", [True, False])
def test_encoder_only_autocast_leaves_the_decoder_in_float32(
    backbone: LoadedBackbone, examples: list[Example], encoder_only: bool
) -> None:
    """The CPU's dev evaluations autocast the encoder alone: bfloat16 decoder steps are slower there."""
    model = backbone.model
    tokens = SpecialTokens.from_model(model, backbone.processor.tokenizer)
    seen: dict[str, set[torch.dtype]] = {"encoder": set(), "decoder": set()}
    hooks = [
        part.layers[0].fc1.register_forward_hook(lambda _m, _i, out, name=name: seen[name].add(out.dtype))
        for name, part in (("encoder", model.model.encoder), ("decoder", model.model.decoder))
    ]
    try:
        greedy_texts(model, examples[:2], tokens, "sw", lambda ids: "", batch_size=2,
                     autocast=torch.bfloat16, encoder_only=encoder_only)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen["encoder"] == {torch.bfloat16}
    assert seen["decoder"] == ({torch.float32} if encoder_only else {torch.bfloat16})
