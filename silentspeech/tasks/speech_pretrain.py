"""Speech pretraining: masked reconstruction of EMG at the speech model's own input (``task: speech_pretrain``).

TinyMyo pretrains its Transformer on patches of raw EMG (Fasulo et al. 2025;
:mod:`silentspeech.tasks.pretrain`). The speech model feeds its Transformer
with frames of a convolutional downsampler instead, so TinyMyo's patch
embedding is never used there and a TinyMyo checkpoint initialises only the
blocks. This task pretrains the whole trunk the speech tasks use
(downsampler, projection, blocks) with the same idea in the speech model's
terms: spans of 86.13 Hz frames are hidden, and a ``reconstruction``
head predicts every frame's 8 channels x 8 samples of the preprocessed EMG
(689.06 Hz); the loss is Smooth-L1 on the masked frames plus 0.1 x
Smooth-L1 on the visible ones (TinyMyo's weighting). EMG is compared after
scaling each utterance and channel by its standard deviation, so loud
channels do not dominate. No labels are needed: every utterance of the
cache's train split is used, silent and voiced.

Frames are hidden after the downsampler, as wav2vec 2.0 masks the output of
its convolutional feature encoder (Baevski et al. 2020): the downsampler sees
the whole recording and each masked frame's token is replaced by one learned
mask token (:class:`SpeechModel` ``token_mask``). Zeroed spans in the EMG
would train the downsampler's convolutions and BatchNorm statistics on
inputs that are nearly half zeros, which fine-tuning never shows them (why
ConvNeXt V2, Woo et al. 2023, and SparK, Tian et al. 2023, keep masked
regions out of convolutions). The recogniser fine-tuned from a trunk
pretrained this way does better than from one pretrained on zeroed spans
(docs/measurements.md, *How learnable the corpus is*). A token reads 43
samples (21 before its frame's 8, 14 after), so a visible neighbour still
sees the edges of a masked span: spans of several frames keep their insides
hidden (docs/design.md, *Speech pretraining*).

Recognition and production start from the result with
``model.init_from=<this run>`` (:meth:`silentspeech.models.speech.SpeechModel.load_trunk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.preprocessing import EMG_PER_FRAME
from silentspeech.tasks import Task
from silentspeech.tasks.engine import RunConfig, TaskModule
from silentspeech.tasks.speech_data import SpeechDataConfig, build_speech_model, check_emg_batch, train_speech_task

#: Weight of the visible frames' reconstruction loss (TinyMyo's pretraining uses 0.1).
VISIBLE_WEIGHT = 0.1


@dataclass
class SpeechMaskConfig:
    #: Share of frames masked per utterance.
    ratio: float = 0.5
    #: Frames per masked span (86.13 Hz frames: 4 = 46 ms).
    span: int = 4


@dataclass
class SpeechPretrainConfig(RunConfig):
    """Recipe schema of ``task: speech_pretrain``."""

    task: str = "speech_pretrain"
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(outputs=["reconstruction"]))
    mask: SpeechMaskConfig = field(default_factory=SpeechMaskConfig)


def frame_mask(batch: int, frames: int, ratio: float, span: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean ``(batch, frames)``, True where a frame is masked: spans of ``span`` frames, about ``ratio`` of them."""
    starts = max(1, round(frames * ratio / span))
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    first = torch.randint(0, max(1, frames - span + 1), (batch, starts), generator=generator)
    for offset in range(span):
        mask.scatter_(1, (first + offset).clamp(max=frames - 1), True)
    return mask


def emg_frames(emg: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, C, T)`` EMG -> ``(B, frames, C x 8)``: each frame's samples, channel-major (the reconstruction head's layout)."""
    emg = F.pad(emg, (0, frames * EMG_PER_FRAME - emg.shape[2]))
    return emg.reshape(emg.shape[0], emg.shape[1], frames, EMG_PER_FRAME).permute(0, 2, 1, 3).flatten(2)


def reconstruction_loss(model: SpeechModel, batch: dict, mask_config: SpeechMaskConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masked-reconstruction loss of one batch (see the module docstring)."""
    check_emg_batch(batch, model.config.emg_channels)
    emg, lengths = batch["emg"], batch["emg_lengths"]
    frames = -(-emg.shape[2] // EMG_PER_FRAME)
    valid = torch.arange(frames, device=emg.device)[None] < model.frame_lengths(lengths)[:, None]
    scale = emg.std(dim=2, keepdim=True).clamp(min=1e-3)
    target = emg_frames(emg / scale, frames)
    masked = frame_mask(emg.shape[0], frames, mask_config.ratio, mask_config.span, generator).to(emg.device) & valid
    outputs = model(emg, lengths, token_mask=masked)
    errors = F.smooth_l1_loss(outputs["reconstruction"].float(), target.float(), reduction="none").mean(dim=2)
    visible = valid & ~masked
    masked_loss = errors[masked].mean() if bool(masked.any()) else errors.sum() * 0.0
    visible_loss = errors[visible].mean() if bool(visible.any()) else errors.sum() * 0.0
    return masked_loss + VISIBLE_WEIGHT * visible_loss


class SpeechPretrainTask(TaskModule):
    """Masked reconstruction on the cache's EMG; the best weights have the lowest validation loss (dev, fixed masks)."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, model: SpeechModel, config: SpeechPretrainConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self.mask_config = config.mask
        self.seed = config.seed

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = reconstruction_loss(self.model, batch, self.mask_config)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        # The same masks every validation: the loss then measures the model, not the draw.
        generator = torch.Generator().manual_seed(self.seed)
        loss = reconstruction_loss(self.model, batch, self.mask_config, generator)
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["ids"]))

    def report(self, stage: str) -> None:
        """Nothing beyond the logged loss."""


TASK = Task(schema=SpeechPretrainConfig, build_model=build_speech_model, train=partial(train_speech_task, SpeechPretrainTask))
