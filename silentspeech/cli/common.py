"""What the subcommand modules share: the :class:`Command` record, the one-line :class:`CLIError`, and the options
several subcommands spell the same way (``--device``; ``--alpha``, ``--beta`` and ``--beam``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

# The --device vocabulary: the runtime module is light (--help stays fast).
from silentspeech.runtime import DEVICE_CHOICES


class CLIError(Exception):
    """An error to print as one line, without a traceback."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, its one-line help, what adds its arguments to its parser and what runs it.

    ``run`` returns the exit status (``None`` counts as 0).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by :func:`silentspeech.runtime.pick_device` (CUDA without a GPU: a one-line error)."""
    parser.add_argument(
        "--device", default="auto", metavar="{" + ",".join(DEVICE_CHOICES) + ",cuda:N}",
        help="where the models run: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (default: %(default)s)",
    )


def add_beam_search_arguments(parser: argparse.ArgumentParser) -> None:
    """--alpha, --beta and --beam, resolved by :func:`silentspeech.decoding.settings.resolve_lm_settings`."""
    parser.add_argument("--alpha", type=float, help="LM weight (default: tuned, else 0.5)")
    parser.add_argument("--beta", type=float, help="word insertion bonus (default: tuned, else 1.5)")
    parser.add_argument("--beam", type=int, help="beam width (default: tuned, else 250)")
