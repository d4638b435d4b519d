"""Time to a good model: wall-clock seconds for each trainer to reach a training loss both reach.

Run alone (nothing else on the machine):
    python bench/bench_time_to_loss.py          five report seeds, 300 epochs
    python bench/bench_time_to_loss.py quick    three seeds, 100 epochs (a smoke test)

For each cell (the four tasks at the paper's networks, the paraboloid on [2,64,64,1] and on a net with
four hidden layers) both trainers use Adam at their own learning rate, chosen by
``comparison.compare(..., protocol="tuned")`` on tuning seeds disjoint from the reported ones, from a
grid widened until both choices are interior. Each pair starts from one initialisation and is timed in
one process, side by side. The table gives, per cell, the median over seeds of the ratio sheaf / SGD
of the seconds to the common training loss (1.05 times the larger final training loss of the pair),
with the range over the seeds (min to max; not an interval), the median final test-loss ratio and, on
classification, the accuracy gap in points. Then, for each cell, where one sheaf epoch spends its time
(fast phase, slow phase, evaluation, the rest), from cProfile on one seed.

This is the code the book's four-task page reads its time ratios from (``sheaflab.comparison``).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

import numpy as np

import sheaflab
from sheaflab import comparison
from sheaflab.datasets import TASK_SPECS, task_split

CELLS = [(task, spec.dims) for task, spec in TASK_SPECS.items()] + [
    ("paraboloid", (2, 64, 64, 1)), ("paraboloid", (2, 16, 16, 16, 16, 1))]

# where a sheaf epoch's time goes: the functions whose cumulative time is each part
PARTS = {"fast phase": ("equilibrium", "global_equilibrium"), "local sums": ("local_sums",),
         "optimizer": ("step",), "evaluation": ("metrics",)}


def profile_epoch(task, dims, lr, epochs=20):
    """Seconds per sheaf epoch split into PARTS (cumulative cProfile times) and the rest."""
    spec = TASK_SPECS[task]
    X, Y, Xte, Yte = task_split(task, seed=0)
    tr = sheaflab.SheafTrainer(sheaflab.NeuralSheaf.random(list(dims), seed=0, head=spec.head), lr=lr,
                               optimizer="adam", progress=False)
    prof = cProfile.Profile()
    prof.enable()
    tr.fit(X, Y, epochs=epochs, X_val=Xte, Y_val=Yte)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = max(v[3] for k, v in stats.items() if k[2] == "fit")
    parts = {name: sum(v[3] for k, v in stats.items() if k[2] in funcs and "sheaflab" in k[0])
             for name, funcs in PARTS.items()}
    parts["rest"] = total - sum(parts.values())
    return {k: v / epochs for k, v in parts.items()}, total / epochs


def main(quick=False):
    seeds = range(3) if quick else range(5)
    epochs = 100 if quick else 300
    t0 = time.perf_counter()
    print(f"Time to a common training loss, sheaf / SGD: Adam, full batch, {epochs} epochs, each trainer "
          f"at its own tuned rate; median (range over {len(seeds)} seeds)\n")
    print(f"{'task':11}{'network':22}{'lr sheaf/SGD':>14}{'time ratio':>24}{'epoch ratio':>13}"
          f"{'test loss ratio':>24}{'acc gap (points)':>22}")
    cells = []
    for task, dims in CELLS:
        c = comparison.compare(task, dims, seeds, "tuned", epochs=epochs, tune_epochs=min(epochs, 200),
                               edge="widen")
        cells.append(c)
        acc = "-"
        if TASK_SPECS[task].kind == "classification":
            med, lo, hi = c.range("accuracy_gap")
            acc = f"{med:.1f} ({lo:.0f} to {hi:.0f})"
        print(f"{task:11}{str(list(dims)):22}{f'{c.lr_sheaf:g}/{c.lr_sgd:g}':>14}"
              f"{c.interval('time_ratio', '{:.1f}'):>24}{np.median(c.values('epoch_ratio')):>13.2f}"
              f"{c.interval('loss_ratio'):>24}{acc:>22}", flush=True)
    print("\nWhere a sheaf epoch goes (cProfile, seed 0, 20 epochs; profiling adds overhead to every part)\n")
    print(f"{'task':11}{'network':22}{'ms/epoch':>10}" + "".join(f"{p:>13}" for p in list(PARTS) + ["rest"]))
    for c in cells:
        parts, per_epoch = profile_epoch(c.task, c.dims, c.lr_sheaf)
        print(f"{c.task:11}{str(list(c.dims)):22}{1e3 * per_epoch:10.2f}"
              + "".join(f"{100 * v / per_epoch:12.0f}%" for v in parts.values()), flush=True)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(quick=len(sys.argv) > 1 and sys.argv[1] == "quick")
