"""Checks for the Lab 12 notebooks: run a student's function on fresh data, compare it with sheaflab.

Every ``check_*`` function calls the student's function on data it makes itself (fixed seeds, but not
the notebook's arrays, so a function that only happens to work on the lab's data does not pass),
compares the answer with the package's reference and prints one verdict line:

* ``correct``          the answer matches the reference;
* ``wrong``            it does not (the line says where, with the largest error), or the function raised;
* ``not implemented``  the function still raises ``NotImplementedError`` (its TODO is not done yet).

By default a check never raises, so the student notebook runs from top to bottom whatever state its
TODOs are in. With ``strict=True`` (the solutions notebook) anything but ``correct`` raises an
``AssertionError``, so a broken reference solution fails the notebook tests. Every check returns its
status string (one of :data:`CORRECT`, :data:`WRONG`, :data:`MISSING`).

The two measuring helpers the lab uses after the corresponding TODOs, :func:`fit_line` and
:func:`best_time`, are those of :mod:`sheaflab.measure` (re-exported here).
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from .local_rule import local_gradients
from .measure import best_time, fit_line
from .sheaf import Cochain, NeuralSheaf
from .solve import equilibrium
from .train import SheafTrainer, epochs_to

CORRECT, WRONG, MISSING = "correct", "wrong", "not implemented"
_MARK = {CORRECT: "[correct]", WRONG: "[wrong]", MISSING: "[not implemented yet]"}


# ---------------------------------------------------------------------------------- machinery
def _verdict(name: str, status: str, detail: str, strict: bool) -> str:
    line = f"{_MARK[status]} {name}: {detail}"
    print(line)
    if strict and status != CORRECT:
        raise AssertionError(line)
    return status


def _run(name: str, strict: bool, body) -> str:
    """Run ``body()`` -> (status, detail); turn NotImplementedError and other exceptions into verdicts."""
    try:
        status, detail = body()
    except NotImplementedError:
        status, detail = MISSING, ("the function still raises NotImplementedError; fill in its TODO "
                                   "and re-run that cell and this one")
    except AssertionError:
        raise
    except Exception as exc:  # a student's bug: report it, do not stop the notebook
        status, detail = WRONG, f"it raised {type(exc).__name__}: {exc}"
    return _verdict(name, status, detail, strict)


def _compare(got, want, what: str, rtol: float = 1e-9, atol: float = 1e-10):
    """None if ``got`` matches array ``want``; else a message (shape or the largest error)."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{what} is not a numeric array (got {type(got).__name__})"
    if got.shape != want.shape:
        return f"{what} has shape {got.shape}, expected {want.shape}"
    err = np.abs(got - want)
    bound = atol + rtol * np.abs(want)
    if not np.all(err <= bound):
        return f"{what} differs from the reference: max error {float(err.max()):.3g}"
    return None


def _problems():
    """Fresh test problems: a one-hidden-layer and a two-hidden-layer network with nonzero biases."""
    out = []
    for dims, n, seed in (([2, 7, 1], 9, 11), ([3, 5, 4, 2], 6, 12)):
        rng = np.random.default_rng(seed)
        sheaf = NeuralSheaf.random(dims, seed=seed)
        for b in sheaf.biases:
            b[:] = rng.normal(0.0, 0.4, size=b.shape)
        X = rng.uniform(-2.0, 2.0, size=(n, dims[0]))
        Y = rng.normal(0.0, 1.5, size=(n, dims[-1]))
        out.append((sheaf, X, Y, rng))
    return out


def _random_cochain(sheaf, X, rng) -> Cochain:
    """A cochain with random stalks (far from any equilibrium: every edge disagrees)."""
    B = X.shape[0]
    z = [rng.normal(0.0, 1.0, size=(B, n)) for n in sheaf.dims[1:]]
    a = [rng.normal(0.0, 1.0, size=(B, n)) for n in sheaf.dims[1:-1]]
    return Cochain(X.copy(), z, a, rng.normal(0.0, 1.0, size=(B, sheaf.dims[-1])))


# ---------------------------------------------------------------------------------- checks
def check_discords(fn, strict: bool = False) -> str:
    """``fn(sheaf, cochain)`` -> dict {edge name: (B, dim) discord}, the coboundary of the cochain.

    Compared with :meth:`NeuralSheaf.discord` on random cochains of two networks (every edge name of
    ``sheaf.edges`` must be present)."""
    def body():
        for sheaf, X, _, rng in _problems():
            c = _random_cochain(sheaf, X, rng)
            want = sheaf.discord(c)
            got = fn(sheaf, c.copy())
            if not hasattr(got, "keys"):
                return WRONG, f"expected a dict of edge name -> discord, got {type(got).__name__}"
            missing = [name for name in want if name not in got]
            if missing:
                return WRONG, f"edges missing for dims {sheaf.dims}: {', '.join(missing)}"
            for name, d in want.items():
                msg = _compare(got[name], d, f"discord of edge {name!r} (dims {sheaf.dims})")
                if msg:
                    return WRONG, msg
        return CORRECT, "your discords equal sheaf.discord(c) on every edge of two fresh networks"
    return _run("edge discords", strict, body)


def check_local_update(fn, strict: bool = False) -> str:
    """``fn(sheaf, eq)`` -> (grad_W, grad_b): Definition 3's local rule at the reached equilibrium.

    Compared with :func:`sheaflab.local_gradients` on the reached equilibria (what
    :func:`sheaflab.equilibrium` returns) of fresh examples on two networks."""
    def body():
        for sheaf, X, Y, _ in _problems():
            eq = equilibrium(sheaf, X, Y)
            want_W, want_b = local_gradients(sheaf, eq)
            got = fn(sheaf, eq)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                return WRONG, "expected a pair (grad_W, grad_b) of lists"
            got_W, got_b = got
            if len(got_W) != sheaf.depth or len(got_b) != sheaf.depth:
                return WRONG, (f"expected {sheaf.depth} weight and {sheaf.depth} bias gradients for dims "
                               f"{sheaf.dims}; got {len(got_W)} and {len(got_b)}")
            for l in range(sheaf.depth):
                for kind, g, w in (("W", got_W[l], want_W[l]), ("b", got_b[l], want_b[l])):
                    msg = _compare(g, w, f"gradient of {kind}_{l + 1} (dims {sheaf.dims})")
                    if msg:
                        return WRONG, msg
        return CORRECT, "your local update equals sheaflab.local_gradients on two fresh networks"
    return _run("local update (Definition 3)", strict, body)


def check_sheaf_step(fn, strict: bool = False) -> str:
    """``fn(sheaf, X, Y, lr)``: one full-batch step of Algorithm 4 with plain gradient descent,
    updating ``sheaf.weights`` and ``sheaf.biases`` in place and returning the batch mean of the
    reached equilibria's energies (the relaxed energy R before the step).

    Compared with one epoch of ``SheafTrainer(sheaf, lr, optimizer="sgd")`` on fresh data."""
    def body():
        for sheaf, X, Y, _ in _problems():
            lr = 0.05
            ref = SheafTrainer(sheaf, lr=lr, optimizer="sgd", progress=False)
            hist = ref.fit(X, Y, epochs=1, progress=False)
            mine = sheaf.copy()
            got_R = fn(mine, X, Y, lr)
            for l in range(sheaf.depth):
                for kind, g, w in (("W", mine.weights[l], ref.sheaf.weights[l]),
                                   ("b", mine.biases[l], ref.sheaf.biases[l])):
                    before = (sheaf.weights if kind == "W" else sheaf.biases)[l]
                    if np.array_equal(g, before) and not np.array_equal(w, before):
                        return WRONG, (f"{kind}_{l + 1} did not change: update sheaf.weights / "
                                       "sheaf.biases in place")
                    msg = _compare(g, w, f"updated {kind}_{l + 1} (dims {sheaf.dims})")
                    if msg:
                        return WRONG, msg
            msg = _compare(got_R, np.asarray(hist.residual[0]), "returned relaxed energy R")
            if msg:
                return WRONG, msg
        return CORRECT, "one step of your Algorithm 4 equals SheafTrainer(optimizer='sgd') for one epoch"
    return _run("Algorithm 4 step", strict, body)


def check_epochs_to_target(fn, strict: bool = False) -> str:
    """``fn(curve, target)`` -> the first epoch (1-based) whose loss is at or below ``target``, or
    ``None`` if the curve never gets there. Compared with :func:`sheaflab.train.epochs_to` on several curves."""
    def body():
        rng = np.random.default_rng(5)
        noisy = np.exp(-0.05 * np.arange(80)) * (1.0 + 0.3 * rng.random(80))
        cases = [
            (np.array([4.0, 3.0, 2.0, 1.0, 0.5]), 2.0),          # hits the target exactly
            (np.array([4.0, 3.0, 2.0, 1.0, 0.5]), 0.7),
            (np.array([0.1, 0.2, 0.05]), 1.0),                  # already there at epoch 1
            (np.array([5.0, 1.0, 3.0, 0.9, 0.2]), 0.95),        # not monotone: the first hit counts
            (np.array([5.0, 4.0, 3.0]), 1.0),                   # never reached
            (noisy, 0.2),
        ]
        for curve, target in cases:
            want = epochs_to(curve, target)
            got = fn(curve.copy(), target)
            if want is None:
                if got is not None:
                    return WRONG, f"a curve that never reaches {target} should give None, got {got!r}"
                continue
            if got is None or isinstance(got, bool) or not float(got).is_integer() or int(got) != want:
                return WRONG, (f"for target {target} on {np.round(curve[:6], 3).tolist()}... the first "
                               f"epoch (counting from 1) is {want}, got {got!r}")
        return CORRECT, "your epochs-to-target matches History.epochs_to on six curves"
    return _run("epochs to target", strict, body)


def check_fit_line(fn, strict: bool = False) -> str:
    """``fn(x, y)`` -> (slope, intercept, r2) of the least-squares line. Compared with :func:`fit_line`."""
    def body():
        rng = np.random.default_rng(8)
        x = rng.uniform(1.0, 20.0, size=12)
        cases = [(x, 0.7 * x + 3.0 + rng.normal(0.0, 2.0, size=12)),
                 (x, 5.0 - 0.2 * x + rng.normal(0.0, 0.1, size=12)),
                 (np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))]
        for xx, yy in cases:
            want = np.array(fit_line(xx, yy))
            got = fn(xx.copy(), yy.copy())
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                return WRONG, "expected a triple (slope, intercept, r2)"
            msg = _compare(np.array(got, dtype=np.float64), want, "(slope, intercept, r2)", rtol=1e-7,
                           atol=1e-9)
            if msg:
                return WRONG, f"{msg}; expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}"
        return CORRECT, "your fit matches least squares (slope, intercept and R^2) on three data sets"
    return _run("least-squares line", strict, body)


def check_best_time(fn, strict: bool = False) -> str:
    """``fn(f, repeats)`` -> the best (smallest) wall time in seconds of ``repeats`` calls of ``f()``.

    Checked with a function whose calls take 60, 5, 60, 60 ms in turn (one warm-up call allowed):
    the answer must be the fast call's time, and ``f`` must be called ``repeats`` times (+1)."""
    def body():
        durations = itertools.cycle([0.06, 0.005, 0.06, 0.06])
        calls = []

        def f():
            calls.append(1)
            time.sleep(next(durations))

        got = fn(f, 3)
        if len(calls) not in (3, 4):
            return WRONG, f"f was called {len(calls)} times for repeats=3 (expected 3, or 4 with a warm-up)"
        try:
            got = float(got)
        except (TypeError, ValueError):
            return WRONG, f"expected a number of seconds, got {type(got).__name__}"
        if not 0.004 <= got < 0.035:
            return WRONG, (f"the calls took about 60, 5 and 60 ms; the best is about 0.005 s, got "
                           f"{got:.4g} s (the mean or the last call is not the best time)")
        return CORRECT, f"your timer reports the best of the repeats ({1e3 * got:.1f} ms for a 5 ms call)"
    return _run("best-of-repeats timer", strict, body)


__all__ = ["CORRECT", "WRONG", "MISSING", "fit_line", "best_time", "check_discords", "check_local_update",
           "check_sheaf_step", "check_epochs_to_target", "check_fit_line", "check_best_time"]


def check_softmax_energy(fn, strict: bool = False) -> str:
    """``fn(z, yhat)`` -> (B,) energy of a softmax output edge, ``logsumexp(z) - yhat . z + sum yhat log yhat``.

    Compared with :mod:`sheaflab.heads` on fresh logits (some large, to catch an overflowing
    ``log(sum(exp(z)))``), for one-hot labels and for soft probability rows."""
    from .heads import get

    def body():
        rng = np.random.default_rng(21)
        head = get("softmax")
        for scale in (1.0, 400.0):
            z = scale * rng.normal(size=(8, 4))
            for name, yhat in (("one-hot labels", np.eye(4)[rng.integers(0, 4, 8)]),
                               ("soft labels", rng.dirichlet(np.ones(4), size=8))):
                got = fn(z.copy(), yhat.copy())
                msg = _compare(got, head.energy(z, yhat), f"energy for {name}, logits of size {scale:g}",
                               rtol=1e-9, atol=1e-9)
                if msg:
                    return WRONG, msg
        return CORRECT, "your softmax output-edge energy equals sheaflab.heads on fresh logits and labels"
    return _run("softmax output-edge energy", strict, body)
