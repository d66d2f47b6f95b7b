"""Whisper's decoder, one step at a time, without the transformers call machinery.

Greedy decoding runs the decoder once per token on a single position. Through the
transformers forward each step also builds cache objects, a causal-mask decision, output
dataclasses and config lookups: without them a step of Whisper base took 5.72 ms instead
of 6.31 ms on this CPU (interleaved, same run). This runs the same modules (so adapters,
merged or not, and the int8 linear layers apply as they do there) and the same tensor
operations in the same order, so the logits are the same bit for bit
(`tests/test_decoder_steps.py` holds it to that on real clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers import WhisperForConditionalGeneration


@dataclass
class StepCache:
    """Keys and values per decoder layer: of the tokens so far, and of one encoding."""

    cross: list[tuple[torch.Tensor, torch.Tensor]]
    own: list[tuple[torch.Tensor, torch.Tensor] | None]
    length: int = 0


class DecoderSteps:
    def __init__(self, model: WhisperForConditionalGeneration) -> None:
        self.decoder = model.model.decoder
        config = model.config
        self.heads = config.decoder_attention_heads
        self.head_dim = config.d_model // self.heads

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2).contiguous()

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).contiguous().reshape(x.shape[0], x.shape[2], -1).contiguous()

    def start(self, encoding: torch.Tensor) -> StepCache:
        """The cross-attention keys and values of `encoding`, computed once per window."""
        cross = [
            (self._split(layer.encoder_attn.k_proj(encoding)), self._split(layer.encoder_attn.v_proj(encoding)))
            for layer in self.decoder.layers
        ]
        return StepCache(cross, [None] * len(cross))

    def __call__(self, ids: torch.Tensor, cache: StepCache) -> torch.Tensor:
        """Hidden states (after the final layer norm) of `ids` (batch x new tokens), which
        follow the `cache.length` tokens already in `cache`; the cache takes them in."""
        decoder = self.decoder
        count = ids.shape[1]
        causal = count > 1  # several new tokens attend causally among themselves (a prompt)
        if causal and cache.length:  # is_causal aligns the mask to the top left: an empty cache only
            raise ValueError("a multi-token step must come first")
        hidden = decoder.embed_tokens(ids) + decoder.embed_positions.weight[cache.length : cache.length + count]
        for index, layer in enumerate(decoder.layers):
            residual = hidden
            hidden = layer.self_attn_layer_norm(hidden)
            attention = layer.self_attn
            query = self._split(attention.q_proj(hidden) * attention.scaling)
            key, value = self._split(attention.k_proj(hidden)), self._split(attention.v_proj(hidden))
            past = cache.own[index]
            if past is not None:
                key, value = torch.cat([past[0], key], dim=2), torch.cat([past[1], value], dim=2)
            cache.own[index] = (key, value)
            out = F.scaled_dot_product_attention(query, key, value, scale=1.0, is_causal=causal)
            hidden = residual + attention.out_proj(self._merge(out))

            residual = hidden
            hidden = layer.encoder_attn_layer_norm(hidden)
            attention = layer.encoder_attn
            query = self._split(attention.q_proj(hidden) * attention.scaling)
            key, value = cache.cross[index]
            out = F.scaled_dot_product_attention(query, key, value, scale=1.0)
            hidden = residual + attention.out_proj(self._merge(out))

            residual = hidden
            hidden = layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
            hidden = residual + hidden
        cache.length += count
        return decoder.layer_norm(hidden)
