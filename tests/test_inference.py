"""Fast inference (silentspeech.inference.onnx): the ONNX Runtime graph equals torch, and falls back to it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from silentspeech.inference import onnx as inference
from silentspeech.inference.onnx import TOLERANCE, OnnxSpeechModel, load_fast_recognizer
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig


def small_speech_model(outputs: list[str]) -> SpeechModel:
    torch.manual_seed(0)
    encoder = TinyMyoConfig(dim=24, depth=2, heads=2, mlp_dim=48, position="rope")
    return SpeechModel(SpeechModelConfig(width=16, encoder=encoder, outputs=outputs)).eval()


@pytest.fixture(scope="module")
def production_model() -> SpeechModel:
    return small_speech_model(["acoustic", "phoneme"])


@pytest.fixture(scope="module")
def fast_production(production_model) -> OnnxSpeechModel:
    return OnnxSpeechModel(production_model)


@pytest.mark.parametrize("samples", [689, 1003, 2048])
def test_graph_outputs_equal_torch_for_any_length(production_model, fast_production, samples):
    assert fast_production.backend == "onnxruntime"
    emg = torch.randn(1, 8, samples)
    with torch.inference_mode():
        expected = production_model(emg)
    got = fast_production(emg)
    assert set(got) == {"acoustic", "phoneme_logits"}
    for key, value in got.items():
        assert value.shape == expected[key].shape
        assert float((value - expected[key]).abs().max()) <= TOLERANCE


def test_graph_batches_with_lengths_like_torch(production_model, fast_production):
    emg = torch.randn(3, 8, 1500)
    lengths = torch.tensor([1500, 1001, 700])
    emg[1, :, 1001:] = 0
    emg[2, :, 700:] = 0
    with torch.inference_mode():
        expected = production_model(emg, lengths)["acoustic"]
    got = fast_production(emg, lengths)["acoustic"]
    for item, frames in enumerate(SpeechModel.frame_lengths(lengths).tolist()):
        assert float((got[item, :frames] - expected[item, :frames]).abs().max()) <= TOLERANCE


def test_unpadded_batches_run_the_graph_without_mask_and_padded_ones_get_theirs_at_first_use(production_model):
    fast = OnnxSpeechModel(production_model)
    fast(torch.randn(2, 8, 1003))  # equal lengths: no padding frames
    fast(torch.randn(1, 8, 1003), torch.tensor([1001]))  # padding within the last frame only
    assert list(fast._sessions) == [False]
    emg = torch.randn(2, 8, 1003)
    lengths = torch.tensor([1003, 600])
    emg[1, :, 600:] = 0
    got = fast(emg, lengths)["acoustic"]
    assert fast._sessions[True] is not None and fast.backend == "onnxruntime"
    with torch.inference_mode():
        expected = production_model(emg, lengths)["acoustic"]
    assert float((got[0] - expected[0]).abs().max()) <= TOLERANCE
    assert float((got[1, :75] - expected[1, :75]).abs().max()) <= TOLERANCE


def test_bad_input_is_named(fast_production):
    with pytest.raises(ValueError, match="8 channels"):
        fast_production(torch.randn(1, 6, 100))
    with pytest.raises(ValueError, match="sample counts"):
        fast_production(torch.randn(2, 8, 100), torch.tensor([100, 0]))


def test_failed_export_falls_back_to_torch_with_a_warning(monkeypatch):
    model = small_speech_model(["ctc"])

    def broken(_model, padded_frames=True):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(inference, "export_onnx", broken)
    with pytest.warns(RuntimeWarning, match="no exporter here"):
        fast = OnnxSpeechModel(model)
    assert fast.backend == "torch"
    emg = torch.randn(1, 8, 700)
    with torch.inference_mode():
        assert torch.equal(fast(emg)["ctc_logits"], model(emg)["ctc_logits"])
    with pytest.raises(RuntimeError, match="no exporter here"):
        OnnxSpeechModel(model, backend="onnxruntime")


def test_a_graph_that_differs_is_refused(monkeypatch):
    model = small_speech_model(["ctc"])
    monkeypatch.setattr(inference, "TOLERANCE", -1.0)  # nothing is close enough
    with pytest.warns(RuntimeWarning, match="differ from torch"):
        assert OnnxSpeechModel(model).backend == "torch"


def test_backend_torch_and_unknown_backend():
    model = small_speech_model(["ctc"])
    assert load_fast_recognizer(model, backend="torch").backend == "torch"
    with pytest.raises(ValueError, match="backend must be"):
        OnnxSpeechModel(model, backend="tensorrt")


def test_pipeline_fast_and_plain_give_the_same_text_and_features():
    rng = np.random.default_rng(1)
    emg = rng.normal(0, 20, (1000, 8))
    recognizer, producer = small_speech_model(["ctc"]), small_speech_model(["acoustic"])
    results = [
        SilentSpeechPipeline(recognizer=recognizer, producer=producer, vocoder="griffin-lim", beam=4, device="cpu", fast=fast).run(emg, rate=1000.0)
        for fast in (False, True)
    ]
    plain, fast = results
    assert (fast.greedy_text, fast.beam_text) == (plain.greedy_text, plain.beam_text)
    assert np.abs(fast.features - plain.features).max() <= TOLERANCE


def test_onnx_runtime_threads_follow_torch_or_the_argument():
    model = small_speech_model(["ctc"])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert OnnxSpeechModel(model)._sessions[False].get_session_options().intra_op_num_threads == 2
        assert OnnxSpeechModel(model, threads=1)._sessions[False].get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
