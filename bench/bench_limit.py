"""The limit on paper: what one full-batch epoch must cost at least, against what it costs here.

Run alone (nothing else on the machine):  python bench/bench_limit.py

The floor counts the multiply-adds an epoch cannot avoid and prices them at this machine's measured
GEMM throughput, for matrices of the epoch's own shapes (``B x n_{l-1}`` times ``n_{l-1} x n_l``):

* SGD: the forward pass (one product per layer), the backward pass (two: the error to the layer
  below and the weight gradient), so ``3 F`` with ``F = 2 B sum_l n_{l-1} n_l`` flops;
* the sheaf trainer: its forward pass (``F``), the local rule's outer products (``F``), and the fast
  phase's irreducible work: at least one region solve per example, which touches every restriction
  map at least twice (one application of the coboundary and of its transpose: ``2 F``), so ``4 F``
  in all. The walk's further region solves, a dense solve's factorisations and every Python-level
  step are overheads above this floor, and the table says how much.

For each cell the table prints the two floors, the measured epoch of each trainer (median of
ten epochs of one fit after two warm-up epochs, both trainers timed side by side in this process), and how
many times its floor each measured epoch is.
"""

from __future__ import annotations

import time

import numpy as np

import sheaflab
from sheaflab.datasets import TASK_SPECS, task_split

CELLS = [(task, spec.dims) for task, spec in TASK_SPECS.items()] + [
    ("paraboloid", (2, 64, 64, 1)), ("paraboloid", (2, 128, 128, 1)),
    ("paraboloid", (2, 16, 16, 16, 1)), ("paraboloid", (2, 16, 16, 16, 16, 1))]


def gemm_seconds(B, dims, repeats=200):
    """Measured seconds of one pass of products ``(B, n_{l-1}) @ (n_{l-1}, n_l)`` over the layers
    (best of ``repeats``): the price of ``F`` flops at this machine's throughput for these shapes."""
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((B, a)), rng.standard_normal((a, b))) for a, b in zip(dims[:-1], dims[1:])]
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for A, W in mats:
            A @ W
        best = min(best, time.perf_counter() - t)
    return best


def epoch_seconds(trainer, X, Y, epochs=12):
    """Median seconds of one epoch of one fit (the History's wall clock), the first two left out
    (the cold start of the warm starts and the first allocations)."""
    h = trainer.fit(X, Y, epochs=epochs)
    return float(np.median(np.diff(h.wall_time)[1:]))


def main():
    print(f"{'task':11}{'network':22}{'B':>5}{'F [us]':>9}{'SGD floor':>11}{'sheaf floor':>13}"
          f"{'SGD epoch':>11}{'sheaf epoch':>13}{'SGD/floor':>11}{'sheaf/floor':>13}{'sheaf/SGD':>11}")
    for task, dims in CELLS:
        spec = TASK_SPECS[task]
        X, Y, _, _ = task_split(task, seed=0)
        F = gemm_seconds(X.shape[0], dims)
        net = sheaflab.NeuralSheaf.random(list(dims), seed=0, head=spec.head)
        sgd = epoch_seconds(sheaflab.SGDTrainer(net, lr=0.01, progress=False), X, Y)
        sheaf = epoch_seconds(sheaflab.SheafTrainer(net, lr=0.01, progress=False), X, Y)
        sgd_floor, sheaf_floor = 3 * F, 4 * F
        print(f"{task:11}{str(list(dims)):22}{X.shape[0]:5d}{1e6 * F:9.1f}{1e6 * sgd_floor:9.0f}us"
              f"{1e6 * sheaf_floor:11.0f}us{1e3 * sgd:9.2f}ms{1e3 * sheaf:11.2f}ms{sgd / sgd_floor:11.0f}"
              f"{sheaf / sheaf_floor:13.0f}{sheaf / sgd:11.1f}", flush=True)


if __name__ == "__main__":
    main()
