"""The pretrained-vs-scratch comparison over seeds: which runs count, the table, and the report's section."""

import json

import pytest

from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.quickstart.report import _seeds_lines
from silentspeech.quickstart.seeds import finished_seeds, read_test_metric, seed_runs, seed_table
from silentspeech.runs import TEST_METRICS


def _finish(run, cer):
    run.mkdir(parents=True, exist_ok=True)
    (run / TEST_METRICS).write_text(json.dumps({"test/cer": cer, "test/wer": 0.5}))


def test_finished_seeds_take_seed_zero_from_the_quickstart_and_skip_unfinished_seeds(tmp_path):
    layout = QuickstartLayout(tmp_path)
    for seed, pretrained, scratch in [(0, 0.18, 0.20), (1, 0.19, 0.22), (3, 0.21, 0.20)]:
        _, a, b = seed_runs(layout, "recognition", seed)
        _finish(a, pretrained)
        _finish(b, scratch)
    _finish(seed_runs(layout, "recognition", 2)[1], 0.10)  # seed 2's scratch run never finished
    (layout.seeds / "notes").mkdir()

    pairs = finished_seeds(layout, "recognition")
    assert [p.seed for p in pairs] == [0, 1, 3]
    assert pairs[2].difference == pytest.approx(1.0)
    assert finished_seeds(layout, "production") == []

    headers, rows, verdict = seed_table(pairs, "recognition")
    assert headers[1] == "pretrained: test greedy CER %"
    assert rows[0] == ["0", "18.00", "20.00", "-2.00"]
    assert rows[-1] == ["mean +- sd", "19.33 +- 1.53", "20.67 +- 1.15", "-1.33 +- 2.08"]
    assert verdict == ("The pretrained model was not worse with 2 of 3 seeds; pretrained minus scratch: median -2.00, "
                       "mean -1.33 (standard error 1.20).")

    section = "\n".join(_seeds_lines(layout))
    assert "Recognition over 3 seeds" in section and "| 3 | 21.00 | 20.00 | +1.00 |" in section
    assert "Production" not in section


def test_the_report_shows_no_seed_table_for_seed_zero_alone(tmp_path):
    layout = QuickstartLayout(tmp_path)
    for run in seed_runs(layout, "recognition", 0)[1:]:
        _finish(run, 0.2)
    assert _seeds_lines(layout) == []


@pytest.mark.parametrize("metrics", [{}, {"test/cer": float("nan")}])
def test_a_run_without_its_metric_is_named(tmp_path, metrics):
    (tmp_path / TEST_METRICS).write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"test_metrics\.json: no finite 'test/cer'"):
        read_test_metric(tmp_path, "recognition")
