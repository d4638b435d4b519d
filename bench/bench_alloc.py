"""What the glibc allocator tuning (sheaflab.tune_allocator) buys: the same work with and without it.

The tuning is process-wide and cannot be undone inside a process, so every measurement runs in a
fresh subprocess, alternating tuned / untuned (SHEAFLAB_NO_MALLOPT=1) runs, and each side keeps its
best time over the rounds. Run:  python bench/bench_alloc.py   (about a minute; run it alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROUNDS = 3

# One subprocess: times each workload (best of a few calls) and prints them as JSON.
WORKER = r"""
import json, sys
import sheaflab
from sheaflab import measure
from sheaflab.datasets import paraboloid
print("TUNED", sheaflab.tune_allocator(), file=sys.stderr)
X, Y = paraboloid(300, noise=0.02, seed=0)
shallow = sheaflab.NeuralSheaf.random([2, 30, 1], seed=0)
deep = sheaflab.NeuralSheaf.random([2, 32, 32, 1], seed=0)
big = paraboloid(10_000, noise=0.02, seed=0)

def epochs():
    sheaflab.SheafTrainer(shallow, lr=0.01, optimizer="adam", progress=False).fit(X, Y, epochs=200)

out = {
    "direct solve [2,30,1], B=300": measure.best_time(lambda: sheaflab.equilibrium(shallow, X, Y),
                                                       repeats=5, min_total=0.2),
    "direct solve [2,30,1], B=10^4": measure.best_time(lambda: sheaflab.equilibrium(shallow, *big),
                                                        repeats=5, min_total=0.2),
    "direct solve [2,32,32,1], B=300": measure.best_time(lambda: sheaflab.equilibrium(deep, X, Y),
                                                          repeats=3),
    "200 sheaf-trainer epochs [2,30,1], B=300": measure.best_time(epochs, repeats=3),
}
print(json.dumps(out))
"""


def run(tuned: bool) -> dict:
    env = dict(os.environ)
    env.pop("SHEAFLAB_NO_MALLOPT", None)
    if not tuned:
        env["SHEAFLAB_NO_MALLOPT"] = "1"
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, env=env,
                          check=True)
    assert f"TUNED {tuned}" in proc.stderr, proc.stderr   # the switch did what it says
    return json.loads(proc.stdout)


def main():
    best = {True: {}, False: {}}
    for _ in range(ROUNDS):
        for tuned in (True, False):
            for key, t in run(tuned).items():
                best[tuned][key] = min(best[tuned].get(key, float("inf")), t)
    print(f"allocator tuning on vs off (SHEAFLAB_NO_MALLOPT=1), best of {ROUNDS} alternating "
          "subprocess rounds")
    print(f"{'workload':<44}{'tuned':>12}{'untuned':>12}{'untuned/tuned':>15}")
    for key in best[True]:
        on, off = best[True][key], best[False][key]
        print(f"{key:<44}{1e3 * on:>10.2f}ms{1e3 * off:>10.2f}ms{off / on:>15.2f}")


if __name__ == "__main__":
    main()
