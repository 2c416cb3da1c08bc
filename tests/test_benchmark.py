"""Bench helpers: thread settings, timing summaries, peak memory and tables (no timed assertions)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from silentspeech.benchmark import Timing, peak_memory, real_time_factor, set_threads, time_calls


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
    result, peak = peak_memory(lambda: float(np.ones(20_000_000).sum()))  # 160 MB, freed before returning
    assert result == 20_000_000
    assert peak is not None and peak.increase_mb > 100 and peak.peak_mb >= peak.increase_mb


def test_real_time_factor():
    assert real_time_factor(0.25, 5.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        real_time_factor(1.0, 0.0)
