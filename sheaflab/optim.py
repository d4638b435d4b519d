"""Gradient optimizers shared by the sheaf trainer and the SGD baseline (so both compare like for like).

Each optimizer updates a list of float64 arrays in place from a list of gradients of the same shapes.
:meth:`Optimizer.get_state` / :meth:`Optimizer.set_state` and :func:`optimizer_from_state` copy
an optimizer's whole state out and back (the trainers' rollback of an interrupted epoch and their
checkpoints, :mod:`sheaflab.checkpoint`, use them).
"""

from __future__ import annotations

import numpy as np

from ._checks import choice, positive

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer:
    """Plain gradient descent ``p -= lr * g``."""

    name = "sgd"
    hyper = ("lr",)          # constructor arguments, plain floats
    slots = ()               # per-parameter state: attributes holding None or a list of arrays

    def __init__(self, lr: float):
        self.lr = positive(lr, "lr")
        self.t = 0

    def get_state(self) -> tuple:
        """``(scalars, arrays)``: a JSON-able dict (name, hyperparameters, step count ``t``) and
        ``{slot: None or list of array copies}``. Restoring it with :meth:`set_state` (or
        :func:`optimizer_from_state`) continues bit for bit."""
        scalars = {"name": self.name, "t": int(self.t), **{k: float(getattr(self, k)) for k in self.hyper}}
        arrays = {k: None if getattr(self, k) is None else [a.copy() for a in getattr(self, k)]
                  for k in self.slots}
        return scalars, arrays

    def set_state(self, scalars: dict, arrays: dict) -> None:
        """Restore a state from :meth:`get_state` (the arrays are copied)."""
        if scalars.get("name") != self.name:
            raise ValueError(f"optimizer state is of {scalars.get('name')!r}, not {self.name!r}")
        for k in self.hyper:
            setattr(self, k, float(scalars[k]))
        self.t = int(scalars["t"])
        for k in self.slots:
            v = arrays.get(k)
            setattr(self, k, None if v is None else [np.array(a, dtype=np.float64) for a in v])

    def step(self, params: list, grads: list) -> None:
        self.t += 1
        for p, g in zip(params, grads):
            p -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v = mu v + g``, ``p -= lr v``."""

    name = "momentum"
    hyper = ("lr", "mu")
    slots = ("v",)

    def __init__(self, lr: float, mu: float = 0.9):
        super().__init__(lr)
        self.mu = positive(mu, "mu")
        self.v = None

    def step(self, params, grads):
        self.t += 1
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.v):
            v *= self.mu
            v += g
            p -= self.lr * v


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction."""

    name = "adam"
    hyper = ("lr", "beta1", "beta2", "eps")
    slots = ("m", "s")

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = self.s = None

    def step(self, params, grads):
        self.t += 1
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.s = [np.zeros_like(p) for p in params]
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for p, g, m, s in zip(params, grads, self.m, self.s):
            m *= b1
            m += (1.0 - b1) * g
            s *= b2
            s += (1.0 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(s / c2) + self.eps)


def make_optimizer(name: str, lr: float) -> Optimizer:
    """'sgd' | 'momentum' | 'adam' with learning rate ``lr``."""
    choice(name, "optimizer", OPTIMIZERS)
    return {"sgd": Optimizer, "momentum": Momentum, "adam": Adam}[name](lr)


def optimizer_from_state(scalars: dict, arrays: dict) -> Optimizer:
    """A new optimizer in the state :meth:`Optimizer.get_state` returned."""
    name = choice(scalars.get("name"), "optimizer", OPTIMIZERS)
    cls = {"sgd": Optimizer, "momentum": Momentum, "adam": Adam}[name]
    opt = cls(**{k: float(scalars[k]) for k in cls.hyper})
    opt.set_state(scalars, arrays)
    return opt
