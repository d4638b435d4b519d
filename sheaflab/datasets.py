"""Training tasks with fixed seeds: the paraboloid and the other tasks of the paper's experiments.

Every generator returns ``(X, Y)`` with X of shape (n, 2) and Y of shape (n, k), float64.
"""

from __future__ import annotations

import numpy as np

from ._checks import positive


def _points(n, seed, low=-2.0, high=2.0):
    n = positive(n, "n", integer=True)
    return np.random.default_rng(seed), n


def paraboloid(n: int = 300, noise: float = 0.0, seed=0):
    """``y = x1^2 + x2^2 - 2/3`` at ``n`` uniform points of ``[-2, 2]^2``, plus Gaussian noise of
    standard deviation ``noise``. Returns X (n, 2), Y (n, 1)."""
    rng, n = _points(n, seed)
    noise = positive(noise, "noise", allow_zero=True)
    X = rng.uniform(-2.0, 2.0, size=(n, 2))
    Y = (X ** 2).sum(axis=1, keepdims=True) - 2.0 / 3.0
    return X, Y + noise * rng.standard_normal(Y.shape)


def paraboloid_grid(side: int = 4):
    """The worked example's grid: ``side x side`` points evenly spaced on ``[-2, 2]^2``."""
    side = positive(side, "side", integer=True)
    g = np.linspace(-2.0, 2.0, side)
    X = np.array([(a, b) for a in g for b in g])
    return X, (X ** 2).sum(axis=1, keepdims=True) - 2.0 / 3.0
