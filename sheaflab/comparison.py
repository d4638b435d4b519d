"""The sheaf trainer against SGD on the paper's four tasks: seeds, two protocols, bootstrap intervals.

This is the evidence behind the book's test of the source's honest-comparison remark (Remark 9):
"matches SGD in final test loss on small networks", "requires more wall-clock time", "on larger
networks or harder tasks, the gap widens".

* :func:`run_pair` trains both trainers from one initialisation on one seed's split of a task
  (:func:`sheaflab.datasets.task_split`), full batch, and returns a :class:`Pair` of :class:`Run`.
* :func:`tune_lr` picks a trainer's learning rate from a grid on a validation split of the training set.
* :func:`compare` runs a :class:`Cell` (one task, one network, one protocol) over several seeds, and
  :func:`compare_many` runs many cells with all their runs in one worker pool:
  ``protocol="seed"`` gives both trainers the same learning rate (the source's protocol);
  ``protocol="tuned"`` gives each the rate :func:`tune_lr` chose for it (a fair-tuning protocol).
* :func:`median_ci` is the median of per-seed values with a percentile bootstrap interval
  (``scipy.stats.bootstrap``).

Everything is deterministic given the seeds; runs of one cell can go to joblib workers (``n_jobs``),
and each pair is timed in one process, side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ._checks import choice, n_jobs as check_n_jobs, positive
from .datasets import TASK_SPECS, task_split
from .parallel import starmap
from .sheaf import NeuralSheaf
from .train import SGDTrainer, SheafTrainer

PROTOCOLS = ("seed", "tuned")
TRAINERS = {"sheaf": SheafTrainer, "sgd": SGDTrainer}


@dataclass(frozen=True)
class Run:
    """One trainer's run on one seed: the head's loss on the test set after the last epoch
    (``test_loss``; MSE or cross-entropy), its ``test_accuracy`` (NaN for regression), the final
    ``train_loss``, ``seconds`` spent in ``fit`` and the per-epoch training-loss curve ``curve``."""

    trainer: str
    seed: int
    lr: float
    test_loss: float
    test_accuracy: float
    train_loss: float
    seconds: float
    curve: np.ndarray = field(repr=False)

    def epochs_to(self, target: float) -> int | None:
        hits = np.flatnonzero(self.curve <= target)
        return int(hits[0]) + 1 if hits.size else None

    def seconds_to(self, target: float) -> float | None:
        k = self.epochs_to(target)
        return None if k is None else self.seconds * k / self.curve.size


@dataclass(frozen=True)
class Pair:
    """Both trainers on one seed, from the same initialisation. ``target`` is the training loss both
    reach: 1.05 times the larger of their final training losses."""

    sheaf: Run
    sgd: Run

    @property
    def target(self) -> float:
        return 1.05 * max(self.sheaf.train_loss, self.sgd.train_loss)

    @property
    def loss_ratio(self) -> float:
        """Final test loss, sheaf / SGD."""
        return self.sheaf.test_loss / self.sgd.test_loss

    @property
    def accuracy_gap(self) -> float:
        """Final test accuracy, sheaf minus SGD, in percentage points (NaN for regression)."""
        return 100.0 * (self.sheaf.test_accuracy - self.sgd.test_accuracy)

    @property
    def epoch_ratio(self) -> float:
        """Epochs to the common training-loss ``target``, sheaf / SGD."""
        return self.sheaf.epochs_to(self.target) / self.sgd.epochs_to(self.target)

    @property
    def time_ratio(self) -> float:
        """Wall-clock seconds to the common training-loss ``target``, sheaf / SGD."""
        return self.sheaf.seconds_to(self.target) / self.sgd.seconds_to(self.target)


def _check_task(task: str, dims) -> tuple:
    spec = TASK_SPECS.get(task) if isinstance(task, str) else None
    if spec is None:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASK_SPECS))}; got {task!r}")
    dims = tuple(spec.dims if dims is None else dims)
    if dims[0] != 2 or dims[-1] != spec.dims[-1]:
        raise ValueError(f"dims must start with 2 inputs and end with {spec.dims[-1]} outputs for "
                         f"task {task!r}; got {list(dims)}")
    return spec, dims


def _fit(trainer: str, net: NeuralSheaf, lr: float, epochs: int, optimizer: str, X, Y, X_val, Y_val,
         seed: int, warm_start: bool = True) -> Run:
    extra = {"warm_start": warm_start} if trainer == "sheaf" else {}
    h = TRAINERS[trainer](net, lr=lr, optimizer=optimizer, progress=False, **extra).fit(
        X, Y, epochs=epochs, X_val=X_val, Y_val=Y_val)
    return Run(trainer, seed, lr, float(h.val_loss[-1]), float(h.val_accuracy[-1]),
               float(h.train_loss[-1]), float(h.wall_time[-1]), h.train_loss.copy())


def run_pair(task: str, dims=None, seed: int = 0, lr_sheaf: float = 0.01, lr_sgd: float = 0.01,
             epochs: int = 200, optimizer: str = "adam", warm_start: bool = True) -> Pair:
    """Both trainers on seed ``seed``'s split of ``task`` (300 train, 100 test), full batch, from the
    same He initialisation (``NeuralSheaf.random(dims, seed=seed)`` with the task's head).
    dims: the network (default: the paper's for this task); warm_start: the sheaf trainer's option."""
    spec, dims = _check_task(task, dims)
    Xtr, Ytr, Xte, Yte = task_split(task, seed=seed)
    net = NeuralSheaf.random(list(dims), seed=seed, head=spec.head)
    runs = [_fit(name, net, lr, epochs, optimizer, Xtr, Ytr, Xte, Yte, seed, warm_start)
            for name, lr in (("sheaf", lr_sheaf), ("sgd", lr_sgd))]
    return Pair(*runs)


def tune_lr(task: str, dims=None, trainer: str = "sheaf", grid=(0.003, 0.01, 0.03), epochs: int = 200,
            optimizer: str = "adam", seed: int = 0, n_jobs: int = 1) -> float:
    """The learning rate from ``grid`` with the lowest final validation loss, for one trainer.

    Trained on the first 240 of seed ``seed``'s 300 training examples and validated on the other
    60: the test set is never looked at. n_jobs: joblib workers over the grid (same choice).
    """
    choice(trainer, "trainer", tuple(TRAINERS))
    _, dims = _check_task(task, dims)
    grid = tuple(positive(g, "grid") for g in grid)
    return _tune([(task, dims, trainer, grid, epochs, optimizer, seed)], check_n_jobs(n_jobs))[0]


def _tune(requests, n_jobs: int) -> list:
    """The :func:`tune_lr` choice for each ``(task, dims, trainer, grid, epochs, optimizer, seed)``
    of ``requests``, with every grid run of all of them in one pool of ``n_jobs`` workers (a run
    that two requests share runs once). Raises if every score of a grid is NaN."""
    runs = list(dict.fromkeys((task, dims, trainer, lr, epochs, optimizer, seed)
                              for task, dims, trainer, grid, epochs, optimizer, seed in requests for lr in grid))
    scores = dict(zip(runs, starmap(_validation_loss, runs, n_jobs)))
    return [float(grid[int(np.nanargmin([scores[(task, dims, trainer, lr, epochs, optimizer, seed)]
                                          for lr in grid]))])
            for task, dims, trainer, grid, epochs, optimizer, seed in requests]


def _validation_loss(task, dims, trainer, lr, epochs, optimizer, seed) -> float:
    spec, dims = _check_task(task, dims)
    Xtr, Ytr, _, _ = task_split(task, seed=seed)
    net = NeuralSheaf.random(list(dims), seed=seed, head=spec.head)
    k = (4 * Xtr.shape[0]) // 5
    return _fit(trainer, net, lr, epochs, optimizer, Xtr[:k], Ytr[:k], Xtr[k:], Ytr[k:], seed).test_loss


@dataclass
class Cell:
    """One task, one network, one protocol, over ``seeds``: a :class:`Pair` per seed, the learning
    rates used (``lr_sheaf``, ``lr_sgd``) and whether the sheaf trainer used warm starts."""

    task: str
    dims: tuple
    protocol: str
    lr_sheaf: float
    lr_sgd: float
    epochs: int
    pairs: list
    warm_start: bool = True
    optimizer: str = "adam"

    def values(self, name: str) -> np.ndarray:
        """(seeds,) one :class:`Pair` property per seed, e.g. ``values("loss_ratio")``."""
        return np.array([getattr(p, name) for p in self.pairs], dtype=np.float64)

    def summary(self, name: str, confidence: float = 0.95) -> tuple:
        """``(median, low, high)`` of a per-seed property with its bootstrap interval."""
        return median_ci(self.values(name), confidence)

    def interval(self, name: str, fmt: str = "{:.2f}") -> str:
        """``"median [low, high]"`` of a per-seed property, each number formatted with ``fmt``."""
        med, lo, hi = self.summary(name)
        return f"{fmt.format(med)} [{fmt.format(lo)}, {fmt.format(hi)}]"

    def test_losses(self, trainer: str) -> np.ndarray:
        return np.array([getattr(p, trainer).test_loss for p in self.pairs])

    def test_accuracies(self, trainer: str) -> np.ndarray:
        return np.array([getattr(p, trainer).test_accuracy for p in self.pairs])


def compare(task: str, dims=None, seeds=range(5), protocol: str = "seed", lr: float = 0.01,
            grid=(0.003, 0.01, 0.03), epochs: int = 200, optimizer: str = "adam",
            n_jobs: int = 1, reuse: Cell | None = None, warm_start: bool = True) -> Cell:
    """Run both trainers on every seed of ``seeds`` (at least 2) and collect a :class:`Cell`.

    protocol: ``"seed"`` (both trainers at ``lr``) or ``"tuned"`` (each at its own :func:`tune_lr`
    choice from ``grid``, tuned once on the first seed's validation split).
    n_jobs: joblib workers over the seeds, and over the tuning runs (each pair is still timed within
    one worker).
    reuse: a cell of the same task, network, seeds and epochs; when the learning rates come out the
    same, its pairs are the very runs this cell would repeat, and are taken instead of rerun.
    warm_start: the sheaf trainer's warm starts (:class:`~sheaflab.SheafTrainer`).
    """
    spec = dict(task=task, dims=dims, seeds=seeds, protocol=protocol, lr=lr, grid=grid, epochs=epochs,
                optimizer=optimizer, warm_start=warm_start)
    return compare_many([spec], n_jobs=n_jobs, done=[reuse] if reuse is not None else ())[0]


def compare_many(specs, n_jobs: int = 1, done=()) -> list:
    """:func:`compare` for each dict of keyword arguments in ``specs`` (all but ``n_jobs`` and
    ``reuse``), with the runs of all of them in one pool of ``n_jobs`` joblib workers: first every
    tuning run, then every pair, so that no worker waits for the end of one cell to start the next.

    A pair that two cells would both run (the same task, network, seed, learning rates, epochs,
    optimizer and warm starts: a tuned cell whose rates come out as the other protocol's) runs once,
    and so does a pair already in one of the cells of ``done``. Returns one :class:`Cell` per spec.
    """
    n_jobs = check_n_jobs(n_jobs)
    plans = [_plan(**spec) for spec in specs]
    tuned = [p for p in plans if p.protocol == "tuned"]
    chosen = iter(_tune([(p.task, p.dims, trainer, p.grid, p.epochs, p.optimizer, p.seeds[0])
                         for p in tuned for trainer in ("sheaf", "sgd")], n_jobs))
    rates = [(next(chosen), next(chosen)) if p.protocol == "tuned" else (p.lr, p.lr) for p in plans]
    known = {(c.task, c.dims, pair.sheaf.seed, c.lr_sheaf, c.lr_sgd, c.epochs, c.optimizer, c.warm_start): pair
             for c in done for pair in c.pairs}
    wanted = [[(p.task, p.dims, s, lr_sheaf, lr_sgd, p.epochs, p.optimizer, p.warm_start) for s in p.seeds]
              for p, (lr_sheaf, lr_sgd) in zip(plans, rates)]
    todo = list(dict.fromkeys(a for args in wanted for a in args if a not in known))
    known.update(zip(todo, starmap(run_pair, todo, n_jobs)))
    return [Cell(p.task, p.dims, p.protocol, lr_sheaf, lr_sgd, p.epochs, [known[a] for a in args],
                 p.warm_start, p.optimizer)
            for p, (lr_sheaf, lr_sgd), args in zip(plans, rates, wanted)]


class _Plan(NamedTuple):
    task: str
    dims: tuple
    seeds: list
    protocol: str
    lr: float
    grid: tuple
    epochs: int
    optimizer: str
    warm_start: bool


def _plan(task: str, dims=None, seeds=range(5), protocol: str = "seed", lr: float = 0.01,
          grid=(0.003, 0.01, 0.03), epochs: int = 200, optimizer: str = "adam",
          warm_start: bool = True) -> _Plan:
    """One cell's arguments, checked, with the defaults of :func:`compare`."""
    _, dims = _check_task(task, dims)
    choice(protocol, "protocol", PROTOCOLS)
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold at least 2 seeds for an interval; got {seeds}")
    return _Plan(task, dims, seeds, protocol, positive(lr, "lr"), tuple(positive(g, "grid") for g in grid),
                 positive(epochs, "epochs", integer=True), optimizer, bool(warm_start))


def median_ci(values, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple:
    """``(median, low, high)``: the median of ``values`` (NaNs dropped) and a percentile bootstrap
    interval at ``confidence`` from ``scipy.stats.bootstrap``."""
    from scipy.stats import bootstrap
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 finite numbers for an interval; got {v.size}")
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0]), float(v[0])
    res = bootstrap((v,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=np.random.default_rng(seed))
    return float(np.median(v)), float(res.confidence_interval.low), float(res.confidence_interval.high)
