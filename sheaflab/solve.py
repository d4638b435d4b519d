"""The fast phase: :func:`equilibrium` relaxes a batch of cochains, and :class:`Equilibrium` is its result.

Two methods reach a local minimum of the Dirichlet energy with the input pinned (and the output
pinned to a target when ``Y`` is given):

* ``method="direct"`` (:mod:`sheaflab.direct`): per-region solves along an active-set walk, which
  lands exactly on minima that sit on a kink ``z_j = 0``; each region is solved densely or, on wide
  deep nets, by preconditioned conjugate gradients on the reduced system (:mod:`sheaflab.reduced`,
  option ``solver``) to a tolerance tied to ``tol``;
* ``method="diffusion"`` (:mod:`sheaflab.dynamics`): the pinned heat flow integrated by explicit
  Euler, sliding along kinks, to a tolerance on the speed ``||dc/dt||``.

The two-sided energy is not convex: different starts (and the two methods) can reach different
local minima. Inside one activation region the minimiser is unique.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._checks import choice, instance, positive
from .direct import KINK, one_hidden_scalar, one_hidden_sigmoid, scalar_case, walk
from .dynamics import Trajectory, diffuse
from .one_hidden import one_hidden_head
from .sheaf import Cochain, Discords, NeuralSheaf


@dataclass
class Equilibrium:
    """Result of :func:`equilibrium` for a batch of ``B`` examples (modelled on scipy's OptimizeResult).

    cochain: the equilibrium :class:`Cochain`; ``z`` and ``a`` are shortcuts to its stalks.
    energy: (B,) Dirichlet energy at equilibrium.
    discord: per-edge discords (:class:`Discords`, named and typed edges in path order).
    converged: (B,) bool; ``success`` is True when every example converged.
    iterations: (B,) int: region solves ("direct") or Euler steps ("diffusion").
    patterns: hidden-layer activation patterns ``z_l > 0``, each (B, n_l) bool.
    kinks: hidden units on the kink ``z = 0`` exactly, each (B, n_l) bool.
    method: "direct" or "diffusion"; pinned: "both" (input and output) or "input".
    message: what happened, in words; trajectory: the heat flow's :class:`Trajectory` when recorded.
    sheaf: a copy of the network the batch was solved with. Functions that take a sheaf together
        with an Equilibrium (:func:`~sheaflab.local_gradients`, :meth:`lambda_min`) check that it has
        the same weights, so a stale equilibrium is never used with weights that moved since.
    """

    cochain: Cochain
    energy: np.ndarray
    discord: Discords
    converged: np.ndarray
    iterations: np.ndarray
    patterns: list
    kinks: list
    method: str
    pinned: str
    message: str
    trajectory: Trajectory | None = None
    sheaf: NeuralSheaf | None = None

    @property
    def z(self) -> list:
        return self.cochain.z

    @property
    def a(self) -> list:
        return self.cochain.a

    @property
    def success(self) -> bool:
        return bool(np.all(self.converged))

    def check_sheaf(self, sheaf, name: str = "sheaf") -> NeuralSheaf:
        """Return the network of this equilibrium; ``ValueError`` if ``sheaf`` (when given) has other
        weights than the ones it was solved with."""
        if sheaf is None:
            if self.sheaf is None:
                raise ValueError("this Equilibrium does not know its network (it was not made by "
                                 f"sheaflab.equilibrium); pass {name}")
            return self.sheaf
        instance(sheaf, name, NeuralSheaf, "a sheaflab.NeuralSheaf")
        if self.sheaf is not None and not self.sheaf.same_parameters(sheaf):
            raise ValueError(f"{name} has other weights than the ones this Equilibrium was solved with "
                             f"({self.sheaf}); the weights moved since, or it is another network. "
                             "Solve again: sheaflab.equilibrium(sheaf, X, Y)")
        return self.sheaf if self.sheaf is not None else sheaf

    def lambda_min(self, sheaf: NeuralSheaf | None = None) -> np.ndarray:
        """(B,) spectral gap of ``L_free`` at each example's equilibrium activation pattern.
        ``sheaf`` is optional (the equilibrium remembers its weights) and checked when given."""
        from .spectral import lambda_min
        return lambda_min(self.check_sheaf(sheaf), self.patterns, self.pinned)


#: the fast phases that reach the equilibrium from the forward pass (the trainer adds "global")
METHODS = ("direct", "diffusion")


def equilibrium(sheaf: NeuralSheaf, X, Y=None, method: str = "direct", tol: float | None = None,
                max_iter: int | None = None, init=None, step: float | None = None,
                record: bool = False, solver: str = "auto", guess=None) -> Equilibrium:
    """Relax a batch of cochains to equilibrium (the fast phase).

    Parameters
    ----------
    sheaf : NeuralSheaf
    X : (B, n_0) inputs, pinned at the input vertex.
    Y : (B, n_L) targets pinned at the output vertex, or ``None`` for input-only pinning, whose
        equilibrium is the forward pass (zero energy).
    method : "direct" (active-set walk of per-region linear solves) or "diffusion" (explicit Euler
        heat flow).
    tol : direct: relative tolerance of the one-sided derivative test at kinks (default 1e-12);
        with the iterative region solver it also sets how close each region solve gets to the
        region's minimum (energy within about ``100 tol`` relative, :func:`~sheaflab.reduced.cg_tol`),
        so a looser ``tol`` costs fewer iterations; diffusion: stop when the norm of an example's
        velocity ``||dc/dt||`` is below ``tol`` (default 1e-8).
    max_iter : region solves (direct, default 100) or Euler steps (diffusion, default 200000).
    init : starting cochain (a :class:`Cochain` for the same batch), ``"forward"`` (default: the
        forward pass) or ``"zeros"``. With several local minima the start decides which one is found.
    step : Euler step for diffusion; default ``1 / sheaf.lambda_max_bound()`` (always stable).
    record : diffusion only: keep the :class:`Trajectory` (energy, output stalk and pattern switches
        per step).
    solver : direct only, two or more hidden layers: how each activation region is solved.
        ``"dense"`` factorises every example's blocks; ``"cg"`` runs conjugate gradients on the
        reduced system, batched, with one Cholesky preconditioner shared by the batch
        (:mod:`sheaflab.reduced`); ``"auto"`` (default) picks by width
        (:func:`sheaflab.direct.choose_solver`).
    guess : direct only, one hidden layer, from the forward pass (no ``init``): a :class:`Cochain`
        for the same batch (say the last equilibrium of the same examples) that starts the
        closed-form solve of :mod:`sheaflab.one_hidden`. It changes the work, not the answer (the
        reached equilibrium); elsewhere it is ignored.

    Returns
    -------
    Equilibrium. Examples that did not converge are flagged in ``converged`` and reported with a
    ``RuntimeWarning``; non-finite values raise ``FloatingPointError``.
    """
    instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
    choice(method, "method", METHODS)
    choice(solver, "solver", ("auto", "dense", "cg"))
    X = sheaf.check_input(X)
    B = X.shape[0]
    Y = None if Y is None else sheaf.check_target(Y, B)
    pinned = "input" if Y is None else "both"
    tol = positive(tol if tol is not None else (1e-12 if method == "direct" else 1e-8), "tol")
    max_iter = positive(max_iter if max_iter is not None else (100 if method == "direct" else 200_000),
                        "max_iter", integer=True)
    if isinstance(init, Cochain):
        sheaf.check_cochain(init)
        if init.batch_size != B or not np.array_equal(init.x, X):
            raise ValueError("init must be a Cochain whose input stalk x equals X")
        start = init.copy()
    elif init is None or init == "forward":
        start = None  # built below only when a method needs it
    elif init == "zeros":
        start = sheaf.forward_cochain(X)
        start = Cochain(X.copy(), [np.zeros_like(v) for v in start.z], [np.zeros_like(v) for v in start.a],
                        np.zeros_like(start.yhat))
    else:
        raise ValueError(f"init must be a Cochain, 'forward' or 'zeros'; got {init!r}")
    if guess is not None:
        instance(guess, "guess", Cochain, "a sheaflab.Cochain")
        sheaf.check_cochain(guess)
        if guess.batch_size != B:
            raise ValueError(f"guess must be a Cochain for the batch of {B} examples; got {guess.batch_size}")
    if method == "diffusion" and Y is None and sheaf.head != "identity":
        raise ValueError(f"method='diffusion' with only the input pinned (Y=None) is not defined for "
                         f"the {sheaf.head!r} head; its forward pass is the equilibrium: call "
                         "equilibrium(sheaf, X) with method='direct'")
    if record and method != "diffusion":
        raise ValueError("record=True needs method='diffusion' (the direct solve has no time axis)")

    if start is None and not (method == "direct" and (Y is None or sheaf.depth == 2)):
        start = sheaf.forward_cochain(X)
    traj = discord = None
    try:
        if method == "direct":
            if Y is None:
                # delta_free is unitriangular: forward substitution, i.e. the forward pass, solves it
                c = sheaf.forward_cochain(X)
                converged, iters = np.ones(B, dtype=bool), np.ones(B, dtype=np.int64)
                kinks = [np.zeros(v.shape, dtype=bool) for v in c.a]
            elif start is None and scalar_case(sheaf):
                scalar = one_hidden_scalar if sheaf.head == "identity" else one_hidden_sigmoid
                z, a, kinks, converged, iters, d = scalar(sheaf, X, Y, max_iter)
                c = Cochain(X, z, a, Y.copy())
                discord = None if d is None else Discords(sheaf.edges, d)
            elif start is None:             # one hidden layer, several outputs or a softmax head
                z, a, kinks, converged, iters = one_hidden_head(sheaf, X, Y, max_iter, guess=guess)
                if not converged.all():     # finish the rest by the walk from the forward pass
                    rest = np.flatnonzero(~converged)
                    fwd = sheaf.forward_cochain(X[rest])
                    zr, ar, modes, ok, it = walk(sheaf, X[rest], Y[rest], fwd, tol, max_iter, solver)
                    for l in range(2):
                        z[l][rest] = zr[l]
                    a[0][rest], kinks[0][rest] = ar[0], modes[0] == KINK
                    converged[rest], iters[rest] = ok, iters[rest] + it
                c = Cochain(X, z, a, Y.copy())
            else:
                z, a, modes, converged, iters = walk(sheaf, X, Y, start, tol, max_iter, solver)
                c = Cochain(X, z, a, Y.copy())
                kinks = [m == KINK for m in modes]
        else:
            dt = positive(step, "step") if step is not None else 1.0 / sheaf.lambda_max_bound()
            c, converged, iters, traj = diffuse(sheaf, X, Y, start, tol, max_iter, dt, record)
            kinks = [v == 0 for v in c.z[:-1]]
    except np.linalg.LinAlgError as exc:   # a region's system singular to working precision
        raise FloatingPointError(
            f"equilibrium: a linear solve of the fast phase failed ({exc}): the stalks are too large "
            f"for double precision (max |X| = {np.abs(X).max():.3g}, max |W| = "
            f"{max(np.abs(W).max() for W in sheaf.weights):.3g}); rescale X (standardise the inputs) "
            "or the weights") from exc
    if discord is None:
        discord = sheaf.discord(c, check=False)
    energy = discord.energies().sum(axis=1)
    if not np.all(np.isfinite(energy)):  # any non-finite stalk makes its example's energy non-finite
        raise FloatingPointError("equilibrium produced non-finite stalks; check the scale of the "
                                 "weights, X and Y")
    n_bad = int(B - converged.sum())
    if n_bad:
        message = (f"{n_bad} of {B} examples did not converge within max_iter={max_iter} "
                   f"({method}); their stalks are the last iterate")
        warnings.warn(f"equilibrium: {message}", RuntimeWarning, stacklevel=2)
    else:
        message = f"all {B} examples converged ({method}, at most {int(iters.max())} iterations)"
    return Equilibrium(c, energy, discord, converged, iters, c.patterns(), kinks, method, pinned,
                       message, traj, sheaf.snapshot())


def residual(sheaf: NeuralSheaf, X, Y, **kwargs) -> float:
    """Mean energy ``R(theta)`` of the batch's reached equilibria (both ends pinned; keywords go to
    :func:`equilibrium`, ``method="global"`` excepted: that is :func:`sheaflab.global_equilibrium`)."""
    return float(equilibrium(sheaf, X, Y, **kwargs).energy.mean())
