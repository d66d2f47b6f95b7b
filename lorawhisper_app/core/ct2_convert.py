"""Read a CTranslate2 Whisper `model.bin` and turn it into transformers weights.

The CTranslate2 binary (format version 6) is: a uint32 version, the spec name, a uint32
revision, a uint32 count of variables, each as (name, uint8 rank, uint32 dims, uint8
dtype id, uint32 byte count, raw bytes), then a uint32 count of aliases (name, target).
Strings are a uint16 length (including a trailing NUL) followed by UTF-8 bytes.

CTranslate2 fuses self-attention q/k/v into one [3d, d] matrix and cross-attention k/v
into one [2d, d] matrix, stores zeros for the missing k_proj bias, and keeps layer norms
as gamma/beta. The output projection is an alias of the decoder embeddings.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterable

import numpy as np
import torch
from transformers import WhisperConfig

from .errors import BackboneError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_BINARY_VERSIONS = (5, 6)


@dataclass
class CT2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]


class _Reader:
    def __init__(self, stream: BinaryIO, source: str) -> None:
        self.stream = stream
        self.source = source

    def read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise BackboneError(f"{self.source}: truncated CTranslate2 model file")
        return data

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("H")
        return self.read(length)[:-1].decode("utf-8")


def read_ct2_model(stream: BinaryIO, source: str = "model.bin") -> CT2Model:
    """Parse a CTranslate2 model binary from a readable stream."""
    reader = _Reader(stream, source)
    version = reader.unpack("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise BackboneError(f"{source}: unsupported CTranslate2 binary version {version}")
    spec = reader.string()
    revision = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = [reader.unpack("I") for _ in range(reader.unpack("B"))]
        dtype_id = reader.unpack("B")
        if dtype_id not in _DTYPES:
            raise BackboneError(f"{source}: variable {name} has unsupported dtype id {dtype_id}")
        raw = reader.read(reader.unpack("I"))
        variables[name] = np.frombuffer(raw, dtype=_DTYPES[dtype_id]).reshape(shape)
    aliases = {}
    for _ in range(reader.unpack("I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    return CT2Model(spec, revision, variables, aliases)


def _layer_count(model: CT2Model, side: str) -> int:
    pattern = re.compile(rf"{side}/layer_(\d+)/")
    return len({m.group(1) for n in model.variables if (m := pattern.match(n))})


def whisper_config(model: CT2Model, ct2_config: dict) -> WhisperConfig:
    """A transformers WhisperConfig whose shapes and special tokens match the CT2 model."""
    if model.spec != "WhisperSpec":
        raise BackboneError(f"model.bin holds a {model.spec}, not a Whisper model")
    vocab, d_model = model.get("decoder/embeddings/weight").shape
    ffn = model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]
    n_mels = model.get("encoder/conv1/weight").shape[1]
    heads = int(model.get("encoder/num_heads"))
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(n_mels),
        d_model=int(d_model),
        encoder_layers=_layer_count(model, "encoder"),
        decoder_layers=_layer_count(model, "decoder"),
        encoder_attention_heads=heads,
        decoder_attention_heads=int(model.get("decoder/num_heads")),
        encoder_ffn_dim=int(ffn),
        decoder_ffn_dim=int(ffn),
        max_source_positions=model.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=model.get("decoder/position_encodings/encodings").shape[0],
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, 50257])),
        decoder_start_token_id=50258,
        bos_token_id=50257,
        eos_token_id=50257,
        pad_token_id=50257,
        tie_word_embeddings=True,
    )


def _linear(prefix: str, weight: np.ndarray, bias: np.ndarray | None) -> Iterable[tuple[str, np.ndarray]]:
    yield f"{prefix}.weight", weight
    if bias is not None:
        yield f"{prefix}.bias", bias


def _attention(model: CT2Model, src: str, dst: str, fused_qkv: bool) -> Iterable[tuple[str, np.ndarray]]:
    """Split CT2's fused projections into q/k/v; Whisper's k_proj has no bias."""
    def w(i: int) -> tuple[np.ndarray, np.ndarray]:
        return model.get(f"{src}/linear_{i}/weight"), model.get(f"{src}/linear_{i}/bias")

    if fused_qkv:
        weight, bias = w(0)
        q, k, v = np.split(weight, 3)
        qb, _, vb = np.split(bias, 3)
        out = w(1)
    else:
        q, qb = w(0)
        k, v = np.split(w(1)[0], 2)
        _, vb = np.split(w(1)[1], 2)
        out = w(2)
    yield from _linear(f"{dst}.q_proj", q, qb)
    yield from _linear(f"{dst}.k_proj", k, None)
    yield from _linear(f"{dst}.v_proj", v, vb)
    yield from _linear(f"{dst}.out_proj", *out)


def _norm(model: CT2Model, src: str, dst: str) -> Iterable[tuple[str, np.ndarray]]:
    yield f"{dst}.weight", model.get(f"{src}/gamma")
    yield f"{dst}.bias", model.get(f"{src}/beta")


def _state_items(model: CT2Model, config: WhisperConfig) -> Iterable[tuple[str, np.ndarray]]:
    for side in ("encoder", "decoder"):
        root = f"model.{side}"
        yield f"{root}.embed_positions.weight", model.get(f"{side}/position_encodings/encodings")
        yield from _norm(model, f"{side}/layer_norm", f"{root}.layer_norm")
        layers = config.encoder_layers if side == "encoder" else config.decoder_layers
        for i in range(layers):
            src, dst = f"{side}/layer_{i}", f"{root}.layers.{i}"
            yield from _attention(model, f"{src}/self_attention", f"{dst}.self_attn", fused_qkv=True)
            yield from _norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            if side == "decoder":
                yield from _attention(model, f"{src}/attention", f"{dst}.encoder_attn", fused_qkv=False)
                yield from _norm(model, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
            yield f"{dst}.fc1.weight", model.get(f"{src}/ffn/linear_0/weight")
            yield f"{dst}.fc1.bias", model.get(f"{src}/ffn/linear_0/bias")
            yield f"{dst}.fc2.weight", model.get(f"{src}/ffn/linear_1/weight")
            yield f"{dst}.fc2.bias", model.get(f"{src}/ffn/linear_1/bias")
            yield from _norm(model, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    for conv in ("conv1", "conv2"):
        yield f"model.encoder.{conv}.weight", model.get(f"encoder/{conv}/weight")
        yield f"model.encoder.{conv}.bias", model.get(f"encoder/{conv}/bias")
    yield "model.decoder.embed_tokens.weight", model.get("decoder/embeddings/weight")


def whisper_state_dict(model: CT2Model, config: WhisperConfig) -> dict[str, torch.Tensor]:
    """transformers state dict (without the tied `proj_out`), in the CT2 model's dtype."""
    return {name: torch.from_numpy(np.array(a)) for name, a in _state_items(model, config)}
