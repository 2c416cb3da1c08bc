"""Shape statistics of surface EMG: spectrum, spikiness, cross-talk.

Four numbers say whether a recording looks like facial surface EMG, measured
after a 20 Hz high-pass and mains notches (what the preprocessing removes
anyway) with a Welch PSD:

* median frequency of the power in 20-300 Hz. Surface EMG of facial muscles
  puts most of its power in 50-150 Hz (motor-unit action potentials a few to
  ~15 ms wide, low-passed by the tissue; De Luca, "The use of surface
  electromyography in biomechanics", J. Appl. Biomech. 1997);
* the shares of that power in 20-60, 60-150 and 150-300 Hz;
* the mean excess kurtosis of each channel (0 for Gaussian noise; bursts of
  activity over quiet stretches raise it);
* the mean absolute correlation between channels (cross-talk: neighbouring
  electrodes see some of the same muscles).

A fifth number looks below that band: the share of the 2-300 Hz power that
lies in 2-20 Hz after the preprocessing's own 2 Hz high-pass. Skin and
electrode movement puts slow components there; the model sees them, so a
corpus with much more of it than real EMG is easier to learn from than real
EMG is.

The band stops at 300 Hz so that a 600 Hz recording (EMG-UKA) and a 1 kHz one
(Gaddy) are compared on the same frequencies. :data:`REAL_REFERENCE` holds the
figures of the 5 silent sentences of the EMG-UKA trial corpus (speaker 002,
session 001; Wand et al., "The EMG-UKA Corpus for Electromyographic Speech
Processing", Interspeech 2014), measured with :func:`emg_statistics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal
import scipy.stats

from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import Utterance
from silentspeech.preprocessing import RAW_EMG_RATE, EMGError, check_emg, highpass, notch_harmonics

log = logging.getLogger(__name__)

#: Analysis band, Hz: the shares and the median frequency are of the power in it.
BAND = (20.0, 300.0)
#: Sub-bands whose power shares are reported, Hz.
SUB_BANDS = ((20.0, 60.0), (60.0, 150.0), (150.0, 300.0))
#: High-pass applied before measuring, Hz (as the issue's reference measurement).
HIGHPASS_HZ = 20.0
#: Band of the slow share and the high-pass (cut-off Hz, order) before it: the preprocessing's own.
SLOW_BAND, SLOW_HIGHPASS = (2.0, 20.0), (2.0, 3)


@dataclass(frozen=True)
class EMGStatistics:
    """Shape statistics of a set of EMG recordings (see the module docstring)."""

    median_frequency: float  #: Hz, of the mean PSD in :data:`BAND`
    band_shares: tuple[float, float, float]  #: power shares of :data:`SUB_BANDS`
    kurtosis: float  #: mean excess kurtosis over channels and recordings (0 for Gaussian noise)
    channel_correlation: float  #: mean absolute off-diagonal correlation
    recordings: int
    slow_share: float = float("nan")  #: share of the 2-300 Hz power in :data:`SLOW_BAND` after :data:`SLOW_HIGHPASS`

    @property
    def high_share(self) -> float:
        """Share of the power above 150 Hz (within :data:`BAND`)."""
        return self.band_shares[2]

    def __str__(self) -> str:
        shares = " / ".join(f"{s:.2f}" for s in self.band_shares)
        bands = " / ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in SUB_BANDS)
        return (
            f"median frequency {self.median_frequency:.0f} Hz; power share {bands} Hz {shares}; "
            f"kurtosis {self.kurtosis:.1f}; channel correlation {self.channel_correlation:.2f}; "
            f"power share 2-20 Hz {self.slow_share:.3f} ({self.recordings} recordings)"
        )


#: The 5 EMG-UKA silent sentences (600 Hz, 6 channels, 50 Hz mains), measured with :func:`emg_statistics`.
REAL_REFERENCE = EMGStatistics(83.0, (0.24, 0.60, 0.16), 6.8, 0.15, 5, 0.025)


def emg_statistics(recordings: Sequence[np.ndarray], rate: float, mains: float = 60.0) -> EMGStatistics:
    """Statistics of raw EMG recordings, each ``(samples, channels)`` at ``rate`` Hz.

    Each recording is high-passed at 20 Hz and notched at ``mains`` and its
    harmonics; the Welch PSDs (1 s segments or the whole recording) of all
    channels and recordings are averaged, weighted by length. ``rate`` must
    be at least 600 Hz (the band reaches 300 Hz). Raises ``ValueError`` for
    no recordings, a recording shorter than 0.25 s, fewer than two channels,
    or NaN (naming the recording by its position).
    """
    if rate < 2 * BAND[1]:
        raise ValueError(f"EMG statistics need a rate of at least {2 * BAND[1]:.0f} Hz (got {rate})")
    if not recordings:
        raise ValueError("EMG statistics need at least one recording")
    grid = np.arange(0.0, BAND[1] + 1.0)
    psd_sum, slow_psd_sum = np.zeros_like(grid), np.zeros_like(grid)
    kurtoses, correlations = [], []
    for position, recording in enumerate(recordings):
        emg = check_emg(recording, source=f"recording {position}")
        if emg.shape[1] < 2:
            raise ValueError(f"recording {position}: needs at least 2 channels for the correlation (got {emg.shape[1]})")
        if emg.shape[0] < rate / 4:
            raise ValueError(f"recording {position}: {emg.shape[0]} samples is shorter than 0.25 s")
        filtered = notch_harmonics(highpass(emg, rate, HIGHPASS_HZ, order=4), rate, mains)
        psd_sum += _mean_psd_on_grid(filtered, rate, grid) * emg.shape[0]
        slow_filtered = notch_harmonics(highpass(emg, rate, *SLOW_HIGHPASS), rate, mains)
        slow_psd_sum += _mean_psd_on_grid(slow_filtered, rate, grid) * emg.shape[0]
        kurtoses.append(float(np.mean(scipy.stats.kurtosis(filtered, axis=0, fisher=True))))
        corr = np.corrcoef(filtered.T)
        correlations.append(float(np.abs(corr[~np.eye(corr.shape[0], dtype=bool)]).mean()))
    inside = (grid >= BAND[0]) & (grid < BAND[1])
    total = psd_sum[inside].sum()
    cumulative = np.cumsum(psd_sum[inside]) / total
    median = float(grid[inside][np.searchsorted(cumulative, 0.5)])
    shares = tuple(float(psd_sum[(grid >= lo) & (grid < hi)].sum() / total) for lo, hi in SUB_BANDS)
    slow_band, up_to_band_top = (grid >= SLOW_BAND[0]) & (grid < SLOW_BAND[1]), (grid >= SLOW_BAND[0]) & (grid < BAND[1])
    slow = float(slow_psd_sum[slow_band].sum() / slow_psd_sum[up_to_band_top].sum())
    return EMGStatistics(median, shares, float(np.mean(kurtoses)), float(np.mean(correlations)), len(recordings), slow)  # type: ignore[arg-type]


def _mean_psd_on_grid(emg: np.ndarray, rate: float, grid: np.ndarray) -> np.ndarray:
    """Welch PSD of ``(samples, channels)`` (1 s segments or the whole recording), averaged over
    channels and interpolated onto ``grid`` (Hz), so that short and long recordings add up."""
    freqs, psd = scipy.signal.welch(emg, fs=rate, nperseg=min(int(rate), emg.shape[0]), axis=0)
    return np.stack([np.interp(grid, freqs, psd[:, c]) for c in range(psd.shape[1])], axis=1).mean(axis=1)


def corpus_emg_statistics(
    utterances: Sequence[Utterance], sample: int = 20, mains: float = 60.0, rate: float = RAW_EMG_RATE
) -> EMGStatistics | None:
    """:func:`emg_statistics` of up to ``sample`` utterances of a Gaddy-layout corpus (raw EMG at ``rate`` Hz, Gaddy's 1 kHz).

    Silent utterances are measured when there are any (the acceptance figures
    of the synthetic corpus are about them), else voiced ones; the sample is
    spread evenly over the list. Utterances whose EMG cannot be read are left
    out (the count of measured ones is in the result). Returns None when
    none is left, or when ``rate`` is below the 600 Hz the statistics need.
    """
    pool = [u for u in utterances if u.silent] or list(utterances)
    if not pool or rate < 2 * BAND[1]:
        return None
    chosen = [pool[int(k)] for k in np.unique(np.linspace(0, len(pool) - 1, min(sample, len(pool))).round())]
    recordings = []
    for utterance in chosen:
        try:
            recordings.append(read_emg_file(utterance.emg_path, rate=rate).emg)
        except EMGError as err:
            log.warning("EMG statistics: %s", err)
    usable = [r for r in recordings if r.shape[0] >= rate / 4]
    return emg_statistics(usable, rate, mains) if usable else None
