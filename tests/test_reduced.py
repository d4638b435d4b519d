"""The fast phase on deep and wide nets: the reduced Schur system, conjugate-gradient region solves
inside the exact walk, and the spectral gap by Lanczos on L_free^{-1}."""

import warnings

import numpy as np
import pytest

import sheaflab
import sheaflab.direct as direct
from conftest import random_problem
from sheaflab.direct import ACTIVE, INACTIVE, KINK, region_minimizer, walk
from sheaflab.reduced import ReducedSystem
from sheaflab.sheaf import Cochain
from sheaflab.spectral import lambda_min

DEEP = [[2, 6, 5, 1], [3, 7, 6, 2], [2, 5, 4, 6, 1], [2, 4, 5, 3, 4, 2]]


def forward_modes(sheaf, X, kink_share=0.0, seed=0):
    """Modes of the forward pass's region, with a share of the units moved onto their kink."""
    rng = np.random.default_rng(seed)
    modes = [np.where(z > 0, ACTIVE, INACTIVE).astype(np.int8) for z in sheaf.forward_cochain(X).z[:-1]]
    for m in modes:
        m[rng.random(m.shape) < kink_share] = KINK
    return modes


def schur(M, keep):
    """Schur complement of the dense symmetric M onto the index set ``keep``."""
    drop = np.setdiff1d(np.arange(M.shape[0]), keep)
    A, Bm, C = M[np.ix_(keep, keep)], M[np.ix_(keep, drop)], M[np.ix_(drop, drop)]
    return A - Bm @ np.linalg.solve(C, Bm.T)


@pytest.mark.parametrize("dims", DEEP)
def test_reduced_operator_is_the_schur_complement_of_L_free(dims):
    """Without kinks, S is L_free (both ends pinned) with every z-block and the last activation
    block eliminated, computed here densely from the coboundary."""
    sheaf, X, Y = random_problem(dims, n=5, seed=2)
    modes = forward_modes(sheaf, X)
    system = ReducedSystem(sheaf, X, Y, modes)
    L_free = sheaf.L_free([m == ACTIVE for m in modes])
    # column offsets of a_1 .. a_{L-2} in the free order z_1, a_1, z_2, a_2, ...
    keep, off = [], 0
    for l, n in enumerate(sheaf.dims[1:], start=1):
        off += n                                       # z_l
        if l <= sheaf.depth - 2:
            keep.extend(range(off, off + n))
        if l < sheaf.depth:
            off += n                                   # a_l
    dense = system.dense()
    V = np.random.default_rng(0).normal(size=(5, system.n))
    for i in range(5):
        np.testing.assert_allclose(dense[i], schur(L_free[i], np.array(keep)), atol=1e-12)
        np.testing.assert_allclose(dense[i] @ V[i], system.matvec(V)[i], atol=1e-12)
    np.testing.assert_allclose(system.mean_matrix(), dense.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize("dims", DEEP + [[2, 5, 4, 1]])
def test_a_subset_of_a_system_is_the_system_of_that_subset(dims):
    """take(rows) slices a built system; it must equal the system built from those examples alone
    (matvec, right-hand side, back substitution), kinks included."""
    sheaf, X, Y = random_problem(dims, n=7, seed=4)
    modes = forward_modes(sheaf, X, kink_share=0.2, seed=1)
    rows = np.array([5, 0, 3])
    whole = ReducedSystem(sheaf, X, Y, modes).take(rows)
    alone = ReducedSystem(sheaf, X[rows], Y[rows], [m[rows] for m in modes])
    V = np.random.default_rng(2).normal(size=(3, alone.n))
    np.testing.assert_allclose(whole.rhs, alone.rhs, rtol=0, atol=0)
    np.testing.assert_allclose(whole.matvec(V), alone.matvec(V), rtol=0, atol=1e-14)
    for got, want in zip(whole.activations(V), alone.activations(V)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dims", DEEP)
def test_conjugate_gradients_reach_the_dense_region_minimiser(dims):
    """With kinks in every layer: the CG solution, back-substituted, is the dense solve's minimiser,
    and every CG iteration lowers the region's energy."""
    sheaf, X, Y = random_problem(dims, n=30, seed=5)
    modes = forward_modes(sheaf, X, kink_share=0.15, seed=1)
    z_ref, a_ref = region_minimizer(sheaf, X, Y, modes)
    system = ReducedSystem(sheaf, X, Y, modes)
    x0 = np.concatenate(sheaf.forward_cochain(X).a[:-1], axis=1)
    x, ok, its = system.solve(x0, 1e-14, 500)
    assert ok.all() and its.max() < 200
    for a, b in zip(system.activations(x), a_ref):
        np.testing.assert_allclose(a, b, atol=1e-6)
    E_ref = system.region_energy(np.concatenate(a_ref[:-1], axis=1))
    np.testing.assert_allclose(system.region_energy(x), E_ref, rtol=1e-12)
    # the region energy along the CG iterates never rises
    prev = system.region_energy(x0)
    precond = system.preconditioner()
    for k in range(1, 12):
        xk, _, _ = system.solve(x0, 1e-30, k, precond)
        Ek = system.region_energy(xk)
        assert np.all(Ek <= prev + 1e-12 * (1 + prev))
        prev = Ek


@pytest.mark.parametrize("dims,n", [([2, 40, 40, 1], 60), ([2, 128, 128, 1], 30),
                                    ([3, 20, 16, 12, 2], 60), ([2, 16, 16, 16, 16, 1], 60)])
def test_cg_walk_agrees_with_the_dense_walk(dims, n):
    """Depths 3-5, widths up to 128: both solvers converge; where they end in the same region the
    energies agree to 1e-9 relative, and the kink units sit exactly on z = 0."""
    sheaf, X, Y = random_problem(dims, n=n, seed=8)
    start = sheaf.forward_cochain(X)
    runs = {}
    for solver in ("dense", "cg"):
        z, a, modes, conv, its = walk(sheaf, X, Y, start, 1e-12, 100, solver)
        assert conv.all(), solver
        E = sheaf.energy(Cochain(X, z, a, Y.copy()))
        runs[solver] = (E, modes, z)
    (Ed, md, _), (Ec, mc, zc) = runs["dense"], runs["cg"]
    same = np.all([np.all(p == q, axis=1) for p, q in zip(md, mc)], axis=0)
    assert same.mean() >= 0.9
    assert np.all(np.abs(Ec - Ed)[same] <= 1e-9 * Ed[same])
    assert all(np.all(zz[m == KINK] == 0.0) for zz, m in zip(zc, mc))


@pytest.mark.parametrize("dims", [[2, 20, 20, 1], [2, 12, 12, 12, 1], [3, 14, 10, 12, 9, 2]])
def test_cg_walk_never_increases_the_true_energy(dims):
    sheaf, X, Y = random_problem(dims, n=60, seed=4, bias=0.5)
    start = sheaf.forward_cochain(X)
    prev = 0.5 * ((start.yhat - Y) ** 2).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # truncated walks warn, on purpose
        for k in range(1, 16):
            eq = sheaflab.equilibrium(sheaf, X, Y, init=start, max_iter=k, solver="cg")
            assert np.all(eq.energy <= prev + 1e-12 * (1 + prev))
            prev = eq.energy
    eq = sheaflab.equilibrium(sheaf, X, Y, init=start, solver="cg")
    assert eq.converged.all() and np.all(eq.energy <= prev + 1e-12 * (1 + prev))


def test_kink_minima_of_deep_nets_with_the_cg_solver():
    """Kinks occur at the CG walk's minima of a deep net; at each the unit's z is exactly 0 and the
    one-sided derivatives both point back at the kink (to the solver's tolerance)."""
    sheaf, X, Y = random_problem([2, 24, 20, 16, 1], n=120, seed=11)
    eq = sheaflab.equilibrium(sheaf, X, Y, solver="cg")
    assert eq.converged.all()
    assert sum(int(k.sum()) for k in eq.kinks) > 0
    prev = X
    for l, k in enumerate(eq.kinks):
        assert np.all(eq.z[l][k] == 0.0)
        u = prev @ sheaf.weights[l].T + sheaf.biases[l]
        a = eq.a[l]
        scale = 1e-5 * (1 + np.abs(u) + np.abs(a))
        assert np.all(((u + a) <= scale)[k]) and np.all((u >= -scale)[k])
        prev = a
    # a fixed point: started at its own answer the walk stops at once, at the same energy
    again = sheaflab.equilibrium(sheaf, X, Y, init=eq.cochain, solver="cg")
    assert again.iterations.max() == 1
    np.testing.assert_allclose(again.energy, eq.energy, rtol=1e-10)


@pytest.mark.parametrize("dims,fewer", [([2, 48, 48, 1], 1.0), ([2, 24, 24, 24, 1], 0.8)])
def test_looser_tolerance_costs_fewer_cg_iterations(dims, fewer):
    """The tolerance knob: tol = 1e-6 takes fewer CG iterations than the default 1e-12 (at depth 3
    the per-example preconditioner leaves little to save), and where both end in the same region
    the energies agree to about 100 tol."""
    sheaf, X, Y = random_problem(dims, n=80, seed=6)
    start = sheaf.forward_cochain(X)
    out = {}
    for tol in (1e-12, 1e-6):
        stats = {}
        z, a, modes, conv, _ = walk(sheaf, X, Y, start, tol, 100, "cg", stats)
        assert conv.all()
        out[tol] = (stats["cg_iterations"].sum(), sheaf.energy(Cochain(X, z, a, Y.copy())), modes)
    assert out[1e-6][0] <= fewer * out[1e-12][0]
    same = np.all([np.all(p == q, axis=1) for p, q in zip(out[1e-6][2], out[1e-12][2])], axis=0)
    assert same.mean() >= 0.75        # the looser kink test settles some examples elsewhere
    np.testing.assert_allclose(out[1e-6][1][same], out[1e-12][1][same], rtol=2e-4)


def test_converged_is_honest_when_cg_is_cut_short(monkeypatch):
    """With two CG iterations per region solve, a walk of few steps cannot finish: those examples
    are flagged; given enough walk steps, it resumes CG where it stopped and converges."""
    sheaf, X, Y = random_problem([2, 32, 32, 1], n=40, seed=3)
    ref = sheaflab.equilibrium(sheaf, X, Y, solver="dense")
    monkeypatch.setattr(direct, "CG_MAX_ITER", 2)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        short = sheaflab.equilibrium(sheaf, X, Y, solver="cg", max_iter=3)
    assert not short.converged.all()
    long = sheaflab.equilibrium(sheaf, X, Y, solver="cg", max_iter=500)
    assert long.converged.all()
    same = np.all([np.array_equal(p, q) for p, q in zip(long.kinks, ref.kinks)])
    if same:
        np.testing.assert_allclose(long.energy, ref.energy, rtol=1e-9)


def test_auto_solver_choice():
    assert direct.choose_solver(sheaflab.NeuralSheaf.random([2, 30, 1])) == "dense"
    assert direct.choose_solver(sheaflab.NeuralSheaf.random([2, 8, 8, 1])) == "dense"
    assert direct.choose_solver(sheaflab.NeuralSheaf.random([2, 64, 64, 1])) == "cg"
    assert direct.choose_solver(sheaflab.NeuralSheaf.random([2, 16, 16, 16, 1])) == "dense"
    assert direct.choose_solver(sheaflab.NeuralSheaf.random([2, 32, 32, 32, 1])) == "cg"
    sheaf, X, Y = random_problem([2, 4, 3, 1], n=3)
    with pytest.raises(ValueError, match="solver"):
        sheaflab.equilibrium(sheaf, X, Y, solver="qr")


# ---------------------------------------------------------------------------------- spectral gap
@pytest.mark.parametrize("dims", [[2, 6, 5, 1], [3, 9, 7, 2], [2, 5, 4, 6, 1], [2, 40, 40, 1],
                                  [2, 12, 12, 12, 12, 1]])
def test_lanczos_gap_equals_the_dense_gap(dims):
    sheaf, X, Y = random_problem(dims, n=25, seed=9)
    pats = sheaflab.equilibrium(sheaf, X, Y).patterns
    dense = lambda_min(sheaf, pats, solver="dense")
    lanczos = lambda_min(sheaf, pats, solver="lanczos")
    np.testing.assert_allclose(lanczos, dense, rtol=1e-8)
    eigsh = lambda_min(sheaf, [p[:3] for p in pats], solver="eigsh")
    np.testing.assert_allclose(eigsh, dense[:3], rtol=1e-8)
    one = lambda_min(sheaf, [p[0] for p in pats], solver="lanczos")   # a single pattern: a float
    assert isinstance(one, float) and one == pytest.approx(dense[0], rel=1e-8)


@pytest.mark.parametrize("B, k", [(8, 20), (200, 30)])   # the batched eigvalsh and the sweeps
def test_largest_tridiagonal_eigenvalue_equals_lapack(B, k):
    from scipy.linalg import eigvalsh_tridiagonal
    from sheaflab.spectral import DENSE_TRIDIAGONAL, _largest_tridiagonal
    rng = np.random.default_rng(B)
    alpha, beta = rng.uniform(0.5, 2.0, (B, k)), rng.uniform(-0.5, 0.5, (B, k - 1))
    assert (B * k * k <= DENSE_TRIDIAGONAL) == (B == 8)
    want = np.array([eigvalsh_tridiagonal(alpha[i], beta[i])[-1] for i in range(B)])
    np.testing.assert_allclose(_largest_tridiagonal(alpha, beta), want, rtol=1e-13)
    # a lower bound above the answer (an earlier Ritz value, rounded up) is respected
    np.testing.assert_array_equal(_largest_tridiagonal(alpha, beta, lower=want + 1e-9) >= want + 1e-9, True)


def test_gap_method_choice_and_errors():
    sheaf, X, Y = random_problem([2, 40, 40, 1], n=6, seed=1)
    pats = sheaflab.equilibrium(sheaf, X, Y).patterns
    np.testing.assert_array_equal(lambda_min(sheaf, pats), lambda_min(sheaf, pats, solver="lanczos"))
    np.testing.assert_array_equal(lambda_min(sheaf, pats, pinned="input"),
                                  lambda_min(sheaf, pats, pinned="input", solver="dense"))
    with pytest.raises(ValueError, match="pinned='both'"):
        lambda_min(sheaf, pats, pinned="input", solver="lanczos")
    with pytest.raises(ValueError, match="solver"):
        lambda_min(sheaf, pats, solver="qr")
