"""Fast vocoder synthesis: the ONNX Runtime generator gives the plain torch generator's audio, and falls back to it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from silentspeech import vocoder as vocoder_module
from silentspeech.audio import HOP_LENGTH
from silentspeech.vocoder import EXPORT_TOLERANCE, GeneratorConfig, Vocoder, build_generator, load_vocoder, min_generator_frames, save_generator

TINY = GeneratorConfig(
    upsample_rates=[8, 8, 4],
    upsample_kernel_sizes=[16, 16, 8],
    upsample_initial_channel=16,
    resblock_type="2",
    resblock_kernel_sizes=[3, 7],
    resblock_dilation_sizes=[[1, 2], [3, 12]],
)


def tiny_generator(seed: int = 0) -> torch.nn.Module:
    """A tiny generator whose weight-norm gains differ from the direction norms (as after training)."""
    torch.manual_seed(seed)
    generator = build_generator(TINY)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("original0"):  # the weight-norm gain g
                parameter.mul_(torch.empty_like(parameter).uniform_(0.5, 2.0))
    return generator


def features(frames: int, batch: int | None = None, seed: int = 1) -> np.ndarray:
    shape = (frames, 80) if batch is None else (batch, frames, 80)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_fast_synthesis_gives_the_plain_audio():
    plain = Vocoder(TINY, tiny_generator(), "tiny", backend="torch")
    fast = Vocoder(TINY, tiny_generator(), "tiny")
    assert (plain.backend, fast.backend) == ("torch", "onnxruntime")
    assert plain.method == fast.method == "hifigan"
    for frames in (min_generator_frames(TINY), 23, 200):  # lengths other than the export's 16
        single, batch = features(frames), features(frames, batch=3)
        assert np.abs(fast.synthesize(single) - plain.synthesize(single)).max() <= EXPORT_TOLERANCE
        fast_batch = fast.synthesize(batch)
        assert fast_batch.shape == (3, frames * HOP_LENGTH) and fast_batch.dtype == np.float32
        assert np.abs(fast_batch - plain.synthesize(batch)).max() <= EXPORT_TOLERANCE
    ragged = [features(30), features(9, seed=2)]
    for a, b in zip(fast.synthesize_many(ragged), plain.synthesize_many(ragged)):
        assert a.shape == b.shape and np.abs(a - b).max() <= EXPORT_TOLERANCE


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
        monkeypatch.setattr(vocoder_module, "export_generator_onnx", _export_fails)
    elif break_it == "onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    else:
        monkeypatch.setattr(vocoder_module, "EXPORT_TOLERANCE", -1.0)  # every check fails
    with pytest.warns(RuntimeWarning, match="running plain torch"):
        fallback = Vocoder(TINY, tiny_generator(), "tiny")
    assert fallback.backend == "torch" and fallback.method == "hifigan"
    plain = Vocoder(TINY, tiny_generator(), "tiny", backend="torch")
    np.testing.assert_array_equal(fallback.synthesize(features(20)), plain.synthesize(features(20)))
    with pytest.raises((RuntimeError, ImportError)):
        Vocoder(TINY, tiny_generator(), "tiny", backend="onnxruntime")


def test_load_vocoder_backends_and_griffin_lim(tmp_path):
    save_generator(tmp_path / "generator.safetensors", tiny_generator(), TINY, step=0)
    assert load_vocoder(tmp_path).backend == "onnxruntime"
    assert load_vocoder(tmp_path, backend="torch").backend == "torch"
    assert load_vocoder(None).backend is None
    with pytest.raises(ValueError, match="backend must be auto, onnxruntime or torch"):
        load_vocoder(tmp_path, backend="tensorrt")


def test_too_few_frames_is_a_clear_error():
    fewest = min_generator_frames(TINY)
    assert fewest == 5  # kernel 7, dilation 12 at 8 samples per frame: 36 samples of reflection padding
    for backend in ("torch", "onnxruntime"):
        vocoder = Vocoder(TINY, tiny_generator(), "tiny", backend=backend)
        assert vocoder.synthesize(features(fewest)).shape == (fewest * HOP_LENGTH,)
        with pytest.raises(ValueError, match=f"features hold {fewest - 1} frames; vocoder tiny needs at least {fewest}"):
            vocoder.synthesize(features(fewest - 1))
