"""Bench helpers: thread settings, timing summaries, peak memory and tables (no timed assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from silentspeech.benchmark import Timing, real_time_factor, set_threads, time_calls


def test_set_threads_sets_torch_and_refuses_zero():
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="at least 1"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_timing_summary_median_and_quartiles():
    timing = Timing.from_seconds([0.004, 0.001, 0.002, 0.003, 0.005])
    assert (timing.median_ms, timing.q1_ms, timing.q3_ms, timing.min_ms, timing.max_ms) == pytest.approx((3, 2, 4, 1, 5))
    assert timing.repeats == 5 and timing.spread == "2-4" and timing.cpu_ms is None


def test_time_calls_runs_warmup_and_repeats_for_each_call():
    counts = {"a": 0, "b": 0}

    def call(name):
        counts[name] += 1

    timings = time_calls({"a": lambda: call("a"), "b": lambda: call("b")}, repeats=3, warmup=2)
    assert counts == {"a": 5, "b": 5} and timings["a"].repeats == 3 and timings["a"].cpu_ms >= 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak memory reads Linux's /proc/self")
def test_peak_memory_sees_a_large_temporary():
    # In a fresh process: after heavy tests this one may hold enough freed, still resident memory to serve the
    # temporary without its resident size growing (seen after test_quickstart: increase 0.0 MB).
    code = (
        "import numpy as np; from silentspeech.benchmark import peak_memory; "
        "result, peak = peak_memory(lambda: float(np.ones(20_000_000).sum())); "  # 160 MB, freed before returning
        "print(result, peak.increase_mb, peak.peak_mb)"
    )
    result, increase_mb, peak_mb = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert result == 20_000_000
    assert increase_mb > 100 and peak_mb >= increase_mb


def test_real_time_factor():
    assert real_time_factor(0.25, 5.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        real_time_factor(1.0, 0.0)


@pytest.mark.parametrize("script, arguments", [("gestures.py", []), ("pretraining.py", ["--quickstart", "{tmp}"])])
def test_bench_scripts_without_their_input_print_a_skipped_section(tmp_path, script, arguments):
    # `make bench` runs every bench/*.py with only --threads and --markdown, and keeps each one's stdout as its section.
    bench = Path(__file__).resolve().parents[1] / "bench" / script
    command = [sys.executable, str(bench), "--threads", "1", "--markdown", *(a.format(tmp=tmp_path) for a in arguments)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## ") and "skipped" in result.stdout
