"""The parameter sheaf H_W at fixed equilibrium cochains: the slow step as one diffusion step.

Given the equilibrium cochains of a batch of ``B`` examples, build a cellular sheaf whose vertices are

* one *parameter stalk* ``theta_l = vec([W_l | b_l])`` (row-major, dimension ``n_l (n_{l-1} + 1)``) per
  affine edge ``affine_l``;
* for each example ``i`` and layer ``l`` a boundary vertex pinned at ``z_l^(i)``;
* with ``l2 > 0``, a zero anchor (the reluctance edges of :mod:`sheaflab.augment`),

and whose edges are ``(l, i)`` from ``theta_l`` to the pinned ``z_l^(i)``, with restriction map
``rho_{l,i} theta_l = W_l a_{l-1}^(i) + b_l`` (linear in ``theta_l``, read off the cochain), weight
``1/B``, so that its discord is the affine discord of example ``i``; plus, with ``l2``, the edges
``reluctance_W{l}``, ``reluctance_b{l}`` to the anchor with map ``sqrt(l2)`` on that part of the stalk.
No edge joins two layers: the Laplacian ``L_H = (1/B) sum_i rho^T rho (+ l2 I)`` is block diagonal.
One explicit Euler step of the pinned heat flow on H_W, ``theta <- theta - eta (L_H theta - (1/B)
sum_i rho^T z^(i))``, is exactly one step of the local rule (plus weight decay). H_W depends on the
cochains, so it changes at every epoch: the slow phase as a whole is not a diffusion on one fixed sheaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._checks import instance, positive
from .sheaf import NeuralSheaf, flatten


@dataclass
class ParameterSheaf:
    """H_W for one batch at fixed cochains.

    dims: the network's widths; stalk_dims: [n_l (n_{l-1} + 1)] per layer; offsets: (L + 1,) start of
    each stalk in the stacked parameter vector ``theta`` (``theta_1, ..., theta_L``);
    edges: list of ``(name, layer, example)`` per edge (example -1 for reluctance edges), in row-block
    order; edge_rows: (n_edges + 1,) start row of each edge's discord;
    coboundary: scipy.sparse CSR (m, N): the parameter part of the coboundary (rows: edges' discords);
    pinned: (m,) the pinned values the discords are measured against (``z_l^(i)``; 0 for the anchor),
    so ``discord = coboundary @ theta - pinned``; weights: (m,) edge weight per row (1/B data, 1 anchor);
    laplacian: scipy.sparse CSR (N, N) ``delta^T diag(weights) delta``; theta: (N,) the current
    parameters; l2: the reluctance weight; B: batch size.
    """

    dims: list
    stalk_dims: list
    offsets: np.ndarray
    edges: list
    edge_rows: np.ndarray
    coboundary: sp.csr_matrix
    pinned: np.ndarray
    weights: np.ndarray
    laplacian: sp.csr_matrix
    theta: np.ndarray
    l2: float
    B: int

    def _theta(self, theta):
        return self.theta if theta is None else np.asarray(theta, dtype=np.float64).reshape(-1)

    def discord(self, theta=None) -> np.ndarray:
        """(m,) discords ``delta theta - pinned``."""
        return self.coboundary @ self._theta(theta) - self.pinned

    def energy(self, theta=None) -> float:
        """``1/2 sum_e w_e ||d_e||^2``: the batch mean of the affine edges' energy (+ l2/2 ||theta||^2)."""
        d = self.discord(theta)
        return 0.5 * float(np.sum(self.weights * d * d))

    def gradient(self, theta=None) -> np.ndarray:
        """(N,) ``L_H theta - delta^T diag(w) pinned``: minus the heat flow's velocity."""
        t = self._theta(theta)
        return self.laplacian @ t - self.coboundary.T @ (self.weights * self.pinned)

    def unflatten(self, theta) -> tuple:
        """``(weights, biases)`` lists from a stacked vector (N,)."""
        t = self._theta(theta)
        Ws, bs = [], []
        for l in range(1, len(self.dims)):
            blk = t[self.offsets[l - 1]:self.offsets[l]].reshape(self.dims[l], self.dims[l - 1] + 1)
            Ws.append(blk[:, :-1].copy())
            bs.append(blk[:, -1].copy())
        return Ws, bs

    def step(self, eta: float, theta=None) -> tuple:
        """One explicit Euler step of the pinned heat flow on H_W with step ``eta``:
        ``(weights, biases)`` of ``theta - eta * gradient(theta)``."""
        eta = positive(eta, "eta")
        t = self._theta(theta)
        return self.unflatten(t - eta * self.gradient(t))


def stack_parameters(sheaf: NeuralSheaf) -> np.ndarray:
    """(N,) ``theta_1, ..., theta_L`` with ``theta_l = vec([W_l | b_l])`` row-major."""
    return flatten([np.hstack([W, b[:, None]]) for W, b in zip(sheaf.weights, sheaf.biases)])


def parameter_sheaf(sheaf: NeuralSheaf, eq, l2: float = 0.0) -> ParameterSheaf:
    """The parameter sheaf H_W of ``sheaf`` at the cochains of ``eq`` (an
    :class:`~sheaflab.Equilibrium` of ``sheaf``, or a :class:`~sheaflab.Cochain`), with reluctance
    edges of weight ``l2 >= 0``. See the module docstring; returns a :class:`ParameterSheaf`."""
    from .sheaf import Cochain
    from .solve import Equilibrium

    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    l2 = positive(l2, "l2", allow_zero=True)
    if isinstance(eq, Equilibrium):
        eq.check_sheaf(sheaf, "sheaf")
        c = eq.cochain
    elif isinstance(eq, Cochain):
        sheaf.check_cochain(eq)
        c = eq
    else:
        raise TypeError(f"eq must be a sheaflab.Equilibrium or Cochain, got {type(eq).__name__}")
    dims, L, B = sheaf.dims, sheaf.depth, c.batch_size
    stalk = [dims[l] * (dims[l - 1] + 1) for l in range(1, L + 1)]
    offsets = np.concatenate([[0], np.cumsum(stalk)])
    blocks, pinned, wts, edges, starts = [], [], [], [], [0]
    acts = c.activations()
    for l in range(1, L + 1):
        n = dims[l]
        ah = np.hstack([acts[l - 1], np.ones((B, 1))])            # (B, n_{l-1} + 1)
        for i in range(B):
            rho = sp.kron(sp.eye(n), sp.csr_matrix(ah[i:i + 1]))  # (n, stalk_l): [W b] [a; 1]
            row = sp.hstack([sp.csr_matrix((n, offsets[l - 1])), rho,
                             sp.csr_matrix((n, offsets[-1] - offsets[l]))])
            blocks.append(row)
            pinned.append(c.z[l - 1][i])
            wts.append(np.full(n, 1.0 / B))
            edges.append((f"affine_{l}[{i}]", l, i))
            starts.append(starts[-1] + n)
    if l2 > 0:
        r = np.sqrt(l2)
        for l in range(1, L + 1):
            k = dims[l - 1] + 1
            mask = np.tile(np.r_[np.ones(k - 1), 0.0], dims[l])
            for name, m in (("W", mask), ("b", 1.0 - mask)):
                idx = np.flatnonzero(m)
                sel = sp.csr_matrix((np.full(idx.size, r), (np.arange(idx.size), offsets[l - 1] + idx)),
                                    shape=(idx.size, offsets[-1]))
                blocks.append(sel)
                pinned.append(np.zeros(idx.size))
                wts.append(np.ones(idx.size))
                edges.append((f"reluctance_{name}{l}", l, -1))
                starts.append(starts[-1] + idx.size)
    D = sp.vstack(blocks).tocsr()
    w = np.concatenate(wts)
    Lap = (D.T @ sp.diags(w) @ D).tocsr()
    return ParameterSheaf(dims, stalk, offsets, edges, np.array(starts), D, np.concatenate(pinned), w,
                          Lap, stack_parameters(sheaf), l2, B)
