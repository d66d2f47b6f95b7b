"""Adding a language changes nothing else: the backbone's files, the other adapters' files and
what those adapters transcribe are identical before and after training a new adapter. The
automatic router learns the new language from the training run alone, and forgets it when its
adapter is removed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SHARED_SPEECH

from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.core.backbone import resolve_backbone
from lorawhisper_app.core.engine import Engine
from lorawhisper_app.core.training.config import TrainConfig
from lorawhisper_app.core.training.datasets import load_dataset
from lorawhisper_app.core.training.trainer import Trainer

pytestmark = pytest.mark.integration


def _hashes(*folders: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _rows(split: str, language: str, count: int) -> list[dict]:
    manifest = SHARED_SPEECH / split / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip(f"../shared/data/speech/{split} is absent: no {manifest}")
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    rows = sorted((r for r in rows if r["language"] == language and not r.get("synthetic")), key=lambda r: r["duration_s"])
    return [{**r, "path": str(SHARED_SPEECH / split / r["path"])} for r in rows[:count]]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_training_a_new_language_changes_no_other_adapter_nor_the_backbone(tmp_path: Path) -> None:
    user = tmp_path / "adapters"
    for name in ("sw", "yo"):
        source = REPO_ROOT / "adapters" / name
        if not source.is_dir():
            pytest.skip(f"the shipped adapter {source} is absent")
        shutil.copytree(source, user / name)
    store = AdapterStore(None, user)
    backbone = resolve_backbone(None).path
    clips = {code: _rows("dev", code, 1)[0] for code in ("sw", "yo")}

    engine = Engine(store=store)
    before_text = {code: engine.transcribe(r["path"], language=code).text for code, r in clips.items()}
    before_hash = _hashes(backbone, user)

    audio: dict = {}
    train = _write(tmp_path / "train.jsonl", _rows("train", "rw", 24))
    dev = _write(tmp_path / "dev.jsonl", _rows("dev", "rw", 2))
    report = load_dataset(train, dev=dev, audio_store=audio)
    # Warm-started from Swahili and trained beside Swahili and Yoruba (MoE): both ways of
    # reading other adapters run.
    config = TrainConfig(language="rw", name="rw-new", batch_size=2, steps=1, eval_every=1, warm_start="sw", moe_k=2)
    result = Trainer(config, report, audio, store=store, run_dir=tmp_path / "run", device="cpu").run()
    assert result.meta.mixture is not None and set(result.meta.mixture) == {"rw-new", "sw", "yo"}
    assert engine.router() is not None and engine.router().languages == ["sw", "yo"]
    router_report = result.meta.training_data["router"]
    assert router_report["languages"] == ["rw", "sw", "yo"] and router_report["dev_clips"] == 2
    assert 0.0 <= router_report["dev_accuracy"] <= 1.0
    store.import_(result.adapter_dir, engine.fingerprint)
    assert (user / "rw-new" / "router.safetensors").is_file(), "the router profile travels with the adapter"
    assert engine.router().languages == ["rw", "sw", "yo"], "installing the adapter teaches the router its language"

    after_engine = Engine(store=store)
    after_text = {code: after_engine.transcribe(r["path"], language=code).text for code, r in clips.items()}
    assert _hashes(backbone, user / "sw", user / "yo") == before_hash
    assert after_text == before_text
    assert all(before_text.values())
    store.remove("rw-new")
    assert after_engine.router().languages == ["sw", "yo"], "removing the adapter removes its language from routing"
