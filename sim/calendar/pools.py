"""The calendar kernel's pools, heap, worklist and outputs: preallocated arrays that the engine
(sim/calendar/engine.py) hands to the kernel and grows when it asks, so memory follows the work in
flight, not the run's length."""

from __future__ import annotations

import math

import numpy as np

from sim.calendar import tables as K
from sim.calendar.edges import EDGE_COUNTS, WINDOW_BUCKETS
from sim.calendar.marks import label_table
from sim.calendar.program import (
    A_HINTS,
    A_KBACK,
    A_KLOST,
    A_LOSE,
    C_BASE,
    C_COUNT,
    C_KIND,
    C_PART_OFF,
    C_PARTS,
    C_RF,
    KINDS,
    Program,
)

_INITIAL_ROWS = 1 << 16


def lined_zeros(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """Zeros whose first element starts a 64-byte cache line. numpy's large arrays start 16 bytes
    into their first page, so a frame's 64-byte row spanned two lines and a request's 128-byte row
    three; the loop hints a row before reading it (sim/arrays/prefetch.py), and fetches fewer lines
    when rows sit on line boundaries (the pools' row widths are padded to 64 or 128 bytes for it)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + size].view(dtype).reshape(shape)


class Pools:
    """The kernel's pools, heap, worklist and outputs; `grow` doubles what runs low."""

    def __init__(self, prog: Program, n_windows: int) -> None:
        ns = max(1, len(prog.spaces))
        n = 4 * _INITIAL_ROWS
        self.ht = np.zeros(n)
        self.hp = np.zeros((n, 3), np.int64)  # each pending event's (kind, x, y)
        self.state = np.zeros(K.N_STATE, np.int64)
        self.arr_t = np.zeros(0)  # the chunk's client arrivals, in time order, and their request rows
        self.arr_r = np.zeros(0, np.int64)
        self.rq = lined_zeros((n, K.RQ_COLS), np.int64)
        # t0, started, and the tail breakdown's marks (sim/calendar/marks.py) per label
        # per flow, where each label's seconds go in a request's marks, then the flow table extended
        # with those columns (sim/calendar/marks.py)
        table, self.label_names = label_table(prog.system, prog.comp_names, prog.flows)
        self.mark_columns = max([1, *(len(names) for names in self.label_names)])
        self.flow_i = np.ascontiguousarray(np.hstack([prog.flow_i, table]))
        self.rqf = lined_zeros((n, K.RQF_PART0 + self.mark_columns))
        self.fr = lined_zeros((n, K.FR_COLS), np.int64)
        self.fr_keys = lined_zeros((n, ns), np.int64)
        self.fr_extra = np.zeros(n)
        # when the latency of a record a frame produces starts: its client attempt's start, else its
        # request's t0 (a triggered flow's latency starts at its producer's, as in the DES)
        self.fr_t0 = np.zeros(n)
        self.jn = lined_zeros((n, K.JN_COLS), np.int64)
        self.qu = lined_zeros((n, K.QU_COLS), np.int64)
        self.ko = lined_zeros((n, K.KO_COLS), np.int64)
        self.kof = np.zeros(n)
        self.ec = lined_zeros((n, K.EC_COLS), np.int64)
        self.ecf = np.zeros(n)
        n_edges = prog.edge_params.shape[0]
        self.ex = np.zeros((n_edges, EDGE_COUNTS), np.int64)  # edges' counters and breaker state
        self.ef = np.zeros((n_edges, 3))
        self.bk_tot = np.zeros((n_edges, WINDOW_BUCKETS), np.int64)
        self.bk_bad = np.zeros((n_edges, WINDOW_BUCKETS), np.int64)
        # when each cached key was last refilled: read only after a Redis shard restarts (a crash)
        restarts = any(f.kind in ("crash", "shard_loss", "zone_outage") for f in prog.scenario.faults)
        self.filled_at = np.full(prog.hit_p.size if restarts else 1, -math.inf)
        n_st = prog.stations.ints.shape[0]
        self.hints = np.zeros((n_st, K.HN_COLS), np.int64)  # each node's hints: waiting, stored, replayed
        # sole copies (sim/calendar/cassandra.py), tracked only when a fault may lose data: a row holds
        # up to RF - 1 hints (a write that goes ahead has a live replica)
        self.track = prog.track_lost
        max_rf = max([int(r) for r in prog.comps[prog.comps[:, C_KIND] == KINDS["cassandra"], C_RF]] or [1])
        self.so = np.zeros((n if self.track else 1, K.SO_HINTS + 2 * max(1, max_rf - 1)), np.int64)
        self.holders = np.zeros((n_st, K.H_COLS), np.int64)
        self.holders[:, K.H_HEAD] = self.holders[:, K.H_TAIL] = -1
        self.state[K.S_TRACK] = int(self.track)
        self.state[K.S_MARK_EVERY] = 1  # every request's critical path marked (the engine may thin it)
        self.free = {p: np.arange(n - 1, -1, -1, dtype=np.int64) for p in range(K.N_POOLS)}
        for p in range(K.N_POOLS):
            self.state[K.S_TOP0 + p] = n
        if not self.track:
            self.free[K.P_SOLE] = np.zeros(1, np.int64)
            self.state[K.S_TOP0 + K.P_SOLE] = 1
        # the faults' timed actions (Cassandra nodes, Kafka brokers), in the DES's order (program.py
        # `_fault_actions`)
        acts = prog.fault_actions
        kinds = {A_HINTS: K.EV_HINTS, A_LOSE: K.EV_LOSE, A_KLOST: K.EV_KLOST, A_KBACK: K.EV_KBACK}
        self.fault_t = np.array([a[0] for a in acts], np.float64)
        self.fault_i = np.array([[kinds[a[3]], a[4], a[5]] for a in acts], np.int64).reshape(len(acts), 3)
        self.wl_op = np.zeros(n, np.int64)
        self.wl_f = np.zeros(n, np.int64)
        self.wl_e = np.zeros(n, np.int64)
        m = 1 << 17
        self.out_i = np.zeros((m, 3), np.int64)
        self.out_f = np.zeros((m, 3 + self.mark_columns))  # t0, started, end; a success's seconds per column
        self.start_i = np.zeros(m, np.int64)
        self.start_f = np.zeros((m, 2))
        # each Kafka partition's leader (a station) and the time it has no leader until (inf: no replica
        # was up at its election); its first replica (broker p mod B) leads at the start
        self.k_lead = np.zeros((prog.n_partitions, 2))
        for c in np.flatnonzero(prog.comps[:, C_KIND] == KINDS["kafka"]).tolist():
            off, parts = int(prog.comps[c, C_PART_OFF]), int(prog.comps[c, C_PARTS])
            brokers = int(prog.comps[c, C_COUNT])
            self.k_lead[off:off + parts, 0] = prog.comps[c, C_BASE] + np.arange(parts) % brokers
        self.log_head = np.full(prog.n_partitions, -1, np.int64)
        self.log_tail = np.full(prog.n_partitions, -1, np.int64)
        self.log_len = np.zeros(prog.n_partitions, np.int64)
        self.cons_in = np.zeros(prog.n_consumers, np.int64)
        self.cons_cursor = np.zeros(prog.n_consumers, np.int64)
        self.rl_tokens = np.zeros(prog.rl_size)
        self.rl_updated = np.zeros(prog.rl_size)
        for c, name in enumerate(prog.comp_names):
            off = int(prog.comps[c, 19])  # C_RL_OFF
            if off >= 0:
                size = _bucket_count(prog, name)
                self.rl_tokens[off:off + size] = prog.comp_f[c, 1]
        self.async_err = np.zeros(len(prog.causes), np.int64)
        nw = n_windows + 1
        self.win_hits = np.zeros(nw, np.int64)
        self.win_misses = np.zeros(nw, np.int64)
        self.win_lag = np.zeros(nw)
        self.win_commit = np.zeros(nw, np.int64)
        self.win_take = np.zeros(nw, np.int64)
        self.lag_max = np.zeros(1)

    def _grow_rows(self, name: str, extra: int) -> None:
        arr = getattr(self, name)
        grown = lined_zeros((arr.shape[0] + extra, *arr.shape[1:]), arr.dtype)
        grown[:arr.shape[0]] = arr
        setattr(self, name, grown)

    def grow(self) -> None:
        st = self.state
        want = int(st[K.S_GROW])  # a fan-out's members waiting for frames
        st[K.S_GROW] = 0
        while self.ht.size - st[K.S_HEAP_N] < max(self.ht.size // 2, 4 * want + 4 * K.MARGIN):
            n = self.ht.size
            for name in ("ht", "hp"):
                self._grow_rows(name, n)
        tables = {K.P_REQ: ("rq", "rqf"),
                  K.P_FRAME: ("fr", "fr_keys", "fr_extra", "fr_t0", "wl_op", "wl_f", "wl_e"),
                  K.P_JOIN: ("jn",), K.P_QUORUM: ("qu",), K.P_KOP: ("ko", "kof"), K.P_EC: ("ec", "ecf")}
        if self.track:
            tables[K.P_SOLE] = ("so",)
        for p, names in tables.items():
            need = want + 4 * K.MARGIN if p == K.P_FRAME else 4 * K.MARGIN
            while True:
                cap = getattr(self, names[0]).shape[0]
                top = int(st[K.S_TOP0 + p])
                if top >= max(need, cap // 4):
                    break
                for name in names:
                    self._grow_rows(name, cap)
                grown = np.empty(2 * cap, np.int64)
                grown[:top] = self.free[p][:top]
                grown[top:top + cap] = np.arange(2 * cap - 1, cap - 1, -1)
                self.free[p] = grown
                st[K.S_TOP0 + p] = top + cap

    def in_use(self) -> int:
        return sum(getattr(self, t).shape[0] - int(self.state[K.S_TOP0 + p])
                   for p, t in ((K.P_REQ, "rq"), (K.P_FRAME, "fr")))


def _bucket_count(prog: Program, comp: str) -> int:
    from sim.calendar.program import _spaces_calling

    spaces = _spaces_calling(prog.system, comp)
    return max(int(prog.space_i[prog.spaces.index(s), 0]) for s in spaces) if spaces else 1



def live_requests(pools: Pools) -> np.ndarray:
    """Rows of requests started and not ended (in flight, or waiting in a Kafka log)."""
    cap = pools.rq.shape[0]
    used = np.ones(cap, bool)
    top = int(pools.state[K.S_TOP0 + K.P_REQ])
    used[pools.free[K.P_REQ][:top]] = False
    rows = np.flatnonzero(used)
    return rows[pools.rq[rows, K.RQ_DONE] == 0]


def force_grow(pools: Pools, need: int) -> None:
    st = pools.state
    cap = pools.rq.shape[0]
    top = int(st[K.S_TOP0 + K.P_REQ])
    if top < need + K.MARGIN:
        extra = max(cap, need + K.MARGIN)
        pools._grow_rows("rq", extra)
        pools._grow_rows("rqf", extra)
        grown = np.empty(cap + extra, np.int64)
        grown[:top] = pools.free[K.P_REQ][:top]
        grown[top:top + extra] = np.arange(cap + extra - 1, cap - 1, -1)
        pools.free[K.P_REQ] = grown
        st[K.S_TOP0 + K.P_REQ] = top + extra
