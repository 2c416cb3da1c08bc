"""DTW path and the silent-speech loss."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from silentspeech.alignment import SilentDTWLoss, aligned_distance, alignment_costs, dtw_path


def test_path_is_monotonic_and_matches_librosa():
    costs = np.random.default_rng(0).random((7, 11))
    rows, cols = dtw_path(costs)
    assert (rows[0], cols[0]) == (0, 0) and (rows[-1], cols[-1]) == (6, 10)
    steps = np.stack([np.diff(rows), np.diff(cols)], axis=1)
    assert {tuple(s) for s in steps} <= {(1, 0), (0, 1), (1, 1)}
    _, reference = librosa.sequence.dtw(C=costs)
    np.testing.assert_array_equal(np.stack([rows, cols], 1), reference[::-1])


def test_path_follows_a_known_alignment():
    # Target = the prediction with every frame repeated twice: the best path
    # pairs predicted frame i with target frames 2i and 2i+1, at zero cost.
    predicted = torch.randn(5, 3)
    target = predicted.repeat_interleave(2, dim=0)
    rows, cols = dtw_path(alignment_costs(predicted, target))
    np.testing.assert_array_equal(rows, np.arange(10) // 2)
    np.testing.assert_array_equal(cols, np.arange(10))
    assert aligned_distance(predicted, target).item() == pytest.approx(0.0, abs=1e-5)


def test_loss_gradient_flows_to_predictions_only():
    torch.manual_seed(0)
    predicted = torch.randn(6, 4, requires_grad=True)
    logits = torch.randn(6, 5, requires_grad=True)
    target = torch.randn(9, 4, requires_grad=True)
    phonemes = torch.tensor([0, 1, 1, 2, -100, 3, 4, 4, 0])
    loss = SilentDTWLoss(phoneme_weight=0.5)(predicted, target, logits, phonemes)
    loss.backward()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert target.grad is None

    # The gradient is that of the mean cost along the (fixed) path.
    costs = alignment_costs(predicted, target, logits, phonemes, 0.5)
    rows, cols = dtw_path(costs)
    assert loss.item() == pytest.approx(costs.detach()[rows, cols].mean().item(), rel=1e-6)


def test_phoneme_term_adds_half_the_negative_log_likelihood():
    predicted, target = torch.zeros(2, 3), torch.zeros(3, 3)
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    costs = alignment_costs(predicted, target, logits, torch.tensor([0, 1, -100]), phoneme_weight=0.5)
    expected = -0.5 * torch.log(torch.tensor([[0.5, 0.5, 1.0], [0.25, 0.75, 1.0]]))
    torch.testing.assert_close(costs, expected)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same number of features"):
        alignment_costs(torch.zeros(4, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        dtw_path(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="non-empty"):
        dtw_path(np.zeros((0, 3)))
