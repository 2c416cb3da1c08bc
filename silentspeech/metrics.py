"""Evaluation metrics.

Word and character error rates follow the Gaddy reference code's scoring
(github.com/dgaddy/silent_speech; docs/design.md, *Text, decoding and scoring*): both sides go through
:func:`silentspeech.text.normalize_text` (unidecode, lower case, punctuation
removed, digits kept as digits), and rates are corpus-level: all edits over
all reference words (or characters), not a mean of per-utterance rates.
The edit-distance alignment is jiwer's.

Audio quality: :func:`log_spectral_distance` (dB, on magnitude STFTs of
equal-length signals) and :func:`mel_cepstral_distortion` (dB, on cepstra
such as :func:`silentspeech.features.acoustic_features`, DTW-aligned by
librosa when the lengths differ).

How sure a rate is: :func:`bootstrap_error_rate` (a corpus-level error rate
with a percentile interval from resampling utterances, Efron & Tibshirani
1993) and, comparing two systems on the same utterances,
:func:`paired_bootstrap_difference` (the difference of their corpus-level
rates, both systems resampled on the same utterances: Bisani & Ney 2004 for
ASR, Koehn 2004 for machine translation); a few lines of numpy, which no
installed library offers for corpus-level rates (docs/design.md, *Text,
decoding and scoring*).

Gestures and kinematics: :func:`classification_scores` (accuracy, macro-F1,
confusion matrix; :func:`silentspeech.figures.confusion_figure` draws it) and
:func:`regression_scores` (MAE, RMSE, R2 averaged over outputs), computed by
``sklearn.metrics``; what stays here is input checking and our convention for
R2 of a constant target.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import jiwer
import librosa
import numpy as np
from sklearn import metrics as sk_metrics

from silentspeech.features import HOP_LENGTH, N_FFT
from silentspeech.text import normalize_text


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level word and character error counts over a set of utterances.

    ``wer = (substitutions + deletions + insertions) / reference_words``; the
    ``char_*`` fields are the same counts over characters (spaces included).
    """

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int
    char_substitutions: int
    char_deletions: int
    char_insertions: int
    reference_characters: int
    utterances: int


@dataclass(frozen=True)
class UtteranceErrors:
    """Errors of one utterance, one row of a results table.

    ``reference``/``hypothesis`` are the normalised strings that were scored.
    ``wer``/``cer`` are ``inf`` for an empty reference with a non-empty
    hypothesis, and 0 when both are empty.
    """

    reference: str
    hypothesis: str
    word_errors: int
    reference_words: int
    char_errors: int
    reference_characters: int
    wer: float
    cer: float


def _ratio(errors: int, total: int) -> float:
    if total == 0:
        return 0.0 if errors == 0 else math.inf
    return errors / total


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRates:
    """Corpus-level WER and CER of ``hypotheses`` against ``references``.

    Both lists hold raw text, one string per utterance, in the same order;
    each is normalised before scoring. Individual empty references or
    hypotheses are allowed (their words count as insertions or deletions).
    Raises ``ValueError`` when the lists differ in length, are empty, or the
    references hold no words at all (WER would be undefined).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up one to one")
    if not references:
        raise ValueError("no references to score: the reference list is empty")
    refs = [normalize_text(r) for r in references]
    hyps = [normalize_text(h) for h in hypotheses]
    words = jiwer.process_words(refs, hyps)
    reference_words = words.hits + words.substitutions + words.deletions
    if reference_words == 0:
        raise ValueError(f"all {len(refs)} references are empty after normalisation; WER is undefined")
    chars = jiwer.process_characters(refs, hyps)
    reference_characters = chars.hits + chars.substitutions + chars.deletions
    return ErrorRates(
        wer=(words.substitutions + words.deletions + words.insertions) / reference_words,
        cer=(chars.substitutions + chars.deletions + chars.insertions) / reference_characters,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        reference_words=reference_words,
        char_substitutions=chars.substitutions,
        char_deletions=chars.deletions,
        char_insertions=chars.insertions,
        reference_characters=reference_characters,
        utterances=len(refs),
    )


def utterance_errors(reference: str, hypothesis: str) -> UtteranceErrors:
    """Word and character errors of one utterance (both sides normalised)."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    word_errors = words.substitutions + words.deletions + words.insertions
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    reference_words = words.hits + words.substitutions + words.deletions
    reference_characters = chars.hits + chars.substitutions + chars.deletions
    return UtteranceErrors(
        reference=ref,
        hypothesis=hyp,
        word_errors=word_errors,
        reference_words=reference_words,
        char_errors=char_errors,
        reference_characters=reference_characters,
        wer=_ratio(word_errors, reference_words),
        cer=_ratio(char_errors, reference_characters),
    )


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of ``values`` (sd 0 for a single value), e.g. over folds or seeds."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _bootstrap_inputs(name: str, *arrays: Sequence[int] | np.ndarray) -> list[np.ndarray]:
    """The per-utterance sequences as float64 vectors, checked: equal length N >= 1, references not all empty."""
    vectors = [np.asarray(x, dtype=np.float64) for x in arrays]
    if len({v.shape for v in vectors}) != 1 or vectors[0].ndim != 1 or len(vectors[0]) == 0:
        shapes = ", ".join(str(v.shape) for v in vectors)
        raise ValueError(f"{name} needs {len(vectors)} equal-length, non-empty 1-D sequences, got shapes {shapes}")
    if vectors[-1].sum() <= 0:
        raise ValueError(f"{name}: the references are empty")
    return vectors


def _resampled_rates(errors: np.ndarray, lengths: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Corpus-level error rate of each resample: ``(resamples,)``, from ``picks`` ``(resamples, N)`` utterance indices."""
    return errors[picks].sum(axis=1) / np.maximum(lengths[picks].sum(axis=1), 1.0)


def _bootstrap_picks(utterances: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, utterances)`` indices drawn with replacement; the same for the same arguments."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    return np.random.default_rng(seed).integers(0, utterances, size=(resamples, utterances))


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` of ``values`` (percentile interval)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_error_rate(
    errors: Sequence[int] | np.ndarray,
    reference_lengths: Sequence[int] | np.ndarray,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Corpus-level error rate of one system with a bootstrap interval over utterances.

    ``errors``: edits per utterance (e.g. word errors), ``reference_lengths``:
    reference units per utterance, both of length N >= 1. Utterances are
    resampled with replacement ``resamples`` times (fixed ``seed``) and the
    corpus-level rate (all edits over all reference units) is recomputed for
    each resample; returns ``(rate, low, high)`` as fractions, the interval
    holding ``level`` of the resampled rates. With the same N, ``resamples``
    and ``seed`` the resamples are those of :func:`paired_bootstrap_difference`.
    """
    e, n = _bootstrap_inputs("bootstrap_error_rate", errors, reference_lengths)
    rates = _resampled_rates(e, n, _bootstrap_picks(len(e), resamples, seed))
    return float(e.sum() / n.sum()), *_percentile_interval(rates, level)


def paired_bootstrap_difference(
    errors_a: Sequence[int] | np.ndarray,
    errors_b: Sequence[int] | np.ndarray,
    reference_lengths: Sequence[int] | np.ndarray,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Corpus-level error rate of system A minus that of system B on the same utterances, with a bootstrap interval.

    ``errors_a``, ``errors_b``: edits per utterance (e.g. character errors),
    ``reference_lengths``: reference units per utterance, all of length N >= 1.
    Utterances are resampled with replacement ``resamples`` times (fixed
    ``seed``), each resample keeping both systems' errors on the utterances it
    drew (the pairing); returns ``(difference, low, high)`` as fractions, the interval
    holding ``level`` of the resampled differences. An interval that holds 0
    means the run cannot tell the systems apart.
    """
    a, b, n = _bootstrap_inputs("paired_bootstrap_difference", errors_a, errors_b, reference_lengths)
    picks = _bootstrap_picks(len(a), resamples, seed)
    differences = _resampled_rates(a, n, picks) - _resampled_rates(b, n, picks)
    return float((a.sum() - b.sum()) / n.sum()), *_percentile_interval(differences, level)


def _check_finite(array: np.ndarray, what: str) -> None:
    if array.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds NaN or infinite values")


def log_spectral_distance(
    reference: np.ndarray,
    estimate: np.ndarray,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    power_floor: float = 1e-8,
) -> float:
    """Log-spectral distance in dB between two signals of equal length.

    Both ``(samples,)`` signals at the same rate go through the same Hann
    STFT (centred, ``n_fft`` 1024 and hop 256 by default); per frame
    ``sqrt(mean_f (10 log10 P_ref - 10 log10 P_est)^2)`` over all bins, with
    powers floored at ``power_floor`` (-80 dB) so near-silent bins do not
    dominate; the result is the mean over frames. 0 for identical signals.
    Raises ``ValueError`` when the lengths differ, a signal is not 1-D, is
    shorter than ``n_fft``, or holds NaN.
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 1 or estimate.ndim != 1:
        raise ValueError(f"log_spectral_distance expects 1-D signals, got shapes {reference.shape} and {estimate.shape}")
    if reference.shape != estimate.shape:
        raise ValueError(
            f"log_spectral_distance needs equal lengths: reference has {reference.shape[0]} samples, "
            f"estimate {estimate.shape[0]}; trim both to the same length first"
        )
    if reference.shape[0] < n_fft:
        raise ValueError(f"signals of {reference.shape[0]} samples are shorter than one STFT window ({n_fft})")
    _check_finite(reference, "reference signal")
    _check_finite(estimate, "estimate signal")
    spectra = [np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length, window="hann")) ** 2 for x in (reference, estimate)]
    ref_db, est_db = (10.0 * np.log10(np.maximum(p, power_floor)) for p in spectra)
    per_frame = np.sqrt(np.mean((ref_db - est_db) ** 2, axis=0))
    return float(per_frame.mean())


def mel_cepstral_distortion(reference: np.ndarray, estimate: np.ndarray, n_coefficients: int = 24) -> float:
    """Mel-cepstral distortion in dB between two cepstral sequences.

    ``reference`` ``(N, C)`` and ``estimate`` ``(M, C)`` are frames of
    natural-log cepstra (e.g. the orthonormal-DCT MFCC of
    :func:`silentspeech.features.acoustic_features`). Per frame pair
    ``10 / ln(10) * sqrt(2 * sum_{k=1..K} (c_k - c'_k)^2)`` with ``K =
    n_coefficients`` (c0, the energy, is left out), averaged over frames. When
    ``N == M`` frames pair up one to one; otherwise over the pairs of the
    Euclidean DTW path (librosa). Our orthonormal DCT scales coefficients
    differently from SPTK mel-cepstra, so compare values only within this
    project. Raises ``ValueError`` on mismatched widths, too few
    coefficients, or NaN.
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 2 or estimate.ndim != 2:
        raise ValueError(f"mel_cepstral_distortion expects (frames, coefficients) arrays, got {reference.shape} and {estimate.shape}")
    if reference.shape[1] != estimate.shape[1]:
        raise ValueError(f"cepstra differ in width: reference has {reference.shape[1]} coefficients, estimate {estimate.shape[1]}")
    if not 1 <= n_coefficients < reference.shape[1]:
        raise ValueError(f"n_coefficients={n_coefficients} needs 1 <= K < {reference.shape[1]} (coefficients 1..K are compared)")
    _check_finite(reference, "reference cepstra")
    _check_finite(estimate, "estimate cepstra")
    ref, est = reference[:, 1 : n_coefficients + 1], estimate[:, 1 : n_coefficients + 1]
    if ref.shape[0] != est.shape[0]:
        _, path = librosa.sequence.dtw(X=ref.T, Y=est.T, metric="euclidean")
        ref, est = ref[path[:, 0]], est[path[:, 1]]
    distances = np.sqrt(2.0 * np.sum((ref - est) ** 2, axis=1))
    return float(10.0 / np.log(10.0) * distances.mean())


@dataclass(frozen=True)
class ClassificationScores:
    """Window-level classification scores."""

    accuracy: float  #: fraction of windows classified right
    macro_f1: float  #: unweighted mean of per-class F1 over classes present in labels or predictions
    confusion: np.ndarray  #: (classes, classes) int64 counts, row = true class, column = predicted
    windows: int


def classification_scores(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, classes: int) -> ClassificationScores:
    """Accuracy, macro-F1 and the confusion matrix of integer ``predictions`` against ``labels`` (both ``(N,)``).

    Raises ``ValueError`` for different lengths, no items, or a class index outside ``0..classes-1``.
    """
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be equal-length vectors")
    if labels.size == 0:
        raise ValueError("no labels to score")
    for what, values in (("labels", labels), ("predictions", predictions)):
        if values.min() < 0 or values.max() >= classes:
            raise ValueError(f"{what} hold class {values.min()}..{values.max()}, outside 0..{classes - 1}")
    return ClassificationScores(
        accuracy=float(sk_metrics.accuracy_score(labels, predictions)),
        # Without ``labels=`` sklearn averages over the classes present in labels or predictions.
        macro_f1=float(sk_metrics.f1_score(labels, predictions, average="macro")),
        confusion=sk_metrics.confusion_matrix(labels, predictions, labels=np.arange(classes)).astype(np.int64),
        windows=int(labels.size),
    )


@dataclass(frozen=True)
class RegressionScores:
    """Regression errors in the targets' units (degrees for hand kinematics)."""

    mae: float  #: mean absolute error over all samples and outputs
    rmse: float  #: root mean squared error over all samples and outputs
    r2: float  #: coefficient of determination, averaged over outputs
    r2_per_output: tuple[float, ...]


def regression_scores(targets: np.ndarray, predictions: np.ndarray) -> RegressionScores:
    """MAE, RMSE and R2 of ``predictions`` against ``targets``, both ``(N, outputs)`` (or ``(N,)``).

    R2 of an output is ``1 - SS_res / SS_tot`` (0 where the target is
    constant and predicted exactly, ``-inf`` where constant and missed).
    Raises ``ValueError`` for different shapes, no items, or NaN.
    """
    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if targets.shape != predictions.shape:
        raise ValueError(f"targets {targets.shape} and predictions {predictions.shape} differ in shape")
    _check_finite(targets, "targets")
    _check_finite(predictions, "predictions")
    targets, predictions = targets.reshape(targets.shape[0], -1), predictions.reshape(predictions.shape[0], -1)
    r2 = sk_metrics.r2_score(targets, predictions, multioutput="raw_values") if len(targets) > 1 else np.zeros(targets.shape[1])
    # sklearn scores a constant target 1 when predicted exactly and 0 when missed; we report 0 (no
    # skill shown) and -inf, so that a constant output cannot lift the mean over outputs.
    constant = np.all(targets == targets[0], axis=0)
    r2 = np.where(constant, np.where(np.all(predictions == targets, axis=0), 0.0, -math.inf), r2)
    return RegressionScores(
        mae=float(sk_metrics.mean_absolute_error(targets, predictions)),
        # the root of the MSE over all samples and outputs (sklearn's RMSE would average per-output roots)
        rmse=float(np.sqrt(sk_metrics.mean_squared_error(targets, predictions))),
        r2=float(np.mean(r2)),
        r2_per_output=tuple(float(v) for v in r2),
    )
