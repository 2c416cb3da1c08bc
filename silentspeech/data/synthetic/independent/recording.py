"""One recorded utterance of the independent corpus: session conditions, speech, timing, EMG and audio.

A session (a recording day, e.g. ``7-2``) fixes the espeak-ng voice (rate,
pitch), the speaker's voiced and silent speaking styles
(:mod:`.articulation`), the electrode placement (:mod:`.electrodes`) and the
room's noise level; a voiced folder and its ``_silent`` twin folder share the
day. Every utterance draws from its own random stream, so its files do not
depend on which others are rendered or in which order.

Voiced: espeak-ng speaks the prompt (:mod:`silentspeech.data.synthetic.espeak`,
audio only: its phoneme events are not used), the audio is resampled to
16 kHz and padded with a pause at each end, the syllables are placed on it
from its envelope (:func:`.articulation.syllable_spans`) and articulated.
Silent: the same prompt's syllable spans as the day's voice would say it,
slowed by 0-30 % and smoothly warped (people mouth at their own pace), new
pauses, and a recording of room noise only.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.signal

from silentspeech.data.synthetic import espeak
import silentspeech.data.synthetic.independent.articulation as articulation
import silentspeech.data.synthetic.independent.electrodes as electrodes

#: Audio rate of the corpus files, Hz, and audio samples per EMG sample.
AUDIO_RATE = 16000
AUDIO_PER_EMG = AUDIO_RATE // articulation.RATE
#: RMS of the clean voiced speech.
SPEECH_RMS = 0.05
#: espeak-ng voice of the sessions and the ranges of words per minute and pitch drawn per session.
VOICE, VOICE_RATES, VOICE_PITCHES = "en-us", (135, 160), (32, 50)


def stable_number(text: str) -> int:
    """A number for ``text`` that is the same on every machine and Python run (CRC-32)."""
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class SessionConditions:
    """What one recording day fixes."""

    voice: espeak.Voice
    voiced: articulation.SpeakingStyle
    silent: articulation.SpeakingStyle
    electrodes: electrodes.Placement
    room_noise: float  #: RMS of the room noise in the audio


@functools.lru_cache(maxsize=32)
def session_conditions(seed: int, day: str) -> SessionConditions:
    """The conditions of recording day ``day`` of the corpus of ``seed``."""
    rng = np.random.default_rng([seed, stable_number(day), 0xDA7])
    voice = espeak.Voice(VOICE, int(rng.integers(*VOICE_RATES)), int(rng.integers(*VOICE_PITCHES)), int(rng.integers(40, 65)))
    voiced = articulation.voiced_style(rng)
    return SessionConditions(
        voice=voice, voiced=voiced, silent=articulation.silent_style(voiced, rng),
        electrodes=electrodes.placement(rng), room_noise=float(rng.uniform(0.001, 0.003)),
    )


@functools.lru_cache(maxsize=4)
def speaker(seed: int) -> electrodes.Body:
    """The speaker's motor units, the same on every day of a corpus."""
    return electrodes.body(seed)


def spoken_audio(text: str, voice: espeak.Voice) -> np.ndarray:
    """espeak-ng's rendition of ``text`` at 16 kHz, scaled to :data:`SPEECH_RMS`: ``(samples,)`` float64."""
    spoken = espeak.speak(text, voice)
    audio = scipy.signal.resample_poly(spoken.audio.astype(np.float64), 320, 441)  # 22050 -> 16000 Hz
    rms = float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
    return audio * (SPEECH_RMS / rms) if rms > 0 else audio


def room_noise(samples: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """Pinkish room noise (white noise through a gentle low-pass) of RMS ``level``: ``(samples,)``."""
    white = rng.normal(0.0, 1.0, samples + 2000)
    noise = scipy.signal.lfilter([1.0], [1.0, -0.9], white)[2000:]
    return noise * (level / max(float(noise.std()), 1e-12))


def _padded(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """``audio`` with 0.25-0.6 s of silence before and 0.3-0.6 s after, a whole number of EMG samples long; and the lead, s."""
    lead = int(rng.uniform(0.25, 0.6) * AUDIO_RATE)
    tail = int(rng.uniform(0.3, 0.6) * AUDIO_RATE)
    total = lead + len(audio) + tail
    tail += (-total) % AUDIO_PER_EMG
    return np.concatenate([np.zeros(lead), audio, np.zeros(tail)]), lead / AUDIO_RATE


def silent_spans(spans: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Another timing of the same syllables for a silent rendition: ``(spans starting after a new pause, duration s)``."""
    if len(spans) == 0:
        return spans, float(rng.uniform(1.5, 3.0))
    relative = spans - spans[0, 0]
    rate = rng.uniform(1.0, 1.3)
    period, amount, phase = rng.uniform(1.5, 3.0), rng.uniform(0.03, 0.08), rng.uniform(0, 2 * np.pi)
    warped = rate * relative + amount * (np.sin(2 * np.pi * relative / period + phase) - np.sin(phase))  # monotonic: slope > 0.6
    lead = rng.uniform(0.3, 0.7)
    return warped + lead, float(lead + warped[-1, 1] + rng.uniform(0.3, 0.6))


@dataclass
class Rendered:
    """The arrays of one utterance."""

    emg: np.ndarray  #: ``(samples, 8)`` float32 at 1 kHz
    audio: np.ndarray  #: ``(samples * 16,)`` float32 microphone audio at 16 kHz
    audio_clean: np.ndarray  #: ``(samples * 16,)`` float32 clean audio at 16 kHz


def render(seed: int, day: str, text: str, silent: bool, rng: np.random.Generator) -> Rendered:
    """EMG and audio of ``text`` said on ``day`` (voiced, or mouthed when ``silent``); an empty text is a silence clip."""
    session = session_conditions(seed, day)
    if text and not silent:
        speech, _ = _padded(spoken_audio(text, session.voice), rng)
        samples = len(speech) // AUDIO_PER_EMG
        spans = articulation.syllable_spans(speech, AUDIO_RATE, len(articulation.prompt_syllables(text)))
        style = session.voiced
    else:
        if text:
            voiced = spoken_audio(text, session.voice)
            spans = articulation.syllable_spans(voiced, AUDIO_RATE, len(articulation.prompt_syllables(text)))
        else:
            spans = np.zeros((0, 2))
        spans, seconds = silent_spans(spans, rng)
        samples = int(seconds * articulation.RATE)
        speech = np.zeros(samples * AUDIO_PER_EMG)
        style = session.silent if text else session.voiced
    moving = articulation.articulate(text, spans, samples, style, rng)
    emg = electrodes.record(moving, speaker(seed), session.electrodes, rng)
    clean = speech + room_noise(len(speech), session.room_noise * 0.1, rng)
    noisy = clean + room_noise(len(speech), session.room_noise, rng)
    return Rendered(emg=emg, audio=np.clip(noisy, -1, 1).astype(np.float32), audio_clean=np.clip(clean, -1, 1).astype(np.float32))
