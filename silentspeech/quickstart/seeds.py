"""Pretrained against scratch over several seeds: where each seed's runs live, and their table.

The quickstart compares one model fine-tuned from the pretrained trunk with
one trained from scratch, both with seed 0. At its budget the recogniser's
test CER moves with the seed by more than the two starts differ
(docs/measurements.md, *How learnable the corpus is*), so one pair cannot
rank them. ``bench/pretraining.py`` repeats the comparison with other seeds
under ``<quickstart>/seeds/seed<N>/`` (the quickstart's own runs are seed
0); the bench prints the table made here, and the quickstart report shows
it for every seed it finds there.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from silentspeech.metrics import mean_sd
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.runs import TEST_METRICS

#: Task -> (key in test_metrics.json, scale, what the scaled value is, decimals printed); lower is better for both.
METRICS = {"recognition": ("test/cer", 100.0, "greedy CER %", 2), "production": ("test/distance", 1.0, "DTW distance", 3)}
_SEED_FOLDER = re.compile(r"seed(\d+)")


def seed_runs(layout: QuickstartLayout, task: str, seed: int, out: Path | None = None) -> tuple[Path, Path, Path]:
    """The pretraining, pretrained and scratch run folders of ``seed`` under ``out`` (default ``layout.seeds``); seed 0's are the quickstart's own."""
    if seed == 0:
        return layout.pretrain, getattr(layout, task), layout.scratch / task
    folder = (out or layout.seeds) / f"seed{seed}"
    return folder / "pretrain", folder / task, folder / "scratch" / task


def read_test_metric(run: Path, task: str) -> float:
    """The task's test metric of a finished run, scaled as :data:`METRICS` says (CER in %)."""
    key, scale, _, _ = METRICS[task]
    path = run / TEST_METRICS
    value = json.loads(path.read_text()).get(key)
    if value is None or not math.isfinite(float(value)):
        raise ValueError(f"{path}: no finite {key!r}")
    return scale * float(value)


@dataclass(frozen=True)
class SeedPair:
    """One seed's test metric from the pretrained trunk and from scratch (scaled as :data:`METRICS` says)."""

    seed: int
    pretrained: float
    scratch: float

    @property
    def difference(self) -> float:
        return self.pretrained - self.scratch


def read_seed_pair(layout: QuickstartLayout, task: str, seed: int, out: Path | None = None) -> SeedPair:
    """The finished pair of ``seed`` (see :func:`seed_runs`); raises ``OSError``/``ValueError`` naming the file when one is missing or holds no metric."""
    _, pretrained, scratch = seed_runs(layout, task, seed, out)
    return SeedPair(seed, read_test_metric(pretrained, task), read_test_metric(scratch, task))


def finished_seeds(layout: QuickstartLayout, task: str) -> list[SeedPair]:
    """Every seed, 0 and those under ``layout.seeds``, whose pretrained and scratch runs both finished, in seed order."""
    seeds = {0}
    if layout.seeds.is_dir():
        seeds |= {int(match[1]) for folder in layout.seeds.iterdir() if (match := _SEED_FOLDER.fullmatch(folder.name))}
    pairs = []
    for seed in sorted(seeds):
        runs = seed_runs(layout, task, seed)[1:]
        if all((run / TEST_METRICS).is_file() for run in runs):
            pairs.append(read_seed_pair(layout, task, seed))
    return pairs


def seed_table(pairs: list[SeedPair], task: str) -> tuple[list[str], list[list[str]], str]:
    """Headers, rows (one per seed, then mean +- sd) and a one-line verdict for :func:`~silentspeech.tables.markdown_table`.

    The verdict counts the seeds with which the pretrained model was not
    worse and gives the median difference (a run that never leaves CTC's
    all-blank plateau ends near 75 % CER and sways the mean) and the mean
    difference with its standard error (sd over the square root of the
    number of seeds).
    """
    _, _, unit, decimals = METRICS[task]

    def spread(values: list[float], sign: str = "") -> str:
        mean, sd = mean_sd(values)
        return f"{mean:{sign}.{decimals}f} +- {sd:.{decimals}f}" if len(values) > 1 else f"{mean:{sign}.{decimals}f}"

    rows = [[str(p.seed), f"{p.pretrained:.{decimals}f}", f"{p.scratch:.{decimals}f}", f"{p.difference:+.{decimals}f}"] for p in pairs]
    differences = [p.difference for p in pairs]
    rows.append(["mean +- sd", spread([p.pretrained for p in pairs]), spread([p.scratch for p in pairs]), spread(differences, "+")])
    mean, sd = mean_sd(differences)
    standard_error = f" (standard error {sd / math.sqrt(len(pairs)):.{decimals}f})" if len(pairs) > 1 else ""
    verdict = (f"The pretrained model was not worse with {sum(d <= 0 for d in differences)} of {len(pairs)} seeds; "
               f"pretrained minus scratch: median {statistics.median(differences):+.{decimals}f}, "
               f"mean {mean:+.{decimals}f}{standard_error}.")
    return ["seed", f"pretrained: test {unit}", f"scratch: test {unit}", "pretrained - scratch"], rows, verdict
