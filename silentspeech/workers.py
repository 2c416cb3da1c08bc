"""Process pools whose workers die with the run that started them.

``prepare`` and ``synth-corpus`` spread independent utterances over worker
processes (:func:`each_result`). A pool's workers otherwise outlive a ``kill -9`` of their parent
for good (reparented to PID 1, each holding its imports' memory), so every
worker asks the kernel to end it when its parent dies (:func:`die_with_parent`).
The pool is the standard library's; only that request is ours, because
``concurrent.futures`` has no option for it and the packages that wrap
``prctl`` (python-prctl) are Linux-only C builds that would replace one
ctypes call.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

T = TypeVar("T")

#: ``prctl`` option of <linux/prctl.h>: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def each_result(function: Callable[..., T], calls: Iterable[tuple[Any, ...]], workers: int) -> Iterator[T]:
    """``function(*args)`` for every ``args`` in ``calls``, yielded as each finishes.

    ``workers`` <= 1 runs them in this process, in order; more runs them in a
    :func:`worker_pool`, in the order they finish.
    """
    if workers <= 1:
        for args in calls:
            yield function(*args)
        return
    with worker_pool(workers) as pool:
        for future in as_completed([pool.submit(function, *args) for args in calls]):
            yield future.result()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that die with this one.

    Forked where the platform allows, so that workers inherit the imported
    modules instead of importing torch again.
    """
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process ``parent`` that started it dies.

    On Linux the kernel sends the worker SIGKILL when its parent dies
    (``prctl`` ``PR_SET_PDEATHSIG``, through ctypes since the standard library
    has no wrapper); elsewhere a daemon thread polls the parent's pid.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _watch_parent(parent: int, interval_s: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    os._exit(1)
