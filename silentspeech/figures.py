"""Figures people would rather look at than read: EMG traces, spectrograms, alignments, losses, confusion matrices.

Every figure of the package is drawn here.

Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot: no display is needed, and a figure is freed like any object once
dropped (a long-running demo draws one per request; pyplot would keep them
all). The quickstart report and the demo draw the same pictures;
:func:`save_figure` writes one as a PNG atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from silentspeech.atomic import atomic_open
from silentspeech.features import FRAME_RATE, N_MELS, log_mel_from_mfcc
from silentspeech.preprocessing import EMG_RATE
from silentspeech.scaling import power_law


def _stacked_traces(axis: Axes, emg: np.ndarray, rate: float, label: str) -> None:
    """Draw each channel of ``emg`` (samples, channels) at ``rate`` Hz on its own baseline.

    Channels are scaled by their own robust amplitude (the 99th percentile of
    |x|) because sEMG channels differ by orders of magnitude in raw units.
    """
    emg = np.asarray(emg, dtype=np.float64)
    seconds = np.arange(emg.shape[0]) / rate
    for channel in range(emg.shape[1]):
        trace = emg[:, channel] - np.median(emg[:, channel])
        scale = np.percentile(np.abs(trace), 99) or 1.0
        axis.plot(seconds, 0.45 * trace / scale - channel, linewidth=0.5, color=f"C{channel % 10}")
    axis.set_yticks(-np.arange(emg.shape[1]), [f"ch {c}" for c in range(emg.shape[1])])
    axis.set_ylim(-emg.shape[1] + 0.4, 0.6)
    axis.set_xlim(0, emg.shape[0] / rate)
    axis.set_ylabel(label)


def emg_figure(raw: np.ndarray, rate: float, filtered: np.ndarray | None = None, title: str = "") -> Figure:
    """Raw EMG, and the model's filtered input when given, one trace per channel.

    Args:
        raw: raw EMG ``(samples, channels)`` in recording units at ``rate`` Hz.
        rate: sampling rate of ``raw``, Hz.
        filtered: preprocessed EMG ``(samples', channels)`` at 689.06 Hz
            (:func:`~silentspeech.preprocessing.preprocess_emg`), drawn in a second panel.
        title: figure title.
    """
    panels = [("raw", raw, rate)] + ([] if filtered is None else [("filtered", filtered, EMG_RATE)])
    channels = np.asarray(raw).shape[1]
    figure = Figure(figsize=(9, 0.35 * channels * len(panels) + 1.2), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)
    for axis, (label, emg, emg_rate) in zip(axes[:, 0], panels):
        _stacked_traces(axis, emg, emg_rate, f"{label} ({emg_rate:g} Hz)")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    return figure


def log_mel_figure(panels: dict[str, np.ndarray], title: str = "") -> Figure:
    """Named log-mel spectrograms ``(frames, n_mels)`` at 86.13 Hz, one panel each, on one colour scale."""
    low = min(float(np.min(frames)) for frames in panels.values())
    high = max(float(np.max(frames)) for frames in panels.values())
    figure = Figure(figsize=(9, 2.2 * len(panels) + 0.4), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)
    for axis, (name, frames) in zip(axes[:, 0], panels.items()):
        image = axis.imshow(
            np.asarray(frames).T,
            origin="lower",
            aspect="auto",
            extent=(0, frames.shape[0] / FRAME_RATE, 0, frames.shape[1]),
            vmin=low,
            vmax=high,
        )
        axis.set_ylabel(f"{name}\nmel bin")
    figure.colorbar(image, ax=axes[:, 0].tolist(), label="log magnitude")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    return figure


def spectrogram_figure(
    predicted: np.ndarray,
    true: np.ndarray | None = None,
    features: Literal["mfcc", "log_mel"] = "mfcc",
    title: str = "",
) -> Figure:
    """Predicted (and, when given, true) speech features drawn as log-mel spectrograms.

    Args:
        predicted: ``(frames, n)`` at 86.13 Hz: MFCC (``n <= 80``; inverted to
            80 log-mel bins by :func:`~silentspeech.features.log_mel_from_mfcc`)
            or log-mel (``n`` mel bins), as ``features`` says.
        true: the reference features, same kind; may differ in length.
        features: ``"mfcc"`` or ``"log_mel"``.
        title: figure title.
    """
    if features not in ("mfcc", "log_mel"):
        raise ValueError(f"features must be 'mfcc' or 'log_mel', got {features!r}")
    to_log_mel = (lambda f: log_mel_from_mfcc(f, N_MELS)) if features == "mfcc" else np.asarray
    panels = {"predicted": to_log_mel(predicted)}
    if true is not None:
        panels["true"] = to_log_mel(true)
    return log_mel_figure(panels, title)


def dtw_path_figure(
    costs: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    row_label: str = "predicted",
    col_label: str = "true",
    title: str = "",
) -> Figure:
    """A DTW alignment: the frame cost matrix with the cheapest path drawn over it.

    Args:
        costs: ``(N, M)`` cost of pairing frame i of one sequence with frame j
            of the other, both at 86.13 Hz (e.g. Euclidean MFCC distances).
        rows, cols: the path as two int arrays of equal length, in path order
            (:func:`~silentspeech.alignment.dtw_path`).
        row_label, col_label: what the N rows and the M columns are.
        title: figure title.
    """
    costs = np.asarray(costs)
    figure = Figure(figsize=(6, 5), layout="constrained")
    axis = figure.subplots()
    extent = (0, costs.shape[1] / FRAME_RATE, 0, costs.shape[0] / FRAME_RATE)
    image = axis.imshow(costs, origin="lower", aspect="auto", extent=extent, cmap="viridis")
    # Frame centres, so the path sits on the cells it pairs.
    axis.plot((np.asarray(cols) + 0.5) / FRAME_RATE, (np.asarray(rows) + 0.5) / FRAME_RATE, color="white", linewidth=1.2)
    figure.colorbar(image, ax=axis, label="frame distance")
    axis.set_xlabel(f"{col_label} (s)")
    axis.set_ylabel(f"{row_label} (s)")
    axis.set_title(title)
    return figure


def history_figure(history: Sequence[Mapping[str, float]]) -> Figure:
    """Training losses per step, one panel per loss: ``history`` rows are ``{"step": n, "<loss>": value, ...}``."""
    names = sorted({key for row in history for key in row if key != "step"}) or ["(no losses)"]
    figure = Figure(figsize=(7, 2.2 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], names):
        rows = [row for row in history if name in row]
        axis.plot([row["step"] for row in rows], [row[name] for row in rows], linewidth=0.8)
        axis.set_ylabel(name)
    axes[-1, 0].set_xlabel("step")
    return figure


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """A confusion matrix (rows true, columns predicted), each row shaded as fractions of its class, counts written in."""
    confusion = np.asarray(confusion)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * len(class_names), 20)
    figure = Figure(figsize=(size, size * 0.85), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    many = len(class_names) > 8
    axis.set_xticks(ticks, class_names, rotation=90 if many else 45, ha="center" if many else "right")
    axis.set_yticks(ticks, class_names)
    if len(class_names) <= 15:
        for i in ticks:
            for j in ticks:
                if confusion[i, j]:
                    axis.text(j, i, str(confusion[i, j]), ha="center", va="center", color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title or "confusion matrix")
    figure.colorbar(image, ax=axis, fraction=0.046, label="fraction of the true class")
    return figure


def reconstruction_figure(emg: np.ndarray, predicted: np.ndarray, masked: np.ndarray, patch_len: int, mask_ratio: float) -> Figure:
    """Masked-reconstruction pretraining on one window: input and reconstruction per channel, masked patches shaded.

    Args:
        emg: input ``(channels, samples)``, scaled to [-1, 1].
        predicted: the reconstruction, same shape.
        masked: ``(channels, patches)`` booleans, True where the patch was masked.
        patch_len: samples per patch.
        mask_ratio: the share of masked patches, for the title.
    """
    shown = emg.shape[0]
    figure = Figure(figsize=(10, 1.4 * shown + 0.6), layout="constrained")
    axes = figure.subplots(shown, 1, sharex=True, squeeze=False)
    for c, axis in enumerate(axes[:, 0]):
        for p in np.flatnonzero(masked[c]):
            axis.axvspan(p * patch_len, (p + 1) * patch_len, color="0.85", lw=0)
        axis.plot(emg[c], color="k", lw=0.8, label="input")
        axis.plot(predicted[c], color="tab:red", lw=0.8, label="reconstruction")
        axis.set_ylabel(f"ch {c}")
        axis.set_ylim(-1.1, 1.1)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=2)
    axes[0, 0].set_title(f"masked reconstruction ({round(mask_ratio * 100)} % of patches masked, shaded)")
    axes[-1, 0].set_xlabel("sample")
    return figure


#: One curve of a scaling panel: the hours of each point, its error, and the fitted power law ``(a, b)`` or None.
ScalingCurve = tuple[Sequence[float], Sequence[float], "tuple[float, float] | None"]


def scaling_figure(panels: Mapping[str, Mapping[str, ScalingCurve]], up_to_hours: float) -> Figure:
    """Error against training hours in log-log, one panel per metric (two a row): each curve's points and its power law out to ``up_to_hours``.

    ``panels`` maps a panel title (the metric, e.g. ``"beam WER %"``) to
    ``{curve name: (hours, errors, (a, b) or None)}`` (:func:`silentspeech.scaling.fit_power_law`).
    """
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.5 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis in axes[len(panels):]:
        axis.set_axis_off()
    for axis, (title, curves) in zip(axes, panels.items()):
        for k, (name, (hours, errors, fit)) in enumerate(curves.items()):
            axis.scatter(hours, errors, color=f"C{k % 10}", s=18, label=name)
            if fit is not None:
                line = np.geomspace(min(hours), up_to_hours, 50)
                axis.plot(line, power_law(*fit, line), color=f"C{k % 10}", lw=1, ls="--", label=f"a {fit[0]:.3g}, b {fit[1]:.2f}")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("training hours")
        axis.set_title(title)
        axis.legend(fontsize=7)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG to ``path`` atomically and return the path."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return path
