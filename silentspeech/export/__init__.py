"""Int8 export of a TinyMyo encoder (and gesture head) for GAP9.

:func:`export_gap9` is what ``silentspeech export gap9`` runs: it quantises a
model on calibration windows (:mod:`.quantize`), writes ``model_qdq.onnx``
(:mod:`.onnx_qdq`) and checks it with onnxruntime, writes the C99 package
``c/`` (:mod:`.c_codegen`) and checks its host build bit for bit against the
integer reference (:mod:`.int_reference`), measures int8 against float
accuracy on labelled test windows, and writes ``report.md`` and
``export.json`` (:mod:`.report`). :func:`export_checkpoint` does the same
for a checkpoint on disk, with calibration and test windows from the data
its run trained on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.export.c_codegen import L1_TILE_BYTES, MemoryPlan, build_host, find_compiler, run_host, write_c_package
from silentspeech.export.int_reference import IntNetwork, quantize_input, run_integer
from silentspeech.export.quantize import DEFAULT_PERCENTILE, ExportError, fake_quant_forward, quantize_model, torch_forward
from silentspeech.export.report import (
    ExportChecks,
    GAP9Assumptions,
    compare_accuracy,
    markdown_report,
    summary,
)
from silentspeech.runs import config_file, run_path

log = logging.getLogger(__name__)

__all__ = ["ExportError", "ExportResult", "export_checkpoint", "export_gap9"]


@dataclass
class ExportResult:
    """What :func:`export_gap9` wrote and measured."""

    out: Path
    network: IntNetwork
    plan: MemoryPlan
    checks: ExportChecks


def export_gap9(
    model: torch.nn.Module,
    calibration: np.ndarray,
    out: str | Path,
    test_windows: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    title: str = "TinyMyo",
    labels: list[str] | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    check_windows: int = 32,
    l1_budget: int = L1_TILE_BYTES,
    assumptions: GAP9Assumptions = GAP9Assumptions(),
    build_c: bool = True,
    progress: bool = False,
) -> ExportResult:
    """Quantise ``model`` and write ``model_qdq.onnx``, ``c/``, ``report.md`` and ``export.json`` into ``out``.

    ``model``: a :class:`~silentspeech.models.tinymyo.TinyMyoEncoder` or a
    :class:`~silentspeech.models.heads.GestureClassifier` (anything else
    raises :class:`ExportError` naming the layer). ``calibration``: float EMG
    windows (B, C, T) as the model sees them; their size is the exported
    input size. ``test_windows``/``test_labels``: a labelled split (B, C, T)
    and (B,) for the int8-versus-float accuracy (classifiers only). The ONNX
    and C checks run on the first ``check_windows`` test windows (else
    calibration windows). ``build_c=False`` skips compiling the host C build.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calibration = np.asarray(calibration, dtype=np.float32)
    network = quantize_model(model, calibration, percentile=percentile, progress=progress)
    network.labels = list(labels or [])
    checks = ExportChecks()
    probe = np.asarray(test_windows if test_windows is not None and len(test_windows) else calibration, np.float32)
    probe = probe[:check_windows]

    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        from silentspeech.export.onnx_qdq import check_onnx, write_onnx

        onnx_path = write_onnx(network, out / "model_qdq.onnx")
        checks.onnx = check_onnx(onnx_path, probe, torch_forward(model, probe), fake_quant_forward(network, probe))
        log.info("model_qdq.onnx: max |diff| %.4g vs float, %.4g vs fake-quant", checks.onnx.versus_float, checks.onnx.versus_fake_quant)
    else:
        checks.skipped.append("model_qdq.onnx (the onnx and onnxruntime packages are not installed)")

    plan = write_c_package(network, out / "c", l1_budget)
    if not build_c:
        checks.skipped.append("the host C build (not asked for)")
    elif find_compiler() is None:
        checks.skipped.append("the host C build (no C compiler found)")
    else:
        integers = quantize_input(network, probe)
        got = run_host(build_host(out / "c"), network, integers)
        expected = run_integer(network, integers)
        same = int(sum(np.array_equal(g, e) for g, e in zip(got, expected)))
        checks.c_bit_exact = (same, len(probe))
        log.info("host C build: %d of %d windows bit-exact with the integer reference", same, len(probe))

    if network.head is None:
        checks.skipped.append("accuracy (a bare encoder has no classes)")
    elif test_windows is None or test_labels is None or len(test_windows) == 0:
        checks.skipped.append("accuracy (no labelled test windows)")
    else:
        test_windows = np.asarray(test_windows, np.float32)
        checks.accuracy = compare_accuracy(network, torch_forward(model, test_windows), test_windows, np.asarray(test_labels))
        log.info(
            "accuracy on %d test windows: float %.4f, int8 %.4f",
            checks.accuracy.windows, checks.accuracy.float_accuracy, checks.accuracy.int8_accuracy,
        )

    atomic_write_text(out / "report.md", markdown_report(network, plan, title, checks, assumptions))
    atomic_write_json(out / "export.json", summary(network, plan, checks, assumptions))
    return ExportResult(out, network, plan, checks)


# --- from a checkpoint on disk ------------------------------------------------------------


def _spread(total: int, count: int) -> np.ndarray:
    """Indices of ``count`` items spread evenly over ``total`` (all of them for 0 or more than there are)."""
    if count <= 0 or count >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, count).round().astype(int)


def _windows(dataset, picks: np.ndarray) -> np.ndarray:
    """The ``picks`` of a gesture window dataset as (count, C, T) float32."""
    return np.stack([dataset[int(i)]["emg"].numpy() for i in picks]).astype(np.float32)


def synthetic_windows(channels: int, samples: int, count: int) -> np.ndarray:
    """Windows of synthetic gesture EMG (2 kHz, TinyMyo's rate), z-scored: for sizing a bare encoder only."""
    from silentspeech.data.gestures.recipe import GestureDataConfig, load_gesture_data
    from silentspeech.data.synthetic.gestures import SyntheticGestures

    config = GestureDataConfig(
        dataset="synthetic", window=samples, stride=max(1, samples // 2), synthetic=SyntheticGestures(channels=channels, rate=2000.0)
    )
    train = load_gesture_data(config).train
    return _windows(train, _spread(len(train), count))


def export_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    calibration: str | os.PathLike | None = None,
    calibration_windows: int = 256,
    test_windows: int = 0,
    channels: int | None = None,
    samples: int | None = None,
    **options,
) -> ExportResult:
    """:func:`export_gap9` on a checkpoint on disk.

    ``checkpoint``: a training run (its folder, or a ``.safetensors`` with the
    run's ``config.yaml`` beside it), loaded with
    :func:`silentspeech.tasks.load_checkpoint`; or a bare TinyMyo encoder file
    (released layout), loaded with :func:`~silentspeech.models.tinymyo.load_tinymyo`,
    whose ``channels`` may be set (patches are embedded per channel).

    Calibration windows: ``calibration`` as a ``.npy`` file of float windows
    (B, C, T) as the model sees them; else, for a gesture run,
    ``calibration_windows`` windows spread over its training split, and its
    test split (``test_windows`` of them, 0 = all) for the accuracy. The
    string ``"synthetic"`` calibrates a bare encoder on synthetic gesture
    windows of ``samples`` samples: good for sizing and cost, not for
    deployment. ``options`` go to :func:`export_gap9`.
    """
    from silentspeech.models.tinymyo import TinyMyoPretrainer, load_tinymyo

    checkpoint = Path(checkpoint)
    run_config = config_file(checkpoint)
    data_config, labels, tests = None, None, None
    if run_config.is_file():
        from silentspeech.tasks import load_checkpoint

        model, config = load_checkpoint(checkpoint)
        data_config = getattr(config, "data", None)
        labels = list(getattr(getattr(config, "model", None), "class_names", []) or [])
        title = f"{type(model).__name__} from {checkpoint}"
    else:
        model, _ = load_tinymyo(checkpoint)
        if channels is not None and channels != model.config.channels:
            model, _ = load_tinymyo(checkpoint, dataclasses.replace(model.config, channels=channels))
        model.eval()
        title = f"TinyMyo encoder from {checkpoint}"
    if isinstance(model, TinyMyoPretrainer):
        model = model.encoder  # the masked-reconstruction head is for pretraining only
        log.info("exporting the encoder of a pretraining checkpoint (its reconstruction head is dropped)")
    encoder = getattr(model, "encoder", model)

    from silentspeech.data.gestures.recipe import GestureDataConfig

    if calibration is not None and str(calibration) == "synthetic":
        windows = synthetic_windows(encoder.config.channels, samples or 1000, calibration_windows)
        log.warning("calibrating on synthetic gesture windows: fine for sizing and cost, not for deployment")
    elif calibration is not None:
        path = Path(calibration)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: calibration windows not found (a .npy of float windows (count, channels, samples))")
        windows = np.load(path).astype(np.float32)
        if windows.ndim != 3 or windows.shape[1] != encoder.config.channels:
            raise ExportError(
                f"{path}: calibration windows must be (count, {encoder.config.channels} channels, samples), got {windows.shape}"
            )
    elif isinstance(data_config, GestureDataConfig):
        from silentspeech.data.gestures.recipe import load_gesture_data

        if data_config.root:  # a relative root is the training folder's (silentspeech.runs.run_path)
            data_config.root = str(run_path(checkpoint, config, "data.root", "--calibration WINDOWS.npy instead of the run's training split"))

        data = load_gesture_data(data_config)
        windows = _windows(data.train, _spread(len(data.train), calibration_windows))
        if len(data.test):
            picks = _spread(len(data.test), test_windows)
            tests = (_windows(data.test, picks), data.test.labels[picks])
    else:
        raise ExportError(
            f"{checkpoint}: no gesture dataset to calibrate on; give calibration windows (a .npy file, or 'synthetic')"
        )
    test_x, test_y = tests if tests is not None else (None, None)
    return export_gap9(model, windows, out, test_x, test_y, title=title, labels=labels, **options)
