"""The scaling curve: the power-law fit and its extrapolation, and bench/scaling.py's skipped, refused and tiny end-to-end runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from silentspeech.figures import scaling_figure
from silentspeech.scaling import fit_power_law, power_law

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "scaling.py"
#: A one-block model for two steps, tuned with a beam of 4: the pipeline end to end in seconds.
TINY = [
    "--override", "model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=1",
    "model.encoder.mlp_dim=32", "trainer.max_steps=2", "trainer.val_every_steps=2", "trainer.progress_bar=false",
]


def run_bench(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``bench/scaling.py --threads 1 ARGUMENTS`` on this checkout's package (not whatever silentspeech is installed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *arguments], capture_output=True, text=True, timeout=timeout, env=env)


def test_fit_recovers_a_known_power_law_with_several_points_per_amount():
    hours = [0.25, 0.25, 0.5, 1.0, 2.0, 2.0]
    errors = power_law(60.0, 0.3, hours)
    a, b = fit_power_law(hours, errors)
    assert (a, b) == pytest.approx((60.0, 0.3), rel=1e-12)


def test_extrapolation_follows_the_law():
    assert power_law(60.0, 0.5, [1.0, 4.0, 100.0]) == pytest.approx([60.0, 30.0, 6.0])
    a, b = fit_power_law([1.0, 2.0], [40.0, 20.0])  # halves per doubling: b = 1
    assert b == pytest.approx(1.0) and float(power_law(a, b, 20.0)) == pytest.approx(2.0)


@pytest.mark.parametrize("hours, errors, message", [
    ([1.0, 1.0], [30.0, 20.0], "two distinct amounts"),
    ([1.0, 2.0], [30.0, 0.0], "positive"),
    ([0.0, 2.0], [30.0, 20.0], "positive"),
    ([1.0, 2.0], [30.0], "one length"),
])
def test_fit_refuses_what_has_no_power_law(hours, errors, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(hours, errors)


def test_figure_has_a_panel_per_metric_with_points_and_fitted_line():
    panels = {"beam WER %": {"default": ([0.25, 0.5], [50.0, 40.0], (30.0, 0.32)), "independent": ([0.25], [70.0], None)},
              "beam CER %": {"default": ([0.25, 0.5], [20.0, 15.0], (11.0, 0.4))}}
    figure = scaling_figure(panels, up_to_hours=20.0)
    wer, cer = figure.axes
    assert wer.get_title() == "beam WER %" and wer.get_xscale() == "log" and wer.get_yscale() == "log"
    assert len(wer.lines) == 1 and len(wer.collections) == 2  # one fitted line, two generators' points
    assert np.max(wer.lines[0].get_xdata()) == pytest.approx(20.0)


def test_without_run_it_prints_a_skipped_section():
    # `make bench` runs every bench script with only --threads and --markdown: a full run takes hours.
    result = run_bench("--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## ") and "skipped" in result.stdout and "--run" in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--hours", "0.25", "-1"], "--hours must be positive, got -1"),
    (["--generators", "default", "gen4"], "unknown generator 'gen4'"),
    (["--hours", "0.001"], "needs at least 10"),
    (["--lm-text", "/nonexistent/book.txt"], "/nonexistent/book.txt: no such file"),
])
def test_bad_input_gets_a_one_line_error(arguments, message):
    result = run_bench(*arguments)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


@pytest.mark.slow
def test_tiny_scaling_run_end_to_end_then_reused(tmp_path):
    # Two default-generator corpora of 11 and 18 utterances, a two-step model each: corpus, cache, LM,
    # training, tuning and scoring, the table, its file and the plot. A second run reuses every point.
    arguments = ["--run", "--out", str(tmp_path), "--hours", "0.006", "0.01", "--generators", "default",
                 "--workers", "0", "--beam-width", "4", *TINY]
    first = run_bench(*arguments)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [line for line in first.stdout.splitlines() if line.startswith("default")]
    assert len(rows) == 5 and "power law" in rows[2] and "-> 20 h" in rows[4]
    assert (tmp_path / "default" / "0.01h" / "seed0" / "recognition" / "eval_test" / "summary.json").is_file()
    assert (tmp_path / "scaling.md").read_text().startswith("## ") and (tmp_path / "scaling.png").stat().st_size > 0
    second = run_bench(*arguments)
    assert second.returncode == 0 and "reusing the trained model" in second.stderr and "Trainer.fit" not in second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("default")] == rows


def test_results_made_with_other_settings_are_not_mixed_in(tmp_path):
    (tmp_path / "scaling_settings.json").write_text('{"override": ["trainer.max_steps=3"]}')
    result = run_bench("--run", "--out", str(tmp_path), "--override", "trainer.max_steps=2")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "use another --out" in result.stderr
