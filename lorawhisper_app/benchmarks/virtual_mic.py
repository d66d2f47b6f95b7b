"""A real virtual microphone for tests and benchmarks (dev tooling; the app never uses it).

:class:`VirtualMicrophone` starts a private PulseAudio daemon with one null sink
(``vsink``: 16 kHz, mono, s16le, ``norewinds=1``) whose monitor (``vsink.monitor``) is the
default source. What is played into the sink (:meth:`~VirtualMicrophone.play`,
:meth:`~VirtualMicrophone.play_array`, through ``paplay``) comes out of the monitor
bit-exact (after s16 quantisation) and paced in real time, and sounddevice records it
through ALSA's ``pulse`` device, exactly as it records a microphone::

    with VirtualMicrophone() as mic, AudioCapture(device=mic.device) as capture:
        mic.play(clip).wait()
        audio = capture.read_available()

How the daemon runs (works as root too, where ``pulseaudio --start`` would use the
user's own config and state):

* everything lives in a temporary folder: ``XDG_RUNTIME_DIR`` (the socket), the state
  folder (``PULSE_STATE_PATH``), ``XDG_CONFIG_HOME`` (so no user ``daemon.conf`` or
  ``default.pa`` applies) and the cookie;
* ``pulseaudio --daemonize=no -n -F <script>``: a child process of this one (so it is
  killed by pid and reaped: no stray or zombie daemon), no default script (no
  suspend-on-idle, no stream/device restore: every run starts with 100 % volumes), a
  script of its own loading the native protocol (anonymous auth) and the null sink and
  setting the defaults; ``--exit-idle-time=-1``, ``--resample-method=soxr-vhq`` (only
  used when a stream asks for another rate), ``--disable-shm=yes`` (audio over the
  socket: no shared memory to go wrong in containers), ``--realtime=no``,
  ``--high-priority=no``, ``--system=no``, logs in the folder;
* the daemon gets SIGTERM when the process that started it dies, even by SIGKILL
  (``setpriv --pdeathsig TERM``, util-linux, when the session starts in the main
  thread), and an atexit hook stops any session left open, so a crashed test run leaves
  no daemon running;
* this process's environment points libpulse (the ALSA plugin that PortAudio loads) at
  the daemon: ``XDG_RUNTIME_DIR``, ``PULSE_SERVER``, ``PULSE_COOKIE`` and
  ``PULSE_CLIENTCONFIG`` (``autospawn = no``); all restored on exit, and PortAudio is
  re-initialised on entry and exit so the ``pulse``/``default`` devices appear and go.

Needs the Debian packages pulseaudio, pulseaudio-utils (pactl, paplay),
libasound2-plugins (ALSA's pulse plugin) and libportaudio2;
:func:`virtual_mic_unavailable` says what is missing.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SINK = "vsink"
SOURCE = f"{SINK}.monitor"
# What AudioCapture(device=...) is given: ALSA's "pulse" device (libasound2-plugins),
# which records the daemon's default source.
PULSE_DEVICE = "pulse"

_PREFIX = "lorawhisper-vmic-"
_CLIENT_ENV = ("XDG_RUNTIME_DIR", "PULSE_SERVER", "PULSE_COOKIE", "PULSE_CLIENTCONFIG")
_READY_TIMEOUT_S = 15.0
_live: set[VirtualMicrophone] = set()
_live_lock = threading.Lock()
# One session at a time: the sessions share this process's environment and PortAudio.
_session_lock = threading.Lock()


def _alsa_pulse_plugin() -> str | None:
    patterns = (
        "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so",
        "/usr/lib/alsa-lib/libasound_module_pcm_pulse.so",
        "/usr/lib64/alsa-lib/libasound_module_pcm_pulse.so",
    )
    for pattern in patterns:
        found = glob.glob(pattern)
        if found:
            return found[0]
    return None


def virtual_mic_unavailable() -> str | None:
    """Why a :class:`VirtualMicrophone` cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"the virtual microphone needs Linux with PulseAudio, not {sys.platform}"
    missing = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    if missing:
        return (
            f"{', '.join(missing)} not found: install the Debian packages pulseaudio "
            "pulseaudio-utils (bash packaging/bootstrap.sh --test)"
        )
    if _alsa_pulse_plugin() is None:
        return (
            "ALSA's pulse plugin (libasound_module_pcm_pulse.so) not found: install the "
            "Debian package libasound2-plugins (bash packaging/bootstrap.sh --test)"
        )
    try:
        import sounddevice  # noqa: F401
    except OSError as e:
        return f"PortAudio is missing (Debian: libportaudio2): {e}"
    return None


def _die_with_us() -> list[str]:
    """A command prefix that makes the child get SIGTERM when this process dies.

    The parent-death signal fires when the *thread* that started the child ends, so only
    for the main thread (which ends with the process).
    """
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "TERM", "--"]
    return []


class VirtualMicrophone:
    """A private PulseAudio daemon with a null sink whose monitor is a microphone.

    A context manager; one session at a time per process (sessions one after another
    are fine).
    """

    def __init__(self) -> None:
        self.device: str | int = PULSE_DEVICE
        self.folder: Path | None = None
        self._daemon: subprocess.Popen[bytes] | None = None
        self._players: list[subprocess.Popen[bytes]] = []
        self._saved_env: dict[str, str | None] = {}
        self._env: dict[str, str] = {}
        self._holds_session = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> VirtualMicrophone:
        reason = virtual_mic_unavailable()
        if reason:
            raise RuntimeError(f"virtual microphone unavailable: {reason}")
        if not _session_lock.acquire(timeout=60):
            raise RuntimeError("another VirtualMicrophone session is still open in this process")
        self._holds_session = True
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def close(self) -> None:
        self._stop()

    def _start(self) -> None:
        _remove_stale_folders()
        folder = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_base_folder()))
        self.folder = folder
        (folder / "owner").write_text(f"{os.getpid()}\n")
        runtime = folder / "runtime"
        (runtime / "pulse").mkdir(parents=True, mode=0o700)
        runtime.chmod(0o700)
        for sub in ("state", "config"):
            (folder / sub).mkdir(mode=0o700)
        socket = runtime / "pulse" / "native"
        client_conf = folder / "client.conf"
        client_conf.write_text("autospawn = no\n")
        script = folder / "vmic.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n"
            f"load-module module-null-sink sink_name={SINK} rate={SAMPLE_RATE} channels=1 "
            "format=s16le norewinds=1 sink_properties=device.description=LoRA-Whisper-virtual-mic\n"
            f"set-default-sink {SINK}\n"
            f"set-default-source {SOURCE}\n"
        )
        self._env = {
            "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_SERVER": f"unix:{socket}",
            "PULSE_COOKIE": str(folder / "cookie"),
            "PULSE_CLIENTCONFIG": str(client_conf),
        }
        daemon_env = {
            **os.environ,
            **self._env,
            "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
            "PULSE_STATE_PATH": str(folder / "state"),
            "XDG_CONFIG_HOME": str(folder / "config"),
        }
        daemon_env.pop("PULSE_SERVER", None)  # the daemon's own clients, if any, find it anyway
        log = folder / "pulseaudio.log"
        self._daemon = subprocess.Popen(
            [
                *_die_with_us(),
                "pulseaudio", "--daemonize=no", "--system=no", "-n", "-F", str(script),
                "--exit-idle-time=-1", "--resample-method=soxr-vhq", "--disable-shm=yes", "--realtime=no", "--high-priority=no",
                "--use-pid-file=no", f"--log-target=file:{log}", "--log-level=notice",
            ],
            env=daemon_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
        with _live_lock:
            _live.add(self)
        self._wait_until_ready(log)

        # This process's libpulse (inside PortAudio's ALSA plugin) talks to the daemon.
        self._saved_env = {name: os.environ.get(name) for name in _CLIENT_ENV}
        os.environ.update(self._env)
        from lorawhisper_app.core.capture import CaptureError, find_input_device, refresh_devices

        if not refresh_devices():
            raise RuntimeError("an AudioCapture stream is open: PortAudio cannot rescan devices")
        try:
            find_input_device(PULSE_DEVICE)
        except CaptureError as e:
            raise RuntimeError(
                f"the PulseAudio daemon runs, but PortAudio shows no '{PULSE_DEVICE}' input "
                f"device (is libasound2-plugins installed?): {e}"
            ) from None

    def _wait_until_ready(self, log: Path) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        last = ""
        while True:
            assert self._daemon is not None
            if self._daemon.poll() is not None:
                raise RuntimeError(
                    f"pulseaudio exited with status {self._daemon.returncode} at start: {_tail(log)}"
                )
            if Path(self._env["PULSE_SERVER"][len("unix:"):]).exists():
                result = self._pactl("list", "short", "sources", check=False)
                if result.returncode == 0 and SOURCE in result.stdout:
                    return
                last = (result.stderr or result.stdout).strip()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pulseaudio did not answer within {_READY_TIMEOUT_S:.0f} s ({last}): {_tail(log)}"
                )
            time.sleep(0.05)

    def _stop(self, rescan: bool = True) -> None:
        with _live_lock:
            _live.discard(self)
        for player in self._players:
            _end(player)
        self._players.clear()
        if self._daemon is not None:
            _end(self._daemon)
            self._daemon = None
        if self._saved_env:
            if rescan:
                # Rescan while the client config (no autospawn) still applies, so the
                # pulse devices disappear and nothing starts a daemon behind our back.
                from lorawhisper_app.core.capture import refresh_devices

                try:
                    refresh_devices()
                except Exception:
                    pass
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved_env = {}
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        if self._holds_session:
            self._holds_session = False
            _session_lock.release()

    # ------------------------------------------------------------------ playing

    def play(self, path: str | os.PathLike) -> subprocess.Popen[bytes]:
        """Play an audio file into the microphone (returns at once; ``.wait()`` on it).

        The file is decoded with the app's own decoder
        (:func:`lorawhisper_app.core.audio.load_audio`, 16 kHz mono) and played raw, so
        the microphone hears exactly the samples an offline transcription of the file
        sees (paplay's own libsndfile decoder reads Ogg/Opus too, but decodes Opus at
        16 kHz itself, which differs from ffmpeg's 48 kHz decode resampled to 16 kHz).
        """
        from lorawhisper_app.core.audio import load_audio

        return self.play_array(load_audio(path))

    def play_array(self, audio: np.ndarray) -> subprocess.Popen[bytes]:
        """Play 16 kHz mono float32 samples (full scale 1.0) into the microphone through
        ``paplay --raw``, as s16le (``round(x * 32768)``, clipped), which the monitor
        gives back as exactly ``s16 / 32768``."""
        if self._daemon is None or self.folder is None:
            raise RuntimeError("the virtual microphone is not running (use it in a with block)")
        samples = np.asarray(audio, dtype=np.float64).reshape(-1)
        pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
        raw = Path(tempfile.mkstemp(prefix="play-", suffix=".raw", dir=self.folder)[1])
        raw.write_bytes(pcm.tobytes())
        player = subprocess.Popen(
            [
                "paplay", "--raw", f"--rate={SAMPLE_RATE}", "--channels=1", "--format=s16le",
                f"--device={SINK}", "--client-name=lorawhisper-vmic", str(raw),
            ],
            env={**os.environ, **self._env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._players.append(player)
        return player

    @staticmethod
    def quantise(audio: np.ndarray) -> np.ndarray:
        """What the microphone gives back for ``audio`` played with :meth:`play_array`."""
        samples = np.asarray(audio, dtype=np.float64).reshape(-1)
        return (np.clip(np.round(samples * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)

    # ------------------------------------------------------------------ helpers

    def pactl(self, *args: str) -> str:
        """Run ``pactl`` against this daemon; its output."""
        return self._pactl(*args).stdout

    def _pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", *args],
            env={**os.environ, **self._env},
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    @property
    def pid(self) -> int | None:
        return self._daemon.pid if self._daemon is not None else None


def _base_folder() -> str:
    # The socket's path must fit a sockaddr_un (108 bytes): a long $TMPDIR would not.
    base = tempfile.gettempdir()
    return base if len(base) <= 48 else "/tmp"


def _remove_stale_folders() -> None:
    """Folders of sessions whose process died without cleaning up (killed)."""
    for folder in Path(_base_folder()).glob(f"{_PREFIX}*"):
        try:
            owner = int((folder / "owner").read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file yet, another user's)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        live = list(_live)
    for mic in live:
        try:
            mic._stop(rescan=False)  # sounddevice's own atexit hook ended PortAudio
        except Exception:
            pass
