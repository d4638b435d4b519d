"""Faults: an interrupted fit rolls back to its last completed epoch and resumes to the uninterrupted
result; a lost worker's chunks are re-submitted (bounded, logged) and give the fault-free bits; a
stall is bounded by the timeout; errors of the data or the mathematics are never retried."""

import importlib.util
import logging
import os
import time

import joblib
import numpy as np
import pytest

import sheaflab
import sheaflab.train as train_module
from sheaflab import parallel
from sheaflab.parallel import WorkersLost, fast_phase

from conftest import random_problem
from test_checkpoint import assert_same_history, assert_same_state

EPOCHS = 5


@pytest.fixture(scope="module")
def deep():
    return random_problem([2, 6, 5, 1], n=40, seed=2)


def _trainer(Trainer, sheaf, **kw):
    base = dict(lr=0.01, optimizer="adam", batch_size=16, seed=4, progress=False)
    if Trainer is sheaflab.SheafTrainer:
        base["track_gap"] = 2
    return Trainer(sheaf, **{**base, **kw})


class Boom:
    """Wraps ``real``; the ``k``-th call (1-based) raises ``exc`` before (``after=False``) or after
    running ``real`` (then the call's effects are there, but the caller never sees its result)."""

    def __init__(self, real, k, exc=KeyboardInterrupt, after=False):
        self.real, self.k, self.exc, self.after, self.calls = real, k, exc, after, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.k and not self.after:
            raise self.exc("stop")
        out = self.real(*args, **kwargs)
        if self.calls == self.k:
            raise self.exc("stop")
        return out


def _half_step(opt):
    """An optimizer step that dies half-way: the first parameter array is updated, the rest not."""
    real = opt.step

    def step(params, grads):
        real(params[:1], grads[:1])
        raise KeyboardInterrupt("stop")
    return step


# where the epoch is stopped: (trainer, what to patch, call at which it raises)
POINTS = [
    ("sheaf", "fast_phase before", 7), ("sheaf", "fast_phase after", 8),
    ("sheaf", "warm store", 9), ("sheaf", "optimizer half step", 8),
    ("sheaf", "metrics", 4),   # call 1 is the starting MSE ("sheaf", "history append half", 3), ("sheaf", "gap", 2),
    ("sgd", "backprop", 7), ("sgd", "optimizer half step", 9), ("sgd", "metrics", 4),
]


@pytest.mark.parametrize("which, point, k", POINTS)
def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(which, point, k, deep, monkeypatch):
    Trainer = sheaflab.SheafTrainer if which == "sheaf" else sheaflab.SGDTrainer
    sheaf, X, Y = deep
    Xv, Yv = X[:8] + 0.1, Y[:8]
    straight = _trainer(Trainer, sheaf)
    straight.fit(X, Y, epochs=EPOCHS, X_val=Xv, Y_val=Yv)

    tr = _trainer(Trainer, sheaf)
    with monkeypatch.context() as m:
        if point.startswith("fast_phase"):
            m.setattr(train_module, "fast_phase", Boom(train_module.fast_phase, k, after="after" in point))
        elif point == "warm store":
            boom = Boom(train_module._WarmStarts.store, k, after=True)
            m.setattr(train_module._WarmStarts, "store", lambda self, idx, c: boom(self, idx, c))
        elif point == "backprop":
            m.setattr(train_module, "backprop_sums", Boom(train_module.backprop_sums, k))
        elif point == "metrics":
            m.setattr(tr.sheaf, "metrics", Boom(tr.sheaf.metrics, k, after=True))
        elif point == "gap":
            m.setattr(tr, "_gap", Boom(tr._gap, k, after=True))
        elif point == "history append half":
            real = sheaflab.History.append
            count = []

            def append(self, **row):
                count.append(1)
                if len(count) == k:          # some columns appended, then the stop button
                    for name in self.FIELDS[:5]:
                        self._columns[name].append(row[name])
                    raise KeyboardInterrupt("stop")
                return real(self, **row)
            m.setattr(sheaflab.History, "append", append)
        elif point == "optimizer half step":
            real_step = tr.optimizer.step
            calls = []

            def step(params, grads):
                calls.append(1)
                if len(calls) == k:
                    return _half_step(tr.optimizer)(params, grads)
                return real_step(params, grads)
            m.setattr(tr.optimizer, "step", step)
        with pytest.raises(KeyboardInterrupt) as info:
            tr.fit(X, Y, until=EPOCHS, X_val=Xv, Y_val=Yv)
    done = tr.history.epochs
    assert 0 < done < EPOCHS, f"the stop at call {k} of {point} did not fall inside the fit"
    assert any("rolled back to the end of its last completed epoch" in note
               for note in getattr(info.value, "__notes__", []))
    # the trainer is exactly at the end of epoch `done`: weights, optimizer, RNG, warm starts,
    # History (every column the same length)
    ref = _trainer(Trainer, sheaf)
    ref.fit(X, Y, epochs=done, X_val=Xv, Y_val=Yv)
    assert_same_state(tr, ref)
    assert_same_history(tr.history, ref.history)
    assert len({len(v) for v in tr.history._columns.values()}) == 1
    assert tr.optimizer.t == done * 3
    # and fit resumes to the uninterrupted result, bit for bit
    tr.fit(X, Y, until=EPOCHS, X_val=Xv, Y_val=Yv)
    assert_same_state(tr, straight)
    assert_same_history(tr.history, straight.history)
    assert tr.fit(X, Y, until=EPOCHS) is tr.history and tr.history.epochs == EPOCHS


def test_any_exception_rolls_back_and_divergence_keeps_the_last_good_weights(deep, monkeypatch):
    sheaf, X, Y = deep
    tr = _trainer(sheaflab.SheafTrainer, sheaf)
    tr.fit(X, Y, epochs=2)
    before = tr.sheaf.copy()
    with monkeypatch.context() as m:
        m.setattr(train_module, "fast_phase", Boom(train_module.fast_phase, 2, exc=RuntimeError))
        with pytest.raises(RuntimeError, match="stop"):
            tr.fit(X, Y, epochs=3)
    assert tr.history.epochs == 2 and tr.sheaf.same_parameters(before) and tr.optimizer.t == 6

    big = sheaflab.SGDTrainer(sheaf, lr=50.0, optimizer="sgd", progress=False)
    with pytest.raises(sheaflab.TrainingDiverged, match="keeps the weights and the history of the last"):
        big.fit(X, Y, epochs=30)
    good = big.history.epochs
    ref = sheaflab.SGDTrainer(sheaf, lr=50.0, optimizer="sgd", progress=False)
    if good:
        ref.fit(X, Y, epochs=good)
    assert big.sheaf.same_parameters(ref.sheaf) and np.isfinite(big.sheaf.weights[0]).all()


def test_fit_until_and_epochs_arguments(deep):
    sheaf, X, Y = deep
    tr = _trainer(sheaflab.SGDTrainer, sheaf)
    tr.fit(X, Y, until=3)
    assert tr.history.epochs == 3
    tr.fit(X, Y, until=2)                      # already there: nothing runs
    assert tr.history.epochs == 3
    with pytest.raises(ValueError, match="not both"):
        tr.fit(X, Y, epochs=2, until=5)
    with pytest.raises(ValueError, match="until"):
        tr.fit(X, Y, until=-1)


# ----------------------------------------------------------------------- retries and errors
def test_only_lost_workers_are_retried():
    lost = parallel.lost_worker_errors()
    for exc in (FloatingPointError, ValueError, TypeError, ZeroDivisionError, sheaflab.TrainingDiverged,
                ArithmeticError, KeyboardInterrupt, MemoryError):
        assert not issubclass(exc, lost), exc
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    assert issubclass(TerminatedWorkerError, lost)


def _failing_chunks(monkeypatch, error):
    """Make every fast-phase chunk raise ``error``; returns the list that counts the calls."""
    calls = []

    def broken(*args):
        calls.append(1)
        raise error
    monkeypatch.setattr(parallel, "_stats", broken)
    return calls


@pytest.mark.parametrize("exc", [FloatingPointError, ValueError, TypeError])
def test_errors_of_the_data_are_raised_at_once_not_retried(exc, deep, monkeypatch, caplog):
    sheaf, X, Y = deep
    calls = _failing_chunks(monkeypatch, exc("non-finite values in the cochain"))
    with caplog.at_level(logging.WARNING, "sheaflab.parallel"), \
            joblib.parallel_config(backend="threading"), pytest.raises(exc, match="non-finite"):
        fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=10)
    assert 1 <= len(calls) <= 4                               # each chunk at most once
    assert not [r for r in caplog.records if r.name == "sheaflab.parallel"]


def test_a_killed_process_pool_worker_is_replaced(deep, tmp_path, monkeypatch, caplog):
    """joblib's default backend (loky processes): a worker that dies makes the chunks that had not
    come back run again in a fresh pool; the result has the fault-free bits."""
    from joblib.externals.loky import get_reusable_executor

    sheaf, X, Y = deep
    ref = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=8)
    tokens = tmp_path / "kill"
    tokens.mkdir()
    monkeypatch.setenv(parallel.TEST_KILL_ENV, str(tokens))
    get_reusable_executor().shutdown(wait=True)      # fresh workers, which see the variable
    (tokens / "1").touch()
    try:
        with caplog.at_level(logging.WARNING, "sheaflab.parallel"):
            got = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=8)
    finally:
        get_reusable_executor().shutdown(wait=True)
    assert not any(tokens.iterdir()), "no worker was killed"
    assert any("re-submitting" in r.getMessage() for r in caplog.records)
    for p, q in zip(ref.sum_W + ref.sum_b, got.sum_W + got.sum_b):
        assert np.array_equal(p, q)
    assert (ref.energy_sum, ref.iterations) == (got.energy_sum, got.iterations)


# ------------------------------------------------------------------------------------ Dask
needs_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="the Dask worker-loss tests need dask[distributed] (pip install '.[dask]')")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A LocalCluster of 2 worker processes that see the test-only kill hook's directory, with
    allowed-failures 0: a worker death fails the task at once (KilledWorker), so fast_phase's own
    re-submission is what recovers, not Dask's rescheduling."""
    import dask
    import distributed

    tokens = tmp_path_factory.mktemp("kill-tokens")
    with pytest.MonkeyPatch.context() as m:
        m.setenv(parallel.TEST_KILL_ENV, str(tokens))
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          dashboard_address=":0")
            client = distributed.Client(lc)
        yield client, tokens
        client.close()
        lc.close()


def _arm(tokens, k):
    for i in range(k):
        (tokens / f"{time.monotonic_ns()}-{i}").touch()


@needs_distributed
def test_a_fit_survives_killed_dask_workers(cluster, deep, caplog):
    client, tokens = cluster
    sheaf, X, Y = deep
    kw = dict(lr=0.01, batch_size=20, n_jobs=2, seed=1, progress=False)
    serial = sheaflab.SheafTrainer(sheaf, **{**kw, "n_jobs": 1})
    serial.fit(X, Y, epochs=4)
    with joblib.parallel_config(backend="dask"):
        clean = sheaflab.SheafTrainer(sheaf, **kw)
        clean.fit(X, Y, epochs=4)
        faulty = sheaflab.SheafTrainer(sheaf, **kw)
        with caplog.at_level(logging.WARNING, "sheaflab.parallel"):
            _arm(tokens, 1)                  # a worker dies in the first epoch
            faulty.fit(X, Y, epochs=2)
            assert not any(tokens.iterdir())
            client.wait_for_workers(2, timeout=120)
            _arm(tokens, 1)                  # and another right after epoch 2 finished
            faulty.fit(X, Y, epochs=2)
    assert not any(tokens.iterdir()), "a kill token was not used"
    retries = [r.getMessage() for r in caplog.records if "re-submitting" in r.getMessage()]
    assert len(retries) == 2 and all("KilledWorker" in r for r in retries), retries
    for p, q, r in zip(faulty.params, clean.params, serial.params):
        assert np.array_equal(p, q)                    # the fault-free run's bits
        np.testing.assert_allclose(p, r, rtol=0, atol=1e-12)
    assert_same_history(faulty.history, clean.history)


@needs_distributed
def test_worker_processes_give_the_bits_of_the_same_chunks_here(cluster, deep):
    """Chunk arrays arrive in a worker at any byte offset of a message (measured: W_1 not even
    8-byte aligned), and numpy rounds unaligned data differently; the workers' own copies make
    every call give the bits of the same chunking in this process."""
    sheaf, X, Y = deep
    cluster[0].wait_for_workers(2, timeout=120)
    here = fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=10)
    with joblib.parallel_config(backend="dask"):
        runs = [fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=10) for _ in range(8)]
    for got in runs:
        for p, q in zip(here.sum_W + here.sum_b + [here.discord_sum], got.sum_W + got.sum_b + [got.discord_sum]):
            assert np.array_equal(p, q)


@needs_distributed
def test_past_the_retry_bound_the_error_says_the_trainer_is_intact(cluster, deep, monkeypatch):
    client, tokens = cluster
    sheaf, X, Y = deep
    client.wait_for_workers(2, timeout=120)
    monkeypatch.setattr(parallel, "RETRIES", 1)
    kw = dict(lr=0.01, batch_size=20, n_jobs=2, seed=1, progress=False)
    with joblib.parallel_config(backend="dask"):
        tr = sheaflab.SheafTrainer(sheaf, **kw)
        tr.fit(X, Y, epochs=1)
        before = tr.sheaf.copy()
        _arm(tokens, 4)                         # more deaths than one retry per chunk can absorb
        with pytest.raises(WorkersLost, match=r"was lost \(KilledWorker.*Nothing of this batch was "
                                              r"applied.*calling fit again resumes"):
            tr.fit(X, Y, epochs=2)
        for t in tokens.iterdir():              # disarm what is left
            t.unlink()
        assert tr.history.epochs == 1 and tr.sheaf.same_parameters(before)
        client.wait_for_workers(2, timeout=120)
        tr.fit(X, Y, until=3)
        clean = sheaflab.SheafTrainer(sheaf, **kw)
        clean.fit(X, Y, epochs=3)
    assert_same_state(tr, clean)


@pytest.fixture(scope="module")
def threads_client():
    """In-process Dask workers (threads), so that a monkeypatched chunk runs in them."""
    import distributed
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0")
    client = distributed.Client(lc)
    yield client
    client.close()
    lc.close()


@needs_distributed
def test_a_stall_is_bounded_by_the_timeout(threads_client, deep, monkeypatch, caplog):
    sheaf, X, Y = deep
    ref = fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=20)
    real, calls = parallel._stats, []

    def stuck_once(*args):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(2.0)                   # a worker that stops answering
        return real(*args)
    monkeypatch.setattr(parallel, "_stats", stuck_once)
    with joblib.parallel_config(backend="dask"), caplog.at_level(logging.WARNING, "sheaflab.parallel"):
        got = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=20, timeout=0.5)
    assert any("timeout=0.5 s" in r.getMessage() for r in caplog.records)
    for p, q in zip(ref.sum_W + ref.sum_b, got.sum_W + got.sum_b):
        assert np.array_equal(p, q)

    def stuck(*args):
        time.sleep(1.0)
        return real(*args)
    monkeypatch.setattr(parallel, "_stats", stuck)
    t0 = time.perf_counter()
    with joblib.parallel_config(backend="dask"), \
            pytest.raises(WorkersLost, match=r"no chunk finished within timeout=0.2 s"):
        fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=20, timeout=0.2, retries=1)
    assert time.perf_counter() - t0 < 5.0      # bounded: two rounds of 0.2 s, not a hang
    time.sleep(1.0)                            # let the sleeping threads finish


@needs_distributed
def test_dask_errors_of_the_data_are_not_retried(threads_client, deep, monkeypatch, caplog):
    sheaf, X, Y = deep
    calls = _failing_chunks(monkeypatch, FloatingPointError("overflow in the region solve"))
    with joblib.parallel_config(backend="dask"), caplog.at_level(logging.WARNING, "sheaflab.parallel"), \
            pytest.raises(FloatingPointError, match="overflow"):
        fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=20)
    assert 1 <= len(calls) <= 2
    assert not [r for r in caplog.records if r.name == "sheaflab.parallel"]


def test_the_kill_hook_is_inert_in_the_calling_process(deep, tmp_path, monkeypatch):
    sheaf, X, Y = deep
    monkeypatch.setenv(parallel.TEST_KILL_ENV, str(tmp_path))
    (tmp_path / "1").touch()
    with joblib.parallel_config(backend="threading"):
        fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=10)      # threads: the calling process
    fast_phase(sheaf, X, Y)
    assert (tmp_path / "1").exists()
    monkeypatch.delenv(parallel.TEST_KILL_ENV)
    assert os.environ.get(parallel.TEST_KILL_ENV) is None
