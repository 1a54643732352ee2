"""A run in flight: the request tables, the jobs waiting at each fleet, and the run's counters.

`pending[fleet]` holds the jobs carried from the last chunk; `incoming[fleet]` the jobs the
stages of this chunk sent there (`new_chunk` empties it). Counters are the ones the DES keeps
under the same names (sim/run_state.py).
"""

from __future__ import annotations

import math
from collections import Counter

import numba as nb
import numpy as np

from sim.arrays.record import FastRecorder
from sim.arrays.station import D_AT, W_AT
from sim.fast.system import System
from sim.fast.tables import (
    ERRORS,
    READ_DTYPE,
    TIMED_EDGES,
    Jobs,
    empty_jobs,
    inbox_dtype,
    new_rows,
    send_dtype,
)

QUEUES = ("gateway", "message_service", "kafka", "consumer", "group_service", "storage")


def failure_causes(codes: np.ndarray) -> np.ndarray:
    """cause() of each failure code (start < 0) of sim/arrays/station.py."""
    return (-codes).astype(np.int64) - 1


class Flight:
    """The state of one run of a System (the DES's RunState counters, in the making)."""

    def __init__(self, system: System, drain: bool) -> None:
        sc = system.scenario
        D = sc.duration_s
        W = sc.warmup_s
        self.horizon = math.inf if drain else D
        system.stations.glob[W_AT], system.stations.glob[D_AT] = W, self.horizon
        self.rec = FastRecorder(W, self.horizon, D)
        self.sends = new_rows(send_dtype(system.rf), 0)
        self.reads = new_rows(READ_DTYPE, 0)
        self.inbox = new_rows(inbox_dtype(system.rf), 0)
        self.pending: dict[str, Jobs] = {f: empty_jobs() for f in QUEUES}
        self.incoming: dict[str, list[Jobs]] = {f: [] for f in QUEUES}
        self.async_errors = np.zeros(len(ERRORS), np.int64)  # by error code
        self.timed_out = np.zeros(len(TIMED_EDGES), np.int64)
        self.refilled = nb.typed.Dict.empty(nb.types.int64, nb.types.float64)
        self.client_timeouts = 0
        # as the DES reports them; hints are not replayed and data is not lost (sim/fast/support.py)
        self.cass_faults = dict.fromkeys(
            ("unavailable", "hints_stored", "hints_replayed", "hedged_reads", "lost_writes"), 0
        )
        self.edge_calls: Counter[str] = Counter()  # calls per policy edge, as the DES's Edge.calls
        n_win = self.rec.n_windows + 2
        self.hits = np.zeros(n_win, np.int64)
        self.misses = np.zeros(n_win, np.int64)
        self.rate_limited = 0
        self.gate_jobs = 0  # consumer-gate passes are bookkeeping, not station visits
        self.slices = {"kafka": 0, "storage": 0}
        self.rr = {"gateway": 0, "message_service": 0}  # the round-robin rotations' positions

    def new_chunk(self) -> None:
        self.incoming = {f: [] for f in self.pending}
