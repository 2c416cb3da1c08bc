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


def _add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lm_action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser(
        "build",
        help="estimate a word n-gram LM (modified Kneser-Ney) and write it as ARPA",
        description="Estimate a word n-gram LM on normalised text and write ARPA (KenLM's lmplz/build_binary "
        "are used when on PATH). Held-out sentences never enter: corpus roots exclude their dev/test prompts.",
    )
    build.add_argument(
        "corpora", nargs="+", type=Path,
        help="books (plain text; Gutenberg header/footer stripped), sentence-per-line files (--lines) "
        "or Gaddy/synthetic corpus roots (their training prompts)",
    )
    build.add_argument("--order", type=int, default=4, help="n-gram order (default 4)")
    build.add_argument("--out", type=Path, required=True, help="ARPA file to write, e.g. lm/books_4gram.arpa")
    build.add_argument(
        "--exclude", type=Path, action="append", default=[], metavar="PATH",
        help="sentences to keep out (repeatable): a sentence-per-line file, a cache manifest.json (non-train "
        "texts), a corpus root (its dev/test prompts) or a split file (testset_largedev.json format)",
    )
    build.add_argument(
        "--corpus-root", type=Path, action="append", default=[], metavar="DIR",
        help="corpus root where a split file given with --exclude finds its prompt texts",
    )
    build.add_argument("--keep-held-out", action="store_true", help="corpus roots contribute their dev/test prompts too")
    build.add_argument("--lines", action="store_true", help="text files hold one sentence per line (not prose)")
    score = actions.add_parser(
        "perplexity",
        help="perplexity of held-out text under an LM (ours and KenLM's)",
        description="Perplexity of held-out text under an ARPA LM, scored by our reader and by kenlm.Model.",
    )
    score.add_argument("lm", type=Path, help="ARPA file (or KenLM binary: KenLM's score only)")
    score.add_argument("texts", nargs="+", type=Path, help="books or sentence-per-line files (--lines)")
    score.add_argument("--lines", action="store_true", help="text files hold one sentence per line (not prose)")


def _run_lm(args: argparse.Namespace) -> int:
    from silentspeech import lm

    if args.lm_action == "build":
        report = lm.build_lm(
            args.corpora, args.out, args.order, args.exclude, args.corpus_root, args.keep_held_out, args.lines
        )
        print(f"wrote {report.arpa} ({report.estimator}, order {report.order})")
        if report.binary:
            print(f"wrote {report.binary} (KenLM binary)")
        print(f"{report.sentences} sentences, {report.words} words; {report.excluded} held-out sentences excluded")
        print("n-grams: " + ", ".join(f"{n}-grams {c}" for n, c in enumerate(report.counts, start=1)))
        return 0
    sentences = [s for path in args.texts for s in lm.text_sentences(path, args.lines)]
    scorers = [("kenlm", lambda: lm.kenlm_perplexity(args.lm, sentences))]
    if not lm.is_kenlm_binary(args.lm):
        scorers.insert(0, ("ours", lambda: lm.perplexity(lm.read_arpa(args.lm), sentences)))
    for name, score in scorers:
        result = score()
        print(
            f"{name:>5}: perplexity {result.perplexity:.2f} over {result.tokens} tokens "
            f"({result.sentences} sentences; OOV {result.oov} words, {100 * result.oov / (result.tokens - result.sentences):.2f} %)"
        )
    return 0


# --- parser ----------------------------------------------------------------

#: (name, help, add_arguments, run) for every subcommand, in --help order.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
    ("inspect", "Summarise a Gaddy-layout corpus: sessions, counts, hours, splits and problems.", _add_inspect_arguments, _run_inspect),
    ("prepare", "Preprocess a Gaddy-layout corpus into a cache of EMG, acoustic features and phonemes.", _add_prepare_arguments, _run_prepare),
    ("lm", "Build word n-gram language models (ARPA) and score held-out perplexity.", _add_lm_arguments, _run_lm),
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
