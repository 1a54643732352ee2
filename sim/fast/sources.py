"""Arrivals: the send and read streams, and their merged order (token buckets, round robin).

Poisson (or deterministic) arrivals, arrival n after arrival n-1 by a gap drawn from the counter
random numbers at index n, summed in order, so the stream is the same however it is cut into
chunks.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.rng import uniform


@nb.njit(cache=True)
def arrivals(
    key: np.uint64, gid0: np.int64, t_next: float, t_end: float, rate: float, poisson: bool
) -> tuple[np.ndarray, float]:
    """Arrival times before t_end, from the pending next arrival `t_next` (arrival gid0)."""
    cap = int((t_end - t_next) * rate * 1.2 + 10.0 * math.sqrt(max((t_end - t_next) * rate, 1.0)) + 16)
    out = np.empty(max(cap, 16))
    n = 0
    gid = gid0
    t = t_next
    while t < t_end:
        if n == out.size:
            bigger = np.empty(out.size * 2)
            bigger[:n] = out[:n]
            out = bigger
        out[n] = t
        n += 1
        gid += 1
        t += -math.log(uniform(key, gid, 0)) / rate if poisson else 1.0 / rate
    return out[:n], t


@nb.njit(cache=True)
def merge_order(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of a's and b's elements in their merged time order (a first on ties)."""
    ra = np.empty(a.size, np.int64)
    rb = np.empty(b.size, np.int64)
    i = j = 0
    while i < a.size or j < b.size:
        if j >= b.size or (i < a.size and a[i] <= b[j]):
            ra[i] = i + j
            i += 1
        else:
            rb[j] = i + j
            j += 1
    return ra, rb
