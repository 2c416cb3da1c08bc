"""Gesture readers, splits and windows on tiny files in each dataset's real format."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.io
import scipy.signal

from silentspeech.data.gestures.corpus import GestureDataError
from silentspeech.data.gestures.epn612 import read_epn612
from silentspeech.data.gestures.folder import FolderFormat, read_labelled_folder
from silentspeech.data.gestures.ninapro import DB8_DOF_TO_DOA, read_ninapro_db5, read_ninapro_db8
from silentspeech.data.gestures.recipe import GestureDataConfig, load_gesture_data
from silentspeech.data.gestures.splits import random_unit_split, split_segments
from silentspeech.data.gestures.uci import read_uci_emg
from silentspeech.data.gestures.windows import GestureWindows, channel_statistics
from silentspeech.data.synthetic.gestures import SyntheticGestures, generate_gesture_recordings
from silentspeech.preprocessing import EMGError, GestureFiltering, condition_emg

RNG = np.random.default_rng(0)


def assert_no_overlap(a: GestureWindows, b: GestureWindows) -> None:
    """No window of ``b`` shares a sample of the same file with a window of ``a``."""
    spans = defaultdict(list)
    for source, start, end in a.spans():
        spans[source].append((start, end))
    for source, start, end in b.spans():
        for s, e in spans.get(source, []):
            assert end <= s or e <= start, f"{source}: window {start}-{end} overlaps {s}-{e}"


def windows(segments, length=40, stride=20, pad_short=False):
    mean, std = channel_statistics(segments)
    return GestureWindows(segments, length, stride, mean, std, pad_short)


# --- filtering ------------------------------------------------------------------


def test_condition_emg_removes_offset_and_mains_and_resamples():
    t = np.arange(4000) / 1000.0
    tone = np.sin(2 * np.pi * 60 * t)
    emg = np.stack([tone + 5.0 + 3 * np.sin(2 * np.pi * 50 * t), tone], axis=1)
    out = condition_emg(emg, 1000.0, GestureFiltering(20, 450, 4, 50), target_rate=500.0)
    assert out.shape == (2000, 2) and out.dtype == np.float32
    middle = out[500:-500]  # away from the notch's edge transients (time constant ~0.2 s)
    assert abs(middle[:, 0].mean()) < 0.05  # DC gone
    assert np.allclose(middle[:, 0], middle[:, 1], atol=0.1)  # 50 Hz hum gone, 60 Hz tone kept


def _filters_spelt_out(emg, rate, sos, mains, target_rate):
    """Zero-phase ``sos`` (padding shortened to the recording), notches at every mains harmonic below Nyquist, soxr."""
    x = scipy.signal.sosfiltfilt(sos, emg, axis=0, padlen=min(3 * (2 * len(sos) + 1), emg.shape[0] - 1))
    for harmonic in np.arange(mains, rate / 2, mains):
        x = scipy.signal.filtfilt(*scipy.signal.iirnotch(harmonic, 30.0, fs=rate), x, axis=0)
    if target_rate != rate:
        x = librosa.resample(np.ascontiguousarray(x.T), orig_sr=rate, target_sr=target_rate, res_type="soxr_hq", fix=False).T
    return x.astype(np.float32)


@pytest.mark.parametrize(
    "rate, filtering, target_rate, band, btype",
    [
        (1000.0, GestureFiltering(20, 450, 4, 50), 500.0, [20, 450], "bandpass"),
        (200.0, GestureFiltering(), 200.0, [20, 90], "bandpass"),  # TinyMyo's downstream default
        (200.0, GestureFiltering(20, 450, 4, 60), 400.0, 20, "highpass"),  # 450 Hz is beyond Nyquist: dropped
        (200.0, GestureFiltering(0, 60, 3, 50), 200.0, 60, "lowpass"),  # odd order: scipy's own padding would differ
    ],
)
def test_condition_emg_is_the_gesture_readers_filters_spelt_out(rate, filtering, target_rate, band, btype):
    """The gesture and pretraining filters moved to silentspeech.preprocessing; their numbers must not move."""
    emg = RNG.standard_normal((700, 3)) * 40 + 7
    sos = scipy.signal.butter(filtering.order, band, btype=btype, fs=rate, output="sos")
    expected = _filters_spelt_out(emg, rate, sos, filtering.notch, target_rate)
    np.testing.assert_allclose(condition_emg(emg, rate, filtering, target_rate), expected, rtol=0, atol=1e-5)
    short = emg[:40]  # shorter than scipy's default padding for some designs
    np.testing.assert_allclose(condition_emg(short, rate, filtering, target_rate), _filters_spelt_out(short, rate, sos, filtering.notch, target_rate), rtol=0, atol=1e-5)


def test_condition_emg_rejects_nan_and_tiny_input():
    bad = np.ones((100, 2))
    bad[5, 1] = np.nan
    with pytest.raises(EMGError, match="NaN"):
        condition_emg(bad, 200.0, source="x.csv")
    with pytest.raises(EMGError, match="x.csv: 10 samples is too short"):
        condition_emg(np.ones((10, 2)), 200.0, source="x.csv")


# --- NinaPro DB5 --------------------------------------------------------------------


def write_db5(folder: Path, subject=1, exercise=1, movements=2, rest=30, hold=50, **override) -> Path:
    emg, stim, rep = [], [], []
    for m in range(1, movements + 1):
        for r in range(1, 7):
            emg.append(RNG.standard_normal((rest, 16)))
            stim += [0] * rest
            rep += [0] * rest
            emg.append(RNG.standard_normal((hold, 16)) * (1 + m))
            stim += [m] * hold
            rep += [r] * hold
    arrays = {"emg": np.concatenate(emg), "restimulus": np.array(stim)[:, None], "rerepetition": np.array(rep)[:, None]}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = folder / f"s{subject}" / f"S{subject}_E{exercise}_A1.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, arrays)
    return path


def test_db5_labels_repetitions_and_split(tmp_path):
    write_db5(tmp_path, exercise=1)
    write_db5(tmp_path, exercise=2)
    corpus = read_ninapro_db5(tmp_path)
    assert corpus.rate == 200.0 and corpus.channels == 16 and len(corpus.class_names) == 53
    labels = {s.label for s in corpus.segments}
    assert labels == {0, 1, 2, 13, 14}  # E2 movements continue after E1's 12
    assert {s.unit for s in corpus.segments} == {str(r) for r in range(1, 7)}
    movement = [s for s in corpus.segments if s.label == 1]
    assert all(s.emg.shape[0] == 50 for s in movement)
    # every rest stretch belongs to the repetition that follows it
    for rest, following in zip(corpus.segments, corpus.segments[1:]):
        if rest.label == 0 and rest.source == following.source:
            assert rest.unit == following.unit and rest.emg.shape[0] == 30
    splits = split_segments(corpus.segments, {"train": ["1", "2", "5"], "val": ["4", "6"], "test": ["3"]})
    assert {s.unit for s in splits["test"]} == {"3"}
    train, test = windows(splits["train"], 30, 15), windows(splits["test"], 30, 15)
    assert len(train) > 0 and len(test) > 0
    assert set(np.unique(test.labels)) == labels
    assert_no_overlap(train, test)
    item = train[0]
    assert item["emg"].shape == (16, 30) and item["label"].dtype.is_floating_point is False


@pytest.mark.parametrize(
    "override, message",
    [
        ({"rerepetition": None}, "missing key.*rerepetition"),
        ({"emg": RNG.standard_normal((100, 8))}, "16 channels"),
        ({"restimulus": np.zeros((7, 1))}, "restimulus.*one value per EMG sample"),
    ],
)
def test_db5_malformed_files_name_file_and_problem(tmp_path, override, message):
    path = write_db5(tmp_path, **override)
    with pytest.raises(GestureDataError, match=message) as err:
        read_ninapro_db5(tmp_path)
    assert path.name in str(err.value)


def test_db5_truncated_file(tmp_path):
    path = write_db5(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GestureDataError, match="not a readable .mat"):
        read_ninapro_db5(tmp_path)


def test_db5_empty_folder(tmp_path):
    with pytest.raises(GestureDataError, match="no NinaPro DB5 files"):
        read_ninapro_db5(tmp_path)


# --- NinaPro DB8 --------------------------------------------------------------------


def write_db8(folder: Path, acquisition: str, samples=600, nan_rows=(), **override) -> Path:
    glove = np.cumsum(RNG.standard_normal((samples, 18)), axis=0)
    for row in nan_rows:
        glove[row] = np.nan
    arrays = {"emg": RNG.standard_normal((samples, 16)), "glove": glove}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = folder / f"S1_E1_{acquisition}.mat"
    scipy.io.savemat(path, arrays)
    return path


def test_db8_targets_nan_rows_and_split(tmp_path):
    for acquisition in ("A1", "A2", "A3"):
        write_db8(tmp_path, acquisition, nan_rows=range(300, 310) if acquisition == "A1" else ())
    corpus = read_ninapro_db8(tmp_path)
    assert corpus.skipped["samples with NaN glove"] == 10
    assert corpus.target_names and not corpus.class_names
    a1 = [s for s in corpus.segments if s.unit == "A1"]
    assert [s.emg.shape[0] for s in a1] == [300, 290]  # cut at the NaN rows, no window crosses them
    glove = scipy.io.loadmat(tmp_path / "S1_E1_A2.mat")["glove"]
    a2 = next(s for s in corpus.segments if s.unit == "A2")
    assert np.allclose(a2.targets, glove @ DB8_DOF_TO_DOA.T, atol=1e-4)
    splits = split_segments(corpus.segments, {"train": ["A1", "A2"], "val": [], "test": ["A3"]}, val_tail=0.2)
    train, val, test = (windows(splits[k], 100, 50) for k in ("train", "val", "test"))
    assert len(val) > 0 and len(test) > 0
    assert train[0]["targets"].shape == (100, 5)
    assert_no_overlap(train, val)
    assert_no_overlap(train, test)


def test_db8_missing_glove_and_bad_glove_shape(tmp_path):
    write_db8(tmp_path, "A1", glove=None)
    with pytest.raises(GestureDataError, match="S1_E1_A1.mat: missing key.*glove"):
        read_ninapro_db8(tmp_path)
    write_db8(tmp_path, "A1", glove=np.zeros((600, 5)))
    with pytest.raises(GestureDataError, match="'glove' has shape"):
        read_ninapro_db8(tmp_path)


# --- EPN-612 ---------------------------------------------------------------------------


def epn_sample(gesture: str | None, samples=300, channels=8) -> dict:
    sample = {"startTime": 0, "emg": {f"ch{c}": RNG.integers(-128, 128, samples).tolist() for c in range(1, channels + 1)}}
    if gesture is not None:
        sample["gestureName"] = gesture
    return sample


def write_epn_user(root: Path, group: str, user: int, training, testing) -> Path:
    path = root / group / f"user{user}" / f"user{user}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "generalInfo": {"samplingFrequencyInHertz": 200},
        "trainingSamples": {f"idx_{i + 1}": s for i, s in enumerate(training)},
        "testingSamples": {f"idx_{i + 1}": s for i, s in enumerate(testing)},
    }
    path.write_text(json.dumps(content))
    return path


def test_epn612_units_calibration_and_unlabelled(tmp_path):
    gestures = ["noGesture", "fist", "waveIn"]
    write_epn_user(tmp_path, "trainingJSON", 1, [epn_sample(g) for g in gestures * 2], [epn_sample(g) for g in gestures])
    write_epn_user(tmp_path, "testingJSON", 2, [epn_sample(g) for g in gestures * 3], [epn_sample(None) for _ in range(4)])
    corpus = read_epn612(tmp_path, calibration_per_gesture=1)
    assert corpus.skipped["unlabelled samples"] == 4
    units = defaultdict(int)
    for s in corpus.segments:
        units[s.unit] += 1
    assert units == {
        "trainingJSON/trainingSamples": 6,
        "trainingJSON/testingSamples": 3,
        "testingJSON/calibration": 3,
        "testingJSON/trainingSamples": 6,
    }
    config = GestureDataConfig(dataset="epn612", root=str(tmp_path), window=200, stride=100, epn_calibration_per_gesture=1)
    data = load_gesture_data(config)
    assert data.class_names[0] == "noGesture" and len(data.class_names) == 6
    assert len(data.test) == 6 * 2  # 300 samples -> 2 windows each
    assert_no_overlap(data.train, data.test)


def test_epn612_malformed_sample(tmp_path):
    broken = epn_sample("fist")
    del broken["emg"]["ch5"]
    path = write_epn_user(tmp_path, "trainingJSON", 1, [epn_sample("fist"), broken], [])
    with pytest.raises(GestureDataError, match=r"user1.json trainingSamples/idx_2: 'emg' lacks channel\(s\) \['ch5'\]"):
        read_epn612(tmp_path)
    path.write_text("{not json")
    with pytest.raises(GestureDataError, match="not valid JSON"):
        read_epn612(tmp_path)


# --- UCI EMG for gestures ----------------------------------------------------------------


def write_uci(root: Path, subject: int, classes=(0, 1, 0, 2, 0, 7, 0, 3), run=400, columns=10) -> Path:
    rows, t = [], 0
    for cls in classes:
        for _ in range(run):
            t += 1
            rows.append([t, *(RNG.standard_normal(8) * 1e-4 * (cls + 1)), cls][:columns])
    path = root / f"{subject:02d}" / "1_raw_data_13-12_22.03.16.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "time\tchannel1\tchannel2\tchannel3\tchannel4\tchannel5\tchannel6\tchannel7\tchannel8\tclass\n"
    text += "\n".join("\t".join(f"{v:.6g}" for v in row) for row in rows) + "\n"
    path.write_text(text)
    return path


def test_uci_rate_from_time_column_classes_and_subject_split(tmp_path):
    for subject in (1, 25, 31):
        write_uci(tmp_path, subject)
    corpus = read_uci_emg(tmp_path)
    assert corpus.rate == 1000.0
    assert corpus.skipped["unmarked samples (class 0)"] == 3 * 4 * 400
    assert corpus.skipped["samples of classes outside the task"] == 3 * 400  # class 7 without include_extended_palm
    assert {s.label for s in corpus.segments} == {0, 1, 2}  # classes 1-3 -> 0-2
    data = load_gesture_data(GestureDataConfig(dataset="uci_emg", root=str(tmp_path), window=200, stride=100))
    assert {s.unit for s in data.test.segments} == {"31"} and {s.unit for s in data.val.segments} == {"25"}
    assert_no_overlap(data.train, data.test)
    assert len(read_uci_emg(tmp_path, include_extended_palm=True).class_names) == 7


def test_uci_malformed_rows(tmp_path):
    write_uci(tmp_path, 1, columns=9)
    with pytest.raises(GestureDataError, match="10 columns"):
        read_uci_emg(tmp_path)


# --- a folder of labelled CSV / NPY ----------------------------------------------------------


def write_word_csv(folder: Path, name: str, label: str, samples=300) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Timestamp,CH1,CH2,Label,Phase"]
    for i in range(samples):
        a, b = RNG.integers(1800, 2200, 2)
        lines.append(f"{1000 + 4 * i},{a},{b},{label},Phase_3_Mouthing")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_folder_label_column_file_split(tmp_path):
    for label in ("UP", "DOWN", "LEFT"):
        for i in range(5):
            write_word_csv(tmp_path, f"{label}_{i:03d}_20260211.csv", label)
    corpus = read_labelled_folder(tmp_path, 250.0, FolderFormat(label_column="Label"))
    assert corpus.class_names == ["DOWN", "LEFT", "UP"] and corpus.channels == 2  # Timestamp, Phase left out
    units = random_unit_split(corpus.segments, 0.2, 0.2, seed=0)
    test_labels = {s.label for s in corpus.segments if s.unit in units["test"]}
    assert test_labels == {0, 1, 2}  # stratified: every word in the test files
    splits = split_segments(corpus.segments, units)
    assert_no_overlap(windows(splits["train"], 100, 50), windows(splits["test"], 100, 50))


def test_folder_label_from_filename_npy_and_unlabelled_file(tmp_path):
    for label in ("fist", "open"):
        for i in range(3):
            np.save(tmp_path / f"{label}_{i}.npy", RNG.standard_normal((400, 4)))
    np.save(tmp_path / "calibration.npy", RNG.standard_normal((400, 4)))
    form = FolderFormat(pattern="*.npy", label_from="filename")
    corpus = read_labelled_folder(tmp_path, 200.0, form)
    assert corpus.class_names == ["fist", "open"] and len(corpus.segments) == 6
    assert corpus.skipped["files without a label in their name"] == 1


def test_folder_alternating_labels_split_by_segment(tmp_path):
    """A headerless Myo-style file (8 channels + label) cut into runs; split by run."""
    for gesture in (1, 2):
        rows = []
        for block in range(8):
            label = gesture if block % 2 else 0
            rows += [",".join(map(str, [*RNG.integers(-128, 128, 8), label])) for _ in range(200)]
        (tmp_path / f"{gesture}.txt").write_text("\n".join(rows))
    form = FolderFormat(pattern="*.txt", label_column="-1")
    corpus = read_labelled_folder(tmp_path, 200.0, form)
    assert corpus.class_names == ["0", "1", "2"] and corpus.channels == 8 and len(corpus.segments) == 16
    units = random_unit_split(corpus.segments, 0.25, 0.25, seed=1, by="segment")
    splits = split_segments(corpus.segments, units)
    assert {s.label for s in splits["test"]} == {0, 1, 2}
    assert_no_overlap(windows(splits["train"], 100, 25), windows(splits["test"], 100, 25))


def test_folder_malformed_files(tmp_path):
    write_word_csv(tmp_path, "UP_1.csv", "UP")
    (tmp_path / "DOWN_1.csv").write_text("Timestamp,CH1,CH2,Label\n1,2,oops,DOWN\n2,3,4,DOWN\n")
    with pytest.raises(GestureDataError, match="DOWN_1.csv: non-numeric value"):
        read_labelled_folder(tmp_path, 250.0, FolderFormat(label_column="Label", channel_columns=["CH1", "CH2"]))
    with pytest.raises(GestureDataError, match="no column named 'gesture'"):
        read_labelled_folder(tmp_path, 250.0, FolderFormat(label_column="gesture"))
    with pytest.raises(GestureDataError, match="sampling rate"):
        read_labelled_folder(tmp_path, 0.0)


def test_folder_channel_count_mismatch(tmp_path):
    np.save(tmp_path / "a_1.npy", RNG.standard_normal((100, 4)))
    np.save(tmp_path / "b_1.npy", RNG.standard_normal((100, 3)))
    with pytest.raises(GestureDataError, match="differ in channel count"):
        read_labelled_folder(tmp_path, 200.0, FolderFormat(pattern="*.npy", label_from="filename"))


# --- splits and windows --------------------------------------------------------------------------


def test_unit_in_two_splits_is_an_error():
    with pytest.raises(GestureDataError, match="'3' is in both"):
        split_segments([], {"train": ["1", "3"], "test": ["3"]})


def test_windows_pad_short_and_zscore_from_training_only(tmp_path):
    write_db5(tmp_path)
    data = load_gesture_data(GestureDataConfig(dataset="ninapro_db5", root=str(tmp_path), window=40, stride=20, pad_short=True))
    stacked = np.concatenate([s.emg for s in data.train.segments])
    assert np.allclose(data.train.mean, stacked.mean(axis=0), atol=1e-4)
    short = [k for k, (i, _) in enumerate(data.train.index) if data.train.segments[i].emg.shape[0] < 40]
    assert short  # the 30-sample rests give one padded window each
    item = data.train[short[0]]
    assert item["emg"].shape == (16, 40) and float(item["emg"][:, 30:].abs().max()) == 0.0
    strict = load_gesture_data(GestureDataConfig(dataset="ninapro_db5", root=str(tmp_path), window=40, stride=20))
    assert strict.skipped["train segments shorter than a window"] > 0


def test_empty_split_error_lists_units(tmp_path):
    write_db5(tmp_path)
    config = GestureDataConfig(dataset="ninapro_db5", root=str(tmp_path), window=40, train=["1"], val=["9"], test=["3"])
    with pytest.raises(GestureDataError, match="val split holds no windows.*units in the corpus: 1, 2"):
        load_gesture_data(config)


# --- synthetic gestures -------------------------------------------------------------------------------


def test_synthetic_gestures_deterministic_and_balanced():
    config = SyntheticGestures(classes=4, channels=6, subjects=2, repetitions=3, seed=3)
    a, b = generate_gesture_recordings(config), generate_gesture_recordings(config)
    assert len(a) == 2 and np.array_equal(a[0].emg, b[0].emg)
    labels = a[0].labels[a[0].labels >= 0]
    assert np.bincount(labels).tolist() == [3 * 400] * 4  # 2 s holds at 200 Hz
    assert a[0].emg.shape[1] == 6 and np.isfinite(a[0].emg).all()
    # class patterns differ across channels: per-class channel RMS vectors are distinct
    rms = np.stack([np.sqrt((a[0].emg[a[0].labels == k] ** 2).mean(axis=0)) for k in range(4)])
    assert np.linalg.matrix_rank(rms) == 4


def test_synthetic_protocol_split_by_repetition():
    data = load_gesture_data(GestureDataConfig(dataset="synthetic", synthetic=SyntheticGestures(repetitions=4)))
    assert {s.unit for s in data.test.segments} == {"4"} and {s.unit for s in data.val.segments} == {"3"}
    assert_no_overlap(data.train, data.test)


# --- the real recordings in ../shared/data ---------------------------------------------------------------


def myo_config(shared_data: Path, **kw) -> GestureDataConfig:
    return GestureDataConfig(
        dataset="folder",
        root=str(shared_data / "real/myo_gestures/_readings_right_hand"),
        rate=200.0,
        window=200,
        stride=100,
        split_by="segment",
        folder=FolderFormat(pattern="**/*.txt", label_column="-1"),
        **kw,
    )


def words_config(shared_data: Path, **kw) -> GestureDataConfig:
    return GestureDataConfig(
        dataset="folder",
        root=str(shared_data / "real/somach_silent_words/Phase_3_Mouthing"),
        rate=250.0,
        window=400,
        stride=400,
        pad_short=True,
        notch=60.0,
        folder=FolderFormat(label_column="Label"),
        **kw,
    )


def test_real_myo_gestures(shared_data):
    data = load_gesture_data(myo_config(shared_data))
    assert data.channels == 8 and data.class_names == [str(k) for k in range(8)]
    for split in (data.train, data.val, data.test):
        assert set(np.unique(split.labels)) == set(range(8))
    assert_no_overlap(data.train, data.test)
    assert_no_overlap(data.train, data.val)


def test_real_mouthed_words(shared_data):
    data = load_gesture_data(words_config(shared_data))
    assert data.channels == 2 and data.class_names == ["DOWN", "LEFT", "NOISE", "RIGHT", "SILENCE", "UP"]
    assert len(data.test) == len({s.source for s in data.test.segments})  # one window per held-out file
    train_files = {s.source for s in data.train.segments}
    assert not train_files & {s.source for s in data.test.segments}
