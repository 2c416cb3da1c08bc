"""The articulation of the synthetic corpus: phoneme targets, timing and trajectories.

Every ARPAbet class has a fixed articulatory target (jaw, tongue, lips,
velum, voicing, ...; the same for every corpus seed, like a language). A
performance of a prompt is espeak-ng's phoneme timeline with a target per
segment; the speaker moves through the targets with smooth transitions,
giving an articulatory trajectory ``(samples, 12)`` at 1 kHz aligned with
the audio. Silent speech is performed again with its own timing and, being
mouthed rather than spoken, with reduced excursions (:func:`hypo_articulate`).

No library models articulation from a phoneme timeline at this level, so
this module is our own.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from silentspeech.data.synthetic import espeak
from silentspeech.phonemes import PHONEMES, SIL
from silentspeech.preprocessing import RAW_EMG_RATE

#: Seed of the "language": articulatory targets and electrode mixing, fixed for every corpus.
LANGUAGE_SEED = 20200504

#: Articulatory dimensions, each in [0, 1]; the last two have no acoustic role,
#: they keep phonemes of similar articulation apart in EMG.
ARTICULATORS = (
    "jaw", "tongue_front", "tongue_back", "tongue_tip", "lips", "occlusion",
    "velum", "voicing", "frication", "effort", "tongue_root", "cheek",
)
_JAW, _FRONT, _BACK, _TIP, _LIPS, _OCCL, _VELUM, _VOICE, _FRIC, _EFFORT, _ROOT, _CHEEK = range(len(ARTICULATORS))

# jaw front back tip lips occlusion velum voicing frication effort, per ARPAbet class:
# a rough English articulation (vowels open and voiced, stops closed, fricatives
# noisy, nasals with the velum open, r-coloured vowels with the tongue tip up).
_PHONETIC = {
    "iy": (0.15, 1.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9),
    "ih": (0.3, 0.8, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0, 0.85),
    "ey": (0.4, 0.85, 0.1, 0.25, 0.05, 0.0, 0.0, 1.0, 0.0, 0.9),
    "eh": (0.5, 0.7, 0.15, 0.2, 0.1, 0.0, 0.0, 1.0, 0.0, 0.9),
    "ae": (0.85, 0.6, 0.2, 0.15, 0.05, 0.0, 0.0, 1.0, 0.0, 1.0),
    "aa": (0.9, 0.2, 0.6, 0.1, 0.1, 0.0, 0.0, 1.0, 0.0, 1.0),
    "ao": (0.7, 0.1, 0.8, 0.1, 0.6, 0.0, 0.0, 1.0, 0.0, 1.0),
    "ah": (0.6, 0.4, 0.5, 0.15, 0.2, 0.0, 0.0, 1.0, 0.0, 0.9),
    "ax": (0.4, 0.45, 0.45, 0.2, 0.2, 0.0, 0.0, 1.0, 0.0, 0.6),
    "axr": (0.35, 0.3, 0.5, 0.7, 0.4, 0.0, 0.0, 1.0, 0.0, 0.65),
    "er": (0.35, 0.3, 0.5, 0.75, 0.45, 0.0, 0.0, 1.0, 0.0, 0.9),
    "ow": (0.55, 0.1, 0.85, 0.1, 0.85, 0.0, 0.0, 1.0, 0.0, 0.95),
    "uh": (0.3, 0.15, 0.85, 0.1, 0.7, 0.0, 0.0, 1.0, 0.0, 0.85),
    "uw": (0.2, 0.1, 1.0, 0.1, 1.0, 0.0, 0.0, 1.0, 0.0, 0.9),
    "aw": (0.75, 0.2, 0.7, 0.1, 0.6, 0.0, 0.0, 1.0, 0.0, 1.0),
    "ay": (0.7, 0.7, 0.4, 0.2, 0.05, 0.0, 0.0, 1.0, 0.0, 1.0),
    "oy": (0.5, 0.5, 0.7, 0.15, 0.6, 0.0, 0.0, 1.0, 0.0, 0.95),
    "b": (0.2, 0.3, 0.3, 0.1, 0.9, 1.0, 0.0, 0.8, 0.0, 0.7),
    "p": (0.2, 0.3, 0.3, 0.1, 0.9, 1.0, 0.0, 0.0, 0.2, 0.9),
    "m": (0.2, 0.4, 0.2, 0.2, 0.9, 1.0, 1.0, 1.0, 0.0, 0.7),
    "em": (0.25, 0.4, 0.3, 0.2, 0.85, 1.0, 1.0, 1.0, 0.0, 0.6),
    "f": (0.2, 0.4, 0.2, 0.1, 0.6, 0.3, 0.0, 0.0, 1.0, 0.8),
    "v": (0.2, 0.4, 0.2, 0.1, 0.6, 0.3, 0.0, 1.0, 0.8, 0.8),
    "w": (0.2, 0.1, 0.7, 0.1, 1.0, 0.0, 0.0, 1.0, 0.0, 0.7),
    "th": (0.2, 0.5, 0.1, 1.0, 0.1, 0.3, 0.0, 0.0, 0.7, 0.8),
    "dh": (0.2, 0.5, 0.1, 1.0, 0.1, 0.3, 0.0, 1.0, 0.5, 0.6),
    "d": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 0.0, 0.8, 0.0, 0.7),
    "t": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 0.0, 0.0, 0.3, 0.9),
    "dx": (0.3, 0.5, 0.1, 0.9, 0.1, 0.7, 0.0, 1.0, 0.0, 0.6),
    "n": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 1.0, 1.0, 0.0, 0.7),
    "nx": (0.35, 0.5, 0.1, 0.85, 0.1, 0.7, 1.0, 1.0, 0.0, 0.6),
    "en": (0.35, 0.45, 0.2, 0.9, 0.15, 1.0, 1.0, 1.0, 0.0, 0.6),
    "s": (0.1, 0.6, 0.1, 0.8, 0.1, 0.3, 0.0, 0.0, 1.0, 0.8),
    "z": (0.1, 0.6, 0.1, 0.8, 0.1, 0.3, 0.0, 1.0, 0.8, 0.8),
    "sh": (0.15, 0.6, 0.2, 0.6, 0.5, 0.3, 0.0, 0.0, 1.0, 0.8),
    "zh": (0.15, 0.6, 0.2, 0.6, 0.5, 0.3, 0.0, 1.0, 0.8, 0.8),
    "ch": (0.2, 0.6, 0.2, 0.7, 0.4, 0.8, 0.0, 0.0, 0.9, 0.9),
    "jh": (0.2, 0.6, 0.2, 0.7, 0.4, 0.8, 0.0, 1.0, 0.7, 0.8),
    "l": (0.3, 0.4, 0.2, 1.0, 0.1, 0.2, 0.0, 1.0, 0.0, 0.8),
    "el": (0.35, 0.35, 0.4, 1.0, 0.15, 0.2, 0.0, 1.0, 0.0, 0.7),
    "r": (0.3, 0.2, 0.4, 0.6, 0.4, 0.0, 0.0, 1.0, 0.0, 0.8),
    "y": (0.2, 0.9, 0.1, 0.4, 0.1, 0.0, 0.0, 1.0, 0.1, 0.8),
    "k": (0.2, 0.0, 1.0, 0.1, 0.2, 1.0, 0.0, 0.0, 0.2, 0.9),
    "g": (0.2, 0.0, 1.0, 0.1, 0.2, 1.0, 0.0, 0.8, 0.0, 0.7),
    "ng": (0.2, 0.0, 1.0, 0.1, 0.2, 1.0, 1.0, 1.0, 0.0, 0.7),
    "hh": (0.5, 0.3, 0.3, 0.1, 0.2, 0.0, 0.0, 0.0, 0.5, 0.6),
    "hv": (0.5, 0.3, 0.3, 0.1, 0.2, 0.0, 0.0, 0.6, 0.4, 0.6),
    # Rest posture: before and after an utterance, in pauses and in silence clips.
    "sil": (0.1, 0.3, 0.3, 0.2, 0.2, 0.0, 0.4, 0.0, 0.0, 0.0),
}


@functools.lru_cache(maxsize=1)
def phoneme_targets() -> np.ndarray:
    """Articulatory target of every class of :data:`silentspeech.phonemes.PHONEMES`.

    Returns float64 ``(48, len(ARTICULATORS))``, in the order of ``PHONEMES``
    (``sil``, the rest posture, last). The two idiosyncratic dimensions are
    drawn once from :data:`LANGUAGE_SEED`.
    """
    rng = np.random.default_rng(LANGUAGE_SEED)
    return np.stack([np.concatenate([_PHONETIC[p], rng.uniform(0.0, 1.0, 2)]) for p in PHONEMES])


@dataclass(frozen=True)
class Performance:
    """How one prompt is spoken: a phoneme, target and duration per segment.

    ``phonemes`` the ARPAbet classes; ``targets`` ``(segments, 12)``;
    ``durations`` ``(segments,)`` in ms (1 kHz samples, may be 0 for a
    phoneme shorter than half a millisecond); ``lead``/``trail`` rest before
    and after, ms.
    """

    phonemes: tuple[str, ...]
    targets: np.ndarray
    durations: np.ndarray
    lead: int
    trail: int

    @property
    def samples(self) -> int:
        """Length at 1 kHz."""
        return self.lead + int(self.durations.sum()) + self.trail

    def intervals(self) -> list[tuple[float, float, str]]:
        """Phone intervals ``(start_s, end_s, label)`` covering the whole performance, for a TextGrid."""
        edges = self.lead + np.concatenate([[0], np.cumsum(self.durations)])
        intervals = [(0.0, self.lead / 1000.0, "sil")]
        for start, end, phone in zip(edges[:-1], edges[1:], self.phonemes):
            intervals.append((start / 1000.0, end / 1000.0, phone))
        intervals.append((edges[-1] / 1000.0, self.samples / 1000.0, "sil"))
        merged: list[tuple[float, float, str]] = []
        for start, end, phone in intervals:
            if end <= start:
                continue
            if merged and merged[-1][2] == phone:
                merged[-1] = (merged[-1][0], end, phone)
            else:
                merged.append((start, end, phone))
        return merged


def perform(spoken: espeak.Spoken, rng: np.random.Generator) -> Performance:
    """Targets and timing of an espeak-ng rendition: its phoneme timeline in ms.

    Each phoneme's target gets a little coarticulation jitter; the rest
    before and after lasts 150-350 ms.
    """
    timeline = espeak.arpabet_timeline(spoken)
    per_ms = espeak.ESPEAK_RATE / RAW_EMG_RATE
    edges = np.array([round(start / per_ms) for start, _, _ in timeline] + [round(spoken.audio.size / per_ms)])
    phonemes = tuple(phone for _, _, phone in timeline)
    table = phoneme_targets()
    targets = table[[PHONEMES.index(p) for p in phonemes]] + rng.normal(0.0, 0.04, (len(phonemes), table.shape[1]))
    return Performance(phonemes, np.clip(targets, 0.0, 1.0), np.diff(edges), int(rng.integers(150, 350)), int(rng.integers(150, 350)))


def time_warp(performance: Performance, rng: np.random.Generator) -> Performance:
    """The same prompt spoken again with a smooth random time warp.

    The local speaking rate is a slow random function of time (a few
    sinusoids, about +-15 %, at most 25 %) around a global factor 0.95-1.2 (silent speech tends
    to be slower); targets get fresh jitter, the rests new lengths.
    """
    n = len(performance.durations)
    position = np.cumsum(performance.durations) / max(int(performance.durations.sum()), 1)
    local = np.zeros(n)
    for k in (1, 2, 3):
        local += rng.normal(0.0, 0.12 / k) * np.sin(np.pi * k * position + rng.uniform(0, 2 * np.pi))
    factor = rng.uniform(0.95, 1.2) * np.exp(np.clip(local, -0.25, 0.25))
    durations = (performance.durations * factor).round().astype(int)
    targets = np.clip(performance.targets + rng.normal(0.0, 0.03, performance.targets.shape), 0.0, 1.0)
    return Performance(performance.phonemes, targets, durations, int(rng.integers(150, 350)), int(rng.integers(150, 350)))


#: Silent speech is mouthed: excursions from the rest posture shrink to this share (drawn per utterance),
#: effort to this share, and the larynx is not driven at all (voicing 0). Reduced, hypo-articulated activity
#: is what the real silent recordings show beside their voiced twins (Gaddy and Klein, "Digital Voicing of
#: Silent Speech", EMNLP 2020: a model trained on voiced EMG alone transfers poorly to silent EMG).
MOUTHED_EXCURSION, MOUTHED_EFFORT = (0.55, 0.85), 0.7


def mouthed(performance: Performance, rng: np.random.Generator) -> Performance:
    """The silent (mouthed) form of ``performance``: the same timing, hypo-articulated targets.

    Every target moves towards the rest posture (:data:`MOUTHED_EXCURSION`
    of its excursion left, one share per utterance with a little jitter per
    articulator), effort is scaled by :data:`MOUTHED_EFFORT` and voicing is 0.
    """
    rest = phoneme_targets()[SIL]
    share = rng.uniform(*MOUTHED_EXCURSION) * np.exp(rng.normal(0.0, 0.1, rest.size))
    targets = rest + (performance.targets - rest) * share
    targets[:, _VOICE] = 0.0
    targets[:, _EFFORT] *= MOUTHED_EFFORT
    return dataclasses.replace(performance, targets=np.clip(targets, 0.0, 1.0))


def articulatory_trajectory(performance: Performance, smoothing_ms: float = 12.0) -> np.ndarray:
    """Smooth trajectory through the targets, ``(samples, 12)`` float64 at 1 kHz.

    Piecewise-constant targets (rest, phonemes, rest) smoothed by a
    Gaussian of ``smoothing_ms``: transitions take about 40 ms, so short
    phonemes are only approached (coarticulation).
    """
    rest = phoneme_targets()[SIL]
    steps = np.concatenate([
        np.repeat(rest[None], performance.lead, axis=0),
        np.repeat(performance.targets, performance.durations, axis=0),
        np.repeat(rest[None], performance.trail, axis=0),
    ])
    return scipy.ndimage.gaussian_filter1d(steps, smoothing_ms, axis=0, mode="nearest")


def rest_trajectory(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Rest posture with slow small fluctuations (silence clips), ``(samples, 12)`` at 1 kHz."""
    wander = scipy.ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, (samples, len(ARTICULATORS))), 80.0, axis=0)
    return np.clip(phoneme_targets()[SIL] + 0.3 * wander, 0.0, 1.0)
