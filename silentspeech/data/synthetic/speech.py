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

How a recording is made. The prompt (:mod:`silentspeech.data.synthetic.language`) is
normalised to the CTC characters; every character, and the space as a pause,
has a fixed articulatory target (jaw, tongue, lips, velum, voicing, ...; the
same for every corpus seed, like a language). The speaker moves through the
targets with 60-110 ms per character and smooth transitions, giving an
articulatory trajectory ``(samples, 12)`` at 1 kHz. From it:

* audio: a source-filter synthesiser. A glottal pulse train and a noise
  source are shaped in the STFT domain by formant resonances (F1-F3 follow
  jaw, tongue and lips) and a frication band, with closures, bursts and
  nasality;
* EMG: every channel mixes the trajectory nonlinearly (its own weights) into
  a muscle activation that modulates band-limited noise (20-450 Hz), plus a
  weaker slow component of the trajectory, then the nuisances of real
  recordings: 60 Hz mains hum with harmonics, baseline drift, per-session
  gain and offset, sensor noise. Scaled so that after
  :func:`silentspeech.preprocessing.preprocess_emg` values are O(1) and the soft
  clip is rarely reached.

A silent twin repeats a voiced parallel sentence (same book and
``sentence_index``) with a smooth random time warp, weaker laryngeal
activity and no speech in its audio (room noise only).

No library synthesises paired EMG and speech of a controllable language, so
this module is our own; it reuses scipy/librosa for filtering and STFTs.

Re-running into an existing folder resumes: ``synthetic_corpus.json`` there
records the settings; with the same settings every utterance whose five files
exist is skipped and the others are written again (identically, each
utterance has its own random stream). Other settings, or a non-empty folder
that is not a synthetic corpus, raise :class:`CorpusExistsError`.
"""

from __future__ import annotations

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
from silentspeech.data.synthetic import language
from silentspeech.preprocessing import RAW_EMG_RATE
from silentspeech.text import CHARACTERS, normalize_text

#: Audio rate of the real corpus's flac files and of ``chunks[:, 1]``, Hz.
AUDIO_RATE = 16000
#: Audio samples per raw EMG sample.
AUDIO_PER_EMG = AUDIO_RATE // int(RAW_EMG_RATE)
#: EMG channels, as recorded by the OpenBCI Cyton of the real corpus.
CHANNELS = 8
#: Seed of the "language": articulatory targets and electrode mixing, fixed for every corpus.
LANGUAGE_SEED = 20200504
#: Version of the generator, recorded in ``synthetic_corpus.json``.
GENERATOR_VERSION = 1
#: Marker file with the settings of the corpus in a folder.
MARKER = "synthetic_corpus.json"
#: Split file written beside the kind folders.
SPLIT_FILE = "testset.json"

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


class CorpusExistsError(ValueError):
    """The output folder holds something other than this corpus."""


# --- the articulatory code of the language -----------------------------------------

#: Articulatory dimensions, each in [0, 1]; the last two have no acoustic role
#: beyond small formant shifts, they keep letters of similar sound apart in EMG.
ARTICULATORS = (
    "jaw", "tongue_front", "tongue_back", "tongue_tip", "lips", "occlusion",
    "velum", "voicing", "frication", "effort", "tongue_root", "cheek",
)
_JAW, _FRONT, _BACK, _TIP, _LIPS, _OCCL, _VELUM, _VOICE, _FRIC, _EFFORT, _ROOT, _CHEEK = range(len(ARTICULATORS))

# jaw front back tip lips occlusion velum voicing frication effort, per character.
# Letters get a rough English sound (vowels open and voiced, stops closed,
# fricatives noisy, nasals with the velum open); digits are vowel-like blends.
_PHONETIC = {
    "a": (0.9, 0.3, 0.5, 0.1, 0.1, 0.0, 0.0, 1.0, 0.0, 1.0),
    "e": (0.5, 0.8, 0.1, 0.2, 0.1, 0.0, 0.0, 1.0, 0.0, 1.0),
    "i": (0.15, 1.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9),
    "o": (0.6, 0.1, 0.8, 0.1, 0.8, 0.0, 0.0, 1.0, 0.0, 1.0),
    "u": (0.2, 0.1, 1.0, 0.1, 1.0, 0.0, 0.0, 1.0, 0.0, 0.9),
    "y": (0.2, 0.9, 0.1, 0.4, 0.5, 0.0, 0.0, 1.0, 0.1, 0.8),
    "b": (0.2, 0.3, 0.3, 0.1, 0.9, 1.0, 0.0, 0.8, 0.0, 0.7),
    "p": (0.2, 0.3, 0.3, 0.1, 0.9, 1.0, 0.0, 0.0, 0.2, 0.9),
    "m": (0.2, 0.4, 0.2, 0.2, 0.9, 1.0, 1.0, 1.0, 0.0, 0.7),
    "f": (0.2, 0.4, 0.2, 0.1, 0.6, 0.3, 0.0, 0.0, 1.0, 0.8),
    "v": (0.2, 0.4, 0.2, 0.1, 0.6, 0.3, 0.0, 1.0, 0.8, 0.8),
    "w": (0.2, 0.1, 0.7, 0.1, 1.0, 0.0, 0.0, 1.0, 0.0, 0.7),
    "d": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 0.0, 0.8, 0.0, 0.7),
    "t": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 0.0, 0.0, 0.3, 0.9),
    "n": (0.3, 0.5, 0.1, 0.9, 0.1, 1.0, 1.0, 1.0, 0.0, 0.7),
    "s": (0.1, 0.6, 0.1, 0.8, 0.1, 0.3, 0.0, 0.0, 1.0, 0.8),
    "z": (0.1, 0.6, 0.1, 0.8, 0.1, 0.3, 0.0, 1.0, 0.8, 0.8),
    "l": (0.3, 0.4, 0.2, 1.0, 0.1, 0.2, 0.0, 1.0, 0.0, 0.8),
    "r": (0.3, 0.2, 0.4, 0.6, 0.4, 0.0, 0.0, 1.0, 0.0, 0.8),
    "c": (0.2, 0.2, 0.7, 0.5, 0.2, 0.8, 0.0, 0.0, 0.6, 0.8),
    "k": (0.2, 0.0, 1.0, 0.1, 0.2, 1.0, 0.0, 0.0, 0.2, 0.9),
    "g": (0.2, 0.0, 1.0, 0.1, 0.2, 1.0, 0.0, 0.8, 0.0, 0.7),
    "q": (0.2, 0.0, 1.0, 0.1, 0.7, 1.0, 0.0, 0.0, 0.2, 0.9),
    "x": (0.3, 0.3, 0.8, 0.6, 0.1, 0.5, 0.0, 0.0, 0.8, 0.8),
    "h": (0.5, 0.3, 0.3, 0.1, 0.2, 0.0, 0.0, 0.0, 0.5, 0.6),
    "j": (0.2, 0.8, 0.2, 0.7, 0.3, 0.5, 0.0, 1.0, 0.7, 0.8),
    " ": (0.15, 0.3, 0.3, 0.2, 0.2, 0.0, 0.3, 0.0, 0.0, 0.15),
}
#: Rest posture before and after an utterance and in silence clips.
_REST = (0.1, 0.3, 0.3, 0.2, 0.2, 0.0, 0.4, 0.0, 0.0, 0.0)
#: Mean duration of a character by its class, ms (speaker rate and jitter vary it).
_VOWELS = "aeiouy0123456789"
_STOPS = "bpdtkgqc"
_MEAN_DURATION_MS = {"vowel": 95.0, "stop": 68.0, "other": 82.0, "pause": 80.0}


@functools.lru_cache(maxsize=1)
def symbol_targets() -> np.ndarray:
    """Articulatory target of every character of :data:`silentspeech.text.CHARACTERS`.

    Returns float64 ``(len(CHARACTERS) + 1, len(ARTICULATORS))``; the last row
    is the rest posture. Fixed by :data:`LANGUAGE_SEED`: the two idiosyncratic
    dimensions and the digits' targets are drawn once from it.
    """
    rng = np.random.default_rng(LANGUAGE_SEED)
    rows = []
    for ch in CHARACTERS:
        if ch in _PHONETIC:
            phonetic = np.array(_PHONETIC[ch])
        else:  # digits: voiced, loud, a random place and manner of their own
            place = rng.uniform(0.0, 1.0, 5)
            manner = (rng.choice([0.0, 0.5]), rng.choice([0.0, 0.7]), 1.0, rng.choice([0.0, 0.6]), 1.0)
            phonetic = np.concatenate([place, manner])
        rows.append(np.concatenate([phonetic, rng.uniform(0.0, 1.0, 2)]))
    rows.append(np.concatenate([np.array(_REST), [0.5, 0.5]]))
    return np.stack(rows)


def _duration_class(ch: str) -> str:
    if ch == " ":
        return "pause"
    if ch in _VOWELS:
        return "vowel"
    return "stop" if ch in _STOPS else "other"


@dataclass(frozen=True)
class Performance:
    """How one prompt is spoken: a target and a duration per character.

    ``targets`` ``(characters, 12)``; ``durations`` ``(characters,)`` in ms
    (1 kHz samples); ``lead``/``trail`` rest before and after, ms.
    """

    targets: np.ndarray
    durations: np.ndarray
    lead: int
    trail: int


def perform(text: str, rng: np.random.Generator) -> Performance:
    """Targets and timing of normalised ``text`` for one spoken rendition.

    Speaking rate varies by +-10 % per utterance, each character's duration by
    about 12 % (clipped to 55-125 ms) and each target by a little
    coarticulation jitter.
    """
    if not text:
        raise ValueError("perform: empty text (silence clips have no performance)")
    table = symbol_targets()
    ids = [CHARACTERS.index(ch) for ch in text]
    targets = table[ids] + rng.normal(0.0, 0.04, (len(ids), table.shape[1]))
    rate = rng.uniform(0.9, 1.1)
    means = np.array([_MEAN_DURATION_MS[_duration_class(ch)] for ch in text])
    durations = np.clip(means * rate * rng.lognormal(0.0, 0.12, len(ids)), 55, 125).round().astype(int)
    return Performance(np.clip(targets, 0.0, 1.0), durations, int(rng.integers(150, 350)), int(rng.integers(150, 350)))


def time_warp(performance: Performance, rng: np.random.Generator) -> Performance:
    """The same prompt spoken again with a smooth random time warp.

    The local speaking rate is a slow random function of time (a few
    sinusoids, about +-15 %, at most 25 %) around a global factor 0.95-1.2 (silent speech tends
    to be slower); targets get fresh jitter, the pauses new lengths.
    """
    n = len(performance.durations)
    position = np.cumsum(performance.durations) / performance.durations.sum()
    local = np.zeros(n)
    for k in (1, 2, 3):
        local += rng.normal(0.0, 0.12 / k) * np.sin(np.pi * k * position + rng.uniform(0, 2 * np.pi))
    factor = rng.uniform(0.95, 1.2) * np.exp(np.clip(local, -0.25, 0.25))
    durations = np.clip(performance.durations * factor, 50, 150).round().astype(int)
    targets = np.clip(performance.targets + rng.normal(0.0, 0.03, performance.targets.shape), 0.0, 1.0)
    return Performance(targets, durations, int(rng.integers(150, 350)), int(rng.integers(150, 350)))


def articulatory_trajectory(performance: Performance, smoothing_ms: float = 12.0) -> np.ndarray:
    """Smooth trajectory through the targets, ``(samples, 12)`` float64 at 1 kHz.

    Piecewise-constant targets (rest, characters, rest) smoothed by a
    Gaussian of ``smoothing_ms``: transitions take about 40 ms and every
    target of 55 ms or more is reached.
    """
    rest = symbol_targets()[-1]
    steps = np.concatenate([
        np.repeat(rest[None], performance.lead, axis=0),
        np.repeat(performance.targets, performance.durations, axis=0),
        np.repeat(rest[None], performance.trail, axis=0),
    ])
    return scipy.ndimage.gaussian_filter1d(steps, smoothing_ms, axis=0, mode="nearest")


def rest_trajectory(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Rest posture with slow small fluctuations (silence clips), ``(samples, 12)`` at 1 kHz."""
    wander = scipy.ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, (samples, len(ARTICULATORS))), 80.0, axis=0)
    return np.clip(symbol_targets()[-1] + 0.3 * wander, 0.0, 1.0)


# --- EMG ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ElectrodeModel:
    """How each EMG channel sees the articulators; fixed by :data:`LANGUAGE_SEED`.

    ``activation = softplus(3 (weights @ x + velocity_weights @ dx/dt * 10 ms + bias)) / 3``
    per channel, the envelope of its muscle activity; ``slow_weights``/``slow_bias`` give the
    weaker slow component ``tanh(slow_weights @ x + slow_bias)``.
    """

    weights: np.ndarray  #: (8, 12)
    velocity_weights: np.ndarray  #: (8, 12)
    bias: np.ndarray  #: (8,)
    slow_weights: np.ndarray  #: (8, 12)
    slow_bias: np.ndarray  #: (8,)


@functools.lru_cache(maxsize=1)
def electrode_model() -> ElectrodeModel:
    """The fixed channel mixing: each channel dominated by two articulators, with crosstalk."""
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
    return ElectrodeModel(weights, velocity, bias, slow, slow_bias)


@dataclass(frozen=True)
class SessionRecording:
    """What changes between recording days: electrode placement and the room.

    Gains and offsets per channel (raw units), a small perturbation of the
    channel mixing, mains hum amplitude and harmonic profile, drift size,
    the speaker's pitch and the microphone gain.
    """

    name: str
    gain: np.ndarray  #: (8,)
    offset: np.ndarray  #: (8,)
    mixing_shift: np.ndarray  #: (8, 12)
    hum: np.ndarray  #: (8,) amplitude of the 60 Hz component per channel
    hum_harmonics: np.ndarray  #: (7,) relative amplitude of 60, 120, ..., 420 Hz
    drift: float
    pitch: float  #: mean f0, Hz
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
        pitch=float(rng.uniform(105.0, 135.0)),
        microphone=float(rng.uniform(0.3, 0.6)),
    )


#: Raw-unit scale of the muscle activity and of the slow component.
MUSCLE_SCALE, SLOW_SCALE = 28.0, 10.0
#: Standard deviation of the sensor (amplifier) noise, raw units.
SENSOR_NOISE = 1.5
#: Resting muscle tone: activation added everywhere.
BASELINE_TONE = 0.08


@functools.lru_cache(maxsize=1)
def _muscle_band() -> np.ndarray:
    return scipy.signal.butter(4, (20.0, 450.0), btype="bandpass", fs=RAW_EMG_RATE, output="sos")


def synthesize_emg(trajectory: np.ndarray, session: SessionRecording, silent: bool, rng: np.random.Generator) -> np.ndarray:
    """Raw EMG of an articulatory trajectory, float32 ``(samples, 8)`` at 1 kHz.

    ``trajectory`` is ``(samples, 12)`` at 1 kHz. Silent articulation drives
    voicing at 60 % and effort at 90 % of their targets, the muscles 5 % weaker.
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
    carrier = scipy.signal.sosfilt(_muscle_band(), rng.normal(0.0, 1.0, (samples + 200, CHANNELS)), axis=0)[200:]
    carrier /= carrier.std(axis=0, keepdims=True) + 1e-12
    muscle = MUSCLE_SCALE * activation * carrier
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


# --- audio: a source-filter synthesiser ----------------------------------------------

_N_FFT, _HOP = 512, 80  # 32 ms window, 5 ms hop at 16 kHz
_FORMANT_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 220.0, 300.0])


def _resonance(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Magnitude of a two-pole resonator with unit gain at 0 Hz.

    ``freqs`` ``(bins,)``; ``centre``/``bandwidth`` ``(frames,)`` in Hz;
    returns ``(bins, frames)``.
    """
    r = np.exp(-np.pi * bandwidth / AUDIO_RATE)[None]
    theta = (2 * np.pi * centre / AUDIO_RATE)[None]
    z = np.exp(-1j * 2 * np.pi * freqs / AUDIO_RATE)[:, None]
    denominator = np.abs(1 - 2 * r * np.cos(theta) * z + r**2 * z**2)
    return (1 - 2 * r * np.cos(theta) + r**2) / denominator


def synthesize_speech(
    trajectory: np.ndarray, pitch: float, rng: np.random.Generator, noise_rng: np.random.Generator | None = None
) -> np.ndarray:
    """Speech-like audio of an articulatory trajectory, float32 ``(16 * samples,)`` at 16 kHz.

    ``trajectory`` is ``(samples, 12)`` at 1 kHz; ``pitch`` the mean f0 in Hz
    (it falls by 20 % over the utterance). RMS-normalised to 0.05. The pitch
    contour (vibrato, jitter) comes from ``rng``; the noise sources (breath
    noise on the glottal pulses, frication and aspiration) from ``noise_rng``,
    which defaults to ``rng``. A separate ``noise_rng`` gives a second
    rendition of the same speech: same articulation and pitch, new noise.
    """
    noise_rng = rng if noise_rng is None else noise_rng
    n = trajectory.shape[0] * AUDIO_PER_EMG
    frames = 1 + n // _HOP
    frame_times = np.minimum(np.arange(frames) * _HOP / AUDIO_PER_EMG, trajectory.shape[0] - 1)
    x = np.stack([np.interp(frame_times, np.arange(trajectory.shape[0]), trajectory[:, d]) for d in range(trajectory.shape[1])], axis=1)
    jaw, front, back, tip, lips, occl, velum, voice, fric, effort, root, cheek = x.T

    # Formants from the articulators (a rough linear articulatory-to-acoustic map).
    f1 = np.clip(250 + 650 * jaw - 150 * occl - 100 * velum + 80 * root, 200, 1000)
    f2 = np.clip(850 + 1500 * front - 450 * back - 400 * lips + 150 * cheek, 550, 2700)
    f3 = np.clip(2450 + 400 * front - 700 * tip * (1 - fric) - 200 * lips, 1600, 3300)
    formants = [f1, f2, f3, 3500 + 200 * cheek, 4500 + 150 * root]
    freqs = np.linspace(0, AUDIO_RATE / 2, _N_FFT // 2 + 1)
    vocal_tract = np.ones((freqs.size, frames))
    for centre, bandwidth in zip(formants, _FORMANT_BANDWIDTHS):
        vocal_tract *= _resonance(freqs, centre, np.full(frames, bandwidth) * (1 + velum))
    nasal_murmur = _resonance(freqs, np.full(frames, 260.0), np.full(frames, 80.0))
    vocal_tract = vocal_tract * (1 - 0.6 * velum) + 0.6 * velum * nasal_murmur
    fric_centre = np.clip(2500 + 3200 * tip - 1200 * lips - 900 * back, 1200, 7000)
    frication_band = _resonance(freqs, fric_centre, 0.5 * fric_centre) * (freqs[:, None] / fric_centre[None]) ** 2
    frication_band /= frication_band.max(axis=0, keepdims=True) + 1e-9

    # Sources: glottal pulses (jittered f0, falling) and white noise.
    t = np.arange(n) / AUDIO_RATE
    f0 = pitch * (1.1 - 0.2 * t / t[-1]) * (1 + 0.04 * np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6.3)))
    f0 *= 1 + 0.01 * scipy.ndimage.gaussian_filter1d(rng.normal(0, 1, n), 200)
    phase = np.cumsum(f0 / AUDIO_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    glottal = scipy.signal.lfilter([1.0, -1.0], np.convolve([1.0, -0.96], [1.0, -0.96]), pulses)
    glottal = glottal / (np.abs(glottal).max() + 1e-9) + 0.03 * noise_rng.normal(0, 1, n)
    noise = noise_rng.normal(0.0, 1.0, n)

    release = np.clip(-np.gradient(occl) * 8.0, 0.0, 1.0)  # burst as a closure opens
    voiced_gain = effort * voice * (1 - 0.9 * occl)
    noise_gain = effort * (0.4 * fric * (1 - 0.6 * occl) + 0.5 * release)
    aspiration = effort * (1 - voice) * 0.05

    def shaped(source: np.ndarray, envelope: np.ndarray) -> np.ndarray:
        spectrum = scipy.signal.stft(source, nperseg=_N_FFT, noverlap=_N_FFT - _HOP, boundary="even", padded=True)[2]
        m = min(spectrum.shape[1], envelope.shape[1])
        spectrum = spectrum[:, :m] * envelope[:, :m]
        return scipy.signal.istft(spectrum, nperseg=_N_FFT, noverlap=_N_FFT - _HOP, boundary=True)[1][:n]

    audio = shaped(glottal, vocal_tract * voiced_gain[None])
    audio = audio + shaped(noise, frication_band * noise_gain[None] + 0.05 * vocal_tract * aspiration[None])
    audio = np.pad(audio, (0, n - audio.size))
    rms = np.sqrt(np.mean(audio**2)) + 1e-12
    audio = audio * (0.05 / rms)
    peak = np.abs(audio).max()
    if peak > 0.95:
        audio *= 0.95 / peak
    return audio.astype(np.float32)


def room_noise(samples: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """Soft low-pass room noise of RMS ``level``, float32 ``(samples,)`` at 16 kHz."""
    noise = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.normal(0.0, 1.0, samples))
    return (level * noise / (noise.std() + 1e-12)).astype(np.float32)


def microphone_audio(clean: np.ndarray, session: SessionRecording, rng: np.random.Generator) -> np.ndarray:
    """The "raw" microphone track of clean audio: gain, room noise, a little hum and DC."""
    t = np.arange(clean.size) / AUDIO_RATE
    raw = session.microphone * clean + room_noise(clean.size, 0.004, rng)
    raw += 0.002 * np.sin(2 * np.pi * 60.0 * t + rng.uniform(0, 6.3)) + 0.001
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


def _performance_of(item: PlannedUtterance, seed: int) -> Performance:
    """The rendition of ``item``: the voiced one of its sentence, time-warped for a silent twin."""
    book = (PARALLEL_BOOK, NONPARALLEL_BOOK, CLOSED_VOCAB_BOOK).index(item.book)
    voiced = perform(normalize_text(item.text), np.random.default_rng([seed, 2, book, item.sentence_index]))
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
    ``(samples,)`` and ``info`` (the ``info.json`` dict). With ``noise_seed``
    the speech's noise sources and its noise floor are drawn from their own
    generator seeded by it: a second rendition of the corpus's utterance
    (same EMG, articulation and pitch contour, new noise), which shows how
    far two equally real recordings of the same speech lie apart.
    """
    rng = np.random.default_rng([seed, 4, item.serial])
    noise_rng = rng if noise_seed is None else np.random.default_rng([noise_seed, 5, item.serial])
    session = session_recording(item.session, seed)
    if item.is_silence_clip:
        trajectory = rest_trajectory(int(rng.integers(1000, 3000)), rng)
    else:
        trajectory = articulatory_trajectory(_performance_of(item, seed))
    emg = synthesize_emg(trajectory, session, item.silent, rng)
    samples = emg.shape[0]
    if item.silent or item.is_silence_clip:
        clean = room_noise(samples * AUDIO_PER_EMG, 0.001, rng)
    else:
        # Noise reduction leaves a faint floor in the real clean audio too.
        clean = synthesize_speech(trajectory, session.pitch, rng, noise_rng) + room_noise(samples * AUDIO_PER_EMG, 3e-4, noise_rng)
    info = {"book": item.book, "sentence_index": item.sentence_index, "text": item.text, "chunks": _chunks(samples, rng)}
    return {
        "emg": emg,
        "audio": microphone_audio(clean, session, rng),
        "audio_clean": clean,
        "button": np.zeros(samples, dtype=bool),
        "info": info,
    }


def second_rendition(audio_path: str | os.PathLike, noise_seed: int = 1) -> np.ndarray:
    """A second rendition of a synthetic corpus utterance's clean audio, float32 ``(samples,)`` at 16 kHz.

    ``audio_path`` is an ``{i}_audio_clean.flac`` (or ``{i}_audio.flac``) of a
    corpus written by :func:`generate_corpus`; the utterance is rendered
    again with the same articulation and pitch contour and new noise
    (:func:`render_utterance` with ``noise_seed``), as a second recording of
    the same speech would be. Scored against the file, it measures the
    distance that no vocoder, however good, can be expected to go below.
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


def _is_complete(folder: Path, index: int) -> bool:
    return all((folder / name.format(i=index)).is_file() for name in UTTERANCE_FILES)


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

    written = skipped = 0
    emg_samples = 0
    for item in tqdm(plan, desc="synthetic corpus", unit="utt", disable=not progress):
        folder = root / item.folder
        if _is_complete(folder, item.index):
            skipped += 1
            emg_samples += int(np.load(folder / f"{item.index}_emg.npy", mmap_mode="r").shape[0])
            continue
        rendered = render_utterance(item, seed)
        _write_npy(folder / f"{item.index}_emg.npy", rendered["emg"])
        _write_flac(folder / f"{item.index}_audio.flac", rendered["audio"])
        _write_flac(folder / f"{item.index}_audio_clean.flac", rendered["audio_clean"])
        _write_npy(folder / f"{item.index}_button.npy", rendered["button"])
        atomic_write_json(folder / f"{item.index}_info.json", rendered["info"])
        emg_samples += rendered["emg"].shape[0]
        written += 1

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
        written=written,
        skipped=skipped,
        seconds=emg_samples / RAW_EMG_RATE,
        vocabulary_words=len(used),
    )
