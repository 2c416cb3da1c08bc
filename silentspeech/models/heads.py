"""Downstream heads on the TinyMyo encoder: gesture classification and kinematics regression.

Both heads first regroup the encoder's channel-major tokens
``(B, C * P, dim)`` so that each of the ``P`` patch times carries the
concatenation of its ``C`` channel tokens, ``(B, P, C * dim)``
(TinyMyo, Fasulo et al. 2025; docs/design.md, *Downstream heads and published results*):

- :class:`GestureClassifier`: mean over patch times, then ``Linear(C * dim, K)``.
- :class:`KinematicsRegressor`: over patch times, 1x1 conv to 256, SiLU,
  dropout, depthwise conv k3, SiLU, 1x1 conv to the targets, linearly
  interpolated to the target length, then scaled by stored training target
  statistics. The layer order keeps the released checkpoints' key names
  ``regressor.{0,3,5}``.

``freeze_encoder`` turns either into a linear probe: encoder weights fixed
and the encoder kept in eval mode (no dropout, no drop-path).

:class:`ConvGestureClassifier` is the small-data student: the speech model's
convolutional front end (:class:`~silentspeech.models.speech.ResidualDownsample`
blocks, 8x fewer time steps) makes one token per frame from all channels, the
TinyMyo blocks run over the frames, then mean and ``Linear(dim, K)``. Its
convolutions with batch normalisation and GELU rectify and smooth the EMG,
which a linear patch embedding cannot; on 300 mouthed-word recordings it
learns where the patch model does not (README, *Real EMG*).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from silentspeech.models.speech import DOWNSAMPLING_BLOCKS, ResidualDownsample
from silentspeech.models.tinymyo import TinyMyoEncoder


def channel_concatenated(tokens: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel-major tokens (B, C * P, dim) -> (B, P, C * dim): per patch time, all channels side by side."""
    batch, count, dim = tokens.shape
    return tokens.view(batch, channels, count // channels, dim).permute(0, 2, 1, 3).reshape(batch, count // channels, channels * dim)


class _EncoderHead(nn.Module):
    """An encoder plus a head; ``freeze_encoder`` makes it a linear probe."""

    def __init__(self, encoder: TinyMyoEncoder, freeze_encoder: bool):
        super().__init__()
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    @property
    def channels(self) -> int:
        return self.encoder.config.channels

    def train(self, mode: bool = True) -> "_EncoderHead":
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()  # a probe reads fixed features: no dropout or drop-path inside
        return self

    def features(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) -> (B, T // patch_len, C * dim)."""
        if self.freeze_encoder:
            with torch.no_grad():
                tokens = self.encoder(emg)
        else:
            tokens = self.encoder(emg)
        return channel_concatenated(tokens, self.channels)


class GestureClassifier(_EncoderHead):
    """TinyMyo encoder + mean over patches + ``Linear(C * dim, classes)``."""

    def __init__(self, encoder: TinyMyoEncoder, classes: int, freeze_encoder: bool = False):
        super().__init__(encoder, freeze_encoder)
        config = encoder.config
        self.classifier = nn.Linear(config.channels * config.dim, classes)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) (T a multiple of patch_len) -> class logits (B, classes)."""
        return self.classifier(self.features(emg).mean(dim=1))


class ConvGestureClassifier(_EncoderHead):
    """Conv front end (``width`` channels, 8x downsampling) + TinyMyo blocks over frames + mean + ``Linear(dim, classes)``."""

    def __init__(self, encoder: TinyMyoEncoder, channels: int, width: int, classes: int, freeze_encoder: bool = False):
        super().__init__(encoder, freeze_encoder)
        sizes = [channels] + [width] * DOWNSAMPLING_BLOCKS
        self.downsample = nn.Sequential(*(ResidualDownsample(a, b) for a, b in zip(sizes, sizes[1:])))
        self.input_projection = nn.Linear(width, encoder.config.dim)
        # Frames come from the convolutions, not from patches: the patch embedding stays unused.
        self.encoder.patch_embedding.requires_grad_(False)
        self.classifier = nn.Linear(encoder.config.dim, classes)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) -> class logits (B, classes)."""
        frames = self.input_projection(self.downsample(emg).transpose(1, 2))
        if self.freeze_encoder:
            with torch.no_grad():
                tokens = self.encoder.encode_tokens(frames)
        else:
            tokens = self.encoder.encode_tokens(frames)
        return self.classifier(tokens.mean(dim=1))


class KinematicsRegressor(_EncoderHead):
    """TinyMyo encoder + the convolutional DB8 head, output at the window's sample rate."""

    def __init__(
        self,
        encoder: TinyMyoEncoder,
        outputs: int = 5,
        hidden: int = 256,
        dropout: float = 0.1,
        freeze_encoder: bool = False,
    ):
        super().__init__(encoder, freeze_encoder)
        config = encoder.config
        self.regressor = nn.Sequential(
            nn.Conv1d(config.channels * config.dim, hidden, kernel_size=1),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv1d(hidden, hidden, kernel_size=3, padding=1, groups=hidden),
            nn.SiLU(),
            nn.Conv1d(hidden, outputs, kernel_size=1),
        )
        # The head predicts standardised targets; these bring them back to the targets' units
        # (set from training data, saved with the weights).
        self.register_buffer("target_mean", torch.zeros(outputs))
        self.register_buffer("target_std", torch.ones(outputs))

    def set_target_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-output mean and standard deviation ``(outputs,)`` of the training targets."""
        self.target_mean.copy_(mean)
        self.target_std.copy_(std.clamp(min=1e-6))

    def forward(self, emg: torch.Tensor, target_length: int | None = None) -> torch.Tensor:
        """EMG (B, C, T) -> predictions (B, target_length, outputs) in target units; ``target_length`` defaults to T."""
        per_patch = self.regressor(self.features(emg).transpose(1, 2))  # (B, outputs, P)
        length = target_length or emg.shape[-1]
        standardised = F.interpolate(per_patch, size=length, mode="linear", align_corners=False).transpose(1, 2)
        return standardised * self.target_std + self.target_mean
