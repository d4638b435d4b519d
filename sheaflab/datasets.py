"""Training tasks with fixed seeds: the paraboloid and the other tasks of the paper's experiments.

Every generator returns ``(X, Y)`` with X of shape (n, 2) and Y of shape (n, k), float64, and is
deterministic given ``seed`` (anything ``numpy.random.default_rng`` accepts).

=============  =====================================================  ========
task           target                                                 Y shape
=============  =====================================================  ========
``paraboloid``  ``x1^2 + x2^2 - 2/3`` (regression)                    (n, 1)
``saddle``      ``x1^2 - x2^2`` (regression)                          (n, 1)
``circle``      1 inside a centred circle, 0 outside (binary, MSE)    (n, 1)
``blobs``       one-hot class of four anisotropic Gaussian blobs      (n, 4)
=============  =====================================================  ========

``TASKS`` maps these names to their generators and :func:`make_task` builds one by name.
"""

from __future__ import annotations

import numpy as np

from ._checks import positive


def _generator(n, seed):
    """(rng, n): the task's random generator and the checked number of examples."""
    return np.random.default_rng(seed), positive(n, "n", integer=True)


def _square(n, seed):
    """(rng, X): ``n`` uniform points of ``[-2, 2]^2`` (X of shape (n, 2)) and the generator, which
    then draws the task's noise."""
    rng, n = _generator(n, seed)
    return rng, rng.uniform(-2.0, 2.0, size=(n, 2))


def paraboloid(n: int = 300, noise: float = 0.0, seed=0):
    """``y = x1^2 + x2^2 - 2/3`` at ``n`` uniform points of ``[-2, 2]^2``, plus Gaussian noise of
    standard deviation ``noise``. Returns X (n, 2), Y (n, 1)."""
    noise = positive(noise, "noise", allow_zero=True)
    rng, X = _square(n, seed)
    Y = (X ** 2).sum(axis=1, keepdims=True) - 2.0 / 3.0
    return X, Y + noise * rng.standard_normal(Y.shape)


def paraboloid_grid(side: int = 4):
    """The worked example's grid: ``side x side`` points evenly spaced on ``[-2, 2]^2``."""
    side = positive(side, "side", integer=True)
    g = np.linspace(-2.0, 2.0, side)
    X = np.array([(a, b) for a in g for b in g])
    return X, (X ** 2).sum(axis=1, keepdims=True) - 2.0 / 3.0


def saddle(n: int = 300, noise: float = 0.0, seed=0):
    """``y = x1^2 - x2^2`` at ``n`` uniform points of ``[-2, 2]^2``, plus Gaussian noise of standard
    deviation ``noise``. Returns X (n, 2), Y (n, 1)."""
    noise = positive(noise, "noise", allow_zero=True)
    rng, X = _square(n, seed)
    Y = X[:, :1] ** 2 - X[:, 1:] ** 2
    return X, Y + noise * rng.standard_normal(Y.shape)


# Default radius: the disc of area pi r^2 = 8 covers half of the square [-2, 2]^2 (area 16).
CIRCLE_RADIUS = float(np.sqrt(8.0 / np.pi))


def circle(n: int = 300, radius: float | None = None, seed=0):
    """Binary labels on ``n`` uniform points of ``[-2, 2]^2``: 1 where ``||x|| < radius``, else 0.

    ``radius`` defaults to ``sqrt(8 / pi)`` (about 1.596), which puts half of the square's area
    inside the circle, so the classes are balanced in expectation. The labels are real-valued
    targets for a network trained on squared error. Returns X (n, 2), Y (n, 1) with values 0.0 / 1.0.
    """
    radius = CIRCLE_RADIUS if radius is None else positive(radius, "radius")
    rng, X = _square(n, seed)
    inside = (X ** 2).sum(axis=1, keepdims=True) < radius ** 2
    return X, inside.astype(np.float64)


# Blob k: centre BLOB_CENTRES[k]; standard deviations BLOB_STD (major, minor axis); major axis at
# angle BLOB_ANGLES[k] from the x1-axis, so the four clouds are stretched in four directions.
BLOB_CENTRES = np.array([[1.2, 1.2], [-1.2, 1.2], [-1.2, -1.2], [1.2, -1.2]])
BLOB_ANGLES = np.array([0.0, 0.25, 0.5, 0.75]) * np.pi
BLOB_STD = (0.55, 0.15)


def blob_covariances() -> np.ndarray:
    """(4, 2, 2) covariance ``R diag(major^2, minor^2) R^T`` of each blob (R rotates by its angle)."""
    c, s = np.cos(BLOB_ANGLES), np.sin(BLOB_ANGLES)
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)   # (4, 2, 2) rotations
    D = np.diag(np.square(BLOB_STD))
    return R @ D @ np.swapaxes(R, 1, 2)


def blobs(n: int = 400, seed=0):
    """Four-class problem: ``n`` points from four elongated Gaussian blobs.

    Blob k is centred at ``BLOB_CENTRES[k]`` (the points ``(+-1.2, +-1.2)``) with covariance
    ``blob_covariances()[k]``: standard deviation 0.55 along its major axis and 0.15 across it, the
    major axes at 0, 45, 90 and 135 degrees. Class sizes differ by at most one (``n >= 4`` so that
    every class occurs) and the rows are in random order. Returns X (n, 2) and one-hot Y (n, 4).
    """
    rng, n = _generator(n, seed)
    if n < 4:
        raise ValueError(f"n must be at least 4 so that each of the 4 blobs gets a point; got {n}")
    labels = rng.permutation(np.arange(n) % 4)
    # a whitened sample mapped through the Cholesky factor of its blob's covariance
    chol = np.linalg.cholesky(blob_covariances())                    # (4, 2, 2)
    X = BLOB_CENTRES[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, 2)))
    return X, np.eye(4)[labels]


TASKS = {"paraboloid": paraboloid, "saddle": saddle, "circle": circle, "blobs": blobs}


def make_task(name: str, n: int, seed=0, **kw):
    """Generate ``n`` examples of the task ``name`` (a key of :data:`TASKS`).

    Extra keywords go to the generator (``noise`` for the regressions, ``radius`` for ``circle``).
    Returns ``(X, Y)`` as the generator does; an unknown name raises ``ValueError`` listing the
    valid names.
    """
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"name must be one of {', '.join(map(repr, TASKS))}; got {name!r}")
    return TASKS[name](n=n, seed=seed, **kw)
