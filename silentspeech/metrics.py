"""Evaluation metrics.

Word and character error rates follow FIELD_GUIDE §4: both sides go through
:func:`silentspeech.text.normalize_text` (unidecode, lower case, punctuation
removed, digits kept as digits), and rates are corpus-level: all edits over
all reference words (or characters), not a mean of per-utterance rates.
The edit-distance alignment is jiwer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import jiwer

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
