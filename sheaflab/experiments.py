"""Every simulation or study a figure of the book shows, in one place (no plotting here).

The book, the labs and the widgets call these; :mod:`sheaflab.figures` and :mod:`sheaflab.widgets`
only draw their results.

* :func:`motivating_problem` is the chapter's running example (:class:`Problem`), for a seed, and
  :func:`train_both` trains the sheaf trainer and SGD on it from one initialisation;
* :func:`fit_until` trains until a target MSE (or a cap) and returns the epoch count;
* :func:`slowdown_study` (with steps from :func:`calibrated_lr`) sets the epoch-count slowdown of Algorithm 4 against the
  ``1 / lambda_min(L_free)`` prediction of Conjecture 5 (the source's rate heuristic), across
  configurations (:class:`SlowdownRow`); :func:`sheaflab.closed_form.first_step_ratio` is a model-free candidate for it;
* :func:`convergence_rate`, :func:`rate_vs_n_train` (:class:`RateRow`) and :func:`fit_inverse_n`
  extract the exponential rate of a loss curve and test the ``beta ~ 1 / n_train`` scaling;
* :func:`step_costs` measures what one training step costs, phase by phase, for both trainers
  (:class:`StepCosts`);
* :func:`joint_run` (:class:`JointRun`) and :func:`algorithm_run` (:class:`AlgorithmRun`) are the
  simulations behind the dual time-axis diagram.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._alloc import tune_allocator
from ._checks import instance, positive
from .backprop import backprop_sums
from .datasets import paraboloid
from .joint import JointFlow
from .local_rule import local_sums
from .measure import best_time, fit_line
from .optim import make_optimizer
from .parallel import starmap
from .rescaling import rescaled
from .sheaf import NeuralSheaf
from .solve import equilibrium
from .timescales import Timescales, equilibrium_gaps
from .train import TRAINERS, SGDTrainer, SheafTrainer, TrainingDiverged


class Problem(NamedTuple):
    """A regression problem and a starting network: ``X`` (N, 2), ``Y`` (N, 1) for training,
    ``X_test`` (N_test, 2), ``Y_test`` (N_test, 1), and the He-initialised ``init``."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    init: NeuralSheaf


def motivating_problem(seed: int = 0, n_train: int = 200, n_test: int = 1000) -> Problem:
    """The chapter's running example for ``seed``: the paraboloid with noise 0.02 on [-2, 2]^2,
    ``n_train`` training points drawn with data seed ``2 seed``, ``n_test`` test points with
    ``2 seed + 1``, and the ``[2, 30, 1]`` network with He initialisation seed ``seed``.
    Seed 0 is the run of the chapter's motivating example; the other seeds repeat it."""
    seed = positive(seed, "seed", integer=True, allow_zero=True)
    X, Y = paraboloid(positive(n_train, "n_train", integer=True), noise=0.02, seed=2 * seed)
    X_test, Y_test = paraboloid(positive(n_test, "n_test", integer=True), noise=0.02, seed=2 * seed + 1)
    return Problem(X, Y, X_test, Y_test, NeuralSheaf.random([2, 30, 1], seed=seed))


def train_both(init: NeuralSheaf, X, Y, optimizer: str, epochs: int, lr: float = 0.01, seed: int = 0,
               X_val=None, Y_val=None) -> dict:
    """Both trainers from the same initialisation ``init``, full batch, the same ``optimizer``
    (``"sgd"`` or ``"adam"``) and step ``lr``, for ``epochs`` epochs: ``{"sheaf": History,
    "sgd": History}`` (the sheaf trainer with its default exact fast phase)."""
    return {name: Trainer(init, lr=lr, optimizer=optimizer, seed=seed, progress=False)
            .fit(X, Y, epochs=epochs, X_val=X_val, Y_val=Y_val)
            for name, Trainer in (("sheaf", SheafTrainer), ("sgd", SGDTrainer))}


def fit_until(trainer, X, Y, target: float, max_epochs: int, chunk: int = 100) -> int | None:
    """Train in chunks of ``chunk`` epochs until the training MSE reaches ``target``.

    Returns the first epoch (1-based, counted over the trainer's whole history) at which the MSE was
    at or below ``target``, or None if ``max_epochs`` more epochs were not enough.
    """
    target = positive(target, "target")
    max_epochs = positive(max_epochs, "max_epochs", integer=True)
    done = 0
    while done < max_epochs:
        k = min(chunk, max_epochs - done)
        trainer.fit(X, Y, epochs=k, progress=False)
        done += k
        hit = trainer.history.epochs_to(target)
        if hit is not None:
            return hit
    return None


# ---------------------------------------------------------------------------------- slowdown
@dataclass
class SlowdownRow:
    """One configuration of :func:`slowdown_study`, with the problem it was measured on.

    dims, scale, n_train, seed: the configuration; sheaf: the initial network (He init with that
    ``scale`` and ``seed``); X (n_train, 2), Y (n_train, 1): the paraboloid training set;
    inv_lambda_min: the predicted slowdown, mean over the examples of ``1 / lambda_min(L_free)`` at the
    initial two-sided equilibria; mse0: initial training MSE; target: the MSE both trainers aim at;
    sgd_epochs, sheaf_epochs: epochs to reach it (None if not within ``max_epochs``);
    ratio: ``sheaf_epochs / sgd_epochs`` (None if either did not reach it); lr: the step both used.
    """

    dims: list
    scale: float
    n_train: int
    seed: int
    sheaf: NeuralSheaf
    X: np.ndarray
    Y: np.ndarray
    inv_lambda_min: float
    mse0: float
    target: float
    sgd_epochs: int | None
    sheaf_epochs: int | None
    ratio: float | None
    lr: float = 0.01


def calibrated_lr(sheaf: NeuralSheaf, X, Y, target: float, sgd_epochs: int = 30, lr: float = 0.01,
                  rounds: int = 10) -> float:
    """A plain-gradient-descent step at which SGD, from ``sheaf``, reaches the training MSE ``target``
    in about ``sgd_epochs`` epochs (from 2/3 to 4/3 of it).

    Starting from ``lr``, each round trains SGD to the target and rescales the step by (epochs
    taken / ``sgd_epochs``): with a small step the epoch count is inversely proportional to it. A
    run that diverges quarters the step, one that needs more than ten times ``sgd_epochs`` grows it
    tenfold. Returns the step of the round that came closest (in log epochs) if none lands in the
    window within ``rounds`` rounds. X: (B, n_0), Y: (B, n_L).
    """
    target = positive(target, "target")
    sgd_epochs = positive(sgd_epochs, "sgd_epochs", integer=True)
    lr = positive(lr, "lr")
    best = None
    for _ in range(positive(rounds, "rounds", integer=True)):
        try:
            hit = fit_until(SGDTrainer(sheaf, lr=lr, optimizer="sgd", progress=False), X, Y, target,
                            max_epochs=10 * sgd_epochs)
        except TrainingDiverged:
            lr *= 0.25
            continue
        if hit is None:
            lr *= 10.0
            continue
        miss = abs(math.log(hit / sgd_epochs))
        if best is None or miss < best[0]:
            best = (miss, lr)
        if 2 * sgd_epochs <= 3 * hit <= 4 * sgd_epochs:
            return lr
        lr *= hit / sgd_epochs
    if best is None:
        raise RuntimeError(f"no step reached the target MSE {target:g} with SGD in {rounds} rounds")
    return best[1]


def slowdown_study(configs, lr: float = 0.01, target_fraction: float = 0.25,
                   max_epochs: int = 6000, noise: float = 0.02, sgd_epochs: int | None = None,
                   n_jobs: int = 1) -> list:
    """Epochs to a common target for plain gradient descent, sheaf trainer vs SGD, per configuration.

    configs : list of dicts with keys ``dims`` (e.g. [2, 30, 1]), ``scale`` (He-init std multiplier,
        default 1), ``n_train`` (paraboloid points, default 200), ``seed`` (default 0) and ``lr``
        (default: the ``lr`` argument), so that each configuration can get a step at which both
        trainers need many epochs.
    Both trainers start from the same weights, run full batch with ``optimizer="sgd"`` and the same
    step, and stop at ``target_fraction`` times the initial training MSE.
    sgd_epochs: if given, the step of every configuration without its own ``lr`` is
    :func:`calibrated_lr`, the one at which SGD needs about that many epochs (a step tuned for one
    seed can give another seed a thousand epochs or two).
    n_jobs: joblib workers over the configurations (the epoch counts do not depend on it).
    Returns one :class:`SlowdownRow` per configuration, in the order of ``configs``.
    """
    return starmap(_slowdown_row, [(cfg, lr, target_fraction, max_epochs, noise, sgd_epochs) for cfg in configs],
                   n_jobs)


def _slowdown_row(cfg, lr, target_fraction, max_epochs, noise, sgd_epochs) -> SlowdownRow:
    dims = list(cfg["dims"])
    scale, n, seed = cfg.get("scale", 1.0), cfg.get("n_train", 200), cfg.get("seed", 0)
    X, Y = paraboloid(n, noise=noise, seed=seed)
    sheaf = NeuralSheaf.random(dims, seed=seed, scale=scale)
    mse0 = sheaf.mse(X, Y)
    target = target_fraction * mse0
    if "lr" in cfg or sgd_epochs is None:
        step = positive(cfg.get("lr", lr), "lr")
    else:
        step = calibrated_lr(sheaf, X, Y, target, sgd_epochs, lr)
    sgd = fit_until(SGDTrainer(sheaf, lr=step, optimizer="sgd", seed=seed), X, Y, target, max_epochs)
    sh = fit_until(SheafTrainer(sheaf, lr=step, optimizer="sgd", seed=seed), X, Y, target, max_epochs)
    return SlowdownRow(dims, scale, n, seed, sheaf, X, Y, float(np.mean(1.0 / equilibrium_gaps(sheaf, X, Y))),
                       mse0, target, sgd, sh, (sh / sgd) if (sh and sgd) else None, step)


# ---------------------------------------------------------------------------------- rates
def convergence_rate(curve, start: float = 0.5, stop: float = 0.1) -> float:
    """Exponential rate ``beta`` of a decreasing loss curve, per epoch.

    Fits ``log(curve[t]) = c - beta t`` by least squares over the epochs where the curve has fallen
    below ``start`` times its first value but not yet below ``stop`` times it (the middle of the
    decay, away from the initial transient and the final plateau). Needs at least 3 such epochs.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or curve.size < 3 or np.any(curve <= 0) or not np.all(np.isfinite(curve)):
        raise ValueError("curve must be a 1-D array of at least 3 positive finite losses")
    lo, hi = stop * curve[0], start * curve[0]
    t = np.arange(curve.size)
    first = np.flatnonzero(curve <= hi)
    if first.size == 0:
        raise ValueError(f"the curve never falls below start={start} times its first value")
    last = np.flatnonzero(curve <= lo)
    end = last[0] if last.size else curve.size
    sel = t[first[0]:end]
    if sel.size < 3:
        raise ValueError("fewer than 3 epochs in the fitting window; lower start or stop")
    slope, _, _ = fit_line(sel, np.log(curve[sel]))
    return float(-slope)


@dataclass
class RateRow:
    """One training-set size of :func:`rate_vs_n_train`, with its problem.

    n_train; rate: per-epoch exponential rate of the training MSE (:func:`convergence_rate`);
    curve: (epochs,) the training MSE after each epoch; sheaf: the initial network;
    X (n_train, 2), Y (n_train, 1): the training set.
    """

    n_train: int
    rate: float
    curve: np.ndarray
    sheaf: NeuralSheaf
    X: np.ndarray
    Y: np.ndarray


def rate_vs_n_train(n_trains=(16, 64, 256, 1024), dims=(2, 30, 1), lr: float = 0.01,
                    optimizer: str = "sgd", epochs: int = 1500, seed: int = 0, noise: float = 0.02,
                    start: float = 0.5, stop: float = 0.1) -> list:
    """Run Algorithm 4 (full batch) for each training-set size and extract its loss curve's rate.

    Returns one :class:`RateRow` per size.
    """
    rows = []
    for n in n_trains:
        X, Y = paraboloid(int(n), noise=noise, seed=seed)
        sheaf = NeuralSheaf.random(list(dims), seed=seed)
        h = SheafTrainer(sheaf, lr=lr, optimizer=optimizer, seed=seed).fit(X, Y, epochs=epochs,
                                                                            progress=False)
        rows.append(RateRow(int(n), convergence_rate(h.train_mse, start, stop), h.train_mse, sheaf, X, Y))
    return rows


def fit_inverse_n(n_trains, rates) -> tuple:
    """Least-squares fit ``rate = c0 + c1 / n``; returns ``(c0, c1, r2)`` with r2 the coefficient of
    determination. A pure ``1 / n`` law has ``c0 = 0``."""
    slope, intercept, r2 = fit_line(1.0 / np.asarray(n_trains, dtype=np.float64), rates)
    return intercept, slope, r2


# ---------------------------------------------------------------------------------- step costs
class PhaseCost(NamedTuple):
    """One phase of a training step: ``count`` times per example per step, ``seconds`` measured
    (best of several repeats) on the whole batch. A named pair: ``count, seconds = cost`` works."""

    count: float
    seconds: float


@dataclass
class StepCosts:
    """What one full-batch training step costs, phase by phase, for both trainers (measured here).

    sgd: {phase: PhaseCost} for forward, backward, update, diagnostics (0: backprop gives none);
    sheaf: {phase: PhaseCost} for fast phase (count: measured region solves per example), local
        gradients (the local rule, in place of a backward pass), update, diagnostics (per-edge
        discords and the residual, read off the equilibrium);
    dims, batch_size, optimizer: the problem it was measured on.
    The two dicts pair their phases by position.
    """

    sgd: dict
    sheaf: dict
    dims: list | None = None
    batch_size: int | None = None
    optimizer: str | None = None

    TRAINERS = tuple(TRAINERS)

    def __post_init__(self):
        for key in self.TRAINERS:
            phases = getattr(self, key)
            if not isinstance(phases, dict) or not phases:
                raise TypeError(f"costs[{key!r}] must be a non-empty dict phase -> (count, seconds)")
            for name, cost in list(phases.items()):
                arr = np.asarray(cost, dtype=np.float64) if isinstance(cost, (tuple, list)) else None
                if arr is None or arr.shape != (2,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                    raise ValueError(f"costs[{key!r}][{name!r}] must be a pair (count, seconds) of "
                                     f"finite non-negative numbers; got {cost!r}")
                phases[name] = PhaseCost(float(arr[0]), float(arr[1]))
        if len(self.sgd) != len(self.sheaf):
            raise ValueError("costs['sgd'] and costs['sheaf'] must list the same number of phases")

    def phases(self, trainer: str) -> dict:
        """The {phase: PhaseCost} of ``trainer`` ("sgd" or "sheaf")."""
        if trainer not in self.TRAINERS:
            raise ValueError(f"trainer must be 'sgd' or 'sheaf'; got {trainer!r}")
        return self.sgd if trainer == "sgd" else self.sheaf

    def total(self, trainer: str) -> float:
        """Measured seconds of one whole step of ``trainer``."""
        return sum(p.seconds for p in self.phases(trainer).values())


def step_costs(sheaf: NeuralSheaf, X, Y, optimizer: str = "adam", repeats: int = 30) -> StepCosts:
    """Measure one full-batch training step of both trainers, phase by phase: a :class:`StepCosts`.

    Each phase is timed alone, best of ``repeats``, on the same batch X (B, n_0), Y (B, n_L).
    """
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    tune_allocator()
    params = [p.copy() for p in sheaf.parameters]

    t_fwd = best_time(lambda: sheaf.forward_cochain(X, check=False), repeats)
    t_fb = best_time(lambda: backprop_sums(sheaf, X, Y), repeats)
    _, gW, gb, _ = backprop_sums(sheaf, X, Y)
    opt = make_optimizer(optimizer, 1e-12)          # a tiny step: the weights barely move
    t_upd = best_time(lambda: opt.step(params, gW + gb), repeats)
    eq = equilibrium(sheaf, X, Y)
    t_fast = best_time(lambda: equilibrium(sheaf, X, Y), repeats)
    t_local = best_time(lambda: local_sums(sheaf, eq.cochain, eq.discord), repeats)
    t_diag = best_time(lambda: (eq.discord.norms().mean(axis=0), eq.energy.mean()), repeats)
    return StepCosts(
        sgd={"forward": PhaseCost(1.0, t_fwd), "backward": PhaseCost(1.0, max(t_fb - t_fwd, 0.0)),
             "update": PhaseCost(1.0, t_upd), "diagnostics": PhaseCost(0.0, 0.0)},
        sheaf={"fast phase": PhaseCost(float(eq.iterations.mean()), t_fast),
               "local gradients": PhaseCost(1.0, t_local), "update": PhaseCost(1.0, t_upd),
               "diagnostics": PhaseCost(1.0, t_diag)},
        dims=sheaf.dims, batch_size=X.shape[0], optimizer=optimizer)


# ---------------------------------------------------------------------------------- timescales
@dataclass
class JointRun:
    """One joint-flow run, recorded at log-spaced steps (the dual time-axis diagram's top panel).

    eps: timescale ratio ``eta_theta / eta_c``; eta_c, eta_theta: step sizes (time units per step);
    step: (k,) recorded step numbers, ``step[0] = 0``; energy: (k, B) per-example energy of the
    current cochain; energy_eq: (k, B) per-example equilibrium energy ``R`` of the current weights
    (direct solve); train_mse: (k,) forward-pass MSE; weight_change: (k,) ``||theta - theta_0||``;
    examples: indices of the examples drawn individually; tau_fast: ``1/lambda_min`` (mean over the
    examples at theta_0), in fast-time units; tau_slow: ``||theta_0|| / ||grad R(theta_0)||`` in slow-time units.
    """

    eps: float
    eta_c: float
    eta_theta: float
    step: np.ndarray
    energy: np.ndarray
    energy_eq: np.ndarray
    train_mse: np.ndarray
    weight_change: np.ndarray
    examples: np.ndarray
    tau_fast: float
    tau_slow: float


@dataclass
class AlgorithmRun:
    """Algorithm 4 (diffusion fast phase, plain gradient descent) for a few epochs.

    tol: fast-phase tolerance; lr: slow step; epoch: (E + 1,) 0..E; t_theta: (E + 1,) slow time
    ``epoch * lr``; train_mse: (E + 1,) forward-pass MSE (entry 0 at the initial weights);
    euler_steps: (E,) mean Euler steps per example per epoch; note: a warning to show (non-converged
    fast phases, divergence), or "".
    """

    tol: float
    lr: float
    epoch: np.ndarray
    t_theta: np.ndarray
    train_mse: np.ndarray
    euler_steps: np.ndarray
    note: str


def log_steps(n_steps: int, n_points: int) -> np.ndarray:
    """Step 0 followed by about ``n_points`` log-spaced distinct steps in [1, n_steps]."""
    s = np.unique(np.round(np.geomspace(1, n_steps, n_points)).astype(np.int64))
    return np.concatenate([[0], s])


def joint_run(sheaf, X, Y, eps, theta_time, eta_c, n_points, examples, scales: Timescales) -> JointRun:
    """Integrate the joint flow to slow time ``theta_time``, recording at log-spaced steps.

    The flow is run in segments between the recorded steps; its cochains, weights and step counter
    persist across :meth:`JointFlow.run` calls, so the states equal those of one uninterrupted run.
    ``scales`` are the timescales at the initial weights (:func:`sheaflab.timescales.timescales`).
    """
    flow = JointFlow(sheaf, eps=eps, eta_c=eta_c)
    n_steps = max(2, math.ceil(theta_time / flow.eta_theta - 1e-9))
    steps = log_steps(n_steps, n_points)
    energy, energy_eq, mse, change = [], [], [], []
    try:
        for prev, s in zip(steps[:-1], steps[1:]):
            h = flow.run(X, Y, int(s - prev), record_every=int(s - prev))
            if prev == 0:   # the first call also recorded step 0
                energy.append(h.energy[0])
                mse.append(h.train_mse[0])
                change.append(h.weight_change[0])
                energy_eq.append(equilibrium(sheaf, X, Y).energy)
            energy.append(h.energy[-1])
            mse.append(h.train_mse[-1])
            change.append(h.weight_change[-1])
            energy_eq.append(equilibrium(flow.sheaf, X, Y).energy)
    except FloatingPointError as exc:
        raise FloatingPointError(f"the joint flow with eps={eps:g} diverged ({exc}); lower eps or "
                                 "eta_c") from None
    return JointRun(float(eps), flow.eta_c, flow.eta_theta, steps, np.array(energy),
                    np.array(energy_eq), np.array(mse), np.array(change), examples,
                    scales.tau_fast, scales.tau_slow)


def algorithm_run(sheaf, X, Y, tol, lr, epochs) -> AlgorithmRun:
    """Algorithm 4 with the diffusion fast phase at tolerance ``tol`` and plain gradient descent
    of step ``lr``, full batch, for ``epochs`` epochs (stops early, with a note, if it diverges)."""
    tr = SheafTrainer(sheaf, lr=lr, optimizer="sgd", method="diffusion", tol=tol, progress=False)
    note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # reported through the note instead
        try:
            h = tr.fit(X, Y, epochs=epochs, progress=False)
        except TrainingDiverged as exc:
            h, note = exc.history, f"diverged after {exc.history.epochs} epochs"
    bad = int(h.fast_unconverged.sum()) if h.epochs else 0
    if bad:
        note = (note + "; " if note else "") + f"{bad} fast phases hit max_iter"
    epoch = np.arange(h.epochs + 1)
    return AlgorithmRun(float(tol), float(lr), epoch, epoch * float(lr),
                        np.concatenate([[sheaf.mse(X, Y)], h.train_mse]),
                        h.fast_iterations / X.shape[0], note)


# ---------------------------------------------------------------------------------- rescaling symmetry
@dataclass
class RescalingRow:
    """One point of :func:`rescaling_curve`: the factor ``c``; the mean equilibrium energy
    ``residual`` (mean R); ``first_edges``, the part of it on the edges ``affine_l`` and ``relu_l``
    (which scales as ``1/c^2`` when the cochain is rescaled with the weights); and the training MSE
    ``mse`` (the same for every ``c``)."""

    c: float
    residual: float
    first_edges: float
    mse: float


def rescaling_curve(sheaf: NeuralSheaf, X, Y, cs, layer: int = 1) -> list:
    """Mean R and MSE of :func:`sheaflab.rescaling.rescaled` networks, one :class:`RescalingRow` per ``c`` in ``cs``."""
    rows = []
    for c in cs:
        net = rescaled(sheaf, c, layer)
        eq = equilibrium(net, X, Y)
        e = eq.discord.energies()
        names = [edge.name for edge in net.edges]
        first = e[:, names.index(f"affine_{layer}")] + e[:, names.index(f"relu_{layer}")]
        rows.append(RescalingRow(float(c), float(eq.energy.mean()), float(first.mean()), net.mse(X, Y)))
    return rows


@dataclass
class WeightDrift:
    """Norm of the output weights over training, for the sheaf trainer and SGD from one start.

    epoch: (k,) epochs at which the norms were read (0 = the start); sheaf, sgd: (k,) ``||W_L||``
    (Frobenius) of each trainer's network; l2: the reluctance-edge weight both trainers used;
    sheaf_mse, sgd_mse: (k,) their training MSE at the same epochs.
    """

    epoch: np.ndarray
    sheaf: np.ndarray
    sgd: np.ndarray
    sheaf_mse: np.ndarray
    sgd_mse: np.ndarray
    l2: float

    def sgd_at_final_fit(self) -> tuple:
        """``(norm, epoch)``: SGD's ``||W_L||`` and epoch where its training MSE equals the sheaf
        trainer's final one (interpolated in log MSE), so that the two norms compare at equal fit.
        Needs SGD's MSE to fall at every reading and to pass the sheaf trainer's final MSE."""
        if not np.all(np.diff(self.sgd_mse) < 0):
            raise ValueError("SGD's training MSE does not fall at every reading: no unique epoch of equal fit")
        final = self.sheaf_mse[-1]
        if not self.sgd_mse[-1] <= final <= self.sgd_mse[0]:
            raise ValueError(f"SGD's training MSE never reaches the sheaf trainer's final {final:.4g}")
        x, xs = -np.log(final), -np.log(self.sgd_mse)
        return float(np.interp(x, xs, self.sgd)), float(np.interp(x, xs, self.epoch))


def output_weight_drift(sheaf: NeuralSheaf, X, Y, lr: float = 0.01, epochs: int = 2000,
                        every: int = 100, optimizer: str = "sgd", l2: float = 0.0) -> WeightDrift:
    """Train both trainers from ``sheaf`` (full batch, same ``lr``, ``optimizer`` and ``l2``) and read
    ``||W_L||`` every ``every`` epochs: gradient descent on R drifts along the rescaling symmetry,
    which grows the output weights; reluctance edges (``l2 > 0``) hold it back."""
    epochs = positive(epochs, "epochs", integer=True)
    every = positive(every, "every", integer=True)
    trainers = {"sheaf": SheafTrainer(sheaf, lr=lr, optimizer=optimizer, l2=l2),
                "sgd": SGDTrainer(sheaf, lr=lr, optimizer=optimizer, l2=l2)}
    marks = [0]
    norms = {k: [float(np.linalg.norm(sheaf.weights[-1]))] for k in trainers}
    mses = {k: [sheaf.mse(X, Y)] for k in trainers}
    while marks[-1] < epochs:
        k = min(every, epochs - marks[-1])
        for name, tr in trainers.items():
            h = tr.fit(X, Y, epochs=k, progress=False)
            norms[name].append(float(np.linalg.norm(tr.sheaf.weights[-1])))
            mses[name].append(float(h.train_mse[-1]))
        marks.append(marks[-1] + k)
    return WeightDrift(np.array(marks), np.array(norms["sheaf"]), np.array(norms["sgd"]),
                       np.array(mses["sheaf"]), np.array(mses["sgd"]), float(l2))


def epoch_ratio_curve(sheaf_history, sgd_history, targets) -> np.ndarray:
    """(len(targets),) epochs to each training-MSE target, sheaf trainer over SGD (NaN where either
    history never reaches it): a slowdown is a curve over targets, not one number."""
    out = []
    for t in targets:
        a, b = sheaf_history.epochs_to(t), sgd_history.epochs_to(t)
        out.append(a / b if a and b else np.nan)
    return np.array(out, dtype=np.float64)
