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
