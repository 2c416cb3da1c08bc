"""EMG sources: BrainFlow boards and Lab Streaming Layer inlets behind one interface.

An :class:`EMGSource` is a context manager (entering it gives the open
source; leaving it, by an exception or Ctrl-C included, stops the stream and
releases the board) whose :meth:`~EMGSource.blocks` yields raw EMG blocks
``(samples, channels)`` float64 in the board's units (microvolts for OpenBCI
boards), each with its *arrival*: the ``time.perf_counter()`` at which its
newest sample reached this computer, from the source's own timestamps (a
block read late, while the consumer was busy, arrived earlier than it was
read, and latencies count from its arrival). Every
source knows its sampling :attr:`~EMGSource.rate` (Hz) and
:attr:`~EMGSource.channel_names`.

:func:`open_source` reads a spec (the ``--board`` of ``record``, ``live`` and
``demo``): ``synthetic`` (BrainFlow's synthetic board, no hardware),
``cyton`` (OpenBCI Cyton on its serial dongle), ``cyton-wifi`` (Cyton on the
WiFi shield), ``playback:FILE`` (a file in BrainFlow's format replayed at its
recording speed by BrainFlow's playback board, which takes its rate and
layout from a master board: ``cyton-wifi`` unless told), any other BrainFlow
board by id or name (``1`` or ``ganglion``), or ``lsl:STREAM_NAME`` (the
first LSL stream of that name, waited for ``timeout`` seconds). Any failure to
open is an :class:`AcquisitionError`, one line naming the source.

Dropped samples: BrainFlow boards carry a package counter that steps by one
per sample modulo 256; a jump means samples were lost on the way (WiFi
congestion, a full buffer). :class:`PackageCounter` counts them and logs each
skip, as the reference recorder prints them (docs/design.md, *Live acquisition*).
LSL carries no counter: its sources report no drops.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from silentspeech.acquisition import (
    BOARD_SPEC_HELP,
    DEFAULT_IP_ADDRESS,
    DEFAULT_IP_PORT,
    DEFAULT_PLAYBACK_MASTER,
    DEFAULT_SERIAL_PORT,
    DEFAULT_TIMEOUT_S,
)

log = logging.getLogger(__name__)

#: The board names of the reference recorder's three set-ups, for ``--board``.
BOARD_ALIASES = {"synthetic": "SYNTHETIC_BOARD", "cyton": "CYTON_BOARD", "cyton-wifi": "CYTON_WIFI_BOARD"}
#: BrainFlow's package counter wraps at this value (one byte).
PACKAGE_MODULUS = 256
#: Seconds between polls of a board's buffer (the reference recorder's loop sleeps about as long).
POLL_S = 0.005
#: A live source that delivers nothing for this long is reported lost, seconds.
NO_DATA_TIMEOUT_S = 5.0


class AcquisitionError(ValueError):
    """A source that cannot be opened or read: one line naming it and the problem."""


@dataclass(frozen=True)
class Connection:
    """How to reach a board; fields a board does not use are ignored."""

    serial_port: str = DEFAULT_SERIAL_PORT
    ip_address: str = DEFAULT_IP_ADDRESS
    ip_port: int = DEFAULT_IP_PORT
    #: The playback board's master (its rate and row layout): a ``--board`` name or id.
    master: str = DEFAULT_PLAYBACK_MASTER
    #: Seconds to wait for a board to answer or an LSL stream to appear.
    timeout: float = DEFAULT_TIMEOUT_S


def _brainflow():
    """The BrainFlow modules, imported on first use (the CLI's --help stays fast)."""
    # brainflow 5.23 loads its native library through the deprecated pkg_resources on Python < 3.12 (pyproject.toml).
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from brainflow import board_shim, data_filter

    board_shim.BoardShim.disable_board_logger()  # its errors become our one-line AcquisitionError instead
    return board_shim, data_filter


def board_id(name: str) -> int:
    """BrainFlow board id of a ``--board`` name (an alias, a BoardIds name with or without ``_BOARD``, or a number)."""
    board_shim, _ = _brainflow()
    ids = board_shim.BoardIds
    key = BOARD_ALIASES.get(name.lower(), name.upper().replace("-", "_"))
    if re.fullmatch(r"-?\d+", name):
        number = int(name)
        if number not in {member.value for member in ids}:
            raise AcquisitionError(f"unknown board {name!r}: BrainFlow has no board id {number}")
        return number
    for candidate in (key, key + "_BOARD"):
        if candidate in ids.__members__:
            return ids[candidate].value
    raise AcquisitionError(f"unknown board {name!r}: use {BOARD_SPEC_HELP}")


def parse_channels(text: str) -> list[int]:
    """``"1-8"`` or ``"1,3,5-7"`` -> 1-based channel numbers ``[1, ..., 8]``; ValueError for anything else."""
    numbers = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ValueError(f"--channels {text!r}: expected 1-based channel numbers such as 1-8 or 1,2,5")
        numbers += range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1)
    return numbers


def _pick(available: int, channels: Sequence[int] | None, source: str) -> list[int]:
    """0-based indices of the 1-based ``channels`` among ``available`` (all when None)."""
    if channels is None:
        return list(range(available))
    beyond = [c for c in channels if c > available]
    if beyond:
        raise AcquisitionError(f"{source}: has {available} EMG channels, no channel {beyond[0]} (--channels)")
    return [c - 1 for c in channels]


class PackageCounter:
    """Counts samples lost between blocks from a counter that steps by one per sample modulo :data:`PACKAGE_MODULUS`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.last: int | None = None
        #: Samples lost so far, and the number of separate skips.
        self.dropped = 0
        self.skips = 0

    def update(self, numbers: np.ndarray) -> int:
        """Feed a block's counter values ``(samples,)``; returns the samples lost before and within it."""
        numbers = np.asarray(numbers).astype(np.int64) % PACKAGE_MODULUS
        if numbers.size == 0:
            return 0
        previous = np.concatenate([[numbers[0] - 1 if self.last is None else self.last], numbers[:-1]])
        gaps = (numbers - previous - 1) % PACKAGE_MODULUS
        for at in np.flatnonzero(gaps):
            log.warning("%s: skip from package %d to %d (%d samples lost)", self.source, previous[at], numbers[at], gaps[at])
        self.last = int(numbers[-1])
        lost = int(gaps.sum())
        self.dropped += lost
        self.skips += int(np.count_nonzero(gaps))
        return lost


class EMGSource:
    """Raw EMG blocks from a device or stream; see the module docstring. Subclasses open in ``__init__``."""

    #: What the source is, for messages: e.g. ``"board cyton-wifi (192.168.4.1:8001)"``.
    name: str
    #: Sampling rate, Hz.
    rate: float
    #: One name per delivered channel.
    channel_names: list[str]
    #: Samples lost so far (from the package counter; 0 where the source has none).
    dropped: int = 0

    @property
    def channels(self) -> int:
        """Channels per block."""
        return len(self.channel_names)

    def blocks(self) -> Iterator[tuple[np.ndarray, float]]:
        """Yield ``(block (samples, channels) float64, arrival perf_counter s of its newest sample)`` until the source ends or fails."""
        raise NotImplementedError

    def flush(self) -> None:
        """Discard what the source has buffered, so the next block starts now (between two recordings)."""

    def close(self) -> None:
        """Stop the stream and release the device; safe to call twice."""

    def __enter__(self) -> "EMGSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BrainFlowSource(EMGSource):
    """A BrainFlow board's EXG channels (:meth:`BoardShim.get_exg_channels`), opened and streaming.

    Args:
        board: BrainFlow board id (:func:`board_id`).
        name: the spec it came from, for messages.
        connection: serial port, address and timeout (only what the board uses is passed on).
        channels: 1-based EXG channels to deliver; None: all.
        playback: a BrainFlow-format file to replay (``board`` is then the playback board's master).
    """

    def __init__(
        self, board: int, name: str, connection: Connection = Connection(),
        channels: Sequence[int] | None = None, playback: str | os.PathLike | None = None,
    ) -> None:
        board_shim, _ = _brainflow()
        shim, ids = board_shim.BoardShim, board_shim.BoardIds
        self._error = board_shim.BrainFlowError
        params = board_shim.BrainFlowInputParams()
        params.timeout = int(np.ceil(connection.timeout))
        if playback is not None:
            playback = Path(playback)
            if not playback.is_file():
                raise AcquisitionError(f"playback file {playback}: {'not a regular file' if playback.exists() else 'no such file'}")
            with open(playback, "rb") as handle:  # its sample count: the replay ends when all have come
                self.end_samples = sum(1 for line in handle if line.strip())
            if self.end_samples == 0:
                raise AcquisitionError(f"playback file {playback}: holds no samples")
            params.file, params.master_board = str(playback), board
            opened, where = ids.PLAYBACK_FILE_BOARD.value, f"playback of {playback} (master {name})"
        else:
            self.end_samples = None
            params.serial_port, params.ip_address, params.ip_port = connection.serial_port, connection.ip_address, connection.ip_port
            opened, where = board, f"board {name}"
            if board in (ids.CYTON_BOARD.value, ids.CYTON_DAISY_BOARD.value, ids.GANGLION_BOARD.value):
                where += f" (serial port {connection.serial_port})"
            elif board in (ids.CYTON_WIFI_BOARD.value, ids.CYTON_DAISY_WIFI_BOARD.value, ids.GANGLION_WIFI_BOARD.value):
                where += f" ({connection.ip_address}:{connection.ip_port})"
        self.name = where
        try:
            self.rate = float(shim.get_sampling_rate(board))
            exg = shim.get_exg_channels(board)
            self.package_row = shim.get_package_num_channel(board)
            self.timestamp_row = shim.get_timestamp_channel(board)
        except board_shim.BrainFlowError as err:
            raise AcquisitionError(f"{where}: BrainFlow describes no EXG channels for it ({_reason(err)})") from None
        self.rows = [exg[i] for i in _pick(len(exg), channels, where)]
        self.channel_names = [f"EXG{exg.index(row) + 1}" for row in self.rows]
        self.counter = PackageCounter(where)
        self.board = shim(opened, params)
        try:
            self.board.prepare_session()
            self.board.start_stream()
        except board_shim.BrainFlowError as err:
            self.close()
            raise AcquisitionError(f"{where}: cannot be opened ({_reason(err)})") from None
        self.delivered = 0

    @property
    def dropped(self) -> int:
        return self.counter.dropped

    def blocks(self) -> Iterator[tuple[np.ndarray, float]]:
        last_data = time.perf_counter()
        while self.end_samples is None or self.delivered < self.end_samples:
            data = self.board.get_board_data()
            now = time.perf_counter()
            if data.shape[1]:
                self.counter.update(data[self.package_row])
                self.delivered += data.shape[1]
                last_data = now
                # BrainFlow stamps each sample (Unix seconds) as it takes it in from the board.
                arrival = min(now, now - (time.time() - data[self.timestamp_row, -1]))
                yield np.ascontiguousarray(data[self.rows].T, dtype=np.float64), arrival
            elif now - last_data > NO_DATA_TIMEOUT_S:
                if self.end_samples is not None:
                    log.warning("%s: ended after %d of its %d samples", self.name, self.delivered, self.end_samples)
                    return
                raise AcquisitionError(f"{self.name}: no data for {NO_DATA_TIMEOUT_S:g} s (switched off, out of range or unplugged?)")
            time.sleep(POLL_S)

    def flush(self) -> None:
        data = self.board.get_board_data()
        if data.shape[1]:
            self.counter.update(data[self.package_row])
            self.delivered += data.shape[1]

    def close(self) -> None:
        board = getattr(self, "board", None)
        if board is None:
            return
        self.board = None
        try:
            if board.is_prepared():
                try:
                    board.stop_stream()
                except self._error:  # never started
                    pass
                board.release_session()
        except Exception as err:  # releasing must not hide the error that brought us here
            log.warning("%s: release failed (%s)", self.name, err)


def _reason(err: Exception) -> str:
    """BrainFlow's exit-code name (``UNABLE_TO_OPEN_PORT_ERROR``) of one of its errors, else its message."""
    board_shim, _ = _brainflow()
    try:
        return board_shim.BrainFlowExitCodes(err.exit_code).name
    except (AttributeError, ValueError):
        return str(err)


class LSLSource(EMGSource):
    """The first Lab Streaming Layer stream named ``stream``: its channels at its nominal rate.

    Raises :class:`AcquisitionError` when no such stream appears within
    ``timeout`` seconds or it has an irregular rate. The stream ends when
    its outlet goes away.
    """

    def __init__(self, stream: str, timeout: float = DEFAULT_TIMEOUT_S, channels: Sequence[int] | None = None) -> None:
        import pylsl
        from pylsl.util import LostError, TimeoutError

        self.name = f"LSL stream {stream!r}"
        self._lost, self._clock = LostError, pylsl.local_clock
        found = pylsl.resolve_byprop("name", stream, 1, timeout)
        if not found:
            raise AcquisitionError(f"{self.name}: none appeared within {timeout:g} s (is its outlet running and on this network?)")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=30, recover=False)
        try:
            info = self.inlet.info(timeout)
            self.inlet.open_stream(timeout)
        except (TimeoutError, LostError) as err:
            self.close()
            raise AcquisitionError(f"{self.name}: cannot be opened ({type(err).__name__})") from None
        self.rate = float(info.nominal_srate())
        if self.rate <= 0:
            self.close()
            raise AcquisitionError(f"{self.name}: irregular sampling rate; EMG needs a stream of fixed nominal rate")
        labels, channel = [], info.desc().child("channels").child("channel")
        while not channel.empty():
            labels.append(channel.child_value("label"))
            channel = channel.next_sibling()
        if len(labels) != info.channel_count() or not all(labels):
            labels = [f"ch{i + 1}" for i in range(info.channel_count())]
        self.columns = _pick(info.channel_count(), channels, self.name)
        self.channel_names = [labels[i] for i in self.columns]

    def blocks(self) -> Iterator[tuple[np.ndarray, float]]:
        last_data = time.perf_counter()
        while True:
            try:
                data, stamps = self.inlet.pull_chunk(timeout=0.05, max_samples=4096)
            except self._lost:
                return
            now = time.perf_counter()
            if len(data):
                last_data = now
                # LSL stamps samples on the sender's clock, mapped to ours by time_correction.
                arrival = min(now, now - (self._clock() - stamps[-1] - self.inlet.time_correction()))
                yield np.asarray(data, dtype=np.float64)[:, self.columns], arrival
            elif now - last_data > NO_DATA_TIMEOUT_S:
                raise AcquisitionError(f"{self.name}: no data for {NO_DATA_TIMEOUT_S:g} s")

    def flush(self) -> None:
        self.inlet.flush()

    def close(self) -> None:
        inlet = getattr(self, "inlet", None)
        if inlet is not None:
            self.inlet = None
            inlet.close_stream()


def open_source(spec: str, connection: Connection = Connection(), channels: Sequence[int] | None = None) -> EMGSource:
    """Open the source a ``--board`` spec names (module docstring), streaming; use it in a ``with`` block.

    ``channels``: 1-based channels to deliver (default all EXG channels).
    Raises :class:`AcquisitionError` for an unknown spec or a source that cannot be opened.
    """
    if spec.startswith("lsl:"):
        if not spec[4:]:
            raise AcquisitionError("--board lsl: give the stream's name, as lsl:STREAM_NAME")
        return LSLSource(spec[4:], connection.timeout, channels)
    if spec.startswith("playback:"):
        if not spec[9:]:
            raise AcquisitionError("--board playback: give the file, as playback:FILE")
        return BrainFlowSource(board_id(connection.master), connection.master, connection, channels, playback=spec[9:])
    return BrainFlowSource(board_id(spec), spec, connection, channels)


def write_playback_file(path: str | os.PathLike, emg: np.ndarray, master: str = DEFAULT_PLAYBACK_MASTER, start: float | None = None) -> Path:
    """Write raw EMG ``(samples, channels)`` at the ``master`` board's rate as a BrainFlow file the playback board replays.

    The file holds every row of the master board (BrainFlow's
    ``DataFilter.write_file`` layout: one tab-separated line per sample, six
    decimals): the EMG in its first EXG rows, a package counter stepping by
    one and timestamps from ``start`` (Unix seconds; default now) at the
    master's rate, zeros elsewhere. Written atomically; returns ``path``.
    """
    board_shim, data_filter = _brainflow()
    shim, master_id = board_shim.BoardShim, board_id(master)
    exg = shim.get_exg_channels(master_id)
    emg = np.asarray(emg, dtype=np.float64)
    if emg.ndim != 2 or not 0 < emg.shape[1] <= len(exg):
        raise AcquisitionError(f"{path}: EMG of shape {emg.shape} does not fit board {master}'s {len(exg)} EXG channels")
    rate = shim.get_sampling_rate(master_id)
    data = np.zeros((shim.get_num_rows(master_id), emg.shape[0]))
    data[exg[: emg.shape[1]]] = emg.T
    data[shim.get_package_num_channel(master_id)] = np.arange(emg.shape[0]) % PACKAGE_MODULUS
    data[shim.get_timestamp_channel(master_id)] = (time.time() if start is None else start) + np.arange(emg.shape[0]) / rate
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    data_filter.DataFilter.write_file(data, str(partial), "w")
    os.replace(partial, path)
    return path
