"""Bad input on every head behaves as on the identity head: a clear error that names the argument
(issue 21), never a silent garbage fit or a bare numpy error."""

import numpy as np
import pytest

import sheaflab
from sheaflab import solve
from sheaflab.datasets import task_split

HEADS = [("identity", "paraboloid", [2, 8, 1]), ("sigmoid", "circle", [2, 8, 1]),
         ("softmax", "blobs", [2, 8, 4]), ("softmax", "blobs", [2, 5, 5, 4])]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # overflow on the way up is expected
@pytest.mark.parametrize("head,task,dims", HEADS)
@pytest.mark.parametrize("Trainer", [sheaflab.SheafTrainer, sheaflab.SGDTrainer])
def test_a_huge_learning_rate_raises_naming_lr(head, task, dims, Trainer):
    X, Y, _, _ = task_split(task, seed=0)
    tr = Trainer(sheaflab.NeuralSheaf.random(dims, seed=0, head=head), lr=1e4, progress=False)
    with pytest.raises(sheaflab.TrainingDiverged, match=r"lr=10000 is too large"):
        tr.fit(X, Y, epochs=20)
    assert tr.history.epochs < 20
    # the last good epoch is kept: its weights are finite
    assert all(np.isfinite(W).all() for W in tr.sheaf.weights)


@pytest.mark.parametrize("head,task,dims", HEADS)
def test_inputs_beyond_double_precision_are_refused_naming_X(head, task, dims):
    X, Y, _, _ = task_split(task, seed=0)
    net = sheaflab.NeuralSheaf.random(dims, seed=0, head=head)
    for call in (lambda: sheaflab.SheafTrainer(net, progress=False).fit(X * 1e150, Y, epochs=1),
                 lambda: sheaflab.SGDTrainer(net, progress=False).fit(X * 1e150, Y, epochs=1),
                 lambda: sheaflab.equilibrium(net, X * 1e150, Y)):
        with pytest.raises(ValueError, match=r"X has entries as large as .*e\+150.*standardise"):
            call()
    # large but representable inputs still work
    assert np.isfinite(sheaflab.equilibrium(net, X * 1e6, Y).energy).all()


def test_a_failed_linear_solve_is_reported_with_the_scale(monkeypatch):
    X, Y, _, _ = task_split("blobs", seed=0)
    net = sheaflab.NeuralSheaf.random([2, 5, 5, 4], seed=0, head="softmax")

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(solve, "walk", singular)
    with pytest.raises(FloatingPointError, match=r"linear solve of the fast phase failed.*max \|X\|"):
        sheaflab.equilibrium(net, X, Y)
    tr = sheaflab.SheafTrainer(net, progress=False)
    with pytest.raises(sheaflab.TrainingDiverged, match="at the initial weights, before any step"):
        tr.fit(X, Y, epochs=2)


@pytest.mark.parametrize("make", [lambda s: task_split("blobs", seed=s),
                                  lambda s: sheaflab.NeuralSheaf.random([2, 3, 1], seed=s)])
def test_a_negative_seed_is_refused_naming_seed(make):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer.*got -1"):
        make(-1)
