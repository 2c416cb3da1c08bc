"""Acoustic features: the 22050 Hz log-mel of the Gaddy recipe and its MFCC.

Log-mel (the Gaddy reference code's, itself HiFi-GAN's ``meldataset.py``;
docs/design.md, *Acoustic features*): n_fft 1024, hop 256, Hann window 1024, 80 Slaney
mel bins from 0 to 8000 Hz, magnitude ``sqrt(power + 1e-9)``, input
reflect-padded by 384 samples each side and not centred, natural log with a
1e-5 floor. A signal of ``L`` samples gives exactly ``L // 256`` frames at
:data:`FRAME_RATE` (86.13 Hz).

MFCC here is the orthonormal DCT-II of all log-mel bins: with ``n_mfcc ==
n_mels`` it is exactly invertible, so an acoustic model can predict MFCC and
the vocoder still receives log-mel.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import librosa
import numpy as np
import scipy.fft
import soundfile as sf

from silentspeech.atomic import atomic_open

AUDIO_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 256
WIN_LENGTH = 1024
N_MELS = 80
F_MIN = 0.0
F_MAX = 8000.0
PAD = (N_FFT - HOP_LENGTH) // 2  # 384: makes frame count exactly L // hop
LOG_FLOOR = 1e-5
#: Acoustic frames per second (22050 / 256 = 86.1328125 Hz).
FRAME_RATE = AUDIO_RATE / HOP_LENGTH


class AudioError(ValueError):
    """An audio file that cannot be read or has the wrong shape."""


def load_audio(path: str | os.PathLike, rate: int = AUDIO_RATE) -> np.ndarray:
    """Read an audio file, mix to mono and resample to ``rate`` Hz.

    Returns float32 samples, shape ``(samples,)``. Raises :class:`AudioError`
    naming the file when it is unreadable or empty.
    """
    audio, file_rate = read_audio(path)
    return resample_audio(audio, file_rate, rate)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float32 samples ``(samples,)`` of an audio file at its own rate, and that rate in Hz.

    Raises :class:`AudioError` naming the file when it is missing, not a
    regular file (a FIFO would block), unreadable, empty or holds NaN or
    infinite samples (a float WAV can; librosa fails on them deep inside).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: {'not a regular file' if path.exists() else 'missing'}")
    try:
        audio, file_rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for bad files
        raise AudioError(f"{path}: unreadable audio ({err})") from None
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    mono = audio.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio holds {int((~np.isfinite(mono)).sum())} NaN or infinite samples")
    return mono, int(file_rate)


def resample_audio(audio: np.ndarray, rate: int, target_rate: int = AUDIO_RATE) -> np.ndarray:
    """Mono ``(samples,)`` audio at ``rate`` Hz resampled to ``target_rate`` Hz (soxr, high quality), float32."""
    if rate != target_rate:
        audio = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")
    return np.asarray(audio, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def mel_filterbank(rate: int = AUDIO_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised mel filterbank, shape ``(n_mels, n_fft // 2 + 1)``."""
    return librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=F_MIN, fmax=F_MAX, norm="slaney", htk=False)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram of 22050 Hz audio.

    Args:
        audio: float samples at :data:`AUDIO_RATE`, shape ``(samples,)``.

    Returns:
        float32 array ``(samples // 256, 80)`` at :data:`FRAME_RATE`.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(f"log_mel expects mono samples (samples,), got shape {audio.shape}")
    if audio.shape[0] < HOP_LENGTH:
        raise AudioError(f"audio of {audio.shape[0]} samples is shorter than one frame ({HOP_LENGTH})")
    padded = np.pad(audio, (PAD, PAD), mode="reflect")
    spec = librosa.stft(padded, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hann", center=False)
    magnitude = np.sqrt(np.abs(spec) ** 2 + 1e-9)
    mel = mel_filterbank() @ magnitude
    return np.log(np.maximum(mel, LOG_FLOOR)).T.astype(np.float32)


def mfcc_from_log_mel(log_mel_frames: np.ndarray, n_mfcc: int = N_MELS) -> np.ndarray:
    """Orthonormal DCT-II of log-mel frames ``(..., n_mels)`` -> ``(..., n_mfcc)``."""
    coeffs = scipy.fft.dct(np.asarray(log_mel_frames, dtype=np.float64), type=2, norm="ortho", axis=-1)
    return coeffs[..., :n_mfcc].astype(np.float32)


def log_mel_from_mfcc(mfcc: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """Inverse of :func:`mfcc_from_log_mel`; truncated coefficients count as zero.

    ``(..., n_mfcc)`` -> ``(..., n_mels)``; exact when ``n_mfcc == n_mels``.
    """
    mfcc = np.asarray(mfcc, dtype=np.float64)
    n_mfcc = mfcc.shape[-1]
    if n_mfcc > n_mels:
        raise ValueError(f"{n_mfcc} MFCC coefficients cannot come from {n_mels} mel bins")
    full = np.zeros(mfcc.shape[:-1] + (n_mels,), dtype=np.float64)
    full[..., :n_mfcc] = mfcc
    return scipy.fft.idct(full, type=2, norm="ortho", axis=-1).astype(np.float32)


def acoustic_features(audio: np.ndarray, n_mfcc: int = N_MELS) -> np.ndarray:
    """MFCC targets of 22050 Hz audio, shape ``(samples // 256, n_mfcc)``."""
    return mfcc_from_log_mel(log_mel(audio), n_mfcc)


def write_wav(path: str | os.PathLike, audio: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """Write mono float audio ``(samples,)`` as 16-bit PCM WAV, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        sf.write(handle, np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return path
