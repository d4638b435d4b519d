"""The two timescales at one set of weights (Definition 1), and the spectral gaps behind the fast one.

Above the fast phase and the local rule: the gaps are :func:`sheaflab.spectral.lambda_min` at each
example's reached equilibrium, the slow timescale reads the local rule's gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .local_rule import local_gradients
from .sheaf import flatten
from .solve import equilibrium


def equilibrium_gaps(sheaf, X, Y, **equilibrium_kwargs) -> np.ndarray:
    """(B,) ``lambda_min(L_free)`` at each example's two-sided equilibrium activation pattern.

    X: (B, n_0), Y: (B, n_L); keywords go to :func:`sheaflab.equilibrium`.
    """
    return equilibrium(sheaf, X, Y, **equilibrium_kwargs).lambda_min()


@dataclass(frozen=True)
class Timescales:
    """The two timescales of Definition 1 at one set of weights.

    tau_fast: mean over the examples of ``1 / lambda_min(L_free)`` at the two-sided equilibrium
        pattern, in units of fast (cochain) time;
    tau_slow: ``||theta|| / ||grad R||``, the time for the weights to move by their own size at the
        speed of the gradient of the mean residual, in units of
        slow (weight) time; ``inf`` where the gradient vanishes;
    gaps: (B,) the per-example spectral gaps behind ``tau_fast``.
    """

    tau_fast: float
    tau_slow: float
    gaps: np.ndarray


def timescales(sheaf, X, Y) -> Timescales:
    """Fast and slow timescales (Definition 1) of ``sheaf`` on the batch X (B, n_0), Y (B, n_L)."""
    eq = equilibrium(sheaf, X, Y)
    gaps = eq.lambda_min()
    gW, gb = local_gradients(sheaf, eq)
    g = float(np.linalg.norm(flatten(gW + gb)))
    size = float(np.linalg.norm(flatten(sheaf.parameters)))
    return Timescales(float(np.mean(1.0 / gaps)), size / g if g > 0 else math.inf, gaps)
