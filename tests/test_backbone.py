"""Built-in backbone: converted once into the cache, atomically, fingerprinted, reused."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from lorawhisper_app.core import backbone
from lorawhisper_app.core.errors import BackboneError


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORAWHISPER_CACHE_DIR", str(tmp_path))
    return tmp_path


def _source_sha() -> str:
    parts, _ = backbone.builtin_sources()
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.read_bytes())
    return "sha256:" + sha.hexdigest()


def test_converted_once_then_reused(cache: Path) -> None:
    first = backbone.resolve_backbone()
    assert first.fingerprint == _source_sha()
    assert first.path.parent == cache / "backbones"
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".converting")]
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        assert (first.path / name).is_file(), name
    weights = first.path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = backbone.resolve_backbone("builtin")
    assert again == first
    assert weights.stat().st_mtime_ns == stamp  # not converted a second time


def test_damaged_cache_is_converted_again(cache: Path) -> None:
    files = backbone.resolve_backbone()
    weights = files.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # e.g. a disk that filled up mid-copy
    repaired = backbone.resolve_backbone()
    assert repaired.fingerprint == files.fingerprint
    info = json.loads((repaired.path / "lorawhisper-backbone.json").read_text())
    assert (repaired.path / "model.safetensors").stat().st_size == info["weights_bytes"]


def test_too_little_room_to_unpack_is_said_before_writing(
    small_disk: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first start on a nearly full disk (a real 50 MiB filesystem): one line with the sizes, nothing left behind."""
    cache = small_disk("50m")
    monkeypatch.setenv("LORAWHISPER_CACHE_DIR", str(cache))
    with pytest.raises(BackboneError) as caught:
        backbone.resolve_backbone()
    assert re.fullmatch(rf"{cache / 'backbones'}: not enough room to unpack the built-in backbone: it needs 145 MB, "
                        r"5\d MB are free", str(caught.value)), str(caught.value)
    assert list((cache / "backbones").iterdir()) == []


def test_local_folder_fingerprint_is_memoised(cache: Path) -> None:
    built = backbone.resolve_backbone()
    local = backbone.resolve_backbone(str(built.path))
    assert local.fingerprint.startswith("sha256:") and local.fingerprint != built.fingerprint
    assert list((cache / "fingerprints").iterdir())
    assert backbone.resolve_backbone(str(built.path)).fingerprint == local.fingerprint


def test_bad_model_arguments_are_clear(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="not a transformers Whisper folder"):
        backbone.resolve_backbone(str(tmp_path / "empty"))
    with pytest.raises(BackboneError, match="could not be fetched"):
        backbone.resolve_backbone("no-such-org/no-such-model")
    with pytest.raises(BackboneError, match="float16 needs a GPU"):
        backbone.resolve_compute_type("float16", backbone.resolve_device("cpu"))
    with pytest.raises(BackboneError, match="unknown compute type"):
        backbone.resolve_compute_type("int3", backbone.resolve_device("cpu"))
