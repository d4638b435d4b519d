"""The direct fast-phase solver: exact two-sided equilibria, one activation region at a time.

Inside one activation region the two-sided Dirichlet energy is a strictly convex quadratic, and its
minimiser comes from one block-tridiagonal linear solve (:func:`region_minimizer`). The active-set
walk (:func:`walk`) moves from a start towards that minimiser but stops on the first kink ``z_j = 0``
it meets, keeps that unit on the kink, and releases it only when a one-sided derivative says the
energy decreases off it. So the true (piecewise quadratic) energy never increases, and minima that
sit exactly on a kink are found exactly. For ``[n_0, n_1, 1]`` networks :func:`one_hidden_scalar`
reaches the same minimiser from the forward pass by a scalar breakpoint search.

Two region solvers serve the walk on nets with two or more hidden layers (:func:`choose_solver`):
the dense one factorises every example's blocks (:func:`_block_thomas`), and the iterative one runs
conjugate gradients on the reduced Schur system of :mod:`sheaflab.reduced`, batched over the
examples with one shared Cholesky preconditioner, from the walk's current activations. CG lowers
the region's energy at every iteration, so the walk's guarantees hold with it too: the true energy
never rises, kink minima end exactly on ``z = 0``, and an example counts as converged only when its
last region solve met the tolerance (see :mod:`sheaflab.reduced`).

Each hidden unit is in one of three modes: ``ACTIVE`` (``z > 0``: ReLU discord ``z - a``),
``INACTIVE`` (``z < 0``: discord ``-a``) or ``KINK`` (``z = 0`` exactly: a unit on the kink).
This module is called through :func:`sheaflab.equilibrium` (``method="direct"``).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from . import heads
from .reduced import ReducedSystem, cg_tol
from .sheaf import NeuralSheaf

ACTIVE, INACTIVE, KINK = 1, -1, 0

# "auto" solves regions densely when every hidden width is at most DENSE_MAX_WIDTH (16 with three
# or more hidden layers), conjugate gradients on the reduced system otherwise. Measured here (walk
# from the forward pass, B = 300, dense / cg ms): [2,12,12,1] 10.6 / 10.4, [2,16,16,1] 23 / 15,
# [2,24,24,1] 63 / 28, [2,8,8,8,1] 14.5 / 24, [2,16,16,16,1] 50 / 47, [2,16,16,16,16,1] 94 / 97,
# [2,32,32,32,1] 190 / 95, [2,128,128,1] 1610 / 93 (bench/bench_engine.py prints the crossover).
DENSE_MAX_WIDTH = 12
DENSE_MAX_WIDTH_DEEP = 16
# conjugate-gradient iterations allowed per region solve (the walk resumes from where CG stopped)
CG_MAX_ITER = 200


def _solve_spd(M, r):
    """Solve a batch of small SPD systems M (B, n, n) x = r (B, n)."""
    return np.linalg.solve(M, r[..., None])[..., 0]


def region_minimizer(sheaf: NeuralSheaf, X, Y, modes):
    """Minimise the two-sided energy inside one activation region: one block-tridiagonal solve.

    X: (B, n_0), Y: (B, n_L), modes: list over hidden layers of (B, n_l) int arrays with
    +1 (active: ReLU discord ``z - a``), -1 (inactive: ``-a``) or 0 (on the kink ``z = 0``).
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
            p.append(half_s[l] + (modes[l] == KINK))
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
    return _stalks(sheaf, X, Y, modes, acts)


def _stalks(sheaf, X, Y, modes, acts):
    """``(z, a)`` of a region's cochain from its activations: each ``z_l`` in closed form."""
    Ws, bs, L = sheaf.weights, sheaf.biases, sheaf.depth
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
def scalar_case(sheaf) -> bool:
    """True for ``[n_0, n_1, 1]`` networks with the identity or sigmoid head, where the scalar
    breakpoint solves :func:`one_hidden_scalar` and :func:`one_hidden_sigmoid` apply."""
    return sheaf.depth == 2 and sheaf.dims[-1] == 1 and sheaf.head in ("identity", "sigmoid")


def head_region_minimizer(sheaf: NeuralSheaf, X, Y, modes, linear=None, start=None):
    """The region minimiser of a network with a sigmoid or softmax head: ``n_L + 1`` linear solves.

    Inside one region the identity-head minimiser is affine in its target ``y'``, so the solves for
    ``y' = y`` and ``y' = y + e_k`` give it for every target; :func:`sheaflab.heads.output_target`
    finds the ``y'`` whose output block minimises the head's energy (a small Newton problem per
    example, started from ``start``, the current ``z_L``, when given), and the minimiser is the
    matching combination. ``linear(Y')`` solves one target (an iterative solver, warm-started at the
    first); by default the ``n_L + 1`` targets go to :func:`region_minimizer` as one stacked batch.
    Returns ``(z, a, converged)`` like :func:`region_minimizer` plus a (B,) bool for the Newton solve.
    """
    B, n = Y.shape
    targets = [Y] + [Y + np.eye(n)[k] for k in range(n)]
    if linear is None:
        zs, acts = region_minimizer(sheaf, np.tile(X, (n + 1, 1)), np.concatenate(targets),
                                    [np.tile(m, (n + 1, 1)) for m in modes])
        sols = [([zz[j * B:(j + 1) * B] for zz in zs], [aa[j * B:(j + 1) * B] for aa in acts])
                for j in range(n + 1)]
    else:
        sols = [linear(t) for t in targets]
    (z0, a0), cols = sols[0], sols[1:]
    dz = [[c[0][l] - z0[l] for l in range(len(z0))] for c in cols]
    da = [[c[1][l] - a0[l] for l in range(len(a0))] for c in cols]
    J = np.stack([d[-1] for d in dz], axis=2)                  # (B, n, n): d z_L / d y'
    J = 0.5 * (J + np.swapaxes(J, 1, 2))                       # symmetric in exact arithmetic
    t0 = z0[-1] - np.einsum("bij,bj->bi", J, Y)                # z_L at y' = 0
    y_eff, _, ok = heads.output_target(sheaf.output_head, J, t0, Y, start=start)
    shift = y_eff - Y
    z = [z0[l] + sum(shift[:, k:k + 1] * dz[k][l] for k in range(n)) for l in range(len(z0))]
    a = [a0[l] + sum(shift[:, k:k + 1] * da[k][l] for k in range(n)) for l in range(len(a0))]
    return z, a, ok


def one_hidden_scalar(sheaf, X, Y, max_iter):
    """Exact equilibrium for ``[n_0, n_1, 1]`` started from the forward pass (no walk needed).

    With one hidden layer ``u = W_1 x + b_1`` is pinned, so each hidden unit sees a one-dimensional
    problem in ``(z_j, a_j)``. Starting from the forward pass, units with ``u_j <= 0`` stay inactive
    (``z_j = u_j``, nothing pulls them across) and units with ``u_j > 0`` are either active
    (``z = (u + a) / 2``) or on the kink ``z = 0``; the energy restricted to these regions is
    strictly convex. Eliminating z, the stationarity conditions depend on the scalar output discord
    ``s = w . a + b_2 - y``: ``a_j = u_j - w_j s`` while ``w_j s <= 2 u_j`` (active) and
    ``a_j = -w_j s / 2`` otherwise. So ``s`` is the root of a piecewise-linear increasing function
    ``h(s) = s - (b_2 - y) - w . a(s)`` (slope >= 1), found exactly by safeguarded Newton steps:
    each step is one region solve and the walk stops when a step stays in its region.
    Returns (z, a, kink mask, converged, iterations, discords in path order); the walk of
    :func:`walk` reaches the same minimiser (a test checks it).
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


def one_hidden_sigmoid(sheaf, X, Y, max_iter, tol: float = 1e-13):
    """Exact equilibrium for ``[n_0, n_1, 1]`` with a sigmoid head, from the forward pass: one scalar.

    As in :func:`one_hidden_scalar`, with ``u = W_1 x + b_1`` pinned, write ``r`` for the discord of
    the second affine edge. Units with ``u_j <= 0`` stay inactive; a unit with ``u_j > 0`` is active
    while ``w_j r <= u_j`` (``z_j = u_j - w_j r``, ``a_j = u_j - 2 w_j r``) and on the kink otherwise
    (``z_j = 0``, ``a_j = -w_j r``, as for an inactive unit). Then ``z_2 = f_A - D_2 r`` with
    ``f_A = w_A . u_A + b_2`` and ``D_2 = 1 + ||w||^2 + ||w_A||^2``, a continuous decreasing function of
    ``r``, and the output edge's stationarity ``r = sigmoid(z_2) - y`` makes ``r`` the root of the
    continuous increasing ``h(r) = r - sigmoid(z_2(r)) + y``. Safeguarded Newton steps (a bracket
    from the signs of ``h``) find it to ``|h| <= tol (1 + |r|)``. Returns (z, a, kink mask, converged,
    iterations, None): the discords are left to the caller, since the output edge is not quadratic.
    """
    W1, b1, w, b2 = sheaf.weights[0], sheaf.biases[0], sheaf.weights[1][0], sheaf.biases[1][0]
    B = X.shape[0]
    u = X @ W1.T + b1
    y = Y[:, 0]
    pos = u > 0
    w2 = w * w
    base, wu = 1.0 + w2.sum(), w * u
    # sigmoid(z_2) lies in (0, 1), so h(-y) < 0 < h(1 - y): the root is bracketed from the start
    lo, hi = -y.astype(np.float64), 1.0 - y
    r = np.zeros(B)                     # inside the bracket: labels are 0/1 (the head checks them)
    h_prev = np.full(B, np.inf)
    iters = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    rows = np.arange(B)
    for _ in range(max_iter):
        rr = r[rows]
        act = pos[rows] & (rr[:, None] * w <= u[rows])
        actf = act.astype(np.float64)
        z2 = (actf * wu[rows]).sum(axis=1) + b2 - (base + actf @ w2) * rr
        p = special.expit(z2)
        h = rr - p + y[rows]
        iters[rows] += 1
        done = np.abs(h) <= tol * (1.0 + np.abs(rr))
        converged[rows[done]] = True
        lo[rows] = np.where(h < 0, np.maximum(lo[rows], rr), lo[rows])
        hi[rows] = np.where(h > 0, np.minimum(hi[rows], rr), hi[rows])
        step = rr - h / (1.0 + (base + actf @ w2) * p * (1.0 - p))
        lo_r, hi_r = lo[rows], hi[rows]
        # Newton where it lands inside the bracket and |h| at least halved on the last step;
        # bisection otherwise (on a saturated sigmoid Newton can bounce between the bracket ends)
        newton = (step > lo_r) & (step < hi_r) & (np.abs(h) <= 0.5 * h_prev[rows])
        r[rows] = np.where(done, rr, np.where(newton, step, 0.5 * (lo_r + hi_r)))
        h_prev[rows] = np.abs(h)
        rows = rows[~done]
        if rows.size == 0:
            break
    act = pos & (r[:, None] * w <= u)
    rw = r[:, None] * w
    z1 = np.where(act, u - rw, np.where(pos, 0.0, u))
    a = np.where(act, u - 2.0 * rw, -rw)
    z2 = (a @ w + b2 - r)[:, None]
    return [z1, z2], [a], [pos & ~act], converged, iters, None


# ---------------------------------------------------------------------------------- direct walk
def _release_strength(u, a, tol):
    """For units on the kink ``z = 0``: how strongly the energy falls when ``z`` leaves the kink.

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


def choose_solver(sheaf, solver: str = "auto") -> str:
    """The region solver the walk uses: ``"dense"`` (per-example block factorisations) or ``"cg"``
    (conjugate gradients on the reduced system, :mod:`sheaflab.reduced`). ``"auto"`` takes the dense
    solve for one hidden layer and for narrow deep nets (every hidden width at most
    :data:`DENSE_MAX_WIDTH`), where it measured faster, and conjugate gradients otherwise."""
    if solver != "auto":
        return solver
    width = max(sheaf.dims[1:-1], default=0)
    if sheaf.depth < 3 or width <= (DENSE_MAX_WIDTH if sheaf.depth == 3 else DENSE_MAX_WIDTH_DEEP):
        return "dense"
    return "cg"


def walk(sheaf, X, Y, start, tol, max_iter, solver="auto", stats=None):
    """Active-set walk from ``start``; returns (z, a, modes, converged, iterations).

    Each round, for the examples not yet settled: solve their current regions (:class:`_RegionSolver`),
    step towards the minimisers as far as the regions' closures allow (:func:`_step_length`), put
    the units the step ran into on their kinks, and release kink units whose energy falls off the
    kink (:func:`_releases`). An example is done after a full step with nothing to release.

    solver: "dense", "cg" or "auto" (:func:`choose_solver`). With "cg" each region solve runs
    preconditioned conjugate gradients from the current activations to the relative residual
    :func:`~sheaflab.reduced.cg_tol` ``(tol)``; an example converges only when its last solve met
    that tolerance, and the kink release test uses ``max(tol, 0.1 sqrt(cg_tol(tol)))``. ``stats`` (a dict),
    when given, receives ``"cg_iterations"``: (B,) CG iterations summed over the region solves.
    """
    B, L = X.shape[0], sheaf.depth
    regions = _RegionSolver(sheaf, B, choose_solver(sheaf, solver), tol)
    z = [zz.copy() for zz in start.z]
    a = [aa.copy() for aa in start.a]
    modes = [np.where(zz > 0, ACTIVE, np.where(zz < 0, INACTIVE, KINK)).astype(np.int8)
             for zz in z[:-1]]
    iters = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    single = np.zeros(B, dtype=bool)  # after a step that could not move: release one unit at a time
    active = np.arange(B)
    for _ in range(max_iter):
        if active.size == 0:
            break
        sel = slice(None) if active.size == B else active
        ms = [m[sel].copy() for m in modes]
        z0, a0 = [zz[sel] for zz in z], [aa[sel] for aa in a]
        z1, a1, solved = regions.solve(X[sel], Y[sel], ms, z0, a0, sel)
        iters[sel] += 1
        t, hit = _step_length(ms, z0, z1)
        tt = t[:, None]
        zn = [zo + tt * (zz - zo) for zo, zz in zip(z0, z1)]
        an = [ao + tt * (aa - ao) for ao, aa in zip(a0, a1)]
        _stop_on_kinks(ms, zn, hit, tt)
        full_step = t >= 1.0
        released, wants = _releases(sheaf, X[sel], ms, an, regions.release_tol, full_step, single[sel])
        done_now = full_step & ~wants & solved
        single_new = np.where(t <= 0.0, True, np.where(released, False, single[sel]))
        for l in range(L):
            z[l][sel] = zn[l]
        for l in range(L - 1):
            a[l][sel] = an[l]
            modes[l][sel] = ms[l]
        single[sel] = single_new
        idx = np.arange(B)[sel]
        converged[idx[done_now]] = True
        active = idx[~done_now]
    if stats is not None:
        stats["cg_iterations"] = regions.cg_iterations
    return z, a, modes, converged, iters


class _RegionSolver:
    """The walk's region solves: the minimiser of each example's current region (its modes fixed).

    Dense block solves, or (``"cg"``, two or more hidden layers) conjugate gradients on the reduced
    system from the current activations, with one preconditioner shared by the whole walk; a
    non-identity head adds its small Newton problem (:func:`head_region_minimizer`).
    """

    def __init__(self, sheaf, B: int, solver: str, tol: float):
        self.sheaf, self.use_cg = sheaf, solver == "cg" and sheaf.depth >= 3
        self.etol = cg_tol(tol)
        # an iterative solve leaves errors of about sqrt(etol) in the stalks: a kink unit is released
        # only when it descends clearly beyond them (holding it costs at most ~ (0.1 sqrt(etol))^2 / 2)
        self.release_tol = max(tol, 0.1 * np.sqrt(self.etol)) if self.use_cg else tol
        self.cg_iterations = np.zeros(B, dtype=np.int64)
        self.precond = None

    def solve(self, X, Y, ms, z0, a0, sel):
        """(z1, a1, solved): the region minimisers of the rows ``sel`` and whether each solve met
        its tolerance (always True for the dense solve of the identity head)."""
        sheaf, solved = self.sheaf, np.ones(X.shape[0], dtype=bool)
        linear = None
        if self.use_cg:
            x0 = np.concatenate(a0[:sheaf.depth - 2], axis=1)

            def linear(target):
                nonlocal solved
                system = ReducedSystem(sheaf, X, target, ms)
                if self.precond is None and sheaf.depth > 3:   # one shared factor, from the first region
                    self.precond = system.preconditioner()     # (depth 3: exact per-example Woodbury)
                x, ok, it = system.solve(x0, self.etol, CG_MAX_ITER, self.precond)
                self.cg_iterations[sel] += it
                solved = solved & ok
                return _stalks(sheaf, X, target, ms, system.activations(x))
        if sheaf.head == "identity":
            z1, a1 = linear(Y) if linear else region_minimizer(sheaf, X, Y, ms)
        else:   # n_L + 1 linear solves and a small Newton problem
            z1, a1, ok = head_region_minimizer(sheaf, X, Y, ms, linear, start=z0[-1])
            solved = solved & ok
        return z1, a1, solved


def _step_length(ms, z0, z1):
    """(t, hit): the longest step ``t`` in [0, 1] (per example) from ``z0`` towards ``z1`` that stays
    in the closure of each example's region, and per layer the step at which each unit would cross
    its kink (inf where it does not)."""
    t = np.ones(z0[0].shape[0])
    hit = []
    for m, zo, zn in zip(ms, z0, z1):
        cross = ((m == ACTIVE) & (zn < 0)) | ((m == INACTIVE) & (zn > 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            tl = np.where(cross, zo / (zo - zn), np.inf)
        hit.append(tl)
        if tl.shape[1]:
            t = np.minimum(t, tl.min(axis=1))
    return t, hit


def _stop_on_kinks(ms, zn, hit, tt) -> None:
    """Put the units the step ran into (or, by rounding, just past) exactly on their kinks, in place."""
    for m, z, h in zip(ms, zn, hit):
        on_kink = (h <= tt) | ((m == ACTIVE) & (z < 0)) | ((m == INACTIVE) & (z > 0))
        z[on_kink] = 0.0
        m[on_kink] = KINK


def _releases(sheaf, X, ms, an, tol, full_step, single):
    """Release kink units off which the energy falls, in place in ``ms``; returns (released, wants):
    per example, whether a unit was released and whether one wanted to be.

    Units are released only at a face minimiser (a full step), and one at a time (the strongest)
    for examples whose last step could not move."""
    Ws, bs = sheaf.weights, sheaf.biases
    strengths, directions, prev = [], [], X
    for l, m in enumerate(ms):
        kink = m == KINK
        if kink.any():
            st, di = _release_strength(prev @ Ws[l].T + bs[l], an[l], tol)
            st[~kink] = 0.0
        else:                       # no unit of this layer on its kink: nothing to release
            st, di = np.zeros(m.shape), np.full(m.shape, ACTIVE, dtype=np.int8)
        strengths.append(st)
        directions.append(di)
        prev = an[l]
    st_all = np.concatenate(strengths, axis=1) if strengths else np.zeros((X.shape[0], 0))
    wants = st_all > 0
    release = wants & full_step[:, None]
    one = single & full_step
    if np.any(one) and st_all.shape[1]:
        top = np.zeros_like(release)
        top[np.arange(len(full_step)), st_all.argmax(axis=1)] = True
        release = np.where(one[:, None], release & top, release)
    off = 0
    for m, di in zip(ms, directions):
        r = release[:, off:off + m.shape[1]]
        m[r] = di[r]
        off += m.shape[1]
    return release.any(axis=1), wants.any(axis=1)
