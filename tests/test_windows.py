"""Windowed inference of long recordings (silentspeech.inference.windows): short inputs unchanged, long ones bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from silentspeech.features import FRAME_RATE, HOP_LENGTH
from silentspeech.inference.onnx import OnnxSpeechModel
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.windows import WINDOW_S, window_spans, windowed_outputs, windowed_synthesis
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.preprocessing import EMG_PER_FRAME, EMG_RATE


def tiny_speech_model(outputs: list[str]) -> SpeechModel:
    torch.manual_seed(0)
    encoder = TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32, dropout=0.0, drop_path=0.0, position="rope")
    return SpeechModel(SpeechModelConfig(width=16, encoder=encoder, outputs=outputs)).eval()


@pytest.mark.parametrize("frames, window, overlap", [(10, 10, 2), (11, 10, 2), (100, 10, 4), (1000, 37, 9), (64, 16, 0)])
def test_kept_spans_tile_the_recording_with_context_on_both_sides(frames, window, overlap):
    spans = window_spans(frames, window, overlap)
    assert spans[0][2] == 0 and spans[-1][3] == frames
    for (start, end, keep_from, keep_to), following in zip(spans, spans[1:] + [None]):
        assert 0 <= start <= keep_from < keep_to <= end <= frames and end - start == min(window, frames)
        if following is not None:
            assert following[2] == keep_to  # no gap, no frame twice
            # Every kept frame but the recording's own first and last has half the overlap of context each side.
            assert keep_to - following[0] >= overlap // 2 and end - keep_to >= overlap // 2


def test_overlap_must_be_shorter_than_the_window():
    with pytest.raises(ValueError, match="shorter than the window"):
        window_spans(100, 10, 10)


def test_an_input_shorter_than_a_window_gives_the_unwindowed_outputs():
    model = tiny_speech_model(["acoustic"])
    emg = torch.randn(1, 8, 5 * round(EMG_RATE) + 3)
    with torch.inference_mode():
        assert torch.equal(windowed_outputs(model, emg, "acoustic"), model(emg)["acoustic"])
        assert torch.equal(windowed_outputs(model, emg, "acoustic", window_s=5.1, overlap_s=1.0), model(emg)["acoustic"])
    pipeline = SilentSpeechPipeline(producer=model, vocoder="griffin-lim", beam=0, device="cpu", fast=False)
    features = pipeline.run_preprocessed(emg[0].T.numpy()).features
    with torch.inference_mode():
        assert np.array_equal(features, model(emg)["acoustic"][0].numpy())


def test_a_long_input_runs_in_bounded_windows_with_the_right_frames():
    model = tiny_speech_model(["acoustic"])
    seen = []

    def spy(emg):
        seen.append(emg.shape[2])
        return model(emg)

    emg = torch.randn(1, 8, 7 * round(EMG_RATE) + 5)
    frames = -(-emg.shape[2] // EMG_PER_FRAME)
    with torch.inference_mode():
        whole = model(emg)["acoustic"]
        windowed = windowed_outputs(spy, emg, "acoustic", window_s=2.0, overlap_s=0.5)
    assert windowed.shape == whole.shape == (1, frames, 80) and torch.isfinite(windowed).all()
    window, overlap = round(2.0 * FRAME_RATE), round(0.5 * FRAME_RATE)
    assert len(seen) == -(-(frames - overlap) // (window - overlap)) == 5 and max(seen) <= window * EMG_PER_FRAME
    # Only attention beyond a window's reach differs: the outputs stay close to the whole recording's.
    assert float((windowed - whole).abs().mean()) < 0.2 * float(whole.abs().mean())


def test_the_fast_path_runs_windows_through_onnx_runtime():
    model = tiny_speech_model(["ctc"])
    fast = OnnxSpeechModel(model)
    assert fast.backend == "onnxruntime"
    emg = torch.randn(1, 8, 5 * round(EMG_RATE) + 3)
    with torch.inference_mode():
        expected = windowed_outputs(model, emg, "ctc_logits", window_s=2.0, overlap_s=0.5)
    got = windowed_outputs(fast, emg, "ctc_logits", window_s=2.0, overlap_s=0.5)
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-4


def test_the_pipeline_windows_a_recording_longer_than_a_window():
    pipeline = SilentSpeechPipeline(recognizer=tiny_speech_model(["ctc"]), beam=0, device="cpu")
    seconds = WINDOW_S * 2.2
    result = pipeline.run(np.random.default_rng(0).normal(0, 20, (int(seconds * 1000), 8)), rate=1000.0)
    assert isinstance(result.greedy_text, str) and result.emg.shape[0] == round(seconds * EMG_RATE)


def frame_local_vocoder(calls: list[int]):
    """A stand-in vocoder whose audio depends on each frame alone: windows must then join seamlessly."""

    def synthesize(features: np.ndarray) -> np.ndarray:
        calls.append(features.shape[0])
        return np.repeat(np.tanh(features[:, 0]), HOP_LENGTH).astype(np.float32)

    return synthesize


def test_synthesis_of_features_shorter_than_a_window_is_unchanged():
    features = np.random.default_rng(0).normal(size=(round(3 * FRAME_RATE), 80)).astype(np.float32)
    calls = []
    audio = windowed_synthesis(frame_local_vocoder(calls), features, whole_s=3.5, window_s=1.0)
    assert calls == [features.shape[0]] and np.array_equal(audio, frame_local_vocoder([])(features))


def test_long_synthesis_runs_in_bounded_cross_faded_windows():
    features = np.random.default_rng(0).normal(size=(round(9 * FRAME_RATE) + 7, 80)).astype(np.float32)
    calls = []
    audio = windowed_synthesis(frame_local_vocoder(calls), features, whole_s=4.0, window_s=2.0, overlap_s=0.5)
    assert audio.shape == (features.shape[0] * HOP_LENGTH,) and np.isfinite(audio).all()
    assert len(calls) > 4 and max(calls) == round(2.0 * FRAME_RATE)
    # Cross-fading two equal signals changes nothing (beyond float rounding).
    assert np.allclose(audio, frame_local_vocoder([])(features), atol=1e-6)


@pytest.mark.slow
def test_the_pipeline_windows_long_speech():
    pipeline = SilentSpeechPipeline(producer=tiny_speech_model(["acoustic"]), vocoder="griffin-lim", beam=0, device="cpu")
    seconds = WINDOW_S * 1.3
    result = pipeline.run(np.random.default_rng(0).normal(0, 20, (int(seconds * 1000), 8)), rate=1000.0)
    frames = -(-result.emg.shape[0] // EMG_PER_FRAME)
    assert result.features.shape == (frames, 80) and np.isfinite(result.features).all()
    assert result.audio.shape == (frames * HOP_LENGTH,) and np.isfinite(result.audio).all()
