"""Started where no window can open, the app says so and exits instead of Qt aborting it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorawhisper_app.gui.app import missing_display

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is Linux-only (X11/Wayland)")
def test_the_app_explains_a_missing_display_and_exits_2(tmp_path: Path) -> None:
    hidden = {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    env |= {"LORAWHISPER_CONFIG_DIR": str(tmp_path / "config"), "LORAWHISPER_DATA_DIR": str(tmp_path / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "lorawhisper_app"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "no display to open a window on" in done.stderr
    assert "could not connect" not in done.stderr  # Qt was never asked
    assert not (tmp_path / "config").exists()  # nothing was written on the way out


@pytest.mark.parametrize(
    ("environ", "qt_args", "platform", "refused"),
    [
        ({}, [], "linux", True),
        ({"DISPLAY": ":0"}, [], "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, [], "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, [], "linux", False),
        ({}, ["-platform", "vnc"], "linux", False),
        ({}, [], "darwin", False),
        ({}, [], "win32", False),
    ],
)
def test_only_a_linux_session_with_no_display_and_no_chosen_platform_is_refused(
    environ: dict[str, str], qt_args: list[str], platform: str, refused: bool
) -> None:
    assert (missing_display(environ, qt_args, platform) is not None) == refused
