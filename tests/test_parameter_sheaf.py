import numpy as np
import pytest

import sheaflab
from sheaflab import augment
from sheaflab.datasets import paraboloid_grid
from sheaflab.parameter_sheaf import parameter_sheaf


@pytest.fixture(scope="module")
def grid():
    return paraboloid_grid(4)


@pytest.mark.parametrize("dims", [[2, 4, 1], [2, 5, 4, 1]])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_one_diffusion_step_is_one_local_rule_step(grid, dims, l2):
    X, Y = grid
    net = sheaflab.NeuralSheaf.random(dims, seed=0)
    eq = sheaflab.equilibrium(net, X, Y)
    H = parameter_sheaf(net, eq, l2)
    gW, gb = augment.augmented_gradients(net, eq, l2) if l2 else sheaflab.local_gradients(net, eq)
    Ws, bs = H.step(0.05)
    for new, old, g in zip(Ws + bs, net.weights + net.biases, gW + gb):
        assert np.abs(new - (old - 0.05 * g)).max() < 1e-12
    Ld = H.laplacian.toarray()
    assert np.array_equal(Ld, Ld.T) and np.linalg.eigvalsh(Ld).min() > -1e-12
    aff = [e.kind == "affine" for e in net.edges]
    want = eq.discord.energies()[:, aff].sum(axis=1).mean() + augment.reluctance_energy(net, l2)
    assert abs(H.energy() - want) < 1e-12
    # no edge couples two layers: the Laplacian is block diagonal
    o = H.offsets
    for l in range(len(o) - 1):
        assert not Ld[o[l]:o[l + 1], o[l + 1]:].any()


def test_worked_example_structure(grid):
    X, Y = grid
    net = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    H = parameter_sheaf(net, sheaflab.equilibrium(net, X, Y))
    assert H.stalk_dims == [12, 5] and len(H.edges) == 32
    assert H.coboundary.shape == (16 * 4 + 16 * 1, 17)
    # discords of the data edges are the affine discords of each example
    eq = sheaflab.equilibrium(net, X, Y)
    d = H.discord()
    assert np.allclose(d[:64].reshape(16, 4), eq.discord["affine_1"], atol=1e-14)
    # the energy is quadratic: gradient equals finite differences
    t = H.theta.copy()
    g = H.gradient()
    e = np.zeros_like(t); e[3] = 1e-6
    assert abs((H.energy(t + e) - H.energy(t - e)) / 2e-6 - g[3]) < 1e-8


def test_bad_input(grid):
    net = sheaflab.NeuralSheaf.random([2, 4, 1], seed=0)
    with pytest.raises(TypeError, match="eq"):
        parameter_sheaf(net, "x")
    X, Y = grid
    with pytest.raises(ValueError, match="l2"):
        parameter_sheaf(net, sheaflab.equilibrium(net, X, Y), l2=-1.0)
