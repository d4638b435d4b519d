"""Shared fixtures: small networks and data with fixed seeds."""

import numpy as np
import sheaflab


def paraboloid_batch(n, seed=0):
    """n points on [-2, 2]^2 with targets x1^2 + x2^2 - 2/3, shapes (n, 2) and (n, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, 2))
    return X, (X ** 2).sum(axis=1, keepdims=True) - 2.0 / 3.0


def random_problem(dims, n=40, seed=0, bias=0.3, target_scale=2.0):
    """A sheaf with random (He) weights and random biases, plus random inputs and targets."""
    rng = np.random.default_rng(seed + 1000)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed)
    for b in sheaf.biases:
        b[:] = rng.normal(0.0, bias, size=b.shape)
    X = rng.uniform(-2.0, 2.0, size=(n, dims[0]))
    Y = rng.normal(0.0, target_scale, size=(n, dims[-1]))
    return sheaf, X, Y


def central_differences(objective, params, h=1e-6):
    """Central finite differences of ``objective()`` in every entry of the arrays ``params`` (changed
    in place and restored), as one flat vector in the order of ``sheaflab.flatten(params)``."""
    out = []
    for P in params:
        for idx in np.ndindex(P.shape):
            old = P[idx]
            P[idx] = old + h
            up = objective()
            P[idx] = old - h
            down = objective()
            P[idx] = old
            out.append((up - down) / (2 * h))
    return np.array(out)
