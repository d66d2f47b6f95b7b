"""The converted built-in backbone decodes exactly as CTranslate2 does on the original files.

Both engines get the identical log-mel features (faster-whisper's own front end, computed
once per clip), so any difference comes from the conversion or from our decoding loop.
Runs the real Whisper base on the 2 shortest real dev clips of each of 7 languages:
about 65 s on two cores shared with other work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (a test-only dependency) is not installed")
feature_extractor = pytest.importorskip("faster_whisper.feature_extractor", reason="faster-whisper is not installed")
from faster_whisper.audio import pad_or_trim  # noqa: E402

from lorawhisper_app.core.audio import load_audio  # noqa: E402
from lorawhisper_app.core.backbone import load_backbone, write_builtin_ct2_folder  # noqa: E402
from lorawhisper_app.core.decoding import SpecialTokens, WindowDecoder  # noqa: E402
from lorawhisper_app.core.features import N_FRAMES  # noqa: E402

pytestmark = pytest.mark.integration

LANGUAGES = ("en", "de", "fr", "es", "pt", "sw", "yo")
CLIPS_PER_LANGUAGE = 2  # shortest first: 14 clips keep the test near a minute
TOP_LANGUAGES = 5
LID_TOLERANCE = 1e-4
DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "dev"


def _real_clips() -> list[tuple[str, Path]]:
    """(language, path) of the shortest real (not synthetic) dev clips of each language."""
    manifest = DEV / "manifest.jsonl"
    if not manifest.is_file():
        return []
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    clips = []
    for language in LANGUAGES:
        real = [r for r in rows if r["language"] == language and r.get("synthetic") is None]
        real.sort(key=lambda r: (r["duration_s"], r["path"]))
        clips += [(language, DEV / r["path"]) for r in real[:CLIPS_PER_LANGUAGE]]
    return clips


CLIPS = _real_clips()


@pytest.fixture(scope="module")
def ours() -> Iterator[WindowDecoder]:
    """Our decoder on the built-in backbone (converted into the tests' cache), in fp32."""
    backbone = load_backbone(None, device="cpu", dtype="float32")
    yield WindowDecoder(backbone.model, SpecialTokens.from_model(backbone.model, backbone.processor.tokenizer))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ctranslate2.models.Whisper:
    """CTranslate2 on the original package files (the two parts joined into model.bin), fp32."""
    folder = tmp_path_factory.mktemp("ct2")
    write_builtin_ct2_folder(folder)
    return ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=2)


@pytest.fixture(scope="module")
def extractor() -> feature_extractor.FeatureExtractor:
    return feature_extractor.FeatureExtractor(feature_size=80)


def test_dev_clips_present() -> None:
    if not (DEV / "manifest.jsonl").is_file():
        pytest.skip(f"../shared/data/speech/dev is absent: no {DEV / 'manifest.jsonl'}")
    missing = [lang for lang in LANGUAGES if not any(lang == code for code, _ in CLIPS)]
    assert not missing, f"no real dev clips for {missing}"


@pytest.mark.skipif(not CLIPS, reason=f"../shared/data/speech/dev is absent: no {DEV / 'manifest.jsonl'}")
@pytest.mark.parametrize(("language", "path"), CLIPS, ids=[f"{lang}-{p.stem}" for lang, p in CLIPS])
def test_same_greedy_tokens_and_language_probabilities(
    language: str,
    path: Path,
    ours: WindowDecoder,
    reference: ctranslate2.models.Whisper,
    extractor: feature_extractor.FeatureExtractor,
) -> None:
    features = pad_or_trim(extractor(load_audio(path)), N_FRAMES)[None].astype(np.float32)
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
    prompt = ours.tokens.prompt(language, timestamps=False)  # [sot, lang, transcribe, notimestamps]

    # Same suppression on both sides: suppress_tokens=[-1] makes CTranslate2 use the
    # config.json "suppress_ids" list, which the conversion copied into suppress_tokens
    # (ours.tokens.suppress); suppress_blank masks " " (220) and the end token at the
    # first sampled step, which is config.json's "suppress_ids_begin" = our suppress_begin.
    assert ours.tokens.suppress_begin == (220, ours.tokens.eot)
    expected = reference.generate(
        storage, [prompt], beam_size=1, suppress_blank=True, suppress_tokens=[-1]
    )[0].sequences_ids[0]
    enc = ours.encode(torch.from_numpy(features))
    got = ours.decode(enc, prompt, timestamps=False, temperature=0.0).tokens
    if got != expected:
        at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        pytest.fail(
            f"{path.name}: greedy ids diverge at token {at}: ours {got[at:at + 5]} vs CTranslate2 "
            f"{expected[at:at + 5]} (common prefix {got[:at]})"
        )

    ct2_top = reference.detect_language(storage)[0][:TOP_LANGUAGES]
    probs = ours.language_probs(enc)[0]
    for token, p in ct2_top:
        code = token.strip("<|>")
        assert probs[code] == pytest.approx(p, abs=LID_TOLERANCE), f"{path.name}: P({code})"
