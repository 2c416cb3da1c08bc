"""Eight electrodes on a face: volume conduction, session placement and the nuisances of a recording.

Geometry. The muscles of :mod:`.articulation` sit at points of a flat map
of one side of the face and neck (cm; x towards the ear, y up, the mouth at
the origin) at a depth under the skin; the eight electrodes sit on the
skin at :data:`ELECTRODE_SITES` (lips, cheek, jaw angle, chin, under the
chin, throat, neck). A motor unit at distance ``d`` from an electrode
(including depth) is seen with amplitude ``exp(-d / DECAY_CM)`` and its
action potential widened by ``1 + WIDENING_PER_CM * d``: deeper and farther
sources look smaller and lower in frequency. The sign of a unit's potential
at an electrode depends on which side of the bipolar pair it lies (drawn
once per unit and electrode, mostly positive).

A session (a day) places the electrodes again: the whole set shifts by a
few millimetres and each electrode moves a little on its own, which changes
every unit's distance, hence the channel-to-muscle mixing, not only a gain.
Each session also has its own channel gains, sensor noise, mains hum (60 Hz
with weaker odd harmonics, slowly wavering), baseline offsets and drift.

Motion artefact: skin and cables move with the jaw. Each channel picks up
a band-limited (1-10 Hz) copy of the jaw's velocity with a coupling of its
own plus motion noise that follows nothing said.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from silentspeech.data.synthetic.independent.articulation import RATE, Articulation
from silentspeech.data.synthetic.independent.motor_units import (
    MotorUnitPool,
    bin_kernels,
    motor_unit_pool,
    spike_trains,
    superpose,
)

#: Where each muscle of :data:`MUSCLES` lies: x, y on the face map and depth under the skin, cm; and its unit count.
MUSCLE_SITES = np.array([
    (0.0, 1.0, 0.3), (0.0, -1.0, 0.3), (-3.5, 2.0, 0.5), (-2.2, -2.0, 0.4), (-0.3, -2.8, 0.5),
    (-5.5, 0.5, 0.9), (-0.5, -4.6, 1.0), (-0.5, -4.0, 2.4), (-3.0, -5.0, 2.8), (0.0, -7.5, 1.0),
])
MUSCLE_UNITS = (45, 45, 40, 35, 35, 60, 45, 55, 45, 50)
#: The eight electrodes on the skin, x and y, cm.
ELECTRODE_SITES = np.array([
    (-1.2, 1.2), (-0.4, -2.4), (-3.8, 1.6), (-6.0, 0.0), (-0.6, -4.6), (0.4, -7.4), (-2.4, -0.8), (-3.6, -5.6),
])
CHANNELS = len(ELECTRODE_SITES)
#: Amplitude decay length of the volume conductor, cm, and the widening of an action potential per cm of distance.
DECAY_CM, WIDENING_PER_CM = 1.0, 0.35
#: Width of the smallest units' action potentials at the fibre, s.
FIBRE_WIDTH_S = 0.0016
#: Raw EMG units (about microvolts) of a fully excited muscle's largest action potential right under an electrode.
EMG_SCALE = 180.0
#: Mains frequency and the relative levels of its 1st, 3rd and 5th harmonics.
MAINS_HZ, MAINS_HARMONICS = 60.0, ((1, 1.0), (3, 0.3), (5, 0.12))
#: Baseline drift: white noise low-passed below 0.3 Hz (second order), times this level.
DRIFT_LEVEL = 800.0
_DRIFT_FILTER = scipy.signal.butter(2, 0.3, btype="lowpass", fs=RATE, output="sos")


@dataclass(frozen=True)
class Body:
    """The speaker: one motor-unit pool per muscle, and each unit's polarity at each electrode."""

    pools: tuple[MotorUnitPool, ...]
    polarity: np.ndarray  #: ``(all units, channels)`` +1 or -1


def body(seed: int) -> Body:
    """The speaker of a corpus seed (the same in every session)."""
    rng = np.random.default_rng([seed, 0xB0D7])
    pools = tuple(motor_unit_pool(n, FIBRE_WIDTH_S, rng) for n in MUSCLE_UNITS)
    polarity = np.where(rng.random((sum(MUSCLE_UNITS), CHANNELS)) < 0.9, 1.0, -1.0)
    return Body(pools, polarity)


@dataclass(frozen=True)
class Placement:
    """One session's electrodes and recording conditions."""

    sites: np.ndarray  #: ``(channels, 2)`` electrode positions, cm
    gains: np.ndarray  #: ``(channels,)`` amplifier and skin-contact gain
    noise: np.ndarray  #: ``(channels,)`` sensor noise standard deviation
    hum: np.ndarray  #: ``(channels,)`` 60 Hz amplitude
    offsets: np.ndarray  #: ``(channels,)`` baseline offset
    motion_coupling: np.ndarray  #: ``(channels,)`` gain of the jaw-velocity artefact
    motion_noise: float  #: level of the motion artefact that follows nothing said


def placement(rng: np.random.Generator) -> Placement:
    """Electrodes placed for one session: shifted as a set and one by one, with the day's conditions."""
    shift = rng.normal(0.0, 0.35, 2) + rng.normal(0.0, 0.25, (CHANNELS, 2))
    return Placement(
        sites=ELECTRODE_SITES + shift,
        gains=np.exp(rng.normal(0.0, 0.2, CHANNELS)),
        noise=rng.uniform(0.6, 1.2, CHANNELS),
        hum=rng.uniform(2.0, 12.0, CHANNELS),
        offsets=rng.normal(0.0, 300.0, CHANNELS),
        motion_coupling=rng.normal(0.0, 1.0, CHANNELS),
        motion_noise=float(rng.uniform(0.8, 1.6)),
    )


def unit_views(person: Body, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed amplitude and action-potential width of every unit at every electrode: two ``(all units, channels)`` arrays."""
    weights, widths = [], []
    for pool, (x, y, depth) in zip(person.pools, MUSCLE_SITES):
        position = np.array([x, y]) + pool.offsets  # (units, 2)
        distance = np.sqrt(((position[:, None, :] - sites[None, :, :]) ** 2).sum(-1) + depth**2)
        weights.append(pool.amplitudes[:, None] * np.exp(-distance / DECAY_CM))
        widths.append(pool.widths[:, None] * (1.0 + WIDENING_PER_CM * distance))
    return np.concatenate(weights) * person.polarity, np.concatenate(widths)


def muscle_signals(articulation: Articulation, person: Body, session: Placement, rng: np.random.Generator) -> np.ndarray:
    """Motor-unit activity of every muscle seen at every electrode: ``(samples, channels)``, raw units, no nuisances."""
    samples = articulation.activation.shape[0]
    times, units, first = [], [], 0
    for m, pool in enumerate(person.pools):
        t, u = spike_trains(articulation.activation[:, m], pool, RATE, rng)
        times.append(t)
        units.append(u + first)
        first += len(pool.thresholds)
    all_times, all_units = np.concatenate(times), np.concatenate(units)
    orders = np.concatenate([pool.orders for pool in person.pools])
    weights, widths = unit_views(person, session.sites)
    kernels = bin_kernels(RATE)
    jitter = np.exp(rng.normal(0.0, 0.05, len(all_times)))  # each discharge's potential varies a little
    out = np.empty((samples, CHANNELS))
    for c in range(CHANNELS):
        out[:, c] = superpose(samples, all_times, all_units, weights[:, c], widths[:, c], orders, kernels, jitter)
    return out * EMG_SCALE


def _band_noise(samples: int, low_hz: float, high_hz: float, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Gaussian noise band-passed to ``low_hz``-``high_hz``, unit standard deviation, ``(samples, channels)``."""
    sos = scipy.signal.butter(2, (low_hz, high_hz), btype="bandpass", fs=RATE, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.normal(0.0, 1.0, (samples + RATE, channels)), axis=0)[RATE:]
    return noise / max(float(noise.std()), 1e-12)


def nuisances(jaw: np.ndarray, session: Placement, rng: np.random.Generator) -> np.ndarray:
    """Motion artefact, mains hum, drift, offset and sensor noise of one recording, ``(samples, channels)``."""
    samples = len(jaw)
    velocity = np.gradient(scipy.ndimage.gaussian_filter1d(jaw, 15.0)) * RATE
    sos = scipy.signal.butter(2, (1.0, 10.0), btype="bandpass", fs=RATE, output="sos")
    tied = scipy.signal.sosfilt(sos, velocity)[:, None] * session.motion_coupling[None, :]
    loose = _band_noise(samples, 1.0, 10.0, rng, CHANNELS) * session.motion_noise
    t = np.arange(samples) / RATE
    waver = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi))
    phase = rng.uniform(0, 2 * np.pi, CHANNELS)
    hum = sum(level * np.sin(2 * np.pi * MAINS_HZ * k * t[:, None] + k * phase[None, :]) for k, level in MAINS_HARMONICS)
    drift = scipy.signal.sosfilt(_DRIFT_FILTER, rng.normal(0.0, 1.0, (samples, CHANNELS)), axis=0) * DRIFT_LEVEL
    sensor = rng.normal(0.0, 1.0, (samples, CHANNELS)) * session.noise[None, :]
    return 1.5 * tied + 0.8 * loose + hum * session.hum[None, :] * waver[:, None] + drift + session.offsets[None, :] + sensor


def record(articulation: Articulation, person: Body, session: Placement, rng: np.random.Generator) -> np.ndarray:
    """Raw EMG of one utterance: ``(samples, channels)`` float32 at 1 kHz, about microvolts."""
    emg = muscle_signals(articulation, person, session, rng) * session.gains[None, :]
    return (emg + nuisances(articulation.jaw, session, rng)).astype(np.float32)
