"""The four-task comparison: pairs from one initialisation, tuning on disjoint seeds with an interior
optimum, intervals only where there are seeds enough for one, ranges otherwise, k of n."""

import numpy as np
import pytest
from scipy.stats import bootstrap

from sheaflab import comparison
from sheaflab.comparison import Cell, Pair, Run


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


# ------------------------------------------------------------------ tuning: interior, disjoint seeds
def test_tune_chooses_the_lowest_mean_validation_loss_and_checks_the_edge():
    grid, seeds = (1e-4, 0.03, 30.0), (7, 8)
    t = comparison.tune("saddle", (2, 4, 1), "sgd", grid=grid, epochs=20, seeds=seeds)
    # brute force: the validation loss of every rate on every tuning seed, averaged
    brute = [np.mean([comparison._validation_loss("saddle", (2, 4, 1), "sgd", lr, 20, "adam", s) for s in seeds])
             for lr in grid]
    np.testing.assert_allclose(t.scores, brute)
    assert t.lr == grid[int(np.argmin(brute))] == 0.03 and t.interior and t.seeds == seeds
    assert np.isinf(t.scores[2])                      # lr 30 diverges: scored inf, not dropped
    # an optimum at the top of a too-narrow grid: an error by default, a flag on request
    with pytest.raises(ValueError, match="edge of the grid"):
        comparison.tune_lr("saddle", (2, 4, 1), "sgd", grid=(1e-5, 1e-4), epochs=20, seeds=seeds)
    flagged = comparison.tune("saddle", (2, 4, 1), "sgd", grid=(1e-5, 1e-4), epochs=20, seeds=seeds, edge="flag")
    assert flagged.lr == 1e-4 and not flagged.interior and "EDGE" in str(flagged)
    # widening extends the grid geometrically at that end until the choice is interior
    wide = comparison.tune("saddle", (2, 4, 1), "sgd", grid=(0.1, 0.3), epochs=20, seeds=seeds, edge="widen")
    assert wide.interior and wide.lr == 0.3 and wide.grid == pytest.approx((0.1, 0.3, 0.9))
    assert wide.scores[2] > wide.scores[1] < wide.scores[0]
    with pytest.raises(ValueError, match="trainer must be one of"):
        comparison.tune_lr("saddle", (2, 4, 1), "adam")
    with pytest.raises(ValueError, match="edge must be one of"):
        comparison.tune("saddle", (2, 4, 1), grid=(0.01,), edge="ignore")


def test_widened_grid_steps():
    assert comparison._widened((0.01, 0.03), low=False) == pytest.approx((0.01, 0.03, 0.09))
    assert comparison._widened((0.01, 0.03), low=True) == pytest.approx((0.01 / 3, 0.01, 0.03))


def test_tuning_seeds_must_be_disjoint_from_the_reported_seeds():
    with pytest.raises(ValueError, match="tune_seeds must be disjoint from seeds"):
        comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), protocol="tuned", tune_seeds=(1, 5))
    # the source's protocol does not tune, so its seeds may be anything
    comparison._plan("saddle", (2, 4, 1), seeds=(1000, 1001), protocol="seed")


def test_compare_collects_a_cell():
    cell = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1, 2), epochs=10)
    assert len(cell.pairs) == 3 and cell.lr_sheaf == cell.lr_sgd == 0.01 and cell.tuning == {}
    np.testing.assert_allclose(cell.values("loss_ratio"), cell.test_losses("sheaf") / cell.test_losses("sgd"))
    # three seeds: no interval, the range, and it says so
    v = cell.values("loss_ratio")
    assert not cell.has_interval("loss_ratio")
    assert cell.summary("loss_ratio") == cell.range("loss_ratio") == (np.median(v), v.min(), v.max())
    assert cell.interval("loss_ratio", "{:.3f}") == f"{np.median(v):.3f} ({v.min():.3f} to {v.max():.3f})"


@pytest.mark.parametrize("call, message", [
    (lambda: comparison.compare("spiral"), "task must be one of"),
    (lambda: comparison.compare("blobs", (2, 4, 1)), "dims must start with 2 inputs and end with 4"),
    (lambda: comparison.compare("saddle", seeds=[0]), "seeds must hold at least 2"),
    (lambda: comparison.compare("saddle", protocol="fair"), "protocol must be one of"),
    (lambda: comparison.compare("saddle", grid=()), "grid must hold at least one"),
    (lambda: comparison.compare("saddle", grid=(0.01, -1.0)), "grid"),
    (lambda: comparison.compare("saddle", protocol="tuned", tune_seeds=()), "tune_seeds must hold"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------ intervals and ranges
def test_with_five_seeds_the_percentile_bootstrap_of_the_median_is_the_range():
    # why a 5-seed "95% interval" was a min-max: the old computation, done independently
    v = np.array([0.3, 1.1, 0.9, 2.5, 1.4])
    ci = bootstrap((v,), np.median, confidence_level=0.95, n_resamples=4000, method="percentile",
                   random_state=np.random.default_rng(1)).confidence_interval
    assert (ci.low, ci.high) == (v.min(), v.max())
    # and that range covers the true median with probability 1 - 2/2^5 < 0.95: count all sign patterns
    below = np.array([[(k >> i) & 1 for i in range(5)] for k in range(32)])
    covers = np.mean([0 < b.sum() < 5 for b in below])
    assert covers == 1 - 2 / 2 ** 5 == 0.9375
    with pytest.raises(ValueError, match="at least 20 finite numbers"):
        comparison.median_ci(v)


def test_median_ci_with_enough_seeds():
    v = np.random.default_rng(0).lognormal(size=25)
    med, lo, hi = comparison.median_ci(v)
    assert med == np.median(v) and v.min() < lo < med < hi < v.max()   # strictly inside the range
    assert comparison.median_ci(np.r_[np.full(20, 2.0), np.nan]) == (2.0, 2.0, 2.0)
    assert comparison.median_range([3.0, np.nan, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert comparison.median_ci([1.0, 2.0, 3.0], min_n=2)[0] == 2.0


def _fake_cell(n, rng):
    """A cell of n seeds with made-up runs (no training): losses, accuracies and curves drawn at random."""
    pairs = []
    for s in range(n):
        runs = [Run(name, s, 0.01, float(rng.lognormal()), float(rng.uniform(0.8, 1.0)), 1.0, 2.0,
                    np.geomspace(1.0, rng.uniform(0.01, 0.1), 10)) for name in ("sheaf", "sgd")]
        pairs.append(Pair(*runs))
    return Cell("circle", (2, 4, 1), "seed", 0.01, 0.01, 10, pairs)


def test_cell_gives_an_interval_only_with_enough_seeds():
    rng = np.random.default_rng(3)
    small, big = _fake_cell(5, rng), _fake_cell(24, rng)
    assert not small.has_interval("loss_ratio") and big.has_interval("loss_ratio")
    assert "(" in small.interval("loss_ratio") and "to" in small.interval("loss_ratio")
    med, lo, hi = big.summary("loss_ratio")
    assert big.interval("loss_ratio") == f"{med:.2f} [{lo:.2f}, {hi:.2f}]"
    assert (med, lo, hi) == comparison.median_ci(big.values("loss_ratio"))
    gaps = 100 * (big.test_accuracies("sheaf") - big.test_accuracies("sgd"))
    assert big.range("accuracy_gap") == pytest.approx((np.median(gaps), gaps.min(), gaps.max()))


def test_reached_counts_seeds_and_takes_the_median_over_those_that_did():
    cell = _fake_cell(7, np.random.default_rng(4))
    finals = np.array([p.sheaf.curve[-1] for p in cell.pairs])
    target = float(np.median(finals))
    r = cell.reached(target)
    assert 0 < r.k < r.n and (r.k, r.n) == (int((finals <= target).sum()), 7) and str(r) == f"{r.k} of 7 seeds reached it"
    hits = [p.sheaf for p in cell.pairs if p.sheaf.curve[-1] <= target]
    assert r.seconds == pytest.approx(np.median([h.seconds * h.epochs_to(target) / 10 for h in hits]))
    none = cell.reached(1e-9, "sgd")
    assert none.k == 0 and np.isnan(none.seconds)


# ------------------------------------------------------------------ one epoch-time ratio
class _H:
    def __init__(self, per_epoch):
        self.wall_time = np.cumsum(per_epoch)


def test_epoch_time_ratio_is_the_ratio_of_median_epoch_seconds():
    sheaf = _H([0.3] * 9 + [5.0])          # one epoch slowed by another process
    sgd = _H([0.1] * 10)
    assert comparison.epoch_time_ratio(sheaf, sgd) == pytest.approx(3.0)
    # the total-time ratio, which the spike moves, is what the pages used to print
    assert sheaf.wall_time[-1] / sgd.wall_time[-1] == pytest.approx(7.7)
    with pytest.raises(ValueError, match="sgd_history"):
        comparison.epoch_time_ratio(sheaf, _H([]))


# ------------------------------------------------------------------ reuse and the pool
def test_a_tuned_cell_reuses_the_runs_it_would_repeat():
    seed_cell = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, lr=0.03)
    tuned = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, protocol="tuned",
                               grid=(0.03,), reuse=seed_cell, edge="flag")
    assert tuned.pairs[0] is seed_cell.pairs[0] and tuned.protocol == "tuned"
    assert set(tuned.tuning) == {"sheaf", "sgd"} and not tuned.tuning["sgd"].interior
    other = comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=10, protocol="tuned",
                               grid=(0.001,), reuse=seed_cell, edge="flag")
    assert other.pairs[0] is not seed_cell.pairs[0] and other.lr_sgd == 0.001


def test_tuning_in_parallel_makes_the_serial_choice():
    grid = (0.001, 0.01, 0.1)
    serial = [comparison.tune("saddle", (2, 4, 1), t, grid=grid, epochs=25, seeds=(5,), edge="flag")
              for t in ("sheaf", "sgd")]
    both = comparison._tune([("saddle", (2, 4, 1), t, grid, 25, "adam", (5,)) for t in ("sheaf", "sgd")],
                            n_jobs=2, edge="flag")
    assert both == serial


def test_compare_many_runs_each_pair_once_and_matches_compare():
    specs = [dict(task="saddle", dims=(2, 4, 1), seeds=(0, 1), epochs=8),
             dict(task="saddle", dims=(2, 4, 1), seeds=(0, 1), epochs=8, protocol="tuned", grid=(0.01,)),
             dict(task="circle", dims=(2, 4, 1), seeds=(0, 1), epochs=8, lr=0.02)]
    cells = comparison.compare_many(specs, n_jobs=2, edge="flag")
    assert [c.protocol for c in cells] == ["seed", "tuned", "seed"]
    # the tuned cell's rates came out as the seed cell's: the very same runs, not a rerun
    assert (cells[1].lr_sheaf, cells[1].lr_sgd) == (0.01, 0.01)
    assert all(a is b for a, b in zip(cells[0].pairs, cells[1].pairs))
    alone = comparison.compare("circle", (2, 4, 1), seeds=(0, 1), epochs=8, lr=0.02)
    np.testing.assert_array_equal(cells[2].test_losses("sheaf"), alone.test_losses("sheaf"))
    np.testing.assert_array_equal(cells[2].values("loss_ratio"), alone.values("loss_ratio"))
    with pytest.raises(ValueError, match="protocol must be one of"):
        comparison.compare_many([dict(task="saddle", protocol="fair")])


def test_reach_counts_the_seeds_that_get_there():
    easy = comparison.reach("saddle", 1e3, (2, 4, 1), seeds=(0, 1), max_epochs=5)
    assert (easy.k, easy.n, easy.epochs) == (2, 2, 1.0) and easy.seconds > 0   # reached at once
    hard = comparison.reach("saddle", 1e-12, (2, 4, 1), seeds=(0, 1, 2), max_epochs=4, chunk=2)
    assert (hard.k, hard.n) == (0, 3) and np.isnan(hard.seconds)
