"""The slow phase's local rule (Definition 3): each weight moves by its own edge's discord.

For the affine edge ``affine_l`` with discord ``d = W_l a_{l-1} + b_l - z_l`` (B, n_l) and
presynaptic stalk ``a_{l-1}`` (B, n_{l-1}), the gradient of the batch-mean energy with the stalks
held fixed is

    grad W_l = d^T a_{l-1} / B   (n_l, n_{l-1}),      grad b_l = mean_i d_i   (n_l,).

Each uses only the two endpoint stalks of its own edge; no chain rule crosses the graph. At an
equilibrium (where the energy's gradient in the free stalks vanishes) this is the exact gradient of the
mean residual ``R(theta)`` by the envelope theorem; away from one (the joint flow) it is the partial
gradient of the energy. Backpropagation ends in the same outer products, with its back-propagated
errors in place of the discords: :func:`outer_sums` serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sheaf import Cochain, Discords, NeuralSheaf
from .solve import Equilibrium


def outer_sums(errors: list, presynaptic: list) -> tuple:
    """Per-layer sums over the batch: ``sum_i e_i a_i^T`` and ``sum_i e_i``.

    errors: ``[e_1, ..., e_L]``, each (B, n_l); presynaptic: ``[a_0, ..., a_{L-1}]``, each (B, n_{l-1}).
    Returns ``(sum_W, sum_b)``: lists of (n_l, n_{l-1}) and (n_l,) arrays. Divided by ``B`` they are
    the batch-mean gradients.
    """
    return ([e.T @ a for e, a in zip(errors, presynaptic)], [e.sum(axis=0) for e in errors])


def local_sums(sheaf: NeuralSheaf, cochain: Cochain, discord: Discords | None = None) -> tuple:
    """:func:`outer_sums` of the affine discords of ``cochain`` (no argument checks)."""
    d = sheaf.discord(cochain, check=False) if discord is None else discord
    errors = [d[f"affine_{l}"] for l in range(1, sheaf.depth + 1)]
    return outer_sums(errors, cochain.activations())


def local_gradients(sheaf: NeuralSheaf, state, discord: Discords | None = None) -> tuple:
    """The local rule: gradient of the batch-mean energy with respect to every weight and bias.

    sheaf : the network; it must have the weights ``state`` was solved with.
    state : an :class:`~sheaflab.Equilibrium` (the fast phase's result; the rule is then the exact
        gradient of ``R``) or any :class:`~sheaflab.Cochain` of the network (the rule at those stalks).
    discord : the cochain's :class:`~sheaflab.Discords` if already at hand (cochains only).

    Returns ``(grad_W, grad_b)``, two lists shaped like ``sheaf.weights`` and ``sheaf.biases``.
    """
    if isinstance(state, Equilibrium):
        if discord is not None:
            raise TypeError("discord is only for a Cochain; an Equilibrium carries its own")
        state.check_sheaf(sheaf)
        cochain, discord = state.cochain, state.discord
    elif isinstance(state, Cochain):
        cochain = state
    else:
        raise TypeError(f"state must be a sheaflab.Equilibrium or Cochain, got {type(state).__name__}")
    sheaf.check_cochain(cochain)
    sum_W, sum_b = local_sums(sheaf, cochain, discord)
    B = cochain.batch_size
    return [g / B for g in sum_W], [g / B for g in sum_b]


@dataclass
class BatchStats:
    """What the slow phase needs from the fast phase of ``size`` examples, as sums that add.

    ``a + b`` is the BatchStats of the two batches together; the means are read off the sums.

    size: number of examples ``B``.
    sum_W, sum_b: per-layer sums over the examples of the local rule's outer products (the
        equilibrium discord times the presynaptic stalk, and the discord itself), ordered like
        ``sheaf.weights`` (each (n_l, n_{l-1})) and ``sheaf.biases`` (each (n_l,)).
    energy_sum: sum of the examples' equilibrium energies.
    discord_sum: (n_edges,) sum of each edge's discord norm, edges in ``sheaf.edges`` order.
    iterations: fast-phase iterations (region solves or Euler steps) summed over the examples.
    n_unconverged: examples that stopped at ``max_iter`` without converging (no warning is raised for
        them: the caller decides what to do).

    The means: ``grad_W``, ``grad_b`` (equal to :func:`~sheaflab.local_gradients` of the batch),
    ``residual`` (mean equilibrium energy ``R``) and ``edge_discord`` ((n_edges,) mean discord norms).
    """

    size: int
    sum_W: list
    sum_b: list
    energy_sum: float
    discord_sum: np.ndarray
    iterations: int = 0
    n_unconverged: int = 0

    def __radd__(self, other):
        return self if isinstance(other, int) and other == 0 else NotImplemented   # sum(parts)

    def __add__(self, other: "BatchStats") -> "BatchStats":
        if not isinstance(other, BatchStats):
            return NotImplemented
        return BatchStats(self.size + other.size,
                          [p + q for p, q in zip(self.sum_W, other.sum_W)],
                          [p + q for p, q in zip(self.sum_b, other.sum_b)],
                          self.energy_sum + other.energy_sum, self.discord_sum + other.discord_sum,
                          self.iterations + other.iterations, self.n_unconverged + other.n_unconverged)

    @classmethod
    def of(cls, sheaf: NeuralSheaf, eq: Equilibrium) -> "BatchStats":
        """The BatchStats of the equilibrium ``eq`` of a batch (its sums by :func:`local_sums`)."""
        sum_W, sum_b = local_sums(sheaf, eq.cochain, eq.discord)
        return cls(eq.energy.shape[0], sum_W, sum_b, float(eq.energy.sum()),
                   eq.discord.norms().sum(axis=0), int(eq.iterations.sum()),
                   int(eq.converged.size - eq.converged.sum()))

    @property
    def grad_W(self) -> list:
        return [g / self.size for g in self.sum_W]

    @property
    def grad_b(self) -> list:
        return [g / self.size for g in self.sum_b]

    @property
    def residual(self) -> float:
        return self.energy_sum / self.size

    @property
    def edge_discord(self) -> np.ndarray:
        return self.discord_sum / self.size
