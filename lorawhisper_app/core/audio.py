"""Audio files in, 16 kHz mono float32 out.

Every format goes through one PyAV (ffmpeg) path: demux, decode, then libswresample
downmixes and resamples while streaming, so a file of any length is decoded in pieces.
Problems a user can act on raise :class:`AudioError` with a one-line message.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import av
import numpy as np

from lorawhisper_app.core.errors import AudioError

SAMPLE_RATE = 16000

AUDIO_EXTENSIONS: frozenset[str] = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".m4a", ".m4b",
    ".mp4", ".aac", ".webm", ".mka", ".wma", ".aif", ".aiff", ".aifc", ".caf", ".amr",
    ".3gp", ".ac3",
})

NOT_AUDIO = "not an audio file or an unsupported format"
NO_AUDIO = "contains no audio"
CORRUPT = "corrupt or truncated audio"

# Leading bytes of the containers above: a file that starts like one of these but that
# ffmpeg cannot open is a damaged audio file, not a file of some other kind.
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (8, b"WAVE"), (8, b"AIF"), (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"), (4, b"ftyp"),
    (0, b"\x1aE\xdf\xa3"), (0, b"0&\xb2u\x8ef\xcf\x11"), (0, b"caff"), (0, b"#!AMR"),
)

# Metadata may promise this much audio before an empty decode counts as corruption
# rather than an empty file (an empty Ogg still claims a few milliseconds).
_EMPTY_TOLERANCE_S = 0.05

log = logging.getLogger(__name__)


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Decode the whole file to a 1-D float32 array at 16 kHz."""
    return np.concatenate(list(_decode(path, _open(path))))


def iter_audio_chunks(path: str | os.PathLike, chunk_seconds: float) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of ``chunk_seconds`` at 16 kHz (the last may be shorter).

    Only about one chunk is held in memory at a time. The file is opened (and a missing
    or unreadable file reported) on the call, before the first chunk is asked for.
    """
    size = round(chunk_seconds * SAMPLE_RATE)
    if size < 1:
        raise ValueError(f"chunk_seconds must be at least 1/{SAMPLE_RATE} s, got {chunk_seconds}")
    return _rechunk(_decode(path, _open(path)), size)


def audio_duration(path: str | os.PathLike) -> float:
    """Length in seconds, from container metadata when it has one, else by decoding."""
    container = _open(path)
    if container.duration is not None:
        seconds = container.duration / av.time_base
        container.close()
        return seconds
    return sum(len(piece) for piece in _decode(path, container)) / SAMPLE_RATE


def is_silent(audio: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when the peak level is below ``threshold_db`` dBFS (full scale = 1.0).

    Peak rather than RMS: quiet real recordings (FLEURS dev clips) carry speech at
    -63 dBFS RMS, but their peaks stay above -50 dBFS.
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return peak == 0.0 or 20.0 * np.log10(peak) < threshold_db


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    """Open ``path`` with ffmpeg and check that it has an audio stream."""
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "file not found")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        container = av.open(os.fspath(p), metadata_errors="replace")
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except (av.FFmpegError, OSError) as e:
        if isinstance(e, EOFError) or _looks_like_audio(p):
            raise AudioError(path, f"{CORRUPT}: cannot read the header") from None
        raise AudioError(path, NOT_AUDIO) from None
    if not container.streams.audio:
        container.close()
        raise AudioError(path, NOT_AUDIO)
    return container


def _looks_like_audio(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(16)
    return any(head[at:at + len(sig)] == sig for at, sig in _SIGNATURES) or (
        len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MPEG/ADTS frame sync
    )


def _riff_cut_short(path: Path) -> bool:
    """True for a WAV whose header counts more bytes than the file has (ffmpeg clamps)."""
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return False
    return struct.unpack("<I", head[4:8])[0] > path.stat().st_size - 8


def _decode(path: str | os.PathLike, container: av.container.InputContainer) -> Iterator[np.ndarray]:
    """Yield 16 kHz mono float32 pieces of the best audio stream, then close the container.

    Like the ffmpeg command line, a packet the decoder rejects is skipped (and logged);
    a file that gives no audio at all raises AudioError.
    """
    stream = container.streams.best("audio")
    skipped = 0

    def frames() -> Iterator[av.AudioFrame]:
        nonlocal skipped
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets, None)
            except (av.FFmpegError, OSError) as e:
                raise AudioError(path, f"{CORRUPT}: {_reason(e)}") from None
            if packet is None:
                return
            try:
                yield from packet.decode()
            except av.FFmpegError:
                skipped += 1

    resampler: av.AudioResampler | None = None
    setup: tuple[str, str, int] | None = None
    total = 0
    try:
        for frame in chain(frames(), [None]):
            key = None if frame is None else (frame.format.name, frame.layout.name, frame.sample_rate)
            out: list[av.AudioFrame] = []
            # Flush at the end, and when the input changes rate or layout mid-stream
            # (chained MP3s, HE-AAC): a resampler is set up for one input format.
            if resampler is not None and key != setup:
                out += resampler.resample(None)
                resampler = None
            if frame is not None:
                if resampler is None:
                    resampler, setup = _new_resampler(), key
                out += resampler.resample(frame)
            for resampled in out:
                # Lossy decoders overshoot full scale slightly; the copy also frees the frame.
                piece = np.clip(resampled.to_ndarray()[0], -1.0, 1.0)
                total += len(piece)
                yield piece
        promised = (container.duration or 0) / av.time_base
    except av.FFmpegError:  # frames() turns demuxer and decoder errors into AudioError
        _, layout, rate = setup
        raise AudioError(path, f"unsupported audio: cannot convert {layout} at {rate} Hz to mono") from None
    finally:
        container.close()

    if total == 0:
        if skipped or promised > _EMPTY_TOLERANCE_S or _riff_cut_short(Path(path)):
            raise AudioError(path, f"{CORRUPT}: no decodable audio data")
        raise AudioError(path, NO_AUDIO)
    if skipped:
        log.warning("%s: skipped %d corrupt packet(s)", path, skipped)


def _new_resampler() -> av.AudioResampler:
    # rematrix_maxval=1 normalises the downmix (stereo -> (L+R)/2), as ffmpeg does for
    # integer output; without it float output mixes at 0.707 per channel and can clip.
    return av.AudioResampler(
        format="flt", layout="mono", rate=SAMPLE_RATE, options={"rematrix_maxval": "1.0"}
    )


def _rechunk(pieces: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Regroup arbitrary-length pieces into chunks of exactly ``size`` samples."""
    held: list[np.ndarray] = []
    count = 0
    for piece in pieces:
        held.append(piece)
        count += len(piece)
        if count >= size:
            buffer = np.concatenate(held)
            starts = range(0, len(buffer) - size + 1, size)
            for start in starts:
                yield buffer[start:start + size]
            rest = buffer[starts[-1] + size:]
            held, count = [rest], len(rest)
    if count:
        yield np.concatenate(held)


def _reason(error: Exception) -> str:
    """A short lowercase reason from an ffmpeg error ("invalid data found when ...")."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().rstrip(".").lower()
