"""Whisper's log-mel front end, computed on a window of audio alone.

The features of a window are computed from that window's samples only (plus 160 zero
samples, as faster-whisper does) and then padded with zeros to 30 s worth of frames.
This matches faster-whisper's front end, so the two engines can be compared on equal
features, and it lets long files be processed one window at a time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 frames of 10 ms
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH


@lru_cache(maxsize=4)
def _mel_filters(n_mels: int) -> torch.Tensor:
    filters = mel_filter_bank(
        num_frequency_bins=1 + N_FFT // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(filters.T.astype(np.float32))  # [n_mels, n_freq]


def log_mel(audio: np.ndarray | torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Log-mel spectrogram [n_mels, frames] of 16 kHz mono audio, normalised as Whisper expects.

    Computed on the device the audio tensor lies on."""
    wave = torch.as_tensor(audio, dtype=torch.float32)
    wave = torch.nn.functional.pad(wave, (0, HOP_LENGTH))
    window = torch.hann_window(N_FFT, device=wave.device)
    stft = torch.stft(wave, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    mel = _mel_filters(n_mels).to(wave.device) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def pad_frames(mel: torch.Tensor, frames: int = N_FRAMES) -> torch.Tensor:
    """Cut or zero-pad a [n_mels, t] spectrogram to exactly `frames` frames."""
    if mel.shape[-1] >= frames:
        return mel[..., :frames]
    return torch.nn.functional.pad(mel, (0, frames - mel.shape[-1]))


def window_features(audio: np.ndarray | torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Encoder input [1, n_mels, 3000] for up to 30 s of audio."""
    return pad_frames(log_mel(audio[:N_SAMPLES], n_mels)).unsqueeze(0)
