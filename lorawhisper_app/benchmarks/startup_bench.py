"""How soon the desktop app shows its window: `python -m lorawhisper_app.benchmarks.startup_bench`.

Each run starts its own X server with `xvfb-run -a` and, on it, `python -m lorawhisper_app
--quit-after-start`, which prints how long after its process was created the main window
had painted its first frame (the backbone loads after that, in the background). As the
floor that any Qt Widgets app pays (the interpreter, Qt's libraries, the X connection), the
same is measured for a bare PySide6 script that shows an empty QMainWindow of the same
size, with the same clock. Runs alternate between the two, so that a busy machine weighs
on both alike. The app runs with the user's own settings, job queue and adapters.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence

XVFB_SCREEN = "-screen 0 1920x1080x24"  # xvfb-run's default is 640 x 480 at 8 bits
RUN_TIMEOUT_S = 120
SHOWN = re.compile(r"^window shown after (\d+\.\d+) s$", re.MULTILINE)

# The empty window, timed as the app times itself: process creation (/proc/self/stat)
# to the first paint plus one turn of the event loop.
BASELINE = """
import os, time
from pathlib import Path
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

def since_start():
    after_name = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    return time.clock_gettime(time.CLOCK_BOOTTIME) - int(after_name[19]) / os.sysconf("SC_CLK_TCK")

def done():
    print(f"window shown after {since_start():.2f} s", flush=True)
    window.close()

class FirstPaint(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, done)
        return False

app = QApplication([])
window = QMainWindow()
window.resize(900, 560)
first_paint = FirstPaint()
window.installEventFilter(first_paint)
window.show()
app.exec()
"""


def display_search(slot: int = 0) -> list[str]:
    """xvfb-run's options to take the first free display from one picked by this process's id
    and `slot` (0 to 7): from the default, :99, runs started at the same moment race for it."""
    return ["-a", "-n", str(100 + os.getpid() % 100 * 8 + slot)]


def shown_after(command: Sequence[str], env: dict[str, str]) -> float:
    """Run `command` on a fresh Xvfb and return the seconds it reported."""
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        raise SystemExit("xvfb-run is not installed (Debian package xvfb)")
    done = subprocess.run(
        [xvfb, *display_search(), "-s", XVFB_SCREEN, *command],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    found = SHOWN.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return float(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (default: 5)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    env = {key: value for key, value in os.environ.items() if key != "QT_QPA_PLATFORM"}  # Qt picks xcb
    commands = {
        "app": [sys.executable, "-m", "lorawhisper_app", "--quit-after-start"],
        "empty QMainWindow": [sys.executable, "-c", BASELINE],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(1, args.runs + 1):
        for name, command in commands.items():
            times[name].append(shown_after(command, env))
        print(f"run {run}/{args.runs}: " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in commands))

    app, floor = times["app"], times["empty QMainWindow"]
    print(f"\nwindow shown after (s), {args.runs} runs each under xvfb-run ({XVFB_SCREEN.removeprefix('-screen 0 ')}):")
    print(f"{'':<20}{'median':>8}{'max':>8}")
    for name, values in times.items():
        print(f"{name:<20}{statistics.median(values):>8.2f}{max(values):>8.2f}")
    ratios = statistics.median(app) / statistics.median(floor), max(app) / max(floor)
    print(f"{'app / empty':<20}{ratios[0]:>7.1f}x{ratios[1]:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
