"""L2 regularization as reluctance edges (Definition 8): energy, gradient, weight-decay equivalence."""

import numpy as np
import pytest

import sheaflab
from conftest import central_differences, random_problem
from sheaflab.augment import (augmented_energy, augmented_gradients, reluctance_edges,
                              reluctance_energy)

LAM = 0.1


def sq_norm(sheaf):
    """||theta||^2 over every weight and bias, computed directly."""
    return sum(float(np.sum(W ** 2)) for W in sheaf.weights) + \
        sum(float(np.sum(b ** 2)) for b in sheaf.biases)


def flat(gW, gb):
    return sheaflab.flatten(gW + gb)


def fd_regularized(sheaf, X, Y, l2):
    """Central differences of R(theta) + l2/2 ||theta||^2, R = sheaflab.residual."""
    return central_differences(lambda: sheaflab.residual(sheaf, X, Y) + 0.5 * l2 * sq_norm(sheaf),
                               sheaf.parameters)


def test_reluctance_edges_records():
    sheaf, _, _ = random_problem([2, 4, 3, 1], seed=1)
    edges = reluctance_edges(sheaf, LAM)
    assert [e.name for e in edges] == ["reluctance_W1", "reluctance_b1", "reluctance_W2",
                                       "reluctance_b2", "reluctance_W3", "reluctance_b3"]
    assert all(e.kind == "reluctance" for e in edges)
    assert [e.layer for e in edges] == [1, 1, 2, 2, 3, 3]
    params = [p for pair in zip(sheaf.weights, sheaf.biases) for p in pair]
    for e, P in zip(edges, params):
        assert e.discord.shape == P.shape
        np.testing.assert_allclose(e.discord, np.sqrt(LAM) * P, rtol=1e-15)
        assert e.weight == pytest.approx(np.sqrt(LAM))
    # the discord is a snapshot, not a view of the live parameters
    edges[0].discord[...] = 0.0
    assert np.any(sheaf.weights[0] != 0.0)
    assert reluctance_energy(sheaf, LAM) == pytest.approx(0.5 * LAM * sq_norm(sheaf), rel=1e-14)


def test_augmented_energy_mean_is_regularized_residual():
    sheaf, X, Y = random_problem([2, 5, 1], n=15, seed=2)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    aug = augmented_energy(sheaf, eq, LAM)
    assert aug.shape == (15,)
    reg = 0.5 * LAM * sq_norm(sheaf)
    # the shared anchor term is added in full to every example
    np.testing.assert_allclose(aug - eq.energy, reg, rtol=1e-13)
    assert aug.mean() == pytest.approx(eq.energy.mean() + reg, rel=1e-13)
    assert aug.mean() == pytest.approx(sheaflab.residual(sheaf, X, Y) + reg, rel=1e-12)
    # a Cochain is accepted as well and gives the same numbers at the equilibrium
    np.testing.assert_allclose(augmented_energy(sheaf, eq.cochain, LAM), aug, rtol=1e-13)


@pytest.mark.parametrize("dims", [[2, 5, 1], [2, 4, 3, 1]])
def test_augmented_gradient_equals_finite_differences(dims):
    sheaf, X, Y = random_problem(dims, n=12, seed=3)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    gW, gb = augmented_gradients(sheaf, eq, LAM)
    assert [g.shape for g in gW] == [W.shape for W in sheaf.weights]
    assert [g.shape for g in gb] == [b.shape for b in sheaf.biases]
    g, fd = flat(gW, gb), fd_regularized(sheaf, X, Y, LAM)
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(fd)
    # the regularizer's share is not negligible, so the test would notice it missing
    plain = flat(*sheaflab.local_gradients(sheaf, eq))
    assert np.linalg.norm(plain - fd) > 1e-3 * np.linalg.norm(fd)


def test_one_step_equals_sgd_with_weight_decay():
    sheaf, X, Y = random_problem([2, 4, 3, 1], n=20, seed=4)
    lr = 0.05
    eq = sheaflab.equilibrium(sheaf, X, Y)
    aW, ab = augmented_gradients(sheaf, eq, LAM)
    gW, gb = sheaflab.local_gradients(sheaf, eq)
    params = sheaf.weights + sheaf.biases
    for P, a, g in zip(params, aW + ab, gW + gb):
        step = P - lr * a
        coupled = P - lr * (g + LAM * P)             # SGD with an L2 term in the gradient
        decoupled = (1.0 - lr * LAM) * P - lr * g    # shrink, then step
        np.testing.assert_allclose(step, coupled, rtol=0, atol=1e-10)
        np.testing.assert_allclose(step, decoupled, rtol=0, atol=1e-10)


def test_training_trajectory_equals_sgd_with_weight_decay():
    """Several steps, re-solving the equilibrium each time, along both update rules."""
    base, X, Y = random_problem([2, 5, 1], n=16, seed=5)
    lr, steps = 0.05, 5
    aug, ref = base.copy(), base.copy()
    for _ in range(steps):
        gW, gb = augmented_gradients(aug, sheaflab.equilibrium(aug, X, Y), LAM)
        for P, g in zip(aug.weights + aug.biases, gW + gb):
            P -= lr * g
        rW, rb = sheaflab.local_gradients(ref, sheaflab.equilibrium(ref, X, Y))
        for P, g in zip(ref.weights + ref.biases, rW + rb):
            P *= 1.0 - lr * LAM
            P -= lr * g
    for P, Q in zip(aug.weights + aug.biases, ref.weights + ref.biases):
        np.testing.assert_allclose(P, Q, rtol=0, atol=1e-10)
    # weight decay did something: the plain trajectory ends elsewhere
    plain = base.copy()
    for _ in range(steps):
        gW, gb = sheaflab.local_gradients(plain, sheaflab.equilibrium(plain, X, Y))
        for P, g in zip(plain.weights + plain.biases, gW + gb):
            P -= lr * g
    assert not np.allclose(flat(plain.weights, plain.biases), flat(aug.weights, aug.biases),
                           atol=1e-4)


def test_l2_zero_is_exactly_the_plain_rule():
    sheaf, X, Y = random_problem([2, 4, 3, 1], n=10, seed=6)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    aW, ab = augmented_gradients(sheaf, eq, 0.0)
    gW, gb = sheaflab.local_gradients(sheaf, eq)
    for a, g in zip(aW + ab, gW + gb):
        assert np.array_equal(a, g)
    assert np.array_equal(augmented_energy(sheaf, eq, 0), eq.energy)
    assert all(np.all(e.discord == 0) for e in reluctance_edges(sheaf, 0))


def test_reluctance_leaves_the_equilibrium_unchanged():
    """The reluctance edges meet only parameter stalks: the cochain part of the augmented energy
    is the plain energy plus a constant, so the equilibrium cochain is still its minimizer."""
    sheaf, X, Y = random_problem([2, 4, 3, 1], n=10, seed=7)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    reg = 0.5 * LAM * sq_norm(sheaf)
    rng = np.random.default_rng(0)
    base = augmented_energy(sheaf, eq.cochain, LAM)
    np.testing.assert_allclose(base, eq.energy + reg, rtol=1e-13)
    for scale in (1e-6, 1e-3, 1.0):
        c = eq.cochain.copy()
        for v in c.z + c.a:                       # perturb the free stalks only
            v += scale * rng.standard_normal(v.shape)
        e_aug = augmented_energy(sheaf, c, LAM)
        # the augmentation shifts every cochain's energy by the same constant ...
        np.testing.assert_allclose(e_aug - sheaf.energy(c), reg, rtol=1e-12)
        # ... so no perturbation of the equilibrium lowers the augmented energy
        assert np.all(e_aug >= base - 1e-12 * (1 + base))
    # and the reluctance discords are sqrt(l2) times the parameters, whatever the cochain or batch:
    # their energy is l2/2 ||theta||^2, summed here from the weights directly
    edges = reluctance_edges(sheaf, LAM)
    theta = np.concatenate([p.ravel() for p in sheaf.weights + sheaf.biases])
    got = np.sort(np.concatenate([np.ravel(e.discord) for e in edges]))
    np.testing.assert_allclose(got, np.sort(np.sqrt(LAM) * theta), rtol=1e-14)
    assert 0.5 * float(got @ got) == pytest.approx(0.5 * LAM * float(theta @ theta), rel=1e-13)


@pytest.mark.parametrize("l2", [-0.1, float("nan"), float("inf"), -1e-300])
def test_bad_l2_raises_value_error(l2):
    sheaf, X, Y = random_problem([2, 3, 1], n=4)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    for call in (lambda: reluctance_edges(sheaf, l2), lambda: augmented_energy(sheaf, eq, l2),
                 lambda: augmented_gradients(sheaf, eq, l2)):
        with pytest.raises(ValueError, match=r"\bl2\b"):
            call()


def test_bad_types_raise_type_error():
    sheaf, X, Y = random_problem([2, 3, 1], n=4)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    with pytest.raises(TypeError, match=r"\bl2\b"):
        augmented_gradients(sheaf, eq, "0.1")
    with pytest.raises(TypeError, match=r"\bsheaf\b"):
        augmented_gradients([np.eye(2)], eq, 0.1)
    with pytest.raises(TypeError, match=r"\beq\b"):
        augmented_gradients(sheaf, eq.cochain, 0.1)
    with pytest.raises(TypeError, match=r"\beq\b"):
        augmented_energy(sheaf, eq.energy, 0.1)
