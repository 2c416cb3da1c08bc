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
from silentspeech.quickstart.listening import BASELINE, _scored_row, compare_with_baseline, listening_markdown
from silentspeech.quickstart.report import FINE_TUNE_LEFT_OUT
from silentspeech.quickstart.run import DEFAULT_STAGES, STAGES, closing_message, run_quickstart
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
    assert "runs/quickstart/report.md" in default and "runs/quickstart/vocoder" not in default  # the fine-tune is not a default stage
    elsewhere = closing_message(QuickstartLayout(tmp_path))
    assert f"make demo RUNS={tmp_path}" in elsewhere and f"silentspeech demo --quickstart {tmp_path}" in elsewhere
    layout = QuickstartLayout(tmp_path)
    layout.vocoder.mkdir()
    layout.vocoder_generator.write_bytes(b"weights")
    assert str(layout.vocoder_generator) in closing_message(layout)


def test_the_vocoder_fine_tune_is_not_a_default_stage():
    """At the quickstart's budget it made V1 worse (issue 32): ``--stages vocoder`` or ``all`` runs it, the default does not."""
    from silentspeech.cli import build_parser

    assert "vocoder" in STAGES and DEFAULT_STAGES == tuple(stage for stage in STAGES if stage != "vocoder")
    assert run_quickstart.__defaults__[3] == DEFAULT_STAGES
    assert build_parser().parse_args(["quickstart"]).stages == "default"


def test_listening_table_gives_intervals_and_the_paired_difference_against_griffin_lim():
    """Every row's WER has its bootstrap interval; EMG rows (and the text row) their paired difference against Griffin-Lim."""
    ids = [f"u{i}" for i in range(40)]
    prompts = ["the old man saw a dog near the house"] * 40
    half = ["the old man saw a cat"] * 40  # 4 of 9 words wrong (1 substitution, 3 deletions)
    rows = [
        _scored_row("recording (voiced twin)", "-", ids, prompts, prompts),
        _scored_row("EMG -> V1", "v1", ids, prompts, [p if i % 2 else half[i] for i, p in enumerate(prompts)]),
        _scored_row(BASELINE, "griffin-lim", ids, prompts, half),
        _scored_row("text -> espeak-ng", "espeak-ng", ids, prompts, [half[i] if i % 3 == 0 else p for i, p in enumerate(prompts)]),
    ]
    compare_with_baseline(rows)
    assert "vs_baseline" not in rows[0] and "vs_baseline" not in rows[2]
    recording, direct, baseline, text = rows
    assert recording["wer"] == recording["wer_low"] == recording["wer_high"] == 0.0
    assert baseline["wer_low"] == baseline["wer"] == baseline["wer_high"]  # the same errors on every utterance
    difference, low, high = direct["vs_baseline"]
    assert difference == pytest.approx(direct["wer"] - baseline["wer"]) and low <= difference <= high < 0
    assert text["vs_baseline"][2] < 0
    table = listening_markdown(rows)
    assert "WER vs Griffin-Lim, points [paired 95 %]" in table
    assert f"| {100 * direct['wer']:.1f} [{100 * direct['wer_low']:.1f}, {100 * direct['wer_high']:.1f}] |" in table
    assert f"{100 * difference:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]" in table


@pytest.mark.slow
def test_every_stage_with_tiny_models_writes_the_report_then_is_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quickstart, "GRAMMAR_SENTENCES", 200)
    # An untrained model's posteriors keep a wide beam busy for a minute.
    monkeypatch.setattr(lm_settings, "DEFAULT_BEAM_WIDTH", 4)
    # Two workers: the pretrained and the from-scratch models train side by side, one process each.
    first = run_quickstart(tmp_path, utterances=20, workers=2, overrides=TINY, compare_scratch=True)
    assert tuple(first.paths) == DEFAULT_STAGES and not first.reused
    out = capsys.readouterr().out
    assert "Start the demo:" in out and "report.md" in out
    assert "training 2 recognition runs side by side" in out

    layout = QuickstartLayout(tmp_path)
    for task in ("recognition", "production"):
        pair = [getattr(layout, task), layout.scratch / task]
        assert all((run / "test_metrics.json").is_file() for run in pair)
        threads = [yaml.safe_load((run / "config.yaml").read_text())["trainer"]["cpu_threads"] for run in pair]
        assert threads[0] == threads[1] >= 1  # the CPU shared between the two, not oversubscribed
    assert not layout.vocoder.exists()  # the fine-tune is not a default stage
    listening = json.loads((layout.listening / "listening.json").read_text())
    conditions = [row["condition"] for row in listening["rows"]]
    assert conditions == ["recording (voiced twin)", "true features -> V1", "EMG -> V1", "EMG -> Griffin-Lim", "text -> espeak-ng"]
    assert "whisper tiny.en" in listening["judge"]
    test_silent = [e for e in json.loads((layout.cache / "manifest.json").read_text())["utterances"] if e["split"] == "test" and e["silent"]]
    assert {row["utterances"] for row in listening["rows"]} == {len(test_silent)}  # all of them, in every row
    assert all(row["wer_low"] <= row["wer"] <= row["wer_high"] for row in listening["rows"])
    assert [row["condition"] for row in listening["rows"] if "vs_baseline" in row] == ["EMG -> V1", "text -> espeak-ng"]
    report = layout.report.read_text()
    for item in (
        "emg.png", "spectrogram.png", "alignment.png", "greedy WER %", "beam CER %", "Whisper listens", "| recording (voiced twin) |",
        "Pretrained against scratch", "Test greedy CER, pretrained minus scratch", "Wall time per stage",
        "WER vs Griffin-Lim, points [paired 95 %]", "| text -> espeak-ng |", FINE_TUNE_LEFT_OUT,
    ):
        assert item in report
    for figure in ("emg.png", "spectrogram.png", "alignment.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    wavs = sorted(layout.audio.glob("*.wav"))
    assert {w.name.split(".")[1] for w in wavs} == {"v1-universal", "griffin-lim", "text-espeak-ng", "voiced-twin"}
    for wav in wavs:
        assert f"(audio/{wav.name})" in report
        assert soundfile.info(str(wav)).samplerate == 22050
    times = json.loads((tmp_path / quickstart.STAGE_TIMES).read_text())
    assert set(times) == set(DEFAULT_STAGES)

    written = layout.report.stat().st_mtime_ns
    second = run_quickstart(tmp_path, utterances=20, workers=2, overrides=TINY)
    assert second.reused == set(DEFAULT_STAGES)
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
