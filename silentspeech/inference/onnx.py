"""Fast inference of the speech model: its graph exported to ONNX Runtime, plain torch as the fallback.

:class:`OnnxSpeechModel` wraps a trained :class:`~silentspeech.models.speech.SpeechModel`
and is called like it (``fast(emg)`` -> a dict of the heads' outputs), so the
pipeline, the demo and the streaming decoder can swap one for the other.
:func:`load_fast_recognizer` and :func:`load_fast_producer` load a run
directory straight into one.

Why ONNX Runtime: on CPU it ran the full-size model faster than eager
torch or a traced TorchScript graph, and ``torch.compile`` was no faster
and needs a C++ toolchain at run time (timings: docs/measurements.md;
``bench/emg_to_text.py`` prints both paths side by side). The graph is
exported once, in memory, when the wrapper is built, with the EMG length as
a dynamic axis.

Two graphs: attention without a padding mask is faster (docs/measurements.md),
so batches in which every item fills all its frames (every single
utterance) run a graph without the mask, built with the wrapper; a padded
batch gets the masked graph, exported the first time one arrives.

Exactness: both take the lengths path of :meth:`SpeechModel.forward` (EMG
zero-padded to a multiple of 8 samples plus the true lengths), which gives a
lone utterance the same outputs as the unmasked path. Before a graph is used it is checked against the torch model
on random EMG of odd length; beyond :data:`TOLERANCE` (or when onnxruntime or
the export fails) the wrapper warns and stays on torch, and ``backend`` says
which one runs. ONNX Runtime is used on CPU only; on CUDA torch runs.
"""

from __future__ import annotations

import io
import os
import warnings

import torch
import torch.nn.functional as F

from silentspeech.models.speech import OUTPUT_KEYS, SpeechModel
from silentspeech.models.tinymyo import check_lengths
from silentspeech.preprocessing import EMG_PER_FRAME, EMG_RATE
from silentspeech.runtime import cpu_session

#: Largest absolute difference allowed between the exported graph's outputs and torch's.
TOLERANCE = 1e-4
#: ``backend`` values.
BACKENDS = ("onnxruntime", "torch")


class _GraphForward(torch.nn.Module):
    """The model's heads as a tuple, always through the lengths path: what gets exported.

    ``padded_frames=False`` drops attention's padding mask (see :meth:`SpeechModel.forward`).
    """

    def __init__(self, model: SpeechModel, padded_frames: bool):
        super().__init__()
        self.model = model
        self.padded_frames = padded_frames
        self.keys = [OUTPUT_KEYS[name] for name in model.config.outputs]

    def forward(self, emg: torch.Tensor, emg_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(emg, emg_lengths, padded_frames=self.padded_frames)
        return tuple(outputs[key] for key in self.keys)


def _padded(emg: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, ceil(T / 8) * 8) zero-padded: whole frames, as the model pads itself."""
    return F.pad(emg, (0, -emg.shape[2] % EMG_PER_FRAME))


def export_onnx(model: SpeechModel, padded_frames: bool = True) -> bytes:
    """The ONNX graph (bytes) of ``model`` on CPU, inputs ``emg`` (B, C, T), T a multiple of 8, and ``emg_lengths`` (B,).

    Outputs are named after the model's output keys (``ctc_logits``, ``acoustic``, ...).
    ``padded_frames=False``: a graph for batches in which every item fills all
    ceil(T / 8) frames (no attention mask; faster).
    """
    wrapper = _GraphForward(model, padded_frames).eval()
    example = _padded(torch.zeros(1, model.config.emg_channels, round(EMG_RATE)))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The tracer warns about every Python-side shape check it turns into a constant.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example, torch.tensor([example.shape[2]])),
            buffer,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
            input_names=["emg", "emg_lengths"],
            output_names=wrapper.keys,
            dynamic_axes={"emg": {0: "batch", 2: "samples"}, "emg_lengths": {0: "batch"}}
            | {key: {0: "batch", 1: "frames"} for key in wrapper.keys},
            opset_version=17,
        )
    return buffer.getvalue()


class OnnxSpeechModel:
    """A speech model run as a checked ONNX Runtime graph (plain torch where that cannot be), called as ``fast(emg, emg_lengths=None) -> {output key: tensor}``.

    Args:
        model: a :class:`SpeechModel` (put into eval mode).
        backend: ``"auto"`` (ONNX Runtime on CPU, falling back to torch with a
            warning), ``"onnxruntime"`` (raise instead of falling back) or ``"torch"``.
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, model: SpeechModel, backend: str = "auto", threads: int | None = None) -> None:
        if backend not in ("auto",) + BACKENDS:
            raise ValueError(f"backend must be auto, {' or '.join(BACKENDS)}; got {backend!r}")
        self.model = model.eval()
        self.config = model.config
        self.keys = [OUTPUT_KEYS[name] for name in model.config.outputs]
        self.device = next(model.parameters()).device
        self.backend = "torch"
        self._threads = threads or torch.get_num_threads()
        self._strict = backend == "onnxruntime"
        #: padded_frames -> ONNX Runtime session (None: that kind of batch runs in torch).
        self._sessions: dict[bool, object] = {}
        if backend == "torch" or (backend == "auto" and self.device.type != "cpu"):
            return
        if self._session_for(False) is not None:
            self.backend = "onnxruntime"

    def _session_for(self, padded_frames: bool):
        """The session for batches with (True) or without padding frames, built at first use; None: torch runs them.

        Batches without padding frames (every single utterance) are the common
        case and get their graph when the wrapper is built; a padded batch's
        graph costs another export the first time one arrives.
        """
        if padded_frames not in self._sessions:
            try:
                self._sessions[padded_frames] = self._onnx_session(padded_frames)
            except Exception as err:
                if self._strict:
                    raise
                warnings.warn(f"fast inference unavailable, running plain torch: {err}", RuntimeWarning, stacklevel=3)
                self._sessions[padded_frames] = None
        return self._sessions[padded_frames]

    def _onnx_session(self, padded_frames: bool):
        if self.device.type != "cpu":
            raise RuntimeError(f"the ONNX Runtime backend runs on CPU; the model is on {self.device}")
        session = cpu_session(export_onnx(self.model, padded_frames), self._threads)
        # Odd length: exercises the padding to whole frames; a padded batch also the attention mask.
        emg = torch.randn(2, self.config.emg_channels, round(0.5 * EMG_RATE) + 3, generator=torch.Generator().manual_seed(0))
        lengths = torch.tensor([emg.shape[2], emg.shape[2] - 40 if padded_frames else emg.shape[2]])
        with torch.inference_mode():
            expected = self.model(emg, lengths)
        got = self._run_session(session, emg, lengths)
        for key in self.keys:
            difference = max(
                float((got[key][item, :frames] - expected[key][item, :frames]).abs().max())
                for item, frames in enumerate(SpeechModel.frame_lengths(lengths).tolist())
            )
            if not difference <= TOLERANCE:
                raise RuntimeError(f"the exported graph's {key} differ from torch's by {difference:.3g} (> {TOLERANCE:g})")
        return session

    @staticmethod
    def _run_session(session, emg: torch.Tensor, emg_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        inputs = {
            "emg": _padded(emg.float()).contiguous().numpy(),
            "emg_lengths": emg_lengths.to(torch.int64).numpy(),
        }
        names = [output.name for output in session.get_outputs()]
        return {name: torch.from_numpy(value) for name, value in zip(names, session.run(names, inputs))}

    def __call__(self, emg: torch.Tensor, emg_lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the heads for EMG (B, C, T) at 689.06 Hz: (B, ceil(T / 8), ...) per key, as the model gives them.

        ``emg_lengths`` (B,): valid samples per item of a zero-padded batch
        (default: all T). Unlike :meth:`SpeechModel.forward`, no ``hidden``.
        """
        if self.backend == "onnxruntime":
            if emg.dim() != 3 or emg.shape[1] != self.config.emg_channels:
                raise ValueError(
                    f"the speech model expects EMG of shape (batch, {self.config.emg_channels} channels, samples); "
                    f"got shape {tuple(emg.shape)}"
                )
            batch, _, samples = emg.shape
            emg_lengths = torch.full((batch,), samples) if emg_lengths is None else check_lengths(emg_lengths, batch, samples, torch.device("cpu"))
            padded_frames = bool((SpeechModel.frame_lengths(emg_lengths) < SpeechModel.frame_lengths(samples)).any())
            session = self._session_for(padded_frames)
            if session is not None:
                return self._run_session(session, emg.cpu(), emg_lengths)
        with torch.inference_mode():
            outputs = self.model(emg.to(self.device), None if emg_lengths is None else emg_lengths.to(self.device))
        return {key: outputs[key] for key in self.keys}


def _load_fast(path: str | os.PathLike | SpeechModel, task: str, backend: str, threads: int | None) -> OnnxSpeechModel:
    if not isinstance(path, SpeechModel):
        from silentspeech.tasks import load_checkpoint

        path, _ = load_checkpoint(path, task=task)
    return OnnxSpeechModel(path.cpu(), backend, threads)


def load_fast_recognizer(
    path: str | os.PathLike | SpeechModel, backend: str = "auto", threads: int | None = None
) -> OnnxSpeechModel:
    """A recognition run directory / ``.safetensors`` (or a built model) as a CPU :class:`OnnxSpeechModel`.

    ``fast(emg)["ctc_logits"]`` gives (B, frames, 38) CTC logits; see
    :class:`OnnxSpeechModel` for ``backend`` and ``threads``.
    """
    return _load_fast(path, "recognition", backend, threads)


def load_fast_producer(path: str | os.PathLike | SpeechModel, backend: str = "auto", threads: int | None = None) -> OnnxSpeechModel:
    """A production run directory / ``.safetensors`` (or a built model) as a CPU :class:`OnnxSpeechModel`;
    ``fast(emg)["acoustic"]`` gives (B, frames, n_mfcc) MFCC."""
    return _load_fast(path, "production", backend, threads)

