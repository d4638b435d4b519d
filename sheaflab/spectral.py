"""The bottom of the spectrum of the free sheaf Laplacian: :func:`lambda_min`, the spectral gap.

Every other module asks this function for a gap; none computes one of its own. The top of the
spectrum (a bound, for a stable Euler step) is :meth:`NeuralSheaf.lambda_max_bound`; the gaps at the
reached equilibria and the two timescales they set (Definition 1) are :mod:`sheaflab.timescales`,
which needs the fast phase and so sits above it.
"""

from __future__ import annotations


import numpy as np

from ._checks import choice


def lambda_min(sheaf, patterns, pinned: str = "both", solver: str = "auto") -> np.ndarray:
    """Smallest eigenvalue of ``L_free`` per example: (B,) for (B, n_l) patterns, a float for 1-D ones.

    patterns: hidden-layer activation patterns as for :meth:`NeuralSheaf.coboundary`; pinned: 'both'
    (input and output) or 'input'. Inside one activation region the pinned heat flow contracts at
    this rate.

    solver: the eigensolver ("method" names the fast phase everywhere else): "dense" (one dense symmetric eigensolve of ``L_free`` per example), "lanczos" (both ends
    pinned, two or more hidden layers: batched Lanczos on ``L_free^{-1}``, applied exactly through
    the reduced Schur system, so the small, tightly clustered bottom of the spectrum becomes the
    well separated top of the inverse's; about 20-40 steps, to about 1e-10 relative), "eigsh" (the
    same operator, one ``scipy.sparse.linalg.eigsh`` run per example: a slower independent check),
    or "auto" (default): Lanczos where it applies and ``L_free`` has more than
    :data:`DENSE_MAX_FREE_DIM` free coordinates, dense otherwise. Measured at [2,64,64,1], B = 300:
    dense about 1.1-1.6 s, Lanczos about 30-40 ms (agreeing to 1e-13).
    """
    choice(solver, "solver", ("auto", "dense", "lanczos", "eigsh"))
    use = solver
    if solver == "auto":
        use = ("lanczos" if pinned == "both" and sheaf.depth >= 3
               and sheaf.free_dim("both") > DENSE_MAX_FREE_DIM else "dense")
    if use == "dense":
        return np.linalg.eigvalsh(sheaf.L_free(patterns, pinned))[..., 0]
    if pinned != "both" or sheaf.depth < 3:
        raise ValueError(f"solver={use!r} needs pinned='both' and two or more hidden layers")
    S, _ = sheaf.check_patterns(patterns)
    single = np.ndim(patterns[0]) == 1
    if use == "eigsh":
        lam = _eigsh_gaps(sheaf, S)
    else:
        inv = _InverseLfree(sheaf, S)
        lam = 1.0 / _lanczos_largest(inv, inv.B, inv.N, LANCZOS_STEPS)
    return float(lam[0]) if single else lam


def _eigsh_gaps(sheaf, S) -> np.ndarray:
    """lambda_min per example from ``scipy.sparse.linalg.eigsh`` (ARPACK's implicitly restarted
    Lanczos) on ``L_free^{-1}`` as a LinearOperator, one example at a time: an independent check
    of the batched Lanczos (one ARPACK run per example is too slow for the trainer's hot path)."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    out = np.empty(S[0].shape[0])
    for i in range(out.size):
        inv = _InverseLfree(sheaf, [s[i:i + 1] for s in S])
        op = LinearOperator((inv.N, inv.N), matvec=lambda v: inv(np.reshape(v, (1, -1)))[0],
                            dtype=np.float64)
        theta = eigsh(op, k=1, which="LA", tol=1e-12, v0=np.ones(inv.N),
                      return_eigenvectors=False)
        out[i] = 1.0 / theta[0]
    return out


# ---------------------------------------------------------------------------------- wide and deep nets
# lambda_min(L_free) of nets with two or more hidden layers and more free coordinates than this
# comes from batched Lanczos on L_free^{-1} (below); smaller ones from one dense eigvalsh each
DENSE_MAX_FREE_DIM = 64
LANCZOS_STEPS = 150


class _InverseLfree:
    """``L_free^{-1}`` (both ends pinned) applied to a batch, exactly, without forming ``L_free``.

    The z-blocks of ``L_free`` are diagonal (``1 + s_l``, and 2 for ``z_L``), so ``L_free v = f``
    is solved by eliminating them, then the last hidden block by Woodbury, which leaves the Schur
    system ``S`` of :class:`~sheaflab.reduced.ReducedSystem` in ``a_1 .. a_{L-2}``. At depth 3
    ``S`` is a diagonal plus rank ``n_L`` (``L_free`` knows no kinks), inverted exactly by
    Woodbury (:meth:`~sheaflab.reduced.ReducedSystem.base_inverse`); deeper, it is factorised
    once per example (dimension ``n_1 + ... + n_{L-2}``) and inverted. Every application then
    costs a few GEMMs.
    """

    def __init__(self, sheaf, S):
        from .reduced import ACTIVE, INACTIVE, ReducedSystem
        B = S[0].shape[0]
        self.sheaf, self.L, self.B = sheaf, sheaf.depth, B
        self.s = [np.asarray(p, dtype=np.float64) for p in S]
        self.inv1s = [1.0 / (1.0 + p) for p in self.s]
        modes = [np.where(p > 0, ACTIVE, INACTIVE).astype(np.int8) for p in self.s]
        self.sys = ReducedSystem(sheaf, np.zeros((B, sheaf.dims[0])), np.zeros((B, sheaf.dims[-1])),
                                 modes)
        if self.L == 3:
            # one Schur block, a diagonal plus rank n_L (no kinks in L_free): Woodbury, exactly
            self.Sinv = None
        else:
            M = self.sys.dense()
            chol = np.linalg.cholesky(M)                       # batched; raises if not SPD
            Linv = np.linalg.inv(chol)
            self.Sinv = np.swapaxes(Linv, 1, 2) @ Linv
        dims = sheaf.dims
        sizes = []
        for l in range(1, self.L + 1):
            sizes.append(dims[l])
            if l < self.L:
                sizes.append(dims[l])
        off = np.concatenate([[0], np.cumsum(sizes)])
        self.blocks = [slice(off[k], off[k + 1]) for k in range(len(sizes))]
        self.N = int(off[-1])

    def __call__(self, F):
        """``L_free^{-1} F`` for F: (B, N) in the column order of :meth:`NeuralSheaf.coboundary`."""
        Ws, L, s, sysm = self.sheaf.weights, self.L, self.s, self.sys
        fz = [F[:, self.blocks[2 * (l - 1)]] for l in range(1, L + 1)]
        fa = [F[:, self.blocks[2 * (l - 1) + 1]] for l in range(1, L)]
        g = [fz[l] * self.inv1s[l] for l in range(L - 1)] + [0.5 * fz[L - 1]]
        r = [fa[l] + s[l] * g[l] + g[l + 1] @ Ws[l + 1] for l in range(L - 1)]
        rhs = np.concatenate(r[:-1], axis=1)
        rhs[:, sysm.slices[-1]] += (sysm.h[-1] * sysm.last_inverse(r[-1])) @ Ws[L - 2]
        if self.Sinv is None:
            x = sysm.base_inverse(rhs)
        else:
            x = (self.Sinv @ rhs[:, :, None])[:, :, 0]
        acts = [x[:, sl] for sl in sysm.slices]
        acts.append(sysm.last_inverse(r[-1] + sysm.h[-1] * (acts[-1] @ Ws[L - 2].T)))
        out = np.empty_like(F)
        prev = None
        for l in range(1, L + 1):
            u = 0.0 if prev is None else prev @ Ws[l - 1].T
            if l < L:
                out[:, self.blocks[2 * (l - 1)]] = (fz[l - 1] + u + s[l - 1] * acts[l - 1]) * self.inv1s[l - 1]
                out[:, self.blocks[2 * (l - 1) + 1]] = acts[l - 1]
                prev = acts[l - 1]
            else:
                out[:, self.blocks[2 * (l - 1)]] = 0.5 * (fz[l - 1] + u)
        return out


#: below this many entries ``B k^2`` a batch of k x k tridiagonal matrices goes to numpy's batched
#: ``eigvalsh`` (measured: at B = 32, k = 30 0.8 ms against 2.0 ms for the sweeps; at B = 300 the
#: sweeps win, 4.1 ms against 7.5 ms)
DENSE_TRIDIAGONAL = 60_000


def _largest_tridiagonal(alpha, beta, lower=None, points=15, sweeps=3):
    """Largest eigenvalue of a batch of symmetric tridiagonal matrices (diagonals alpha (B, k),
    off-diagonals beta (B, k-1)), vectorised over the batch (numpy's batched ``eigvalsh`` costs far
    more for many small matrices, and is used below :data:`DENSE_TRIDIAGONAL`).

    A few Sturm-sequence multisection sweeps (each counts the eigenvalues above ``points`` trial
    values at once) narrow the bracket ``[max(alpha, lower), Gershgorin bound]``; then Newton's
    method on ``det(x I - T)`` from the bracket's top, which for a polynomial with real roots
    decreases monotonically onto the largest root, converging quadratically.
    """
    B, k = alpha.shape
    if B * k * k <= DENSE_TRIDIAGONAL:
        # few small matrices: one batched LAPACK eigensolve costs less than the sweeps' Python loops
        T = np.zeros((B, k, k))
        i = np.arange(k)
        T[:, i, i] = alpha
        T[:, i[:-1], i[1:]] = T[:, i[1:], i[:-1]] = beta
        top = np.linalg.eigvalsh(T)[:, -1]
        return top if lower is None else np.fmax(top, lower)
    rows = np.arange(B)
    b2 = beta ** 2
    absb = np.abs(beta)
    radius = np.zeros_like(alpha)
    radius[:, :-1] += absb
    radius[:, 1:] += absb
    lo = alpha.max(axis=1)
    if lower is not None:
        lo = np.maximum(lo, np.where(np.isfinite(lower), lower, lo))
    hi = np.maximum((alpha + radius).max(axis=1), lo)
    frac = np.arange(1, points + 1) / (points + 1.0)
    for _ in range(sweeps):
        x = lo[:, None] + (hi - lo)[:, None] * frac                  # (B, points)
        d = x - alpha[:, :1]
        above = (d < 0).astype(np.int64)
        for j in range(1, k):
            d = np.where(np.abs(d) < 1e-300, 1e-300, d)
            d = x - alpha[:, j:j + 1] - b2[:, j - 1:j] / d
            above += d < 0
        n_lo = (above > 0).sum(axis=1)                # trial values with an eigenvalue above them
        lo = np.where(n_lo > 0, x[rows, np.maximum(n_lo - 1, 0)], lo)
        hi = np.where(n_lo < points, x[rows, np.minimum(n_lo, points - 1)], hi)
    scale = np.abs(alpha).max(axis=1) + absb.max(axis=1, initial=0.0)
    floor = 1e-150 * (1.0 + scale)                   # keeps d**2 representable
    x = hi + 1e-15 * scale                           # strictly above the largest eigenvalue
    for _ in range(30):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            step = _newton_step(x, alpha, b2, floor, k)
        x = np.maximum(x - step, lo)
        if np.all(step <= 1e-15 * np.abs(x)):
            break
    return x


def _newton_step(x, alpha, b2, floor, k):
    """``det(x I - T) / det'(x I - T)`` from the pivots of ``x I - T = L D L^T`` (0 where a pivot
    underflows, i.e. x sits on the root to rounding)."""
    d = np.maximum(x - alpha[:, 0], floor)             # x I - T is positive definite above the root
    dp = np.ones_like(x)
    ratio = dp / d
    for j in range(1, k):
        dp = 1.0 + b2[:, j - 1] * dp / d ** 2
        d = np.maximum(x - alpha[:, j] - b2[:, j - 1] / d, floor)
        ratio += dp / d
    return np.where(np.isfinite(ratio) & (ratio > 0), 1.0 / ratio, 0.0)


def _lanczos_largest(op, B, N, steps, tol=1e-10, seed=0, first=15, check=5):
    """Largest eigenvalue of a batch of SPD operators (one per example) by Lanczos, vectorised over
    the examples. op: (B, N) -> (B, N).

    Plain three-term Lanczos: without reorthogonalisation the basis loses orthogonality once a
    Ritz value converges, which only adds copies of converged values, never a larger one, so the
    largest Ritz value still converges to the largest eigenvalue. It is computed after ``first``
    steps and every ``check`` steps after; stops when no example's moved by more than ``tol``
    relative since the last check (Ritz values increase monotonically and converge geometrically),
    or after ``steps`` steps. Checks whose tridiagonal problems are small enough for numpy's
    batched eigvalsh (:data:`DENSE_TRIDIAGONAL`) come every other step instead.
    """
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, N))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q_prev = np.zeros_like(q)
    steps = min(steps, N)
    alpha, beta = np.zeros((B, steps)), np.zeros((B, steps))
    theta = np.full(B, -np.inf)
    due = first                     # the step after which the Ritz values are computed next
    for k in range(steps):
        w = op(q)
        alpha[:, k] = np.einsum("bn,bn->b", w, q)
        w -= alpha[:, k, None] * q
        if k:
            w -= beta[:, k - 1, None] * q_prev
        beta[:, k] = np.linalg.norm(w, axis=1)
        last = k + 1 == steps or np.all(beta[:, k] <= 1e-14 * np.abs(alpha[:, :k + 1]).max(axis=1))
        if last or k + 1 >= due:
            new = _largest_tridiagonal(alpha[:, :k + 1], beta[:, :k], lower=theta)
            if last or np.all(new - theta <= tol * new):
                return new
            theta = new
            # where the Ritz values come from one batched eigvalsh they cost less than an operator
            # step, so they are checked every other step, stopping sooner
            due = k + 1 + (2 if B * (k + 3) ** 2 <= DENSE_TRIDIAGONAL else check)
        q_prev, q = q, w / np.where(beta[:, k] > 0, beta[:, k], 1.0)[:, None]
    return theta
