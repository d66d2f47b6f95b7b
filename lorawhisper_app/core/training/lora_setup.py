"""The new adapter on the frozen backbone: peft LoRA, warm-started or cold, with
optional frozen neighbour adapters beside it (LoRA MoE)."""

from __future__ import annotations

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file
from transformers import WhisperForConditionalGeneration

from ..adapter_store import WEIGHTS_FILE, AdapterInfo
from ..errors import LoraWhisperError
from .config import TrainConfig, start_problem


def lora_config(config: TrainConfig) -> LoraConfig:
    return LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, target_modules=list(config.targets)
    )


def attach(
    model: WhisperForConditionalGeneration,
    config: TrainConfig,
    *,
    warm: AdapterInfo | None,
    frozen: list[tuple[AdapterInfo, float]],
) -> PeftModel:
    """Wrap `model` with the trainable adapter `config.name`; the seed fixes its start."""
    torch.manual_seed(config.seed)
    peft = get_peft_model(model, lora_config(config), adapter_name=config.name)
    if warm is not None:
        start_from(peft, config, warm, trainable_state(peft, config.name))
    for info, _ in frozen:
        peft.load_adapter(str(info.path), adapter_name=info.name, is_trainable=False, use_safetensors=True)
    if frozen:
        peft.base_model.set_adapter([config.name, *(info.name for info, _ in frozen)])
        weights = {info.name: w for info, w in frozen}
        for layer in peft.modules():
            if isinstance(layer, LoraLayer):
                for name, w in weights.items():
                    if name in layer.scaling:
                        layer.scaling[name] *= w
    for name, param in peft.named_parameters():
        param.requires_grad = f".{config.name}." in name and "lora_" in name
    return peft


def start_from(peft: PeftModel, config: TrainConfig, source: AdapterInfo, fresh: dict[str, torch.Tensor]) -> None:
    """Set the new adapter to `source`'s weights, cut to `config.warm_rank` directions when
    that is set; `fresh` is the adapter's cold initialisation, which fills the other slots."""
    problem = start_problem(source.name, source.meta.lora, config.rank, config.targets)
    if problem:
        raise LoraWhisperError(f"cannot warm-start from {source.name}: {problem}")
    weights = load_file(source.path / WEIGHTS_FILE)
    if config.warm_rank:
        weights = strongest_directions(weights, fresh, config.warm_rank)
    result = set_peft_model_state_dict(peft, weights, adapter_name=config.name)
    if result.unexpected_keys:
        raise LoraWhisperError(f"{source.path / WEIGHTS_FILE}: tensors that fit no layer of this backbone")


def strongest_directions(
    source: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], keep: int
) -> dict[str, torch.Tensor]:
    """`source` with each layer's update B @ A cut to its `keep` strongest directions.

    The kept directions fill the first `keep` rank slots; the others take `fresh`'s
    (peft's initialisation: random A, zero B), so they add nothing at the start. The SVD of
    the rank-r product goes through QR factors of B and A^T, an r x r problem per layer.
    """
    out = dict(source)
    for a_key in (k for k in source if ".lora_A." in k and k in fresh):
        b_key = a_key.replace(".lora_A.", ".lora_B.")
        a, b = source[a_key].float(), source[b_key].float()
        q_b, r_b = torch.linalg.qr(b)
        q_a, r_a = torch.linalg.qr(a.T)
        u, s, vh = torch.linalg.svd(r_b @ r_a.T)
        root = s[:keep].sqrt()
        new_a = fresh[a_key].detach().float().clone()
        new_b = torch.zeros_like(b)
        new_b[:, :keep] = (q_b @ u[:, :keep]) * root
        new_a[:keep] = root[:, None] * (vh[:keep] @ q_a.T)
        out[a_key], out[b_key] = new_a, new_b
    return out


def trainable_state(peft: PeftModel, name: str) -> dict[str, torch.Tensor]:
    """The new adapter's tensors under peft's saved names (adapter name removed)."""
    return get_peft_model_state_dict(peft, adapter_name=name)


def load_trainable_state(peft: PeftModel, name: str, weights: dict[str, torch.Tensor]) -> None:
    set_peft_model_state_dict(peft, weights, adapter_name=name)
