"""The fast engine's tables: requests in flight (one row each) and jobs waiting for a station.

Rows hold what a request carries and the state of its joins (replica replies, the steps its ack
waits for, the inbox writes of its delivery). Jobs are station visits: arrival time, station,
the row they belong to, a slot (replica number), a stage code, the service time and a lower
bound of the earliest arrival they can cause back at an already-processed fleet (used to order
work inside the Redis-Cassandra and Kafka cycles). Rows live while any of their jobs is pending
and are compacted away at the end of each chunk, so memory follows the requests in flight.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# stage codes: which station visit a job is
GW_SEND, GW_READ, MS_SEND, MS_READ, CW, RS, KL, KF, GATE, GROUP, CI, RG, CR, FILL = range(14)
SEND_STAGES = (GW_SEND, MS_SEND, CW, RS, KL, KF, GATE, GROUP)
READ_STAGES = (GW_READ, MS_READ, RG, CR, FILL)

# step and request states
NONE, PENDING, OK, FAILED = 0, 1, 2, 3

# error causes, as the DES names them
ERRORS = (
    "",
    "gateway.rate_limited",
    "gateway.rejected",
    "message_service.rejected",
    "cassandra.rejected",
    "redis.rejected",
    "kafka.rejected",
    "group_service.rejected",
    "redis.miss_without_cassandra",
)
E_NONE, E_RATE, E_GW, E_MS, E_CASS, E_REDIS, E_KAFKA, E_GROUP, E_MISS = range(9)
# errors of steps nobody waits for (summary "async_errors")
ASYNC = ("cassandra.rejected", "redis.rejected", "kafka.rejected", "redis.fill_rejected")
A_CASS, A_REDIS, A_KAFKA, A_FILL = range(4)


def replica_slots(rf: int) -> int:
    """Room for replica replies in a row: at least 3, so that RF 1..3 share one row layout (numba
    compiles the kernels once per layout)."""
    return max(3, rf)


def send_dtype(rf: int) -> np.dtype:
    rf = replica_slots(rf)
    return np.dtype(
        [
            ("gid", "i8"),
            ("t0", "f8"),
            ("user", "i8"),
            ("conv", "i8"),
            ("recips", "i4"),
            ("part", "i4"),
            ("shard", "i4"),
            ("pos", "i4"),
            ("gw_end", "f8"),
            ("ms_end", "f8"),
            ("store", "f8"),
            ("cw_left", "i2"),
            ("cw_ok", "f8", (rf,)),
            ("cw_rej", "f8", (rf,)),
            ("cw_st", "i1"),
            ("cw_t", "f8"),
            ("rs_st", "i1"),
            ("rs_t", "f8"),
            ("ka_st", "i1"),
            ("ka_t", "f8"),
            ("k_left", "i2"),
            ("k_max", "f8"),
            ("k_fail", "f8"),
            ("commit", "f8"),
            ("d_st", "i1"),
            ("take", "f8"),
            ("g_end", "f8"),
            ("in_left", "i4"),
            ("in_max", "f8"),
            ("in_fail", "f8"),
            ("d_fin", "f8"),
            ("d_err", "i1"),
            ("st", "i1"),
            ("fin", "f8"),
            ("err", "i1"),
            ("last", "i1"),
            ("out", "i4"),
            ("rec", "i1"),
        ]
    )


READ_DTYPE = np.dtype(
    [
        ("gid", "i8"),
        ("t0", "f8"),
        ("user", "i8"),
        ("conv", "i8"),
        ("hitp", "f8"),
        ("shard", "i4"),
        ("pos", "i4"),
        ("off", "i2"),
        ("gw_end", "f8"),
        ("ms_end", "f8"),
        ("rg_end", "f8"),
        ("cr_left", "i2"),
        ("cr_max", "f8"),
        ("cr_fail", "f8"),
        ("st", "i1"),
        ("fin", "f8"),
        ("err", "i1"),
        ("out", "i4"),
        ("rec", "i1"),
    ]
)


def inbox_dtype(rf: int) -> np.dtype:
    rf = replica_slots(rf)
    return np.dtype(
        [
            ("parent", "i8"),
            ("gid", "i8"),
            ("r", "i4"),
            ("left", "i2"),
            ("ok", "f8", (rf,)),
            ("rej", "f8", (rf,)),
        ]
    )


def new_rows(dtype: np.dtype, n: int) -> np.ndarray:
    """Rows with every time NaN (not happened) and every state NONE."""
    rows = np.zeros(n, dtype=dtype)
    for name in dtype.names or ():
        if dtype[name].base == np.float64 and name != "t0":
            rows[name] = math.nan
    return rows


class Jobs(NamedTuple):
    t: np.ndarray  # arrival at the station (s)
    st: np.ndarray  # station index
    row: np.ndarray  # row in the stage's table
    slot: np.ndarray  # replica number (or 0)
    stage: np.ndarray  # stage code
    svc: np.ndarray  # service time (s), before any capacity-window factor
    lb: np.ndarray  # lower bound of the earliest arrival this job can cause in its own cycle (inf: none)

    @property
    def n(self) -> int:
        return int(self.t.size)


def empty_jobs(n: int = 0) -> Jobs:
    return Jobs(
        np.empty(n),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n),
        np.empty(n),
    )


def make_jobs(
    t: np.ndarray,
    st: np.ndarray,
    row: np.ndarray,
    stage: int,
    svc: np.ndarray,
    slot: np.ndarray | int = 0,
    lb: np.ndarray | float = math.inf,
) -> Jobs:
    n = t.size
    return Jobs(
        np.asarray(t, np.float64),
        np.asarray(st, np.int64),
        np.asarray(row, np.int64),
        np.broadcast_to(np.asarray(slot, np.int64), (n,)).copy(),
        np.full(n, stage, np.int64),
        np.asarray(svc, np.float64),
        np.broadcast_to(np.asarray(lb, np.float64), (n,)).copy(),
    )


def concat_jobs(parts: list[Jobs]) -> tuple[Jobs, np.ndarray]:
    """One job list from several, and each job's part number (for sim/fast/order.py)."""
    parts = [p for p in parts if p.n]
    if not parts:
        return empty_jobs(), np.empty(0, np.int64)
    jobs = Jobs(*(np.concatenate([getattr(p, f) for p in parts]) for f in Jobs._fields))
    part = np.repeat(np.arange(len(parts), dtype=np.int64), [p.n for p in parts])
    return jobs, part


def take_jobs(jobs: Jobs, mask: np.ndarray) -> Jobs:
    return Jobs(*(x[mask] for x in jobs))


def remap_jobs(jobs: Jobs, send_map: np.ndarray, read_map: np.ndarray, inbox_map: np.ndarray) -> Jobs:
    """Row indices after compaction (a map of -1 means the row was dropped: a bug)."""
    row = jobs.row.copy()
    stage = jobs.stage
    is_send = np.isin(stage, SEND_STAGES)
    is_read = np.isin(stage, READ_STAGES)
    is_inbox = stage == CI
    row[is_send] = send_map[row[is_send]]
    row[is_read] = read_map[row[is_read]]
    row[is_inbox] = inbox_map[row[is_inbox]]
    if (row < 0).any():
        raise RuntimeError("a pending job refers to a row that was compacted away")
    return jobs._replace(row=row)
