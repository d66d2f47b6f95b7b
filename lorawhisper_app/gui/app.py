"""Entry point of the desktop app (`lorawhisper-app`, `python -m lorawhisper_app`)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from lorawhisper_app import __version__
from lorawhisper_app.gui.display_check import missing_display
from lorawhisper_app.gui.first_run import show_welcome_if_first_run
from lorawhisper_app.gui.main_window import APP_NAME, MainWindow, app_icon

_IMPORTED_AT = time.perf_counter()
# Where the window is never painted (minimised at start, say), the backbone still loads.
HOLDER_START_FALLBACK_MS = 1000


def seconds_since_process_start() -> float:
    """Seconds since this process was created, the interpreter's own start-up included.

    On Linux the kernel's record of the start (/proc/self/stat, in clock ticks: 10 ms steps)
    is compared with the boot-time clock it counts from; elsewhere it is the time since this
    module was imported, which leaves out the interpreter's start-up.
    """
    try:
        after_name = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED_AT


class FirstPaint(QObject):
    """Calls `then` once, after `widget` has painted for the first time and the event loop
    has handled what was queued by then."""

    def __init__(self, widget: QWidget, then: Callable[[], None]) -> None:
        super().__init__(widget)
        self._then = then
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, self._then)
        return False


def parse_args(args: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The app's own options, and the rest (Qt's, e.g. `-platform xcb`) for QApplication."""
    parser = argparse.ArgumentParser(
        prog="lorawhisper-app",
        description=f"{APP_NAME}: speech recognition on a frozen Whisper backbone with LoRA adapters. "
        "Qt's own options (e.g. -platform, -style) are passed on to Qt.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--quit-after-start",
        action="store_true",
        help="diagnostic: once the main window has been shown, print "
        "'window shown after X.XX s' (since the process started) and quit, "
        "without loading the backbone",
    )
    return parser.parse_known_args(list(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Starts the app and returns its exit code when the last window closes."""
    argv = list(sys.argv if argv is None else argv)
    options, qt_args = parse_args(argv[1:])
    probes: list[socket.socket] = []  # held open until Qt has connected: see x_display_answers
    if QApplication.instance() is None and (problem := missing_display(os.environ, qt_args, keep=probes)):
        print(problem, file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(argv[:1] + qt_args)
    for probe in probes:
        probe.close()
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    # Lets desktops match the window to resources/lorawhisper-studio.desktop.
    app.setDesktopFileName("lorawhisper-studio")
    app.setWindowIcon(app_icon())
    window = MainWindow()

    def on_first_paint() -> None:
        if options.quit_after_start:
            print(f"window shown after {seconds_since_process_start():.2f} s", flush=True)
            window.close()  # the last window: the event loop ends with 0
            return
        # Loading the backbone imports torch, which holds the interpreter for a second or
        # more: begun only now, it does not hold up the first frame.
        window.holder.start()
        show_welcome_if_first_run(window)

    FirstPaint(window, on_first_paint)
    window.show()
    QTimer.singleShot(HOLDER_START_FALLBACK_MS, window.holder.start)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
