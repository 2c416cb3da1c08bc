"""The HiFi-GAN generator: its architecture config, speechbrain's modules, ONNX export and our safetensors files.

The generator is speechbrain's ``HifiganGenerator`` (log-mel ``(B, 80, N)``
-> audio ``(B, 1, 256 N)`` at 22050 Hz). It takes log-mel rather than our
MFCC because that is what checkpoints in the original layout were trained on
(:mod:`silentspeech.vocoder.original`); :class:`~silentspeech.vocoder.synthesis.Vocoder`
inverts the MFCC first. Frame ``k`` covers samples ``[256 k, 256 k + 256)``,
so training segments are cut on frame boundaries.

:class:`NoisyHifiganGenerator` adds learned-scale noise after each
upsampling stage; why is in its docstring.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from speechbrain.lobes.models.HifiGAN import LRELU_SLOPE as HIFIGAN_LRELU_SLOPE
from speechbrain.lobes.models.HifiGAN import HifiganGenerator

from silentspeech import features as audio_features
from silentspeech.atomic import atomic_save_safetensors


@dataclass
class GeneratorConfig:
    """HiFi-GAN generator architecture and the features it was trained on.

    Defaults are V1 (Kong et al. 2020, ``config_v1.json`` of
    github.com/jik876/hifi-gan; docs/design.md, *HiFi-GAN V1*). ``product(upsample_rates)`` must equal
    ``hop_length`` so that one feature frame becomes one hop of audio.
    """

    n_mfcc: int = audio_features.N_MELS
    n_mels: int = audio_features.N_MELS
    sample_rate: int = audio_features.AUDIO_RATE
    hop_length: int = audio_features.HOP_LENGTH
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock_type: str = "1"
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    # Learned-scale Gaussian noise after each upsampling stage (NoisyHifiganGenerator); False: speechbrain's plain generator.
    noise_injection: bool = False
    noise_scale_init: float = 0.1  # initial per-channel noise scale (with noise_injection)



def check_generator_config(config: GeneratorConfig, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` when ``config`` does not fit our features."""
    ours = (audio_features.N_MELS, audio_features.AUDIO_RATE, audio_features.HOP_LENGTH)
    theirs = (config.n_mels, config.sample_rate, config.hop_length)
    if theirs != ours:
        raise ValueError(
            f"{source}: vocoder made for {config.n_mels} mel bins at {config.sample_rate} Hz, hop {config.hop_length}; "
            f"this project's features are {ours[0]} mel bins at {ours[1]} Hz, hop {ours[2]}"
        )
    if not 1 <= config.n_mfcc <= config.n_mels:
        raise ValueError(f"{source}: n_mfcc={config.n_mfcc} must lie in 1..{config.n_mels} (n_mels)")
    if math.prod(config.upsample_rates) != config.hop_length:
        raise ValueError(
            f"{source}: upsample_rates {config.upsample_rates} multiply to {math.prod(config.upsample_rates)}, "
            f"not the hop length {config.hop_length}"
        )
    if len(config.upsample_kernel_sizes) != len(config.upsample_rates):
        raise ValueError(f"{source}: {len(config.upsample_rates)} upsample_rates but {len(config.upsample_kernel_sizes)} kernel sizes")
    if len(config.resblock_dilation_sizes) != len(config.resblock_kernel_sizes):
        raise ValueError(
            f"{source}: {len(config.resblock_kernel_sizes)} resblock_kernel_sizes but "
            f"{len(config.resblock_dilation_sizes)} resblock_dilation_sizes"
        )


#: Seed of the noise a :class:`NoisyHifiganGenerator` uses when none is passed: inference is deterministic.
NOISE_SEED = 0


class NoisyHifiganGenerator(HifiganGenerator):
    """speechbrain's ``HifiganGenerator`` with learned-scale Gaussian noise added after each upsampling stage.

    Why: transposed and "same" convolutions keep a period of one hop, so for
    steady input frames the plain generator's output repeats every 256
    samples, a comb at multiples of 86.13 Hz with the bins between empty;
    trained on spectral losses alone (no multi-period discriminator) it never
    learns otherwise. Noise that is not periodic (as in StyleGAN, Parallel
    WaveGAN or NSF) lets it fill those bins with the recording's level.

    After upsampling stage ``i`` (``C_i`` channels, ``r_i = prod(rates[:i+1])``
    samples per frame) the generator adds ``scale_i * noise[:, i:i+1, ::hop // r_i]``
    (every ``hop // r_i``-th sample of its own noise row, so ``N r_i`` of them;
    ``scale_i`` of shape ``(1, C_i, 1)``, learned, initialised at
    ``noise_scale_init``) before that stage's residual blocks. The modules are
    speechbrain's (same state-dict keys plus ``noise_scales.{i}``); only the
    loop that calls them is ours.

    ``forward(log_mel, noise)``: log-mel ``(B, n_mels, N)`` and standard normal
    ``noise`` ``(B, stages, N * hop)`` -> audio ``(B, 1, N * hop)``. Without
    ``noise`` it draws it from a generator seeded with :data:`NOISE_SEED`, so
    equal inputs give equal audio on every call.
    """

    def __init__(self, upsample_factors: list[int], noise_scale_init: float, **kwargs):
        super().__init__(upsample_factors=upsample_factors, **kwargs)
        self.upsample_factors = list(upsample_factors)
        self.hop_length = math.prod(self.upsample_factors)
        self.noise_scales = torch.nn.ParameterList(
            torch.nn.Parameter(torch.full((1, up.conv.out_channels, 1), float(noise_scale_init))) for up in self.ups
        )

    def seeded_noise(self, log_mel: torch.Tensor, seed: int = NOISE_SEED) -> torch.Tensor:
        """Standard normal noise ``(B, stages, N * hop)`` for log-mel ``(B, n_mels, N)``, a function of ``seed`` and the shape.

        Drawn on the CPU (the same numbers on any device) and moved to ``log_mel``'s device and dtype.
        """
        shape = (log_mel.shape[0], len(self.ups), log_mel.shape[2] * self.hop_length)
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(log_mel)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Audio ``(B, 1, N * hop)`` in [-1, 1] from log-mel ``(B, n_mels, N)`` and noise ``(B, stages, N * hop)``."""
        if noise is None:
            noise = self.seeded_noise(x)
        o = self.conv_pre(x)
        samples_per_frame = 1
        for i, up in enumerate(self.ups):
            samples_per_frame *= self.upsample_factors[i]
            o = up(torch.nn.functional.leaky_relu(o, HIFIGAN_LRELU_SLOPE))
            o = o + self.noise_scales[i] * noise[:, i : i + 1, :: self.hop_length // samples_per_frame]
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            o = sum(block(o) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(torch.nn.functional.leaky_relu(o)))


def build_generator(config: GeneratorConfig) -> torch.nn.Module:
    """A speechbrain ``HifiganGenerator``: log-mel ``(B, n_mels, N)`` -> audio ``(B, 1, N * hop)``.

    With ``config.noise_injection`` a :class:`NoisyHifiganGenerator` (same
    modules, plus noise after each upsampling stage).
    """
    arguments = dict(
        in_channels=config.n_mels,
        out_channels=1,
        resblock_type=config.resblock_type,
        resblock_dilation_sizes=[list(d) for d in config.resblock_dilation_sizes],
        resblock_kernel_sizes=list(config.resblock_kernel_sizes),
        upsample_kernel_sizes=list(config.upsample_kernel_sizes),
        upsample_initial_channel=config.upsample_initial_channel,
        upsample_factors=list(config.upsample_rates),
    )
    if config.noise_injection:
        return NoisyHifiganGenerator(noise_scale_init=config.noise_scale_init, **arguments)
    return HifiganGenerator(**arguments)


def min_generator_frames(config: GeneratorConfig) -> int:
    """Fewest feature frames the generator takes.

    Every "same" convolution of speechbrain's generator pads by reflection,
    which needs an input longer than the padding: 3 frames for the input
    convolution, and at upsampling stage ``i`` (``r_i`` samples per frame)
    the widest residual convolution's ``(k - 1) max(d) / 2`` samples.
    """
    fewest = 4
    samples_per_frame = 1
    for rate in config.upsample_rates:
        samples_per_frame *= rate
        for kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
            fewest = max(fewest, (kernel - 1) * max(dilations) // 2 // samples_per_frame + 1)
    return fewest


def generator_inputs(generator: torch.nn.Module, log_mel: torch.Tensor) -> dict[str, torch.Tensor]:
    """The generator's named inputs for log-mel ``(B, n_mels, N)``: ``log_mel``, plus ``noise`` for a noisy generator.

    The noise (``(B, stages, 256 N)``, standard normal) comes from a torch
    generator seeded with :data:`NOISE_SEED` on every call, so a vocoder
    gives the same audio for the same features, on either backend.
    """
    inputs = {"log_mel": log_mel}
    if isinstance(generator, NoisyHifiganGenerator):
        inputs["noise"] = generator.seeded_noise(log_mel)
    return inputs


def export_generator_onnx(generator: torch.nn.Module, n_mels: int) -> bytes:
    """The ONNX graph (bytes) of a CPU generator: input ``log_mel`` ``(B, n_mels, N)`` -> ``audio`` ``(B, 1, 256 N)``.

    A :class:`NoisyHifiganGenerator` takes its noise as a second input
    ``noise`` ``(B, stages, 256 N)`` (see :func:`generator_inputs`): random
    numbers drawn inside the graph would differ from torch's. Batch and frame
    count are dynamic axes.
    """
    buffer = io.BytesIO()
    inputs = generator_inputs(generator, torch.zeros(1, n_mels, 16))  # short: tracing runs the generator once
    dynamic_axes = {"log_mel": {0: "batch", 2: "frames"}, "noise": {0: "batch", 2: "samples"}, "audio": {0: "batch", 2: "samples"}}
    with warnings.catch_warnings():
        # The tracer warns about every Python-side shape computation it records.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            generator,
            tuple(inputs.values()),
            buffer,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
            input_names=list(inputs),
            output_names=["audio"],
            dynamic_axes={name: dynamic_axes[name] for name in [*inputs, "audio"]},
            opset_version=17,
        )
    return buffer.getvalue()



def load_generator_safetensors(path: Path) -> tuple[GeneratorConfig, torch.nn.Module]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if "generator_config" not in metadata:
        raise ValueError(f"{path}: not a silentspeech vocoder (no generator_config in its safetensors metadata)")
    config = GeneratorConfig(**json.loads(metadata["generator_config"]))
    check_generator_config(config, str(path))
    generator = build_generator(config)
    _load_state(generator, load_file(str(path)), str(path))
    return config, generator


def _load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` with errors that name the key and both shapes."""
    expected = module.state_dict()
    for key, value in state.items():
        if key in expected and expected[key].shape != value.shape:
            raise ValueError(f"{source}: {key} has shape {tuple(value.shape)}, the model expects {tuple(expected[key].shape)}")
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    if missing or unused:
        raise ValueError(f"{source}: checkpoint does not fit the architecture (missing {missing[:5]}, unexpected {unused[:5]})")
    module.load_state_dict(state)


def save_generator(path: str | os.PathLike, generator: torch.nn.Module, config: GeneratorConfig, step: int) -> None:
    """Write the generator weights and its config (as metadata) to a safetensors file, atomically."""
    metadata = {"generator_config": json.dumps(dataclasses.asdict(config)), "step": str(step)}
    atomic_save_safetensors(path, generator.state_dict(), metadata=metadata)

