"""The four-task comparison: pairs from one initialisation, tuning on a validation split, intervals."""

import numpy as np
import pytest

from sheaflab import comparison


def test_run_pair_is_deterministic_and_shares_the_initialisation():
    a = comparison.run_pair("paraboloid", (2, 4, 1), seed=3, epochs=15)
    b = comparison.run_pair("paraboloid", (2, 4, 1), seed=3, epochs=15)
    assert a.sheaf.test_loss == b.sheaf.test_loss and a.sgd.curve.tolist() == b.sgd.curve.tolist()
    assert a.sheaf.curve.shape == (15,) and a.sheaf.seconds > 0
    # both trainers start from the same weights, so their first losses are those of one network
    # after one step each: close to each other, far from a fresh seed's
    c = comparison.run_pair("paraboloid", (2, 4, 1), seed=4, epochs=15)
    assert abs(a.sheaf.curve[0] - a.sgd.curve[0]) < abs(a.sheaf.curve[0] - c.sheaf.curve[0])
    assert a.sheaf.epochs_to(a.target) is not None and a.sgd.epochs_to(a.target) is not None
    assert a.epoch_ratio > 0 and a.time_ratio > 0 and np.isnan(a.accuracy_gap)


def test_classification_pair_reports_accuracy():
    p = comparison.run_pair("circle", (2, 4, 1), seed=0, epochs=10)
    assert 0.0 <= p.sheaf.test_accuracy <= 1.0 and np.isfinite(p.accuracy_gap)


def test_tune_lr_picks_from_the_grid_without_the_test_set():
    lr = comparison.tune_lr("saddle", (2, 4, 1), "sgd", grid=(0.001, 0.03), epochs=30)
    assert lr in (0.001, 0.03)
    with pytest.raises(ValueError, match="trainer must be one of"):
        comparison.tune_lr("saddle", (2, 4, 1), "adam")


def test_compare_collects_a_cell():
    cell = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1, 2), epochs=10)
    assert len(cell.pairs) == 3 and cell.lr_sheaf == cell.lr_sgd == 0.01
    med, lo, hi = cell.summary("loss_ratio")
    assert lo <= med <= hi
    assert cell.interval("loss_ratio", "{:.3f}") == f"{med:.3f} [{lo:.3f}, {hi:.3f}]"
    np.testing.assert_allclose(cell.values("loss_ratio"), cell.test_losses("sheaf") / cell.test_losses("sgd"))


@pytest.mark.parametrize("call, message", [
    (lambda: comparison.compare("spiral"), "task must be one of"),
    (lambda: comparison.compare("blobs", (2, 4, 1)), "dims must start with 2 inputs and end with 4"),
    (lambda: comparison.compare("saddle", seeds=[0]), "seeds must hold at least 2"),
    (lambda: comparison.compare("saddle", protocol="fair"), "protocol must be one of"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_median_ci():
    med, lo, hi = comparison.median_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert med == 3.0 and 1.0 <= lo <= med <= hi <= 100.0
    assert comparison.median_ci([2.0, 2.0, np.nan]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="at least 2 finite"):
        comparison.median_ci([1.0])


def test_a_tuned_cell_reuses_the_runs_it_would_repeat():
    seed_cell = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, lr=0.03)
    tuned = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, protocol="tuned",
                               grid=(0.03,), reuse=seed_cell)
    assert tuned.pairs[0] is seed_cell.pairs[0] and tuned.protocol == "tuned"
    other = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, protocol="tuned",
                               grid=(0.001,), reuse=seed_cell)
    assert other.pairs[0] is not seed_cell.pairs[0] and other.lr_sgd == 0.001


def test_tuning_in_parallel_makes_the_serial_choice():
    grid = (0.001, 0.01, 0.1)
    serial = [comparison.tune_lr("saddle", (2, 4, 1), t, grid=grid, epochs=25) for t in ("sheaf", "sgd")]
    both = comparison._tune([("saddle", (2, 4, 1), t, grid, 25, "adam", 0) for t in ("sheaf", "sgd")], n_jobs=2)
    assert both == serial


def test_compare_many_runs_each_pair_once_and_matches_compare():
    specs = [dict(task="saddle", dims=(2, 4, 1), seeds=(0, 1), epochs=8),
             dict(task="saddle", dims=(2, 4, 1), seeds=(0, 1), epochs=8, protocol="tuned", grid=(0.01,)),
             dict(task="circle", dims=(2, 4, 1), seeds=(0, 1), epochs=8, lr=0.02)]
    cells = comparison.compare_many(specs, n_jobs=2)
    assert [c.protocol for c in cells] == ["seed", "tuned", "seed"]
    # the tuned cell's rates came out as the seed cell's: the very same runs, not a rerun
    assert (cells[1].lr_sheaf, cells[1].lr_sgd) == (0.01, 0.01)
    assert all(a is b for a, b in zip(cells[0].pairs, cells[1].pairs))
    alone = comparison.compare("circle", (2, 4, 1), seeds=(0, 1), epochs=8, lr=0.02)
    np.testing.assert_array_equal(cells[2].test_losses("sheaf"), alone.test_losses("sheaf"))
    np.testing.assert_array_equal(cells[2].values("loss_ratio"), alone.values("loss_ratio"))
    with pytest.raises(ValueError, match="protocol must be one of"):
        comparison.compare_many([dict(task="saddle", protocol="fair")])
