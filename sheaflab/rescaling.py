"""The positive rescaling group of a ReLU network, and what it does to the relaxed energy.

For ``dims = [n_0, ..., n_L]`` (``L - 1`` hidden layers) and factors ``c = (c_1, ..., c_{L-1})``, all
``> 0``, with ``c_0 = c_L = 1``, the rescaling

    W_l -> (c_l / c_{l-1}) W_l,     b_l -> c_l b_l          (l = 1 .. L)

leaves the network function unchanged (ReLU is positively homogeneous). It maps cochains by
``z_l, a_l -> c_l z_l, c_l a_l`` (``l <= L - 1``; ``x``, ``z_L``, ``yhat`` unchanged), a bijection of the
free cochains, and under it every discord of ``affine_l`` and ``relu_l`` (``l <= L - 1``) is multiplied
by ``c_l`` while ``affine_L`` and ``output`` are unchanged. So, with ``E_l`` the energy of the pair
``affine_l``, ``relu_l`` and ``E_rest`` that of ``affine_L`` and ``output``,

    E_{theta_c}(c . cochain) = sum_l c_l^2 E_l(cochain) + E_rest(cochain).

Consequences (proved in the book's section on the rescaling symmetry, checked in the tests):

* If the factors of a set ``T`` of hidden layers tend to 0 (others fixed), the global minimum
  ``R_glob(theta_c)`` tends to ``R_T``, the minimum of the energy with the edges ``affine_l`` and
  ``relu_l`` (``l`` in ``T``) deleted (:func:`pruned_minimum`, :func:`rescaling_limit`).
* With ``k = max T``, ``R_T`` is the two-sided minimum of the subnetwork ``[n_k, ..., n_L]`` with its
  input ``a_k`` free; for ``k = L - 1`` it is ``1/4 dist(y - b_L, range W_L)^2``, 0 when ``W_L`` has
  full row rank.
* Envelope theorem: ``dR / d(log c_l) = 2 E_l`` at the equilibrium (reached or global), where the
  equilibrium moves smoothly.

:func:`rescale` builds the rescaled network, :func:`rescale_cochain` the rescaled cochain,
:func:`rescaling_grid` the reached (and optionally global) ``R`` over a grid of ``(c_1, c_2)`` for a
net with two hidden layers, and :func:`rescaling_limits` a table of limits along named directions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .sheaf import Cochain, NeuralSheaf
from .solve import equilibrium

#: :func:`pruned_minimum` enumerates ``2^units`` activation regions per example; above this it refuses.
MAX_REGIONS = 2 ** 12


def _factors(sheaf: NeuralSheaf, factors) -> np.ndarray:
    hidden = sheaf.depth - 1
    try:
        c = np.array(factors, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"factors must be a sequence of {hidden} positive numbers (one per hidden "
                        f"layer); got {factors!r}") from None
    if np.ndim(factors) == 0 or c.size != hidden:
        raise ValueError(f"factors must hold {hidden} positive numbers, one per hidden layer of "
                         f"dims {sheaf.dims}; got {factors!r}")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"factors must be finite and > 0; got {factors!r}")
    return c


def rescale(sheaf: NeuralSheaf, factors) -> NeuralSheaf:
    """The rescaled network ``W_l -> (c_l / c_{l-1}) W_l``, ``b_l -> c_l b_l`` (``c_0 = c_L = 1``).

    factors: sequence of ``L - 1`` positive floats ``(c_1, ..., c_{L-1})``, one per hidden layer
    (``ValueError`` naming ``factors`` on a wrong length or a non-positive entry). Returns a new
    :class:`NeuralSheaf` (same head) computing the same function. ``factors = (1/c,)`` on one hidden
    layer is the curve ``(W_1/c, b_1/c, c W_2)`` of :func:`rescaled`.
    """
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    c = np.concatenate([[1.0], _factors(sheaf, factors), [1.0]])
    new = sheaf.copy()
    for l in range(1, sheaf.depth + 1):
        new.weights[l - 1] *= c[l] / c[l - 1]
        new.biases[l - 1] *= c[l]
    return new


def rescaled(sheaf: NeuralSheaf, c: float, layer: int = 1) -> NeuralSheaf:
    """The network ``(W_l / c, b_l / c, c W_{l+1})`` for ``l = layer``: :func:`rescale` with the factor
    ``1/c`` on that hidden layer and 1 on the others; the same function, a different sheaf.
    ``c > 0``; ``1 <= layer < depth``."""
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    c = positive(c, "c")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer < sheaf.depth:
        raise ValueError(f"layer must be a hidden layer, 1 .. {sheaf.depth - 1}; got {layer!r}")
    factors = np.ones(sheaf.depth - 1)
    factors[layer - 1] = 1.0 / c
    return rescale(sheaf, factors)


def rescale_cochain(cochain: Cochain, factors) -> Cochain:
    """The cochain ``z_l, a_l -> c_l z_l, c_l a_l`` for the hidden layers ``l = 1 .. L-1`` (``x``,
    ``z_L`` and ``yhat`` unchanged): the image of ``cochain`` under the rescaling ``factors``
    (``L - 1`` positive floats). A new :class:`Cochain`."""
    instance(cochain, "cochain", Cochain, "a sheaflab.Cochain")
    c = np.array(factors, dtype=np.float64).reshape(-1)
    if c.size != len(cochain.a) or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"factors must hold {len(cochain.a)} finite positive numbers; got {factors!r}")
    z = [cl * zl for cl, zl in zip(c, cochain.z[:-1])] + [cochain.z[-1].copy()]
    return Cochain(cochain.x.copy(), z, [cl * al for cl, al in zip(c, cochain.a)], cochain.yhat.copy())


def layer_energies(sheaf: NeuralSheaf, eq) -> np.ndarray:
    """(B, L - 1) energy ``E_l`` of the pair ``affine_l``, ``relu_l`` for each hidden layer ``l``, per
    example, at an :class:`~sheaflab.Equilibrium` (or a :class:`Cochain`). By the envelope theorem
    ``dR / d(log c_l) = 2 E_l``."""
    d = sheaf.discord(eq) if isinstance(eq, Cochain) else eq.discord
    e = d.energies()
    names = [edge.name for edge in sheaf.edges]
    return np.stack([e[:, names.index(f"affine_{l}")] + e[:, names.index(f"relu_{l}")]
                     for l in range(1, sheaf.depth)], axis=1) if sheaf.depth > 1 else np.zeros((len(e), 0))


def _layers(sheaf: NeuralSheaf, layers, name: str) -> tuple:
    try:
        out = sorted({int(l) for l in layers})
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a collection of hidden-layer indices 1 .. {sheaf.depth - 1}; "
                        f"got {layers!r}") from None
    if any(isinstance(l, bool) or not float(l).is_integer() for l in layers) or \
            any(not 1 <= l < sheaf.depth for l in out):
        raise ValueError(f"{name} must hold hidden-layer indices 1 .. {sheaf.depth - 1} of dims "
                         f"{sheaf.dims}; got {layers!r}")
    return tuple(out)


def _region_problem(Ws, bs, S, free_input: bool):
    """Least-squares form ``1/2 ||A v - (P p)||^2`` of the energy of the (sub)network ``Ws, bs`` in
    the activation region ``S`` (list of 0/1 vectors, one per hidden layer), with free variables
    ``v = (a_0 if free_input), z_1, a_1, ..., a_{L-1}, z_L``. The constant part of each row is
    ``P @ (a_0 if pinned, y)``. Returns ``A, P, lower, upper`` (bounds on v: the region's signs)."""
    L = len(Ws)
    n = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    cols, off = {}, 0
    if free_input:
        cols[("a", 0)] = off
        off += n[0]
    for l in range(1, L + 1):
        cols[("z", l)] = off
        off += n[l]
        if l < L:
            cols[("a", l)] = off
            off += n[l]
    rows = 2 * sum(n[1:L]) + 2 * n[L]
    ext = n[L] + (0 if free_input else n[0])          # pinned data: (y, a_0)
    A, P = np.zeros((rows, off)), np.zeros((rows, ext))
    lo, hi = np.full(off, -np.inf), np.full(off, np.inf)
    r = 0
    for l in range(1, L + 1):
        m = n[l]
        zc = cols[("z", l)]
        # affine_l: W_l a_{l-1} + b_l - z_l; b_l goes to the constant (with a minus sign on the right)
        A[r:r + m, zc:zc + m] = -np.eye(m)
        if l == 1 and not free_input:
            P[r:r + m, n[L]:] = -Ws[0]
        else:
            ac = cols[("a", l - 1)]
            A[r:r + m, ac:ac + n[l - 1]] = Ws[l - 1]
        r += m
        if l < L:
            s = np.asarray(S[l - 1], dtype=np.float64)
            A[r:r + m, zc:zc + m] = np.diag(s)
            ac = cols[("a", l)]
            A[r:r + m, ac:ac + m] = -np.eye(m)
            lo[zc:zc + m] = np.where(s > 0, 0.0, -np.inf)
            hi[zc:zc + m] = np.where(s > 0, np.inf, 0.0)
            r += m
    A[r:r + n[L], cols[("z", L)]:cols[("z", L)] + n[L]] = np.eye(n[L])
    P[r:r + n[L], :n[L]] = np.eye(n[L])
    bias = np.zeros(rows)
    r = 0
    for l in range(1, L + 1):
        bias[r:r + n[l]] = -bs[l - 1]
        r += 2 * n[l] if l < L else n[l]
    return A, P, bias, lo, hi


def pruned_minimum(sheaf: NeuralSheaf, X, Y, deleted=()) -> np.ndarray:
    """(B,) the global minimum over free cochains of the two-sided energy with the edges ``affine_l``
    and ``relu_l`` deleted for every hidden layer ``l`` in ``deleted``; identity head only.

    ``deleted=()`` gives the global minimum ``R_glob`` itself. With ``k = max(deleted)`` the graph
    falls apart at ``a_k``: the layers below sit at zero energy (the forward pass), and the value is
    the two-sided minimum of the subnetwork ``[n_k, ..., n_L]`` with its input ``a_k`` free. It is
    computed exactly: every activation region of that subnetwork's hidden units (closed, so that
    kinks are included) is a convex bounded least-squares problem, solved by
    ``scipy.optimize.lsq_linear`` (method ``"bvls"``), and the smallest value is kept. At most
    :data:`MAX_REGIONS` regions per example (``ValueError`` naming the count).
    X: (B, n_0); Y: (B, n_L).
    """
    from scipy.optimize import lsq_linear

    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    if sheaf.head != "identity":
        raise ValueError(f"pruned_minimum is exact for the identity head only; sheaf has head "
                         f"{sheaf.head!r}")
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    T = _layers(sheaf, deleted, "deleted")
    k = max(T) if T else 0
    Ws, bs = sheaf.weights[k:], sheaf.biases[k:]
    widths = [W.shape[0] for W in Ws[:-1]]
    units = sum(widths)
    if 2 ** units > MAX_REGIONS:
        raise ValueError(f"pruned_minimum would enumerate 2^{units} = {2 ** units} activation regions per "
                         f"example, above the limit MAX_REGIONS = {MAX_REGIONS}")
    data = Y if k else np.concatenate([Y, X], axis=1)
    best = np.full(X.shape[0], np.inf)
    for bits in itertools.product((0, 1), repeat=units):
        S = np.split(np.array(bits, dtype=np.float64), np.cumsum(widths)[:-1]) if widths else []
        A, P, bias, lo, hi = _region_problem(Ws, bs, S, free_input=bool(k))
        for i in range(X.shape[0]):
            rhs = P @ data[i] + bias
            res = lsq_linear(A, rhs, bounds=(lo, hi), method="bvls", tol=1e-15, lsmr_tol=None)
            val = 0.5 * float(np.sum((A @ res.x - rhs) ** 2))
            best[i] = min(best[i], val)
    return best


def rescaling_limit(sheaf: NeuralSheaf, X, Y, scaled_layers) -> float:
    """Mean ``R_T`` over the batch: the limit of the mean global minimum ``R_glob(theta_c)`` when the
    factors ``c_l`` of the hidden layers in ``scaled_layers`` (non-empty) tend to 0 at any rates and
    the others stay fixed (:func:`pruned_minimum` with those layers' edges deleted). With the last
    hidden layer among them it is ``mean 1/4 dist(y - b_L, range W_L)^2`` (0 for a full-row-rank
    ``W_L``). Identity head; X (B, n_0), Y (B, n_L)."""
    T = _layers(sheaf, scaled_layers, "scaled_layers")
    if not T:
        raise ValueError("scaled_layers must name at least one hidden layer")
    return float(pruned_minimum(sheaf, X, Y, T).mean())


@dataclass
class RescalingGrid:
    """The mean relaxed energy over a grid of the rescaling group of a net with two hidden layers.

    c1: (n1,) factors ``c_1``; c2: (n2,) factors ``c_2``; reached: (n2, n1) mean reached ``R``
    (:func:`sheaflab.equilibrium` from the forward pass) at ``rescale(sheaf, (c1[j], c2[i]))``;
    glob: (n2, n1) mean global minimum there (:func:`pruned_minimum`), or None when not asked for;
    mse: the network's MSE (the same at every point).
    The issue's curve ``(W_1/c, b_1/c, c W_2)`` is the row ``c_2 = 1`` (``c_1 = 1/c``); the first
    layer scaled against the last, ``(W_1/c, b_1/c, W_2, c W_3)``, is the diagonal ``c_1 = c_2``.
    """

    c1: np.ndarray
    c2: np.ndarray
    reached: np.ndarray
    glob: np.ndarray | None
    mse: float


def rescaling_grid(sheaf: NeuralSheaf, X, Y, c1, c2, global_min: bool = False) -> RescalingGrid:
    """:class:`RescalingGrid` of the mean ``R`` at ``rescale(sheaf, (c_1, c_2))`` for every pair of
    ``c1`` (n1,) and ``c2`` (n2,) positive factors; ``sheaf`` must have two hidden layers.
    ``global_min=True`` also computes the global minimum (exhaustive: small nets only)."""
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    if sheaf.depth != 3:
        raise ValueError(f"rescaling_grid needs a net with two hidden layers; got dims {sheaf.dims}")
    c1 = np.array([positive(float(v), "c1") for v in np.ravel(c1)])
    c2 = np.array([positive(float(v), "c2") for v in np.ravel(c2)])
    reached = np.empty((c2.size, c1.size))
    glob = np.empty_like(reached) if global_min else None
    for i, b in enumerate(c2):
        for j, a in enumerate(c1):
            net = rescale(sheaf, (a, b))
            reached[i, j] = equilibrium(net, X, Y).energy.mean()
            if global_min:
                glob[i, j] = pruned_minimum(net, X, Y).mean()
    return RescalingGrid(c1, c2, reached, glob, sheaf.mse(X, Y))


@dataclass
class LimitRow:
    """One direction of :func:`rescaling_limits`: the hidden layers ``scaled`` whose factors shrink;
    ``limit``: the exact limit ``R_T`` of the mean global minimum (:func:`rescaling_limit`);
    ``glob_small`` / ``reached_small``: the mean global minimum and the mean reached ``R`` at factor
    ``c_small`` on those layers (1 on the others)."""

    scaled: tuple
    limit: float
    glob_small: float
    reached_small: float


def rescaling_limits(sheaf: NeuralSheaf, X, Y, directions=None, c_small: float = 1e-4) -> list:
    """:class:`LimitRow` per direction (a collection of hidden layers; default: each single hidden
    layer, and all of them together). Identity head, small nets (:func:`pruned_minimum`)."""
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    c_small = positive(c_small, "c_small")
    hidden = list(range(1, sheaf.depth))
    if directions is None:
        directions = [(l,) for l in hidden] + ([tuple(hidden)] if len(hidden) > 1 else [])
    rows = []
    for T in directions:
        T = _layers(sheaf, T, "directions")
        net = rescale(sheaf, [c_small if l in T else 1.0 for l in hidden])
        rows.append(LimitRow(T, rescaling_limit(sheaf, X, Y, T), float(pruned_minimum(net, X, Y).mean()),
                             float(equilibrium(net, X, Y).energy.mean())))
    return rows
