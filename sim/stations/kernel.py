"""The station-order engine's compiled passes over one fleet's jobs of a chunk.

`bucket` groups the jobs by station (a counting sort: two sequential passes). `visit` then serves
the stations of a range one after another, each station's jobs in arrival-time order (a stable
sort of its segment, so jobs arriving at the same instant keep their order), with
sim/arrays/station.py's `serve`. Every draw is counter-based (sim/arrays/rng.py) on (station, the
station's visit number), so the numbers do not depend on the chunk length, on how the stations
are split between threads, or on the order stations are visited in. A job's outcome is written
at its sorted position: the next call's arrival (end + the hop, at a station drawn uniformly
from the next component's), or the end of its flow, or its failure.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.rng import sample, uniform
from sim.arrays.station import serve

NEXT, DONE, FAILED = 0, 1, 2  # a job's outcome codes: on to the next call, its flow ended, it failed
DRAWS = 3  # per visit: the service time, the next hop, the next station


@nb.njit(nogil=True, cache=True)
def bucket(st: np.ndarray, first: np.int64, n_st: np.int64) -> tuple[np.ndarray, np.ndarray]:
    """Job indices grouped by station (stations first..first + n_st - 1, each group in job order)
    and the groups' offsets, n_st + 1 of them."""
    off = np.zeros(n_st + 1, np.int64)
    for i in range(st.size):
        off[st[i] - first + 1] += 1
    for s in range(n_st):
        off[s + 1] += off[s]
    pos = off[:-1].copy()
    order = np.empty(st.size, np.int64)
    for i in range(st.size):
        s = st[i] - first
        order[pos[s]] = i
        pos[s] += 1
    return order, off


@nb.njit(nogil=True, cache=True)
def visit(
    t: np.ndarray,
    node: np.ndarray,
    order: np.ndarray,
    off: np.ndarray,
    first: np.int64,
    s_lo: np.int64,
    s_hi: np.int64,
    ints: np.ndarray,
    floats: np.ndarray,
    free: np.ndarray,
    ring: np.ndarray,
    win: np.ndarray,
    waits: np.ndarray,
    wait_stats: np.ndarray,
    glob: np.ndarray,
    counts: np.ndarray,
    svc_params: np.ndarray,
    svc_values: np.ndarray,
    svc_voff: np.ndarray,
    hop_params: np.ndarray,
    hop_values: np.ndarray,
    next_base: np.ndarray,
    next_count: np.ndarray,
    key: np.uint64,
    visits: np.ndarray,
    out_job: np.ndarray,
    out_t: np.ndarray,
    out_node: np.ndarray,
    out_st: np.ndarray,
    out_code: np.ndarray,
) -> None:
    """Serve the jobs of stations first + [s_lo, s_hi), in station order, each station's in time order.

    `node[j]` is job j's call (a row of the tables: its service distribution, the component its flow
    calls next: `next_count` 0 when this is the flow's last call). For the job at sorted position p,
    out_job[p] = j, out_code[p] its outcome and out_t[p] its time: the next call's arrival (NEXT),
    the end of its flow (DONE), or when the caller learns of its failure (FAILED; out_node[p] then
    holds the failure code `serve` returned). `visits[s]` numbers station s's draws."""
    for s in range(s_lo, s_hi):
        a, b = off[s], off[s + 1]
        if b == a:
            continue
        ts = np.empty(b - a)
        for k in range(b - a):
            ts[k] = t[order[a + k]]
        idx = np.argsort(ts, kind="mergesort")
        st = first + s
        for k in range(b - a):
            p = a + k
            j = order[a + idx[k]]
            nd = node[j]
            n = visits[st] * DRAWS
            visits[st] += 1
            v0, v1 = svc_voff[nd], svc_voff[nd + 1]
            svc = sample(svc_params[nd], svc_values[v0:v1], key, st, n)
            a_t = ts[idx[k]]
            start, end = serve(ints, floats, free, ring, win, waits, wait_stats, glob, counts, st, a_t, svc)
            out_job[p] = j
            if start < 0.0:
                out_code[p] = FAILED
                out_t[p] = end
                out_node[p] = np.int64(start)
                continue
            cnt = next_count[nd]
            if cnt == 0:
                out_code[p] = DONE
                out_t[p] = end
                continue
            out_code[p] = NEXT
            out_t[p] = end + sample(hop_params, hop_values, key, st, n + 1)
            out_node[p] = nd + 1
            out_st[p] = next_base[nd] + min(np.int64(uniform(key, st, n + 2) * cnt), cnt - 1)
