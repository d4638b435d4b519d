"""Output heads: the output edge as a Bregman (Fenchel-Young) edge.

A head is a convex *log-partition* ``A`` on the output pre-activation ``z_L`` with gradient
``mean = grad A`` (the head's prediction) and convex conjugate ``A*``. The output edge joins ``z_L``
and the output stalk ``yhat`` with energy

    E_out(z_L, yhat) = A(z_L) - yhat . z_L + A*(yhat)   >= 0,

which is zero exactly when ``yhat = grad A(z_L)`` (Fenchel-Young). Its *discord* is
``grad A(z_L) - yhat``, the derivative of ``E_out`` in ``z_L``.

==============  =========================  =======================  =============================
head            ``A(z)``                   ``grad A(z)``            ``E_out``
==============  =========================  =======================  =============================
``identity``    ``1/2 ||z||^2``            ``z``                    ``1/2 ||z - yhat||^2``
``sigmoid``     ``sum_k softplus(z_k)``    ``sigmoid(z)``, entrywise  binary cross-entropy minus the
                                                                    entropy of ``yhat``
``softmax``     ``logsumexp(z)``           ``softmax(z)``           cross-entropy minus the entropy
                                                                    of ``yhat``
==============  =========================  =======================  =============================

So the identity head is the quadratic output edge of the rest of the package, and the other two
make the relaxed energy of an example at most its cross-entropy (minus the label's entropy, which is
zero for 0/1 or one-hot labels). Every hidden and affine edge is unchanged, so the local rule is too.
Each head also knows its loss (MSE for identity, mean cross-entropy otherwise), its accuracy and
which targets it accepts.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ._checks import choice

HEADS = ("identity", "sigmoid", "softmax")


class Head:
    """One output head; use :func:`get` for the shared instances. Arrays are batch-first (B, n_L)."""

    name = "head"
    classifies = False

    def log_partition(self, z: np.ndarray) -> np.ndarray:
        """(B,) ``A(z)``."""
        raise NotImplementedError

    def mean(self, z: np.ndarray) -> np.ndarray:
        """(B, n_L) ``grad A(z)``: the head's prediction (probabilities for the classifiers)."""
        raise NotImplementedError

    def conjugate(self, p: np.ndarray) -> np.ndarray:
        """(B,) ``A*(p)`` for targets the head accepts (``0 log 0 = 0``)."""
        raise NotImplementedError

    def hessian(self, z: np.ndarray) -> np.ndarray:
        """(B, n_L, n_L) ``hess A(z)``."""
        raise NotImplementedError

    def terms(self, z: np.ndarray) -> tuple:
        """``(A(z), grad A(z), hess A(z))``: (B,), (B, n_L), (B, n_L, n_L), for a Newton step; a head
        overrides it where the three share their work (the softmax: one exponential)."""
        return self.log_partition(z), self.mean(z), self.hessian(z)

    def energy(self, z: np.ndarray, yhat: np.ndarray) -> np.ndarray:
        """(B,) output-edge energy ``A(z) - yhat . z + A*(yhat)`` (never negative)."""
        e = self.log_partition(z) - np.einsum("ij,ij->i", yhat, z) + self.conjugate(yhat)
        return np.maximum(e, 0.0)      # rounding can leave -1e-16 where it is exactly zero

    def loss(self, z: np.ndarray, Y: np.ndarray) -> float:
        """The head's loss of the logits ``z`` (B, n_L) against targets ``Y``: mean cross-entropy."""
        return float(np.mean(self.log_partition(z) - np.einsum("ij,ij->i", Y, z)))

    def loss_gradient(self, z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """(B, n_L) derivative of each example's loss term in ``z`` (before the batch mean)."""
        return self.mean(z) - Y

    def accuracy(self, z: np.ndarray, Y: np.ndarray) -> float:
        """Fraction of correct predictions (NaN for a regression head)."""
        return float("nan")

    def check_target(self, Y: np.ndarray, name: str) -> np.ndarray:
        """Raise ``ValueError`` naming ``name`` unless ``Y`` (finite, (B, n_L)) suits this head."""
        return Y

    def __repr__(self) -> str:
        return f"<head {self.name!r}>"

    def __reduce__(self):            # unpickle (e.g. in a joblib worker) to the shared instance
        return get, (self.name,)


class Identity(Head):
    name = "identity"

    def log_partition(self, z):
        return 0.5 * np.einsum("ij,ij->i", z, z)

    def mean(self, z):
        return z

    def conjugate(self, p):
        return 0.5 * np.einsum("ij,ij->i", p, p)

    def hessian(self, z):
        return np.broadcast_to(np.eye(z.shape[1]), (z.shape[0], z.shape[1], z.shape[1]))

    def energy(self, z, yhat):
        d = z - yhat
        return 0.5 * np.einsum("ij,ij->i", d, d)

    def loss(self, z, Y):
        """Mean squared error over all entries (the package's MSE)."""
        return float(np.mean((z - Y) ** 2))

    def loss_gradient(self, z, Y):
        return z - Y


class Sigmoid(Head):
    """Independent sigmoids, one per output (binary or multi-label classification)."""

    name = "sigmoid"
    classifies = True

    def log_partition(self, z):
        return np.logaddexp(0.0, z).sum(axis=1)

    def mean(self, z):
        return special.expit(z)

    def conjugate(self, p):
        return (special.xlogy(p, p) + special.xlogy(1.0 - p, 1.0 - p)).sum(axis=1)

    def hessian(self, z):
        s = special.expit(z)
        return np.einsum("ij,jk->ijk", s * (1.0 - s), np.eye(z.shape[1]))

    def accuracy(self, z, Y):
        return float(np.mean((z > 0) == (Y > 0.5)))

    def check_target(self, Y, name):
        if np.any((Y < 0) | (Y > 1)):
            raise ValueError(f"{name} must hold labels 0/1 (or probabilities in [0, 1]) for a sigmoid "
                             f"head; got values in [{Y.min():.3g}, {Y.max():.3g}]")
        return Y


class Softmax(Head):
    """One softmax over the outputs (multi-class classification, one-hot or probability targets)."""

    name = "softmax"
    classifies = True

    def log_partition(self, z):
        m = z.max(axis=1)
        return m + np.log(np.exp(z - m[:, None]).sum(axis=1))

    def mean(self, z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def conjugate(self, p):
        return special.xlogy(p, p).sum(axis=1)

    def hessian(self, z):
        return self.terms(z)[2]

    def terms(self, z):
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        total = e.sum(axis=1, keepdims=True)
        p = e / total
        hess = p[:, :, None] * -p[:, None, :]           # diag(p) - p p^T
        diag = np.arange(z.shape[1])
        hess[:, diag, diag] += p
        return m[:, 0] + np.log(total[:, 0]), p, hess

    def accuracy(self, z, Y):
        return float(np.mean(np.argmax(z, axis=1) == np.argmax(Y, axis=1)))

    def check_target(self, Y, name):
        if np.any(Y < 0) or not np.all(np.abs(Y.sum(axis=1) - 1.0) <= 1e-9):   # (allclose is 10x slower)
            raise ValueError(f"{name} must hold one-hot rows (or probability rows that sum to 1) for a "
                             "softmax head")
        return Y


def output_target(head: Head, J: np.ndarray, t0: np.ndarray, Y: np.ndarray, tol: float = 1e-13,
                  max_iter: int = 60, start=None) -> tuple:
    """The identity-head target that gives a head's region minimiser: a small Newton problem.

    Inside one activation region the identity-head minimiser is affine in its target: its output
    pre-activation is ``z_L(y') = t0 + J y'`` with ``J = (K + I)^{-1}``, where
    ``1/2 (t - f_P)^T K (t - f_P)`` is the energy of every edge but the output one, minimised with
    ``z_L = t`` held fixed. With a head the output edge contributes ``A(t) - y . t`` instead of
    ``1/2 ||t - y'||^2``, so the region minimiser has the ``z_L = t*`` that minimises the strictly
    convex ``Phi(t) = 1/2 t^T K t - t^T J^{-1} t0 + A(t) - y . t``, and it is the identity-head
    minimiser for the target ``y' = J^{-1} (t* - t0)``.

    J: (B, n, n) symmetric positive definite; t0, Y: (B, n); start: (B, n) first iterate (default:
    the identity head's answer ``t0 + J y``). Damped Newton steps (backtracking on
    ``Phi``) until the gradient's norm is below ``tol`` times the size of the terms it sums. Returns ``(y', t*, converged)``:
    (B, n), (B, n) and (B,) bool.
    """
    Jinv = np.linalg.inv(J)
    lin = np.einsum("bij,bj->bi", Jinv, t0) + Y
    t = t0 + np.einsum("bij,bj->bi", J, Y) if start is None else start
    t, done = minimize_output(head, Jinv - np.eye(J.shape[1]), lin, t, tol, max_iter)
    y_eff = np.einsum("bij,bj->bi", Jinv, t - t0)
    return y_eff, t, done


def minimize_output(head: Head, K: np.ndarray, lin: np.ndarray, start: np.ndarray, tol: float = 1e-13,
                    max_iter: int = 60) -> tuple:
    """Per example, the minimiser ``t*`` of the strictly convex ``Phi(t) = 1/2 t^T K t - lin . t + A(t)``.

    K: (B, n, n) symmetric positive semi-definite, with ``K + hess A`` positive definite; lin,
    start: (B, n), ``start`` the first iterate.
    Damped Newton steps (Armijo backtracking on ``Phi``) until the gradient's norm is below ``tol``
    times the size of the terms it sums. Returns ``(t*, converged)``: (B, n) and (B,) bool.
    """
    t = np.array(start, dtype=np.float64)
    done = np.zeros(t.shape[0], dtype=bool)
    rows = np.arange(t.shape[0])                 # the examples still iterating, and their data:
    Kr, lr_, tr = K, lin, t
    A, mean, hess = head.terms(tr)               # the head's terms at tr (shared with the line search)
    for _ in range(max_iter):
        Kt = np.einsum("bij,bj->bi", Kr, tr)
        g = Kt - lr_ + mean
        # relative to the terms that cancel in g, so that rounding cannot keep it from converging
        scale = tol * (1.0 + np.sqrt(np.einsum("bi,bi->b", Kt, Kt)) + np.sqrt(np.einsum("bi,bi->b", lr_, lr_)))
        ok = np.einsum("bi,bi->b", g, g) <= scale * scale
        if ok.any():
            done[rows[ok]] = True
            keep = ~ok
            rows, Kr, lr_, tr, g, Kt, A, hess = (v[keep] for v in (rows, Kr, lr_, tr, g, Kt, A, hess))
            if rows.size == 0:
                break
        step = -np.linalg.solve(Kr + hess, g[..., None])[..., 0]
        f0 = np.einsum("bi,bi->b", tr, 0.5 * Kt - lr_) + A
        slope = np.einsum("bi,bi->b", g, step)
        slack = 1e-12 * (1.0 + np.abs(f0))      # near the minimum Phi's rounding exceeds its decrease
        alpha = np.ones(rows.size)
        for _ in range(30):                      # Armijo backtracking, per example
            trial = tr + alpha[:, None] * step
            A, mean, hess = head.terms(trial)
            phi = np.einsum("bi,bi->b", trial, 0.5 * np.einsum("bij,bj->bi", Kr, trial) - lr_) + A
            bad = phi > f0 + 1e-4 * alpha * slope + slack
            if not bad.any():
                break
            alpha[bad] *= 0.5
        tr = trial
        t[rows] = tr
    return t, done


_INSTANCES = {"identity": Identity(), "sigmoid": Sigmoid(), "softmax": Softmax()}


def get(head) -> Head:
    """The :class:`Head` called ``head`` (one of :data:`HEADS`), or ``head`` itself if it is one."""
    if isinstance(head, Head):
        return head
    return _INSTANCES[choice(head, "head", HEADS)]


def check_width(head: Head, n_out: int) -> None:
    """A softmax needs at least two outputs."""
    if head.name == "softmax" and n_out < 2:
        raise ValueError(f"head 'softmax' needs at least 2 outputs; the network has n_L = {n_out}")
