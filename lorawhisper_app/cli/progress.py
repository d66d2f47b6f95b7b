"""A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()

    def update(self, done: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        fraction = min(1.0, done / total)
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        width = 30
        bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
        sys.stderr.write(f"\r{self.label[:40]:40} [{bar}] {fraction:4.0%} ETA {eta:5.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()
