"""Dynamics on the sheaf: the pinned heat flow of the cochains.

* :func:`flow_velocity` and :func:`euler_step`: the pinned heat flow ``dc/dt = -grad_c E``. A hidden
  unit whose step would cross the kink ``z = 0`` stops on it, and stays while both one-sided
  derivatives point back at it (the Filippov sliding solution), so the flow settles exactly on kink
  minima. :func:`diffuse` integrates it to a tolerance (``equilibrium(method="diffusion")``).

The joint flow of cochains and weights, which also needs the local rule, is :mod:`sheaflab.joint`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sheaf import Cochain, NeuralSheaf


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
        d = sheaf.discord(c, check=False)
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
