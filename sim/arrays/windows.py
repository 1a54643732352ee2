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
"""

from __future__ import annotations

import itertools

import numpy as np

from sim.arrays.station import DOWN, Windows
from sim.scenario import Scenario


def fault_windows(
    sc: Scenario, base: dict[str, int], count: dict[str, int], servers: list[int]
) -> dict[int, Windows]:
    """Capacity windows of the stations that `slow`, `gc_pauses`, `crash` (and `shard_loss`,
    `broker_loss`, `zone_outage`: DOWN windows) faults hit (each engine's support.py says which it
    takes): on overlaps the factors multiply and the smallest capacity holds."""
    spans: dict[int, list[tuple[float, float, int, float]]] = {}
    zones = sc.network.zones
    for fault in sc.faults:
        if fault.kind == "zone_outage":  # every station of the zone is down (the DES's zone: index mod zones)
            for name, b in base.items():
                for i in range(count[name]):
                    if i % zones == fault.zone:
                        spans.setdefault(b + i, []).append((fault.start_s, fault.end_s, DOWN, 1.0))
            continue
        name = fault.component or ""
        if fault.kind not in ("slow", "gc_pauses", "crash", "shard_loss", "broker_loss") or name not in base:
            continue
        for i in fault.node_indices(count[name]):
            if i >= count[name]:
                continue
            st = base[name] + i
            if fault.kind == "slow":
                spans.setdefault(st, []).append(
                    (fault.start_s, fault.end_s, servers[st], fault.factor or 1.0)
                )
            elif fault.kind in ("crash", "shard_loss", "broker_loss"):  # shard_loss: a Redis crash
                spans.setdefault(st, []).append((fault.start_s, fault.end_s, DOWN, 1.0))
            else:
                assert fault.every_s is not None and fault.pause_ms is not None
                t = 0.0
                while t < fault.duration_s:
                    end = min(t + fault.pause_ms / 1e3, fault.duration_s)
                    spans.setdefault(st, []).append((fault.start_s + t, fault.start_s + end, 0, 1.0))
                    t += fault.every_s
    out: dict[int, Windows] = {}
    for st, items in spans.items():
        edges = np.unique([x for a, b, _, _ in items for x in (a, b)])
        rows = []
        for a, b in itertools.pairwise(edges):
            cover = [(c, f) for x, y, c, f in items if x <= a and b <= y]
            if not cover:
                continue
            cap = min(c for c, _ in cover)
            factor = 1.0 if cap == DOWN else float(np.prod([f for _, f in cover]))
            if cap < servers[st] or factor != 1.0:
                # one window while a fault of this state runs on across the edge (a crash that
                # ends as another starts is a recovery, as in the DES)
                spans_edge = any(x < a < y and c == cap for x, y, c, _ in items)
                if rows and rows[-1][1] == a and rows[-1][2:] == (cap, factor) and spans_edge:
                    rows[-1] = (rows[-1][0], b, cap, factor)
                else:
                    rows.append((a, b, cap, factor))
        if rows:
            arr = np.array(rows, dtype=np.float64)
            out[st] = Windows(arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int64), arr[:, 3])
    return out
