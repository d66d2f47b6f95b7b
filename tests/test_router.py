"""The automatic router: its classifier on small synthetic embeddings, its profiles on disk,
and (integration) the real backbone with the shipped adapters on a few real dev clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from tiny_whisper import make_lora_adapter, make_tiny_whisper, tiny_whisper_config

from lorawhisper_app.core.adapter_store import ROUTER_FILE, AdapterStore, bundled_adapter_dir, validate_adapter_dir
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.backbone import builtin_sources
from lorawhisper_app.core.decoding import SpecialTokens, WindowDecoder
from lorawhisper_app.core.errors import AdapterError
from lorawhisper_app.core.generation_setup import build_processor
from lorawhisper_app.core.router import (
    FeatureTap,
    Router,
    RouterProfile,
    clip_features,
    routing_accuracy,
    speech_frames,
    write_router_profile,
)
from lorawhisper_app.core.routing import RoutingOptions, choose_route

FP = "sha256:" + "d4" * 32
DIM = 24
CLIPS = 40


def language_clips(index: int, n: int = CLIPS) -> np.ndarray:
    """A made-up language: clips scattered (sd 1) around a centre 8 units out along axis
    `index`, so that every two languages lie equally far apart, as real ones roughly do."""
    centre = np.zeros(DIM)
    centre[index] = 8.0
    return (centre + np.random.default_rng(index).normal(0, 1, (n, DIM))).astype(np.float32)


LANGUAGES = {code: language_clips(index) for index, code in enumerate(["aa", "bb", "cc", "dd", "ee"])}


def profile(code: str, n: int = CLIPS) -> RouterProfile:
    return RouterProfile(code, LANGUAGES[code][:n])


def held_out(code: str) -> np.ndarray:
    """Fresh clips of a made-up language, not among its profile's."""
    return language_clips(list(LANGUAGES).index(code), 2 * CLIPS)[CLIPS:]


def decisions(router: Router, clips: np.ndarray, threshold: float = 0.5) -> list[str | None]:
    out = []
    for clip in clips:
        scores = router.scores(clip)
        best = max(scores, key=lambda k: scores[k])
        out.append(best if best is not None and scores[best] >= threshold else None)
    return out


# --- the classifier -------------------------------------------------------------------


def test_each_language_routes_to_itself_and_an_unknown_one_to_none() -> None:
    router = Router([profile(c) for c in ("aa", "bb", "cc", "dd")])
    for code in ("aa", "bb", "cc", "dd"):
        assert decisions(router, held_out(code)).count(code) >= 0.95 * CLIPS
    assert decisions(router, held_out("ee")).count(None) >= 0.9 * CLIPS


def test_routing_accuracy_counts_the_clips_the_router_gives_their_language() -> None:
    profiles = [profile(c) for c in ("aa", "bb", "cc")]
    expected = decisions(Router(profiles), held_out("aa")).count("aa") / CLIPS
    assert routing_accuracy(profiles, "aa", held_out("aa")) == pytest.approx(expected)
    assert routing_accuracy(profiles, "aa", held_out("dd")) <= 0.1, "another language's clips are not counted"
    assert routing_accuracy(profiles[:1], "aa", held_out("aa")) is None, "one language cannot be routed"


def assert_unchanged(code: str, one: Router, other: Router) -> None:
    """The clips of `code` route alike under both routers: each to `code` or, rarely, to none
    (a clip far out in its language's cloud may cross the line when the centre moves)."""
    for a, b in zip(decisions(one, held_out(code)), decisions(other, held_out(code))):
        assert {a, b} <= {code, None}
    assert decisions(other, held_out(code)).count(code) >= 0.95 * CLIPS


def test_adding_a_language_changes_only_that_language() -> None:
    before = Router([profile(c) for c in ("aa", "bb", "cc")])
    after = Router([profile(c) for c in ("aa", "bb", "cc", "dd")])
    for code in ("aa", "bb", "cc"):
        assert_unchanged(code, before, after)
    assert decisions(before, held_out("dd")).count(None) >= 0.9 * CLIPS
    assert decisions(after, held_out("dd")).count("dd") >= 0.95 * CLIPS


def test_removing_a_language_sends_it_to_none_and_leaves_the_others() -> None:
    full = Router([profile(c) for c in ("aa", "bb", "cc", "dd")])
    less = Router([profile(c) for c in ("aa", "bb", "dd")])
    assert less.languages == ["aa", "bb", "dd"]
    assert decisions(less, held_out("cc")).count(None) >= 0.9 * CLIPS
    for code in ("aa", "bb", "dd"):
        assert_unchanged(code, full, less)


def test_a_single_language_cannot_tell_none_apart_so_it_never_claims_a_clip() -> None:
    router = Router([profile("aa")])
    assert decisions(router, held_out("aa")) == [None] * CLIPS


def test_scores_are_a_distribution_that_sharpens_with_distance_ratio() -> None:
    router = Router([profile(c) for c in ("aa", "bb", "cc")])
    centre_of_aa = LANGUAGES["aa"].mean(0)
    scores = router.scores(centre_of_aa)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert scores["aa"] > 0.99
    midway = (LANGUAGES["aa"].mean(0) + LANGUAGES["bb"].mean(0)) / 2
    assert router.scores(midway)[None] > 0.5


def test_none_of_these_is_shared_out_over_whisper_languages_outside_the_router() -> None:
    router = Router([profile(c) for c in ("aa", "bb", "cc")])
    whisper = {"aa": 0.5, "en": 0.3, "fr": 0.1, "de": 0.1}  # "aa" is the router's own: left out
    probs = router.probabilities(held_out("ee")[0], whisper)
    assert list(probs) == sorted(probs, key=lambda k: -probs[k])
    assert sum(probs.values()) == pytest.approx(1.0)
    none = 1.0 - sum(probs[c] for c in ("aa", "bb", "cc"))
    assert probs["en"] == pytest.approx(none * 0.6) and probs["fr"] == pytest.approx(none * 0.2)


def test_router_probabilities_drive_choose_route_with_the_threshold() -> None:
    class Lookup:
        def adapter_for(self, language: str) -> tuple[str, str] | None:
            return {"rw": ("rw", "sw"), "sw": ("sw", "sw")}.get(language)

        def adapter_named(self, name: str) -> tuple[str, str]:
            raise AssertionError(name)

        def mixture_of(self, name: str) -> dict[str, float]:
            return {name: 1.0}

    whisper_codes = {"sw", "en"}
    chosen = choose_route(RoutingOptions(), {"rw": 0.8, "sw": 0.15, "en": 0.05}, Lookup(), whisper_codes)
    assert (chosen.adapters, chosen.decode_token, chosen.language_probability) == ({"rw": 1.0}, "sw", 0.8)
    unsure = choose_route(RoutingOptions(threshold=0.9), {"rw": 0.8, "en": 0.2}, Lookup(), whisper_codes)
    assert (unsure.adapters, unsure.decode_token) == ({}, None)  # rw has no Whisper token of its own
    none = choose_route(RoutingOptions(), {"en": 0.7, "rw": 0.2, "sw": 0.1}, Lookup(), whisper_codes)
    assert (none.adapters, none.decode_token) == ({}, "en")


def test_speech_frames_cover_the_audio_within_one_window() -> None:
    assert speech_frames(16000) == 50
    assert speech_frames(16000 * 60) == 1500
    assert speech_frames(1) == 1


# --- profiles on disk -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_decoder() -> WindowDecoder:
    _, meta_dir = builtin_sources()
    tokenizer = build_processor(meta_dir / "tokenizer.json", tiny_whisper_config()).tokenizer
    model = make_tiny_whisper()
    return WindowDecoder(model, SpecialTokens.from_model(model, tokenizer))


def test_profile_written_from_audio_round_trips_and_travels_with_the_adapter(
    tiny_decoder: WindowDecoder, tmp_path: Path
) -> None:
    folder = make_lora_adapter(tmp_path / "made", language="rw", fingerprint=FP)
    rng = np.random.default_rng(0)
    audios = [rng.normal(0, 0.1, 16000 * s).astype(np.float32) for s in (1, 3)]
    audios.append((audios[0] * 32768).astype(np.int16))  # the trainer keeps int16 samples
    path = write_router_profile(folder, tiny_decoder, audios)
    loaded = RouterProfile.load(path)
    assert loaded is not None and loaded.language == "rw" and loaded.features.shape == (3, 2 * 64)
    assert np.allclose(loaded.features[2], loaded.features[0], atol=1e-3)
    assert np.allclose(clip_features(tiny_decoder, audios[:2], batch_size=1), loaded.features[:2], atol=1e-5)

    validate_adapter_dir(folder, FP)
    store = AdapterStore(None, tmp_path / "user")
    store.import_(folder, FP)
    exported = store.export("rw", tmp_path / "out" / "rw.zip")
    other = AdapterStore(None, tmp_path / "other").import_(exported, FP)
    assert (other.path / ROUTER_FILE).read_bytes() == path.read_bytes()


def test_a_profile_of_other_features_is_ignored_and_a_broken_one_refused(tmp_path: Path) -> None:
    folder = make_lora_adapter(tmp_path, language="lg", fingerprint=FP)
    other_kind = {"feature_kind": "other", "language": "lg"}
    save_file({"features": np.zeros((4, 8), np.float32)}, str(folder / ROUTER_FILE), metadata=other_kind)
    assert RouterProfile.load(folder / ROUTER_FILE) is None
    RouterProfile("lg", np.ones((4, 8), np.float32)).save(folder)
    assert RouterProfile.load(folder / ROUTER_FILE) is not None
    (folder / ROUTER_FILE).write_bytes((folder / ROUTER_FILE).read_bytes()[:-10])
    with pytest.raises(AdapterError, match="router.safetensors"):
        validate_adapter_dir(folder, FP)


# --- the real backbone and the shipped adapters ----------------------------------------

# Two dev clips per shipped language (the manifest's first) and two FLEURS clips.
SHIPPED = ("ha", "sw", "yo", "ln", "rw", "lg")
FLEURS = ("fleurs_cuttledoc_fr_000", "fleurs_cuttledoc_pt_001")


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - Engine
    from lorawhisper_app.core.engine import Engine

    bundled = bundled_adapter_dir()
    if bundled is None or not all((bundled / code / ROUTER_FILE).is_file() for code in SHIPPED):
        pytest.skip("the shipped adapters' router profiles are absent")
    torch.set_num_threads(1)
    return Engine(device="cpu", store=AdapterStore(bundled, tmp_path_factory.mktemp("no-user-adapters")), threads=1)


@pytest.fixture(scope="module")
def dev_clips(speech_dev: Path) -> dict[str, tuple[str, np.ndarray]]:
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    chosen = {}
    for code in SHIPPED:
        for row in [r for r in rows if r["language"] == code and not r.get("synthetic")][:2]:
            chosen[row["id"]] = row
    for row in rows:
        if row["id"] in FLEURS:
            chosen[row["id"]] = row
    return {cid: (row["language"], load_audio(speech_dev / row["path"])[: 30 * 16000]) for cid, row in chosen.items()}


@pytest.mark.integration
def test_shipped_adapters_route_real_clips(real_engine, dev_clips, tmp_path: Path) -> None:  # noqa: ANN001
    assert len(dev_clips) == 2 * len(SHIPPED) + len(FLEURS)
    assert real_engine.router().languages == sorted(SHIPPED)
    found, features = {}, {}
    for cid, (_, audio) in dev_clips.items():
        with FeatureTap(real_engine.backbone.model) as tap:
            found[cid] = real_engine.identify(audio)
        features[cid] = tap.pooled([len(audio)])[0]
    for cid, (language, _) in dev_clips.items():
        route = real_engine.route(RoutingOptions(), found[cid].probabilities, found[cid].whisper)
        if language in SHIPPED:
            assert route.adapters == {language: 1.0}, (cid, found[cid].probabilities)
            assert route.language == language and route.language_probability >= 0.5
        else:
            assert route.adapters == {} and route.decode_token == language, (cid, found[cid].probabilities)
        assert route.whisper_probabilities == dict(list(found[cid].whisper.items())[:5])

    # Luganda's adapter removed: its clips go to the bare backbone, the others keep theirs.
    without = tmp_path / "without-lg"
    without.mkdir()
    for code in SHIPPED:
        if code != "lg":
            (without / code).symlink_to(bundled_adapter_dir() / code, target_is_directory=True)
    store = real_engine.store
    real_engine.store = AdapterStore(None, without)
    try:
        router = real_engine.router()
        assert router.languages == sorted(set(SHIPPED) - {"lg"})
        for cid, (language, _) in dev_clips.items():
            route = real_engine.route(RoutingOptions(), router.probabilities(features[cid], found[cid].whisper))
            assert route.adapters == ({} if language in ("lg", "fr", "pt") else {language: 1.0}), cid
    finally:
        real_engine.store = store


@pytest.mark.integration
def test_transcribe_auto_reports_the_router_probabilities(real_engine, dev_clips) -> None:  # noqa: ANN001
    cid = next(c for c, (lang, _) in dev_clips.items() if lang == "rw")
    result = real_engine.transcribe(dev_clips[cid][1], language="auto")
    assert result.route.adapters == {"rw": 1.0} and result.route.decode_token == "sw"
    assert next(iter(result.language_probabilities)) == "rw"
    assert result.language_probabilities["rw"] == result.route.language_probability
    assert "rw" not in result.route.whisper_probabilities  # Whisper has no Kinyarwanda
    assert result.text
