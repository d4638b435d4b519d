"""The reached equilibrium of a network with one hidden layer, any head and any output width.

With one hidden layer the pre-activation ``u = W_1 x + b_1`` is pinned by the input, and the reached
equilibrium is the minimiser of a strictly convex problem on the set ``Q`` the heat flow from the
forward pass never leaves (the minima page, ``prop-reached-convex``): units with ``u_j <= 0`` stay
where the forward pass put them (``z_j = u_j``), units with ``u_j > 0`` are active or on the kink.
Write ``r = W_2 a + b_2 - z_2`` for the discord of the second affine edge. Stationarity gives every
hidden stalk in closed form from ``r``:

* an active unit (``w_j . r < u_j``, ``w_j`` the j-th column of ``W_2``): ``z_j = u_j - w_j . r``,
  ``a_j = u_j - 2 w_j . r``;
* a unit on the kink (``u_j > 0`` and ``w_j . r >= u_j``): ``z_j = 0``, ``a_j = -w_j . r``;
* a forward-inactive unit: ``z_j = u_j``, ``a_j = -w_j . r``.

So for a set ``A`` of active units the output pre-activation is ``z_2 = c_A - S_A r`` with
``c_A = W_2 (1_A u) + b_2`` and ``S_A = I + W_2 diag(1 + 1_A) W_2^T``, and the output edge's
stationarity ``r = grad A(z_2) - y`` makes ``z_2`` the minimiser of the strictly convex
``A(t) - y . t + 1/2 (t - c_A)^T S_A^{-1} (t - c_A)``: a Newton problem in ``n_L`` unknowns per
example (:func:`sheaflab.heads.minimize_output`). :func:`one_hidden_head` alternates that solve
with the update of ``A`` from the signs above (a semi-smooth Newton iteration, started at the
forward pass's ``A``) until ``A`` no longer changes. Its fixed point satisfies every optimality
condition of the convex problem on ``Q``, so it is the reached equilibrium itself, whatever the
number of iterations it took; examples whose ``A`` has not settled within ``max_iter`` are
reported as not converged (:func:`sheaflab.equilibrium` then finishes them by the active-set walk).
"""

from __future__ import annotations

import numpy as np

from . import heads
from .sheaf import NeuralSheaf


def one_hidden_head(sheaf: NeuralSheaf, X: np.ndarray, Y: np.ndarray, max_iter: int = 100,
                    tol: float = 1e-13, guess=None) -> tuple:
    """The reached equilibrium of a ``[n_0, n_1, n_2]`` network with any head, from the forward pass.

    X: (B, n_0) inputs; Y: (B, n_2) targets (the head's kind). max_iter: updates of the active set
    ``A``; tol: relative tolerance of each Newton solve; guess: a :class:`~sheaflab.Cochain` of the
    same examples (say their equilibrium at the previous weights) whose ``z_2`` is the first Newton
    iterate and whose pattern ``z_1 > 0`` (within the forward-active units) the first ``A``: it
    changes how many steps the solve takes, not where it ends. Returns ``(z, a, kinks, converged,
    iterations)``: ``z = [z_1 (B, n_1), z_2 (B, n_2)]``, ``a = [a_1 (B, n_1)]``, ``kinks = [(B, n_1)
    bool]`` (units on ``z = 0``), ``converged`` (B,) bool and ``iterations`` (B,) int (Newton solves of
    ``z_2``, one per active set tried).
    """
    if sheaf.depth != 2:
        raise ValueError(f"one_hidden_head needs a network with one hidden layer; got dims {sheaf.dims}")
    W1, b1, W2, b2 = sheaf.weights[0], sheaf.biases[0], sheaf.weights[1], sheaf.biases[1]
    head = heads.get(sheaf.head)
    B, n = Y.shape
    u = X @ W1.T + b1
    pos = u > 0                                   # forward-active: active or on the kink, never off
    if guess is None:
        act = pos.copy()
        t = (u * pos) @ W2.T + b2                 # the forward pass's z_2: the first Newton iterate
    else:
        act = pos & (guess.z[0] > 0)
        t = np.array(guess.z[1], dtype=np.float64)
    converged = np.zeros(B, dtype=bool)
    iters = np.zeros(B, dtype=np.int64)
    rows = np.arange(B)                           # the examples whose A has not settled
    # S_A = I + W_2 W_2^T + W_2 diag(1_A) W_2^T, the last term one product for the whole batch:
    # row k*n + m of ``pairs`` holds the products W_2[k, j] W_2[m, j] over the hidden units j
    base = np.eye(n) + W2 @ W2.T
    pairs = (W2[:, None, :] * W2[None, :, :]).reshape(n * n, -1).T
    for _ in range(max_iter):
        A = act[rows].astype(np.float64)
        S_inv = np.linalg.inv(base + (A @ pairs).reshape(-1, n, n))
        c = (A * u[rows]) @ W2.T + b2
        lin = np.einsum("bij,bj->bi", S_inv, c) + Y[rows]
        t_rows, ok = heads.minimize_output(head, S_inv, lin, t[rows], tol)
        wr = (head.mean(t_rows) - Y[rows]) @ W2   # (rows, n_1): w_j . r
        ur = u[rows]
        # a unit within rounding of its switch (w_j . r = u_j, where both sets give the same point)
        # keeps its state, so that rounding cannot make A flip back and forth
        near = np.abs(wr - ur) <= 1e-12 * (1.0 + np.abs(ur))
        new = pos[rows] & np.where(near, act[rows], wr < ur)
        t[rows] = t_rows
        iters[rows] += 1
        settled = ok & (new == act[rows]).all(axis=1)
        converged[rows[settled]] = True
        act[rows] = new
        rows = rows[~settled]
        if rows.size == 0:
            break
    wr = (head.mean(t) - Y) @ W2
    z1 = np.where(act, u - wr, np.where(pos, 0.0, u))
    a1 = np.where(act, u - 2.0 * wr, -wr)
    return [z1, t], [a1], [pos & ~act], converged, iters
