"""UCI "EMG data for gestures" (Myo armband, 6 gestures) from its per-subject text tables.

numpy reads the tables; the columns' meaning, the rate from the time
column and the subjects as split units are ours (docs/design.md,
*Downstream heads and published results*).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from silentspeech.data.gestures.corpus import GestureCorpus, GestureDataError, Segment, cut_recording
from silentspeech.preprocessing import GestureFiltering

UCI_CHANNELS = 8
UCI_CLASSES = ["rest", "fist", "wrist flexion", "wrist extension", "radial deviation", "ulnar deviation", "extended palm"]


def read_uci_emg(
    root: str | os.PathLike,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
    include_extended_palm: bool = False,
) -> GestureCorpus:
    """UCI "EMG data for gestures": ``root/NN/*.txt`` for subjects 01..36.

    Each file has a header line then rows ``time ch1..ch8 class`` (time in
    ms; class 0 = unmarked, 1-6 gestures, 7 extended palm for a few
    subjects). The rate comes from the time column. Unmarked samples are
    dropped, and class 7 unless ``include_extended_palm`` (the published
    6-class task); both counted in ``skipped``. Split units are subject
    numbers ``"1"``..``"36"``. All files must share one rate, or give
    ``target_rate`` to resample them to one.
    """
    root = Path(root)
    paths = sorted(p for p in root.glob("*/*.txt") if p.parent.name.isdigit())
    if not paths:
        raise GestureDataError(f"{root}: no UCI EMG files (<subject number>/*.txt) found")
    segments: list[Segment] = []
    skipped: Counter = Counter()
    rates = set()
    top = 7 if include_extended_palm else 6
    for path in paths:
        table = _read_uci_table(path)
        time_ms, emg, cls = table[:, 0], table[:, 1:9], table[:, 9].astype(np.int64)
        steps = np.diff(time_ms)
        if len(steps) == 0 or np.median(steps) <= 0:
            raise GestureDataError(f"{path}: the time column does not increase; cannot tell the sampling rate")
        rate = round(1000.0 / float(np.median(steps)), 3)
        rates.add(target_rate or rate)
        skipped["unmarked samples (class 0)"] += int((cls == 0).sum())
        skipped["samples of classes outside the task"] += int(((cls > top) | (cls < 0)).sum())
        labels = np.where((cls >= 1) & (cls <= top), cls - 1, -1)
        units = np.full(len(cls), str(int(path.parent.name)))
        segments += cut_recording(emg, rate, labels, units, filtering, target_rate, str(path))
    if len(rates) > 1:
        raise GestureDataError(f"{root}: files have different rates {sorted(rates)} Hz; set a target rate to resample them")
    return GestureCorpus(segments, rates.pop(), UCI_CLASSES[:top], skipped=skipped)


def _read_uci_table(path: Path) -> np.ndarray:
    """(rows, 10): time, 8 channels, class."""
    try:
        table = np.loadtxt(path, skiprows=1, ndmin=2)
    except ValueError as err:
        raise GestureDataError(f"{path}: not a table of numbers after the header ({err})") from None
    if table.shape[1] != 2 + UCI_CHANNELS or table.shape[0] == 0:
        raise GestureDataError(f"{path}: expected rows 'time ch1..ch8 class' (10 columns), got shape {table.shape}")
    return table
