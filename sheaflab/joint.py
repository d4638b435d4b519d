"""The joint flow: cochains and weights integrated together, the weights ``eps`` times slower.

Its adiabatic limit (``eps -> 0``) is the sheaf trainer with plain gradient descent (Proposition 2).
It sits above the local rule, which moves its weights, and the heat flow of :mod:`sheaflab.dynamics`,
which moves its cochains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import instance, positive
from .dynamics import euler_step, flow_velocity
from .local_rule import local_sums
from .sheaf import NeuralSheaf, flatten


@dataclass
class JointHistory:
    """What :meth:`JointFlow.run` recorded, one row per recorded step.

    step: (k,) step numbers, counted from the flow's start (they continue across ``run`` calls);
    theta_time: (k,) slow time ``eta_theta * step``; energy: (k, B) per-example energy of the current
    (not relaxed) cochain; train_mse: (k,) forward-pass MSE; weight_change: (k,) ``||theta - theta_0||``
    with ``theta_0`` the weights the flow started from.
    """

    step: np.ndarray
    theta_time: np.ndarray
    energy: np.ndarray
    train_mse: np.ndarray
    weight_change: np.ndarray


class JointFlow:
    """The joint flow of cochains and weights, integrated together by explicit Euler.

    Each step moves every example's cochain by ``eta_c`` times its heat-flow velocity and the weights
    by ``eta_theta = eps * eta_c`` times minus the local rule at the current cochains. As ``eps -> 0``
    the cochains stay relaxed while the weights move, and the flow approaches Algorithm 4 with plain
    gradient descent of step ``eta_theta`` (Proposition 2).

    sheaf : initial weights (copied; the flow's are ``.sheaf``, the initial ones ``.theta0``).
    eps : timescale ratio ``eta_theta / eta_c``. eta_c : cochain step (default ``0.9 / lambda_max_bound``).

    The state persists across :meth:`run` calls: the cochains (for the same batch), the weights and
    the step counter ``.steps``, so several short runs equal one long run.
    """

    def __init__(self, sheaf: NeuralSheaf, eps: float = 0.01, eta_c: float | None = None):
        instance(sheaf, "sheaf", NeuralSheaf, "a sheaflab.NeuralSheaf")
        self.sheaf = sheaf.copy()
        self.theta0 = flatten(sheaf.parameters)
        self.eps = positive(eps, "eps")
        self.eta_c = positive(eta_c, "eta_c") if eta_c is not None else 0.9 / sheaf.lambda_max_bound()
        self.cochain = None
        self.steps = 0

    @property
    def eta_theta(self) -> float:
        return self.eps * self.eta_c

    def run(self, X, Y, steps: int, record_every: int = 1) -> JointHistory:
        """Integrate ``steps`` more Euler steps on the full batch X (B, n_0), Y (B, n_L).

        The cochains start at the forward pass with the output pinned to Y, and persist while the
        batch stays the same (a new batch restarts them). Records the state before the first step of
        the flow (step 0), after every step whose number is a multiple of ``record_every``, and after
        the last step of this call.
        """
        X = self.sheaf.check_input(X)
        Y = self.sheaf.check_target(Y, X.shape[0])
        steps = positive(steps, "steps", integer=True)
        record_every = positive(record_every, "record_every", integer=True)
        if self.cochain is None or not np.array_equal(self.cochain.x, X):
            self.cochain = self.sheaf.forward_cochain(X, Y)
        rec = {k: [] for k in ("step", "energy", "mse", "change")}
        params = self.sheaf.parameters
        B = X.shape[0]
        first, last = self.steps, self.steps + steps
        while True:
            v, d = flow_velocity(self.sheaf, self.cochain)
            k = self.steps
            # step 0 once; later calls start where the previous one recorded its last step
            if k == 0 or (k > first and (k % record_every == 0 or k == last)):
                rec["step"].append(k)
                rec["energy"].append(d.energies().sum(axis=1))
                rec["mse"].append(self.sheaf.mse(X, Y, check=False))
                rec["change"].append(float(np.linalg.norm(flatten(params) - self.theta0)))
                if not np.all(np.isfinite(rec["energy"][-1])):
                    raise FloatingPointError(f"joint flow diverged at step {k}: lower eta_c "
                                             f"(={self.eta_c:g}) or eps (={self.eps:g})")
            if k == last:
                break
            sum_W, sum_b = local_sums(self.sheaf, self.cochain, d)   # the local rule, unchecked here
            euler_step(self.cochain, v, self.eta_c)
            for p, g in zip(params, sum_W + sum_b):
                p -= self.eta_theta * (g / B)
            self.steps += 1
        steps_arr = np.array(rec["step"])
        return JointHistory(steps_arr, steps_arr * self.eta_theta, np.array(rec["energy"]),
                            np.array(rec["mse"]), np.array(rec["change"]))
