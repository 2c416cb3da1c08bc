"""EMG shape statistics: bounds on bad input, the real EMG-UKA reference, and `inspect` printing them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silentspeech.cli import main
from silentspeech.emg_statistics import REAL_REFERENCE, emg_statistics

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "emg_uka_silent"


def test_white_noise_is_flat_gaussian_and_uncorrelated():
    rng = np.random.default_rng(0)
    stats = emg_statistics([rng.normal(0.0, 1.0, (3000, 4)) for _ in range(3)], 1000.0)
    assert stats.recordings == 3
    assert 140 <= stats.median_frequency <= 180  # the middle of 20-300 Hz, less the notched mains
    assert stats.band_shares[2] > 0.45 and abs(sum(stats.band_shares) - 1.0) < 1e-6
    assert abs(stats.kurtosis) < 0.3 and stats.channel_correlation < 0.05
    assert 0.04 < stats.slow_share < 0.08  # 18 of the 298 Hz


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 600 Hz"):
        emg_statistics([np.zeros((1000, 2))], 250.0)
    with pytest.raises(ValueError, match="at least one recording"):
        emg_statistics([], 1000.0)
    with pytest.raises(ValueError, match="recording 1: .*2 channels"):
        emg_statistics([np.ones((1000, 2)), np.ones((1000, 1))], 1000.0)
    with pytest.raises(ValueError, match="recording 0: .*NaN"):
        emg_statistics([np.full((1000, 2), np.nan)], 1000.0)
    with pytest.raises(ValueError, match="shorter than 0.25 s"):
        emg_statistics([np.ones((100, 2))], 1000.0)


@pytest.mark.skipif(not REAL.is_dir(), reason="needs ../shared/data/real/emg_uka_silent")
def test_real_emg_uka_silent_sentences_give_the_reference():
    recordings = [np.load(path)["emg"] for path in sorted(REAL.glob("*.npz"))]
    stats = emg_statistics(recordings, 600.0, mains=50.0)
    assert stats.recordings == 5
    assert abs(stats.median_frequency - REAL_REFERENCE.median_frequency) <= 2
    assert np.allclose(stats.band_shares, REAL_REFERENCE.band_shares, atol=0.01)
    assert abs(stats.kurtosis - REAL_REFERENCE.kurtosis) < 0.1
    assert abs(stats.channel_correlation - REAL_REFERENCE.channel_correlation) < 0.01
    assert abs(stats.slow_share - REAL_REFERENCE.slow_share) < 0.005


def test_inspect_prints_the_statistics_and_the_reference(tmp_path, capsys):
    from silentspeech.data.synthetic.speech import generate_corpus

    generate_corpus(tmp_path / "c", utterances=10, seed=1, sessions=1, silence_clips=1, progress=False)
    assert main(["inspect", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "EMG shape" in out and "median frequency" in out and "EMG-UKA" in out
