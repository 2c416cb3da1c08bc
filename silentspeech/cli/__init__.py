"""The ``silentspeech`` command line: the top-level parser and :func:`main`.

Each subcommand is a small function pair (add its arguments, run it) that
parses arguments and calls the library; the work itself lives in the library
modules. The pairs live with their kind: corpora (:mod:`.corpus`), language
models and recognition scores (:mod:`.lm`), training and export
(:mod:`.training`), running models on recordings (:mod:`.speech`), live sources (:mod:`.live`) and the
demo (:mod:`.demo`). ``silentspeech COMMAND --help`` documents each one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from silentspeech.cli import corpus, demo, live, lm, speech, training
from silentspeech.cli.common import CLIError, Command

#: Every subcommand, in --help order: the main job first, then a corpus's way from raw files to a deployed model.
COMMANDS: tuple[Command, ...] = (
    training.QUICKSTART,
    live.RECORD,
    corpus.SYNTH_CORPUS,
    corpus.INSPECT,
    corpus.PREPARE,
    lm.LM,
    training.TRAIN,
    speech.VOCODER,
    lm.EVALUATE,
    lm.TUNE_LM,
    training.DISTILL,
    training.EXPORT,
    speech.VOICE,
    speech.EVALUATE_PRODUCTION,
    speech.STREAM,
    live.LIVE,
    demo.DEMO,
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="silentspeech",
        description="Silent speech from surface EMG: corpora, training, decoding, vocoding, evaluation and export.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        subparser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
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
    except (CLIError, ValueError, OSError) as err:
        # Library errors carry the file and the problem, and OSError its path (an output folder that
        # is a file or read-only, a full disk): a traceback adds nothing for a user. DeviceError and
        # RecipeError are ValueErrors.
        if args.verbose:
            raise
        print(f"silentspeech {args.command}: error: {str(err) or type(err).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the sources' context managers have released their boards on the way out
        print(f"\nsilentspeech {args.command}: interrupted", file=sys.stderr)
        return 130
