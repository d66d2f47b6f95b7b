"""Whether the app can open a window at all, asked before Qt is.

On Linux, Qt aborts the process (SIGABRT and a core file) when its platform plugin cannot
connect to a display, so the app checks first and explains: no DISPLAY or WAYLAND_DISPLAY
(ssh without -X, a container, a service), or one that is set but where nothing answers (a
stale DISPLAY after the X server stopped, an ssh session that did not forward X).
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

X11_SOCKET_DIR = Path("/tmp/.X11-unix")
X11_TCP_PORT = 6000
CONNECT_TIMEOUT_S = 2.0
# [protocol/][host]:display[.screen], e.g. ":0", "unix:1", "localhost:10.0", "tcp/box:2".
X_DISPLAY_NAME = re.compile(r"(?:(?P<protocol>[A-Za-z0-9]+)/)?(?P<host>[^/:]*):(?P<number>\d+)(?:\.\d+)?")
WAYS_TO_A_DISPLAY = (
    "Start it from a desktop session, over `ssh -X`, or under `xvfb-run`; "
    "`lorawhisper` (the command line) transcribes and trains without one."
)


def _answered(sock: socket.socket, keep: list[socket.socket] | None) -> bool:
    if keep is None:
        sock.close()
    else:
        keep.append(sock)
    return True


def _unix_connects(address: str, timeout: float, keep: list[socket.socket] | None = None) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        return False
    return _answered(sock, keep)


def _tcp_connects(host: str, port: int, timeout: float, keep: list[socket.socket] | None = None) -> bool:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    return _answered(sock, keep)


def x_display_answers(
    display: str, socket_dir: Path = X11_SOCKET_DIR, timeout: float = CONNECT_TIMEOUT_S,
    keep: list[socket.socket] | None = None,
) -> bool | None:
    """Whether something accepts connections where the X display `display` lives: the
    local socket (Linux's abstract one, then the file in `socket_dir`) or TCP port 6000 + N,
    as libxcb tries them. None for a name it does not parse: Qt is left to judge that.

    An X server resets when its last client leaves and refuses connections while it does, so
    a probe closed at once can make Qt's own connection a moment later fail (and Qt abort):
    under xvfb-run, whose server has no other client, 4 of 16 starts four at a time did on a
    busy machine. `keep` receives the connection that answered, still open, to close once Qt has
    connected."""
    match = X_DISPLAY_NAME.fullmatch(display)
    if match is None:
        return None
    protocol, host, number = match["protocol"], match["host"], int(match["number"])
    local = protocol in (None, "unix") and host in ("", "unix")
    if local:
        path = str(socket_dir / f"X{number}")
        linux = sys.platform.startswith("linux")
        if (linux and _unix_connects("\0" + path, timeout, keep)) or _unix_connects(path, timeout, keep):
            return True
        if protocol == "unix" or host == "unix":
            return False
    return _tcp_connects(host or "localhost", X11_TCP_PORT + number, timeout, keep)


def wayland_display_answers(name: str, runtime_dir: str | None, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a Wayland compositor accepts connections at `name` (a socket path, or a name
    in XDG_RUNTIME_DIR, as libwayland reads WAYLAND_DISPLAY)."""
    if Path(name).is_absolute():
        return _unix_connects(name, timeout)
    return runtime_dir is not None and _unix_connects(str(Path(runtime_dir) / name), timeout)


def missing_display(
    environ: Mapping[str, str],
    qt_args: Sequence[str],
    platform: str = sys.platform,
    x_socket_dir: Path = X11_SOCKET_DIR,
    keep: list[socket.socket] | None = None,
) -> str | None:
    """Why no window can open, or None when one can (or when the user chose Qt's platform,
    with QT_QPA_PLATFORM or -platform, and so the means of checking). `keep`: as for
    `x_display_answers`."""
    if not platform.startswith("linux"):
        return None
    if environ.get("QT_QPA_PLATFORM") or "-platform" in qt_args:
        return None
    x_display, wayland = environ.get("DISPLAY"), environ.get("WAYLAND_DISPLAY")
    if not x_display and not wayland:
        return (
            "lorawhisper-app: no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY "
            f"is set). {WAYS_TO_A_DISPLAY}"
        )
    if wayland and wayland_display_answers(wayland, environ.get("XDG_RUNTIME_DIR")):
        return None
    if x_display and x_display_answers(x_display, x_socket_dir, keep=keep) is not False:
        return None
    named = (("WAYLAND_DISPLAY", wayland), ("DISPLAY", x_display))
    tried = " or ".join(f"{name}={value}" for name, value in named if value)
    return (
        f"lorawhisper-app: nothing answers at {tried}, so no window can open (a display server "
        f"that has stopped, or an ssh session that does not forward X?). {WAYS_TO_A_DISPLAY} "
        "To let Qt try anyway, set QT_QPA_PLATFORM (e.g. QT_QPA_PLATFORM=xcb)."
    )
