"""AudioPlayer, heard for real: no mock of the audio path.

A private PulseAudio daemon (lorawhisper_app.benchmarks.virtual_mic) has a null sink at
16 kHz mono s16le that is the default output, and its monitor is the default input. The
player plays real dev clips to the default output through sounddevice/PortAudio/ALSA's
pulse plugin, and AudioCapture records the monitor, so the tests compare what came out
of the "speaker" with the clip, sample for sample.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.capture import AudioCapture
from lorawhisper_app.core.errors import LoraWhisperError
from lorawhisper_app.core.playback import (
    AudioPlayer,
    OutputDevice,
    PlaybackError,
    find_output_device,
    list_output_devices,
    resample,
)

RATE = 16000


@pytest.fixture(scope="module")
def clip(speech_dev: Path) -> Path:
    """A real (not synthetic) dev clip of 4.5 to 6 s."""
    rows = [json.loads(line) for line in (speech_dev / "manifest.jsonl").read_text().splitlines() if line.strip()]
    candidates = sorted(
        (r for r in rows if r.get("synthetic") is not True and 4.5 <= float(r.get("duration_s") or 0) <= 6.0),
        key=lambda r: (r["language"] != "en", r["id"]),
    )
    for row in candidates:
        path = speech_dev / row["path"]
        if path.is_file():
            return path
    pytest.skip(f"no real 4.5-6 s clip in {speech_dev / 'manifest.jsonl'}")


@pytest.fixture
def player():
    audio_player = AudioPlayer()
    yield audio_player
    audio_player.close()  # before the daemon goes: PortAudio is re-initialised then


def offset(a: np.ndarray, b: np.ndarray) -> int:
    """The shift d for which a[i] best matches b[i - d] (d < 0: a starts inside b)."""
    size = 1 << (len(a) + len(b) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    shifts = np.concatenate([np.arange(0, len(a)), np.arange(-(len(b) - 1), 0)])
    values = np.concatenate([corr[: len(a)], corr[size - (len(b) - 1) :]])
    return int(shifts[np.argmax(values)])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def quantise(audio: np.ndarray) -> np.ndarray:
    """What an s16 sink gives back for float samples."""
    return (np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def wait_until_stopped(player: AudioPlayer, timeout: float) -> float:
    """Seconds until ``player`` stopped playing; fails after ``timeout``."""
    started = time.monotonic()
    while player.is_playing:
        assert time.monotonic() - started < timeout, f"still playing after {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_plays_a_clip_from_one_second_to_its_end(mic, clip, player):
    expected = quantise(load_audio(clip)[RATE:])  # the clip from 1.0 s
    player.load(clip)
    with AudioCapture(device=mic.device) as capture:
        time.sleep(0.3)
        started = time.monotonic()
        player.play(1.0)
        assert player.is_playing
        assert (player.samplerate, player.channels) == (RATE, 1)  # no conversion needed
        assert isinstance(player.device, OutputDevice) and player.device.is_default
        # The position advances with the clock.
        samples = []
        while time.monotonic() - started < 2.0:
            samples.append((time.monotonic(), player.position()))
            time.sleep(0.1)
        (t0, p0), (t1, p1) = samples[2], samples[-1]
        assert 1.0 < p0 < p1 < 3.2
        assert abs((p1 - p0) - (t1 - t0)) < 0.1, samples
        # Playing past the end stops by itself, on time.
        wait_until_stopped(player, timeout=10)
        played_for = time.monotonic() - started
        time.sleep(0.4)  # the monitor's latency: let the tail arrive
    recording = capture.read_available()

    duration = player.duration
    assert duration is not None and abs(duration - (1.0 + len(expected) / RATE)) < 1e-3
    assert player.position() == duration and not player.is_playing
    assert len(expected) / RATE - 0.1 < played_for < len(expected) / RATE + 0.5, played_for
    # What the "speaker" sounded is the clip from 1.0 s, with silence around it.
    lag = offset(recording, expected)
    assert lag > 0
    heard = recording[lag : lag + len(expected)]
    assert len(heard) == len(expected)
    assert correlation(heard, expected) > 0.999
    assert float(np.abs(heard - expected).max()) < 1e-3  # float to s16 rounding, nothing more
    assert np.all(recording[:lag] == 0) and np.all(recording[lag + len(expected) :] == 0)

    # After the end, play() starts over.
    player.play()
    assert player.is_playing and player.position() < 0.2
    player.stop()


def test_pause_keeps_the_position_and_play_goes_on_from_there(mic, clip, player):
    reference = quantise(load_audio(clip))
    player.load(clip)
    with AudioCapture(device=mic.device) as capture:
        time.sleep(0.2)
        player.play(0.0)
        time.sleep(1.3)
        player.pause()
        paused_at = player.position()
        assert not player.is_playing
        assert 1.0 < paused_at < 1.4
        time.sleep(0.3)  # the monitor's latency
        before = capture.read_available()
        time.sleep(0.5)
        assert player.position() == paused_at  # frozen while paused...
        assert np.all(capture.read_available() == 0)  # ...and silent
        player.play()
        assert player.is_playing
        wait_until_stopped(player, timeout=10)
        time.sleep(0.4)
    after = capture.read_available()

    # Before the pause: the clip's start, up to where the position said it paused.
    lag = offset(before, reference)
    heard = len(np.trim_zeros(before[lag:], "b"))
    assert abs(heard / RATE - paused_at) < 0.02, (heard / RATE, paused_at)
    assert correlation(before[lag : lag + heard], reference[:heard]) > 0.999
    # After: the rest of the clip from there, nothing skipped and nothing repeated.
    leading = len(after) - len(np.trim_zeros(after, "f"))
    resumed = -offset(after, reference) + leading
    # Within 30 ms: about 10 ms on an idle machine, up to 17 ms seen with both cores busy.
    assert abs(resumed - heard) <= 0.03 * RATE, (resumed / RATE, heard / RATE)
    rest = after[leading : leading + len(reference) - resumed]
    assert correlation(rest, reference[resumed:]) > 0.999


def test_stop_silences_and_rewinds(mic, clip, player):
    player.load(clip)
    with AudioCapture(device=mic.device) as capture:
        player.play(0.5)
        time.sleep(0.8)
        player.stop()
        assert not player.is_playing and player.position() == 0.0
        time.sleep(0.3)
        capture.read_available()
        time.sleep(0.5)
        assert np.all(capture.read_available() == 0)
        player.play()  # from the start
        assert player.is_playing and player.position() < 0.2
        time.sleep(0.3)
        assert 0.1 < player.position() < 0.5
        player.pause()


def test_a_device_without_16k_mono_gets_resampled_audio(mic, clip):
    # A 48 kHz stereo stream (what a device without 16 kHz would give): the player
    # interpolates the clip to 48 kHz; PulseAudio takes it back to the 16 kHz sink.
    expected = quantise(load_audio(clip)[RATE:])
    with AudioPlayer(stream_samplerate=48000, stream_channels=2) as player:
        player.load(clip)
        with AudioCapture(device=mic.device) as capture:
            time.sleep(0.2)
            player.play(1.0)
            assert (player.samplerate, player.channels) == (48000, 2)
            wait_until_stopped(player, timeout=10)
            time.sleep(0.4)
        assert player.position() == player.duration
    recording = capture.read_available()
    lag = offset(recording, expected)
    heard = recording[lag : lag + len(expected)]
    assert len(heard) == len(expected)
    assert correlation(heard, expected) > 0.9


def test_resample_interpolates_to_the_stream_rate():
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    assert resample(tone, RATE) is tone
    up = resample(tone, 48000)
    assert up.dtype == np.float32 and len(up) == 48000
    assert np.allclose(up[::3], tone, atol=1e-6)  # the original samples stay
    truth = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    assert np.abs(up - truth)[:-2].max() < 0.01  # the last two lie past the last sample


def test_errors_are_one_clear_line(mic, clip, tmp_path):
    devices = list_output_devices()
    assert "pulse" in [device.name for device in devices]
    assert find_output_device("PULSE").name == "pulse"
    assert find_output_device(None).is_default

    with pytest.raises(PlaybackError, match=r"^no output device matches 'no such speaker 42'.*pulse") as info:
        with AudioPlayer(device="no such speaker 42") as player:
            player.load(clip)
            player.play(1.0)
    assert isinstance(info.value, LoraWhisperError) and "\n" not in str(info.value)
    assert not player.is_playing
    with pytest.raises(PlaybackError, match=r"^no output device with index 987"):
        find_output_device(987)

    with AudioPlayer() as player:
        with pytest.raises(PlaybackError, match="^no audio file is loaded$"):
            player.play()
        not_audio = tmp_path / "notes.wav"
        not_audio.write_text("not a sound at all\n" * 20)
        player.load(not_audio)
        deadline = time.monotonic() + 5
        while player.error is None:
            assert time.monotonic() < deadline, "the decoding error never showed"
            time.sleep(0.02)
        assert str(player.error) == f"cannot play {not_audio}: not an audio file or an unsupported format"
        with pytest.raises(PlaybackError, match="^cannot play .*notes.wav: not an audio file"):
            player.play()
        assert not player.is_playing

        # A file that fails while play() already runs: playback stops, the error shows.
        player.load(tmp_path / "missing.opus")
        try:
            player.play()
        except PlaybackError as e:  # the decoding thread was quicker
            assert "file not found" in str(e)
        wait_until_stopped(player, timeout=5)
        assert player.error is not None and str(player.error).endswith("missing.opus: file not found")

        # A good file after a bad one plays.
        player.load(clip)
        player.play(4.0)
        assert player.is_playing and player.error is None
        wait_until_stopped(player, timeout=5)


def test_no_output_device_at_all_is_a_clear_error(clip):
    if list_output_devices():
        pytest.skip("this machine has an output device")
    with pytest.raises(PlaybackError, match="^no audio output device is available$"):
        find_output_device(None)
    with AudioPlayer() as player:
        player.load(clip)
        with pytest.raises(PlaybackError, match="^no audio output device is available$"):
            player.play(1.0)
        assert not player.is_playing
