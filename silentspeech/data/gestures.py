"""Gesture and hand-kinematics EMG datasets: readers, splits, windows.

Data flow, one way::

    files --reader--> GestureCorpus (filtered segments, one label and one
          split unit each) --split_segments--> train/val/test segments
          --GestureWindows--> sliding windows, z-scored with training statistics

Each reader reads one dataset in its own published file format (docs/design.md,
*Downstream heads and published results*): NinaPro DB5 and DB8 ``.mat`` files, EPN-612 per-user JSON, the UCI
"EMG data for gestures" text files, and a generic folder of labelled CSV or
NPY recordings. A reader filters each whole recording first (zero-phase
filters need the context; :func:`silentspeech.preprocessing.condition_emg`), resamples it if asked, and only then cuts it into
*segments*: contiguous stretches with one label and one *split unit* (a
repetition, an acquisition, a subject, a file). Splits assign whole units,
and windows never cross a segment boundary, so no test window can share a
sample with a training window.

The published protocols' splits are in :data:`PROTOCOL_SPLITS` (TinyMyo's:
DB5 by repetition, DB8 by acquisition, EPN-612 by user group, UCI by
subject). Arrays are ``(samples, channels)`` here, as in the files; windows
come out channels first, ``(channels, samples)``, as models take them.

No library reads these formats (scipy reads the ``.mat`` containers, the
json and csv modules the rest); the readers are ours.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
import torch
from torch.utils.data import Dataset

from silentspeech.data.synthetic.gestures import SyntheticGestures, generate_gesture_recordings
from silentspeech.preprocessing import EMGError, GestureFiltering, check_emg, condition_emg, resample

log = logging.getLogger(__name__)


class GestureDataError(EMGError):
    """A gesture dataset file that cannot be used; the message names the file."""


# --- segments and corpora ----------------------------------------------------


@dataclass
class Segment:
    """A contiguous stretch of one recording with one label and one split unit."""

    emg: np.ndarray  #: (samples, channels) float32, filtered, at the corpus rate
    label: int  #: class index (0 for regression corpora)
    unit: str  #: split unit: repetition, acquisition, subject, file, ...
    source: str  #: the file it came from
    start: int  #: index of its first sample within that file, at the corpus rate
    targets: np.ndarray | None = None  #: (samples, n_targets) float32, regression corpora only


@dataclass
class GestureCorpus:
    """What a reader returns: segments plus what they mean."""

    segments: list[Segment]
    rate: float  #: Hz, of every segment
    class_names: list[str]  #: index -> name; empty for regression
    target_names: list[str] = field(default_factory=list)  #: regression outputs
    skipped: Counter = field(default_factory=Counter)  #: reason -> count of skipped samples/files

    @property
    def channels(self) -> int:
        return self.segments[0].emg.shape[1]


def _runs(*values: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the maximal stretches where none of the equal-length ``values`` changes."""
    n = len(values[0])
    if n == 0:
        return []
    changed = np.zeros(n - 1, dtype=bool)
    for v in values:
        changed |= v[1:] != v[:-1]
    edges = np.concatenate([[0], np.flatnonzero(changed) + 1, [n]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _cut_recording(
    emg: np.ndarray,
    rate: float,
    labels: np.ndarray,
    units: np.ndarray,
    filtering: GestureFiltering,
    target_rate: float | None,
    source: str,
    targets: np.ndarray | None = None,
) -> list[Segment]:
    """Condition a whole recording, then cut it wherever the label or unit changes.

    ``labels`` ``(samples,)`` int: negative marks samples to drop (unlabelled).
    ``units`` ``(samples,)`` str. ``targets`` ``(samples, n)`` are resampled alongside.
    """
    out_rate = target_rate or rate
    conditioned = condition_emg(emg, rate, filtering, out_rate, source)
    if targets is not None and out_rate != rate:
        targets = resample(targets, rate, out_rate).astype(np.float32)
    ratio = conditioned.shape[0] / emg.shape[0]
    segments = []
    for start, end in _runs(labels, units):
        if labels[start] < 0:
            continue
        a, b = round(start * ratio), min(round(end * ratio), conditioned.shape[0])
        if b <= a:
            continue
        segments.append(
            Segment(
                emg=conditioned[a:b],
                label=int(labels[start]),
                unit=str(units[start]),
                source=source,
                start=a,
                targets=None if targets is None else targets[a:b],
            )
        )
    return segments


def _load_mat(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The named arrays of a MATLAB file, each checked to be present."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises ValueError/TypeError/OSError on truncated files
        raise GestureDataError(f"{path}: not a readable .mat file ({err})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise GestureDataError(f"{path}: missing key(s) {missing}; the file holds {present}")
    return {k: np.asarray(mat[k]) for k in keys}


def _column(arr: np.ndarray, rows: int, path: Path, key: str) -> np.ndarray:
    """A per-sample vector stored as (T,), (T, 1) or (1, T), checked against ``rows``."""
    flat = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if flat.ndim != 1 or flat.shape[0] != rows:
        raise GestureDataError(f"{path}: {key!r} has shape {arr.shape}; expected one value per EMG sample ({rows})")
    return flat


# --- NinaPro DB5 -------------------------------------------------------------

#: DB5: Myo armbands, 200 Hz, 16 channels. Exercise -> offset of its movement labels (E1 1-12, E2 13-29, E3 30-52).
DB5_RATE = 200.0
DB5_CHANNELS = 16
DB5_EXERCISE_OFFSET = {1: 0, 2: 12, 3: 29}
DB5_CLASSES = 53


def read_ninapro_db5(
    root: str | os.PathLike,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
) -> GestureCorpus:
    """NinaPro DB5: every ``S{s}_E{1,2,3}_A1.mat`` below ``root``.

    Keys ``emg`` (T, 16) at 200 Hz, ``restimulus`` (movement, 0 = rest) and
    ``rerepetition`` (1-6, 0 during rest). Movements are numbered over the
    three exercises (1-52, rest 0: 53 classes). Split units are repetitions
    ``"1"``..``"6"``; a rest stretch belongs to the repetition that follows
    it (the last one of a file to the one before it).
    """
    root = Path(root)
    paths = sorted(root.rglob("S*_E*_A1.mat"))
    if not paths:
        raise GestureDataError(f"{root}: no NinaPro DB5 files (S<subject>_E<1-3>_A1.mat) found")
    segments: list[Segment] = []
    for path in paths:
        match = re.fullmatch(r"S(\d+)_E(\d)_A1\.mat", path.name)
        if not match or int(match.group(2)) not in DB5_EXERCISE_OFFSET:
            raise GestureDataError(f"{path}: not a DB5 file name (S<subject>_E<1-3>_A1.mat)")
        mat = _load_mat(path, ("emg", "restimulus", "rerepetition"))
        emg = mat["emg"]
        if emg.ndim != 2 or emg.shape[1] != DB5_CHANNELS:
            raise GestureDataError(f"{path}: 'emg' has shape {emg.shape}; DB5 has {DB5_CHANNELS} channels")
        stimulus = _column(mat["restimulus"], emg.shape[0], path, "restimulus").astype(np.int64)
        repetition = _column(mat["rerepetition"], emg.shape[0], path, "rerepetition").astype(np.int64)
        offset = DB5_EXERCISE_OFFSET[int(match.group(2))]
        labels = np.where(stimulus > 0, stimulus + offset, 0)
        if labels.max() >= DB5_CLASSES or labels.min() < 0:
            raise GestureDataError(f"{path}: 'restimulus' holds {stimulus.min()}..{stimulus.max()}, outside this exercise's movements")
        units = _rest_to_next_repetition(repetition)
        segments += _cut_recording(emg, DB5_RATE, labels, units.astype(str), filtering, target_rate, str(path))
    names = ["rest"] + [f"movement {i}" for i in range(1, DB5_CLASSES)]
    return GestureCorpus(segments, target_rate or DB5_RATE, names)


def _rest_to_next_repetition(repetition: np.ndarray) -> np.ndarray:
    """Repetition per sample with rest (0) filled from the next movement, or the previous at the end."""
    filled = repetition.copy()
    nonzero = np.flatnonzero(repetition > 0)
    if len(nonzero) == 0:
        return filled
    following = np.searchsorted(nonzero, np.arange(len(repetition)))
    following = np.minimum(following, len(nonzero) - 1)
    rest = repetition == 0
    filled[rest] = repetition[nonzero[following[rest]]]
    return filled


# --- NinaPro DB8 -------------------------------------------------------------

#: DB8: Delsys Trigno, 16 channels, stored at 2 kHz (1111 Hz upsampled).
DB8_RATE = 2000.0
DB8_CHANNELS = 16
#: Glove (18 degrees of freedom) -> 5 degrees of actuation (thumb rotation,
#: thumb flexion, index, middle, ring + little), from Krasoulis et al. 2019
#: (Front. Neurosci. 13:891, supplementary Eqn. S2). Shape (5, 18).
DB8_DOF_TO_DOA = np.zeros((5, 18), dtype=np.float32)
DB8_DOF_TO_DOA[0, [0, 1, 3, 16]] = [0.639, 0.383, -0.639, -0.19]
DB8_DOF_TO_DOA[1, 2] = 1.0
DB8_DOF_TO_DOA[2, [4, 5]] = [0.4, 0.6]
DB8_DOF_TO_DOA[3, [6, 7]] = [0.4, 0.6]
DB8_DOF_TO_DOA[4, [9, 10, 12, 13]] = [1 / 6, 1 / 3, 1 / 6, 1 / 3]
DB8_TARGETS = ["thumb rotation", "thumb flexion", "index flexion", "middle flexion", "ring/little flexion"]


def read_ninapro_db8(
    root: str | os.PathLike,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
) -> GestureCorpus:
    """NinaPro DB8: every ``S{s}_E1_A{1,2,3}.mat`` below ``root``, for regression.

    Keys ``emg`` (T, 16) at 2 kHz and ``glove`` (T, 18); targets are the 5
    degrees of actuation ``glove @ DB8_DOF_TO_DOA.T`` (degrees). Samples
    where the glove reads NaN are dropped (counted in ``skipped``). Split
    units are the acquisitions ``"A1"``, ``"A2"``, ``"A3"``.
    """
    root = Path(root)
    paths = sorted(root.rglob("S*_E1_A*.mat"))
    if not paths:
        raise GestureDataError(f"{root}: no NinaPro DB8 files (S<subject>_E1_A<1-3>.mat) found")
    segments: list[Segment] = []
    skipped: Counter = Counter()
    for path in paths:
        match = re.fullmatch(r"S(\d+)_E1_(A\d)\.mat", path.name)
        if not match:
            raise GestureDataError(f"{path}: not a DB8 file name (S<subject>_E1_A<1-3>.mat)")
        mat = _load_mat(path, ("emg", "glove"))
        emg, glove = mat["emg"], mat["glove"].astype(np.float64)
        if emg.ndim != 2 or emg.shape[1] != DB8_CHANNELS:
            raise GestureDataError(f"{path}: 'emg' has shape {emg.shape}; DB8 has {DB8_CHANNELS} channels")
        if glove.shape != (emg.shape[0], 18):
            raise GestureDataError(f"{path}: 'glove' has shape {glove.shape}; expected ({emg.shape[0]}, 18)")
        valid = np.isfinite(glove).all(axis=1)
        skipped["samples with NaN glove"] += int((~valid).sum())
        labels = np.where(valid, 0, -1)
        targets = (np.nan_to_num(glove) @ DB8_DOF_TO_DOA.T).astype(np.float32)
        units = np.full(emg.shape[0], match.group(2))
        segments += _cut_recording(emg, DB8_RATE, labels, units, filtering, target_rate, str(path), targets)
    return GestureCorpus(segments, target_rate or DB8_RATE, [], DB8_TARGETS, skipped)


# --- EPN-612 -----------------------------------------------------------------

EPN_RATE = 200.0
EPN_CHANNELS = 8
EPN_CLASSES = ["noGesture", "waveIn", "waveOut", "pinch", "open", "fist"]


def read_epn612(
    root: str | os.PathLike,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
    calibration_per_gesture: int = 10,
) -> GestureCorpus:
    """EMG-EPN-612: ``root/{trainingJSON,testingJSON}/user*/user*.json``.

    Each JSON holds ``trainingSamples`` and ``testingSamples``: dicts of
    samples with ``gestureName`` and ``emg`` = ``{"ch1": [...], ..., "ch8":
    [...]}`` at 200 Hz (``generalInfo.samplingFrequencyInHertz`` when
    present). Each sample is one segment. Split units name where it came
    from: ``trainingJSON/trainingSamples``, ``trainingJSON/testingSamples``,
    ``testingJSON/trainingSamples``, and ``testingJSON/calibration`` for the
    first ``calibration_per_gesture`` samples per gesture of each testing
    user (the published protocol trains on them). Samples without a known
    gesture name (the testing users' ``testingSamples`` are unlabelled) are
    skipped and counted.
    """
    root = Path(root)
    paths = sorted(root.glob("trainingJSON/*/*.json")) + sorted(root.glob("testingJSON/*/*.json"))
    if not paths:
        raise GestureDataError(f"{root}: no EPN-612 user files (trainingJSON/user*/user*.json, testingJSON/...) found")
    class_index = {name: i for i, name in enumerate(EPN_CLASSES)}
    segments: list[Segment] = []
    skipped: Counter = Counter()
    for path in paths:
        group = path.parent.parent.name
        try:
            user = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GestureDataError(f"{path}: not valid JSON ({err})") from None
        rate = float(user.get("generalInfo", {}).get("samplingFrequencyInHertz", EPN_RATE))
        for kind in ("trainingSamples", "testingSamples"):
            seen: Counter = Counter()
            for key, sample in (user.get(kind) or {}).items():
                name = sample.get("gestureName")
                if name not in class_index:
                    skipped["unlabelled samples"] += 1
                    continue
                emg = _epn_emg(sample, f"{path} {kind}/{key}")
                unit = f"{group}/{kind}"
                if group == "testingJSON" and kind == "trainingSamples" and seen[name] < calibration_per_gesture:
                    unit = "testingJSON/calibration"
                seen[name] += 1
                labels = np.full(emg.shape[0], class_index[name])
                units = np.full(emg.shape[0], unit)
                segments += _cut_recording(emg, rate, labels, units, filtering, target_rate, f"{path}#{kind}/{key}")
    if not segments:
        raise GestureDataError(f"{root}: the EPN-612 files hold no labelled samples")
    return GestureCorpus(segments, target_rate or EPN_RATE, list(EPN_CLASSES), skipped=skipped)


def _epn_emg(sample: dict, where: str) -> np.ndarray:
    channels = sample.get("emg")
    if not isinstance(channels, dict):
        raise GestureDataError(f"{where}: no 'emg' dict of channels")
    names = [f"ch{i}" for i in range(1, EPN_CHANNELS + 1)]
    missing = [n for n in names if n not in channels]
    if missing:
        raise GestureDataError(f"{where}: 'emg' lacks channel(s) {missing}")
    lengths = {len(channels[n]) for n in names}
    if len(lengths) != 1:
        raise GestureDataError(f"{where}: channels have different lengths {sorted(lengths)}")
    return np.array([channels[n] for n in names], dtype=np.float64).T


# --- UCI EMG data for gestures -------------------------------------------------

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
        segments += _cut_recording(emg, rate, labels, units, filtering, target_rate, str(path))
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


# --- a folder of labelled recordings ----------------------------------------------


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
        for run, (a, b) in enumerate(_runs(label_ids)):
            run_units[a:b] = f"{relative}#{run}"
        segments += _cut_recording(emg, rate, label_ids, run_units.astype(str), filtering, target_rate, str(path))
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


# --- splits ----------------------------------------------------------------------

#: Published protocols (TinyMyo's data scripts), split name -> units.
PROTOCOL_SPLITS: dict[str, dict[str, list[str]]] = {
    "ninapro_db5": {"train": ["1", "2", "5"], "val": ["4", "6"], "test": ["3"]},
    # The protocol: A1 and A2 train, A3 test; validation is carved
    # from the end of each training acquisition (see split_segments).
    "ninapro_db8": {"train": ["A1", "A2"], "val": [], "test": ["A3"]},
    "epn612": {
        "train": ["trainingJSON/trainingSamples", "testingJSON/calibration"],
        "val": ["trainingJSON/testingSamples"],
        "test": ["testingJSON/trainingSamples"],
    },
    "uci_emg": {
        "train": [str(s) for s in range(1, 25)],
        "val": [str(s) for s in range(25, 31)],
        "test": [str(s) for s in range(31, 37)],
    },
}


def split_segments(
    segments: Sequence[Segment],
    units: dict[str, Sequence[str]],
    val_tail: float = 0.0,
) -> dict[str, list[Segment]]:
    """Assign segments to splits by their unit: ``{"train": [...], "val": [...], "test": [...]}``.

    ``units`` maps a split name to the units it takes; a unit in two splits
    is an error, segments whose unit is in none are left out. With an empty
    validation list and ``val_tail > 0`` the last ``val_tail`` fraction of
    every training segment becomes its validation segment (time-ordered, so
    no window straddles the cut).
    """
    owner: dict[str, str] = {}
    for split, names in units.items():
        for unit in names:
            if unit in owner and owner[unit] != split:
                raise GestureDataError(f"split unit {unit!r} is in both {owner[unit]!r} and {split!r}")
            owner[str(unit)] = split
    out: dict[str, list[Segment]] = {name: [] for name in ("train", "val", "test")}
    for segment in segments:
        split = owner.get(segment.unit)
        if split is not None:
            out.setdefault(split, []).append(segment)
    if not units.get("val") and val_tail > 0:
        train, out["train"] = out["train"], []
        for segment in train:
            cut = int(round(segment.emg.shape[0] * (1 - val_tail)))
            head, tail = _slice(segment, 0, cut), _slice(segment, cut, segment.emg.shape[0])
            out["train"] += [head] if head.emg.shape[0] else []
            out["val"] += [tail] if tail.emg.shape[0] else []
    return out


def _slice(segment: Segment, a: int, b: int) -> Segment:
    targets = None if segment.targets is None else segment.targets[a:b]
    return Segment(segment.emg[a:b], segment.label, segment.unit, segment.source, segment.start + a, targets)


def random_unit_split(
    segments: Sequence[Segment],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    by: str = "file",
) -> dict[str, list[str]]:
    """Split units at random, stratified by the labels they hold.

    ``by="file"`` keeps every run of a file together (unit up to ``#``);
    ``by="segment"`` splits single runs (needed when each file holds one
    gesture, as in a rest/gesture alternation). Every group of units with
    the same labels gives at least one unit to validation and test when it
    has three or more. Returns split name -> units, for :func:`split_segments`.
    """
    strata, members = _unit_strata(segments, by)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        n = len(groups)
        n_test = max(round(n * test_fraction), 1 if n >= 3 and test_fraction > 0 else 0)
        n_val = max(round(n * val_fraction), 1 if n >= 3 and val_fraction > 0 else 0)
        for i, group in enumerate(groups):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            out[split] += members[group]
    return out


def _unit_strata(segments: Sequence[Segment], by: str) -> tuple[dict[tuple[int, ...], list[str]], dict[str, list[str]]]:
    """Split groups (files, or single runs) by the label set they hold, and the units of each group."""
    if by not in ("file", "segment"):
        raise GestureDataError(f"split unit must be 'file' or 'segment', got {by!r}")
    group_labels: dict[str, set[int]] = {}
    members: dict[str, list[str]] = {}
    for s in segments:
        group = s.unit.split("#")[0] if by == "file" else s.unit
        group_labels.setdefault(group, set()).add(s.label)
        members.setdefault(group, [])
        if s.unit not in members[group]:
            members[group].append(s.unit)
    strata: dict[tuple[int, ...], list[str]] = {}
    for group, labels in group_labels.items():
        strata.setdefault(tuple(sorted(labels)), []).append(group)
    return strata, members


def fold_unit_split(
    segments: Sequence[Segment],
    folds: int,
    fold: int,
    val_fraction: float = 0.15,
    seed: int = 0,
    by: str = "file",
) -> dict[str, list[str]]:
    """Fold ``fold`` of a stratified ``folds``-fold cross-validation over split groups.

    Groups (files, or single runs with ``by="segment"``) of each label set
    are shuffled once with ``seed`` and dealt round-robin into ``folds``
    folds, so every fold holds each label set in proportion; fold ``fold``
    tests, and ``val_fraction`` of the other groups (per label set, at least
    one where there are three or more) validates. Over all folds every group
    is tested exactly once. Returns split name -> units.
    """
    if folds < 2 or not 0 <= fold < folds:
        raise GestureDataError(f"cross-validation needs folds >= 2 and 0 <= fold < folds, got fold {fold} of {folds}")
    strata, members = _unit_strata(segments, by)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    dealt = 0  # carried across label sets so small sets do not all start in fold 0
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        test = [g for i, g in enumerate(groups) if (i + dealt) % folds == fold]
        rest = [g for i, g in enumerate(groups) if (i + dealt) % folds != fold]
        dealt += len(groups)
        n_val = max(round(len(rest) * val_fraction), 1 if len(rest) >= 3 and val_fraction > 0 else 0)
        for i, group in enumerate(rest):
            out["val" if i < n_val else "train"] += members[group]
        for group in test:
            out["test"] += members[group]
    if not out["test"]:
        raise GestureDataError(f"fold {fold} of {folds} has no test units: fewer split groups than folds")
    return out


# --- windows -------------------------------------------------------------------------


def channel_statistics(segments: Sequence[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation ``(channels,)`` over all samples of ``segments``.

    Computed from the training segments only, then applied to every split.
    """
    if not segments:
        raise GestureDataError("no training segments to compute normalisation statistics from")
    total = sum(s.emg.shape[0] for s in segments)
    mean = sum(s.emg.sum(axis=0, dtype=np.float64) for s in segments) / total
    var = sum(((s.emg - mean) ** 2).sum(axis=0) for s in segments) / max(total - 1, 1)
    std = np.sqrt(var)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class GestureWindows(Dataset):
    """Sliding windows over segments, z-scored with given statistics.

    Item: dict ``emg`` (channels, length) float32, ``label`` int64 scalar,
    ``index`` (the window's position here, an id for evaluation rows) and
    for regression ``targets`` (length, n_targets) float32. Windows
    start every ``stride`` samples and never cross a segment's end; a segment
    shorter than ``length`` gives one zero-padded window when ``pad_short``
    and none otherwise (counted in ``short_segments``).
    """

    def __init__(
        self,
        segments: Sequence[Segment],
        length: int,
        stride: int,
        mean: np.ndarray,
        std: np.ndarray,
        pad_short: bool = False,
    ):
        if length <= 0 or stride <= 0:
            raise ValueError(f"window length and stride must be positive, got {length} and {stride}")
        self.segments = list(segments)
        self.length = length
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.short_segments = 0
        index = []
        for i, segment in enumerate(self.segments):
            n = segment.emg.shape[0]
            if n >= length:
                index += [(i, start) for start in range(0, n - length + 1, stride)]
            elif pad_short:
                index.append((i, 0))
            else:
                self.short_segments += 1
        self.index = np.array(index, dtype=np.int64).reshape(-1, 2)
        self.labels = np.array([self.segments[i].label for i, _ in self.index], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, start = self.index[k]
        segment = self.segments[i]
        piece = (segment.emg[start : start + self.length] - self.mean) / self.std
        emg = np.zeros((self.length, piece.shape[1]), dtype=np.float32)
        emg[: piece.shape[0]] = piece
        item = {"emg": torch.from_numpy(emg.T.copy()), "label": torch.tensor(segment.label, dtype=torch.int64), "index": k}
        if segment.targets is not None:
            targets = np.zeros((self.length, segment.targets.shape[1]), dtype=np.float32)
            chunk = segment.targets[start : start + self.length]
            targets[: chunk.shape[0]] = chunk
            # A padded tail repeats the last target rather than pulling the fit towards zero.
            targets[chunk.shape[0] :] = chunk[-1]
            item["targets"] = torch.from_numpy(targets)
        return item

    def valid_lengths(self) -> np.ndarray:
        """(N,) int64: samples of each window that are recording, not zero padding."""
        sizes = np.array([s.emg.shape[0] for s in self.segments], dtype=np.int64)
        if not len(self.index):
            return np.zeros(0, dtype=np.int64)
        return np.minimum(self.length, sizes[self.index[:, 0]] - self.index[:, 1])

    def stacked(self) -> np.ndarray:
        """Every window at once, (N, channels, length) float32 as the items hold them."""
        if not len(self):
            return np.zeros((0, self.segments[0].emg.shape[1] if self.segments else 0, self.length), np.float32)
        return np.stack([self[k]["emg"].numpy() for k in range(len(self))])

    def spans(self) -> list[tuple[str, int, int]]:
        """``(source file, first sample, end sample)`` of every window, at the corpus rate."""
        out = []
        for i, start in self.index:
            segment = self.segments[i]
            end = min(start + self.length, segment.emg.shape[0])
            out.append((segment.source, segment.start + int(start), segment.start + int(end)))
        return out


# --- from a recipe ----------------------------------------------------------------------

DATASETS = ("ninapro_db5", "ninapro_db8", "epn612", "uci_emg", "folder", "synthetic")


@dataclass
class GestureDataConfig:
    """The ``data:`` section of the gesture and kinematics recipes."""

    dataset: str = "synthetic"  #: one of :data:`DATASETS`
    root: str = ""  #: the dataset's folder (unused for synthetic)
    rate: float = 0.0  #: Hz of the recordings, required for "folder" (the others know their own)
    resample_to: float = 0.0  #: Hz to resample every recording to; 0 keeps the dataset's rate
    window: int = 200  #: samples per window, at the (resampled) rate
    stride: int = 100  #: samples between window starts
    pad_short: bool = False  #: a segment shorter than a window gives one zero-padded window
    bandpass_low: float = 20.0  #: Hz, 0 = none
    bandpass_high: float = 90.0  #: Hz, 0 = none
    filter_order: int = 4
    notch: float = 50.0  #: mains Hz, 0 = none
    train: list[str] = field(default_factory=list)  #: split units; all three empty = the protocol's split
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    val_tail: float = 0.1  #: without validation units: this end fraction of each training segment validates
    val_fraction: float = 0.15  #: folder: fraction of units (per label group) for validation ...
    test_fraction: float = 0.15  #: ... and for test
    split_by: str = "file"  #: folder: split whole files ("file") or single label runs ("segment")
    split_seed: int = 0
    epn_calibration_per_gesture: int = 10  #: EPN-612: testing users' samples per gesture that train
    uci_extended_palm: bool = False  #: UCI: keep class 7 (7 classes instead of 6)
    folder: FolderFormat = field(default_factory=FolderFormat)
    synthetic: SyntheticGestures = field(default_factory=SyntheticGestures)

    @property
    def filtering(self) -> GestureFiltering:
        return GestureFiltering(self.bandpass_low, self.bandpass_high, self.filter_order, self.notch)


def read_gesture_corpus(config: GestureDataConfig) -> GestureCorpus:
    """Read the dataset a recipe names, filtered and at the recipe's rate."""
    target = config.resample_to or None
    if config.dataset != "synthetic" and not config.root:
        raise GestureDataError(f"data.root is required for dataset {config.dataset!r}")
    if config.dataset == "ninapro_db5":
        return read_ninapro_db5(config.root, config.filtering, target)
    if config.dataset == "ninapro_db8":
        return read_ninapro_db8(config.root, config.filtering, target)
    if config.dataset == "epn612":
        return read_epn612(config.root, config.filtering, target, config.epn_calibration_per_gesture)
    if config.dataset == "uci_emg":
        return read_uci_emg(config.root, config.filtering, target, config.uci_extended_palm)
    if config.dataset == "folder":
        return read_labelled_folder(config.root, config.rate, config.folder, config.filtering, target)
    if config.dataset == "synthetic":
        return synthetic_gesture_corpus(config.synthetic, config.filtering, target)
    raise GestureDataError(f"unknown dataset {config.dataset!r}; choose one of {', '.join(DATASETS)}")


def synthetic_gesture_corpus(
    synthetic: SyntheticGestures = SyntheticGestures(),
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
) -> GestureCorpus:
    """The synthetic gestures as a corpus; split units are repetitions ``"1"``..``"R"``."""
    segments: list[Segment] = []
    for recording in generate_gesture_recordings(synthetic):
        source = f"synthetic subject {recording.subject}"
        units = recording.repetitions.astype(str)
        segments += _cut_recording(recording.emg, synthetic.rate, recording.labels, units, filtering, target_rate, source)
    names = ["rest"] + [f"gesture {k}" for k in range(1, synthetic.classes)]
    return GestureCorpus(segments, target_rate or synthetic.rate, names)


def split_units(config: GestureDataConfig, corpus: GestureCorpus) -> dict[str, list[str]]:
    """Split name -> units: the recipe's lists, else the dataset's protocol.

    Protocols: :data:`PROTOCOL_SPLITS`; synthetic: the last repetition tests,
    the one before validates; folder: :func:`random_unit_split`.
    """
    if config.train or config.val or config.test:
        return {"train": list(config.train), "val": list(config.val), "test": list(config.test)}
    if config.dataset in PROTOCOL_SPLITS:
        return PROTOCOL_SPLITS[config.dataset]
    if config.dataset == "synthetic":
        reps = [str(r) for r in range(1, config.synthetic.repetitions + 1)]
        if len(reps) < 3:
            raise GestureDataError("synthetic gestures need at least 3 repetitions for train/val/test")
        return {"train": reps[:-2], "val": [reps[-2]], "test": [reps[-1]]}
    return random_unit_split(corpus.segments, config.val_fraction, config.test_fraction, config.split_seed, config.split_by)


@dataclass
class GestureData:
    """Windows of the three splits and what they mean."""

    train: GestureWindows
    val: GestureWindows
    test: GestureWindows
    class_names: list[str]  #: empty for regression
    target_names: list[str]  #: empty for classification
    rate: float  #: Hz
    channels: int
    skipped: Counter

    @property
    def regression(self) -> bool:
        return bool(self.target_names)


def load_gesture_data(
    config: GestureDataConfig,
    corpus: GestureCorpus | None = None,
    units: dict[str, list[str]] | None = None,
) -> GestureData:
    """Read, split (before windowing), z-score with training statistics, and window.

    ``corpus`` (default: read as ``config`` says) and ``units`` (default:
    :func:`split_units`) let cross-validation read the files once and split
    them per fold. Raises :class:`GestureDataError` when the training or
    validation split holds no windows, listing the units the corpus has.
    """
    corpus = corpus or read_gesture_corpus(config)
    splits = split_segments(corpus.segments, units or split_units(config, corpus), config.val_tail)
    mean, std = channel_statistics(splits["train"])
    windows = {
        name: GestureWindows(splits[name], config.window, config.stride, mean, std, config.pad_short)
        for name in ("train", "val", "test")
    }
    skipped = Counter(corpus.skipped)  # per split: a corpus reused by several folds keeps its own counts
    for name, data in windows.items():
        if len(data) == 0 and name != "test":
            units = sorted({s.unit for s in corpus.segments})
            shown = ", ".join(units[:12]) + (" ..." if len(units) > 12 else "")
            raise GestureDataError(
                f"{config.dataset}: the {name} split holds no windows of {config.window} samples "
                f"(units in the corpus: {shown}); check data.{name} and data.window"
            )
        if data.short_segments:
            skipped[f"{name} segments shorter than a window"] += data.short_segments
    for reason, count in skipped.items():
        log.info("%s: skipped %d %s", config.dataset, count, reason)
    log.info(
        "%s: %d train, %d val, %d test windows of %d samples at %g Hz, %d channels",
        config.dataset, len(windows["train"]), len(windows["val"]), len(windows["test"]),
        config.window, corpus.rate, corpus.channels,
    )
    return GestureData(
        windows["train"], windows["val"], windows["test"], corpus.class_names, corpus.target_names,
        corpus.rate, corpus.channels, skipped,
    )
