"""Fast vocoder synthesis: the OpenVINO and ONNX Runtime generators give the plain torch generator's audio, and fall back to it."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open

from silentspeech.features import HOP_LENGTH
from silentspeech.vocoder import synthesis as vocoder_synthesis
from silentspeech.vocoder.generator import GeneratorConfig, NoisyHifiganGenerator, build_generator, min_generator_frames, save_generator
from silentspeech.vocoder.synthesis import BF16_TOLERANCE, EXPORT_TOLERANCE, Vocoder, load_vocoder

TINY = GeneratorConfig(
    upsample_rates=[8, 8, 4],
    upsample_kernel_sizes=[16, 16, 8],
    upsample_initial_channel=16,
    resblock_type="2",
    resblock_kernel_sizes=[3, 7],
    resblock_dilation_sizes=[[1, 2], [3, 12]],
)


#: TINY with noise injection; a large initial scale so that the noise visibly shapes the audio.
NOISY = dataclasses.replace(TINY, noise_injection=True, noise_scale_init=0.5)


def tiny_generator(seed: int = 0, config: GeneratorConfig = TINY) -> torch.nn.Module:
    """A tiny generator whose weight-norm gains differ from the direction norms (as after training)."""
    torch.manual_seed(seed)
    generator = build_generator(config)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("original0"):  # the weight-norm gain g
                parameter.mul_(torch.empty_like(parameter).uniform_(0.5, 2.0))
    return generator


def features(frames: int, batch: int | None = None, seed: int = 1) -> np.ndarray:
    shape = (frames, 80) if batch is None else (batch, frames, 80)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def same_audio(fast: Vocoder, a: np.ndarray, b: np.ndarray) -> bool:
    """Within EXPORT_TOLERANCE in float32; within BF16_TOLERANCE relative RMS in bfloat16 (OpenVINO on an AMX CPU)."""
    if fast.precision == "bf16":
        return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2))) <= BF16_TOLERANCE
    return float(np.abs(a - b).max()) <= EXPORT_TOLERANCE


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_fast_synthesis_gives_the_plain_audio(backend):
    plain = Vocoder(TINY, tiny_generator(), "tiny", backend="torch")
    fast = Vocoder(TINY, tiny_generator(), "tiny", backend=backend)
    assert (plain.backend, fast.backend) == ("torch", backend)
    assert plain.method == fast.method == "hifigan" and fast.precision in ("f32", "bf16")
    for frames in (min_generator_frames(TINY), 23, 200):  # lengths other than the export's 16
        single, batch = features(frames), features(frames, batch=3)
        assert same_audio(fast, fast.synthesize(single), plain.synthesize(single))
        fast_batch = fast.synthesize(batch)
        assert fast_batch.shape == (3, frames * HOP_LENGTH) and fast_batch.dtype == np.float32
        assert same_audio(fast, fast_batch, plain.synthesize(batch))
    ragged = [features(30), features(9, seed=2)]
    for a, b in zip(fast.synthesize_many(ragged), plain.synthesize_many(ragged)):
        assert a.shape == b.shape and same_audio(fast, a, b)


def test_auto_takes_openvino_then_onnxruntime(monkeypatch):
    assert Vocoder(TINY, tiny_generator(), "tiny").backend == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)  # import raises ImportError
    assert Vocoder(TINY, tiny_generator(), "tiny").backend == "onnxruntime"


def test_removing_weight_norm_keeps_the_audio():
    generator = tiny_generator()
    log_mel = torch.randn(2, 80, 12)
    with torch.no_grad():
        expected = generator(log_mel)
    vocoder = Vocoder(TINY, generator, "tiny", backend="torch")
    assert not any("parametrizations" in name for name, _ in vocoder.generator.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(vocoder.generator(log_mel), expected, atol=1e-5, rtol=1e-4)


def _export_fails(*args, **kwargs):
    raise RuntimeError("export not supported here")


@pytest.mark.parametrize("break_it", ["export", "onnxruntime", "tolerance"])
def test_falls_back_to_torch_when_the_fast_path_is_unavailable(monkeypatch, break_it):
    if break_it == "export":
        monkeypatch.setattr(vocoder_synthesis, "export_generator_onnx", _export_fails)
    elif break_it == "onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
        monkeypatch.setitem(sys.modules, "openvino", None)
    else:
        monkeypatch.setattr(vocoder_synthesis, "EXPORT_TOLERANCE", -1.0)  # every check fails
        monkeypatch.setattr(vocoder_synthesis, "BF16_TOLERANCE", -1.0)
    with pytest.warns(RuntimeWarning, match="running plain torch"):
        fallback = Vocoder(TINY, tiny_generator(), "tiny")
    assert fallback.backend == "torch" and fallback.method == "hifigan"
    plain = Vocoder(TINY, tiny_generator(), "tiny", backend="torch")
    np.testing.assert_array_equal(fallback.synthesize(features(20)), plain.synthesize(features(20)))
    with pytest.raises((RuntimeError, ImportError)):
        Vocoder(TINY, tiny_generator(), "tiny", backend="onnxruntime")


def test_load_vocoder_backends_and_griffin_lim(tmp_path):
    save_generator(tmp_path / "generator.safetensors", tiny_generator(), TINY, step=0)
    assert load_vocoder(tmp_path).backend == "openvino"
    assert load_vocoder(tmp_path, backend="torch").backend == "torch"
    assert load_vocoder(None).backend is None
    with pytest.raises(ValueError, match="backend must be auto, openvino or onnxruntime or torch"):
        load_vocoder(tmp_path, backend="tensorrt")


def test_too_few_frames_is_a_clear_error():
    fewest = min_generator_frames(TINY)
    assert fewest == 5  # kernel 7, dilation 12 at 8 samples per frame: 36 samples of reflection padding
    for backend in ("torch", "onnxruntime", "openvino"):
        vocoder = Vocoder(TINY, tiny_generator(), "tiny", backend=backend)
        assert vocoder.synthesize(features(fewest)).shape == (fewest * HOP_LENGTH,)
        with pytest.raises(ValueError, match=f"features hold {fewest - 1} frames; vocoder tiny needs at least {fewest}"):
            vocoder.synthesize(features(fewest - 1))


# --- noise injection -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_noisy_generator_is_deterministic_and_its_fast_path_gives_the_plain_audio(backend):
    plain = Vocoder(NOISY, tiny_generator(config=NOISY), "noisy", backend="torch")
    fast = Vocoder(NOISY, tiny_generator(config=NOISY), "noisy", backend=backend)
    assert isinstance(plain.generator, NoisyHifiganGenerator) and fast.backend == backend
    for frames in (min_generator_frames(NOISY), 23, 200):
        single, batch = features(frames), features(frames, batch=3)
        first = plain.synthesize(single)
        np.testing.assert_array_equal(plain.synthesize(single), first)  # the same noise on every call
        np.testing.assert_array_equal(fast.synthesize(single), fast.synthesize(single))
        assert same_audio(fast, fast.synthesize(single), first)
        assert same_audio(fast, fast.synthesize(batch), plain.synthesize(batch))
    # the noise reaches the audio: without it (scales zero) the output differs
    silent = tiny_generator(config=NOISY)
    with torch.no_grad():
        for scale in silent.noise_scales:
            scale.zero_()
    quiet = Vocoder(NOISY, silent, "noisy, scales 0", backend="torch")
    assert np.abs(quiet.synthesize(features(23)) - plain.synthesize(features(23))).max() > 1e-3


def test_noise_breaks_the_hop_periodicity_of_steady_frames():
    """For a steady input the plain generator repeats every hop (the comb at 86 Hz); with noise it does not."""
    steady = np.repeat(features(1), 40, axis=0)
    for config, periodic in ((TINY, True), (NOISY, False)):
        audio = Vocoder(config, tiny_generator(config=config), "tiny", backend="torch").synthesize(steady)
        middle = audio[10 * HOP_LENGTH : 30 * HOP_LENGTH]  # away from the reflection-padded edges
        repeat = np.abs(middle[HOP_LENGTH:] - middle[:-HOP_LENGTH]).max() / np.abs(middle).max()
        assert (repeat < 1e-4) == periodic, (config.noise_injection, repeat)


def test_noise_injection_round_trips_through_the_checkpoint(tmp_path):
    generator = tiny_generator(config=NOISY)
    with torch.no_grad():
        generator.noise_scales[1].mul_(3.0)  # as after training: the scales are weights
    save_generator(tmp_path / "generator.safetensors", generator, NOISY, step=7)
    with safe_open(str(tmp_path / "generator.safetensors"), framework="pt") as handle:
        stored = json.loads(handle.metadata()["generator_config"])
        assert stored["noise_injection"] is True and stored["noise_scale_init"] == 0.5
        np.testing.assert_array_equal(handle.get_tensor("noise_scales.1").numpy(), generator.noise_scales[1].detach().numpy())
    loaded = load_vocoder(tmp_path, backend="torch")
    assert loaded.config == NOISY and isinstance(loaded.generator, NoisyHifiganGenerator)
    reference = Vocoder(NOISY, generator, "in memory", backend="torch")
    np.testing.assert_allclose(loaded.synthesize(features(30)), reference.synthesize(features(30)), atol=1e-6)
    # a checkpoint without the option (older runs, V1) still builds speechbrain's plain generator
    save_generator(tmp_path / "plain.safetensors", tiny_generator(), TINY, step=0)
    assert type(load_vocoder(tmp_path / "plain.safetensors", backend="torch").generator).__name__ == "HifiganGenerator"
