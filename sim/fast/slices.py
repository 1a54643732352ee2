"""Time slices for fleets that feed back into themselves (Kafka's followers, Redis's cache fills).

A Kafka broker serves a record's leader append and, shortly after, other records' follower
appends; a Redis shard serves a read's GET and, after the read's Cassandra replies, its cache
fill. Those fleets are not feed-forward, so one pass over a chunk cannot have every arrival
before it starts. They advance instead in slices [h, h'): every station processes its arrivals
before h' in time order, and h' is chosen so that no arrival before h' can still be caused by
work not yet done. Each job that can cause such an arrival carries a lower bound of its
earliest one (`lb`: its arrival plus the service and hop draws on the way, which the counter
random numbers give in advance, with no queueing); h' is the least bound over the jobs not yet
processed. Forward edges inside a slice (a GET's miss going to Cassandra) are processed later in
the same slice, fleet by fleet in order.

This module holds the bookkeeping both such components share: the known jobs in (station,
time) order with suffix minima of their bounds, and a buffer of jobs generated inside the
component.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True)
def suffix_min(perm: np.ndarray, off: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """suf[i] = min of lb over perm[i:end of i's station segment]."""
    suf = np.empty(perm.size)
    for s in range(off.size - 1):
        m = math.inf
        for i in range(off[s + 1] - 1, off[s] - 1, -1):
            v = lb[perm[i]]
            if v < m:
                m = v
            suf[i] = m
    return suf


@nb.njit(cache=True)
def next_horizon(
    h: float,
    t_end: float,
    lo: np.int64,
    hi: np.int64,
    ptr: np.ndarray,
    off: np.ndarray,
    suf: np.ndarray,
    gen_lb: np.ndarray,
    gen_n: np.int64,
) -> float:
    """The next slice end: the least bound over unprocessed jobs of stations lo..hi-1 and the buffer."""
    m = t_end
    for s in range(lo, hi):
        if ptr[s] < off[s + 1] and suf[ptr[s]] < m:
            m = suf[ptr[s]]
    for g in range(gen_n):
        if gen_lb[g] < m:
            m = gen_lb[g]
    if m <= h:  # zero delays on the way back: take the ties at h now (their order among ties is lost)
        m = np.nextafter(h, math.inf)
    return m


@nb.njit(inline="always", cache=True)
def _before(st: np.ndarray, t: np.ndarray, a: np.int64, b: np.int64) -> bool:
    """Entry a goes strictly before entry b in (station, time) order."""
    return st[a] < st[b] or (st[a] == st[b] and t[a] < t[b])


@nb.njit(cache=True)
def select_generated(
    gen_t: np.ndarray,
    gen_st: np.ndarray,
    gen_stage: np.ndarray,
    gen_n: np.int64,
    stage: np.int64,
    h2: float,
    out: np.ndarray,
) -> np.int64:
    """Write into `out` the buffer entries of `stage` arriving before h2, in (station, time) order
    (ties: buffer order); return how many. The caller walks them with one pointer as it visits
    the stations in increasing order."""
    k = 0
    for g in range(gen_n):
        if gen_stage[g] == stage and gen_t[g] < h2:
            out[k] = g
            k += 1
    if k < 32:  # insertion sort
        for i in range(1, k):
            x = out[i]
            j = i
            while j > 0 and _before(gen_st, gen_t, x, out[j - 1]):
                out[j] = out[j - 1]
                j -= 1
            out[j] = x
        return k
    tmp = np.empty(k, np.int64)  # bottom-up merge sort (stable)
    width = 1
    while width < k:
        for lo in range(0, k, 2 * width):
            mid, hi = min(lo + width, k), min(lo + 2 * width, k)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                if _before(gen_st, gen_t, out[j], out[i]):
                    tmp[o] = out[j]
                    j += 1
                else:
                    tmp[o] = out[i]
                    i += 1
                o += 1
            while i < mid:
                tmp[o] = out[i]
                i += 1
                o += 1
            while j < hi:
                tmp[o] = out[j]
                j += 1
                o += 1
        for i in range(k):
            out[i] = tmp[i]
        width *= 2
    return k


@nb.njit(cache=True)
def drop_served(
    gt: np.ndarray,
    gst: np.ndarray,
    grow: np.ndarray,
    gslot: np.ndarray,
    gstage: np.ndarray,
    gsvc: np.ndarray,
    glb: np.ndarray,
    gn: np.int64,
) -> np.int64:
    """Remove the buffer entries marked served (stage < 0), keeping the others' order; returns
    the new count."""
    m = 0
    for g in range(gn):
        if gstage[g] < 0:
            continue
        gt[m], gst[m], grow[m], gslot[m] = gt[g], gst[g], grow[g], gslot[g]
        gstage[m], gsvc[m], glb[m] = gstage[g], gsvc[g], glb[g]
        m += 1
    return m


@nb.njit(cache=True)
def any_before(gt: np.ndarray, gn: np.int64, t: float) -> bool:
    """Some buffer entry arrives before t (the component must go on slicing)."""
    return bool((gt[:gn] < t).any())
