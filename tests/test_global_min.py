"""The global minimum by face enumeration, checked against independent brute force."""

import itertools

import numpy as np
import pytest
from scipy import optimize

import sheaflab
from sheaflab.global_min import face_count, global_equilibrium, reached_vs_global


# ---------------------------------------------------------------------------- independent brute force
def _unpack(sheaf, X, Y, v):
    """A cochain from a flat free vector in the column order z_1, a_1, ..., a_{L-1}, z_L."""
    dims, L = sheaf.dims, sheaf.depth
    B = X.shape[0]
    v = v.reshape(B, -1)
    z, a, off = [], [], 0
    for l in range(1, L + 1):
        z.append(v[:, off:off + dims[l]])
        off += dims[l]
        if l < L:
            a.append(v[:, off:off + dims[l]])
            off += dims[l]
    return sheaflab.Cochain(X, z, a, Y)


def _true_energy(sheaf, X, Y, v):
    return float(sheaf.energy(_unpack(sheaf, X[None], Y[None], v))[0])


def enumerate_faces(sheaf, x, y):
    """The global minimum of one example, written independently of sheaflab.global_min: for every
    assignment of (active, inactive, kink) to the hidden units build the dense coboundary of that
    pattern (sheaf.coboundary), drop the columns of the kink units' z, and minimise the face's convex
    energy (least squares for the identity head, BFGS for a classification head); return the smallest
    true energy over all face minimisers."""
    dims, L = sheaf.dims, sheaf.depth
    hidden = dims[1:-1]
    n_out = dims[-1]
    # pinned contributions per edge row: affine_1 gets W_1 x + b_1, affine_l gets b_l, output -y
    g = []
    for l in range(1, L + 1):
        g.append(sheaf.weights[0] @ x + sheaf.biases[0] if l == 1 else sheaf.biases[l - 1])
        if l < L:
            g.append(np.zeros(dims[l]))
    g.append(-y)
    g = np.concatenate(g)
    # free columns: offsets of z_l
    zcol, off = [], 0
    for l in range(1, L + 1):
        zcol.append(off)
        off += dims[l] * (2 if l < L else 1)
    best = np.inf
    for modes in itertools.product((1, -1, 0), repeat=sum(hidden)):
        modes = np.array(modes)
        pats, k = [], 0
        kink_cols = []
        for l, n in enumerate(hidden):
            m = modes[k:k + n]
            pats.append(m == 1)
            kink_cols += [zcol[l] + j for j in range(n) if m[j] == 0]
            k += n
        D = sheaf.coboundary(pats, "both")
        keep = np.setdiff1d(np.arange(D.shape[1]), kink_cols)
        Dk = D[:, keep]
        if sheaf.head == "identity":
            ck, *_ = np.linalg.lstsq(Dk, -g, rcond=None)
        else:
            head = sheaflab.heads.get(sheaf.head)
            Din, gin = Dk[:-n_out], g[:-n_out]
            out = np.zeros((n_out, D.shape[1]))
            out[:, zcol[-1]:zcol[-1] + n_out] = np.eye(n_out)
            Dz = out[:, keep]

            def f(c):
                r = Din @ c + gin
                zL = Dz @ c
                e = 0.5 * r @ r + head.log_partition(zL[None])[0] - y @ zL
                grad = Din.T @ r + Dz.T @ (head.mean(zL[None])[0] - y)
                return e, grad

            c0, *_ = np.linalg.lstsq(Dk, -g, rcond=None)
            ck = optimize.minimize(f, c0, jac=True, method="BFGS", options=dict(gtol=1e-11)).x
        c = np.zeros(D.shape[1])
        c[keep] = ck
        best = min(best, _true_energy(sheaf, x, y, c))
    return best


def multistart(sheaf, x, y, starts=30, seed=0):
    """Local minimisation of the true (non-smooth) energy from random starts: upper bounds."""
    rng = np.random.default_rng(seed)
    n = sheaf.free_dim("both")
    vals = []
    for _ in range(starts):
        c0 = rng.normal(0.0, 3.0, n)
        r = optimize.minimize(lambda c: _true_energy(sheaf, x, y, c), c0, method="Powell",
                              options=dict(xtol=1e-10, ftol=1e-13, maxfev=6000))
        vals.append(r.fun)
    return np.array(vals)


def tiny(dims, seed, head="identity", B=4):
    rng = np.random.default_rng(seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed, head=head)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, 0.5, b.shape)
    X = rng.uniform(-2.0, 2.0, (B, dims[0]))
    if head == "identity":
        Y = rng.normal(0.0, 3.0, (B, dims[-1]))
    elif head == "sigmoid":
        Y = rng.integers(0, 2, (B, dims[-1])).astype(float)
    else:
        Y = np.eye(dims[-1])[rng.integers(0, dims[-1], B)]
    return sheaf, X, Y


CASES = [([1, 1, 1], "identity", 0), ([1, 2, 1], "identity", 1), ([2, 2, 1], "identity", 2),
         ([1, 1, 1, 1], "identity", 3), ([2, 2, 1], "sigmoid", 4), ([1, 2, 2], "softmax", 5)]


@pytest.mark.parametrize("dims,head,seed", CASES)
def test_against_independent_enumeration(dims, head, seed):
    sheaf, X, Y = tiny(dims, seed, head)
    g = global_equilibrium(sheaf, X, Y)
    assert g.method == "global" and g.success and g.pinned == "both"
    assert np.all(g.iterations == face_count(sheaf))
    # the returned cochain has the returned energy (true energy, patterns read from z)
    np.testing.assert_allclose(sheaf.energy(g.cochain), g.energy, rtol=0, atol=1e-12)
    for i in range(X.shape[0]):
        best = enumerate_faces(sheaf, X[i], Y[i])
        assert abs(g.energy[i] - best) <= 1e-8 * max(1.0, best), (i, g.energy[i], best)
    # never above the reached equilibrium
    assert np.all(g.energy <= sheaflab.equilibrium(sheaf, X, Y).energy + 1e-10)


@pytest.mark.parametrize("dims,head,seed", [CASES[0], CASES[2], CASES[3], CASES[4]])
def test_below_every_local_search(dims, head, seed):
    sheaf, X, Y = tiny(dims, seed, head, B=2)
    g = global_equilibrium(sheaf, X, Y)
    for i in range(2):
        vals = multistart(sheaf, X[i], Y[i], starts=8, seed=seed)
        assert np.all(g.energy[i] <= vals + 1e-9)
        assert vals.min() - g.energy[i] <= 1e-6      # Powell gets there from some start


def test_dense_grid_on_one_unit():
    """[1, 1, 1]: z_2 = (w a + b_2 + y) / 2 is optimal for fixed (z_1, a_1), so the energy is a
    function of two free values, minimised here on a dense grid refined around its best point."""
    sheaf, X, Y = tiny([1, 1, 1], 11, B=3)
    w, b2 = sheaf.weights[1][0, 0], sheaf.biases[1][0]
    g = global_equilibrium(sheaf, X, Y)
    for i in range(3):
        u = sheaf.weights[0][0, 0] * X[i, 0] + sheaf.biases[0][0]

        def E(z, a):
            z2 = 0.5 * (w * a + b2 + Y[i, 0])
            return 0.5 * ((u - z) ** 2 + (np.maximum(z, 0) - a) ** 2 + (w * a + b2 - z2) ** 2
                          + (z2 - Y[i, 0]) ** 2)
        cz, ca, span = 0.0, 0.0, 20.0
        for _ in range(12):
            zz, aa = np.meshgrid(np.linspace(cz - span, cz + span, 201),
                                 np.linspace(ca - span, ca + span, 201))
            vals = E(zz, aa)
            k = np.unravel_index(vals.argmin(), vals.shape)
            cz, ca, span = zz[k], aa[k], span / 8
        grid_min = E(cz, ca)
        assert g.energy[i] <= grid_min + 1e-9
        assert grid_min - g.energy[i] <= 1e-8


@pytest.mark.parametrize("head", ["identity", "sigmoid", "softmax"])
def test_convex_cases_agree_with_equilibrium(head):
    """No hidden layer (one face: the energy is strictly convex) and zero-energy targets (the forward
    pass is a global minimum): the global minimum is the reached equilibrium."""
    rng = np.random.default_rng(0)
    sheaf = sheaflab.NeuralSheaf([rng.normal(size=(3 if head == "softmax" else 1, 2))],
                                 [rng.normal(size=3 if head == "softmax" else 1)], head=head)
    X = rng.normal(size=(6, 2))
    Y = (np.eye(3)[rng.integers(0, 3, 6)] if head == "softmax" else
         rng.integers(0, 2, (6, 1)).astype(float) if head == "sigmoid" else rng.normal(size=(6, 1)))
    g, r = global_equilibrium(sheaf, X, Y), sheaflab.equilibrium(sheaf, X, Y)
    assert np.all(g.iterations == 1)
    np.testing.assert_allclose(g.energy, r.energy, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.z[-1], r.z[-1], atol=1e-7)
    deep = sheaflab.NeuralSheaf.random([2, 2, 2, 1])
    Xd = rng.normal(size=(5, 2))
    gd = global_equilibrium(deep, Xd, deep.forward(Xd))
    assert np.all(np.abs(gd.energy) < 1e-20)


def test_issue_case_reached_is_not_global():
    sheaf = sheaflab.NeuralSheaf([np.array([[-0.1]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)])
    X, Y = np.array([[1.0]]), np.array([[10.0]])
    g, r = global_equilibrium(sheaf, X, Y), sheaflab.equilibrium(sheaf, X, Y)
    assert g.energy[0] == pytest.approx(12.75125, abs=1e-12)
    assert g.z[0][0, 0] == pytest.approx(2.425, abs=1e-12)
    assert g.a[0][0, 0] == pytest.approx(4.95, abs=1e-12)
    assert g.z[1][0, 0] == pytest.approx(7.475, abs=1e-12)
    assert g.patterns[0][0, 0] and not g.kinks[0][0, 0]
    assert r.energy[0] == pytest.approx(50.0 / 3.0, abs=1e-9)
    gap = reached_vs_global(sheaf, X, Y)
    assert gap.n_lower == 1 and gap.max_gap == pytest.approx((50 / 3 - 12.75125) / (50 / 3))


def test_sigmoid_reached_above_global():
    """A sigmoid [2,3,1] example (found by a search over seeds) whose reached equilibrium is not
    the global minimum."""
    rng = np.random.default_rng(88)
    sheaf = sheaflab.NeuralSheaf.random([2, 3, 1], seed=88, head="sigmoid")
    for b in sheaf.biases:
        b[:] = rng.normal(0, 0.5, b.shape)
    X, Y = rng.uniform(-2, 2, (1, 2)), rng.integers(0, 2, (1, 1)).astype(float)
    g, r = global_equilibrium(sheaf, X, Y), sheaflab.equilibrium(sheaf, X, Y)
    assert r.energy[0] > g.energy[0] + 1e-3
    assert g.energy[0] == pytest.approx(enumerate_faces(sheaf, X[0], Y[0]), abs=1e-8)


def test_minimum_on_a_kink():
    sheaf = sheaflab.NeuralSheaf([np.array([[1.0]]), np.array([[1.0]])])
    g = global_equilibrium(sheaf, [[1.0]], [[-10.0]])
    assert g.z[0][0, 0] == 0.0 and g.kinks[0][0, 0] and not g.patterns[0][0, 0]
    assert g.a[0][0, 0] == pytest.approx(-10.0 / 3.0, abs=1e-12)
    assert g.energy[0] == pytest.approx(0.5 + 3 * 50 / 9, abs=1e-12)


def test_too_many_faces_and_arguments():
    big = sheaflab.NeuralSheaf.random([2, 12, 1])
    with pytest.raises(ValueError, match=r"3\^12 = 531441 faces.*max_faces=65536"):
        global_equilibrium(big, np.zeros((1, 2)), np.zeros((1, 1)))
    small = sheaflab.NeuralSheaf.random([2, 3, 1])
    with pytest.raises(ValueError, match="max_faces=9"):
        global_equilibrium(small, np.zeros((1, 2)), np.zeros((1, 1)), max_faces=9)
    assert global_equilibrium(small, np.zeros((1, 2)), np.zeros((1, 1)), max_faces=27).success
    with pytest.raises(TypeError, match="sheaf"):
        global_equilibrium("net", np.zeros((1, 2)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="X"):
        global_equilibrium(small, np.zeros((1, 3)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="Y"):
        global_equilibrium(small, np.zeros((2, 2)), np.zeros((1, 1)))
    with pytest.raises(TypeError, match="max_faces"):
        global_equilibrium(small, np.zeros((1, 2)), np.zeros((1, 1)), max_faces=2.5)
    with pytest.raises(ValueError, match="max_faces"):
        global_equilibrium(small, np.zeros((1, 2)), np.zeros((1, 1)), max_faces=0)
    clf = sheaflab.NeuralSheaf.random([2, 2, 1], head="sigmoid")
    with pytest.raises(ValueError, match="Y"):
        global_equilibrium(clf, np.zeros((1, 2)), np.full((1, 1), 2.0))


def test_input_only_pinning_is_the_forward_pass():
    sheaf, X, _ = tiny([2, 3, 2, 1], 0, B=5)
    g = global_equilibrium(sheaf, X)
    assert g.pinned == "input" and g.method == "global"
    np.testing.assert_array_equal(g.cochain.yhat, sheaf.forward(X))
    assert np.all(g.energy == 0.0)


def test_trainer_global_first_step_is_the_local_rule_at_the_global_minimum():
    sheaf, X, Y = tiny([2, 3, 1], 7, B=12)
    Y = 4.0 * Y                                         # far targets: some minima lie elsewhere
    g = global_equilibrium(sheaf, X, Y)
    r = sheaflab.equilibrium(sheaf, X, Y)
    assert np.any(r.energy > g.energy + 1e-9)          # the two fast phases do differ here
    gW, gb = sheaflab.local_gradients(sheaf, g)
    lr = 0.05
    tr = sheaflab.SheafTrainer(sheaf, lr=lr, optimizer="sgd", method="global", progress=False)
    assert not tr._uses_warm_starts()
    tr.fit(X, Y, epochs=1)
    for new, old, grad in zip(tr.sheaf.weights + tr.sheaf.biases, sheaf.weights + sheaf.biases, gW + gb):
        np.testing.assert_allclose(new, old - lr * grad, rtol=0, atol=1e-13)
    assert tr.history.residual[0] == pytest.approx(g.energy.mean(), abs=1e-12)
    # and it trains: the loss falls over a few more epochs
    tr.fit(X, Y, epochs=30)
    assert tr.history.train_loss[-1] < tr.history.train_loss[0]
    with pytest.raises(ValueError, match="method"):
        sheaflab.SheafTrainer(sheaf, method="globl")


def test_trainer_global_checkpoint_resumes_bit_for_bit(tmp_path):
    sheaf, X, Y = tiny([2, 3, 1], 7, B=12)
    Y = 4.0 * Y
    straight = sheaflab.SheafTrainer(sheaf, lr=0.02, method="global", seed=3, progress=False)
    straight.fit(X, Y, epochs=6)
    first = sheaflab.SheafTrainer(sheaf, lr=0.02, method="global", seed=3, progress=False)
    first.fit(X, Y, epochs=3)
    resumed = sheaflab.SheafTrainer.load(first.save(tmp_path / "g.npz"))
    assert resumed.method == "global"
    resumed.fit(X, Y, epochs=3)
    for a, b in zip(resumed.sheaf.weights + resumed.sheaf.biases, straight.sheaf.weights + straight.sheaf.biases):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed.history.train_loss, straight.history.train_loss)


def test_training_pair_on_every_task_is_consistent():
    from sheaflab.minima import train_reached_vs_global
    for task, dims in (("saddle", [2, 2, 1]), ("blobs", [2, 2, 4])):
        p = train_reached_vs_global(task, dims, seed=1, epochs=8, n_train=20)
        assert p.target == pytest.approx(max(p.final.values()))
        for key in ("reached", "global"):
            k = p.epochs_to[key] - 1
            assert p.loss[key][k] <= p.target and np.all(p.loss[key][:k] > p.target)
            assert p.time_to[key] == p.wall[key][k] > 0
