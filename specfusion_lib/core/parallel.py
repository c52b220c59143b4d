"""How many worker processes a parallel stage may start.

Stages that share independent work out to processes (PXRD sticks of a snapshot, the searches
of the structure-inference benchmark) start as many as the CPUs this process may run on
(its affinity mask, which a batch scheduler or ``taskset`` may have narrowed), not the
machine's count.
"""

from __future__ import annotations

import os

__all__ = ["available_cpus"]


def available_cpus() -> int:
    """The CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
