"""Named peft LoRA adapters on one frozen backbone, applied by merging.

Adapters load as named peft adapters. Their LoRA layers stay disabled in the forward
pass; instead the active mixture (one adapter, or several with weights for LoRA MoE)
is merged into the wrapped linear weights: W = W0 + sum_i w_i * B_i A_i * scale_i.
The original tensors W0 are kept, not copied, and put back for the bare backbone, so it
is restored bit for bit and decoding pays no adapter overhead. Merged weights of recent
mixtures are cached (within a byte budget), so switching between them swaps tensors
instead of recomputing (2 ms against 250 ms for Whisper base); each adapter is merged
once when it loads, and loading another keeps what is cached. In a layer that computes
in int8 (see fast_linear) only the packed int8 copy carries the mixture: its float
weight, which that layer's forward pass never reads, stays the backbone's, so a cached
mixture holds 87 MiB instead of 171 MiB for Whisper base.
`unmerged` mode runs peft's own LoRA forward instead (for comparison and benchmarks).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import WhisperForConditionalGeneration

from .adapter_store import WEIGHTS_FILE, lora_matrix_shapes
from .errors import AdapterError
from .fast_linear import is_int8, repack

Mixture = dict[str, float]
# Per LoRA layer: the merged float weight, or the merged packed int8 copy where the layer
# computes in int8 (its float weight then stays the backbone's).
Merged = dict[LoraLayer, tuple[torch.Tensor, object | None]]

DEFAULT_CACHE_BYTES = 1 << 30


def _key(mixture: Mixture) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(mixture.items()))


class AdapterRuntime:
    def __init__(self, model: WhisperForConditionalGeneration, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.model = model  # the transformers model; peft injects its layers into it in place
        self._peft: PeftModel | None = None
        self._layers: list[LoraLayer] = []
        self._bare: Merged = {}
        self._cache: OrderedDict[tuple[tuple[str, float], ...], tuple[Merged, int]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self.active: Mixture = {}
        self.unmerged = False

    @property
    def loaded(self) -> list[str]:
        return [] if self._peft is None else list(self._peft.peft_config)

    def load(self, name: str, folder: Path) -> None:
        """Load a validated adapter folder (safetensors only) as the named adapter `name`."""
        if name in self.loaded:
            return
        self._check_shapes(folder / WEIGHTS_FILE)
        self.activate({})
        try:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(
                    self.model, str(folder), adapter_name=name, is_trainable=False, use_safetensors=True
                )
            else:
                self._peft.load_adapter(str(folder), adapter_name=name, is_trainable=False, use_safetensors=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise AdapterError(f"{folder}: could not load adapter {name!r}: {exc}") from exc
        self._layers = [m for m in self.model.modules() if isinstance(m, LoraLayer)]
        for layer in self._layers:
            layer.enable_adapters(False)
            if layer not in self._bare:
                base = layer.get_base_layer()
                self._bare[layer] = (base.weight.data, getattr(base, "_int8_packed", None))
        # Cached mixtures stay valid: they do not contain the new adapter, and a layer it
        # added has no entry in them, so it gets the backbone's weights there.
        self._merged({name: 1.0})

    def _check_shapes(self, weights: Path) -> None:
        """Refuse LoRA matrices that do not fit the backbone's layers, before peft sees them:
        peft registers an adapter before it copies the weights, so a failed copy left a
        half-loaded adapter behind (listed as loaded, with its B matrices at zero)."""
        layers = {name.replace(".base_layer", ""): m for name, m in self.model.named_modules() if isinstance(m, nn.Linear)}
        for module, (a, b) in lora_matrix_shapes(weights).items():
            layer = layers.get(module)
            if layer is None:
                raise AdapterError(f"{weights}: the backbone has no linear layer {module}: made for another model")
            if a[1] != layer.in_features or b[0] != layer.out_features:
                raise AdapterError(
                    f"{weights}: {module} is {a[1]} -> {b[0]} in the adapter but {layer.in_features} -> "
                    f"{layer.out_features} in the backbone: made for another model"
                )

    def unload(self, name: str) -> None:
        if name not in self.loaded:
            return
        self.activate({})
        self._cache.clear()
        if len(self.loaded) == 1:
            self.model = self._peft.unload()  # type: ignore[union-attr]
            self._peft = None
            self._layers = []
            self._bare.clear()
        else:
            self._peft.delete_adapter(name)  # type: ignore[union-attr]

    def _merged(self, mixture: Mixture) -> Merged:
        """Merged weights of `mixture` for every layer it touches, from the cache or computed."""
        key = _key(mixture)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key][0]
        merged: Merged = {}
        size = 0
        with torch.no_grad():
            for layer in self._layers:
                names = [n for n in mixture if n in layer.lora_A]
                if not names:
                    continue
                base = layer.get_base_layer()
                original = self._bare[layer][0]
                delta = sum(mixture[n] * layer.get_delta_weight(n).float() for n in names)
                weight = (original.float() + delta).to(original.dtype)
                if is_int8(base):
                    base.weight.data = weight
                    repack(base)
                    merged[layer] = (original, base._int8_packed)
                    base.weight.data, base._int8_packed = self._bare[layer]
                    size += weight.numel()  # one byte per weight
                else:
                    merged[layer] = (weight, None)
                    size += weight.numel() * weight.element_size()
        self._cache[key] = (merged, size)
        while len(self._cache) > 1 and sum(s for _, s in self._cache.values()) > self._cache_bytes:
            self._cache.popitem(last=False)
        return merged

    def activate(self, mixture: Mixture, *, unmerged: bool = False) -> None:
        """Make `mixture` (adapter name -> weight; empty: the bare backbone) the active one."""
        unknown = [n for n in mixture if n not in self.loaded]
        if unknown:
            raise AdapterError(f"adapter(s) not loaded: {', '.join(unknown)}")
        if unmerged and (len(mixture) > 1 or any(w != 1.0 for w in mixture.values())):
            raise AdapterError("unmerged mode runs one adapter at full weight")
        if mixture == self.active and unmerged == self.unmerged:
            return
        merged = self._merged(mixture) if mixture and not unmerged else {}
        for layer in self._layers:
            base = layer.get_base_layer()
            weight, packed = merged.get(layer, self._bare[layer])
            base.weight.data = weight
            if packed is not None:
                base._int8_packed = packed
            names = [n for n in mixture if n in layer.lora_A] if unmerged else []
            layer.enable_adapters(bool(names))
            if names:
                layer.set_adapter(names, inference_mode=True)
        self.active = dict(mixture)
        self.unmerged = unmerged
