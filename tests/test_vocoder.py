"""Vocoder: original HiFi-GAN import, Griffin-Lim fallback, training, fine-tuning data, bad input; audio metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from conftest import prepared_synthetic_cache
from safetensors.torch import load_file

from silentspeech import cli
from silentspeech.atomic import atomic_save_npz
from silentspeech.data.cache import CACHE_VERSION
from silentspeech.features import AUDIO_RATE, HOP_LENGTH, acoustic_features, load_audio
from silentspeech.metrics import log_spectral_distance, mel_cepstral_distortion
from silentspeech.tasks import get_task, train_recipe
from silentspeech.torch_files import load_torch_file
from silentspeech.vocoder import compare as vocoder_compare
from silentspeech.vocoder import train as vocoder_train
from silentspeech.vocoder.compare import compare_resynthesis
from silentspeech.vocoder.generator import GeneratorConfig, NoisyHifiganGenerator, build_generator, save_generator
from silentspeech.vocoder.original import import_original_state_dict, load_original_hifigan
from silentspeech.vocoder.synthesis import load_vocoder
from silentspeech.vocoder.train import (
    VocoderRecipe,
    align_to_audio_frames,
    dc_offset_loss,
    load_vocoder_recipe,
    predicted_feature_pairs,
    step_generator_path,
    train_vocoder,
)

REPO = Path(__file__).resolve().parents[1]
TINY = GeneratorConfig(
    upsample_rates=[8, 8, 4],
    upsample_kernel_sizes=[16, 16, 8],
    upsample_initial_channel=16,
    resblock_kernel_sizes=[3, 5],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
)


def voiced_like(seconds: float, f0: float, rate: int = AUDIO_RATE, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with a syllable-rate envelope and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 15)) * (0.3 + 0.7 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.08 * tone + 0.002 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> Path:
    """A cache in the `silentspeech prepare` format: 4 voiced train utterances, one silent test one with a voiced twin."""
    root = tmp_path_factory.mktemp("vocoder_cache")
    (root / "utterances").mkdir()
    entries = []
    specs = [("train", 0.6, 110), ("train", 0.7, 150), ("train", 0.5, 200), ("train", 0.65, 130), ("test", 0.6, 170)]
    for index, (split, seconds, f0) in enumerate(specs):
        audio_path = root / f"{index}_audio_clean.flac"
        sf.write(audio_path, voiced_like(seconds, f0, 16000, seed=index), 16000)  # 16 kHz like the Gaddy files
        features = acoustic_features(load_audio(audio_path))
        entry_id = f"voiced_parallel_data/5-4/{index}"
        file = f"utterances/{index}.npz"
        atomic_save_npz(root / file, emg=np.zeros((8 * len(features), 8), np.float32), features=features)
        entries.append(
            {"id": entry_id, "split": split, "silent": False, "twin": None, "text": "a b", "n_frames": len(features),
             "has_phonemes": False, "audio_path": str(audio_path), "file": file}
        )
    silent = dict(entries[-1], id="silent_parallel_data/5-4_silent/4", silent=True, twin=entries[-1]["id"])
    entries.append(silent)
    (root / "manifest.json").write_text(json.dumps({"version": CACHE_VERSION, "utterances": entries}))
    return root


# --- original HiFi-GAN checkpoints --------------------------------------------


def original_layout_state(config: GeneratorConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the original repository's key names and shapes (weight-norm g/v pairs)."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, out_ch: int, in_ch: int, kernel: int, transposed: bool = False) -> None:
        v_shape = (in_ch, out_ch, kernel) if transposed else (out_ch, in_ch, kernel)
        state[f"{name}.weight_g"] = torch.rand(v_shape[0], 1, 1, generator=gen) + 0.5
        state[f"{name}.weight_v"] = torch.randn(v_shape, generator=gen)
        state[f"{name}.bias"] = torch.randn(out_ch, generator=gen) * 0.1

    channels = config.upsample_initial_channel
    conv("conv_pre", channels, config.n_mels, 7)
    for i, kernel in enumerate(config.upsample_kernel_sizes):
        conv(f"ups.{i}", channels // 2 ** (i + 1), channels // 2**i, kernel, transposed=True)
        for j, res_kernel in enumerate(config.resblock_kernel_sizes):
            block = i * len(config.resblock_kernel_sizes) + j
            for k in range(3):
                conv(f"resblocks.{block}.convs1.{k}", channels // 2 ** (i + 1), channels // 2 ** (i + 1), res_kernel)
                conv(f"resblocks.{block}.convs2.{k}", channels // 2 ** (i + 1), channels // 2 ** (i + 1), res_kernel)
    conv("conv_post", 1, channels // 2 ** len(config.upsample_rates), 7)
    return state


def test_original_v1_checkpoint_sets_every_generator_parameter(tmp_path):
    v1 = GeneratorConfig()
    state = original_layout_state(v1)
    assert len(state) == 234 and state["ups.0.weight_v"].shape == (512, 256, 16)
    path = tmp_path / "g_02500000"
    torch.save({"generator": state, "steps": 2500000}, path)
    config, generator, report = load_original_hifigan(path)
    assert config == v1
    assert report.missing == [] and report.unused == []
    own = generator.state_dict()
    assert len(report.loaded) == len(own) == 234
    suffix = {"original0": "weight_g", "original1": "weight_v", "bias": "bias"}
    for key, value in own.items():
        stem = key.split(".conv.")[0]
        assert torch.equal(value, state[f"{stem}.{suffix[key.rsplit('.', 1)[1]]}"]), key


def reference_forward(state: dict[str, torch.Tensor], mel: torch.Tensor, config: GeneratorConfig, pad_mode: str) -> torch.Tensor:
    """The HiFi-GAN generator written out with torch.nn.functional on original-layout weights."""

    def weight(name: str) -> torch.Tensor:
        v = state[f"{name}.weight_v"]
        return state[f"{name}.weight_g"] * v / v.flatten(1).norm(dim=1).view(-1, 1, 1)

    def conv(x: torch.Tensor, name: str, kernel: int, dilation: int = 1) -> torch.Tensor:
        pad = dilation * (kernel - 1) // 2
        x = F.pad(x, (pad, pad), mode=pad_mode) if pad_mode == "reflect" else F.pad(x, (pad, pad))
        return F.conv1d(x, weight(name), state[f"{name}.bias"], dilation=dilation)

    x = conv(mel, "conv_pre", 7)
    n_kernels = len(config.resblock_kernel_sizes)
    for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
        x = F.leaky_relu(x, 0.1)
        x = F.conv_transpose1d(x, weight(f"ups.{i}"), state[f"ups.{i}.bias"], stride=rate, padding=(kernel - rate) // 2)
        total = 0
        for j, (res_kernel, dilations) in enumerate(zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)):
            y = x
            for k, dilation in enumerate(dilations):
                t = conv(F.leaky_relu(y, 0.1), f"resblocks.{i * n_kernels + j}.convs1.{k}", res_kernel, dilation)
                y = y + conv(F.leaky_relu(t, 0.1), f"resblocks.{i * n_kernels + j}.convs2.{k}", res_kernel)
            total = total + y
        x = total / n_kernels
    return torch.tanh(conv(F.leaky_relu(x), "conv_post", 7))


def test_imported_generator_matches_a_direct_forward():
    state = {k: v * 0.3 for k, v in original_layout_state(TINY, seed=1).items()}
    generator = build_generator(TINY)
    report = import_original_state_dict(generator, {"generator": state})
    assert report.missing == []
    mel = torch.randn(1, 80, 40)
    with torch.no_grad():
        ours = generator(mel)
        reflect = reference_forward(state, mel, TINY, "reflect")
        zeros = reference_forward(state, mel, TINY, "zeros")
    assert ours.shape == (1, 1, 40 * HOP_LENGTH)
    torch.testing.assert_close(ours, reflect, rtol=1e-4, atol=1e-5)
    # speechbrain pads convolutions by reflection, the original with zeros: only the edges differ.
    middle = slice(12 * HOP_LENGTH, 28 * HOP_LENGTH)
    torch.testing.assert_close(ours[..., middle], zeros[..., middle], rtol=1e-4, atol=1e-5)


def test_import_of_plain_weights_reports_unused_and_names_shape_mismatch(caplog):
    state = original_layout_state(TINY, seed=2)
    generator = build_generator(TINY)
    plain = dict(state)
    v, g = plain.pop("conv_pre.weight_v"), plain.pop("conv_pre.weight_g")
    plain["conv_pre.weight"] = g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1)  # weight norm removed
    plain["mpd.discriminators.0.weight"] = torch.zeros(3)
    report = import_original_state_dict(generator, plain)
    assert report.missing == [] and report.unused == ["mpd.discriminators.0.weight"]
    torch.testing.assert_close(generator.conv_pre.conv.weight, plain["conv_pre.weight"])
    bad = dict(state, **{"ups.1.weight_v": torch.zeros(8, 4, 3)})
    with pytest.raises(ValueError, match=r"ups\.1\.weight_v has shape \(8, 4, 3\).*\(8, 4, 16\)"):
        import_original_state_dict(build_generator(TINY), bad)


def test_original_checkpoint_for_other_features_is_rejected(tmp_path):
    torch.save({"generator": original_layout_state(TINY)}, tmp_path / "g_1")
    (tmp_path / "config.json").write_text(json.dumps({"num_mels": 80, "sampling_rate": 16000, "hop_size": 256}))
    with pytest.raises(ValueError, match=r"sampling_rate 16000 \(ours 22050\)"):
        load_vocoder(tmp_path / "g_1")


# --- the Vocoder API -------------------------------------------------------------


def test_griffin_lim_fallback_is_labelled_and_reasonable(tiny_cache, tmp_path):
    vocoder = load_vocoder(None)
    assert vocoder.method == "griffin-lim"
    audio = load_audio(tiny_cache / "4_audio_clean.flac")  # 16 kHz source: nothing above 8 kHz, as in the corpus
    audio = audio[: len(audio) // HOP_LENGTH * HOP_LENGTH]
    synthesized = vocoder.synthesize(acoustic_features(audio))
    assert synthesized.dtype == np.float32 and synthesized.shape == audio.shape
    assert log_spectral_distance(audio, synthesized) < 10.0
    scores = compare_resynthesis(tiny_cache, None, split="test", out_dir=tmp_path)
    assert [s.method for s in scores] == ["griffin-lim"] and scores[0].utterances == 1  # the silent twin's audio, once
    written = json.loads((tmp_path / "resynthesis.json").read_text())
    assert written["scores"][0]["method"] == "griffin-lim"
    assert (tmp_path / "resynthesis.png").is_file()
    assert any(p.name.endswith(".griffin-lim.wav") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_second_rendition_row_scores_new_noise_and_needs_a_synthetic_corpus(tiny_cache, tmp_path_factory):
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=20)
    out = tmp_path_factory.mktemp("compare")
    scores = compare_resynthesis(cache, None, split="test", limit=1, out_dir=out, second_rendition=True)
    assert [s.method for s in scores] == ["griffin-lim", vocoder_compare.SECOND_RENDITION]
    rendition = scores[1]
    assert rendition.utterances == 1 and 0.5 < rendition.log_spectral_distance_db < 20.0
    assert any(p.name.endswith(".second rendition.wav") for p in out.iterdir())
    with pytest.raises(ValueError, match="not in a synthetic corpus"):
        compare_resynthesis(tiny_cache, None, split="test", second_rendition=True)


def test_synthesize_batches_and_rejects_bad_features(tmp_path):
    save_generator(tmp_path / "generator.safetensors", build_generator(TINY), TINY, step=0)
    vocoder = load_vocoder(tmp_path)
    assert vocoder.method == "hifigan"
    frames = np.random.default_rng(0).standard_normal((2, 10, 80)).astype(np.float32)
    batch = vocoder.synthesize(torch.from_numpy(frames))
    assert batch.shape == (2, 10 * HOP_LENGTH) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[1], vocoder.synthesize(frames[1]), atol=1e-5)
    ragged = vocoder.synthesize_many([frames[0], frames[1, :7]])
    assert [len(a) for a in ragged] == [10 * HOP_LENGTH, 7 * HOP_LENGTH]
    with pytest.raises(ValueError, match=r"expects \(frames, 80\)"):
        vocoder.synthesize(frames[0, :, :26])
    with pytest.raises(ValueError, match="NaN"):
        vocoder.synthesize(np.full((4, 80), np.nan, np.float32))
    with pytest.raises(ValueError, match="takes 80 MFCC per frame, but the features have 26"):
        load_vocoder(tmp_path, n_mfcc=26)


def test_checkpoint_for_other_features_names_both(tmp_path):
    other = GeneratorConfig(**{**TINY.__dict__, "n_mels": 64})
    save_generator(tmp_path / "g.safetensors", build_generator(other), other, step=0)
    with pytest.raises(ValueError, match=r"64 mel bins at 22050 Hz.*80 mel bins at 22050 Hz"):
        load_vocoder(tmp_path / "g.safetensors")
    with pytest.raises(FileNotFoundError):
        load_vocoder(tmp_path / "missing")


# --- training ----------------------------------------------------------------


def tiny_recipe(cache: Path, out: Path, *extra: str):
    return load_vocoder_recipe(
        REPO / "vocoder" / "small.yaml",
        [f"cache={cache}", f"out_dir={out}", "generator.upsample_initial_channel=16", "generator.resblock_kernel_sizes=[3]",
         "generator.resblock_dilation_sizes=[[1,3]]", "segment_samples=2048", "batch_size=2", "max_minutes=0",
         "checkpoint_every=1", *extra],
    )


def test_small_vocoder_trains_checkpoints_and_resumes(tiny_cache, tmp_path):
    out = tmp_path / "run"
    train_vocoder(tiny_recipe(tiny_cache, out, "max_steps=2"))
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "generator.safetensors", "history.json", "last.ckpt", "losses.png"]
    state = load_torch_file(out / "last.ckpt")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (2, 1, 0)  # 4 utterances, batches of 2
    assert "discriminator" not in state  # untrained: not written
    vocoder = load_vocoder(out)
    assert vocoder.method == "hifigan" and vocoder.config.upsample_initial_channel == 16
    assert np.isfinite(vocoder.synthesize(np.zeros((5, 80), np.float32))).all()
    with pytest.raises(ValueError, match="already holds a training run"):
        train_vocoder(tiny_recipe(tiny_cache, out, "max_steps=3"))
    train_vocoder(tiny_recipe(tiny_cache, out, "max_steps=3"), resume=True)
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == [1, 2, 3]
    assert all(math.isfinite(v) for row in history for v in row.values())
    assert load_torch_file(out / "last.ckpt")["step"] == 3
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_generators_of_chosen_steps_are_kept_for_a_curve_over_steps(tiny_cache, tmp_path):
    out = tmp_path / "run"
    train_vocoder(tiny_recipe(tiny_cache, out, "max_steps=3", "checkpoint_every=100", "save_generator_at=[1,3]"))
    assert sorted(p.name for p in out.glob("generator_step*")) == ["generator_step1.safetensors", "generator_step3.safetensors"]
    first, last, final = (load_file(str(path)) for path in (step_generator_path(out, 1), step_generator_path(out, 3), out / "generator.safetensors"))
    assert all(torch.equal(last[key], final[key]) for key in final)  # step 3 is the run's end
    assert any(not torch.equal(first[key], final[key]) for key in final)  # step 1 is not: two more updates came after it
    assert load_vocoder(step_generator_path(out, 1)).method == "hifigan"
    with pytest.raises(ValueError, match="past max_steps=3"):
        tiny_recipe(tiny_cache, tmp_path / "late", "max_steps=3", "save_generator_at=[2,4]")
    with pytest.raises(ValueError, match="at least 1"):
        tiny_recipe(tiny_cache, tmp_path / "zero", "max_steps=3", "save_generator_at=[0]")


TINY_GENERATOR = [
    "generator.upsample_initial_channel=16", "generator.resblock_kernel_sizes=[3]", "generator.resblock_dilation_sizes=[[1,3]]",
    "segment_samples=2048", "batch_size=2", "max_minutes=0", "checkpoint_every=1",
]


def test_vocoder_is_a_registered_task_trained_by_train_recipe(tiny_cache, tmp_path):
    task = get_task("vocoder")
    assert task.schema is VocoderRecipe and task.train is train_vocoder
    out = tmp_path / "run"
    run = train_recipe(REPO / "vocoder" / "small.yaml", [f"cache={tiny_cache}", f"out_dir={out}", "max_steps=1", *TINY_GENERATOR])
    assert run == out and (out / "generator.safetensors").is_file()
    generator = task.build_model(load_vocoder_recipe(out / "config.yaml"))
    assert generator.state_dict().keys() == load_file(str(out / "generator.safetensors")).keys()
    with pytest.raises(ValueError, match="multiple of 256"):  # checked however the recipe was loaded
        train_recipe(REPO / "vocoder" / "small.yaml", [f"cache={tiny_cache}", f"out_dir={tmp_path / 'bad'}", "segment_samples=1000"])


def test_vocoder_train_command_goes_through_the_task_registry(tiny_cache, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["vocoder", "train", str(REPO / "vocoder" / "small.yaml"), f"cache={tiny_cache}", f"out_dir={out}", "max_steps=1", *TINY_GENERATOR]
    assert cli.main(argv) == 0
    assert f"vocoder written to {out / 'generator.safetensors'}" in capsys.readouterr().out
    assert cli.main([*argv[:-len(TINY_GENERATOR) - 1], "max_steps=2", *TINY_GENERATOR, "--resume"]) == 0
    assert [row["step"] for row in json.loads((out / "history.json").read_text())] == [1, 2]  # resumed after step 1
    assert cli.main(["vocoder", "train", str(REPO / "recipes" / "synthetic" / "recognition.yaml")]) == 2
    assert "is a recognition recipe, not a vocoder one" in capsys.readouterr().err


@pytest.mark.slow
def test_noise_injected_vocoder_trains_and_resumes_exactly(tiny_cache, tmp_path):
    noisy = ("generator.noise_injection=true", "generator.noise_scale_init=0.05")
    train_vocoder(tiny_recipe(tiny_cache, tmp_path / "straight", "max_steps=3", *noisy))
    train_vocoder(tiny_recipe(tiny_cache, tmp_path / "resumed", "max_steps=2", *noisy))
    train_vocoder(tiny_recipe(tiny_cache, tmp_path / "resumed", "max_steps=3", *noisy), resume=True)
    straight, resumed = (load_file(str(tmp_path / run / "generator.safetensors")) for run in ("straight", "resumed"))
    assert straight.keys() == resumed.keys() and {"noise_scales.0", "noise_scales.1", "noise_scales.2"} <= straight.keys()
    for key in straight:  # the noise of each step is a function of (seed, step): a resumed run draws the same
        torch.testing.assert_close(resumed[key], straight[key], atol=1e-6, rtol=1e-5)
    assert not torch.all(straight["noise_scales.2"] == 0.05)  # the scales are trained
    vocoder = load_vocoder(tmp_path / "straight")
    assert vocoder.config.noise_injection and isinstance(vocoder.generator, NoisyHifiganGenerator)


@pytest.mark.slow
def test_adversarial_step_trains_and_saves_the_discriminators(tiny_cache, tmp_path):
    out = tmp_path / "run"
    train_vocoder(tiny_recipe(tiny_cache, out, "max_steps=1", "discriminator_start_step=0"))
    (row,) = json.loads((out / "history.json").read_text())
    assert set(row) == {"step", "D", "G", "mel", "stft", "dc"} and all(math.isfinite(v) for v in row.values())
    state = load_torch_file(out / "last.ckpt")
    assert {"discriminator", "optimizer_d"} <= set(state)


def test_training_sets_cpu_threads_and_restores_them(tiny_cache, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(vocoder_train, "_train_vocoder", lambda recipe, resume: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1  # differs from the current count, so the test sees the change
    train_vocoder(tiny_recipe(tiny_cache, tmp_path / "run", "max_steps=1", f"cpu_threads={wanted}", "device=cpu"))
    assert seen == [wanted] and torch.get_num_threads() == before


def test_dc_offset_loss_sees_an_offset_the_mel_loss_misses():
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.normal(0, 0.05, (2, 1, 4096)).astype(np.float32))
    assert dc_offset_loss(real, real).item() == 0.0
    assert dc_offset_loss(real + 0.01, real).item() == pytest.approx(0.01, rel=1e-4)
    # a sine of about 1 kHz (46 whole periods in 1024 samples) has no slow part: its moving mean is zero
    sine = 0.05 * torch.sin(2 * math.pi * 46 * torch.arange(4096) / 1024).reshape(1, 1, -1).expand(2, 1, -1)
    assert dc_offset_loss(real + sine, real).item() < 1e-6


def test_recipe_errors_are_clear(tiny_cache, tmp_path):
    with pytest.raises(ValueError, match="multiply to 128, not the hop length 256"):
        tiny_recipe(tiny_cache, tmp_path, "generator.upsample_rates=[8,4,4]")
    with pytest.raises(ValueError, match="multiple of 256 and at least 2048"):
        tiny_recipe(tiny_cache, tmp_path, "segment_samples=1000")
    with pytest.raises(ValueError, match="no usable voiced utterances in split 'dev'"):
        train_vocoder(tiny_recipe(tiny_cache, tmp_path / "dev", "split=dev", "max_steps=1"))


# --- fine-tuning on a production model's predictions ------------------------------


class StandInProductionModel(torch.nn.Module):
    """Predicts all-ones frames, `stretch` times as many as the EMG has frames."""

    def __init__(self, features: int = 80, stretch: float = 1.0):
        super().__init__()
        self.features, self.stretch = features, stretch

    def forward(self, emg: torch.Tensor, emg_lengths=None) -> dict:
        frames = int(emg.shape[-1] // 8 * self.stretch)
        return {"acoustic": torch.ones(emg.shape[0], frames, self.features)}


def test_finetune_pairs_use_predictions_aligned_to_the_true_audio(tiny_cache, monkeypatch):
    monkeypatch.setattr(vocoder_train, "load_checkpoint", lambda run, task: (StandInProductionModel(stretch=1.3), None))
    pairs = predicted_feature_pairs(tiny_cache, "runs/production", "train", n_mfcc=80)
    assert len(pairs) == 4
    for pair in pairs:
        assert pair.log_mel.shape[0] * HOP_LENGTH == pair.audio.shape[0]  # DTW put predictions on the audio's frames
        np.testing.assert_allclose(pair.log_mel, np.broadcast_to(pair.log_mel[:1], pair.log_mel.shape), atol=1e-5)
    monkeypatch.setattr(vocoder_train, "load_checkpoint", lambda run, task: (StandInProductionModel(26), None))
    with pytest.raises(ValueError, match="predicts 26 features per frame, the vocoder takes 80"):
        predicted_feature_pairs(tiny_cache, "runs/production", "train", n_mfcc=80)


def test_dtw_alignment_recovers_a_time_stretch():
    target = np.cumsum(np.random.default_rng(0).standard_normal((50, 4)), axis=0).astype(np.float32)
    assert align_to_audio_frames(target, target) is target
    stretched = np.repeat(target, 2, axis=0)  # the same content, spoken half as fast
    np.testing.assert_allclose(align_to_audio_frames(stretched, target), target, atol=1e-6)


# --- audio metrics -----------------------------------------------------------------


def test_log_spectral_distance_pinned():
    audio = voiced_like(0.5, 120)
    assert log_spectral_distance(audio, audio) == 0.0
    assert log_spectral_distance(audio, 0.5 * audio) == pytest.approx(20 * math.log10(2), abs=0.01)
    with pytest.raises(ValueError, match="equal lengths"):
        log_spectral_distance(audio, audio[:-1])
    with pytest.raises(ValueError, match="NaN"):
        log_spectral_distance(audio, np.full_like(audio, np.nan))


def test_mel_cepstral_distortion_pinned():
    cepstra = np.random.default_rng(0).standard_normal((30, 80))
    assert mel_cepstral_distortion(cepstra, cepstra) == 0.0
    shifted = cepstra.copy()
    shifted[:, 1] += 0.5
    shifted[:, 0] += 9.0  # c0 (energy) is not compared
    assert mel_cepstral_distortion(cepstra, shifted) == pytest.approx(10 / math.log(10) * math.sqrt(2 * 0.25))
    assert mel_cepstral_distortion(cepstra, np.repeat(cepstra, 2, axis=0)) == pytest.approx(0.0)  # DTW
    with pytest.raises(ValueError, match="differ in width"):
        mel_cepstral_distortion(cepstra, cepstra[:, :26])
