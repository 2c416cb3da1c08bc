"""Pretraining where labels are few: session overlap, epochs for a step budget, the pooled paired comparison, and the bench's refusals."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import prepared_synthetic_cache, synthetic_corpus
from silentspeech.low_label import compare_pairs, corpus_sessions, epochs_for_steps, shared_sessions, steps_per_epoch

REPO = Path(__file__).resolve().parents[1]


def write_results(path: Path, rows: list[tuple[str, str, int, int]]) -> Path:
    """A ``results.csv`` as ``evaluate`` writes it, with (id, kind, greedy char errors, reference chars) rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "kind", "reference", "greedy", "beam", "reference_words", "reference_chars",
                         "greedy_word_errors", "greedy_char_errors", "beam_word_errors", "beam_char_errors"])
        for utterance, kind, errors, characters in rows:
            writer.writerow([utterance, kind, "x", "y", "", 1, characters, 1, errors, "", ""])
    return path


def test_sessions_are_shared_only_with_the_same_seed(tmp_path_factory, tmp_path):
    corpus = synthetic_corpus(tmp_path_factory, 20)
    generator, seed, names = corpus_sessions(corpus)
    assert (generator, seed) == ("default", 0)
    assert {"5-4", "5-19", "4-24"} <= set(names) and not any(name.endswith("_silent") for name in names)
    other = tmp_path / "other"
    (other / "voiced_parallel_data" / "5-4").mkdir(parents=True)
    (other / "voiced_parallel_data" / "5-4" / "0_info.json").write_text("{}")
    (other / "synthetic_corpus.json").write_text(json.dumps({"seed": 0}))
    assert shared_sessions(corpus, other) == ["5-4"]  # same seed and name: the same recording
    (other / "synthetic_corpus.json").write_text(json.dumps({"seed": 7}))
    assert shared_sessions(corpus, other) == []
    with pytest.raises(ValueError, match="not a synthetic corpus"):
        corpus_sessions(tmp_path)


def test_epochs_come_nearest_the_step_budget(tmp_path_factory):
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=20)
    per_epoch = steps_per_epoch(cache, 12000)
    assert per_epoch >= 1
    assert epochs_for_steps(cache, 12000, 10 * per_epoch) == 10
    assert epochs_for_steps(cache, 12000, 1) == 1
    with pytest.raises(ValueError, match="steps"):
        epochs_for_steps(cache, 12000, 0)


def test_comparison_pools_the_seeds_utterance_pairs(tmp_path):
    # Seed 0: pretrained 10/100 against 20/100; seed 1: 30/100 against 30/100. Voiced rows are not scored.
    results = {
        0: (write_results(tmp_path / "0p.csv", [("a", "silent", 4, 50), ("b", "silent", 6, 50), ("v", "voiced", 50, 50)]),
            write_results(tmp_path / "0s.csv", [("a", "silent", 10, 50), ("b", "silent", 10, 50), ("v", "voiced", 0, 50)])),
        1: (write_results(tmp_path / "1p.csv", [("a", "silent", 15, 50), ("b", "silent", 15, 50)]),
            write_results(tmp_path / "1s.csv", [("b", "silent", 20, 50), ("a", "silent", 10, 50)])),
    }
    comparison = compare_pairs(results, resamples=500)
    assert [(p.seed, p.pretrained, p.scratch) for p in comparison.pairs] == [(0, 10.0, 20.0), (1, 30.0, 30.0)]
    assert comparison.difference == pytest.approx(-5.0) and comparison.utterances == 4
    assert comparison.low <= comparison.difference <= comparison.high
    results[1] = (results[1][0], write_results(tmp_path / "1x.csv", [("a", "silent", 1, 50)]))
    with pytest.raises(ValueError, match="different test utterances"):
        compare_pairs(results)


def test_bench_refuses_bad_settings_in_one_line_and_skips_without_run():
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def bench(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "bench" / "low_label.py"), "--threads", "1", *arguments],
                              capture_output=True, text=True, timeout=120, env=env)

    refused = bench("--labelled-seed", "2", "--unlabelled-seed", "2")
    assert refused.returncode == 2 and "would see the labelled corpus's sessions" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "unknown generator 'gen4'" in bench("--generators", "gen4").stderr
    skipped = bench("--markdown")
    assert skipped.returncode == 0 and "pass --run" in skipped.stdout
