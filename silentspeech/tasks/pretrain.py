"""Pretraining: masked patch reconstruction of TinyMyo on a mixture of EMG sources.

The recipe is TinyMyo's (Fasulo et al. 2025, arXiv 2512.15729; docs/design.md,
*TinyMyo: the encoder*).

Half of the patch grid (channels x patches) of every min-max scaled window
is replaced by a learned mask token; a linear decoder reconstructs every
patch, and the loss is Smooth-L1 on the masked patches plus 0.1 x Smooth-L1
on the visible ones. Patches of zero-padded channels (a source with fewer
channels than the encoder) are left out of both terms: reconstructing
zeros teaches nothing and would dilute the loss by source.

Besides the engine's run directory, training writes
``tinymyo.safetensors`` (the encoder, mask token and decoder of the best
weights in the released layout, which :func:`load_tinymyo` and the
downstream recipes' ``model.pretrained`` read) and ``reconstruction.png``
(a validation window, its reconstruction, masked patches shaded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from silentspeech.data.pretraining import MixtureBatchSampler, WindowMixtureConfig, build_pretrain_windows
from silentspeech.figures import reconstruction_figure, save_figure
from silentspeech.models.tinymyo import TinyMyoConfig, TinyMyoPretrainer, load_tinymyo, patches, save_tinymyo
from silentspeech.runs import BEST_WEIGHTS
from silentspeech.tasks import Task
from silentspeech.tasks.engine import OptimConfig, RunConfig, TaskModule, TrainerConfig, fit, training_loader

log = logging.getLogger(__name__)

ENCODER_FILE = "tinymyo.safetensors"
FIGURE_FILE = "reconstruction.png"


@dataclass
class PretrainModelConfig:
    """The encoder to pretrain and the masking objective."""

    encoder: TinyMyoConfig = field(default_factory=TinyMyoConfig)
    #: Fraction of the patch grid replaced by the mask token.
    mask_ratio: float = 0.5
    #: Weight of the reconstruction loss on visible patches.
    visible_weight: float = 0.1
    #: Continue from this TinyMyo checkpoint (e.g. the released weights; its architecture then
    #: replaces ``encoder``) instead of a fresh encoder ("" = fresh).
    pretrained: str = ""


@dataclass
class PretrainConfig(RunConfig):
    """Recipe schema of ``task: pretrain``."""

    task: str = "pretrain"
    data: WindowMixtureConfig = field(default_factory=WindowMixtureConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, warmup_steps=200))


def random_patch_mask(batch: int, tokens: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, tokens) bool: exactly ``round(ratio * tokens)`` True per row, at random."""
    scores = torch.rand(batch, tokens, generator=generator)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < round(ratio * tokens)


def reconstruction_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor,
    visible_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, masked term, visible term)`` from patches (B, N, patch_len) and (B, N) bool masks.

    Smooth-L1 averaged over the samples of the masked (``mask & valid``) and
    of the visible (``~mask & valid``) patches; ``loss = masked + visible_weight * visible``.
    """
    per_patch = F.smooth_l1_loss(predicted.float(), target.float(), reduction="none").mean(dim=-1)
    masked, visible = (mask & valid).float(), (~mask & valid).float()
    masked_loss = (per_patch * masked).sum() / masked.sum().clamp(min=1)
    visible_loss = (per_patch * visible).sum() / visible.sum().clamp(min=1)
    return masked_loss + visible_weight * visible_loss, masked_loss, visible_loss


class PretrainTask(TaskModule):
    """Masked reconstruction of a :class:`TinyMyoPretrainer`; monitors the validation loss."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, model: TinyMyoPretrainer, config: PretrainConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self.mask_ratio = config.model.mask_ratio
        self.visible_weight = config.model.visible_weight
        self._eval_batches = 0

    def _step(self, batch: dict, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emg, channel_mask = batch["emg"], batch["channel_mask"]
        patch_len = self.model.config.patch_len
        valid = channel_mask.repeat_interleave(emg.shape[2] // patch_len, dim=1)
        predicted = self.model(emg, mask)
        return reconstruction_loss(predicted, patches(emg, patch_len), mask, valid, self.visible_weight)

    def _tokens(self, emg: torch.Tensor) -> int:
        return emg.shape[1] * (emg.shape[2] // self.model.config.patch_len)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        emg = batch["emg"]
        mask = random_patch_mask(emg.shape[0], self._tokens(emg), self.mask_ratio).to(emg.device)
        loss, masked, _ = self._step(batch, mask)
        self.log("train/loss", loss, prog_bar=True, batch_size=emg.shape[0])
        self.log("train/masked_loss", masked, batch_size=emg.shape[0])
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        # The same masks at every validation (seeded by the batch's position in the pass), so
        # scores compare across steps.
        emg = batch["emg"]
        generator = torch.Generator().manual_seed(self._eval_batches)
        self._eval_batches += 1
        mask = random_patch_mask(emg.shape[0], self._tokens(emg), self.mask_ratio, generator).to(emg.device)
        loss, masked, visible = self._step(batch, mask)
        size = emg.shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True, batch_size=size)
        self.log(f"{stage}/masked_loss", masked, sync_dist=True, batch_size=size)
        self.log(f"{stage}/visible_loss", visible, sync_dist=True, batch_size=size)

    def report(self, stage: str) -> None:
        # The losses were logged per batch; Lightning averages them over the pass.
        self._eval_batches = 0


class PretrainData(pl.LightningDataModule):
    """Mixture batches for training; the held-out recordings' windows validate (and test)."""

    def __init__(self, config: WindowMixtureConfig, channels: int, trainer_config: TrainerConfig, seed: int = 0) -> None:
        super().__init__()
        self.config, self.channels, self.trainer_config, self.seed = config, channels, trainer_config, seed
        self.train_set = None

    def setup(self, stage: str) -> None:
        if self.train_set is None:
            self.train_set, self.val_set, self.weights = build_pretrain_windows(self.config, self.channels)
            if len(self.val_set) == 0:
                raise ValueError("no validation windows: give a source with two or more recordings (data.val_fraction)")

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        batches = self.config.batches_per_epoch or max(1, len(self.train_set) // self.config.batch_size)
        sampler = MixtureBatchSampler(
            self.train_set.source_sizes, self.weights, self.config.batch_size, batches, self.seed, rank, world
        )
        return training_loader(self.train_set, sampler, self.trainer_config, None, self.config.workers)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.val_set, batch_size=self.config.batch_size, num_workers=self.config.workers)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self.val_dataloader()


def build_model(config: PretrainConfig) -> TinyMyoPretrainer:
    """The pretrainer: fresh, or from ``model.pretrained`` (its architecture then wins over ``model.encoder``)."""
    if config.model.pretrained:
        model, _ = load_tinymyo(config.model.pretrained, pretrainer=True)
        return model
    return TinyMyoPretrainer(config.model.encoder)


def plot_reconstruction(model: TinyMyoPretrainer, item: dict, mask_ratio: float, path: Path, seed: int = 0) -> None:
    """PNG of one window: input and reconstruction per real channel (up to 6), masked patches shaded."""
    emg = item["emg"][None]
    patch_len = model.config.patch_len
    per_channel = emg.shape[2] // patch_len
    shown = min(int(item["channel_mask"].sum()), 6)
    mask = random_patch_mask(1, emg.shape[1] * per_channel, mask_ratio, torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad():
        predicted = model(emg, mask).reshape(emg.shape[1], -1).numpy()
    masked = mask.reshape(emg.shape[1], per_channel).numpy()
    figure = reconstruction_figure(emg[0, :shown].numpy(), predicted[:shown], masked[:shown], patch_len, mask_ratio)
    save_figure(figure, path)


def train(config: PretrainConfig) -> Path:
    """Pretrain; writes the run directory plus ``tinymyo.safetensors`` and ``reconstruction.png``."""
    encoder = build_model(config).config
    if config.data.window % encoder.patch_len:
        raise ValueError(f"data.window={config.data.window} is not a multiple of model.encoder.patch_len={encoder.patch_len}")
    data = PretrainData(config.data, encoder.channels, config.trainer, config.seed)
    run_dir = fit(config, lambda: PretrainTask(build_model(config), config), data)
    model = build_model(config)
    model.load_state_dict(load_file(run_dir / BEST_WEIGHTS))
    save_tinymyo(model, run_dir / ENCODER_FILE)
    plot_reconstruction(model, data.val_set[0], config.model.mask_ratio, run_dir / FIGURE_FILE, config.seed)
    log.info("wrote %s and %s", run_dir / ENCODER_FILE, run_dir / FIGURE_FILE)
    return run_dir


TASK = Task(schema=PretrainConfig, build_model=build_model, train=train)
