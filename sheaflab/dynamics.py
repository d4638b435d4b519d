"""Dynamics on the sheaf: the pinned heat flow of the cochains, and the joint flow with the weights.

* :func:`flow_velocity` and :func:`euler_step`: the pinned heat flow ``dc/dt = -grad_c E``. A hidden
  unit whose step would cross the kink ``z = 0`` stops on it, and stays while both one-sided
  derivatives point back at it (the Filippov sliding solution), so the flow settles exactly on kink
  minima. :func:`diffuse` integrates it to a tolerance (``equilibrium(method="diffusion")``).
* :class:`JointFlow`: cochains and weights integrated together, the weights ``eps`` times slower
  (the joint flow whose adiabatic limit is Algorithm 4, Proposition 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .local_rule import local_sums
from .sheaf import Cochain, NeuralSheaf, flatten


@dataclass
class Trajectory:
    """What the heat flow did, one row per Euler step (recorded with ``record=True``).

    energy: (steps + 1, B) true Dirichlet energy before each step and after the last one;
    output: (steps + 1, B, n_L) the pre-output stalk ``z_L`` (or ``yhat`` with input-only pinning);
    switched: (steps + 1, B) bool, True where the activation pattern changed on that step;
    dt: the Euler step.
    """

    energy: np.ndarray
    output: np.ndarray
    switched: np.ndarray
    dt: float

    def switch_steps(self, i: int) -> np.ndarray:
        """Steps at which example ``i``'s activation pattern switched."""
        return np.flatnonzero(self.switched[:, i])


def flow_velocity(sheaf: NeuralSheaf, c: Cochain, two_sided: bool = True):
    """Velocity of the pinned heat flow ``dc/dt`` at cochain ``c`` (minus the least-norm subgradient).

    Away from kinks this is ``-grad_c E``. A hidden unit sitting exactly on ``z = 0`` moves to the
    side where the energy falls (one-sided derivatives), or stays put when both sides rise: the
    Filippov sliding solution. ``two_sided=False`` also lets the output stalk ``yhat`` move.
    Returns ``(v, discord)``: ``v`` is a dict with lists ``"z"`` (L arrays), ``"a"`` (L-1 arrays)
    and ``"yhat"`` (array or None), each (B, n_l); ``discord`` is the cochain's :class:`Discords`.
    """
    Ws, L = sheaf.weights, sheaf.depth
    with np.errstate(over="ignore", invalid="ignore"):   # a blow-up is reported by the callers
        d = sheaf._discord(c)
    d_aff = [d[f"affine_{l}"] for l in range(1, L + 1)]
    d_relu = [d[f"relu_{l}"] for l in range(1, L)]
    d_out = d["output"]
    vz, va = [], []
    for l in range(L - 1):
        zl = c.z[l]
        g = -d_aff[l] + np.where(zl > 0, d_relu[l], 0.0)
        up = np.maximum(d_aff[l] - d_relu[l], 0.0)   # -g+ at the kink (there d_relu = -a)
        down = np.maximum(-d_aff[l], 0.0)             # g- at the kink
        vz.append(np.where(zl != 0, -g, np.where(up >= down, up, -down)))
        va.append(d_relu[l] - d_aff[l + 1] @ Ws[l + 1])
    vz.append(d_aff[-1] - d_out)
    return {"z": vz, "a": va, "yhat": None if two_sided else d_out}, d


def euler_step(c: Cochain, v: dict, dt) -> Cochain:
    """One explicit Euler step ``c + dt v`` in place; a hidden unit whose step would cross the kink
    ``z = 0`` stops on it. ``dt`` is a float or a (B, 1) array (0 freezes an example)."""
    for l, vz in enumerate(v["z"]):
        zn = c.z[l] + dt * vz
        if l < len(c.a):
            zn[((c.z[l] > 0) & (zn < 0)) | ((c.z[l] < 0) & (zn > 0))] = 0.0
        c.z[l] = zn
    for l, va in enumerate(v["a"]):
        c.a[l] = c.a[l] + dt * va
    if v["yhat"] is not None:
        c.yhat = c.yhat + dt * v["yhat"]
    return c


def _speed(v: dict) -> np.ndarray:
    """(B,) Euclidean norm of a velocity over all free stalks."""
    parts = v["z"] + v["a"] + ([v["yhat"]] if v["yhat"] is not None else [])
    return np.sqrt(sum(np.einsum("ij,ij->i", p, p) for p in parts))


def diffuse(sheaf: NeuralSheaf, X, Y, start: Cochain, tol: float, max_iter: int, dt: float,
            record: bool):
    """Explicit Euler on the pinned heat flow with kink sliding, until every example's speed
    ``||dc/dt||`` is at most ``tol`` or ``max_iter`` steps (unchecked: called by
    :func:`sheaflab.equilibrium`, ``method="diffusion"``).

    X: (B, n_0); Y: (B, n_L) pinned at the output, or None (input-only pinning: ``yhat`` moves);
    start: the initial cochain (copied); dt: the Euler step. An example stops moving once it has
    converged. Returns ``(cochain, converged (B,) bool, steps (B,) int, Trajectory or None)``.
    """
    B = X.shape[0]
    two_sided = Y is not None
    c = start.copy()
    if two_sided:
        c.yhat = Y.copy()
    done = np.zeros(B, dtype=bool)
    iters = np.zeros(B, dtype=np.int64)
    rec_E, rec_out, rec_sw = [], [], []
    prev_S = c.patterns()
    for step in range(max_iter + 1):
        v, d = flow_velocity(sheaf, c, two_sided)
        E = d.energies().sum(axis=1)
        if not np.all(np.isfinite(E)):
            raise FloatingPointError(f"diffusion diverged at step {step}: the Euler step={dt:g} is too "
                                     "large for these weights (lower `step`)")
        if record:
            S = c.patterns()
            sw = np.zeros(B, dtype=bool)
            for s_new, s_old in zip(S, prev_S):
                sw |= (s_new != s_old).any(axis=1)
            prev_S = S
            rec_E.append(E)
            rec_out.append((c.z[-1] if two_sided else c.yhat).copy())
            rec_sw.append(sw)
        done |= _speed(v) <= tol
        if done.all() or step == max_iter:
            break
        iters += ~done
        euler_step(c, v, (~done).astype(np.float64)[:, None] * dt)
    traj = None
    if record:
        traj = Trajectory(np.array(rec_E), np.array(rec_out), np.array(rec_sw), dt)
    return c, done, iters, traj


# ---------------------------------------------------------------------------------- joint flow
@dataclass
class JointHistory:
    """What :meth:`JointFlow.run` recorded, one row per recorded step.

    step: (k,) step numbers, counted from the flow's start (they continue across ``run`` calls);
    theta_time: (k,) slow time ``eta_theta * step``; energy: (k, B) per-example energy of the current
    (not relaxed) cochain; train_mse: (k,) forward-pass MSE; weight_change: (k,) ``||theta - theta_0||``
    with ``theta_0`` the weights the flow started from.
    """

    step: np.ndarray
    theta_time: np.ndarray
    energy: np.ndarray
    train_mse: np.ndarray
    weight_change: np.ndarray


class JointFlow:
    """The joint flow of cochains and weights, integrated together by explicit Euler.

    Each step moves every example's cochain by ``eta_c`` times its heat-flow velocity and the weights
    by ``eta_theta = eps * eta_c`` times minus the local rule at the current cochains. As ``eps -> 0``
    the cochains stay relaxed while the weights move, and the flow approaches Algorithm 4 with plain
    gradient descent of step ``eta_theta`` (Proposition 2).

    sheaf : initial weights (copied; the flow's are ``.sheaf``, the initial ones ``.theta0``).
    eps : timescale ratio ``eta_theta / eta_c``. eta_c : cochain step (default ``0.9 / lambda_max_bound``).

    The state persists across :meth:`run` calls: the cochains (for the same batch), the weights and
    the step counter ``.steps``, so several short runs equal one long run.
    """

    def __init__(self, sheaf: NeuralSheaf, eps: float = 0.01, eta_c: float | None = None):
        instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
        self.sheaf = sheaf.copy()
        self.theta0 = flatten(sheaf.parameters)
        self.eps = positive(eps, "eps")
        self.eta_c = positive(eta_c, "eta_c") if eta_c is not None else 0.9 / sheaf.lambda_max_bound()
        self.cochain = None
        self.steps = 0

    @property
    def eta_theta(self) -> float:
        return self.eps * self.eta_c

    def run(self, X, Y, steps: int, record_every: int = 1) -> JointHistory:
        """Integrate ``steps`` more Euler steps on the full batch X (B, n_0), Y (B, n_L).

        The cochains start at the forward pass with the output pinned to Y, and persist while the
        batch stays the same (a new batch restarts them). Records the state before the first step of
        the flow (step 0), after every step whose number is a multiple of ``record_every``, and after
        the last step of this call.
        """
        X = self.sheaf.check_input(X)
        Y = self.sheaf.check_target(Y, X.shape[0])
        steps = positive(steps, "steps", integer=True)
        record_every = positive(record_every, "record_every", integer=True)
        if self.cochain is None or not np.array_equal(self.cochain.x, X):
            self.cochain = self.sheaf.forward_cochain(X, Y)
        rec = {k: [] for k in ("step", "energy", "mse", "change")}
        params = self.sheaf.parameters
        B = X.shape[0]
        first, last = self.steps, self.steps + steps
        while True:
            v, d = flow_velocity(self.sheaf, self.cochain)
            k = self.steps
            # step 0 once; later calls start where the previous one recorded its last step
            if k == 0 or (k > first and (k % record_every == 0 or k == last)):
                rec["step"].append(k)
                rec["energy"].append(d.energies().sum(axis=1))
                rec["mse"].append(self.sheaf._mse(X, Y))
                rec["change"].append(float(np.linalg.norm(flatten(params) - self.theta0)))
                if not np.all(np.isfinite(rec["energy"][-1])):
                    raise FloatingPointError(f"joint flow diverged at step {k}: lower eta_c "
                                             f"(={self.eta_c:g}) or eps (={self.eps:g})")
            if k == last:
                break
            sum_W, sum_b = local_sums(self.sheaf, self.cochain, d)   # the local rule, unchecked here
            euler_step(self.cochain, v, self.eta_c)
            for p, g in zip(params, sum_W + sum_b):
                p -= self.eta_theta * (g / B)
            self.steps += 1
        steps_arr = np.array(rec["step"])
        return JointHistory(steps_arr, steps_arr * self.eta_theta, np.array(rec["energy"]),
                            np.array(rec["mse"]), np.array(rec["change"]))
