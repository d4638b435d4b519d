"""The reduced region system: one activation region's energy as a function of the activations only.

Inside one activation region the two-sided energy is a convex quadratic of the free stalks. Its
z-blocks are diagonal, so every ``z_l`` is eliminated in closed form (see
:func:`sheaflab.direct.region_minimizer`), which leaves a symmetric positive definite
block-tridiagonal system ``H a = r`` in ``a_1 .. a_{L-1}``:

* diagonal blocks ``M_l = diag(d_l) + W_{l+1}^T diag(p_{l+1}) W_{l+1}``, with ``d_l = 1 - s_l / 2``,
  ``p_{l+1} = s_{l+1} / 2 + k_{l+1}`` (``s``: active units, ``k``: units on the kink) and
  ``p_L = 1/2`` at the output;
* off-diagonal blocks ``-W_{l+1}^T diag(s_{l+1} / 2)``.

:class:`ReducedSystem` goes one step further: the last hidden block ``M_{L-1}`` is a diagonal plus a
rank-``n_L`` term, so it is eliminated exactly per example (Woodbury, an ``n_L x n_L`` solve), and
what remains is the Schur complement ``S`` in ``a_1 .. a_{L-2}``. Applying ``S`` to a batch costs two
``(B, n_l) @ (n_l, n_{l+1})`` GEMMs per hidden affine edge and elementwise work: about one
forward plus backward pass. :meth:`ReducedSystem.solve` runs conjugate gradients on it, batched over
the examples. Past depth 3 they are preconditioned by one Cholesky factor shared by the batch (of
the batch-mean ``S``). At depth 3 ``S`` is a diagonal plus rank ``n_L`` plus one rank-one term per
unit of layer 2 on its kink, so the exact per-example Woodbury inverse of the kink-free part
preconditions it: CG then ends in at most ``#kinks + 1`` iterations (measured at [2,128,128,1],
cold: 10.7 CG iterations per example over 3.9 region solves, against 32.4 with the shared factor).

Why the walk stays exact with an inexact solve: conjugate gradients started from the current
activations lower the reduced energy at every iteration, and the reduced energy at the current
activations is at most the current true energy. So the candidate the walk steps towards never has a
higher energy than the current point, and, the region's energy being convex, no point of the
segment between them has either. The tolerance only decides how close to the region's minimiser
the candidate is; the walk declares an example converged only when its last solve met it.
"""

from __future__ import annotations

import numpy as np

ACTIVE, INACTIVE, KINK = 1, -1, 0


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


class ReducedSystem:
    """The Schur-complemented reduced system of one activation region, for a batch (depth L >= 3).

    sheaf: the network (``sheaf.depth >= 3``); X: (B, n_0); Y: (B, n_L); modes: list over the hidden
    layers of (B, n_l) int arrays (``ACTIVE``, ``INACTIVE`` or ``KINK``).

    Attributes: ``n`` (unknowns per example, ``n_1 + ... + n_{L-2}``), ``rhs`` ((B, n) right-hand
    side of ``S x = rhs``). Methods: :meth:`matvec`, :meth:`mean_matrix`, :meth:`solve`,
    :meth:`activations` (the back substitution to every hidden layer's activation).
    """

    def __init__(self, sheaf, X, Y, modes):
        Ws, bs, L = sheaf.weights, sheaf.biases, sheaf.depth
        if L < 3:
            raise ValueError("ReducedSystem needs two or more hidden layers (depth >= 3)")
        self.Ws, self.bs, self.L = Ws, bs, L
        self.X, self.Y, self.modes = X, Y, modes
        hidden = sheaf.dims[1:-1]
        self.off = np.concatenate([[0], np.cumsum(hidden[:-1])]).astype(int)
        self.slices = [slice(self.off[k], self.off[k + 1]) for k in range(L - 2)]
        self.n = int(self.off[-1])
        B = X.shape[0]
        self.B = B
        h = [0.5 * (m == ACTIVE) for m in modes]             # s_l / 2
        self.h = h
        # p for the affine edges into hidden layers 2 .. L-2 (the ones inside the Schur system)
        self.p = [h[l] + (modes[l] == KINK) for l in range(1, L - 2)]
        # full right-hand sides r_1 .. r_{L-1} of the reduced system H a = r
        r = []
        for l in range(1, L):
            Wn, bn = Ws[l], bs[l]
            rr = h[l - 1] * bs[l - 1]
            if l == L - 1:
                rr = rr - 0.5 * (bn - Y) @ Wn
            else:
                rr = rr - ((h[l] + (modes[l] == KINK)) * bn) @ Wn
            if l == 1:
                rr = rr + h[0] * (X @ Ws[0].T)
            r.append(rr)
        # the last hidden block: D + 1/2 W_L^T W_L, inverted per example by Woodbury
        WL = Ws[L - 1]
        self.last_d = 1.0 - h[-1]
        self.last_dinv = 1.0 / self.last_d
        self.kink_last = (modes[-1] == KINK).astype(np.float64)
        self.act_last = 2.0 * h[-1]                         # h / d: 1 on active units, else 0
        self.any_kink_last = bool(self.kink_last.any())
        self._aw = self.act_last * WL[0] if WL.shape[0] == 1 else None
        m = WL.shape[0]
        if m == 1:
            w = WL[0]
            self.Kinv = 1.0 / (2.0 + self.last_dinv @ (w * w))   # (B,)
        else:
            K = 2.0 * np.eye(m) + np.einsum("bj,kj,mj->bkm", self.last_dinv, WL, WL, optimize=True)
            self.Kinv = np.linalg.inv(K)                     # (B, m, m)
        self.r_last = r[-1]
        self.d = np.concatenate([1.0 - hh for hh in h[:-1]], axis=1)
        if L == 3:
            self._base_inverse_setup()
        rhs = np.concatenate(r[:-1], axis=1)
        # Schur right-hand side: r_{L-2} + (h_{L-1} * M^{-1} r_{L-1}) @ W_{L-1}
        rhs[:, self.slices[-1]] += (h[-1] * self.last_inverse(r[-1])) @ Ws[L - 2]
        self.rhs = rhs

    # ------------------------------------------------------------------ one block: depth 3
    def _base_inverse_setup(self):
        """Depth 3 only: ``S = D + G K^{-1} G^T + W_2^T diag(k_2) W_2`` with ``D = diag(d_1)`` and
        ``G = W_2^T diag(act_2) W_3^T`` (n_1 x n_L per example). Without the kink term ``S`` is a
        diagonal plus rank ``n_L``, inverted exactly by Woodbury; that inverse preconditions CG
        (``P S = I`` + rank ``#kinks in layer 2``, so CG ends in at most ``#kinks + 1``
        iterations), and with no kinks it is the exact inverse (:mod:`sheaflab.spectral` uses it)."""
        W2, WL = self.Ws[1], self.Ws[2]
        self.dinv = 1.0 / self.d
        if WL.shape[0] == 1:
            self.G1 = self._aw @ W2                                   # (B, n_1)
            self.DG1 = self.dinv * self.G1
            self.coef1 = 1.0 / (1.0 / self.Kinv + _rowdot(self.G1, self.DG1))
        else:
            self.G = W2.T[None] @ (self.act_last[:, :, None] * WL.T[None])      # (B, n_1, n_L)
            inner = np.linalg.inv(self.Kinv) + np.swapaxes(self.G, 1, 2) @ (self.dinv[:, :, None] * self.G)
            self.inner_inv = np.linalg.inv(inner)

    def base_inverse(self, R):
        """Depth 3: ``(D + G K^{-1} G^T)^{-1} R`` per example (``S^{-1} R`` when layer 2 has no kinks)."""
        g = self.dinv * R
        if self.Ws[-1].shape[0] == 1:
            return g - self.DG1 * (self.coef1 * _rowdot(self.G1, g))[:, None]
        h = self.inner_inv @ (np.swapaxes(self.G, 1, 2) @ g[:, :, None])
        return g - self.dinv * (self.G @ h)[:, :, 0]

    # ------------------------------------------------------------------ the operator
    def _lowrank(self, g):
        """``W_L^T K^{-1} W_L g`` per example, g: (B, n_{L-1})."""
        WL = self.Ws[-1]
        if WL.shape[0] == 1:
            w = WL[0]
            return ((g @ w) * self.Kinv)[:, None] * w
        return np.einsum("bkm,bm->bk", self.Kinv, g @ WL.T) @ WL

    def last_inverse(self, v):
        """``M_{L-1}^{-1} v`` per example (Woodbury)."""
        g = v * self.last_dinv
        return g - self._lowrank(g) * self.last_dinv

    def _inner_last(self, g):
        """``Q g`` for the Schur-corrected last hidden edge: ``kink * g + act * W_L^T K^{-1} W_L (act * g)``."""
        if self.Ws[-1].shape[0] == 1:      # scalar output: act * w is one (B, n) array
            t = self._aw * (_rowdot(g, self._aw) * self.Kinv)[:, None]
        else:
            t = self.act_last * self._lowrank(self.act_last * g)
        if self.any_kink_last:
            t += self.kink_last * g
        return t

    def matvec(self, V):
        """``S V`` for a batch V: (B, n) -> (B, n)."""
        out = self.d * V
        Ws, sl = self.Ws, self.slices
        K = self.L - 2
        for k in range(K):
            W = Ws[k + 1]
            g = V[:, sl[k]] @ W.T
            if k + 1 < K:
                t = self.p[k] * g - self.h[k + 1] * V[:, sl[k + 1]]
                out[:, sl[k + 1]] -= self.h[k + 1] * g
            else:
                t = self._inner_last(g)
            out[:, sl[k]] += t @ W
        return out

    def mean_matrix(self) -> np.ndarray:
        """(n, n) the batch mean of ``S`` (dense): the shared preconditioner's matrix."""
        Ws, sl, K = self.Ws, self.slices, self.L - 2
        M = np.diag(self.d.mean(axis=0))
        for k in range(K):
            W = Ws[k + 1]
            if k + 1 < K:
                M[sl[k], sl[k]] += (W.T * self.p[k].mean(axis=0)) @ W
                C = -W.T * self.h[k + 1].mean(axis=0)
                M[sl[k], sl[k + 1]] += C
                M[sl[k + 1], sl[k]] += C.T
            else:
                WL = Ws[-1]
                if WL.shape[0] == 1:
                    U = self.act_last * WL[0] * np.sqrt(self.Kinv)[:, None]      # (B, n_{L-1})
                    Q = U.T @ U
                else:
                    V = self.act_last[:, :, None] * WL.T[None]                  # (B, n_{L-1}, m)
                    T = np.einsum("bjm,bmk->bjk", V, self.Kinv)
                    Q = np.einsum("bjm,bim->ji", T, V, optimize=True)
                Q = Q / self.B + np.diag(self.kink_last.mean(axis=0))
                M[sl[k], sl[k]] += W.T @ Q @ W
        return M

    def preconditioner(self):
        """``R -> R P`` with ``P`` the inverse of the batch-mean matrix, from its Cholesky factor.

        numpy's LAPACK, not scipy's: scipy ships its own OpenBLAS, and switching between the two
        libraries' thread pools inside the solver's loop measured about 10 ms per switch on 2 cores
        (one ``scipy.linalg.cho_factor`` between numpy GEMMs: 13.5 ms, ``numpy.linalg.cholesky``:
        2.5 ms). ``P`` is applied as one GEMM, which is cheaper than two triangular solves here.
        """
        M = self.mean_matrix()
        Linv = np.linalg.inv(np.linalg.cholesky(M))      # M = L L^T, so M^{-1} = L^{-T} L^{-1}
        P = Linv.T @ Linv
        return lambda R: R @ P

    def region_energy(self, x):
        """(B,) the region's energy at the Schur unknowns x (B, n), every eliminated stalk at its
        optimum: ``s/4 (u - a)^2 + (1 - s)/2 a^2 + k/2 u^2`` per hidden unit plus ``1/4 (u_L - y)^2``."""
        acts = self.activations(x)
        prev, E = self.X, np.zeros(self.B)
        for l, W in enumerate(self.Ws):
            u = prev @ W.T + self.bs[l]
            if l == self.L - 1:
                E += 0.25 * _rowdot(u - self.Y, u - self.Y)
                break
            a, m = acts[l], self.modes[l]
            diff = np.where(m == ACTIVE, u - a, 0.0)
            E += 0.25 * _rowdot(diff, diff) + 0.5 * _rowdot(np.where(m == ACTIVE, 0.0, a), a) \
                + 0.5 * _rowdot(np.where(m == KINK, u, 0.0), u)
            prev = a
        return E

    # ------------------------------------------------------------------ solving
    def solve(self, x0, tol, max_iter, precond=None):
        """Preconditioned conjugate gradients on ``S x = rhs``, batched over the examples, from x0.

        Each iteration lowers each example's region energy ``E(x)`` by ``1/2 alpha r.z`` (``r`` the
        residual, ``z = P r``). The energy still to gain is ``1/2 r^T S^{-1} r``, estimated by
        ``1/2 r.z``; an example stops when ``r.z <= tol * E(x)``, so its energy is within about
        ``tol`` relative of the region's minimum. ``precond``: a shared ``R -> P R``; by default the
        batch-mean Cholesky preconditioner (:meth:`preconditioner`), or at depth 3 the per-example
        exact inverse of the kink-free part (:meth:`base_inverse`). Finished examples leave the
        batch (rows are dropped once 30% of the remaining ones are done). Returns ``(x, converged (B,) bool,
        iterations (B,) int)``; ``converged`` is re-checked on the true residual.
        """
        if precond is None and self.L == 3:
            apply = ReducedSystem.base_inverse          # per example: follows the rows dropped
        else:
            shared = precond if precond is not None else self.preconditioner()
            apply = lambda system, R: shared(R)         # noqa: E731
        x = np.array(x0, dtype=np.float64, copy=True)
        floor = 1e-28 * (1.0 + _rowdot(self.rhs, apply(self, self.rhs)))
        energy = self.region_energy(x)
        r = self.rhs - self.matvec(x)
        z = apply(self, r)
        rz = _rowdot(r, z)
        iters = np.zeros(self.B, dtype=np.int64)
        todo = np.flatnonzero(rz > tol * energy + floor)
        sub = self if todo.size == self.B else self.take(todo)
        xs, rs, ps, rzs = x[todo], r[todo], z[todo].copy(), rz[todo]
        es, fl = energy[todo], floor[todo]
        for _ in range(max_iter):
            if todo.size == 0:
                break
            q = sub.matvec(ps)
            pq = _rowdot(ps, q)
            alpha = np.where(pq > 0, rzs / np.where(pq > 0, pq, 1.0), 0.0)
            xs += alpha[:, None] * ps
            rs -= alpha[:, None] * q
            es = np.maximum(es - 0.5 * alpha * rzs, 0.0)
            iters[todo] += 1
            zs = apply(sub, rs)
            rz_new = _rowdot(rs, zs)
            done = (rz_new <= tol * es + fl) | (pq <= 0)
            if done.any():
                x[todo[done]] = xs[done]
                energy[todo[done]] = es[done]
                keep = ~done
                if not keep.any():
                    todo = todo[keep]
                    break
                if keep.sum() <= 0.7 * todo.size:   # copying the rows out costs too
                    todo, xs, rs, zs, ps, rzs, rz_new, es, fl = (
                        v[keep] for v in (todo, xs, rs, zs, ps, rzs, rz_new, es, fl))
                    sub = self.take(todo)
                else:                                # finished rows stay, with zero steps
                    rs[done] = 0.0
                    zs[done] = 0.0
                    rz_new = np.where(done, 0.0, rz_new)
            beta = np.where(rzs > 0, rz_new / np.where(rzs > 0, rzs, 1.0), 0.0)
            rzs = rz_new
            ps = zs + beta[:, None] * ps
        if todo.size:
            x[todo] = xs
            energy[todo] = es
        # confirm on the true residual (the recurred one drifts by rounding)
        r = self.rhs - self.matvec(x)
        rz = _rowdot(r, apply(self, r))
        converged = rz <= 4.0 * tol * energy + 4.0 * floor
        return x, converged, iters

    def dense(self) -> np.ndarray:
        """(B, n, n) every example's ``S`` as a dense matrix, assembled block by block (for the
        spectral gap and for tests, not for the walk)."""
        Ws, sl, K, B = self.Ws, self.slices, self.L - 2, self.B
        M = np.zeros((B, self.n, self.n))
        idx = np.arange(self.n)
        M[:, idx, idx] = self.d
        for k in range(K):
            W = Ws[k + 1]
            if k + 1 < K:
                M[:, sl[k], sl[k]] += (W.T[None] * self.p[k][:, None, :]) @ W
                C = -W.T[None] * self.h[k + 1][:, None, :]
                M[:, sl[k], sl[k + 1]] += C
                M[:, sl[k + 1], sl[k]] += np.swapaxes(C, 1, 2)
            else:
                if self.any_kink_last:
                    M[:, sl[k], sl[k]] += (W.T[None] * self.kink_last[:, None, :]) @ W
                WL = Ws[-1]
                V = (self.act_last[:, :, None] * WL.T[None]).transpose(0, 2, 1) @ W   # (B, m, n_k)
                Kinv = self.Kinv[:, None, None] if WL.shape[0] == 1 else self.Kinv
                M[:, sl[k], sl[k]] += np.swapaxes(V, 1, 2) @ (Kinv @ V if WL.shape[0] > 1 else Kinv * V)
        return M

    # what take() slices: arrays with one row per example, lists of them, and those only some
    # systems build (the depth-3 Woodbury factors); everything else is shared by all examples
    _PER_EXAMPLE = ("X", "Y", "rhs", "d", "r_last", "last_d", "last_dinv", "kink_last", "act_last", "Kinv")
    _PER_EXAMPLE_LISTS = ("h", "p", "modes")
    _PER_EXAMPLE_IF_BUILT = ("_aw", "dinv", "G1", "DG1", "coef1", "G", "inner_inv")

    def take(self, rows) -> "ReducedSystem":
        """The same system for a subset of the examples (rows: integer indices), without rebuilding:
        the per-example arrays are sliced, the shared ones (weights, slices, sizes) kept."""
        new = ReducedSystem.__new__(ReducedSystem)
        new.__dict__.update(self.__dict__)
        new.B = len(rows)
        for name in self._PER_EXAMPLE:
            setattr(new, name, getattr(self, name)[rows])
        for name in self._PER_EXAMPLE_LISTS:
            setattr(new, name, [v[rows] for v in getattr(self, name)])
        for name in self._PER_EXAMPLE_IF_BUILT:
            if getattr(self, name, None) is not None:
                setattr(new, name, getattr(self, name)[rows])
        new.any_kink_last = bool(new.kink_last.any())
        return new

    def activations(self, x):
        """Every hidden layer's activation ``[a_1, ..., a_{L-1}]`` from the Schur unknowns x (B, n):
        ``a_{L-1} = M_{L-1}^{-1} (r_{L-1} + h_{L-1} * (a_{L-2} W_{L-1}^T))``."""
        acts = [x[:, s] for s in self.slices]
        acts.append(self.last_inverse(self.r_last + self.h[-1] * (acts[-1] @ self.Ws[-2].T)))
        return acts


def cg_tol(tol: float) -> float:
    """The relative energy tolerance of a conjugate-gradient region solve that goes with the fast
    phase's ``tol``: ``100 tol`` (1e-10 at the default 1e-12), capped at 1e-2."""
    return float(min(100.0 * tol, 1e-2))
