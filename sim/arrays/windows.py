"""The scenario's faults the array engines simulate, as stations' capacity windows.

`slow`, `gc_pauses`, `crash` and `shard_loss` (a Redis crash) (sim/faults.py) have the DES's
meaning (sim/des/station.py):
`slow` multiplies the service time of jobs that start in its window; a GC pause is capacity 0
for its length (jobs in service finish, queued ones wait); a crash is a DOWN window (queued work
fails, work in service fails when it would have ended, arrivals are refused). Where windows
overlap, DOWN wins, slow factors multiply and a pause holds capacity at 0, as in the DES
(sim/des/faults.py): a station hit by overlapping crashes is one DOWN window from the first's
start to the last's end, so it recovers (and a Redis shard restarts empty) once, at that end.
Other kinds are refused (sim/calendar/support.py).

A station's fault windows are merged by a sweep line (`merge_windows`): their 2n start and end
points sorted once, then one pass keeping the number of active DOWN windows, of active pauses and
the product of the active slow factors, emitting a window each time that state changes:
O(n log n) in a station's windows (a GC storm of 1M pauses on a node is one sort and one pass).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.station import DOWN, Windows
from sim.faults import Fault
from sim.scenario import Scenario

Items = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # t_from, t_to, servers, factor (unmerged)


def pause_offsets(every_s: float, duration_s: float) -> np.ndarray:
    """The start of every pause of a `gc_pauses` fault, from the fault's start: 0, every_s,
    every_s + every_s, ... while below duration_s, summed one by one as the DES schedules them
    (sim/des/faults.py `_pause`: t += every_s), so both engines pause at the same float times."""
    m = math.ceil(duration_s / every_s) + 2
    while True:
        t = np.full(m, every_s)
        t[0] = 0.0
        np.cumsum(t, out=t)  # an accumulate: sequential, the loop's sums exactly
        if t[-1] >= duration_s:
            return t[: int(np.searchsorted(t, duration_s, side="left"))]
        m *= 2


def _pauses(fault: Fault) -> Items:
    assert fault.every_s is not None and fault.pause_ms is not None
    t = pause_offsets(fault.every_s, fault.duration_s)
    end = np.minimum(t + fault.pause_ms / 1e3, fault.duration_s)
    return fault.start_s + t, fault.start_s + end, np.zeros(t.size, np.int64), np.ones(t.size)


def _one(t_from: float, t_to: float, servers: int, factor: float) -> Items:
    return (np.array([t_from]), np.array([t_to]), np.array([servers], np.int64), np.array([factor]))


def fault_windows(
    sc: Scenario, base: dict[str, int], count: dict[str, int], servers: list[int]
) -> dict[int, Windows]:
    """Capacity windows of the stations that `slow`, `gc_pauses`, `crash` (and `shard_loss`,
    `broker_loss`, `zone_outage`: DOWN windows) faults hit (each engine's support.py says which it
    takes): on overlaps the factors multiply and the smallest capacity holds (`merge_windows`)."""
    spans: dict[int, list[Items]] = {}
    zones = sc.network.zones
    for fault in sc.faults:
        if fault.kind == "zone_outage":  # every station of the zone is down (the DES's zone: index mod zones)
            for name, b in base.items():
                for i in range(count[name]):
                    if i % zones == fault.zone:
                        spans.setdefault(b + i, []).append(_one(fault.start_s, fault.end_s, DOWN, 1.0))
            continue
        name = fault.component or ""
        if fault.kind not in ("slow", "gc_pauses", "crash", "shard_loss", "broker_loss") or name not in base:
            continue
        pauses = _pauses(fault) if fault.kind == "gc_pauses" else None  # one train, shared by its nodes
        for i in fault.node_indices(count[name]):
            if i >= count[name]:
                continue
            st = base[name] + i
            if pauses is not None:
                item = pauses
            elif fault.kind == "slow":
                item = _one(fault.start_s, fault.end_s, servers[st], fault.factor or 1.0)
            else:  # crash, shard_loss (a Redis crash), broker_loss
                item = _one(fault.start_s, fault.end_s, DOWN, 1.0)
            spans.setdefault(st, []).append(item)
    out: dict[int, Windows] = {}
    for st in sorted(spans):
        parts = spans.pop(st)  # each station's items are freed once merged
        merged = merge_windows(*(np.concatenate([p[k] for p in parts]) for k in range(4)), servers[st])
        if merged.t_from.size:
            out[st] = merged
    return out


def merge_windows(t_from: np.ndarray, t_to: np.ndarray, servers: np.ndarray, factor: np.ndarray,
                  full: int) -> Windows:
    """One station's overlapping windows (`servers` DOWN, 0 for a pause, or `full` for a slow
    window; `factor` the service factor) as sorted disjoint windows where capacity or factor
    differ from (`full`, 1): DOWN wins, else a pause holds 0, and the factors of the windows
    active multiply (in the windows' order, recomputed whenever one starts or ends, so the product
    is exact: back to 1 when the last ends). Two abutting pieces of one state are one window while
    a window of that capacity runs on across their edge, two otherwise (a crash that ends as
    another starts is a recovery, as in the DES). Empty windows (t_to <= t_from) change nothing.
    A sweep over the sorted edges: O(n log n), plus O(slow windows) each time a slow one starts
    or ends (a station has one per `slow` fault naming it)."""
    t_from, t_to = np.asarray(t_from, np.float64), np.asarray(t_to, np.float64)
    servers, factor = np.asarray(servers, np.int64), np.asarray(factor, np.float64)
    bad = (servers != DOWN) & (servers != 0) & (servers != full)
    if np.any(bad):
        raise ValueError(f"window servers must be {DOWN} (down), 0 (paused) or {full} (all); "
                         f"got {int(servers[bad][0])}")
    keep = t_to > t_from
    if not np.all(keep):
        t_from, t_to, servers, factor = t_from[keep], t_to[keep], servers[keep], factor[keep]
    edges = np.concatenate([t_from, t_to])
    order = np.argsort(edges, kind="stable")
    rows = _sweep(edges, order, servers, factor, np.flatnonzero(factor != 1.0), np.int64(full))
    return Windows(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].astype(np.int64), rows[:, 3].copy())


@nb.njit(cache=True)
def _sweep(edges: np.ndarray, order: np.ndarray, servers: np.ndarray, factor: np.ndarray,
           scaled: np.ndarray, full: np.int64) -> np.ndarray:
    """The merged windows [t_from, t_to, servers, factor] of n windows whose starts are edges[:n]
    and ends edges[n:], `order` sorting the edges; `scaled` the windows with factor != 1."""
    n = servers.size
    out = np.empty((edges.size, 4))  # at most one window opens at each edge
    rows = 0
    active = np.zeros(3, np.int64)  # windows active by class: 0 DOWN, 1 paused, 2 full capacity (slow)
    started = np.zeros(3, np.int64)  # of them, started at the current edge
    on = np.zeros(n, np.bool_)
    product = 1.0
    is_open = False
    o_from, o_cap, o_factor = 0.0, full, 1.0
    k, m = 0, edges.size
    while k < m:
        t = edges[order[k]]
        started[:] = 0
        rescale = False
        while k < m and edges[order[k]] == t:  # every window starting or ending at t
            e = order[k]
            i = e if e < n else e - n
            cls = 0 if servers[i] == DOWN else (1 if servers[i] < full else 2)
            if e < n:
                active[cls] += 1
                started[cls] += 1
                on[i] = True
            else:
                active[cls] -= 1
                on[i] = False
            if factor[i] != 1.0:
                rescale = True
            k += 1
        if rescale:
            product = 1.0
            for j in scaled:
                if on[j]:
                    product *= factor[j]
        cls = 0 if active[0] > 0 else (1 if active[1] > 0 else 2)
        cap = np.int64(DOWN) if cls == 0 else (np.int64(0) if cls == 1 else full)
        f = 1.0 if cls == 0 else product
        marked = cap < full or f != 1.0
        # the same state on both sides of t, held by a window of its class running on across t
        if is_open and marked and cap == o_cap and f == o_factor and active[cls] > started[cls]:
            continue
        if is_open:
            out[rows, 0], out[rows, 1], out[rows, 2], out[rows, 3] = o_from, t, o_cap, o_factor
            rows += 1
        is_open = marked
        o_from, o_cap, o_factor = t, cap, f
    return out[:rows]
