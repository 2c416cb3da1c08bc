"""A folder of labelled recordings of one's own: CSV, text or ``.npy`` tables, the label in a column or the file name.

The csv module and numpy read the cells; which columns are EMG, whether
the first row is a header and how labels name classes is decided here.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from silentspeech.data.gestures.corpus import GestureCorpus, GestureDataError, Segment, constant_runs, cut_recording
from silentspeech.preprocessing import GestureFiltering, check_emg

log = logging.getLogger(__name__)


@dataclass
class FolderFormat:
    """How to read a folder of labelled recordings (:func:`read_labelled_folder`)."""

    pattern: str = "**/*.csv"  #: glob below the root: *.csv, *.txt (comma/space/tab separated) or *.npy
    label_from: str = "column"  #: "column" or "filename"
    label_column: str = "label"  #: header name (any case) or column index such as "-1"
    channel_columns: list[str] = field(default_factory=list)  #: names or indices; empty = numeric columns but label/time
    filename_pattern: str = r"^([^_]+)_"  #: regex; group 1 of the file name (no extension) is the label


def read_labelled_folder(
    root: str | os.PathLike,
    rate: float,
    form: FolderFormat | None = None,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
) -> GestureCorpus:
    """Labelled recordings in a folder, one file per recording, at ``rate`` Hz.

    A label comes from a column (one value per row; a file whose label
    changes is cut into one segment per run, e.g. rest/gesture alternations)
    or from the file name (``UP_001_20260211.csv`` -> ``UP``). Class names
    are the sorted label values (numerically when all are numbers). Split
    units are files (``"<relative path>"``) with runs numbered after ``#``
    (``"<file>#3"``), so a split can assign whole files or single runs.
    Files whose name carries no label are skipped and counted.
    """
    root = Path(root)
    form = form or FolderFormat()
    if rate <= 0:
        raise GestureDataError(f"{root}: the folder reader needs the recordings' sampling rate (Hz), got {rate}")
    if form.label_from not in ("column", "filename"):
        raise GestureDataError(f"label_from must be 'column' or 'filename', got {form.label_from!r}")
    paths = sorted(p for p in root.glob(form.pattern) if p.is_file())
    if not paths:
        raise GestureDataError(f"{root}: no files match {form.pattern!r}")
    skipped: Counter = Counter()
    recordings: list[tuple[Path, np.ndarray, np.ndarray]] = []
    for path in paths:
        if form.label_from == "filename":
            match = re.search(form.filename_pattern, path.stem)
            if not match:
                skipped["files without a label in their name"] += 1
                log.warning("%s: no label in the file name (pattern %r); skipped", path, form.filename_pattern)
                continue
            emg = _read_table(path, form, with_label=False)[0]
            labels = np.full(emg.shape[0], match.group(1))
        else:
            emg, labels = _read_table(path, form, with_label=True)
        recordings.append((path, emg, labels))
    if not recordings:
        raise GestureDataError(f"{root}: no file carries a label")
    channel_counts = {emg.shape[1] for _, emg, _ in recordings}
    if len(channel_counts) > 1:
        counts = {str(p): e.shape[1] for p, e, _ in recordings}
        raise GestureDataError(f"{root}: recordings differ in channel count: {counts}")
    names = sorted({str(v) for _, _, labels in recordings for v in labels}, key=_label_sort_key)
    index = {name: i for i, name in enumerate(names)}
    segments: list[Segment] = []
    for path, emg, labels in recordings:
        label_ids = np.array([index[str(v)] for v in labels], dtype=np.int64)
        run_units = np.empty(len(label_ids), dtype=object)
        relative = path.relative_to(root).as_posix()
        for run, (a, b) in enumerate(constant_runs(label_ids)):
            run_units[a:b] = f"{relative}#{run}"
        segments += cut_recording(emg, rate, label_ids, run_units.astype(str), filtering, target_rate, str(path))
    return GestureCorpus(segments, target_rate or rate, names, skipped=skipped)


def _label_sort_key(name: str) -> tuple:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _read_table(path: Path, form: FolderFormat, with_label: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """EMG (samples, channels) float64 and the label column (samples,) of one file."""
    header = None
    if path.suffix.lower() == ".npy":
        try:
            table = np.load(path, allow_pickle=False)
        except Exception as err:
            raise GestureDataError(f"{path}: not a readable .npy array ({err})") from None
        if table.ndim != 2 or table.shape[0] == 0:
            raise GestureDataError(f"{path}: expected a (samples, columns) array, got shape {table.shape}")
    else:
        header, rows = _read_text_rows(path)
        if len({len(r) for r in rows}) != 1:
            raise GestureDataError(f"{path}: rows have different numbers of columns")
        table = np.array(rows, dtype=str)
    width = table.shape[1]
    label_col = _column_index(form.label_column, header, width, path) if with_label else None
    if form.channel_columns:
        channel_cols = [_column_index(c, header, width, path) for c in form.channel_columns]
    else:
        names = header or [""] * width
        channel_cols = [
            i
            for i in range(width)
            if i != label_col and names[i].strip().lower() not in ("time", "timestamp", "t") and _is_number(str(table[0, i]))
        ]
    if not channel_cols:
        raise GestureDataError(f"{path}: no numeric EMG columns")
    try:
        emg = table[:, channel_cols].astype(np.float64)
    except ValueError as err:
        raise GestureDataError(f"{path}: non-numeric value in an EMG column ({err})") from None
    labels = None
    if label_col is not None:
        values, inverse = np.unique(table[:, label_col].astype(str), return_inverse=True)
        canonical = np.array([_canonical_label(v) for v in values], dtype=object)
        if (canonical == "").any():
            raise GestureDataError(f"{path}: empty label cell(s) in column {form.label_column!r}")
        labels = canonical[inverse.reshape(-1)]
    return check_emg(emg, None, str(path)), labels


def _read_text_rows(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GestureDataError(f"{path}: not a text file") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise GestureDataError(f"{path}: the file is empty")
    delimiter = "," if "," in lines[0] else None
    if delimiter:
        rows = [[cell.strip() for cell in row] for row in csv.reader(lines)]
    else:
        rows = [line.split() for line in lines]
    header = None
    # The first row is a header when it has fewer numeric cells than the second (word
    # labels make a data row partly non-numeric too).
    if len(rows) > 1 and sum(map(_is_number, rows[1])) > sum(map(_is_number, rows[0])):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise GestureDataError(f"{path}: a header but no rows")
    return header, rows


def _column_index(name: str, header: list[str] | None, width: int, path: Path) -> int:
    try:
        index = int(name)
    except ValueError:
        lowered = [h.strip().lower() for h in header] if header else []
        if name.strip().lower() not in lowered:
            raise GestureDataError(f"{path}: no column named {name!r} (header: {header})") from None
        return lowered.index(name.strip().lower())
    if not -width <= index < width:
        raise GestureDataError(f"{path}: column index {index} is outside the {width} columns")
    return index % width


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _canonical_label(cell: str) -> str:
    """``"1.0"`` and ``"1"`` name the same class."""
    cell = str(cell).strip()
    try:
        value = float(cell)
    except ValueError:
        return cell
    return str(int(value)) if value.is_integer() else cell
