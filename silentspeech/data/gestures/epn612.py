"""EMG-EPN-612 (Myo armband, 5 gestures and no gesture) from its per-user JSON files.

The json module reads them; the layout of the samples and the published
protocol's split units are ours (docs/design.md, *Downstream heads and published results*).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from silentspeech.data.gestures.corpus import GestureCorpus, GestureDataError, Segment, cut_recording
from silentspeech.preprocessing import GestureFiltering

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
                segments += cut_recording(emg, rate, labels, units, filtering, target_rate, f"{path}#{kind}/{key}")
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
