"""A synthetic EMG/speech corpus in the exact layout of the Gaddy corpus.

``generate_corpus(out, utterances, seed)`` writes, deterministically for a
seed, what the Gaddy reader expects (docs/design.md, *The Gaddy silent-speech corpus*)::

    voiced_parallel_data/<s>/  silent_parallel_data/<s>_silent/  nonparallel_data/<s>/
    closed_vocab/voiced/<s>/   closed_vocab/silent/<s>_silent/   testset.json

with ``{i}_emg.npy`` (raw EMG, float32 ``(samples, 8)`` at 1 kHz),
``{i}_audio.flac`` and ``{i}_audio_clean.flac`` (mono, 16 kHz),
``{i}_button.npy`` (bool ``(samples,)``) and ``{i}_info.json`` (``book``,
``sentence_index``, ``text``, ``chunks`` agreeing with the arrays) per
utterance; each session folder starts with silence clips
(``sentence_index == -1``, empty text) as in the real corpus.

The audio holds the voiced speech (room noise for silent utterances); every voiced utterance its phoneme alignment
``text_alignments/<s>/<s>_{i}_audio.TextGrid`` as the Montreal Forced Aligner
writes them for the real corpus.

How a recording is made. The prompt (:mod:`silentspeech.data.synthetic.language`)
is spoken by espeak-ng (:mod:`silentspeech.data.synthetic.espeak`) at the
session's rate, pitch and pitch range (drawn per session among settings
Whisper still transcribes well). espeak-ng reports every phoneme
with its sample position; mapped to ARPAbet classes, this timeline is both
the TextGrid and the articulation: every phoneme has a fixed articulatory
target (jaw, tongue, lips, velum, voicing, ...; the same for every corpus
seed, like a language), and the speaker moves through the targets on the
timeline with smooth transitions, giving an articulatory trajectory
``(samples, 12)`` at 1 kHz aligned with the audio. From it:

* audio: espeak-ng's samples, resampled to 16 kHz between rests, with a
  faint noise floor;
* EMG: the trajectory drives one muscle under each electrode (a nonlinear
  mix of articulators and their velocities, its own weights); each muscle's
  activation recruits motor units whose action-potential trains make its
  surface signal (:mod:`silentspeech.data.synthetic.emg`: 4-16 ms MUAPs,
  sparse at rest, dense in bursts), every electrode sees its muscle and
  weaker cross-talk from the others, plus a slow component of the
  trajectory (below 20 Hz, as moving skin gives electrodes), then the
  nuisances of real recordings: 60 Hz mains hum with
  harmonics, baseline drift, per-session gain and offset, sensor noise.
  Scaled so that after :func:`silentspeech.preprocessing.preprocess_emg`
  values are O(1) and the soft clip is rarely reached; its shape statistics
  (:mod:`silentspeech.emg_statistics`) lie near real facial EMG, while its
  share of power below 20 Hz is some ten times real EMG's (:data:`SLOW_SCALE`).

A silent twin repeats a voiced parallel sentence (same book and
``sentence_index``) with a smooth random time warp of the voiced timeline,
weaker laryngeal activity and no speech in its audio (room noise only); like
the real corpus, it has no TextGrid of its own (training uses its voiced
twin's).

No library synthesises paired EMG and speech, so this module is our own; it
reuses espeak-ng for the speech and scipy for filtering and resampling.

Re-running into an existing folder resumes: ``synthetic_corpus.json`` there
records the settings; with the same settings every utterance whose five files
(and TextGrid, when voiced) exist is skipped and the others are written again (identically, each
utterance has its own random stream). Other settings, or a non-empty folder
that is not a synthetic corpus, raise :class:`CorpusExistsError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.signal
import soundfile as sf
from tqdm import tqdm

from silentspeech.atomic import atomic_open, atomic_write_json
from silentspeech.data.synthetic import espeak, language
from silentspeech.data.synthetic.emg import crosstalk, motor_unit_trains
from silentspeech.phonemes import PHONEMES, SIL, format_textgrid
from silentspeech.preprocessing import RAW_EMG_RATE
from silentspeech.text import normalize_text
from silentspeech.workers import each_result

#: Audio rate of the real corpus's flac files and of ``chunks[:, 1]``, Hz.
AUDIO_RATE = 16000
#: Audio samples per raw EMG sample.
AUDIO_PER_EMG = AUDIO_RATE // int(RAW_EMG_RATE)
#: EMG channels, as recorded by the OpenBCI Cyton of the real corpus.
CHANNELS = 8
#: Seed of the "language": articulatory targets and electrode mixing, fixed for every corpus.
LANGUAGE_SEED = 20200504
#: Version of the generator, recorded in ``synthetic_corpus.json``.
GENERATOR_VERSION = 4
#: Marker file with the settings of the corpus in a folder.
MARKER = "synthetic_corpus.json"
#: Split file written beside the kind folders.
SPLIT_FILE = "testset.json"
#: Phoneme alignments of the voiced utterances, as Montreal Forced Aligner writes them for the real corpus.
ALIGNMENT_FOLDER = "text_alignments"

#: espeak-ng voice of every session, and the ranges of its words per minute, pitch and pitch range (0-100)
#: drawn per session: kept to what Whisper tiny.en still transcribes well. One plain voice: the variants
#: tried were less intelligible to it (``+f1`` 47 %, ``+m2`` 40 %, ``+m4`` 35 % WER on 16 prompts, ``en-us`` 32 %).
#: Slower and lower is clearer to it (60 corpus prompts, one setting changed from 170 wpm, pitch 50, range 55:
#: 130 / 145 / 160 / 190 wpm 26 / 28 / 33 / 33 % WER; pitch 30 / 40 / 60 / 70 30 / 32 / 37 / 40 %; range 30-90
#: 31-34 %, no trend); 150 wpm at pitch 36 28 %. Below 140 wpm the corpus grows longer to train on for little gain.
VOICE = "en-us"
VOICE_RATES, VOICE_PITCHES, VOICE_RANGES = (140, 156), (30, 45), (45, 66)

#: Books of the prompts (the ``book`` field), as the real corpus names its sources.
PARALLEL_BOOK = "books/synthetic_parallel.txt"
NONPARALLEL_BOOK = "books/synthetic_nonparallel.txt"
CLOSED_VOCAB_BOOK = "datedata.txt"
#: Session (recording day) names: parallel sessions in order, then nonparallel and closed vocabulary.
PARALLEL_SESSIONS = ("5-4", "5-5", "5-6", "5-7", "5-8", "5-9", "5-10", "5-11")
NONPARALLEL_SESSION = "4-24"
CLOSED_VOCAB_SESSION = "5-19"
#: Share of the utterances per kind (parallel and closed vocabulary count voiced + silent).
PARALLEL_SHARE, CLOSED_VOCAB_SHARE = 0.80, 0.08
#: Files of one utterance ``i``, written in this order (``info`` last: it marks a complete utterance).
UTTERANCE_FILES = ("{i}_emg.npy", "{i}_audio.flac", "{i}_audio_clean.flac", "{i}_button.npy", "{i}_info.json")


#: The books in a fixed order: part of each sentence's random stream.
_BOOKS = (PARALLEL_BOOK, NONPARALLEL_BOOK, CLOSED_VOCAB_BOOK)


class CorpusExistsError(ValueError):
    """The output folder holds something other than this corpus."""


# --- the articulatory code of the language -----------------------------------------

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


# --- EMG ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ElectrodeModel:
    """How the muscles follow the articulators and the electrodes see the muscles; fixed by :data:`LANGUAGE_SEED`.

    One muscle under each of the 8 electrodes:
    ``activation = softplus(3 (weights @ x + velocity_weights @ dx/dt * 10 ms + bias)) / 3``
    per muscle, its drive; ``crosstalk[c, m]`` how strongly electrode ``c``
    sees muscle ``m`` (1 on the diagonal); ``slow_weights``/``slow_bias`` give
    the weaker slow component ``tanh(slow_weights @ x + slow_bias)`` per electrode.
    """

    weights: np.ndarray  #: (8, 12)
    velocity_weights: np.ndarray  #: (8, 12)
    bias: np.ndarray  #: (8,)
    slow_weights: np.ndarray  #: (8, 12)
    slow_bias: np.ndarray  #: (8,)
    crosstalk: np.ndarray  #: (8, 8)


@functools.lru_cache(maxsize=1)
def electrode_model() -> ElectrodeModel:
    """The fixed muscle model: each muscle dominated by two articulators; each electrode sees its neighbours weaker."""
    rng = np.random.default_rng(LANGUAGE_SEED + 1)
    dims = len(ARTICULATORS)
    weights = rng.normal(0.0, 0.5, (CHANNELS, dims))
    for channel in range(CHANNELS):
        for dim in rng.choice(dims, 2, replace=False):
            weights[channel, dim] += rng.choice([-1.0, 1.0]) * 1.8
    velocity = rng.normal(0.0, 0.5, (CHANNELS, dims))
    # Drive crosses zero at a quarter of the articulatory range, so activations
    # sit in the bend of the softplus: visibly nonlinear, rarely silent.
    bias = -weights @ np.full(dims, 0.25) + rng.normal(0.0, 0.2, CHANNELS)
    slow = rng.normal(0.0, 1.0, (CHANNELS, dims))
    slow_bias = -slow @ np.full(dims, 0.5)  # tanh centred on the middle of the range
    crosstalk = np.abs(rng.normal(0.0, CROSSTALK, (CHANNELS, CHANNELS)))
    np.fill_diagonal(crosstalk, 1.0)
    return ElectrodeModel(weights, velocity, bias, slow, slow_bias, crosstalk)


@dataclass(frozen=True)
class SessionRecording:
    """What changes between recording days: electrode placement and the room.

    Gains and offsets per channel (raw units), a small perturbation of the
    channel mixing, mains hum amplitude and harmonic profile, drift size,
    the speaker's voice (espeak-ng rate, pitch, pitch range) and the microphone gain.
    """

    name: str
    gain: np.ndarray  #: (8,)
    offset: np.ndarray  #: (8,)
    mixing_shift: np.ndarray  #: (8, 12)
    hum: np.ndarray  #: (8,) amplitude of the 60 Hz component per channel
    hum_harmonics: np.ndarray  #: (7,) relative amplitude of 60, 120, ..., 420 Hz
    drift: float
    voice: espeak.Voice
    microphone: float


def session_recording(name: str, seed: int) -> SessionRecording:
    """The :class:`SessionRecording` of session ``name`` (``5-4``; ``5-4_silent`` shares it)."""
    base = name.removesuffix("_silent")
    rng = np.random.default_rng([seed, 5, *base.encode()])
    harmonics = np.concatenate([[1.0], rng.uniform(0.05, 0.5, 6)])
    return SessionRecording(
        name=base,
        gain=rng.lognormal(0.0, 0.15, CHANNELS),
        offset=rng.uniform(-300.0, 300.0, CHANNELS),
        mixing_shift=rng.normal(0.0, 0.08, (CHANNELS, len(ARTICULATORS))),
        hum=rng.uniform(10.0, 60.0) * rng.uniform(0.5, 1.5, CHANNELS),
        hum_harmonics=harmonics,
        drift=float(rng.uniform(20.0, 80.0)),
        voice=espeak.Voice(
            VOICE, int(rng.integers(*VOICE_RATES)), int(rng.integers(*VOICE_PITCHES)), int(rng.integers(*VOICE_RANGES))
        ),
        microphone=float(rng.uniform(0.3, 0.6)),
    )


#: Raw-unit scale of the muscle activity and of the slow component. The slow component lies below
#: 20 Hz, outside the band of the shape statistics, and carries the articulation smoothly; its scale
#: sets how learnable the corpus is on a CPU. From 10 to 50 the 600-utterance quickstart's beam CER
#: went from 18.2 to 16.3 % and its production distance from 5.71 to 5.13 (docs/measurements.md,
#: *How learnable the corpus is*). At 50 it holds ~24 % of the 2-300 Hz power after the 2 Hz
#: high-pass, against 2.5 % in the EMG-UKA silent sentences: in this the corpus is easier than real
#: EMG (``silentspeech inspect`` prints the share).
MUSCLE_SCALE, SLOW_SCALE = 28.0, 50.0
#: Standard deviation of the sensor (amplifier) noise, raw units.
SENSOR_NOISE = 1.5
#: Resting muscle tone: activation added everywhere.
BASELINE_TONE = 0.08
#: Typical strength with which an electrode sees a muscle other than its own (scale of a half-normal draw).
CROSSTALK = 0.14


def synthesize_emg(trajectory: np.ndarray, session: SessionRecording, silent: bool, rng: np.random.Generator) -> np.ndarray:
    """Raw EMG of an articulatory trajectory, float32 ``(samples, 8)`` at 1 kHz.

    ``trajectory`` is ``(samples, 12)`` at 1 kHz. Silent articulation drives
    voicing at 60 % and effort at 90 % of their targets, the muscles 5 % weaker.
    Muscle activations drive motor-unit action potential trains
    (:func:`silentspeech.data.synthetic.emg.motor_unit_trains`) seen by the
    electrodes with cross-talk, plus a slow component and the nuisances
    of a real recording: mains hum with harmonics, drift, gain, offset and
    sensor noise.
    """
    samples = trajectory.shape[0]
    x = trajectory.copy()
    if silent:
        x[:, _VOICE] *= 0.6
        x[:, _EFFORT] *= 0.9
    model = electrode_model()
    velocity = np.gradient(x, axis=0) * 10.0  # per 10 ms
    drive = x @ (model.weights + session.mixing_shift).T + velocity @ model.velocity_weights.T + model.bias
    activation = BASELINE_TONE + np.logaddexp(0.0, 3.0 * drive) / 3.0
    if silent:
        activation *= 0.95
    muscles = motor_unit_trains(activation, RAW_EMG_RATE, rng)
    muscle = MUSCLE_SCALE * crosstalk(muscles, model.crosstalk, RAW_EMG_RATE)
    slow = SLOW_SCALE * np.tanh(x @ model.slow_weights.T + model.slow_bias)
    t = np.arange(samples) / RAW_EMG_RATE
    hum = np.zeros((samples, 1))
    wobble = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi))
    for harmonic, amplitude in enumerate(session.hum_harmonics, start=1):
        hum[:, 0] += amplitude * np.sin(2 * np.pi * 60.0 * harmonic * t + rng.uniform(0, 2 * np.pi))
    hum = hum * wobble[:, None] * session.hum[None, :]
    drift = np.zeros((samples, CHANNELS))
    for freq in (0.05, 0.1, 0.2, 0.4):
        drift += rng.normal(0.0, session.drift / 2, CHANNELS) * np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 2 * np.pi, CHANNELS))
    emg = (muscle + slow) * session.gain + hum + drift + session.offset
    emg += rng.normal(0.0, SENSOR_NOISE, emg.shape)
    return emg.astype(np.float32)


# --- audio ----------------------------------------------------------------------------


#: RMS of the clean speech, as the Gaddy corpus's denoised audio roughly has.
SPEECH_RMS = 0.05


def speech_audio(spoken: espeak.Spoken, performance: Performance) -> np.ndarray:
    """The clean speech track of a voiced performance, float32 ``(16 * performance.samples,)`` at 16 kHz.

    espeak-ng's audio resampled to 16 kHz between the performance's rests,
    RMS-normalised to :data:`SPEECH_RMS`.
    """
    speech = scipy.signal.resample_poly(spoken.audio.astype(np.float64), AUDIO_RATE // 50, espeak.ESPEAK_RATE // 50)
    speech *= SPEECH_RMS / (np.sqrt(np.mean(speech**2)) + 1e-12)
    audio = np.zeros(performance.samples * AUDIO_PER_EMG)
    start = performance.lead * AUDIO_PER_EMG
    length = min(speech.size, int(performance.durations.sum()) * AUDIO_PER_EMG)
    audio[start : start + length] = speech[:length]
    return np.clip(audio, -0.95, 0.95).astype(np.float32)


def room_noise(samples: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """Soft low-pass room noise of RMS ``level``, float32 ``(samples,)`` at 16 kHz."""
    noise = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.normal(0.0, 1.0, samples))
    return (level * noise / (noise.std() + 1e-12)).astype(np.float32)


#: RMS of the room noise and amplitude of the 60 Hz hum in the raw microphone track. Speech at the microphone gain
#: (0.3-0.6 of :data:`SPEECH_RMS`) stays 20-26 dB above the noise: with 0.004 and 0.002 (12-17 dB) Whisper tiny.en
#: missed 42 % of the words of the dev+test recordings (docs/measurements.md).
MICROPHONE_NOISE, MICROPHONE_HUM = 0.0015, 0.001


def microphone_audio(clean: np.ndarray, session: SessionRecording, rng: np.random.Generator) -> np.ndarray:
    """The "raw" microphone track of clean audio: gain, room noise, a little hum and DC."""
    t = np.arange(clean.size) / AUDIO_RATE
    raw = session.microphone * clean + room_noise(clean.size, MICROPHONE_NOISE, rng)
    raw += MICROPHONE_HUM * np.sin(2 * np.pi * 60.0 * t + rng.uniform(0, 6.3)) + 0.001
    return np.clip(raw, -1.0, 1.0).astype(np.float32)


# --- the corpus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance of the plan: where it goes and what is said."""

    folder: str  #: e.g. ``silent_parallel_data/5-4_silent``
    index: int
    session: str  #: recording session, e.g. ``5-4``
    book: str  #: "" for silence clips
    sentence_index: int  #: -1 for silence clips
    text: str  #: raw prompt, "" for silence clips
    silent: bool
    serial: int  #: position in the plan: seeds this utterance's own noise

    @property
    def is_silence_clip(self) -> bool:
        return self.sentence_index == -1


@dataclass
class CorpusSummary:
    """What :func:`generate_corpus` wrote (``counts`` by kind folder)."""

    root: Path
    split_file: Path
    seed: int
    utterances: int  #: spoken utterances (silence clips not included)
    silence_clips: int
    counts: dict[str, int]
    sessions: list[str]
    dev_sentences: int
    test_sentences: int
    written: int  #: utterances written in this run (silence clips included)
    skipped: int  #: complete utterances found and kept (a resumed run)
    seconds: float  #: total duration of the EMG, s
    vocabulary_words: int  #: distinct normalised words of the open-vocabulary prompts
    grammar_words: int = field(default_factory=lambda: len(language.open_vocabulary()))

    def __str__(self) -> str:
        lines = [f"synthetic corpus at {self.root} (seed {self.seed})"]
        for folder, count in self.counts.items():
            lines.append(f"  {folder:<16} {count:>6} utterances")
        lines.append(f"  {self.silence_clips} silence clips, {self.seconds / 60:.1f} min of EMG in sessions {', '.join(self.sessions)}")
        lines.append(f"  {self.vocabulary_words} distinct words used (grammar: {self.grammar_words})")
        lines.append(f"  written {self.written}, already present {self.skipped}")
        lines.append(f"  split file: {self.split_file} ({self.dev_sentences} dev, {self.test_sentences} test sentences)")
        return "\n".join(lines)


def _unique_prompts(rng: np.random.Generator, count: int, make) -> list[str]:
    prompts: list[str] = []
    seen: set[str] = set()
    while len(prompts) < count:
        prompt = make(rng)
        key = normalize_text(prompt)
        if key not in seen:
            seen.add(key)
            prompts.append(prompt)
    return prompts


def plan_corpus(
    utterances: int, seed: int, sessions: int = 3, silence_clips: int = 2, dev_fraction: float = 0.1, test_fraction: float = 0.15
) -> tuple[list[PlannedUtterance], dict[str, list[list]]]:
    """Every utterance of the corpus and the split, without any signal.

    ``utterances`` spoken utterances: 80 % parallel (half voiced, half their
    silent twins) spread over ``sessions`` sessions, 8 % closed vocabulary
    (voiced and silent twins), the rest nonparallel voiced; each folder starts
    with ``silence_clips`` silence clips. The split holds
    ``[book, sentence_index]`` of parallel sentences only, ``dev_fraction``
    and ``test_fraction`` of them.
    """
    if utterances < 10:
        raise ValueError(f"a synthetic corpus needs at least 10 utterances (got {utterances})")
    if not 1 <= sessions <= len(PARALLEL_SESSIONS):
        raise ValueError(f"sessions must be 1-{len(PARALLEL_SESSIONS)} (got {sessions})")
    if silence_clips < 0:
        raise ValueError(f"silence_clips must be >= 0 (got {silence_clips})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got {seed})")
    if not (0 < dev_fraction and 0 < test_fraction and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction and test_fraction must be positive with a sum below 1 (got {dev_fraction}, {test_fraction})")
    rng = np.random.default_rng([seed, 1])
    closed_pairs = max(1, round(utterances * CLOSED_VOCAB_SHARE / 2))
    nonparallel = max(1, round(utterances * (1 - PARALLEL_SHARE - CLOSED_VOCAB_SHARE)))
    pairs = (utterances - nonparallel - 2 * closed_pairs) // 2
    nonparallel = utterances - 2 * pairs - 2 * closed_pairs
    parallel_prompts = _unique_prompts(rng, pairs, language.open_sentence)
    nonparallel_prompts = _unique_prompts(rng, nonparallel, language.open_sentence)
    closed_prompts = _unique_prompts(rng, closed_pairs, language.closed_vocab_sentence)

    folders: dict[str, list[tuple[str, str, int, str, bool]]] = {}

    def add(folder: str, session: str, book: str, index: int, text: str, silent: bool) -> None:
        folders.setdefault(folder, []).append((session, book, index, text, silent))

    names = PARALLEL_SESSIONS[:sessions]
    for i, prompt in enumerate(parallel_prompts):
        session = names[i * sessions // pairs]
        add(f"voiced_parallel_data/{session}", session, PARALLEL_BOOK, i, prompt, False)
    for i, prompt in enumerate(parallel_prompts):
        session = names[i * sessions // pairs]
        add(f"silent_parallel_data/{session}_silent", session, PARALLEL_BOOK, i, prompt, True)
    for i, prompt in enumerate(nonparallel_prompts):
        add(f"nonparallel_data/{NONPARALLEL_SESSION}", NONPARALLEL_SESSION, NONPARALLEL_BOOK, i, prompt, False)
    for i, prompt in enumerate(closed_prompts):
        add(f"closed_vocab/voiced/{CLOSED_VOCAB_SESSION}", CLOSED_VOCAB_SESSION, CLOSED_VOCAB_BOOK, i, prompt, False)
    for i, prompt in enumerate(closed_prompts):
        add(f"closed_vocab/silent/{CLOSED_VOCAB_SESSION}_silent", CLOSED_VOCAB_SESSION, CLOSED_VOCAB_BOOK, i, prompt, True)

    plan: list[PlannedUtterance] = []
    for folder, entries in folders.items():
        session = entries[0][0]
        # Recording order within a session is shuffled, as prompts were in the real corpus.
        recorded = [entries[k] for k in rng.permutation(len(entries))]
        for index in range(silence_clips):
            plan.append(PlannedUtterance(folder, index, session, "", -1, "", folder.endswith("_silent"), len(plan)))
        for index, (session, book, sentence_index, text, silent) in enumerate(recorded, start=silence_clips):
            plan.append(PlannedUtterance(folder, index, session, book, sentence_index, text, silent, len(plan)))

    order = rng.permutation(pairs)
    n_test = max(1, round(pairs * test_fraction))
    n_dev = max(1, round(pairs * dev_fraction))
    if n_test + n_dev >= pairs:
        raise ValueError(f"{pairs} parallel sentences leave none for training with {n_dev} dev and {n_test} test; use more utterances")
    split = {
        "dev": [[PARALLEL_BOOK, int(i)] for i in sorted(order[n_test : n_test + n_dev])],
        "test": [[PARALLEL_BOOK, int(i)] for i in sorted(order[:n_test])],
    }
    return plan, split


def _spoken(item: PlannedUtterance, seed: int) -> espeak.Spoken:
    """espeak-ng's rendition of ``item``'s prompt in its session's voice (the rate varies by +-3 % per sentence)."""
    voice = session_recording(item.session, seed).voice
    rng = np.random.default_rng([seed, 2, _BOOKS.index(item.book), item.sentence_index])
    voice = dataclasses.replace(voice, rate=int(round(voice.rate * rng.uniform(0.97, 1.03))))
    return espeak.speak(item.text, voice)


def _performance_of(item: PlannedUtterance, spoken: espeak.Spoken, seed: int) -> Performance:
    """The performance of ``item``: the voiced one of its sentence, time-warped for a silent twin."""
    book = _BOOKS.index(item.book)
    voiced = perform(spoken, np.random.default_rng([seed, 2, book, item.sentence_index, 1]))
    if not item.silent:
        return voiced
    return time_warp(voiced, np.random.default_rng([seed, 3, book, item.sentence_index]))


def _chunks(samples: int, rng: np.random.Generator) -> list[list[int]]:
    """``[emg, audio, button]`` sample counts of the recording blocks, like the real ``chunks``."""
    chunks = []
    left = samples
    while left > 0:
        size = min(left, int(rng.integers(10, 21)) * 6)
        chunks.append([size, size * AUDIO_PER_EMG, size])
        left -= size
    return chunks


def _write_flac(path: Path, audio: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        sf.write(handle, audio, AUDIO_RATE, format="FLAC", subtype="PCM_16")


def _write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def render_utterance(item: PlannedUtterance, seed: int, noise_seed: int | None = None) -> dict:
    """Signals and info of one planned utterance.

    Returns ``emg`` float32 ``(samples, 8)`` at 1 kHz, ``audio`` and
    ``audio_clean`` float32 ``(16 * samples,)`` at 16 kHz, ``button`` bool
    ``(samples,)``, ``info`` (the ``info.json`` dict) and ``alignment``: the
    phone intervals ``(start_s, end_s, phone)`` of a voiced utterance, else
    None. With ``noise_seed`` the noise floor of the clean speech is drawn
    from its own generator seeded by it: a second rendition of the
    utterance (same EMG and the same espeak-ng speech, another noise floor).
    Raises :class:`~silentspeech.data.synthetic.espeak.EspeakError` naming
    the utterance when espeak-ng fails on its prompt.
    """
    rng = np.random.default_rng([seed, 4, item.serial])
    noise_rng = rng if noise_seed is None else np.random.default_rng([noise_seed, 5, item.serial])
    session = session_recording(item.session, seed)
    spoken = performance = None
    if item.is_silence_clip:
        trajectory = rest_trajectory(int(rng.integers(1000, 3000)), rng)
    else:
        try:
            spoken = _spoken(item, seed)
            performance = _performance_of(item, spoken, seed)
        except espeak.EspeakError as err:
            raise espeak.EspeakError(f"{item.folder}/{item.index} ({item.text!r}): {err}") from None
        trajectory = articulatory_trajectory(performance)
    emg = synthesize_emg(trajectory, session, item.silent, rng)
    samples = emg.shape[0]
    if spoken is None or performance is None or item.silent:
        clean = room_noise(samples * AUDIO_PER_EMG, 0.001, rng)
    else:
        # Noise reduction leaves a faint floor in the real clean audio too.
        clean = speech_audio(spoken, performance) + room_noise(samples * AUDIO_PER_EMG, 3e-4, noise_rng)
    info = {"book": item.book, "sentence_index": item.sentence_index, "text": item.text, "chunks": _chunks(samples, rng)}
    return {
        "emg": emg,
        "audio": microphone_audio(clean, session, rng),
        "audio_clean": clean,
        "button": np.zeros(samples, dtype=bool),
        "info": info,
        "alignment": None if performance is None or item.silent else performance.intervals(),
    }


def second_rendition(audio_path: str | os.PathLike, noise_seed: int = 1) -> np.ndarray:
    """A second rendition of a synthetic corpus utterance's clean audio, float32 ``(samples,)`` at 16 kHz.

    ``audio_path`` is an ``{i}_audio_clean.flac`` (or ``{i}_audio.flac``) of a
    corpus written by :func:`generate_corpus`; the utterance is rendered
    again (:func:`render_utterance` with ``noise_seed``): espeak-ng speaks
    it identically, only the faint noise floor is new. Scored against the
    file, it measures how far the same speech lies from itself under another
    noise floor: a floor for any vocoder's distance, not a target (espeak-ng
    has no breath or pitch randomness a second take would bring).
    Raises ``ValueError`` naming the file when it is not part of a synthetic
    corpus.
    """
    path = Path(audio_path)
    root = next((folder for folder in path.parents if (folder / MARKER).is_file()), None)
    if root is None:
        raise ValueError(f"{path}: not in a synthetic corpus (no {MARKER} in any parent folder)")
    seed, plan = _corpus_plan(root)
    key = f"{path.parent.relative_to(root).as_posix()}/{path.name.split('_', 1)[0]}"
    if key not in plan:
        raise ValueError(f"{path}: no utterance {key} in the plan of the corpus at {root}")
    return render_utterance(plan[key], seed, noise_seed)["audio_clean"]


@functools.lru_cache(maxsize=4)
def _corpus_plan(root: Path) -> tuple[int, dict[str, PlannedUtterance]]:
    """The seed and the planned utterances (by ``folder/index``) of the corpus at ``root``, from its marker file."""
    settings = json.loads((root / MARKER).read_text(encoding="utf-8"))
    if settings.get("version") != GENERATOR_VERSION:
        raise ValueError(f"{root}: corpus of generator version {settings.get('version')}, this is version {GENERATOR_VERSION}; it cannot render it again")
    plan, _ = plan_corpus(
        settings["utterances"], settings["seed"], settings["sessions"], settings["silence_clips"],
        settings["dev_fraction"], settings["test_fraction"],
    )
    return settings["seed"], {f"{item.folder}/{item.index}": item for item in plan}


def alignment_path(root: Path, item: PlannedUtterance) -> Path:
    """Where the TextGrid of ``item`` goes: ``text_alignments/{session}/{session}_{i}_audio.TextGrid`` (the Gaddy layout)."""
    session = item.folder.rsplit("/", 1)[1]
    return root / ALIGNMENT_FOLDER / session / f"{session}_{item.index}_audio.TextGrid"


def _has_alignment(item: PlannedUtterance) -> bool:
    return not (item.silent or item.is_silence_clip)


def write_utterance(root: Path, item: PlannedUtterance, seed: int) -> int:
    """Render ``item`` of the corpus of ``seed`` and write its files under ``root``, each atomically; returns its EMG samples."""
    folder = root / item.folder
    rendered = render_utterance(item, seed)
    _write_npy(folder / f"{item.index}_emg.npy", rendered["emg"])
    _write_flac(folder / f"{item.index}_audio.flac", rendered["audio"])
    _write_flac(folder / f"{item.index}_audio_clean.flac", rendered["audio_clean"])
    _write_npy(folder / f"{item.index}_button.npy", rendered["button"])
    if rendered["alignment"] is not None:
        with atomic_open(alignment_path(root, item), "w") as handle:
            handle.write(format_textgrid(rendered["alignment"]))
    atomic_write_json(folder / f"{item.index}_info.json", rendered["info"])
    return int(rendered["emg"].shape[0])


def _is_complete(root: Path, item: PlannedUtterance) -> bool:
    folder = root / item.folder
    files = all((folder / name.format(i=item.index)).is_file() for name in UTTERANCE_FILES)
    return files and (not _has_alignment(item) or alignment_path(root, item).is_file())


def _check_output_folder(root: Path, settings: dict) -> None:
    marker = root / MARKER
    if marker.is_file():
        try:
            existing = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CorpusExistsError(f"{marker}: unreadable corpus marker ({err}); remove the folder or choose another") from None
        if existing != settings:
            differing = ", ".join(f"{k} {existing.get(k)!r} (asked {v!r})" for k, v in settings.items() if existing.get(k) != v)
            raise CorpusExistsError(f"{root}: holds a synthetic corpus with other settings: {differing}; choose another folder or the same settings")
    elif root.is_dir() and any(root.iterdir()):
        raise CorpusExistsError(f"{root}: folder is not empty and holds no synthetic corpus ({MARKER} missing); choose an empty or new folder")


def generate_corpus(
    out: str | os.PathLike,
    utterances: int = 300,
    seed: int = 0,
    sessions: int = 3,
    silence_clips: int = 2,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.15,
    progress: bool = True,
    workers: int = 1,
) -> CorpusSummary:
    """Write a synthetic corpus in the Gaddy layout to ``out``.

    Args:
        out: output folder (created; if it exists it must be empty or a
            corpus of the same settings, which is then completed).
        utterances: spoken utterances (at least 10): 80 % parallel (voiced +
            silent twins), 8 % closed vocabulary, the rest nonparallel.
        seed: fixes prompts, timing and every noise; same seed, same files.
        sessions: parallel recording sessions (``5-4``, ``5-5``, ...).
        silence_clips: ``sentence_index == -1`` clips at the start of each folder.
        dev_fraction, test_fraction: shares of the parallel sentences in the
            split file ``out/testset.json``.
        progress: show a tqdm progress bar.
        workers: processes that render utterances (0 or 1: this one); the
            files are the same for any number.

    Returns:
        A :class:`CorpusSummary`. Raises :class:`CorpusExistsError` when
        ``out`` holds something else, ``ValueError`` for bad settings.
    """
    root = Path(out)
    settings = {
        "generator": "silentspeech.data.synthetic.speech", "version": GENERATOR_VERSION, "seed": seed,
        "utterances": utterances, "sessions": sessions, "silence_clips": silence_clips,
        "dev_fraction": dev_fraction, "test_fraction": test_fraction,
    }
    plan, split = plan_corpus(utterances, seed, sessions, silence_clips, dev_fraction, test_fraction)
    _check_output_folder(root, settings)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MARKER, settings)
    atomic_write_json(root / SPLIT_FILE, split)

    complete = [_is_complete(root, item) for item in plan]
    done = [item for item, c in zip(plan, complete) if c]
    todo = [item for item, c in zip(plan, complete) if not c]
    emg_samples = sum(int(np.load(root / item.folder / f"{item.index}_emg.npy", mmap_mode="r").shape[0]) for item in done)
    with tqdm(total=len(plan), initial=len(done), desc="synthetic corpus", unit="utt", disable=not progress) as bar:
        # Every utterance has its own random stream, so the files do not depend on the order or the worker.
        for samples in each_result(write_utterance, [(root, item, seed) for item in todo], workers):
            emg_samples += samples
            bar.update()

    spoken = [p for p in plan if not p.is_silence_clip]
    counts = Counter(p.folder.split("/")[0] if not p.folder.startswith("closed") else "closed_vocab" for p in spoken)
    used = {w for p in spoken if p.book != CLOSED_VOCAB_BOOK for w in normalize_text(p.text).split()}
    return CorpusSummary(
        root=root,
        split_file=root / SPLIT_FILE,
        seed=seed,
        utterances=len(spoken),
        silence_clips=len(plan) - len(spoken),
        counts=dict(counts),
        sessions=sorted({p.folder.rsplit("/", 1)[1] for p in plan}),
        dev_sentences=len(split["dev"]),
        test_sentences=len(split["test"]),
        written=len(todo),
        skipped=len(done),
        seconds=emg_samples / RAW_EMG_RATE,
        vocabulary_words=len(used),
    )
