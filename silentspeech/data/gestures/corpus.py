"""What every gesture reader returns: segments of filtered EMG with one label and one split unit each.

A reader filters a whole recording first (the zero-phase filters need the
context; :func:`~silentspeech.preprocessing.condition_emg`), then cuts it
wherever the label or the split unit changes (:func:`cut_recording`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from silentspeech.preprocessing import EMGError, GestureFiltering, condition_emg, resample


class GestureDataError(EMGError):
    """A gesture dataset file that cannot be used; the message names the file."""


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


def constant_runs(*values: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the maximal stretches where none of the equal-length ``values`` changes."""
    n = len(values[0])
    if n == 0:
        return []
    changed = np.zeros(n - 1, dtype=bool)
    for v in values:
        changed |= v[1:] != v[:-1]
    edges = np.concatenate([[0], np.flatnonzero(changed) + 1, [n]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def cut_recording(
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
    for start, end in constant_runs(labels, units):
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
