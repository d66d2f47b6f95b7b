"""The CTranslate2 reader and weight mapping, round-tripped through CTranslate2's own converter.

A tiny random Whisper is converted to CTranslate2 by ctranslate2's converter, read back
by our reader and mapped to a transformers state dict: every tensor must come back
bit for bit. The real backbone's conversion is checked in test_conversion.py.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2")

from lorawhisper_app.core.backbone import builtin_sources  # noqa: E402
from lorawhisper_app.core.ct2_convert import read_ct2_model, whisper_config, whisper_state_dict  # noqa: E402
from lorawhisper_app.core.errors import BackboneError  # noqa: E402
from tiny_whisper import make_tiny_whisper  # noqa: E402


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    root = tmp_path_factory.mktemp("ct2")
    model = make_tiny_whisper(seed=3)
    hf_dir = root / "hf"
    model.save_pretrained(hf_dir)
    _, meta_dir = builtin_sources()
    for name in ("tokenizer.json",):
        shutil.copy(meta_dir / name, hf_dir / name)
    (hf_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "WhisperTokenizer"}))
    out = root / "ct2"
    ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(out), quantization="float32")
    return model, out


def test_round_trip_is_bit_exact(tiny_ct2: tuple[torch.nn.Module, Path]) -> None:
    model, out = tiny_ct2
    with open(out / "model.bin", "rb") as f:
        ct2 = read_ct2_model(f)
    config = whisper_config(ct2, {"suppress_ids": [], "suppress_ids_begin": [220, 50257]})
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (64, 2, 2)
    assert config.encoder_attention_heads == 2 and config.encoder_ffn_dim == 128
    state = whisper_state_dict(ct2, config)
    expected = {k: v for k, v in model.state_dict().items() if k != "proj_out.weight"}
    assert set(state) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def test_truncated_model_bin_is_a_clear_error(tiny_ct2: tuple[torch.nn.Module, Path]) -> None:
    _, out = tiny_ct2
    data = (out / "model.bin").read_bytes()
    with pytest.raises(BackboneError, match="truncated CTranslate2 model file"):
        read_ct2_model(io.BytesIO(data[: len(data) // 2]), source="half.bin")


def test_unknown_binary_version_is_refused() -> None:
    with pytest.raises(BackboneError, match="unsupported CTranslate2 binary version 99"):
        read_ct2_model(io.BytesIO((99).to_bytes(4, "little")), source="x.bin")
