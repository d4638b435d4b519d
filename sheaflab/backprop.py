"""Plain numpy backpropagation: the SGD baseline's gradient and the benchmarks' reference pass."""

from __future__ import annotations

import numpy as np

from .sheaf import NeuralSheaf


def backprop_gradients(sheaf: NeuralSheaf, X, Y):
    """Loss ``mean_i 1/2 ||f(x_i) - y_i||^2`` and its gradient by one forward and one backward pass.

    X: (B, n_0), Y: (B, n_L). Returns ``(loss, grad_W, grad_b)`` with the gradients ordered like
    ``sheaf.weights`` / ``sheaf.biases``. The chain rule runs through every layer: this is what the
    sheaf trainer avoids.
    """
    X = sheaf.check_input(X)
    Y = sheaf.check_target(Y, X.shape[0])
    return _backprop(sheaf, X, Y)[:3]


def _backprop(sheaf: NeuralSheaf, X, Y):
    """Unchecked :func:`backprop_gradients` that also returns the output residual ``f(X) - Y``."""
    B, L = X.shape[0], sheaf.depth
    acts, zs = [X], []
    for l, (W, b) in enumerate(zip(sheaf.weights, sheaf.biases)):
        z = acts[-1] @ W.T + b
        zs.append(z)
        if l < L - 1:
            acts.append(np.maximum(z, 0.0))
    r = zs[-1] - Y
    delta = r / B                               # dLoss/dz_L
    loss = 0.5 * B * np.einsum("ij,ij->", delta, delta)
    grad_W, grad_b = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        grad_W[l] = delta.T @ acts[l]
        grad_b[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ sheaf.weights[l]) * (zs[l - 1] > 0)
    return float(loss), grad_W, grad_b, r
