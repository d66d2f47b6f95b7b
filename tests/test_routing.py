"""choose_route and RoutingOptions: a pure function, tested against a fake adapter lookup."""

from __future__ import annotations

import pytest

from lorawhisper_app.core.errors import AdapterError, LoraWhisperError
from lorawhisper_app.core.results import Route
from lorawhisper_app.core.routing import RoutingOptions, choose_route

WHISPER = {"en", "sw", "yo", "fr", "de", "pt", "ha"}


class FakeAdapters:
    """Installed adapters as name -> (language, decode token)."""

    def __init__(self, adapters: dict[str, tuple[str, str]]) -> None:
        self.adapters = adapters

    def adapter_for(self, language: str) -> tuple[str, str] | None:
        return next(((n, tok) for n, (lang, tok) in self.adapters.items() if lang == language), None)

    def adapter_named(self, name: str) -> tuple[str, str]:
        if name not in self.adapters:
            raise AdapterError(f"no adapter named {name}")
        return self.adapters[name]

    def mixture_of(self, name: str) -> dict[str, float]:
        return {name: 1.0, "sw-v1": 0.5} if name == "lg-moe" else {name: 1.0}


STORE = FakeAdapters({"sw-v1": ("sw", "sw"), "yo-v2": ("yo", "yo"), "rw-a": ("rw", "sw")})


def route(probs: dict[str, float] | None = None, adapters: FakeAdapters = STORE, **options: object) -> Route:
    return choose_route(RoutingOptions(**options), probs, adapters, WHISPER)  # type: ignore[arg-type]


def test_manual_with_adapter_uses_it_without_lid() -> None:
    assert route(language="sw") == Route("manual", "sw", None, {"sw-v1": 1.0}, "sw")


def test_manual_language_without_token_decodes_with_adapter_token() -> None:
    assert route(language="rw") == Route("manual", "rw", None, {"rw-a": 1.0}, "sw")


def test_manual_without_adapter_falls_back_with_notice() -> None:
    chosen = route(language="fr")
    assert (chosen.mode, chosen.language, chosen.adapters, chosen.decode_token) == ("manual", "fr", {}, "fr")
    assert chosen.notice == "no adapter for 'fr': using the bare backbone"


def test_manual_non_whisper_language_without_adapter_has_no_token() -> None:
    chosen = route(language="lg")
    assert (chosen.adapters, chosen.decode_token) == ({}, None)
    assert chosen.notice is not None and "'lg'" in chosen.notice and "without a language token" in chosen.notice


def test_auto_above_threshold_uses_top_language_adapter() -> None:
    assert route({"sw": 0.8, "yo": 0.15, "en": 0.05}) == Route("auto", "sw", 0.8, {"sw-v1": 1.0}, "sw")


def test_auto_at_threshold_counts_as_above() -> None:
    assert route({"yo": 0.5, "sw": 0.5}, threshold=0.5).adapters == {"yo-v2": 1.0}


def test_auto_below_threshold_uses_bare_backbone_with_detected_token() -> None:
    chosen = route({"sw": 0.45, "yo": 0.35, "en": 0.2}, threshold=0.6)
    assert (chosen.mode, chosen.language, chosen.language_probability) == ("auto", "sw", 0.45)
    assert (chosen.adapters, chosen.decode_token) == ({}, "sw")
    assert chosen.notice is not None and "under the threshold 0.60" in chosen.notice


def test_auto_without_adapter_for_top_language() -> None:
    chosen = route({"en": 0.9, "sw": 0.1})
    assert (chosen.language, chosen.language_probability, chosen.adapters, chosen.decode_token) == ("en", 0.9, {}, "en")
    assert chosen.notice == "no adapter for the detected language 'en': using the bare backbone"


def test_moe_mixes_top_k_with_adapters_renormalised_in_probability_order() -> None:
    # en is most likely but has no adapter; ha is fourth with an adapter and K=2 leaves it out.
    store = FakeAdapters({**STORE.adapters, "ha-x": ("ha", "ha")})
    chosen = route({"en": 0.4, "yo": 0.3, "fr": 0.15, "sw": 0.1, "ha": 0.05}, store, moe_k=2)
    assert (chosen.mode, chosen.language, chosen.language_probability, chosen.decode_token) == ("moe", "yo", 0.3, "yo")
    assert list(chosen.adapters) == ["yo-v2", "sw-v1"]
    assert chosen.adapters["yo-v2"] == pytest.approx(0.75)
    assert chosen.adapters["sw-v1"] == pytest.approx(0.25)
    assert chosen.notice is None


def test_moe_with_fewer_adapters_than_k_gives_the_one_all_weight() -> None:
    assert route({"en": 0.6, "sw": 0.3, "fr": 0.1}, moe_k=3).adapters == {"sw-v1": 1.0}


def test_moe_without_any_adapter_uses_bare_backbone() -> None:
    chosen = route({"en": 0.7, "fr": 0.3}, moe_k=2)
    assert (chosen.mode, chosen.language, chosen.language_probability, chosen.adapters) == ("moe", "en", 0.7, {})
    assert chosen.decode_token == "en"
    assert chosen.notice == "no detected language has an adapter: using the bare backbone"


def test_override_none_in_auto_mode_keeps_detected_language() -> None:
    assert route({"sw": 0.9, "yo": 0.1}, adapter="none") == Route("override", "sw", 0.9, {}, "sw")


def test_override_none_with_manual_language() -> None:
    assert route(language="sw", adapter="none") == Route("override", "sw", None, {}, "sw")
    assert route(language="lg", adapter="none").decode_token is None


def test_override_by_name_beats_detected_language() -> None:
    assert route({"sw": 0.9, "yo": 0.1}, adapter="yo-v2") == Route("override", "yo", 0.1, {"yo-v2": 1.0}, "yo")
    assert route(language="en", adapter="rw-a") == Route("override", "rw", None, {"rw-a": 1.0}, "sw")


def test_override_by_unknown_name_raises() -> None:
    with pytest.raises(AdapterError, match="no adapter named nope"):
        route({"sw": 1.0}, adapter="nope")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"moe_k": -1}, "K >= 1"),
        ({"moe_k": 2, "language": "sw"}, "use it with --language auto"),
        ({"threshold": 1.5}, "between 0 and 1"),
        ({"threshold": -0.1}, "between 0 and 1"),
    ],
)
def test_invalid_options_raise(options: dict[str, object], message: str) -> None:
    with pytest.raises(LoraWhisperError, match=message):
        RoutingOptions(**options)  # type: ignore[arg-type]


def test_an_adapter_trained_as_lora_moe_decodes_with_its_mixture() -> None:
    store = FakeAdapters({"sw-v1": ("sw", "sw"), "lg-moe": ("lg", "sw")})
    assert route(language="lg", adapters=store) == Route("manual", "lg", None, {"lg-moe": 1.0, "sw-v1": 0.5}, "sw")
    assert route(adapter="lg-moe", adapters=store).adapters == {"lg-moe": 1.0, "sw-v1": 0.5}
    mixed = route({"sw": 0.6, "lg": 0.4}, adapters=store, moe_k=2).adapters
    assert mixed == pytest.approx({"sw-v1": 0.6 + 0.4 * 0.5, "lg-moe": 0.4})
