"""L2 regularization as an augmentation of the graph (Definition 8).

The parameters live on the parameter sheaf ``H_W``: one stalk per parameter block, holding ``W_l``
(shape ``(n_l, n_{l-1})``) or ``b_l`` (shape ``(n_l,)``) of the affine edge ``affine_l``. The
augmented graph adds, for every such block ``theta_e``, one *reluctance edge* from its stalk to an
anchor vertex pinned at zero. Its restriction map on the parameter side is ``sqrt(lam)`` times the
identity (on the anchor side any map, since the anchor is 0), so

* discord:  ``d = sqrt(lam) * theta_e - 0``,
* energy:   ``1/2 ||d||^2 = lam/2 ||theta_e||^2``,
* edge-local gradient (restriction map transposed times discord): ``sqrt(lam) * d = lam * theta_e``.

Summed over all ``2 L`` blocks the reluctance energy is ``lam/2 ||theta||^2`` (biases included), and
the edge-local update on the augmented graph is exactly SGD with weight decay ``lam`` on the
objective ``R(theta) + lam/2 ||theta||^2``, where ``R`` is the mean equilibrium energy.

The reluctance edges touch only parameter stalks, never a cochain vertex, so the fast phase
(the equilibrium of each example's cochain) is the same with or without them; only the slow
phase sees ``lam``.

Convention for batches: the anchor term does not depend on the example. :func:`augmented_energy`
adds the whole ``lam/2 ||theta||^2`` to every example's energy, so that the batch *mean* is the
regularized objective ``mean_i E_i + lam/2 ||theta||^2`` whose gradient :func:`augmented_gradients`
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
    weight: the scalar restriction map ``sqrt(lam)``;
    discord: ``sqrt(lam) * theta_e``, same shape as the parameter ((n_l, n_{l-1}) or (n_l,)).
    """

    name: str
    kind: str
    layer: int
    param: str
    weight: float
    discord: np.ndarray

    @property
    def energy(self) -> float:
        """``1/2 ||d||^2 = lam/2 ||theta_e||^2``."""
        return 0.5 * float(np.sum(self.discord ** 2))


def _check(sheaf, lam) -> float:
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    return positive(lam, "lam", allow_zero=True)


def reluctance_edges(sheaf: NeuralSheaf, lam: float) -> list:
    """The ``2 L`` reluctance edges of the augmented graph, in layer order W_1, b_1, ..., W_L, b_L.

    lam: regularization strength, finite and ``>= 0``. Returns a list of :class:`ReluctanceEdge`;
    each discord is a new array ``sqrt(lam) * theta_e`` (a snapshot of the current parameters).
    """
    lam = _check(sheaf, lam)
    w = float(np.sqrt(lam))
    out = []
    for l, (W, b) in enumerate(zip(sheaf.weights, sheaf.biases), start=1):
        out.append(ReluctanceEdge(f"reluctance_W{l}", "reluctance", l, "W", w, w * W))
        out.append(ReluctanceEdge(f"reluctance_b{l}", "reluctance", l, "b", w, w * b))
    return out


def reluctance_energy(sheaf: NeuralSheaf, lam: float) -> float:
    """Dirichlet energy of all reluctance edges: ``lam/2 ||theta||^2`` over every W_l and b_l."""
    return float(sum(e.energy for e in reluctance_edges(sheaf, lam)))


def augmented_energy(sheaf: NeuralSheaf, eq, lam: float) -> np.ndarray:
    """Per-example Dirichlet energy on the augmented graph, shape (B,).

    eq: an :class:`~sheaflab.Equilibrium` (its ``energy`` is used) or any :class:`~sheaflab.Cochain`
    of the same network (its energy is computed), for a batch of ``B`` examples.
    Returns ``E_i + lam/2 ||theta||^2``: the shared anchor term is added in full to each example,
    so the batch mean is ``mean_i E_i + lam/2 ||theta||^2``.
    """
    lam = _check(sheaf, lam)
    if isinstance(eq, Equilibrium):
        eq.check_sheaf(sheaf)
        base = eq.energy
    elif isinstance(eq, Cochain):
        base = sheaf.energy(eq)
    else:
        raise TypeError(f"eq must be a sheaflab.Equilibrium or Cochain, got {type(eq).__name__}")
    return base + reluctance_energy(sheaf, lam)


def add_reluctance_gradients(sheaf: NeuralSheaf, grad_W: list, grad_b: list, lam: float):
    """Add each reluctance edge's term, its restriction map times its discord (``lam * theta_e``), to
    gradients shaped like ``sheaf.weights`` / ``sheaf.biases``. Returns new lists; the inputs are kept."""
    grad_W, grad_b = list(grad_W), list(grad_b)
    for e in reluctance_edges(sheaf, lam):
        target = grad_W if e.param == "W" else grad_b
        target[e.layer - 1] = target[e.layer - 1] + e.weight * e.discord
    return grad_W, grad_b


def augmented_gradients(sheaf: NeuralSheaf, eq: Equilibrium, lam: float):
    """Edge-local gradient on the augmented graph of ``mean_i E_i + lam/2 ||theta||^2``.

    Affine edges contribute :func:`~sheaflab.local_gradients` (batch mean of discord x presynaptic
    stalk); each reluctance edge contributes its restriction map times its discord,
    ``sqrt(lam) * (sqrt(lam) * theta_e) = lam * theta_e``. At an equilibrium this is the gradient of
    ``R(theta) + lam/2 ||theta||^2``. ``lam = 0`` gives ``local_gradients`` unchanged.
    Returns ``(grad_W, grad_b)``: lists of arrays shaped like ``sheaf.weights`` and ``sheaf.biases``.
    """
    lam = _check(sheaf, lam)
    instance(eq, "eq", Equilibrium, "a sheaflab.Equilibrium")
    return add_reluctance_gradients(sheaf, *local_gradients(sheaf, eq), lam)
