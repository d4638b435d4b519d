"""Fast-phase benchmark (engine issue): direct solve vs one numpy forward+backward vs diffusion.

Every row times the three on the same sheaf and batch, side by side in one run, and prints ratios.
Run:  python bench/bench_engine.py
"""

from __future__ import annotations

import numpy as np

import sheaflab
from sheaflab import measure
from sheaflab.backprop import backprop_gradients
from sheaflab.datasets import paraboloid


def best_time(fn, min_total=0.3, repeats=5):
    """Best-of-``repeats`` seconds per call, each repeat looping for at least ``min_total`` s."""
    return measure.best_time(fn, repeats=repeats, min_total=min_total)


def row(dims, B, seed=0):
    X, Y = paraboloid(B, seed=seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed)
    t_bp = best_time(lambda: backprop_gradients(sheaf, X, Y))
    t_direct = best_time(lambda: sheaflab.equilibrium(sheaf, X, Y))
    t_diff = best_time(lambda: sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-8),
                       min_total=0.0, repeats=2)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    fl = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-8)
    agree = np.mean(np.abs(eq.energy - fl.energy) <= 1e-8)
    return dict(net=str(dims), B=B, bp=t_bp, direct=t_direct, diffusion=t_diff,
                solves=eq.iterations.mean(), solves_max=eq.iterations.max(), steps=fl.iterations.max(),
                kinks=sum(k.sum() for k in eq.kinks) / B, agree=agree)


def main():
    sheaflab.tune_allocator()
    rows = [row([2, 30, 1], 300), row([2, 128, 128, 1], 300), row([2, 30, 1], 10_000)]
    head = (f"{'network':>16} {'B':>6} {'fwd+bwd':>9} {'direct':>9} {'diffusion':>10} "
            f"{'direct/fb':>9} {'diff/direct':>11} {'solves':>10} {'Euler':>6} {'kinks/ex':>8} {'agree':>6}")
    print("Fast phase on the paraboloid (He init, seed 0); times are best-of-5 per call")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['net']:>16} {r['B']:>6} {r['bp'] * 1e3:>7.3f}ms {r['direct'] * 1e3:>7.3f}ms "
              f"{r['diffusion'] * 1e3:>8.1f}ms {r['direct'] / r['bp']:>9.2f} "
              f"{r['diffusion'] / r['direct']:>11.0f} {r['solves']:>5.2f}/{r['solves_max']:<4d} "
              f"{r['steps']:>6d} {r['kinks']:>8.2f} {r['agree']:>6.1%}")
    print("\ndirect/fb: direct solve over one numpy forward+backward pass (bar: <= 5 at [2, 30, 1], B=300)")
    print("diff/direct: explicit-Euler heat flow to ||dc/dt|| <= 1e-8 over the direct solve (bar: >= 100)")
    print("solves: region solves per example, mean/max; Euler: steps of the slowest example;")
    print("agree: share of examples where both methods reach the same energy to 1e-8")


if __name__ == "__main__":
    main()
