"""The run folder: the files a training run writes, and how a checkpoint path finds its run.

Every command that takes "a run directory or its ``best.safetensors``"
resolves it here, so the layout is written down once::

    RUN/
      config.yaml          the resolved recipe (what load_checkpoint rebuilds the model from)
      best.safetensors     model weights at the best value of the monitored metric
      last.safetensors     model weights at the latest save
      last.ckpt            everything needed to resume (Lightning checkpoint, or the vocoder's GAN state)
      test_metrics.json    metrics of the best weights on the test split
      lm_params.json       LM weights tuned on dev (tune-lm), used by evaluate, stream and the demo
      generator.safetensors  a vocoder run's generator (weights + its config as metadata)
      history.json         a vocoder run's losses per step (written when the run ends)
      classic_metrics.json a gesture run's classical baseline on the same test split
      comparison.md        a gesture run's network and classical baseline side by side
      crossval.md, crossval.json  a gesture recipe cross-validated (``train --folds K``): fold{k}/ runs below
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
BEST_WEIGHTS = "best.safetensors"
LAST_WEIGHTS = "last.safetensors"
LAST_CHECKPOINT = "last.ckpt"
TEST_METRICS = "test_metrics.json"
LM_PARAMS = "lm_params.json"
GENERATOR_FILE = "generator.safetensors"
HISTORY_FILE = "history.json"
CLASSIC_METRICS = "classic_metrics.json"
COMPARISON_FILE = "comparison.md"
CROSSVAL_REPORT = "crossval.md"
CROSSVAL_RESULTS = "crossval.json"


def run_directory(checkpoint: str | os.PathLike) -> Path:
    """The run folder of ``checkpoint`` (a run directory, or a file inside one)."""
    path = Path(checkpoint)
    return path if path.is_dir() else path.parent


def weights_file(checkpoint: str | os.PathLike) -> Path:
    """The weights ``checkpoint`` names: a run directory's ``best.safetensors``, or the file itself."""
    path = Path(checkpoint)
    return path / BEST_WEIGHTS if path.is_dir() else path


def config_file(checkpoint: str | os.PathLike) -> Path:
    """The ``config.yaml`` of the run that ``checkpoint`` belongs to."""
    return run_directory(checkpoint) / CONFIG_FILE


def run_path(checkpoint: str | os.PathLike, config: Any, key: str, option: str) -> Path:
    """A path that a run's ``config.yaml`` stores under ``key`` (e.g. ``data.cache``), usable from the working directory.

    ``config`` is the run's loaded recipe (``silentspeech.tasks.load_checkpoint``).
    Runs store their paths absolute (:func:`silentspeech.tasks.train_recipe`);
    a relative one, from runs trained before that, is relative to the folder
    training ran in. That folder is known while the run has not moved from
    where its own relative ``out`` put it (``RUN = TRAINING_FOLDER/out``), so
    evaluation works from any working directory. A path found neither there
    nor from the working directory is refused naming the key and ``option``,
    the command-line option that gives it instead (a moved run's cache is not
    a reason to blame ``prepare``).
    """
    stored = functools.reduce(getattr, key.split("."), config)
    if not stored:
        raise ValueError(f"{config_file(checkpoint)}: {key} is not set; give it with {option}")
    path = Path(stored)
    if path.exists():
        return path
    out = Path(getattr(config, "out", "") or "")
    run = run_directory(checkpoint).resolve()
    if not path.is_absolute() and out.parts and not out.is_absolute() and run.parts[-len(out.parts):] == out.parts:
        trained_in = run.parents[len(out.parts) - 1]
        if (trained_in / path).exists():
            return trained_in / path
    where = "does not exist" if path.is_absolute() else f"is relative to the folder the run was trained in and is not found from {Path.cwd()}"
    raise ValueError(f"{config_file(checkpoint)}: {key} {stored} {where}; give it with {option}")
