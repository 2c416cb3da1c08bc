"""Train/validation/test splits of gesture segments by whole split units, before any windowing.

The published protocols' splits (:data:`PROTOCOL_SPLITS`), a stratified
random split of one's own files (:func:`random_unit_split`) and the folds of
a stratified cross-validation (:func:`fold_unit_split`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from silentspeech.data.gestures.corpus import GestureDataError, Segment

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
