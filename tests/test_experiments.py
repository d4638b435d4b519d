"""Small studies of sheaflab.experiments that the book's figures draw."""

import numpy as np
import pytest

import sheaflab
from sheaflab import experiments, figures


def history_with(curve):
    h = sheaflab.History(["output"])
    for i, m in enumerate(curve):
        h.append(train_mse=m, val_mse=None, train_loss=m, val_loss=None, train_accuracy=np.nan,
                 val_accuracy=None, residual=m, edge_discord=np.array([m]),
                 fast_iterations=0, fast_unconverged=0, wall_time=float(i), lambda_min=np.nan)
    return h


def test_epoch_ratio_curve_over_targets():
    sheaf_h = history_with([4.0, 3.0, 2.0, 1.5, 1.0, 0.8])
    sgd_h = history_with([3.0, 1.0, 0.5])
    ratios = experiments.epoch_ratio_curve(sheaf_h, sgd_h, [3.0, 1.0, 0.5])
    np.testing.assert_array_equal(ratios[:2], [2 / 1, 5 / 2])
    assert np.isnan(ratios[2])                      # the sheaf trainer never reaches 0.5
    fig = figures.epoch_ratio_figure([3.0, 1.0, 0.5], {"a": ratios}, marks={"ref": 1.0})
    np.testing.assert_array_equal(fig.data[0].y[:2], ratios[:2])


def test_motivating_problem_is_the_chapters_running_example():
    from sheaflab.datasets import paraboloid
    p = experiments.motivating_problem(seed=2)
    X, Y = paraboloid(200, noise=0.02, seed=4)
    Xt, Yt = paraboloid(1000, noise=0.02, seed=5)
    np.testing.assert_array_equal(p.X, X)
    np.testing.assert_array_equal(p.Y_test, Yt)
    assert p.init.dims == [2, 30, 1]
    np.testing.assert_array_equal(p.init.weights[0], sheaflab.NeuralSheaf.random([2, 30, 1], seed=2).weights[0])
    with pytest.raises(ValueError, match="seed"):
        experiments.motivating_problem(seed=-1)


def test_train_both_starts_both_trainers_from_one_network():
    p = experiments.motivating_problem(seed=0, n_train=40, n_test=20)
    runs = experiments.train_both(p.init, p.X, p.Y, "adam", epochs=5, X_val=p.X_test, Y_val=p.Y_test)
    assert set(runs) == {"sheaf", "sgd"} and all(h.epochs == 5 for h in runs.values())
    # same start: the first recorded MSE differs only by one step of each trainer
    assert abs(runs["sheaf"].train_mse[0] - runs["sgd"].train_mse[0]) < 0.5 * p.init.mse(p.X, p.Y)
    assert runs["sgd"].val_mse.shape == (5,)


def test_calibrated_lr_lands_sgd_in_the_epoch_window():
    p = experiments.motivating_problem(seed=1, n_train=60)
    target = 0.25 * p.init.mse(p.X, p.Y)
    for start in (1e-5, 0.01, 1.0):            # far too small, about right, far too large (diverges)
        lr = experiments.calibrated_lr(p.init, p.X, p.Y, target, sgd_epochs=30, lr=start)
        hit = experiments.fit_until(sheaflab.SGDTrainer(p.init, lr=lr, optimizer="sgd", progress=False),
                                    p.X, p.Y, target, max_epochs=300)
        assert 20 <= hit <= 40, (start, lr, hit)


def test_slowdown_study_in_parallel_gives_the_serial_rows():
    configs = [dict(dims=[2, 4, 1], n_train=30), dict(dims=[2, 6, 1], n_train=30, seed=1, scale=0.7)]
    serial = experiments.slowdown_study(configs, max_epochs=400, sgd_epochs=25)
    parallel = experiments.slowdown_study(configs, max_epochs=400, sgd_epochs=25, n_jobs=2)
    assert [(r.lr, r.sgd_epochs, r.sheaf_epochs) for r in serial] == \
        [(r.lr, r.sgd_epochs, r.sheaf_epochs) for r in parallel]
    assert all(16 <= r.sgd_epochs <= 34 for r in serial)       # the calibrated window around 25


def test_weight_drift_compares_norms_at_equal_fit():
    d = experiments.WeightDrift(np.array([0, 10, 20]), np.array([1.0, 1.5, 2.0]), np.array([1.0, 1.2, 1.6]),
                                np.array([1.0, 0.6, 0.4]), np.array([1.0, 0.4, 0.1]), 0.0)
    norm, epoch = d.sgd_at_final_fit()                  # SGD passes MSE 0.4 at epoch 10
    assert norm == pytest.approx(1.2) and epoch == pytest.approx(10.0)
    with pytest.raises(ValueError, match="never reaches"):
        experiments.WeightDrift(d.epoch, d.sheaf, d.sgd, np.array([1.0, 0.6, 0.05]), d.sgd_mse, 0.0).sgd_at_final_fit()
    with pytest.raises(ValueError, match="does not fall"):
        experiments.WeightDrift(d.epoch, d.sheaf, d.sgd, d.sheaf_mse, np.array([1.0, 0.4, 0.5]), 0.0).sgd_at_final_fit()
