"""The ``silentspeech`` command line.

Each subcommand is a small function here that parses arguments and calls the
library; the work itself lives in the library modules. ``silentspeech
COMMAND --help`` documents each one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger("silentspeech")


class CLIError(Exception):
    """An error to print as one line, without a traceback."""


# --- subcommands -----------------------------------------------------------


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


def _add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="read headers only; skip the NaN check of every EMG array")


def _run_inspect(args: argparse.Namespace) -> int:
    from silentspeech.data.gaddy import read_corpus

    corpus = read_corpus(
        args.root, args.split_file, args.closed_vocab, check_values=not args.quick, alignments=args.alignments
    )
    print(corpus.summary())
    return 0


def _add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; an interrupted run resumes)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 0 = in this process)")
    parser.add_argument("--n-mfcc", type=int, default=80, help="MFCC per frame (default 80, exactly invertible)")
    parser.add_argument("--mains", type=float, default=60.0, help="mains frequency to notch, Hz (default 60; 50 in Europe)")


def _run_prepare(args: argparse.Namespace) -> int:
    from silentspeech.data.cache import prepare_cache
    from silentspeech.signals import EMGPreprocessing

    report = prepare_cache(
        args.root,
        args.out,
        split_file=args.split_file,
        workers=args.workers,
        n_mfcc=args.n_mfcc,
        closed_vocab=args.closed_vocab,
        preprocessing=EMGPreprocessing(mains=args.mains),
        alignments=args.alignments,
    )
    print(report.summary())
    return 0


# --- parser ----------------------------------------------------------------

#: (name, help, add_arguments, run) for every subcommand, in --help order.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
    ("inspect", "Summarise a Gaddy-layout corpus: sessions, counts, hours, splits and problems.", _add_inspect_arguments, _run_inspect),
    ("prepare", "Preprocess a Gaddy-layout corpus into a cache of EMG, acoustic features and phonemes.", _add_prepare_arguments, _run_prepare),
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="silentspeech",
        description="Silent speech from surface EMG: corpora, training, decoding, vocoding, evaluation and export.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text, add_arguments, run in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``silentspeech`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (CLIError, ValueError, FileNotFoundError) as err:
        # Library errors carry the file and the problem; a traceback adds nothing for a user.
        if args.verbose:
            raise
        print(f"silentspeech {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
