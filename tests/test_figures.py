"""The book's measurement figures hold the data they were given."""

import numpy as np
import pytest

import sheaflab
from sheaflab import figures
from sheaflab.datasets import paraboloid
from sheaflab.experiments import RateRow, SlowdownRow


def slowdown_row(dims, scale, n_train, inv_lambda_min, ratio):
    """A SlowdownRow with only the fields the figure draws filled in."""
    return SlowdownRow(dims, scale, n_train, 0, None, None, None, inv_lambda_min, 1.0, 0.1,
                       None if ratio is None else 10, None if ratio is None else int(10 * ratio), ratio)


@pytest.fixture(scope="module")
def histories():
    X, Y = paraboloid(40, seed=0)
    sheaf = sheaflab.NeuralSheaf.random([2, 6, 1], seed=0)
    return {"sheaf trainer": sheaflab.SheafTrainer(sheaf, progress=False).fit(X, Y, epochs=5),
            "SGD": sheaflab.SGDTrainer(sheaf, progress=False).fit(X, Y, epochs=5)}


def test_loss_curves_plot_the_histories(histories):
    fig = figures.loss_curves(histories)
    for trace, h in zip(fig.data, histories.values()):
        np.testing.assert_array_equal(trace.y, h.train_mse)
        np.testing.assert_array_equal(trace.x, np.arange(1, 6))
    assert fig.data[0].line.color != fig.data[1].line.color
    fig = figures.loss_curves(histories, against="time")
    np.testing.assert_array_equal(fig.data[0].x, histories["sheaf trainer"].wall_time)
    with pytest.raises(ValueError, match="against"):
        figures.loss_curves(histories, against="steps")


def test_slowdown_figure_points_and_fit():
    rows = [slowdown_row([2, 30, 1], 1.0, 200, 2.6, 4.0), slowdown_row([2, 30, 1], 0.5, 200, 2.6, 5.0),
            slowdown_row([2, 8, 8, 1], 1.0, 100, 17.0, 8.0), slowdown_row([2, 10, 1], 1.0, 100, 2.6, None)]
    fig = figures.slowdown_figure(rows, fit=(0.5, 1.0))
    measured = [t for t in fig.data if t.name.startswith("measured")]
    xs = np.concatenate([t.x for t in measured])
    ys = np.concatenate([t.y for t in measured])
    assert sorted(zip(xs, ys)) == [(2.6, 4.0), (2.6, 5.0), (17.0, 8.0)]   # the unreached one is left out
    line = [t for t in fig.data if t.name.startswith("least squares")][0]
    np.testing.assert_allclose(line.y, 0.5 * np.asarray(line.x) + 1.0)


def test_rate_and_equilibrium_figures():
    rows = [RateRow(16, 0.01, np.ones(3), None, None, None), RateRow(64, 0.02, np.ones(3), None, None, None)]
    fig = figures.rate_figure(rows, fit=(0.001, 0.1, 0.5))
    np.testing.assert_allclose(fig.data[0].x, [1 / 16, 1 / 64])
    np.testing.assert_allclose(fig.data[0].y, [0.01, 0.02])
    sheaf = sheaflab.NeuralSheaf([np.array([[1.0]]), np.array([[1.0]])])
    eq = sheaflab.equilibrium(sheaf, np.array([[1.0]]), np.array([[-10.0]]))
    fig = figures.equilibrium_figure(sheaf, eq, 0)
    bars = {t.name: t.y for t in fig.data if t.type == "bar"}
    np.testing.assert_allclose(bars["a_1"], eq.a[0][0])
    np.testing.assert_allclose(bars["‖discord‖"], eq.discord.norms()[0])
    assert any(t.name == "kink (z = 0)" for t in fig.data)


def test_decision_figure_draws_one_panel_per_network():
    import sheaflab
    from sheaflab.datasets import task_split
    Xtr, Ytr, _, _ = task_split("blobs", seed=0)
    net = sheaflab.NeuralSheaf.random([2, 6, 4], seed=0, head="softmax")
    fig = figures.decision_figure({"a": net, "b": net.copy()}, Xtr[:40], Ytr[:40], resolution=20)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2 and np.asarray(heat[0].z).shape == (20, 20)
    assert sum(t.type == "scatter" for t in fig.data) == 8
    assert "accuracy" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match="classification head"):
        figures.decision_figure({"a": sheaflab.NeuralSheaf.random([2, 3, 1])}, Xtr[:5], Ytr[:5, :1])


def test_comparison_figure_one_row_per_cell():
    from sheaflab import comparison
    cells = [comparison.compare("saddle", (2, 4, 1), seeds=(0, 1), epochs=5, protocol=p) for p in ("seed",)]
    fig = figures.comparison_figure(cells)
    meds = [t for t in fig.data if t.name and t.name.startswith("median")]
    assert len(meds) == 2 and len(meds[0].x) == 1
    assert meds[0].x[0] == pytest.approx(cells[0].summary("loss_ratio")[0])
    # two seeds give no interval: the title must not claim one
    title = fig.layout.title.text.replace("<br>", " ")
    assert "ranges over the seeds" in title and "bootstrap" not in title
