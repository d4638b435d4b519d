"""L2 regularization as an augmentation of the graph (Definition 8).

The parameters live on the parameter sheaf ``H_W``: one stalk per parameter block, holding ``W_l``
(shape ``(n_l, n_{l-1})``) or ``b_l`` (shape ``(n_l,)``) of the affine edge ``affine_l``. The
augmented graph adds, for every such block ``theta_e``, one *reluctance edge* from its stalk to an
anchor vertex pinned at zero. Its restriction map on the parameter side is ``sqrt(l2)`` times the
identity (on the anchor side any map, since the anchor is 0), so

* discord:  ``d = sqrt(l2) * theta_e - 0``,
* energy:   ``1/2 ||d||^2 = l2/2 ||theta_e||^2``,
* edge-local gradient (restriction map transposed times discord): ``sqrt(l2) * d = l2 * theta_e``.

Summed over all ``2 L`` blocks the reluctance energy is ``l2/2 ||theta||^2`` (biases included), and
the edge-local update on the augmented graph is exactly SGD with weight decay ``l2`` on the
objective ``R(theta) + l2/2 ||theta||^2``, where ``R`` is the mean equilibrium energy.

The reluctance edges touch only parameter stalks, never a cochain vertex, so the fast phase
(the equilibrium of each example's cochain) is the same with or without them; only the slow
phase sees ``l2``.

Convention for batches: the anchor term does not depend on the example. :func:`augmented_energy`
adds the whole ``l2/2 ||theta||^2`` to every example's energy, so that the batch *mean* is the
regularized objective ``mean_i E_i + l2/2 ||theta||^2`` whose gradient :func:`augmented_gradients`
returns (``local_gradients`` also averages over the batch). Summing over the batch instead would
count the anchor ``B`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .sheaf import Cochain, NeuralSheaf
from .local_rule import local_gradients
from .solve import Equilibrium


@dataclass(frozen=True)
class ReluctanceEdge:
    """One reluctance edge: parameter stalk ``param`` ('W' or 'b') of layer ``layer`` -> zero anchor.

    name: ``"reluctance_W{l}"`` or ``"reluctance_b{l}"``; kind: ``"reluctance"``;
    weight: the scalar restriction map ``sqrt(l2)``;
    discord: ``sqrt(l2) * theta_e``, same shape as the parameter ((n_l, n_{l-1}) or (n_l,)).
    """

    name: str
    kind: str
    layer: int
    param: str
    weight: float
    discord: np.ndarray

    @property
    def energy(self) -> float:
        """``1/2 ||d||^2 = l2/2 ||theta_e||^2``."""
        return 0.5 * float(np.sum(self.discord ** 2))


def _check(sheaf, l2) -> float:
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    return positive(l2, "l2", allow_zero=True)


def reluctance_edges(sheaf: NeuralSheaf, l2: float) -> list:
    """The ``2 L`` reluctance edges of the augmented graph, in layer order W_1, b_1, ..., W_L, b_L.

    l2: regularization strength, finite and ``>= 0``. Returns a list of :class:`ReluctanceEdge`;
    each discord is a new array ``sqrt(l2) * theta_e`` (a snapshot of the current parameters).
    """
    l2 = _check(sheaf, l2)
    w = float(np.sqrt(l2))
    out = []
    for l, (W, b) in enumerate(zip(sheaf.weights, sheaf.biases), start=1):
        out.append(ReluctanceEdge(f"reluctance_W{l}", "reluctance", l, "W", w, w * W))
        out.append(ReluctanceEdge(f"reluctance_b{l}", "reluctance", l, "b", w, w * b))
    return out


def reluctance_energy(sheaf: NeuralSheaf, l2: float) -> float:
    """Dirichlet energy of all reluctance edges: ``l2/2 ||theta||^2`` over every W_l and b_l."""
    return float(sum(e.energy for e in reluctance_edges(sheaf, l2)))


def augmented_energy(sheaf: NeuralSheaf, eq, l2: float) -> np.ndarray:
    """Per-example Dirichlet energy on the augmented graph, shape (B,).

    eq: an :class:`~sheaflab.Equilibrium` (its ``energy`` is used) or any :class:`~sheaflab.Cochain`
    of the same network (its energy is computed), for a batch of ``B`` examples.
    Returns ``E_i + l2/2 ||theta||^2``: the shared anchor term is added in full to each example,
    so the batch mean is ``mean_i E_i + l2/2 ||theta||^2``.
    """
    l2 = _check(sheaf, l2)
    if isinstance(eq, Equilibrium):
        eq.check_sheaf(sheaf)
        base = eq.energy
    elif isinstance(eq, Cochain):
        base = sheaf.energy(eq)
    else:
        raise TypeError(f"eq must be a sheaflab.Equilibrium or Cochain, got {type(eq).__name__}")
    return base + reluctance_energy(sheaf, l2)


def add_reluctance_gradients(sheaf: NeuralSheaf, grad_W: list, grad_b: list, l2: float):
    """Add each reluctance edge's term, its restriction map times its discord (``l2 * theta_e``), to
    gradients shaped like ``sheaf.weights`` / ``sheaf.biases``. Returns new lists; the inputs are kept."""
    grad_W, grad_b = list(grad_W), list(grad_b)
    for e in reluctance_edges(sheaf, l2):
        target = grad_W if e.param == "W" else grad_b
        target[e.layer - 1] = target[e.layer - 1] + e.weight * e.discord
    return grad_W, grad_b


def augmented_gradients(sheaf: NeuralSheaf, eq: Equilibrium, l2: float):
    """Edge-local gradient on the augmented graph of ``mean_i E_i + l2/2 ||theta||^2``.

    Affine edges contribute :func:`~sheaflab.local_gradients` (batch mean of discord x presynaptic
    stalk); each reluctance edge contributes its restriction map times its discord,
    ``sqrt(l2) * (sqrt(l2) * theta_e) = l2 * theta_e``. At an equilibrium this is the gradient of
    ``R(theta) + l2/2 ||theta||^2``. ``l2 = 0`` gives ``local_gradients`` unchanged.
    Returns ``(grad_W, grad_b)``: lists of arrays shaped like ``sheaf.weights`` and ``sheaf.biases``.
    """
    l2 = _check(sheaf, l2)
    instance(eq, "eq", Equilibrium, "a sheaflab.Equilibrium")
    return add_reluctance_gradients(sheaf, *local_gradients(sheaf, eq), l2)
