"""Closed forms for one hidden layer and a scalar output (``dims = [n_0, n_1, 1]``).

With ``u = W_1 x + b_1`` pinned by the input, eliminate the free stalks unit by unit. At a two-sided
equilibrium whose hidden units split into active ``A`` (``z_j > 0``), inactive ``I`` (``z_j < 0``) and
kink ``K`` (``z_j = 0``) units, with output weights ``w`` and forward-pass output ``f = w . relu(u) + b_2``,

    R = 1/2 sum_{j in K} u_j^2 + (f - y - w_K . u_K)^2 / (4 D),
    D = 1 + ||w_A||^2 + 1/2 ||w_I||^2 + 1/2 ||w_K||^2.

Without kinks this is ``R = (f - y)^2 / (4 D)``. Where the activation region does not change, the
first layer's gradient of ``R`` is therefore the squared-error loss's ``(f - y) grad f`` divided by
``2 D``: at one learning rate, the sheaf trainer takes first-layer steps ``2 D`` times shorter than
SGD. :func:`step_factor` measures that factor on a batch.

Derivation (the book's section on what sets the slowdown): an active unit contributes
``(u - z)^2 + (z - a)^2``, minimised by ``z = (u + a) / 2`` to ``(u - a)^2 / 2``; an inactive one
``(u - z)^2 + a^2``, minimised by ``z = u``; a kink unit ``u^2 + a^2``; the output pair contributes
``(w . a + b_2 - y)^2 / 2`` after ``z_2 = (w . a + b_2 + y) / 2``. Minimising the remaining quadratic
in ``a`` gives ``a_j = u_j - w_j r`` (active) and ``a_j = -w_j r / 2`` (others), with
``r = (f - y - w_K . u_K) / D`` the output discord times two.
"""

from __future__ import annotations

import numpy as np

from .sheaf import NeuralSheaf


def _check_one_hidden(sheaf: NeuralSheaf) -> None:
    if not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    if sheaf.depth != 2 or sheaf.dims[-1] != 1:
        raise ValueError(f"the closed forms hold for dims [n_0, n_1, 1]; got {sheaf.dims}")


def denominators(sheaf: NeuralSheaf, active) -> np.ndarray:
    """(B,) ``D = 1 + ||w_A||^2 + 1/2 ||w_I||^2 + 1/2 ||w_K||^2`` per example.

    active: (B, n_1) bool, the hidden units with ``z > 0`` (an Equilibrium's ``patterns[0]``). Kink and
    inactive units enter ``D`` alike, so only the active set is needed.
    """
    _check_one_hidden(sheaf)
    w2 = sheaf.weights[1][0] ** 2
    active = np.asarray(active, dtype=bool)
    return 1.0 + 0.5 * w2.sum() + 0.5 * (active.astype(np.float64) @ w2)


def residual(sheaf: NeuralSheaf, X, Y, active, kinks) -> np.ndarray:
    """(B,) the two-sided equilibrium energy ``R`` from the closed form, given the equilibrium's unit
    sets (``active``, ``kinks``: (B, n_1) bool). X: (B, n_0), Y: (B, 1)."""
    _check_one_hidden(sheaf)
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    kinks = np.asarray(kinks, dtype=bool)
    forward = sheaf._forward_cochain(X)
    u, f = forward.z[0], forward.z[-1][:, 0]          # u = W_1 x + b_1 is pinned by the input
    w = sheaf.weights[1][0]
    uk = np.where(kinks, u, 0.0)
    D = denominators(sheaf, active)
    return 0.5 * (uk ** 2).sum(axis=1) + (f - Y[:, 0] - uk @ w) ** 2 / (4.0 * D)


def step_factor(sheaf: NeuralSheaf, X, Y) -> float:
    """Mean over the batch of ``2 D`` at the two-sided equilibria: how many times shorter the sheaf
    trainer's first-layer steps are than SGD's at one learning rate (see the module docstring)."""
    from .solve import equilibrium
    _check_one_hidden(sheaf)
    eq = equilibrium(sheaf, X, Y)
    return float(np.mean(2.0 * denominators(sheaf, eq.patterns[0])))


def compact_residual(sheaf: NeuralSheaf, x, y) -> float:
    """The relaxed energy of one example in the *compact* formulation, by exhaustive search.

    The compact path graph keeps only the pre-activations as vertices and folds the ReLU into the next
    restriction map: ``E = 1/2 ||u - z_1||^2 + 1/2 (w . relu(z_1) + b_2 - z_2)^2 + 1/2 (z_2 - y)^2``
    with ``u = W_1 x + b_1``. After ``z_2 = (w . relu(z_1) + b_2 + y) / 2`` it is piecewise quadratic in
    ``z_1``; on each face of the activation pattern (every unit active ``z_j > 0``, inactive ``z_j < 0``
    or on the kink ``z_j = 0``) it is a quadratic whose stationary point is found in closed form, and the
    global minimum is the smallest stationary value of a face that contains its own stationary point.
    ``3^{n_1}`` faces: meant for small ``n_1`` (at most 12). x: (n_0,), y: a number.
    """
    import itertools
    _check_one_hidden(sheaf)
    n1 = sheaf.dims[1]
    if n1 > 12:
        raise ValueError(f"compact_residual searches 3^n_1 faces; n_1 = {n1} is too many (at most 12)")
    x = sheaf.check_input(np.reshape(x, (1, -1)), "x")[0]
    u = sheaf.weights[0] @ x + sheaf.biases[0]
    w, c = sheaf.weights[1][0], sheaf.biases[1][0] - float(y)
    best = np.inf
    for modes in itertools.product((1, -1, 0), repeat=n1):
        m = np.array(modes)
        A = m == 1
        # on the face: z_j = u_j (inactive), 0 (kink), and for active units the minimiser of
        # 1/2 ||u_A - z_A||^2 + 1/4 (w_A . z_A + c)^2, i.e. z_A = u_A - w_A s / 2, s = w_A . z_A + c
        s = (w[A] @ u[A] + c) / (1.0 + 0.5 * w[A] @ w[A])
        z = np.where(A, u - 0.5 * w * s, np.where(m == -1, u, 0.0))
        if np.any(z[A] <= 0) or np.any(z[m == -1] >= 0):
            continue
        energy = 0.5 * np.sum((u - z) ** 2) + 0.25 * (w @ np.maximum(z, 0.0) + c) ** 2
        best = min(best, float(energy))
    return best
