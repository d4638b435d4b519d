"""The spectrum of the free sheaf Laplacian, and the two timescales it sets (Definition 1).

* :func:`lambda_min`: the spectral gap ``lambda_min(L_free)`` for given activation patterns;
* :func:`lambda_max_bound`: a bound on the top of the spectrum, for a stable Euler step;
* :func:`equilibrium_gaps`: the gap at each example's two-sided equilibrium pattern;
* :func:`timescales`: the fast timescale ``1 / lambda_min`` and the slow one ``1 / ||grad R||``.

Every other module asks these functions; none computes a gap of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def lambda_min(sheaf, patterns, pinned: str = "both") -> np.ndarray:
    """Smallest eigenvalue of ``L_free`` per example: (B,) for (B, n_l) patterns, a float for 1-D ones.

    patterns: hidden-layer activation patterns as for :meth:`NeuralSheaf.coboundary`; pinned: 'both'
    (input and output) or 'input'. Inside one activation region the pinned heat flow contracts at
    this rate. One dense symmetric eigensolve per example: meant for analysis, not for the solvers.
    """
    return np.linalg.eigvalsh(sheaf.L_free(patterns, pinned))[..., 0]


def lambda_max_bound(sheaf) -> float:
    """An upper bound on ``lambda_max(L_free)``, valid for every activation pattern and pinning.

    From ``||delta c||^2 <= sum_l 2 (||W_l||^2 ||a_{l-1}||^2 + ||z_l||^2) + 2 (||z_l||^2 + ||a_l||^2)
    + 2 (||z_L||^2 + ||yhat||^2)``. Explicit Euler with a step below ``2 / bound`` is stable.
    """
    norms = [np.linalg.norm(W, 2) ** 2 for W in sheaf.weights[1:]]
    return float(max([4.0] + [2.0 + 2.0 * s for s in norms]))


def equilibrium_gaps(sheaf, X, Y, **equilibrium_kwargs) -> np.ndarray:
    """(B,) ``lambda_min(L_free)`` at each example's two-sided equilibrium activation pattern.

    X: (B, n_0), Y: (B, n_L); keywords go to :func:`sheaflab.equilibrium`.
    """
    from .solve import equilibrium
    return equilibrium(sheaf, X, Y, **equilibrium_kwargs).lambda_min()


@dataclass(frozen=True)
class Timescales:
    """The two timescales of Definition 1 at one set of weights.

    tau_fast: mean over the examples of ``1 / lambda_min(L_free)`` at the two-sided equilibrium
        pattern, in units of fast (cochain) time;
    tau_slow: ``1 / ||grad R||``, the inverse norm of the gradient of the mean residual, in units of
        slow (weight) time; ``inf`` where the gradient vanishes;
    gaps: (B,) the per-example spectral gaps behind ``tau_fast``.
    """

    tau_fast: float
    tau_slow: float
    gaps: np.ndarray


def timescales(sheaf, X, Y) -> Timescales:
    """Fast and slow timescales (Definition 1) of ``sheaf`` on the batch X (B, n_0), Y (B, n_L)."""
    from .local_rule import local_gradients
    from .sheaf import flatten
    from .solve import equilibrium
    eq = equilibrium(sheaf, X, Y)
    gaps = eq.lambda_min()
    gW, gb = local_gradients(sheaf, eq)
    g = float(np.linalg.norm(flatten(gW + gb)))
    return Timescales(float(np.mean(1.0 / gaps)), 1.0 / g if g > 0 else math.inf, gaps)
