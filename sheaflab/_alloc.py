"""Keep glibc's heap from shrinking and re-growing around every numpy temporary.

The solvers allocate many short-lived arrays of 10 KB to a few MB. By default glibc hands large
blocks back to the kernel on every free (``mmap`` above 128 KB, heap trimming above 128 KB of free
space), so the next allocation of the same size pays page faults again: on this project's
benchmarks that cost about a third of the fast phase. Raising the three thresholds once keeps the
memory in the process for reuse. It holds at most a few tens of MB more, changes no result, and is
skipped on other C libraries or when the environment sets ``SHEAFLAB_NO_MALLOPT=1``.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator(limit: int = 32 << 20) -> bool:
    """Raise glibc's trim, top-pad and mmap thresholds to ``limit`` bytes; True if it took effect."""
    if os.environ.get("SHEAFLAB_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return all(libc.mallopt(opt, limit) == 1
                   for opt in (_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
