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


def add_board_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--board and how to reach it (--serial-port, --ip-address, --ip-port, --master, --timeout, --channels),
    opened by :func:`open_board`."""
    from silentspeech.acquisition import (
        BOARD_SPEC_HELP,
        DEFAULT_IP_ADDRESS,
        DEFAULT_IP_PORT,
        DEFAULT_PLAYBACK_MASTER,
        DEFAULT_SERIAL_PORT,
        DEFAULT_TIMEOUT_S,
    )

    parser.add_argument("--board", required=required, metavar="SPEC", help=f"live EMG source: {BOARD_SPEC_HELP}")
    parser.add_argument("--serial-port", default=DEFAULT_SERIAL_PORT, help="serial port of a dongle board such as cyton (default: %(default)s)")
    parser.add_argument("--ip-address", default=DEFAULT_IP_ADDRESS, help="address of a WiFi board such as cyton-wifi (default: %(default)s)")
    parser.add_argument("--ip-port", type=int, default=DEFAULT_IP_PORT, help="local port a WiFi board streams to (default: %(default)s)")
    parser.add_argument("--master", default=DEFAULT_PLAYBACK_MASTER, help="board whose rate and layout a playback:FILE has (default: %(default)s, 1000 Hz)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for a board or an LSL stream (default: %(default)g)")
    parser.add_argument("--channels", help="1-based EMG channels of the source to use, e.g. 1-8 (default: all its EXG channels)")


def open_board(args: argparse.Namespace, channels: int):
    """The :class:`~silentspeech.acquisition.sources.EMGSource` of :func:`add_board_arguments`' options, open and streaming.

    ``channels`` is what the consumer takes (the model's or the corpus's):
    a source delivering another count is closed and refused in one line naming it.
    """
    from silentspeech.acquisition.sources import Connection, open_source, parse_channels

    picked = None if args.channels is None else parse_channels(args.channels)
    connection = Connection(args.serial_port, args.ip_address, args.ip_port, args.master, args.timeout)
    source = open_source(args.board, connection, picked)
    if source.channels != channels:
        source.close()
        hint = f"; choose {channels} with --channels (e.g. --channels 1-{channels})" if source.channels > channels else ""
        raise CLIError(f"{source.name}: delivers {source.channels} EMG channels but {channels} are needed{hint}")
    return source
