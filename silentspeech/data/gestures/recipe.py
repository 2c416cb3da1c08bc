"""The ``data:`` section of the gesture and kinematics recipes: which dataset, which split, which windows.

:func:`load_gesture_data` reads the dataset the recipe names, splits its
segments (before windowing) and windows the three splits.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from silentspeech.data.gestures.corpus import GestureCorpus, GestureDataError, Segment, cut_recording
from silentspeech.data.gestures.epn612 import read_epn612
from silentspeech.data.gestures.folder import FolderFormat, read_labelled_folder
from silentspeech.data.gestures.ninapro import read_ninapro_db5, read_ninapro_db8
from silentspeech.data.gestures.splits import PROTOCOL_SPLITS, random_unit_split, split_segments
from silentspeech.data.gestures.uci import read_uci_emg
from silentspeech.data.gestures.windows import GestureWindows, channel_statistics
from silentspeech.data.synthetic.gestures import SyntheticGestures, generate_gesture_recordings
from silentspeech.preprocessing import GestureFiltering

log = logging.getLogger(__name__)


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
        segments += cut_recording(recording.emg, synthetic.rate, recording.labels, units, filtering, target_rate, source)
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
