"""Output heads: Bregman output edges, forward probabilities, losses and label checks."""

import numpy as np
import pytest

import sheaflab
from conftest import central_differences
from sheaflab import heads


def labelled(dims, head, n=30, seed=0):
    rng = np.random.default_rng(seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed, head=head)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, 0.3, b.shape)
    X = rng.uniform(-2, 2, (n, dims[0]))
    k = dims[-1]
    if head == "softmax":
        Y = np.eye(k)[rng.integers(0, k, n)]
    else:
        Y = rng.integers(0, 2, (n, k)).astype(float)
    return sheaf, X, Y


@pytest.mark.parametrize("head, dims", [("sigmoid", [2, 5, 1]), ("sigmoid", [2, 4, 3]), ("softmax", [2, 5, 4]),
                                        ("softmax", [3, 4, 4, 2])])
def test_forward_is_the_zero_energy_cochain_and_returns_probabilities(head, dims):
    sheaf, X, Y = labelled(dims, head)
    assert sheaf.head == head and head in repr(sheaf)
    c = sheaf.forward_cochain(X)
    np.testing.assert_allclose(sheaf.energy(c), 0.0, atol=1e-12)
    P = sheaf.forward(X)
    assert np.all((P > 0) & (P < 1))
    if head == "softmax":
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    logits = c.z[-1]
    np.testing.assert_allclose(P, heads.get(head).mean(logits))


@pytest.mark.parametrize("head, dims", [("sigmoid", [2, 5, 1]), ("softmax", [2, 5, 4])])
def test_output_edge_energy_at_the_label_is_the_cross_entropy(head, dims):
    sheaf, X, Y = labelled(dims, head)
    P = sheaf.forward(X)
    if head == "softmax":
        ce = -np.sum(Y * np.log(P), axis=1)
    else:
        ce = -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P), axis=1)
    c = sheaf.forward_cochain(X, Y)               # the forward pass with the output pinned to the label
    np.testing.assert_allclose(sheaf.energy(c), ce, rtol=1e-12)
    assert sheaf.loss(X, Y) == pytest.approx(ce.mean(), rel=1e-12)
    # the discord of the output edge is the probability error
    np.testing.assert_allclose(sheaf.discord(c)["output"], P - Y, atol=1e-15)
    # soft labels: the energy is the cross-entropy minus the label's entropy (a KL divergence)
    soft = 0.25 + 0.5 * Y if head == "sigmoid" else (0.8 * Y + 0.05)
    e = sheaf.energy(sheaf.forward_cochain(X, soft))
    if head == "softmax":
        kl = np.sum(soft * np.log(soft / P), axis=1)
    else:
        kl = np.sum(soft * np.log(soft / P) + (1 - soft) * np.log((1 - soft) / (1 - P)), axis=1)
    np.testing.assert_allclose(e, kl, rtol=1e-10)


def test_identity_head_is_the_quadratic_output_edge():
    sheaf = sheaflab.NeuralSheaf.random([2, 6, 2], seed=1)
    assert sheaf.head == "identity" and repr(sheaf) == "NeuralSheaf(dims=[2, 6, 2])"
    X = np.random.default_rng(0).normal(size=(8, 2))
    Y = np.random.default_rng(1).normal(size=(8, 2))
    c = sheaf.forward_cochain(X, Y)
    np.testing.assert_array_equal(sheaf.energy(c), 0.5 * np.sum((sheaf.forward(X) - Y) ** 2, axis=1))
    assert sheaf.loss(X, Y) == sheaf.mse(X, Y)
    assert np.isnan(sheaf.accuracy(X, Y))


@pytest.mark.parametrize("head, dims", [("sigmoid", [2, 5, 1]), ("softmax", [2, 4, 3, 3])])
def test_backprop_gradient_of_the_cross_entropy(head, dims):
    sheaf, X, Y = labelled(dims, head, n=12)
    loss, gW, gb = sheaflab.backprop_gradients(sheaf, X, Y)
    assert loss == pytest.approx(sheaf.loss(X, Y), rel=1e-12)
    fd = central_differences(lambda: sheaf.loss(X, Y), sheaf.weights + sheaf.biases)
    np.testing.assert_allclose(sheaflab.flatten(gW + gb), fd, rtol=1e-6, atol=1e-9)


def test_accuracy_on_nets_whose_predictions_are_known():
    # one unit per input coordinate, passed through: [2, 2, 2] softmax predicts the larger of x1, x2
    # for x >= 0; the labels below are right for 3 of 4 examples
    net = sheaflab.NeuralSheaf([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)],
                               head="softmax")
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.5, 0.25]])
    Y = np.eye(2)[[0, 1, 0, 1]]                     # the last one is wrong
    assert net.accuracy(X, Y) == 0.75
    # sigmoid on [1, 1, 1] with unit weights and bias -1: p > 1/2 exactly when x > 1
    net = sheaflab.NeuralSheaf([np.ones((1, 1)), np.ones((1, 1))],
                               [np.zeros(1), -np.ones(1)], head="sigmoid")
    X = np.array([[0.5], [2.0], [3.0], [0.0], [1.5]])
    Y = np.array([[0.0], [1.0], [0.0], [1.0], [1.0]])   # right, right, wrong, wrong, right
    assert net.accuracy(X, Y) == pytest.approx(0.6)


@pytest.mark.parametrize("head, dims, Y, message", [
    ("sigmoid", [2, 3, 1], np.full((4, 1), 2.0), "Y must hold labels 0/1"),
    ("sigmoid", [2, 3, 1], np.full((4, 1), -0.5), "Y must hold labels 0/1"),
    ("softmax", [2, 3, 3], np.ones((4, 3)), "Y must hold one-hot rows"),
    ("softmax", [2, 3, 3], np.full((4, 3), -1 / 3) + np.eye(3)[[0, 1, 2, 0]] * 2, "Y must hold one-hot rows"),
    ("softmax", [2, 3, 3], np.eye(2)[[0, 1, 0, 1]], r"Y must have shape \(B, 3\)"),
])
def test_bad_labels_raise_naming_the_argument(head, dims, Y, message):
    sheaf = sheaflab.NeuralSheaf.random(dims, head=head)
    with pytest.raises(ValueError, match=message):
        sheaf.loss(np.zeros((4, 2)), Y)


def test_bad_heads_raise():
    with pytest.raises(ValueError, match="head must be one of 'identity', 'sigmoid', 'softmax'"):
        sheaflab.NeuralSheaf.random([2, 3, 1], head="tanh")
    with pytest.raises(ValueError, match="head 'softmax' needs at least 2 outputs"):
        sheaflab.NeuralSheaf.random([2, 3, 1], head="softmax")


def test_copies_keep_the_head():
    sheaf = sheaflab.NeuralSheaf.random([2, 3, 4], head="softmax")
    assert sheaf.copy().head == "softmax" and sheaf.snapshot().head == "softmax"
    assert sheaf.same_parameters(sheaf.copy())
    other = sheaflab.NeuralSheaf(sheaf.weights, sheaf.biases)            # identity head
    assert not sheaf.same_parameters(other)


CASES = [("sigmoid", [2, 6, 1]), ("sigmoid", [2, 5, 2]), ("softmax", [2, 6, 3]), ("sigmoid", [2, 5, 4, 1]),
         ("softmax", [2, 4, 5, 3])]


@pytest.mark.parametrize("head, dims", CASES)
def test_equilibrium_with_a_head_is_stationary_and_below_the_cross_entropy(head, dims):
    from sheaflab.dynamics import flow_velocity
    sheaf, X, Y = labelled(dims, head, n=40, seed=3)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    assert eq.converged.all()
    ce = sheaf.energy(sheaf.forward_cochain(X, Y))          # cross-entropy (0/1 or one-hot labels)
    assert np.all(eq.energy <= ce + 1e-12) and np.any(eq.energy < 0.9 * ce)
    v, _ = flow_velocity(sheaf, eq.cochain)
    assert max(np.abs(x).max() for x in v["z"] + v["a"]) < 1e-9
    for k, z in zip(eq.kinks, eq.cochain.z[:-1]):
        assert np.all(z[k] == 0.0)                          # kink minima sit exactly on z = 0
    d = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-10)
    same = np.all([(p == q).all(axis=1) for p, q in zip(d.patterns, eq.patterns)], axis=0)
    assert same.mean() > 0.8                                 # the same minimum for most examples ...
    np.testing.assert_allclose(d.energy[same], eq.energy[same], rtol=1e-7, atol=1e-12)   # ... and R


@pytest.mark.parametrize("head, dims", CASES)
def test_local_gradients_with_a_head_are_the_gradient_of_R(head, dims):
    sheaf, X, Y = labelled(dims, head, n=6, seed=5)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    gW, gb = sheaflab.local_gradients(sheaf, eq)

    def mean_R():
        return float(sheaflab.equilibrium(sheaf, X, Y).energy.mean())

    fd = central_differences(mean_R, sheaf.weights + sheaf.biases, h=1e-6)
    g = sheaflab.flatten(gW + gb)
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(g) + 1e-9


def test_diffusion_needs_both_ends_pinned_with_a_head():
    sheaf, X, _ = labelled([2, 4, 1], "sigmoid")
    with pytest.raises(ValueError, match="method='diffusion' with only the input pinned"):
        sheaflab.equilibrium(sheaf, X, method="diffusion")
    eq = sheaflab.equilibrium(sheaf, X)                      # the forward pass, probabilities at yhat
    np.testing.assert_allclose(eq.cochain.yhat, sheaf.forward(X))
    np.testing.assert_allclose(eq.energy, 0.0, atol=1e-12)


@pytest.mark.parametrize("task", ["circle", "blobs"])
def test_both_trainers_learn_a_classification_task(task):
    from sheaflab.datasets import TASK_SPECS, task_split
    Xtr, Ytr, Xte, Yte = task_split(task, seed=1)
    dims, head = TASK_SPECS[task][:2]
    net = sheaflab.NeuralSheaf.random(list(dims), seed=1, head=head)
    for Trainer in (sheaflab.SheafTrainer, sheaflab.SGDTrainer):
        h = Trainer(net, lr=0.02, optimizer="adam", progress=False).fit(Xtr, Ytr, epochs=60, X_val=Xte, Y_val=Yte)
        assert h.train_loss[-1] < 0.5 * h.train_loss[0]
        assert h.val_accuracy[-1] > 0.8 and h.train_accuracy.shape == (60,)
        assert np.all(np.isfinite(h.train_loss))


@pytest.mark.parametrize("dims, bias, scale", [([2, 25, 1], 0.0, 1.0), ([3, 12, 1], 0.5, 1.5), ([2, 5, 1], 1.0, 2.0)])
def test_scalar_sigmoid_solve_equals_the_walk(dims, bias, scale):
    """[n_0, n_1, 1] with a sigmoid head: the scalar breakpoint solve reaches the walk's minimiser."""
    from sheaflab.direct import one_hidden_sigmoid, scalar_case, walk
    from sheaflab.sheaf import Cochain
    rng = np.random.default_rng(7)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=2, head="sigmoid", scale=scale)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, bias, b.shape)
    X = rng.normal(size=(200, dims[0]))
    Y = rng.integers(0, 2, (200, 1)).astype(float)
    assert scalar_case(sheaf)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    z, a, modes, conv, _ = walk(sheaf, X, Y, sheaf.forward_cochain(X, Y), 1e-12, 100)
    assert conv.all() and eq.converged.all() and eq.kinks[0].any()
    np.testing.assert_allclose(eq.energy, sheaf.energy(Cochain(X, z, a, Y.copy())), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(eq.cochain.z[0][eq.kinks[0]], 0.0)
    _, _, _, converged, iters, _ = one_hidden_sigmoid(sheaf, X, Y, max_iter=1)
    assert not converged.all() and iters.max() == 1          # honest when capped


@pytest.mark.parametrize("dims, scale", [([2, 4, 1], 4.0), ([2, 25, 1], 4.0), ([2, 25, 1], 2.0)])
def test_scalar_sigmoid_solve_converges_on_a_saturated_head(dims, scale):
    """Large weights saturate the sigmoid; the safeguarded Newton iteration must still converge.

    Plain Newton inside the bracket used to bounce between its ends there and run out of
    iterations (11 of 2000 examples for [2, 4, 1] at scale 4); with bisection whenever |h| fails to
    halve, every example converges well within the cap and matches the walk's minimiser."""
    from sheaflab.direct import one_hidden_sigmoid, walk
    from sheaflab.sheaf import Cochain
    rng = np.random.default_rng(7)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=2, head="sigmoid", scale=scale)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, 1.0, b.shape)
    X = rng.normal(size=(2000, dims[0]))
    Y = rng.integers(0, 2, (2000, 1)).astype(float)
    z, a, _, converged, iters, _ = one_hidden_sigmoid(sheaf, X, Y, max_iter=100)
    assert converged.all() and iters.max() <= 60
    zw, aw, _, conv_w, _ = walk(sheaf, X, Y, sheaf.forward_cochain(X, Y), 1e-12, 100)
    assert conv_w.all()
    np.testing.assert_allclose(sheaf.energy(Cochain(X, z, a, Y.copy())),
                               sheaf.energy(Cochain(X, zw, aw, Y.copy())), rtol=1e-9, atol=1e-12)
