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

import os
from pathlib import Path

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


def run_cache(checkpoint: str | os.PathLike, cache: str | os.PathLike) -> Path:
    """The preprocessing cache of a run's ``data.cache`` setting, as a path usable from the working directory.

    Runs store it absolute (:func:`silentspeech.tasks.train_recipe`); a
    relative one, from runs trained before that, is relative to the folder
    training ran in. When it is not found from here, the error says so and
    how to name the cache instead of blaming a missing ``prepare``.
    """
    path = Path(cache)
    if path.is_absolute() or path.exists():
        return path
    raise ValueError(
        f"{config_file(checkpoint)}: data.cache {cache} is relative to the folder the run was trained in and is "
        f"not found from {Path.cwd()}; run from that folder or give the cache with --cache"
    )
