"""Production: EMG -> acoustic features (MFCC frames at 86.13 Hz) for the vocoder.

Losses (Gaddy & Klein 2020, 2021; docs/design.md, *The silent-speech loss*):

* voiced utterance: the Euclidean distance between each predicted frame and
  the utterance's own audio frame, averaged over frames, plus
  ``phoneme_weight`` x phoneme cross-entropy where labels exist;
* silent utterance: :class:`~silentspeech.alignment.SilentDTWLoss` against its
  voiced twin's frames (distance + ``phoneme_weight`` x phoneme NLL, along
  the DTW path).

The same per-frame Euclidean distance is used for both (not its square, as
MSE would), so silent and voiced utterances weigh alike in a mixed batch.
The batch loss is the mean over utterances.

Validation (and test) score the silent utterances: the mean over utterances
of the DTW-aligned feature distance to the voiced twin (``val/distance``;
the best weights minimise it), beside the same distance for a model that
always predicts the mean training frame (``val/mean_baseline``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from silentspeech.alignment import SilentDTWLoss, aligned_distance
from silentspeech.data.cache import PHONEME_PAD
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.tasks import Task
from silentspeech.tasks.engine import RunConfig, TaskModule
from silentspeech.tasks.speech_data import (
    SpeechDataConfig,
    build_speech_model,
    check_emg_batch,
    shift_emg,
    train_speech_task,
)


@dataclass
class ProductionLossConfig:
    #: Weight of the phoneme term: cross-entropy for voiced, NLL in the DTW cost for silent utterances.
    phoneme_weight: float = 0.5


@dataclass
class ProductionConfig(RunConfig):
    """Recipe schema of ``task: production``."""

    task: str = "production"
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(outputs=["acoustic", "phoneme"]))
    loss: ProductionLossConfig = field(default_factory=ProductionLossConfig)


def production_losses(outputs: dict, frame_lengths: torch.Tensor, batch: dict, phoneme_weight: float) -> torch.Tensor:
    """Loss of each utterance (B,) from the model ``outputs`` (see the module docstring)."""
    acoustic = outputs["acoustic"].float()
    logits = outputs.get("phoneme_logits")
    silent_loss = SilentDTWLoss(phoneme_weight)
    losses = []
    for i in range(acoustic.shape[0]):
        predicted = acoustic[i, : int(frame_lengths[i])]
        target = batch["target_features"][i, : int(batch["target_lengths"][i])]
        phonemes = batch["phonemes"][i, : target.shape[0]] if logits is not None and bool(batch["has_phonemes"][i]) else None
        item_logits = logits[i, : predicted.shape[0]].float() if phonemes is not None else None
        if bool(batch["silent"][i]):
            losses.append(silent_loss(predicted, target, item_logits, phonemes))
            continue
        frames = min(predicted.shape[0], target.shape[0])
        loss = torch.linalg.vector_norm(predicted[:frames] - target[:frames], dim=-1).mean()
        if phonemes is not None and bool((phonemes[:frames] != PHONEME_PAD).any()):
            loss = loss + phoneme_weight * F.cross_entropy(item_logits[:frames], phonemes[:frames], ignore_index=PHONEME_PAD)
        losses.append(loss)
    losses = torch.stack(losses)
    if logits is not None and not bool(batch["has_phonemes"].any()):
        # DDP needs a gradient for every parameter at every step: a zero one for
        # the phoneme head when no utterance in the batch has labels.
        losses = losses + 0.0 * logits.float().sum()
    return losses


def start_acoustic_head_at_mean(model: SpeechModel, target_mean: torch.Tensor) -> None:
    """Set the bias of ``model``'s acoustic head to ``target_mean`` (n_mfcc,), the mean training frame.

    MFCC sit far from zero (c0 averages about -64 on the synthetic corpus):
    training then begins at the "predict the mean" baseline instead of
    spending its first epochs moving the bias. A resumed run overwrites this
    with its checkpoint (restored after ``setup``).
    """
    with torch.no_grad():
        model.heads["acoustic"].bias.copy_(target_mean)


class ProductionTask(TaskModule):
    """Training of a :class:`SpeechModel` with ``acoustic`` (and ``phoneme``) heads."""

    monitor = "val/distance"
    monitor_mode = "min"

    def __init__(self, model: SpeechModel, config: ProductionConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self.max_shift = config.data.max_shift
        self.phoneme_weight = config.loss.phoneme_weight
        self._scores: list[tuple[str, float, float]] = []

    def setup(self, stage: str) -> None:
        if stage == "fit":
            start_acoustic_head_at_mean(self.model, self.trainer.datamodule.target_mean())

    def _losses(self, batch: dict) -> tuple[dict, torch.Tensor, torch.Tensor]:
        check_emg_batch(batch, self.model.config.emg_channels)
        outputs = self.model(batch["emg"], batch["emg_lengths"])
        if "acoustic" not in outputs:
            raise ValueError("production needs a model with an 'acoustic' output (model.outputs)")
        frames = self.model.frame_lengths(batch["emg_lengths"])
        return outputs, frames, production_losses(outputs, frames, batch, self.phoneme_weight)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        batch = {**batch, "emg": shift_emg(batch["emg"], batch["emg_lengths"], self.max_shift)}
        _, _, losses = self._losses(batch)
        loss = losses.mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(losses))
        silent = batch["silent"].to(losses.device)
        if silent.any():
            self.log("train/silent_loss", losses[silent].mean(), batch_size=int(silent.sum()))
        if (~silent).any():
            self.log("train/voiced_loss", losses[~silent].mean(), batch_size=int((~silent).sum()))
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        outputs, frames, losses = self._losses(batch)
        self.log(f"{stage}/loss", losses.mean(), sync_dist=True, batch_size=len(losses))
        mean = self.trainer.datamodule.target_mean().to(self.device)
        acoustic = outputs["acoustic"].float()
        for i, utterance in enumerate(batch["ids"]):
            predicted = acoustic[i, : int(frames[i])]
            target = batch["target_features"][i, : int(batch["target_lengths"][i])]
            distance = aligned_distance(predicted, target).item()
            baseline = aligned_distance(mean.expand(predicted.shape[0], -1), target).item()
            self._scores.append((utterance, distance, baseline))

    def report(self, stage: str) -> None:
        rows = self.gather_rows(self._scores)
        self._scores = []
        distance = sum(r[1] for r in rows) / len(rows)
        baseline = sum(r[2] for r in rows) / len(rows)
        self.log(f"{stage}/distance", distance, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/mean_baseline", baseline, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/distance_ratio", distance / baseline, sync_dist=True)


TASK = Task(schema=ProductionConfig, build_model=build_speech_model, train=partial(train_speech_task, ProductionTask))
