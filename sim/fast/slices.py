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

This module holds the one slice-merge kernel both such components use. `open_slices` puts the
known jobs in (station, time) order with suffix minima of their bounds and makes a buffer for
the jobs generated inside the component; `next_slice` chooses the next slice end; `fleet_pass`
lists one fleet's arrivals before it, station by station in time order, known and generated
jobs merged (a known job first on ties); the caller serves them in that order, appending what
they cause with `push`; `end_pass` drops the served generated jobs; `close_slices` gives the
known jobs' done mask in input order and the generated jobs not yet served:

    C = open_slices(...)
    gn = 0
    while next_slice(C, gn):
        where, order = fleet_pass(C, stage, base, count, gn)
        for n in range(order.size): ... serve job order[n] at station where[n] ...
        gn = end_pass(C, order, gn)
    done, left = close_slices(C, gn)

A pass's order depends only on arrival times known when it starts (a job generated during a
pass arrives at or after the slice end, or at a fleet whose pass comes later), so it is listed
before any of it is served.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.fast.order import order_jobs


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


class Slices(NamedTuple):
    """The state of one component's slices over a chunk (`open_slices`)."""

    t: np.ndarray  # the known jobs' arrivals, in (station, time) order
    perm: np.ndarray  # sorted position -> input index
    off: np.ndarray  # station s's known jobs are sorted positions off[s]:off[s + 1]
    suf: np.ndarray  # suffix minima of the known jobs' bounds, per station
    ptr: np.ndarray  # per station: its first known job not yet listed
    done: np.ndarray  # bool, by sorted position: listed (served)
    gt: np.ndarray  # the generated jobs' buffer: arrival, station, row, slot, stage, service, bound
    gst: np.ndarray
    grow: np.ndarray
    gslot: np.ndarray
    gstage: np.ndarray
    gsvc: np.ndarray
    glb: np.ndarray
    sel: np.ndarray  # scratch for select_generated
    clock: np.ndarray  # float64 [h, h2, t_end]: the slice [h, h2) and the chunk's end
    span: np.ndarray  # int64 [lo, hi, slices]: the component's stations lo..hi-1, slices so far


@nb.njit(cache=True)
def open_slices(
    st: np.ndarray,
    t: np.ndarray,
    part: np.ndarray,
    lb: np.ndarray,
    n_stations: np.int64,
    cap: np.int64,
    lo: np.int64,
    hi: np.int64,
    t_start: float,
    t_end: float,
) -> Slices:
    """The slices of the component of stations lo..hi-1 over [t_start, t_end), for the known jobs
    (t, st, part, lb) and room for `cap` generated ones."""
    perm, off = order_jobs(st, t, part, n_stations)
    n_in = t.size
    return Slices(
        t[perm],
        perm,
        off,
        suffix_min(np.arange(n_in), off, lb[perm]),
        off[:-1].copy(),
        np.zeros(n_in, np.bool_),
        np.empty(cap),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap, np.int64),
        np.empty(cap),
        np.full(cap, math.inf),
        np.empty(cap, np.int64),
        np.array([t_start, t_start, t_end]),
        np.array([lo, hi, 0], np.int64),
    )


@nb.njit(cache=True)
def next_slice(C: Slices, gn: np.int64) -> bool:
    """Start the next slice (False: the chunk is done: the last slice reached its end and no
    generated job arrives before it). `gn`: how many generated jobs the buffer holds."""
    t_end = C.clock[2]
    if C.span[2] > 0:
        h = C.clock[1]
        if h >= t_end and not any_before(C.gt, gn, t_end):
            return False
        C.clock[0] = h
    C.clock[1] = next_horizon(C.clock[0], t_end, C.span[0], C.span[1], C.ptr, C.off, C.suf, C.glb, gn)
    C.span[2] += 1
    return True


@nb.njit(cache=True)
def fleet_pass(
    C: Slices, stage: np.int64, base: np.int64, count: np.int64, gn: np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """One fleet's arrivals before the slice end (stations base..base+count-1; generated jobs of
    `stage`), in the order to serve them: (station, job), job >= 0 the known job at that sorted
    position, job < 0 the generated job -job - 1 (in the buffer until `end_pass`)."""
    t, off, ptr, done, gt, gst, sel = C.t, C.off, C.ptr, C.done, C.gt, C.gst, C.sel
    h2 = C.clock[1]
    nsel = select_generated(gt, gst, C.gstage, gn, stage, h2, sel)
    size = nsel
    for b in range(base, base + count):
        size += off[b + 1] - ptr[b]
    where = np.empty(size, np.int64)
    order = np.empty(size, np.int64)
    n = 0
    k = 0
    for b in range(base, base + count):
        i, iend = ptr[b], off[b + 1]
        while True:
            tk = t[i] if i < iend and t[i] < h2 else math.inf
            tg = gt[sel[k]] if k < nsel and gst[sel[k]] == b else math.inf
            if tk == math.inf and tg == math.inf:
                break
            if tk <= tg:
                order[n] = i
                done[i] = True
                i += 1
            else:
                order[n] = -sel[k] - 1
                k += 1
            where[n] = b
            n += 1
        ptr[b] = i
    return where[:n], order[:n]


@nb.njit(cache=True)
def push(
    C: Slices, gn: np.int64, t: float, st: np.int64, row: np.int64, slot: np.int64, stage: np.int64,
    svc: float, lb: float,
) -> np.int64:
    """Append a generated job to the buffer; returns the new count."""
    C.gt[gn], C.gst[gn], C.grow[gn], C.gslot[gn] = t, st, row, slot
    C.gstage[gn], C.gsvc[gn], C.glb[gn] = stage, svc, lb
    return gn + 1


@nb.njit(cache=True)
def end_pass(C: Slices, order: np.ndarray, gn: np.int64) -> np.int64:
    """Drop the generated jobs the pass served; returns the buffer's new count."""
    for n in range(order.size):
        if order[n] < 0:
            C.gstage[-order[n] - 1] = -1
    return drop_served(C.gt, C.gst, C.grow, C.gslot, C.gstage, C.gsvc, C.glb, gn)


@nb.njit(cache=True)
def close_slices(C: Slices, gn: np.int64) -> tuple:
    """(done mask of the known jobs in input order, slices, and the generated jobs not yet served:
    t, st, row, slot, stage, svc, lb)."""
    done = np.zeros(C.t.size, np.bool_)
    done[C.perm] = C.done
    return (
        done,
        C.span[2],
        C.gt[:gn].copy(),
        C.gst[:gn].copy(),
        C.grow[:gn].copy(),
        C.gslot[:gn].copy(),
        C.gstage[:gn].copy(),
        C.gsvc[:gn].copy(),
        C.glb[:gn].copy(),
    )
