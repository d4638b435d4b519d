"""Locality of the fast phase, measured: when does each edge first see the target?

Start the pinned heat flow at the forward pass with the output pinned to ``y``. Only the output edge
disagrees. One explicit Euler step (:func:`sheaflab.dynamics.euler_step` with the velocity of
:func:`sheaflab.dynamics.flow_velocity`) moves a vertex only by the discords of its own edges, so a
vertex whose edges all agree does not move, and an edge whose two endpoints have not moved keeps its
discord exactly (in floating point too: its discord is computed by the same operations as the forward
pass). By induction the edge at distance ``k`` (in edges) from the output edge has discord exactly 0
after Euler steps ``0 .. k - 1``; generically (some active unit per hidden layer, no cancellation) it
is nonzero from step ``k`` on. :func:`arrival_steps` records it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .dynamics import euler_step, flow_velocity
from .sheaf import NeuralSheaf


@dataclass
class Arrival:
    """What :func:`arrival_steps` recorded for one example.

    edges: edge names in path order (``affine_1, relu_1, ..., affine_L, output``);
    distance: (n_edges,) int, edges between each edge and the output edge (output: 0);
    norms: (steps + 1, n_edges) discord norm of each edge after Euler step ``s`` (row 0: the start);
    arrival: (n_edges,) int, the first step ``s`` with ``norms[s, e] != 0`` exactly (-1: never);
    dt: the Euler step used.
    """

    edges: list
    distance: np.ndarray
    norms: np.ndarray
    arrival: np.ndarray
    dt: float


def arrival_steps(sheaf: NeuralSheaf, x, y, steps: int = 20, dt: float | None = None) -> Arrival:
    """Run ``steps`` explicit Euler steps of the pinned heat flow for one example from the forward
    pass (output pinned to ``y``) and record every edge's discord norm. x: (n_0,) or (1, n_0);
    y: (n_L,) or (1, n_L); dt: default ``1 / sheaf.lambda_max_bound()`` (the default of
    ``equilibrium(method="diffusion")``). Returns an :class:`Arrival`."""
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    x = sheaf.check_input(np.atleast_2d(np.asarray(x, dtype=np.float64)), "x")
    if x.shape[0] != 1:
        raise ValueError(f"x must be one example, shape (n_0,) or (1, n_0); got {x.shape}")
    y = sheaf.check_target(np.atleast_2d(np.asarray(y, dtype=np.float64)), 1, "y")
    steps = positive(steps, "steps", integer=True)
    dt = positive(dt, "dt") if dt is not None else 1.0 / sheaf.lambda_max_bound()
    c = sheaf.forward_cochain(x, y)
    rows = []
    for s in range(steps + 1):
        v, d = flow_velocity(sheaf, c)
        rows.append(d.norms()[0])
        if s < steps:
            euler_step(c, v, dt)
    norms = np.array(rows)
    nz = norms != 0
    arrival = np.where(nz.any(axis=0), nz.argmax(axis=0), -1)
    names = [e.name for e in sheaf.edges]
    distance = np.arange(len(names))[::-1].copy()
    return Arrival(names, distance, norms, arrival, dt)
