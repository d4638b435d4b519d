"""The fast phase over chunks of a mini-batch, optionally in parallel with joblib (Proposition 6).

With the weights fixed, the ``B`` per-example equilibrium problems do not interact: each example's
cochain relaxes on its own copy of the path graph. :func:`fast_phase` therefore splits the batch into
contiguous chunks, relaxes every chunk with vectorised :func:`~sheaflab.equilibrium` calls, and
lets each chunk return only its :class:`BatchStats`: *sums* over its examples (of the local
rule's outer products, the energies, the discord norms, the iterations and the non-converged
examples). Those are a few small arrays, so almost nothing crosses a process boundary; the parent
adds them up in chunk order, and the means are read off the total.

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

from ._alloc import tune_allocator
from ._checks import instance, n_jobs as check_n_jobs, positive
from .local_rule import local_sums
from .sheaf import Cochain, NeuralSheaf
from .solve import equilibrium

# the message equilibrium() warns with when some examples hit max_iter
_NONCONVERGED = r"equilibrium: \d+ of \d+ examples did not converge"


@dataclass
class BatchStats:
    """What the slow phase needs from the fast phase of ``size`` examples, as sums that add.

    ``a + b`` is the BatchStats of the two batches together; the means are read off the sums.

    size: number of examples ``B``.
    sum_W, sum_b: per-layer sums over the examples of the local rule's outer products (the
        equilibrium discord times the presynaptic stalk, and the discord itself), ordered like
        ``sheaf.weights`` (each (n_l, n_{l-1})) and ``sheaf.biases`` (each (n_l,)).
    energy_sum: sum of the examples' equilibrium energies.
    discord_sum: (n_edges,) sum of each edge's discord norm, edges in ``sheaf.edges`` order.
    iterations: fast-phase iterations (region solves or Euler steps) summed over the examples.
    n_unconverged: examples that stopped at ``max_iter`` without converging (no warning is raised for
        them: the caller decides what to do).

    The means: ``grad_W``, ``grad_b`` (equal to :func:`~sheaflab.local_gradients` of the batch),
    ``residual`` (mean equilibrium energy ``R``) and ``edge_discord`` ((n_edges,) mean discord norms).
    """

    size: int
    sum_W: list
    sum_b: list
    energy_sum: float
    discord_sum: np.ndarray
    iterations: int = 0
    n_unconverged: int = 0

    def __radd__(self, other):
        return self if isinstance(other, int) and other == 0 else NotImplemented   # sum(parts)

    def __add__(self, other: "BatchStats") -> "BatchStats":
        if not isinstance(other, BatchStats):
            return NotImplemented
        return BatchStats(self.size + other.size,
                          [p + q for p, q in zip(self.sum_W, other.sum_W)],
                          [p + q for p, q in zip(self.sum_b, other.sum_b)],
                          self.energy_sum + other.energy_sum, self.discord_sum + other.discord_sum,
                          self.iterations + other.iterations, self.n_unconverged + other.n_unconverged)

    @property
    def grad_W(self) -> list:
        return [g / self.size for g in self.sum_W]

    @property
    def grad_b(self) -> list:
        return [g / self.size for g in self.sum_b]

    @property
    def residual(self) -> float:
        return self.energy_sum / self.size

    @property
    def edge_discord(self) -> np.ndarray:
        return self.discord_sum / self.size


def _rows(c: Cochain, lo: int, hi: int) -> Cochain:
    """Rows ``lo:hi`` of a cochain (views, no copies)."""
    return Cochain(c.x[lo:hi], [z[lo:hi] for z in c.z], [a[lo:hi] for a in c.a], c.yhat[lo:hi])


def _stats(sheaf, X, Y, kwargs):
    """Equilibrium of one chunk, reduced to its :class:`BatchStats`; with ``kwargs["_cochain"]``
    true, ``(stats, equilibrium cochain)``."""
    kwargs = dict(kwargs)
    keep = kwargs.pop("_cochain", False)
    eq = equilibrium(sheaf, X, Y, **kwargs)
    sum_W, sum_b = local_sums(sheaf, eq.cochain, eq.discord)
    stats = BatchStats(X.shape[0], sum_W, sum_b, float(eq.energy.sum()),
                       eq.discord.norms().sum(axis=0), int(eq.iterations.sum()),
                       int(eq.converged.size - eq.converged.sum()))
    return (stats, eq.cochain) if keep else stats


def _join(cochains) -> Cochain:
    """The chunks' cochains stacked back into the batch's, in chunk order."""
    if len(cochains) == 1:
        return cochains[0]
    return Cochain(np.concatenate([c.x for c in cochains]),
                   [np.concatenate(v) for v in zip(*[c.z for c in cochains])],
                   [np.concatenate(v) for v in zip(*[c.a for c in cochains])],
                   np.concatenate([c.yhat for c in cochains]))


def _chunk(sheaf, X, Y, kwargs, parent_pid) -> BatchStats:
    """:class:`BatchStats` of one contiguous chunk.

    In a worker process the non-convergence warning is silenced here; in the parent's process
    (serial path, thread backends) :func:`fast_phase` silences it once around the whole call,
    because ``warnings.catch_warnings`` is not thread-safe.
    """
    if os.getpid() != parent_pid:
        tune_allocator()   # a worker process is tuned on its first chunk, as the parent was
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _NONCONVERGED, RuntimeWarning)
            return _stats(sheaf, X, Y, kwargs)
    return _stats(sheaf, X, Y, kwargs)


def _bounds(B: int, n_chunks: int | None, chunk_size: int | None) -> list:
    """Contiguous ``(lo, hi)`` row ranges covering ``0..B``."""
    if chunk_size is not None:
        return [(lo, min(lo + chunk_size, B)) for lo in range(0, B, chunk_size)]
    edges = np.linspace(0, B, min(n_chunks, B) + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def fast_phase(sheaf: NeuralSheaf, X, Y, n_jobs: int = 1, chunk_size: int | None = None,
               return_cochain: bool = False, **equilibrium_kwargs):
    """Relax a mini-batch to equilibrium, chunk by chunk, and return its :class:`BatchStats`.

    Parameters
    ----------
    sheaf : NeuralSheaf
    X : (B, n_0) inputs; Y : (B, n_L) targets (both ends pinned).
    n_jobs : joblib workers (``-1``: all cores). ``n_jobs=1`` with ``chunk_size=None`` runs one
        chunk in this process without joblib (the trainer's default, no overhead).
    chunk_size : examples per chunk (one joblib task each); ``None`` makes one chunk per effective
        worker.
    return_cochain : also return the batch's equilibrium :class:`~sheaflab.Cochain` (the chunks'
        cochains stacked in order): ``(stats, cochain)``. The trainer's warm starts keep it.
    **equilibrium_kwargs : passed to :func:`~sheaflab.equilibrium` (``method``, ``tol``, ``max_iter``,
        ``init``, ``step``). A :class:`~sheaflab.Cochain` ``init`` for the whole batch is split with it.

    The backend is whatever :func:`joblib.parallel_config` selects (processes by default, or
    ``"threading"``, or ``"dask"`` with a ``distributed.Client``). Chunk sums are combined in chunk
    order, so a given chunking gives bit-identical results on every backend; different chunkings
    agree to rounding. Examples that do not converge are counted in ``n_unconverged`` instead of
    raising the per-chunk ``RuntimeWarning`` of :func:`~sheaflab.equilibrium`.
    """
    n_jobs = check_n_jobs(n_jobs)
    if chunk_size is not None:
        chunk_size = positive(chunk_size, "chunk_size", integer=True)
    if equilibrium_kwargs.get("record"):
        raise ValueError("record=True is not supported by fast_phase (trajectories are not reduced); "
                         "call sheaflab.equilibrium on the batch instead")
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    X = sheaf.check_input(X)
    B = X.shape[0]
    Y = sheaf.check_target(Y, B)
    init = equilibrium_kwargs.pop("init", None)
    if isinstance(init, Cochain) and init.batch_size != B:
        raise ValueError(f"init must be a Cochain for the whole batch of {B} examples; "
                         f"got {init.batch_size}")
    tune_allocator()
    if return_cochain:
        equilibrium_kwargs["_cochain"] = True

    pid = os.getpid()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _NONCONVERGED, RuntimeWarning)
        if n_jobs == 1 and chunk_size is None:  # hot path: one chunk, no joblib
            return _chunk(sheaf, X, Y, dict(equilibrium_kwargs, init=init), pid)
        import joblib  # only the parallel path needs it

        n_chunks = joblib.effective_n_jobs(n_jobs) if chunk_size is None else None
        tasks = []
        for lo, hi in _bounds(B, n_chunks, chunk_size):
            kw = dict(equilibrium_kwargs, init=_rows(init, lo, hi) if isinstance(init, Cochain) else init)
            tasks.append(joblib.delayed(_chunk)(sheaf, X[lo:hi], Y[lo:hi], kw, pid))
        # no backend hint: joblib's default (loky processes) measured faster than
        # prefer="threads", whose backend starts a new thread pool on every call
        parts = joblib.Parallel(n_jobs=n_jobs)(tasks)
    if return_cochain:
        cochains = [c for _, c in parts]
        parts = [st for st, _ in parts]
    total = parts[0]
    for part in parts[1:]:  # fixed chunk order: deterministic
        total = total + part
    return (total, _join(cochains)) if return_cochain else total
