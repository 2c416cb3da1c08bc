"""Hand kinematics regression: TinyMyo + the DB8 regression head.

Head and protocol are TinyMyo's (Fasulo et al. 2025; docs/design.md, *Downstream
heads and published results*).

The model predicts every sample of the window's targets (NinaPro DB8: five
degrees of actuation, in degrees). Targets are standardised with training
statistics kept inside the model (:class:`KinematicsRegressor` buffers), so
the loss (mean squared error) weighs the outputs evenly while predictions
come out in the targets' own units. Validation and test report MAE, RMSE
and R2, scored on up to :data:`SCORED_PER_WINDOW` evenly spaced samples of
each window (which keeps evaluation memory bounded on long recordings).
``model.mode`` and ``model.pretrained`` work as in the gesture task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from silentspeech.data.gestures.recipe import GestureDataConfig, load_gesture_data
from silentspeech.metrics import regression_scores
from silentspeech.models.heads import KinematicsRegressor
from silentspeech.tasks import Task
from silentspeech.tasks.engine import OptimConfig, RunConfig, TaskModule, fit
from silentspeech.tasks.gesture import (
    DownstreamModelConfig,
    GestureWindowData,
    adopt_data_shape,
    build_encoder,
    check_model_config,
    check_window,
)

#: Samples per window that enter the validation and test scores.
SCORED_PER_WINDOW = 50


@dataclass
class KinematicsModelConfig(DownstreamModelConfig):
    hidden: int = 256  #: width of the regression head's convolutions
    dropout: float = 0.1  #: dropout after the head's first convolution
    #: Filled in from the data at training time.
    target_names: list[str] = field(default_factory=list)


@dataclass
class KinematicsConfig(RunConfig):
    """Recipe schema of ``task: kinematics``."""

    task: str = "kinematics"
    data: GestureDataConfig = field(default_factory=lambda: GestureDataConfig(dataset="ninapro_db8"))
    model: KinematicsModelConfig = field(default_factory=KinematicsModelConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-4, warmup_steps=100))
    batch_size: int = 64
    workers: int = 0


def build_model(config: KinematicsConfig) -> KinematicsRegressor:
    """The regressor a recipe describes (``model.target_names`` must be filled)."""
    if not config.model.target_names:
        raise ValueError("model.target_names is empty: it is filled from the data when training starts")
    m = config.model
    return KinematicsRegressor(build_encoder(m), len(m.target_names), m.hidden, m.dropout, m.mode == "probe")


class KinematicsTask(TaskModule):
    """MSE on standardised targets; MAE, RMSE and R2 (target units) on validation and test."""

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(self, model: KinematicsRegressor, config: KinematicsConfig) -> None:
        super().__init__(model, config.optim, config.seed)
        self._rows: list[tuple[int, np.ndarray, np.ndarray]] = []

    def _loss(self, predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scale = self.model.target_std
        return F.mse_loss(predicted.float() / scale, targets / scale)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(self.model(batch["emg"]), batch["targets"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["targets"]))
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        predicted, targets = self.model(batch["emg"]).float(), batch["targets"]
        self.log(f"{stage}/loss", self._loss(predicted, targets), sync_dist=True, batch_size=len(targets))
        picks = torch.linspace(0, targets.shape[1] - 1, min(SCORED_PER_WINDOW, targets.shape[1])).round().long()
        for index, t, p in zip(batch["index"].tolist(), targets[:, picks].cpu().numpy(), predicted[:, picks].cpu().numpy()):
            self._rows.append((index, t, p))

    def report(self, stage: str) -> None:
        rows = self.gather_rows(self._rows)
        self._rows = []
        scores = regression_scores(np.concatenate([r[1] for r in rows]), np.concatenate([r[2] for r in rows]))
        self.log(f"{stage}/mae", scores.mae, prog_bar=True)
        self.log(f"{stage}/rmse", scores.rmse)
        self.log(f"{stage}/r2", scores.r2)


def train(config: KinematicsConfig) -> Path:
    """Fine-tune (or probe) a kinematics regressor; returns the run directory."""
    check_model_config(config.model)
    data = load_gesture_data(config.data)
    if not data.regression:
        raise ValueError(f"{config.data.dataset} has class labels, not continuous targets; use task: gesture")
    config.model.target_names = list(data.target_names)
    adopt_data_shape(config.model, data.channels)
    check_window(config.model, config.data.window)
    targets = np.concatenate([s.targets for s in data.train.segments])
    mean, std = targets.mean(axis=0), targets.std(axis=0)

    def build() -> KinematicsRegressor:
        model = build_model(config)
        model.set_target_statistics(torch.from_numpy(mean), torch.from_numpy(std))
        return model

    windows = GestureWindowData(data, config.batch_size, config.trainer, config.workers, config.seed)
    return fit(config, lambda: KinematicsTask(build(), config), windows)


TASK = Task(schema=KinematicsConfig, build_model=build_model, train=train)
