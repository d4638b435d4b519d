"""fast_phase: chunked and parallel reductions equal the serial batch (Proposition 6), on every backend."""

import re
import warnings

import joblib
import numpy as np
import pytest

import sheaflab
from sheaflab.local_rule import BatchStats
from sheaflab.parallel import fast_phase

from conftest import random_problem

TOL = 1e-12


def assert_same(a: BatchStats, b: BatchStats, tol=TOL):
    """Two BatchStats agree: gradients, residual and discords to ``tol``, counts exactly."""
    assert a.size == b.size
    assert len(a.grad_W) == len(b.grad_W) and len(a.grad_b) == len(b.grad_b)
    for ga, gb in zip(a.grad_W + a.grad_b, b.grad_W + b.grad_b):
        assert ga.shape == gb.shape
        np.testing.assert_allclose(ga, gb, rtol=0, atol=tol)
    assert abs(a.residual - b.residual) <= tol
    np.testing.assert_allclose(a.edge_discord, b.edge_discord, rtol=0, atol=tol)
    assert a.iterations == b.iterations
    assert a.n_unconverged == b.n_unconverged


@pytest.fixture(scope="module")
def shallow():
    """[2,30,1] (scalar breakpoint solver) on 500 examples."""
    return random_problem([2, 30, 1], n=500, seed=3)


@pytest.fixture(scope="module")
def deep():
    """[2,6,5,1] (active-set walk) on 300 examples."""
    return random_problem([2, 6, 5, 1], n=300, seed=4)


def test_matches_equilibrium_and_local_gradients(shallow, deep):
    for sheaf, X, Y in (shallow, deep):
        stats = fast_phase(sheaf, X, Y)
        eq = sheaflab.equilibrium(sheaf, X, Y)
        gW, gb = sheaflab.local_gradients(sheaf, eq)
        for g, ref in zip(stats.grad_W + stats.grad_b, gW + gb):
            np.testing.assert_allclose(g, ref, rtol=0, atol=TOL)
        assert abs(stats.residual - eq.energy.mean()) <= TOL
        np.testing.assert_allclose(stats.edge_discord, eq.discord.norms().mean(axis=0), rtol=0, atol=TOL)
        assert stats.edge_discord.shape == (len(sheaf.edges),)
        assert stats.iterations == eq.iterations.sum()
        assert stats.n_unconverged == 0 and stats.size == X.shape[0]
        assert stats.residual > 0 and np.abs(gW[0]).max() > 0  # a non-trivial problem


def test_batch_stats_add_up(deep):
    """BatchStats are sums that add: three chunks solved separately and added in order are, bit for
    bit, the chunked fast phase; and the means of the total are those of the whole batch."""
    sheaf, X, Y = deep
    parts = [fast_phase(sheaf, X[lo:lo + 100], Y[lo:lo + 100]) for lo in (0, 100, 200)]
    total = parts[0] + parts[1] + parts[2]
    assert total.size == X.shape[0]
    assert_same(total, fast_phase(sheaf, X, Y, chunk_size=100), tol=0.0)
    assert_same(total, fast_phase(sheaf, X, Y))
    with pytest.raises(TypeError):
        parts[0] + 1.0


def test_chunked_serial_equals_unchunked(shallow, deep):
    for sheaf, X, Y in (shallow, deep):
        assert_same(fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=7), fast_phase(sheaf, X, Y))


@pytest.mark.parametrize("case", ["shallow", "deep"])
def test_two_jobs_default_backend_equals_serial(case, request):
    sheaf, X, Y = request.getfixturevalue(case)
    assert_same(fast_phase(sheaf, X, Y, n_jobs=2), fast_phase(sheaf, X, Y))
    # same chunking: bit-identical, whatever runs the chunks
    assert_same(fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=64),
                fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=64), tol=0.0)


def test_threading_backend_and_diffusion(deep):
    sheaf, X, Y = deep
    X, Y = X[:40], Y[:40]
    kw = dict(method="diffusion", tol=1e-9)
    with joblib.parallel_config(backend="threading"):
        par = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=9, **kw)
    assert_same(par, fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=9, **kw), tol=0.0)


def test_cochain_init_is_split_with_the_batch(deep):
    sheaf, X, Y = deep
    start = sheaflab.equilibrium(sheaf, X, Y).cochain  # warm start at the equilibrium itself
    ref = fast_phase(sheaf, X, Y)
    warm = fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=50, init=start)
    np.testing.assert_allclose(warm.residual, ref.residual, rtol=0, atol=1e-10)
    assert warm.iterations <= ref.iterations


def test_unconverged_are_counted_not_warned(shallow):
    sheaf, X, Y = shallow
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eq = sheaflab.equilibrium(sheaf, X, Y, max_iter=1)
    bad = int((~eq.converged).sum())
    assert bad > 0 and any("did not converge" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning from fast_phase fails the test
        serial = fast_phase(sheaf, X, Y, max_iter=1)
        chunked = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=37, max_iter=1)
    assert serial.n_unconverged == chunked.n_unconverged == bad
    # the caller's filters are restored afterwards
    with pytest.warns(RuntimeWarning, match="did not converge"):
        sheaflab.equilibrium(sheaf, X, Y, max_iter=1)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(n_jobs=0), ValueError, "n_jobs"),
    (dict(n_jobs=1.5), TypeError, "n_jobs"),
    (dict(n_jobs=True), TypeError, "n_jobs"),
    (dict(n_jobs="2"), TypeError, "n_jobs"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(chunk_size=-3), ValueError, "chunk_size"),
    (dict(chunk_size=2.5), TypeError, "chunk_size"),
    (dict(chunk_size="10"), TypeError, "chunk_size"),
    (dict(record=True), ValueError, "record"),
    (dict(method="newton"), ValueError, "method"),
])
def test_bad_arguments(shallow, kwargs, exc, name):
    sheaf, X, Y = shallow
    with pytest.raises(exc, match=name):
        fast_phase(sheaf, X, Y, **kwargs)


def test_bad_data(shallow):
    sheaf, X, Y = shallow
    with pytest.raises(ValueError, match="Y"):
        fast_phase(sheaf, X, Y[:-1])
    with pytest.raises(TypeError, match="Y"):
        fast_phase(sheaf, X, None)
    with pytest.raises(ValueError, match="X"):
        fast_phase(sheaf, X[:, :1], Y)
    with pytest.raises(TypeError, match="sheaf"):
        fast_phase("net", X, Y)
    start = sheaflab.equilibrium(sheaf, X[:10], Y[:10]).cochain
    with pytest.raises(ValueError, match="init"):
        fast_phase(sheaf, X, Y, init=start)


# ------------------------------------------------------------------------------------ Dask
@pytest.fixture(scope="module")
def dask_client():
    import distributed  # required by requirements.txt: a missing install must fail, not skip
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("case", ["shallow", "deep"])
def test_dask_backend_equals_serial(dask_client, case, request):
    from distributed import get_task_stream

    sheaf, X, Y = request.getfixturevalue(case)
    with get_task_stream(dask_client) as stream, joblib.parallel_config(backend="dask"):
        par = fast_phase(sheaf, X, Y, n_jobs=-1, chunk_size=100)
    assert_same(par, fast_phase(sheaf, X, Y))
    # the workers' copies of the chunk arrays are aligned: the same chunking gives the same bits
    assert_same(par, fast_phase(sheaf, X, Y, n_jobs=1, chunk_size=100), tol=0.0)
    # the chunks ran as Dask tasks, one future each, named "sheaflab-chunk-<i>-<attempt>-<call id>"
    keys = [str(t["key"]) for t in stream.data]
    chunks = {int(m.group(1)) for k in keys if (m := re.search(r"sheaflab-chunk-(\d+)-0-", k))}
    assert chunks == set(range(-(-X.shape[0] // 100))), keys  # every chunk went through the cluster


def test_dask_fit_gives_the_serial_weights(dask_client, shallow):
    """Proposition 6 end to end: a sheaf-trainer fit whose fast phase runs on a distributed.LocalCluster
    through joblib ends with the serial fit's weights, to 1e-12."""
    sheaf, X, Y = shallow
    serial = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False)
    serial.fit(X, Y, epochs=3)
    on_dask = sheaflab.SheafTrainer(sheaf, lr=0.01, n_jobs=2, progress=False)
    with joblib.parallel_config(backend="dask"):
        on_dask.fit(X, Y, epochs=3)
    for p, q in zip(serial.params, on_dask.params):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-12)
    assert not all(np.array_equal(p, q) for p, q in zip(serial.params, sheaf.weights + sheaf.biases))


def test_return_cochain_stacks_the_chunks(deep):
    sheaf, X, Y = deep
    serial, c1 = fast_phase(sheaf, X, Y, return_cochain=True)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    np.testing.assert_array_equal(c1.a[0], eq.a[0])
    chunked, c2 = fast_phase(sheaf, X, Y, n_jobs=2, chunk_size=70, return_cochain=True)
    assert_same(chunked, fast_phase(sheaf, X, Y, chunk_size=70))
    for p, q in zip(c1.z + c1.a, c2.z + c2.a):
        np.testing.assert_allclose(p, q, atol=1e-12)
    np.testing.assert_array_equal(c2.x, X)


def test_small_batches_run_as_n_jobs_1(monkeypatch):
    """n_jobs=2 on work below parallel.BREAK_EVEN is exactly the n_jobs=1 fit (no joblib call at
    all); above it (BREAK_EVEN = 0) the trial batches run on the workers, and the fit agrees with
    the serial one to rounding."""
    sheaf, X, Y = random_problem([2, 6, 5, 1], n=40, seed=3)
    calls = []
    real = sheaflab.parallel._run_joblib
    monkeypatch.setattr(sheaflab.parallel, "_run_joblib", lambda *a: calls.append(1) or real(*a))
    kw = dict(lr=0.01, batch_size=20, seed=1, progress=False)
    serial = sheaflab.SheafTrainer(sheaf, n_jobs=1, **kw)
    h_serial = serial.fit(X, Y, epochs=3)
    small = sheaflab.SheafTrainer(sheaf, n_jobs=2, **kw)
    h_small = small.fit(X, Y, epochs=3)
    assert calls == []                                       # never handed to workers
    import sheaflab.train as train_module
    monkeypatch.setattr(train_module, "BREAK_EVEN", 0.0)
    forced = sheaflab.SheafTrainer(sheaf, n_jobs=2, **kw)
    h_forced = forced.fit(X, Y, epochs=3)
    # batch 2 on the workers, batch 3 on the workers and here; here measured faster (a joblib call
    # costs milliseconds, a batch of 20 examples of this net well under one)
    assert len(calls) == 2 and forced._placement.where == "here"
    for name in ("train_mse", "residual", "edge_discord", "fast_iterations"):
        np.testing.assert_array_equal(getattr(h_small, name), getattr(h_serial, name), err_msg=name)
        np.testing.assert_allclose(getattr(h_forced, name), getattr(h_serial, name), rtol=1e-12,
                                   atol=1e-14, err_msg=name)
    assert all(np.array_equal(p, q) for p, q in zip(small.params, serial.params))


def test_placement_goes_where_the_comparison_batches_ran_faster():
    from sheaflab.train import _Placement
    # workers faster at first, slower from batch 10 on (as when warm starts shorten the epochs)
    place, ran, compared = _Placement(), [], []
    for batch in range(1, 33):
        ran.append(place.next())
        here, workers = 1.0, (0.5 if batch < 10 else 2.0)
        if place.comparing:
            compared.append(batch)
            place.record(workers, here)
        else:     # batch 2 starts the pool: its time is never compared
            place.record({"here": here, "workers": 50.0 * workers}[ran[-1]])
    assert compared == [3, 10, 31]
    assert ran[:3] == ["here", "workers", "workers"] and set(ran[3:9]) == {"workers"}
    assert set(ran[10:30]) == {"here"} and ran[9] == ran[30] == "workers"   # comparisons run there first
    assert place.where == "here" and place.seconds == {"workers": 2.0, "here": 1.0}
    small = _Placement()
    small.record(0.001)                                       # below BREAK_EVEN: here for good
    for _ in range(12):
        assert small.next() == "here" and not small.comparing
        small.record(1.0)
