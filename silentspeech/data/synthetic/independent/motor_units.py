"""Motor units of the independent generator: recruitment, rate coding, action potentials.

Each muscle is a pool of motor units organised as in Fuglevand, Winter and
Patla ("Models of recruitment and rate coding organization in motor-unit
pools", J. Neurophysiol. 1993): recruitment thresholds spread exponentially
over a range of 30, every unit fires at 8 Hz when recruited and faster with
excitation above its threshold, up to a peak rate that falls from 35 Hz for
the first-recruited unit to 25 Hz for the last, and inter-spike intervals
vary with a coefficient of variation of 0.2 (here a gamma renewal process).
Our own choices: the last unit is recruited at 60 % of full excitation, the
rate gain is 40 Hz per unit of excitation, action-potential amplitudes rise
exponentially with recruitment order over a range of 15, and larger units'
potentials last slightly longer (docs/design.md, *The independent
evaluation corpus*).

Action potentials are Hermite-Rodriguez functions (Lo Conte, Merletti and
Sandri, "Hermite expansions of compact support waveforms: applications to
myoelectric signals", IEEE TBME 1994): the first order, a biphasic wave, and
the second, a triphasic one, of width ``lambda``; each unit has one order.
The tissue between a unit and an electrode widens its potential (a
low-pass growing with distance, :mod:`.electrodes`). To convolve fast,
every electrode sorts its units' widths into geometric bins and convolves
one impulse train per (order, bin).

No library simulates motor-unit pools for surface EMG at this scale, so
this module is our own (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Range of recruitment thresholds (last / first) and the excitation at which the last unit is recruited.
RECRUITMENT_RANGE, LAST_RECRUITED = 30.0, 0.6
#: Firing rate at recruitment, its gain per unit of excitation, and the peak rates of the first and last unit, Hz.
MIN_RATE, RATE_GAIN, FIRST_PEAK_RATE, LAST_PEAK_RATE = 8.0, 40.0, 35.0, 25.0
#: Coefficient of variation of the inter-spike intervals.
ISI_CV = 0.2
#: Range of action-potential amplitudes (largest / smallest unit).
AMPLITUDE_RANGE = 15.0
#: Width bins of the convolution: geometric from the first to the last edge, s.
WIDTH_BINS = np.geomspace(0.0008, 0.012, 17)


@dataclass(frozen=True)
class MotorUnitPool:
    """The motor units of one muscle, ordered by recruitment threshold."""

    thresholds: np.ndarray  #: ``(units,)`` excitation at recruitment, 0-1
    peak_rates: np.ndarray  #: ``(units,)`` Hz
    amplitudes: np.ndarray  #: ``(units,)`` relative action-potential size (largest 1)
    widths: np.ndarray  #: ``(units,)`` Hermite-Rodriguez ``lambda`` at the fibre, s
    orders: np.ndarray  #: ``(units,)`` 1 or 2
    offsets: np.ndarray  #: ``(units, 2)`` position of the unit's territory within the muscle, cm


def motor_unit_pool(units: int, width_s: float, rng: np.random.Generator) -> MotorUnitPool:
    """A pool of ``units`` motor units whose smallest potentials have width about ``width_s`` (s)."""
    order = np.arange(units) / max(units - 1, 1)
    thresholds = LAST_RECRUITED * np.exp(np.log(RECRUITMENT_RANGE) * (order - 1.0))
    peak_rates = FIRST_PEAK_RATE - (FIRST_PEAK_RATE - LAST_PEAK_RATE) * order
    amplitudes = np.exp(np.log(AMPLITUDE_RANGE) * (order - 1.0)) * np.exp(rng.normal(0.0, 0.15, units))
    widths = width_s * (1.0 + 0.4 * order) * np.exp(rng.normal(0.0, 0.1, units))
    orders = np.where(rng.random(units) < 0.6, 1, 2)
    offsets = rng.normal(0.0, 0.4, (units, 2))
    return MotorUnitPool(thresholds, peak_rates, amplitudes, widths, orders, offsets)


def firing_rates(excitation: np.ndarray, pool: MotorUnitPool, units: int | None = None) -> np.ndarray:
    """Rate of the first ``units`` units (default all), ``(samples, units)`` Hz, for an excitation ``(samples,)`` in 0-1."""
    units = len(pool.thresholds) if units is None else units
    above = excitation[:, None] - pool.thresholds[None, :units]
    rates = np.minimum(MIN_RATE + RATE_GAIN * above, pool.peak_rates[None, :units])
    return np.where(above >= 0.0, rates, 0.0)


def spike_trains(excitation: np.ndarray, pool: MotorUnitPool, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Discharges of the pool for ``excitation`` ``(samples,)`` at ``rate`` Hz: ``(sample index, unit)`` arrays.

    Each unit integrates its firing rate; it fires whenever that integral
    passes the next of its gamma-distributed thresholds (mean 1, CV
    :data:`ISI_CV`), so the intervals follow the rate and keep their spread.
    """
    recruited = int(np.searchsorted(pool.thresholds, excitation.max(), side="right"))  # thresholds ascend
    phase = np.cumsum(firing_rates(excitation, pool, recruited), axis=0) / rate
    shape = 1.0 / ISI_CV**2
    times, units = [], []
    for unit in range(recruited):
        total = phase[-1, unit]
        if total <= 0.0:
            continue
        count = int(total + 4.0 * np.sqrt(total + 1.0) + 2)
        marks = rng.uniform(0.0, 1.0) + np.cumsum(rng.gamma(shape, 1.0 / shape, count))
        fired = np.searchsorted(phase[:, unit], marks[marks < total])
        times.append(fired)
        units.append(np.full(len(fired), unit))
    if not times:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(times).astype(np.int64), np.concatenate(units).astype(np.int64)


def hermite_rodriguez(order: int, width_s: float, rate: float) -> np.ndarray:
    """A Hermite-Rodriguez action potential of ``order`` 1 or 2 and width ``width_s``, peak 1, sampled at ``rate`` Hz."""
    half = int(np.ceil(3.5 * width_s * rate))
    x = np.arange(-half, half + 1) / (width_s * rate)
    wave = x * np.exp(-(x**2)) if order == 1 else (1.0 - 2.0 * x**2) * np.exp(-(x**2))
    return wave / np.abs(wave).max()


def width_bin(widths: np.ndarray) -> np.ndarray:
    """Index of each width's bin in :data:`WIDTH_BINS` (clipped to the outer bins)."""
    return np.clip(np.searchsorted(WIDTH_BINS, widths) - 1, 0, len(WIDTH_BINS) - 2)


def bin_kernels(rate: float) -> dict[tuple[int, int], np.ndarray]:
    """The action potential of every (order, width bin), at the bin's geometric centre."""
    centres = np.sqrt(WIDTH_BINS[:-1] * WIDTH_BINS[1:])
    return {(order, b): hermite_rodriguez(order, float(w), rate) for order in (1, 2) for b, w in enumerate(centres)}


def superpose(
    samples: int, times: np.ndarray, units: np.ndarray, weights: np.ndarray, widths: np.ndarray, orders: np.ndarray,
    kernels: dict[tuple[int, int], np.ndarray], jitter: np.ndarray,
) -> np.ndarray:
    """One electrode's signal ``(samples,)``: the action potential of each discharge, summed.

    ``times``/``units``: discharges (sample index, unit); ``weights``,
    ``widths`` and ``orders``: per unit as seen at this electrode (signed
    amplitude, width in s, Hermite-Rodriguez order); ``jitter``: a factor
    per discharge (each potential varies a little).
    """
    out = np.zeros(samples)
    bins = width_bin(widths)
    for order in (1, 2):
        for b in np.unique(bins[orders == order]):
            chosen = (orders[units] == order) & (bins[units] == b)
            if not chosen.any():
                continue
            impulses = np.bincount(times[chosen], weights=weights[units[chosen]] * jitter[chosen], minlength=samples)[:samples]
            out += np.convolve(impulses, kernels[(order, int(b))], mode="same")
    return out
