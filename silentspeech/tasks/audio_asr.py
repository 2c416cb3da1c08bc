"""Audio recognition: acoustic features of speech audio -> characters with CTC.

The project's own ASR for scoring speech production: ``silentspeech
evaluate-production`` synthesises audio from EMG, and this model transcribes
it. It is trained on the voiced audio of a prepared cache (the 80 MFCC per
86.13 Hz frame that the cache stores), so it needs no download; on the
synthetic corpus it is the only ASR that knows the synthetic voice.
Speechbrain's pretrained ASR is the independent alternative on real speech.

Model: per-frame LayerNorm, a stride-2 convolution (86.13 -> 43.07 Hz, still
about three frames per character of read speech), sinusoidal positions, a
small pre-LayerNorm Transformer (``torch.nn.TransformerEncoder``) and a
Linear CTC head over ``text.LABELS``. Training reads the train split's
``voiced`` utterances; validation and test read the dev/test silent
utterances' targets, i.e. the audio of their voiced twins (the model never
sees EMG). Best weights: lowest validation CER.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from silentspeech.decoding.beam import greedy_decode
from silentspeech.features import acoustic_features
from silentspeech.tasks import Task
from silentspeech.tasks.engine import RunConfig, fit
from silentspeech.tasks.recognition import RecognitionTask, ctc_loss
from silentspeech.tasks.speech_data import SpeechData, SpeechDataConfig
from silentspeech.text import NUM_CLASSES

#: Frames of the input per output frame.
DOWNSAMPLING = 2


@dataclass
class AudioRecognizerConfig:
    """Hyper-parameters of :class:`AudioRecognizer`."""

    #: Acoustic features per input frame (MFCC coefficients, as in the cache).
    n_mfcc: int = 80
    dim: int = 144
    depth: int = 3
    heads: int = 4
    mlp_dim: int = 288
    dropout: float = 0.1
    #: Kernel of the stride-2 input convolution (frames).
    kernel: int = 5


class AudioRecognizer(nn.Module):
    """MFCC frames (B, N, n_mfcc) at 86.13 Hz -> CTC logits (B, ceil(N / 2), 38)."""

    def __init__(self, config: AudioRecognizerConfig) -> None:
        super().__init__()
        self.config = config
        self.input_norm = nn.LayerNorm(config.n_mfcc)
        self.conv = nn.Conv1d(config.n_mfcc, config.dim, config.kernel, stride=DOWNSAMPLING, padding=config.kernel // 2)
        layer = nn.TransformerEncoderLayer(
            config.dim, config.heads, config.mlp_dim, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.depth, norm=nn.LayerNorm(config.dim), enable_nested_tensor=False)
        self.head = nn.Linear(config.dim, NUM_CLASSES)

    @staticmethod
    def frame_lengths(lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per item for ``lengths`` (B,) input frames: ceil(N / 2)."""
        return (lengths + DOWNSAMPLING - 1) // DOWNSAMPLING

    def positions(self, frames: int, device: torch.device) -> torch.Tensor:
        """Sinusoidal position table (frames, dim)."""
        position = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
        rates = torch.exp(torch.arange(0, self.config.dim, 2, device=device) * (-math.log(10000.0) / self.config.dim))
        table = torch.zeros(frames, self.config.dim, device=device)
        table[:, 0::2] = torch.sin(position * rates)
        table[:, 1::2] = torch.cos(position * rates[: self.config.dim // 2])
        return table

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``features`` (B, N, n_mfcc), zero-padded after ``lengths`` (B,) valid frames -> ``{"ctc_logits": (B, N', 38)}``."""
        if features.dim() != 3 or features.shape[2] != self.config.n_mfcc:
            raise ValueError(f"AudioRecognizer expects features (batch, frames, {self.config.n_mfcc}); got shape {tuple(features.shape)}")
        x = self.input_norm(features)
        padding_mask = None
        if lengths is not None:
            lengths = lengths.to(x.device)
            # Padding frames are zeroed after the norm, so the convolution sees what a lone item's zero padding gives.
            x = x * (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None])[..., None].to(x.dtype)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        if lengths is not None:
            padding_mask = torch.arange(x.shape[1], device=x.device)[None] >= self.frame_lengths(lengths)[:, None]
        hidden = self.encoder(x + self.positions(x.shape[1], x.device), src_key_padding_mask=padding_mask)
        return {"ctc_logits": self.head(hidden)}


@torch.inference_mode()
def transcribe_audio(model: AudioRecognizer, audios: list[np.ndarray], batch_size: int = 8) -> list[str]:
    """Greedy CTC transcripts of audio clips (each ``(samples,)`` float at 22050 Hz)."""
    device = next(model.parameters()).device
    texts: list[str] = []
    for start in range(0, len(audios), batch_size):
        feats = [torch.from_numpy(acoustic_features(a, model.config.n_mfcc)) for a in audios[start : start + batch_size]]
        lengths = torch.tensor([f.shape[0] for f in feats])
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
        log_probs = F.log_softmax(model(padded, lengths.to(device))["ctc_logits"].float(), dim=-1)
        texts.extend(greedy_decode(log_probs, model.frame_lengths(lengths)))
    return texts


@dataclass
class AudioASRConfig(RunConfig):
    """Recipe schema of ``task: audio_asr``."""

    task: str = "audio_asr"
    data: SpeechDataConfig = field(default_factory=lambda: SpeechDataConfig(train_kinds=["voiced"]))
    model: AudioRecognizerConfig = field(default_factory=AudioRecognizerConfig)


class AudioASRTask(RecognitionTask):
    """CTC training of an :class:`AudioRecognizer` on cached voiced-audio features; greedy CER/WER as in recognition."""

    def log_probs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame log-probabilities (B, N', 38) of the batch's target audio features and valid frames (B,)."""
        logits = self.model(batch["target_features"], batch["target_lengths"])["ctc_logits"]
        return F.log_softmax(logits.float(), dim=-1), self.model.frame_lengths(batch["target_lengths"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        log_probs, frames = self.log_probs(batch)
        loss = ctc_loss(log_probs, frames, batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        log_probs, frames = self.log_probs(batch)
        self.log(f"{stage}/loss", ctc_loss(log_probs, frames, batch), sync_dist=True, batch_size=len(batch["ids"]))
        self._decoded.extend(zip(batch["ids"], batch["texts"], greedy_decode(log_probs, frames)))


def build_audio_recognizer(config: AudioASRConfig) -> AudioRecognizer:
    """The :class:`AudioRecognizer` an ``audio_asr`` recipe describes."""
    return AudioRecognizer(config.model)


def train_audio_asr(config: AudioASRConfig) -> Path:
    """Train the recipe's audio recogniser on its cache; returns the run directory."""
    data = SpeechData(config.data, config.trainer, n_mfcc=config.model.n_mfcc, seed=config.seed)
    return fit(config, lambda: AudioASRTask(build_audio_recognizer(config), config), data)


TASK = Task(schema=AudioASRConfig, build_model=build_audio_recognizer, train=train_audio_asr)
