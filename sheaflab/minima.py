"""The minima page's studies: how often the reached equilibrium is not the global minimum during
training, and what training with the global minimum in the fast phase does (the experiments layer:
they train, so they sit above the trainers; the minima themselves are :mod:`sheaflab.global_min`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .datasets import TASK_SPECS, task_split
from .global_min import reached_vs_global
from .sheaf import NeuralSheaf
from .train import SheafTrainer


@dataclass
class GapRun:
    """The gap of one seed's network at several epochs of training with the reached equilibrium.

    task, dims, head, seed: what was trained; epochs: the epochs at which the gap was measured
    (0 = initialisation); gaps: one :class:`Gap` (on the training set) per entry of ``epochs``.
    """

    task: str
    dims: list
    head: str
    seed: int
    epochs: list
    gaps: list


def gap_during_training(task: str, dims, seed: int, epochs=(0, 50, 200), lr: float = 0.01,
                        n_train: int | None = None) -> GapRun:
    """Train a :class:`~sheaflab.SheafTrainer` (default fast phase, Adam ``lr``, full batch) on the
    task's training split (:func:`sheaflab.datasets.task_split`, seed ``seed``, first ``n_train``
    examples) from ``NeuralSheaf.random(dims, seed)`` with the task's head, and measure
    :func:`reached_vs_global` on the training set at each of ``epochs`` (sorted, 0 = before training)."""
    head = TASK_SPECS[task].head
    X, Y, _, _ = task_split(task, seed=seed)
    if n_train is not None:
        X, Y = X[:n_train], Y[:n_train]
    trainer = SheafTrainer(NeuralSheaf.random(list(dims), seed=seed, head=head), lr=lr, seed=seed,
                           progress=False)
    gaps = []
    for e in sorted(epochs):
        if e > trainer.history.epochs:
            trainer.fit(X, Y, until=e)
        gaps.append(reached_vs_global(trainer.sheaf, X, Y))
    return GapRun(task, list(dims), head, seed, sorted(epochs), gaps)


@dataclass
class TrainingPair:
    """One seed trained twice from the same weights: fast phase at the reached equilibrium
    (``method="direct"``) and at the global minimum (``method="global"``).

    task, dims, seed; loss: ``{"reached": (epochs,), "global": (epochs,)}`` training loss (the head's
    loss of the forward pass) per epoch; wall: the same keys, cumulative seconds per epoch;
    target: a loss both runs reach (the larger of the two final losses); epochs_to, time_to:
    ``{key: epoch / seconds}`` at which each run first reaches ``target``.
    """

    task: str
    dims: list
    seed: int
    loss: dict
    wall: dict
    target: float
    epochs_to: dict
    time_to: dict

    @property
    def final(self) -> dict:
        """Final training loss of each run."""
        return {k: float(v[-1]) for k, v in self.loss.items()}


def train_reached_vs_global(task: str, dims, seed: int, epochs: int = 100, lr: float = 0.01,
                            n_train: int | None = None) -> TrainingPair:
    """Train the same initial network (``NeuralSheaf.random(dims, seed)``, the task's head) with the
    reached equilibrium and with the global minimum in the fast phase (Adam ``lr``, full batch,
    ``epochs`` epochs, no warm starts for either), on the task's training split (first ``n_train``)."""
    head = TASK_SPECS[task].head
    X, Y, _, _ = task_split(task, seed=seed)
    if n_train is not None:
        X, Y = X[:n_train], Y[:n_train]
    init = NeuralSheaf.random(list(dims), seed=seed, head=head)
    loss, wall = {}, {}
    for key, method in (("reached", "direct"), ("global", "global")):
        tr = SheafTrainer(init, lr=lr, seed=seed, method=method, warm_start=False, progress=False)
        tr.fit(X, Y, epochs=epochs)
        loss[key], wall[key] = tr.history.train_loss, tr.history.wall_time
    target = max(float(v[-1]) for v in loss.values())
    ep, tt = {}, {}
    for key in loss:
        k = int(np.flatnonzero(loss[key] <= target)[0])
        ep[key], tt[key] = k + 1, float(wall[key][k])
    return TrainingPair(task, list(dims), seed, loss, wall, target, ep, tt)

