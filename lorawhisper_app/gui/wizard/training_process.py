"""`lorawhisper train … --json` in a child process: its JSON lines as events, its stderr kept
for the log and for saying why it failed.

A child process rather than a thread: a crash or an out-of-memory kill in training never
takes the window down, and stopping it frees all the memory it used. `stop()` sends
SIGTERM, on which the trainer stops at the end of its step or batch, writes a checkpoint
(once it has trained a step) and exits; running the same arguments again resumes from it.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

STDERR_LINES_KEPT = 20


def train_command(args: list[str]) -> tuple[str, list[str]]:
    """The program and arguments that run `lorawhisper train ARGS` with this Python."""
    return sys.executable, ["-m", "lorawhisper_app.cli.main", "train", *args]


class TrainingProcess(QObject):
    """One child at a time. `event` carries each JSON line the child prints (a dict with
    "event"), `log_line` each other line (stderr, or stdout that is not JSON), and
    `exited(exit code, crashed)` its end; `failed_to_start(reason)` when it never ran."""

    event = Signal(object)  # dict
    log_line = Signal(str)
    exited = Signal(int, bool)
    failed_to_start = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._stdout = bytearray()
        self._stderr = bytearray()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int | None:
        if self._process is None:
            return None
        return int(self._process.processId()) or None

    def start(self, args: list[str]) -> None:
        if self.running:
            raise RuntimeError("a training process is already running")
        self.stderr_tail.clear()
        self._stdout.clear()
        self._stderr.clear()
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        environment.insert("TOKENIZERS_PARALLELISM", "false")
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        program, arguments = train_command(args)
        process.start(program, arguments)

    def stop(self) -> None:
        """Ask the child to stop after its current step, keeping a checkpoint (SIGTERM)."""
        if self.running:
            assert self._process is not None
            if os.name == "nt":  # no SIGTERM for a console child on Windows: it stops at once
                self._process.kill()
            else:
                self._process.terminate()

    def kill(self) -> None:
        """Stop at once; the steps since the last checkpoint are lost."""
        if self.running:
            assert self._process is not None
            self._process.kill()

    def wait(self, msecs: int) -> bool:
        """Block until the child ends (for shutting down only); True when it has."""
        return self._process is None or self._process.waitForFinished(msecs)

    def _read_stdout(self, final: bool = False) -> None:
        assert self._process is not None
        self._stdout += bytes(self._process.readAllStandardOutput().data())
        for line in _take_lines(self._stdout, final):
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("event"), str):
                self.event.emit(data)
            elif line.strip():
                self.log_line.emit(line)

    def _read_stderr(self, final: bool = False) -> None:
        assert self._process is not None
        self._stderr += bytes(self._process.readAllStandardError().data())
        for line in _take_lines(self._stderr, final):
            if line.strip():
                self.stderr_tail.append(line)
                self.log_line.emit(line)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout(final=True)
        self._read_stderr(final=True)
        self.exited.emit(code, status == QProcess.ExitStatus.CrashExit)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            assert self._process is not None
            program = self._process.program()
            self.failed_to_start.emit(f"{program}: could not start the training process ({self._process.errorString()})")


def _take_lines(buffer: bytearray, final: bool) -> list[str]:
    """The complete lines in `buffer`, removed from it; a partial last line stays unless `final`."""
    if final and buffer and not buffer.endswith(b"\n"):
        buffer += b"\n"
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    lines = bytes(buffer[: end + 1]).decode("utf-8", errors="replace").splitlines()
    del buffer[: end + 1]
    return lines
