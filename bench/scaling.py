"""Scaling curve: test WER/CER of the default recognition recipe against hours of training utterances, with a power-law fit.

For each generator of ``--generators`` (``default``: synthetic generator 5,
:func:`silentspeech.data.synthetic.speech.generate_corpus`; ``independent``:
the evaluation generator written apart from it,
:func:`silentspeech.data.synthetic.independent.generate_independent_corpus`,
prompts from ``--book`` or its own grammar), each of ``--hours`` and each of
``--seeds`` it

1. writes a corpus of about that many hours of training utterances (the
   default generator takes a count of utterances: hours are converted by
   :func:`silentspeech.data.synthetic.speech.utterances_for_hours`, measured on the quickstart's corpus);
2. prepares its cache, whose manifest gives the hours actually trained on;
3. builds a 4-gram LM of its training prompts (dev/test held out) and of
   ``--lm-text`` (e.g. a book), as the quickstart's ``lm`` stage does
   (without ``--lm-text`` the LM's text grows with the corpus too);
4. trains ``recipes/synthetic/recognition.yaml`` with that seed and every
   ``--override`` (its 16 epochs make the steps grow with the data);
5. tunes beam search on dev (``tune-lm``), then scores greedy and beam
   search on the silent test utterances of that corpus's own split (default
   generator: about 27 at 0.25 h, 220 at 2 h; small points are noisy).

Each point lives in ``--out/<generator>/<hours>h/seed<k>/`` (``corpus``,
``cache``, ``lm``, ``recognition`` with its ``eval_test``); finished steps are
reused, so a killed bench resumes. ``--out`` remembers the settings that
shape results (overrides, LM text, book, tuning beam) and refuses others.

It prints, per generator, WER/CER at each amount of data (mean +- sd over
seeds), the power law ``err = a * hours^-b`` fitted by least squares in
log-log to every seed's point at its actual hours
(:func:`silentspeech.scaling.fit_power_law`), and its extrapolation to 10 and
20 h (the order of the Gaddy corpus); the same table goes to
``--out/scaling.md`` and a log-log plot to ``--out/scaling.png``. A seed takes 2 to
3 hours on 2 cores (estimated from the quickstart's stage times: writing the
default generator's corpora is about half of it), so ``make bench`` (no
``--run``) only prints a skipped section.

    .venv/bin/python bench/scaling.py --run --threads 2 [--hours 0.25 0.5 1 2] [--generators default independent] [--seeds 0 1 2] [--out runs/scaling] [--book FILE] [--lm-text FILE] [--override KEY=VALUE ...] [--markdown]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.features import FRAME_RATE
from silentspeech.scaling import fit_power_law, power_law

TITLE = "Scaling curve: test WER/CER against hours of training utterances"
GENERATORS = ("default", "independent")
#: Fewest utterances a default-generator corpus may have (plan_corpus's floor).
MIN_UTTERANCES = 10
#: Column -> (decoder, error rate) of an evaluation summary's silent test utterances.
METRICS = {"greedy WER %": ("greedy", "wer"), "greedy CER %": ("greedy", "cer"), "beam WER %": ("beam", "wer"), "beam CER %": ("beam", "cer")}
EXTRAPOLATE_HOURS = (10.0, 20.0)
SETTINGS = "scaling_settings.json"


def training_hours(cache: Path) -> float:
    """Hours of the train split in a cache's manifest."""
    from silentspeech.data.cache import read_manifest

    return sum(e["n_frames"] for e in read_manifest(cache)["utterances"] if e["split"] == "train") / FRAME_RATE / 3600


@dataclass(frozen=True)
class Point:
    """One corpus size of one generator with one seed, and where its outputs lie."""

    generator: str
    hours: float
    seed: int
    folder: Path

    def run(self, args: argparse.Namespace) -> dict:
        """Make whatever of corpus, cache, LM, model and evaluation is missing; returns ``{"hours": actual, metric: %, "n": test utterances}``."""
        from silentspeech.data.cache import MANIFEST, prepare_cache
        from silentspeech.decoding.ngram import build_lm
        from silentspeech.evaluation.recognition import evaluate_recognition, tune_lm
        from silentspeech.quickstart.run import train_side_by_side

        corpus, cache, lm, run = (self.folder / name for name in ("corpus", "cache", "lm/lm.arpa", "recognition"))
        if not (cache / MANIFEST).is_file():  # a finished cache means a finished corpus
            if self.generator == "default":
                from silentspeech.data.synthetic.speech import generate_corpus, utterances_for_hours

                print(generate_corpus(corpus, utterances=utterances_for_hours(self.hours), seed=self.seed, workers=args.workers))
            else:
                from silentspeech.data.synthetic.independent import generate_independent_corpus

                print(generate_independent_corpus(corpus, hours=self.hours, seed=self.seed, book=args.book, workers=args.workers))
            print(prepare_cache(corpus, cache, workers=args.workers).summary())
        if not lm.is_file():
            build_lm([corpus, *([args.lm_text] if args.lm_text else [])], lm, order=4)
        train_side_by_side("recognition", [(run, [f"seed={self.seed}", *args.override])], cache, corpus)
        summary_path = run / "eval_test" / "summary.json"
        if not summary_path.is_file():
            print(tune_lm(run, lm, cache=cache, split="dev", beam_width=args.beam_width).summary())
            evaluate_recognition(run, split="test", cache=cache, lm=lm)
        summary = json.loads(summary_path.read_text())
        rates = {column: 100 * summary[decoder]["silent"][rate] for column, (decoder, rate) in METRICS.items()}
        return {"hours": training_hours(cache), "n": summary["greedy"]["silent"]["utterances"], **rates}


def spread(values: list[float]) -> str:
    """``mean +- sd`` of ``values`` (just the value for one)."""
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def scaling_rows(results: dict[str, dict[float, list[dict]]]) -> tuple[list[list[str]], dict]:
    """Table rows (per generator: each amount of data, the power law, its extrapolations) and the fits for the plot."""
    rows, panels = [], {metric: {} for metric in METRICS}
    for generator, by_hours in results.items():
        for hours, points in by_hours.items():
            rows.append([generator, f"{hours:g}", f"{statistics.mean(p['hours'] for p in points):.3f}", str(points[0]["n"]),
                         *(spread([p[m] for p in points]) for m in METRICS)])
        fits, at = [], {h: [] for h in EXTRAPOLATE_HOURS}
        for metric in METRICS:
            points = [p for ps in by_hours.values() for p in ps]
            try:
                fit = fit_power_law([p["hours"] for p in points], [p[metric] for p in points])
            except ValueError:  # one amount of data, or an error of 0
                fit = None
            panels[metric][generator] = ([p["hours"] for p in points], [p[metric] for p in points], fit)
            fits.append("n/a" if fit is None else f"a {fit[0]:.1f}, b {fit[1]:.3f}")
            for h in EXTRAPOLATE_HOURS:
                at[h].append("n/a" if fit is None else f"{float(power_law(*fit, h)):.1f}")
        rows.append([generator, "power law a * h^-b", "", "", *fits])
        rows += [[generator, f"-> {h:g} h (extrapolated)", "", "", *values] for h, values in at.items()]
    return rows, panels


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a one-line error for settings no point could run with."""
    from silentspeech.data.synthetic.speech import TRAINING_HOURS_PER_UTTERANCE

    problems = [f"unknown generator {g!r} (choose from {', '.join(GENERATORS)})" for g in args.generators if g not in GENERATORS]
    problems += [f"--hours must be positive, got {h:g}" for h in args.hours if h <= 0]
    if "default" in args.generators:
        problems += [f"--hours {h:g} is {round(h / TRAINING_HOURS_PER_UTTERANCE)} utterances of the default generator; it needs at least {MIN_UTTERANCES}"
                     for h in args.hours if 0 < h and round(h / TRAINING_HOURS_PER_UTTERANCE) < MIN_UTTERANCES]
    problems += [f"--seeds must be >= 0, got {s}" for s in args.seeds if s < 0]
    problems += [f"--override {o!r} is not KEY=VALUE" for o in args.override if "=" not in o]
    problems += [f"{flag} {path}: no such file" for flag, path in (("--book", args.book), ("--lm-text", args.lm_text)) if path and not path.is_file()]
    if problems:
        parser.exit(2, f"{parser.prog}: error: {problems[0]}\n")


def check_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Record in ``--out`` what shapes its results, or exit with one line when it holds results made otherwise."""
    settings = {"override": args.override, "lm_text": str(args.lm_text and args.lm_text.resolve()), "book": str(args.book and args.book.resolve()),
                "beam_width": args.beam_width}
    path = args.out / SETTINGS
    if path.is_file() and json.loads(path.read_text()) != settings:
        parser.exit(2, f"{parser.prog}: error: {path} holds results made with {path.read_text()!r:.300}; use another --out for {settings}\n")
    atomic_write_json(path, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section for bench/results.md")
    parser.add_argument("--run", action="store_true", help="run the bench (hours); without it a skipped section is printed")
    parser.add_argument("--hours", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0], help="hours of training utterances (default 0.25 0.5 1 2)")
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), help=f"corpus generators (default {' '.join(GENERATORS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="corpus and training seeds (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/scaling"), help="folder of every point's outputs (default runs/scaling)")
    parser.add_argument("--book", type=Path, default=None, help="plain-text book whose sentences the independent generator speaks (default: its grammar)")
    parser.add_argument("--lm-text", type=Path, default=None, help="text (e.g. a book) added to every LM beside the corpus's training prompts")
    parser.add_argument("--override", nargs="+", default=[], help="extra KEY=VALUE overrides of the recognition recipe")
    parser.add_argument("--beam-width", type=int, default=100, help="beam of the LM tuning on dev, kept for test (default 100, tune-lm's)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing corpora and caches (default 2)")
    args = parser.parse_args()
    check_arguments(parser, args)
    # Torch loads only now (seconds): bad arguments are refused at once.
    from silentspeech.benchmark import print_report, print_skipped, set_threads, stdout_to_stderr

    set_threads(args.threads)
    if not args.run:
        print_skipped(TITLE, "takes 2 to 3 hours a seed on 2 cores: 2 generators x 4 corpora, written, trained and scored",
                      args.threads, args.markdown)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    check_settings(parser, args)
    results: dict[str, dict[float, list[dict]]] = {}
    with stdout_to_stderr():
        for generator in args.generators:
            for hours in args.hours:
                for seed in args.seeds:
                    point = Point(generator, hours, seed, args.out / generator / f"{hours:g}h" / f"seed{seed}")
                    results.setdefault(generator, {}).setdefault(hours, []).append(point.run(args))
    rows, panels = scaling_rows(results)
    headers = ["generator", "hours asked", "hours trained", "silent test utts", *METRICS]
    notes = [f"recipes/synthetic/recognition.yaml (overrides: {' '.join(args.override) or 'none'}), seeds {' '.join(map(str, args.seeds))}; "
             f"WER/CER of each corpus's silent test utterances, mean +- sd over seeds; power law fitted in log-log to every seed's point "
             f"at its trained hours. Outputs in {args.out}."]
    section = io.StringIO()
    with contextlib.redirect_stdout(section):
        print_report(TITLE, headers, rows, args.threads, True, notes)
    atomic_write_text(args.out / "scaling.md", section.getvalue())
    from silentspeech.figures import save_figure, scaling_figure

    save_figure(scaling_figure(panels, max(EXTRAPOLATE_HOURS)), args.out / "scaling.png")
    print_report(TITLE, headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
