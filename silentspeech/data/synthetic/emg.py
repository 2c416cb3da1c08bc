"""Surface EMG of muscles from their activation: motor-unit action potential trains.

A muscle is a pool of motor units. Each unit has a recruitment threshold
(size principle: units recruited later are larger and give larger
potentials; Henneman 1957), fires once the muscle's activation passes that
threshold, at a rate that grows with the excess (about 8 to 35 Hz, with
jittered inter-spike intervals), and every firing adds the unit's motor-unit
action potential (MUAP) as seen at the skin: a Hermite-Rodriguez waveform
(first or second order: bi- or triphasic) of 4-16 ms, the widths of
surface MUAPs of small facial muscles (Lo Conte et al., "Hermite expansions of
compact support waveforms: applications to myoelectric signals", IEEE TBME
1994, for the waveform family; Merletti and Farina, "Surface Electromyography",
2016, for the widths). A muscle's surface signal is the sum of its units'
trains; at rest only the lowest-threshold units fire, so weak activity is
sparse and spiky, strong activity a dense interference pattern.

Electrodes see their own muscle and, weaker and smoothed by the tissue
(volume conduction acts as a low-pass), their neighbours': :func:`crosstalk`.

Nothing here is fitted to a recording; the constants are chosen so that the
shape statistics of :mod:`silentspeech.emg_statistics` fall near real facial
EMG (median frequency near 90 Hz, little power above 150 Hz, excess
kurtosis above 4, channel correlations near 0.15).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal

#: Motor units per muscle.
UNITS = 40
#: Firing rate at recruitment and its maximum, Hz; rate gain per unit of activation above threshold, Hz.
MIN_FIRING_HZ, MAX_FIRING_HZ, FIRING_GAIN_HZ = 8.0, 35.0, 20.0
#: Highest recruitment threshold, in units of activation (the activations are mostly 0.1-2).
MAX_THRESHOLD = 1.6
#: Log ratio of the MUAP amplitude of the last-recruited unit to the first's: a 20-fold span keeps
#: mouthed (weak) activity as spiky as real silent EMG (excess kurtosis above 4; 10-fold gave 3.5).
AMPLITUDE_SPAN = np.log(20.0)
#: Standard deviation of the MUAP's Gaussian core, ms, drawn per unit (the waveform lasts about 4-5 of them).
MUAP_SIGMA_MS = (1.8, 4.0)
#: RMS of the summed trains at a constant activation of 1 (measured over many draws): the output's unit.
TRAIN_RMS = 2.00


def _muap_bank(orders: np.ndarray, sigmas: np.ndarray, rate: float) -> np.ndarray:
    """Unit-energy MUAPs ``(taps, units)``: Hermite-Rodriguez of ``orders`` (1 or 2) with Gaussian widths ``sigmas`` s at ``rate``."""
    half = int(np.ceil(4 * sigmas.max() * rate))
    t = np.arange(-half, half + 1)[:, None] / rate / sigmas[None]
    shapes = np.where(orders[None] == 1, t, 1 - 2 * t**2) * np.exp(-(t**2))
    return shapes / np.sqrt(np.sum(shapes**2, axis=0, keepdims=True))


def motor_unit_trains(activation: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Surface signal of each muscle, float64 ``(samples, muscles)``, RMS about 1 at activation 1.

    ``activation`` ``(samples, muscles)``, non-negative, at ``rate`` Hz. Each
    muscle gets :data:`UNITS` motor units with their own threshold, MUAP
    width, order and polarity, drawn from ``rng``.
    """
    samples, muscles = activation.shape
    thresholds = np.sort(rng.uniform(0.0, MAX_THRESHOLD, (muscles, UNITS)) ** 1.5 / MAX_THRESHOLD**0.5, axis=1)
    amplitudes = np.exp(AMPLITUDE_SPAN * thresholds / MAX_THRESHOLD)  # larger units recruited later
    sigmas = rng.uniform(*MUAP_SIGMA_MS, (muscles, UNITS)) / 1000.0
    orders = rng.integers(1, 3, (muscles, UNITS))
    signs = rng.choice([-1.0, 1.0], (muscles, UNITS))
    excess = activation[:, :, None] - thresholds[None]  # (samples, muscles, units)
    firing = np.where(excess > 0, np.minimum(MIN_FIRING_HZ + FIRING_GAIN_HZ * excess, MAX_FIRING_HZ), 0.0)
    # Integrate-and-fire on the rate with a jittered step (new every 5 ms): inter-spike intervals vary by about 20 %.
    blocks = -(-samples // 5)
    jitter = np.repeat(np.exp(rng.normal(0.0, 0.6, (blocks, muscles, UNITS))), 5, axis=0)[:samples]
    step = firing / rate * rng.gamma(25.0, 1 / 25.0, (1, muscles, UNITS)) * jitter
    phase = np.cumsum(step, axis=0) + rng.uniform(0.0, 1.0, (1, muscles, UNITS))
    spikes = np.diff(np.floor(phase), axis=0, prepend=np.floor(phase[:1])) > 0
    weighted = spikes.reshape(samples, -1) * (signs * amplitudes).reshape(1, -1)
    kernels = _muap_bank(orders.ravel(), sigmas.ravel(), rate)  # (taps, muscles * units)
    trains = scipy.signal.oaconvolve(weighted, kernels, mode="same", axes=0)
    out = trains.reshape(samples, muscles, UNITS).sum(axis=2)
    return out / TRAIN_RMS


def crosstalk(muscles: np.ndarray, mixing: np.ndarray, rate: float) -> np.ndarray:
    """Electrode signals ``(samples, channels)`` from muscle signals ``(samples, muscles)``.

    ``mixing`` ``(channels, muscles)``: how strongly each electrode sees
    each muscle. A muscle's own electrode (the largest weight of its
    column) sees it as it is; the others see it through the tissue, low-passed
    at 120 Hz (second-order Butterworth).
    """
    near = mixing * (mixing >= mixing.max(axis=0, keepdims=True))
    far = mixing - near
    smoothed = scipy.signal.sosfiltfilt(_tissue_lowpass(rate), muscles, axis=0)
    return muscles @ near.T + smoothed @ far.T


@functools.lru_cache(maxsize=4)
def _tissue_lowpass(rate: float) -> np.ndarray:
    return scipy.signal.butter(2, 120.0, btype="lowpass", fs=rate, output="sos")
