"""The four tasks (classification issue): the sheaf trainer against SGD, the larger version of the book's table.

Run alone:  python bench/bench_tasks.py        (about half an hour on 2 cores)
            python bench/bench_tasks.py quick  (3 seeds, shorter runs: a smoke test)

Prints, per task, network and protocol, the median over seeds of the final test loss ratio sheaf / SGD
and of the wall-clock ratio to a common training loss (with a 95% bootstrap interval of the median in
square brackets when a cell has 20 seeds or more, else the range over the seeds in parentheses), the
test-accuracy gap in points (median and range, min to max, over the seeds) and the epoch ratio. Tuned
cells choose each trainer's rate on tuning seeds disjoint from the reported ones, widening the grid
until the choice is interior; then the larger networks; then the bars against the paper authors'
library: the wall-clock time the sheaf trainer with Adam needs to reach their final training
cross-entropy on circle and blobs, next to their measured times. Runs are sequential (one process), so
each pair is timed side by side without contention from a second worker.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import sheaflab
from sheaflab import comparison
from sheaflab.datasets import TASK_SPECS, task_split

# the paper authors' PyTorch library (100 epochs x 1000 joint Euler steps, n_train 300), measured
# once on this machine kind with their code: external references, not computed here
AUTHORS = {"circle": (0.0262, 43.7), "blobs": (0.146, 56.5)}


def row(c):
    if TASK_SPECS[c.task].kind == "classification":
        med, lo, hi = c.range("accuracy_gap")
        acc = f"{med:.1f} ({lo:.0f} to {hi:.0f})"
    else:
        acc = "-"
    return (f"{c.task:11}{str(list(c.dims)):19}{c.protocol:7}{f'{c.lr_sheaf:g}/{c.lr_sgd:g}':>12}"
            f"{c.interval('loss_ratio'):>21}{acc:>22}{np.median(c.values('epoch_ratio')):>8.2f}"
            f"{c.interval('time_ratio', '{:.1f}'):>22}")


HEADER = (f"{'task':11}{'network':19}{'proto':7}{'lr sh/SGD':>12}{'test loss ratio':>21}"
          f"{'acc gap (points)':>22}{'epochs':>8}{'time ratio':>22}")


def authors_bar(task, seeds, max_epochs):
    """k of n seeds on which the sheaf trainer (+Adam, lr 0.01, the paper's network) reaches the
    authors' final training cross-entropy within max_epochs, and the median seconds over those k."""
    return comparison.reach(task, AUTHORS[task][0], seeds=seeds, max_epochs=max_epochs)


def main(quick=False):
    seeds = range(3) if quick else range(20)
    epochs = 100 if quick else 300
    t0 = time.perf_counter()
    print(f"Four tasks, {len(seeds)} seeds per cell, {epochs} epochs, Adam, full batch "
          "(median [95% bootstrap interval] or (range))\n")
    print(HEADER)
    for task, spec in TASK_SPECS.items():
        for dims in ((2, 4, spec.dims[-1]), spec.dims):
            seed_cell = comparison.compare(task, dims, seeds, "seed", epochs=epochs)
            print(row(seed_cell), flush=True)
            tuned = comparison.compare(task, dims, seeds, "tuned", epochs=epochs, reuse=seed_cell, edge="widen")
            print(row(tuned), flush=True)
            for t in tuned.tuning.values():
                print("    ", t)
    print("\nLarger networks (the source's protocol)\n")
    print(HEADER)
    for task in ("paraboloid", "circle"):
        for dims in ((2, 64, 64, 1), (2, 16, 16, 16, 1)):
            print(row(comparison.compare(task, dims, seeds, "seed", epochs=epochs)), flush=True)
    print("\nAgainst the authors' library: seconds for the sheaf trainer + Adam (lr 0.01) to reach their final "
          "training cross-entropy\n")
    for task, (target, theirs) in AUTHORS.items():
        r = authors_bar(task, seeds, 600 if quick else 2000)
        if r.k:
            print(f"{task:8} target {target}: {r}; median {r.seconds:.2f} s over those {r.k} "
                  f"against their {theirs} s: {theirs / r.seconds:.0f}x sooner")
        else:
            print(f"{task:8} target {target}: {r}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(quick="quick" in sys.argv[1:])
