"""Measuring helpers shared by the experiments, the labs, the book and the benchmarks.

* :func:`best_times` / :func:`best_time`: best-of-n wall-clock time of one or several functions;
* :func:`fit_line`: a least-squares line with its coefficient of determination R².
"""

from __future__ import annotations

import time

import numpy as np


def best_times(fns, repeats: int = 5, warmup: bool = True, min_total: float = 0.0) -> list:
    """Best (smallest) seconds per call of each function in ``fns``, timed round-robin.

    fns : callables taking no argument. repeats : timed rounds (a positive integer).
    warmup : one untimed call of each first (it starts worker pools and fills caches).
    min_total : each function is called in a loop of at least this many seconds per round (the
        loop length is set from one call), which steadies the timing of very short calls.

    Interleaving the functions within every round means a burst of load from another process
    penalises one round of all of them, not every round of one; the minimum, not the mean, is the
    honest estimate on a shared machine, since other processes only ever add time.
    """
    fns = list(fns)
    if not fns or not all(callable(f) for f in fns):
        raise TypeError("fns must be a non-empty sequence of callables")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if not np.isfinite(min_total) or min_total < 0:
        raise ValueError(f"min_total must be a finite number >= 0, got {min_total!r}")
    numbers = []
    for fn in fns:
        if warmup:
            fn()
        if min_total > 0:
            t0 = time.perf_counter()
            fn()
            numbers.append(max(1, int(min_total / max(time.perf_counter() - t0, 1e-7))))
        else:
            numbers.append(1)
    best = [np.inf] * len(fns)
    for _ in range(int(repeats)):
        for k, (fn, number) in enumerate(zip(fns, numbers)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / number)
    return [float(b) for b in best]


def best_time(fn, repeats: int = 5, warmup: bool = True, min_total: float = 0.0) -> float:
    """Best (smallest) wall-clock seconds per call of ``fn()`` over ``repeats`` rounds; see
    :func:`best_times`."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    return best_times([fn], repeats, warmup, min_total)[0]


def fit_line(x, y) -> tuple:
    """Least-squares line ``y = slope * x + intercept`` and its coefficient of determination.

    x, y: 1-D arrays of the same length (at least 2 points, x not constant).
    Returns ``(slope, intercept, r2)`` with ``r2 = 1 - SS_res / SS_tot`` (1 for a perfect fit; 0 when the
    line explains nothing beyond the mean of y; defined as 1 when y is constant and fitted exactly).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"x and y must be 1-D arrays of the same length >= 2; got shapes {x.shape} "
                         f"and {y.shape}")
    if np.ptp(x) == 0:
        raise ValueError("x is constant: a line through these points is not determined")
    A = np.stack([x, np.ones_like(x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(A, y, rcond=None)
    ss_res = float(np.sum((y - A @ np.array([slope, intercept])) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return float(slope), float(intercept), float(r2)
