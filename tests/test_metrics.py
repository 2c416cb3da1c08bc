"""WER/CER, classification and regression scores: pinned values worked out by hand, normalisation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from silentspeech.metrics import bootstrap_error_rate, classification_scores, error_rates, paired_bootstrap_difference, regression_scores, utterance_errors


def test_corpus_level_counts_pinned():
    # "the cat sat" -> "the bat sat on": 1 substitution, 1 insertion over 3 words.
    # "a dog" -> "dog": 1 deletion over 2 words. Corpus WER = 3 / 5, not the mean of 2/3 and 1/2.
    rates = error_rates(["the cat sat", "a dog"], ["the bat sat on", "dog"])
    assert (rates.substitutions, rates.deletions, rates.insertions) == (1, 1, 1)
    assert rates.reference_words == 5
    assert rates.wer == pytest.approx(3 / 5)
    # Characters: "the cat sat" (11) -> "the bat sat on" is 1 sub + 3 ins; "a dog" (5) -> "dog" is 2 del.
    assert rates.reference_characters == 16
    assert (rates.char_substitutions, rates.char_deletions, rates.char_insertions) == (1, 2, 3)
    assert rates.cer == pytest.approx(6 / 16)
    assert rates.utterances == 2


def test_perfect_and_empty_hypothesis():
    assert error_rates(["hello world"], ["hello world"]).wer == 0.0
    empty = error_rates(["hello world"], [""])
    assert (empty.wer, empty.deletions, empty.cer) == (1.0, 2, 1.0)


def test_normalisation_accents_case_punctuation_digits():
    # unidecode + lower case + punctuation deleted: these pairs are identical after normalisation.
    rates = error_rates(["Café—it's 10 O'Clock!", "Naïve   résumé."], ["cafeits 10 oclock", "naive resume"])
    assert rates.wer == 0.0 and rates.cer == 0.0
    assert rates.reference_words == 5
    # Digits stay digits: "10" is not "ten".
    digits = error_rates(["at 10 pm"], ["at ten pm"])
    assert digits.substitutions == 1 and digits.wer == pytest.approx(1 / 3)


def test_empty_reference_utterance_counts_insertions():
    rates = error_rates(["one two", ""], ["one two", "extra words"])
    assert rates.insertions == 2 and rates.reference_words == 2 and rates.wer == 1.0


def test_utterance_errors_row():
    row = utterance_errors("The Cat!", "the bat")
    assert (row.reference, row.hypothesis) == ("the cat", "the bat")
    assert (row.word_errors, row.reference_words, row.wer) == (1, 2, 0.5)
    assert (row.char_errors, row.reference_characters) == (1, 7)
    assert utterance_errors("", "").wer == 0.0
    assert math.isinf(utterance_errors("", "word").wer)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        error_rates([], [])
    with pytest.raises(ValueError, match="pair up"):
        error_rates(["a b"], ["a", "b"])
    with pytest.raises(ValueError, match="undefined"):
        error_rates(["", "?!"], ["x", ""])


def test_paired_bootstrap_difference_separates_clear_gaps_from_noise():
    lengths = [40] * 60
    same = [4] * 60
    assert paired_bootstrap_difference(same, same, lengths) == (0.0, 0.0, 0.0)
    rng = np.random.default_rng(1)
    worse = rng.integers(8, 14, 60)  # about 11 errors against 4 on every utterance
    difference, low, high = paired_bootstrap_difference(same, worse, lengths)
    assert difference == pytest.approx((240 - worse.sum()) / 2400) and low <= difference <= high < 0
    # Noise: the same error counts in another order cannot be told apart.
    noisy = rng.integers(0, 10, 60)
    _, low, high = paired_bootstrap_difference(noisy, rng.permutation(noisy), lengths)
    assert low < 0 < high
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap_difference([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="references are empty"):
        paired_bootstrap_difference([0], [0], [0])


def test_bootstrap_error_rate_resamples_utterances_and_recomputes_the_corpus_rate():
    # One long clean utterance and one short wrong one: every resample's corpus-level rate is 0, 1/101 or 1
    # (a mean of per-utterance rates would give 0.5 for the corpus itself).
    rate, low, high = bootstrap_error_rate([1, 0], [1, 100], resamples=1000)
    assert rate == pytest.approx(1 / 101) and low == 0.0 and high == 1.0
    # Many utterances with the same rate: every resample has it.
    assert bootstrap_error_rate([2] * 30, [10] * 30) == pytest.approx((0.2, 0.2, 0.2))
    rng = np.random.default_rng(3)
    errors, lengths = rng.integers(0, 6, 200), rng.integers(5, 15, 200)
    rate, low, high = bootstrap_error_rate(errors, lengths)
    assert low < rate < high and high - low < 0.1
    # Four times fewer utterances: about twice as wide.
    _, few_low, few_high = bootstrap_error_rate(errors[:50], lengths[:50])
    assert 1.4 < (few_high - few_low) / (high - low) < 2.8
    assert bootstrap_error_rate(errors, lengths, seed=5) == bootstrap_error_rate(errors, lengths, seed=5)
    with pytest.raises(ValueError, match="equal-length"):
        bootstrap_error_rate([1, 2], [3])
    with pytest.raises(ValueError, match="references are empty"):
        bootstrap_error_rate([0, 0], [0, 0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_error_rate([1], [3], level=95)


def test_classification_scores_by_hand():
    # labels 0 0 0 1 1 2, predictions 0 0 1 1 2 3 (class 3 appears only among the predictions; class 4 nowhere).
    scores = classification_scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 3], classes=5)
    assert scores.accuracy == pytest.approx(3 / 6)
    assert scores.confusion.tolist() == [
        [2, 1, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert scores.confusion.dtype == np.int64 and scores.windows == 6
    # F1 = 2 TP / (support + predicted): class 0 4/5, class 1 2/4, class 2 0/2, class 3 0/1; class 4 is left out.
    assert scores.macro_f1 == pytest.approx((4 / 5 + 2 / 4 + 0 + 0) / 4)


def test_regression_scores_by_hand():
    targets = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 5.0], [4.0, 5.0, 5.0]])
    predictions = np.array([[1.0, 1.0, 5.0], [2.0, 3.0, 5.0], [3.0, 8.0, 5.0]])
    scores = regression_scores(targets, predictions)
    # errors: column 0 (1, 0, -1), column 1 (0, 0, 3), column 2 none: |e| sums to 5, e^2 to 11, over 9 values.
    assert scores.mae == pytest.approx(5 / 9)
    assert scores.rmse == pytest.approx(math.sqrt(11 / 9))  # over all values, not the mean of per-output RMSEs
    # SS_tot is 8 for columns 0 and 1; column 2 is constant and predicted exactly, which counts as 0.
    assert scores.r2_per_output == pytest.approx((1 - 2 / 8, 1 - 9 / 8, 0.0))
    assert scores.r2 == pytest.approx((0.75 - 0.125 + 0.0) / 3)
    missed = regression_scores(targets[:, 2], targets[:, 2] + 1.0)
    assert missed.r2_per_output == (-math.inf,) and missed.mae == 1.0
    assert regression_scores([[3.0]], [[3.0]]).r2 == 0.0  # a single sample is a constant target
