"""A tiny random Whisper with multilingual Whisper's real vocabulary and special tokens,
and peft LoRA adapters for it, for tests that must not load the real backbone."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration
from transformers.models.whisper.tokenization_whisper import LANGUAGES

from lorawhisper_app.core.adapter_meta import AdapterMeta, BaseModelRef, LoraSpec
from lorawhisper_app.core.languages import is_whisper_language, language_name

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "fc1", "fc2")

# Multilingual Whisper (v1/v2, 51865 tokens): 99 language tokens after <|startoftranscript|>.
VOCAB_SIZE = 51865
EOT, SOT = 50257, 50258
FIRST_LANGUAGE_TOKEN = 50259
TRANSLATE, TRANSCRIBE, PREV_SOT, NO_TIMESTAMPS = 50358, 50359, 50361, 50363
LANGUAGE_CODES = tuple(LANGUAGES)[:99]  # "yue" came with large-v3's bigger vocabulary


def tiny_whisper_config() -> WhisperConfig:
    return WhisperConfig(
        vocab_size=VOCAB_SIZE,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        bos_token_id=EOT,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )


def tiny_generation_config() -> GenerationConfig:
    """Multilingual Whisper's generation settings: language and task tokens included."""
    return GenerationConfig(
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        bos_token_id=EOT,
        max_length=448,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": FIRST_LANGUAGE_TOKEN + i for i, code in enumerate(LANGUAGE_CODES)},
        task_to_id={"translate": TRANSLATE, "transcribe": TRANSCRIBE},
        no_timestamps_token_id=NO_TIMESTAMPS,
        prev_sot_token_id=PREV_SOT,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )


def make_tiny_whisper(seed: int = 0) -> WhisperForConditionalGeneration:
    """A tiny Whisper in eval mode whose weights depend only on `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(tiny_whisper_config())
    model.generation_config = tiny_generation_config()
    return model.eval()


def make_lora_adapter(
    out_dir: Path,
    *,
    language: str,
    fingerprint: str,
    seed: int = 0,
    rank: int = 4,
    scale: float = 1.0,
    name: str | None = None,
    decode_token: str | None = None,
) -> Path:
    """Save a LoRA adapter for the tiny Whisper as `out_dir/<name or language>` and return that folder.

    All q/k/v/fc1/fc2 layers are adapted. peft starts lora_B at zero (a no-op adapter),
    so lora_B is drawn from N(0, scale^2) with `seed`. The files are peft's own
    `save_pretrained` output plus lorawhisper.json; `decode_token` defaults to the
    language itself, or "en" for a language Whisper has no token for.
    """
    name = name or language
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=list(LORA_TARGETS))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = get_peft_model(make_tiny_whisper(), config)
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "lora_B") and "default" in module.lora_B:
                    weight = module.lora_B["default"].weight
                    weight.copy_(torch.randn_like(weight) * scale)
    folder = Path(out_dir) / name
    model.save_pretrained(folder)
    AdapterMeta(
        name=name,
        language=language,
        language_name=language_name(language),
        decode_token=decode_token or (language if is_whisper_language(language) else "en"),
        base_model=BaseModelRef(name="tiny-whisper (tests)", fingerprint=fingerprint),
        lora=LoraSpec(rank=rank, alpha=2 * rank, dropout=0.05, targets=LORA_TARGETS),
        training_data={"source": "synthetic", "description": f"random LoRA weights, seed {seed}"},
    ).save(folder)
    return folder


def save_tiny_backbone(folder: Path, seed: int = 0) -> Path:
    """A tiny Whisper as a transformers folder that `--model FOLDER` loads: its own random
    weights, with the tokenizer and processor files of the converted built-in backbone."""
    import shutil

    from lorawhisper_app.core.backbone import resolve_backbone

    folder = Path(folder)
    make_tiny_whisper(seed).save_pretrained(folder, safe_serialization=True)
    source = resolve_backbone(None).path
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        shutil.copy(source / name, folder / name)
    return folder
