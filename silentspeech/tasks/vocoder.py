"""The ``vocoder`` task: a HiFi-GAN trained on the acoustic features (``vocoder/*.yaml``).

Registered like the other tasks so that ``silentspeech train
vocoder/small.yaml cache=CACHE out_dir=RUN`` (and ``silentspeech vocoder
train``) run it; the schema and the training loop are
:mod:`silentspeech.vocoder.train` (a GAN loop of its own, its module
docstring says why). A vocoder run keeps its generator in
``generator.safetensors`` with the generator config inside, which
:func:`silentspeech.vocoder.synthesis.load_vocoder` reads; it has no
``best.safetensors`` for :func:`silentspeech.tasks.load_checkpoint`.
"""

from __future__ import annotations

import torch

from silentspeech.tasks import Task
from silentspeech.vocoder.generator import build_generator
from silentspeech.vocoder.train import VocoderRecipe, train_vocoder


def build_model(recipe: VocoderRecipe) -> torch.nn.Module:
    """The untrained generator the recipe describes."""
    return build_generator(recipe.generator)


TASK = Task(schema=VocoderRecipe, build_model=build_model, train=train_vocoder)
