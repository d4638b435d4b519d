"""The one-hidden-layer fast path (sheaflab.one_hidden) against the active-set walk from the forward
pass (another algorithm), on every head and several output widths, kinks included; the walk finishes
any example whose active set has not settled. The independent L-BFGS-B check on the convex set Q is
tests/test_reached.py::test_one_hidden_layer_proposition."""

import numpy as np
import pytest

import sheaflab
from sheaflab import solve
from sheaflab.direct import KINK, walk
from sheaflab.one_hidden import one_hidden_head


def problem(dims, head, seed, B=40, w_scale=1.0):
    rng = np.random.default_rng(seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed, head=head)
    sheaf.weights[1][:] *= w_scale
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, 0.6, b.shape)
    X = rng.uniform(-2.0, 2.0, (B, dims[0]))
    if head == "identity":
        Y = rng.normal(0.0, 4.0, (B, dims[-1]))
    elif head == "sigmoid":
        Y = rng.integers(0, 2, (B, dims[-1])).astype(float)
    else:
        Y = np.eye(dims[-1])[rng.integers(0, dims[-1], B)]
    return sheaf, X, Y


CASES = [("identity", [2, 6, 2], 0, 1.0), ("identity", [3, 5, 3], 1, 2.0), ("sigmoid", [2, 6, 2], 2, 3.0),
         ("softmax", [2, 8, 2], 3, 1.0), ("softmax", [2, 25, 4], 4, 1.0), ("softmax", [2, 6, 4], 5, 6.0)]


@pytest.mark.parametrize("head,dims,seed,w_scale", CASES)
def test_one_hidden_head_is_the_walk_from_the_forward_pass(head, dims, seed, w_scale):
    sheaf, X, Y = problem(dims, head, seed, w_scale=w_scale)
    z, a, kinks, converged, iters = one_hidden_head(sheaf, X, Y)
    assert converged.all()
    zw, aw, modes, ok, _ = walk(sheaf, X, Y, sheaf.forward_cochain(X), 1e-12, 100)
    assert ok.all()
    for mine, theirs in zip(z + a, zw + aw):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(kinks[0], modes[0] == KINK)
    if w_scale > 1.0:
        assert kinks[0].any()             # strong output weights push active units onto the kink
    # and equilibrium() takes this path: the same stalks, energies from the same cochain
    eq = sheaflab.equilibrium(sheaf, X, Y)
    np.testing.assert_array_equal(eq.z[1], z[1])
    assert eq.success and eq.iterations.max() == iters.max()


def test_unsettled_examples_are_finished_by_the_walk(monkeypatch):
    sheaf, X, Y = problem([2, 6, 4], "softmax", 5, w_scale=6.0)
    full = one_hidden_head(sheaf, X, Y)
    assert full[4].max() >= 2                       # some examples need a second active set
    monkeypatch.setattr(solve, "one_hidden_head", lambda s, X, Y, m, **kw: one_hidden_head(s, X, Y, max_iter=1, **kw))
    eq = sheaflab.equilibrium(sheaf, X, Y)
    assert eq.success
    for mine, theirs in zip(eq.z + eq.a, full[0] + full[1]):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)


def test_one_hidden_head_needs_one_hidden_layer():
    sheaf, X, Y = problem([2, 3, 3, 2], "softmax", 0)
    with pytest.raises(ValueError, match="one hidden layer"):
        one_hidden_head(sheaf, X, Y)


def test_a_guess_changes_the_work_not_the_answer():
    sheaf, X, Y = problem([2, 25, 4], "softmax", 4)
    cold = sheaflab.equilibrium(sheaf, X, Y)
    moved = sheaf.copy()
    moved.weights[1][:] += 0.05 * np.random.default_rng(0).normal(size=moved.weights[1].shape)
    before = sheaflab.equilibrium(moved, X, Y).cochain      # the equilibrium at nearby weights
    warm = sheaflab.equilibrium(sheaf, X, Y, guess=before)
    for mine, theirs in zip(warm.z + warm.a, cold.z + cold.a):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)
    assert warm.iterations.sum() <= cold.iterations.sum()
    with pytest.raises(ValueError, match="guess"):
        sheaflab.equilibrium(sheaf, X, Y, guess=sheaflab.equilibrium(sheaf, X[:3], Y[:3]).cochain)


def test_warm_starts_at_one_hidden_layer_keep_the_training_curve():
    from sheaflab.datasets import task_split
    X, Y, _, _ = task_split("blobs", seed=0)
    net = sheaflab.NeuralSheaf.random([2, 12, 4], seed=0, head="softmax")
    runs = [sheaflab.SheafTrainer(net, lr=0.02, warm_start=w, progress=False) for w in (True, False)]
    for tr in runs:
        tr.fit(X, Y, epochs=20)
    np.testing.assert_allclose(runs[0].history.train_loss, runs[1].history.train_loss, rtol=1e-9)
    for a, b in zip(runs[0].sheaf.weights, runs[1].sheaf.weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert runs[0].history.fast_iterations.sum() < runs[1].history.fast_iterations.sum()
