"""Closed forms of one hidden layer, and the rescaling symmetry of the relaxed energy."""

import numpy as np
import pytest

import sheaflab
from conftest import random_problem
from sheaflab import closed_form, experiments
from sheaflab.datasets import paraboloid


@pytest.mark.parametrize("dims, seed, bias", [([2, 30, 1], 0, 0.0), ([3, 12, 1], 1, 0.5), ([2, 5, 1], 2, 0.5)])
def test_closed_form_residual_equals_the_direct_solve(dims, seed, bias):
    sheaf, X, Y = random_problem(dims, n=200, seed=seed, bias=bias)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    R = closed_form.residual(sheaf, X, Y, eq.patterns[0], eq.kinks[0])
    np.testing.assert_allclose(R, eq.energy, rtol=1e-12, atol=1e-13)
    if bias:
        assert eq.kinks[0].any()                     # the kink terms are exercised


@pytest.mark.parametrize("dims, seed", [([2, 5, 3], 1), ([3, 12, 2], 2)])
def test_closed_form_with_a_vector_output_equals_the_direct_solve(dims, seed):
    """R = 1/2 ||u_K||^2 + 1/4 e^T D^{-1} e with the matrix D = I + W_A W_A^T + 1/2 W_I W_I^T + ..."""
    sheaf, X, Y = random_problem(dims, n=150, seed=seed, bias=0.5)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    assert eq.kinks[0].any()
    R = closed_form.residual(sheaf, X, Y, eq.patterns[0], eq.kinks[0])
    np.testing.assert_allclose(R, eq.energy, rtol=1e-12, atol=1e-13)
    D = closed_form.output_metrics(sheaf, eq.patterns[0])
    assert D.shape == (150, dims[-1], dims[-1]) and np.all(np.linalg.eigvalsh(D) >= 1.0 - 1e-12)


@pytest.mark.parametrize("dims", [[2, 8, 8, 1], [2, 6, 6, 6, 1]])
def test_stiffness_of_deep_nets_sets_the_first_layer_gradient(dims):
    """Any depth: R = 1/2 S (f_P - y)^2 with S independent of y inside a region, and the first layer's
    gradient of R is S times the squared error's where the equilibrium keeps the forward pattern."""
    sheaf, X, Y = random_problem(dims, n=60, seed=2, bias=0.3)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    S = closed_form.stiffness(sheaf, X, Y, eq)
    eq2 = sheaflab.equilibrium(sheaf, X, Y + 1e-3)
    S2 = closed_form.stiffness(sheaf, X, Y + 1e-3, eq2)
    same = np.all([(p == q).all(axis=1) for p, q in zip(eq.patterns, eq2.patterns)], axis=0)
    assert np.sum(~np.isnan(S) & same) >= 20
    np.testing.assert_allclose(S[same], S2[same], rtol=1e-10)          # NaN (kinks) compare equal
    assert np.nanmax(S) < 1.0 and np.nanmin(S) > 0.0
    forward = [z > 0 for z in sheaf.forward_cochain(X).z[:-1]]
    keeps = np.all([(p == q).all(axis=1) for p, q in zip(eq.patterns, forward)], axis=0)
    checked = 0
    for i in np.flatnonzero(keeps & ~np.isnan(S))[:6]:
        e = sheaflab.equilibrium(sheaf, X[i:i + 1], Y[i:i + 1])
        gW, gb = sheaflab.local_gradients(sheaf, e)
        _, bW, bb = sheaflab.backprop_gradients(sheaf, X[i:i + 1], Y[i:i + 1])
        np.testing.assert_allclose(gW[0], S[i] * bW[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gb[0], S[i] * bb[0], rtol=1e-9, atol=1e-12)
        checked += 1
    assert checked >= 3
    assert closed_form.step_factor(sheaf, X, Y) == pytest.approx(np.nanmean(1.0 / S))


def test_stiffness_is_one_over_2D_with_one_hidden_layer():
    sheaf, X, Y = random_problem([2, 12, 1], n=80, seed=4, bias=0.0)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    S = closed_form.stiffness(sheaf, X, Y, eq)
    kinked = eq.kinks[0].any(axis=1)
    assert np.all(np.isnan(S[kinked])) and (~kinked).sum() >= 40
    np.testing.assert_allclose(S[~kinked], 1.0 / (2.0 * closed_form.denominators(sheaf, eq.patterns[0]))[~kinked],
                               rtol=1e-12)
    with pytest.raises(ValueError, match="scalar output"):
        closed_form.stiffness(sheaflab.NeuralSheaf.random([2, 3, 2]), X, np.ones((80, 2)))


def test_no_kinks_gives_the_short_form_and_the_first_layer_gradient_ratio():
    """R = (f - y)^2 / (4 D) without kinks, and then grad_{W_1} R = grad_{W_1} (1/2 (f - y)^2) / (2 D)."""
    sheaf = sheaflab.NeuralSheaf([np.array([[1.0, -0.5], [0.5, 1.0], [0.3, 0.2]]), np.array([[1.0, -1.5, 0.7]])],
                                 [np.array([0.1, -0.2, -2.0]), np.array([0.0])])
    X, Y = np.array([[1.0, 0.5]]), np.array([[1.0]])
    eq = sheaflab.equilibrium(sheaf, X, Y)
    assert not eq.kinks[0].any() and eq.patterns[0].tolist() == [[True, True, False]]
    f = sheaf.forward(X)[0, 0]
    D = 1 + 1.0 + 1.5 ** 2 + 0.5 * 0.7 ** 2
    assert eq.energy[0] == pytest.approx((f - 1.0) ** 2 / (4 * D), rel=1e-13)
    gR = sheaflab.local_gradients(sheaf, eq)[0][0]
    gL = sheaflab.backprop_gradients(sheaf, X, Y)[1][0]
    np.testing.assert_allclose(gR, gL / (2 * D), rtol=1e-12)
    assert closed_form.step_factor(sheaf, X, Y) == pytest.approx(2 * D)


def test_closed_form_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\[n_0, n_1, 1\]"):
        closed_form.denominators(sheaflab.NeuralSheaf.random([2, 3, 3, 1]), np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="one hidden layer"):
        closed_form.residual(sheaflab.NeuralSheaf.random([2, 3, 3, 1]), np.ones((2, 2)), np.ones((2, 1)),
                             np.ones((2, 3), dtype=bool), np.zeros((2, 3), dtype=bool))


def test_rescaling_keeps_the_function_and_lowers_R():
    """(W_1/c, b_1/c, c W_2): same MSE, R falls, and dR/dc = -2 E(affine_1 + relu_1) at c = 1."""
    sheaf, X, Y = random_problem([2, 12, 6, 1], n=50, seed=3)
    for layer in (1, 2):
        rows = experiments.rescaling_curve(sheaf, X, Y, [1 - 1e-5, 1.0, 1 + 1e-5, 4.0], layer=layer)
        assert np.ptp([r.mse for r in rows]) < 1e-10 * rows[0].mse
        assert rows[3].residual < rows[1].residual
        slope = (rows[2].residual - rows[0].residual) / 2e-5
        assert slope == pytest.approx(-2 * rows[1].first_edges, rel=1e-5)
    with pytest.raises(ValueError, match="layer must be a hidden layer"):
        experiments.rescaled(sheaf, 2.0, layer=3)
    with pytest.raises(ValueError, match="c must be"):
        experiments.rescaled(sheaf, -1.0)


def test_output_weight_drift_records_both_trainers():
    X, Y = paraboloid(40, noise=0.02, seed=0)
    sheaf = sheaflab.NeuralSheaf.random([2, 8, 1], seed=0)
    d = experiments.output_weight_drift(sheaf, X, Y, lr=0.02, epochs=60, every=25)
    assert d.epoch.tolist() == [0, 25, 50, 60]
    assert d.sheaf[0] == d.sgd[0] == pytest.approx(np.linalg.norm(sheaf.weights[-1]))
    tr = sheaflab.SheafTrainer(sheaf, lr=0.02, optimizer="sgd", progress=False)
    tr.fit(X, Y, epochs=60)
    assert d.sheaf[-1] == pytest.approx(np.linalg.norm(tr.sheaf.weights[-1]), rel=1e-12)


def test_compact_formulation_by_face_search_equals_a_numerical_minimum():
    """The compact energy's global minimum, by the face search, against Nelder-Mead from many starts;
    and it differs from the full formulation's R (two models)."""
    from scipy.optimize import minimize
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    x, y = np.array([1.0, 0.5]), 3.0
    u, w, c = sheaf.weights[0] @ x + sheaf.biases[0], sheaf.weights[1][0], sheaf.biases[1][0] - y

    def energy(z):
        return 0.5 * np.sum((u - z) ** 2) + 0.25 * (w @ np.maximum(z, 0.0) + c) ** 2

    starts = np.random.default_rng(0).normal(0.0, 2.0, size=(40, 4))
    numeric = min(minimize(energy, z0, method="Nelder-Mead",
                           options=dict(xatol=1e-12, fatol=1e-14, maxiter=20000)).fun for z0 in starts)
    compact = closed_form.compact_residual(sheaf, x, y)
    assert compact == pytest.approx(numeric, abs=1e-9)
    full = sheaflab.equilibrium(sheaf, x[None, :], np.array([[y]])).energy[0]
    assert compact > 1.2 * full


def test_first_step_ratio_is_the_step_factor_when_only_the_first_layer_moves():
    """With every parameter but W_1, b_1 frozen out of the comparison the first-step ratio of one
    example is 1/S exactly; over all parameters it is a finite number > 1 for a He-initialised net."""
    sheaf, X, Y = random_problem([2, 8, 8, 1], n=50, seed=5, bias=0.2)
    ratio = experiments.first_step_ratio(sheaf, X, Y)
    assert np.isfinite(ratio) and ratio > 1.0
    eq = sheaflab.equilibrium(sheaf, X, Y)
    S = closed_form.stiffness(sheaf, X, Y, eq)
    forward = [z > 0 for z in sheaf.forward_cochain(X).z[:-1]]
    keeps = np.all([(p == q).all(axis=1) for p, q in zip(eq.patterns, forward)], axis=0) & np.isfinite(S)
    i = int(np.flatnonzero(keeps)[0])
    gW, gb = sheaflab.local_gradients(sheaf, sheaflab.equilibrium(sheaf, X[i:i + 1], Y[i:i + 1]))
    _, bW, bb = sheaflab.backprop_gradients(sheaf, X[i:i + 1], Y[i:i + 1])
    gR, gl = sheaflab.flatten([gW[0], gb[0]]), sheaflab.flatten([bW[0], bb[0]])
    assert gl @ gl / (gl @ gR) == pytest.approx(1.0 / S[i], rel=1e-9)
    with pytest.raises(TypeError, match="sheaf must be"):
        experiments.first_step_ratio("net", X, Y)
