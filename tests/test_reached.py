"""The reached equilibrium: the direct walk lands where the heat flow from the forward pass goes.

Tested claim (no proof is known for two or more hidden layers): on random nets of 1 to 4 hidden
layers and all three heads, kinks included, ``equilibrium(method="direct")`` and
``equilibrium(method="diffusion")`` from the same start (the forward pass) give the same energy and
the same stalks. With one hidden layer it is a proposition (book/minima.ipynb): the flow never
leaves Q = {z_F >= 0, z_I = u_I} (F, I: the units active / inactive in the forward pass) and ends at
the unique minimiser of the energy's convex restriction to Q, checked here against an independent
bounded solve (scipy's L-BFGS-B).
"""

import numpy as np
import pytest
from scipy import optimize

import sheaflab
from sheaflab import heads


def problem(dims, seed, head, B, target_scale=3.0, bias=0.6):
    """Random (He) weights, random biases (so that some units end on a kink), inputs and targets."""
    rng = np.random.default_rng(seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed, head=head)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, bias, b.shape)
    X = rng.uniform(-2.0, 2.0, (B, dims[0]))
    if head == "identity":
        Y = rng.normal(0.0, target_scale, (B, dims[-1]))
    elif head == "sigmoid":
        Y = rng.integers(0, 2, (B, dims[-1])).astype(float)
    else:
        Y = np.eye(dims[-1])[rng.integers(0, dims[-1], B)]
    return sheaf, X, Y


def _stalks(eq):
    return eq.z + eq.a


# depth 1 to 4 hidden layers, each head (softmax with three outputs)
NETS = [[2, 3, 1], [2, 3, 3, 1], [2, 3, 2, 3, 1], [2, 2, 2, 2, 2, 1]]
CASES = [(dims if head != "softmax" else dims[:-1] + [3], head, seed)
         for head in ("identity", "sigmoid", "softmax") for seed, dims in enumerate(NETS)]
_kinks_seen = []


@pytest.mark.parametrize("dims,head,seed", CASES)
def test_direct_lands_where_the_heat_flow_goes(dims, head, seed):
    sheaf, X, Y = problem(dims, seed, head, B=8)
    direct = sheaflab.equilibrium(sheaf, X, Y)
    flow = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-10)
    assert direct.success and flow.success
    np.testing.assert_allclose(direct.energy, flow.energy, rtol=0, atol=1e-8)
    for d, f in zip(_stalks(direct), _stalks(flow)):
        np.testing.assert_allclose(d, f, rtol=0, atol=1e-5)
    # the same units sit on a kink (the flow slides onto z = 0 exactly)
    for kd, kf in zip(direct.kinks, flow.kinks):
        np.testing.assert_array_equal(kd, kf)
    _kinks_seen.append(int(sum(k.any(axis=1) for k in direct.kinks).astype(bool).sum()))


def test_some_examples_have_kinks():
    """The cases above include equilibria with units on the kink (checked after they ran)."""
    if len(_kinks_seen) < len(CASES):
        pytest.skip("run with the whole module")
    assert sum(_kinks_seen) >= 10
    assert sum(k > 0 for k in _kinks_seen) >= len(CASES) // 2


# ------------------------------------------------------------------------- one hidden layer
def convex_restriction_minimum(sheaf, x, y):
    """Minimise the energy of the fixed pattern F (units active in the forward pass) over
    Q = {z_F >= 0, z_I = u_I}, independently: dense coboundary of F, L-BFGS-B with bounds.
    Returns ``(energy, z_1, a_1, z_2)`` for one example x (n_0,), y (n_L,)."""
    W1, b1 = sheaf.weights[0], sheaf.biases[0]
    n1, n_out = W1.shape[0], sheaf.dims[-1]
    u = W1 @ x + b1
    F = u > 0
    D = sheaf.coboundary([F], "both")                 # columns z_1, a_1, z_2; rows affine_1, relu_1,
    g = np.concatenate([u, np.zeros(n1), sheaf.biases[1], -y])   # affine_2, output
    head = heads.get(sheaf.head)
    Din, gin = D[:-n_out], g[:-n_out]
    n = D.shape[1]

    def f(c):
        r = Din @ c + gin
        zL = c[-n_out:]
        e = 0.5 * r @ r + head.energy(zL[None], y[None])[0]
        grad = Din.T @ r
        grad[-n_out:] += head.mean(zL[None])[0] - y
        return e, grad

    bounds = [((0.0, None) if F[j] else (u[j], u[j])) for j in range(n1)] + [(None, None)] * (n - n1)
    c0 = np.concatenate([np.where(F, u, u), np.maximum(u, 0), np.zeros(n_out)])
    res = optimize.minimize(f, c0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options=dict(ftol=1e-16, gtol=1e-12, maxiter=5000, maxcor=30))
    c = res.x
    return res.fun, c[:n1], c[n1:2 * n1], c[2 * n1:]


@pytest.mark.parametrize("head,dims,seed", [("identity", [2, 5, 1], 0), ("identity", [3, 4, 2], 1),
                                            ("sigmoid", [2, 5, 1], 2), ("softmax", [2, 4, 3], 3)])
def test_one_hidden_layer_proposition(head, dims, seed):
    sheaf, X, Y = problem(dims, seed, head, B=10, target_scale=6.0)
    u = X @ sheaf.weights[0].T + sheaf.biases[0]
    assert np.all(u != 0)
    direct = sheaflab.equilibrium(sheaf, X, Y)
    flow = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-10)
    n_kinks = 0
    for eq in (direct, flow):
        z = eq.z[0]
        # forward-inactive units do not move at all
        np.testing.assert_array_equal(z[u < 0], u[u < 0])
        # forward-active units end active or on the kink, never inactive
        assert np.all(z[u > 0] >= 0.0)
        n_kinks += int(eq.kinks[0].sum())
    assert n_kinks > 0                       # the case includes units that slid onto the kink
    for i in range(X.shape[0]):
        E, z1, a1, z2 = convex_restriction_minimum(sheaf, X[i], Y[i])
        assert abs(E - direct.energy[i]) <= 1e-8 * max(1.0, E), (i, E, direct.energy[i])
        np.testing.assert_allclose(direct.z[0][i], z1, atol=1e-5)
        np.testing.assert_allclose(direct.a[0][i], a1, atol=1e-5)
        np.testing.assert_allclose(direct.z[1][i], z2, atol=1e-5)


def test_counterexample_two_hidden_layers():
    """GENUINE COUNTEREXAMPLE to the tested claim, found by a random search (14 of 4185 examples on
    nets of 2 to 4 hidden layers differed): on this [2,2,2,1] identity net the direct walk and the
    heat flow from the same forward pass end at different points, with different energies. Kept as
    a record for the lead (issue 19): the claim holds only on the cases above, not in general."""
    seed = 276
    rng = np.random.default_rng(10_000 + seed)
    depth = int(rng.integers(2, 5))
    dims = [2] + [int(rng.integers(2, 5)) for _ in range(depth)] + [1]
    assert dims == [2, 2, 2, 1]
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed)
    for b in sheaf.biases:
        b[:] = rng.normal(0, 0.7, b.shape)
    X = rng.uniform(-2, 2, (15, 2))
    Y = rng.normal(0, 5.0, (15, 1))
    X, Y = X[[1, 3]], Y[[1, 3]]
    direct = sheaflab.equilibrium(sheaf, X, Y)
    flow = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-9)
    assert direct.success and flow.success
    assert np.all(np.abs(direct.energy - flow.energy) > 1e-3)
