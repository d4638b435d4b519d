import itertools

import numpy as np
import pytest

import sheaflab
from sheaflab.rescaling import (layer_energies, pruned_minimum, rescale, rescale_cochain,
                                rescaling_grid, rescaling_limit, rescaling_limits)


def unit_chain(depth):
    return sheaflab.NeuralSheaf([np.ones((1, 1))] * depth, [np.zeros(1)] * depth)


X1, Y1 = np.array([[1.0]]), np.array([[-1.0]])


def faces_global_min(net, X, Y):
    """Independent brute force: every face (+, -, kink) of every hidden unit, one region solve each,
    kept when its minimiser lies in the face's closure."""
    from sheaflab.direct import region_minimizer
    widths = net.dims[1:-1]
    best = np.full(len(X), np.inf)
    for modes in itertools.product((1, -1, 0), repeat=sum(widths)):
        m = np.split(np.array(modes), np.cumsum(widths)[:-1])
        mb = [np.tile(v, (len(X), 1)) for v in m]
        z, a = region_minimizer(net, X, Y, mb)
        ok = np.ones(len(X), dtype=bool)
        for zl, ml in zip(z[:-1], mb):
            ok &= np.all(np.where(ml == 1, zl >= -1e-12, np.where(ml == -1, zl <= 1e-12, True)), axis=1)
        c = sheaflab.Cochain(X, z, a, Y)
        e = net.energy(c, patterns=[ml == 1 for ml in mb])
        best = np.where(ok, np.minimum(best, e), best)
    return best


def test_unit_chain_table():
    net = unit_chain(3)
    assert abs(sheaflab.equilibrium(net, X1, Y1).energy[0] - 1 / 3) < 1e-12
    assert abs(pruned_minimum(net, X1, Y1)[0] - 1 / 3) < 1e-12
    assert abs(faces_global_min(net, X1, Y1)[0] - 1 / 3) < 1e-12
    assert abs(rescaling_limit(net, X1, Y1, [1]) - 1 / 6) < 1e-12
    assert rescaling_limit(net, X1, Y1, [2]) < 1e-14
    assert rescaling_limit(net, X1, Y1, [1, 2]) < 1e-14
    for row in rescaling_limits(net, X1, Y1):
        assert abs(row.glob_small - row.limit) < 1e-7 and abs(row.reached_small - row.limit) < 1e-7
    # the curve (W1/c, b1/c, c W2) is c_1 = 1/c: R -> 1/6, not 0
    R = [sheaflab.equilibrium(rescale(net, (1 / c, 1.0)), X1, Y1).energy[0] for c in (10.0, 1e3)]
    assert R[0] > R[1] > 1 / 6 and R[1] - 1 / 6 < 1e-6


def test_function_and_edge_energies_under_rescale():
    rng = np.random.default_rng(0)
    net = sheaflab.NeuralSheaf.random([2, 3, 3, 1], seed=1)
    net.biases = [rng.normal(size=b.shape) for b in net.biases]
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    f = [0.3, 2.5]
    new = rescale(net, f)
    assert np.allclose(new.forward(X), net.forward(X), rtol=1e-13, atol=1e-13)
    c = sheaflab.equilibrium(net, X, Y).cochain
    e0, e1 = net.discord(c).energies(), new.discord(rescale_cochain(c, f)).energies()
    scale = np.array([f[0] ** 2] * 2 + [f[1] ** 2] * 2 + [1.0, 1.0])
    assert np.allclose(e1, e0 * scale, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="factors"):
        rescale(net, [1.0])
    with pytest.raises(ValueError, match="factors"):
        rescale(net, [1.0, -2.0])


def test_envelope_derivative():
    rng = np.random.default_rng(2)
    net = sheaflab.NeuralSheaf.random([2, 3, 3, 1], seed=4)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    eq = sheaflab.equilibrium(net, X, Y)
    E = layer_energies(net, eq).mean(axis=0)
    h = 1e-6
    for l in range(2):
        up = [np.exp(h) if k == l else 1.0 for k in range(2)]
        dn = [np.exp(-h) if k == l else 1.0 for k in range(2)]
        fd = (sheaflab.residual(rescale(net, up), X, Y) - sheaflab.residual(rescale(net, dn), X, Y)) / (2 * h)
        assert abs(fd - 2 * E[l]) < 1e-6 * max(1.0, abs(fd))


def test_one_hidden_layer_limit_zero():
    rng = np.random.default_rng(3)
    net = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    assert rescaling_limit(net, X, Y, [1]) < 1e-14
    R = sheaflab.residual(rescale(net, [1e-4]), X, Y)
    assert R < 1e-7


def test_random_2331_table_and_global():
    rng = np.random.default_rng(0)
    net = sheaflab.NeuralSheaf.random([2, 3, 3, 1], seed=1)
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    assert np.allclose(pruned_minimum(net, X, Y), faces_global_min(net, X, Y), atol=1e-10)
    reached = sheaflab.equilibrium(net, X, Y).energy
    assert np.all(pruned_minimum(net, X, Y) <= reached + 1e-12)
    for row in rescaling_limits(net, X, Y):
        assert abs(row.glob_small - row.limit) < 1e-6          # the theorem, at c = 1e-4
        assert row.reached_small >= row.glob_small - 1e-12     # the reached R never lies below


def test_grid_shapes_and_marked_curves():
    net = unit_chain(3)
    g = rescaling_grid(net, X1, Y1, [0.1, 1.0], [0.1, 1.0], global_min=True)
    assert g.reached.shape == (2, 2) and abs(g.reached[1, 1] - 1 / 3) < 1e-12
    assert np.all(g.glob <= g.reached + 1e-12)
    with pytest.raises(ValueError, match="two hidden"):
        rescaling_grid(unit_chain(2), X1, Y1, [1.0], [1.0])
