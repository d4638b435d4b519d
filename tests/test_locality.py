import numpy as np
import pytest

import sheaflab
from sheaflab import closed_form
from sheaflab.datasets import paraboloid_grid
from sheaflab.locality import arrival_steps


def test_arrival_on_2441():
    X, Y = paraboloid_grid(4)
    net = sheaflab.NeuralSheaf.random([2, 4, 4, 1], seed=0)
    for i in range(len(X)):
        r = arrival_steps(net, X[i], Y[i], steps=8)
        first = r.edges.index("affine_1")
        if r.arrival[first] == -1:
            continue
        # exactly 0 for steps 0..4, nonzero from step 5 (distance 5 from the output edge)
        assert np.all(r.norms[:5, first] == 0) and np.all(r.norms[5:, first] != 0)
        assert np.array_equal(r.arrival, r.distance)
        # never earlier than the distance, on any edge (the locality theorem)
        for e, k in enumerate(r.distance):
            assert np.all(r.norms[:k, e] == 0)


def test_arrival_is_distance_random_depths():
    rng = np.random.default_rng(1)
    for dims in ([1, 3, 1], [2, 3, 3, 3, 2]):
        net = sheaflab.NeuralSheaf.random(dims, seed=2)
        net.biases = [np.abs(rng.normal(size=b.shape)) + 1.0 for b in net.biases]   # active units
        x, y = rng.normal(size=dims[0]), rng.normal(size=dims[-1])
        r = arrival_steps(net, x, y, steps=12)
        assert np.array_equal(r.arrival, r.distance)


def test_direct_solve_is_backprop_signal():
    # one hidden layer: active a = u - w r with r = twice the output discord = (f - y) / D
    X, Y = paraboloid_grid(4)
    net = sheaflab.NeuralSheaf.random([2, 5, 1], seed=3)
    eq = sheaflab.equilibrium(net, X, Y)
    ok = ~eq.kinks[0].any(axis=1)
    assert ok.sum() >= 3
    u = X @ net.weights[0].T + net.biases[0]
    w = net.weights[1][0]
    r = 2 * eq.discord["output"][:, 0]
    A = eq.patterns[0]
    assert np.abs(np.where(A, eq.a[0] - (u - np.outer(r, w)), 0.0)).max() < 1e-12
    D = closed_form.denominators(net, A)
    f = net.forward(X)[:, 0]
    assert np.abs((r - (f - Y[:, 0]) / D)[ok]).max() < 1e-12
    # the first affine discord is backprop's delta over 2D (examples with the forward pattern)
    delta = np.outer(f - Y[:, 0], w) * (u > 0)
    same = ok & np.all(A == (u > 0), axis=1)
    assert same.sum() >= 3
    assert np.abs((eq.discord["affine_1"] - delta / (2 * D)[:, None])[same]).max() < 1e-12


def test_bad_input():
    net = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="x"):
        arrival_steps(net, np.zeros((2, 2)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="steps"):
        arrival_steps(net, np.zeros(2), np.zeros(1), steps=0)
