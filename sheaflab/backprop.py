"""Plain numpy backpropagation: the SGD baseline's gradient and the benchmarks' reference pass."""

from __future__ import annotations

import numpy as np

from .local_rule import outer_sums
from .sheaf import NeuralSheaf


def backprop_gradients(sheaf: NeuralSheaf, X, Y):
    """Loss ``mean_i 1/2 ||f(x_i) - y_i||^2`` (the mean cross-entropy for a sigmoid / softmax head)
    and its gradient by one forward and one backward pass.

    X: (B, n_0), Y: (B, n_L). Returns ``(loss, grad_W, grad_b)`` with the gradients ordered like
    ``sheaf.weights`` / ``sheaf.biases``. The chain rule runs through every layer: this is what the
    sheaf trainer avoids.
    """
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    loss_sum, sum_W, sum_b, _ = backprop_sums(sheaf, X, Y)
    B = X.shape[0]
    return loss_sum / B, [g / B for g in sum_W], [g / B for g in sum_b]


def backprop_sums(sheaf: NeuralSheaf, X, Y):
    """Unchecked backprop, summed over the batch: ``(sum_i loss_i, sum_W, sum_b, r)`` with the output
    residual ``r = grad A(z_L) - Y`` (B, n_L): ``f(X) - Y`` and the loss ``1/2 ||r_i||^2`` for the
    identity head, the predicted probabilities minus the labels and the cross-entropy
    ``A(z_L) - y . z_L`` for sigmoid / softmax heads. The forward pass is the sheaf's own; the
    gradients are the same outer products as the local rule's (:func:`~sheaflab.local_rule.outer_sums`),
    with the back-propagated errors ``e_L = r``, ``e_l = (e_{l+1} W_{l+1}) * 1[z_l > 0]``."""
    c = sheaf.forward_cochain(X, check=False)
    head = sheaf.output_head
    r = head.loss_gradient(c.z[-1], Y)
    errors = [r]
    for l in range(sheaf.depth - 1, 0, -1):
        errors.append((errors[-1] @ sheaf.weights[l]) * (c.z[l - 1] > 0))
    sum_W, sum_b = outer_sums(errors[::-1], c.activations())
    if head.name == "identity":
        return 0.5 * float(np.einsum("ij,ij->", r, r)), sum_W, sum_b, r
    loss = float(np.sum(head.log_partition(c.z[-1]) - np.einsum("ij,ij->i", Y, c.z[-1])))
    return loss, sum_W, sum_b, r
