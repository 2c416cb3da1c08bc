"""Synthetic forearm EMG of hand gestures, for quick runs and tests.

A ring of ``channels`` electrodes sits around the forearm; each gesture
contracts one or two muscles at fixed angles around the ring (class 0 is
rest: only a faint independent tone on every channel). Each contracting
muscle is one source of band-limited noise (the interference pattern of
its motor units) that reaches every electrode through the tissue, weaker
with angular distance (volume conduction), under a smooth onset/offset
envelope. So a gesture shows as a class-specific pattern of amplitudes
across channels, and neighbouring channels carry correlated waveforms, as
in real recordings (and what a masked-patch model can learn to exploit).
Nuisance that a classifier has to look past: each subject's armband sits
rotated by a random angle with random per-channel gains, each repetition
has its own force, and every sample carries white noise, baseline wander
and mains hum.

Labels follow the NinaPro convention: each repetition performs every class
once, with short unlabelled transitions (label -1) between holds, and a
repetition number per sample serves as the split unit. Nothing here is
learnt from real data; it only needs to be learnable in a minute and to
reward a pretrained encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal


@dataclass
class SyntheticGestures:
    """Size and difficulty of the synthetic gesture corpus."""

    classes: int = 6  #: including rest (class 0)
    channels: int = 8
    rate: float = 200.0  #: Hz
    subjects: int = 2
    repetitions: int = 6  #: per class and subject
    hold_s: float = 2.0  #: seconds each gesture is held
    transition_s: float = 0.5  #: unlabelled seconds between holds
    noise: float = 0.3  #: nuisance level relative to a contraction (white noise, wander, hum)
    seed: int = 0


@dataclass
class SyntheticRecording:
    """One subject's session: all repetitions of all classes in a row."""

    emg: np.ndarray  #: (samples, channels) float32, arbitrary units (about 1 for a contraction)
    labels: np.ndarray  #: (samples,) int64 class, -1 in transitions
    repetitions: np.ndarray  #: (samples,) int64 repetition number, 1-based
    subject: int


def _muscle_angles(classes: int, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Per gesture class: (angle in radians, weight) of the muscles it contracts; rest has none."""
    patterns: list[list[tuple[float, float]]] = [[]]
    for k in range(1, classes):
        main = 2 * np.pi * (k - 1) / (classes - 1)
        muscles = [(main, 1.0)]
        if k % 2 == 0:  # every second gesture co-contracts an antagonist, so patterns are not just rotations
            muscles.append((main + np.pi * rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.8)))
        patterns.append(muscles)
    return patterns


def _muscle_mixing(muscles: list[tuple[float, float]], channels: int, rotation: float) -> np.ndarray:
    """(muscles, channels) gain from each muscle to each electrode: a von Mises bump around its angle."""
    electrode = 2 * np.pi * np.arange(channels) / channels + rotation
    return np.array([weight * np.exp(2.5 * (np.cos(electrode - angle) - 1)) for angle, weight in muscles]).reshape(-1, channels)


def _envelope(n: int, rate: float) -> np.ndarray:
    """Contraction envelope: raised-cosine onset and offset of 0.2 s around a plateau."""
    ramp = max(1, min(int(0.2 * rate), n // 3))
    env = np.ones(n)
    rise = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    env[:ramp], env[n - ramp :] = rise, rise[::-1]
    return env


def generate_gesture_recordings(config: SyntheticGestures = SyntheticGestures()) -> list[SyntheticRecording]:
    """One :class:`SyntheticRecording` per subject, deterministic in ``config.seed``."""
    if config.classes < 2 or config.channels < 1 or config.repetitions < 1 or config.subjects < 1:
        raise ValueError(f"synthetic gestures need >= 2 classes and >= 1 channel, repetition and subject: {config}")
    rng = np.random.default_rng(config.seed)
    rate = config.rate
    patterns = _muscle_angles(config.classes, rng)
    # Motor-unit interference of a muscle, and the resting tone: white noise band-limited to
    # 20-90 Hz (scaled below Nyquist for low rates).
    band = [min(20.0, 0.1 * rate), min(90.0, 0.45 * rate)]
    sos = scipy.signal.butter(4, band, btype="bandpass", fs=rate, output="sos")
    hold, gap = int(config.hold_s * rate), int(config.transition_s * rate)
    out = []
    for subject in range(config.subjects):
        rotation = rng.uniform(-np.pi / config.channels, np.pi / config.channels)
        gains = rng.lognormal(0.0, 0.2, config.channels)
        pieces, labels, reps = [], [], []
        for rep in range(1, config.repetitions + 1):
            for k in rng.permutation(config.classes):
                force = rng.uniform(0.7, 1.3)
                mixing = _muscle_mixing(patterns[k], config.channels, rotation) * gains * force
                noise = scipy.signal.sosfilt(sos, rng.standard_normal((hold + gap, len(mixing) + config.channels)), axis=0)
                noise /= noise.std(axis=0) + 1e-9
                muscles, tone = noise[:, : len(mixing)], noise[:, len(mixing) :]
                env = np.zeros(hold + gap)
                env[:hold] = _envelope(hold, rate)
                pieces.append((muscles * env[:, None]) @ mixing + 0.05 * tone * gains)
                labels += [k] * hold + [-1] * gap
                reps += [rep] * (hold + gap)
        emg = np.concatenate(pieces)
        t = np.arange(emg.shape[0]) / rate
        wander = np.cumsum(rng.standard_normal((emg.shape[0], config.channels)), axis=0) / np.sqrt(rate) * 0.5
        phase = rng.uniform(0, 2 * np.pi, config.channels)
        hum = np.sin(2 * np.pi * 50.0 * t[:, None] + phase) if rate > 100 else 0.0
        emg = emg + config.noise * (0.3 * rng.standard_normal(emg.shape) + wander + 0.5 * hum)
        out.append(
            SyntheticRecording(
                emg=emg.astype(np.float32),
                labels=np.array(labels, dtype=np.int64),
                repetitions=np.array(reps, dtype=np.int64),
                subject=subject,
            )
        )
    return out
