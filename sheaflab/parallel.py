"""The fast phase over chunks of a mini-batch, optionally in parallel with joblib (Prop. 12.6).

With the weights fixed, the ``B`` per-example equilibrium problems do not interact: each example's
cochain relaxes on its own copy of the path graph. :func:`fast_phase` therefore splits the batch into
contiguous chunks, relaxes every chunk with vectorised :func:`~sheaflab.equilibrium` calls, and
lets each chunk return only *sums* (of the local gradients, energies, discord norms, iterations and
non-converged examples). Those are a few small arrays, so almost nothing crosses a process boundary;
the parent adds them up in chunk order and divides by ``B``.

Chunks, not examples, are the unit of work: one numpy call over a chunk of thousands of examples is
far cheaper than thousands of tiny per-example tasks (``bench/bench_parallel.py`` measures both).

The joblib backend is not hard-coded, so the caller chooses it::

    with joblib.parallel_config(backend="threading"):          # threads in this process
        stats = fast_phase(sheaf, X, Y, n_jobs=2)

    client = distributed.Client(cluster)                        # or a Dask cluster
    with joblib.parallel_config(backend="dask"):
        stats = fast_phase(sheaf, X, Y, n_jobs=-1)

When it pays: every joblib call costs about 11 ms here whatever the work (its result loop polls
every 10 ms), while the serial fast phase of [2,30,1] takes about 9 ms for B = 10^4. So ``n_jobs=1``
(the default) is the right choice for mini-batches; workers help from about B = 10^5, or on a
cluster when one machine is not enough.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ._checks import positive
from .sheaf import Cochain, NeuralSheaf
from .solve import edge_gradients, equilibrium

# the message equilibrium() warns with when some examples hit max_iter
_NONCONVERGED = r"equilibrium: \d+ of \d+ examples did not converge"


@dataclass
class BatchStats:
    """What the slow phase needs from the fast phase of one mini-batch of ``size`` examples.

    grad_W, grad_b: batch-mean gradients of the equilibrium energy, ordered like ``sheaf.weights``
        (each (n_l, n_{l-1})) and ``sheaf.biases`` (each (n_l,)); equal to :func:`local_gradients`.
    residual: batch-mean equilibrium energy ``R``.
    edge_discord: (n_edges,) batch mean of each edge's discord norm, edges in ``sheaf.edges`` order.
    iterations: fast-phase iterations (region solves or Euler steps) summed over the examples.
    n_unconverged: examples that stopped at ``max_iter`` without converging (no warning is raised for
        them: the caller decides what to do).
    size: ``B``.
    """

    grad_W: list
    grad_b: list
    residual: float
    edge_discord: np.ndarray
    iterations: int
    n_unconverged: int
    size: int


def _rows(c: Cochain, lo: int, hi: int) -> Cochain:
    """Rows ``lo:hi`` of a cochain (views, no copies)."""
    return Cochain(c.x[lo:hi], [z[lo:hi] for z in c.z], [a[lo:hi] for a in c.a], c.yhat[lo:hi])


def _sums(sheaf, X, Y, kwargs):
    """Equilibrium of one chunk, reduced to sums: [gW, gb, energy, discord norms, iterations, unconv]."""
    eq = equilibrium(sheaf, X, Y, **kwargs)
    B = X.shape[0]
    gW, gb = edge_gradients(sheaf, eq.cochain, eq.discord)   # batch means: scale back to sums
    return [[g * B for g in gW], [g * B for g in gb], float(eq.energy.sum()), eq.discord.norms().sum(axis=0),
            int(eq.iterations.sum()), int(eq.converged.size - eq.converged.sum())]


def _chunk(sheaf, X, Y, kwargs, parent_pid):
    """Sums of one contiguous chunk (see :func:`_sums`).

    In a worker process the non-convergence warning is silenced here; in the parent's process
    (serial path, thread backends) :func:`fast_phase` silences it once around the whole call,
    because ``warnings.catch_warnings`` is not thread-safe.
    """
    if os.getpid() != parent_pid:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _NONCONVERGED, RuntimeWarning)
            return _sums(sheaf, X, Y, kwargs)
    return _sums(sheaf, X, Y, kwargs)


def _add(acc, part):
    """Add the sums ``part`` into ``acc`` in place (``acc`` owns its arrays); returns ``acc``."""
    for g, p in zip(acc[0] + acc[1], part[0] + part[1]):
        g += p
    acc[3] += part[3]
    acc[2] += part[2]
    acc[4] += part[4]
    acc[5] += part[5]
    return acc


def _bounds(B: int, n_chunks: int | None, chunk_size: int | None) -> list:
    """Contiguous ``(lo, hi)`` row ranges covering ``0..B``."""
    if chunk_size is not None:
        return [(lo, min(lo + chunk_size, B)) for lo in range(0, B, chunk_size)]
    edges = np.linspace(0, B, min(n_chunks, B) + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def fast_phase(sheaf: NeuralSheaf, X, Y, n_jobs: int = 1, chunk_size: int | None = None,
               **equilibrium_kwargs) -> BatchStats:
    """Relax a mini-batch to equilibrium, chunk by chunk, and return its :class:`BatchStats`.

    Parameters
    ----------
    sheaf : NeuralSheaf
    X : (B, n_0) inputs; Y : (B, n_L) targets (both ends pinned).
    n_jobs : joblib workers (``-1``: all cores). ``n_jobs=1`` with ``chunk_size=None`` runs one
        chunk in this process without joblib (the trainer's default, no overhead).
    chunk_size : examples per chunk (one joblib task each); ``None`` makes one chunk per effective
        worker.
    **equilibrium_kwargs : passed to :func:`~sheaflab.equilibrium` (``method``, ``tol``, ``max_iter``,
        ``init``, ``step``). A :class:`~sheaflab.Cochain` ``init`` for the whole batch is split with it.

    The backend is whatever :func:`joblib.parallel_config` selects (processes by default, or
    ``"threading"``, or ``"dask"`` with a ``distributed.Client``). Chunk sums are combined in chunk
    order, so a given chunking gives bit-identical results on every backend; different chunkings
    agree to rounding. Examples that do not converge are counted in ``n_unconverged`` instead of
    raising the per-chunk ``RuntimeWarning`` of :func:`~sheaflab.equilibrium`.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an integer (a worker count, or -1 for all cores); "
                        f"got {type(n_jobs).__name__}")
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive worker count or negative (-1: all cores); got 0")
    if chunk_size is not None:
        chunk_size = positive(chunk_size, "chunk_size", integer=True)
    if equilibrium_kwargs.get("record"):
        raise ValueError("record=True is not supported by fast_phase (trajectories are not reduced); "
                         "call sheaflab.equilibrium on the batch instead")
    if not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    X = sheaf.check_input(X)
    B = X.shape[0]
    Y = sheaf.check_target(Y, B)
    init = equilibrium_kwargs.pop("init", None)
    if isinstance(init, Cochain) and init.batch_size != B:
        raise ValueError(f"init must be a Cochain for the whole batch of {B} examples; "
                         f"got {init.batch_size}")

    pid = os.getpid()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _NONCONVERGED, RuntimeWarning)
        if n_jobs == 1 and chunk_size is None:  # hot path: one chunk, no joblib
            total = _chunk(sheaf, X, Y, dict(equilibrium_kwargs, init=init), pid)
        else:
            import joblib  # only the parallel path needs it

            n_chunks = joblib.effective_n_jobs(n_jobs) if chunk_size is None else None
            tasks = []
            for lo, hi in _bounds(B, n_chunks, chunk_size):
                kw = dict(equilibrium_kwargs,
                          init=_rows(init, lo, hi) if isinstance(init, Cochain) else init)
                tasks.append(joblib.delayed(_chunk)(sheaf, X[lo:hi], Y[lo:hi], kw, pid))
            # no backend hint: joblib's default (loky processes) measured faster than
            # prefer="threads", whose backend starts a new thread pool on every call
            parts = joblib.Parallel(n_jobs=n_jobs)(tasks)
            total = parts[0]
            for part in parts[1:]:  # fixed chunk order: deterministic
                total = _add(total, part)
    gW, gb, energy, norms, iters, unconv = total
    for g in gW + gb:
        g /= B
    return BatchStats(gW, gb, energy / B, norms / B, iters, unconv, B)
