"""Spelling-driven articulation: letters -> syllables -> timed gestures -> muscle activation.

The independent generator does not know phonemes. A prompt is cut into
graphemes (single letters and common digraphs such as ``th``, ``sh``,
``ee``), words into syllables around their vowel graphemes, and every
grapheme has a gesture: a target activation of ten muscles of the face,
jaw, tongue and larynx (:data:`MUSCLES`, :data:`GESTURES`; a table designed
by hand from how the letters are usually said, not from any phoneme set).

Timing comes from the voiced recording itself: :func:`syllable_spans`
measures the speech envelope (300-3000 Hz band, 10 ms frames) and spreads
the prompt's syllables over the loudness mass of the speech, each centre
snapped to the nearest envelope peak, with pauses where the envelope is
quiet. So the EMG's gestures follow the audio's syllables without using the
synthesiser's phoneme events. Inside a syllable the onset, nucleus and coda
graphemes share its span by fixed weights.

:func:`articulate` turns the timed gestures into activation ``(samples, 10)``
at 1 kHz: gestures start ahead of the sound (the EMG of a movement precedes
its acoustic result; docs/design.md, *The independent evaluation
corpus*), vary from token to token, and pass through activation dynamics (two
first-order lags). A :class:`SpeakingStyle` sets how: voiced speech drives
the larynx during voiced letters; silent speech has no laryngeal drive,
reduced and flattened (hypo-articulated) gestures with per-session gains
of its own, slower transitions, and lips that some speakers exaggerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from silentspeech.text import normalize_text

#: Muscles of the model, in activation column order.
MUSCLES = (
    "orbicularis_oris_upper", "orbicularis_oris_lower", "zygomaticus", "depressor_anguli", "mentalis",
    "masseter", "digastric", "genioglossus", "styloglossus", "laryngeal_strap",
)
OOS, OOI, ZYG, DAO, MEN, MAS, DIG, GGA, SGL, LAR = range(len(MUSCLES))
#: Rate of the activation and the EMG, Hz.
RATE = 1000
#: Activation of every muscle at rest (tonic tone).
REST_TONE = 0.03

_G = {
    "a": {DIG: 0.8, DAO: 0.3}, "e": {ZYG: 0.5, GGA: 0.4, DIG: 0.35}, "i": {ZYG: 0.6, GGA: 0.6, MAS: 0.2},
    "o": {OOS: 0.5, OOI: 0.5, DIG: 0.5, SGL: 0.3}, "u": {OOS: 0.7, OOI: 0.6, MEN: 0.3, SGL: 0.5}, "y": {ZYG: 0.5, GGA: 0.6},
    "ee": {ZYG: 0.75, GGA: 0.7}, "oo": {OOS: 0.85, OOI: 0.7, SGL: 0.45}, "ou": {DIG: 0.6, OOS: 0.55, OOI: 0.4},
    "ea": {ZYG: 0.6, GGA: 0.55, DIG: 0.2}, "ai": {DIG: 0.5, ZYG: 0.5, GGA: 0.4}, "oa": {OOS: 0.6, OOI: 0.5, DIG: 0.4},
    "oi": {OOS: 0.5, DIG: 0.4, GGA: 0.4}, "au": {DIG: 0.7, OOS: 0.4, SGL: 0.3},
    "b": {OOS: 0.8, OOI: 0.8, MAS: 0.4, MEN: 0.3}, "p": {OOS: 1.0, OOI: 0.9, MAS: 0.5, MEN: 0.4},
    "m": {OOS: 0.6, OOI: 0.6, MAS: 0.3}, "f": {OOI: 0.8, DAO: 0.2, MEN: 0.4, MAS: 0.3}, "v": {OOI: 0.7, MEN: 0.3, MAS: 0.3},
    "w": {OOS: 0.8, OOI: 0.7, SGL: 0.3}, "t": {GGA: 0.8, MAS: 0.4}, "d": {GGA: 0.7, MAS: 0.3}, "n": {GGA: 0.6, MAS: 0.3},
    "l": {GGA: 0.7, DIG: 0.2}, "s": {GGA: 0.6, MAS: 0.6, ZYG: 0.2}, "z": {GGA: 0.5, MAS: 0.5, ZYG: 0.2},
    "c": {SGL: 0.6, MAS: 0.3}, "k": {SGL: 0.8, MAS: 0.3}, "q": {SGL: 0.7, OOS: 0.4}, "g": {SGL: 0.7, MAS: 0.2},
    "x": {SGL: 0.6, GGA: 0.5, MAS: 0.5}, "j": {GGA: 0.6, OOS: 0.4, MEN: 0.3}, "r": {OOS: 0.4, GGA: 0.5, SGL: 0.3},
    "h": {DIG: 0.3}, "th": {GGA: 0.6, DIG: 0.2}, "sh": {OOS: 0.6, OOI: 0.4, GGA: 0.6}, "ch": {OOS: 0.5, GGA: 0.7, MAS: 0.4},
    "ng": {SGL: 0.7}, "ph": {OOI: 0.8, MEN: 0.4, MAS: 0.3}, "wh": {OOS: 0.8, OOI: 0.6}, "ck": {SGL: 0.85, MAS: 0.35},
    "qu": {SGL: 0.6, OOS: 0.6, OOI: 0.4},
}
#: Grapheme -> target activation of each muscle, ``(len(MUSCLES),)``; the laryngeal column is set by voicing.
GESTURES: dict[str, np.ndarray] = {
    g: np.array([levels.get(m, 0.0) for m in range(len(MUSCLES))]) for g, levels in _G.items()
}
_VOWELS = {"a", "e", "i", "o", "u", "y", "ee", "oo", "ou", "ea", "ai", "oa", "oi", "au"}
_VOICED = _VOWELS | {"b", "m", "v", "w", "d", "n", "l", "z", "g", "j", "r", "th", "ng"}
_DIGRAPHS = sorted((g for g in GESTURES if len(g) == 2), key=lambda g: g)
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Share of a syllable's span taken by each onset, nucleus and coda grapheme (relative weights).
_ONSET, _NUCLEUS, _CODA, _SILENT_E = 1.0, 2.2, 1.2, 0.3


def spoken_words(text: str) -> list[str]:
    """The prompt's words as letters only: normalised, each digit spelt as its name."""
    words = []
    for word in normalize_text(text).split():
        letters = "".join(c if c.isalpha() else f" {_DIGIT_NAMES[int(c)]} " for c in word)
        words += letters.split()
    return words


def graphemes(word: str) -> list[str]:
    """A lower-case word cut into graphemes, digraphs first; a silent final ``e`` becomes ``"e_"``."""
    out, k = [], 0
    while k < len(word):
        pair = word[k : k + 2]
        if pair in GESTURES and len(pair) == 2:
            out.append(pair)
            k += 2
        else:
            out.append(word[k])
            k += 1
    vowels_before = sum(_is_vowel(out, j) for j in range(len(out) - 1))
    if len(out) > 2 and out[-1] == "e" and not _is_vowel(out, len(out) - 2) and vowels_before:
        out[-1] = "e_"
    return out


def _is_vowel(tokens: list[str], k: int) -> bool:
    token = tokens[k]
    if token == "y":  # a consonant at the start of a word or before a vowel
        return k > 0 and not (k + 1 < len(tokens) and tokens[k + 1] in _VOWELS)
    return token in _VOWELS


def syllables(word: str) -> list[list[tuple[str, str]]]:
    """A word's syllables, each a list of ``(grapheme, role)`` with role "onset", "nucleus", "coda" or "silent".

    Consonants between two nuclei: one goes to the next syllable, of several
    the first stays with the previous one. A word without a vowel is one syllable.
    """
    tokens = graphemes(word)
    nuclei = [k for k in range(len(tokens)) if tokens[k] != "e_" and _is_vowel(tokens, k)]
    if not nuclei:
        return [[(t, "nucleus") for t in tokens]]
    cuts = [0]
    for left, right in zip(nuclei, nuclei[1:]):
        cuts.append(left + 1 + int(right - left - 1 >= 2))
    cuts.append(len(tokens))
    result = []
    for start, end in zip(cuts, cuts[1:]):
        nucleus = next(k for k in nuclei if start <= k < end)
        result.append([(tokens[k], "silent" if tokens[k] == "e_" else "onset" if k < nucleus else "nucleus" if k == nucleus else "coda")
                       for k in range(start, end)])
    return result


def prompt_syllables(text: str) -> list[tuple[int, list[tuple[str, str]]]]:
    """Every syllable of a prompt as ``(word number, graphemes with roles)``, in order."""
    return [(w, syllable) for w, word in enumerate(spoken_words(text)) for syllable in syllables(word)]


def speech_envelope(audio: np.ndarray, rate: int) -> np.ndarray:
    """Loudness of the 300-3000 Hz band in 10 ms frames, smoothed over ~50 ms: ``(frames,)``."""
    sos = scipy.signal.butter(4, (300.0, 3000.0), btype="bandpass", fs=rate, output="sos")
    band = scipy.signal.sosfilt(sos, audio.astype(np.float64))
    hop = rate // 100
    frames = len(band) // hop
    rms = np.sqrt(np.mean(band[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    return scipy.ndimage.gaussian_filter1d(rms, 2.0) if frames else rms


def syllable_spans(audio: np.ndarray, rate: int, count: int) -> np.ndarray:
    """Where ``count`` syllables lie in a speech recording: ``(count, 2)`` start and end, s.

    Syllable centres split the loudness mass of the speech frames (above 8 %
    of the loud level) into equal parts and move to the nearest envelope
    peak within 60 ms when that keeps them in order; spans meet halfway
    between centres, or end 150 ms from the centre where a pause lies between.
    """
    envelope = speech_envelope(audio, rate)
    times = (np.arange(len(envelope)) + 0.5) / 100.0
    speech = envelope > 0.08 * np.percentile(envelope, 95)
    if not speech.any():
        speech[:] = True
    mass = np.cumsum(np.where(speech, envelope, 0.0) ** 0.7)
    mass /= mass[-1] if mass[-1] > 0 else 1.0
    centres = np.interp((np.arange(count) + 0.5) / count, mass, times)
    peaks = times[scipy.signal.find_peaks(envelope, distance=8)[0]]
    for k in range(count):
        if len(peaks):
            near = peaks[np.argmin(np.abs(peaks - centres[k]))]
            low = centres[k - 1] + 0.06 if k else 0.0
            high = centres[k + 1] - 0.06 if k + 1 < count else times[-1]
            if abs(near - centres[k]) < 0.06 and low <= near <= high:
                centres[k] = near
    first, last = times[speech][0] - 0.03, times[speech][-1] + 0.03
    spans = np.empty((count, 2))
    for k in range(count):
        before = (centres[k - 1] + centres[k]) / 2 if k else first
        after = (centres[k] + centres[k + 1]) / 2 if k + 1 < count else last
        spans[k] = (max(before, centres[k] - 0.15, 0.0), min(after, centres[k] + 0.15))
    return spans


@dataclass(frozen=True)
class SpeakingStyle:
    """How one speaker articulates in one mode (voiced or silent) in one session."""

    gains: np.ndarray  #: ``(muscles,)`` scale of each muscle's gestures
    laryngeal: float  #: activation of the larynx during voiced graphemes (0: silent speech)
    exponent: float  #: gesture levels are raised to this power (> 1 flattens small gestures)
    tau_s: float  #: time constant of each of the two activation lags, s
    lead_s: float  #: how far gestures start ahead of the sound, s
    variability: float  #: log-normal spread of each token's gesture size


def voiced_style(rng: np.random.Generator) -> SpeakingStyle:
    """A speaker's voiced articulation in one session."""
    return SpeakingStyle(
        gains=np.exp(rng.normal(0.0, 0.12, len(MUSCLES))), laryngeal=float(rng.uniform(0.45, 0.65)), exponent=1.0,
        tau_s=float(rng.uniform(0.016, 0.024)), lead_s=float(rng.uniform(0.04, 0.08)), variability=0.2,
    )


def silent_style(voiced: SpeakingStyle, rng: np.random.Generator) -> SpeakingStyle:
    """The same speaker mouthing silently: no laryngeal drive, reduced and flatter gestures, slower, lips often stronger."""
    reduction = rng.uniform(0.45, 0.8, len(MUSCLES))
    reduction[[OOS, OOI]] = rng.uniform(0.85, 1.25, 2)
    return SpeakingStyle(
        gains=voiced.gains * reduction, laryngeal=0.0, exponent=float(rng.uniform(1.2, 1.5)),
        tau_s=voiced.tau_s * float(rng.uniform(1.3, 1.7)), lead_s=voiced.lead_s + float(rng.uniform(0.0, 0.03)), variability=0.3,
    )


def _lag(signal: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order low-pass along axis 0 (activation dynamics), starting at rest."""
    a = np.exp(-1.0 / (tau_s * RATE))
    rest = signal[:1] * a
    out, _ = scipy.signal.lfilter([1.0 - a], [1.0, -a], signal, axis=0, zi=rest)
    return out


def gesture_targets(
    spoken: list[tuple[int, list[tuple[str, str]]]], spans: np.ndarray, samples: int, style: SpeakingStyle, rng: np.random.Generator
) -> np.ndarray:
    """Step targets ``(samples, muscles)`` at 1 kHz: each grapheme's gesture over its share of its syllable's span."""
    targets = np.full((samples, len(MUSCLES)), REST_TONE)
    previous_word = -1
    for (word, graphs), (start, end) in zip(spoken, spans):
        weights = np.array([{"onset": _ONSET, "nucleus": _NUCLEUS, "coda": _CODA, "silent": _SILENT_E}[r] for _, r in graphs])
        edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        stress = 1.2 if word != previous_word else 1.0  # the first syllable of each word carries its accent
        previous_word = word
        for (grapheme, role), a, b in zip(graphs, edges, edges[1:]):
            if role == "silent":
                continue
            lo = int(np.clip(round((a - style.lead_s) * RATE), 0, samples))
            hi = int(np.clip(round((b - style.lead_s) * RATE), lo, samples))
            level = GESTURES.get(grapheme, np.zeros(len(MUSCLES))) * stress * np.exp(rng.normal(0.0, style.variability))
            level = np.clip(level, 0.0, 1.0) ** style.exponent * style.gains
            if grapheme in _VOICED:
                level[LAR] = style.laryngeal * (1.25 if role == "nucleus" and stress > 1 else 1.0)
            targets[lo:hi] = np.maximum(level, REST_TONE)
    return targets


@dataclass
class Articulation:
    """Muscle activation and jaw opening of one utterance at 1 kHz."""

    activation: np.ndarray  #: ``(samples, muscles)`` in [0, 1]
    jaw: np.ndarray  #: ``(samples,)`` jaw opening, arbitrary units (about 0-1)


def articulate(text: str, spans: np.ndarray, samples: int, style: SpeakingStyle, rng: np.random.Generator) -> Articulation:
    """Activation of :data:`MUSCLES` for ``text`` whose syllables lie at ``spans`` (s; from :func:`syllable_spans`).

    ``spans`` must have one row per syllable of :func:`prompt_syllables`.
    Besides the gestures, every muscle's activation wavers slowly by a few
    per cent (physiological tremor and effort).
    """
    spoken = prompt_syllables(text)
    if len(spoken) != len(spans):
        raise ValueError(f"articulate: {len(spans)} spans for {len(spoken)} syllables of {text!r}")
    targets = gesture_targets(spoken, spans, samples, style, rng)
    activation = _lag(_lag(targets, style.tau_s), style.tau_s)
    waver = scipy.ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, activation.shape), 40.0, axis=0)
    activation = np.clip(activation * (1.0 + 0.6 * waver), 0.0, 1.0)
    jaw = _lag(activation[:, DIG] * 0.8 + activation[:, DAO] * 0.2 - activation[:, MAS] * 0.5, 0.06)
    return Articulation(activation=activation, jaw=jaw)
