"""Sliding windows over gesture segments, z-scored with the training split's statistics, as a torch Dataset."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from silentspeech.data.gestures.corpus import GestureDataError, Segment


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
