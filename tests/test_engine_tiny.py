"""Engine internals on a tiny random Whisper: adapter merging, timestamp rules, segment
parsing and the streaming window buffer. No real backbone is loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from peft.tuners.lora import Linear as LoraLinear
from safetensors.torch import load_file, save_file
from tiny_whisper import make_lora_adapter, make_tiny_whisper, tiny_whisper_config
from transformers import WhisperForConditionalGeneration, WhisperTokenizer

from lorawhisper_app.core.adapter_runtime import AdapterRuntime
from lorawhisper_app.core.adapter_store import validate_adapter_dir
from lorawhisper_app.core.backbone import builtin_sources
from lorawhisper_app.core.decoding import SpecialTokens, WindowDecoder, _timestamp_rules
from lorawhisper_app.core.errors import AdapterError
from lorawhisper_app.core.fast_linear import make_int8
from lorawhisper_app.core.features import N_SAMPLES, SAMPLE_RATE
from lorawhisper_app.core.generation_setup import build_processor
from lorawhisper_app.core.transcriber import AudioWindows, DecodeOptions, Transcriber

FP = "sha256:" + "c3" * 32


@pytest.fixture(scope="module")
def tokenizer() -> WhisperTokenizer:
    """The built-in backbone's tokenizer, read from its package (no conversion needed)."""
    _, meta_dir = builtin_sources()
    return build_processor(meta_dir / "tokenizer.json", tiny_whisper_config()).tokenizer


@pytest.fixture(scope="module")
def tokens(tokenizer: WhisperTokenizer) -> SpecialTokens:
    return SpecialTokens.from_model(make_tiny_whisper(), tokenizer)


# --- AdapterRuntime ------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-adapters")
    return {
        "a": make_lora_adapter(root, language="sw", fingerprint=FP, seed=1, scale=0.5, name="a"),
        "b": make_lora_adapter(root, language="yo", fingerprint=FP, seed=2, scale=0.5, name="b"),
    }


@pytest.fixture
def runtime() -> AdapterRuntime:
    return AdapterRuntime(make_tiny_whisper(seed=3))


def base_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every non-LoRA parameter under its transformers name (peft's `.base_layer` removed)."""
    return {n.replace(".base_layer", ""): p for n, p in model.named_parameters() if "lora_" not in n}


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in base_weights(model).items()}


def assert_bit_identical(model: torch.nn.Module, reference: dict[str, torch.Tensor]) -> None:
    current = base_weights(model)
    assert current.keys() == reference.keys()
    changed = [n for n, p in current.items() if not torch.equal(p, reference[n])]
    assert changed == []


def deltas(folder: Path) -> dict[str, torch.Tensor]:
    """ΔW = (alpha / r) · B @ A per adapted module, computed from the adapter's files."""
    config = json.loads((folder / "adapter_config.json").read_text())
    scaling = config["lora_alpha"] / config["r"]
    state = load_file(folder / "adapter_model.safetensors")
    out = {}
    for key, a in state.items():
        if key.endswith(".lora_A.weight"):
            module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            out[f"{module}.weight"] = scaling * (state[key.replace("lora_A", "lora_B")] @ a)
    return out


def load_both(runtime: AdapterRuntime, adapters: dict[str, Path]) -> dict[str, torch.Tensor]:
    """Snapshot the bare weights, then load adapters a and b; return the snapshot."""
    before = snapshot(runtime.model)
    runtime.load("a", adapters["a"])
    runtime.load("b", adapters["b"])
    assert runtime.loaded == ["a", "b"]
    return before


def test_each_adapter_changes_exactly_its_target_weights(runtime: AdapterRuntime, adapters: dict[str, Path]) -> None:
    before = load_both(runtime, adapters)
    assert_bit_identical(runtime.model, before)  # loading alone changes nothing
    for name in ("a", "b"):
        runtime.activate({name: 1.0})
        delta = deltas(adapters[name])
        assert len(delta) == 2 * 5 + 2 * 8  # q/k/v/fc1/fc2 per encoder layer, plus cross-attention q/k/v per decoder layer
        for key, weight in base_weights(runtime.model).items():
            if key in delta:
                assert not torch.equal(weight, before[key]), key
                torch.testing.assert_close(weight, before[key] + delta[key], rtol=0, atol=1e-6)
            else:
                assert torch.equal(weight, before[key]), key


def test_empty_mixture_restores_every_weight_bit_for_bit(runtime: AdapterRuntime, adapters: dict[str, Path]) -> None:
    before = load_both(runtime, adapters)
    runtime.activate({"a": 1.0})
    runtime.activate({})
    assert_bit_identical(runtime.model, before)


def test_mixture_is_weighted_sum_of_deltas(runtime: AdapterRuntime, adapters: dict[str, Path]) -> None:
    before = load_both(runtime, adapters)
    runtime.activate({"a": 0.5, "b": 0.5})
    da, db = deltas(adapters["a"]), deltas(adapters["b"])
    weights = base_weights(runtime.model)
    for key in da:
        torch.testing.assert_close(weights[key], before[key] + 0.5 * da[key] + 0.5 * db[key], rtol=0, atol=1e-6)


def logits(model: WhisperForConditionalGeneration, features: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_features=features, decoder_input_ids=torch.tensor([[50258, 50318, 50359]])).logits


def test_unmerged_forward_matches_merged(runtime: AdapterRuntime, adapters: dict[str, Path]) -> None:
    load_both(runtime, adapters)
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    bare = logits(runtime.model, features)
    runtime.activate({"a": 1.0})
    merged = logits(runtime.model, features)
    runtime.activate({"a": 1.0}, unmerged=True)
    unmerged = logits(runtime.model, features)
    assert (merged - bare).abs().max() > 1e-2
    torch.testing.assert_close(unmerged, merged, rtol=1e-4, atol=1e-4)
    runtime.activate({})
    assert torch.equal(logits(runtime.model, features), bare)


def test_many_switches_leave_the_backbone_bit_identical(runtime: AdapterRuntime, adapters: dict[str, Path]) -> None:
    before = load_both(runtime, adapters)
    cycle: list[tuple[dict[str, float], bool]] = [
        ({"a": 1.0}, False), ({"b": 1.0}, False), ({"a": 0.3, "b": 0.7}, False), ({"b": 1.0}, True), ({}, False)
    ]
    for i in range(20):
        mixture, unmerged = cycle[i % len(cycle)]
        runtime.activate(mixture, unmerged=unmerged)
    runtime.activate({})
    assert_bit_identical(runtime.model, before)


def test_a_mixture_merged_before_another_adapter_loaded_is_reused_unchanged(
    runtime: AdapterRuntime, adapters: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(5))
    runtime.load("a", adapters["a"])
    runtime.activate({"a": 1.0})
    with_a = logits(runtime.model, features)
    runtime.load("b", adapters["b"])  # activates the bare backbone while it loads
    merges = []
    monkeypatch.setattr(LoraLinear, "get_delta_weight", lambda self, name: merges.append(name))
    runtime.activate({"a": 1.0})  # from the cache: nothing is merged again
    assert merges == []
    assert torch.equal(logits(runtime.model, features), with_a)


def test_an_int8_layer_carries_the_mixture_in_its_packed_copy_only(adapters: dict[str, Path]) -> None:
    model = make_tiny_whisper(seed=3)
    make_int8(model.model.decoder)
    reference = make_tiny_whisper(seed=3)  # the merge done by hand: float weight + delta, then packed
    delta = deltas(adapters["a"])
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if name in delta:
                param += delta[name]
    make_int8(reference.model.decoder)
    runtime = AdapterRuntime(model)
    before = snapshot(model)
    runtime.load("a", adapters["a"])
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(6))
    bare = logits(model, features)
    runtime.activate({"a": 1.0})
    weights = base_weights(model)
    for key, weight in before.items():
        if key.startswith("model.decoder."):  # int8 layers: the float weight stays the backbone's
            assert torch.equal(weights[key], weight), key
        elif key in delta:
            torch.testing.assert_close(weights[key], weight + delta[key], rtol=0, atol=1e-6)
    merged = logits(model, features)
    assert not torch.allclose(merged, bare, atol=1e-3)
    torch.testing.assert_close(merged, logits(reference, features), rtol=1e-4, atol=1e-4)
    runtime.activate({})
    assert torch.equal(logits(model, features), bare)


def test_an_adapter_that_does_not_fit_the_layers_is_refused_before_peft_sees_it(
    runtime: AdapterRuntime, adapters: dict[str, Path], tmp_path: Path
) -> None:
    misfit = tmp_path / "misfit"
    shutil.copytree(adapters["a"], misfit)
    weights = misfit / "adapter_model.safetensors"
    tensors = load_file(weights)
    key = next(k for k in tensors if k.endswith("encoder.layers.0.fc1.lora_A.weight"))
    tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] + 3)
    save_file(tensors, weights)
    validate_adapter_dir(misfit, FP)  # the store cannot tell: it has no model to compare with
    runtime.load("a", adapters["a"])
    before = snapshot(runtime.model)
    with pytest.raises(AdapterError, match=r"misfit/adapter_model.safetensors: model.encoder.layers.0.fc1 is 67 -> 128"):
        runtime.load("misfit", misfit)
    assert runtime.loaded == ["a"]
    assert_bit_identical(runtime.model, before)


def test_activate_rejects_unknown_adapters_and_unmerged_mixtures(
    runtime: AdapterRuntime, adapters: dict[str, Path]
) -> None:
    load_both(runtime, adapters)
    with pytest.raises(AdapterError, match="not loaded: c"):
        runtime.activate({"c": 1.0})
    with pytest.raises(AdapterError, match="unmerged mode runs one adapter"):
        runtime.activate({"a": 0.5, "b": 0.5}, unmerged=True)


# --- timestamp rules ------------------------------------------------------------------

TEXT = 7751  # " hello"


def rule_logits(tokens: SpecialTokens, seq: list[int], max_initial: int = 50, text_logit: float = 10.0) -> torch.Tensor:
    """Apply the rules to logits where text is likely (so the probability rule stays out)."""
    logits = torch.zeros(tiny_whisper_config().vocab_size)
    logits[: tokens.eot + 1] = text_logit  # text and the end token
    _timestamp_rules(logits, seq, tokens, max_initial)
    return logits


def allowed_stamps(logits: torch.Tensor, tokens: SpecialTokens) -> list[int]:
    tb = tokens.timestamp_begin
    return [i - tb for i in torch.isfinite(logits[tb:]).nonzero().flatten().add(tb).tolist()]


def test_first_token_is_a_timestamp_no_later_than_max_initial(tokens: SpecialTokens) -> None:
    logits = rule_logits(tokens, [], max_initial=7)
    assert allowed_stamps(logits, tokens) == list(range(8))
    assert torch.isinf(logits[: tokens.timestamp_begin]).all()


def test_opening_timestamp_is_followed_by_text(tokens: SpecialTokens) -> None:
    tb = tokens.timestamp_begin
    logits = rule_logits(tokens, [tb + 10])
    assert allowed_stamps(logits, tokens) == []
    assert torch.isfinite(logits[TEXT]) and torch.isfinite(logits[tokens.eot])


def test_timestamp_after_text_must_be_later_than_the_last(tokens: SpecialTokens) -> None:
    tb = tokens.timestamp_begin
    logits = rule_logits(tokens, [tb + 10, TEXT])
    assert allowed_stamps(logits, tokens)[0] == 11
    assert torch.isfinite(logits[TEXT])
    assert torch.isinf(logits[tokens.no_timestamps])


def test_closing_timestamp_is_followed_by_timestamp_or_end(tokens: SpecialTokens) -> None:
    tb = tokens.timestamp_begin
    logits = rule_logits(tokens, [tb + 10, TEXT, tb + 40])
    assert torch.isinf(logits[: tokens.eot]).all()
    assert torch.isfinite(logits[tokens.eot])
    assert allowed_stamps(logits, tokens)[0] == 40  # the next segment may start where this one ended


def test_timestamp_pair_is_followed_by_text(tokens: SpecialTokens) -> None:
    tb = tokens.timestamp_begin
    logits = rule_logits(tokens, [tb + 10, TEXT, tb + 40, tb + 40])
    assert allowed_stamps(logits, tokens) == []
    assert torch.isfinite(logits[TEXT])


def test_text_is_masked_when_timestamps_are_more_likely_than_any_text(tokens: SpecialTokens) -> None:
    tb = tokens.timestamp_begin
    likely_text = rule_logits(tokens, [tb, TEXT], text_logit=10.0)
    likely_stamp = rule_logits(tokens, [tb, TEXT], text_logit=-10.0)
    assert torch.isfinite(likely_text[TEXT])
    assert torch.isinf(likely_stamp[: tb]).all()
    assert allowed_stamps(likely_stamp, tokens) == list(range(1, 1501))


@pytest.mark.parametrize("seed", range(3))
def test_sampled_sequences_obey_timestamp_rules(tokens: SpecialTokens, seed: int) -> None:
    """Sampling from a random model reaches every rule; the sequence must still be well formed."""
    decoder = WindowDecoder(make_tiny_whisper(seed), tokens)
    decoder.max_tokens = 100
    enc = decoder.encode(torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(seed)))
    result = decoder.decode(
        enc, tokens.prompt("en", True), temperature=1.0, max_initial_timestamp=5,
        generator=torch.Generator().manual_seed(seed),
    )
    tb = tokens.timestamp_begin
    seq = result.tokens
    assert len(seq) > 10
    assert tb <= seq[0] <= tb + 5
    stamps = [t for t in seq if t >= tb]
    assert len(stamps) >= 2 and stamps == sorted(stamps)
    assert tokens.no_timestamps not in seq
    runs = "".join("T" if t >= tb else "x" for t in seq)
    assert "TTT" not in runs
    for i, t in enumerate(seq[1:], 1):  # a timestamp that follows text closes a segment: strictly later
        if t >= tb and seq[i - 1] < tb:
            assert t > max(s for s in seq[:i] if s >= tb)


# --- segments from tokens ------------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber(tokenizer: WhisperTokenizer, tokens: SpecialTokens) -> Transcriber:
    decode_text = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    return Transcriber(WindowDecoder(make_tiny_whisper(), tokens), decode_text, DecodeOptions())


def words(tokenizer: WhisperTokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_segments_from_timestamp_pairs_ending_in_a_single_timestamp(
    transcriber: Transcriber, tokenizer: WhisperTokenizer, tokens: SpecialTokens
) -> None:
    tb = tokens.timestamp_begin
    seq = [tb, *words(tokenizer, " Hello there."), tb + 100, tb + 100, *words(tokenizer, " General Kenobi."), tb + 250]
    parsed = transcriber._segments(seq, offset=30.0, length=N_SAMPLES)
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [
        (30.0, 32.0, "Hello there."), (32.0, 35.0, "General Kenobi.")
    ]
    assert parsed.advance == N_SAMPLES  # the text ran to its end: move on a whole window


def test_unfinished_last_segment_is_dropped_and_the_window_advances_to_the_last_pair(
    transcriber: Transcriber, tokenizer: WhisperTokenizer, tokens: SpecialTokens
) -> None:
    tb = tokens.timestamp_begin
    seq = [tb + 5, *words(tokenizer, " One."), tb + 100, tb + 100, *words(tokenizer, " Two, cut")]
    parsed = transcriber._segments(seq, offset=0.0, length=N_SAMPLES)
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [(0.1, 2.0, "One.")]
    assert parsed.advance == 2 * SAMPLE_RATE


def test_single_segment_without_pairs_ends_at_its_last_timestamp(
    transcriber: Transcriber, tokenizer: WhisperTokenizer, tokens: SpecialTokens
) -> None:
    tb = tokens.timestamp_begin
    seq = [tb, *words(tokenizer, " Only one sentence."), tb + 210]
    parsed = transcriber._segments(seq, offset=60.0, length=10 * SAMPLE_RATE)
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [(60.0, 64.2, "Only one sentence.")]
    assert parsed.advance == 10 * SAMPLE_RATE


def test_text_without_timestamps_spans_the_window(
    transcriber: Transcriber, tokenizer: WhisperTokenizer
) -> None:
    parsed = transcriber._segments(words(tokenizer, " No stamps at all."), offset=30.0, length=12 * SAMPLE_RATE)
    assert [(s.start, s.end, s.text) for s in parsed.segments] == [(30.0, 42.0, "No stamps at all.")]
    assert parsed.advance == 12 * SAMPLE_RATE


def test_segment_end_is_clamped_to_the_window(
    transcriber: Transcriber, tokenizer: WhisperTokenizer, tokens: SpecialTokens
) -> None:
    tb = tokens.timestamp_begin
    seq = [tb, *words(tokenizer, " Too long."), tb + 500]  # 10 s in a 4 s window
    parsed = transcriber._segments(seq, offset=0.0, length=4 * SAMPLE_RATE)
    assert [(s.start, s.end) for s in parsed.segments] == [(0.0, 4.0)]


def test_no_tokens_give_no_segments_and_a_whole_window_advance(transcriber: Transcriber) -> None:
    parsed = transcriber._segments([], offset=0.0, length=N_SAMPLES)
    assert parsed.segments == [] and parsed.advance == N_SAMPLES


# --- AudioWindows --------------------------------------------------------------------------


def test_windows_are_slices_of_the_stream_and_the_buffer_stays_bounded() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40_000, size=60)
    chunks = [rng.standard_normal(int(n)).astype(np.float32) for n in sizes]
    audio = np.concatenate(chunks)
    pulled = 0

    def stream() -> Iterator[np.ndarray]:
        nonlocal pulled
        for chunk in chunks:
            pulled += len(chunk)
            yield chunk

    windows = AudioWindows(stream())
    biggest = int(sizes.max())
    seek = 0
    seeks = []
    while seek < len(audio):
        seeks.append(seek)
        for _ in range(2):  # the engine asks for window 0 twice (LID, then decoding)
            window = windows.window(seek)
            np.testing.assert_array_equal(window, audio[seek : seek + N_SAMPLES])
        assert pulled <= seek + N_SAMPLES + biggest  # reads ahead no further than it needs
        assert len(windows._buffer) <= N_SAMPLES + biggest
        seek += int(rng.integers(SAMPLE_RATE, N_SAMPLES + 1))
    assert len(seeks) > 4 and len(audio) > 2 * N_SAMPLES
    assert len(windows.window(len(audio))) == 0
