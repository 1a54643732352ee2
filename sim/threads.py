"""Compiled loops over every core: a loop split into consecutive ranges, one thread each.

The loops are numba functions compiled with `nogil=True`, so the threads run at once. Each range
writes only its own elements (or its own partial sums, added up in range order afterwards by the
caller, over a fixed number of blocks), so the answer is the same bits whatever the number of
threads: same scenario and seed, same numbers, on any machine.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def in_parts(n: int, part: Callable[[int, int], None], threads: int | None = None) -> None:
    """part(lo, hi) over `threads` (default: every usable core) consecutive ranges of 0..n."""
    bounds = np.linspace(0, n, max(1, threads or usable_cores()) + 1).astype(np.int64).tolist()
    ranges = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
    if len(ranges) <= 1:
        part(0, n)
        return
    with ThreadPoolExecutor(len(ranges), thread_name_prefix="capsim-part") as pool:
        for done in [pool.submit(part, lo, hi) for lo, hi in ranges]:
            done.result()
