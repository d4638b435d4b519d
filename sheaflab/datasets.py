"""Training tasks with fixed seeds: the paraboloid and the other tasks of the paper's experiments.

Every generator returns ``(X, Y)`` with X of shape (n, 2) and Y of shape (n, k), float64, and is
deterministic given ``seed`` (anything ``numpy.random.default_rng`` accepts).

=============  =====================================================  ========
task           target                                                 Y shape
=============  =====================================================  ========
``paraboloid``  ``x1^2 + x2^2 - 2/3`` (regression)                    (n, 1)
``saddle``      ``x1^2 - x2^2 + sin(2 x1) / 2`` on ``[0, 2]^2``         (n, 1)
``circle``      0 on the unit disc, 1 on the annulus 1.5 < r < 2.5     (n, 1)
``blobs``       one-hot class of four overlapping Gaussian blobs      (n, 4)
=============  =====================================================  ========

The definitions (input ranges, noise, class balance) follow the paper's experiments, so results can
be set side by side with the authors' library. ``TASKS`` maps the names to their generators and
:func:`make_task` builds one by name; :func:`task_split` draws the paper's train / test split
(300 / 100 examples, with the default noise) and :data:`TASK_SPECS` gives each task's network
and head.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import positive, rng as make_rng


def _generator(n, seed):
    """(rng, n): the task's random generator and the checked number of examples."""
    return make_rng(seed), positive(n, "n", integer=True)


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
    """``y = x1^2 - x2^2 + 1/2 sin(2 x1)`` at ``n`` uniform points of ``[0, 2]^2``, plus Gaussian noise
    of standard deviation ``noise`` (the paper's saddle task). Returns X (n, 2), Y (n, 1)."""
    noise = positive(noise, "noise", allow_zero=True)
    rng, n = _generator(n, seed)
    X = rng.uniform(0.0, 2.0, size=(n, 2))
    Y = X[:, :1] ** 2 - X[:, 1:] ** 2 + 0.5 * np.sin(2.0 * X[:, :1])
    return X, Y + noise * rng.standard_normal(Y.shape)


# The circle task: class 0 fills the unit disc, class 1 the annulus 1.5 < r < 2.5, both with
# uniform area density before a Gaussian radial jitter of CIRCLE_NOISE.
CIRCLE_INNER, CIRCLE_ANNULUS, CIRCLE_NOISE = 1.0, (1.5, 2.5), 0.1


def circle(n: int = 300, noise: float = CIRCLE_NOISE, seed=0):
    """Binary classification with a circular boundary (the paper's circle task).

    Half the points (class 0, label 0.0) are uniform on the unit disc, half (class 1, label 1.0)
    uniform on the annulus ``1.5 < r < 2.5``; each radius then gets Gaussian noise of standard
    deviation ``noise``, and the angle is uniform. The classes differ in size by at most one and the
    rows are in random order. Returns X (n, 2), Y (n, 1) with values 0.0 / 1.0.
    """
    noise = positive(noise, "noise", allow_zero=True)
    rng, n = _generator(n, seed)
    if n < 2:
        raise ValueError(f"n must be at least 2 so that both classes get a point; got {n}")
    labels = rng.permutation(np.arange(n) % 2)
    lo, hi = CIRCLE_ANNULUS
    u = rng.uniform(size=n)
    # uniform in area: r^2 uniform on [0, 1] (disc) or on [lo^2, hi^2] (annulus)
    r = np.where(labels == 0, CIRCLE_INNER * np.sqrt(u), np.sqrt(lo ** 2 + u * (hi ** 2 - lo ** 2)))
    r = r + noise * rng.standard_normal(n)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    X = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return X, labels[:, None].astype(np.float64)


# The paper's four overlapping blobs: asymmetric centres, each with its own covariance (sizes and
# orientations differ), placed so that neighbouring classes overlap.
BLOB_CENTRES = np.array([[-1.5, -1.5], [1.8, -1.0], [1.0, 2.0], [-2.0, 1.5]])
BLOB_COVARIANCES = np.array([[[0.8, 0.3], [0.3, 0.4]], [[0.3, -0.2], [-0.2, 1.0]],
                             [[1.2, 0.5], [0.5, 0.5]], [[0.5, 0.0], [0.0, 0.8]]])


def blob_covariances() -> np.ndarray:
    """(4, 2, 2) the covariance matrix of each blob (a copy of :data:`BLOB_COVARIANCES`)."""
    return BLOB_COVARIANCES.copy()


def blobs(n: int = 400, seed=0):
    """Four-class problem: ``n`` points from four overlapping anisotropic Gaussian blobs.

    Blob k is centred at ``BLOB_CENTRES[k]`` with covariance ``BLOB_COVARIANCES[k]`` (the paper's
    blobs task). Class sizes differ by at most one (``n >= 4`` so that every class occurs) and the
    rows are in random order. Returns X (n, 2) and one-hot Y (n, 4).
    """
    rng, n = _generator(n, seed)
    if n < 4:
        raise ValueError(f"n must be at least 4 so that each of the 4 blobs gets a point; got {n}")
    labels = rng.permutation(np.arange(n) % 4)
    # a whitened sample mapped through the Cholesky factor of its blob's covariance
    chol = np.linalg.cholesky(BLOB_COVARIANCES)                       # (4, 2, 2)
    X = BLOB_CENTRES[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, 2)))
    return X, np.eye(4)[labels]


TASKS = {"paraboloid": paraboloid, "saddle": saddle, "circle": circle, "blobs": blobs}


def make_task(name: str, n: int, seed=0, **kw):
    """Generate ``n`` examples of the task ``name`` (a key of :data:`TASKS`).

    Extra keywords go to the generator (``noise`` for the regressions and ``circle``).
    Returns ``(X, Y)`` as the generator does; an unknown name raises ``ValueError`` listing the
    valid names.
    """
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"name must be one of {', '.join(map(repr, TASKS))}; got {name!r}")
    return TASKS[name](n=n, seed=seed, **kw)


class TaskSpec(NamedTuple):
    """A benchmark task as the paper runs it: the network ``dims``, the output ``head``, the kind
    (``"regression"`` or ``"classification"``), the data's noise (None where it has none) and the
    sizes of the train and test sets."""

    dims: tuple
    head: str
    kind: str
    noise: float | None
    n_train: int = 300
    n_test: int = 100


TASK_SPECS = {
    "paraboloid": TaskSpec((2, 30, 1), "identity", "regression", 0.02),
    "saddle": TaskSpec((2, 30, 1), "identity", "regression", 0.02),
    "circle": TaskSpec((2, 25, 1), "sigmoid", "classification", CIRCLE_NOISE),
    "blobs": TaskSpec((2, 25, 4), "softmax", "classification", None),
}


def task_split(name: str, seed=0):
    """The paper's split of task ``name``: ``(X_train, Y_train, X_test, Y_test)``, drawn together
    (``n_train + n_test`` examples from one generator call, so the two sets are independent draws of
    the same distribution) with the task's default noise. Shapes (300, 2), (300, k), (100, 2), (100, k).
    """
    spec = TASK_SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"name must be one of {', '.join(map(repr, TASK_SPECS))}; got {name!r}")
    kw = {} if spec.noise is None else {"noise": spec.noise}
    X, Y = make_task(name, spec.n_train + spec.n_test, seed=seed, **kw)
    k = spec.n_train
    return X[:k], Y[:k], X[k:], Y[k:]
