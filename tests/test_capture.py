"""Microphone capture, recorded for real: no mock of the audio path.

A private PulseAudio daemon with a null sink (lorawhisper_app.benchmarks.virtual_mic)
plays real dev clips with paplay; AudioCapture records the sink's monitor through
sounddevice/PortAudio/ALSA's pulse plugin, the way it records a microphone. The null
sink is 16 kHz mono s16le, so the recording is the played clip, bit for bit after s16
quantisation, and paced in real time.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from lorawhisper_app.benchmarks.virtual_mic import VirtualMicrophone, virtual_mic_unavailable
from lorawhisper_app.core.audio import load_audio
from lorawhisper_app.core.capture import (
    AudioCapture,
    CaptureError,
    InputDevice,
    find_input_device,
    list_input_devices,
)
from lorawhisper_app.core.errors import LoraWhisperError

RATE = 16000


def _our_daemons() -> list[str]:
    """pulseaudio processes (zombies too) that this test process started.

    Only this process's children: other processes (a benchmark, a parallel test run)
    may run virtual microphones of their own meanwhile.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = fields[0], int(fields[1])
        if comm == "pulseaudio" and ppid == os.getpid():
            found.append(f"{entry.name} ({state}): {cmdline.strip() or '[defunct]'}")
    return found


@pytest.fixture(scope="module", autouse=True)
def _no_daemon_left_behind():
    before = set(_our_daemons())
    yield
    left = [p for p in _our_daemons() if p not in before]
    assert not left, f"pulseaudio daemons left running: {left}"


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


def _align(recording: np.ndarray, reference: np.ndarray) -> int:
    """Where ``reference`` starts in ``recording``, by FFT cross-correlation."""
    n = len(recording) + len(reference)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    return int(np.argmax(corr[: len(recording) - len(reference) + 1]))


def _offset(a: np.ndarray, b: np.ndarray) -> int:
    """The shift d for which a[i] best matches b[i - d] (d < 0: a starts inside b)."""
    size = 1 << (len(a) + len(b) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    shifts = np.concatenate([np.arange(0, len(a)), np.arange(-(len(b) - 1), 0)])
    values = np.concatenate([corr[: len(a)], corr[size - (len(b) - 1) :]])
    return int(shifts[np.argmax(values)])


def test_records_a_played_clip_bit_exact_in_real_time(mic, clip):
    reference = mic.quantise(load_audio(clip))  # what an s16 null sink gives back
    duration = len(reference) / RATE
    pieces, levels = [], []
    with AudioCapture(device=mic.device, block_seconds=0.1) as capture:
        assert (capture.samplerate, capture.channels) == (RATE, 1)  # no conversion needed
        time.sleep(0.4)
        silence = capture.read_available()
        silent_level = capture.level_db
        started = time.monotonic()
        player = mic.play(clip)
        while player.poll() is None:
            block = capture.read(timeout=1.0)
            assert block is not None, "no audio within 1 s while playing"
            assert block.dtype == np.float32 and block.ndim == 1
            pieces.append(block)
            levels.append(capture.level_db)
        played_in = time.monotonic() - started
        assert player.returncode == 0, player.stderr.read().decode()
        time.sleep(0.4)  # the monitor's latency: let the clip's tail arrive
        wall = time.monotonic() - started
    pieces.append(capture.read_available())  # after stop: everything still queued
    recording = np.concatenate(pieces)

    # Silence before playing: digital zeros, level -inf (or at least below -60 dBFS).
    assert len(silence) > 0 and np.all(silence == 0)
    assert silent_level == -math.inf or silent_level < -60
    # Playback is paced in real time, and so is capture.
    print(f"played {duration:.3f} s in {played_in:.3f} s; recorded {len(recording) / RATE:.3f} s in {wall:.3f} s")
    assert played_in >= duration - 0.15, (played_in, duration)
    assert abs(len(recording) / RATE - wall) < 0.3, (len(recording) / RATE, wall)
    # Nothing dropped: every sample captured up to stop() was read (a block may still
    # arrive between the wall reading above and stop(); it counts and is read too).
    assert len(recording) + len(silence) == capture.samples_captured
    assert capture.backlog_seconds == 0
    # The level meter rose well above silence during playback.
    peak_db = 20 * math.log10(float(np.abs(reference).max()))
    assert max(levels) > -50 and max(levels) > peak_db - 12, (max(levels), peak_db)
    # The recording holds the clip, sample for sample.
    lag = _align(recording, reference)
    aligned = recording[lag : lag + len(reference)]
    error = float(np.abs(aligned - reference).max())
    assert error < 1e-3, f"max abs error {error} at lag {lag} (overflows: {capture.overflows})"
    assert np.all(recording[:lag] == 0) and np.all(recording[lag + len(reference) :] == 0)


def test_pause_records_nothing_and_resume_continues(mic, clip):
    reference = mic.quantise(load_audio(clip))
    pause_s = 1.5
    with AudioCapture(device=mic.device) as capture:
        time.sleep(0.2)
        player = mic.play_array(reference)
        time.sleep(1.2)
        capture.pause()
        assert capture.paused and not capture.running
        before = capture.read_available()
        frozen = capture.samples_captured
        assert len(before) == frozen
        paused_at = time.monotonic()
        assert capture.read(timeout=0.3) is None  # nothing comes while paused...
        assert time.monotonic() - paused_at >= 0.29  # ...and read() waited: no spinning
        time.sleep(pause_s - (time.monotonic() - paused_at))
        assert capture.samples_captured == frozen
        assert capture.level_db == -math.inf
        assert len(capture.read_available()) == 0
        pause_wall = time.monotonic() - paused_at
        capture.resume()
        assert capture.running
        player.wait(timeout=15)
        time.sleep(0.4)
    after = capture.read_available()
    assert len(before) + len(after) == capture.samples_captured

    # Before the pause: the clip's start, exact.
    lag = _offset(before, reference)
    head = len(before) - lag
    assert head > RATE // 2
    assert np.array_equal(before[lag:], reference[:head])
    # After the resume: the clip goes on from where it was pause_wall later, exact;
    # the audio played while paused was not recorded.
    assert np.abs(after[: RATE // 2]).max() > 0, "resumed capture starts with silence: clip over?"
    resumed_at = -_offset(after, reference)
    assert np.array_equal(after[: len(reference) - resumed_at], reference[resumed_at:])
    gap_s = (resumed_at - head) / RATE
    print(f"gap {gap_s:.3f} s, paused {pause_wall:.3f} s")
    # Exactly the pause, plus up to a few blocks of the stream's latency (paused audio
    # was dropped, not buffered and delivered on resume).
    assert pause_wall - 0.05 <= gap_s <= pause_wall + 0.35, (gap_s, pause_wall)


def test_backlog_grows_when_not_read_and_nothing_is_dropped(mic):
    with AudioCapture(device=mic.device, block_seconds=0.05) as capture:
        time.sleep(1.0)
        backlog = capture.backlog_seconds
        assert 0.8 <= backlog <= 1.5, backlog
        assert backlog == pytest.approx(capture.samples_captured / RATE, abs=0.06)
        first = capture.read_available()
        assert len(first) >= int(0.8 * RATE)
        assert capture.backlog_seconds < 0.2
        time.sleep(0.3)
    block = capture.read(timeout=5)  # after stop, what was captured is still there
    assert block is not None and len(block) == 800  # 0.05 s blocks
    rest = capture.read_available()
    assert capture.backlog_seconds == 0
    # Every sample the callback saw was handed out.
    assert len(first) + len(block) + len(rest) == capture.samples_captured
    started = time.monotonic()
    assert capture.read(timeout=5) is None  # stopped and drained: at once, not after 5 s
    assert time.monotonic() - started < 0.5


def test_a_device_without_16k_mono_is_downmixed_and_resampled(mic, clip):
    # Force the stream to 48 kHz stereo (what a device without 16 kHz would give):
    # PulseAudio upsamples the monitor, read() downmixes and resamples back.
    reference = mic.quantise(load_audio(clip)[: 3 * RATE])
    with AudioCapture(device=mic.device, stream_samplerate=48000, stream_channels=2) as capture:
        assert (capture.samplerate, capture.channels) == (48000, 2)
        time.sleep(0.2)
        mic.play_array(reference).wait(timeout=15)
        time.sleep(0.4)
    recording = capture.read_available()
    assert recording.dtype == np.float32
    assert abs(len(recording) - capture.samples_captured / 3) <= 64  # 16 kHz out
    lag = _align(recording, reference)
    aligned = recording[lag : lag + len(reference)]
    # Two resamplers (PulseAudio's soxr up, libswresample's down) leave a delay that is
    # not a whole number of 16 kHz samples: undo the fraction, then compare. The clip is
    # cut at 3 s mid-speech, so leave out its edges (filter ringing).
    body = slice(400, len(reference) - 400)
    gain = math.sqrt(float(np.dot(aligned, aligned)) / float(np.dot(reference, reference)))
    assert 0.95 < gain < 1.05, gain
    freqs = np.fft.rfftfreq(len(aligned))
    spectrum = np.fft.rfft(aligned)
    noise = min(
        float(np.sqrt(np.mean((np.fft.irfft(spectrum * np.exp(2j * np.pi * freqs * frac), len(aligned))[body]
                               - reference[body]) ** 2)))
        for frac in np.linspace(-1, 1, 41)
    )
    signal = float(np.sqrt(np.mean(reference[body] ** 2)))
    assert 20 * math.log10(signal / noise) > 35, (signal, noise)


def test_list_and_find_input_devices(mic):
    devices = list_input_devices()
    assert all(isinstance(device, InputDevice) for device in devices)
    names = [device.name for device in devices]
    assert "pulse" in names, names
    pulse = find_input_device("PULSE")  # exact name, any case
    assert pulse.name == "pulse" and pulse.channels >= 1 and pulse.default_samplerate > 0
    assert find_input_device(pulse.index) == pulse
    assert find_input_device(str(pulse.index)) == pulse
    default = find_input_device(None)
    assert default.is_default or not any(device.is_default for device in devices)
    assert sum(device.is_default for device in devices) <= 1

    with pytest.raises(CaptureError, match=r"no input device matches 'no such mic 42'.*pulse") as info:
        find_input_device("no such mic 42")
    assert isinstance(info.value, LoraWhisperError) and "\n" not in str(info.value)
    with pytest.raises(CaptureError, match=r"no input device with index 987"):
        find_input_device(987)
    with pytest.raises(CaptureError, match="no such mic 42"):
        AudioCapture(device="no such mic 42").start()


def test_sessions_start_and_stop_cleanly():
    reason = virtual_mic_unavailable()
    if reason:
        pytest.skip(f"no virtual microphone: {reason}")
    env_before = {name: os.environ.get(name) for name in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    outside = [device.name for device in list_input_devices()]
    for _ in range(2):
        with VirtualMicrophone() as virtual:
            pid, folder = virtual.pid, virtual.folder
            assert pid is not None and Path(f"/proc/{pid}").exists()
            assert folder is not None and os.environ["XDG_RUNTIME_DIR"].startswith(str(folder))
            assert "vsink.monitor" in virtual.pactl("list", "short", "sources")
            with AudioCapture(device=virtual.device) as capture:
                assert capture.read(timeout=2) is not None
        assert not Path(f"/proc/{pid}").exists(), "the daemon is still there (or a zombie)"
        assert not folder.exists()
        assert {name: os.environ.get(name) for name in env_before} == env_before
        assert [device.name for device in list_input_devices()] == outside
    assert not _our_daemons()


def test_no_device_at_all_is_a_clear_error():
    if list_input_devices():
        pytest.skip("this machine has an input device")
    with pytest.raises(CaptureError, match="^no audio input device found"):
        find_input_device(None)
    with pytest.raises(CaptureError, match="^no audio input device found"):
        AudioCapture().start()
