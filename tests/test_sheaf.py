"""The neural sheaf: structure, coboundary, Laplacian and argument checks."""

import numpy as np
import pytest

import sheaflab
from sheaflab.spectral import lambda_min
from conftest import random_problem

DEPTHS = [[2, 4, 1], [2, 30, 1], [3, 5, 4, 2], [2, 6, 6, 6, 1], [1, 3, 1]]


def pinned_part(sheaf, x):
    """Constant part of the coboundary: what the pinned input and the biases contribute per edge."""
    parts = []
    for e in sheaf.edges:
        if e.kind == "affine":
            const = sheaf.biases[e.layer - 1].copy()
            if e.layer == 1:
                const += sheaf.weights[0] @ x
            parts.append(const)
        else:
            parts.append(np.zeros(e.dim))
    return np.concatenate(parts)


@pytest.mark.parametrize("dims", DEPTHS)
def test_forward_is_harmonic_extension(dims):
    """Solving delta_free c = -(pinned part) with the forward pattern gives the forward pass."""
    sheaf, X, _ = random_problem(dims, n=5, seed=len(dims))
    fwd = sheaf.forward_cochain(X)
    assert np.all(sheaf.energy(fwd) == 0.0)
    for i in range(X.shape[0]):
        pats = [p[i] for p in fwd.patterns()]
        D = sheaf.coboundary(pats, pinned="input")
        c = np.linalg.solve(D, -pinned_part(sheaf, X[i]))
        expect = fwd.free_vector(pinned="input")[i]
        np.testing.assert_allclose(c, expect, atol=1e-12, rtol=0)
        np.testing.assert_allclose(c[-dims[-1]:], sheaf.forward(X[i:i + 1])[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("dims", DEPTHS)
def test_input_pinned_coboundary_is_unitriangular(dims):
    sheaf, _, _ = random_problem(dims, seed=3)
    rng = np.random.default_rng(0)
    pats = [rng.random(n) > 0.5 for n in dims[1:-1]]
    D = sheaf.coboundary(pats, pinned="input")
    assert D.shape == (sheaf.free_dim("input"),) * 2
    assert np.allclose(np.triu(D, 1), 0.0)           # lower triangular in path order
    assert np.allclose(np.diag(D), -1.0)              # -1 on the diagonal: |det| = 1
    assert abs(np.linalg.det(D)) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.det(sheaf.L_free(pats, pinned="input")) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("dims", DEPTHS)
def test_L_free_positive_definite_for_random_patterns(dims):
    sheaf, _, _ = random_problem(dims, seed=5)
    rng = np.random.default_rng(1)
    B = 20
    pats = [rng.random((B, n)) > 0.5 for n in dims[1:-1]]
    for pinned in ("input", "both"):
        Lf = sheaf.L_free(pats, pinned)
        assert Lf.shape == (B, sheaf.free_dim(pinned), sheaf.free_dim(pinned))
        np.testing.assert_allclose(Lf, np.swapaxes(Lf, 1, 2))
        assert np.all(np.linalg.eigvalsh(Lf)[:, 0] > 1e-10)
        lam = lambda_min(sheaf, pats, pinned)
        assert lam.shape == (B,) and np.all(lam > 0)
        assert np.all(lam <= sheaf.lambda_max_bound())


def test_two_sided_free_dimension():
    """2 (n_1 + ... + n_{L-1}) + n_L: 9 for [2,4,1] and 61 for [2,30,1]."""
    assert sheaflab.NeuralSheaf.random([2, 4, 1]).free_dim("both") == 9
    assert sheaflab.NeuralSheaf.random([2, 30, 1]).free_dim("both") == 61
    sheaf = sheaflab.NeuralSheaf.random([3, 5, 4, 2])
    D = sheaf.coboundary([np.ones(5, bool), np.zeros(4, bool)], pinned="both")
    assert D.shape == (sum(e.dim for e in sheaf.edges), 2 * (5 + 4) + 2)
    assert np.linalg.matrix_rank(D) == D.shape[1]     # tall, full column rank


def test_lambda_max_bound_holds():
    sheaf, _, _ = random_problem([2, 16, 8, 1], seed=2)
    rng = np.random.default_rng(2)
    pats = [rng.random((30, n)) > 0.3 for n in (16, 8)]
    for pinned in ("input", "both"):
        assert np.linalg.eigvalsh(sheaf.L_free(pats, pinned))[:, -1].max() <= sheaf.lambda_max_bound()


def test_edges_named_and_typed():
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 3, 1])
    assert [(e.name, e.kind, e.layer) for e in sheaf.edges] == [
        ("affine_1", "affine", 1), ("relu_1", "relu", 1), ("affine_2", "affine", 2),
        ("relu_2", "relu", 2), ("affine_3", "affine", 3), ("output", "output", 3)]


def test_discord_and_energy_of_a_cochain():
    sheaf, X, Y = random_problem([2, 3, 1], n=4)
    c = sheaf.forward_cochain(X)
    c.z[0] = c.z[0] + 0.5
    d = sheaf.discord(c)
    np.testing.assert_allclose(d["affine_1"], -0.5)
    np.testing.assert_allclose(d["relu_1"], np.maximum(c.z[0], 0) - c.a[0])
    np.testing.assert_allclose(sheaf.energy(c), 0.5 * sum((v ** 2).sum(1) for v in d.values()))
    # the norms, by hand from the stalks: |0.5| per unit on affine_1, |relu(z) - a| on relu_1, ...
    by_hand = np.stack([np.full(4, 0.5 * np.sqrt(3)),
                        np.linalg.norm(np.maximum(c.z[0], 0) - c.a[0], axis=1),
                        np.abs(c.a[0] @ sheaf.weights[1][0] + sheaf.biases[1][0] - c.z[1][:, 0]),
                        np.abs(c.z[1][:, 0] - c.yhat[:, 0])], axis=1)
    np.testing.assert_allclose(d.norms(), by_hand, atol=1e-15)
    assert list(d) == [e.name for e in sheaf.edges]


def test_random_is_he_initialisation():
    sheaf = sheaflab.NeuralSheaf.random([400, 300, 1], seed=0)
    assert sheaf.weights[0].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert all(np.all(b == 0) for b in sheaf.biases)
    again = sheaflab.NeuralSheaf.random([400, 300, 1], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(sheaf.weights, again.weights))


# ---------------------------------------------------------------------------------- bad input
def test_bad_weights():
    with pytest.raises(TypeError, match="weights must be a list"):
        sheaflab.NeuralSheaf(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"weights\[1\].*3 columns"):
        sheaflab.NeuralSheaf([np.ones((3, 2)), np.ones((1, 4))])
    with pytest.raises(ValueError, match=r"weights\[0\].*shape"):
        sheaflab.NeuralSheaf([np.ones(3)])
    with pytest.raises(ValueError, match=r"weights\[0\].*non-finite"):
        sheaflab.NeuralSheaf([np.full((1, 2), np.nan)])
    with pytest.raises(ValueError, match="weights is empty"):
        sheaflab.NeuralSheaf([])
    with pytest.raises(ValueError, match=r"biases\[0\].*shape \(3,\)"):
        sheaflab.NeuralSheaf([np.ones((3, 2))], [np.ones(2)])
    with pytest.raises(TypeError, match="biases must be a list"):
        sheaflab.NeuralSheaf([np.ones((3, 2))], np.ones(3))
    with pytest.raises(ValueError, match="biases must hold 2"):
        sheaflab.NeuralSheaf([np.ones((3, 2)), np.ones((1, 3))], [np.ones(3)])
    with pytest.raises(TypeError, match="dims"):
        sheaflab.NeuralSheaf.random([2])
    with pytest.raises(ValueError, match=r"dims\[1\]"):
        sheaflab.NeuralSheaf.random([2, 0, 1])


def test_bad_inputs():
    sheaf = sheaflab.NeuralSheaf.random([2, 4, 1])
    with pytest.raises(ValueError, match=r"X must have shape \(B, 2\)"):
        sheaf.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"X must have shape"):
        sheaf.forward(np.ones(2))
    with pytest.raises(ValueError, match="X is an empty batch"):
        sheaf.forward(np.ones((0, 2)))
    with pytest.raises(ValueError, match="X contains non-finite"):
        sheaf.forward(np.array([[1.0, np.inf]]))
    with pytest.raises(TypeError, match="X must be"):
        sheaf.forward("data")
    with pytest.raises(ValueError, match=r"Y must have shape \(3, 1\)"):
        sheaflab.equilibrium(sheaf, np.ones((3, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="Y contains non-finite"):
        sheaflab.equilibrium(sheaf, np.ones((3, 2)), np.full((3, 1), np.nan))
    with pytest.raises(ValueError, match="method must be one of"):
        sheaflab.equilibrium(sheaf, np.ones((3, 2)), np.ones((3, 1)), method="newton")
    with pytest.raises(ValueError, match="tol must be"):
        sheaflab.equilibrium(sheaf, np.ones((3, 2)), np.ones((3, 1)), tol=-1.0)
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        sheaflab.equilibrium(sheaf, np.ones((3, 2)), np.ones((3, 1)), max_iter=2.5)
    with pytest.raises(TypeError, match="sheaf must be"):
        sheaflab.equilibrium([np.ones((1, 2))], np.ones((3, 2)))
    with pytest.raises(ValueError, match="patterns"):
        sheaf.L_free([np.ones(5, bool)])
    with pytest.raises(ValueError, match="pinned must be one of"):
        sheaf.L_free([np.ones(4, bool)], pinned="output")


def test_forward_cochain_with_the_output_pinned():
    """Pinning yhat to Y on the forward pass leaves only the output edge disagreeing."""
    sheaf, X, Y = random_problem([2, 5, 3, 2], n=7, seed=4)
    c = sheaf.forward_cochain(X, Y)
    assert c.yhat is not Y and np.array_equal(c.yhat, Y)
    np.testing.assert_allclose(sheaf.energy(c), 0.5 * ((sheaf.forward(X) - Y) ** 2).sum(axis=1), rtol=1e-14)
    assert np.all(sheaf.discord(c).norms()[:, :-1] == 0.0)
    with pytest.raises(ValueError, match=r"Y must have shape \(7, 2\)"):
        sheaf.forward_cochain(X, Y[:3])
