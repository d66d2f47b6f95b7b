"""Ctrl-C during `lorawhisper transcribe` stops cleanly and keeps the finished files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _as_from_a_terminal() -> None:
    """Give the child SIGINT as a terminal would: default action, not blocked.

    A child inherits an ignored SIGINT (shells' background jobs) and a blocked one (CI
    runners): with either, Ctrl+C never reaches it and it would run to the end.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_sigint_keeps_finished_transcripts(speech_dev: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines()]
    clips = [speech_dev / r["path"] for r in rows if r["language"] == "sw" and r["synthetic"] is None][:6]
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "lorawhisper_app.cli.main", "transcribe", *map(str, clips), "--out", str(out), "--language", "sw"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,
    )
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(out.glob("*.txt"))):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no transcript was written in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    finished = sorted(out.iterdir())
    assert 1 <= len(finished) < len(clips)
    assert all(p.suffix == ".txt" and p.read_text().strip() for p in finished), finished  # no partial or temp files
    assert f"of {len(clips)} files finished and kept in {out}" in stderr
    assert "Traceback" not in stderr
    assert len(stdout.strip().splitlines()) == len(finished)
