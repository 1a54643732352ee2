"""The fast engine's tables: requests in flight (one row each) and jobs waiting for a station.

Rows hold what a request carries and the state of its joins (replica replies, the steps its ack
waits for, the inbox writes of its delivery). Jobs are station visits: arrival time, station,
the row they belong to, a slot (replica number), a stage code, the service time and a lower
bound of the earliest arrival they can cause back at an already-processed fleet (used to order
work inside the Redis-Cassandra and Kafka cycles). Rows live while any of their jobs is pending
and are compacted away at the end of each chunk, so memory follows the requests in flight.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba as nb
import numpy as np

# stage codes: which station visit a job is
GW_SEND, GW_READ, MS_SEND, MS_READ, CW, RS, KL, KF, GATE, GROUP, CI, RG, CR, FILL = range(14)
SEND_STAGES = (GW_SEND, MS_SEND, CW, RS, KL, KF, GATE, GROUP)
READ_STAGES = (GW_READ, MS_READ, RG, CR, FILL)

# step and request states
NONE, PENDING, OK, FAILED = 0, 1, 2, 3

# error causes, as the DES names them: "<component>.<cause>"; a station's failure code (start < 0,
# sim/arrays/station.py) -1/-2/-3 is the cause rejected/unavailable/crashed; a policy's timeout is
# "<callee>.timeout", the client's own "timeout"
COMPONENTS = ("gateway", "message_service", "cassandra", "redis", "kafka", "group_service")
CAUSES = ("rejected", "unavailable", "crashed", "timeout")
ERRORS = (
    "",
    "gateway.rate_limited",
    *(f"{component}.{cause}" for component in COMPONENTS for cause in CAUSES),
    "redis.miss_without_cassandra",
    "timeout",
    "redis.fill_rejected",
    "redis.fill_unavailable",
    "redis.fill_crashed",
)
E_NONE, E_RATE = 0, 1
# each component's first code (".rejected"); add cause(start) or TIMEOUT
E_GW, E_MS, E_CASS, E_REDIS, E_KAFKA, E_GROUP = (2 + len(CAUSES) * i for i in range(len(COMPONENTS)))
TIMEOUT = CAUSES.index("timeout")
E_MISS = ERRORS.index("redis.miss_without_cassandra")
E_TIMEOUT = ERRORS.index("timeout")
E_FILL = ERRORS.index("redis.fill_rejected")

# the policies' edges whose timeouts the kernels apply (their `timed_out` counters, by index)
TIMED_EDGES = (
    "message_service->cassandra",
    "message_service->redis",
    "group_service->cassandra",
    "message_service->kafka",
)
T_CASS, T_REDIS, T_INBOX, T_KAFKA = range(len(TIMED_EDGES))


# Rows are C-aligned structs: numpy reads and writes a field of unaligned (packed) rows element by
# element, 3-8x slower.


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
            ("slot", "i4"),  # the sender's member slot; the recipients are the other members
            ("part", "i4"),
            ("shard", "i4"),
            ("pos", "i4"),
            ("gw_end", "f8"),
            ("ms_end", "f8"),
            ("store", "f8"),
            ("cw_left", "i2"),
            ("cw_ok", "f8", (rf,)),
            ("cw_rej", "f8", (rf,)),
            ("cw_why", "i1", (rf,)),  # cause of each rejection (sim/arrays/station.py cause())
            ("cw_st", "i1"),
            ("cw_t", "f8"),
            ("cw_err", "i1"),  # error code of a failed step
            ("rs_st", "i1"),
            ("rs_t", "f8"),
            ("rs_err", "i1"),
            ("ka_st", "i1"),
            ("ka_t", "f8"),
            ("ka_err", "i1"),
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
            ("in_err", "i1"),  # error code of the earliest failed inbox write
            ("d_fin", "f8"),
            ("d_err", "i1"),
            ("st", "i1"),
            ("fin", "f8"),
            ("err", "i1"),
            ("last", "i1"),
            ("out", "i4"),
            ("rec", "i1"),
        ],
        align=True,
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
        ("cr_at", "f8"),  # when the Cassandra read was sent
        ("cr_left", "i2"),
        ("cr_max", "f8"),
        ("cr_fail", "f8"),
        ("cr_why", "i1"),  # cause of the earliest failed replica read
        ("st", "i1"),
        ("fin", "f8"),
        ("err", "i1"),
        ("out", "i4"),
        ("rec", "i1"),
    ],
    align=True,
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
            ("why", "i1", (rf,)),
        ],
        align=True,
    )


# Whole rows are moved as raw bytes: numpy copies structured rows field by field, 3-10x slower.


def _raw(dtype: np.dtype) -> np.dtype:
    return np.dtype((np.void, dtype.itemsize))


@functools.cache
def _blank(dtype: np.dtype) -> np.void:
    """A row with every time NaN (not happened) and every state NONE, as raw bytes."""
    row = np.zeros(1, dtype=dtype)
    for name in dtype.names or ():
        if dtype[name].base == np.float64 and name != "t0":
            row[name] = math.nan
    return row.view(_raw(dtype))[0]


def new_rows(dtype: np.dtype, n: int) -> np.ndarray:
    """Rows with every time NaN (not happened) and every state NONE."""
    rows = np.empty(n, _raw(dtype))
    rows[:] = _blank(dtype)
    return rows.view(dtype)


def add_rows(table: np.ndarray, n: int) -> np.ndarray:
    """`table` followed by n new rows (as `new_rows`)."""
    raw = _raw(table.dtype)
    out = np.empty(table.size + n, raw)
    out[: table.size] = table.view(raw)
    out[table.size :] = _blank(table.dtype)
    return out.view(table.dtype)


def keep_rows(table: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows of `table` where `keep` is true."""
    return table.view(_raw(table.dtype))[keep].view(table.dtype)


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
    index = np.flatnonzero(mask)  # once, rather than a boolean pass per field
    return Jobs(*(x[index] for x in jobs))


# the table each stage's rows are in: 0 sends, 1 reads, 2 inbox (-1: none)
_TABLE_OF_STAGE = np.full(1 + max(*SEND_STAGES, *READ_STAGES, CI), -1, np.int64)
_TABLE_OF_STAGE[list(SEND_STAGES)] = 0
_TABLE_OF_STAGE[list(READ_STAGES)] = 1
_TABLE_OF_STAGE[CI] = 2


def remap_jobs(jobs: Jobs, send_map: np.ndarray, read_map: np.ndarray, inbox_map: np.ndarray) -> Jobs:
    """Row indices after compaction (a map of -1 means the row was dropped: a bug)."""
    row = _remap(jobs.row, jobs.stage, _TABLE_OF_STAGE, send_map, read_map, inbox_map)
    if (row < 0).any():
        raise RuntimeError("a pending job refers to a row that was compacted away")
    return jobs._replace(row=row)


@nb.njit(cache=True)
def _remap(
    row: np.ndarray,
    stage: np.ndarray,
    table_of_stage: np.ndarray,
    send_map: np.ndarray,
    read_map: np.ndarray,
    inbox_map: np.ndarray,
) -> np.ndarray:
    out = row.copy()
    for i in range(row.size):
        table = table_of_stage[stage[i]]
        if table == 0:
            out[i] = send_map[row[i]]
        elif table == 1:
            out[i] = read_map[row[i]]
        elif table == 2:
            out[i] = inbox_map[row[i]]
    return out


@nb.njit(cache=True)
def add_at(field: np.ndarray, rows: np.ndarray, delta: np.int64) -> None:
    """field[rows] += delta for a table's column (numpy's fancy `+=` gathers, adds and scatters)."""
    for i in range(rows.size):
        field[rows[i]] += delta
