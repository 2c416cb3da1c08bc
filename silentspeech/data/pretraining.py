"""Windows for masked-reconstruction pretraining, drawn from a weighted mixture of EMG sources.

A source is any EMG at all, labels ignored: a Gaddy-layout corpus (real or
the synthetic one, generated on first use), a gesture dataset read by
:mod:`silentspeech.data.gestures`, synthetic gesture EMG, or a folder of
arrays with a stated rate. Every recording is filtered at its own rate
(:func:`~silentspeech.preprocessing.condition_emg` with TinyMyo's
pretraining filters: 20-450 Hz band-pass, mains notch; band edges beyond
Nyquist are dropped) and resampled to the encoder's rate, then cut into
windows (50 % overlap by default). Recordings with more channels than
the encoder are split into groups of channels; fewer are zero-padded, and a
per-channel mask says which channels are real. Each window is scaled per
channel to [-1, 1] (min-max, as TinyMyo's pretraining does; docs/design.md, *TinyMyo: the encoder*).

Training batches mix the sources by weight (:class:`MixtureBatchSampler`),
so a small corpus is not drowned by a large one; a fraction of each source's
recordings is held out for validation.

Everything is held in memory at the encoder's rate; ``max_recordings`` caps
a source (a full Gaddy corpus at 2 kHz is several GB).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gestures.corpus import GestureDataError
from silentspeech.data.gestures.epn612 import read_epn612
from silentspeech.data.gestures.folder import FolderFormat, read_labelled_folder
from silentspeech.data.gestures.ninapro import read_ninapro_db5, read_ninapro_db8
from silentspeech.data.gestures.uci import read_uci_emg
from silentspeech.data.synthetic.gestures import SyntheticGestures, generate_gesture_recordings
from silentspeech.preprocessing import GestureFiltering, condition_emg

log = logging.getLogger(__name__)

SOURCE_KINDS = (
    "gaddy",
    "synthetic_speech",
    "arrays",
    "synthetic_gestures",
    "ninapro_db5",
    "ninapro_db8",
    "epn612",
    "uci_emg",
    "folder",
)


@dataclass
class WindowSource:
    """One entry of ``data.sources`` in the pretraining recipe."""

    #: gaddy (``**/*_emg.npy``, 1 kHz), synthetic_speech (the synthetic Gaddy-layout corpus,
    #: written to ``root`` first if absent), arrays (``pattern`` files at ``rate``),
    #: synthetic_gestures, ninapro_db5, ninapro_db8, epn612, uci_emg, folder (labelled files at ``rate``,
    #: laid out as ``folder`` says).
    kind: str = "synthetic_gestures"
    root: str = ""
    #: Share of training windows drawn from this source (relative to the others).
    weight: float = 1.0
    #: Hz of the files, for ``arrays`` and ``folder``.
    rate: float = 0.0
    #: Glob below ``root`` for ``arrays`` (.npy, or .csv of numbers with an optional time column).
    pattern: str = "**/*.npy"
    #: ``folder``: how its labelled files are laid out (see the gesture recipes; labels are unused).
    folder: FolderFormat = field(default_factory=FolderFormat)
    #: Mains frequency to notch, Hz (60 for the Gaddy corpus, 50 in Europe); 0 = none.
    mains: float = 50.0
    #: At most this many recordings (0 = all), taken evenly across the source.
    max_recordings: int = 0
    #: synthetic_speech: spoken utterances to generate, and the seed.
    utterances: int = 60
    seed: int = 0
    #: synthetic_gestures: the generator's settings.
    gestures: SyntheticGestures = field(default_factory=lambda: SyntheticGestures(seed=1))


@dataclass
class WindowMixtureConfig:
    """The ``data:`` section of the pretraining recipe."""

    sources: list[WindowSource] = field(default_factory=lambda: [WindowSource()])
    #: Hz every source is resampled to (the encoder's rate; TinyMyo: 2000).
    rate: float = 2000.0
    #: Samples per window at ``rate`` (a multiple of the patch length; TinyMyo: 1000).
    window: int = 1000
    #: Samples between window starts (TinyMyo: 50 % overlap).
    stride: int = 500
    bandpass_low: float = 20.0
    bandpass_high: float = 450.0
    #: Fraction of each source's recordings held out for validation (at least one when it has two).
    val_fraction: float = 0.1
    #: Validation windows at most (evenly spaced), to keep validation quick.
    max_val_windows: int = 512
    batch_size: int = 64
    #: Training batches per data epoch (0 = training windows / batch_size).
    batches_per_epoch: int = 0
    workers: int = 0


def _even_pick(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all when ``count`` is 0 or larger)."""
    if count <= 0 or count >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def source_recordings(source: WindowSource, rate: float, filtering: GestureFiltering) -> list[np.ndarray]:
    """All recordings of ``source`` as float32 ``(samples, channels)`` at ``rate`` Hz, filtered."""
    kind = source.kind
    if kind not in SOURCE_KINDS:
        raise GestureDataError(f"unknown pretraining source kind {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    filtering = GestureFiltering(filtering.bandpass_low, filtering.bandpass_high, filtering.order, source.mains)
    if kind == "synthetic_gestures":
        raw = [(r.emg, source.gestures.rate, f"synthetic gestures subject {r.subject}") for r in generate_gesture_recordings(source.gestures)]
        return [condition_emg(emg, r, filtering, rate, name) for emg, r, name in raw]
    if not source.root:
        raise GestureDataError(f"pretraining source {kind!r} needs a root folder")
    readers = {"ninapro_db5": read_ninapro_db5, "ninapro_db8": read_ninapro_db8, "epn612": read_epn612, "uci_emg": read_uci_emg}
    if kind in readers:
        segments = readers[kind](source.root, filtering, rate).segments
        return [s.emg for s in _even_pick(segments, source.max_recordings)]
    if kind == "folder":
        segments = read_labelled_folder(source.root, source.rate, source.folder, filtering, rate).segments
        return [s.emg for s in _even_pick(segments, source.max_recordings)]
    if kind == "synthetic_speech":
        from silentspeech.data.synthetic.speech import generate_corpus

        generate_corpus(source.root, utterances=source.utterances, seed=source.seed)
    if kind in ("gaddy", "synthetic_speech"):
        paths, file_rate = sorted(Path(source.root).rglob("*_emg.npy")), None
    else:
        if source.rate <= 0:
            raise GestureDataError(f"{source.root}: an 'arrays' source needs the files' sampling rate (rate=...)")
        paths, file_rate = sorted(Path(source.root).glob(source.pattern)), source.rate
    paths = _even_pick([p for p in paths if p.is_file()], source.max_recordings)
    if not paths:
        raise GestureDataError(f"{source.root}: no EMG files for source {kind!r}")
    out = []
    for path in tqdm(paths, desc=f"{kind} {Path(source.root).name}", unit="file", leave=False):
        recording = read_emg_file(path, file_rate)
        if recording.emg.shape[0] < 64:
            log.info("%s: %d samples, too short to filter; skipped", path, recording.emg.shape[0])
            continue
        out.append(condition_emg(recording.emg, recording.rate, filtering, rate, str(path)))
    return out


def minmax_scale(window: np.ndarray) -> np.ndarray:
    """Scale each channel (row) of ``window`` (channels, samples) to [-1, 1]; constant channels become 0."""
    low = window.min(axis=1, keepdims=True)
    span = window.max(axis=1, keepdims=True) - low
    return np.where(span > 0, 2 * (window - low) / np.where(span > 0, span, 1) - 1, 0).astype(np.float32)


class PretrainWindows(Dataset):
    """Windows of recordings, min-max scaled, padded to ``channels``.

    Item: dict ``emg`` (channels, window) float32 in [-1, 1] and
    ``channel_mask`` (channels,) bool (False for zero-padding).
    ``source_sizes`` gives the windows of each source, in order, for
    :class:`MixtureBatchSampler`.
    """

    def __init__(self, sources: Sequence[list[np.ndarray]], channels: int, window: int, stride: int):
        self.recordings: list[np.ndarray] = []
        self.channels, self.window = channels, window
        rows, self.source_sizes = [], []
        for recordings in sources:
            count = 0
            for recording in recordings:
                r = len(self.recordings)
                self.recordings.append(recording)
                starts = range(0, recording.shape[0] - window + 1, stride)
                groups = range(0, recording.shape[1], channels)
                rows += [(r, s, g) for s in starts for g in groups]
                count += len(starts) * len(groups)
            self.source_sizes.append(count)
        self.index = np.array(rows, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        r, start, group = self.index[k]
        piece = self.recordings[r][start : start + self.window, group : group + self.channels].T
        emg = np.zeros((self.channels, self.window), dtype=np.float32)
        emg[: piece.shape[0]] = minmax_scale(piece)
        mask = np.zeros(self.channels, dtype=bool)
        mask[: piece.shape[0]] = True
        return {"emg": torch.from_numpy(emg), "channel_mask": torch.from_numpy(mask)}


class MixtureBatchSampler(torch.utils.data.Sampler):
    """Batches drawn with replacement, each item's source chosen by weight.

    Indices follow :class:`PretrainWindows` (sources' windows back to back).
    The order is a pure function of ``(seed, epoch, rank)``; ``set_epoch(epoch,
    start_batch)`` selects an epoch and skips its first batches (exact resume,
    as the training engine expects). Every rank draws its own batches.
    """

    def __init__(
        self,
        source_sizes: Sequence[int],
        weights: Sequence[float],
        batch_size: int,
        batches_per_epoch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        sizes, weights = np.asarray(source_sizes, np.int64), np.asarray(weights, np.float64)
        if len(sizes) != len(weights) or (weights < 0).any():
            raise ValueError(f"need one non-negative weight per source, got {list(weights)} for {len(sizes)} sources")
        weights = np.where(sizes > 0, weights, 0.0)
        if weights.sum() <= 0:
            raise ValueError("no source with windows and a positive weight to draw training windows from")
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.sizes, self.p = sizes, weights / weights.sum()
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        for b in range(self.batches_per_epoch):
            source = rng.choice(len(self.p), size=self.batch_size, p=self.p)
            index = self.offsets[source] + (rng.random(self.batch_size) * self.sizes[source]).astype(np.int64)
            if b >= self.start_batch:
                yield index.tolist()


def build_pretrain_windows(config: WindowMixtureConfig, channels: int) -> tuple[PretrainWindows, PretrainWindows, list[float]]:
    """Train and validation windows of every source, and the sources' weights.

    Each source's recordings are split before windowing: the last
    ``val_fraction`` of them (at least one of two or more) validate.
    """
    if not config.sources:
        raise GestureDataError("data.sources is empty: name at least one EMG source to pretrain on")
    filtering = GestureFiltering(config.bandpass_low, config.bandpass_high)
    train, val = [], []
    for source in config.sources:
        recordings = source_recordings(source, config.rate, filtering)
        recordings = [r for r in recordings if r.shape[0] >= config.window]
        if not recordings:
            raise GestureDataError(f"source {source.kind} {source.root}: no recording is as long as one window ({config.window} samples)")
        held = min(len(recordings) - 1, max(1 if len(recordings) > 1 else 0, round(len(recordings) * config.val_fraction)))
        train.append(recordings[: len(recordings) - held])
        val.append(recordings[len(recordings) - held :])
        log.info(
            "pretraining source %s: %d recordings (%d held out), %.1f min at %g Hz, %d channels",
            f"{source.kind} {source.root}".strip(), len(recordings), held,
            sum(r.shape[0] for r in recordings) / config.rate / 60, config.rate, recordings[0].shape[1],
        )
    train_windows = PretrainWindows(train, channels, config.window, config.stride)
    val_windows = PretrainWindows(val, channels, config.window, config.stride)
    keep = _even_pick(list(range(len(val_windows))), config.max_val_windows)
    val_windows.index = val_windows.index[keep]
    return train_windows, val_windows, [s.weight for s in config.sources]
