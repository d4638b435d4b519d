"""Fast-phase benchmark (engine and deep-net issues): the direct solve next to one numpy
forward+backward pass, and next to the heat flow on one hidden layer.

Every table times its rows side by side in one run and prints ratios. The direct solve is cold: it
starts from the forward pass at the default tolerance. For two or more hidden layers it is timed
with both region solvers: "dense" (per-example block factorisations) and "cg" (conjugate
gradients on the reduced Schur system with one shared Cholesky preconditioner); "auto" picks one
by width (sheaflab.direct.choose_solver).
Run:  python bench/bench_engine.py      (about two minutes on 2 cores)
"""

from __future__ import annotations

import numpy as np

import sheaflab
from sheaflab import measure
from sheaflab.backprop import backprop_gradients
from sheaflab.datasets import paraboloid
from sheaflab.direct import choose_solver, walk
from sheaflab.sheaf import Cochain


def best_times(fns, min_total=0.3, repeats=5):
    """Best-of-``repeats`` seconds per call of each function, timed round-robin."""
    return measure.best_times(fns, repeats=repeats, min_total=min_total)


def shallow_row(dims, B, seed=0):
    X, Y = paraboloid(B, seed=seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed)
    t_bp, t_direct = best_times([lambda: backprop_gradients(sheaf, X, Y),
                                 lambda: sheaflab.equilibrium(sheaf, X, Y)])
    (t_diff,) = best_times([lambda: sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-8)],
                           min_total=0.0, repeats=2)
    eq = sheaflab.equilibrium(sheaf, X, Y)
    fl = sheaflab.equilibrium(sheaf, X, Y, method="diffusion", tol=1e-8)
    agree = np.mean(np.abs(eq.energy - fl.energy) <= 1e-8)
    return dict(net=str(dims), B=B, bp=t_bp, direct=t_direct, diffusion=t_diff,
                solves=eq.iterations.mean(), solves_max=eq.iterations.max(), steps=fl.iterations.max(),
                kinks=sum(k.sum() for k in eq.kinks) / B, agree=agree)


def shallow_table():
    rows = [shallow_row([2, 30, 1], 300), shallow_row([2, 30, 1], 10_000)]
    head = (f"{'network':>16} {'B':>6} {'fwd+bwd':>9} {'direct':>9} {'diffusion':>10} "
            f"{'direct/fb':>9} {'diff/direct':>11} {'solves':>10} {'Euler':>6} {'kinks/ex':>8} {'agree':>6}")
    print("One hidden layer (paraboloid, He init, seed 0); times are best-of-5 per call")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['net']:>16} {r['B']:>6} {r['bp'] * 1e3:>7.3f}ms {r['direct'] * 1e3:>7.3f}ms "
              f"{r['diffusion'] * 1e3:>8.1f}ms {r['direct'] / r['bp']:>9.2f} "
              f"{r['diffusion'] / r['direct']:>11.0f} {r['solves']:>5.2f}/{r['solves_max']:<4d} "
              f"{r['steps']:>6d} {r['kinks']:>8.2f} {r['agree']:>6.1%}")
    print("direct/fb: bar <= 5 at [2, 30, 1], B=300; diff/direct: bar >= 100; agree: share of "
          "examples where both methods reach the same energy to 1e-8\n")


def deep_row(dims, B=300, seed=0, dense=True, tol=1e-12):
    """Cold direct solve of a deep net with each region solver, next to one fwd+bwd pass."""
    X, Y = paraboloid(B, seed=seed)
    sheaf = sheaflab.NeuralSheaf.random(dims, seed=seed)
    fns = [lambda: backprop_gradients(sheaf, X, Y),
           lambda: sheaflab.equilibrium(sheaf, X, Y, solver="cg", tol=tol)]
    if dense:
        fns.append(lambda: sheaflab.equilibrium(sheaf, X, Y, solver="dense", tol=tol))
    times = best_times(fns[:2], min_total=0.2, repeats=7)
    if dense:
        times += best_times(fns[2:], min_total=0.0, repeats=3 if dims[1] >= 128 else 5)
    start = sheaf.forward_cochain(X)
    stats = {}
    z, a, modes, conv, its = walk(sheaf, X, Y, start, tol, 100, "cg", stats)
    E_cg = sheaf.energy(Cochain(X, z, a, Y.copy()))
    row = dict(net=str(dims), B=B, bp=times[0], cg=times[1], dense=times[2] if dense else None,
               solves=its.mean(), cg_its=stats["cg_iterations"].mean(), auto=choose_solver(sheaf),
               converged=bool(conv.all()), E_cg=E_cg, modes=modes)
    if dense:
        zd, ad, md, _, _ = walk(sheaf, X, Y, start, tol, 100, "dense")
        E_d = sheaf.energy(Cochain(X, zd, ad, Y.copy()))
        same = np.all([np.all(p == q, axis=1) for p, q in zip(md, modes)], axis=0)
        row["same"] = same.mean()
        row["rel"] = float(np.max(np.abs(E_cg - E_d)[same] / E_d[same])) if same.any() else np.nan
    return row


def print_deep(rows, title):
    head = (f"{'network':>20} {'fwd+bwd':>9} {'cg':>9} {'dense':>9} {'cg/fb':>7} {'dense/fb':>9} "
            f"{'auto':>6} {'solves/ex':>9} {'CG its/ex':>9} {'same region':>11} {'max rel dE':>10}")
    print(title)
    print(head)
    print("-" * len(head))
    for r in rows:
        dense = f"{r['dense'] * 1e3:>7.1f}ms" if r["dense"] is not None else f"{'-':>9}"
        dfb = f"{r['dense'] / r['bp']:>9.0f}" if r["dense"] is not None else f"{'-':>9}"
        same = f"{r['same']:>11.1%}" if "same" in r else f"{'-':>11}"
        rel = f"{r['rel']:>10.1e}" if "rel" in r else f"{'-':>10}"
        print(f"{r['net']:>20} {r['bp'] * 1e3:>7.3f}ms {r['cg'] * 1e3:>7.1f}ms {dense} "
              f"{r['cg'] / r['bp']:>7.0f} {dfb} {r['auto']:>6} {r['solves']:>9.2f} {r['cg_its']:>9.1f} "
              f"{same} {rel}" + ("" if r["converged"] else "  NOT CONVERGED"))
    print()


def main():
    sheaflab.tune_allocator()
    shallow_table()
    rows = [deep_row(d) for d in ([2, 128, 128, 1], [2, 64, 64, 1], [2, 32, 32, 32, 1],
                                  [2, 16, 16, 16, 16, 1])]
    print_deep(rows, "Deep nets, B = 300, cold start (forward pass), default tol 1e-12; best of 3")
    big = rows[0]
    verdict = "met" if big["cg"] / big["bp"] <= 150 else "NOT met"
    print(f"[2, 128, 128, 1]: cg direct solve / fwd+bwd = {big['cg'] / big['bp']:.0f} "
          f"(bar <= 150: {verdict}); dense = {big['dense'] / big['bp']:.0f}\n")
    growth = [deep_row([2, n, n, 1], dense=n <= 128) for n in (16, 32, 64, 128, 256)]
    print_deep(growth, "Width growth at depth 3 ([2, n, n, 1], B = 300, cold); dense skipped at 256")
    knob = []
    for tol in (1e-12, 1e-9, 1e-6):
        r = deep_row([2, 128, 128, 1], dense=False, tol=tol)
        knob.append((tol, r))
    ref, ref_modes = knob[0][1]["E_cg"], knob[0][1]["modes"]
    print("The tolerance knob: [2, 128, 128, 1], B = 300, cold, cg solver")
    print(f"{'tol':>8} {'time':>9} {'/fb':>6} {'CG its/ex':>10} {'solves/ex':>10} {'same region':>12} "
          f"{'max rel dE vs 1e-12 there':>26}")
    for tol, r in knob:
        same = np.all([np.all(p == q, axis=1) for p, q in zip(r["modes"], ref_modes)], axis=0)
        rel = np.max(np.abs(r["E_cg"] - ref)[same] / ref[same])
        print(f"{tol:>8.0e} {r['cg'] * 1e3:>7.1f}ms {r['cg'] / r['bp']:>6.0f} {r['cg_its']:>10.1f} "
              f"{r['solves']:>10.2f} {same.mean():>12.1%} {rel:>26.1e}")
    print("\ncg/fb, dense/fb: the cold direct solve over one numpy forward+backward pass of the same batch;")
    print("solves/ex: region solves per example; CG its/ex: conjugate-gradient iterations per example,")
    print("summed over its region solves; same region: share of examples whose final activation")
    print("region (pattern and kinks) is the same with both solvers; max rel dE: largest relative")
    print("energy difference between the two among those (the issue's bar: 1e-9)")


if __name__ == "__main__":
    main()
