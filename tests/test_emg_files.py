import json

import numpy as np
import pytest

from silentspeech.data.emg_files import read_emg_file, read_emg_files
from silentspeech.preprocessing import EMGError


def test_npy_needs_rate_and_checks_channels(tmp_path):
    path = tmp_path / "rec.npy"
    np.save(path, np.random.default_rng(0).normal(size=(500, 8)))
    with pytest.raises(EMGError, match="sampling rate must be given"):
        read_emg_file(path)
    rec = read_emg_file(path, rate=1000, channels=8)
    assert rec.emg.shape == (500, 8) and rec.rate == 1000
    with pytest.raises(EMGError, match="expected 6 channels, got 8"):
        read_emg_file(path, rate=1000, channels=6)


def test_gaddy_utterance_supplies_rate_and_text(tmp_path):
    np.save(tmp_path / "3_emg.npy", np.zeros((400, 8)))
    (tmp_path / "3_info.json").write_text(json.dumps({"text": "Hello there.", "sentence_index": 3}))
    rec = read_emg_file(tmp_path / "3_emg.npy")
    assert rec.rate == 1000 and rec.text == "Hello there."


def test_gaddy_files_apart_are_read_as_one_utterance(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()  # a browser upload puts every file in its own folder
    np.save(tmp_path / "a" / "3_emg.npy", np.zeros((400, 8)))
    (tmp_path / "b" / "3_info.json").write_text(json.dumps({"text": "Hello there."}))
    (tmp_path / "b" / "3_audio_clean.flac").write_bytes(b"ignored")
    rec = read_emg_files([tmp_path / "b" / "3_info.json", tmp_path / "a" / "3_emg.npy", tmp_path / "b" / "3_audio_clean.flac"])
    assert rec.rate == 1000 and rec.text == "Hello there." and rec.emg.shape == (400, 8)
    assert read_emg_files([tmp_path / "a" / "3_emg.npy"], rate=500).text is None


@pytest.mark.parametrize(
    "names, message",
    [
        (["3_info.json"], "no EMG file"),
        (["3_emg.npy", "4_emg.npy"], "one recording at a time: got 2 EMG files"),
        (["3_emg.npy", "4_info.json"], "4_info.json belongs to another utterance than 3_emg.npy"),
    ],
)
def test_file_sets_that_are_not_one_recording(tmp_path, names, message):
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(EMGError, match=message):
        read_emg_files([tmp_path / name for name in names], rate=1000)


def test_csv_with_header_and_time_column(tmp_path):
    path = tmp_path / "rec.csv"
    rows = ["time,ch1,ch2"] + [f"{i / 250},{i},{-i}" for i in range(300)]
    path.write_text("\n".join(rows))
    rec = read_emg_file(path, rate=250)
    assert rec.emg.shape == (300, 2)
    assert rec.emg[10, 0] == 10 and rec.emg[10, 1] == -10


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.npy", b"", "empty"),
        ("trunc.npy", None, "not a readable .npy"),
        ("nan.npy", "nan", "NaN"),
        ("flat.npy", "1d", "expected a \\(samples, channels\\)"),
        ("notes.csv", b"hello,world\nfoo,bar\n", "non-numeric"),
        ("notes.txt", b"Just a note, not EMG.\n", "no numeric rows"),
        ("audio.wav", b"RIFF", "unsupported EMG file type"),
    ],
)
def test_bad_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((100, 8)))
        path.write_bytes(path.read_bytes()[:-300])
    elif content == "nan":
        arr = np.zeros((100, 8))
        arr[5, 2] = np.nan
        np.save(path, arr)
    elif content == "1d":
        np.save(path, np.zeros(100))
    else:
        path.write_bytes(content)
    with pytest.raises(EMGError, match=message) as err:
        read_emg_file(path, rate=1000)
    assert name in str(err.value)
