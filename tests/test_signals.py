"""The core signal modules: EMG preprocessing, acoustic features, text normalisation."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from silentspeech.features import (
    AUDIO_RATE,
    FRAME_RATE,
    AudioError,
    acoustic_features,
    load_audio,
    log_mel,
    log_mel_from_mfcc,
    mfcc_from_log_mel,
)
from silentspeech.preprocessing import (
    EMG_PER_FRAME,
    EMG_RATE,
    EMGError,
    EMGPreprocessing,
    align_to_frames,
    check_emg,
    filter_emg,
    notch_harmonics,
    preprocess_emg,
)
from silentspeech.text import BLANK, LABELS, NUM_CLASSES, ids_to_text, normalize_text, text_to_ids

RATE = 1000.0


def _amplitude(signal: np.ndarray, freq: float, rate: float) -> float:
    """Amplitude of the ``freq`` component of a 1-D signal (projection on sin and cos)."""
    t = np.arange(signal.shape[0]) / rate
    return 2 * abs(np.mean(signal * np.exp(-2j * np.pi * freq * t)))


@pytest.mark.parametrize("mains", [60.0, 50.0])
def test_notch_removes_30_db_at_mains_and_harmonics(mains):
    t = np.arange(20_000) / RATE
    harmonics = np.arange(mains, RATE / 2, mains)
    signal = sum(np.sin(2 * np.pi * f * t + f) for f in harmonics)
    emg = np.stack([signal, 2 * signal], axis=1)
    filtered = notch_harmonics(emg, RATE, mains=mains, q=30.0)
    assert filtered.shape == emg.shape
    middle = slice(2000, -2000)  # away from the filter's edge transients
    for f in harmonics:
        before = _amplitude(emg[middle, 0], f, RATE)
        after = _amplitude(filtered[middle, 0], f, RATE)
        assert 20 * np.log10(before / after) >= 30, f"{f} Hz attenuated only {20 * np.log10(before / after):.1f} dB"


def test_default_preprocessing_notches_60_to_420_hz_like_the_gaddy_reference():
    t = np.arange(20_000) / RATE
    emg = np.stack([np.sin(2 * np.pi * f * t) for f in (420.0, 480.0)], axis=1)
    filtered = filter_emg(emg, EMGPreprocessing(highpass_hz=0.5))
    middle = slice(2000, -2000)
    drop = [20 * np.log10(_amplitude(emg[middle, c], f, RATE) / _amplitude(filtered[middle, c], f, RATE)) for c, f in enumerate((420.0, 480.0))]
    assert drop[0] >= 30 and drop[1] < 0.5  # 420 Hz (7th harmonic) notched, 480 Hz (8th) kept
    two = notch_harmonics(emg, RATE, 60.0, harmonics=8)
    assert 20 * np.log10(_amplitude(emg[middle, 1], 480.0, RATE) / _amplitude(two[middle, 1], 480.0, RATE)) >= 30


def test_notch_keeps_frequencies_between_harmonics():
    t = np.arange(20_000) / RATE
    signal = np.sin(2 * np.pi * 90 * t)[:, None]
    filtered = notch_harmonics(signal, RATE, mains=60.0)
    assert 20 * np.log10(_amplitude(signal[2000:-2000, 0], 90, RATE) / _amplitude(filtered[2000:-2000, 0], 90, RATE)) < 0.5


def test_preprocess_removes_mains_and_drift_and_resamples():
    rng = np.random.default_rng(0)
    t = np.arange(5000) / RATE
    emg = 100 * np.sin(2 * np.pi * 60 * t)[:, None] + 5 * rng.normal(size=(5000, 8)) + 500 + 200 * t[:, None]
    out = preprocess_emg(emg, EMGPreprocessing())
    assert out.dtype == np.float32 and out.shape == (round(5000 * EMG_RATE / RATE), 8)
    assert np.abs(out[-1]).min() > 0  # no zero padding sample at the end (librosa's fix=True adds one)
    assert abs(out[200:-200].mean()) < 0.05  # offset and slow drift high-passed away
    assert _amplitude(out[200:-200, 0].astype(np.float64), 60, EMG_RATE) < 0.05  # 5 before scaling, now gone
    assert np.abs(out).max() < 50  # soft clip bound


@pytest.mark.parametrize("seconds", [0.37, 1.0, 2.513, 4.2])
def test_emg_is_exactly_8_samples_per_frame_after_alignment(seconds):
    raw_emg = np.random.default_rng(1).normal(size=(int(seconds * RATE), 8))
    audio_16k = np.random.default_rng(2).normal(scale=0.1, size=int(seconds * 16000)).astype(np.float32)
    audio = librosa.resample(audio_16k, orig_sr=16000, target_sr=AUDIO_RATE, res_type="soxr_hq")
    frames = log_mel(audio).shape[0]
    assert frames == audio.shape[0] // 256
    emg, n = align_to_frames(preprocess_emg(raw_emg), frames)
    assert emg.shape[0] == EMG_PER_FRAME * n and n >= frames - 1  # at most one frame of rounding lost
    assert EMG_RATE == pytest.approx(8 * FRAME_RATE) and EMG_RATE == pytest.approx(689.0625)


def test_align_to_frames_trims_the_longer_side():
    emg = np.zeros((100, 8))
    assert align_to_frames(emg, 20)[0].shape == (96, 8) and align_to_frames(emg, 20)[1] == 12
    assert align_to_frames(emg, 5)[0].shape == (40, 8) and align_to_frames(emg, 5)[1] == 5


def test_mfcc_to_log_mel_round_trip():
    audio = np.random.default_rng(3).normal(scale=0.1, size=AUDIO_RATE).astype(np.float32)
    mel = log_mel(audio)
    assert mel.shape == (AUDIO_RATE // 256, 80) and mel.dtype == np.float32
    restored = log_mel_from_mfcc(mfcc_from_log_mel(mel))
    assert np.abs(restored - mel).max() < 1e-5
    assert acoustic_features(audio, n_mfcc=26).shape == (AUDIO_RATE // 256, 26)
    # Truncated MFCC count as zeros: a smooth (low-pass in mel) version comes back.
    smooth = log_mel_from_mfcc(mfcc_from_log_mel(mel, 26))
    assert smooth.shape == mel.shape and np.abs(smooth - mel).mean() < np.abs(mel - mel.mean()).mean()


def test_log_mel_of_silence_hits_the_floor():
    silence = log_mel(np.zeros(2048, dtype=np.float32))
    assert silence.shape == (8, 80) and np.isfinite(silence).all() and silence.min() >= np.log(1e-5) - 1e-6


def test_load_audio_resamples_and_names_bad_files(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, np.zeros((16000, 2), dtype=np.float32), 16000)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (AUDIO_RATE,)
    (tmp_path / "bad.flac").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="bad.flac: unreadable audio"):
        load_audio(tmp_path / "bad.flac")
    with pytest.raises(AudioError, match="shorter than one frame"):
        log_mel(np.zeros(100, dtype=np.float32))


@pytest.mark.parametrize(
    "emg, message",
    [
        (np.zeros(100), r"expected a \(samples, channels\) array"),
        (np.zeros((100, 6)), "expected 8 channels, got 6"),
        (np.zeros((0, 8)), "holds no samples"),
        (np.array([["a"] * 8] * 100), "not numeric"),
        (np.where(np.eye(100, 8) > 0, np.nan, 0.0), "holds 8 NaN or infinite values"),
    ],
)
def test_check_emg_names_the_source(emg, message):
    with pytest.raises(EMGError, match=f"rec.npy: .*{message}"):
        check_emg(emg, channels=8, source="rec.npy")


def test_preprocess_rejects_too_short_emg():
    with pytest.raises(EMGError, match="x: 10 samples is too short"):
        preprocess_emg(np.zeros((10, 8)), source="x")


def test_text_normalisation_follows_the_gaddy_protocol():
    assert normalize_text("Café—it's 10 o'clock!") == "cafeits 10 oclock"
    assert normalize_text("  All I felt was\tthat it was something very strange. ") == "all i felt was that it was something very strange"
    # Dashes are punctuation and are deleted, as the reference evaluation does.
    assert normalize_text("subtlety--their mathematical") == "subtletytheir mathematical"
    assert normalize_text("03:09 AM") == "0309 am"


def test_ctc_labels_round_trip():
    assert NUM_CLASSES == 38 and LABELS[BLANK] == "" and len(set(LABELS)) == 38
    text = normalize_text("The 3 Martians, at 10 o'clock.")
    ids = text_to_ids(text)
    assert ids.dtype == np.int64 and (ids != BLANK).all() and ids_to_text(ids) == text
    with pytest.raises(ValueError, match="'T' is not in the charset"):
        text_to_ids("The")
