"""One pass of a feed-forward fleet: every job arriving before the chunk's end, station by station.

A fleet none of whose jobs can cause another arrival at the same fleet (gateway, message service,
the consumers' gates, the group service) is processed for a whole chunk at once: its jobs are put
in (station, time) order and each station runs the recursion over its arrivals before `t_end`.
Jobs arriving at or after `t_end` are left for the next chunk: no job of a later chunk can arrive
before `t_end`, so each station sees its arrivals in time order across chunk borders and the
result does not depend on the chunk length. `serve_fleet` does that for a fleet's carried and
incoming jobs of a run in flight.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.station import SERVED, Stations, serve
from sim.fast.flight import Flight
from sim.fast.order import order_jobs
from sim.fast.tables import Jobs, concat_jobs, take_jobs


@nb.njit(cache=True)
def serve_jobs(
    S: Stations, t: np.ndarray, st: np.ndarray, svc: np.ndarray, part: np.ndarray, t_end: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, done) per job, done False if t >= t_end; a failed job has start < 0 (its code,
    sim/arrays/station.py) and end = the time the caller learns of it."""
    ints, floats, free, ring, win, waits, wait_stats, glob, counts = S
    n_stations = ints.shape[0]
    perm, off = order_jobs(st, t, part, n_stations)
    # gather into station order once (independent loads overlap), serve sequentially, scatter back
    ts = t[perm]
    svcs = svc[perm]
    s_start = np.full(t.size, np.nan)
    s_end = np.full(t.size, np.nan)
    served = 0
    for s in range(n_stations):
        for i in range(off[s], off[s + 1]):
            if ts[i] >= t_end:
                break
            s_start[i], s_end[i] = serve(
                ints, floats, free, ring, win, waits, wait_stats, glob, counts, s, ts[i], svcs[i]
            )
            served += 1
    counts[SERVED] += served
    start = np.empty(t.size)
    end = np.empty(t.size)
    start[perm] = s_start
    end[perm] = s_end
    done = ~np.isnan(end)
    return start, end, done


def serve_fleet(
    S: Stations, flight: Flight, fleet: str, t1c: float
) -> tuple[Jobs, np.ndarray, np.ndarray, np.ndarray]:
    """Serve a fleet's carried and incoming jobs arriving before t1c: (jobs, start, end, done);
    the jobs not done are carried to the next chunk."""
    jobs, part = concat_jobs([flight.pending[fleet], *flight.incoming[fleet]])
    if not jobs.n:
        flight.pending[fleet] = jobs
        return jobs, np.zeros(0), np.zeros(0), np.zeros(0, bool)
    start, end, done = serve_jobs(S, jobs.t, jobs.st, jobs.svc, part, t1c)
    flight.pending[fleet] = take_jobs(jobs, ~done)
    return jobs, start, end, done
