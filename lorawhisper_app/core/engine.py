"""The engine facade: load a backbone once, then detect, route and transcribe files.

    from lorawhisper_app.core.engine import Engine
    engine = Engine()                      # built-in Whisper base, CPU or CUDA
    result = engine.transcribe("talk.opus", language="auto")
    print(result.route, result.text)
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .adapter_runtime import AdapterRuntime
from .adapter_store import (
    ROUTER_FILE,
    AdapterInfo,
    AdapterStore,
    bundled_adapter_dir,
    default_user_adapter_dir,
    validate_adapter_dir,
)
from .audio import SAMPLE_RATE, audio_duration, iter_audio_chunks
from .backbone import LoadedBackbone, load_backbone
from .decoding import SpecialTokens, WindowDecoder
from .errors import AdapterError
from .features import CHUNK_SECONDS, N_SAMPLES
from .results import Route, TranscriptionResult
from .router import FeatureTap, Router, load_profiles
from .routing import RoutingOptions, choose_route
from .transcriber import AudioWindows, DecodeOptions, ProgressFn, Transcriber


def default_cpu_threads() -> int:
    """One torch thread per physical core, assuming two hardware threads per core.

    Measured on a 2-core machine: two threads were no faster than one, and many times
    slower whenever another process was busy on the other core.
    """
    return max(1, (os.cpu_count() or 2) // 2)


class _StoreLookup:
    """Routing's view of the adapter store: compatible adapters only."""

    def __init__(self, store: AdapterStore, fingerprint: str) -> None:
        self.store = store
        self.fingerprint = fingerprint

    def adapter_for(self, language: str) -> tuple[str, str] | None:
        info = self.store.for_language(language, self.fingerprint)
        return (info.name, info.meta.decode_token) if info else None

    def adapter_named(self, name: str) -> tuple[str, str]:
        info = self.store.get(name)
        return info.meta.language, info.meta.decode_token

    def mixture_of(self, name: str) -> dict[str, float]:
        mixture = self.store.get(name).meta.mixture
        return dict(mixture) if mixture else {name: 1.0}


@dataclass(frozen=True)
class Identification:
    """What auto mode knows of a clip: the router's distribution over languages (Whisper's
    LID where no installed adapter has a router profile), Whisper's LID, and the bare
    backbone's encoding they came from."""

    probabilities: dict[str, float]
    whisper: dict[str, float]
    encoding: torch.Tensor


class Engine:
    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        store: AdapterStore | None = None,
        decode_options: DecodeOptions | None = None,
        threads: int | None = None,
    ) -> None:
        self.backbone: LoadedBackbone = load_backbone(model, device, dtype)
        if self.backbone.device.type == "cpu":
            torch.set_num_threads(threads or default_cpu_threads())
        self.store = store if store is not None else AdapterStore(bundled_adapter_dir(), default_user_adapter_dir())
        self.runtime = AdapterRuntime(self.backbone.model)
        self.tokens = SpecialTokens.from_model(self.backbone.model, self.backbone.processor.tokenizer)
        self.decoder = WindowDecoder(self.backbone.model, self.tokens, self.backbone.compute.encoder_autocast)
        self.transcriber = Transcriber(self.decoder, self._decode_text, decode_options or DecodeOptions())
        self.lock = threading.RLock()  # guards the active adapters for every user of the engine
        self._router: tuple[tuple[object, ...], Router | None] = ((), None)

    @property
    def fingerprint(self) -> str:
        return self.backbone.files.fingerprint

    @property
    def whisper_languages(self) -> set[str]:
        return set(self.tokens.lang_ids)

    def _decode_text(self, ids: list[int]) -> str:
        return self.backbone.processor.tokenizer.decode(ids, skip_special_tokens=True)

    # -- adapters -----------------------------------------------------------------

    def use_adapters(self, mixture: dict[str, float], *, unmerged: bool = False) -> None:
        """Load (once) and activate a mixture of installed adapters; {} is the bare backbone."""
        for name in mixture:
            if name not in self.runtime.loaded:
                info = self.store.get(name)
                validate_adapter_dir(info.path, self.fingerprint)
                self.runtime.load(name, info.path)
        self.runtime.activate(mixture, unmerged=unmerged)

    def preload_adapters(self) -> list[str]:
        """Load and merge every adapter auto mode routes to (the store's choice for each
        language), so that no later switch to one pays for it (0.3 s each for Whisper
        base on this CPU, against 2 ms once merged). Returns their names. One that fails
        to load is left out: its error comes when something is routed to it."""
        languages = {info.meta.language for info in self.store.list() if info.compatible_with(self.fingerprint)}
        lookup = _StoreLookup(self.store, self.fingerprint)
        names = []
        with self.lock:
            active, unmerged = dict(self.runtime.active), self.runtime.unmerged
            for language in sorted(languages):
                info = self.store.for_language(language, self.fingerprint)
                if info is None:
                    continue
                try:
                    self.use_adapters(lookup.mixture_of(info.name))
                except AdapterError:
                    continue
                names.append(info.name)
            self.use_adapters(active, unmerged=unmerged)
        return names

    # -- language identification ----------------------------------------------------

    def _encode_bare(self, audio: np.ndarray) -> torch.Tensor:
        self.use_adapters({})
        return self.decoder.encode_audio(audio)

    def language_probabilities(self, audio: np.ndarray) -> dict[str, float]:
        """P(language) over Whisper's languages for the first 30 s, all adapters off."""
        with self.lock:
            return self.decoder.language_probs(self._encode_bare(audio[:N_SAMPLES]))[0]

    def detect_language(self, path: str | Path) -> dict[str, float]:
        first = next(iter_audio_chunks(path, CHUNK_SECONDS))
        return self.language_probabilities(first)

    def router(self) -> Router | None:
        """The router over the languages whose preferred compatible adapter has a router
        profile; None with fewer than two (rebuilt only when those files change)."""
        serving: dict[str, list[AdapterInfo]] = {}
        for info in self.store.list():
            if info.compatible_with(self.fingerprint):
                serving.setdefault(info.meta.language, []).append(info)
        paths: dict[str, Path] = {}
        for language, infos in sorted(serving.items()):
            # The adapter auto mode would use for the language (the store's choice where several serve it).
            info = infos[0] if len(infos) == 1 else self.store.for_language(language, self.fingerprint)
            if info is not None and (info.path / ROUTER_FILE).is_file():
                paths[language] = info.path / ROUTER_FILE
        key = tuple((lang, str(path), path.stat().st_mtime_ns, path.stat().st_size) for lang, path in paths.items())
        if key != self._router[0]:
            profiles = load_profiles(paths)
            self._router = (key, Router(profiles) if len(profiles) >= 2 else None)
        return self._router[1]

    def identify(self, audio: np.ndarray, encode: Callable[[np.ndarray], torch.Tensor] | None = None) -> Identification:
        """Route-deciding probabilities of up to 30 s of audio, all adapters off. `encode`
        (default: a whole padded window) is how the bare encoding is made."""
        audio = audio[:N_SAMPLES]
        with self.lock:
            self.use_adapters({})
            router = self.router()
            with FeatureTap(self.backbone.model) as tap:
                encoding = (encode or self.decoder.encode_audio)(audio)
            whisper = self.decoder.language_probs(encoding)[0]
            if router is None:
                return Identification(whisper, whisper, encoding)
            return Identification(router.probabilities(tap.pooled([len(audio)])[0], whisper), whisper, encoding)

    # -- transcription -----------------------------------------------------------------

    def route(
        self, options: RoutingOptions, probs: dict[str, float] | None, whisper: dict[str, float] | None = None
    ) -> Route:
        """Choose the adapters; `probs` decide (see `identify`), `whisper` (top 5 kept) is for show."""
        route = choose_route(options, probs, _StoreLookup(self.store, self.fingerprint), self.whisper_languages)
        return replace(route, whisper_probabilities=dict(list(whisper.items())[:5])) if whisper else route

    def transcribe(
        self,
        source: str | Path | np.ndarray,
        options: RoutingOptions | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        **routing: object,
    ) -> TranscriptionResult:
        """Transcribe a file (or a 16 kHz mono array). Routing options may be given as
        a RoutingOptions or as keywords (language="auto", moe_k=2, adapter="sw", threshold=0.5)."""
        options = options or RoutingOptions(**routing)  # type: ignore[arg-type]
        if isinstance(source, np.ndarray):
            name, duration = "<audio>", len(source) / SAMPLE_RATE
            chunks = iter([source.astype(np.float32, copy=False)])
        else:
            name, duration = str(source), audio_duration(source)
            chunks = iter_audio_chunks(source, CHUNK_SECONDS)
        windows = AudioWindows(chunks)
        with self.lock:
            first = windows.window(0)
            found = self.identify(first) if options.language == "auto" else None
            probs = found.probabilities if found else None
            bare_encoding = found.encoding if found else None
            route = self.route(options, probs, found.whisper if found else None)
            self.use_adapters(route.adapters)
            segments = self.transcriber.run(
                windows,
                route.decode_token,
                duration,
                first_encoding=bare_encoding if not route.adapters else None,
                progress=progress,
                cancel=cancel,
            )
        top = dict(list(probs.items())[:5]) if probs else {}
        return TranscriptionResult(name, duration, segments, route, top)

