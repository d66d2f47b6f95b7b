"""Choose which adapters decode a file: by hand, from language identification, or a mixture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .errors import LoraWhisperError
from .results import Route

AUTO = "auto"
NO_ADAPTER = "none"


@dataclass(frozen=True)
class RoutingOptions:
    """`language`: "auto" or a language code; `moe_k` > 0 mixes the top-K detected languages'
    adapters; `adapter` ("none" or a name) overrides everything else; `threshold` is the
    probability (the router's, or Whisper's LID where no adapter has a router profile) auto
    mode needs before it trusts the top language's adapter."""

    language: str = AUTO
    moe_k: int = 0
    adapter: str | None = None
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.moe_k < 0:
            raise LoraWhisperError("--moe K needs K >= 1")
        if self.moe_k and self.language != AUTO:
            raise LoraWhisperError("--moe mixes the adapters of the detected languages; use it with --language auto")
        if not 0.0 <= self.threshold <= 1.0:
            raise LoraWhisperError("the auto-routing threshold is a probability between 0 and 1")


class AdapterLookup(Protocol):
    """What routing needs to know of the installed adapters."""

    def adapter_for(self, language: str) -> tuple[str, str] | None:
        """(adapter name, decode token) of the adapter serving `language`, if any."""

    def adapter_named(self, name: str) -> tuple[str, str]:
        """(language, decode token) of the named adapter; raises AdapterError if absent."""

    def mixture_of(self, name: str) -> dict[str, float]:
        """The adapters that decode as `name`: {name: 1.0}, or the LoRA-MoE mixture it was trained in."""


def _weighted(adapters: AdapterLookup, picks: list[tuple[str, float]]) -> dict[str, float]:
    """Adapter weights of a weighted choice of adapters, each expanded into its own mixture."""
    out: dict[str, float] = {}
    for name, weight in picks:
        for part, w in adapters.mixture_of(name).items():
            out[part] = out.get(part, 0.0) + weight * w
    return out


def choose_route(
    options: RoutingOptions, probs: dict[str, float] | None, adapters: AdapterLookup, whisper_codes: set[str]
) -> Route:
    top = next(iter(probs.items())) if probs else None
    if options.adapter == NO_ADAPTER:
        language = top[0] if (top and options.language == AUTO) else options.language
        token = language if language in whisper_codes else None
        return Route("override", language, top[1] if top and language == top[0] else None, {}, token)
    if options.adapter:
        language, token = adapters.adapter_named(options.adapter)
        return Route("override", language, probs.get(language) if probs else None, _weighted(adapters, [(options.adapter, 1.0)]), token)
    if options.language != AUTO:
        found = adapters.adapter_for(options.language)
        if found:
            return Route("manual", options.language, None, _weighted(adapters, [(found[0], 1.0)]), found[1])
        token = options.language if options.language in whisper_codes else None
        notice = f"no adapter for '{options.language}': using the bare backbone"
        if token is None:
            notice += " without a language token (Whisper does not know this language)"
        return Route("manual", options.language, None, {}, token, notice)
    assert probs is not None and top is not None
    if options.moe_k:
        chosen = [(lang, p, found) for lang, p in probs.items() if (found := adapters.adapter_for(lang))]
        chosen = chosen[: options.moe_k]
        total = sum(p for _, p, _ in chosen)
        if chosen and total > 0:
            mixture = _weighted(adapters, [(found[0], p / total) for _, p, found in chosen])
            lead = chosen[0]
            return Route("moe", lead[0], lead[1], mixture, lead[2][1])
        token = top[0] if top[0] in whisper_codes else None
        return Route("moe", top[0], top[1], {}, token, "no detected language has an adapter: using the bare backbone")
    language, p = top
    found = adapters.adapter_for(language)
    if found and p >= options.threshold:
        return Route("auto", language, p, _weighted(adapters, [(found[0], 1.0)]), found[1])
    if found:
        notice = f"'{language}' detected with probability {p:.2f}, under the threshold {options.threshold:.2f}: using the bare backbone"
    else:
        notice = f"no adapter for the detected language '{language}': using the bare backbone"
    return Route("auto", language, p, {}, language if language in whisper_codes else None, notice)
