"""The quickstart: every stage on a tiny corpus with tiny models, reuse on a second run, the report's items."""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile
import yaml

from silentspeech.config import bundled_recipe
from silentspeech.decoding import settings as lm_settings
from silentspeech.quickstart import run as quickstart
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.quickstart.report import write_quickstart_report
from silentspeech.quickstart.run import STAGES, closing_message, run_quickstart
from silentspeech.quickstart.seeds import seed_runs
from silentspeech.vocoder.train import load_vocoder_recipe, train_vocoder

#: Tiny recognition/production models and a few steps: seconds on one core.
TINY_MODEL = [
    "model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=1", "model.encoder.mlp_dim=32",
    "trainer.max_steps=2", "trainer.val_every_steps=2", "trainer.progress_bar=false", "trainer.log_every_steps=1",
]
#: A tiny vocoder generator (not the pretrained V1) for two steps (the quickstart's own time budget is lifted).
TINY_VOCODER = [
    "init_from=''", "generator.upsample_initial_channel=16", "generator.resblock_kernel_sizes=[3]", "generator.resblock_dilation_sizes=[[1,3,5]]",
    "batch_size=2", "segment_samples=2048", "max_steps=2", "max_minutes=0", "checkpoint_every=1",
]
TINY = {"pretrain": TINY_MODEL, "recognition": TINY_MODEL, "production": TINY_MODEL, "vocoder": TINY_VOCODER}


def test_data_stages_run_then_are_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quickstart, "GRAMMAR_SENTENCES", 200)
    stages = ("corpus", "cache", "lm")
    first = run_quickstart(tmp_path, utterances=20, stages=stages, workers=0)
    assert set(first.paths) == set(stages) and not first.reused
    assert (tmp_path / "cache" / "manifest.json").is_file()
    assert "\\data\\" in (tmp_path / "lm" / "synthetic_4gram.arpa").read_text()
    assert set(json.loads((tmp_path / quickstart.STAGE_TIMES).read_text())) == set(stages)
    capsys.readouterr()
    second = run_quickstart(tmp_path, utterances=20, stages=stages, workers=0)
    out = capsys.readouterr().out
    assert "0 utterances written" in out and "reusing" in out
    assert second.reused == set(stages)


def test_unknown_stage_and_override_are_named():
    with pytest.raises(ValueError, match="unknown quickstart stage"):
        run_quickstart("unused", stages=("corpus", "vocoderz"))
    with pytest.raises(ValueError, match="only the pretrain, recognition, production and vocoder"):
        run_quickstart("unused", stages=("corpus",), overrides={"lm": ["order=3"]})


def test_report_names_the_stage_that_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(quickstart, "GRAMMAR_SENTENCES", 200)
    with pytest.raises(FileNotFoundError, match="run the quickstart's evaluate stage first"):
        run_quickstart(tmp_path, stages=("report",))


def test_closing_message_says_where_everything_is_and_how_to_start_the_demo(tmp_path):
    default = closing_message(QuickstartLayout(quickstart.DEFAULT_OUT))
    assert "Start the demo: make demo" in default
    assert "runs/quickstart/vocoder/generator.safetensors" in default and "runs/quickstart/report.md" in default
    elsewhere = closing_message(QuickstartLayout(tmp_path))
    assert f"make demo RUNS={tmp_path}" in elsewhere and f"silentspeech demo --quickstart {tmp_path}" in elsewhere


@pytest.mark.slow
def test_every_stage_with_tiny_models_writes_the_report_then_is_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quickstart, "GRAMMAR_SENTENCES", 200)
    # An untrained model's posteriors keep a wide beam busy for a minute.
    monkeypatch.setattr(lm_settings, "DEFAULT_BEAM_WIDTH", 4)
    # Two workers: the pretrained and the from-scratch models train side by side, one process each.
    first = run_quickstart(tmp_path, utterances=20, workers=2, overrides=TINY, stages=STAGES)
    assert tuple(first.paths) == STAGES and not first.reused
    out = capsys.readouterr().out
    assert "Start the demo:" in out and "report.md" in out
    assert "training 2 recognition runs side by side" in out

    layout = QuickstartLayout(tmp_path)
    for task in ("recognition", "production"):
        pair = [getattr(layout, task), layout.scratch / task]
        assert all((run / "test_metrics.json").is_file() for run in pair)
        threads = [yaml.safe_load((run / "config.yaml").read_text())["trainer"]["cpu_threads"] for run in pair]
        assert threads[0] == threads[1] >= 1  # the CPU shared between the two, not oversubscribed
    assert (layout.vocoder / "generator.safetensors").is_file()
    listening = json.loads((layout.listening / "listening.json").read_text())
    conditions = [row["condition"] for row in listening["rows"]]
    assert conditions == ["recording (voiced twin)", "true features -> V1", "EMG -> V1", "EMG -> Griffin-Lim", "EMG -> fine-tuned V1"]
    assert "whisper tiny.en" in listening["judge"]
    report = layout.report.read_text()
    for item in (
        "emg.png", "spectrogram.png", "alignment.png", "greedy WER %", "beam CER %", "Whisper listens", "| recording (voiced twin) |",
        "Pretrained against scratch", "Test greedy CER, pretrained minus scratch", "Wall time per stage",
    ):
        assert item in report
    for figure in ("emg.png", "spectrogram.png", "alignment.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    wavs = sorted(layout.audio.glob("*.wav"))
    assert {w.name.split(".")[1] for w in wavs} == {"v1-universal", "fine-tuned-v1", "griffin-lim", "voiced-twin"}
    for wav in wavs:
        assert f"(audio/{wav.name})" in report
        assert soundfile.info(str(wav)).samplerate == 22050
    times = json.loads((tmp_path / quickstart.STAGE_TIMES).read_text())
    assert set(times) == set(STAGES)

    written = layout.report.stat().st_mtime_ns
    second = run_quickstart(tmp_path, utterances=20, workers=2, overrides=TINY, stages=STAGES)
    assert second.reused == set(STAGES)
    assert layout.report.stat().st_mtime_ns == written

    # What bench/pretraining.py does after another seed: the rewritten report shows both seeds, and still the stage times.
    for task in ("recognition", "production"):
        for run, seed_run in zip((getattr(layout, task), layout.scratch / task), seed_runs(layout, task, 1)[1:]):
            seed_run.mkdir(parents=True)
            shutil.copy(run / "test_metrics.json", seed_run)
    report = write_quickstart_report(layout).read_text()
    assert "Recognition over 2 seeds" in report and "Production over 2 seeds" in report and "not worse with 2 of 2 seeds" in report
    assert "Wall time per stage" in report


@pytest.mark.slow
def test_a_killed_vocoder_fine_tune_resumes(tmp_path):
    run_quickstart(tmp_path, utterances=20, stages=("corpus", "cache", "production"), workers=0, overrides=TINY, compare_scratch=False)
    layout = QuickstartLayout(tmp_path)
    assert (layout.production / "test_metrics.json").is_file() and not layout.scratch.exists()
    recipe = load_vocoder_recipe(
        bundled_recipe("vocoder/v1_finetune.yaml"),
        [f"cache={layout.cache}", f"finetune_on={layout.production}", f"out_dir={layout.vocoder}", *TINY_VOCODER],
    )
    recipe.max_steps = 1
    train_vocoder(recipe)
    # A run killed mid-training has its checkpoint but not the history written at its end.
    (layout.vocoder / "history.json").unlink()
    result = run_quickstart(tmp_path, stages=("vocoder",), overrides=TINY)
    assert not result.reused
    steps = [row["step"] for row in json.loads((layout.vocoder / "history.json").read_text())]
    assert steps == [2]  # resumed after step 1, not started again
