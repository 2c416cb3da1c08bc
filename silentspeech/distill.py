"""Knowledge distillation: train a small student to imitate a trained teacher.

Background: Mehlman et al. 2025 (TMLR) and Hinton et al. 2015; docs/design.md, *Distillation*.

``silentspeech distill TEACHER RECIPE`` trains the model of ``RECIPE`` (a
``gesture``, ``recognition`` or ``production`` recipe whose ``model``
section is the student) against the teacher run ``TEACHER`` of the same
task. The training loss of each batch is

    (1 - alpha) * hard + alpha * soft + hidden_weight * hidden

* ``hard``: the task's own loss on the labels (cross-entropy for gestures,
  CTC for recognition, the production distance for production);
* ``soft``: for class outputs, ``T^2 * KL(softmax(teacher / T) ||
  softmax(student / T))`` per item, averaged (gesture logits; CTC frame
  posteriors over the valid frames, blank included); ``T^2`` keeps its
  gradient on the scale of the hard loss whatever the temperature. For
  production, the mean squared error between the student's and the
  teacher's predicted acoustic features over the valid frames;
* ``hidden``: mean squared error between a learned linear projection of the
  student's last hidden states onto the teacher's width and the teacher's
  (speech models: encoder frames; gestures: channel-concatenated patch
  features). The projection is trained with the student and discarded.

Validation, test and checkpoints are the task's own: the run directory holds
the student as a plain run of its task (``config.yaml`` is the student
recipe without the ``distill`` section, so ``load_checkpoint`` and every
downstream tool read it as usual), plus ``distill.yaml`` (the distillation
settings) and ``report.md``: parameters and MACs per second of EMG of both
models, and both models' test metrics.

MACs are counted by torch's own ``torch.utils.flop_counter.FlopCounterMode``
(:func:`count_macs`), with attention on the math backend so that its two
products are counted on every device.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from silentspeech.atomic import atomic_write_text
from silentspeech.config import RecipeError, config_to_yaml, load_recipe, recipe_task
from silentspeech.preprocessing import EMG_RATE
from silentspeech.tables import markdown_table
from silentspeech.tasks import get_task, load_checkpoint
from silentspeech.tasks.engine import (
    TEST_METRICS,
    TaskModule,
    build_optimizer,
    fit,
    lr_factor,
    resolve_accelerator,
    resolve_precision,
)

log = logging.getLogger(__name__)

DISTILL_TASKS = ("gesture", "recognition", "production")
SETTINGS_FILE = "distill.yaml"
REPORT_FILE = "report.md"


@dataclass
class DistillConfig:
    """The ``distill`` section of a distillation recipe."""

    #: Weight of the soft (teacher) loss; the hard-label loss gets ``1 - alpha``.
    alpha: float = 0.5
    #: Softmax temperature of the KL term (class outputs; unused for production features).
    temperature: float = 2.0
    #: Weight of the hidden-state matching term (0 = off, no projection built).
    hidden_weight: float = 0.0


# --- losses -------------------------------------------------------------------


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, summed over classes, averaged over positions.

    ``student_logits``, ``teacher_logits``: (..., classes) unnormalised
    scores (gesture logits (B, K) or CTC frame logits (B, frames, 38));
    ``mask`` (...) bool: positions that count (default all). Scalar tensor.
    """
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_position = (teacher.exp() * (teacher - student)).sum(-1)
    return temperature**2 * masked_mean(per_position, mask)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (...) over the positions where ``mask`` (...) is True (all when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def frame_mask(frame_lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, frames) bool: True on each item's first ``frame_lengths`` (B,) frames."""
    return torch.arange(frames, device=frame_lengths.device)[None] < frame_lengths[:, None]


def hidden_mse(projection: nn.Module, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between ``projection(student_hidden)`` (B, N, d_s -> d_t) and ``teacher_hidden`` (B, N, d_t)."""
    per_position = (projection(student_hidden.float()) - teacher_hidden.float()).pow(2).mean(-1)
    return masked_mean(per_position, mask)


# --- cost ----------------------------------------------------------------------


def count_parameters(model: nn.Module) -> int:
    """Parameters a model holds (all of them: what inference needs)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, *inputs: Any) -> int:
    """Multiply-accumulates of one forward pass of ``model(*inputs)``: half the FLOPs torch's ``FlopCounterMode`` counts.

    Counted: matrix products (``nn.Linear``: in x out per row), convolutions
    (output elements x kernel size x input channels per group) and the two
    products of ``scaled_dot_product_attention`` (``2 x N^2 x dim`` per item),
    each of which FlopCounterMode counts as 2 FLOPs per MAC. Attention runs
    on the math backend here: FlopCounterMode has no formula for the fused
    CPU kernel, while the math backend's batched products it counts on any
    device. Norms, activations and softmax are not counted (they are a few
    percent at these sizes).
    """
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() // 2


def macs_per_second(model: nn.Module, channels: int, rate: float, samples: int) -> float:
    """MACs per second of EMG: one forward pass over ``samples`` zeros of ``channels`` channels at ``rate`` Hz."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        macs = count_macs(model, torch.zeros(1, channels, samples, device=device))
    finally:
        model.train(was_training)
    return macs * rate / samples


# --- the training modules --------------------------------------------------------


class Distillation:
    """Mixin over a task's :class:`TaskModule`: holds the frozen teacher and the hidden projection.

    The task module keeps its validation, test and checkpointing (only
    ``self.model``, the student, is saved as the run's weights); subclasses
    replace ``training_step`` with the distillation loss.
    """

    def attach_teacher(self, teacher: nn.Module, settings: DistillConfig, student_width: int, teacher_width: int) -> None:
        if not 0.0 <= settings.alpha <= 1.0:
            raise ValueError(f"distill.alpha must lie in [0, 1], got {settings.alpha}")
        if settings.temperature <= 0 or settings.hidden_weight < 0:
            raise ValueError(f"distill.temperature must be > 0 and distill.hidden_weight >= 0, got {settings.temperature}, {settings.hidden_weight}")
        self.settings = settings
        self.teacher = teacher.eval().requires_grad_(False)
        self.projection = nn.Linear(student_width, teacher_width) if settings.hidden_weight > 0 else None

    def train(self, mode: bool = True) -> "Distillation":
        super().train(mode)
        if hasattr(self, "teacher"):
            self.teacher.eval()  # the teacher's targets come without dropout
        return self

    def configure_optimizers(self) -> dict:
        # The projection trains with the student (TaskModule's optimiser sees only self.model).
        trainable = nn.ModuleList([self.model] + ([self.projection] if self.projection is not None else []))
        optimizer = build_optimizer(trainable, self.optim)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, self.optim, self.total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def combine(self, hard: torch.Tensor, soft: torch.Tensor, hidden: torch.Tensor | None, size: int) -> torch.Tensor:
        """The batch loss from its terms; each term is logged under ``train/``."""
        alpha = self.settings.alpha
        loss = (1.0 - alpha) * hard + alpha * soft
        self.log("train/hard_loss", hard, batch_size=size)
        self.log("train/soft_loss", soft, batch_size=size)
        if hidden is not None:
            loss = loss + self.settings.hidden_weight * hidden
            self.log("train/hidden_loss", hidden, batch_size=size)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        return loss


def _gesture_module(student: nn.Module, config: Any, teacher: nn.Module, settings: DistillConfig) -> TaskModule:
    from silentspeech.tasks.gesture import GestureTask

    class GestureDistillation(Distillation, GestureTask):
        """Gesture logits: label-smoothed cross-entropy mixed with KL to the teacher's softened logits."""

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            features = self.model.features(batch["emg"])  # (B, P, C * dim)
            logits = self.model.classifier(features.mean(dim=1))
            with torch.no_grad():
                teacher_features = self.teacher.features(batch["emg"])
                teacher_logits = self.teacher.classifier(teacher_features.mean(dim=1))
            hard = F.cross_entropy(logits.float(), batch["label"], label_smoothing=self.label_smoothing)
            soft = soft_target_kl(logits, teacher_logits, self.settings.temperature)
            hidden = hidden_mse(self.projection, features, teacher_features) if self.projection is not None else None
            size = len(batch["label"])
            self.log("train/accuracy", (logits.argmax(-1) == batch["label"]).float().mean(), batch_size=size)
            return self.combine(hard, soft, hidden, size)

    module = GestureDistillation(student, config)
    module.attach_teacher(teacher, settings, _feature_width(student), _feature_width(teacher))
    return module


def _feature_width(model: nn.Module) -> int:
    """Width of a gesture classifier's channel-concatenated features: channels x dim."""
    return model.encoder.config.channels * model.encoder.config.dim


def _speech_module(student: nn.Module, config: Any, teacher: nn.Module, settings: DistillConfig) -> TaskModule:
    from silentspeech.tasks.production import ProductionTask, production_losses
    from silentspeech.tasks.recognition import RecognitionTask, ctc_loss
    from silentspeech.tasks.speech_data import augment_emg, check_emg_batch

    def forward_both(self: Any, batch: dict, key: str) -> tuple[dict, dict, torch.Tensor, torch.Tensor]:
        check_emg_batch(batch, self.model.config.emg_channels)
        outputs = self.model(batch["emg"], batch["emg_lengths"])
        with torch.no_grad():
            teacher_outputs = self.teacher(batch["emg"], batch["emg_lengths"])
        for name, found in (("student", outputs), ("teacher", teacher_outputs)):
            if key not in found:
                raise ValueError(f"the {name} model has no {key!r} output (model.outputs)")
        frames = self.model.frame_lengths(batch["emg_lengths"])
        return outputs, teacher_outputs, frames, frame_mask(frames, outputs[key].shape[1])

    def hidden_term(self: Any, outputs: dict, teacher_outputs: dict, mask: torch.Tensor) -> torch.Tensor | None:
        if self.projection is None:
            return None
        return hidden_mse(self.projection, outputs["hidden"], teacher_outputs["hidden"], mask)

    class RecognitionDistillation(Distillation, RecognitionTask):
        """CTC mixed with KL to the teacher's softened frame posteriors (blank included)."""

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            batch = {**batch, "emg": augment_emg(batch["emg"], batch["emg_lengths"], self.data_config)}
            outputs, teacher_outputs, frames, mask = forward_both(self, batch, "ctc_logits")
            hard = ctc_loss(F.log_softmax(outputs["ctc_logits"].float(), dim=-1), frames, batch)
            soft = soft_target_kl(outputs["ctc_logits"], teacher_outputs["ctc_logits"], self.settings.temperature, mask)
            return self.combine(hard, soft, hidden_term(self, outputs, teacher_outputs, mask), len(batch["ids"]))

    class ProductionDistillation(Distillation, ProductionTask):
        """The production loss mixed with the squared error to the teacher's predicted features."""

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            batch = {**batch, "emg": augment_emg(batch["emg"], batch["emg_lengths"], self.data_config)}
            outputs, teacher_outputs, frames, mask = forward_both(self, batch, "acoustic")
            hard = production_losses(outputs, frames, batch, self.phoneme_weight).mean()
            squared = (outputs["acoustic"].float() - teacher_outputs["acoustic"].float()).pow(2).mean(-1)
            soft = masked_mean(squared, mask)
            return self.combine(hard, soft, hidden_term(self, outputs, teacher_outputs, mask), len(batch["ids"]))

    module_class = RecognitionDistillation if config.task == "recognition" else ProductionDistillation
    module = module_class(student, config)
    module.attach_teacher(teacher, settings, student.config.encoder.dim, teacher.config.encoder.dim)
    return module


# --- the run ----------------------------------------------------------------------


@dataclass
class DistillRun:
    """What :func:`distill` produced."""

    run_dir: Path
    teacher_parameters: int
    student_parameters: int
    teacher_macs_per_second: float
    student_macs_per_second: float
    teacher_metrics: dict[str, float]
    student_metrics: dict[str, float]

    @property
    def parameter_ratio(self) -> float:
        return self.teacher_parameters / self.student_parameters


def distill_schema(task: str) -> type:
    """The recipe schema of distilling ``task``: the task's own plus a ``distill`` section."""
    if task not in DISTILL_TASKS:
        raise RecipeError(f"distillation supports tasks {', '.join(DISTILL_TASKS)}; the recipe is a {task!r} recipe")
    schema = get_task(task).schema
    return dataclasses.make_dataclass(
        f"Distill{schema.__name__}", [("distill", DistillConfig, field(default_factory=DistillConfig))], bases=(schema,)
    )


def _check_pair(task: str, student_config: Any, teacher_config: Any, hidden: bool) -> None:
    """Refuse teacher/student pairs whose outputs cannot be compared position by position."""
    if task == "gesture":
        teacher_encoder, student_encoder = teacher_config.model.encoder, student_config.model.encoder
        if teacher_encoder.channels != student_encoder.channels:
            raise ValueError(f"the teacher reads {teacher_encoder.channels} EMG channels, the data have {student_encoder.channels}")
        if list(teacher_config.model.class_names) != list(student_config.model.class_names):
            raise ValueError(f"the teacher's classes {teacher_config.model.class_names} differ from the data's {student_config.model.class_names}")
        if hidden and teacher_encoder.patch_len != student_encoder.patch_len:
            raise ValueError(f"hidden matching needs equal patch lengths (teacher {teacher_encoder.patch_len}, student {student_encoder.patch_len})")
    else:
        if teacher_config.model.emg_channels != student_config.model.emg_channels:
            raise ValueError(f"the teacher reads {teacher_config.model.emg_channels} EMG channels, the student {student_config.model.emg_channels}")
        if task == "production" and teacher_config.model.n_mfcc != student_config.model.n_mfcc:
            raise ValueError(f"the teacher predicts {teacher_config.model.n_mfcc} MFCC, the student {student_config.model.n_mfcc}")


def _prepare_gesture(config: Any) -> tuple[pl.LightningDataModule, float, int]:
    """The gesture windows of the recipe, with the data's shape recorded in ``config.model``; (data, rate Hz, window)."""
    from silentspeech.tasks.gesture import prepare_gesture_data

    windows, data = prepare_gesture_data(config)
    return windows, data.rate, config.data.window


def evaluate_on_test(module: TaskModule, datamodule: pl.LightningDataModule, accelerator: str, precision: str) -> dict[str, float]:
    """The ``test/`` metrics of ``module`` on ``datamodule``'s test split (one device, no logs)."""
    trainer = pl.Trainer(
        accelerator=resolve_accelerator(accelerator),
        devices=1,
        precision=resolve_precision(precision, resolve_accelerator(accelerator)),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(module, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}


def distill(teacher_path: str | os.PathLike, recipe: str | os.PathLike, overrides: Sequence[str] = (), resume: bool = False) -> DistillRun:
    """Distil the teacher run ``teacher_path`` into the student of ``recipe`` (with ``key=value`` overrides).

    Trains into the recipe's ``out`` and writes ``distill.yaml`` and
    ``report.md`` there (see the module docstring). Raises ``RecipeError``
    for a recipe of another task and ``ValueError`` for a teacher of another
    task or with outputs the student's cannot be compared with.
    """
    task = recipe_task(recipe)
    full = load_recipe(distill_schema(task), recipe, overrides)
    if resume:
        full.resume = True
    settings = full.distill
    base = get_task(task).schema
    config = base(**{f.name: getattr(full, f.name) for f in dataclasses.fields(base)})
    teacher, teacher_config = load_checkpoint(teacher_path, task=task)
    run_dir = Path(config.out)

    if task == "gesture":
        datamodule, rate, samples = _prepare_gesture(config)
        build_module = _gesture_module
    else:
        from silentspeech.tasks.speech_data import SpeechData

        datamodule = SpeechData(config.data, config.trainer, n_mfcc=config.model.n_mfcc, seed=config.seed)
        rate, samples = EMG_RATE, round(EMG_RATE)
        build_module = _speech_module
    _check_pair(task, config, teacher_config, settings.hidden_weight > 0)

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SETTINGS_FILE, config_to_yaml(settings) + f"teacher: {Path(teacher_path).resolve()}\n")
    student_task = get_task(task)
    fit(config, lambda: build_module(student_task.build_model(config), config, teacher, settings), datamodule)

    student, _ = load_checkpoint(run_dir, task=task)
    student_metrics = json.loads((run_dir / TEST_METRICS).read_text()) if (run_dir / TEST_METRICS).exists() else {}
    student_metrics = {k: float(v) for k, v in student_metrics.items() if k.startswith("test/")}
    teacher_metrics: dict[str, float] = {}
    if config.trainer.test:
        # The teacher on the same test split, through the task's own evaluation; its
        # figures (e.g. the gesture confusion matrix) go to a subfolder.
        teacher_eval = copy.copy(config)
        teacher_eval.out = str(run_dir / "teacher_test")
        Path(teacher_eval.out).mkdir(exist_ok=True)
        plain = _plain_module(task, teacher, teacher_eval)
        teacher_metrics = evaluate_on_test(plain, datamodule, config.trainer.accelerator, config.trainer.precision)

    channels = config.model.encoder.channels if task == "gesture" else config.model.emg_channels
    result = DistillRun(
        run_dir=run_dir,
        teacher_parameters=count_parameters(teacher),
        student_parameters=count_parameters(student),
        teacher_macs_per_second=macs_per_second(teacher, channels, rate, samples),
        student_macs_per_second=macs_per_second(student, channels, rate, samples),
        teacher_metrics=teacher_metrics,
        student_metrics=student_metrics,
    )
    atomic_write_text(run_dir / REPORT_FILE, markdown_report(result, task, teacher_path, settings))
    return result


def _plain_module(task: str, model: nn.Module, config: Any) -> TaskModule:
    """The task's own training module around ``model`` (for its test evaluation)."""
    if task == "gesture":
        from silentspeech.tasks.gesture import GestureTask

        return GestureTask(model, config)
    if task == "recognition":
        from silentspeech.tasks.recognition import RecognitionTask

        return RecognitionTask(model, config)
    from silentspeech.tasks.production import ProductionTask

    return ProductionTask(model, config)


def markdown_report(result: DistillRun, task: str, teacher_path: str | os.PathLike, settings: DistillConfig) -> str:
    """The ``report.md`` text: size, cost and test metrics of teacher and student."""
    lines = [
        f"# Distillation report ({task})",
        "",
        f"- teacher: `{teacher_path}`",
        f"- student: `{result.run_dir}`",
        f"- alpha {settings.alpha}, temperature {settings.temperature}, hidden_weight {settings.hidden_weight}",
        "",
    ]
    rows = [
        ["parameters", f"{result.teacher_parameters:,}", f"{result.student_parameters:,}", f"{result.parameter_ratio:.1f}x"],
        [
            "MMACs per second of EMG", f"{result.teacher_macs_per_second / 1e6:.2f}", f"{result.student_macs_per_second / 1e6:.2f}",
            f"{result.teacher_macs_per_second / result.student_macs_per_second:.1f}x",
        ],
    ]
    for name in sorted(set(result.teacher_metrics) | set(result.student_metrics)):
        teacher = result.teacher_metrics.get(name, math.nan)
        student = result.student_metrics.get(name, math.nan)
        rows.append([name, f"{teacher:.4f}", f"{student:.4f}", f"student - teacher: {student - teacher:+.4f}"])
    lines.append(markdown_table(["", "teacher", "student", "teacher / student"], rows, align="lrrr"))
    lines += [
        "",
        "Test metrics of both models on the test split of the student's recipe. MACs are half the FLOPs",
        "torch's FlopCounterMode counts in one forward pass (eval mode): matrix products, convolutions and attention.",
        "",
    ]
    return "\n".join(lines)
