"""Started where no window can open, the app says so and exits instead of Qt aborting it.

The reachability checks run against real listening sockets (TCP, a socket file, Linux's
abstract namespace); test_gui_xvfb starts the app on a real X server through the same check.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorawhisper_app.gui.display_check import X11_SOCKET_DIR, X11_TCP_PORT, missing_display, x_display_answers

REPO_ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is Linux-only (X11/Wayland)")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a Unix socket's path must stay under 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="lwdisp", dir="/tmp") as folder:
        yield Path(folder)


def listening_unix(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen()
    return sock


def free_display_number() -> int:
    """A display number with no X socket here and nothing on its TCP port."""
    for number in range(300, 400):
        if not (X11_SOCKET_DIR / f"X{number}").exists() and x_display_answers(f":{number}", timeout=0.5) is False:
            return number
    pytest.skip("no free X display number between 300 and 400")


def run_app(tmp_path: Path, **display: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child with exactly these display variables."""
    hidden = {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    env = {key: value for key, value in os.environ.items() if key not in hidden} | display
    env |= {"LORAWHISPER_CONFIG_DIR": str(tmp_path / "config"), "LORAWHISPER_DATA_DIR": str(tmp_path / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "lorawhisper_app"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


@linux_only
def test_the_app_explains_a_missing_display_and_exits_2(tmp_path: Path) -> None:
    done = run_app(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no display to open a window on" in done.stderr
    assert "could not connect" not in done.stderr  # Qt was never asked
    assert not (tmp_path / "config").exists()  # nothing was written on the way out


@linux_only
def test_the_app_explains_a_display_where_nothing_answers_and_exits_2(tmp_path: Path) -> None:
    display = f":{free_display_number()}"
    done = run_app(tmp_path, DISPLAY=display)
    assert done.returncode == 2, done.stderr
    assert f"nothing answers at DISPLAY={display}" in done.stderr and "QT_QPA_PLATFORM" in done.stderr
    assert "could not connect" not in done.stderr
    assert not (tmp_path / "config").exists()


@linux_only
def test_a_display_answers_only_while_something_listens_there(short_dir: Path) -> None:
    # The socket file, as X servers make in /tmp/.X11-unix.
    with listening_unix(str(short_dir / "X7")):
        assert x_display_answers(":7", short_dir) is True
        assert x_display_answers("unix:7.0", short_dir) is True
    (short_dir / "X7").unlink()
    assert x_display_answers("unix:7", short_dir) is False
    # Linux's abstract namespace, where Xorg and Xwayland also listen; no file exists.
    with listening_unix("\0" + str(short_dir / "X8")):
        assert x_display_answers(":8", short_dir) is True
    assert not (short_dir / "X8").exists()
    assert x_display_answers("unix:8", short_dir) is False


@linux_only
def test_the_connection_that_answered_stays_open_when_kept(short_dir: Path) -> None:
    """An X server resets when its last client leaves, refusing connections meanwhile; the app
    keeps its probe open until Qt has connected (tests/test_gui_xvfb.py starts it on real servers)."""
    with listening_unix(str(short_dir / "X9")) as server:
        kept: list[socket.socket] = []
        assert missing_display({"DISPLAY": ":9"}, [], "linux", short_dir, keep=kept) is None and len(kept) == 1
        accepted, _ = server.accept()
        with accepted:
            accepted.settimeout(0.3)
            with pytest.raises(TimeoutError):
                accepted.recv(1)  # nothing, and no end of stream: the probe is still connected
            kept[0].close()
            accepted.settimeout(5)
            assert accepted.recv(1) == b""  # closed by its holder
        assert x_display_answers(":9", short_dir) is True  # nothing to keep it in: closed at once
        accepted, _ = server.accept()
        with accepted:
            accepted.settimeout(5)
            assert accepted.recv(1) == b""


@linux_only
def test_a_tcp_display_answers_only_while_its_port_listens() -> None:
    for number in range(100, 200):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind(("127.0.0.1", X11_TCP_PORT + number))
            break
        except OSError:
            server.close()
    else:
        pytest.skip("no free TCP port between 6100 and 6200")
    with server:
        server.listen()
        assert x_display_answers(f"127.0.0.1:{number}.0") is True  # ssh -X forwards as localhost:10.0
        assert x_display_answers(f"tcp/127.0.0.1:{number}") is True
    assert x_display_answers(f"127.0.0.1:{number}", timeout=0.5) is False


def test_a_display_name_it_cannot_read_is_left_to_qt() -> None:
    assert x_display_answers("not a display") is None
    assert missing_display({"DISPLAY": "not a display"}, [], "linux") is None


@linux_only
def test_wayland_counts_where_its_socket_answers(short_dir: Path) -> None:
    environ = {"WAYLAND_DISPLAY": "wayland-3", "XDG_RUNTIME_DIR": str(short_dir)}
    assert "nothing answers at WAYLAND_DISPLAY=wayland-3" in (missing_display(environ, [], "linux") or "")
    with listening_unix(str(short_dir / "wayland-3")):
        assert missing_display(environ, [], "linux") is None
        absolute = {"WAYLAND_DISPLAY": str(short_dir / "wayland-3")}  # no XDG_RUNTIME_DIR needed then
        assert missing_display(absolute, [], "linux") is None


@linux_only
def test_either_display_answering_is_enough(short_dir: Path) -> None:
    """Qt falls back from Wayland to X (and picks X without Wayland), so one live server will do."""
    both = {"WAYLAND_DISPLAY": "wayland-5", "XDG_RUNTIME_DIR": str(short_dir), "DISPLAY": ":5"}
    refused = missing_display(both, [], "linux", short_dir) or ""
    assert "WAYLAND_DISPLAY=wayland-5 or DISPLAY=:5" in refused
    with listening_unix(str(short_dir / "X5")):
        assert missing_display(both, [], "linux", short_dir) is None


@pytest.mark.parametrize(
    ("environ", "qt_args", "platform", "refused"),
    [
        ({}, [], "linux", True),
        ({"DISPLAY": ":391"}, [], "linux", True),  # nothing listens in the empty socket folder
        ({"QT_QPA_PLATFORM": "offscreen"}, [], "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":391"}, [], "linux", False),  # the user said try anyway
        ({}, ["-platform", "vnc"], "linux", False),
        ({}, [], "darwin", False),
        ({}, [], "win32", False),
    ],
)
def test_only_a_linux_session_without_a_live_display_or_a_chosen_platform_is_refused(
    environ: dict[str, str], qt_args: list[str], platform: str, refused: bool, short_dir: Path
) -> None:
    if environ.get("DISPLAY") == ":391" and x_display_answers(":391", timeout=0.5):
        pytest.skip("something listens on TCP port 6391 here")
    assert (missing_display(environ, qt_args, platform, short_dir) is not None) == refused
