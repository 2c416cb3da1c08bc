"""Pretrained against scratch over several seeds: the quickstart report's comparison, repeated.

The quickstart's report compares one model fine-tuned from the pretrained
trunk with one trained from scratch, both with seed 0. At the quickstart's
budget the recogniser's test CER moves with the seed by more than the two
differ (docs/measurements.md, *How learnable the corpus is*), so one pair
cannot rank them. For each seed this script does what the quickstart's
``pretrain`` and ``recognition`` (or ``production``) stages do, with that
seed for the pretraining and for both fine-tunes, on the quickstart's corpus
and cache: the pretraining at ``--threads`` threads, then the two fine-tunes
side by side at half as many each (:func:`silentspeech.quickstart.run.train_side_by_side`).
Seed 0 reuses the quickstart's own runs when it was run with ``--scratch``.

It prints each seed's test metric (greedy CER for recognition, the DTW
feature distance for production; lower is better) for both starts, their
difference, the mean +- sd over seeds, the median difference, and with how
many seeds the pretrained model was not worse. A seed takes about 4 minutes on 2 cores;
runs go to ``--out`` and a killed bench resumes where it stopped. With the
default ``--out`` (``<quickstart>/seeds``) the bench then rewrites the
quickstart's ``report.md``, whose comparison shows every seed found there.

    .venv/bin/python bench/pretraining.py --threads 2 [--seeds 0 1 2] [--task recognition] [--quickstart runs/quickstart] [--out DIR] [--markdown]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from silentspeech.benchmark import QUICKSTART, print_report, set_threads, stdout_to_stderr
from silentspeech.data.cache import MANIFEST
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.quickstart.report import write_quickstart_report
from silentspeech.quickstart.run import train_side_by_side
from silentspeech.quickstart.seeds import METRICS, read_seed_pair, seed_runs, seed_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads: the pretraining's, shared by the two fine-tunes (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of pretraining and fine-tuning (default 0 1 2)")
    parser.add_argument("--task", choices=sorted(METRICS), default="recognition", help="which model to compare (default recognition)")
    parser.add_argument("--quickstart", type=Path, default=QUICKSTART, help=f"a finished quickstart: its corpus and cache, and seed 0's runs (default {QUICKSTART})")
    parser.add_argument("--out", type=Path, default=None, help="folder of the other seeds' runs (default: <quickstart>/seeds)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section for bench/results.md")
    args = parser.parse_args()
    set_threads(args.threads)
    layout = QuickstartLayout(args.quickstart)
    title = f"Pretrained against scratch over seeds ({args.task})"
    if not (layout.cache / MANIFEST).is_file() or not layout.corpus.is_dir():
        print_report(title, ["skipped"], [[f"no quickstart corpus and cache in {layout.out}: run `make quickstart` or pass --quickstart"]],
                     args.threads, args.markdown)
        return
    out = args.out or layout.seeds

    for seed in args.seeds:
        pretraining, pretrained, scratch = seed_runs(layout, args.task, seed, out)
        with stdout_to_stderr():
            train_side_by_side("speech_pretrain", [(pretraining, [f"seed={seed}"])], layout.cache, layout.corpus)
            train_side_by_side(args.task, [(pretrained, [f"seed={seed}", f"model.init_from={pretraining}"]), (scratch, [f"seed={seed}"])],
                               layout.cache, layout.corpus)
    headers, rows, verdict = seed_table([read_seed_pair(layout, args.task, seed, out) for seed in args.seeds], args.task)
    print_report(title, headers, rows, args.threads, args.markdown,
                 notes=[f"Quickstart {layout.out} (seed 0: its own runs; other seeds in {out}). {verdict}"])
    if out == layout.seeds and layout.report.is_file():  # the report shows every seed under layout.seeds
        with stdout_to_stderr():
            print(f"updated {write_quickstart_report(layout)}")


if __name__ == "__main__":
    main()
