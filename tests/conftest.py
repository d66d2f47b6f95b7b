"""Shared test set-up. Keep it small: fixtures used by one file belong in that file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lorawhisper_app.benchmarks.virtual_mic import VirtualMicrophone, virtual_mic_unavailable

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


@pytest.fixture(scope="session")
def speech_train() -> Path:
    """../shared/data/speech/train, or skip the test where it is absent."""
    train = SHARED_SPEECH / "train"
    if not (train / "manifest.jsonl").is_file():
        pytest.skip(f"../shared/data/speech/train is absent: no {train / 'manifest.jsonl'}")
    return train


@pytest.fixture(scope="session", autouse=True)
def _no_pulse_autospawn(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Scanning audio devices outside a VirtualMicrophone probes ALSA's pulse device, whose
    libpulse would otherwise autospawn the user's own PulseAudio daemon: never in tests."""
    conf = tmp_path_factory.mktemp("pulse-client") / "client.conf"
    conf.write_text("autospawn = no\n")
    os.environ["PULSE_CLIENTCONFIG"] = str(conf)


@pytest.fixture
def mic() -> Iterator[VirtualMicrophone]:
    """A private PulseAudio daemon with a null sink: play into it, record its monitor."""
    reason = virtual_mic_unavailable()
    if reason:
        pytest.skip(f"no virtual audio device: {reason}")
    with VirtualMicrophone() as virtual:
        yield virtual


@pytest.fixture(scope="session", autouse=True)
def _private_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The app's cache, data and config folders, and the user data folder that holds the
    adapter store (platformdirs follows XDG_DATA_HOME), are the session's own: tests never
    touch the user's. Tests that need another folder set it themselves (monkeypatch)."""
    os.environ["LORAWHISPER_CACHE_DIR"] = str(tmp_path_factory.mktemp("lorawhisper-cache"))
    os.environ["LORAWHISPER_DATA_DIR"] = str(tmp_path_factory.mktemp("lorawhisper-data"))
    os.environ["LORAWHISPER_CONFIG_DIR"] = str(tmp_path_factory.mktemp("lorawhisper-config"))
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))


def fill_up(folder: Path) -> None:
    """Write zeros into `folder` (on a small disk) until its filesystem has no room left."""
    subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=4k"], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts real filesystems of a given size (tmpfs, e.g. "300k"), so that writing into one runs
    out of space as on a user's full disk; each is unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"small-disk-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot mount a small tmpfs here (it needs root): {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)
