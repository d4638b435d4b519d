"""Closed forms of the relaxed energy: one hidden layer exactly, any depth through the output stiffness.

One hidden layer (``dims = [n_0, n_1, n_L]``). With ``u = W_1 x + b_1`` pinned by the input, eliminate
the free stalks unit by unit. Take any equilibrium, that is any minimiser of the energy on its own face
of the activation arrangement, whose hidden units split into active ``A`` (``z_j > 0``), inactive ``I``
(``z_j < 0``) and kink ``K`` (``z_j = 0``) units, with output weights ``W`` (columns ``W_A``, ``W_I``,
``W_K``). Let ``f_P = W_A u_A + b_2`` be the output of the *linear* network that keeps that pattern
(:func:`region_output`; kink units pass 0). Then

    R = 1/2 ||u_K||^2 + 1/4 e^T D^{-1} e,   e = f_P - y,
    D = I + W_A W_A^T + 1/2 W_I W_I^T + 1/2 W_K W_K^T        (:func:`output_metrics`).

``f_P`` is not the network output ``f = W relu(u) + b_2`` in general: a global minimum can make a
forward-inactive unit active (``u_j < 0 < z_j``). For the *reached* equilibrium (the heat flow's limit
from the forward pass, what :func:`sheaflab.equilibrium` returns) forward-inactive units never move and
forward-active ones end active or on the kink, so there ``f_P = f - W_K u_K``, and ``f_P = f`` without
kinks. For a scalar output ``D = 1 + ||w_A||^2 + 1/2 ||w_I||^2 + 1/2 ||w_K||^2`` (:func:`denominators`),
and without kinks ``R = (f_P - y)^2 / (4 D)``. Where the activation region does not change, the first
layer's gradient of ``R`` is then the squared-error loss's ``(f - y) grad f`` divided by ``2 D``: at one
learning rate, the sheaf trainer takes first-layer steps ``2 D`` times shorter than SGD's.
:func:`step_factor` measures that factor on a batch.

Any depth (:func:`stiffness`). Inside one activation region ``P`` without kinks, the energy is a
positive semidefinite quadratic in the pinned data ``(u_1, b_2 .. b_L, y)`` that vanishes exactly when
``y`` is the region's linear output ``f_P`` (:func:`region_output`), so ``R = 1/2 (f_P - y)^T S (f_P - y)``
with ``S`` depending on ``W_2 .. W_L`` and ``P`` only. ``W_1`` and ``b_1`` enter through ``u_1``, that is
through ``f_P``: the first layer's gradient of ``R`` is ``S`` times the squared error's.

Derivation (the book's section on what sets the slowdown): an active unit contributes
``(u - z)^2 + (z - a)^2``, minimised by ``z = (u + a) / 2`` to ``(u - a)^2 / 2``; an inactive one
``(u - z)^2 + a^2``, minimised by ``z = u``; a kink unit ``u^2 + a^2``; the output pair contributes
``(w . a + b_2 - y)^2 / 2`` after ``z_2 = (w . a + b_2 + y) / 2``. Minimising the remaining quadratic
in ``a`` gives ``a_j = u_j - w_j r`` (active) and ``a_j = -w_j r / 2`` (others), with
``r = (f_P - y) / D`` the output discord times two.
"""

from __future__ import annotations

import numpy as np

from ._checks import instance
from .backprop import backprop_sums
from .local_rule import local_gradients
from .sheaf import NeuralSheaf, flatten
from .solve import equilibrium


def _check_one_hidden(sheaf: NeuralSheaf, scalar: bool = True) -> None:
    if not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    if sheaf.depth != 2 or (scalar and sheaf.dims[-1] != 1):
        shape = "[n_0, n_1, 1]" if scalar else "[n_0, n_1, n_2] (one hidden layer)"
        raise ValueError(f"the closed forms hold for dims {shape}; got {sheaf.dims}")


def output_metrics(sheaf: NeuralSheaf, active) -> np.ndarray:
    """(B, n_L, n_L) ``D = I + W_A W_A^T + 1/2 W_I W_I^T + 1/2 W_K W_K^T`` per example (one hidden layer).

    ``W_A`` holds the output weights' columns of the active units. active: (B, n_1) bool, the hidden
    units with ``z > 0`` (an Equilibrium's ``patterns[0]``). Kink and inactive units enter ``D``
    alike, so only the active set is needed. For a scalar output ``D`` is :func:`denominators`.
    """
    _check_one_hidden(sheaf, scalar=False)
    W = sheaf.weights[1]
    weight = 0.5 + 0.5 * np.asarray(active, dtype=np.float64)       # 1 on A, 1/2 on I and K
    return np.eye(W.shape[0]) + np.einsum("kj,bj,lj->bkl", W, weight, W)


def denominators(sheaf: NeuralSheaf, active) -> np.ndarray:
    """(B,) ``D = 1 + ||w_A||^2 + 1/2 ||w_I||^2 + 1/2 ||w_K||^2`` per example (``dims = [n_0, n_1, 1]``).

    active: (B, n_1) bool, the hidden units with ``z > 0`` (an Equilibrium's ``patterns[0]``).
    """
    _check_one_hidden(sheaf)
    return output_metrics(sheaf, active)[:, 0, 0]


def relaxed_energy(sheaf: NeuralSheaf, X, Y, active, kinks) -> np.ndarray:
    """(B,) the two-sided energy of an equilibrium from the closed form, given its unit sets
    (``active``: (B, n_1) bool, ``z > 0``; ``kinks``: (B, n_1) bool, ``z = 0``; an Equilibrium's
    ``patterns[0]`` and ``kinks[0]``). X: (B, n_0), Y: (B, n_L); one hidden layer, any n_L:

        R = 1/2 ||u_K||^2 + 1/4 e^T D^{-1} e,   e = f_P - y,   D = :func:`output_metrics`,

    with ``f_P`` = :func:`region_output` for the pattern ``active`` (kink units pass 0). It holds for
    any equilibrium that is the minimiser of its own face, the reached one (:func:`sheaflab.equilibrium`)
    and the global minimum (:func:`sheaflab.global_equilibrium`) alike.
    """
    _check_one_hidden(sheaf, scalar=False)
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    active = _unit_set(active, "active", X.shape[0], sheaf.dims[1])
    kinks = _unit_set(kinks, "kinks", X.shape[0], sheaf.dims[1])
    if np.any(active & kinks):
        raise ValueError("active and kinks overlap: a unit on the kink z = 0 is not active")
    u = X @ sheaf.weights[0].T + sheaf.biases[0]                # pinned by the input
    uk = np.where(kinks, u, 0.0)
    e = region_output(sheaf, X, [active]) - Y
    De = np.linalg.solve(output_metrics(sheaf, active), e[..., None])[..., 0]
    return 0.5 * (uk ** 2).sum(axis=1) + 0.25 * np.einsum("bk,bk->b", e, De)


def _unit_set(mask, name: str, B: int, n1: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (B, n1) or not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{name} must be a ({B}, {n1}) bool array (one row per example, one column per "
                         f"hidden unit); got dtype {mask.dtype} and shape {mask.shape}")
    return mask.astype(bool)


def region_output(sheaf: NeuralSheaf, X, patterns) -> np.ndarray:
    """(B, n_L) the output of the *linear* network that keeps each hidden unit's activation pattern
    fixed (``a = z`` where ``patterns`` is True, ``a = 0`` elsewhere), instead of applying the ReLU.
    It equals the forward pass where the patterns are the forward pass's own."""
    X = sheaf.check_input(X)
    prev = X
    for W, b, P in zip(sheaf.weights[:-1], sheaf.biases[:-1], patterns):
        prev = np.where(P, prev @ W.T + b, 0.0)
    return prev @ sheaf.weights[-1].T + sheaf.biases[-1]


def stiffness(sheaf: NeuralSheaf, X, Y, eq=None) -> np.ndarray:
    """(B,) the output stiffness ``S = 2 R / (f_P - y)^2`` of each example, for any depth, scalar output.

    Inside one activation region ``P`` and without kinks, the relaxed energy is exactly
    ``R = 1/2 S (f_P - y)^2`` with ``f_P`` = :func:`region_output` and ``S`` depending only on
    ``W_2 .. W_L`` and ``P`` (not on ``W_1``, the biases, ``x`` or ``y``); with one hidden layer
    ``S = 1 / (2 D)``. So the first layer's gradient of ``R`` is ``S`` times the squared error's.
    NaN for examples with a unit on a kink (where this form does not hold) or with ``f_P = y``.
    eq: the two-sided :class:`~sheaflab.Equilibrium` of ``(X, Y)`` if already solved.
    """
    from .solve import equilibrium
    if not isinstance(sheaf, NeuralSheaf):
        raise TypeError(f"sheaf must be a sheaflab.NeuralSheaf, got {type(sheaf).__name__}")
    if sheaf.dims[-1] != 1:
        raise ValueError(f"stiffness is a number only for a scalar output; dims are {sheaf.dims}")
    eq = equilibrium(sheaf, X, Y) if eq is None else eq
    eq.check_sheaf(sheaf)
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    err2 = (region_output(sheaf, X, eq.patterns)[:, 0] - Y[:, 0]) ** 2
    kinked = np.zeros(X.shape[0], dtype=bool)
    for k in eq.kinks:
        kinked |= k.any(axis=1)
    ok = ~kinked & (err2 > 0)
    return np.where(ok, 2.0 * eq.energy / np.where(ok, err2, 1.0), np.nan)


def step_factor(sheaf: NeuralSheaf, X, Y) -> float:
    """How many times shorter the sheaf trainer's first-layer steps are than SGD's at one learning rate.

    One hidden layer: the batch mean of ``2 D`` at the two-sided equilibria (kink units included, see
    the module docstring). Deeper networks with a scalar output: the mean of ``1 / S``
    (:func:`stiffness`) over the examples without kinks, which is ``2 D`` again for one hidden layer.
    """
    from .solve import equilibrium
    eq = equilibrium(sheaf, X, Y)
    if sheaf.depth == 2:
        return float(np.mean(2.0 * denominators(sheaf, eq.patterns[0])))
    S = stiffness(sheaf, X, Y, eq)
    if np.all(np.isnan(S)):
        raise ValueError("every example has a unit on a kink or a zero error: no step factor to average")
    return float(np.nanmean(1.0 / S))


def first_step_ratio(sheaf: NeuralSheaf, X, Y) -> float:
    """``||grad l||^2 / (grad l . grad L)`` at the current weights: how many times faster SGD's loss
    ``l = mean 1/2 ||f - y||^2`` starts to fall under a gradient step on ``l`` than under one of the
    same size on the mean relaxed energy ``L`` (the sheaf trainer's step). A model-free candidate for
    the epoch slowdown at one learning rate, for any depth; compare :func:`step_factor`.
    X: (B, n_0), Y: (B, n_L).
    """
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    gW, gb = local_gradients(sheaf, equilibrium(sheaf, X, Y))
    _, sW, sb, _ = backprop_sums(sheaf, X, Y)
    gR, gl = flatten(gW + gb), flatten(sW + sb) / X.shape[0]
    along = float(gl @ gR)
    if along <= 0:
        raise ValueError("the two gradients are not positively aligned here: no first-step ratio")
    return float(gl @ gl) / along


def compact_global_minimum(sheaf: NeuralSheaf, x, y) -> float:
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
        raise ValueError(f"compact_global_minimum searches 3^n_1 faces; n_1 = {n1} is too many (at most 12)")
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
