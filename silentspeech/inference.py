"""Fast inference of the speech model: its graph exported to ONNX Runtime, plain torch as the fallback.

:class:`FastSpeechModel` wraps a trained :class:`~silentspeech.models.speech.SpeechModel`
and is called like it (``fast(emg)`` -> a dict of the heads' outputs), so the
pipeline, the demo and the streaming decoder can swap one for the other.
:func:`load_fast_recognizer` and :func:`load_fast_producer` load a run
directory straight into one.

Why ONNX Runtime: on one thread of this project's CPU, 5 s of EMG through the
full-size model (width 192, 8 blocks) take 37 ms in ONNX Runtime, 62 ms as a
traced, frozen TorchScript graph and 65 ms in eager torch; on a loaded
machine the gap is wider (``bench/emg_to_text.py`` prints torch and this side
by side). ``torch.compile`` was not tried: its CPU backend needs a C++
toolchain at run time, which a user's machine may lack. The graph is exported
once, in memory, when the wrapper is built (about a second for the full
model), with the EMG length as a dynamic axis.

Exactness: the export always takes the masked path of
:meth:`SpeechModel.forward` (EMG zero-padded to a multiple of 8 samples plus
the true length), which gives a lone utterance the same outputs as the
unmasked path. Before the graph is used it is checked against the torch model
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
from silentspeech.signals import EMG_PER_FRAME, EMG_RATE

#: Largest absolute difference allowed between the exported graph's outputs and torch's.
TOLERANCE = 1e-4
#: ``backend`` values.
BACKENDS = ("onnxruntime", "torch")


def cpu_session(graph: bytes, threads: int):
    """An ONNX Runtime CPU session for a serialised graph, as every fast path here runs it.

    ``threads`` intra-op threads, one inter-op thread, errors-only logging.
    Idle worker threads sleep instead of spinning: spinning took a core from
    the beam search that follows and from other processes (2.5x slower
    forward on a loaded 2-core machine), and was no faster for the vocoder.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class _MaskedForward(torch.nn.Module):
    """The model's heads as a tuple, always through the masked (lengths) path: what gets exported."""

    def __init__(self, model: SpeechModel):
        super().__init__()
        self.model = model
        self.keys = [OUTPUT_KEYS[name] for name in model.config.outputs]

    def forward(self, emg: torch.Tensor, emg_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(emg, emg_lengths)
        return tuple(outputs[key] for key in self.keys)


def _padded(emg: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, ceil(T / 8) * 8) zero-padded: whole frames, as the model pads itself."""
    return F.pad(emg, (0, -emg.shape[2] % EMG_PER_FRAME))


def export_onnx(model: SpeechModel) -> bytes:
    """The ONNX graph (bytes) of ``model`` on CPU, inputs ``emg`` (B, C, T), T a multiple of 8, and ``emg_lengths`` (B,).

    Outputs are named after the model's output keys (``ctc_logits``, ``acoustic``, ...).
    """
    wrapper = _MaskedForward(model).eval()
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


class FastSpeechModel:
    """A speech model called as ``fast(emg, emg_lengths=None) -> {output key: tensor}``, on the fastest backend.

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
        self._session = None
        if backend == "torch" or (backend == "auto" and self.device.type != "cpu"):
            return
        try:
            self._session = self._onnx_session(threads or torch.get_num_threads())
            self.backend = "onnxruntime"
        except Exception as err:
            if backend == "onnxruntime":
                raise
            warnings.warn(f"fast inference unavailable, running plain torch: {err}", RuntimeWarning, stacklevel=2)

    def _onnx_session(self, threads: int):
        if self.device.type != "cpu":
            raise RuntimeError(f"the ONNX Runtime backend runs on CPU; the model is on {self.device}")
        session = cpu_session(export_onnx(self.model), threads)
        # Odd length: exercises the padding and the attention mask.
        emg = torch.randn(2, self.config.emg_channels, round(0.5 * EMG_RATE) + 3, generator=torch.Generator().manual_seed(0))
        lengths = torch.tensor([emg.shape[2], emg.shape[2] - 40])
        with torch.inference_mode():
            expected = self.model(emg, lengths)
        got = self._run_session(session, emg, lengths)
        frames = int(SpeechModel.frame_lengths(lengths[1]))
        for key in self.keys:
            difference = max(
                float((got[key][0] - expected[key][0]).abs().max()),
                float((got[key][1, :frames] - expected[key][1, :frames]).abs().max()),
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
        if self._session is None:
            with torch.inference_mode():
                outputs = self.model(emg.to(self.device), None if emg_lengths is None else emg_lengths.to(self.device))
            return {key: outputs[key] for key in self.keys}
        if emg.dim() != 3 or emg.shape[1] != self.config.emg_channels:
            raise ValueError(
                f"the speech model expects EMG of shape (batch, {self.config.emg_channels} channels, samples); "
                f"got shape {tuple(emg.shape)}"
            )
        if emg_lengths is None:
            emg_lengths = torch.full((emg.shape[0],), emg.shape[2])
        emg_lengths = torch.as_tensor(emg_lengths).cpu()
        if emg_lengths.shape != (emg.shape[0],) or int(emg_lengths.min()) < 1 or int(emg_lengths.max()) > emg.shape[2]:
            raise ValueError(f"emg_lengths must hold {emg.shape[0]} sample counts in 1..{emg.shape[2]}, got {emg_lengths.tolist()}")
        return self._run_session(self._session, emg.cpu(), emg_lengths)


def _load_fast(path: str | os.PathLike | SpeechModel, task: str, backend: str, threads: int | None) -> FastSpeechModel:
    if not isinstance(path, SpeechModel):
        from silentspeech.tasks import load_checkpoint

        path, _ = load_checkpoint(path, task=task)
    return FastSpeechModel(path.cpu(), backend, threads)


def load_fast_recognizer(
    path: str | os.PathLike | SpeechModel, backend: str = "auto", threads: int | None = None
) -> FastSpeechModel:
    """A recognition run directory / ``.safetensors`` (or a built model) as a CPU :class:`FastSpeechModel`.

    ``fast(emg)["ctc_logits"]`` gives (B, frames, 38) CTC logits; see
    :class:`FastSpeechModel` for ``backend`` and ``threads``.
    """
    return _load_fast(path, "recognition", backend, threads)


def load_fast_producer(path: str | os.PathLike | SpeechModel, backend: str = "auto", threads: int | None = None) -> FastSpeechModel:
    """A production run directory / ``.safetensors`` (or a built model) as a CPU :class:`FastSpeechModel`;
    ``fast(emg)["acoustic"]`` gives (B, frames, n_mfcc) MFCC."""
    return _load_fast(path, "production", backend, threads)

