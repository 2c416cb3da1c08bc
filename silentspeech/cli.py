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


# --- parser ----------------------------------------------------------------

#: (name, help, add_arguments, run) for every subcommand, in --help order.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
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
