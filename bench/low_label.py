"""Pretraining where labels are few: a trunk pretrained on unlabelled EMG, fine-tuned on a quarter hour, against scratch.

Where labels are plentiful (the quickstart's 1200 utterances) masked
reconstruction makes the recogniser train every time but gives no accuracy
gain (docs/measurements.md, *Ten seeds*). This bench measures the low-label
regime (:mod:`silentspeech.low_label`):

1. an **unlabelled** corpus of generator 5, ``--unlabelled-hours`` of training
   utterances (default 2) with its own seed and ``--unlabelled-sessions``
   sessions (default 8), is written and prepared; the bench refuses to go on
   when it shares a recording session with a labelled corpus (same seed and
   session name); ``recipes/synthetic/speech_pretrain.yaml`` pretrains the
   trunk on its train split's EMG, no text, for ``--pretrain-epochs`` epochs;
2. a **labelled** corpus of ``--labelled-hours`` (default 0.25) of each of
   ``--generators`` (``default``: generator 5; ``independent``: the evaluation
   generator, EMG the pretraining never saw), with ``--labelled-seed`` and its
   own dev/test split, is written and prepared;
3. for each seed of ``--seeds``, ``recipes/synthetic/recognition.yaml`` is
   trained on it twice with that seed: from the pretrained trunk
   (``model.init_from``) and from scratch, both for the epochs that come
   nearest ``--steps`` optimiser steps (default 750, half the quickstart
   recogniser's budget: a quarter hour is memorised sooner, and twelve
   runs of 1500 steps did not fit the measurement's time), one worker process each at ``--threads`` / 2
   threads (or one after the other at one thread);
4. each run's best weights decode the silent test utterances greedily (no LM).

It prints, per generator, each seed's test greedy CER of both starts and
their difference, mean +- sd over seeds, and the difference pooled over
every seed's test utterances with a paired bootstrap 95 % interval
(utterance pairs resampled, corpus-level CER each time). ``--arms`` trains
only one start (two bench processes, one per start, keep two cores busy
while the pretraining runs); the table needs both.

Everything lives under ``--out`` (:class:`silentspeech.low_label.LowLabelLayout`);
finished corpora, caches, runs and evaluations are reused and a killed
training resumes from its last checkpoint. ``--out`` remembers the settings
that shape results and refuses others. About an hour and a half on two
shared cores with the defaults, so ``make bench`` (no ``--run``) only prints
a skipped section.

    .venv/bin/python bench/low_label.py --run --threads 2 [--out runs/lowlabel] [--seeds 0 1 2] [--generators default independent] [--unlabelled-hours 2] [--labelled-hours 0.25] [--pretrain-epochs 2] [--steps 750] [--arms pretrained scratch] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from silentspeech.atomic import atomic_write_json
from silentspeech.low_label import GENERATORS, LowLabelLayout, compare_pairs, epochs_for_steps, interval_line, shared_sessions, steps_per_epoch

TITLE = "Pretraining where labels are few: pretrained trunk against scratch (test greedy CER)"
ARMS = ("pretrained", "scratch")
SETTINGS = "low_label_settings.json"
#: The recipes' batch caps (``data.max_total_samples``), for the steps they make per epoch.
RECOGNITION_BATCH, PRETRAIN_BATCH = 12000, 24000


def log(message: str) -> None:
    """Progress on stderr, with the wall clock."""
    import sys

    print(f"[low_label {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_corpus(generator: str, corpus: Path, cache: Path, hours: float, seed: int, sessions: int, workers: int) -> None:
    """Write and prepare a synthetic corpus unless its cache is finished (a finished cache means a finished corpus)."""
    from silentspeech.data.cache import MANIFEST, prepare_cache

    if (cache / MANIFEST).is_file():
        return
    start = time.perf_counter()
    if generator == "independent":
        from silentspeech.data.synthetic.independent import generate_independent_corpus

        print(generate_independent_corpus(corpus, hours=hours, seed=seed, sessions=sessions, workers=workers, progress=False))
    else:
        from silentspeech.data.synthetic.speech import generate_corpus, utterances_for_hours

        print(generate_corpus(corpus, utterances=utterances_for_hours(hours), seed=seed, sessions=sessions, workers=workers, progress=False))
    print(prepare_cache(corpus, cache, workers=workers).summary())
    log(f"{corpus} written and prepared in {time.perf_counter() - start:.0f} s")


def evaluate(run: Path, cache: Path) -> Path:
    """Greedy decoding of the silent test utterances by the run's weights (reused when done); the ``results.csv``."""
    from silentspeech.evaluation.recognition import evaluate_recognition

    results = run / "eval_test" / "results.csv"
    if not results.is_file():
        evaluate_recognition(run, split="test", cache=cache)
    return results


def check_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Record in ``--out`` what shapes its results, or exit with one line when it holds results made otherwise."""
    settings = {key: getattr(args, key) for key in
                ("unlabelled_hours", "unlabelled_seed", "unlabelled_sessions", "labelled_hours", "labelled_seed", "pretrain_epochs", "steps")}
    path = args.out / SETTINGS
    if path.is_file() and json.loads(path.read_text()) != settings:
        parser.exit(2, f"{parser.prog}: error: {path} holds results made with {path.read_text()!r:.300}; use another --out for {settings}\n")
    atomic_write_json(path, settings)


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a one-line error for settings no run could use."""
    problems = [f"unknown generator {g!r} (choose from {', '.join(GENERATORS)})" for g in args.generators if g not in GENERATORS]
    problems += [f"{flag} must be positive, got {value:g}" for flag, value in
                 (("--unlabelled-hours", args.unlabelled_hours), ("--labelled-hours", args.labelled_hours),
                  ("--pretrain-epochs", args.pretrain_epochs), ("--steps", args.steps), ("--threads", args.threads)) if not value > 0]
    problems += [f"--seeds must be >= 0, got {s}" for s in args.seeds if s < 0]
    problems += [f"unknown arm {a!r} (choose from {', '.join(ARMS)})" for a in args.arms if a not in ARMS]
    if args.unlabelled_seed == args.labelled_seed:
        problems.append(f"--unlabelled-seed and --labelled-seed are both {args.labelled_seed}: the pretraining would see the labelled corpus's sessions")
    if problems:
        parser.exit(2, f"{parser.prog}: error: {problems[0]}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads: the pretraining's, shared by two fine-tunes side by side (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section for bench/results.md")
    parser.add_argument("--run", action="store_true", help="run the bench (about 1.5 h on 2 cores); without it a skipped section is printed")
    parser.add_argument("--out", type=Path, default=Path("runs/lowlabel"), help="folder of every corpus and run (default runs/lowlabel)")
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), help=f"labelled corpora's generators (default {' '.join(GENERATORS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds (default 0 1 2)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), help="which starts to train (default both; the table needs both)")
    parser.add_argument("--unlabelled-hours", type=float, default=2.0, help="hours of training utterances of the unlabelled corpus (default 2)")
    parser.add_argument("--unlabelled-seed", type=int, default=2, help="seed of the unlabelled corpus and of the pretraining (default 2)")
    parser.add_argument("--unlabelled-sessions", type=int, default=8, help="recording sessions of the unlabelled corpus (default 8)")
    parser.add_argument("--labelled-hours", type=float, default=0.25, help="hours of training utterances of each labelled corpus (default 0.25)")
    parser.add_argument("--labelled-seed", type=int, default=1, help="seed of the labelled corpora (default 1)")
    parser.add_argument("--pretrain-epochs", type=int, default=2, help="epochs of pretraining on the unlabelled corpus (default 2)")
    parser.add_argument("--steps", type=int, default=750, help="about this many optimiser steps per fine-tune (default 750)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing corpora and caches (default 2)")
    args = parser.parse_args()
    check_arguments(parser, args)
    # Torch loads only now (seconds): bad arguments are refused at once.
    from silentspeech.benchmark import print_report, print_skipped, set_threads, stdout_to_stderr
    from silentspeech.quickstart.run import train_side_by_side
    from silentspeech.quickstart.seeds import seed_table

    set_threads(args.threads)
    if not args.run:
        print_skipped(TITLE, "about 1.5 h on 2 cores: a 2 h corpus written and pretrained on, 12 fine-tunes", args.threads, args.markdown)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    check_settings(parser, args)
    layout = LowLabelLayout(args.out)
    parallel = min(args.threads, 2)
    per_run = [f"trainer.cpu_threads={max(1, args.threads // parallel)}"]
    notes, tables = [], []
    with stdout_to_stderr():
        for generator in args.generators:
            make_corpus(generator, layout.corpus(generator), layout.cache(generator), args.labelled_hours, args.labelled_seed, 3, args.workers)
        if "pretrained" in args.arms:
            make_corpus("default", layout.corpus("unlabelled"), layout.cache("unlabelled"), args.unlabelled_hours, args.unlabelled_seed,
                        args.unlabelled_sessions, args.workers)
            for generator in args.generators:
                shared = shared_sessions(layout.corpus("unlabelled"), layout.corpus(generator))
                if shared:
                    parser.exit(2, f"{parser.prog}: error: the unlabelled corpus shares sessions {', '.join(shared)} with {layout.corpus(generator)}\n")
            log(f"pretraining {layout.pretrain}: {args.pretrain_epochs} epochs of "
                f"{steps_per_epoch(layout.cache('unlabelled'), PRETRAIN_BATCH)} steps")
            start = time.perf_counter()
            if train_side_by_side("speech_pretrain", [(layout.pretrain, [f"seed={args.unlabelled_seed}", f"trainer.max_epochs={args.pretrain_epochs}",
                                                                         f"trainer.cpu_threads={args.threads}"])],
                                  layout.cache("unlabelled"), layout.corpus("unlabelled")):
                log(f"pretrained in {time.perf_counter() - start:.0f} s")
        for generator in args.generators:
            cache, corpus = layout.cache(generator), layout.corpus(generator)
            epochs = epochs_for_steps(cache, RECOGNITION_BATCH, args.steps)
            notes.append(f"{generator}: {epochs} epochs of {steps_per_epoch(cache, RECOGNITION_BATCH)} steps")
            for seed in args.seeds:
                pretrained, scratch = layout.runs(generator, seed)
                common = [f"seed={seed}", f"trainer.max_epochs={epochs}"]
                runs = [(pretrained, [*common, f"model.init_from={layout.pretrain}"]), (scratch, common)]
                runs = [(run, overrides) for run, overrides in runs if run.name in args.arms]
                log(f"{generator} seed {seed}: training {', '.join(run.name for run, _ in runs)} ({epochs} epochs)")
                start = time.perf_counter()
                if train_side_by_side("recognition", [(run, [*overrides, *(per_run if parallel < 2 else [])]) for run, overrides in runs],
                                      cache, corpus, workers=parallel):
                    log(f"{generator} seed {seed} trained in {time.perf_counter() - start:.0f} s")
                for run, _ in runs:
                    evaluate(run, cache)
            if set(ARMS) <= set(args.arms):
                comparison = compare_pairs({seed: tuple(evaluate(run, cache) for run in layout.runs(generator, seed)) for seed in args.seeds})
                tables.append((generator, comparison))
    if not tables:
        log("one arm trained; run again with both --arms for the table")
        return
    for generator, comparison in tables:
        headers, rows, verdict = seed_table(comparison.pairs, "recognition")
        print_report(f"{TITLE}, {generator} generator", headers, rows, args.threads, args.markdown,
                     notes=[f"{interval_line(comparison)} {verdict}",
                            f"Unlabelled corpus: generator 5, {args.unlabelled_hours:g} h, seed {args.unlabelled_seed}, "
                            f"{args.unlabelled_sessions} sessions; pretraining {args.pretrain_epochs} epochs. Labelled: {args.labelled_hours:g} h, "
                            f"seed {args.labelled_seed}; {'; '.join(notes)}. Runs in {args.out}."])


if __name__ == "__main__":
    main()
