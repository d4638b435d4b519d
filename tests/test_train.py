"""Trainers: Algorithm 4, the SGD baseline, optimizers, L2 by augmentation, the joint flow."""

import numpy as np
import pytest

import sheaflab
from conftest import central_differences, random_problem
from sheaflab.datasets import paraboloid, paraboloid_grid


flat = sheaflab.flatten


@pytest.fixture
def task():
    X, Y = paraboloid(60, noise=0.02, seed=1)
    return sheaflab.NeuralSheaf.random([2, 8, 1], seed=0), X, Y


@pytest.mark.parametrize("Trainer", [sheaflab.SheafTrainer, sheaflab.SGDTrainer])
def test_history_shapes_and_meaning(Trainer, task):
    sheaf, X, Y = task
    Xv, Yv = paraboloid(20, seed=9)
    tr = Trainer(sheaf, lr=0.01, batch_size=16, progress=False)
    h = tr.fit(X, Y, epochs=12, X_val=Xv, Y_val=Yv)
    assert h.train_mse.shape == h.val_mse.shape == h.residual.shape == (12,)
    assert h.edge_discord.shape == (12, 4) and h.edges == ["affine_1", "relu_1", "affine_2", "output"]
    assert np.all(np.diff(h.wall_time) > 0)
    assert h.train_mse[-1] == pytest.approx(np.mean((tr.sheaf.forward(X) - Y) ** 2))
    assert h.val_mse[-1] == pytest.approx(np.mean((tr.sheaf.forward(Xv) - Yv) ** 2))
    assert tr.optimizer.t == 12 * 4                     # ceil(60 / 16) slow steps per epoch
    assert h.train_mse[-1] < h.train_mse[0]
    if Trainer is sheaflab.SheafTrainer:
        assert np.all(h.fast_iterations >= 60)          # at least one region solve per example
        assert np.all(h.residual > 0)
    else:
        assert np.all(h.fast_iterations == 0)
        assert np.all(np.isnan(h.residual))              # SGD relaxes nothing: no R to report
    assert np.all(h.train_loss > 0)
    assert np.allclose(h.train_loss, h.train_mse, rtol=0, atol=1e-15)   # identity head: loss = MSE


@pytest.mark.parametrize("Trainer", [sheaflab.SheafTrainer, sheaflab.SGDTrainer])
def test_first_epoch_diagnostics_are_those_of_the_initial_weights(Trainer, task):
    """Full batch, epoch 1: ``residual`` and ``edge_discord`` describe the initial weights' batch. For
    SGD the discords are the forward cochain's with y pinned (computed here by the sheaf, not by the
    trainer) and there is no R; for the sheaf trainer, the equilibrium's."""
    sheaf, X, Y = task
    h = Trainer(sheaf, lr=0.01, progress=False).fit(X, Y, epochs=1)
    if Trainer is sheaflab.SGDTrainer:
        want_disc = sheaf.discord(sheaf.forward_cochain(X, Y)).norms().mean(axis=0)
        assert np.isnan(h.residual[0])
    else:
        eq = sheaflab.equilibrium(sheaf, X, Y)
        want_disc = eq.discord.norms().mean(axis=0)
        assert h.residual[0] == pytest.approx(eq.energy.mean(), rel=1e-12)
    np.testing.assert_allclose(h.edge_discord[0], want_disc, rtol=1e-12, atol=1e-15)


def test_history_fields_are_declared():
    h = sheaflab.History(["affine_1", "output"])
    assert h.epochs == 0 and h.train_mse.shape == (0,) and h.edge_discord.shape == (0, 2)
    row = dict(train_mse=1.0, val_mse=None, train_loss=1.0, val_loss=None, train_accuracy=np.nan,
               val_accuracy=None, residual=0.5, edge_discord=np.array([0.5, 0.25]),
               fast_iterations=3, fast_unconverged=0, wall_time=0.1, lambda_min=np.nan)
    h.append(**row)
    assert h.epochs == 1 and h.val_mse.size == 0 and h.edge_discord.tolist() == [[0.5, 0.25]]
    with pytest.raises(ValueError, match=r"unknown \['trian_mse'\], missing \['train_mse'\]"):
        h.append(**{("trian_mse" if k == "train_mse" else k): v for k, v in row.items()})
    with pytest.raises(ValueError, match=r"missing \['residual'\]"):
        h.append(**{k: v for k, v in row.items() if k != "residual"})
    assert h.epochs == 1
    # every column's docstring states its shape, and the arrays have it
    for name in sheaflab.History.FIELDS:
        doc, got = getattr(sheaflab.History, name).__doc__, getattr(h, name).shape
        want = {"(epochs,)": (1,), "(epochs, n_edges)": (1, 2)}[doc[:doc.index(")") + 1]]
        assert got == (want if not name.startswith("val_") else (0,)), name
    assert h.epochs_to(1.0, metric="train_loss") == 1
    with pytest.raises(ValueError, match="metric must be a per-epoch History column"):
        h.epochs_to(1.0, metric="mse")


def test_residual_never_exceeds_the_loss_it_relaxes(task):
    """Full batch: epoch k's residual is relaxed from the weights that produced epoch k-1's MSE, so
    R <= 1/2 MSE (one output), strictly when the output is off target."""
    sheaf, X, Y = task
    mse0 = np.mean((sheaf.forward(X) - Y) ** 2)
    h = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False).fit(X, Y, epochs=8)
    before = np.concatenate([[mse0], h.train_mse[:-1]])
    assert np.all(h.residual < 0.5 * before)


def test_progress_bar_on_and_off(task, capsys):
    sheaf, X, Y = task
    sheaflab.SGDTrainer(sheaf, progress=True).fit(X, Y, epochs=3)
    assert "sgd" in capsys.readouterr().err          # tqdm draws on stderr
    sheaflab.SGDTrainer(sheaf, progress=False).fit(X, Y, epochs=3)
    assert capsys.readouterr().err == ""


def test_original_sheaf_untouched(task):
    sheaf, X, Y = task
    before = flat(sheaf.weights)
    sheaflab.SheafTrainer(sheaf, progress=False).fit(X, Y, epochs=3)
    assert np.array_equal(before, flat(sheaf.weights))


@pytest.mark.parametrize("Trainer", [sheaflab.SheafTrainer, sheaflab.SGDTrainer])
def test_reproducible_and_resumable(Trainer, task):
    sheaf, X, Y = task
    runs = []
    for split in ((10,), (4, 6)):
        tr = Trainer(sheaf, lr=0.02, batch_size=20, seed=3, progress=False)
        for e in split:
            h = tr.fit(X, Y, epochs=e)
        runs.append((flat(tr.params), h))
    (w1, h1), (w2, h2) = runs
    assert np.array_equal(w1, w2)
    for key in ("train_mse", "train_loss", "residual", "edge_discord", "fast_iterations"):
        assert np.array_equal(getattr(h1, key), getattr(h2, key), equal_nan=True), key


def test_same_seed_same_batches_for_both_trainers(task):
    sheaf, X, Y = task
    seen = {}
    for Trainer in (sheaflab.SheafTrainer, sheaflab.SGDTrainer):
        class Spy(Trainer):
            def _batch(self, Xb, Yb, idx=None):
                seen.setdefault(Trainer.__name__, []).append(Xb.copy())
                return super()._batch(Xb, Yb, idx)
        Spy(sheaf, batch_size=7, seed=5, progress=False).fit(X, Y, epochs=3)
    a, b = seen["SheafTrainer"], seen["SGDTrainer"]
    assert len(a) == len(b) == 3 * 9
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    other = []
    class Spy(sheaflab.SGDTrainer):
        def _batch(self, Xb, Yb, idx=None):
            other.append(Xb.copy())
            return super()._batch(Xb, Yb, idx)
    Spy(sheaf, batch_size=7, seed=6, progress=False).fit(X, Y, epochs=1)
    assert not np.array_equal(other[0], a[0])


def test_plain_gd_step_is_the_local_rule(task):
    sheaf, X, Y = task
    eq = sheaflab.equilibrium(sheaf, X, Y)
    gW, gb = sheaflab.local_gradients(sheaf, eq)
    tr = sheaflab.SheafTrainer(sheaf, lr=0.05, optimizer="sgd", progress=False)
    tr.fit(X, Y, epochs=1)
    expect = flat(sheaf.weights + sheaf.biases) - 0.05 * flat(gW + gb)
    np.testing.assert_allclose(flat(tr.params), expect, atol=1e-14)


def test_sgd_gradient_matches_finite_differences():
    sheaf, X, Y = random_problem([2, 5, 3, 2], n=15, seed=2)
    loss, gW, gb = sheaflab.backprop_gradients(sheaf, X, Y)

    def half_mse():
        return 0.5 * ((sheaf.forward(X) - Y) ** 2).sum(1).mean()

    assert loss == pytest.approx(half_mse())
    np.testing.assert_allclose(flat(gW + gb), central_differences(half_mse, sheaf.parameters),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizers_minimise_a_quadratic(name):
    from sheaflab.optim import make_optimizer
    opt = make_optimizer(name, 0.05)
    p = [np.array([3.0, -2.0]), np.array([[1.0]])]
    for _ in range(2000):
        opt.step(p, [2 * p[0], 2 * p[1]])
    assert np.abs(flat(p)).max() < 1e-3


def test_momentum_and_adam_match_their_formulas():
    from sheaflab.optim import make_optimizer
    g = [np.array([0.5, -1.0])]
    p = [np.zeros(2)]
    adam = make_optimizer("adam", 0.1)
    adam.step(p, g)
    np.testing.assert_allclose(p[0], -0.1 * np.sign(g[0]), rtol=1e-6)   # first Adam step = lr * sign
    p = [np.zeros(2)]
    mom = make_optimizer("momentum", 0.1)
    mom.step(p, g)
    mom.step(p, g)
    np.testing.assert_allclose(p[0], -0.1 * g[0] * (1 + 1.9))


def test_l2_by_reluctance_edges_equals_weight_decay(task):
    """Definition 8: the sheaf trainer reads the L2 term off reluctance edges; SGD adds weight decay."""
    sheaf, X, Y = task
    lam, lr = 0.1, 0.05
    eq = sheaflab.equilibrium(sheaf, X, Y)
    gW, gb = sheaflab.local_gradients(sheaf, eq)
    theta = flat(sheaf.weights + sheaf.biases)
    tr = sheaflab.SheafTrainer(sheaf, lr=lr, optimizer="sgd", l2=lam, progress=False)
    tr.fit(X, Y, epochs=1)
    np.testing.assert_allclose(flat(tr.params), theta - lr * (flat(gW + gb) + lam * theta), atol=1e-10)
    np.testing.assert_allclose(flat(tr.params), (1 - lr * lam) * theta - lr * flat(gW + gb), atol=1e-10)
    _, sW, sb = sheaflab.backprop_gradients(sheaf, X, Y)
    sg = sheaflab.SGDTrainer(sheaf, lr=lr, optimizer="sgd", l2=lam, progress=False)
    sg.fit(X, Y, epochs=1)
    np.testing.assert_allclose(flat(sg.params), theta - lr * (flat(sW + sb) + lam * theta), atol=1e-10)


def test_diffusion_fast_phase_trains_like_direct(task):
    sheaf, X, Y = task
    a = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False)
    b = sheaflab.SheafTrainer(sheaf, lr=0.01, method="diffusion", tol=1e-11, progress=False)
    assert b.method == "diffusion"
    a.fit(X, Y, epochs=5)
    b.fit(X, Y, epochs=5)
    np.testing.assert_allclose(flat(a.params), flat(b.params), atol=1e-8)
    assert b.history.fast_iterations.sum() > 50 * a.history.fast_iterations.sum()


def test_parallel_fast_phase_gives_the_same_weights(task):
    sheaf, X, Y = task
    a = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False)
    b = sheaflab.SheafTrainer(sheaf, lr=0.01, n_jobs=2, progress=False)
    a.fit(X, Y, epochs=3)
    b.fit(X, Y, epochs=3)
    np.testing.assert_allclose(flat(a.params), flat(b.params), atol=1e-12)


@pytest.mark.parametrize("Trainer", [sheaflab.SheafTrainer, sheaflab.SGDTrainer])
def test_divergence_stops_with_a_message_naming_lr(Trainer, task):
    sheaf, X, Y = task
    tr = Trainer(sheaf, lr=0.01, optimizer="sgd", progress=False)
    tr.fit(X, Y, epochs=3)
    tr.optimizer.lr = tr.lr = 1000.0           # a user raising lr mid-run
    with pytest.raises(sheaflab.TrainingDiverged, match=r"epoch 4: .*lr=1000") as info:
        tr.fit(X, Y, epochs=200)
    h = info.value.history
    assert h is tr.history and h.epochs == 3     # the good epochs are kept
    assert np.all(np.isfinite(h.train_mse))


def test_trainer_argument_errors(task):
    sheaf, X, Y = task
    with pytest.raises(ValueError, match="lr must be"):
        sheaflab.SheafTrainer(sheaf, lr=-1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        sheaflab.SGDTrainer(sheaf, optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size must be"):
        sheaflab.SheafTrainer(sheaf, batch_size=0)
    with pytest.raises(ValueError, match="l2 must be"):
        sheaflab.SheafTrainer(sheaf, l2=np.nan)
    with pytest.raises(TypeError, match="sheaf must be"):
        sheaflab.SGDTrainer([np.ones((2, 2))])
    with pytest.raises(ValueError, match="n_jobs must be"):
        sheaflab.SheafTrainer(sheaf, n_jobs=0)
    with pytest.raises(TypeError, match="n_jobs must be an integer"):
        sheaflab.SheafTrainer(sheaf, n_jobs="2")        # the same error as fast_phase gives
    with pytest.raises(ValueError, match="method must be one of"):
        sheaflab.SheafTrainer(sheaf, method="cg")
    with pytest.raises(TypeError, match="seed must be"):
        sheaflab.SGDTrainer(sheaf, seed="a")
    tr = sheaflab.SheafTrainer(sheaf, progress=False)
    with pytest.raises(ValueError, match="epochs must be"):
        tr.fit(X, Y, epochs=0)
    with pytest.raises(ValueError, match="X_val and Y_val"):
        tr.fit(X, Y, epochs=1, X_val=X)
    with pytest.raises(ValueError, match=r"Y must have shape \(60, 1\)"):
        tr.fit(X, Y[:5], epochs=1)
    with pytest.raises(ValueError, match=r"X_val must have shape"):
        tr.fit(X, Y, epochs=1, X_val=np.ones((3, 3)), Y_val=np.ones((3, 1)))


def test_joint_flow_approaches_algorithm_4_as_eps_shrinks():
    """Proposition 2: run both to the same slow time T; the gap to Algorithm 4 (plain GD with step
    eta_theta, exact fast phase) shrinks linearly with eps."""
    X, Y = paraboloid_grid(4)
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    T, eta_c = 0.5, 0.2
    gaps = []
    for eps in (0.1, 0.01, 0.003):
        jf = sheaflab.JointFlow(sheaf, eps=eps, eta_c=eta_c)
        steps = int(round(T / jf.eta_theta))
        hist = jf.run(X, Y, steps, record_every=steps)
        tr = sheaflab.SheafTrainer(sheaf, lr=jf.eta_theta, optimizer="sgd", progress=False)
        tr.fit(X, Y, epochs=steps)
        gaps.append(np.linalg.norm(flat(jf.sheaf.weights + jf.sheaf.biases) - flat(tr.params)))
        assert hist.theta_time[-1] == pytest.approx(T, rel=0.01)
    moved = np.linalg.norm(flat(tr.params) - flat(sheaf.weights + sheaf.biases))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[1] / gaps[0] < 0.2                     # roughly linear in eps
    assert gaps[2] < 0.02 * moved


def test_joint_flow_runs_continue_one_another():
    """Steps, cochains, weights and theta_0 persist: 3 runs of 40 steps equal one run of 120."""
    X, Y = paraboloid_grid(4)
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    one = sheaflab.JointFlow(sheaf, eps=0.01)
    h_one = one.run(X, Y, 120, record_every=40)
    parts = sheaflab.JointFlow(sheaf, eps=0.01)
    hs = [parts.run(X, Y, 40, record_every=40) for _ in range(3)]
    assert parts.steps == one.steps == 120
    assert h_one.step.tolist() == [0, 40, 80, 120]
    assert np.concatenate([h.step for h in hs]).tolist() == [0, 40, 80, 120]
    np.testing.assert_array_equal(flat(parts.sheaf.parameters), flat(one.sheaf.parameters))
    np.testing.assert_array_equal(np.concatenate([h.weight_change for h in hs]), h_one.weight_change)
    np.testing.assert_array_equal(np.concatenate([h.theta_time for h in hs]), h_one.theta_time)
    assert h_one.weight_change[-1] == pytest.approx(
        np.linalg.norm(flat(one.sheaf.parameters) - flat(sheaf.parameters)))


def test_joint_flow_relaxes_the_cochain_first():
    X, Y = paraboloid_grid(4)
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    jf = sheaflab.JointFlow(sheaf, eps=0.001)
    h = jf.run(X, Y, 300, record_every=10)
    eq = sheaflab.equilibrium(jf.sheaf, X, Y)
    # after a fast transient each cochain tracks the equilibrium of the current, slowly moving weights
    assert np.allclose(h.energy[0], 0.5 * ((sheaf.forward(X) - Y) ** 2).sum(1))
    np.testing.assert_allclose(h.energy[-1], eq.energy, rtol=0.02, atol=1e-3)
    assert h.energy[-1].sum() < 0.5 * h.energy[0].sum()


# ---------------------------------------------------------------------------------- warm starts
def _spy_inits(monkeypatch):
    """Record the ``init`` the sheaf trainer hands the fast phase, batch by batch."""
    import sheaflab.train as train_module
    seen = []
    real = train_module.fast_phase

    def spy(*args, **kwargs):
        init = kwargs.get("init")
        seen.append(None if init is None else init.copy())
        return real(*args, **kwargs)
    monkeypatch.setattr(train_module, "fast_phase", spy)
    return seen


@pytest.mark.parametrize("batch_size", [None, 16])
def test_warm_starts_use_each_examples_previous_equilibrium(monkeypatch, batch_size):
    sheaf, X, Y = random_problem([2, 6, 5, 1], n=40, seed=2)
    inits = _spy_inits(monkeypatch)
    tr = sheaflab.SheafTrainer(sheaf, lr=0.01, batch_size=batch_size, progress=False, seed=1)
    tr.fit(X, Y, epochs=1)
    assert all(i is None for i in inits)                  # first epoch: every start is the forward pass
    stored = [z.copy() for z in tr._warm.z], [a.copy() for a in tr._warm.a]
    assert tr._warm.seen.all()
    # the stored cochains are equilibria at the weights each batch was solved with; for full batch,
    # those are the initial weights
    if batch_size is None:
        eq = sheaflab.equilibrium(sheaf, X, Y)
        np.testing.assert_allclose(stored[1][0], eq.a[0], atol=1e-9)
    del inits[:]
    tr.fit(X, Y, epochs=1)
    # second epoch: each batch starts from its rows' stored equilibria
    starts = np.concatenate([i.x for i in inits])
    z_start = np.concatenate([i.z[0] for i in inits])
    for row, x in enumerate(starts):
        k = int(np.flatnonzero((X == x).all(axis=1))[0])
        np.testing.assert_array_equal(z_start[row], stored[0][0][k])


def test_warm_starts_are_deterministic_and_fall_back_on_new_data(monkeypatch):
    sheaf, X, Y = random_problem([2, 6, 5, 1], n=30, seed=3)
    runs = [sheaflab.SheafTrainer(sheaf, lr=0.02, batch_size=8, progress=False).fit(X, Y, epochs=6)
            for _ in range(2)]
    for key in ("train_mse", "residual", "fast_iterations"):
        np.testing.assert_array_equal(getattr(runs[0], key), getattr(runs[1], key))
    tr = sheaflab.SheafTrainer(sheaf, lr=0.02, progress=False)
    tr.fit(X, Y, epochs=2)
    inits = _spy_inits(monkeypatch)
    X2, Y2 = X + 0.1, Y.copy()                           # same shapes, other data
    tr.fit(X2, Y2, epochs=1)
    assert inits == [None]                                # cold again: the forward pass
    tr.fit(X2, Y2, epochs=1)
    assert inits[-1] is not None                          # and warm on the new data afterwards
    cold = sheaflab.SheafTrainer(sheaf, lr=0.02, progress=False, warm_start=False)
    inits.clear()
    cold.fit(X, Y, epochs=3)
    assert inits == [None] * 3 and cold._warm is None
    with pytest.raises(TypeError, match="warm_start"):
        sheaflab.SheafTrainer(sheaf, warm_start="yes")


def test_warm_starts_cut_the_fast_phase_and_keep_it_exact():
    """On a deep net warm starts need fewer region solves per epoch, and the trainer's gradient is
    still the local rule at an equilibrium (a fixed point of the walk) of the current weights."""
    sheaf, X, Y = random_problem([2, 16, 16, 1], n=60, seed=4)
    hist = {w: sheaflab.SheafTrainer(sheaf, lr=0.005, progress=False, warm_start=w).fit(X, Y, epochs=8)
            for w in (True, False)}
    assert hist[True].fast_iterations[1:].sum() < hist[False].fast_iterations[1:].sum()
    assert np.all(hist[True].fast_unconverged == 0)
    tr = sheaflab.SheafTrainer(sheaf, lr=0.005, progress=False)
    tr.fit(X, Y, epochs=3)
    before = tr.sheaf.copy()
    start = tr._warm.start(before, X, Y, slice(None))
    eq = sheaflab.equilibrium(before, X, Y, init=start)
    gW, gb = sheaflab.local_gradients(before, eq)
    tr.optimizer = sheaflab.optim.make_optimizer("sgd", 0.1)
    tr.fit(X, Y, epochs=1)
    np.testing.assert_allclose(flat(tr.params), flat(before.parameters) - 0.1 * flat(gW + gb),
                               atol=1e-12)


def test_track_gap_is_the_mean_gap_at_the_epochs_equilibria():
    sheaf, X, Y = random_problem([2, 20, 20, 1], n=30, seed=5)
    tr = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False, track_gap=2)
    h = tr.fit(X, Y, epochs=4)
    assert np.isnan(h.lambda_min[0]) and np.isnan(h.lambda_min[2])
    # with warm starts the gap is read at the equilibria reached from the epoch's own (which the
    # next epoch starts from): a fixed point of the walk at the final weights
    start = tr._warm.start(tr.sheaf, X, Y, slice(None))
    eq = sheaflab.equilibrium(tr.sheaf, X, Y, init=start)
    assert eq.iterations.max() == 1
    dense = sheaflab.spectral.lambda_min(tr.sheaf, eq.patterns, solver="dense").mean()
    assert h.lambda_min[3] == pytest.approx(dense, rel=1e-8)
    cold = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False, track_gap=2, warm_start=False)
    hc = cold.fit(X, Y, epochs=4)
    eqc = sheaflab.equilibrium(cold.sheaf, X, Y)
    assert hc.lambda_min[3] == pytest.approx(eqc.lambda_min().mean(), rel=1e-8)


def test_gap_sample_records_the_mean_gap_over_its_fixed_subset():
    sheaf, X, Y = random_problem([2, 20, 20, 1], n=30, seed=5)
    tr = sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False, track_gap=2, gap_sample=8, seed=3,
                               warm_start=False)
    h = tr.fit(X, Y, epochs=4)
    idx = tr.gap_examples(len(X))
    assert idx.shape == (8,) and np.all(np.diff(idx) > 0) and idx.max() < 30
    assert np.array_equal(idx, sheaflab.SheafTrainer(sheaf, gap_sample=8, seed=3).gap_examples(30))
    # the recording is the dense mean gap over exactly those examples, at the final weights
    eq = sheaflab.equilibrium(tr.sheaf, X[idx], Y[idx])
    dense = sheaflab.spectral.lambda_min(tr.sheaf, eq.patterns, solver="dense").mean()
    assert h.lambda_min[3] == pytest.approx(dense, rel=1e-8)
    tr.gap_sample = 5                       # a new size draws a new subset
    assert tr.gap_examples(len(X)).shape == (5,)
    # a sample as large as the set is the full mean; and the value must be a positive integer
    assert sheaflab.SheafTrainer(sheaf, gap_sample=30).gap_examples(30) == slice(None)
    with pytest.raises(ValueError, match="gap_sample"):
        sheaflab.SheafTrainer(sheaf, gap_sample=0)


def test_warm_starts_leave_the_heat_flow_and_the_scalar_solve_alone(task):
    """The heat flow and the [n, m, 1] breakpoint solve start from the forward pass either way."""
    sheaf, X, Y = task
    for kw in ({"method": "diffusion", "tol": 1e-9}, {}):
        runs = [sheaflab.SheafTrainer(sheaf, lr=0.01, progress=False, warm_start=w, **kw).fit(X, Y, epochs=3)
                for w in (True, False)]
        np.testing.assert_array_equal(runs[0].train_mse, runs[1].train_mse)
        np.testing.assert_array_equal(runs[0].fast_iterations, runs[1].fast_iterations)


def test_warm_starts_through_joblib_workers_give_the_same_weights():
    """The chunks' equilibria come back from the workers and warm the next epoch as in one process."""
    sheaf, X, Y = random_problem([2, 20, 16, 1], n=80, seed=7)
    runs = [sheaflab.SheafTrainer(sheaf, lr=0.01, batch_size=40, n_jobs=n, progress=False)
            for n in (1, 2)]
    for tr in runs:
        tr.fit(X, Y, epochs=3)
    np.testing.assert_allclose(flat(runs[0].params), flat(runs[1].params), atol=1e-9)
    assert runs[1]._warm.seen.all()
    np.testing.assert_allclose(runs[0]._warm.a[0], runs[1]._warm.a[0], atol=1e-8)


def test_fit_needs_a_number_of_epochs(task):
    sheaf, X, Y = task
    with pytest.raises(TypeError, match="fit needs epochs"):
        sheaflab.SGDTrainer(sheaf, progress=False).fit(X, Y)
