"""Recognition: EMG -> characters with CTC (a-z, 0-9, space; blank 0).

Validation and test decode greedily (best path) and report corpus-level
CER and WER on the silent utterances; the best weights are those of the
lowest validation CER (more sensitive than WER early in training, and what
beam search with a language model builds on).

With ``loss.auxiliary_weight`` > 0 the model also learns the production
targets (MFCC of the utterance's audio, or of its voiced twin along the DTW
path for a silent one, plus frame phonemes where aligned) through its
``acoustic`` and ``phoneme`` heads, and that loss, times the weight, is
added to CTC's. CTC's only signal is the character sequence of a whole
utterance; the production targets say, frame by frame, what is being
articulated (Gaddy & Klein 2021 train their recogniser's encoder on the
same frame targets; docs/measurements.md, *Recognition with frame targets*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from silentspeech.decoding.beam import greedy_decode
from silentspeech.metrics import error_rates
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.tasks import Task
from silentspeech.tasks.engine import RunConfig, TaskModule
from silentspeech.tasks.production import production_losses, start_acoustic_head_at_mean
from silentspeech.tasks.speech_data import (
    SpeechDataConfig,
    build_speech_model,
    check_emg_batch,
    shift_emg,
    train_speech_task,
)
from silentspeech.text import BLANK


@dataclass
class RecognitionLossConfig:
    #: Weight of the production loss (frame MFCC and phonemes) added to CTC's; 0 = CTC alone.
    #: Above 0 the model needs the ``acoustic`` and ``phoneme`` outputs besides ``ctc``.
    auxiliary_weight: float = 0.0
    #: Weight of the phoneme term inside that production loss (as ``loss.phoneme_weight`` of production).
    phoneme_weight: float = 0.5


@dataclass
class RecognitionConfig(RunConfig):
    """Recipe schema of ``task: recognition``."""

    task: str = "recognition"
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(outputs=["ctc"]))
    loss: RecognitionLossConfig = field(default_factory=RecognitionLossConfig)


def ctc_log_probs(model: SpeechModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame log-probabilities (B, frames, 38) in float32 and valid frames per item (B,)."""
    return ctc_outputs(model, batch)[:2]


def ctc_outputs(model: SpeechModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """:func:`ctc_log_probs` and the model's whole output dict (for the auxiliary heads)."""
    check_emg_batch(batch, model.config.emg_channels)
    outputs = model(batch["emg"], batch["emg_lengths"])
    if "ctc_logits" not in outputs:
        raise ValueError("recognition needs a model with a 'ctc' output (model.outputs)")
    return F.log_softmax(outputs["ctc_logits"].float(), dim=-1), model.frame_lengths(batch["emg_lengths"]), outputs


def ctc_loss(log_probs: torch.Tensor, frame_lengths: torch.Tensor, batch: dict) -> torch.Tensor:
    """Mean CTC loss per target character over the batch (impossible alignments count as zero)."""
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        batch["text_ids"],
        frame_lengths,
        batch["text_lengths"],
        blank=BLANK,
        zero_infinity=True,
    )


class RecognitionTask(TaskModule):
    """CTC training of a :class:`SpeechModel` with a ``ctc`` head; greedy CER/WER on dev and test."""

    monitor = "val/cer"
    monitor_mode = "min"

    def __init__(self, model: SpeechModel, config: RecognitionConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self.max_shift = config.data.max_shift
        # Subclasses for other inputs (task: audio_asr) have no loss section: CTC alone.
        self.loss_config = getattr(config, "loss", None) or RecognitionLossConfig()
        if self.loss_config.auxiliary_weight > 0 and not {"acoustic", "phoneme"} <= set(model.config.outputs):
            raise ValueError(
                f"loss.auxiliary_weight={self.loss_config.auxiliary_weight:g} needs model.outputs to hold 'acoustic' and 'phoneme' "
                f"besides 'ctc' (got {list(model.config.outputs)})"
            )
        self._decoded: list[tuple[str, str, str]] = []

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.loss_config.auxiliary_weight > 0:
            start_acoustic_head_at_mean(self.model, self.trainer.datamodule.target_mean())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        batch = {**batch, "emg": shift_emg(batch["emg"], batch["emg_lengths"], self.max_shift)}
        log_probs, frames, outputs = ctc_outputs(self.model, batch)
        loss = ctc_loss(log_probs, frames, batch)
        size = len(batch["ids"])
        if self.loss_config.auxiliary_weight > 0:
            auxiliary = production_losses(outputs, frames, batch, self.loss_config.phoneme_weight).mean()
            self.log("train/ctc_loss", loss, batch_size=size)
            self.log("train/auxiliary_loss", auxiliary, batch_size=size)
            loss = loss + self.loss_config.auxiliary_weight * auxiliary
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        log_probs, frames = ctc_log_probs(self.model, batch)
        self.log(f"{stage}/loss", ctc_loss(log_probs, frames, batch), sync_dist=True, batch_size=len(batch["ids"]))
        hypotheses = greedy_decode(log_probs, frames)
        self._decoded.extend(zip(batch["ids"], batch["texts"], hypotheses))

    def report(self, stage: str) -> None:
        rows = self.gather_rows(self._decoded)
        self._decoded = []
        rates = error_rates([r for _, r, _ in rows], [h for _, _, h in rows])
        self.log(f"{stage}/cer", rates.cer, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/wer", rates.wer, prog_bar=True, sync_dist=True)


TASK = Task(schema=RecognitionConfig, build_model=build_speech_model, train=partial(train_speech_task, RecognitionTask))
