"""Vocoder: acoustic features (MFCC frames) -> 22050 Hz audio.

A HiFi-GAN (speechbrain's ``HifiganGenerator``, ``HifiganDiscriminator``
= multi-period + multi-scale discriminators, and its generator and
discriminator losses) trained on our features, with Griffin-Lim as the
fallback when no checkpoint is given. Every result says which method made it
(:attr:`Vocoder.method`: ``"hifigan"`` or ``"griffin-lim"``).

Conditioning. The acoustic models predict the 80 orthonormal-DCT MFCC of
:mod:`silentspeech.audio`, which invert exactly to log-mel. The vocoder turns
MFCC back into log-mel itself and the generator takes log-mel, because that
is what HiFi-GAN checkpoints in the original layout were trained on: they
load through :func:`load_original_hifigan` and work unchanged, and one
generator serves any ``n_mfcc <= 80`` (truncated coefficients read as zero).

Original checkpoints (keys ``conv_pre``, ``ups.{i}``,
``resblocks.{j}.convs{1,2}.{k}``, ``conv_post`` with weight-norm
``weight_g``/``weight_v``) map onto speechbrain's names by an explicit key
map (:func:`original_key_map`). speechbrain pads its "same" convolutions by
reflection where the original pads with zeros, so an imported generator
matches the original except in the first and last few frames' samples.

Frame alignment. Frame ``k`` of the features covers audio samples
``[256 k, 256 k + 256)``; the generator upsamples by exactly 256, so ``N``
frames give ``256 N`` samples and training segments are cut on frame
boundaries (8192 samples = 32 frames in V1).

Training is a plain PyTorch loop rather than Lightning: a GAN step alternates
two optimisers on shared activations (Lightning would need manual
optimisation, i.e. the same code inside a hook), and the loop must stop on a
wall-clock budget and resume mid-epoch exactly; written out it is short.
The speechbrain mel L1 loss (weight 45), least-squares adversarial loss and
feature matching (weight 10) are those of the HiFi-GAN paper; a
multi-resolution STFT loss (:func:`log_stft_loss`) and a slow-offset loss
(:func:`dc_offset_loss`, for the 0 Hz bin the mel loss cannot see) can be
added. The discriminators cost ~7 s per batch of 8 segments on one CPU
core, so a config can hold them back for its first
``discriminator_start_step`` steps (the small CPU config never reaches
them in 15 minutes: it is then a spectral-loss-only generator, and says
so). Without them the generator
does not learn pitch: for steady input frames its output repeats every
256 samples (transposed and "same" convolutions keep that period), a comb
at multiples of 86.13 Hz instead of the voice's harmonics, with every
fourth bin of a 1024-point STFT empty; the multi-period discriminator is
what teaches it otherwise. Long training segments lessen the comb: in
short ones most samples lie within the generator's receptive field of an
edge (vocoder/README.md has the figures). ``noise_injection`` (the small
config) adds learned-scale noise after each upsampling stage
(:class:`NoisyHifiganGenerator`), which partly fills the bins between;
synthesis stays deterministic (seeded noise, passed to the ONNX graph as an
input).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import librosa
import numpy as np
import scipy.spatial
import soundfile
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from speechbrain.core import Stage
from speechbrain.lobes.models.HifiGAN import (
    DiscriminatorLoss,
    GeneratorLoss,
    HifiganDiscriminator,
    HifiganGenerator,
    L1SpecLoss,
    LRELU_SLOPE as HIFIGAN_LRELU_SLOPE,
    MelganFeatureLoss,
    MSEDLoss,
    MSEGLoss,
)
from tqdm import tqdm

from silentspeech import audio as audio_features
from silentspeech.alignment import dtw_path
from silentspeech.atomic import atomic_open, atomic_save_safetensors, atomic_torch_save, atomic_write_json, atomic_write_text
from silentspeech.config import config_to_yaml, load_recipe
from silentspeech.data import synthetic
from silentspeech.data.cache import CachedUtterances, read_manifest
from silentspeech.inference import cpu_session
from silentspeech.metrics import log_spectral_distance, mel_cepstral_distortion
from silentspeech.tasks import load_checkpoint

log = logging.getLogger(__name__)

GRIFFIN_LIM = "griffin-lim"
HIFIGAN = "hifigan"
#: Shorter segments leave the period-11 discriminator fewer rows than its padding.
MIN_SEGMENT_SAMPLES = 2048


# --- configuration ---------------------------------------------------------


@dataclass
class GeneratorConfig:
    """HiFi-GAN generator architecture and the features it was trained on.

    Defaults are V1 (FIELD_GUIDE §5). ``product(upsample_rates)`` must equal
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


@dataclass
class VocoderRecipe:
    """Schema of ``vocoder/*.yaml``: architecture plus training settings."""

    task: str = "vocoder"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    cache: str = ""  # preprocessing cache (silentspeech prepare --out) with manifest.json
    split: str = "train"
    out_dir: str = "runs/vocoder"
    segment_samples: int = 8192  # a multiple of hop_length
    batch_size: int = 16
    learning_rate: float = 2e-4
    adam_betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    lr_decay: float = 0.999  # per epoch
    mel_loss_weight: float = 45.0
    stft_loss_weight: float = 0.0  # multi-resolution log-STFT L1 (not in the HiFi-GAN paper; speeds up CPU training)
    dc_loss_weight: float = 0.0  # L1 of the slow offset (moving mean over 1024 samples), which the mel loss does not see
    cpu_threads: int = 0  # torch threads while training on a CPU; 0: leave torch's setting
    feature_matching_weight: float = 10.0
    adversarial_weight: float = 1.0
    discriminator_start_step: int = 0
    max_steps: int = 0  # 0: no step limit
    max_minutes: float = 0.0  # wall-clock budget of one invocation; 0: none
    checkpoint_every: int = 500  # steps
    max_utterances: int = 0  # 0: all voiced utterances of the split
    seed: int = 0
    device: str = "auto"  # auto = cuda when present, else cpu
    init_from: str = ""  # vocoder checkpoint (ours or original layout) to start from
    finetune_on: str = ""  # production run: train on its predicted features instead of the true ones


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


# --- Griffin-Lim -------------------------------------------------------------


def griffin_lim(log_mel: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """Invert log-mel frames ``(N, 80)`` to ``(256 N,)`` float32 audio at 22050 Hz.

    The mel magnitudes go back to a linear STFT magnitude by librosa's NNLS
    inversion of our Slaney filterbank (0-8000 Hz), then ``librosa.griffinlim``
    estimates phase with our STFT (n_fft 1024, hop 256, Hann, not centred);
    the 384-sample reflect padding of :func:`silentspeech.audio.log_mel` is
    cut off again so the output lines up with the frames.
    """
    mel = np.exp(np.asarray(log_mel, dtype=np.float64)).T
    magnitude = librosa.feature.inverse.mel_to_stft(
        mel,
        sr=audio_features.AUDIO_RATE,
        n_fft=audio_features.N_FFT,
        power=1.0,
        fmin=audio_features.F_MIN,
        fmax=audio_features.F_MAX,
        norm="slaney",
        htk=False,
    )
    n_frames = log_mel.shape[0]
    padded = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=audio_features.HOP_LENGTH,
        win_length=audio_features.WIN_LENGTH,
        n_fft=audio_features.N_FFT,
        window="hann",
        center=False,
        length=n_frames * audio_features.HOP_LENGTH + 2 * audio_features.PAD,
        random_state=0,
    )
    return padded[audio_features.PAD : -audio_features.PAD].astype(np.float32)


# --- the Vocoder API ---------------------------------------------------------


#: ``Vocoder.backend`` values for a HiFi-GAN: the generator run by ONNX Runtime (CPU) or by torch.
GENERATOR_BACKENDS = ("onnxruntime", "torch")
#: Largest absolute sample difference allowed between the exported generator's audio and torch's.
EXPORT_TOLERANCE = 1e-4


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


class Vocoder:
    """MFCC frames -> audio, by a HiFi-GAN generator or by Griffin-Lim.

    Build it with :func:`load_vocoder`. ``method`` is ``"hifigan"`` or
    ``"griffin-lim"``; write it into reports and file names, because
    Griffin-Lim output is a fallback, not the system's speech.

    Speed. The generator loses its weight norm (a training device: folding
    it into the weights leaves the outputs unchanged) and, on CPU, runs as an
    ONNX Runtime graph exported when the vocoder is built (a few seconds
    for V1): on this project's 2-core CPU it synthesises about twice as fast
    as eager torch (``bench/voice.py`` prints both), where a traced and frozen
    TorchScript graph gained little and synthesis in overlapping chunks
    (better cache use on long inputs) gained nothing measurable. Before the
    graph is used its audio is checked against torch's on random features
    of another length; beyond :data:`EXPORT_TOLERANCE`, or when the export
    or onnxruntime fails, the vocoder warns and stays on torch. ``backend``
    says which runs (``None`` for Griffin-Lim); ``method`` is the same
    either way.

    Args:
        config: the generator's architecture and features.
        generator: a speechbrain ``HifiganGenerator`` (its weight norm is
            removed in place), or None for Griffin-Lim.
        source: where it came from, for messages.
        device: torch device of the generator.
        backend: ``"auto"`` (ONNX Runtime on CPU, torch on CUDA or when the
            export fails), ``"onnxruntime"`` (raise instead of falling back) or ``"torch"``.
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).
    """

    def __init__(
        self,
        config: GeneratorConfig,
        generator: torch.nn.Module | None,
        source: str,
        device: str = "cpu",
        backend: str = "auto",
        threads: int | None = None,
    ):
        check_generator_config(config, source)
        if backend not in ("auto",) + GENERATOR_BACKENDS:
            raise ValueError(f"backend must be auto, {' or '.join(GENERATOR_BACKENDS)}; got {backend!r}")
        self.config = config
        self.source = source
        self.device = torch.device(device)
        self.generator = generator
        self.backend: str | None = None
        self._session = None
        if generator is None:
            return
        generator.remove_weight_norm()  # weight norm only matters for training
        self.generator = generator.to(self.device).eval()
        self.backend = "torch"
        if backend == "torch" or (backend == "auto" and self.device.type != "cpu"):
            return
        try:
            self._session = self._onnx_session(threads or torch.get_num_threads())
            self.backend = "onnxruntime"
        except Exception as err:  # no onnxruntime, an export or a check that failed: torch still works
            if backend == "onnxruntime":
                raise
            warnings.warn(f"vocoder {source}: fast synthesis unavailable, running plain torch: {err}", RuntimeWarning, stacklevel=2)

    def _onnx_session(self, threads: int):
        if self.device.type != "cpu":
            raise RuntimeError(f"the ONNX Runtime backend runs on CPU; the generator is on {self.device}")
        session = cpu_session(export_generator_onnx(self.generator, self.config.n_mels), threads)
        # A batch of two and a frame count other than the export's.
        log_mel = torch.randn(2, self.config.n_mels, min_generator_frames(self.config) + 37, generator=torch.Generator().manual_seed(0))
        inputs = generator_inputs(self.generator, log_mel)
        with torch.inference_mode():
            expected = self.generator(*inputs.values()).numpy()
        difference = float(np.abs(session.run(None, {name: value.numpy() for name, value in inputs.items()})[0] - expected).max())
        if not difference <= EXPORT_TOLERANCE:
            raise RuntimeError(f"the exported generator's audio differs from torch's by {difference:.3g} (> {EXPORT_TOLERANCE:g})")
        return session

    @property
    def method(self) -> str:
        """``"hifigan"`` or ``"griffin-lim"``."""
        return GRIFFIN_LIM if self.generator is None else HIFIGAN

    @property
    def n_mfcc(self) -> int:
        """Coefficients per input frame."""
        return self.config.n_mfcc

    def __repr__(self) -> str:
        return f"Vocoder(method={self.method!r}, backend={self.backend!r}, source={self.source!r}, n_mfcc={self.n_mfcc})"

    def synthesize(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Audio from MFCC frames.

        Args:
            features: ``(N, n_mfcc)`` frames at 86.13 Hz, or a batch
                ``(B, N, n_mfcc)`` of equal-length sequences.

        Returns:
            float32 audio at 22050 Hz: ``(256 N,)``, or ``(B, 256 N)`` for a batch.
        """
        features = self._checked(features, ndims=(2, 3))
        single = features.ndim == 2
        log_mel = audio_features.log_mel_from_mfcc(features[None] if single else features, self.config.n_mels)
        if self.generator is None:
            audio = np.stack([griffin_lim(frames) for frames in log_mel])
        else:
            audio = self._generate(np.ascontiguousarray(log_mel.transpose(0, 2, 1), dtype=np.float32))
        return audio[0] if single else audio

    def _generate(self, log_mel: np.ndarray) -> np.ndarray:
        """Generator audio ``(B, 256 N)`` float32 from log-mel ``(B, n_mels, N)``, on :attr:`backend`."""
        fewest = min_generator_frames(self.config)
        if log_mel.shape[2] < fewest:
            raise ValueError(f"features hold {log_mel.shape[2]} frames; vocoder {self.source} needs at least {fewest}")
        inputs = generator_inputs(self.generator, torch.from_numpy(log_mel))
        if self._session is not None:
            return self._session.run(None, {name: value.numpy() for name, value in inputs.items()})[0][:, 0]
        with torch.inference_mode():
            return self.generator(*(value.to(self.device) for value in inputs.values()))[:, 0].float().cpu().numpy()

    def _checked(self, features: np.ndarray | torch.Tensor, ndims: tuple[int, ...]) -> np.ndarray:
        """``features`` as float32 numpy, or ``ValueError`` for a wrong shape, no frames or NaN."""
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu().numpy()
        features = np.asarray(features, dtype=np.float32)
        if features.ndim not in ndims or features.shape[-1] != self.n_mfcc:
            raise ValueError(
                f"features of shape {features.shape}: vocoder {self.source} expects (frames, {self.n_mfcc}) "
                f"or (batch, frames, {self.n_mfcc}) MFCC"
            )
        if features.shape[-2] == 0:
            raise ValueError("features hold no frames")
        if not np.all(np.isfinite(features)):
            raise ValueError("features hold NaN or infinite values")
        return features

    def synthesize_many(self, features: Sequence[np.ndarray | torch.Tensor], batch_size: int = 8) -> list[np.ndarray]:
        """Audio for sequences of different lengths, ``[(N_i, n_mfcc)] -> [(256 N_i,)]``.

        Sequences are padded into batches for the generator (by repeating
        their last frame) and the audio of each is cut back to its own length.
        """
        results: list[np.ndarray] = []
        for start in range(0, len(features), batch_size):
            chunk = [self._checked(f, ndims=(2,)) for f in features[start : start + batch_size]]
            if self.generator is None:
                results.extend(self.synthesize(f) for f in chunk)
                continue
            longest = max(f.shape[0] for f in chunk)
            padded = np.stack([np.pad(f, ((0, longest - f.shape[0]), (0, 0)), mode="edge") for f in chunk])
            audio = self.synthesize(padded)
            results.extend(a[: f.shape[0] * self.config.hop_length] for a, f in zip(audio, chunk))
        return results


def _pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_vocoder(
    path: str | os.PathLike | None, n_mfcc: int | None = None, device: str = "auto", backend: str = "auto"
) -> Vocoder:
    """The vocoder saved at ``path``, or Griffin-Lim when ``path`` is ``None``.

    ``path`` is a training run folder (holding ``generator.safetensors``), a
    generator ``.safetensors`` file of ours, or a HiFi-GAN checkpoint in the
    original layout (architecture from a ``config.json`` beside it, else V1).
    ``n_mfcc``, when given, is the width of the features it will receive
    (e.g. an acoustic model's output); a mismatch is an error naming both.
    ``backend`` runs the generator: ``"auto"`` (ONNX Runtime on CPU, else
    torch), ``"onnxruntime"`` or ``"torch"``; see :class:`Vocoder`.
    """
    if path is None:
        log.warning("no vocoder checkpoint given: using the Griffin-Lim fallback (method=%r)", GRIFFIN_LIM)
        config = GeneratorConfig(n_mfcc=n_mfcc or audio_features.N_MELS)
        vocoder = Vocoder(config, None, "griffin-lim fallback")
    else:
        path = Path(path)
        config, generator = read_generator(path)
        vocoder = Vocoder(config, generator, str(path), device=_pick_device(device), backend=backend)
    if n_mfcc is not None and n_mfcc != vocoder.n_mfcc:
        raise ValueError(f"vocoder {vocoder.source} takes {vocoder.n_mfcc} MFCC per frame, but the features have {n_mfcc}")
    return vocoder


def read_generator(path: str | os.PathLike) -> tuple[GeneratorConfig, torch.nn.Module]:
    """The generator (weight norm still in place, for training) and its config from a checkpoint.

    ``path`` is a run folder or a file. ``.safetensors`` files are ours; anything else is read as an
    original-layout HiFi-GAN checkpoint, which must set every parameter.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "generator.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no vocoder checkpoint there")
    if path.suffix == ".safetensors":
        return _load_generator_safetensors(path)
    config, generator, report = load_original_hifigan(path)
    if report.missing:
        raise ValueError(f"{path}: original-layout checkpoint lacks {len(report.missing)} generator parameters: {report.missing[:5]}")
    return config, generator


def _load_generator_safetensors(path: Path) -> tuple[GeneratorConfig, torch.nn.Module]:
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


# --- HiFi-GAN checkpoints in the original layout ----------------------------


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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from None
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


# --- training data -----------------------------------------------------------


@dataclass
class TrainingPair:
    """One utterance: generator input frames and the audio they should become."""

    id: str
    log_mel: np.ndarray  # (N, n_mels) float32 at 86.13 Hz
    audio: np.ndarray  # (256 N,) float32 at 22050 Hz

    @property
    def n_frames(self) -> int:
        return self.log_mel.shape[0]


def split_voiced_audio(cache_dir: str | os.PathLike, split: str) -> list[tuple[str, str]]:
    """``(id, audio_path)`` of the voiced audio behind the utterances of ``split``.

    Voiced utterances give their own audio; silent ones their voiced twin's
    (the audio a silent utterance should become). Each file appears once.
    """
    entries = read_manifest(cache_dir)["utterances"]
    by_id = {entry["id"]: entry for entry in entries}
    found: dict[str, str] = {}
    for entry in entries:
        if entry["split"] != split:
            continue
        if entry["silent"]:
            twin = by_id.get(entry.get("twin") or "")
            if twin is None:
                log.warning("%s: silent utterance without a voiced twin in the cache; skipped", entry["id"])
                continue
            entry = twin
        found.setdefault(entry["audio_path"], entry["id"])
    return [(utterance_id, path) for path, utterance_id in found.items()]


def frames_and_audio(audio_path: str | os.PathLike, n_mfcc: int) -> tuple[np.ndarray, np.ndarray]:
    """MFCC ``(N, n_mfcc)`` of an audio file and its samples trimmed to ``256 N``, aligned frame by frame."""
    audio = audio_features.load_audio(audio_path)
    n_frames = audio.shape[0] // audio_features.HOP_LENGTH
    audio = audio[: n_frames * audio_features.HOP_LENGTH]
    return audio_features.acoustic_features(audio, n_mfcc), audio


def true_feature_pairs(cache_dir: str | os.PathLike, split: str, n_mfcc: int, max_utterances: int = 0) -> list[TrainingPair]:
    """Training pairs from the true features of the voiced utterances of ``split``."""
    entries = [e for e in read_manifest(cache_dir)["utterances"] if e["split"] == split and not e["silent"]]
    if max_utterances:
        entries = entries[:max_utterances]
    pairs = []
    for entry in tqdm(entries, desc=f"voiced {split} audio", unit="utt"):
        try:
            mfcc, audio = frames_and_audio(entry["audio_path"], n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", entry["id"], err)
            continue
        pairs.append(TrainingPair(entry["id"], audio_features.log_mel_from_mfcc(mfcc), audio))
    return pairs


def align_to_audio_frames(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Warp predicted frames ``(N, F)`` onto the time axis of ``target`` ``(M, F)``.

    Equal lengths are taken as frame-aligned already. Otherwise the DTW path
    (librosa, via :func:`silentspeech.alignment.dtw_path`) on Euclidean
    frame distances pairs the frames and each target frame gets the mean of
    the predicted frames paired with it. Returns ``(M, F)``.
    """
    if predicted.shape[0] == target.shape[0]:
        return predicted
    rows, cols = dtw_path(scipy.spatial.distance.cdist(predicted, target))
    summed = np.zeros(target.shape, dtype=np.float64)
    counts = np.zeros(target.shape[0])
    np.add.at(summed, cols, predicted[rows])
    np.add.at(counts, cols, 1)
    return (summed / counts[:, None]).astype(np.float32)


def predicted_feature_pairs(
    cache_dir: str | os.PathLike, run_dir: str | os.PathLike, split: str, n_mfcc: int, max_utterances: int = 0, device: str = "cpu"
) -> list[TrainingPair]:
    """Training pairs from a production model's predictions for the voiced utterances of ``split``.

    The model (``silentspeech.tasks.load_checkpoint(run_dir)``) predicts
    features from each utterance's EMG; they are aligned to the frames of the
    true audio (:func:`align_to_audio_frames`) and paired with that audio.
    """
    model, _ = load_checkpoint(run_dir, task="production")
    model = model.to(device).eval()
    dataset = CachedUtterances(cache_dir, split=split, kinds=("voiced",))
    count = min(len(dataset), max_utterances) if max_utterances else len(dataset)
    pairs = []
    for index in tqdm(range(count), desc=f"predicting {split} features", unit="utt"):
        item = dataset[index]
        with torch.no_grad():
            emg = item["emg"].T[None].to(device)  # (1, 8, T)
            outputs = model(emg)
        if "acoustic" not in outputs:
            raise ValueError(f"{run_dir}: the model predicts no acoustic features (outputs: {sorted(outputs)})")
        predicted = outputs["acoustic"][0].cpu().numpy()
        if predicted.shape[1] != n_mfcc:
            raise ValueError(f"{run_dir}: the model predicts {predicted.shape[1]} features per frame, the vocoder takes {n_mfcc} MFCC")
        try:
            mfcc, audio = frames_and_audio(dataset.by_id[item["id"]]["audio_path"], n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", item["id"], err)
            continue
        aligned = align_to_audio_frames(predicted, mfcc)
        pairs.append(TrainingPair(item["id"], audio_features.log_mel_from_mfcc(aligned), audio))
    return pairs


def segment_batch(
    pairs: Sequence[TrainingPair], indices: Sequence[int], segment_frames: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frame-aligned segments: log-mel ``(B, n_mels, S)`` and audio ``(B, 1, 256 S)``."""
    hop = audio_features.HOP_LENGTH
    mels, audios = [], []
    for index in indices:
        pair = pairs[index]
        start = int(rng.integers(0, pair.n_frames - segment_frames + 1))
        mels.append(pair.log_mel[start : start + segment_frames].T)
        audios.append(pair.audio[start * hop : (start + segment_frames) * hop])
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(audios))[:, None]


def epoch_batches(n_pairs: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled index batches of one epoch, a pure function of ``(seed, epoch)`` for exact resume."""
    order = np.random.default_rng([seed, epoch]).permutation(n_pairs)
    n_batches = max(1, n_pairs // batch_size)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]


# --- training ------------------------------------------------------------------


def load_vocoder_recipe(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> VocoderRecipe:
    """A :class:`VocoderRecipe` from ``vocoder/*.yaml`` and ``key=value`` overrides, checked."""
    recipe = load_recipe(VocoderRecipe, path, overrides)
    source = str(path or "recipe")
    check_generator_config(recipe.generator, source)
    if recipe.segment_samples < MIN_SEGMENT_SAMPLES or recipe.segment_samples % recipe.generator.hop_length:
        raise ValueError(
            f"{source}: segment_samples={recipe.segment_samples} must be a multiple of {recipe.generator.hop_length} "
            f"and at least {MIN_SEGMENT_SAMPLES} (the discriminators' shortest input)"
        )
    if recipe.batch_size < 1:
        raise ValueError(f"{source}: batch_size must be at least 1")
    return recipe


def _training_losses(recipe: VocoderRecipe) -> tuple[GeneratorLoss, DiscriminatorLoss]:
    mel_loss = L1SpecLoss(
        sample_rate=audio_features.AUDIO_RATE,
        hop_length=audio_features.HOP_LENGTH,
        win_length=audio_features.WIN_LENGTH,
        n_mel_channels=audio_features.N_MELS,
        n_fft=audio_features.N_FFT,
        mel_fmin=audio_features.F_MIN,
        # Full band, as the original HiFi-GAN's loss: above the features' 8 kHz the output must still match.
        mel_fmax=audio_features.AUDIO_RATE / 2,
    )
    generator_loss = GeneratorLoss(
        l1_spec_loss=mel_loss,
        l1_spec_loss_weight=recipe.mel_loss_weight,
        mseg_loss=MSEGLoss(),
        mseg_loss_weight=recipe.adversarial_weight,
        feat_match_loss=MelganFeatureLoss(),
        feat_match_loss_weight=recipe.feature_matching_weight,
    )
    return generator_loss, DiscriminatorLoss(msed_loss=MSEDLoss())


#: (n_fft, hop, window) of the log-STFT loss: the features' STFT and one coarser and one finer in time.
STFT_LOSS_RESOLUTIONS = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))


def log_stft_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss of ``(B, 1, S)`` audio (Parallel WaveGAN's), averaged over three resolutions.

    Per resolution: spectral convergence ``|S_real - S_fake|_F / |S_real|_F``
    (dominated by the loud harmonics, so it teaches pitch early) plus the
    mean L1 distance of log magnitudes floored at 1e-5 (every bin counts,
    quiet ones included). Ours because speechbrain's ``STFTLoss`` calls
    ``torch.stft`` without ``return_complex``, which torch 2 rejects.
    """
    total = fake.new_zeros(())
    for n_fft, hop, window_length in STFT_LOSS_RESOLUTIONS:
        window = torch.hann_window(window_length, device=fake.device)
        fake_mag, real_mag = (torch.stft(x[:, 0], n_fft, hop, window_length, window, return_complex=True).abs() for x in (fake, real))
        convergence = torch.linalg.norm(real_mag - fake_mag) / torch.linalg.norm(real_mag).clamp(min=1e-5)
        log_distance = (fake_mag.clamp(min=1e-5).log() - real_mag.clamp(min=1e-5).log()).abs().mean()
        total = total + convergence + log_distance
    return total / len(STFT_LOSS_RESOLUTIONS)


def dc_offset_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of the moving means (1024 samples, hop 256) of ``(B, 1, S)`` audio.

    The offset and drift below about 20 Hz: the mel loss cannot see them (its
    lowest filter is zero at 0 Hz) and the log-STFT loss weighs them as one
    bin in 513, so without this term the generator carries an offset of up to
    +17 dB in the 0 Hz bin where the recording has -30 dB, which the
    log-spectral distance counts in every frame.
    """
    window, hop = audio_features.N_FFT, audio_features.HOP_LENGTH
    return torch.nn.functional.avg_pool1d(fake - real, window, hop).abs().mean()


def train_vocoder(recipe: VocoderRecipe, resume: bool = False) -> Path:
    """Train (or fine-tune) a HiFi-GAN vocoder; returns the run folder.

    The run folder ``recipe.out_dir`` receives, every ``checkpoint_every``
    steps and at the end (all atomic): ``generator.safetensors`` (weights and
    generator config, what :func:`load_vocoder` reads), ``config.yaml`` (the
    recipe) and ``last.ckpt`` (full training state for ``resume``). Stops at
    ``max_steps`` or after ``max_minutes`` of wall clock, whichever is first.
    On a CPU, ``recipe.cpu_threads`` (when set) is torch's thread count for
    the run; the previous count is restored afterwards.
    """
    threads = torch.get_num_threads()
    if recipe.cpu_threads and _pick_device(recipe.device) == "cpu":
        torch.set_num_threads(recipe.cpu_threads)
    try:
        return _train_vocoder(recipe, resume)
    finally:
        torch.set_num_threads(threads)


def _train_vocoder(recipe: VocoderRecipe, resume: bool) -> Path:
    if not recipe.cache:
        raise ValueError("no cache given: set cache=PATH (a `silentspeech prepare` output folder)")
    if not recipe.max_steps and not recipe.max_minutes:
        raise ValueError("set max_steps or max_minutes; otherwise training never stops")
    out = Path(recipe.out_dir)
    state_path = out / "last.ckpt"
    if state_path.exists() and not resume:
        raise ValueError(f"{out} already holds a training run ({state_path.name}); resume it or choose another out_dir")
    if resume and not state_path.exists():
        raise FileNotFoundError(f"{state_path}: nothing to resume")
    device = torch.device(_pick_device(recipe.device))
    torch.manual_seed(recipe.seed)
    n_mfcc = recipe.generator.n_mfcc
    if recipe.finetune_on:
        pairs = predicted_feature_pairs(recipe.cache, recipe.finetune_on, recipe.split, n_mfcc, recipe.max_utterances, str(device))
    else:
        pairs = true_feature_pairs(recipe.cache, recipe.split, n_mfcc, recipe.max_utterances)
    segment_frames = recipe.segment_samples // audio_features.HOP_LENGTH
    short = [p.id for p in pairs if p.n_frames < segment_frames]
    if short:
        log.warning("skipped %d utterances shorter than one segment (%d frames), e.g. %s", len(short), segment_frames, short[0])
    pairs = [p for p in pairs if p.n_frames >= segment_frames]
    if not pairs:
        raise ValueError(f"{recipe.cache}: no usable voiced utterances in split {recipe.split!r}")
    log.info("training on %d utterances (%.1f min of audio)", len(pairs), sum(p.audio.size for p in pairs) / audio_features.AUDIO_RATE / 60)

    generator = build_generator(recipe.generator)
    if recipe.init_from:
        init_config, init_generator = read_generator(recipe.init_from)
        if init_config != recipe.generator:
            raise ValueError(f"{recipe.init_from}: its generator config {init_config} differs from the recipe's {recipe.generator}")
        generator = init_generator
    generator = generator.to(device).train()
    discriminator = HifiganDiscriminator().to(device).train()
    betas = tuple(recipe.adam_betas)
    optimizer_g = torch.optim.AdamW(generator.parameters(), recipe.learning_rate, betas=betas)
    optimizer_d = torch.optim.AdamW(discriminator.parameters(), recipe.learning_rate, betas=betas)
    scheduler_g = torch.optim.lr_scheduler.ExponentialLR(optimizer_g, recipe.lr_decay)
    scheduler_d = torch.optim.lr_scheduler.ExponentialLR(optimizer_d, recipe.lr_decay)
    step, epoch, batch_in_epoch = 0, 0, 0
    if resume:
        state = torch.load(state_path, map_location=device, weights_only=False)
        generator.load_state_dict(state["generator"])
        if "discriminator" in state:
            discriminator.load_state_dict(state["discriminator"])
            optimizer_d.load_state_dict(state["optimizer_d"])
        for module, key in ((optimizer_g, "optimizer_g"), (scheduler_g, "scheduler_g"), (scheduler_d, "scheduler_d")):
            module.load_state_dict(state[key])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        log.info("resuming %s at step %d (epoch %d, batch %d)", out, step, epoch, batch_in_epoch)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", config_to_yaml(recipe))
    generator_loss, discriminator_loss = _training_losses(recipe)

    def save() -> None:
        save_generator(out / "generator.safetensors", generator, recipe.generator, step)
        state = {
            "generator": generator.state_dict(),
            "optimizer_g": optimizer_g.state_dict(),
            "scheduler_g": scheduler_g.state_dict(),
            "scheduler_d": scheduler_d.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
        }
        # Until it has trained, the discriminator is its seeded initialisation: 0.8 GB not worth writing.
        if step > recipe.discriminator_start_step:
            state.update(discriminator=discriminator.state_dict(), optimizer_d=optimizer_d.state_dict())
        atomic_torch_save(state_path, state)

    started = time.monotonic()
    budget_s = recipe.max_minutes * 60 if recipe.max_minutes else math.inf
    history_path = out / "history.json"
    history: list[dict] = json.loads(history_path.read_text()) if resume and history_path.is_file() else []
    bar = tqdm(total=recipe.max_steps or None, initial=step, desc="vocoder", unit="step")
    while True:
        batches = epoch_batches(len(pairs), recipe.batch_size, recipe.seed, epoch)
        rng = np.random.default_rng([recipe.seed, epoch, batch_in_epoch])
        log_mel, real = (t.to(device) for t in segment_batch(pairs, batches[batch_in_epoch], segment_frames, rng))
        if isinstance(generator, NoisyHifiganGenerator):
            # Fresh noise every step, a function of (seed, step) so that a resumed run draws the same.
            fake = generator(log_mel, generator.seeded_noise(log_mel, seed=recipe.seed * 1_000_003 + step))
        else:
            fake = generator(log_mel)
        losses = {}
        adversarial = step >= recipe.discriminator_start_step
        if adversarial:
            scores_fake, _ = discriminator(fake.detach())
            scores_real, _ = discriminator(real)
            loss_d = discriminator_loss(scores_fake, scores_real)["D_loss"]
            optimizer_d.zero_grad()
            loss_d.backward()
            optimizer_d.step()
            losses["D"] = loss_d.item()
            scores_fake, feats_fake = discriminator(fake)
            with torch.no_grad():
                _, feats_real = discriminator(real)
            terms = generator_loss(Stage.TRAIN, fake, real, scores_fake, feats_fake, feats_real)
        else:
            terms = generator_loss(Stage.TRAIN, fake, real)
        loss_g = terms["G_loss"]
        if recipe.stft_loss_weight:
            loss_stft = log_stft_loss(fake, real)
            loss_g = loss_g + recipe.stft_loss_weight * loss_stft
            losses["stft"] = loss_stft.item()
        if recipe.dc_loss_weight:
            loss_dc = dc_offset_loss(fake, real)
            loss_g = loss_g + recipe.dc_loss_weight * loss_dc
            losses["dc"] = loss_dc.item()
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        losses.update(G=loss_g.item(), mel=terms["G_l1_spec_loss"].item())
        if not all(math.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f"non-finite vocoder loss at step {step}: {losses}")
        step += 1
        batch_in_epoch += 1
        if batch_in_epoch == len(batches):
            epoch, batch_in_epoch = epoch + 1, 0
            scheduler_g.step()
            if adversarial:  # the discriminator's learning rate decays from its first step on
                scheduler_d.step()
        history.append({"step": step, **losses})
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if step % recipe.checkpoint_every == 0:
            save()
        if (recipe.max_steps and step >= recipe.max_steps) or time.monotonic() - started >= budget_s:
            break
    bar.close()
    save()
    atomic_write_json(history_path, history)
    plot_history(out / "losses.png", history)
    log.info("stopped at step %d after %.1f min; generator in %s", step, (time.monotonic() - started) / 60, out / "generator.safetensors")
    return out


def plot_history(path: str | os.PathLike, history: Sequence[dict]) -> None:
    """Loss curves of a training run (one panel per loss) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({key for row in history for key in row if key != "step"})
    if not names:
        return
    figure, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        rows = [row for row in history if name in row]
        axis.plot([row["step"] for row in rows], [row[name] for row in rows], linewidth=0.8)
        axis.set_ylabel(name)
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)


# --- evaluation: resynthesis from true features --------------------------------


@dataclass
class ResynthesisScores:
    """How well one vocoder turns true features back into the recorded audio."""

    method: str  # "hifigan" or "griffin-lim"
    source: str  # checkpoint path, or "griffin-lim fallback"
    utterances: int
    log_spectral_distance_db: float  # mean over utterances
    mel_cepstral_distortion_db: float  # mean over utterances, coefficients 1..24
    per_utterance: list[dict]


def score_resynthesis(vocoder: Vocoder, utterances: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> ResynthesisScores:
    """LSD and MCD of ``vocoder`` on ``(id, mfcc (N, n_mfcc), audio (256 N,))`` triples."""
    return score_signals(
        vocoder.method, vocoder.source, ((*utterance, vocoder.synthesize(utterance[1])) for utterance in utterances), len(utterances)
    )


def score_signals(method: str, source: str, signals: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray]], total: int) -> ResynthesisScores:
    """LSD and MCD of ``(id, mfcc (N, n_mfcc), recorded (256 N,), synthesized (256 N,))`` against the recordings.

    ``signals`` may be a generator (``total`` items, for the progress bar): synthesis happens as it is consumed.
    """
    rows = []
    for utterance_id, mfcc, audio, synthesized in tqdm(signals, desc=method, unit="utt", total=total):
        rows.append(
            {
                "id": utterance_id,
                "log_spectral_distance_db": log_spectral_distance(audio, synthesized),
                "mel_cepstral_distortion_db": mel_cepstral_distortion(mfcc, audio_features.acoustic_features(synthesized, mfcc.shape[1])),
            }
        )
    if not rows:
        raise ValueError("no utterances to score")
    return ResynthesisScores(
        method=method,
        source=source,
        utterances=len(rows),
        log_spectral_distance_db=float(np.mean([r["log_spectral_distance_db"] for r in rows])),
        mel_cepstral_distortion_db=float(np.mean([r["mel_cepstral_distortion_db"] for r in rows])),
        per_utterance=rows,
    )


#: ``ResynthesisScores.method`` of the second-rendition row of :func:`compare_resynthesis`.
SECOND_RENDITION = "second rendition"
#: Noise seed of that row's renditions.
RENDITION_NOISE_SEED = 1


def rendered_again(audio_path: str | os.PathLike, samples: int) -> np.ndarray:
    """A synthetic corpus utterance rendered again with new noise, at 22050 Hz, cut to ``samples``."""
    audio = audio_features.resample_audio(synthetic.second_rendition(audio_path, RENDITION_NOISE_SEED), synthetic.AUDIO_RATE)
    return np.pad(audio, (0, max(0, samples - audio.size)))[:samples]


def compare_resynthesis(
    cache_dir: str | os.PathLike,
    vocoder_path: str | os.PathLike | None,
    split: str = "test",
    limit: int = 0,
    out_dir: str | os.PathLike | None = None,
    second_rendition: bool = False,
) -> list[ResynthesisScores]:
    """Griffin-Lim and (when given) a vocoder checkpoint resynthesising the voiced audio of ``split``.

    Each utterance's true MFCC (from its audio) go through each method and
    the output is scored against the recording. With ``second_rendition``
    (synthetic corpora only) a last row scores the same speech rendered again
    with new noise (:func:`silentspeech.data.synthetic.second_rendition`):
    what an ideal vocoder, one that makes a new recording of the utterance,
    would score. Both distances compare against one realisation of the
    noise, which no vocoder can know, so this row is their floor for
    natural-sounding output; Griffin-Lim can score below it (vocoder/README.md).
    With ``out_dir``, writes ``resynthesis.json``, a spectrogram figure
    ``resynthesis.png`` and the first utterance as ``<id>.<method>.wav`` per method.
    """
    items = split_voiced_audio(cache_dir, split)
    if limit:
        items = items[:limit]
    if not items:
        raise ValueError(f"{cache_dir}: no voiced audio for split {split!r}")
    vocoders = [load_vocoder(None)]
    if vocoder_path is not None:
        vocoders.append(load_vocoder(vocoder_path))
    n_mfcc = vocoders[-1].n_mfcc
    utterances, paths = [], {}
    for utterance_id, path in items:
        try:
            mfcc, audio = frames_and_audio(path, n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", utterance_id, err)
            continue
        if mfcc.shape[0] * audio_features.HOP_LENGTH >= audio_features.N_FFT:
            utterances.append((utterance_id, mfcc, audio))
            paths[utterance_id] = path
    scores = [score_resynthesis(vocoder, utterances) for vocoder in vocoders]
    if second_rendition:
        renditions = [rendered_again(paths[i], audio.size) for i, _, audio in tqdm(utterances, desc="rendering again", unit="utt")]
        signals = [(*utterance, rendition) for utterance, rendition in zip(utterances, renditions)]
        scores.append(score_signals(SECOND_RENDITION, f"synthetic corpus, new noise (seed {RENDITION_NOISE_SEED})", signals, len(signals)))
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "resynthesis.json", {"cache": str(cache_dir), "split": split, "scores": [dataclasses.asdict(s) for s in scores]})
        first_id, first_mfcc, first_audio = utterances[0]
        examples = {"recorded": first_audio}
        for vocoder in vocoders:
            examples[vocoder.method] = vocoder.synthesize(first_mfcc)
        if second_rendition:
            examples[SECOND_RENDITION] = renditions[0]
        stem = first_id.replace("/", "_")
        for name, samples in examples.items():
            with atomic_open(out / f"{stem}.{name}.wav", "wb") as handle:
                soundfile.write(handle, samples, audio_features.AUDIO_RATE, format="WAV")
        plot_spectrograms(out / "resynthesis.png", examples, title=first_id)
    return scores


def plot_spectrograms(path: str | os.PathLike, signals: dict[str, np.ndarray], title: str = "") -> None:
    """Log-mel spectrograms of named 22050 Hz signals, one panel each, as a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(signals), 1, figsize=(8, 2.2 * len(signals)), sharex=True, squeeze=False)
    for axis, (name, samples) in zip(axes[:, 0], signals.items()):
        frames = audio_features.log_mel(samples)
        axis.imshow(frames.T, origin="lower", aspect="auto", extent=(0, frames.shape[0] / audio_features.FRAME_RATE, 0, frames.shape[1]))
        axis.set_ylabel(f"{name}\nmel bin")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    figure.tight_layout()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
