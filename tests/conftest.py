"""Shared test set-up. Keep it small: fixtures used by one file belong in that file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Qt without a display unless the caller chose a platform (e.g. xcb under xvfb-run).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The speech data lies beside the repository, in ../shared (not in git).
SHARED_SPEECH = REPO_ROOT.parent / "shared" / "data" / "speech"


@pytest.fixture(scope="session")
def speech_dev() -> Path:
    """../shared/data/speech/dev, or skip the test where it is absent."""
    dev = SHARED_SPEECH / "dev"
    if not (dev / "manifest.jsonl").is_file():
        pytest.skip(f"../shared/data/speech/dev is absent: no {dev / 'manifest.jsonl'}")
    return dev


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests convert the built-in backbone into a cache of their own (once per session),
    never into the user's cache folder."""
    os.environ["LORAWHISPER_CACHE_DIR"] = str(tmp_path_factory.mktemp("lorawhisper-cache"))
