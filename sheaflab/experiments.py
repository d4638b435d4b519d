"""The chapter's measured comparisons, in one place: the book, the labs and the widgets call these.

* :func:`fit_until` trains until a target MSE (or a cap) and returns the epoch count;
* :func:`slowdown_study` sets the epoch-count slowdown of Algorithm 12.4 against the
  ``1 / lambda_min(L_free)`` prediction of Theorem 12.5, across configurations;
* :func:`convergence_rate` and :func:`rate_vs_n_train` extract the exponential rate of a loss curve
  and test the ``beta ~ 1 / n_train`` scaling;
* :func:`step_costs` measures what one training step costs, phase by phase, for both trainers.
"""

from __future__ import annotations

import time

import numpy as np

from ._checks import positive
from .backprop import _backprop
from .datasets import paraboloid
from .optim import make_optimizer
from .sheaf import NeuralSheaf
from .solve import edge_gradients, equilibrium
from .train import SGDTrainer, SheafTrainer


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


def inverse_gap(sheaf: NeuralSheaf, X, Y) -> float:
    """Mean over the examples of ``1 / lambda_min(L_free)`` at the two-sided equilibrium pattern:
    the slowdown Theorem 12.5 predicts."""
    eq = equilibrium(sheaf, X, Y)
    return float(np.mean(1.0 / eq.lambda_min(sheaf)))


def slowdown_study(configs, lr: float = 0.01, target_fraction: float = 0.25,
                   max_epochs: int = 6000, noise: float = 0.02) -> list:
    """Epochs to a common target for plain gradient descent, sheaf trainer vs SGD, per configuration.

    configs : list of dicts with keys ``dims`` (e.g. [2, 30, 1]), ``scale`` (He-init std multiplier,
        default 1), ``n_train`` (paraboloid points, default 200) and ``seed`` (default 0).
    Both trainers start from the same weights, run full batch with ``optimizer="sgd"`` and the same
    ``lr``, and stop at ``target_fraction`` times the initial training MSE.
    Returns one dict per configuration with the inputs plus ``inv_lambda_min`` (the prediction),
    ``sgd_epochs``, ``sheaf_epochs`` (None if not reached within ``max_epochs``) and ``ratio``.
    """
    rows = []
    for cfg in configs:
        dims = cfg["dims"]
        scale, n, seed = cfg.get("scale", 1.0), cfg.get("n_train", 200), cfg.get("seed", 0)
        X, Y = paraboloid(n, noise=noise, seed=seed)
        sheaf = NeuralSheaf.random(dims, seed=seed, scale=scale)
        mse0 = float(np.mean((sheaf.forward(X) - Y) ** 2))
        target = target_fraction * mse0
        sgd = fit_until(SGDTrainer(sheaf, lr=lr, optimizer="sgd", seed=seed), X, Y, target, max_epochs)
        sh = fit_until(SheafTrainer(sheaf, lr=lr, optimizer="sgd", seed=seed), X, Y, target, max_epochs)
        rows.append(dict(dims=list(dims), scale=scale, n_train=n, seed=seed,
                         inv_lambda_min=inverse_gap(sheaf, X, Y), mse0=mse0, target=target,
                         sgd_epochs=sgd, sheaf_epochs=sh,
                         ratio=(sh / sgd) if (sh and sgd) else None))
    return rows


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
    slope = np.polyfit(sel, np.log(curve[sel]), 1)[0]
    return float(-slope)


def rate_vs_n_train(n_trains=(16, 64, 256, 1024), dims=(2, 30, 1), lr: float = 0.01,
                    optimizer: str = "sgd", epochs: int = 1500, seed: int = 0, noise: float = 0.02,
                    start: float = 0.5, stop: float = 0.1) -> list:
    """Run Algorithm 12.4 for each training-set size and extract the loss curve's rate.

    Returns dicts with ``n_train``, ``rate`` (per epoch, from the training MSE), ``steps`` (slow steps
    per epoch: 1 at full batch) and the whole ``curve``.
    """
    rows = []
    for n in n_trains:
        X, Y = paraboloid(int(n), noise=noise, seed=seed)
        sheaf = NeuralSheaf.random(list(dims), seed=seed)
        tr = SheafTrainer(sheaf, lr=lr, optimizer=optimizer, seed=seed)
        h = tr.fit(X, Y, epochs=epochs, progress=False)
        rows.append(dict(n_train=int(n), rate=convergence_rate(h.train_mse, start, stop),
                         curve=h.train_mse))
    return rows


def fit_inverse_n(n_trains, rates):
    """Least-squares fit ``rate = c0 + c1 / n``; returns (c0, c1, r2) with r2 the coefficient of
    determination. A pure ``1 / n`` law has ``c0 = 0``."""
    n = np.asarray(n_trains, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    A = np.stack([np.ones_like(n), 1.0 / n], axis=1)
    coef, *_ = np.linalg.lstsq(A, r, rcond=None)
    pred = A @ coef
    r2 = 1.0 - np.sum((r - pred) ** 2) / max(np.sum((r - r.mean()) ** 2), 1e-300)
    return float(coef[0]), float(coef[1]), float(r2)


def _best(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def step_costs(sheaf: NeuralSheaf, X, Y, optimizer: str = "adam", repeats: int = 30) -> dict:
    """What one full-batch training step costs, phase by phase, for both trainers (measured here).

    Returns ``{"sgd": {...}, "sheaf": {...}}``; each phase maps to ``(count, seconds)`` where count
    is the number of times the phase runs per example per step and seconds the best-of-``repeats``
    wall time of that phase on the whole batch:

    * sgd: forward (1), backward (1), update (1), diagnostics (0: backprop has none to give);
    * sheaf: fast phase (region solves per example, measured), local gradients (the edge-local
      rule, in place of a backward pass), update (1), diagnostics (per-edge discords and the
      residual, read off the equilibrium).
    """
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    params = [p.copy() for p in sheaf.weights + sheaf.biases]

    t_fwd = _best(lambda: sheaf._forward_cochain(X), repeats)
    t_fb = _best(lambda: _backprop(sheaf, X, Y), repeats)
    _, gW, gb, _ = _backprop(sheaf, X, Y)
    opt = make_optimizer(optimizer, 1e-12)          # a tiny step: the weights barely move
    t_upd = _best(lambda: opt.step(params, gW + gb), repeats)
    eq = equilibrium(sheaf, X, Y)
    t_fast = _best(lambda: equilibrium(sheaf, X, Y), repeats)
    t_local = _best(lambda: edge_gradients(sheaf, eq.cochain, eq.discord), repeats)
    t_diag = _best(lambda: (eq.discord.norms().mean(axis=0), eq.energy.mean()), repeats)
    return {
        "sgd": {"forward": (1.0, t_fwd), "backward": (1.0, max(t_fb - t_fwd, 0.0)),
                "update": (1.0, t_upd), "diagnostics": (0.0, 0.0)},
        "sheaf": {"fast phase": (float(eq.iterations.mean()), t_fast),
                  "local gradients": (1.0, t_local), "update": (1.0, t_upd),
                  "diagnostics": (1.0, t_diag)},
    }
