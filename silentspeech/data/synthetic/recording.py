"""One recording of the synthetic corpus: EMG and audio from an articulatory trajectory.

The trajectory (:mod:`silentspeech.data.synthetic.articulation`) drives one
muscle under each electrode; each muscle's activation recruits motor units
whose action-potential trains make its surface signal
(:mod:`silentspeech.data.synthetic.emg`); every electrode sees its muscle
and weaker cross-talk from the others, then the nuisances of a real
recording. The voiced audio is espeak-ng's speech placed between the
performance's rests. What changes between recording days (electrode
placement, mains, the speaker's voice) is a :class:`SessionRecording`.

No library synthesises paired EMG and speech, so this module is our own; it
reuses espeak-ng for the speech and scipy for filtering and resampling.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from silentspeech.data.synthetic import espeak
from silentspeech.data.synthetic.articulation import ARTICULATORS, LANGUAGE_SEED, Performance
from silentspeech.data.synthetic.emg import crosstalk, motor_unit_trains
from silentspeech.preprocessing import RAW_EMG_RATE

#: Audio rate of the real corpus's flac files and of ``chunks[:, 1]``, Hz.
AUDIO_RATE = 16000
#: Audio samples per raw EMG sample.
AUDIO_PER_EMG = AUDIO_RATE // int(RAW_EMG_RATE)
#: EMG channels, as recorded by the OpenBCI Cyton of the real corpus.
CHANNELS = 8

#: espeak-ng voice of every session, and the ranges of its words per minute, pitch and pitch range (0-100)
#: drawn per session: kept to what Whisper tiny.en still transcribes well (slower and lower is clearer to
#: it; one plain voice, the variants are less intelligible: docs/measurements.md, *The corpus's voice and
#: its judge*).
VOICE = "en-us"
VOICE_RATES, VOICE_PITCHES, VOICE_RANGES = (140, 156), (30, 45), (45, 66)


@dataclass(frozen=True)
class ElectrodeModel:
    """How the muscles follow the articulators and the electrodes see the muscles; fixed by :data:`LANGUAGE_SEED`.

    One muscle under each of the 8 electrodes:
    ``activation = softplus(3 (weights @ x + velocity_weights @ dx/dt * 10 ms + bias)) / 3``
    per muscle, its drive; ``crosstalk[c, m]`` how strongly electrode ``c``
    sees muscle ``m`` (1 on the diagonal) with the electrodes where they
    were meant to be (a session moves them: :func:`session_mixing`).
    """

    weights: np.ndarray  #: (8, 12)
    velocity_weights: np.ndarray  #: (8, 12)
    bias: np.ndarray  #: (8,)
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
    crosstalk = np.abs(rng.normal(0.0, CROSSTALK, (CHANNELS, CHANNELS)))
    np.fill_diagonal(crosstalk, 1.0)
    return ElectrodeModel(weights, velocity, bias, crosstalk)


@dataclass(frozen=True)
class SessionRecording:
    """What changes between recording days: electrode placement, the speaker and the room.

    Gains and offsets per channel (raw units); the electrodes' displacement
    from their intended sites (``electrode_shift``, towards the next or the
    previous site, see :func:`session_mixing`) and a perturbation of how the
    muscles follow the articulators; the per-channel gains of silent
    (mouthed) speech relative to voiced; the motion artefact's size; mains
    hum amplitude and harmonic profile, drift size, the speaker's voice
    (espeak-ng rate, pitch, pitch range) and the microphone gain.
    """

    name: str
    gain: np.ndarray  #: (8,)
    offset: np.ndarray  #: (8,)
    electrode_shift: np.ndarray  #: (8,) in [-1, 1]: share of the way to the next (+) or previous (-) site
    mixing_shift: np.ndarray  #: (8, 12)
    silent_gain: np.ndarray  #: (8,) activity of mouthed speech relative to voiced, per channel
    artefact: float  #: raw-unit scale of the motion artefact
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
    voice = espeak.Voice(VOICE, int(rng.integers(*VOICE_RATES)), int(rng.integers(*VOICE_PITCHES)), int(rng.integers(*VOICE_RANGES)))
    return SessionRecording(
        name=base,
        gain=rng.lognormal(0.0, 0.15, CHANNELS),
        offset=rng.uniform(-300.0, 300.0, CHANNELS),
        electrode_shift=rng.uniform(-ELECTRODE_SHIFT, ELECTRODE_SHIFT, CHANNELS),
        mixing_shift=rng.normal(0.0, 0.15, (CHANNELS, len(ARTICULATORS))),
        silent_gain=rng.lognormal(np.log(SILENT_GAIN), 0.2, CHANNELS),
        artefact=float(ARTEFACT_SCALE * rng.lognormal(0.0, 0.2)),
        hum=rng.uniform(10.0, 60.0) * rng.uniform(0.5, 1.5, CHANNELS),
        hum_harmonics=harmonics,
        drift=float(rng.uniform(20.0, 80.0)),
        voice=voice,
        microphone=float(rng.uniform(0.3, 0.6)),
    )


def session_mixing(session: SessionRecording) -> np.ndarray:
    """How strongly each electrode of ``session`` sees each muscle, ``(channels, muscles)``.

    An electrode displaced by ``s`` towards the next site sees what an
    electrode there would see with weight ``s`` and what its own site sees
    with ``1 - s`` (the first and last sites have one neighbour): a real
    re-attachment moves electrodes by a fraction of their spacing, so the
    channel-to-muscle map differs a little between sessions.
    """
    base = electrode_model().crosstalk
    mixing = np.empty_like(base)
    for channel, shift in enumerate(session.electrode_shift):
        neighbour = int(np.clip(channel + np.sign(shift), 0, CHANNELS - 1))
        mixing[channel] = (1 - abs(shift)) * base[channel] + abs(shift) * base[neighbour]
    return mixing


#: Raw-unit scale of the muscle activity: voiced EMG as loud as generator 4's (whose motor-unit trains
#: had a narrower amplitude span, hence a smaller unit RMS).
MUSCLE_SCALE = 36.0
#: Raw-unit scale of the motion artefact (drawn per session around it). On silent utterances it puts
#: 1-4 % of the 2-300 Hz power after the preprocessing's 2 Hz high-pass into 2-20 Hz, about the 2.5 %
#: of the EMG-UKA silent sentences (``silentspeech inspect`` prints the share; generator 4's
#: deterministic slow view of the articulators put 24 % there and made the corpus far easier than
#: real EMG: docs/measurements.md, *Generator 5*).
ARTEFACT_SCALE = 3.0
#: Mean share of the jaw's speed in the artefact; the rest is movement unrelated to what is said.
ARTEFACT_JAW_SHARE = 0.5
#: How far an electrode sits from its intended site at most, as a share of the spacing to the next.
ELECTRODE_SHIFT = 0.2
#: Typical activity of mouthed speech relative to voiced, per channel (drawn per session around it).
SILENT_GAIN = 0.75
#: Standard deviation of the sensor (amplifier) noise, raw units.
SENSOR_NOISE = 1.5
#: Resting muscle tone: activation added everywhere.
BASELINE_TONE = 0.08
#: Typical strength with which an electrode sees a muscle other than its own (scale of a half-normal draw).
CROSSTALK = 0.10


def motion_artefact(trajectory: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Skin and cable movement below 20 Hz, ``(samples, 8)`` raw units at 1 kHz.

    Each channel sees the jaw's speed (``trajectory[:, 0]``, the articulator
    that pulls the skin most) with a gain drawn per utterance and channel,
    plus band-limited (1-15 Hz) noise of the same order: loosely tied to
    speaking, never a map of what is said.
    """
    samples = trajectory.shape[0]
    jaw_speed = np.abs(np.gradient(trajectory[:, 0])) * RAW_EMG_RATE / 10.0  # jaw range per 100 ms
    jaw = (jaw_speed - jaw_speed.mean())[:, None] * rng.normal(0.0, 1.0, CHANNELS) * 2 * ARTEFACT_JAW_SHARE
    noise = scipy.signal.sosfiltfilt(_artefact_band(), rng.normal(0.0, 1.0, (samples, CHANNELS)), axis=0)
    noise *= 2 * (1 - ARTEFACT_JAW_SHARE) / (noise.std() + 1e-12)
    # The skin follows the jaw sluggishly: its pull, too, stays below 15 Hz.
    return scale * (scipy.signal.sosfiltfilt(_artefact_band(), jaw, axis=0) + noise)


@functools.lru_cache(maxsize=1)
def _artefact_band() -> np.ndarray:
    return scipy.signal.butter(2, (1.0, 15.0), btype="bandpass", fs=RAW_EMG_RATE, output="sos")


def synthesize_emg(trajectory: np.ndarray, session: SessionRecording, silent: bool, rng: np.random.Generator) -> np.ndarray:
    """Raw EMG of an articulatory trajectory, float32 ``(samples, 8)`` at 1 kHz.

    ``trajectory`` is ``(samples, 12)`` at 1 kHz (for silent speech already
    mouthed: :func:`silentspeech.data.synthetic.articulation.mouthed`).
    Muscle activations drive motor-unit action potential trains
    (:func:`silentspeech.data.synthetic.emg.motor_unit_trains`), for silent
    speech scaled by the session's per-channel ``silent_gain``, seen by the
    session's displaced electrodes with cross-talk (:func:`session_mixing`),
    plus a motion artefact (:func:`motion_artefact`) and the nuisances of a
    real recording: mains hum with harmonics, drift, gain, offset and
    sensor noise.
    """
    samples = trajectory.shape[0]
    model = electrode_model()
    velocity = np.gradient(trajectory, axis=0) * 10.0  # per 10 ms
    drive = trajectory @ (model.weights + session.mixing_shift).T + velocity @ model.velocity_weights.T + model.bias
    activation = BASELINE_TONE + np.logaddexp(0.0, 3.0 * drive) / 3.0
    if silent:
        activation *= session.silent_gain
    muscles = motor_unit_trains(activation, RAW_EMG_RATE, rng)
    muscle = MUSCLE_SCALE * crosstalk(muscles, session_mixing(session), RAW_EMG_RATE)
    artefact = motion_artefact(trajectory, session.artefact, rng)
    t = np.arange(samples) / RAW_EMG_RATE
    hum = np.zeros((samples, 1))
    wobble = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi))
    for harmonic, amplitude in enumerate(session.hum_harmonics, start=1):
        hum[:, 0] += amplitude * np.sin(2 * np.pi * 60.0 * harmonic * t + rng.uniform(0, 2 * np.pi))
    hum = hum * wobble[:, None] * session.hum[None, :]
    drift = np.zeros((samples, CHANNELS))
    for freq in (0.05, 0.1, 0.2, 0.4):
        drift += rng.normal(0.0, session.drift / 2, CHANNELS) * np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 2 * np.pi, CHANNELS))
    emg = (muscle + artefact) * session.gain + hum + drift + session.offset
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
