"""Training tasks: the recipe ``task:`` name -> its config schema, model builder and trainer.

``train_recipe`` runs a recipe file (what ``silentspeech train`` calls);
``load_checkpoint`` rebuilds a trained model from its run directory for the
downstream tools (evaluate, voice, demo, distill, export). Task modules are
imported only when their task is used, so a task's heavy dependencies stay
out of the others.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from silentspeech.config import RecipeError, load_recipe, recipe_task
from silentspeech.runs import LAST_WEIGHTS, config_file, weights_file

#: Recipe ``task:`` name -> module defining ``TASK``.
TASK_MODULES = {
    "production": "silentspeech.tasks.production",
    "recognition": "silentspeech.tasks.recognition",
    "pretrain": "silentspeech.tasks.pretrain",
    "gesture": "silentspeech.tasks.gesture",
    "kinematics": "silentspeech.tasks.kinematics",
    "audio_asr": "silentspeech.tasks.audio_asr",
    "speech_pretrain": "silentspeech.tasks.speech_pretrain",
    "vocoder": "silentspeech.tasks.vocoder",
}


@dataclass(frozen=True)
class Task:
    """What the registry knows of a task."""

    #: Recipe dataclass (a subclass of ``engine.RunConfig``).
    schema: type
    #: ``build_model(config) -> nn.Module``: the untrained model a recipe describes.
    build_model: Callable[[Any], torch.nn.Module]
    #: ``train(config) -> run directory``.
    train: Callable[[Any], Path]


def get_task(name: str) -> Task:
    """The registered task ``name``; ``RecipeError`` listing the known ones otherwise."""
    if name not in TASK_MODULES:
        raise RecipeError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASK_MODULES))}")
    return importlib.import_module(TASK_MODULES[name]).TASK


def train_recipe(path: str | os.PathLike, overrides: Sequence[str] = (), resume: bool = False) -> Path:
    """Train what the recipe at ``path`` describes, with ``key=value`` overrides; returns the run directory."""
    task = get_task(recipe_task(path))
    config = load_recipe(task.schema, path, overrides)
    data = getattr(config, "data", None)
    for key in ("cache", "root", "split_file"):  # stored absolute: evaluate and export work from any folder
        if getattr(data, key, None):
            setattr(data, key, str(Path(getattr(data, key)).resolve()))
    if resume:
        config.resume = True
    return task.train(config)


def load_checkpoint(path: str | os.PathLike, task: str | None = None) -> tuple[torch.nn.Module, Any]:
    """Rebuild a trained model: ``(model in eval mode, resolved recipe config)``.

    ``path`` is a run directory (its ``best.safetensors``) or a
    ``.safetensors`` file with the run's ``config.yaml`` beside it. With
    ``task``, a checkpoint of another task is refused. Raises
    ``FileNotFoundError`` for missing files and ``ValueError`` when the
    weights do not fit the architecture that ``config.yaml`` describes
    (listing missing, unexpected and mis-shaped tensors).
    """
    from safetensors import safe_open

    weights = weights_file(path)
    if not weights.is_file():
        hint = "give a run directory or a .safetensors file"
        if (weights.parent / LAST_WEIGHTS).is_file():
            hint = f"the run has not validated yet; {weights.parent / LAST_WEIGHTS} holds its latest weights"
        raise FileNotFoundError(f"{weights}: no such checkpoint ({hint})")
    if weights.suffix != ".safetensors":
        raise ValueError(f"{weights}: not a .safetensors weights file (resume state in .ckpt files is for `train --resume`)")
    config_path = config_file(weights)
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; a checkpoint needs the config.yaml of its run beside it")
    name = recipe_task(config_path)
    if task is not None and name != task:
        raise ValueError(f"{weights} is a {name} checkpoint; a {task} checkpoint is needed here")
    spec = get_task(name)
    config = load_recipe(spec.schema, config_path)
    if hasattr(getattr(config, "model", None), "pretrained"):
        config.model.pretrained = None  # the checkpoint holds every weight
    if hasattr(getattr(config, "model", None), "init_from"):
        config.model.init_from = None
    model = spec.build_model(config)

    try:
        with safe_open(weights, framework="pt") as handle:
            saved_by = (handle.metadata() or {}).get("model")
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own error types for damaged or foreign files
        raise ValueError(f"{weights}: not a readable safetensors file ({err})") from None
    expected = model.state_dict()
    problems = []
    if saved_by and saved_by != type(model).__name__:
        problems.append(f"saved from a {saved_by}, config.yaml describes a {type(model).__name__}")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if k in state and state[k].shape != v.shape]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch (file vs model)", shapes)):
        if items:
            problems.append(f"{len(items)} {label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
    if problems:
        raise ValueError(f"{weights} does not fit the architecture in {config_path}: " + "; ".join(problems))
    model.load_state_dict(state)
    return model.eval(), config
