"""Closed forms of one hidden layer, and the rescaling symmetry of the relaxed energy."""

import numpy as np
import pytest

import sheaflab
from conftest import random_problem
from sheaflab import closed_form, experiments, rescaling
from sheaflab.datasets import paraboloid


@pytest.mark.parametrize("dims, seed, bias", [([2, 30, 1], 0, 0.0), ([3, 12, 1], 1, 0.5), ([2, 5, 1], 2, 0.5)])
def test_closed_form_residual_equals_the_direct_solve(dims, seed, bias):
    sheaf, X, Y = random_problem(dims, n=200, seed=seed, bias=bias)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    R = closed_form.relaxed_energy(sheaf, X, Y, eq.patterns[0], eq.kinks[0])
    np.testing.assert_allclose(R, eq.energy, rtol=1e-12, atol=1e-13)
    if bias:
        assert eq.kinks[0].any()                     # the kink terms are exercised


@pytest.mark.parametrize("dims, seed", [([2, 5, 3], 1), ([3, 12, 2], 2)])
def test_closed_form_with_a_vector_output_equals_the_direct_solve(dims, seed):
    """R = 1/2 ||u_K||^2 + 1/4 e^T D^{-1} e with the matrix D = I + W_A W_A^T + 1/2 W_I W_I^T + ..."""
    sheaf, X, Y = random_problem(dims, n=150, seed=seed, bias=0.5)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    assert eq.kinks[0].any()
    R = closed_form.relaxed_energy(sheaf, X, Y, eq.patterns[0], eq.kinks[0])
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
        closed_form.relaxed_energy(sheaflab.NeuralSheaf.random([2, 3, 3, 1]), np.ones((2, 2)), np.ones((2, 1)),
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
        rescaling.rescaled(sheaf, 2.0, layer=3)
    with pytest.raises(ValueError, match="c must be"):
        rescaling.rescaled(sheaf, -1.0)


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
    compact = closed_form.compact_global_minimum(sheaf, x, y)
    assert compact == pytest.approx(numeric, abs=1e-9)
    full = sheaflab.equilibrium(sheaf, x[None, :], np.array([[y]])).energy[0]
    assert compact > 1.2 * full


def test_first_step_ratio_is_the_step_factor_when_only_the_first_layer_moves():
    """With every parameter but W_1, b_1 frozen out of the comparison the first-step ratio of one
    example is 1/S exactly; over all parameters it is a finite number > 1 for a He-initialised net."""
    sheaf, X, Y = random_problem([2, 8, 8, 1], n=50, seed=5, bias=0.2)
    ratio = closed_form.first_step_ratio(sheaf, X, Y)
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
        closed_form.first_step_ratio("net", X, Y)


def _face_minimum_by_least_squares(sheaf, x, y, modes):
    """The minimum of the energy on one face (every hidden unit active +1, inactive -1 or on the kink
    0), written out as a linear least-squares problem in the free stalks (z of the non-kink units, a,
    z_2), independently of sheaflab's solvers. Identity head, one hidden layer."""
    W1, W2 = sheaf.weights
    b1, b2 = sheaf.biases
    n1, nL = W1.shape[0], W2.shape[0]
    u = W1 @ x + b1
    free_z = np.flatnonzero(modes != 0)
    nz = free_z.size
    cols = nz + n1 + nL                              # unknowns: z (free units), a, z_2
    rows, rhs = [], []

    def row(entries, value):
        r = np.zeros(cols)
        for k, v in entries:
            r[k] += v
        rows.append(r)
        rhs.append(value)

    for j in range(n1):                              # affine_1: u_j - z_j (z_j = 0 on a kink)
        k = np.flatnonzero(free_z == j)
        row([(int(k[0]), -1.0)] if k.size else [], -u[j])
    for j in range(n1):                              # relu_1: z_j - a_j (active), -a_j (otherwise)
        k = np.flatnonzero(free_z == j)
        row(([(int(k[0]), 1.0)] if modes[j] == 1 else []) + [(nz + j, -1.0)], 0.0)
    for i in range(nL):                              # affine_2 and output
        row([(nz + j, W2[i, j]) for j in range(n1)] + [(nz + n1 + i, -1.0)], -b2[i])
        row([(nz + n1 + i, 1.0)], y[i])
    M, q = np.array(rows), np.array(rhs)
    v = np.linalg.lstsq(M, q, rcond=None)[0]
    return 0.5 * float(np.sum((M @ v - q) ** 2))


@pytest.mark.parametrize("dims, seed", [([2, 3, 1], 0), ([1, 3, 2], 1)])
def test_closed_form_holds_on_every_face_with_the_region_output(dims, seed):
    """Proposition: on every face (any unit sets A, I, K, reachable or not) the face's minimum is
    1/2 ||u_K||^2 + 1/4 e^T D^{-1} e with e = f_P - y, f_P the output of the linear network that keeps
    the face's pattern. Checked against an independent least-squares solve on all 3^n_1 faces."""
    import itertools
    sheaf, X, Y = random_problem(dims, n=4, seed=seed, bias=0.5)
    n1 = dims[1]
    for modes in itertools.product((1, -1, 0), repeat=n1):
        m = np.array(modes)
        active = np.tile(m == 1, (len(X), 1))
        kinks = np.tile(m == 0, (len(X), 1))
        R = closed_form.relaxed_energy(sheaf, X, Y, active, kinks)
        brute = [_face_minimum_by_least_squares(sheaf, X[i], Y[i], m) for i in range(len(X))]
        np.testing.assert_allclose(R, brute, rtol=1e-10, atol=1e-12)


def test_closed_form_needs_the_region_output_not_the_network_output():
    """The issue's case: dims [1,1,1], W1 = -0.1, w = 1, zero biases, x = 1, y = 10. The global minimum
    has the forward-inactive unit active (z = 2.425, a = 4.95, z_2 = 7.475, energy 12.75125); the
    formula with f_P gives it, the formula with the network output f would give 12.5. The reached
    equilibrium keeps the unit inactive (z = u = -0.1), energy 50/3."""
    from scipy.optimize import minimize
    sheaf = sheaflab.NeuralSheaf([np.array([[-0.1]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)])
    X, Y = np.array([[1.0]]), np.array([[10.0]])

    def energy(v):                                   # v = (z, a, z_2), written out by hand
        z, a, z2 = v
        return 0.5 * ((-0.1 - z) ** 2 + (max(z, 0.0) - a) ** 2 + (a - z2) ** 2 + (z2 - 10.0) ** 2)

    starts = np.random.default_rng(0).uniform(-10, 10, (200, 3))
    brute = min(minimize(energy, s, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12}).fun
                for s in starts)
    active, inactive = np.array([[True]]), np.array([[False]])
    R_active = closed_form.relaxed_energy(sheaf, X, Y, active, inactive)[0]
    assert abs(R_active - 12.75125) < 1e-12 and abs(brute - R_active) < 1e-7
    f = float(sheaf.forward(X)[0, 0])
    assert f == 0.0 and abs((f - 10.0) ** 2 / (4 * 2.0) - 12.5) < 1e-12       # the old formula's value
    eq = sheaflab.equilibrium(sheaf, X, Y)                                       # the reached equilibrium
    assert not eq.patterns[0][0, 0] and eq.z[0][0, 0] == -0.1
    assert abs(eq.energy[0] - 50.0 / 3.0) < 1e-12
    assert abs(closed_form.relaxed_energy(sheaf, X, Y, eq.patterns[0], eq.kinks[0])[0] - 50.0 / 3.0) < 1e-12


def test_reached_equilibrium_region_output_is_f_minus_kink_terms():
    """Corollary: at the reached equilibrium of one hidden layer, forward-inactive units stay inactive
    and forward-active ones end active or on the kink, so f_P = f - W_K u_K."""
    sheaf, X, Y = random_problem([2, 12, 2], n=300, seed=4, bias=0.5)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    u = X @ sheaf.weights[0].T + sheaf.biases[0]
    active, kinks = eq.patterns[0], eq.kinks[0]
    assert kinks.any() and np.all(~active[u < 0]) and np.all(eq.z[0][u < 0] == u[u < 0])
    assert np.all((active | kinks)[u > 0])
    f_P = closed_form.region_output(sheaf, X, eq.patterns)
    np.testing.assert_allclose(f_P, sheaf.forward(X) - np.where(kinks, u, 0.0) @ sheaf.weights[1].T,
                               rtol=1e-12, atol=1e-12)


def test_closed_form_residual_names_bad_unit_sets():
    sheaf, X, Y = random_problem([2, 3, 1], n=4, seed=0)
    good = np.zeros((4, 3), dtype=bool)
    with pytest.raises(ValueError, match="active must be a"):
        closed_form.relaxed_energy(sheaf, X, Y, good[:, :2], good)
    with pytest.raises(ValueError, match="kinks must be a"):
        closed_form.relaxed_energy(sheaf, X, Y, good, np.full((4, 3), 2))
    with pytest.raises(ValueError, match="overlap"):
        closed_form.relaxed_energy(sheaf, X, Y, ~good, ~good)
