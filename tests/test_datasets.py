"""Benchmark tasks: shapes, determinism, statistics of noise and labels, argument checks."""

import numpy as np
import pytest

from sheaflab import datasets
from sheaflab.datasets import TASKS, blobs, circle, make_task, paraboloid, saddle

WIDTH = {"paraboloid": 1, "saddle": 1, "circle": 1, "blobs": 4}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shapes_and_dtypes(name):
    X, Y = make_task(name, 37)
    assert X.shape == (37, 2) and Y.shape == (37, WIDTH[name])
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(Y))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_seed_determines_the_data(name):
    X1, Y1 = make_task(name, 50, seed=4)
    X2, Y2 = make_task(name, 50, seed=4)
    X3, _ = make_task(name, 50, seed=5)
    assert np.array_equal(X1, X2) and np.array_equal(Y1, Y2)
    assert not np.allclose(X1, X3)


def test_make_task_gives_each_task_its_documented_shape_and_labels():
    for name in TASKS:
        X, Y = make_task(name, 21, seed=1)
        assert X.shape == (21, 2) and Y.shape[0] == 21 and np.all(np.isfinite(X))
    # circle without noise: class 0 inside the unit disc, class 1 in the annulus 1.5 < r < 2.5,
    # the two classes within one of each other in size
    X, Y = make_task("circle", 21, seed=1, noise=0.0)
    r, y = np.hypot(X[:, 0], X[:, 1]), Y[:, 0]
    assert set(np.unique(y)) == {0.0, 1.0} and abs(int(y.sum()) - int((1 - y).sum())) <= 1
    assert np.all(r[y == 0] <= 1.0) and np.all((r[y == 1] > 1.5) & (r[y == 1] < 2.5))
    # blobs: one-hot rows over four classes
    _, Y = make_task("blobs", 40, seed=1)
    assert Y.shape == (40, 4) and np.array_equal(Y.sum(axis=1), np.ones(40)) and set(np.unique(Y)) == {0.0, 1.0}


def test_regression_targets():
    X, Y = saddle(200, seed=2)
    np.testing.assert_allclose(Y[:, 0], X[:, 0] ** 2 - X[:, 1] ** 2 + 0.5 * np.sin(2 * X[:, 0]), atol=1e-15)
    assert X.min() >= 0.0 and X.max() <= 2.0 and X.min() < 0.05 and X.max() > 1.95
    X, Y = paraboloid(200, seed=2)
    np.testing.assert_allclose(Y[:, 0], X[:, 0] ** 2 + X[:, 1] ** 2 - 2.0 / 3.0, atol=1e-15)


@pytest.mark.parametrize("gen", [paraboloid, saddle])
def test_noise_has_the_requested_std(gen):
    n, sigma = 40_000, 0.3
    X, clean = gen(n, seed=6)
    Xn, noisy = gen(n, noise=sigma, seed=6)
    assert np.array_equal(X, Xn)                 # the noise is drawn after the points
    eps = (noisy - clean)[:, 0]
    # the sample std of n Gaussians has standard error sigma / sqrt(2 n) (about 0.001 here)
    assert abs(eps.std() - sigma) < 5 * sigma / np.sqrt(2 * n)
    assert abs(eps.mean()) < 5 * sigma / np.sqrt(n)


def test_circle_labels_and_balance():
    X, Y = circle(4000, noise=0.0, seed=3)
    assert set(np.unique(Y)) == {0.0, 1.0} and Y.sum() == 2000        # balanced exactly
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.all(r[Y[:, 0] == 0] <= 1.0) and np.all((r[Y[:, 0] == 1] >= 1.5) & (r[Y[:, 0] == 1] <= 2.5))
    # uniform in area: the median radius of the disc is 1/sqrt(2), of the annulus sqrt((1.5^2 + 2.5^2) / 2)
    assert abs(np.median(r[Y[:, 0] == 0]) - np.sqrt(0.5)) < 0.03
    assert abs(np.median(r[Y[:, 0] == 1]) - np.sqrt((1.5 ** 2 + 2.5 ** 2) / 2)) < 0.03
    Xn, _ = circle(4000, seed=3)                                        # default radial noise 0.1
    jitter = np.hypot(Xn[:, 0], Xn[:, 1]) - r
    assert abs(jitter.std() - datasets.CIRCLE_NOISE) < 0.01
    _, Y = circle(3, seed=0)
    assert set(Y[:, 0]) == {0.0, 1.0}


def test_blobs_one_hot_with_the_papers_centres_and_covariances():
    X, Y = blobs(4000, seed=0)
    assert set(np.unique(Y)) == {0.0, 1.0}
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    assert np.all(Y.sum(axis=0) == 1000)          # all four classes, sizes differ by at most one
    covs = datasets.blob_covariances()
    for k in range(4):
        pts = X[Y[:, k] == 1]
        np.testing.assert_allclose(pts.mean(axis=0), datasets.BLOB_CENTRES[k], atol=0.1)
        np.testing.assert_allclose(np.cov(pts.T), covs[k], atol=0.1)
    assert np.all(np.linalg.eigvalsh(covs) > 0)
    covs[0, 0, 0] = 99.0                          # a copy: the module's constants stay put
    assert datasets.BLOB_COVARIANCES[0, 0, 0] == 0.8
    _, Y = blobs(6, seed=9)                       # small n: every class still present
    assert np.all(Y.sum(axis=0) >= 1)


@pytest.mark.parametrize("name", sorted(datasets.TASK_SPECS))
def test_task_split_follows_the_spec(name):
    spec = datasets.TASK_SPECS[name]
    Xtr, Ytr, Xte, Yte = datasets.task_split(name, seed=2)
    assert Xtr.shape == (spec.n_train, 2) and Xte.shape == (spec.n_test, 2)
    assert Ytr.shape[1] == Yte.shape[1] == spec.dims[-1]
    X, Y = make_task(name, spec.n_train + spec.n_test, seed=2,
                     **({} if spec.noise is None else {"noise": spec.noise}))
    assert np.array_equal(np.vstack([Xtr, Xte]), X) and np.array_equal(np.vstack([Ytr, Yte]), Y)
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.task_split("spiral")


@pytest.mark.parametrize("call, arg", [
    (lambda: saddle(0), "n"), (lambda: saddle(-3), "n"), (lambda: saddle(10, noise=-1.0), "noise"),
    (lambda: saddle(10, noise=float("nan")), "noise"), (lambda: circle(10, noise=-0.1), "noise"),
    (lambda: circle(1), "n"), (lambda: blobs(0), "n"), (lambda: blobs(3), "n"),
    (lambda: paraboloid(10, noise=float("inf")), "noise"),
])
def test_bad_values_raise_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"\b{arg}\b"):
        call()


@pytest.mark.parametrize("call, arg", [
    (lambda: saddle(2.5), "n"), (lambda: circle("10"), "n"), (lambda: blobs(None), "n"),
    (lambda: circle(10, noise="big"), "noise"), (lambda: saddle(10, noise=True), "noise"),
])
def test_bad_types_raise_naming_the_argument(call, arg):
    with pytest.raises(TypeError, match=rf"\b{arg}\b"):
        call()


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError) as info:
        make_task("spiral", 10)
    for name in TASKS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError):
        make_task(None, 10)
