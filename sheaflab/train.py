"""Training: the sheaf trainer (Algorithm 12.4), the SGD baseline, and the joint flow (Def. 11.4).

Both trainers share one loop (:class:`_Trainer`): the same seed gives the same mini-batch order, the
same optimizers (:mod:`sheaflab.optim`) apply the update, and the same per-epoch diagnostics land in a
:class:`History`. They differ only in where the gradient of a batch comes from:

* :class:`SheafTrainer`: fast phase (each example's two-sided equilibrium), then the edge-local rule;
* :class:`SGDTrainer`: one forward and one backward pass through the network (plain numpy backprop).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ._checks import as_batch, choice, positive
from .augment import add_reluctance_gradients
from .backprop import _backprop
from .optim import make_optimizer
from .parallel import fast_phase
from .sheaf import NeuralSheaf
from .solve import edge_gradients, equilibrium, euler_step, flow_velocity

# an epoch whose training MSE exceeds the initial one by this factor counts as diverged
EXPLOSION = 1e6


def mean_spectral_gap(sheaf: NeuralSheaf, X, Y, **kwargs) -> float:
    """Mean over the batch of ``lambda_min(L_free)`` at each example's two-sided equilibrium pattern."""
    eq = equilibrium(sheaf, X, Y, **kwargs)
    return float(eq.lambda_min(sheaf).mean())


class TrainingDiverged(FloatingPointError):
    """Raised when the weights or the loss blow up; ``history`` keeps every epoch run before that."""

    def __init__(self, message: str, history: "History"):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """Per-epoch record of a fit; ``fit`` appends to it when called again.

    train_mse, val_mse: (epochs,) forward-pass ``mean((f(x) - y)^2)`` after each epoch (val_mse is
    empty when no validation set was given); residual: (epochs,) mean training energy over the epoch's
    batches (the sheaf trainer's equilibrium energy R; for SGD the loss ``1/2 ||f(x) - y||^2``);
    edge_discord: (epochs, n_edges) mean discord norm per edge, edges named in ``edges``;
    fast_iterations: (epochs,) fast-phase iterations summed over the epoch's examples (0 for SGD);
    fast_unconverged: (epochs,) examples whose fast phase did not converge;
    wall_time: (epochs,) cumulative seconds spent in ``fit``;
    lambda_min: (epochs,) mean spectral gap of ``L_free`` over the training set at the end of the
    epoch, when the sheaf trainer tracks it (``track_gap``), NaN otherwise.
    """

    edges: list
    rows: dict = field(default_factory=lambda: {k: [] for k in (
        "train_mse", "val_mse", "residual", "edge_discord", "fast_iterations", "fast_unconverged",
        "wall_time", "lambda_min")})

    def _append(self, **values):
        for k, v in values.items():
            if v is not None:
                self.rows[k].append(v)

    def __getattr__(self, name):
        rows = self.__dict__.get("rows", {})
        if name in rows:
            if name == "edge_discord":
                return np.array(rows[name]).reshape(-1, len(self.edges))
            return np.array(rows[name])
        raise AttributeError(name)

    @property
    def epochs(self) -> int:
        return len(self.rows["train_mse"])

    def epochs_to(self, mse: float) -> int | None:
        """First epoch (1-based) whose training MSE is at or below ``mse``; None if never."""
        hit = np.flatnonzero(self.train_mse <= mse)
        return int(hit[0]) + 1 if hit.size else None

    def time_to(self, mse: float) -> float | None:
        """Cumulative wall time at the first epoch reaching ``mse``; None if never."""
        k = self.epochs_to(mse)
        return float(self.wall_time[k - 1]) if k else None


class _Trainer:
    """Shared training loop; subclasses provide ``_batch(X, Y) -> (grad_W, grad_b, stats)``."""

    label = "trainer"

    def __init__(self, sheaf: NeuralSheaf, lr=0.01, optimizer="adam", batch_size=None, l2=0.0,
                 seed=0, progress=None):
        if not isinstance(sheaf, NeuralSheaf):
            raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
        self.sheaf = sheaf.copy()            # the trainer trains its own copy: read ``.sheaf``
        self.lr = positive(lr, "lr")
        self.optimizer = make_optimizer(optimizer, self.lr)
        self.batch_size = None if batch_size is None else positive(batch_size, "batch_size", integer=True)
        self.l2 = positive(l2, "l2", allow_zero=True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
        self.seed = seed
        self.progress = progress
        self._rng = np.random.default_rng(seed)
        self.history = History([e.name for e in self.sheaf.edges])
        self._clock = 0.0
        self._mse0 = None

    @property
    def params(self) -> list:
        return self.sheaf.weights + self.sheaf.biases

    def _regularise(self, grads: list) -> list:
        """Add the gradient of the L2 term; the sheaf trainer reads it off reluctance edges."""
        return grads

    def fit(self, X, Y, epochs: int = 500, X_val=None, Y_val=None, progress=None) -> History:
        """Train for ``epochs`` passes over ``(X, Y)`` (shapes (n, n_0), (n, n_L)); continues from the
        current weights, optimizer state and batch order when called again. Returns the History."""
        X = self.sheaf.check_input(X, "X")
        Y = self.sheaf.check_target(Y, X.shape[0], "Y")
        if (X_val is None) != (Y_val is None):
            raise ValueError("X_val and Y_val must be given together")
        if X_val is not None:
            X_val = self.sheaf.check_input(X_val, "X_val")
            Y_val = self.sheaf.check_target(Y_val, X_val.shape[0], "Y_val")
        epochs = positive(epochs, "epochs", integer=True)
        n = X.shape[0]
        B = n if self.batch_size is None else min(self.batch_size, n)
        if self._mse0 is None:
            self._mse0 = float(np.mean((self.sheaf.forward(X) - Y) ** 2))
        show = self.progress if progress is None else progress
        bar = tqdm(range(epochs), desc=self.label, disable=None if show is None else not show,
                   mininterval=0.5, leave=False)
        n_edges = len(self.history.edges)
        for epoch in bar:
            t0 = time.perf_counter()
            order = self._rng.permutation(n) if B < n else None
            res, disc, its, bad = 0.0, np.zeros(n_edges), 0, 0
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    for start in range(0, n, B):
                        idx = slice(start, start + B) if order is None else order[start:start + B]
                        gW, gb, st = self._batch(X[idx], Y[idx])
                        self.optimizer.step(self.params, self._regularise(gW + gb))
                        size = st["size"]
                        res += st["residual"] * size
                        disc += st["edge_discord"] * size
                        its += st["iterations"]
                        bad += st["unconverged"]
                    mse = float(np.mean((self.sheaf.forward(X) - Y) ** 2))
                    val = None if X_val is None else float(np.mean((self.sheaf.forward(X_val) - Y_val) ** 2))
            except FloatingPointError as exc:
                self._diverged(epoch, f"the fast phase failed ({exc})")
            self._clock += time.perf_counter() - t0
            if not np.isfinite(mse) or mse > EXPLOSION * max(self._mse0, 1e-12):
                self._diverged(epoch, f"training MSE reached {mse:.3g}")
            self.history._append(train_mse=mse, val_mse=val, residual=res / n, edge_discord=disc / n,
                                  fast_iterations=its, fast_unconverged=bad, wall_time=self._clock,
                                  lambda_min=self._gap(X, Y))
            if epoch % 50 == 0:
                bar.set_postfix(mse=f"{mse:.4g}", refresh=False)
        bar.close()
        unconverged = int(self.history.fast_unconverged[-epochs:].sum())
        if unconverged:
            warnings.warn(f"{self.label}: {unconverged} fast-phase solves did not converge during this "
                          "fit (see history.fast_unconverged); raise max_iter or tol", RuntimeWarning,
                          stacklevel=2)
        return self.history

    def _gap(self, X, Y) -> float:
        return float("nan")

    def _diverged(self, epoch, what):
        raise TrainingDiverged(
            f"{self.label} diverged at epoch {self.history.epochs + 1}: {what}. The learning rate "
            f"lr={self.lr:g} is too large for this problem; lower lr (the history up to the last good "
            "epoch is kept in .history)", self.history)


class SheafTrainer(_Trainer):
    """Algorithm 12.4: relax every example of a batch to its two-sided equilibrium (fast phase), then
    move each weight by the batch mean of its edge's discord times the presynaptic stalk (slow phase).

    Parameters
    ----------
    sheaf : NeuralSheaf with the initial weights (copied; the trained one is ``.sheaf``).
    lr : slow-phase step size ``eta_theta``.
    optimizer : "sgd" (plain gradient descent, as in Def. 12.3), "momentum" or "adam".
    batch_size : examples per slow step; None = full batch.
    fast : "direct" (per-region linear solves) or "diffusion" (explicit Euler heat flow).
    tol, max_iter : fast-phase tolerance ``tau_c`` and iteration cap, passed to :func:`equilibrium`.
    l2 : weight of the reluctance edges (Def. 12.8): the energy gains ``l2/2 ||theta||^2``.
    n_jobs : joblib workers for the fast phase (Prop. 12.6); honours ``joblib.parallel_config``.
    seed : mini-batch order. progress : tqdm bar (None = only on a terminal).
    track_gap : every ``track_gap`` epochs record the mean ``lambda_min(L_free)`` over the training
        set in ``history.lambda_min`` (0 = never; it costs one dense eigensolve per example).
    """

    label = "sheaf"

    def __init__(self, sheaf, lr=0.01, optimizer="adam", batch_size=None, fast="direct", tol=None,
                 max_iter=None, l2=0.0, n_jobs=1, seed=0, progress=None, track_gap=0):
        super().__init__(sheaf, lr, optimizer, batch_size, l2, seed, progress)
        self.track_gap = positive(track_gap, "track_gap", integer=True, allow_zero=True)
        self.fast = choice(fast, "fast", ("direct", "diffusion"))
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
            raise ValueError(f"n_jobs must be a non-zero integer (a worker count, or -1 for all cores); "
                             f"got {n_jobs!r}")
        self.tol, self.max_iter, self.n_jobs = tol, max_iter, n_jobs
        self._eq_kwargs = {"method": fast}
        if tol is not None:
            self._eq_kwargs["tol"] = positive(tol, "tol")
        if max_iter is not None:
            self._eq_kwargs["max_iter"] = positive(max_iter, "max_iter", integer=True)

    def _gap(self, X, Y) -> float:
        if not self.track_gap or (self.history.epochs + 1) % self.track_gap:
            return float("nan")
        return float(mean_spectral_gap(self.sheaf, X, Y))

    def _batch(self, X, Y):
        st = fast_phase(self.sheaf, X, Y, n_jobs=self.n_jobs, **self._eq_kwargs)
        return st.grad_W, st.grad_b, {"size": st.size, "residual": st.residual,
                                      "edge_discord": st.edge_discord, "iterations": st.iterations,
                                      "unconverged": st.n_unconverged}

    def _regularise(self, grads):
        if self.l2 == 0.0:
            return grads
        L = self.sheaf.depth
        gW, gb = add_reluctance_gradients(self.sheaf, grads[:L], grads[L:], self.l2)
        return gW + gb


class SGDTrainer(_Trainer):
    """The baseline: plain numpy backprop on the batch mean of ``1/2 ||f(x) - y||^2`` (plus
    ``l2/2 ||theta||^2``, i.e. weight decay ``l2``), with the same optimizers and batch order as
    :class:`SheafTrainer`."""

    label = "sgd"

    def _batch(self, X, Y):
        loss, gW, gb, r = _backprop(self.sheaf, X, Y)
        disc = np.zeros(len(self.history.edges))
        disc[-1] = np.sqrt(np.einsum("ij,ij->i", r, r)).mean()   # only the output edge disagrees
        return gW, gb, {"size": X.shape[0], "residual": loss, "edge_discord": disc,
                        "iterations": 0, "unconverged": 0}

    def _regularise(self, grads):
        if self.l2 == 0.0:
            return grads
        return [g + self.l2 * p for g, p in zip(grads, self.params)]


# ---------------------------------------------------------------------------------- joint flow
@dataclass
class JointHistory:
    """What :class:`JointFlow` recorded every ``record_every`` steps.

    step: (k,) step numbers; theta_time: (k,) slow time ``eta_theta * step``;
    energy: (k, B) per-example energy of the current (not relaxed) cochain;
    train_mse: (k,) forward-pass MSE; weight_change: (k,) ``||theta - theta_0||``.
    """

    step: np.ndarray
    theta_time: np.ndarray
    energy: np.ndarray
    train_mse: np.ndarray
    weight_change: np.ndarray


class JointFlow:
    """The joint flow (Def. 11.4): cochains and weights integrated together by explicit Euler.

    Each step moves every example's cochain by ``eta_c`` times its heat-flow velocity and the weights
    by ``eta_theta = eps * eta_c`` times minus the edge-local gradient at the current cochains. As
    ``eps -> 0`` the cochains stay relaxed while the weights move, and the flow approaches Algorithm 12.4
    with plain gradient descent of step ``eta_theta`` (Prop. 12.2).

    sheaf : initial weights (copied). eta_c : cochain step (default ``0.9 / lambda_max_bound``).
    eps : timescale ratio ``eta_theta / eta_c``.
    """

    def __init__(self, sheaf: NeuralSheaf, eps: float = 0.01, eta_c: float | None = None):
        if not isinstance(sheaf, NeuralSheaf):
            raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
        self.sheaf = sheaf.copy()
        self.eps = positive(eps, "eps")
        self.eta_c = positive(eta_c, "eta_c") if eta_c is not None else 0.9 / sheaf.lambda_max_bound()
        self.cochain = None

    @property
    def eta_theta(self) -> float:
        return self.eps * self.eta_c

    def run(self, X, Y, steps: int, record_every: int = 1) -> JointHistory:
        """Integrate ``steps`` Euler steps on the full batch (X (B, n_0), Y (B, n_L)); the cochains start
        at the forward pass with the output pinned, and persist across calls with the same batch."""
        X = self.sheaf.check_input(X)
        Y = self.sheaf.check_target(Y, X.shape[0])
        steps = positive(steps, "steps", integer=True)
        record_every = positive(record_every, "record_every", integer=True)
        if self.cochain is None or not np.array_equal(self.cochain.x, X):
            self.cochain = self.sheaf.forward_cochain(X)
            self.cochain.yhat = Y.copy()
        theta0 = np.concatenate([p.ravel() for p in self.sheaf.weights + self.sheaf.biases])
        rec = {k: [] for k in ("step", "energy", "mse", "change")}
        params = self.sheaf.weights + self.sheaf.biases
        for k in range(steps + 1):
            v, d = flow_velocity(self.sheaf, self.cochain)
            if k % record_every == 0 or k == steps:
                theta = np.concatenate([p.ravel() for p in params])
                rec["step"].append(k)
                rec["energy"].append(d.energies().sum(axis=1))
                rec["mse"].append(float(np.mean((self.sheaf.forward(X) - Y) ** 2)))
                rec["change"].append(float(np.linalg.norm(theta - theta0)))
                if not np.all(np.isfinite(rec["energy"][-1])):
                    raise FloatingPointError(f"joint flow diverged at step {k}: lower eta_c "
                                             f"(={self.eta_c:g}) or eps (={self.eps:g})")
            if k == steps:
                break
            gW, gb = edge_gradients(self.sheaf, self.cochain, d)
            euler_step(self.cochain, v, self.eta_c)
            for p, g in zip(params, gW + gb):
                p -= self.eta_theta * g
        steps_arr = np.array(rec["step"])
        return JointHistory(steps_arr, steps_arr * self.eta_theta, np.array(rec["energy"]),
                            np.array(rec["mse"]), np.array(rec["change"]))
