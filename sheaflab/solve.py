"""The fast phase: relax a batch of cochains to equilibrium.

Two methods reach a local minimum of the Dirichlet energy with the input pinned (and the output
pinned to a target when ``Y`` is given):

* ``method="direct"``: an active-set walk through activation regions. Inside one region the energy
  is a strictly convex quadratic; its minimiser comes from one block-tridiagonal linear solve
  (:func:`region_minimizer`). The walk moves towards that minimiser but stops on the first kink
  ``z_j = 0`` it meets, holds that unit at the kink, and releases it only when a one-sided
  derivative says the energy decreases off the kink. So the true (piecewise) energy never increases,
  and minima that sit exactly on a kink are found exactly.
* ``method="diffusion"``: the pinned heat flow ``dc/dt = -grad E`` integrated by explicit Euler.
  A unit whose step would cross a kink stops on it, and stays while both one-sided derivatives point
  back at it (the Filippov sliding solution), so the flow also settles exactly on kink minima.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ._checks import choice, positive
from .sheaf import Cochain, Discords, NeuralSheaf

ACTIVE, INACTIVE, CLAMPED = 1, -1, 0


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


@dataclass
class Equilibrium:
    """Result of :func:`equilibrium` for a batch of ``B`` examples (modelled on scipy's OptimizeResult).

    cochain: the equilibrium :class:`Cochain`; ``z`` and ``a`` are shortcuts to its stalks.
    energy: (B,) Dirichlet energy at equilibrium.
    discord: per-edge discords (:class:`Discords`, named and typed edges in path order).
    converged: (B,) bool; iterations: (B,) int (region solves for "direct", Euler steps for
    "diffusion"); patterns: hidden-layer activation patterns ``z_l > 0``, each (B, n_l) bool;
    kinks: hidden units held exactly at ``z = 0``, each (B, n_l) bool.
    """

    cochain: Cochain
    energy: np.ndarray
    discord: Discords
    converged: np.ndarray
    iterations: np.ndarray
    patterns: list
    kinks: list
    method: str
    pinned: str
    message: str
    trajectory: Trajectory | None = None

    @property
    def z(self) -> list:
        return self.cochain.z

    @property
    def a(self) -> list:
        return self.cochain.a

    @property
    def success(self) -> bool:
        return bool(np.all(self.converged))

    def lambda_min(self, sheaf: NeuralSheaf) -> np.ndarray:
        """(B,) spectral gap of ``L_free`` at each example's equilibrium activation pattern."""
        return sheaf.lambda_min(self.patterns, self.pinned)


# ---------------------------------------------------------------------------------- region solve
def _solve_spd(M, r):
    """Solve a batch of small SPD systems M (B, n, n) x = r (B, n)."""
    return np.linalg.solve(M, r[..., None])[..., 0]


def region_minimizer(sheaf: NeuralSheaf, X, Y, modes):
    """Minimise the two-sided energy inside one activation region: one block-tridiagonal solve.

    X: (B, n_0), Y: (B, n_L), modes: list over hidden layers of (B, n_l) int arrays with
    +1 (active: ReLU discord ``z - a``), -1 (inactive: ``-a``) or 0 (held at the kink ``z = 0``).
    Returns ``(z, a)``: lists of (B, n_l) stalks of the unique minimiser of that quadratic.

    Method: the z-blocks of ``L_free`` are diagonal, so every ``z_l`` is eliminated in closed form
    (``z = (u + a) / 2`` if active, ``z = u`` if inactive, ``z = 0`` at a kink, ``z_L = (u_L + y) / 2``
    where ``u_l = W_l a_{l-1} + b_l``). What remains is a symmetric positive definite
    block-tridiagonal system in ``a_1 .. a_{L-1}``:
    ``M_l = diag(1 - s_l/2) + W_{l+1}^T diag(p_{l+1}) W_{l+1}`` on the diagonal and
    ``-W_{l+1}^T diag(s_{l+1}/2)`` off it. With one hidden layer ``M_1`` is diagonal plus rank
    ``n_L`` and the solve is a Woodbury update, O(B n_1 n_L^2).
    """
    Ws, bs, L = sheaf.weights, sheaf.biases, sheaf.depth
    if L == 1:  # no hidden layer: only z_1 is free
        z1 = 0.5 * (X @ Ws[0].T + bs[0] + Y)
        return [z1], []
    s = [(m == ACTIVE).astype(np.float64) for m in modes]
    half_s = [0.5 * si for si in s]
    # p_{l+1}: weight of the next affine edge after eliminating z_{l+1}
    p = []
    for l in range(1, L):
        if l + 1 == L:
            p.append(None)  # output layer: 1/2 everywhere
        else:
            p.append(half_s[l] + (modes[l] == CLAMPED))
    rhs = []
    for l in range(1, L):
        W_next, b_next = Ws[l], bs[l]
        r = half_s[l - 1] * bs[l - 1]
        if p[l - 1] is None:
            r = r - 0.5 * (b_next - Y) @ W_next  # the target enters through z_L = (u_L + y) / 2
        else:
            r = r - (p[l - 1] * b_next) @ W_next
        if l == 1:
            r = r + half_s[0] * (X @ Ws[0].T)
        rhs.append(r)
    diag = [1.0 - hs for hs in half_s]

    if L == 2:
        a1 = _woodbury_solve(diag[0], Ws[1], rhs[0])
        acts = [a1]
    else:
        acts = _block_thomas(Ws, diag, p, half_s, rhs)
    zs, prev = [], X
    for l in range(1, L + 1):
        u = prev @ Ws[l - 1].T + bs[l - 1]
        if l == L:
            zs.append(0.5 * (u + Y))
        else:
            a = acts[l - 1]
            m = modes[l - 1]
            zs.append(np.where(m == ACTIVE, 0.5 * (u + a), np.where(m == INACTIVE, u, 0.0)))
            prev = a
    return zs, acts


def _woodbury_solve(d, W, r):
    """Solve ``(diag(d) + 1/2 W^T W) a = r`` per example. d: (B, n); W: (m, n) with m small;
    r: (B, n) or (B, n, k) for k right-hand sides at once."""
    mat = r.ndim == 3
    dinv = 1.0 / d
    g = r * (dinv[:, :, None] if mat else dinv)
    if W.shape[0] == 1 and not mat:
        w = W[0]
        coef = (g @ w) / (2.0 + dinv @ (w * w))
        return g - coef[:, None] * (w * dinv)
    K = 2.0 * np.eye(W.shape[0]) + np.einsum("bj,kj,mj->bkm", dinv, W, W)
    Wg = np.einsum("kj,bj...->bk...", W, g)
    h = np.linalg.solve(K, Wg if mat else Wg[..., None])
    corr = np.einsum("kj,bk...->bj...", W, h if mat else h[..., 0])
    return g - corr * (dinv[:, :, None] if mat else dinv)


def _block_thomas(Ws, diag, p, half_s, rhs):
    """Block-tridiagonal solve over hidden layers 1..L-1, eliminating from the output end.

    The last block, ``diag + 1/2 W_L^T W_L``, is never formed: Woodbury applies its inverse at the cost
    of an ``n_L x n_L`` solve. Each earlier block is dense per example and is factorised once for its
    Schur complement and right-hand side together, and once more in the back substitution.
    """
    L = len(Ws)
    K = L - 2                                      # blocks 0..K hold a_1 .. a_{L-1}
    # C[k] (B, n_k, n_{k+1}) couples block k to block k+1: -W_{k+2}^T diag(s_{k+2} / 2)
    C = [-Ws[k + 1].T[None, :, :] * half_s[k + 1][:, None, :] for k in range(K)]
    inverse = [None] * (K + 1)                     # solvers for the Schur-complemented blocks
    inverse[K] = lambda R: _woodbury_solve(diag[K], Ws[L - 1], R)
    rt = [None] * (K + 1)
    rt[K] = rhs[K]
    for k in range(K - 1, -1, -1):
        Ct = np.swapaxes(C[k], 1, 2)               # (B, n_{k+1}, n_k)
        both = inverse[k + 1](np.concatenate([Ct, rt[k + 1][:, :, None]], axis=2))
        G, g = both[:, :, :-1], both[:, :, -1]
        Mk = np.einsum("bk,kj,ki->bji", p[k], Ws[k + 1], Ws[k + 1], optimize=True)
        idx = np.arange(Mk.shape[1])
        Mk[:, idx, idx] += diag[k]
        Mk -= C[k] @ G
        rt[k] = rhs[k] - np.einsum("bij,bj->bi", C[k], g)
        inverse[k] = lambda R, Mk=Mk: (np.linalg.solve(Mk, R) if R.ndim == 3
                                       else _solve_spd(Mk, R))
    acts = [inverse[0](rt[0])]
    for k in range(K):
        acts.append(inverse[k + 1](rt[k + 1] - np.einsum("bji,bj->bi", C[k], acts[k])))
    return acts


# ---------------------------------------------------------------------------------- one hidden layer
def _scalar_case(sheaf) -> bool:
    """True for ``[n_0, n_1, 1]`` networks, where :func:`_one_hidden_scalar` applies."""
    return sheaf.depth == 2 and sheaf.dims[-1] == 1


def _one_hidden_scalar(sheaf, X, Y, max_iter):
    """Exact equilibrium for ``[n_0, n_1, 1]`` started from the forward pass (no walk needed).

    With one hidden layer ``u = W_1 x + b_1`` is pinned, so each hidden unit sees a one-dimensional
    problem in ``(z_j, a_j)``. Starting from the forward pass, units with ``u_j <= 0`` stay inactive
    (``z_j = u_j``, nothing pulls them across) and units with ``u_j > 0`` are either active
    (``z = (u + a) / 2``) or held on the kink ``z = 0``; the energy restricted to these regions is
    strictly convex. Eliminating z, the stationarity conditions depend on the scalar output discord
    ``s = w . a + b_2 - y``: ``a_j = u_j - w_j s`` while ``w_j s <= 2 u_j`` (active) and
    ``a_j = -w_j s / 2`` otherwise. So ``s`` is the root of a piecewise-linear increasing function
    ``h(s) = s - (b_2 - y) - w . a(s)`` (slope >= 1), found exactly by safeguarded Newton steps:
    each step is one region solve and the walk stops when a step stays in its region.
    Returns (z, a, kink mask, converged, iterations, discords in path order); the walk of
    :func:`_direct_two_sided` reaches the same minimiser (a test checks it).
    """
    W1, b1, w, b2 = sheaf.weights[0], sheaf.biases[0], sheaf.weights[1][0], sheaf.biases[1][0]
    B = X.shape[0]
    u = X @ W1.T + b1
    c = b2 - Y[:, 0]
    pos = u > 0                            # units with u <= 0 are never active
    two_u = 2.0 * u
    wu, w2h = w * u, 0.5 * w * w
    base = 1.0 + w2h.sum()
    act = pos.copy()

    def newton(rows, actf):
        """Slope, intercept and root of the linear piece of h for the given active sets."""
        slope = base + actf @ w2h
        icpt = -c[rows] - np.einsum("ij,ij->i", actf, wu[rows])
        return slope, icpt, -icpt / slope

    _, _, s = newton(slice(None), pos.astype(np.float64))
    iters = np.ones(B, dtype=np.int64)
    lo, hi = np.full(B, -np.inf), np.full(B, np.inf)
    rows = slice(None)          # every row on the first pass, then only those still moving
    for _ in range(max_iter):
        new = (s[rows, None] * w <= two_u[rows]) & pos[rows]
        moved = (new ^ act[rows]).any(axis=1)
        rows, new = np.flatnonzero(moved) if isinstance(rows, slice) else rows[moved], new[moved]
        if rows.size == 0:
            break
        # the step left its region: take the piece it landed in, bracketing the root of h
        act[rows] = new
        slope, icpt, root = newton(rows, new.astype(np.float64))
        sr = s[rows]
        h = slope * sr + icpt
        lo[rows] = np.where(h < 0, sr, lo[rows])
        hi[rows] = np.where(h > 0, sr, hi[rows])
        inside = (root > lo[rows]) & (root < hi[rows])
        s[rows] = np.where(inside, root, 0.5 * (lo[rows] + hi[rows]))
        iters[rows] += 1
    converged = np.ones(B, dtype=bool)
    converged[rows] = False
    half_sw = np.multiply(s[:, None], 0.5 * w)
    relu_z = np.subtract(u, half_sw)             # active: z = (u + a) / 2 = u - s w / 2
    relu_z *= act                                # relu(z_1): kink and inactive units give 0
    a = relu_z - half_sw                         # active: u - s w; otherwise -s w / 2
    z1 = relu_z + u * ~pos                       # inactive: z = u; kink: z = 0
    half_s = 0.5 * s[:, None]
    z2 = 0.5 * (b2 + Y) + 0.5 * (a @ w)[:, None]
    # the discords in closed form: relu(z) - a = s w / 2 on every unit, affine_2 = output = s / 2
    discords = [u - z1, half_sw, half_s, half_s.copy()]
    return [z1, z2], [a], [pos & ~act], converged, iters, discords


# ---------------------------------------------------------------------------------- direct walk
def _release_strength(u, a, tol):
    """For units held at ``z = 0``: how strongly the energy falls when ``z`` leaves the kink.

    u = W a_prev + b and a are (B, n). The one-sided derivatives of the energy in ``z`` at 0 are
    ``g+ = -(u + a)`` (moving up, unit active) and ``g- = -u`` (moving down, unit inactive).
    Returns (strength, direction): the descent rate off the kink (0 if neither side descends beyond
    ``tol``) and the side to release to (ACTIVE or INACTIVE).
    """
    scale = tol * (1.0 + np.abs(u) + np.abs(a))
    up = np.maximum(u + a, 0.0)        # -g+ > 0: moving up descends
    down = np.maximum(-u, 0.0)         # g- > 0: moving down descends
    up = np.where(up > scale, up, 0.0)
    down = np.where(down > scale, down, 0.0)
    direction = np.where(up >= down, ACTIVE, INACTIVE).astype(np.int8)
    return np.maximum(up, down), direction


def _direct_two_sided(sheaf, X, Y, start, tol, max_iter):
    """Active-set walk from ``start``; returns (z, a, modes, converged, iterations)."""
    B, L = X.shape[0], sheaf.depth
    Ws, bs = sheaf.weights, sheaf.biases
    z = [zz.copy() for zz in start.z]
    a = [aa.copy() for aa in start.a]
    modes = [np.where(zz > 0, ACTIVE, np.where(zz < 0, INACTIVE, CLAMPED)).astype(np.int8)
             for zz in z[:-1]]
    iters = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    single = np.zeros(B, dtype=bool)  # after a step that could not move: release one unit at a time
    active = np.arange(B)
    for _ in range(max_iter):
        if active.size == 0:
            break
        sel = slice(None) if active.size == B else active
        Xs, Ys = X[sel], Y[sel]
        ms = [m[sel].copy() for m in modes]
        z0 = [zz[sel] for zz in z]
        a0 = [aa[sel] for aa in a]
        z1, a1 = region_minimizer(sheaf, Xs, Ys, ms)
        iters[sel] += 1
        # longest step towards the region minimiser that stays in the region's closure
        t = np.ones(Xs.shape[0])
        hit = []
        for l in range(L - 1):
            m, zo, zn = ms[l], z0[l], z1[l]
            cross = ((m == ACTIVE) & (zn < 0)) | ((m == INACTIVE) & (zn > 0))
            with np.errstate(divide="ignore", invalid="ignore"):
                tl = np.where(cross, zo / (zo - zn), np.inf)
            hit.append(tl)
            if tl.shape[1]:
                t = np.minimum(t, tl.min(axis=1))
        tt = t[:, None]
        zn = [zo + tt * (zz - zo) for zo, zz in zip(z0, z1)]
        an = [ao + tt * (aa - ao) for ao, aa in zip(a0, a1)]
        strengths, directions = [], []
        prev = Xs
        for l in range(L - 1):
            m = ms[l]
            hold = (hit[l] <= tt) | ((m == ACTIVE) & (zn[l] < 0)) | ((m == INACTIVE) & (zn[l] > 0))
            zn[l][hold] = 0.0
            m[hold] = CLAMPED
            u = prev @ Ws[l].T + bs[l]
            st, di = _release_strength(u, an[l], tol)
            st[m != CLAMPED] = 0.0
            strengths.append(st)
            directions.append(di)
            prev = an[l]
        full_step = t >= 1.0
        st_all = np.concatenate(strengths, axis=1) if strengths else np.zeros((Xs.shape[0], 0))
        wants = st_all > 0
        # release only at a face minimiser (full step); one unit at a time after a stalled step
        release = wants & full_step[:, None]
        one = single[sel] & full_step
        if np.any(one) and st_all.shape[1]:
            top = np.zeros_like(release)
            top[np.arange(len(t)), st_all.argmax(axis=1)] = True
            release = np.where(one[:, None], release & top, release)
        off = 0
        for l in range(L - 1):
            n = ms[l].shape[1]
            r = release[:, off:off + n]
            ms[l][r] = directions[l][r]
            off += n
        done_now = full_step & ~wants.any(axis=1)
        single_new = np.where(t <= 0.0, True, np.where(release.any(axis=1), False, single[sel]))
        for l in range(L):
            z[l][sel] = zn[l]
        for l in range(L - 1):
            a[l][sel] = an[l]
            modes[l][sel] = ms[l]
        single[sel] = single_new
        idx = np.arange(B)[sel]
        converged[idx[done_now]] = True
        active = idx[~done_now]
    return z, a, modes, converged, iters


# ---------------------------------------------------------------------------------- heat flow
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


def _diffusion(sheaf, X, Y, start, tol, max_iter, dt, record):
    """Explicit Euler on the pinned heat flow with kink sliding; see the module docstring."""
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


# ---------------------------------------------------------------------------------- public API
def equilibrium(sheaf: NeuralSheaf, X, Y=None, method: str = "direct", tol: float | None = None,
                max_iter: int | None = None, init=None, step: float | None = None,
                record: bool = False) -> Equilibrium:
    """Relax a batch of cochains to equilibrium (the fast phase).

    Parameters
    ----------
    sheaf : NeuralSheaf
    X : (B, n_0) inputs, pinned at the input vertex.
    Y : (B, n_L) targets pinned at the output vertex, or ``None`` for input-only pinning, whose
        equilibrium is the forward pass (zero energy).
    method : "direct" (active-set walk of per-region linear solves) or "diffusion" (explicit Euler
        heat flow).
    tol : direct: relative tolerance of the one-sided derivative test at kinks (default 1e-12);
        diffusion: stop when the norm of an example's velocity ``||dc/dt||`` is below ``tol``
        (default 1e-8).
    max_iter : region solves (direct, default 100) or Euler steps (diffusion, default 200000).
    init : starting cochain (a :class:`Cochain` for the same batch), ``"forward"`` (default: the
        forward pass) or ``"zeros"``. With several local minima the start decides which one is found.
    step : Euler step for diffusion; default ``1 / sheaf.lambda_max_bound()`` (always stable).
    record : diffusion only: keep the :class:`Trajectory` (energy, output stalk and pattern switches
        per step).

    Returns
    -------
    Equilibrium. Examples that did not converge are flagged in ``converged`` and reported with a
    ``RuntimeWarning``; non-finite values raise ``FloatingPointError``.
    """
    if not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    choice(method, "method", ("direct", "diffusion"))
    X = sheaf.check_input(X)
    B = X.shape[0]
    Y = None if Y is None else sheaf.check_target(Y, B)
    pinned = "input" if Y is None else "both"
    tol = positive(tol if tol is not None else (1e-12 if method == "direct" else 1e-8), "tol")
    max_iter = positive(max_iter if max_iter is not None else (100 if method == "direct" else 200_000),
                        "max_iter", integer=True)
    if isinstance(init, Cochain):
        sheaf._check_cochain(init)
        if init.batch_size != B or not np.array_equal(init.x, X):
            raise ValueError("init must be a Cochain whose input stalk x equals X")
        start = init.copy()
    elif init is None or init == "forward":
        start = None  # built below only when a method needs it
    elif init == "zeros":
        start = sheaf.forward_cochain(X)
        start = Cochain(X.copy(), [np.zeros_like(v) for v in start.z], [np.zeros_like(v) for v in start.a],
                        np.zeros_like(start.yhat))
    else:
        raise ValueError(f"init must be a Cochain, 'forward' or 'zeros'; got {init!r}")
    if record and method != "diffusion":
        raise ValueError("record=True needs method='diffusion' (the direct solve has no time axis)")

    if start is None and not (method == "direct" and (Y is None or _scalar_case(sheaf))):
        start = sheaf.forward_cochain(X)
    traj = discord = None
    if method == "direct":
        if Y is None:
            # delta_free is unitriangular: forward substitution, i.e. the forward pass, solves it
            c = sheaf.forward_cochain(X)
            converged, iters = np.ones(B, dtype=bool), np.ones(B, dtype=np.int64)
            kinks = [np.zeros(v.shape, dtype=bool) for v in c.a]
        elif start is None:
            z, a, kinks, converged, iters, d = _one_hidden_scalar(sheaf, X, Y, max_iter)
            c = Cochain(X, z, a, Y.copy())
            discord = Discords(sheaf._edges, d)
        else:
            z, a, modes, converged, iters = _direct_two_sided(sheaf, X, Y, start, tol, max_iter)
            c = Cochain(X, z, a, Y.copy())
            kinks = [m == CLAMPED for m in modes]
    else:
        dt = positive(step, "step") if step is not None else 1.0 / sheaf.lambda_max_bound()
        c, converged, iters, traj = _diffusion(sheaf, X, Y, start, tol, max_iter, dt, record)
        kinks = [v == 0 for v in c.z[:-1]]
    if discord is None:
        discord = sheaf._discord(c)
    energy = discord.energies().sum(axis=1)
    if not np.all(np.isfinite(energy)):  # any non-finite stalk makes its example's energy non-finite
        raise FloatingPointError("equilibrium produced non-finite stalks; check the scale of the "
                                 "weights, X and Y")
    n_bad = int(B - converged.sum())
    if n_bad:
        message = (f"{n_bad} of {B} examples did not converge within max_iter={max_iter} "
                   f"({method}); their stalks are the last iterate")
        warnings.warn(f"equilibrium: {message}", RuntimeWarning, stacklevel=2)
    else:
        message = f"all {B} examples converged ({method}, at most {int(iters.max())} iterations)"
    return Equilibrium(c, energy, discord, converged, iters, c.patterns(), kinks, method, pinned,
                       message, traj)


def local_gradients(sheaf: NeuralSheaf, eq: Equilibrium):
    """Edge-local gradient of the batch-mean energy with respect to every weight and bias.

    For the affine edge ``affine_l`` with discord ``d`` (B, n_l) and presynaptic stalk ``a_{l-1}``
    (B, n_{l-1}): ``grad W_l = d^T a_{l-1} / B`` (shape (n_l, n_{l-1})) and ``grad b_l = mean(d)``.
    Each uses only the two endpoint stalks of its own edge. At an equilibrium this is the exact
    gradient of the mean residual ``R(theta)`` (envelope theorem).
    Returns ``(grad_W, grad_b)``, two lists ordered like ``sheaf.weights`` and ``sheaf.biases``.
    """
    if not isinstance(eq, Equilibrium):
        raise TypeError(f"eq must be a sheaflab.Equilibrium, got {type(eq).__name__}")
    sheaf._check_cochain(eq.cochain)
    return edge_gradients(sheaf, eq.cochain, eq.discord)


def edge_gradients(sheaf: NeuralSheaf, cochain: Cochain, discord: Discords | None = None):
    """The same edge-local rule at any cochain (not necessarily an equilibrium): the gradient of the
    batch-mean energy with respect to the parameters with the stalks held fixed. The joint flow uses
    it away from equilibrium. Returns ``(grad_W, grad_b)``."""
    d = sheaf._discord(cochain) if discord is None else discord
    B = cochain.batch_size
    pres = cochain.activations()
    grad_W, grad_b = [], []
    for l in range(1, sheaf.depth + 1):
        dl = d[f"affine_{l}"]
        grad_W.append(dl.T @ pres[l - 1] / B)
        grad_b.append(dl.mean(axis=0))
    return grad_W, grad_b


def residual(sheaf: NeuralSheaf, X, Y, **kwargs) -> float:
    """Mean equilibrium energy ``R(theta) = mean_i min E`` of a batch (both ends pinned)."""
    return float(equilibrium(sheaf, X, Y, **kwargs).energy.mean())
