"""Subcommands on corpora: write a synthetic one (``synth-corpus``), summarise one (``inspect``), cache one (``prepare``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from silentspeech.cli.common import CLIError, Command


#: ``synth-corpus --generator`` names: the default corpus, and one written independently of it to check
#: that a recipe learns EMG in general rather than one generator (docs/design.md).
GENERATORS = ("default", "independent")


def _add_synth_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (created; a folder of the same settings is completed)")
    parser.add_argument(
        "--generator", default="default", metavar="NAME",
        help="default (generator 5, prompts of our grammar spoken by espeak-ng) or independent (another articulatory and "
        "motor-unit model and other sentences: for checking that a recipe learns EMG, never for tuning one)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--utterances", type=int, default=None, help="spoken utterances, at least 10 (default 300)")
    size.add_argument("--hours", type=float, default=None, help="about this many hours of training utterances instead of a count")
    parser.add_argument("--book", type=Path, default=None, help="independent generator: take the sentences from this plain-text book")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files (default 0)")
    parser.add_argument("--sessions", type=int, default=3, help="parallel recording sessions 5-4, 5-5, ... (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering utterances; the files are the same for any number (default 2)")


def _run_synth_corpus(args: argparse.Namespace) -> int:
    if args.generator not in GENERATORS:
        raise CLIError(f"unknown generator {args.generator!r}; choose one of {', '.join(GENERATORS)}")
    if args.utterances is not None and args.utterances <= 0:
        raise CLIError(f"--utterances must be a positive count (got {args.utterances})")
    if args.hours is not None and not args.hours > 0:
        raise CLIError(f"--hours must be positive (got {args.hours})")
    if args.generator == "independent":
        from silentspeech.data.synthetic.independent import generate_independent_corpus

        utterances = args.utterances if args.utterances is not None or args.hours is not None else 300
        summary = generate_independent_corpus(
            args.out, utterances=utterances, hours=args.hours, seed=args.seed, book=args.book, sessions=args.sessions, workers=args.workers
        )
    else:
        from silentspeech.data.synthetic.speech import generate_corpus, utterances_for_hours

        if args.book is not None:
            raise CLIError("--book is for --generator independent; the default generator speaks its own grammar")
        utterances = utterances_for_hours(args.hours) if args.hours is not None else args.utterances or 300
        summary = generate_corpus(args.out, utterances=utterances, seed=args.seed, sessions=args.sessions, workers=args.workers)
    print(summary)
    return 0


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="Gaddy-layout corpus folder (emg_data, or the folder holding it)")
    parser.add_argument(
        "--split-file",
        type=Path,
        help="dev/test sentence lists (testset_largedev.json format); default: the corpus's own testset*.json, "
        "else a stable hash split",
    )
    parser.add_argument("--closed-vocab", action="store_true", help="use the closed-vocabulary subset (dates and times)")
    parser.add_argument("--alignments", type=Path, help="MFA TextGrid folder (default ROOT/text_alignments)")
    parser.add_argument("--rate", type=float, default=1000.0, help="sampling rate of the corpus's EMG, Hz (default 1000, Gaddy's; 250-20000)")
    parser.add_argument("--channels", type=int, default=8, help="EMG channels of the corpus (default 8, Gaddy's)")


def _corpus_preprocessing(args: argparse.Namespace, **constants: object):
    """The :class:`~silentspeech.preprocessing.EMGPreprocessing` of ``--rate`` and ``--channels`` (and ``constants``)."""
    from silentspeech.preprocessing import EMGPreprocessing

    return EMGPreprocessing(rate=args.rate, channels=args.channels, **constants)


def _add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="read headers only; skip the NaN check of every EMG array")


def _run_inspect(args: argparse.Namespace) -> int:
    from silentspeech.data.gaddy import read_corpus

    corpus = read_corpus(
        args.root, args.split_file, args.closed_vocab, check_values=not args.quick, alignments=args.alignments,
        preprocessing=_corpus_preprocessing(args),
    )
    print(corpus.summary())
    if not args.quick:
        from silentspeech.emg_statistics import REAL_REFERENCE, corpus_emg_statistics

        stats = corpus_emg_statistics(corpus.utterances, rate=args.rate)
        if stats is not None:
            print(f"EMG shape (60 Hz notches; 20 Hz high-pass, the 2-20 Hz share after 2 Hz): {stats}")
            print(f"  real facial EMG for comparison (EMG-UKA, 5 silent sentences): {REAL_REFERENCE}")
    return 0


def _add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; an interrupted run resumes)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 0 = in this process)")
    parser.add_argument("--n-mfcc", type=int, default=80, help="MFCC per frame (default 80, exactly invertible)")
    parser.add_argument("--mains", type=float, default=60.0, help="mains frequency to notch, Hz (default 60; 50 in Europe)")
    parser.add_argument(
        "--notch-harmonics", type=int, default=7, help="notch mains x 1..N (default 7: 60..420 Hz, the Gaddy reference's)"
    )


def _run_prepare(args: argparse.Namespace) -> int:
    from silentspeech.data.cache import prepare_cache

    report = prepare_cache(
        args.root,
        args.out,
        split_file=args.split_file,
        workers=args.workers,
        n_mfcc=args.n_mfcc,
        closed_vocab=args.closed_vocab,
        preprocessing=_corpus_preprocessing(args, mains=args.mains, notch_harmonics=args.notch_harmonics),
        alignments=args.alignments,
    )
    print(report.summary())
    return 0


# --- the subcommands ---------------------------------------------------------

SYNTH_CORPUS = Command(
    "synth-corpus",
    "Write a synthetic EMG/speech corpus in the Gaddy layout, with its split file.",
    _add_synth_corpus_arguments,
    _run_synth_corpus,
)
INSPECT = Command(
    "inspect",
    "Summarise a Gaddy-layout corpus: sessions, counts, hours, splits and problems.",
    _add_inspect_arguments,
    _run_inspect,
)
PREPARE = Command(
    "prepare",
    "Preprocess a Gaddy-layout corpus into a cache of EMG, acoustic features and phonemes.",
    _add_prepare_arguments,
    _run_prepare,
)
