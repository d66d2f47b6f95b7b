"""`--warm-rank K`: a warm start that copies only the K strongest directions of each layer's
update from the source adapter. Real backbone, the shipped Kinyarwanda adapter as source."""

from __future__ import annotations


import pytest
import torch
from safetensors.torch import load_file

from lorawhisper_app.core.adapter_store import WEIGHTS_FILE, AdapterInfo, AdapterStore, bundled_adapter_dir
from lorawhisper_app.core.backbone import LoadedBackbone, load_backbone
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.lora_setup import attach, strongest_directions, trainable_state


@pytest.fixture(scope="module")
def backbone() -> LoadedBackbone:
    return load_backbone(None, "cpu", "float32")


@pytest.fixture(scope="module")
def rw(tmp_path_factory: pytest.TempPathFactory) -> AdapterInfo:
    store = AdapterStore(bundled_adapter_dir(), tmp_path_factory.mktemp("user"))
    return next(i for i in store.list() if i.name == "rw")


def _truncated(b: torch.Tensor, a: torch.Tensor, keep: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(b.float() @ a.float(), full_matrices=False)
    return (u[:, :keep] * s[:keep]) @ vh[:keep]


def _pairs(state: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    return [(k, k.replace(".lora_A.", ".lora_B.")) for k in sorted(state) if ".lora_A." in k]


@pytest.mark.integration
@pytest.mark.parametrize("keep", [4, 0])
def test_the_new_adapter_starts_from_the_source_cut_to_its_strongest_directions(
    backbone: LoadedBackbone, rw: AdapterInfo, keep: int
) -> None:
    source = load_file(rw.path / WEIGHTS_FILE)
    peft = attach(backbone.model, TrainConfig(language="lg", name="new", warm_start="rw", warm_rank=keep), warm=rw, frozen=[])
    try:
        state = trainable_state(peft, "new")
    finally:
        peft.unload()
    pairs = _pairs(state)
    assert len(pairs) == 78  # q, k, v, fc1, fc2 of 6 encoder and 6 decoder layers (q, k, v twice there)
    for a_key, b_key in pairs:
        a, b = state[a_key].float(), state[b_key].float()
        if keep == 0:  # a plain warm start copies the source as it is
            assert torch.equal(a, source[a_key].float()) and torch.equal(b, source[b_key].float())
            continue
        want = _truncated(source[b_key], source[a_key], keep)
        assert torch.allclose(b @ a, want, rtol=0, atol=1e-4 * want.abs().max().item()), a_key
        assert not b[:, keep:].any(), "the other rank slots add nothing at the start"
        assert a[keep:].abs().sum() > 0, "and their A keeps peft's random initialisation"


def test_keeping_every_direction_reproduces_the_update_and_the_fresh_slots_stay() -> None:
    torch.manual_seed(0)
    source = {"x.lora_A.weight": torch.randn(6, 40), "x.lora_B.weight": torch.randn(30, 6)}
    fresh = {"x.lora_A.weight": torch.randn(6, 40), "x.lora_B.weight": torch.zeros(30, 6)}
    update = source["x.lora_B.weight"] @ source["x.lora_A.weight"]
    whole = strongest_directions(source, fresh, 6)
    assert torch.allclose(whole["x.lora_B.weight"] @ whole["x.lora_A.weight"], update, atol=1e-4)
    two = strongest_directions(source, fresh, 2)
    got = two["x.lora_B.weight"] @ two["x.lora_A.weight"]
    assert torch.allclose(got, _truncated(source["x.lora_B.weight"], source["x.lora_A.weight"], 2), atol=1e-4)
    assert torch.linalg.matrix_rank(got) == 2
    assert torch.equal(two["x.lora_A.weight"][2:], fresh["x.lora_A.weight"][2:])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(warm_start="rw", warm_rank=33), "--warm-rank must be between 0 and the rank, 32"),
        (dict(warm_start="rw", warm_rank=-1), "--warm-rank must be between 0 and the rank, 32"),
        (dict(warm_rank=4), "--warm-rank needs --warm-start"),
    ],
)
def test_a_warm_rank_that_cannot_work_is_refused(settings: dict, message: str) -> None:
    with pytest.raises(LoraWhisperError, match=message):
        TrainConfig(language="lg", name="lg", **settings)  # type: ignore[arg-type]
