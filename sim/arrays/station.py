"""Stations as arrays: FIFO multi-server queues served by the Kiefer-Wolfowitz recursion.

A station with c servers that takes arrivals in time order keeps the time each server is next
free. An arrival at `a` with service `s` starts at max(a, earliest free), ends at start + s, and
that server is next free at the end (Kiefer and Wolfowitz 1955; for c = 1 it is Lindley's
recursion). That gives every job's start and end at the moment it arrives, with no departure
events, and the same start times as any work-conserving FIFO c-server queue (the DES's).

* Queue bound: FIFO start times never decrease, so the jobs waiting at time `a` are the accepted
  jobs whose start is after `a`: a ring of pending start times per station, popped from the front.
  An arrival that would wait while `queue_limit` jobs wait is rejected (the DES's rule).
* Capacity over time: a station may carry windows [t_from, t_to) with `servers` available and a
  service `factor` (a GC pause: 0 servers; a slow node: factor 3). A job starts at the first
  time t >= a at which fewer than `servers(t)` jobs are in service; jobs already in service finish
  (non-preemptive), and a job's service is multiplied by the factor in force when it starts.
  Windows are found by binary search, and each row also holds the next crash at or after it and
  the last recovery up to it, so a station with a million windows (a GC storm) costs O(log n) per
  arrival, plus the windows a job's wait actually crosses.
* A crash is a window with `servers` DOWN (-1), with sim/des/station.py's meaning: an arrival in
  it is refused at once (UNAVAILABLE), work queued at its start fails then, work in service fails
  when it would have finished (CRASHED; its server is free from the crash on), and the station
  comes back with empty queues. Jobs that start before the crash and finish by it are untouched.
* Outcomes: `serve` returns (start, end) with start >= 0 for a served job, or (code, t) with a
  negative code (REJECTED, UNAVAILABLE, CRASHED) and t the time the caller learns of the failure.
* Statistics over the measured window [W, D): arrivals, rejections and completions counted at
  their times, busy time and time-in-station integrated over the window (utilization, Little), and
  queue waits of jobs starting in it: per station the jobs started, those that queued first
  (start > arrival) and their summed wait (P(wait), mean wait), and per fleet bucketed like
  sim/histogram.py.

The recursion needs each station's arrivals in time order: the calendar engine (sim/calendar) takes
events in time order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.histogram import GROWTH, MIN_VALUE

HEAP_ABOVE = 16  # stations with more servers keep their free times in a binary heap
DOWN = -1  # the `servers` of a crash window
# failure codes `serve` returns as the start time (the cause index is -code)
REJECTED, UNAVAILABLE, CRASHED = -1.0, -2.0, -3.0
WAIT_BUCKETS = 1600  # log buckets of 2% from 1 us: up to ~5e7 s


class Windows(NamedTuple):
    """Capacity windows of one station: [t_from, t_to) with `servers` available and a service factor."""

    t_from: np.ndarray
    t_to: np.ndarray
    servers: np.ndarray
    factor: np.ndarray


# columns of Stations.ints
(
    SERVERS,
    QLIMIT,
    FLEET,
    FREE_OFF,
    RING_OFF,
    RING_HEAD,
    RING_LEN,
    WIN0,
    WIN1,
    ARRIVALS,
    REJECTIONS,
    COMPLETIONS,
    STARTED,
    QUEUED,
) = range(14)
# columns of Stations.win: a window's span, servers and factor; the start of the first DOWN window at
# or after it (inf: none) and the end of the last DOWN window at or before it (-inf: none)
W_FROM, W_TO, W_SERVERS, W_FACTOR, W_NEXT_DOWN, W_LAST_UP = range(6)
WIN_COLS = 6
# columns of Stations.floats: busy and job seconds in the measured window [W, D), the last arrival,
# queue wait; and every second of service since the start, counted as the job arrives (what the live
# per-window view of utilization reads: work that ends in a later window counts in its arrival's)
BUSY_S, JOBS_S, LAST_ARRIVAL, WAIT_S, SERVICE_S = range(5)
# Stations.glob: the measured window [W, D), the latest event; Stations.counts: jobs served, out of order
W_AT, D_AT, LAST_EVENT = range(3)
SERVED, OUT_OF_ORDER = range(2)


class Stations(NamedTuple):
    """Every station of a run in one index space: its state and statistics in a few arrays.

    Kernels unpack the fields once, in straight-line code, and hand the arrays to `serve`:
    numba then drops the per-access reference counting that taking arrays out of a tuple inside
    loops and branches costs (measured: 15 ns against 200-800 ns per job).
    """

    ints: np.ndarray  # int64 [S, 14]: the columns above
    floats: np.ndarray  # float64 [S, 4]: busy server-seconds and job-seconds in [W, D), last arrival,
    # summed queue wait (s) of jobs starting in [W, D)
    free: np.ndarray  # float64: servers' next-free times, station st at ints[st, FREE_OFF] (a heap if many)
    ring: np.ndarray  # float64: start times of waiting jobs of queue-bounded stations
    win: np.ndarray  # float64 [windows, WIN_COLS]: the W_ columns (station st: rows WIN0..WIN1)
    waits: (
        np.ndarray
    )  # int64 [F, WAIT_BUCKETS + 1]: waits (ms) of jobs starting in [W, D); last column: < 1 us
    wait_stats: np.ndarray  # float64 [F, 3]: sum, max, min (of waits >= 1 us) in ms
    glob: np.ndarray  # float64 [3]: W, D, latest event
    counts: np.ndarray  # int64 [2]: jobs served (request-hops; kept by the callers), arrivals served late


def build_stations(
    servers: list[int],
    qlimits: list[int | None],
    fleets: list[int],
    n_fleets: int,
    windows: dict[int, Windows] | None = None,
) -> Stations:
    """Stations with empty queues; `windows` maps a station index to its capacity windows."""
    n = len(servers)
    windows = windows or {}
    c = np.asarray(servers, dtype=np.int64)
    q = np.array([-1 if ql is None else ql for ql in qlimits], dtype=np.int64)
    ints = np.zeros((n, 14), dtype=np.int64)
    ints[:, SERVERS] = c
    ints[:, QLIMIT] = q
    ints[:, FLEET] = np.asarray(fleets, dtype=np.int64)
    ints[:, FREE_OFF] = np.concatenate([[0], np.cumsum(c)[:-1]]) if n else 0
    ints[:, RING_OFF] = np.concatenate([[0], np.cumsum(np.maximum(q, 0))[:-1]]) if n else 0
    k = 0
    for st in range(n):  # each station's rows, in station order
        ints[st, WIN0] = k
        w = windows.get(st)
        k += 0 if w is None else len(w.t_from)
        ints[st, WIN1] = k
    win = np.empty((k, WIN_COLS))
    for st, w in windows.items():
        _fill_windows(win[ints[st, WIN0]:ints[st, WIN1]], w, st, int(c[st]))
    floats = np.zeros((n, 5))
    floats[:, LAST_ARRIVAL] = -math.inf
    stats = np.zeros((n_fleets, 3))
    stats[:, 2] = math.inf
    return Stations(
        ints=ints,
        floats=floats,
        free=np.zeros(int(c.sum())),
        ring=np.zeros(int(np.maximum(q, 0).sum())),
        win=win,
        waits=np.zeros((n_fleets, WAIT_BUCKETS + 1), dtype=np.int64),
        wait_stats=stats,
        glob=np.array([0.0, math.inf, 0.0]),
        counts=np.zeros(2, dtype=np.int64),
    )


def _fill_windows(rows: np.ndarray, w: Windows, st: int, c: int) -> None:
    """One station's windows into its rows of Stations.win, sorted, checked, with their crash columns."""
    w = Windows(*(np.asarray(x, dtype=np.float64) for x in w))
    if np.any(w.t_from[1:] < w.t_from[:-1]):  # a merged set comes sorted already
        order = np.argsort(w.t_from, kind="stable")
        w = Windows(*(x[order] for x in w))
    if np.any(w.t_to <= w.t_from) or np.any(w.t_from[1:] < w.t_to[:-1]):
        raise ValueError(f"station {st}: capacity windows must be non-empty and not overlap")
    if np.any(w.servers < DOWN) or np.any(w.servers > c) or np.any(w.factor <= 0):
        raise ValueError(f"station {st}: window servers must be in 0..{c} or {DOWN} (down), factors > 0")
    n = w.t_from.size
    rows[:, W_FROM], rows[:, W_TO], rows[:, W_SERVERS], rows[:, W_FACTOR] = w
    down = w.servers == DOWN
    idx = np.arange(n)
    # the first DOWN row at or after each row (n: none), the last at or before it (-1: none)
    nxt = np.minimum.accumulate(np.where(down, idx, n)[::-1])[::-1]
    rows[:, W_NEXT_DOWN] = np.append(w.t_from, math.inf)[nxt]
    last = np.maximum.accumulate(np.where(down, idx, -1))
    rows[:, W_LAST_UP] = np.where(last >= 0, w.t_to[last], -math.inf)


_LOG_G = math.log(GROWTH)


@nb.njit(inline="always", cache=True)
def _overlap(a: float, b: float, lo: float, hi: float) -> float:
    x = max(a, lo)
    y = min(b, hi)
    return y - x if y > x else 0.0


@nb.njit(inline="always", cache=True)
def _window_at(win: np.ndarray, w0: np.int64, w1: np.int64, t: float) -> np.int64:
    """The last window of w0..w1-1 starting at or before t (w0 - 1 if none): windows are sorted
    and disjoint, so t is inside it if t < its end."""
    lo, hi = w0, w1
    while lo < hi:
        mid = (lo + hi) // 2
        if win[mid, 0] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@nb.njit(inline="always", cache=True)
def cause(start: float) -> np.int64:
    """A failure's cause, 0 rejected, 1 unavailable, 2 crashed, from its code (`start` < 0)."""
    return np.int64(-start) - 1


@nb.njit(cache=True)
def is_down(ints: np.ndarray, win: np.ndarray, st: np.int64, t: float) -> bool:
    """Station st is crashed at time t (inside one of its DOWN windows)."""
    w0, w1 = ints[st, WIN0], ints[st, WIN1]
    if w1 == w0:
        return False
    w = _window_at(win, w0, w1, t)
    return w >= w0 and win[w, 2] == DOWN and t < win[w, 1]


@nb.njit(cache=True, _nrt=False)
def last_recovery(ints: np.ndarray, win: np.ndarray, st: np.int64, t: float) -> float:
    """When station st last came back from a crash at or before t (-inf: never crashed by then)."""
    w0, w1 = ints[st, WIN0], ints[st, WIN1]
    w = _window_at(win, w0, w1, t)
    if w < w0:
        return -math.inf
    if win[w, W_SERVERS] == DOWN and t < win[w, W_TO]:  # down now: the recovery before this crash
        return win[w - 1, W_LAST_UP] if w > w0 else -math.inf
    return win[w, W_LAST_UP]


@nb.njit(cache=True)
def down_mask(ints: np.ndarray, win: np.ndarray, st: np.ndarray, t: np.ndarray) -> np.ndarray:
    """is_down for each (station, time) pair."""
    out = np.empty(st.size, np.bool_)
    for i in range(st.size):
        out[i] = is_down(ints, win, st[i], t[i])
    return out


@nb.njit(cache=True, _nrt=False)
def _windowed_start(
    free: np.ndarray, off: np.int64, c: np.int64, win: np.ndarray, w0: np.int64, w1: np.int64, a: float
) -> tuple[float, np.int64, float]:
    """(start, server slot, service factor) under the station's capacity windows w0..w1-1: the first
    t >= a at which fewer jobs are in service than the window allows, and a server is free."""
    t = a
    while True:
        w = _window_at(win, w0, w1, t)
        cap, factor = c, 1.0
        next_edge = win[w + 1, 0] if w + 1 < w1 else math.inf
        if w >= w0 and t < win[w, 1]:
            cap, factor, next_edge = np.int64(win[w, 2]), win[w, 3], win[w, 1]
        busy = 0
        slot = np.int64(-1)
        next_free = math.inf
        for k in range(off, off + c):
            f = free[k]
            if f > t:
                busy += 1
                if f < next_free:
                    next_free = f
            elif slot < 0:
                slot = k
        if busy < cap and slot >= 0:
            return t, slot, factor
        # every server busy: no window edge before a server frees matters (a GC storm's pauses)
        t = next_free if slot < 0 else min(next_free, next_edge)
        if t == math.inf:  # capacity 0 for ever: never starts
            return math.inf, off, factor


@nb.njit(inline="always", cache=True)
def _sift_down(free: np.ndarray, off: np.int64, n: np.int64, value: float) -> None:
    """Replace the heap root (free[off]) with `value` and restore the heap."""
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and free[off + c + 1] < free[off + c]:
            c += 1
        if free[off + c] >= value:
            break
        free[off + i] = free[off + c]
        i = c
    free[off + i] = value


@nb.njit(inline="always", cache=True)
def _occupy(
    free: np.ndarray, off: np.int64, c: np.int64, slot: np.int64, windowed: bool, until: float
) -> None:
    """The chosen server is busy until `until` (the heap root, for a large unwindowed station)."""
    if c > HEAP_ABOVE and not windowed:
        _sift_down(free, off, c, until)
    else:
        free[slot] = until


@nb.njit(inline="always", cache=True)
def _record_wait(
    ints: np.ndarray,
    floats: np.ndarray,
    waits: np.ndarray,
    wait_stats: np.ndarray,
    st: np.int64,
    fleet: np.int64,
    W: float,
    D: float,
    a: float,
    start: float,
) -> None:
    """The queue wait of a job starting at `start`, if it starts in the measured window."""
    if W <= start < D:
        ints[st, STARTED] += 1
        if start > a:
            ints[st, QUEUED] += 1
            floats[st, WAIT_S] += start - a
        wait_ms = (start - a) * 1e3
        nb_ = waits.shape[1] - 1
        if wait_ms < MIN_VALUE:
            waits[fleet, nb_] += 1
        else:
            b = int(math.log(wait_ms / MIN_VALUE) / _LOG_G)
            waits[fleet, min(b, nb_ - 1)] += 1
            if wait_ms < wait_stats[fleet, 2]:
                wait_stats[fleet, 2] = wait_ms
        wait_stats[fleet, 0] += wait_ms
        if wait_ms > wait_stats[fleet, 1]:
            wait_stats[fleet, 1] = wait_ms


@nb.njit(cache=True, _nrt=False)
def serve(
    ints: np.ndarray,
    floats: np.ndarray,
    free: np.ndarray,
    ring: np.ndarray,
    win: np.ndarray,
    waits: np.ndarray,
    wait_stats: np.ndarray,
    glob: np.ndarray,
    counts: np.ndarray,
    st: np.int64,
    a: float,
    svc: float,
) -> tuple[float, float]:
    """Admit a job arriving at `a` with service `svc` at station `st` (arrivals in time order).

    The arrays are a `Stations`' fields (`*S`). Returns (start, end), or (-1, -1) when the queue
    bound rejects the job.
    """
    W, D = glob[W_AT], glob[D_AT]
    fleet = ints[st, FLEET]
    measured = W <= a < D
    if a < floats[st, LAST_ARRIVAL]:
        counts[OUT_OF_ORDER] += 1
    else:
        floats[st, LAST_ARRIVAL] = a
    off, c = ints[st, FREE_OFF], ints[st, SERVERS]
    factor = 1.0
    w0, w1 = ints[st, WIN0], ints[st, WIN1]
    windowed = w1 > w0
    crash_at = math.inf  # the next crash after the arrival
    if windowed:
        w = _window_at(win, w0, w1, a)
        if w >= w0 and win[w, 2] == DOWN and a < win[w, 1]:
            return UNAVAILABLE, a  # not an arrival (as the DES's Station.submit when down)
        x = max(w + 1, w0)
        if x < w1:
            crash_at = win[x, W_NEXT_DOWN]
        start, slot, factor = _windowed_start(free, off, c, win, w0, w1, a)
    elif c > HEAP_ABOVE:
        slot = off
        start = max(a, free[off])
    else:
        slot = off
        best = free[off]
        for k in range(off + 1, off + c):
            if free[k] < best:
                best = free[k]
                slot = k
        start = max(a, best)
    if measured:
        ints[st, ARRIVALS] += 1
    q = ints[st, QLIMIT]
    if q >= 0:
        r0 = ints[st, RING_OFF]
        head, n = ints[st, RING_HEAD], ints[st, RING_LEN]
        while n > 0 and ring[r0 + head] <= a:
            head = head + 1 if head + 1 < q else 0
            n -= 1
        if start > a and n >= q:
            ints[st, RING_HEAD], ints[st, RING_LEN] = head, n
            if measured:
                ints[st, REJECTIONS] += 1
            if a > glob[LAST_EVENT]:
                glob[LAST_EVENT] = a
            return REJECTED, a
        if start > a:  # it waits until it starts, or until a crash fails the queue
            tail = head + n
            if tail >= q:
                tail -= q
            ring[r0 + tail] = min(start, crash_at)
            n += 1
        ints[st, RING_HEAD], ints[st, RING_LEN] = head, n
    if start >= crash_at:  # still queued at the crash: fails then, never served
        if crash_at > glob[LAST_EVENT]:
            glob[LAST_EVENT] = crash_at
        if crash_at > W and a < D:
            floats[st, JOBS_S] += _overlap(a, crash_at, W, D)
        return CRASHED, crash_at
    end = start + svc * factor
    if end > crash_at:  # in service at the crash: its server is free from then, the caller
        _occupy(free, off, c, slot, windowed, crash_at)  # hears when the work would have ended
        if end > glob[LAST_EVENT]:
            glob[LAST_EVENT] = end
        if crash_at > W and start < D:
            floats[st, BUSY_S] += _overlap(start, crash_at, W, D)
        if crash_at > W and a < D:
            floats[st, JOBS_S] += _overlap(a, crash_at, W, D)
        floats[st, SERVICE_S] += crash_at - start
        _record_wait(ints, floats, waits, wait_stats, st, fleet, W, D, a, start)
        return CRASHED, end
    if end > glob[LAST_EVENT]:
        glob[LAST_EVENT] = end
    _occupy(free, off, c, slot, windowed, end)
    if end > W and start < D:
        floats[st, BUSY_S] += _overlap(start, end, W, D)
    if end > W and a < D:
        floats[st, JOBS_S] += _overlap(a, end, W, D)
    floats[st, SERVICE_S] += end - start
    if W <= end < D:
        ints[st, COMPLETIONS] += 1
    _record_wait(ints, floats, waits, wait_stats, st, fleet, W, D, a, start)
    return start, end
