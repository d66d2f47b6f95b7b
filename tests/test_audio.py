"""Tests for lorawhisper_app.core.audio on real files encoded here and real dev clips."""

from __future__ import annotations

import json
import logging
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from lorawhisper_app.core.audio import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    audio_duration,
    is_silent,
    iter_audio_chunks,
    load_audio,
)
from lorawhisper_app.core.errors import AudioError

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "dev"

SECONDS = 3.0
ONSET = 0.5  # the test signal is silent before this, then a 440 Hz sine at amplitude 0.5
TONE_RMS = 0.5 / np.sqrt(2)
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def tone(rate: int, channels: int, seconds: float = SECONDS, onset: float = ONSET) -> np.ndarray:
    """(channels, samples) float32: silence until ``onset``, then 440 Hz at amplitude 0.5."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.where(t >= onset, 0.5 * np.sin(2 * np.pi * 440.0 * t), 0.0).astype(np.float32)
    return np.tile(x, (channels, 1))


def encode(target, container: str, codec: str, signal: np.ndarray, rate: int) -> None:
    """Encode ``signal`` (channels, samples) with PyAV; ``target`` is a path or a writable file."""
    layout = LAYOUTS[signal.shape[0]]
    with av.open(target if hasattr(target, "write") else str(target), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        for start in range(0, signal.shape[1], 4096):
            block = np.ascontiguousarray(signal[:, start:start + 4096])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def needs(codec: str):
    return pytest.mark.skipif(
        codec not in av.codecs_available, reason=f"this PyAV build has no {codec} encoder"
    )


# name, writer, sample-count tolerance at 16 kHz. AAC keeps the encoder's end padding
# (up to one 1024-sample frame at the source rate), every other format is exact.
FORMATS = [
    pytest.param("wav44k_stereo.wav", lambda p: encode(p, "wav", "pcm_s16le", tone(44100, 2), 44100), 2, id="wav"),
    pytest.param("wav8k_mono.wav", lambda p: sf.write(p, tone(8000, 1)[0], 8000, subtype="PCM_16"), 2, id="wav-8k"),
    pytest.param("surround.wav", lambda p: encode(p, "wav", "pcm_f32le", tone(96000, 6), 96000), 2, id="wav-96k-5.1"),
    pytest.param("a.flac", lambda p: encode(p, "flac", "flac", tone(44100, 2), 44100), 2, id="flac"),
    pytest.param("a.ogg", lambda p: sf.write(p, tone(44100, 2).T, 44100, format="OGG", subtype="VORBIS"), 2, id="ogg-vorbis"),
    pytest.param("a.opus", lambda p: encode(p, "opus", "libopus", tone(48000, 1), 48000), 2, id="opus", marks=needs("libopus")),
    pytest.param("a.mp3", lambda p: encode(p, "mp3", "libmp3lame", tone(44100, 2), 44100), 2, id="mp3", marks=needs("libmp3lame")),
    pytest.param("a.m4a", lambda p: encode(p, "ipod", "aac", tone(44100, 2), 44100), 400, id="m4a-aac", marks=needs("aac")),
    pytest.param("a.mp4", lambda p: encode(p, "mp4", "aac", tone(22050, 1), 22050), 800, id="mp4-aac", marks=needs("aac")),
    pytest.param("a.webm", lambda p: encode(p, "webm", "libopus", tone(48000, 2), 48000), 2, id="webm-opus", marks=needs("libopus")),
    pytest.param("a.mka", lambda p: encode(p, "matroska", "flac", tone(22050, 2), 22050), 2, id="mka-flac"),
]


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def check_tone(a: np.ndarray, end: float = SECONDS) -> None:
    """``a`` is the test signal at 16 kHz: right pitch, level and onset time."""
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.abs(a).max() <= 1.0
    steady = a[int((ONSET + 0.25) * SAMPLE_RATE):int((end - 0.1) * SAMPLE_RATE)]
    assert abs(dominant_hz(steady) - 440.0) < 2.0
    assert rms(steady) == pytest.approx(TONE_RMS, rel=0.08)
    onset = np.argmax(np.abs(a) > 0.1) / SAMPLE_RATE
    assert onset == pytest.approx(ONSET, abs=0.01)  # no decoder delay shifts the timeline
    assert is_silent(a[:int((ONSET - 0.05) * SAMPLE_RATE)])


@pytest.fixture
def flac(tmp_path: Path) -> Path:
    path = tmp_path / "tone.flac"
    encode(path, "flac", "flac", tone(44100, 2), 44100)
    return path


@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    if "libmp3lame" not in av.codecs_available:
        pytest.skip("this PyAV build has no libmp3lame encoder")
    path = tmp_path / "tone.mp3"
    encode(path, "mp3", "libmp3lame", tone(44100, 2), 44100)
    return path


def expect_error(path: Path, phrase: str, load=load_audio) -> AudioError:
    """``load(path)`` raises AudioError with a one-line message naming the file and ``phrase``."""
    with pytest.raises(AudioError) as info:
        load(path)
    message = str(info.value)
    assert path.name in message and phrase in message, message
    assert "\n" not in message and "Errno" not in message and "avcodec" not in message, message
    assert info.value.path == path
    assert info.value.__cause__ is None
    return info.value


# --- every format ------------------------------------------------------------------------


@pytest.mark.parametrize("name, write, tolerance", FORMATS)
def test_formats_decode_to_16k_mono_float32(tmp_path: Path, name: str, write, tolerance: int) -> None:
    path = tmp_path / name
    write(path)
    a = load_audio(path)
    assert abs(len(a) - SECONDS * SAMPLE_RATE) <= tolerance
    assert len(a) >= SECONDS * SAMPLE_RATE - 2
    check_tone(a)
    assert audio_duration(path) == pytest.approx(SECONDS, abs=0.05)
    assert path.suffix in AUDIO_EXTENSIONS


def test_accepts_str_paths(flac: Path) -> None:
    assert np.array_equal(load_audio(str(flac)), load_audio(flac))


def test_duration_without_container_metadata_decodes(tmp_path: Path) -> None:
    """A WebM written to a non-seekable stream (as browser recorders do) has no duration."""

    class Pipe:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, chunk: bytes) -> int:
            self.data += chunk
            return len(chunk)

    pipe = Pipe()
    encode(pipe, "webm", "libopus", tone(48000, 1), 48000)
    path = tmp_path / "recording.webm"
    path.write_bytes(pipe.data)
    with av.open(str(path)) as container:
        assert container.duration is None
    assert audio_duration(path) == pytest.approx(SECONDS, abs=0.01)


@needs("libmp3lame")
def test_rate_and_layout_change_mid_stream(tmp_path: Path) -> None:
    """Two MP3s joined (44.1 kHz stereo, then 22.05 kHz mono) decode as one timeline."""
    first, second, joined = tmp_path / "1.mp3", tmp_path / "2.mp3", tmp_path / "joined.mp3"
    encode(first, "mp3", "libmp3lame", tone(44100, 2, seconds=1.5, onset=0.0), 44100)
    encode(second, "mp3", "libmp3lame", tone(22050, 1, seconds=1.5, onset=0.0), 22050)
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    a = load_audio(joined)
    assert len(a) / SAMPLE_RATE == pytest.approx(3.0, abs=0.15)
    for part in (a[4000:20000], a[-20000:-4000]):
        assert abs(dominant_hz(part) - 440.0) < 2.0
        assert rms(part) == pytest.approx(TONE_RMS, rel=0.1)


# --- errors ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.wav", "file not found")
    expect_error(tmp_path / "nope.wav", "file not found", audio_duration)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.wav").mkdir()
    expect_error(tmp_path / "folder.wav", "is a directory, not an audio file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(flac: Path) -> None:
    flac.chmod(0)
    try:
        expect_error(flac, "permission denied")
    finally:
        flac.chmod(0o644)


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n" * 50)
    expect_error(path, "not an audio file or an unsupported format")


def test_png_named_wav(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress((b"\x00" + b"\x80" * 8) * 8)) + chunk(b"IEND", b"")
    path = tmp_path / "picture.wav"
    path.write_bytes(png)
    expect_error(path, "not an audio file or an unsupported format")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp3"
    path.touch()
    expect_error(path, "empty file")


@pytest.mark.parametrize("name, write", [
    ("silence.wav", lambda p: sf.write(p, np.zeros(0, np.float32), 16000)),
    ("silence.ogg", lambda p: sf.write(p, np.zeros(0, np.float32), 16000, format="OGG", subtype="VORBIS")),
    ("silence.flac", lambda p: encode(p, "flac", "flac", np.zeros((1, 0), np.float32), 16000)),
])
def test_valid_file_without_samples(tmp_path: Path, name: str, write) -> None:
    path = tmp_path / name
    write(path)
    assert path.stat().st_size > 0
    expect_error(path, "contains no audio")
    expect_error(path, "contains no audio", lambda p: next(iter_audio_chunks(p, 1.0)))


@pytest.mark.parametrize("name, write", [
    pytest.param("long.flac", lambda p, x: encode(p, "flac", "flac", x, 44100), id="flac"),
    pytest.param("long.mp3", lambda p, x: encode(p, "mp3", "libmp3lame", x, 44100), id="mp3", marks=needs("libmp3lame")),
    pytest.param("long.ogg", lambda p, x: sf.write(p, x.T, 44100, format="OGG", subtype="VORBIS"), id="ogg-vorbis"),
])
def test_file_cut_in_half_decodes_its_first_half(tmp_path: Path, name: str, write) -> None:
    """A file cut in half is what an interrupted copy or recording leaves: like ffmpeg, the
    intact part decodes (the cut packet is skipped) rather than the whole file failing."""
    seconds = 12.0
    full = tmp_path / name
    write(full, tone(44100, 2, seconds=seconds))
    half = tmp_path / f"half-{name}"
    data = full.read_bytes()
    half.write_bytes(data[:len(data) // 2])
    a = load_audio(half)
    assert 0.3 * seconds < len(a) / SAMPLE_RATE < 0.7 * seconds
    check_tone(a, end=len(a) / SAMPLE_RATE)


@pytest.mark.parametrize("write", [
    lambda p: sf.write(p, tone(16000, 1)[0], 16000, subtype="PCM_16"),  # 44-byte header
    lambda p: encode(p, "wav", "pcm_s16le", tone(16000, 1), 16000),  # with a LIST chunk
], ids=["libsndfile", "ffmpeg"])
def test_wav_cut_after_44_bytes(tmp_path: Path, write) -> None:
    full = tmp_path / "full.wav"
    write(full)
    path = tmp_path / "header.wav"
    path.write_bytes(full.read_bytes()[:44])
    expect_error(path, "corrupt or truncated audio")


@pytest.mark.parametrize("name, write, tolerance", [f for f in FORMATS if f.id in ("flac", "mp3", "opus", "webm-opus", "m4a-aac")])
def test_garbage_after_header(tmp_path: Path, name: str, write, tolerance: int) -> None:
    source = tmp_path / name
    write(source)
    data = source.read_bytes()
    path = tmp_path / f"garbage{source.suffix}"
    path.write_bytes(data[:200] + np.random.default_rng(0).bytes(len(data) - 200))
    expect_error(path, "corrupt or truncated audio")


@needs("aac")
def test_m4a_cut_before_its_index(tmp_path: Path) -> None:
    """An interrupted MP4 recording lacks its index (moov, written last): it cannot be read."""
    full = tmp_path / "full.m4a"
    encode(full, "ipod", "aac", tone(44100, 2), 44100)
    path = tmp_path / "interrupted.m4a"
    path.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    expect_error(path, "corrupt or truncated audio")


def test_channel_layout_ffmpeg_cannot_downmix(tmp_path: Path) -> None:
    path = tmp_path / "array.wav"
    sf.write(path, np.zeros((8000, 32), np.float32) + 0.1, 8000)
    expect_error(path, "unsupported audio: cannot convert 32 channels at 8000 Hz to mono")


def test_corrupt_packets_are_skipped_with_a_warning(mp3: Path, tmp_path: Path, caplog) -> None:
    data = bytearray(mp3.read_bytes())
    third = len(data) // 3
    data[third:third + 3000] = np.random.default_rng(1).bytes(3000)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="lorawhisper_app.core.audio"):
        a = load_audio(path)
    assert len(a) / SAMPLE_RATE == pytest.approx(SECONDS, abs=0.3)
    assert "damaged.mp3: skipped" in caplog.text


# --- streaming ---------------------------------------------------------------------------


def test_chunks_concatenate_to_the_whole_file(mp3: Path, flac: Path) -> None:
    for path in (mp3, flac):
        whole = load_audio(path)
        chunks = list(iter_audio_chunks(path, 0.7))
        assert all(len(c) == 11200 for c in chunks[:-1])
        assert 0 < len(chunks[-1]) <= 11200
        assert all(c.dtype == np.float32 for c in chunks)
        assert np.array_equal(np.concatenate(chunks), whole)


def test_chunks_errors_come_on_the_call(tmp_path: Path, flac: Path) -> None:
    expect_error(tmp_path / "nope.flac", "file not found", lambda p: iter_audio_chunks(p, 30.0))
    with pytest.raises(ValueError):
        iter_audio_chunks(flac, 0.0)


def test_long_file_is_streamed(tmp_path: Path) -> None:
    """Ten minutes decode to 38 MB at 16 kHz; streaming 30 s chunks holds a few MB at most."""
    path = tmp_path / "long.wav"
    minutes = 10
    t = np.arange(minutes * 60 * 8000) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), 8000, subtype="PCM_16")
    del t

    tracemalloc.start()
    try:
        sizes = []
        for chunk in iter_audio_chunks(path, 30.0):
            sizes.append(len(chunk))
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [30 * SAMPLE_RATE] * (2 * minutes)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# --- real speech -------------------------------------------------------------------------


def dev_clips(count: int) -> list[dict]:
    if not (DEV / "manifest.jsonl").is_file():
        pytest.skip(f"dev speech data not found at {DEV}")
    with open(DEV / "manifest.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    first_per_language: dict[str, dict] = {}
    for row in rows:
        first_per_language.setdefault(row["language"], row)
    return list(first_per_language.values())[:count]


def test_dev_clips_match_manifest_duration() -> None:
    """Includes fleurs-fr-000: real speech at -62.5 dBFS RMS (peak -48) that is not silence."""
    for row in dev_clips(4):
        path = DEV / row["path"]
        a = load_audio(path)
        assert a.dtype == np.float32 and a.ndim == 1 and np.abs(a).max() <= 1.0
        assert len(a) / SAMPLE_RATE == pytest.approx(row["duration_s"], abs=0.05), row["path"]
        assert audio_duration(path) == pytest.approx(row["duration_s"], abs=0.05), row["path"]
        assert not is_silent(a)


# --- silence and extensions --------------------------------------------------------------


def test_is_silent() -> None:
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    sine = tone(16000, 1, onset=0.0)[0]
    assert not is_silent(sine)

    def at(db: float) -> np.ndarray:  # scaled to this peak level in dBFS
        return (sine / np.abs(sine).max() * 10 ** (db / 20)).astype(np.float32)

    assert is_silent(at(-61.0))
    assert not is_silent(at(-59.0))
    assert is_silent(at(-45.0), threshold_db=-40.0)


def test_audio_extensions() -> None:
    required = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".mp4", ".webm", ".aac", ".oga", ".mka", ".wma"}
    assert required <= AUDIO_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in AUDIO_EXTENSIONS)
