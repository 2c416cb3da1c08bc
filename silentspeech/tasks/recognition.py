"""Recognition: EMG -> characters with CTC (a-z, 0-9, space; blank 0).

Validation and test decode greedily (best path) and report corpus-level
CER and WER on the silent utterances; the best weights are those of the
lowest validation CER (more sensitive than WER early in training, and what
beam search with a language model builds on).
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
from silentspeech.tasks.speech_data import (
    SpeechDataConfig,
    build_speech_model,
    check_emg_batch,
    shift_emg,
    train_speech_task,
)
from silentspeech.text import BLANK


@dataclass
class RecognitionConfig(RunConfig):
    """Recipe schema of ``task: recognition``."""

    task: str = "recognition"
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(outputs=["ctc"]))


def ctc_log_probs(model: SpeechModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame log-probabilities (B, frames, 38) in float32 and valid frames per item (B,)."""
    check_emg_batch(batch, model.config.emg_channels)
    outputs = model(batch["emg"], batch["emg_lengths"])
    if "ctc_logits" not in outputs:
        raise ValueError("recognition needs a model with a 'ctc' output (model.outputs)")
    return F.log_softmax(outputs["ctc_logits"].float(), dim=-1), model.frame_lengths(batch["emg_lengths"])


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
        self._decoded: list[tuple[str, str, str]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        batch = {**batch, "emg": shift_emg(batch["emg"], batch["emg_lengths"], self.max_shift)}
        log_probs, frames = ctc_log_probs(self.model, batch)
        loss = ctc_loss(log_probs, frames, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
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
