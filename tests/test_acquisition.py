"""Live acquisition and `silentspeech record`: BrainFlow's synthetic and playback boards and LSL on loopback, for real."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from silentspeech.acquisition.quality import signal_quality
from silentspeech.acquisition.sources import (
    AcquisitionError,
    Connection,
    PackageCounter,
    board_id,
    open_source,
    parse_channels,
    write_playback_file,
)
from silentspeech.cli import main
from silentspeech.data.gaddy import read_corpus

PROMPTS = "The man saw the house.\nA dog ran to the hill.\n\nShe read the old book.\n"


def record(tmp_path, *extra: str) -> int:
    return main(["record", str(tmp_path / "corpus"), "--board", "synthetic", "--channels", "1-8", "--session", "s1", "--no-audio", *extra])


def test_record_writes_a_session_that_inspect_and_prepare_read_without_a_skip(tmp_path, capsys):
    from silentspeech.data.cache import prepare_cache

    (tmp_path / "prompts.txt").write_text(PROMPTS)
    prompts = ["--prompts", str(tmp_path / "prompts.txt"), "--seconds", "0.6"]
    assert record(tmp_path, *prompts, "--mode", "voiced", "--count", "2") == 0
    assert record(tmp_path, *prompts, "--mode", "voiced") == 0  # resumes: take 2, sentence 2
    assert record(tmp_path, *prompts, "--mode", "silent", "--count", "1") == 0
    out = capsys.readouterr().out
    assert "takes 2 to 2, prompts 2 to 2 of prompts.txt" in out and "mains" in out
    voiced = tmp_path / "corpus" / "voiced_parallel_data" / "s1"
    info = json.loads((voiced / "2_info.json").read_text())
    assert (info["text"], info["book"], info["sentence_index"], info["rate"], info["board_rate"]) == (
        "She read the old book.", "prompts.txt", 2, 1000.0, 250.0)
    emg = np.load(voiced / "2_emg.npy")
    assert emg.shape[1] == 8 and emg.shape[0] == sum(c[0] for c in info["chunks"]) >= 600  # resampled to 1000 Hz

    corpus = read_corpus(tmp_path / "corpus", check_values=True)
    assert corpus.skipped == [] and len(corpus.utterances) == 4
    assert next(u for u in corpus.utterances if u.silent).twin == "voiced_parallel_data/s1/0"
    assert main(["inspect", str(tmp_path / "corpus")]) == 0
    assert "problems: 0 utterances skipped" in capsys.readouterr().out
    report = prepare_cache(tmp_path / "corpus", tmp_path / "cache", workers=0)
    assert report.skipped == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--board", "nosuchboard"], "unknown board 'nosuchboard'"),
        (["--board", "cyton", "--serial-port", "/dev/no-such-port"], "board cyton (serial port /dev/no-such-port): cannot be opened"),
        (["--board", "lsl:never-there", "--timeout", "0.3"], "LSL stream 'never-there': none appeared within 0.3 s"),
        (["--board", "synthetic"], "board synthetic: delivers 16 EMG channels but 8 are needed; choose 8 with --channels"),
        (["--board", "synthetic", "--channels", "1-8", "--prompts", "EMPTY"], "empty.txt: no prompts in it (an empty file)"),
    ],
)
def test_record_names_bad_input_in_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "prompts.txt").write_text(PROMPTS)
    prompts = [] if "--prompts" in argv else ["--prompts", str(tmp_path / "prompts.txt")]
    argv = [str(tmp_path / "empty.txt") if a == "EMPTY" else a for a in argv]
    assert main(["record", str(tmp_path / "corpus"), *argv, *prompts, "--mode", "voiced", "--seconds", "0.2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    # The board was released: the same board opens again at once.
    if "synthetic" in argv:
        with open_source("synthetic") as source:
            assert source.rate == 250.0


def test_a_wrong_wifi_address_is_named():
    with pytest.raises(AcquisitionError, match=r"board cyton-wifi \(10\.255\.255\.1:8001\): cannot be opened"):
        open_source("cyton-wifi", Connection(ip_address="10.255.255.1", timeout=1))


def test_board_names_and_channels():
    assert board_id("synthetic") == -1 and board_id("cyton-wifi") == 5 and board_id("ganglion") == board_id("1") == 1
    with pytest.raises(AcquisitionError, match="BrainFlow has no board id 999"):
        board_id("999")
    assert parse_channels("1-3,5") == [1, 2, 3, 5]
    with pytest.raises(ValueError, match="--channels '0-2'"):
        parse_channels("0-2")


def test_package_counter_counts_skips_across_blocks_and_the_wrap(caplog):
    counter = PackageCounter("board x")
    with caplog.at_level(logging.WARNING):
        assert counter.update(np.array([250, 251, 252])) == 0
        assert counter.update(np.array([255, 0, 1])) == 2  # 253 and 254 lost between blocks
        assert counter.update(np.array([5])) == 3  # 2, 3, 4 lost across the wrap
    assert (counter.dropped, counter.skips) == (5, 2)
    assert "board x: skip from package 252 to 255 (2 samples lost)" in caplog.text


def test_playback_file_replays_every_sample_at_the_master_rate(tmp_path):
    emg = np.random.default_rng(0).normal(0, 20, (400, 8))
    write_playback_file(tmp_path / "take.csv", emg)
    with open_source(f"playback:{tmp_path / 'take.csv'}") as source:
        assert source.rate == 1000.0 and source.channels == 8
        got = np.concatenate([block for block, _ in source.blocks()])
    np.testing.assert_allclose(got, emg, atol=1e-6)  # the file holds six decimals
    assert source.dropped == 0


def test_quality_line_sees_mains_hum_and_a_dead_channel():
    t = np.arange(1000) / 1000
    emg = np.random.default_rng(0).normal(0, 10, (1000, 3))
    emg[:, 1] += 30 * np.sin(2 * np.pi * 50 * t)
    emg[:, 2] = 0.0
    quality = signal_quality(emg, 1000.0)
    assert quality.mains_hz == 50 and quality.mains_rms[1] == pytest.approx(30 / np.sqrt(2), rel=0.1)
    assert quality.emg_rms[0] == pytest.approx(10 * np.sqrt(0.9), rel=0.15) and quality.emg_rms[2] == 0
    assert "mains 50 Hz max 21" in quality.line(["a", "b", "c"])


def test_record_with_key_starts_and_stops_each_take_on_enter(tmp_path, monkeypatch, capsys):
    """Enter is pressed through a real pipe on stdin: start at once, stop after about 0.5 s."""
    import os
    import threading
    import time

    (tmp_path / "prompts.txt").write_text(PROMPTS)
    read_end, write_end = os.pipe()
    monkeypatch.setattr("sys.stdin", os.fdopen(read_end, "r"))

    def press_enter() -> None:
        os.write(write_end, b"\n")  # starts the take
        time.sleep(0.5)
        os.write(write_end, b"\n")  # stops it
        os.close(write_end)

    threading.Thread(target=press_enter, daemon=True).start()
    assert record(tmp_path, "--prompts", str(tmp_path / "prompts.txt"), "--key", "--mode", "voiced", "--count", "1") == 0
    assert "Enter starts the take" in capsys.readouterr().out
    emg = np.load(tmp_path / "corpus" / "voiced_parallel_data" / "s1" / "0_emg.npy")
    assert 0.3 <= emg.shape[0] / 1000 <= 1.5  # the time between the two presses, at 1000 Hz
