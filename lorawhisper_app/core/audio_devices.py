"""Audio devices through PortAudio, shared by capture (input) and playback (output).

sounddevice (and with it PortAudio) is imported on first use, so the rest of the engine
works where PortAudio is not installed; the caller names the error to raise there.

PortAudio scans the devices once, when it initialises; :func:`refresh_devices` makes it
scan again, which closes every stream it has open. So each open stream, of either
direction, is registered here (:func:`register_stream` around opening it,
:func:`unregister_stream` once it is closed), and the re-scan waits until none is.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from lorawhisper_app.core.errors import LoraWhisperError

DeviceKind = Literal["input", "output"]

# Held while PortAudio re-initialises and while a stream opens, so the two never overlap.
_portaudio_lock = threading.Lock()
# The objects (AudioCapture, AudioPlayer) whose PortAudio stream is open.
_open_streams: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True)
class _Direction:
    purpose: str  # what needs PortAudio, for the message when it is missing
    channels_key: str  # the field of sounddevice's device info that counts the channels
    none_found: str  # the message when there is no device of this kind at all


_DIRECTIONS: dict[str, _Direction] = {
    "input": _Direction(
        "audio capture",
        "max_input_channels",
        "no audio input device found (is a microphone connected, and can this user use it?)",
    ),
    "output": _Direction(
        "audio playback",
        "max_output_channels",
        "no audio output device is available",
    ),
}


@dataclass(frozen=True)
class AudioDevice:
    """A PortAudio device that can record or play (its channels count in that direction)."""

    index: int
    name: str
    channels: int
    default_samplerate: float
    is_default: bool

    def describe(self) -> str:
        mark = " (default)" if self.is_default else ""
        return f"[{self.index}] {self.name}{mark}"


def import_sounddevice(error: type[Exception], purpose: str) -> ModuleType:
    """The sounddevice module; raises ``error`` saying that ``purpose`` needs PortAudio
    when libportaudio is missing."""
    try:
        import sounddevice
    except OSError as e:  # sounddevice raises OSError when libportaudio is missing
        raise error(f"{purpose} needs PortAudio (Debian: apt-get install libportaudio2): {e}") from None
    return sounddevice


@contextmanager
def register_stream(owner: object) -> Iterator[None]:
    """Open ``owner``'s stream inside this block: it holds off :func:`refresh_devices`
    meanwhile and counts ``owner`` as having an open stream from then on (not when the
    block raises). Call :func:`unregister_stream` once that stream is closed."""
    with _portaudio_lock:
        _open_streams.add(owner)
        try:
            yield
        except BaseException:
            _open_streams.discard(owner)
            raise


def unregister_stream(owner: object) -> None:
    """``owner``'s stream is closed (nothing happens when it was not registered)."""
    _open_streams.discard(owner)


def refresh_devices(
    error: type[Exception] = LoraWhisperError, purpose: str = "listing audio devices"
) -> bool:
    """Re-initialise PortAudio so that devices added or removed since it started show.

    This happens only while no registered stream is open and no ``sounddevice.play``/
    ``rec`` stream is active (re-initialising would close them); returns whether it
    happened. ``error`` and ``purpose``: as for :func:`import_sounddevice`.
    """
    return _refresh(import_sounddevice(error, purpose))


def _refresh(sd: ModuleType) -> bool:
    with _portaudio_lock:
        if _open_streams:
            return False
        last = getattr(sd, "_last_callback", None)
        stream = getattr(last, "stream", None)
        if stream is not None and not stream.closed and stream.active:
            return False
        sd._terminate()
        sd._initialize()
        return True


def list_devices(kind: DeviceKind, error: type[Exception] = LoraWhisperError) -> list[AudioDevice]:
    """The devices that can record (``kind="input"``) or play (``"output"``), freshly
    scanned unless a stream is open. Raises ``error`` when PortAudio is missing."""
    direction = _direction(kind)
    sd = import_sounddevice(error, direction.purpose)
    _refresh(sd)
    try:
        default_index = sd.query_devices(kind=kind)["index"]
    except (sd.PortAudioError, ValueError):
        default_index = None
    return [
        AudioDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            channels=int(info[direction.channels_key]),
            default_samplerate=float(info["default_samplerate"]),
            is_default=info["index"] == default_index,
        )
        for info in sd.query_devices()
        if info[direction.channels_key] > 0
    ]


def find_device(
    spec: str | int | None, kind: DeviceKind, error: type[Exception] = LoraWhisperError
) -> AudioDevice:
    """The device of ``kind`` that ``spec`` names, among those :func:`list_devices` finds
    (see :func:`match_device`)."""
    return match_device(list_devices(kind, error), spec, kind, error)


def match_device(
    devices: Sequence[AudioDevice],
    spec: str | int | None,
    kind: DeviceKind,
    error: type[Exception] = LoraWhisperError,
) -> AudioDevice:
    """The one of ``devices`` (all of ``kind``) that ``spec`` names.

    ``None``: the default device (else the first). An int or a string of digits: the
    device with that index. Any other string: the device whose name is that string,
    ignoring case, else the one device whose name contains it. Raises ``error`` with a
    one-line message listing the devices when none (or more than one) matches, or when
    there is no device at all; ``TypeError`` when ``spec`` is neither a name nor an index.
    """
    direction = _direction(kind)
    if not isinstance(spec, (str, int, type(None))) or isinstance(spec, bool):
        raise TypeError(f"device must be a name or an index, not {spec!r}")
    if not devices:
        raise error(direction.none_found)
    available = f"{kind} devices: " + ", ".join(device.describe() for device in devices)
    if spec is None:
        return next((device for device in devices if device.is_default), devices[0])
    if isinstance(spec, int) or spec.strip().isdecimal():
        index = int(spec)
        for device in devices:
            if device.index == index:
                return device
        raise error(f"no {kind} device with index {index}; {available}")
    wanted = spec.strip().casefold()
    if not wanted:
        raise error(f"empty device name; {available}")
    exact = [device for device in devices if device.name.casefold() == wanted]
    if exact:
        return exact[0]
    partial = [device for device in devices if wanted in device.name.casefold()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(device.describe() for device in partial)
        raise error(f"{kind} device name {spec!r} is ambiguous: it matches {names}")
    raise error(f"no {kind} device matches {spec!r}; {available}")


def error_reason(error: Exception | None) -> str:
    """A PortAudio (or other) error as one line, for a user-facing message."""
    text = str(error) if error is not None else "unknown error"
    return " ".join(text.split()) or type(error).__name__


def _direction(kind: str) -> _Direction:
    try:
        return _DIRECTIONS[kind]
    except KeyError:
        raise ValueError(f"device kind must be 'input' or 'output', not {kind!r}") from None
