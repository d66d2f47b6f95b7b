"""Named peft LoRA adapters on one frozen backbone, applied by merging.

Adapters load as named peft adapters. Their LoRA layers stay disabled in the forward
pass; instead the active mixture (one adapter, or several with weights for LoRA MoE)
is merged into the wrapped linear weights: W = W0 + sum_i w_i * B_i A_i * scale_i.
The original tensors W0 are kept, not copied, and put back when the mixture changes,
so the bare backbone is restored bit for bit and decoding pays no adapter overhead.
`unmerged` mode runs peft's own LoRA forward instead (for comparison and benchmarks).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import WhisperForConditionalGeneration

from .errors import AdapterError

Mixture = dict[str, float]


class AdapterRuntime:
    def __init__(self, model: WhisperForConditionalGeneration) -> None:
        self.model = model  # the transformers model; peft injects its layers into it in place
        self._peft: PeftModel | None = None
        self._originals: dict[LoraLayer, torch.Tensor] = {}
        self.active: Mixture = {}
        self.unmerged = False

    @property
    def loaded(self) -> list[str]:
        return [] if self._peft is None else list(self._peft.peft_config)

    def load(self, name: str, folder: Path) -> None:
        """Load a validated adapter folder (safetensors only) as the named adapter `name`."""
        if name in self.loaded:
            return
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
        for layer in self._layers():
            layer.enable_adapters(False)
            self._originals.setdefault(layer, layer.get_base_layer().weight.data)

    def unload(self, name: str) -> None:
        if name not in self.loaded:
            return
        self.activate({})
        if len(self.loaded) == 1:
            self.model = self._peft.unload()  # type: ignore[union-attr]
            self._peft = None
            self._originals.clear()
        else:
            self._peft.delete_adapter(name)  # type: ignore[union-attr]

    def _layers(self) -> list[LoraLayer]:
        return [m for m in self.model.modules() if isinstance(m, LoraLayer)]

    def activate(self, mixture: Mixture, *, unmerged: bool = False) -> None:
        """Make `mixture` (adapter name -> weight; empty: the bare backbone) the active one."""
        unknown = [n for n in mixture if n not in self.loaded]
        if unknown:
            raise AdapterError(f"adapter(s) not loaded: {', '.join(unknown)}")
        if unmerged and len(mixture) > 1:
            raise AdapterError("unmerged mode runs one adapter at a time")
        if mixture == self.active and unmerged == self.unmerged:
            return
        with torch.no_grad():
            for layer in self._layers():
                base = layer.get_base_layer()
                original = self._originals[layer]
                base.weight.data = original
                names = [n for n in mixture if n in layer.lora_A]
                if unmerged:
                    layer.enable_adapters(bool(names))
                    if names:
                        layer.set_adapter(names, inference_mode=True)
                    continue
                layer.enable_adapters(False)
                if names:
                    delta = sum(mixture[n] * layer.get_delta_weight(n).float() for n in names)
                    base.weight.data = (original.float() + delta).to(original.dtype)
        self.active = dict(mixture)
        self.unmerged = unmerged
