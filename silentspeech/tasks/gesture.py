"""Gesture classification: TinyMyo + the classification head on windows of a gesture dataset.

Fine-tuning follows TinyMyo (Fasulo et al. 2025; docs/design.md, *Downstream
heads and published results*) (AdamW lr 5e-4, label smoothing 0.1,
the best weights by validation loss standing in for early stopping).
``model.mode`` chooses a full fine-tune (``finetune``) or a linear probe
(``probe``: encoder frozen, only the head trains); ``model.pretrained``
names a TinyMyo checkpoint (a released file, a ``tinymyo.safetensors``
from ``task: pretrain``, or that pretraining run's folder), empty trains
from scratch.

Small real datasets (a few hundred recordings) need augmentation
(``augment``: random overall amplitude, per-channel gain and time shift of
each training window, drawn anew every step) and a small encoder.

Validation and test report window accuracy and macro-F1; the test also
writes ``confusion_test.png`` into the run directory. Beside the network,
the classical baseline (``classic``: Hudgins features and a random forest or
LDA, :mod:`silentspeech.models.classic`) is fitted on the same training and
validation windows and scored on the same test windows
(``classic_metrics.json``); ``comparison.md`` shows both. The data and model
helpers here serve the kinematics task too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_only

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.data.cache import LengthBucketBatchSampler
from silentspeech.data.gestures.recipe import GestureData, GestureDataConfig, load_gesture_data
from silentspeech.data.gestures.windows import GestureWindows
from silentspeech.figures import confusion_figure, save_figure
from silentspeech.metrics import ClassificationScores, classification_scores
from silentspeech.models.classic import ClassicConfig, ClassicModel
from silentspeech.models.heads import ConvGestureClassifier, FeatureGestureClassifier, GestureClassifier
from silentspeech.models.tinymyo import TinyMyoConfig, TinyMyoEncoder, load_tinymyo
from silentspeech.runs import CLASSIC_METRICS, COMPARISON_FILE, TEST_METRICS
from silentspeech.tables import markdown_table
from silentspeech.tasks import Task
from silentspeech.tasks.engine import OptimConfig, RunConfig, TaskModule, TrainerConfig, fit, training_loader

log = logging.getLogger(__name__)

MODES = ("finetune", "probe")
CONFUSION_FILE = "confusion_test.png"


@dataclass
class DownstreamModelConfig:
    """The encoder under a downstream head and how it is trained."""

    #: Architecture when training from scratch; with ``pretrained`` the checkpoint's
    #: (only ``channels``, ``dropout`` and ``drop_path`` are taken from here). Channels
    #: are set to the data's at training time.
    encoder: TinyMyoConfig = field(default_factory=TinyMyoConfig)
    #: TinyMyo checkpoint or pretraining run folder to start from ("" = from scratch).
    pretrained: str = ""
    #: ``finetune`` (everything trains) or ``probe`` (encoder frozen: a linear probe).
    mode: str = "finetune"


FRONTENDS = ("patches", "conv", "features")


@dataclass
class GestureModelConfig(DownstreamModelConfig):
    label_smoothing: float = 0.1
    #: ``patches`` (TinyMyo's patch tokens, :class:`GestureClassifier`), ``conv`` (the speech
    #: model's convolutional front end before the blocks, :class:`ConvGestureClassifier`) or
    #: ``features`` (Hudgins features per frame before the blocks, :class:`FeatureGestureClassifier`).
    frontend: str = "patches"
    #: Channels of the ``conv`` front end.
    conv_width: int = 32
    #: Samples per frame and between frames of the ``features`` front end.
    feature_frame: int = 20
    feature_hop: int = 10
    #: Filled in from the data at training time, so config.yaml describes the trained model.
    class_names: list[str] = field(default_factory=list)


@dataclass
class AugmentConfig:
    """Random changes to each training window (0 = off), drawn anew every step."""

    #: Overall amplitude: a factor ``exp(u)``, ``u`` uniform in +-``gain`` (0.4: x0.67..x1.5).
    gain: float = 0.0
    #: Per-channel gain on top, the same way (electrode contact changes between sessions).
    channel_gain: float = 0.0
    #: Circular time shift, uniform in +-``shift`` samples (onset jitter of a word or gesture).
    shift: int = 0


def augment(emg: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """A randomly scaled and shifted copy of ``emg`` (B, C, T), from torch's global generator."""
    batch, channels, samples = emg.shape
    if config.gain > 0:
        emg = emg * torch.empty(batch, 1, 1, device=emg.device).uniform_(-config.gain, config.gain).exp()
    if config.channel_gain > 0:
        emg = emg * torch.empty(batch, channels, 1, device=emg.device).uniform_(-config.channel_gain, config.channel_gain).exp()
    if config.shift > 0:
        shifts = torch.randint(-config.shift, config.shift + 1, (batch, 1), device=emg.device)
        index = (torch.arange(samples, device=emg.device) - shifts) % samples
        emg = emg.gather(2, index[:, None, :].expand(batch, channels, samples))
    return emg


@dataclass
class GestureConfig(RunConfig):
    """Recipe schema of ``task: gesture``."""

    task: str = "gesture"
    data: GestureDataConfig = field(default_factory=GestureDataConfig)
    model: GestureModelConfig = field(default_factory=GestureModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: The classical baseline fitted beside the network (``classic.classifier=none``: skip it).
    classic: ClassicConfig = field(default_factory=ClassicConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-4, warmup_steps=100))
    batch_size: int = 64
    workers: int = 0


def pretrained_file(path: str) -> Path:
    """A TinyMyo checkpoint path; a pretraining run folder stands for its ``tinymyo.safetensors``."""
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "tinymyo.safetensors"
    if not candidate.is_file():
        raise FileNotFoundError(f"{candidate}: no TinyMyo checkpoint (model.pretrained)")
    return candidate


def check_model_config(config: DownstreamModelConfig) -> None:
    """Fail early on a bad ``model.mode`` or a missing ``model.pretrained`` file."""
    if config.mode not in MODES:
        raise ValueError(f"model.mode must be one of {MODES}, got {config.mode!r}")
    if config.pretrained:
        pretrained_file(config.pretrained)


def build_encoder(config: DownstreamModelConfig) -> TinyMyoEncoder:
    """A fresh encoder from ``config.encoder``, or the pretrained one loaded into that architecture."""
    check_model_config(config)
    if not config.pretrained:
        return TinyMyoEncoder(config.encoder)
    encoder, report = load_tinymyo(pretrained_file(config.pretrained), config.encoder)
    log.info("encoder from %s: %d tensors loaded; unused: %s", report.path, len(report.loaded), ", ".join(report.unused) or "none")
    return encoder


def adopt_data_shape(config: DownstreamModelConfig, channels: int) -> None:
    """Record the data's channel count, and a pretrained checkpoint's architecture, in ``config.encoder``.

    :func:`build_encoder` then builds exactly that, and config.yaml describes
    the trained model, so ``load_checkpoint`` rebuilds it without the
    pretrained file.
    """
    config.encoder.channels = channels
    if config.pretrained:
        saved = load_tinymyo(pretrained_file(config.pretrained))[1].config
        config.encoder = dataclasses.replace(
            saved, channels=channels, dropout=config.encoder.dropout, drop_path=config.encoder.drop_path
        )


GestureModel = GestureClassifier | ConvGestureClassifier | FeatureGestureClassifier


def build_model(config: GestureConfig) -> GestureModel:
    """The classifier a recipe describes (``model.class_names`` must be filled)."""
    model = config.model
    if not model.class_names:
        raise ValueError("model.class_names is empty: it is filled from the data when training starts")
    if model.frontend not in FRONTENDS:
        raise ValueError(f"model.frontend must be one of {FRONTENDS}, got {model.frontend!r}")
    probe = model.mode == "probe"
    classes = len(model.class_names)
    if model.frontend == "conv":
        return ConvGestureClassifier(build_encoder(model), model.encoder.channels, model.conv_width, classes, probe)
    if model.frontend == "features":
        if model.feature_frame < 3 or model.feature_hop < 1:
            raise ValueError(f"model.feature_frame must exceed 2 and model.feature_hop be positive, got {model.feature_frame}, {model.feature_hop}")
        return FeatureGestureClassifier(
            build_encoder(model), model.encoder.channels, classes, model.feature_frame, model.feature_hop, probe
        )
    return GestureClassifier(build_encoder(model), classes, probe)


class GestureWindowData(pl.LightningDataModule):
    """Loaders over the windows of a :class:`GestureData` (shuffled, resumable training batches)."""

    def __init__(self, data: GestureData, batch_size: int, trainer_config: TrainerConfig, workers: int = 0, seed: int = 0):
        super().__init__()
        self.data, self.batch_size, self.trainer_config, self.workers, self.seed = data, batch_size, trainer_config, workers, seed

    def _sampler(self, windows: GestureWindows, shuffle: bool) -> LengthBucketBatchSampler:
        # All windows have one length, so the length-capped sampler yields plain batches of
        # batch_size, with the engine's resumable order and DDP sharding.
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        lengths = [windows.length] * len(windows)
        return LengthBucketBatchSampler(lengths, self.batch_size * windows.length, shuffle, self.seed, rank, world)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return training_loader(self.data.train, self._sampler(self.data.train, True), self.trainer_config, None, self.workers)

    def _eval(self, windows: GestureWindows) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(windows, batch_sampler=self._sampler(windows, False), num_workers=self.workers)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._eval(self.data.val)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        if len(self.data.test) == 0:
            raise ValueError("the test split holds no windows; set trainer.test=false or give test units (data.test)")
        return self._eval(self.data.test)


class GestureTask(TaskModule):
    """Cross-entropy (with label smoothing) training; accuracy and macro-F1 on validation and test."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, model: GestureModel, config: GestureConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self.label_smoothing = config.model.label_smoothing
        self.augment = config.augment
        self.class_names = list(config.model.class_names)
        self.run_dir = Path(config.out)
        self._rows: list[tuple[int, int, int]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.model(augment(batch["emg"], self.augment))
        loss = F.cross_entropy(logits.float(), batch["label"], label_smoothing=self.label_smoothing)
        size = len(batch["label"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/accuracy", (logits.argmax(-1) == batch["label"]).float().mean(), batch_size=size)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        logits = self.model(batch["emg"]).float()
        self.log(f"{stage}/loss", F.cross_entropy(logits, batch["label"]), sync_dist=True, batch_size=len(batch["label"]))
        self._rows += zip(batch["index"].tolist(), batch["label"].tolist(), logits.argmax(-1).tolist())

    def report(self, stage: str) -> None:
        rows = self.gather_rows(self._rows)
        self._rows = []
        scores = classification_scores([r[1] for r in rows], [r[2] for r in rows], len(self.class_names))
        self.log(f"{stage}/accuracy", scores.accuracy, prog_bar=True)
        self.log(f"{stage}/macro_f1", scores.macro_f1)
        if stage == "test" and self.trainer.is_global_zero:
            title = f"test: accuracy {scores.accuracy:.3f}, macro-F1 {scores.macro_f1:.3f} ({scores.windows} windows)"
            save_figure(confusion_figure(scores.confusion, self.class_names, title), self.run_dir / CONFUSION_FILE)


def check_window(config: DownstreamModelConfig, window: int) -> None:
    """The window must cut into whole patches."""
    patch_len = config.encoder.patch_len
    if window % patch_len:
        raise ValueError(f"data.window={window} is not a multiple of the encoder's patch length {patch_len}")


def prepare_gesture_data(config: GestureConfig) -> tuple[GestureWindowData, GestureData]:
    """The recipe's labelled windows, with their classes and channels recorded in ``config.model``."""
    check_model_config(config.model)
    data = load_gesture_data(config.data)
    return adopt_gesture_data(config, data), data


def adopt_gesture_data(config: GestureConfig, data: GestureData) -> GestureWindowData:
    """Loaders over ``data``, with its classes and channels recorded in ``config.model``."""
    check_model_config(config.model)
    if data.regression:
        raise ValueError(f"{config.data.dataset} is a regression dataset: classification needs classes (use task: kinematics)")
    config.model.class_names = list(data.class_names)
    adopt_data_shape(config.model, data.channels)
    check_window(config.model, config.data.window)
    if config.model.frontend == "features" and config.data.window < config.model.feature_frame:
        raise ValueError(f"data.window={config.data.window} is shorter than one feature frame (model.feature_frame={config.model.feature_frame})")
    return GestureWindowData(data, config.batch_size, config.trainer, config.workers, config.seed)


def fit_classic(config: ClassicConfig, data: GestureData, seed: int = 0) -> ClassificationScores:
    """The classical baseline fitted on ``data``'s training and validation windows, scored on its test windows.

    It has no use for a validation split (nothing to stop early), so those
    labelled windows train it too.
    """
    train = [data.train] + ([data.val] if len(data.val) else [])
    model = ClassicModel(config, seed).fit(
        np.concatenate([w.stacked() for w in train]),
        np.concatenate([w.valid_lengths() for w in train]),
        np.concatenate([w.labels for w in train]),
    )
    predicted = model.predict(data.test.stacked(), data.test.valid_lengths())
    return classification_scores(data.test.labels, predicted, len(data.class_names))


def write_comparison(run_dir: Path, config: GestureConfig, data: GestureData) -> None:
    """Fit the classical baseline on the run's split; write ``classic_metrics.json`` and ``comparison.md``."""
    network = json.loads((run_dir / TEST_METRICS).read_text())
    rows = [("network", network["test/accuracy"], network["test/macro_f1"])]
    if config.classic.classifier != "none" and len(data.test):
        scores = fit_classic(config.classic, data, config.seed)
        atomic_write_json(
            run_dir / CLASSIC_METRICS,
            {"classifier": config.classic.classifier, "test/accuracy": scores.accuracy, "test/macro_f1": scores.macro_f1},
        )
        rows.append((f"classical ({config.classic.classifier})", scores.accuracy, scores.macro_f1))
    table = markdown_table(["model", "accuracy", "macro-F1"], [[n, f"{100 * a:.1f} %", f"{f:.3f}"] for n, a, f in rows], "lrr")
    text = f"Test split: {len(data.test)} windows, {len(data.class_names)} classes.\n\n{table}\n"
    atomic_write_text(run_dir / COMPARISON_FILE, text)
    log.info("%s:\n%s", run_dir / COMPARISON_FILE, text)


def train(config: GestureConfig, data: GestureData | None = None) -> Path:
    """Fine-tune (or probe) a gesture classifier, then fit the classical baseline beside it; returns the run directory.

    ``data`` (default: loaded as the recipe says) lets cross-validation pass each fold's windows.
    """
    if data is None:
        windows, data = prepare_gesture_data(config)
    else:
        windows = adopt_gesture_data(config, data)
    run_dir = fit(config, lambda: GestureTask(build_model(config), config), windows)
    if config.trainer.test and rank_zero_only.rank == 0:
        write_comparison(run_dir, config, data)
    return run_dir


TASK = Task(schema=GestureConfig, build_model=build_model, train=train)
