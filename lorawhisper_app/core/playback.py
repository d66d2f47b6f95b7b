"""Audio file playback: a decoded file out of an output device, without Qt.

:class:`AudioPlayer` decodes the file with the app's own decoder
(:func:`lorawhisper_app.core.audio.load_audio`, 16 kHz mono float32) in a background
thread and plays it through a ``sounddevice.OutputStream``. The stream's callback (a
real-time thread) only copies the next frames of the decoded array, or silence while the
array is not ready yet; decoding, resampling and opening or closing the device happen
in other threads.

The stream is opened at 16 kHz mono when the device accepts that (PulseAudio and
PipeWire devices do, and most ALSA ``default`` devices); otherwise at the device's
default rate, and the decoded audio is resampled to it by linear interpolation, once,
in a background thread. The stream is open only while playing: :meth:`AudioPlayer.pause`
and :meth:`AudioPlayer.stop` close it, so a paused player holds no device.

Problems a user can act on (no output device, a device that cannot be opened, a file
that cannot be decoded) raise :class:`PlaybackError` with a one-line message.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from lorawhisper_app.core.audio import SAMPLE_RATE, load_audio
from lorawhisper_app.core.audio_devices import (
    AudioDevice,
    error_reason,
    find_device,
    import_sounddevice,
    list_devices,
    register_stream,
    unregister_stream,
)
from lorawhisper_app.core.errors import AudioError, LoraWhisperError


class PlaybackError(LoraWhisperError):
    """Audio that cannot be played: no usable output device, or a file that cannot be decoded."""


OutputDevice = AudioDevice  # one class serves devices of both directions


def list_output_devices() -> list[AudioDevice]:
    """The devices that can play, freshly scanned (unless a stream is open)."""
    return list_devices("output", PlaybackError)


def find_output_device(spec: str | int | None) -> AudioDevice:
    """The output device that ``spec`` names.

    ``None``: the default output device. An int or a string of digits: the device with
    that index. Any other string: the device whose name is that string, ignoring case,
    else the one device whose name contains it. Raises :class:`PlaybackError` listing
    the output devices when none (or more than one) matches, or when there is none.
    """
    return find_device(spec, "output", PlaybackError)


def resample(audio: np.ndarray, rate: float) -> np.ndarray:
    """16 kHz ``audio`` at ``rate`` by linear interpolation (float32)."""
    if int(round(rate)) == SAMPLE_RATE:
        return audio
    count = int(round(len(audio) * rate / SAMPLE_RATE))
    times = np.arange(count, dtype=np.float64) * (SAMPLE_RATE / rate)
    return np.interp(times, np.arange(len(audio)), audio).astype(np.float32)


class AudioPlayer:
    """Plays one audio file at a time through an output device.

    :meth:`load` names the file and starts decoding it in the background; :meth:`play`
    opens the device at once and starts sounding as soon as the audio is decoded. A
    decoding failure that happens after :meth:`play` returned stops playback and shows
    in :attr:`error` (and the next :meth:`play` raises it).

    ``device``: an output device name or index (see :func:`find_output_device`), the
    default output device when None. ``stream_samplerate``/``stream_channels`` force how
    the device stream is opened; by default 16 kHz mono whenever the device accepts it.
    Methods are meant to be called from one thread (the GUI's, say).
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        stream_samplerate: float | None = None,
        stream_channels: int | None = None,
    ) -> None:
        self.device_spec = device
        self._forced_rate = stream_samplerate
        self._forced_channels = stream_channels
        self.device: AudioDevice | None = None  # of the last stream opened
        self.samplerate: float = float(SAMPLE_RATE)  # of the last stream opened
        self.channels: int = 1  # of the last stream opened
        # Guards everything below against the decoding, resampling and closing threads.
        self._lock = threading.RLock()
        self._path: Path | None = None
        self._generation = 0  # bumped by load() and close(): older workers' results are dropped
        self._source: np.ndarray | None = None  # the decoded file, 16 kHz
        self._fitted: tuple[float, np.ndarray] | None = None  # the file at some stream rate
        self._resampling = False
        self._error: PlaybackError | None = None
        self._sd: Any = None  # sounddevice, imported on first play
        self._stream: Any = None
        self._stream_id = 0  # tells the finished callback of a closed stream from the current one's
        self._playing = False
        self._ended = False  # played to the end: position() is the duration, play() starts over
        self._start_s = 0.0  # where the next (or current) run starts, in seconds
        # Read by the callback: the array it plays (None: silence) and its next frame.
        self._audio: np.ndarray | None = None
        self._cursor = 0
        self._latency = 0.0  # of the open stream, in seconds

    # ----------------------------------------------------------------- the callback

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        # Real-time thread: copy the next frames, or silence while the audio is not ready.
        audio = self._audio
        if audio is None:
            outdata.fill(0)
            return
        start = self._cursor
        chunk = audio[start:start + frames]
        count = len(chunk)
        outdata[:count] = chunk[:, np.newaxis]
        outdata[count:] = 0
        self._cursor = start + count
        if start + count >= len(audio):
            raise self._sd.CallbackStop

    def _on_finished(self, stream_id: int) -> None:
        # PortAudio's thread, once a stream went quiet: played to the end or the device
        # failed (pause/stop close streams whose id is no longer current). Closing a
        # stream from here could deadlock, so another thread does it.
        if stream_id == self._stream_id:
            threading.Thread(target=self._release, args=(stream_id,), daemon=True).start()

    def _release(self, stream_id: int) -> None:
        with self._lock:
            if stream_id != self._stream_id or self._stream is None:
                return
            audio = self._audio
            self._ended = audio is not None and self._cursor >= len(audio)
            self._start_s = self._stream_position()
            self._playing = False
            self._close_stream()

    # ----------------------------------------------------------------- control

    def load(self, path: str | Path) -> None:
        """Make ``path`` the file to play and start decoding it in the background.

        Stops playback. Loading the file already loaded keeps its decoded audio.
        """
        path = Path(path)
        with self._lock:
            self.stop()
            if path == self._path and self._error is None:
                return
            self._forget()
            self._path = path
            threading.Thread(target=self._decode, args=(path, self._generation), daemon=True).start()

    def play(self, from_seconds: float | None = None) -> None:
        """Play from ``from_seconds``; None: go on from where it was paused (from the
        start once it played to the end). Raises :class:`PlaybackError` when nothing is
        loaded, the file could not be decoded, or no output device can be opened."""
        with self._lock:
            if self._path is None:
                raise PlaybackError("no audio file is loaded")
            if self._error is not None:
                raise self._error
            if from_seconds is not None:
                start = max(0.0, float(from_seconds))
            else:
                start = 0.0 if self._ended else self.position()
            self._playing = False
            self._close_stream()
            self._start_s, self._ended = start, False
            self._open_stream()
            self._fit()
            try:
                self._stream.start()
            except self._sd.PortAudioError as e:
                device = self.device.describe() if self.device else repr(self.device_spec)
                self._close_stream()
                raise PlaybackError(f"cannot start playing on {device}: {error_reason(e)}") from None
            self._playing = True

    def pause(self) -> None:
        """Stop sounding and keep the position; :meth:`play` goes on from there."""
        with self._lock:
            if self._stream is None:
                return
            self._start_s = self._stream_position()
            self._playing = False
            self._close_stream()

    def stop(self) -> None:
        """Stop sounding and go back to the start of the file."""
        with self._lock:
            self._playing = False
            self._close_stream()
            self._start_s, self._ended = 0.0, False

    def close(self) -> None:
        """Stop and forget the file and its decoded audio; :meth:`load` can follow."""
        with self._lock:
            self.stop()
            self._forget()
            self._path = None

    def __enter__(self) -> AudioPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ----------------------------------------------------------------- state

    @property
    def path(self) -> Path | None:
        """The file loaded, if any."""
        return self._path

    @property
    def is_playing(self) -> bool:
        """True from :meth:`play` until pause, stop, the end of the audio or a failure
        (also while the file is still being decoded, in silence)."""
        return self._playing

    @property
    def error(self) -> PlaybackError | None:
        """Why the loaded file cannot be played, once decoding it failed."""
        return self._error

    @property
    def duration(self) -> float | None:
        """Length of the loaded file in seconds; None until it is decoded."""
        source = self._source
        return None if source is None else len(source) / SAMPLE_RATE

    def position(self) -> float:
        """Where playback is (or would go on from), in seconds; advances while playing.

        While playing, it leaves out the audio handed to the device that has not sounded
        yet (the stream's output latency as PortAudio reports it), so pausing and playing
        on skips nothing.
        """
        with self._lock:
            if self._stream is not None:
                return self._stream_position()
            duration = self.duration
            if self._ended and duration is not None:
                return duration
            return self._start_s

    # ----------------------------------------------------------------- internals

    def _stream_position(self) -> float:
        """What the open stream has sounded so far: the frames handed to the device less
        those still in its buffer (its output latency)."""
        if self._audio is None:  # not sounding yet
            return self._start_s
        return max(self._start_s, self._cursor / self.samplerate - self._latency)

    def _forget(self) -> None:
        self._generation += 1
        self._source = self._fitted = None
        self._error = None
        self._resampling = False

    def _decode(self, path: Path, generation: int) -> None:
        """Worker thread: decode the file, then hand it to the open stream if there is one."""
        try:
            source: np.ndarray | None = load_audio(path)
            error = None
        except AudioError as e:
            source, error = None, PlaybackError(f"cannot play {e}")
        except Exception as e:  # a decoder failure the audio module does not name
            source, error = None, PlaybackError(f"cannot play {path}: {error_reason(e)}")
        with self._lock:
            if generation != self._generation:
                return
            if error is not None:
                self._error = error
                self._playing = False
                self._close_stream()
                return
            self._source = source
            self._fit()

    def _fit(self) -> None:
        """Give the open stream the audio at its rate: at once when that is ready, else
        once the decoding or resampling thread has made it (they call this again)."""
        if self._stream is None or self._audio is not None or self._source is None:
            return
        rate = self.samplerate
        if int(round(rate)) == SAMPLE_RATE:
            self._fitted = (rate, self._source)
        if self._fitted is not None and self._fitted[0] == rate:
            audio = self._fitted[1]
            # The cursor first: the callback reads the array, then the cursor.
            self._cursor = min(int(round(self._start_s * rate)), len(audio))
            self._audio = audio
        elif not self._resampling:
            self._resampling = True
            threading.Thread(
                target=self._resample, args=(self._source, rate, self._generation), daemon=True
            ).start()

    def _resample(self, source: np.ndarray, rate: float, generation: int) -> None:
        fitted = resample(source, rate)
        with self._lock:
            if generation != self._generation:
                return
            self._resampling = False
            self._fitted = (rate, fitted)
            self._fit()

    def _open_stream(self) -> None:
        sd = import_sounddevice(PlaybackError, "audio playback")
        self._sd = sd
        device = find_output_device(self.device_spec)
        if self._forced_rate or self._forced_channels:
            candidates = [(
                float(self._forced_rate or device.default_samplerate),
                int(self._forced_channels or 1),
            )]
        else:
            candidates = [(float(SAMPLE_RATE), 1), (device.default_samplerate, 1)]
            if device.channels > 1:
                candidates.append((device.default_samplerate, 2))
        self._stream_id += 1
        stream_id = self._stream_id
        last_error: Exception | None = None
        with register_stream(self):
            for rate, channels in dict.fromkeys(candidates):
                try:
                    sd.check_output_settings(
                        device=device.index, samplerate=rate, channels=channels, dtype="float32"
                    )
                    stream = sd.OutputStream(
                        device=device.index,
                        samplerate=rate,
                        channels=channels,
                        dtype="float32",
                        callback=self._callback,
                        finished_callback=lambda: self._on_finished(stream_id),
                    )
                except (sd.PortAudioError, ValueError) as e:
                    last_error = e
                    continue
                break
            else:
                raise PlaybackError(f"cannot open output device {device.describe()}: {error_reason(last_error)}")
        self.device, self.samplerate, self.channels = device, rate, channels
        self._latency = float(stream.latency)
        self._audio = None
        self._stream = stream

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._stream_id += 1
        self._audio = None
        try:
            if stream is not None:
                stream.close(ignore_errors=True)
        finally:
            unregister_stream(self)
