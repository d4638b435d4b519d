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

Faults. The chunks are pure functions of the weights and the data, so running one again is always
safe and gives the same bits. :func:`fast_phase` therefore re-submits a chunk whose worker was lost:

* on a Dask cluster (``joblib.parallel_config(backend="dask")``) the chunks are submitted to the
  backend's ``distributed.Client`` directly, one future each, with their data inside the task (not
  scattered: scattered data dies with the worker that holds it, which is how a lost worker made
  joblib's own Dask path fail with ``FutureCancelledError: ... already forgotten``). Dask reschedules
  the tasks of a dead worker by itself; a future that comes back cancelled, or failed with
  ``KilledWorker`` or a closed connection, is re-submitted here;
* on joblib's process backends a killed worker (``TerminatedWorkerError``) makes the chunks that
  had not come back run again in a fresh pool;
* a stall is bounded: when no chunk finishes for :data:`TIMEOUT` seconds (30 by default) the
  pending chunks are cancelled and re-submitted, as if their worker had been lost, so a cluster
  that makes no progress at all raises after at most ``(RETRIES + 1) * TIMEOUT`` seconds (2 min);
* each chunk is re-submitted at most :data:`RETRIES` times (3); past that :class:`WorkersLost`
  says why. Every retry is logged (logger ``sheaflab.parallel``, level WARNING).

Errors of the data or of the mathematics (``FloatingPointError``, ``ValueError``, ``TypeError``,
non-finite values, ...) are never retried: only the exception types in :func:`lost_worker_errors`
are. Set ``sheaflab.parallel.TIMEOUT`` / ``RETRIES`` (or pass ``timeout=`` / ``retries=``) for a
cluster whose chunks legitimately take longer than half a minute.

When it pays: every joblib call costs about 11 ms here whatever the work (its result loop polls
every 10 ms), while the serial fast phase of [2,30,1] takes about 9 ms for B = 10^4. So ``n_jobs=1``
(the default) is the right choice for mini-batches; workers help from about B = 10^5, or on a
cluster when one machine is not enough.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import uuid
import warnings

import numpy as np

from ._alloc import tune_allocator
from ._checks import instance, n_jobs as check_n_jobs, positive
from .local_rule import BatchStats
from .sheaf import Cochain, NeuralSheaf
from .solve import equilibrium

# the message equilibrium() warns with when some examples hit max_iter
_NONCONVERGED = r"equilibrium: \d+ of \d+ examples did not converge"

log = logging.getLogger(__name__)

#: seconds without any chunk finishing after which the pending chunks count as lost (a stall)
TIMEOUT = 30.0
#: how many times one chunk is re-submitted after its worker was lost, before :class:`WorkersLost`
RETRIES = 3
#: seconds of fast phase per batch below which a trainer with ``n_jobs > 1`` runs it in the calling
#: process as ``n_jobs=1`` would: a joblib call costs about 11 ms here whatever the work, and two
#: workers measured no faster than one below about 50 ms of work (bench/bench_parallel.py)
BREAK_EVEN = 0.05

# TEST-ONLY hook (tests/test_faults.py): when this environment variable names a directory, a chunk
# running in a worker process (never in the calling process) deletes one file from it and, if it
# got one, kills its own process with os._exit: each file there is one worker death. Unset in
# normal use, and then it costs one dictionary lookup per chunk.
TEST_KILL_ENV = "SHEAFLAB_TEST_KILL_WORKER"


class WorkersLost(RuntimeError):
    """The fast phase lost its workers (or stalled) more often than :data:`RETRIES` allows.

    Nothing of the batch was applied: a trainer that raised it is left at its last completed epoch,
    and calling ``fit`` again resumes from there.
    """


def lost_worker_errors() -> tuple:
    """The exception types that mean "the worker running a chunk was lost", and only those: a
    cancelled future, a broken process pool (joblib's ``TerminatedWorkerError``), Dask's
    ``KilledWorker`` and a closed connection to a worker. Anything else a chunk raises is an
    error of the data or the mathematics and propagates at once, never retried."""
    types = [concurrent.futures.CancelledError, concurrent.futures.BrokenExecutor]
    try:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker
        types += [KilledWorker, CommClosedError]
    except ImportError:   # the dask extra is optional
        pass
    return tuple(types)


def _test_hook(parent_pid: int) -> None:
    where = os.environ.get(TEST_KILL_ENV)
    if not where or os.getpid() == parent_pid:
        return
    try:
        names = sorted(os.listdir(where))
    except OSError:   # the directory is gone: nothing armed
        return
    for name in names:
        try:
            os.remove(os.path.join(where, name))   # atomic: one process wins each file
        except FileNotFoundError:
            continue
        os._exit(70)


def _rows(c: Cochain, lo: int, hi: int) -> Cochain:
    """Rows ``lo:hi`` of a cochain (views, no copies)."""
    return Cochain(c.x[lo:hi], [z[lo:hi] for z in c.z], [a[lo:hi] for a in c.a], c.yhat[lo:hi])


def _stats(sheaf, X, Y, kwargs):
    """Equilibrium of one chunk, reduced to its :class:`BatchStats`; with ``kwargs["_cochain"]``
    true, ``(stats, equilibrium cochain)``."""
    kwargs = dict(kwargs)
    keep = kwargs.pop("_cochain", False)
    if kwargs.get("method") == "global":   # the global minimum, by face enumeration (no init)
        from .global_min import global_equilibrium
        eq = global_equilibrium(sheaf, X, Y)
    else:
        eq = equilibrium(sheaf, X, Y, **kwargs)
    stats = BatchStats.of(sheaf, eq)
    return (stats, eq.cochain) if keep else stats


def _join(cochains) -> Cochain:
    """The chunks' cochains stacked back into the batch's, in chunk order."""
    if len(cochains) == 1:
        return cochains[0]
    return Cochain(np.concatenate([c.x for c in cochains]),
                   [np.concatenate(v) for v in zip(*[c.z for c in cochains])],
                   [np.concatenate(v) for v in zip(*[c.a for c in cochains])],
                   np.concatenate([c.yhat for c in cochains]))


def _own_copies(sheaf, X, Y, kwargs):
    """Fresh, aligned copies of a chunk's arrays, for a worker process.

    Arrays unpickled from a message can sit at any byte offset of its buffer (measured: Dask
    workers received ``W_1`` not even 8-byte aligned), and numpy takes other, differently rounded
    loops for unaligned data: the same chunk then gave other last bits on another call. Copies
    make a chunk's result a function of its values alone, the same in every process.
    """
    init = kwargs.get("init")
    if isinstance(init, Cochain):
        kwargs = dict(kwargs, init=init.copy())
    return sheaf.copy(), np.array(X, dtype=np.float64), np.array(Y, dtype=np.float64), kwargs


def _chunk(sheaf, X, Y, kwargs, parent_pid) -> BatchStats:
    """:class:`BatchStats` of one contiguous chunk.

    In a worker process the non-convergence warning is silenced here; in the parent's process
    (serial path, thread backends) :func:`fast_phase` silences it once around the whole call,
    because ``warnings.catch_warnings`` is not thread-safe.
    """
    _test_hook(parent_pid)
    if os.getpid() != parent_pid:
        sheaf, X, Y, kwargs = _own_copies(sheaf, X, Y, kwargs)
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


def dask_client():
    """The ``distributed.Client`` of the active joblib backend, or None when it is not Dask."""
    from joblib.parallel import get_active_backend
    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return backend.client


def _give_up(what: str, tries: int, timeout: float, cause: BaseException | None):
    raise WorkersLost(
        f"fast_phase: {what}; gave up after {tries} re-submissions (retries={tries}; a stall counts "
        f"after timeout={timeout:g} s without progress). Nothing of this batch was applied: a trainer is left at its last "
        "completed epoch and calling fit again resumes from there. Check the cluster's workers, "
        "or raise sheaflab.parallel.RETRIES / TIMEOUT") from cause


def _run_dask(client, specs: list, timeout: float, retries: int) -> list:
    """Run ``_chunk(*spec)`` for every spec as one Dask future each; re-submit lost ones."""
    import distributed

    lost = lost_worker_errors()
    tag = uuid.uuid4().hex[:12]
    tries = [0] * len(specs)
    results = [None] * len(specs)

    def submit(i):
        return client.submit(_chunk, *specs[i], key=f"sheaflab-chunk-{i}-{tries[i]}-{tag}", pure=False)

    def resubmit(i, why, cause):
        tries[i] += 1
        if tries[i] > retries:
            _give_up(f"chunk {i + 1} of {len(specs)} was lost ({why})", retries, timeout, cause)
        log.warning("fast_phase: chunk %d of %d lost (%s); re-submitting, attempt %d of %d",
                    i + 1, len(specs), why, tries[i] + 1, retries + 1)
        pending[i] = submit(i)

    pending = {i: submit(i) for i in range(len(specs))}
    try:
        while pending:
            try:
                distributed.wait(list(pending.values()), timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError as exc:   # no chunk finished within the timeout: a stall
                stalled = sorted(pending)
                client.cancel([pending[i] for i in stalled])
                for i in stalled:
                    resubmit(i, f"no chunk finished within timeout={timeout:g} s", exc)
                continue
            for i, fut in list(pending.items()):
                if fut.status == "finished":
                    results[i] = fut.result()
                    del pending[i]
                elif fut.status in ("cancelled", "lost"):
                    resubmit(i, f"its future was {fut.status}", None)
                elif fut.status == "error":
                    exc = fut.exception()
                    if not isinstance(exc, lost):
                        fut.result()          # an error of the data or the mathematics: raise it
                    resubmit(i, f"{type(exc).__name__}: {exc}", exc)
    finally:
        if pending:   # an error or an interrupt: do not leave work running on the cluster
            client.cancel(list(pending.values()))
    return results


def _run_joblib(specs: list, n_jobs: int, timeout: float, retries: int) -> list:
    """Run the chunks through ``joblib.Parallel`` (in order); after a lost worker, run again the
    chunks that had not come back."""
    import joblib
    from joblib.parallel import get_active_backend

    lost = lost_worker_errors() + (TimeoutError,)
    # joblib's sequential backend (one worker) has no timeout, and warns when given one
    bounded = (joblib.effective_n_jobs(n_jobs) > 1
               and getattr(get_active_backend()[0], "supports_timeout", False))
    results, tries = [], 0
    while True:
        try:
            run = joblib.Parallel(n_jobs=n_jobs, timeout=timeout if bounded else None,
                                  return_as="generator")
            for part in run(joblib.delayed(_chunk)(*spec) for spec in specs[len(results):]):
                results.append(part)
            return results
        except lost as exc:
            tries += 1
            what = (f"no chunk finished within timeout={timeout:g} s" if isinstance(exc, TimeoutError)
                    else f"{type(exc).__name__}: {exc}")
            if tries > retries:
                _give_up(f"chunks {len(results) + 1}-{len(specs)} of {len(specs)} were lost ({what})",
                         retries, timeout, exc)
            log.warning("fast_phase: chunks %d-%d of %d lost (%s); re-submitting, attempt %d of %d",
                        len(results) + 1, len(specs), len(specs), what, tries + 1, retries + 1)


def starmap(fn, args: list, n_jobs: int = 1) -> list:
    """``[fn(*a) for a in args]``, in ``n_jobs`` joblib workers when that is more than one (and
    there are at least two jobs), in the order of ``args``. For the studies' whole independent runs
    (:mod:`sheaflab.experiments`, :mod:`sheaflab.comparison`); the fast phase has its own retries."""
    if check_n_jobs(n_jobs) == 1 or len(args) < 2:
        return [fn(*a) for a in args]
    import joblib  # only the parallel path needs it
    return joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(fn)(*a) for a in args)


def fast_phase(sheaf: NeuralSheaf, X, Y, n_jobs: int = 1, chunk_size: int | None = None,
               return_cochain: bool = False, timeout: float | None = None, retries: int | None = None,
               **equilibrium_kwargs):
    """Relax a mini-batch to equilibrium, chunk by chunk, and return its :class:`BatchStats`.

    Parameters
    ----------
    sheaf : NeuralSheaf
    X : (B, n_0) inputs; Y : (B, n_L) targets (both ends pinned).
    n_jobs : joblib workers (``-1``: all cores). ``n_jobs=1`` with ``chunk_size=None`` runs one
        chunk in this process without joblib (the trainer's default, no overhead).
    chunk_size : examples per chunk (one joblib task each); ``None`` makes one chunk per effective
        worker (on Dask: ``n_jobs`` chunks when ``n_jobs > 0``, so that the chunking, and with it
        every bit of the result, does not depend on how many workers are alive; ``-1`` takes the
        cluster's core count at the time of the call).
    return_cochain : also return the batch's equilibrium :class:`~sheaflab.Cochain` (the chunks'
        cochains stacked in order): ``(stats, cochain)``. The trainer's warm starts keep it.
    timeout : seconds without any chunk finishing before the pending chunks count as lost
        (default :data:`TIMEOUT`, read at call time).
    retries : re-submissions allowed per chunk (default :data:`RETRIES`); past them
        :class:`WorkersLost`. Only lost workers are retried, never errors of the data (see the
        module docstring).
    **equilibrium_kwargs : passed to :func:`~sheaflab.equilibrium` (``method``, ``tol``, ``max_iter``,
        ``init``, ``guess``, ``step``). A :class:`~sheaflab.Cochain` ``init`` or ``guess`` for the
        whole batch is split with it.

    The backend is whatever :func:`joblib.parallel_config` selects (processes by default, or
    ``"threading"``, or ``"dask"`` with a ``distributed.Client``). Chunk sums are combined in chunk
    order, so a given chunking gives bit-identical results on every backend; different chunkings
    agree to rounding. Examples that do not converge are counted in ``n_unconverged`` instead of
    raising the per-chunk ``RuntimeWarning`` of :func:`~sheaflab.equilibrium`.
    """
    n_jobs = check_n_jobs(n_jobs)
    if chunk_size is not None:
        chunk_size = positive(chunk_size, "chunk_size", integer=True)
    timeout = positive(TIMEOUT if timeout is None else timeout, "timeout")
    retries = positive(RETRIES if retries is None else retries, "retries", integer=True, allow_zero=True)
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

        client = dask_client()
        # on Dask, n_jobs > 0 fixes the number of chunks: with the cluster's core count (joblib's
        # answer) a lost worker would change the chunking, and the sums' rounding with it
        n_chunks = (None if chunk_size is not None else
                    n_jobs if client is not None and n_jobs > 0 else joblib.effective_n_jobs(n_jobs))
        specs = []
        for lo, hi in _bounds(B, n_chunks, chunk_size):
            kw = dict(equilibrium_kwargs, init=_rows(init, lo, hi) if isinstance(init, Cochain) else init)
            if isinstance(kw.get("guess"), Cochain):
                kw["guess"] = _rows(kw["guess"], lo, hi)
            specs.append((sheaf, X[lo:hi], Y[lo:hi], kw, pid))
        if client is not None:
            parts = _run_dask(client, specs, timeout, retries)
        else:
            # no backend hint: joblib's default (loky processes) measured faster than
            # prefer="threads", whose backend starts a new thread pool on every call
            parts = _run_joblib(specs, n_jobs, timeout, retries)
    if return_cochain:
        cochains = [c for _, c in parts]
        parts = [st for st, _ in parts]
    total = parts[0]
    for part in parts[1:]:  # fixed chunk order: deterministic
        total = total + part
    return (total, _join(cochains)) if return_cochain else total
