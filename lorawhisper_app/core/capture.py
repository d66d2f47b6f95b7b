"""Microphone capture: an input device in, 16 kHz mono float32 blocks out.

The PortAudio callback (a real-time thread) only copies each block into an unbounded
queue and updates a few counters and the peak level; everything else happens in the
consumer's thread, in :meth:`AudioCapture.read`. Nothing is dropped: when the consumer
falls behind, the queue grows and :attr:`AudioCapture.backlog_seconds` says by how much.
Input overflows that PortAudio reports (audio the device lost before the callback saw
it) are counted in :attr:`AudioCapture.overflows`, not hidden.

The stream is opened at 16 kHz mono float32 when the device accepts it (PulseAudio and
PipeWire devices do, and most ALSA ``default`` devices through their plugins). Otherwise
it is opened at the device's default rate, mono if it allows, else with its channels,
and ``read`` downmixes (mean of the channels) and resamples with libswresample through
PyAV (``av.AudioResampler``, the same converter that decodes files in
:mod:`lorawhisper_app.core.audio`), streaming, so block edges leave no seams.

sounddevice (and with it PortAudio) is imported on first use, so the rest of the engine
works where PortAudio is not installed; using capture there raises :class:`CaptureError`.
Devices are listed and found through :mod:`lorawhisper_app.core.audio_devices`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np

from lorawhisper_app.core import audio_devices
from lorawhisper_app.core.audio_devices import (
    AudioDevice,
    error_reason,
    find_device,
    import_sounddevice,
    list_devices,
    register_stream,
    unregister_stream,
)
from lorawhisper_app.core.errors import LoraWhisperError

SAMPLE_RATE = 16000

# How often a blocked read() looks whether the stream was stopped or paused meanwhile.
_POLL_S = 0.05


class CaptureError(LoraWhisperError):
    """An input device that is missing, ambiguous or cannot be opened."""


InputDevice = AudioDevice  # one class serves devices of both directions


def _sounddevice() -> ModuleType:
    return import_sounddevice(CaptureError, "audio capture")


def refresh_devices() -> bool:
    """Re-initialise PortAudio so that devices added or removed since it started show;
    only while no capture or playback stream is open. Returns whether it happened
    (see :func:`lorawhisper_app.core.audio_devices.refresh_devices`)."""
    return audio_devices.refresh_devices(CaptureError, "audio capture")


def list_input_devices() -> list[AudioDevice]:
    """The devices that can record, freshly scanned (unless a stream is open)."""
    return list_devices("input", CaptureError)


def find_input_device(spec: str | int | None) -> AudioDevice:
    """The input device that ``spec`` names.

    ``None``: the default input device. An int or a string of digits: the device with
    that index. Any other string: the device whose name is that string, ignoring case,
    else the one device whose name contains it. Raises :class:`CaptureError` listing the
    input devices when none (or more than one) matches, or when there is none at all.
    """
    return find_device(spec, "input", CaptureError)


class _ToMono16k:
    """Streaming downmix (mean of channels) and resampling to 16 kHz float32."""

    def __init__(self, samplerate: float, channels: int) -> None:
        self.samplerate = int(round(samplerate))
        self.channels = channels
        self._resampler: Any = None
        if self.samplerate != SAMPLE_RATE:
            import av

            self._av = av
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def convert(self, block: np.ndarray) -> np.ndarray:
        mono = block[:, 0] if self.channels == 1 else block.mean(axis=1, dtype=np.float32)
        if self._resampler is None:
            return np.ascontiguousarray(mono, dtype=np.float32)
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono, dtype=np.float32)[np.newaxis, :], format="flt", layout="mono"
        )
        frame.sample_rate = self.samplerate
        return self._frames_to_array(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """The resampler's delayed tail (once, at the end of a stream)."""
        if self._resampler is None:
            return np.empty(0, np.float32)
        tail = self._frames_to_array(self._resampler.resample(None))
        self._resampler = self._av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        return tail

    @staticmethod
    def _frames_to_array(frames: list[Any]) -> np.ndarray:
        pieces = [frame.to_ndarray()[0] for frame in frames]
        if not pieces:
            return np.empty(0, np.float32)
        return np.concatenate(pieces).astype(np.float32, copy=False)


class AudioCapture:
    """Records an input device; ``read`` gives 16 kHz mono float32 blocks.

    Use as a context manager (``with AudioCapture() as mic:``) or call :meth:`start` and
    :meth:`stop`. :meth:`pause` stops the device stream (nothing is recorded while
    paused) and :meth:`resume` starts it again. What was captured stays readable after
    :meth:`stop`; :meth:`start` after :meth:`stop` opens the device again.

    ``stream_samplerate``/``stream_channels`` force how the device stream is opened
    (``read`` still converts to 16 kHz mono); by default it is 16 kHz mono whenever the
    device accepts that.
    """

    def __init__(
        self,
        device: str | int | None = None,
        block_seconds: float = 0.1,
        *,
        stream_samplerate: float | None = None,
        stream_channels: int | None = None,
    ) -> None:
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be positive, got {block_seconds}")
        self.device_spec = device
        self.block_seconds = float(block_seconds)
        self._forced_rate = stream_samplerate
        self._forced_channels = stream_channels
        self.device: AudioDevice | None = None
        self.samplerate: float = float(SAMPLE_RATE)  # of the device stream
        self.channels: int = 1  # of the device stream
        self._stream: Any = None
        self._paused = False
        self._queue: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._converter: _ToMono16k | None = None
        self._read_lock = threading.Lock()
        # Written only by the callback thread:
        self._frames_captured = 0
        self._overflows = 0
        self._peak = -1.0  # < 0: no block yet
        # Written only by readers (under _read_lock):
        self._frames_read = 0
        self._flushed = True

    # ----------------------------------------------------------------- the callback

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        # Real-time thread: copy, count, measure the peak; nothing else.
        if status.input_overflow:
            self._overflows += 1
        if self._paused:
            return
        self._queue.put(indata.copy())
        self._peak = max(float(indata.max()), -float(indata.min())) if frames else 0.0
        self._frames_captured += frames

    # ----------------------------------------------------------------- control

    def start(self) -> None:
        """Open the device and start recording (resumes when paused; no-op when running)."""
        if self._stream is not None:
            self.resume()
            return
        sd = _sounddevice()
        device = find_input_device(self.device_spec)
        with register_stream(self):
            stream, rate, channels = self._open(sd, device)
        self.device = device
        self.samplerate, self.channels = rate, channels
        if self._converter is None:
            self._converter = _ToMono16k(rate, channels)
        elif (self._converter.samplerate, self._converter.channels) != (int(round(rate)), channels):
            # Blocks of the last run may still be queued in the old format: the reader
            # switches to the new converter when it reaches this marker.
            self._queue.put(_ToMono16k(rate, channels))  # type: ignore[arg-type]
        self._paused = False
        self._flushed = False
        self._stream = stream
        try:
            stream.start()
        except sd.PortAudioError as e:
            self._close_stream()
            raise CaptureError(f"cannot start recording from {device.describe()}: {error_reason(e)}") from None

    def pause(self) -> None:
        """Stop recording until :meth:`resume`; what was captured stays readable."""
        if self._stream is None or self._paused:
            return
        self._paused = True  # from here on the callback keeps nothing
        self._stream.stop(ignore_errors=True)
        self._peak = -1.0

    def resume(self) -> None:
        """Record again after :meth:`pause`."""
        if self._stream is None or not self._paused:
            return
        sd = _sounddevice()
        try:
            self._stream.start()
        except sd.PortAudioError as e:
            raise CaptureError(f"cannot resume recording from {self._device_name()}: {error_reason(e)}") from None
        self._paused = False

    def stop(self) -> None:
        """Stop recording and close the device; what was captured stays readable."""
        if self._stream is None:
            return
        self._paused = True
        self._close_stream()
        self._peak = -1.0

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> AudioCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:
            pass

    # ----------------------------------------------------------------- reading

    @property
    def running(self) -> bool:
        """True while the device stream records: started, not paused, not stopped, and
        still active (False once the device went away or failed)."""
        stream = self._stream
        return stream is not None and not self._paused and bool(stream.active)

    @property
    def paused(self) -> bool:
        return self._stream is not None and self._paused

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The next block (16 kHz mono float32), waiting up to ``timeout`` seconds for it
        (``None``: as long as it takes).

        Returns ``None`` on timeout. While paused it waits like while recording (so a
        reading loop does not spin, and a resume from another thread is seen). Before
        :meth:`start` and after :meth:`stop`, once what was captured is read, it returns
        ``None`` at once; so it does with ``timeout=None`` when the device failed
        (see :attr:`running`).
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._read_lock:
            while True:
                try:
                    block = self._queue.get_nowait()
                except queue.Empty:
                    if self._stream is None:  # not started, or stopped: nothing can come
                        tail = self._flush_if_done()
                        return tail if tail is not None and len(tail) else None
                    if deadline is None and not self._paused and not self.running:
                        return None  # the device failed: waiting forever would hang
                    wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
                    if wait <= 0:
                        return None
                    try:
                        block = self._queue.get(timeout=wait)
                    except queue.Empty:
                        continue
                out = self._convert(block)
                if len(out):
                    return out
                # A resampler may swallow a short first block: look at the next one.

    def read_available(self) -> np.ndarray:
        """Everything queued now, concatenated (16 kHz mono float32; may be empty)."""
        pieces = []
        with self._read_lock:
            while True:
                try:
                    block = self._queue.get_nowait()
                except queue.Empty:
                    break
                pieces.append(self._convert(block))
            if not self.running:
                tail = self._flush_if_done()
                if tail is not None:
                    pieces.append(tail)
        if not pieces:
            return np.empty(0, np.float32)
        return np.concatenate(pieces)

    # ----------------------------------------------------------------- counters

    @property
    def level_db(self) -> float:
        """Peak level of the latest block in dBFS (0 = full scale); -inf when there is
        none (not started, paused, stopped) or it was digital silence."""
        peak = self._peak
        return 20.0 * math.log10(peak) if peak > 0 else -math.inf

    @property
    def backlog_seconds(self) -> float:
        """Audio captured but not read yet, in seconds."""
        return max(self._frames_captured - self._frames_read, 0) / self.samplerate

    @property
    def samples_captured(self) -> int:
        """Frames the device delivered so far (at the stream rate, :attr:`samplerate`:
        16 kHz whenever the device accepts it, and then equal to the samples ``read``
        returns once the backlog is read)."""
        return self._frames_captured

    @property
    def overflows(self) -> int:
        """How many callbacks PortAudio flagged with an input overflow (audio lost by
        the device before it reached the callback: the system was too busy)."""
        return self._overflows

    # ----------------------------------------------------------------- internals

    def _open(self, sd: ModuleType, device: AudioDevice) -> tuple[Any, float, int]:
        if self._forced_rate or self._forced_channels:
            candidates = [(
                float(self._forced_rate or device.default_samplerate),
                int(self._forced_channels or min(device.channels, 2)),
            )]
        else:
            candidates = [(float(SAMPLE_RATE), 1), (device.default_samplerate, 1)]
            if device.channels > 1:
                candidates.append((device.default_samplerate, min(device.channels, 2)))
            if device.channels > 2:
                candidates.append((device.default_samplerate, device.channels))
        last_error: Exception | None = None
        for rate, channels in dict.fromkeys(candidates):
            try:
                sd.check_input_settings(
                    device=device.index, samplerate=rate, channels=channels, dtype="float32"
                )
                stream = sd.InputStream(
                    device=device.index,
                    samplerate=rate,
                    channels=channels,
                    dtype="float32",
                    blocksize=max(1, round(self.block_seconds * rate)),
                    callback=self._callback,
                )
            except (sd.PortAudioError, ValueError) as e:
                last_error = e
                continue
            return stream, rate, channels
        raise CaptureError(f"cannot open input device {device.describe()}: {error_reason(last_error)}")

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                stream.close(ignore_errors=True)
        finally:
            unregister_stream(self)

    def _convert(self, block: np.ndarray | _ToMono16k) -> np.ndarray:
        assert self._converter is not None
        if isinstance(block, _ToMono16k):  # the stream was reopened in another format
            tail, self._converter = self._converter.flush(), block
            return tail
        self._frames_read += len(block)
        return self._converter.convert(block)

    def _flush_if_done(self) -> np.ndarray | None:
        """After stop, once the queue is empty: the resampler's tail (once)."""
        if self._stream is not None or self._flushed or self._converter is None:
            return None
        self._flushed = True
        return self._converter.flush()

    def _device_name(self) -> str:
        return self.device.describe() if self.device else repr(self.device_spec)
