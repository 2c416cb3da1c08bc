"""EMG preprocessing of the Gaddy recipe, every constant a parameter, and the project's one home of EMG filters.

Steps (Gaddy reference code, github.com/dgaddy/silent_speech; docs/design.md,
*EMG preprocessing*): concatenate the neighbouring utterances so the
zero-phase filters have no edge transients, notch the mains frequency and its
harmonics, high-pass at 2 Hz, cut the utterance back out, resample to
689.0625 Hz (8 samples per 86.13 Hz acoustic frame), divide by 20 and soft
clip with ``50 * tanh(x / 50)``.

The gesture readers and the pretraining windows condition their EMG with
the same filter helpers but TinyMyo's settings (:class:`GestureFiltering`,
:func:`condition_emg`): a zero-phase Butterworth band-pass (20-90 Hz
downstream, 20-450 Hz for pretraining), the mains notch and its harmonics,
then resampling, each recording at its own rate.

Arrays are ``(samples, channels)`` here, as stored on disk; models take
``(batch, channels, samples)``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Mapping

import librosa
import numpy as np
import scipy.signal

from silentspeech.features import FRAME_RATE

log = logging.getLogger(__name__)

#: Raw EMG rate of the Gaddy corpus (OpenBCI Cyton), Hz.
RAW_EMG_RATE = 1000.0
#: EMG samples per acoustic frame after resampling.
EMG_PER_FRAME = 8
#: Model EMG rate, Hz: 8 x 86.1328125 = 689.0625.
EMG_RATE = EMG_PER_FRAME * FRAME_RATE
#: Fewest raw samples the zero-phase filters accept (their padding needs this many).
MIN_FILTER_SAMPLES = 64


#: Raw EMG rates the speech models accept, Hz: :data:`MIN_EMG_RATE` to :data:`MAX_EMG_RATE`, checked by
#: :func:`check_emg_rate` wherever a rate enters (the pipeline, streaming, cache preparation). Every rate is
#: resampled to the models' 689.06 Hz, so any rate works mechanically; the bounds keep out what is not a
#: surface EMG recording. The lowest common sEMG board rate is 250 Hz (OpenBCI Cyton over its serial dongle):
#: such a recording holds only the band below 125 Hz, most of facial EMG's power but not all (surface EMG
#: reaches about 450 Hz), so a recording below the rate the models were trained on is accepted with a warning.
#: Below 250 Hz too little of the signal is left. Above 20 kHz, far beyond the few kHz sEMG amplifiers
#: usually run at, the number is more likely a unit mistake than a recording (docs/design.md, *EMG preprocessing*).
MIN_EMG_RATE = 250.0
MAX_EMG_RATE = 20_000.0


class EMGError(ValueError):
    """EMG that cannot be used: wrong shape, non-finite values, too short."""


#: ``(source, rate, trained rate)`` already warned about by :func:`check_emg_rate`: one warning per source.
_WARNED_RATES: set[tuple[str, float, float]] = set()


def check_emg_rate(rate: float, source: str = "EMG", trained_rate: float | None = None) -> float:
    """Check a raw EMG sampling rate ``rate`` (Hz) against :data:`MIN_EMG_RATE` to :data:`MAX_EMG_RATE`; returns it as float.

    Raises :class:`EMGError` naming ``source`` and the bounds for a rate outside
    them (or not a number). When ``trained_rate`` (Hz, the raw rate of the corpus
    the models were trained on) is given and ``rate`` is below it, logs a
    one-line warning, once per ``source``: the band between ``rate / 2`` and
    ``trained_rate / 2`` that the models learnt from is missing.
    """
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise EMGError(f"{source}: sampling rate {rate!r} is not a number") from None
    if not MIN_EMG_RATE <= rate <= MAX_EMG_RATE:
        raise EMGError(
            f"{source}: sampling rate {rate:g} Hz is implausible for surface EMG; it must be {MIN_EMG_RATE:g} to "
            f"{MAX_EMG_RATE:g} Hz. Check --rate"
        )
    if trained_rate is not None and rate < trained_rate and (source, rate, trained_rate) not in _WARNED_RATES:
        _WARNED_RATES.add((source, rate, trained_rate))
        log.warning(
            "%s: EMG at %g Hz is below the %g Hz the models were trained on: its band above %g Hz is missing, "
            "so the results may be worse", source, rate, trained_rate, rate / 2,
        )
    return rate


@dataclass(frozen=True)
class EMGPreprocessing:
    """Constants of :func:`preprocess_emg`; defaults are the Gaddy recipe."""

    rate: float = RAW_EMG_RATE  #: input rate, Hz
    channels: int = 8  #: expected channel count
    mains: float = 60.0  #: mains frequency, Hz (50 for European recordings)
    notch_q: float = 30.0  #: quality factor of each notch
    #: Notches at mains x 1..notch_harmonics (7: 60..420 Hz, as the Gaddy reference), all below Nyquist.
    notch_harmonics: int = 7
    highpass_hz: float = 2.0
    highpass_order: int = 3
    target_rate: float = EMG_RATE  #: output rate, Hz
    scale: float = 20.0  #: divide by this ...
    clip: float = 50.0  #: ... then soft clip to +-clip


def differing_constants(recorded: Mapping[str, object], wanted: EMGPreprocessing, wanted_name: str) -> list[str]:
    """``"<constant> <recorded value> (<wanted_name>: <wanted value>)"`` for each constant of ``wanted`` that ``recorded`` (an ``asdict`` of another) does not match."""
    return [
        f"{key} {recorded.get(key, 'not recorded')} ({wanted_name}: {value})"
        for key, value in asdict(wanted).items()
        if recorded.get(key) != value
    ]


def check_emg(emg: np.ndarray, channels: int | None = None, source: str = "EMG") -> np.ndarray:
    """Validate an EMG array ``(samples, channels)`` and return it as float64.

    Raises :class:`EMGError` naming ``source`` for a wrong dimensionality or
    channel count, an empty array or non-finite values.
    """
    arr = np.asarray(emg)
    if arr.ndim != 2:
        raise EMGError(f"{source}: expected a (samples, channels) array, got shape {arr.shape}")
    if channels is not None and arr.shape[1] != channels:
        raise EMGError(f"{source}: expected {channels} channels, got {arr.shape[1]} (shape {arr.shape})")
    if arr.shape[0] == 0:
        raise EMGError(f"{source}: EMG holds no samples")
    if not np.issubdtype(arr.dtype, np.number):
        raise EMGError(f"{source}: EMG is not numeric (dtype {arr.dtype})")
    if np.iscomplexobj(arr):  # casting would silently drop the imaginary part
        raise EMGError(f"{source}: EMG is complex (dtype {arr.dtype}); expected real samples")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise EMGError(f"{source}: EMG holds {bad} NaN or infinite values")
    return arr


def notch_harmonics(emg: np.ndarray, rate: float, mains: float = 60.0, q: float = 30.0, harmonics: int | None = None) -> np.ndarray:
    """Zero-phase notches at ``mains`` x 1, 2, ... ``harmonics`` (None: every harmonic below Nyquist).

    ``emg``: ``(samples, channels)`` at ``rate`` Hz; returns the same shape.
    Harmonics at or above Nyquist are left out whatever ``harmonics`` says.
    """
    if harmonics is not None and harmonics < 0:
        raise ValueError(f"harmonics must be >= 0, got {harmonics}")
    out = np.asarray(emg, dtype=np.float64)
    k = 1
    while k * mains < rate / 2 and (harmonics is None or k <= harmonics):
        b, a = scipy.signal.iirnotch(k * mains, q, fs=rate)
        out = scipy.signal.filtfilt(b, a, out, axis=0)
        k += 1
    return out


def highpass(emg: np.ndarray, rate: float, cutoff: float = 2.0, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth high-pass (removes baseline drift), ``(samples, channels)``."""
    sos = scipy.signal.butter(order, cutoff, btype="highpass", fs=rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, emg, axis=0)


def bandpass(emg: np.ndarray, rate: float, low: float, high: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass from ``low`` to ``high`` Hz of ``(samples, channels)`` at ``rate`` Hz.

    An edge out of reach is dropped: ``low`` when it is 0 or at or above
    Nyquist, ``high`` when it is 0 or at or above 95 % of Nyquist (or not
    above ``low``); the filter then becomes a high-pass or a low-pass, or
    none (the input comes back as float64). The edge padding is shortened
    to ``samples - 1`` for short recordings (EPN-612 samples, UCI runs),
    which scipy's default padding would refuse.
    """
    nyquist = rate / 2
    low = low if 0 < low < nyquist else 0.0
    high = high if 0 < high < 0.95 * nyquist else 0.0
    if low and high and low < high:
        sos = scipy.signal.butter(order, [low, high], btype="bandpass", fs=rate, output="sos")
    elif low:
        sos = scipy.signal.butter(order, low, btype="highpass", fs=rate, output="sos")
    elif high:
        sos = scipy.signal.butter(order, high, btype="lowpass", fs=rate, output="sos")
    else:
        return np.asarray(emg, dtype=np.float64)
    padlen = min(3 * (2 * len(sos) + 1), emg.shape[0] - 1)
    return scipy.signal.sosfiltfilt(sos, emg, axis=0, padlen=padlen)


def resample(emg: np.ndarray, rate: float, target_rate: float) -> np.ndarray:
    """Resample ``(samples, channels)`` from ``rate`` to ``target_rate`` Hz (soxr, any ratio)."""
    if rate == target_rate:
        return np.asarray(emg, dtype=np.float64)
    # fix=False: librosa would otherwise pad soxr's round(samples * ratio) output to the ceiling with a zero sample.
    resampled = librosa.resample(np.ascontiguousarray(emg.T), orig_sr=rate, target_sr=target_rate, res_type="soxr_hq", fix=False)
    return resampled.T


#: Plausible range of the median absolute value of preprocessed EMG (model units, after the division by
#: 20): the synthetic corpus measures 0.2 to 0.4 per utterance, zero-mean noise of 20 raw units 0.67.
#: Outside this range by more than an order of magnitude the recording is almost surely in other
#: units (volts, or millivolts x 1000) or flat: the models then decode confident gibberish.
MODEL_AMPLITUDE_RANGE = (0.01, 5.0)


def amplitude_warning(model_emg: np.ndarray, source: str = "EMG") -> str | None:
    """A warning when preprocessed EMG ``(samples, channels)`` is far outside the trained amplitude, else None.

    The statistic is the median absolute value over all samples and
    channels (robust to a few artefact spikes), compared with
    :data:`MODEL_AMPLITUDE_RANGE`. Far above it the soft clip saturates and
    the signal's shape is lost; far below it the input is nearly flat.
    """
    median = float(np.median(np.abs(model_emg))) if np.size(model_emg) else 0.0
    low, high = MODEL_AMPLITUDE_RANGE
    if low <= median <= high:
        return None
    side = "larger" if median > high else "smaller"
    return (
        f"{source}: EMG amplitude is far {side} than the models were trained on (median |x| {median:.3g} after "
        f"scaling, expected {low:g} to {high:g}); check the recording's units: the results are likely meaningless"
    )


def scale_and_clip(emg: np.ndarray, scale: float = 20.0, clip: float = 50.0) -> np.ndarray:
    """``clip * tanh(emg / scale / clip)``: unit scaling with a soft limit."""
    return clip * np.tanh(np.asarray(emg) / scale / clip)


@dataclass(frozen=True)
class GestureFiltering:
    """Constants of :func:`condition_emg`, applied at each recording's own rate.

    The defaults are TinyMyo's downstream filters: 4th-order 20-90 Hz
    band-pass and a 50 Hz notch. A band edge at or above 95 % of Nyquist is
    dropped (the band-pass becomes a high-pass); 0 disables a filter.
    """

    bandpass_low: float = 20.0  #: Hz
    bandpass_high: float = 90.0  #: Hz
    order: int = 4
    notch: float = 50.0  #: mains frequency, Hz; its harmonics below Nyquist are notched too
    notch_q: float = 30.0


#: Fewest raw samples :func:`condition_emg` filters (its band-pass pads by at most samples - 1).
MIN_CONDITION_SAMPLES = 32


def condition_emg(
    emg: np.ndarray,
    rate: float,
    filtering: GestureFiltering = GestureFiltering(),
    target_rate: float | None = None,
    source: str = "EMG",
) -> np.ndarray:
    """Band-pass and notch raw EMG ``(samples, channels)`` at ``rate`` Hz, then resample it.

    Returns float32 ``(samples', channels)`` at ``target_rate`` Hz (``rate``
    when None). Raises :class:`EMGError` naming ``source`` for NaN, empty,
    wrongly shaped or too short input.
    """
    x = check_emg(emg, None, source)
    if x.shape[0] < MIN_CONDITION_SAMPLES:
        raise EMGError(f"{source}: {x.shape[0]} samples is too short to filter (need at least {MIN_CONDITION_SAMPLES})")
    x = bandpass(x, rate, filtering.bandpass_low, filtering.bandpass_high, filtering.order)
    if 0 < filtering.notch < rate / 2:
        x = notch_harmonics(x, rate, filtering.notch, filtering.notch_q)
    if target_rate is not None and target_rate != rate:
        x = resample(x, rate, target_rate)
    return x.astype(np.float32)


def filter_emg(
    emg: np.ndarray,
    config: EMGPreprocessing = EMGPreprocessing(),
    before: np.ndarray | None = None,
    after: np.ndarray | None = None,
) -> np.ndarray:
    """Notch and high-pass ``emg`` at its own rate, padded by its neighbours.

    ``before``/``after`` are the previous and next utterances of the same
    session (``(samples, channels)``, or None); they are filtered along and cut
    away again. Returns ``(samples, channels)`` float64.
    """
    parts = [p for p in (before, emg, after) if p is not None]
    joined = np.concatenate(parts, axis=0) if len(parts) > 1 else emg
    start = 0 if before is None else before.shape[0]
    filtered = notch_harmonics(joined, config.rate, config.mains, config.notch_q, config.notch_harmonics)
    filtered = highpass(filtered, config.rate, config.highpass_hz, config.highpass_order)
    return filtered[start : start + emg.shape[0]]


def preprocess_emg(
    emg: np.ndarray,
    config: EMGPreprocessing = EMGPreprocessing(),
    before: np.ndarray | None = None,
    after: np.ndarray | None = None,
    source: str = "EMG",
) -> np.ndarray:
    """Raw EMG ``(samples, channels)`` at ``config.rate`` -> model input.

    Returns float32 ``(round(samples * target_rate / rate), channels)`` at
    ``config.target_rate`` (689.0625 Hz by default), filtered, scaled and soft
    clipped. Raises :class:`EMGError` naming ``source`` for bad input.
    """
    emg = check_emg(emg, config.channels, source)
    if emg.shape[0] < MIN_FILTER_SAMPLES:
        raise EMGError(f"{source}: {emg.shape[0]} samples is too short to filter (need at least {MIN_FILTER_SAMPLES})")
    before = None if before is None else check_emg(before, config.channels, f"{source} (previous utterance)")
    after = None if after is None else check_emg(after, config.channels, f"{source} (next utterance)")
    filtered = filter_emg(emg, config, before, after)
    resampled = resample(filtered, config.rate, config.target_rate)
    return scale_and_clip(resampled, config.scale, config.clip).astype(np.float32)


def align_to_frames(emg: np.ndarray, n_frames: int) -> tuple[np.ndarray, int]:
    """Trim EMG ``(samples, channels)`` at 689.06 Hz and a frame count to agree.

    Returns ``(emg[: 8 * n], n)`` with ``n = min(samples // 8, n_frames)`` so
    that 8 EMG samples map to each acoustic frame exactly.
    """
    n = min(emg.shape[0] // EMG_PER_FRAME, n_frames)
    return emg[: n * EMG_PER_FRAME], n
