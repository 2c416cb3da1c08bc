"""Dynamic time warping between predicted and target frames, and the silent-speech loss.

A silent utterance has no audio of its own: its targets are the features of
its voiced twin, spoken at another pace. The loss (Gaddy & Klein 2020, 2021; docs/design.md, *The silent-speech
loss*) builds a
cost matrix between the predicted frames and the twin's frames, finds the
cheapest monotonic alignment on the *detached* costs, and averages the costs
along that path, so gradients flow through the costs but not through the
choice of path.

The path search is ``librosa.sequence.dtw`` (numba-compiled, standard steps
(1,1), (1,0), (0,1)); it was faster than a batched PyTorch wavefront of
our own (docs/measurements.md), so librosa is kept. The path is found on CPU; only the cost matrix travels
there, the loss itself stays on the model's device.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torch.nn.functional as F


def dtw_path(costs: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest monotonic path through a ``(rows, cols)`` cost matrix.

    The path starts at ``(0, 0)``, ends at ``(rows - 1, cols - 1)`` and moves
    by one row, one column or both at each step. Returns ``(row_index,
    col_index)``, two int64 arrays of the path's length in path order.
    Raises ``ValueError`` for an empty or non-finite matrix.
    """
    if isinstance(costs, torch.Tensor):
        costs = costs.detach().float().cpu().numpy()
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2 or 0 in costs.shape:
        raise ValueError(f"DTW needs a non-empty 2-D cost matrix, got shape {costs.shape}")
    if not np.isfinite(costs).all():
        raise ValueError("DTW cost matrix holds NaN or infinite values (diverged predictions?)")
    _, path = librosa.sequence.dtw(C=costs, backtrack=True)
    path = path[::-1]  # librosa returns it from the end to the start
    return path[:, 0].astype(np.int64), path[:, 1].astype(np.int64)


def alignment_costs(
    predicted: torch.Tensor,
    target: torch.Tensor,
    phoneme_logits: torch.Tensor | None = None,
    target_phonemes: torch.Tensor | None = None,
    phoneme_weight: float = 0.5,
) -> torch.Tensor:
    """Cost of pairing each predicted frame with each target frame.

    ``predicted`` (N, F) and ``target`` (M, F) are acoustic frames (MFCC) at
    86.13 Hz; the cost is their Euclidean distance, plus ``phoneme_weight``
    times the negative log-likelihood that predicted frame i carries target
    frame j's phoneme when ``phoneme_logits`` (N, P) and ``target_phonemes``
    (M,) int64 are given (columns labelled -100 get no phoneme term). The
    target is detached: gradients reach the predictions only. Returns (N, M)
    float32.
    """
    if predicted.ndim != 2 or target.ndim != 2 or predicted.shape[1] != target.shape[1]:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} must be (frames, features) "
            "with the same number of features"
        )
    costs = torch.cdist(predicted.float()[None], target.detach().float()[None])[0]
    if phoneme_logits is not None and target_phonemes is not None:
        if target_phonemes.shape != (target.shape[0],):
            raise ValueError(f"target_phonemes {tuple(target_phonemes.shape)} must be ({target.shape[0]},)")
        log_probs = F.log_softmax(phoneme_logits.float(), dim=-1)
        labelled = target_phonemes >= 0
        nll = -log_probs[:, target_phonemes.clamp(min=0)] * labelled[None]
        costs = costs + phoneme_weight * nll
    return costs


def aligned_mean_cost(costs: torch.Tensor) -> torch.Tensor:
    """Mean of ``costs`` (N, M) along their DTW path; differentiable in the costs, not in the path."""
    rows, cols = dtw_path(costs)
    index = torch.as_tensor(rows * costs.shape[1] + cols, device=costs.device)
    return costs.reshape(-1)[index].mean()


def aligned_distance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between DTW-aligned frames of ``predicted`` (N, F) and ``target`` (M, F).

    The validation metric of speech production: the same quantity the
    silent loss minimises, without the phoneme term.
    """
    return aligned_mean_cost(alignment_costs(predicted, target))


class SilentDTWLoss(torch.nn.Module):
    """Loss of one silent utterance against its voiced twin's frames (Gaddy & Klein 2021).

    ``forward(predicted (N, F), target (M, F), phoneme_logits (N, P) or None,
    target_phonemes (M,) or None) -> scalar``: Euclidean distance plus
    ``phoneme_weight`` x phoneme negative log-likelihood, averaged along the
    DTW path found on the detached costs.
    """

    def __init__(self, phoneme_weight: float = 0.5) -> None:
        super().__init__()
        self.phoneme_weight = phoneme_weight

    def forward(
        self,
        predicted: torch.Tensor,
        target: torch.Tensor,
        phoneme_logits: torch.Tensor | None = None,
        target_phonemes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        costs = alignment_costs(predicted, target, phoneme_logits, target_phonemes, self.phoneme_weight)
        return aligned_mean_cost(costs)
