"""The shared figures: drawn headless, saved atomically as PNG."""

import numpy as np
import pytest

from silentspeech import figures
from silentspeech.features import mfcc_from_log_mel
from silentspeech.preprocessing import EMG_RATE


def test_emg_figure_has_a_raw_and_a_filtered_panel(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(1000, 8)) * np.arange(1, 9)
    filtered = rng.normal(size=(int(EMG_RATE), 8)).astype(np.float32)
    figure = figures.emg_figure(raw, 1000.0, filtered, title="utterance")
    assert [axis.get_ylabel() for axis in figure.axes] == ["raw (1000 Hz)", "filtered (689.062 Hz)"]
    path = figures.save_figure(figure, tmp_path / "emg.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["emg.png"]  # no temporary file left


def test_spectrogram_figure_inverts_mfcc_to_the_same_log_mel():
    log_mel = np.random.default_rng(1).normal(size=(50, 80)).astype(np.float32)
    from_mfcc = figures.spectrogram_figure(mfcc_from_log_mel(log_mel), mfcc_from_log_mel(log_mel[:40]))
    from_log_mel = figures.spectrogram_figure(log_mel, features="log_mel")
    drawn = from_mfcc.axes[0].images[0].get_array()
    np.testing.assert_allclose(drawn, log_mel.T, atol=1e-4)
    np.testing.assert_allclose(from_log_mel.axes[0].images[0].get_array(), log_mel.T)
    assert len(from_mfcc.axes[1].images) == 1  # the true panel


def test_spectrogram_figure_names_an_unknown_feature_kind():
    with pytest.raises(ValueError, match="features must be"):
        figures.spectrogram_figure(np.zeros((5, 80)), features="linear")
