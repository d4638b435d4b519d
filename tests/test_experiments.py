"""Small studies of sheaflab.experiments that the book's figures draw."""

import numpy as np

import sheaflab
from sheaflab import experiments, figures


def history_with(curve):
    h = sheaflab.History(["output"])
    for i, m in enumerate(curve):
        h.append(train_mse=m, val_mse=None, train_loss=m, val_loss=None, train_accuracy=np.nan,
                 val_accuracy=None, loss=m, residual=m, edge_discord=np.array([m]),
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
