"""NinaPro DB5 (gestures, Myo armbands) and DB8 (finger kinematics, Delsys Trigno) from their ``.mat`` files.

scipy reads the MATLAB containers; which keys hold what, and how the
labels and split units follow from them, is ours (docs/design.md,
*Downstream heads and published results*).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io

from silentspeech.data.gestures.corpus import GestureCorpus, GestureDataError, Segment, cut_recording
from silentspeech.preprocessing import GestureFiltering


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
        segments += cut_recording(emg, DB5_RATE, labels, units.astype(str), filtering, target_rate, str(path))
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
        segments += cut_recording(emg, DB8_RATE, labels, units, filtering, target_rate, str(path), targets)
    return GestureCorpus(segments, target_rate or DB8_RATE, [], DB8_TARGETS, skipped)
