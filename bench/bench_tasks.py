"""The four tasks (classification issue): the sheaf trainer against SGD, the larger version of the book's table.

Run alone:  python bench/bench_tasks.py        (about ten minutes on 2 cores)
            python bench/bench_tasks.py quick  (3 seeds, shorter runs: a smoke test)

Prints, per task, network and protocol, the median over seeds (with a 95% bootstrap interval) of the
final test loss ratio sheaf / SGD, the test-accuracy gap in points, the epoch ratio and the wall-clock
ratio to a common training loss; then the larger networks; then the bars against the paper authors'
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
    acc = c.interval("accuracy_gap", "{:.1f}") if TASK_SPECS[c.task].kind == "classification" else "-"
    return (f"{c.task:11}{str(list(c.dims)):19}{c.protocol:7}{f'{c.lr_sheaf:g}/{c.lr_sgd:g}':>12}"
            f"{c.interval('loss_ratio'):>21}{acc:>22}{np.median(c.values('epoch_ratio')):>8.2f}"
            f"{c.interval('time_ratio', '{:.1f}'):>22}")


HEADER = (f"{'task':11}{'network':19}{'proto':7}{'lr sh/SGD':>12}{'test loss ratio':>21}"
          f"{'acc gap (points)':>22}{'epochs':>8}{'time ratio':>22}")


def authors_bar(task, seeds, max_epochs):
    """Seconds for the sheaf trainer (+Adam, lr 0.01, the paper's network) to reach the authors'
    final training cross-entropy, per seed; None where it does not within max_epochs."""
    target, _ = AUTHORS[task]
    spec = TASK_SPECS[task]
    out = []
    for seed in seeds:
        Xtr, Ytr, _, _ = task_split(task, seed=seed)
        net = sheaflab.NeuralSheaf.random(list(spec.dims), seed=seed, head=spec.head)
        tr = sheaflab.SheafTrainer(net, lr=0.01, optimizer="adam", progress=False)
        while tr.history.epochs < max_epochs and tr.history.epochs_to(target, "train_loss") is None:
            tr.fit(Xtr, Ytr, epochs=50)
        out.append(tr.history.time_to(target, "train_loss"))
    return out


def main(quick=False):
    seeds = range(3) if quick else range(10)
    epochs = 100 if quick else 300
    t0 = time.perf_counter()
    print(f"Four tasks, {len(seeds)} seeds per cell, {epochs} epochs, Adam, full batch "
          "(median [95% bootstrap interval])\n")
    print(HEADER)
    for task, spec in TASK_SPECS.items():
        for dims in ((2, 4, spec.dims[-1]), spec.dims):
            seed_cell = comparison.compare(task, dims, seeds, "seed", epochs=epochs)
            print(row(seed_cell), flush=True)
            print(row(comparison.compare(task, dims, seeds, "tuned", epochs=epochs, reuse=seed_cell)), flush=True)
    print("\nLarger networks (the source's protocol)\n")
    print(HEADER)
    for task in ("paraboloid", "circle"):
        for dims in ((2, 64, 64, 1), (2, 16, 16, 16, 1)):
            print(row(comparison.compare(task, dims, seeds, "seed", epochs=epochs)), flush=True)
    print("\nAgainst the authors' library: seconds for the sheaf trainer + Adam (lr 0.01) to reach their final "
          "training cross-entropy\n")
    for task, (target, theirs) in AUTHORS.items():
        times = authors_bar(task, seeds, 600 if quick else 2000)
        got = np.array([t for t in times if t is not None])
        reached = f"{got.size} of {len(times)} seeds reach it"
        if got.size:
            med = float(np.median(got))
            print(f"{task:8} target {target}: {reached}; median {med:.2f} s (range {got.min():.2f}-{got.max():.2f}) "
                  f"against their {theirs} s: {theirs / med:.0f}x sooner")
        else:
            print(f"{task:8} target {target}: {reached}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(quick="quick" in sys.argv[1:])
