"""Timing helpers for the ``bench/`` scripts: threads, repeated timings, peak memory, tables.

Every bench script follows one convention::

    python bench/<name>.py --threads 2 [--repeats N] [--markdown]

and prints a table to stdout; with ``--markdown`` it prints a markdown
section instead (``## <title>``, the table, and one line naming the thread
count, the torch version, the CPU and the load average), which ``make bench``
collects into ``bench/results.md``. :func:`bench_arguments` builds that
parser and :func:`print_report` prints either form; :func:`stdout_to_stderr`
keeps what training prints out of that section.

Timings (:func:`time_calls`) are wall-clock milliseconds after warm-up
calls, summarised by the median and the interquartile range (robust to the
odd slow run on a shared machine), plus the median process CPU time (all
threads): on a loaded machine wall time grows with the other processes' load,
CPU time much less, so it tells what the call costs when the machine is quiet. When two implementations are compared
(plain vs fast), their calls are interleaved round by round so that a change
in machine load hits both alike.

Peak memory (:func:`peak_memory`) reads the kernel's own RSS high-water mark
(``VmHWM`` in ``/proc/self/status``) after resetting it through
``/proc/self/clear_refs``: exact (a sampling thread misses short spikes),
in-process (a child process would not share the loaded model), and free of
overhead while the call runs. Linux only; elsewhere the figure is ``None``.
The increase is measured on a call made before any warm-up: freed buffers of
earlier calls stay in the allocator and would hide the call's needs.

Decoding cost depends on how peaked the CTC posteriors are, so the decoding
benches read the posteriors of a trained recogniser on test EMG
(:func:`test_split_posteriors`; ``make quickstart`` leaves both in
``runs/quickstart``) and fall back, saying so, to noisy posteriors spelling
grammar sentences (:func:`spelled_posteriors`). :func:`grammar_lm` builds a
small 4-gram of the synthetic grammar in seconds for a bench without one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from silentspeech.tables import markdown_table, text_table

#: Where the benches look for quickstart outputs: ``$SILENTSPEECH_QUICKSTART`` (``make bench``
#: sets it), else ``runs/quickstart`` under the working directory (where ``make quickstart`` and
#: ``silentspeech quickstart`` write by default); never a path inside the installed package.
QUICKSTART = Path(os.environ.get("SILENTSPEECH_QUICKSTART") or "runs/quickstart")


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads and one inter-op thread in torch, and as many in OpenMP/BLAS children.

    Inter-op parallelism can only be set before torch runs any parallel work;
    a later call leaves it as it was.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already fixed by earlier parallel work in this process
        pass
    os.environ["OMP_NUM_THREADS"] = str(threads)


@dataclass
class Timing:
    """Summary of repeated wall-clock timings, milliseconds."""

    median_ms: float
    #: First and third quartiles (the interquartile range).
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    #: Median process CPU time (user + system, all threads) per call; None when not measured.
    cpu_ms: float | None = None

    @classmethod
    def from_seconds(cls, seconds: Sequence[float], cpu_seconds: Sequence[float] | None = None) -> "Timing":
        """Summarise wall-clock timings (and optionally CPU times) given in seconds."""
        ms = sorted(1000.0 * s for s in seconds)
        if len(ms) >= 2:
            q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
        else:
            q1 = q3 = ms[0]
        cpu_ms = None if cpu_seconds is None else 1000.0 * statistics.median(cpu_seconds)
        return cls(statistics.median(ms), q1, q3, ms[0], ms[-1], len(ms), cpu_ms)

    @property
    def spread(self) -> str:
        """The interquartile range as text, e.g. ``"41.2-44.0"``."""
        return f"{self.q1_ms:.3g}-{self.q3_ms:.3g}"


def time_calls(calls: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1) -> dict[str, Timing]:
    """Time each of ``calls`` ``repeats`` times after ``warmup`` untimed calls; returns a :class:`Timing` per name.

    The calls are interleaved (round r runs every call once), so slow spells
    of a shared machine fall on all of them alike.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            call()
            seconds[name].append(time.perf_counter() - start)
            cpu_seconds[name].append(time.process_time() - cpu_start)
    return {name: Timing.from_seconds(seconds[name], cpu_seconds[name]) for name in calls}


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", open("/proc/self/status").read(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


@dataclass
class MemoryPeak:
    """Resident memory around one call, MiB."""

    #: Peak RSS during the call minus the RSS just before it.
    increase_mb: float
    #: Peak RSS of the whole process during the call.
    peak_mb: float


def peak_memory(call: Callable[[], Any]) -> tuple[Any, MemoryPeak | None]:
    """Run ``call()`` once; return its result and its :class:`MemoryPeak` (None where the kernel cannot tell).

    See the module docstring for the method; make this the first call of the
    thing measured (before warm-up).
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        before = _status_kib("VmRSS")
    except OSError:
        return call(), None
    result = call()
    peak = _status_kib("VmHWM")
    return result, MemoryPeak((peak - before) / 1024.0, peak / 1024.0)


def real_time_factor(compute_seconds: float, signal_seconds: float) -> float:
    """Processing time over the duration of the signal processed (below 1: faster than real time)."""
    if signal_seconds <= 0:
        raise ValueError(f"signal_seconds must be positive, got {signal_seconds}")
    return compute_seconds / signal_seconds


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", open("/proc/cpuinfo").read(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_line(threads: int) -> str:
    """One line naming threads, torch version, CPU (and GPU), and the 1-minute load average."""
    device = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return (
        f"{threads} thread(s) (torch.get_num_threads() = {torch.get_num_threads()}), torch {torch.__version__}, "
        f"{os.cpu_count()} x {cpu_name()}{device}{load}"
    )


def bench_arguments(description: str, repeats: int = 5) -> argparse.ArgumentParser:
    """The parser every bench script starts from: ``--threads``, ``--repeats``, ``--markdown``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=repeats, help=f"timed runs per row after one warm-up (default {repeats})")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section for bench/results.md")
    return parser


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout, by this process and the training workers it starts, to stderr meanwhile.

    ``bench/run_all.py`` keeps a script's stdout as its results section, and
    Lightning prints model summaries there; file descriptor 1 itself is
    redirected because worker processes inherit it.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def print_report(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    threads: int,
    markdown: bool = False,
    notes: Sequence[str] = (),
) -> None:
    """Print a bench result: a terminal table, or with ``markdown`` a ``## title`` section.

    ``notes`` are lines printed under the table (what was measured on what input).
    """
    if markdown:
        print(f"## {title}\n")
        print(markdown_table(headers, rows) + "\n")
        for note in notes:
            print(note + "  ")
        print(f"Machine: {environment_line(threads)}.\n")
    else:
        print(f"{title}\n")
        print(text_table(headers, rows) + "\n")
        for note in notes:
            print(note)
        print(f"machine: {environment_line(threads)}")


def print_skipped(title: str, cost: str, threads: int, markdown: bool = False) -> None:
    """The section of a long bench run without ``--run`` (as ``make bench`` runs it): what ``--run`` would cost, e.g.
    ``"about 1.5 h on 2 cores"``."""
    print_report(title, ["skipped"], [[f"pass --run ({cost})"]], threads, markdown)


# --- inputs of the decoding benches


def grammar_lm(path: str | os.PathLike, count: int = 5000, seed: int = 1) -> Path:
    """Write a 4-gram ARPA of ``count`` synthetic-grammar sentences to ``path`` (a few seconds); returns it."""
    from silentspeech.data.synthetic.language import sentences
    from silentspeech.decoding.ngram import estimate_kneser_ney, write_arpa
    from silentspeech.text import normalize_text

    write_arpa(estimate_kneser_ney((normalize_text(text) for text in sentences(count, seed=seed)), order=4), path)
    return Path(path)


def spelled_posteriors(text: str, frames: int, rng: np.random.Generator, peak: float = 8.0, noise: float = 1.75) -> np.ndarray:
    """CTC log posteriors (frames, 38) spelling ``text`` over ``frames``: each character
    holds the first half of its time slot, blank the rest; logits ``peak`` plus Gaussian ``noise``."""
    from silentspeech.text import BLANK, NUM_CLASSES, text_to_ids

    ids = text_to_ids(text)
    logits = np.zeros((frames, NUM_CLASSES))
    slot = frames / len(ids)
    for i, label in enumerate(ids):
        start, end = int(i * slot), int((i + 1) * slot)
        middle = max(start + 1, start + int(slot / 2))
        logits[start:middle, label] = peak
        logits[middle:end, BLANK] = peak
    logits += rng.normal(0.0, noise, logits.shape)
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class TestSplit:
    """Preprocessed EMG of a cache's test split and a trained recogniser's posteriors of it."""

    emg: list[np.ndarray]  #: per utterance (samples, channels) float32 at 689.06 Hz
    texts: list[str]  #: normalised references
    log_probs: list[np.ndarray]  #: per utterance (frames, 38) at 86.13 frames/s
    recognizer: torch.nn.Module


def test_split_posteriors(recognizer: str | os.PathLike, cache: str | os.PathLike) -> TestSplit:
    """Run a trained recognition run directory over the test split of ``cache`` (torch, CPU)."""
    from silentspeech.data.cache import CachedUtterances
    from silentspeech.tasks import load_checkpoint

    model, _ = load_checkpoint(recognizer, task="recognition")
    model = model.cpu().eval()
    data = CachedUtterances(cache, "test")
    split = TestSplit([], [], [], model)
    with torch.inference_mode():
        for item in (data[i] for i in range(len(data))):
            emg = item["emg"].float()
            split.emg.append(emg.numpy())
            split.texts.append(item["text"])
            split.log_probs.append(torch.log_softmax(model(emg.T[None])["ctc_logits"].float(), dim=-1)[0].numpy())
    return split
