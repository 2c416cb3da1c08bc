"""Reading one EMG recording from a file a user hands us.

The demo, ``silentspeech voice`` and ``silentspeech stream`` accept a bare
recording rather than a corpus: a ``.npy`` array ``(samples, channels)`` with
its rate given, a Gaddy utterance (``{i}_emg.npy`` beside ``{i}_info.json``;
1000 Hz), or a CSV of numeric columns (one row per sample, an optional header
row, an optional leading time column named ``time``/``timestamp``).
:func:`read_emg_files` takes the same recording as several files that need
not lie side by side (a browser upload puts each file in its own folder).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from silentspeech.preprocessing import RAW_EMG_RATE, EMGError, check_emg


@dataclass
class EMGRecording:
    """Raw EMG as read from a file."""

    emg: np.ndarray  #: (samples, channels) float64, raw units
    rate: float  #: sampling rate, Hz
    source: str  #: the file it came from
    text: str | None = None  #: the prompt, for a Gaddy utterance with an info.json


def _gaddy_info(path: Path, info_path: Path | None = None) -> dict | None:
    """The utterance's ``{i}_info.json``: ``info_path``, else the one beside a ``{i}_emg.npy``, if there is one."""
    if info_path is None:
        if not path.name.endswith("_emg.npy"):
            return None
        info_path = path.with_name(path.name[: -len("_emg.npy")] + "_info.json")
        if not info_path.is_file():
            return None
    if not info_path.is_file():  # a FIFO or a folder under the name would block or fail deep in open()
        raise EMGError(f"{info_path}: not a regular file")
    try:
        info = json.loads(info_path.read_bytes().decode("utf-8"))
    except OSError as err:
        raise EMGError(f"{info_path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise EMGError(f"{info_path}: not UTF-8 text (a Gaddy info file is UTF-8 JSON)") from None
    except json.JSONDecodeError as err:
        raise EMGError(f"{info_path}: not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise EMGError(f"{info_path}: expected a JSON object, got a JSON {type(info).__name__}")
    if not isinstance(info.get("text", ""), str):
        raise EMGError(f"{info_path}: field 'text' is not a string (got {info['text']!r})")
    return info


#: First bytes of every ``.npy`` file (numpy's format specification).
NPY_MAGIC = b"\x93NUMPY"


def npy_format_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a ``.npy`` file at all, or None when it starts like one.

    numpy reports any file without the ``.npy`` magic bytes as "pickled
    data", which misleads for the common case of a text or CSV file saved
    under a ``.npy`` name.
    """
    with open(path, "rb") as handle:
        head = handle.read(len(NPY_MAGIC))
    if head == NPY_MAGIC:
        return None
    if head and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "not a .npy file: it starts with text, not the .npy header (a CSV or text file renamed .npy? use the .csv suffix)"
    return "not a .npy file: it does not start with the .npy header (a pickle or another format renamed .npy?)"


def _read_npy(path: Path) -> np.ndarray:
    problem = npy_format_problem(path)
    if problem:
        raise EMGError(f"{path}: {problem}")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # truncated files raise ValueError/EOFError/OSError
        raise EMGError(f"{path}: not a readable .npy array ({err})") from None


def _read_csv(path: Path) -> np.ndarray:
    try:
        with open(path, newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise EMGError(f"{path}: not a text CSV file") from None
    if not rows:
        raise EMGError(f"{path}: the CSV file is empty")
    header = None
    try:
        float(rows[0][0])
    except ValueError:
        header, rows = [cell.strip().lower() for cell in rows[0]], rows[1:]
    if not rows:
        raise EMGError(f"{path}: no numeric rows, only the line {','.join(header)[:60]!r} (not an EMG CSV file?)")
    try:
        table = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as err:
        raise EMGError(f"{path}: non-numeric CSV cell ({err})") from None
    if table.ndim != 2 or table.shape[0] == 0:
        raise EMGError(f"{path}: the CSV file holds no rows of equal length")
    if header and header[0] in ("time", "timestamp", "t"):
        table = table[:, 1:]
    return table


def read_emg_file(
    path: str | os.PathLike,
    rate: float | None = None,
    channels: int | None = None,
    info: str | os.PathLike | None = None,
) -> EMGRecording:
    """Read one raw EMG recording.

    Args:
        path: ``.npy`` (samples, channels), a Gaddy ``{i}_emg.npy`` (its
            ``info.json`` supplies the 1000 Hz rate and the prompt), or ``.csv``.
        rate: sampling rate in Hz; required unless the file is a Gaddy utterance.
        channels: expected channel count, checked when given.
        info: the utterance's ``{i}_info.json`` when it is not beside ``path``.

    Raises :class:`~silentspeech.preprocessing.EMGError` naming the file for a
    missing, unreadable, empty, NaN-holding or wrongly shaped recording, or a
    missing rate.
    """
    path = Path(path)
    if not path.is_file():  # is_file is False for a FIFO too: opening one would block
        raise EMGError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    if path.stat().st_size == 0:
        raise EMGError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        emg = _read_npy(path)
    elif suffix in (".csv", ".txt"):
        emg = _read_csv(path)
    else:
        raise EMGError(f"{path}: unsupported EMG file type {suffix!r} (use .npy or .csv)")
    info = _gaddy_info(path, None if info is None else Path(info))
    text = info.get("text") if info else None
    if rate is None:
        if info is None:
            raise EMGError(f"{path}: the sampling rate must be given for a bare EMG file")
        rate = RAW_EMG_RATE
    if rate <= 0:
        raise EMGError(f"{path}: sampling rate must be positive, got {rate}")
    return EMGRecording(emg=check_emg(emg, channels, str(path)), rate=float(rate), source=str(path), text=text)


def read_emg_files(paths: Sequence[str | os.PathLike], rate: float | None = None, channels: int | None = None) -> EMGRecording:
    """Read one recording handed over as one or more files, e.g. uploaded in a browser.

    ``paths`` holds one EMG file (``.npy``/``.csv``, as :func:`read_emg_file`
    takes) and, for a Gaddy utterance, optionally its ``{i}_info.json``
    from anywhere; other Gaddy files of the utterance (audio, button) are
    ignored. Raises :class:`~silentspeech.preprocessing.EMGError` when there is no
    EMG file, more than one, or an info file of another utterance.
    """
    paths = [Path(p) for p in paths]
    infos = [p for p in paths if p.name.endswith("_info.json")]
    emg_files = [p for p in paths if p not in infos and not p.name.endswith(("_audio.flac", "_audio_clean.flac", "_button.npy"))]
    if not emg_files:
        names = ", ".join(p.name for p in paths) or "nothing"
        raise EMGError(f"no EMG file (.npy or .csv) among {names}")
    if len(emg_files) > 1:
        raise EMGError(f"one recording at a time: got {len(emg_files)} EMG files ({', '.join(p.name for p in emg_files)})")
    if len(infos) > 1:
        raise EMGError(f"more than one info file ({', '.join(p.name for p in infos)})")
    emg_file, info = emg_files[0], infos[0] if infos else None
    if info is not None and info.name[: -len("_info.json")] + "_emg.npy" != emg_file.name:
        raise EMGError(f"{info.name} belongs to another utterance than {emg_file.name} (expected {{i}}_info.json with {{i}}_emg.npy)")
    return read_emg_file(emg_file, rate, channels, info)
