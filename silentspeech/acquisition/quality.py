"""The signal-quality line shown while recording: EMG level per channel and the mains hum.

Both come from one Hann-windowed periodogram of the newest second of raw EMG
per channel: the *EMG RMS* is the root of the power from
:data:`EMG_LOW_HZ` up to the Nyquist frequency outside the mains bands (so a
drifting electrode offset, which dominates a raw OpenBCI signal, does not
count), and the *mains level* the root of the power within
:data:`MAINS_BAND_HZ` of 50 or 60 Hz, whichever is larger over the channels.
A dead or unplugged electrode shows as a near-zero RMS; a loose one as a
mains level near or above its EMG RMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.signal

#: Lowest frequency counted as EMG, Hz (below: motion artefact and electrode drift).
EMG_LOW_HZ = 20.0
#: Half-width of the band counted as mains hum around 50 and 60 Hz, Hz.
MAINS_BAND_HZ = 2.0
#: Newest EMG the line is measured on, seconds.
QUALITY_WINDOW_S = 1.0


@dataclass(frozen=True)
class SignalQuality:
    """EMG and mains levels per channel, in the source's units (microvolts for OpenBCI boards)."""

    emg_rms: np.ndarray  #: (channels,) RMS from EMG_LOW_HZ up, mains bands left out
    mains_hz: float  #: 50 or 60: the larger hum
    mains_rms: np.ndarray  #: (channels,) RMS within MAINS_BAND_HZ of mains_hz

    def line(self, names: Sequence[str]) -> str:
        """One terminal line: ``RMS EXG1 12.3 EXG2 ... | mains 60 Hz max 4.1 (EXG3)``."""
        levels = " ".join(f"{name} {value:.1f}" for name, value in zip(names, self.emg_rms))
        worst = int(np.argmax(self.mains_rms))
        return f"RMS {levels} | mains {self.mains_hz:g} Hz max {self.mains_rms[worst]:.1f} ({names[worst]})"


def signal_quality(emg: np.ndarray, rate: float) -> SignalQuality:
    """Levels of the newest :data:`QUALITY_WINDOW_S` of raw EMG ``(samples, channels)`` at ``rate`` Hz (module docstring)."""
    emg = np.asarray(emg, dtype=np.float64)[-int(QUALITY_WINDOW_S * rate) :]
    freqs, density = scipy.signal.periodogram(emg, rate, window="hann", detrend="linear", axis=0)
    step = freqs[1] - freqs[0] if len(freqs) > 1 else rate
    mains = {hz: np.abs(freqs - hz) <= MAINS_BAND_HZ for hz in (50.0, 60.0)}
    hum = {hz: np.sqrt(density[band].sum(axis=0) * step) for hz, band in mains.items()}
    mains_hz = max(hum, key=lambda hz: hum[hz].max())
    emg_band = (freqs >= EMG_LOW_HZ) & ~mains[50.0] & ~mains[60.0]
    return SignalQuality(np.sqrt(density[emg_band].sum(axis=0) * step), mains_hz, hum[mains_hz])
