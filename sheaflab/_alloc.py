"""Keep glibc's heap from shrinking and re-growing around every numpy temporary.

The solvers allocate many short-lived arrays of 10 KB to a few MB. By default glibc hands large
blocks back to the kernel on every free (``mmap`` above 128 KB, heap trimming above 128 KB of free
space), so the next allocation of the same size pays page faults again. Raising the three thresholds
keeps the memory in the process for reuse (``bench/bench_alloc.py`` measures what it buys). It holds
at most a few tens of MB more and changes no result.

Importing sheaflab changes nothing process-wide. :func:`tune_allocator` is an explicit call; the
trainers' ``fit``, :func:`~sheaflab.parallel.fast_phase`, :func:`~sheaflab.experiments.step_costs`
and the benchmarks make it on first use. It does nothing on other C libraries or when the environment
sets ``SHEAFLAB_NO_MALLOPT=1``.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_state: dict = {}


def tune_allocator(limit: int = 32 << 20) -> bool:
    """Raise glibc's trim, top-pad and mmap thresholds to ``limit`` bytes, once per process.

    Returns True if the tuning is in effect. Later calls return the first call's answer without
    touching the allocator again.
    """
    if "tuned" not in _state:
        _state["tuned"] = _mallopt(limit)
    return _state["tuned"]


def _mallopt(limit: int) -> bool:
    if os.environ.get("SHEAFLAB_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(opt, limit) == 1
                   for opt in (_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
