"""Tokenizer, feature extractor and generation settings for a converted checkpoint."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperProcessor,
    WhisperTokenizer,
)

TRANSCRIBE_TOKEN = 50359
TRANSLATE_TOKEN = 50358
PREV_TOKEN = 50361
NO_TIMESTAMPS_TOKEN = 50363


def build_processor(tokenizer_json: Path, config: WhisperConfig) -> WhisperProcessor:
    tokenizer = WhisperTokenizer(tokenizer_file=str(tokenizer_json))
    extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    return WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer)


def build_generation_config(config: WhisperConfig, ct2_config: dict) -> GenerationConfig:
    """Whisper's multilingual generation settings, with the language ids CT2 recorded."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    codes = list(LANGUAGES)
    lang_ids = ct2_config["lang_ids"]
    return GenerationConfig(
        alignment_heads=ct2_config.get("alignment_heads"),
        begin_suppress_tokens=config.begin_suppress_tokens,
        suppress_tokens=config.suppress_tokens,
        bos_token_id=config.bos_token_id,
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        is_multilingual=True,
        lang_to_id={f"<|{codes[i]}|>": tid for i, tid in enumerate(lang_ids)},
        task_to_id={"transcribe": TRANSCRIBE_TOKEN, "translate": TRANSLATE_TOKEN},
        no_timestamps_token_id=NO_TIMESTAMPS_TOKEN,
        prev_sot_token_id=PREV_TOKEN,
        max_initial_timestamp_index=50,
        max_length=config.max_target_positions,
        return_timestamps=False,
    )
