"""The training machinery every task shares, on PyTorch Lightning.

A task is a :class:`TaskModule` (a LightningModule holding the model, naming
the validation metric to monitor) plus a LightningDataModule; :func:`fit`
builds the Trainer and runs it. What this module adds to Lightning:

* **One run directory** (``config.out``)::

      config.yaml          the resolved recipe (what load_checkpoint rebuilds the model from)
      best.safetensors     model weights at the best value of the monitored metric
      last.safetensors     model weights at the latest save
      last.ckpt            everything needed to resume (Lightning checkpoint)
      test_metrics.json    metrics of the best weights on the test split
      tensorboard/, csv/   logs

  Every file is written atomically (temp file + rename): Lightning's own
  checkpoint writes are not, so :class:`AtomicCheckpointIO` replaces them.

* **Exact resume.** The training batches of all epochs form one stream
  (:class:`BatchStream`), which Lightning sees as a single long epoch; the
  loader is torchdata's ``StatefulDataLoader``, whose state (saved by
  Lightning in ``last.ckpt``) holds the stream's position, so a checkpoint
  taken anywhere restores the optimiser, the schedule, the data epoch and the
  batch within it. Random numbers are reseeded before every
  step from ``(seed, step, rank)`` instead of saving generator states: the
  same result, and it holds for every DDP rank, not only the one that writes
  the checkpoint. A killed run resumed with ``resume=true`` ends with the
  same weights as one never stopped (deterministic CPU, workers=0; see
  tests/test_training.py). Lightning's epoch boundaries are where its own
  restart logic is most fragile, which is why there is only one.

* **DDP** through Lightning (``trainer.devices``, ``num_nodes``,
  ``strategy``; SLURM/torchrun environments are detected by Lightning). The
  batch samplers get ``rank`` and ``world_size`` from the trainer here, so
  Lightning's distributed sampler is off.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException
from safetensors.torch import load_file
from torchdata.stateful_dataloader import StatefulDataLoader

from silentspeech.atomic import atomic_save_safetensors, atomic_torch_save, atomic_write_json, atomic_write_text
from silentspeech.config import config_to_yaml
from silentspeech.runs import BEST_WEIGHTS, CONFIG_FILE, LAST_CHECKPOINT, LAST_WEIGHTS, TEST_METRICS
from silentspeech.runtime import DEVICE_CHOICES, DeviceError, pick_device
from silentspeech.torch_files import load_torch_file

log = logging.getLogger(__name__)



# --- configuration -----------------------------------------------------------


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine or linear decay, per optimiser step."""

    #: Peak learning rate, reached after ``warmup_steps``.
    lr: float = 5e-4
    #: AdamW decoupled weight decay, on weight matrices and kernels only (not on biases or norm scales).
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    warmup_steps: int = 500
    #: ``cosine``, ``linear`` or ``constant`` decay after warmup.
    schedule: str = "cosine"
    #: Learning rate at the end of the schedule, as a fraction of ``lr``.
    final_lr_ratio: float = 0.01
    #: Gradient norm clip (0 = off).
    grad_clip: float = 1.0


@dataclass
class TrainerConfig:
    """How long, where and how often: Lightning Trainer settings in recipe form."""

    #: Passes over the training data (the schedule spans them unless max_steps is smaller).
    max_epochs: int = 100
    #: Optimiser steps to stop after (-1 = as many as max_epochs gives).
    max_steps: int = -1
    #: Wall-clock budget of the whole run, resumes included (0 = none); the best weights so far are kept.
    max_minutes: float = 0.0
    #: ``auto`` (CUDA when present), ``cpu`` or ``cuda`` (``gpu``, Lightning's name, is the same).
    accelerator: str = "auto"
    #: Devices per node: a count (``"2"``), ``"auto"`` or a list of indices (``"0,1"``).
    devices: str = "auto"
    num_nodes: int = 1
    #: Lightning strategy: ``auto`` (one device) or ``ddp`` (several devices or nodes).
    strategy: str = "auto"
    #: ``auto`` (bf16 autocast on CUDA, fp32 on CPU) or a Lightning precision such as ``32-true``.
    precision: str = "auto"
    #: Validate every this many optimiser steps (0 = once per epoch).
    val_every_steps: int = 0
    #: Save last.ckpt every this many optimiser steps (besides every validation and the end).
    checkpoint_every_steps: int = 200
    log_every_steps: int = 20
    #: Deterministic algorithms (``torch.use_deterministic_algorithms``).
    deterministic: bool = False
    progress_bar: bool = True
    #: After training, evaluate the best weights on the test split (test_metrics.json).
    test: bool = True
    #: Torch intra-op threads while training on a CPU (0: leave torch's setting). Small models
    #: (a few hundred thousand parameters on tens of tokens) run fastest on one: with two, the
    #: threads spend each tiny operation waiting on each other on a loaded machine
    #: (docs/measurements.md, *Mouthed-word training speed*).
    cpu_threads: int = 0


@dataclass
class RunConfig:
    """Fields every task recipe has; task schemas extend it with ``data``, ``model`` and their own."""

    #: Which task trains this recipe (``silentspeech.tasks.TASKS``).
    task: str = ""
    seed: int = 0
    #: Run directory: checkpoints, config.yaml, logs.
    out: str = "runs/run"
    #: Continue the run in ``out`` from its last.ckpt (starts afresh when there is none).
    resume: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


# --- optimisation -------------------------------------------------------------


def lr_factor(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Learning-rate multiplier at optimiser ``step``: linear warmup from 0, then the decay to ``final_lr_ratio``."""
    if step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if optim.schedule == "cosine" else 1.0 - progress
    return optim.final_lr_ratio + (1.0 - optim.final_lr_ratio) * shape


def build_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on matrices and kernels only."""
    if optim.schedule not in ("cosine", "linear", "constant"):
        raise ValueError(f"optim.schedule must be cosine, linear or constant, got {optim.schedule!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": optim.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas))


def reseed(seed: int, step: int, rank: int) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random`` from ``(seed, step, rank)``."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2)
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))


class TaskModule(pl.LightningModule):
    """Base of the task modules: the model, its optimiser and schedule, the metric to monitor.

    Subclasses set :attr:`monitor` (a name they log during validation, e.g.
    ``val/cer``) and :attr:`monitor_mode` (``min`` or ``max``) and write
    ``training_step``, :meth:`evaluate` (one validation or test batch) and
    :meth:`report` (the metrics of a whole validation or test pass). The wrapped
    model is ``self.model``; checkpoints store its ``state_dict``.
    """

    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.seed = seed
        #: Optimiser steps the schedule spans (set when training starts).
        self.total_steps = 1

    def configure_optimizers(self) -> dict:
        optimizer = build_optimizer(self.model, self.optim)
        # The schedule's length is read when it is used: it is known only once the
        # training loader exists (on_train_start). Asking Lightning for it here
        # (estimated_stepping_batches) would build the loader before a resumed
        # run restores its position, and Lightning would then never restore it.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, self.optim, self.total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_start(self) -> None:
        limits = [int(n) for n in (self.trainer.max_steps, self.trainer.num_training_batches) if 0 < n < math.inf]
        self.total_steps = min(limits)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        reseed(self.seed, self.global_step, self.global_rank)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0])
        stream = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if isinstance(stream, BatchStream):
            # The stream is one Lightning epoch, so batch_idx (restored on resume) is the stream position.
            self.log("data_epoch", stream.epoch_at(batch_idx + 1), prog_bar=True)

    def evaluate(self, batch: Any, stage: str) -> None:
        """Score one ``val`` or ``test`` batch, keeping per-item rows for :meth:`report`."""
        raise NotImplementedError

    def report(self, stage: str) -> None:
        """Log the ``stage``'s metrics (``val/...`` or ``test/...``) from the rows kept by :meth:`evaluate`."""
        raise NotImplementedError

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.report("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.report("test")

    def gather_rows(self, rows: list[tuple]) -> list[tuple]:
        """Evaluation rows ``(id, ...)`` of every DDP rank, each id once.

        Evaluation samplers give every rank the same number of batches by
        repeating some, so rows are de-duplicated by their first element.
        """
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            parts: list[list[tuple]] = [[] for _ in range(self.trainer.world_size)]
            torch.distributed.all_gather_object(parts, list(rows))
            rows = [row for part in parts for row in part]
        unique: dict[Any, tuple] = {}
        for row in rows:
            unique.setdefault(row[0], row)
        return list(unique.values())


# --- data ---------------------------------------------------------------------


class BatchStream(torch.utils.data.Sampler):
    """The batches of all training epochs as one sequence that can start at any batch.

    ``batch_sampler`` must have ``set_epoch(epoch, start_batch=0)`` and a
    length (its batches for the epoch set, on this rank), like
    :class:`silentspeech.data.cache.LengthBucketBatchSampler`. ``epochs``
    epochs are chained; :attr:`start` is the stream position (batches already
    consumed) that iteration begins at, and :attr:`position` the position
    after the batches handed out so far. ``state_dict``/``load_state_dict``
    (torchdata's ``Stateful``) let ``StatefulDataLoader`` save the position
    and restart there by skipping whole epochs, not by drawing every batch
    again.
    """

    def __init__(self, batch_sampler: Any, epochs: int) -> None:
        self.batch_sampler = batch_sampler
        self.epoch_sizes = []
        for epoch in range(epochs):
            batch_sampler.set_epoch(epoch, 0)
            self.epoch_sizes.append(len(batch_sampler))
        self.epoch_starts = np.concatenate([[0], np.cumsum(self.epoch_sizes)]).astype(int)
        self.start = 0
        self.position = 0

    def __len__(self) -> int:
        return int(self.epoch_starts[-1])

    def epoch_at(self, position: int) -> float:
        """The (fractional) data epoch at stream ``position``."""
        epoch = int(np.searchsorted(self.epoch_starts, position, side="right")) - 1
        if epoch >= len(self.epoch_sizes):
            return float(len(self.epoch_sizes))
        return epoch + (position - self.epoch_starts[epoch]) / max(1, self.epoch_sizes[epoch])

    def __iter__(self) -> Iterator[list[int]]:
        self.position = self.start
        return self._batches()

    def _batches(self) -> Iterator[list[int]]:
        for epoch, size in enumerate(self.epoch_sizes):
            skip = self.start - self.epoch_starts[epoch]
            if skip >= size:
                continue
            self.batch_sampler.set_epoch(epoch, max(0, int(skip)))
            for batch in self.batch_sampler:
                self.position += 1
                yield batch

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.start = self.position = int(state["position"])


def stream_epochs(batches_per_epoch: int, max_epochs: int, max_steps: int) -> int:
    """Epochs the stream must hold: ``max_epochs``, or enough for ``max_steps`` when that is set and larger."""
    if max_steps > 0 and (max_epochs <= 0 or max_epochs * batches_per_epoch < max_steps):
        return max(1, -(-max_steps // max(1, batches_per_epoch)))
    if max_epochs <= 0:
        raise ValueError("trainer.max_epochs or trainer.max_steps must be positive")
    return max_epochs


class ResumableLoader(StatefulDataLoader):
    """torchdata's ``StatefulDataLoader`` over a :class:`BatchStream`, which Lightning checkpoints and restores mid-stream.

    Its ``state_dict()`` records the batches handed to training (not those
    prefetched by workers) with the stream position they reach; Lightning
    saves it in ``last.ckpt`` and calls ``load_state_dict`` before iterating
    again on resume.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, stream: BatchStream, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            # torchdata 0.11 calls torch.set_vital, which torch 2.14 deprecates: a warning per loader, nothing to act on
            warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)
            super().__init__(dataset, batch_sampler=stream, **kwargs)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) == {"position"}:  # a last.ckpt written before the loader was StatefulDataLoader
            self.batch_sampler.load_state_dict(state)
        else:
            super().load_state_dict(state)


def training_loader(
    dataset: torch.utils.data.Dataset,
    batch_sampler: Any,
    trainer_config: TrainerConfig,
    collate_fn: Any,
    workers: int = 0,
) -> ResumableLoader:
    """The resumable training loader: ``batch_sampler``'s epochs chained as :class:`BatchStream`."""
    batch_sampler.set_epoch(0, 0)
    epochs = stream_epochs(len(batch_sampler), trainer_config.max_epochs, trainer_config.max_steps)
    return ResumableLoader(
        dataset,
        BatchStream(batch_sampler, epochs),
        collate_fn=collate_fn,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
    )


# --- checkpoints ---------------------------------------------------------------


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed into place, read back as data only.

    Reading passes ``weights_only=True`` whatever Lightning or torch default
    to: a ``last.ckpt`` holds tensors and plain containers, and a crafted
    file that needs any other class (a pickle payload) is refused with a
    one-line :class:`ValueError` naming it instead of running its code.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        atomic_torch_save(path, checkpoint)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_torch_file(path, map_location)


class RunCheckpoint(pl.Callback):
    """Writes the run directory: config.yaml, best/last weights (safetensors) and last.ckpt.

    ``last.ckpt`` is saved every ``every_n_steps`` optimiser steps, after
    every validation and at the end; ``best.safetensors`` whenever the
    module's monitored metric improves.
    """

    def __init__(self, run_dir: Path, config: Any, every_n_steps: int) -> None:
        self.run_dir = Path(run_dir)
        self.config = config
        self.every_n_steps = every_n_steps
        self.best: float | None = None
        #: Optimiser step of the latest validation (-1: none yet in this process).
        self.validated_step = -1
        self._saved_step = -1

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            atomic_write_text(self.run_dir / CONFIG_FILE, config_to_yaml(self.config))

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.received_sigterm:
            # A job scheduler's kill (SIGTERM): save now; Lightning then stops and exits.
            log.warning("SIGTERM at step %d: saving %s; continue with --resume", trainer.global_step, LAST_CHECKPOINT)
            self.save_last(trainer, module)
            trainer.should_stop = True
            return
        if self.every_n_steps <= 0 or trainer.global_step % self.every_n_steps != 0:
            return
        # When validation follows this batch, save after it instead: a run resumed
        # from a checkpoint taken between the two would skip that validation.
        validation_follows = trainer.enable_validation and (batch_idx + 1) % trainer.val_check_batch == 0
        if not validation_follows:
            self.save_last(trainer, module)

    def on_validation_end(self, trainer: pl.Trainer, module: TaskModule) -> None:
        if trainer.sanity_checking or trainer.state.fn not in (TrainerFn.FITTING, TrainerFn.VALIDATING):
            return
        value = trainer.callback_metrics.get(module.monitor)
        if value is None:
            raise KeyError(f"validation did not log the monitored metric {module.monitor!r}")
        value = float(value)
        self.validated_step = trainer.global_step
        improved = self.best is None or (value < self.best if module.monitor_mode == "min" else value > self.best)
        if improved and math.isfinite(value):
            self.best = value
            if trainer.is_global_zero:
                self.save_weights(self.run_dir / BEST_WEIGHTS, trainer, module, {module.monitor: f"{value:.6g}"})
        if trainer.is_global_zero:
            log.info("step %d: %s = %.4g (best %.4g)", trainer.global_step, module.monitor, value, self.best or math.nan)
        if trainer.state.fn == TrainerFn.FITTING:
            self._saved_step = -1  # after validation the best score changed: save again even at the same step
            self.save_last(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.save_last(trainer, module)

    def save_last(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """``last.ckpt`` (all ranks take part, rank 0 writes) and ``last.safetensors``."""
        if self._saved_step == trainer.global_step:
            return
        self._saved_step = trainer.global_step
        trainer.save_checkpoint(self.run_dir / LAST_CHECKPOINT, weights_only=False)
        if trainer.is_global_zero:
            self.save_weights(self.run_dir / LAST_WEIGHTS, trainer, module, {})

    def save_weights(self, path: Path, trainer: pl.Trainer, module: pl.LightningModule, extra: dict[str, str]) -> None:
        metadata = {"task": str(self.config.task), "model": type(module.model).__name__, "step": str(trainer.global_step)}
        atomic_save_safetensors(path, module.model.state_dict(), metadata={**metadata, **extra})


# --- the trainer -----------------------------------------------------------------


def resolve_accelerator(accelerator: str) -> str:
    """Lightning's accelerator name (``gpu`` or ``cpu``) for ``trainer.accelerator``.

    ``auto``, ``cpu`` and ``cuda`` mean what they mean for every ``--device``
    (:func:`silentspeech.runtime.pick_device`: CUDA without a GPU is a
    :class:`~silentspeech.runtime.DeviceError`); Lightning's own ``gpu`` is
    taken as ``cuda``. Which GPUs is ``trainer.devices``' business.
    """
    if accelerator not in (*DEVICE_CHOICES, "gpu"):
        raise DeviceError(f"trainer.accelerator must be one of {', '.join(DEVICE_CHOICES)} (or gpu, the same as cuda), got {accelerator!r}")
    return "gpu" if pick_device("cuda" if accelerator == "gpu" else accelerator).type == "cuda" else "cpu"


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto`` -> bf16 autocast on GPUs, full fp32 on CPU (``accelerator`` as :func:`resolve_accelerator` returns it)."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


def _devices(devices: str) -> int | str | list[int]:
    text = str(devices).strip()
    if text.isdigit():
        return int(text)
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    return text


class EpochValidation(pl.Callback):
    """Validate after every data epoch: every ``len(stream) / epochs`` steps of the one stream epoch."""

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            stream = loader.batch_sampler
            trainer.val_check_batch = max(1, round(len(stream) / len(stream.epoch_sizes)))


def build_trainer(config: RunConfig, callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """A Lightning Trainer for ``config``: one stream epoch, atomic checkpoints, TensorBoard and CSV logs."""
    settings = config.trainer
    run_dir = Path(config.out)
    accelerator = resolve_accelerator(settings.accelerator)
    if settings.val_every_steps > 0:
        validation = {"val_check_interval": settings.val_every_steps, "check_val_every_n_epoch": None}
    else:
        validation = {"val_check_interval": 1.0}
        callbacks = [*callbacks, EpochValidation()]
    return pl.Trainer(
        accelerator=accelerator,
        devices=_devices(settings.devices),
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
        precision=resolve_precision(settings.precision, accelerator),
        max_epochs=1,
        max_steps=settings.max_steps,
        max_time=timedelta(minutes=settings.max_minutes) if settings.max_minutes > 0 else None,
        gradient_clip_val=config.optim.grad_clip or None,
        log_every_n_steps=settings.log_every_steps,
        deterministic=settings.deterministic,
        enable_progress_bar=settings.progress_bar,
        enable_checkpointing=False,
        enable_model_summary=settings.progress_bar,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        logger=[
            TensorBoardLogger(run_dir, name="", version="tensorboard", default_hp_metric=False),
            CSVLogger(run_dir, name="csv"),  # csv/version_N: one per start or resume
        ],
        plugins=[AtomicCheckpointIO()],
        callbacks=list(callbacks),
        **validation,
    )


def fit(
    config: RunConfig,
    build_module: Callable[[], TaskModule],
    datamodule: pl.LightningDataModule,
    callbacks: Sequence[pl.Callback] = (),
) -> Path:
    """Train ``build_module()`` on ``datamodule`` into the run directory ``config.out``; returns it.

    Seeds everything with ``config.seed`` before the module (and its model) is
    built. With ``config.resume`` the run continues from ``out/last.ckpt``;
    without it an ``out`` that already holds a run is refused rather than
    overwritten. After training, the last weights are validated if the
    schedule did not end on a validation, and with ``trainer.test`` the best
    weights are scored on the test split (``test_metrics.json``).
    ``callbacks`` are added to the trainer's.
    """
    run_dir = Path(config.out)
    last = run_dir / LAST_CHECKPOINT
    if last.exists() and not config.resume:
        raise ValueError(f"{run_dir} already holds a run ({LAST_CHECKPOINT}); pass --resume to continue it or choose another out=")
    if config.resume and not last.exists():
        log.warning("resume: %s has no %s; starting a new run", run_dir, LAST_CHECKPOINT)
    threads = torch.get_num_threads()
    if config.trainer.cpu_threads > 0 and resolve_accelerator(config.trainer.accelerator) == "cpu":
        torch.set_num_threads(config.trainer.cpu_threads)
    try:
        return _fit(config, build_module, datamodule, callbacks)
    finally:
        torch.set_num_threads(threads)


def _fit(
    config: RunConfig,
    build_module: Callable[[], TaskModule],
    datamodule: pl.LightningDataModule,
    callbacks: Sequence[pl.Callback],
) -> Path:
    run_dir = Path(config.out)
    last = run_dir / LAST_CHECKPOINT
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_module()
    checkpoint = RunCheckpoint(run_dir, config, config.trainer.checkpoint_every_steps)
    trainer = build_trainer(config, [checkpoint, *callbacks])
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if config.resume and last.exists() else None)
    except SIGTERMException:
        # Lightning exits with status 0 here; a killed job should not look finished.
        raise SystemExit(128 + signal.SIGTERM) from None
    if checkpoint.validated_step != trainer.global_step:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if config.trainer.test:
        best = run_dir / BEST_WEIGHTS
        if best.exists():
            module.model.load_state_dict(load_file(best))
        trainer.test(module, datamodule=datamodule, verbose=False)
        if trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
            atomic_write_json(run_dir / TEST_METRICS, {"weights": best.name if best.exists() else "last", **metrics})
            log.info("test: %s", ", ".join(f"{k} = {v:.4g}" for k, v in metrics.items()))
    return run_dir
