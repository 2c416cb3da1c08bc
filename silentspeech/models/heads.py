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
and the encoder kept in eval mode (no dropout, no drop-path). The two
front ends below are new layers before the blocks, so there it fixes the
pretrained blocks only: gradients pass through them to the front end, which
trains with the head (a random, frozen front end would feed the blocks noise).

:class:`ConvGestureClassifier` is the small-data student: the speech model's
convolutional front end (:class:`~silentspeech.models.speech.ResidualDownsample`
blocks, 8x fewer time steps) makes one token per frame from all channels, the
TinyMyo blocks run over the frames, then mean and ``Linear(dim, K)``. Its
convolutions with batch normalisation and GELU rectify and smooth the EMG,
which a linear patch embedding cannot; on 300 mouthed-word recordings it
learns where the patch model does not (README, *Real EMG*).

:class:`FeatureGestureClassifier` goes one step further for a few hundred
recordings: each short frame of every channel becomes the five Hudgins
time-domain features (:func:`hudgins_frames`, the classical baseline's set,
:mod:`silentspeech.models.classic`, on frames instead of four segments), a
linear projection and one residual convolution over time turn them into
tokens, and the TinyMyo blocks, mean and ``Linear(dim, K)`` follow. The
network then starts from what is known to separate EMG classes and learns how
the features move over time, which the random forest's four fixed segments
cannot. Frame features before a sequence model are the input of Gaddy and
Klein's first silent-speech model (2020, "Digital voicing of silent speech",
EMNLP: per-frame means, powers and zero-crossing rates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from silentspeech.models.classic import FEATURES
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


def linear_classifier(inputs: int, classes: int) -> nn.Linear:
    """``Linear(inputs, classes)``, Xavier-uniform weights and zero bias (the gesture heads' last layer)."""
    classifier = nn.Linear(inputs, classes)
    nn.init.xavier_uniform_(classifier.weight)
    nn.init.zeros_(classifier.bias)
    return classifier


class GestureClassifier(_EncoderHead):
    """TinyMyo encoder + mean over patches + ``Linear(C * dim, classes)``."""

    def __init__(self, encoder: TinyMyoEncoder, classes: int, freeze_encoder: bool = False):
        super().__init__(encoder, freeze_encoder)
        config = encoder.config
        self.classifier = linear_classifier(config.channels * config.dim, classes)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) (T a multiple of patch_len) -> class logits (B, classes)."""
        return self.classifier(self.features(emg).mean(dim=1))


class _FrameTokenClassifier(_EncoderHead):
    """A front end of its own makes the tokens (B, N, dim) the TinyMyo blocks run over; mean over them, then the classifier.

    Subclasses build their front end, then ``self.classifier``, and write :meth:`tokens`.
    """

    def __init__(self, encoder: TinyMyoEncoder, freeze_encoder: bool):
        super().__init__(encoder, freeze_encoder)
        # Tokens come from the front end, not from patches: the patch embedding stays unused.
        self.encoder.patch_embedding.requires_grad_(False)

    def tokens(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) -> tokens (B, N, dim)."""
        raise NotImplementedError

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T) -> class logits (B, classes)."""
        return self.classifier(self.encoder.encode_tokens(self.tokens(emg)).mean(dim=1))


class ConvGestureClassifier(_FrameTokenClassifier):
    """Conv front end (``width`` channels, 8x downsampling) + TinyMyo blocks over frames + mean + ``Linear(dim, classes)``."""

    def __init__(self, encoder: TinyMyoEncoder, channels: int, width: int, classes: int, freeze_encoder: bool = False):
        super().__init__(encoder, freeze_encoder)
        sizes = [channels] + [width] * DOWNSAMPLING_BLOCKS
        self.downsample = nn.Sequential(*(ResidualDownsample(a, b) for a, b in zip(sizes, sizes[1:])))
        self.input_projection = nn.Linear(width, encoder.config.dim)
        self.classifier = linear_classifier(encoder.config.dim, classes)

    def tokens(self, emg: torch.Tensor) -> torch.Tensor:
        return self.input_projection(self.downsample(emg).transpose(1, 2))


def hudgins_frames(emg: torch.Tensor, frame: int, hop: int) -> torch.Tensor:
    """Hudgins features of every ``frame``-sample frame, ``hop`` samples apart.

    ``emg`` (B, C, T) -> (B, (T - frame) // hop + 1, C * 5), per frame the
    channels side by side, each with the classical baseline's features in
    its order (:data:`silentspeech.models.classic.FEATURES`): log mean absolute
    value, log RMS, log waveform length (``log(x + 1e-3)``: z-scored EMG, so
    1e-3 is far below any real frame and bounds the log of a zero-padded one),
    and the zero-crossing and slope-sign-change counts over the frame's samples.
    """
    frames = emg.unfold(2, frame, hop)  # (B, C, N, frame)
    diff = frames.diff(dim=-1)
    features = torch.stack(
        [
            (frames.abs().mean(-1) + 1e-3).log(),
            (frames.pow(2).mean(-1).sqrt() + 1e-3).log(),
            (diff.abs().sum(-1) + 1e-3).log(),
            (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1),
            (diff[..., 1:] * diff[..., :-1] < 0).float().mean(-1),
        ],
        dim=-1,
    )  # (B, C, N, 5)
    return features.permute(0, 2, 1, 3).flatten(2)


class FeatureGestureClassifier(_FrameTokenClassifier):
    """Hudgins features per frame + projection + residual conv + TinyMyo blocks + mean + ``Linear(dim, classes)``."""

    def __init__(self, encoder: TinyMyoEncoder, channels: int, classes: int, frame: int, hop: int, freeze_encoder: bool = False):
        super().__init__(encoder, freeze_encoder)
        self.frame, self.hop = frame, hop
        dim = encoder.config.dim
        inputs = channels * len(FEATURES)
        # LayerNorm first: log amplitudes and crossing rates live on different scales.
        self.input_projection = nn.Sequential(nn.LayerNorm(inputs), nn.Linear(inputs, dim))
        # Five frames (five hops) of context per token before attention: onsets and their shape.
        self.local = nn.Sequential(nn.Conv1d(dim, dim, kernel_size=5, padding=2), nn.GELU())
        self.classifier = linear_classifier(dim, classes)

    def tokens(self, emg: torch.Tensor) -> torch.Tensor:
        """EMG (B, C, T), T >= ``frame`` -> tokens (B, (T - frame) // hop + 1, dim)."""
        frames = self.input_projection(hudgins_frames(emg, self.frame, self.hop))
        return frames + self.local(frames.transpose(1, 2)).transpose(1, 2)


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
