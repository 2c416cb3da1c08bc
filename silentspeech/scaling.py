"""Power laws of error against training data: the fit and its extrapolation.

How fast an error rate falls as labelled data grows is commonly described by
a power law, ``err = a * hours**-b`` (docs/design.md, *Scaling curves:
error as a power law of the data*): a straight line in
log-log coordinates, so it is fitted by least squares on ``(log hours, log
err)`` (``numpy.polyfit``; a few lines of our own around it: the checks and
the sign convention). ``bench/scaling.py`` fits one per generator and metric
and extrapolates it to hours it did not train on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def fit_power_law(hours: Sequence[float], errors: Sequence[float]) -> tuple[float, float]:
    """``(a, b)`` of ``err = a * hours**-b`` by least squares in log-log.

    Args:
        hours: training data of each point (any unit; ``a`` is the error at
            one unit), positive, at least two distinct values.
        errors: the error of each point (any unit, e.g. WER in %), positive.
            Several points may share an amount of data (seeds).

    Returns ``a`` in the unit of ``errors`` and the exponent ``b`` (positive
    when the error falls with more data). Raises ``ValueError`` with a
    one-line message for mismatched, too few, or non-positive values.
    """
    x, y = np.asarray(hours, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"hours and errors must be two flat sequences of one length (got shapes {x.shape} and {y.shape})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError("a power law needs positive, finite hours and errors (an error of 0 has no logarithm)")
    if len(np.unique(x)) < 2:
        raise ValueError(f"a power law needs at least two distinct amounts of data (got {sorted(set(x.tolist()))})")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(-slope)


def power_law(a: float, b: float, hours: float | Sequence[float]) -> np.ndarray:
    """``a * hours**-b``: the fitted error at ``hours`` (extrapolation beyond the fitted range included)."""
    return a * np.asarray(hours, dtype=np.float64) ** -b
