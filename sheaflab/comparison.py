"""The sheaf trainer against SGD on the paper's four tasks: seeds, two protocols, ranges and intervals.

This is the evidence behind the book's test of the source's honest-comparison remark (Remark 9):
"matches SGD in final test loss on small networks", "requires more wall-clock time", "on larger
networks or harder tasks, the gap widens".

* :func:`run_pair` trains both trainers from one initialisation on one seed's split of a task
  (:func:`sheaflab.datasets.task_split`), full batch, and returns a :class:`Pair` of :class:`Run`.
* :func:`tune` / :func:`tune_lr` pick a trainer's learning rate from a grid on validation splits of
  *tuning seeds* (disjoint from the seeds a cell reports), and check that the choice is interior to
  the grid: an optimum at an end of the grid says the grid is too narrow, and is an error (or a
  flag, or a reason to widen the grid, see ``edge``).
* :func:`compare` runs a :class:`Cell` (one task, one network, one protocol) over several seeds, and
  :func:`compare_many` runs many cells with all their runs in one worker pool:
  ``protocol="seed"`` gives both trainers the same learning rate (the source's protocol);
  ``protocol="tuned"`` gives each the rate :func:`tune` chose for it on the tuning seeds (a
  fair-tuning protocol).
* :func:`median_ci` is the median of per-seed values with a percentile bootstrap interval
  (``scipy.stats.bootstrap``); it refuses fewer than :data:`MIN_INTERVAL_SEEDS` values, because with
  few seeds the percentile interval of a median is the range of the seeds (with 5 seeds it is exactly
  min to max, whose coverage is ``1 - 2 / 2**5 = 93.75%``, not 95%). :func:`median_range` is the
  median with the min and max, and :meth:`Cell.summary` / :meth:`Cell.interval` give the interval
  when a cell has enough seeds and the range, labelled as one, when it has not.
* :func:`epoch_time_ratio` is the one definition of "an epoch of the sheaf trainer costs so many
  epochs of SGD" that every page reads.

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
from .train import TRAINERS, SheafTrainer, TrainingDiverged, epochs_to

PROTOCOLS = ("seed", "tuned")
#: the fewest finite per-seed values for which :func:`median_ci` computes a 95% bootstrap interval
MIN_INTERVAL_SEEDS = 20
#: the starting tuning grid of :func:`compare` and :func:`tune_lr`; :func:`tune` checks every time
#: that the choice is interior (and :func:`compare` widens the grid until it is)
GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: the tuning seeds of :func:`compare` (disjoint from its default reported seeds)
TUNE_SEEDS = (1000, 1001)
EDGES = ("raise", "flag", "widen")


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
        return epochs_to(self.curve, target)

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


@dataclass(frozen=True)
class Tuning:
    """One trainer's learning-rate search: the ``grid`` searched (ascending, after any widening),
    ``scores`` (the mean final validation loss over the tuning ``seeds`` at each rate; ``inf`` where
    a run diverged), the chosen ``lr`` and whether it is ``interior`` to the grid (not its smallest
    or largest rate). An optimum at an end of the grid only says that the best rate may lie beyond it."""

    task: str
    dims: tuple
    trainer: str
    grid: tuple
    scores: tuple
    lr: float
    seeds: tuple
    interior: bool

    def __str__(self) -> str:
        where = "interior" if self.interior else "AT THE EDGE of"
        return (f"{self.trainer} on {self.task} {list(self.dims)}: lr {self.lr:g}, {where} the grid "
                f"{{{', '.join(f'{g:g}' for g in self.grid)}}} (tuning seeds {list(self.seeds)})")


def _check_grid(grid) -> tuple:
    try:
        grid = tuple(sorted(dict.fromkeys(positive(g, "grid") for g in grid)))
    except TypeError:
        raise TypeError(f"grid must be a sequence of positive learning rates; got {grid!r}") from None
    if not grid:
        raise ValueError("grid must hold at least one learning rate")
    return grid


def _check_tune_seeds(tune_seeds, seeds=()) -> tuple:
    try:
        tune_seeds = tuple(int(s) for s in tune_seeds)
    except TypeError:
        raise TypeError(f"tune_seeds must be a sequence of integer seeds; got {tune_seeds!r}") from None
    if not tune_seeds:
        raise ValueError("tune_seeds must hold at least one seed")
    shared = sorted(set(tune_seeds) & set(seeds))
    if shared:
        raise ValueError(f"tune_seeds must be disjoint from seeds (tune on some seeds, report on "
                         f"others); both hold {shared}")
    return tune_seeds


def tune(task: str, dims=None, trainer: str = "sheaf", grid=GRID, epochs: int = 200,
         optimizer: str = "adam", seeds=TUNE_SEEDS, edge: str = "raise", max_widen: int = 4,
         n_jobs: int = 1) -> Tuning:
    """One trainer's learning-rate search on ``task``: a :class:`Tuning`.

    Each rate of ``grid`` trains the network on the first 240 of each tuning seed's 300 training
    examples (``task_split(task, seed)``, ``NeuralSheaf.random(dims, seed=seed)``) and scores the
    final loss on the other 60, averaged over ``seeds``; a run that diverges scores ``inf``. The test
    sets are never looked at. The lowest mean score wins.

    edge: what to do when the winner is the smallest or the largest rate of the grid:
    ``"raise"`` a ValueError, ``"flag"`` (return it with ``interior=False``), or ``"widen"`` the grid
    by one geometric step at that end and search again, at most ``max_widen`` times (then raise).
    n_jobs: joblib workers over the grid's runs (the same choice whatever the number).
    """
    return _tune([_request(task, dims, trainer, grid, epochs, optimizer, seeds)], n_jobs=n_jobs,
                 edge=edge, max_widen=max_widen)[0]


def tune_lr(task: str, dims=None, trainer: str = "sheaf", grid=GRID, epochs: int = 200,
            optimizer: str = "adam", seed=None, n_jobs: int = 1, seeds=TUNE_SEEDS,
            edge: str = "raise") -> float:
    """The learning rate :func:`tune` chooses (its ``Tuning.lr``).

    seed: a single tuning seed (kept for older calls; overrides ``seeds``). edge: as in
    :func:`tune`; by default a choice at an end of the grid raises a ValueError naming the grid.
    """
    return tune(task, dims, trainer, grid, epochs, optimizer, (seed,) if seed is not None else seeds,
                edge=edge, n_jobs=n_jobs).lr


def _request(task, dims, trainer, grid, epochs, optimizer, seeds) -> tuple:
    choice(trainer, "trainer", tuple(TRAINERS))
    _, dims = _check_task(task, dims)
    return (task, dims, trainer, _check_grid(grid), positive(epochs, "epochs", integer=True), optimizer,
            _check_tune_seeds(seeds))


def _widened(grid: tuple, low: bool) -> tuple:
    if len(grid) == 1:
        return (grid[0] / 3, grid[0]) if low else (grid[0], grid[0] * 3)
    return (grid[0] ** 2 / grid[1],) + grid if low else grid + (grid[-1] ** 2 / grid[-2],)


def _tune(requests, n_jobs: int, edge: str = "raise", max_widen: int = 4) -> list:
    """A :class:`Tuning` for each ``(task, dims, trainer, grid, epochs, optimizer, seeds)`` of
    ``requests``, with every grid run of all of them in one pool of ``n_jobs`` workers (a run that
    two requests share runs once; a widening round runs only the new rates)."""
    n_jobs = check_n_jobs(n_jobs)
    choice(edge, "edge", EDGES)
    requests = [(task, tuple(dims), trainer, _check_grid(grid), epochs, optimizer, tuple(seeds))
                for task, dims, trainer, grid, epochs, optimizer, seeds in requests]
    scores: dict = {}
    grids = [r[3] for r in requests]
    out: list = [None] * len(requests)
    for round_ in range(max_widen + 1):
        runs = list(dict.fromkeys((task, dims, trainer, lr, epochs, optimizer, s)
                                  for (task, dims, trainer, _, epochs, optimizer, seeds), grid, done
                                  in zip(requests, grids, out) if done is None
                                  for lr in grid for s in seeds))
        runs = [r for r in runs if r not in scores]
        scores.update(zip(runs, starmap(_validation_loss, runs, n_jobs)))
        for i, ((task, dims, trainer, _, epochs, optimizer, seeds), grid) in enumerate(zip(requests, grids)):
            if out[i] is not None:
                continue
            mean = np.array([np.mean([scores[(task, dims, trainer, lr, epochs, optimizer, s)] for s in seeds])
                             for lr in grid])
            if not np.isfinite(mean).any():
                raise ValueError(f"every rate of the grid {grid} diverged for the {trainer} trainer on "
                                 f"{task} {list(dims)}: lower the grid")
            k = int(np.argmin(mean))
            interior = 0 < k < len(grid) - 1
            t = Tuning(task, dims, trainer, grid, tuple(float(m) for m in mean), float(grid[k]), seeds, interior)
            if interior or edge == "flag":
                out[i] = t
            elif edge == "widen" and round_ < max_widen:
                grids[i] = _widened(grid, low=k == 0)
            else:
                hint = (f" after widening it {max_widen} times" if edge == "widen" else
                        "; widen the grid (or pass edge='widen' or edge='flag')")
                raise ValueError(f"grid: the best learning rate is at the edge of the grid{hint}: {t}")
        if all(t is not None for t in out):
            break
    return out


def _validation_loss(task, dims, trainer, lr, epochs, optimizer, seed) -> float:
    spec, dims = _check_task(task, dims)
    Xtr, Ytr, _, _ = task_split(task, seed=seed)
    net = NeuralSheaf.random(list(dims), seed=seed, head=spec.head)
    k = (4 * Xtr.shape[0]) // 5
    try:
        loss = _fit(trainer, net, lr, epochs, optimizer, Xtr[:k], Ytr[:k], Xtr[k:], Ytr[k:], seed).test_loss
    except TrainingDiverged:
        return float("inf")
    return loss if np.isfinite(loss) else float("inf")


@dataclass
class Cell:
    """One task, one network, one protocol, over ``seeds``: a :class:`Pair` per seed, the learning
    rates used (``lr_sheaf``, ``lr_sgd``), whether the sheaf trainer used warm starts and, for a
    tuned cell, the two :class:`Tuning` searches behind the rates (``tuning``, keyed by trainer;
    empty for the source's protocol)."""

    task: str
    dims: tuple
    protocol: str
    lr_sheaf: float
    lr_sgd: float
    epochs: int
    pairs: list
    warm_start: bool = True
    optimizer: str = "adam"
    tuning: dict = field(default_factory=dict)

    @property
    def seeds(self) -> list:
        return [p.sheaf.seed for p in self.pairs]

    def values(self, name: str) -> np.ndarray:
        """(seeds,) one :class:`Pair` property per seed, e.g. ``values("loss_ratio")``."""
        return np.array([getattr(p, name) for p in self.pairs], dtype=np.float64)

    def has_interval(self, name: str) -> bool:
        """Whether ``name`` has enough finite per-seed values (:data:`MIN_INTERVAL_SEEDS`) for
        :meth:`summary` to give a bootstrap interval rather than the range."""
        return int(np.isfinite(self.values(name)).sum()) >= MIN_INTERVAL_SEEDS

    def summary(self, name: str, confidence: float = 0.95) -> tuple:
        """``(median, low, high)`` of a per-seed property: ``low, high`` is the percentile bootstrap
        interval of the median (:func:`median_ci`) when the cell has at least
        :data:`MIN_INTERVAL_SEEDS` finite values, and the range, min and max over the seeds
        (:func:`median_range`), when it has fewer (see :meth:`has_interval`)."""
        if self.has_interval(name):
            return median_ci(self.values(name), confidence)
        return median_range(self.values(name))

    def range(self, name: str) -> tuple:
        """``(median, min, max)`` of a per-seed property over the cell's seeds (NaNs dropped)."""
        return median_range(self.values(name))

    def interval(self, name: str, fmt: str = "{:.2f}") -> str:
        """The median of a per-seed property with its spread, each number formatted with ``fmt``:
        ``"median [low, high]"`` with the 95% bootstrap interval when the cell has enough seeds for
        one (:meth:`has_interval`), else ``"median (low to high)"``, the range over the seeds (a
        range is never printed as an interval)."""
        med, lo, hi = self.summary(name)
        if self.has_interval(name):
            return f"{fmt.format(med)} [{fmt.format(lo)}, {fmt.format(hi)}]"
        return f"{fmt.format(med)} ({fmt.format(lo)} to {fmt.format(hi)})"

    def test_losses(self, trainer: str) -> np.ndarray:
        return np.array([getattr(p, trainer).test_loss for p in self.pairs])

    def test_accuracies(self, trainer: str) -> np.ndarray:
        return np.array([getattr(p, trainer).test_accuracy for p in self.pairs])

    def reached(self, target: float, trainer: str = "sheaf") -> "Reached":
        """How many of the cell's seeds brought ``trainer``'s training loss (the head's loss) to
        ``target`` or below within the cell's epochs, and the median seconds and epochs to it over
        those seeds only (NaN when none did): a :class:`Reached`."""
        choice(trainer, "trainer", tuple(TRAINERS))
        target = positive(target, "target")
        runs = [getattr(p, trainer) for p in self.pairs]
        secs = [r.seconds_to(target) for r in runs]
        eps = [r.epochs_to(target) for r in runs]
        hit = [s for s in secs if s is not None]
        return Reached(len(hit), len(runs), float(np.median(hit)) if hit else float("nan"),
                       float(np.median([e for e in eps if e is not None])) if hit else float("nan"))


class Reached(NamedTuple):
    """``k`` of ``n`` seeds reached a target; ``seconds`` and ``epochs``: medians over those ``k``."""

    k: int
    n: int
    seconds: float
    epochs: float

    def __str__(self) -> str:
        return f"{self.k} of {self.n} seeds reached it"


def compare(task: str, dims=None, seeds=range(5), protocol: str = "seed", lr: float = 0.01,
            grid=GRID, epochs: int = 200, optimizer: str = "adam",
            n_jobs: int = 1, reuse: Cell | None = None, warm_start: bool = True,
            tune_seeds=TUNE_SEEDS, tune_epochs: int | None = None, edge: str = "widen") -> Cell:
    """Run both trainers on every seed of ``seeds`` (at least 2) and collect a :class:`Cell`.

    protocol: ``"seed"`` (both trainers at ``lr``) or ``"tuned"`` (each at its own :func:`tune`
    choice from ``grid``, on the validation splits of ``tune_seeds``, which must be disjoint from
    ``seeds``; ``tune_epochs`` epochs per tuning run, default ``epochs``; ``edge`` as in
    :func:`tune`, here widening the grid until both choices are interior).
    n_jobs: joblib workers over the seeds, and over the tuning runs (each pair is still timed within
    one worker).
    reuse: a cell of the same task, network, seeds and epochs; when the learning rates come out the
    same, its pairs are the very runs this cell would repeat, and are taken instead of rerun.
    warm_start: the sheaf trainer's warm starts (:class:`~sheaflab.SheafTrainer`).
    """
    spec = dict(task=task, dims=dims, seeds=seeds, protocol=protocol, lr=lr, grid=grid, epochs=epochs,
                optimizer=optimizer, warm_start=warm_start, tune_seeds=tune_seeds, tune_epochs=tune_epochs)
    return compare_many([spec], n_jobs=n_jobs, done=[reuse] if reuse is not None else (), edge=edge)[0]


def compare_many(specs, n_jobs: int = 1, done=(), edge: str = "widen") -> list:
    """:func:`compare` for each dict of keyword arguments in ``specs`` (all but ``n_jobs``,
    ``reuse`` and ``edge``), with the runs of all of them in one pool of ``n_jobs`` joblib workers:
    first every tuning run, then every pair, so that no worker waits for the end of one cell to
    start the next.

    A pair that two cells would both run (the same task, network, seed, learning rates, epochs,
    optimizer and warm starts: a tuned cell whose rates come out as the other protocol's) runs once,
    and so does a pair already in one of the cells of ``done``. Returns one :class:`Cell` per spec.
    edge: what a tuned cell does with a choice at an end of its grid (:func:`tune`).
    """
    n_jobs = check_n_jobs(n_jobs)
    plans = [_plan(**spec) for spec in specs]
    tuned = [p for p in plans if p.protocol == "tuned"]
    chosen = iter(_tune([(p.task, p.dims, trainer, p.grid, p.tune_epochs, p.optimizer, p.tune_seeds)
                         for p in tuned for trainer in ("sheaf", "sgd")], n_jobs, edge=edge))
    tunings = [{"sheaf": next(chosen), "sgd": next(chosen)} if p.protocol == "tuned" else {} for p in plans]
    rates = [(t["sheaf"].lr, t["sgd"].lr) if t else (p.lr, p.lr) for p, t in zip(plans, tunings)]
    known = {(c.task, c.dims, pair.sheaf.seed, c.lr_sheaf, c.lr_sgd, c.epochs, c.optimizer, c.warm_start): pair
             for c in done for pair in c.pairs}
    wanted = [[(p.task, p.dims, s, lr_sheaf, lr_sgd, p.epochs, p.optimizer, p.warm_start) for s in p.seeds]
              for p, (lr_sheaf, lr_sgd) in zip(plans, rates)]
    todo = list(dict.fromkeys(a for args in wanted for a in args if a not in known))
    known.update(zip(todo, starmap(run_pair, todo, n_jobs)))
    return [Cell(p.task, p.dims, p.protocol, lr_sheaf, lr_sgd, p.epochs, [known[a] for a in args],
                 p.warm_start, p.optimizer, t)
            for p, (lr_sheaf, lr_sgd), args, t in zip(plans, rates, wanted, tunings)]


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
    tune_seeds: tuple
    tune_epochs: int


def _plan(task: str, dims=None, seeds=range(5), protocol: str = "seed", lr: float = 0.01,
          grid=GRID, epochs: int = 200, optimizer: str = "adam",
          warm_start: bool = True, tune_seeds=TUNE_SEEDS, tune_epochs: int | None = None) -> _Plan:
    """One cell's arguments, checked, with the defaults of :func:`compare`."""
    _, dims = _check_task(task, dims)
    choice(protocol, "protocol", PROTOCOLS)
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold at least 2 seeds for a spread; got {seeds}")
    epochs = positive(epochs, "epochs", integer=True)
    tune_epochs = epochs if tune_epochs is None else positive(tune_epochs, "tune_epochs", integer=True)
    tune_seeds = _check_tune_seeds(tune_seeds, seeds if protocol == "tuned" else ())
    return _Plan(task, dims, seeds, protocol, positive(lr, "lr"), _check_grid(grid),
                 epochs, optimizer, bool(warm_start), tune_seeds, tune_epochs)


def median_range(values) -> tuple:
    """``(median, min, max)`` of ``values`` (NaNs dropped): the median and the range over the seeds.
    Not an interval: with ``n`` seeds the range covers the true median with probability
    ``1 - 2 / 2**n`` (for a continuous distribution), whatever confidence one would like."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 1:
        raise ValueError("values must hold at least 1 finite number")
    return float(np.median(v)), float(v.min()), float(v.max())


def median_ci(values, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
              min_n: int = MIN_INTERVAL_SEEDS) -> tuple:
    """``(median, low, high)``: the median of ``values`` (NaNs dropped) and a percentile bootstrap
    interval at ``confidence`` from ``scipy.stats.bootstrap``.

    Raises a ValueError with fewer than ``min_n`` finite values (default
    :data:`MIN_INTERVAL_SEEDS`): with ``n`` values every bootstrap median is one of the middle
    order statistics, and for small ``n`` the 2.5% and 97.5% percentiles are the extremes, so the
    "interval" is the min-max range with coverage ``1 - 2 / 2**n`` (93.75% for 5 seeds). Use
    :func:`median_range` and call it a range.
    """
    from scipy.stats import bootstrap
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    min_n = max(2, positive(min_n, "min_n", integer=True))
    if v.size < min_n:
        raise ValueError(f"values must hold at least {min_n} finite numbers for a bootstrap interval "
                         f"(got {v.size}); with fewer, report the range (median_range)")
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0]), float(v[0])
    res = bootstrap((v,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=np.random.default_rng(seed))
    return float(np.median(v)), float(res.confidence_interval.low), float(res.confidence_interval.high)


def epoch_time_ratio(sheaf_history, sgd_history) -> float:
    """Seconds per epoch of the sheaf trainer over seconds per epoch of SGD, from two
    :class:`~sheaflab.train.History` of the same run length: the ratio of the *median* per-epoch
    seconds (``np.diff`` of ``wall_time``, the first epoch included), which a few epochs slowed by
    another process on the machine do not move. Each epoch's seconds are what ``fit`` counts: the
    training pass (fast phase and slow step, or forward and backward pass) and the epoch's evaluation
    on the training set and on ``X_val`` if given (the same cost for both trainers).

    This is the one definition of "an epoch of the sheaf trainer costs so many epochs of SGD" on
    every page: compute it once, on one pair of runs, and let other pages read that number.
    """
    def per_epoch(h, name):
        t = np.asarray(getattr(h, "wall_time", None), dtype=np.float64)
        if t.ndim != 1 or t.size < 1:
            raise ValueError(f"{name} must be a History with at least one epoch")
        return float(np.median(np.diff(t, prepend=0.0)))
    return per_epoch(sheaf_history, "sheaf_history") / per_epoch(sgd_history, "sgd_history")


def _seconds_to(task, dims, target, seed, lr, max_epochs, chunk, optimizer):
    spec, dims = _check_task(task, dims)
    Xtr, Ytr, _, _ = task_split(task, seed=seed)
    tr = SheafTrainer(NeuralSheaf.random(list(dims), seed=seed, head=spec.head), lr=lr,
                      optimizer=optimizer, progress=False)
    while tr.history.epochs < max_epochs and tr.history.epochs_to(target, "train_loss") is None:
        tr.fit(Xtr, Ytr, epochs=min(chunk, max_epochs - tr.history.epochs))
    k = tr.history.epochs_to(target, "train_loss")
    return (None, None) if k is None else (float(tr.history.wall_time[k - 1]), k)


def reach(task: str, target: float, dims=None, seeds=range(5), lr: float = 0.01, max_epochs: int = 400,
          chunk: int = 50, optimizer: str = "adam", n_jobs: int = 1) -> Reached:
    """How many of ``seeds`` bring the sheaf trainer's training loss (the head's loss) on ``task``
    to ``target`` within ``max_epochs`` (trained in chunks of ``chunk`` epochs, stopped at the first
    chunk that reaches it), with the median seconds (``fit``'s clock up to the first epoch at or
    below ``target``) and epochs over the seeds that did: a :class:`Reached`. n_jobs: workers over
    the seeds (each run is timed within one worker)."""
    target = positive(target, "target")
    _, dims = _check_task(task, dims)
    args = [(task, dims, target, int(s), positive(lr, "lr"), positive(max_epochs, "max_epochs", integer=True),
             positive(chunk, "chunk", integer=True), optimizer) for s in seeds]
    if not args:
        raise ValueError("seeds must hold at least one seed")
    got = [r for r in starmap(_seconds_to, args, check_n_jobs(n_jobs)) if r[0] is not None]
    return Reached(len(got), len(args), float(np.median([s for s, _ in got])) if got else float("nan"),
                   float(np.median([k for _, k in got])) if got else float("nan"))
