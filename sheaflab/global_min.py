"""The global minimum of the two-sided Dirichlet energy, by enumerating the faces of the arrangement.

Two objects are easy to confuse:

* the *reached equilibrium*: the limit of the pinned heat flow started at the forward pass, what
  :func:`sheaflab.equilibrium` returns and what the trainer uses; its energy is the relaxed energy
  ``R(theta; x, y)``;
* the *global minimum* ``R_glob(theta; x, y) = min_c E(c)`` over all free cochains (input and output
  pinned), computed here by :func:`global_equilibrium`. It can be lower than ``R``.

Method. Every hidden unit is ``ACTIVE`` (``z > 0``), ``INACTIVE`` (``z < 0``) or on its ``KINK``
(``z = 0``), so a network with ``N`` hidden units has ``3^N`` faces of its activation arrangement.
On the affine span of one face the energy is one strictly convex function (a quadratic, plus the
convex Bregman term of a sigmoid / softmax head), whose minimiser is one linear solve
(:func:`sheaflab.direct.region_minimizer`, :func:`sheaflab.direct.head_region_minimizer`). The global
minimiser lies in the relative interior of some face, where the energy equals that face's function,
so it is that face's minimiser. Every face minimiser is a cochain, and the true energy of a cochain
is at least the global minimum; so the smallest *true* energy over all face minimisers is the
global minimum, with no test of which face a minimiser lands in.

:func:`reached_vs_global` compares the two at fixed weights; the studies that train
(:func:`sheaflab.minima.gap_during_training`, :func:`sheaflab.minima.train_reached_vs_global`) sit in
the experiments layer, :mod:`sheaflab.minima`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .direct import ACTIVE, INACTIVE, KINK, head_region_minimizer, region_minimizer
from .sheaf import Cochain, NeuralSheaf
from .solve import Equilibrium

MAX_FACES = 2 ** 16
# rows (faces x examples x head targets) solved in one call: bounds the memory of one chunk
_CHUNK_ROWS = 1 << 17


def face_count(sheaf: NeuralSheaf) -> int:
    """``3^N``: faces of the activation arrangement of a network with ``N`` hidden units."""
    return 3 ** int(sum(sheaf.dims[1:-1]))


def _face_modes(first: int, count: int, N: int) -> np.ndarray:
    """(count, N) int8 modes of faces ``first .. first + count - 1``: base-3 digits mapped to
    0 -> ACTIVE, 1 -> INACTIVE, 2 -> KINK."""
    codes = np.arange(first, first + count, dtype=np.int64)
    digits = np.empty((count, N), dtype=np.int8)
    for j in range(N):
        digits[:, j] = codes % 3
        codes //= 3
    return np.array([ACTIVE, INACTIVE, KINK], dtype=np.int8)[digits]


def global_equilibrium(sheaf: NeuralSheaf, X, Y=None, max_faces: int = MAX_FACES,
                       _generic: bool = False) -> Equilibrium:
    """The global minimum of the two-sided energy for each example, by exhaustive face enumeration.

    Parameters
    ----------
    sheaf : NeuralSheaf with any head ("identity", "sigmoid", "softmax").
    X : (B, n_0) inputs, pinned.
    Y : (B, n_L) targets, pinned; ``None`` (input-only pinning) returns the forward pass, the unique
        zero-energy cochain (as :func:`sheaflab.equilibrium` does).
    max_faces : the largest number of faces ``3^N`` (``N`` hidden units) to enumerate; above it a
        ``ValueError`` names the count and the limit.

    Returns
    -------
    Equilibrium with ``method="global"``: ``cochain`` the minimiser (per example, the face minimiser
    of smallest true energy), ``energy`` (B,) ``R_glob``, ``discord`` at it, ``converged`` all True,
    ``iterations`` (B,) the number of faces enumerated, ``patterns`` ``z_l > 0`` and ``kinks``
    ``z_l == 0`` of the minimiser, and a snapshot of the network in ``sheaf``.

    Cost: ``3^N`` region solves, each vectorised over the batch (and over many faces at once). Nets
    with two or more hidden layers use :func:`~sheaflab.direct.region_minimizer` (identity head) and
    :func:`~sheaflab.direct.head_region_minimizer`; one hidden layer uses the same solve written out
    per face (:func:`_one_hidden_faces`: an ``n_L x n_L`` matrix per face, shared by the batch),
    ``O(3^N B (n_1 n_L + n_L^3))``. ``_generic=True`` forces the general path (for tests).
    """
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)):
        raise TypeError(f"max_faces must be an integer, got {type(max_faces).__name__}")
    max_faces = positive(int(max_faces), "max_faces", integer=True)
    X = sheaf.check_input(X)
    B = X.shape[0]
    Y = None if Y is None else sheaf.check_target(Y, B)
    hidden = sheaf.dims[1:-1]
    N = int(sum(hidden))
    F = 3 ** N
    if Y is None:   # input-only pinning: delta_free is square unitriangular, the forward pass solves it
        c = sheaf.forward_cochain(X)
        discord = sheaf.discord(c, check=False)
        energy = discord.energies().sum(axis=1)
        return Equilibrium(c, energy, discord, np.ones(B, dtype=bool), np.ones(B, dtype=np.int64),
                           c.patterns(), [np.zeros(v.shape, dtype=bool) for v in c.a], "global",
                           "input", f"forward pass of {B} examples (input-only pinning)", None,
                           sheaf.snapshot())
    if F > max_faces:
        raise ValueError(f"global_equilibrium: {sheaf.dims} has {N} hidden units, so 3^{N} = {F} faces "
                         f"per example, above the limit max_faces={max_faces}; use a smaller network "
                         "or raise max_faces")
    n_out = sheaf.dims[-1]
    generic = _generic or sheaf.depth != 2
    per_row = B * (1 if sheaf.head == "identity" or not generic else n_out + 1)
    chunk = max(1, min(F, _CHUNK_ROWS // per_row))
    best_E = np.full(B, np.inf)
    best_z = [np.zeros((B, n)) for n in sheaf.dims[1:]]
    best_a = [np.zeros((B, n)) for n in hidden]
    offsets = np.cumsum([0] + hidden)
    for first in range(0, F, chunk):
        count = min(chunk, F - first)
        faces = _face_modes(first, count, N)                        # (count, N)
        Xs, Ys = np.tile(X, (count, 1)), np.tile(Y, (count, 1))     # row f * B + i
        modes = ([np.repeat(faces[:, offsets[l]:offsets[l + 1]], B, axis=0) for l in range(len(hidden))]
                 if generic else None)
        if sheaf.depth == 2 and not generic:
            zs, acts = _one_hidden_faces(sheaf, X, Y, faces)
        elif sheaf.head == "identity":
            zs, acts = region_minimizer(sheaf, Xs, Ys, modes)
        else:
            zs, acts, _ = head_region_minimizer(sheaf, Xs, Ys, modes)
        c = Cochain(Xs, zs, acts, Ys)
        with np.errstate(over="ignore", invalid="ignore"):
            E = sheaf.discord(c, check=False).energies().sum(axis=1).reshape(count, B)
        E = np.where(np.isfinite(E), E, np.inf)
        k = E.argmin(axis=0)                                        # (B,) best face of the chunk
        Ek = E[k, np.arange(B)]
        better = Ek < best_E
        if better.any():
            rows = (k * B + np.arange(B))[better]
            best_E[better] = Ek[better]
            for l in range(len(zs)):
                best_z[l][better] = zs[l][rows]
            for l in range(len(acts)):
                best_a[l][better] = acts[l][rows]
    if not np.all(np.isfinite(best_E)):
        raise FloatingPointError("global_equilibrium produced non-finite energies; check the scale of "
                                 "the weights, X and Y")
    c = Cochain(X, best_z, best_a, Y.copy())
    discord = sheaf.discord(c, check=False)
    energy = discord.energies().sum(axis=1)
    kinks = [z == 0 for z in best_z[:-1]]
    return Equilibrium(c, energy, discord, np.ones(B, dtype=bool), np.full(B, F, dtype=np.int64),
                       c.patterns(), kinks, "global", "both",
                       f"global minimum of {B} examples over all 3^{N} = {F} faces", None,
                       sheaf.snapshot())


def _one_hidden_faces(sheaf: NeuralSheaf, X, Y, faces):
    """Face minimisers of a one-hidden-layer net for many faces at once (rows ``f * B + i``).

    With ``u = W_1 x + b_1`` pinned, eliminating ``z_1`` leaves per unit ``(u_j - a_j)^2 / 4`` (active,
    ``z = (u + a) / 2``), ``a_j^2 / 2`` (inactive, ``z = u``) or ``(u_j^2 + a_j^2) / 2`` (kink,
    ``z = 0``). With ``r = W_2 a + b_2 - z_2`` the discord of the second affine edge, stationarity in
    ``a`` gives ``a = c * u - 2 d * (W_2^T r)`` (``c = 1, d = 1`` active; ``c = 0, d = 1/2`` otherwise),
    so ``W_2 a + b_2 = f_m - K r`` with ``f_m = W_2 (c * u) + b_2`` and ``K = 2 W_2 diag(d) W_2^T``
    (one matrix per face), and ``z_2 = f_m - (K + I) r``. The output edge closes the system:
    ``r = grad A(z_2) - y``; for the identity head ``r = (K + 2 I)^{-1} (f_m - y)``, for a
    classification head the small Newton problem of :func:`sheaflab.heads.output_target` (its ``K``
    is ``(K + I)^{-1}`` here). faces: (F, n_1) modes. Returns ``([z_1, z_2], [a_1])``, (F B, n) each.
    """
    from . import heads
    W1, b1, W2, b2 = sheaf.weights[0], sheaf.biases[0], sheaf.weights[1], sheaf.biases[1]
    F, B, n = faces.shape[0], X.shape[0], W2.shape[0]
    u = X @ W1.T + b1                                            # (B, n_1)
    act = faces == ACTIVE
    c = act.astype(np.float64)                                   # (F, n_1)
    d = np.where(act, 1.0, 0.5)
    K = 2.0 * np.einsum("kj,fj,mj->fkm", W2, d, W2)              # (F, n, n)
    f = (c[:, None, :] * u[None]) @ W2.T + b2                    # (F, B, n)
    eye = np.eye(n)
    if sheaf.head == "identity":
        r = np.linalg.solve(K + 2.0 * eye, np.swapaxes(f - Y[None], 1, 2))   # (F, n, B)
        r = np.swapaxes(r, 1, 2)
        t = f - np.einsum("fkm,fbm->fbk", K + eye, r)
    else:
        P = np.linalg.inv(K + eye)                               # other edges: 1/2 (f - t)^T P (f - t)
        J = np.linalg.inv(P + eye)                               # identity-head response to a target
        t0 = np.einsum("fkm,fml,fbl->fbk", J, P, f)
        Jb = np.broadcast_to(J[:, None], (F, B, n, n)).reshape(F * B, n, n).copy()
        _, t, _ = heads.output_target(sheaf.output_head, Jb, t0.reshape(F * B, n), np.tile(Y, (F, 1)))
        t = t.reshape(F, B, n)
        r = np.einsum("fkm,fbm->fbk", P, f - t)
    a = c[:, None, :] * u[None] - 2.0 * d[:, None, :] * (r @ W2)     # (F, B, n_1)
    z1 = np.where(act[:, None, :], 0.5 * (u[None] + a),
                  np.where(faces[:, None, :] == INACTIVE, u[None], 0.0))
    rows = F * B
    return [z1.reshape(rows, -1), t.reshape(rows, n)], [a.reshape(rows, -1)]


# ------------------------------------------------------------------------------------ the study
@dataclass
class Gap:
    """How the reached equilibrium and the global minimum differ on one batch.

    B: number of examples; n_lower: examples with ``R > R_glob + 1e-9`` (a lower minimum elsewhere);
    share: ``n_lower / B``; rel_gap: (B,) ``(R - R_glob) / R`` per example (0 where ``R = 0``);
    reached, lowest: (B,) the energies ``R`` and ``R_glob``; min_violation: the smallest
    ``R - R_glob`` (never below about ``-1e-12``: the global minimum is never above the reached one).
    """

    B: int
    n_lower: int
    share: float
    rel_gap: np.ndarray
    reached: np.ndarray
    lowest: np.ndarray
    min_violation: float

    @property
    def median_gap(self) -> float:
        """Median relative gap over the examples with a lower minimum elsewhere (0 when none)."""
        g = self.rel_gap[self.rel_gap > 0]
        return float(np.median(g)) if g.size else 0.0

    @property
    def max_gap(self) -> float:
        """Largest relative gap over the batch."""
        return float(self.rel_gap.max())


def reached_vs_global(sheaf: NeuralSheaf, X, Y, tol: float = 1e-9) -> Gap:
    """Compare the reached equilibrium (:func:`sheaflab.equilibrium`, from the forward pass) with the
    global minimum (:func:`global_equilibrium`) on a batch X (B, n_0), Y (B, n_L). An example counts
    as having a lower minimum elsewhere when ``R > R_glob + tol``."""
    from .solve import equilibrium
    R = equilibrium(sheaf, X, Y).energy
    G = global_equilibrium(sheaf, X, Y).energy
    diff = R - G
    lower = diff > tol
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(lower & (R > 0), diff / R, 0.0)
    return Gap(int(len(R)), int(lower.sum()), float(lower.mean()), rel, R, G, float(diff.min()))
