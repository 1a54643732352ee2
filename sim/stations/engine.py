"""The station-order engine: a feed-forward design, every request, component by component in chunks
of simulated time.

A chunk [T0, T1) starts the client requests that arrive in it, then runs the components in one
order every flow follows (sim/stations/program.py). Before a component's turn, the joins whose
components have all had theirs are settled from their answers (kernel.resolve); then the component
takes every job that arrives at it before T1, groups them by station and serves each station's in
time order (kernel.visit, on two threads at the job count's midpoint), and the requests move on
(kernel.after): to later components' queues, to joins, or to their end. Jobs arriving at T1 or
later wait for the next chunk. That is exact: a job that reaches a component before T1 left the
components before it before T1, so it is among the jobs they served this chunk or earlier, and a
join settled before T1 has heard every answer before its time.

One loop is run: a cache fill, whose set goes back to the cache after the miss branch. The
components from the cache to the miss branch's last take their turns in slices of LOOP_SLICE_S,
each slice ending with the joins they answered settled, so a fill reaches the cache in a later
slice; one made and due within its lookup's slice is served in the next behind the lookups that
arrived after it (an approximation: sim/stations/program.py states its bound; auto prefers an exact
engine for it).

Requests are recorded in bulk as they end (sim/arrays/record.py), with the tail breakdown (which
component a slow request's time went to) from a systematic sample of them: up to MARKED_PER_SEC a
simulated second, every k-th of each flow in the order they start, each with a mark row that its
path's steps write their end times to by the DES's critical-path rule (kernel._mark). summary.json's
`events` counts station visits.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sim.arrays import compiled
from sim.arrays.load import Load
from sim.arrays.placement import Popularity, TokenBuckets
from sim.arrays.record import FastRecorder, Marks, fleet_views
from sim.arrays.rng import purpose_key
from sim.arrays.station import (
    D_AT,
    LAST_EVENT,
    SERVERS,
    SERVICE_S,
    UNAVAILABLE,
    W_AT,
    Stations,
    build_stations,
)
from sim.arrays.tails import TailSums
from sim.arrays.windows import fault_windows
from sim.run_state import OnWindow, Progress, RunState
from sim.sampling import make_cell
from sim.scenario import Scenario
from sim.stations import kernel as K
from sim.stations.program import (
    ASK,
    BRANCH0,
    CASSANDRA,
    COMP,
    FANOUT,
    FLOW,
    KIND,
    LOOP_SLICE_S,
    MISS,
    NEED,
    NEXT,
    PARALLEL,
    ROBIN,
    ROUTE,
    Program,
    build,
)
from sim.stations.support import fleet_order, unsupported
from sim.streams import named_rng
from sim.system.compile import system_of
from sim.system.keys import cell_cdf

ARRIVALS_PER_CHUNK = 20_000  # client requests per chunk: bounds the job arrays and the joins open
THREADS = 2  # the stations of a component are split between this many threads
# Client requests a simulated second whose paths are marked for the tail breakdown, at most: beyond it
# every k-th of a flow is (k its rate over this, rounded up). Marking every request of bench/'s 1M/s
# chain and write path cost 40-70% of their runs (the marks' rows and their sums); one in ten, ~4%.
# The breakdown is a systematic sample (in the order requests start: independent of their latency).
MARKED_PER_SEC = 100_000


def kernels_cached() -> bool | None:
    """Whether the kernels are compiled already, in this process or in numba's cache (None: this numba
    keeps its cache where we cannot look). `after`, the largest, stands for them all."""
    return compiled(K.after)


class _Queue:
    """Jobs waiting to arrive at one component, float and int columns (kernel.J_*), in the pieces
    they came in; `take` joins them."""

    def __init__(self, in_slices: bool = False) -> None:
        self.pieces: list[tuple[np.ndarray, np.ndarray]] = []
        # a loop's component takes its turns in slices: its pieces are kept sorted by arrival (stably:
        # jobs arriving at once stay in the order made), so a slice takes their prefixes and leaves the
        # rest in place instead of copying a chunk's jobs at every slice
        self.in_slices = in_slices

    def add(self, f: np.ndarray, i: np.ndarray) -> None:
        if f.shape[0]:
            self.pieces.append(_by_arrival(f, i) if self.in_slices else (f, i))

    def take(self, before: float, first: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The jobs arriving before `before`, removed, grouped by station, and the groups' offsets."""
        cut = [int(np.searchsorted(f[:, K.J_T], before)) for f, _ in self.pieces] if self.in_slices else [1]
        if not self.pieces or not any(cut):
            return np.empty((0, 2)), np.empty((0, K.J_INTS), np.int64), np.zeros(count + 1, np.int64)
        if self.in_slices:
            qf = np.concatenate([f[:k] for (f, _), k in zip(self.pieces, cut, strict=True)])
            qi = np.concatenate([i[:k] for (_, i), k in zip(self.pieces, cut, strict=True)])
            self.pieces = [(f[k:], i[k:]) for (f, i), k in zip(self.pieces, cut, strict=True)
                           if k < f.shape[0]]
            jf, ji, off, _, _ = K.take(qf, qi, before, np.int64(first), np.int64(count))
            return jf, ji, off
        qf, qi = self.columns()
        jf, ji, off, rf, ri = K.take(qf, qi, before, np.int64(first), np.int64(count))
        self.pieces = [(rf, ri)] if rf.shape[0] else []
        return jf, ji, off

    def __len__(self) -> int:
        return sum(f.shape[0] for f, _ in self.pieces)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Every job waiting, in queue order (joined into one piece, which later changes reach)."""
        if not self.pieces:
            return np.empty((0, 2)), np.empty((0, K.J_INTS), np.int64)
        if len(self.pieces) > 1:
            f, i = (np.concatenate([f for f, _ in self.pieces]), np.concatenate([i for _, i in self.pieces]))
            self.pieces = [_by_arrival(f, i) if self.in_slices else (f, i)]
        return self.pieces[0]


def _by_arrival(f: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jobs sorted by arrival, stably."""
    t = f[:, K.J_T]
    if t.size < 2 or bool(np.all(t[1:] >= t[:-1])):
        return f, i
    order = np.argsort(t, kind="stable")
    return f[order], i[order]


def _emissions(prog: Program) -> tuple[np.ndarray, np.ndarray, int]:
    """Per node, the most jobs and joins the `advance` after its job can make (the next steps; a
    lookup's miss branch too; a join node's: from where its join continues), and the most answers a
    join waits for: what the buffers and join rows must have room for."""
    nodes, branches = prog.nodes, prog.branches

    def walk(x: int) -> tuple[int, int]:
        if x < 0:
            return 0, 0
        kind = nodes[x, KIND]
        if kind == CASSANDRA:
            return int(nodes[x, ASK]), 1
        if kind == FANOUT:  # its members' branches, or (no member) the sequence going on
            j, q = walk(int(nodes[x, BRANCH0]))
            after = walk(int(nodes[x, NEXT]))
            members = int(nodes[x, ASK])
            return max(members * j, after[0]), max(1 + members * q, after[1])
        if kind != PARALLEL:
            return 1, 0
        jobs, joins = 0, 1
        for b in range(int(nodes[x, ASK])):
            j, q = walk(int(branches[nodes[x, BRANCH0] + b, 0]))
            jobs, joins = jobs + j, joins + q
        if nodes[x, NEED] == 0:
            j, q = walk(int(nodes[x, NEXT]))
            jobs, joins = jobs + j, joins + q
        return jobs, joins

    n = nodes.shape[0]
    jobs, joins = np.zeros(n + 1, np.int64), np.zeros(n + 1, np.int64)  # row n: a request's first step
    for x in range(n):
        after = [walk(int(nodes[x, NEXT]))] + ([walk(int(nodes[x, MISS]))] if nodes[x, MISS] >= 0 else [])
        jobs[x], joins[x] = max(a[0] for a in after), max(a[1] for a in after)
    firsts = [walk(f) for f in prog.first_node]
    jobs[n], joins[n] = max(f[0] for f in firsts), max(f[1] for f in firsts)
    waits = [int(nodes[x, ASK]) for x in range(n) if nodes[x, KIND] in (CASSANDRA, PARALLEL, FANOUT)]
    return jobs, joins, max(waits, default=1)


def _grown(a: np.ndarray, rows: int, keep: bool = False) -> np.ndarray:
    """`a`, or a new array of at least `rows` rows (doubling) with `a`'s rows if `keep`."""
    if a.shape[0] >= rows:
        return a
    out = np.empty((max(rows, 2 * a.shape[0]), *a.shape[1:]), a.dtype)
    if keep:
        out[:a.shape[0]] = a
    return out


class _Work:
    """The kernels' output buffers and join rows, grown (doubling) before each call to what it may
    need. A join row holds its answers (time, error) as they come."""

    def __init__(self, prog: Program) -> None:
        self.jobs, self.joins, slots = _emissions(prog)
        self.n_nodes = prog.nodes.shape[0]
        self.out_f = np.empty((0, 2))
        self.out_i = np.empty((0, K.J_INTS), np.int64)
        self.out_c = np.empty(0, np.int64)
        self.fin_i = np.empty((0, K.FIN_INTS), np.int64)
        self.fin_f = np.empty((0, 2))
        self.marks = max([1, *(len(labels) for labels in prog.mark_labels)])  # a mark row's columns
        self.fin_m = np.empty((0, self.marks))
        self.mk_rid = np.empty(0, np.int64)
        self.mk_t = np.empty((0, self.marks))
        self.mk_j = np.empty((0, self.marks), np.int64)
        self.mk_free = np.empty(0, np.int64)
        self.jq = np.zeros((0, K.Q_INTS), np.int64)
        self.jt = np.zeros(0)
        self.js_t = np.zeros((0, slots))
        self.js_e = np.zeros((0, slots), np.int64)
        self.touched = np.zeros(0, np.int64)
        self.free_rows = np.zeros(0, np.int64)
        self.cnt = np.zeros(K.N_COUNTERS, np.int64)
        self.cont_f = np.empty((0, 2))
        self.cont_i = np.empty((0, K.K_INTS), np.int64)
        self.async_err = np.zeros(len(prog.causes), np.int64)
        # the paths one advance may have pending (each row: node, join, error, path, key, fresh/marks):
        # on one path down a request's tree, each parallel's or fan-out's other branches at most
        branching = prog.nodes[np.isin(prog.nodes[:, KIND], (PARALLEL, FANOUT)), ASK]
        self.stack = np.zeros((1 + int(branching.sum()), 6), np.int64)

    def ready_for(self, nodes: np.ndarray) -> None:
        """Room for the advances after jobs at these nodes (n_nodes: a request's first step): their
        jobs, ended requests and new joins."""
        counts = np.bincount(nodes, minlength=self.n_nodes + 1)
        jobs, joins, n = int(counts @ self.jobs), int(counts @ self.joins), nodes.size
        self.out_f, self.out_i, self.out_c = (_grown(self.out_f, jobs), _grown(self.out_i, jobs),
                                              _grown(self.out_c, jobs))
        self.fin_i, self.fin_f = _grown(self.fin_i, n), _grown(self.fin_f, n)
        self.fin_m = _grown(self.fin_m, n)
        self.cont_f, self.cont_i = _grown(self.cont_f, n), _grown(self.cont_i, n)
        top = int(self.cnt[K.C_FREE])
        if joins > top:
            rows = self.jq.shape[0]
            self.jq, self.jt = _grown(self.jq, rows + joins, True), _grown(self.jt, rows + joins, True)
            self.js_t = _grown(self.js_t, self.jq.shape[0], True)
            self.js_e = _grown(self.js_e, self.jq.shape[0], True)
            # (resolve's scan leaves the slots of joins it took until it ends, and lists the joins they
            # answer after them: at most one each, so twice the rows hold every listing)
            self.touched = _grown(self.touched, 2 * self.jq.shape[0], True)
            grow = self.jq.shape[0] - rows
            free = np.empty(self.jq.shape[0], np.int64)
            free[:top] = self.free_rows[:top]
            free[top:top + grow] = np.arange(self.jq.shape[0] - 1, rows - 1, -1)
            self.free_rows = free
            self.cnt[K.C_FREE] = top + grow

    def marks_for(self, n: int) -> None:
        """Room for n more marked requests: free mark rows (doubling)."""
        top = int(self.cnt[K.C_MFREE])
        if n <= top:
            return
        rows = self.mk_rid.shape[0]
        self.mk_rid = _grown(self.mk_rid, rows + n - top, True)
        size = self.mk_rid.shape[0]
        self.mk_t, self.mk_j = _grown(self.mk_t, size, True), _grown(self.mk_j, size, True)
        grow = size - rows
        self.mk_rid[rows:] = -1
        free = np.empty(self.mk_rid.shape[0], np.int64)
        free[:top] = self.mk_free[:top]
        free[top:top + grow] = np.arange(self.mk_rid.shape[0] - 1, rows - 1, -1)
        self.mk_free = free
        self.cnt[K.C_MFREE] = top + grow

    def in_use(self) -> np.ndarray:
        """Which join rows are taken."""
        used = np.ones(self.jq.shape[0], np.bool_)
        used[self.free_rows[:int(self.cnt[K.C_FREE])]] = False
        return used

    def shared(self) -> tuple[np.ndarray, ...]:
        return (self.out_f, self.out_i, self.out_c, self.jq, self.jt, self.free_rows, self.js_t, self.js_e,
                self.touched, self.fin_i, self.fin_f, self.async_err, self.cnt, self.stack, self.fin_m,
                self.mk_rid, self.mk_t, self.mk_j, self.mk_free)


class StationsEngine:
    """Build once from a design scenario; `run()` simulates it and returns the neutral RunState."""

    def __init__(self, scenario: Scenario, progress: Progress | None = None,
                 on_window: OnWindow | None = None) -> None:
        problems = unsupported(scenario)
        if problems:
            raise problems[0]
        self.scenario = scenario
        self.progress = progress
        self.on_window = on_window
        self.system = system_of(scenario)
        self.cell = make_cell(scenario)
        order = fleet_order(self.system)
        assert order is not None  # unsupported() refused a cycle
        self.prog = build(scenario, self.system, order)
        self.stations: Stations  # built by each run (with its faults' capacity windows)
        # the gateways and services a crash takes instances of: a call goes to an instance up when it is
        # made (a Redis call goes to its key's shard, up or not)
        self.crashable = {order.index(f.component) for f in scenario.faults if f.kind == "crash"
                          and f.component in order
                          and self.system.components[f.component].kind in ("gateway", "service")}
        self.load = Load(scenario)  # load spikes: the arrival rate's factor over time
        self.node_flow = self.prog.nodes[:, FLOW].copy()
        # the round-robin components, and each one's next turn in its rotation
        self.robin = set(self.prog.nodes[self.prog.nodes[:, ROUTE] == ROBIN, COMP].tolist())
        self.turn = np.zeros(len(order), np.int64)
        # the rate-limited ones (prog.limits): each key's token bucket (full at the start: set by run);
        # and per component, the time before which every call to it was taken in order
        self.buckets: dict[int, TokenBuckets] = {}
        self.made_until = np.zeros(len(order))
        self.rate_limited = 0
        # a client's timeout (support.py: the one policy run here): the client edge of each flow (the
        # DES's: client -> its first step's component) and its deadline after the request starts;
        # a request answered after it fails at it, as `timeout` (the system still does its work)
        self.client_edge: list[str | None] = []
        for name in self.prog.flows:
            first = next((s for s in self.system.flows[name].steps if hasattr(s, "component")), None)
            edge = f"client->{first.component}" if first is not None else None
            self.client_edge.append(edge if edge in scenario.policies else None)
        self.deadline_s = np.array([scenario.policies[e].timeout_ms / 1e3 if e else math.inf
                                    for e in self.client_edge])
        self.causes = [*self.prog.causes, "timeout"]
        self.timeouts: Counter[str] = Counter()
        self.drawn: list[int] = []
        self.key = purpose_key(scenario.seed, 12_000_001)  # every draw of the run
        # the tail breakdown: per flow, its marked share (1 in `every`) and each mark column's label
        self.every = [max(1, math.ceil((self.system.flows[f].rate_per_sec or 0.0) / MARKED_PER_SEC))
                      for f in self.prog.flows]
        self.labels = [list(dict.fromkeys(names)) for names in self.prog.mark_labels]
        width = max([1, *map(len, self.prog.mark_labels)])
        self.label_of = np.full((len(self.prog.flows), width), -1, np.int64)
        for f, names in enumerate(self.prog.mark_labels):
            self.label_of[f, :len(names)] = [self.labels[f].index(name) for name in names]
        self.popular: dict[str, Popularity] = {}
        drawn = [self.prog.space_of[f] for f, name in enumerate(self.prog.flows)
                 if self.system.flows[name].draw != "new"]
        for name in dict.fromkeys([*drawn, *self.prog.fan_spaces]):
            space = self.system.keys[name]
            cdf = cell_cdf(space.count, space.zipf_s, 1.0, np.empty(space.count))
            self.popular[name] = Popularity(cdf=cdf)
        fans = [self.popular[name] for name in self.prog.fan_spaces]
        self.fan_cdf = np.concatenate([pop.cdf for pop in fans]) if fans else np.ones(1)
        self.fan_guide = np.concatenate([pop.guide for pop in fans]) if fans else np.zeros(1, np.int64)
        c0 = np.cumsum([0, *(pop.cdf.size for pop in fans)])[:-1]
        g0 = np.cumsum([0, *(pop.guide.size for pop in fans)])[:-1]
        self.fan_at = np.asarray([[c0[i], pop.cdf.size, g0[i], pop.guide.size] for i, pop in enumerate(fans)],
                                 np.int64).reshape(len(fans), 4)

    def _new_stations(self) -> Stations:
        """Every instance idle, with the capacity windows of the scenario's faults (slow nodes, GC
        pauses, crashes: sim/arrays/windows.py, as the calendar's)."""
        p = self.prog
        counts = {name: int(p.comps[c, 1]) for c, name in enumerate(p.order)}
        windows = fault_windows(self.scenario, p.base, counts, p.servers)
        return build_stations(p.servers, p.qlimits, p.fleets, len(p.order), windows)

    def _fans(self) -> tuple[np.ndarray, ...]:
        """The tables `advance` draws fan-outs from: the distributions (members are one), and the
        member spaces' popularity (cdf and guide concatenated; per space its offsets and sizes)."""
        p = self.prog
        return p.svc_params, p.svc_values, p.svc_voff, self.fan_cdf, self.fan_guide, self.fan_at

    def _tables(self) -> tuple[object, ...]:
        p = self.prog
        return (p.nodes, p.branches, p.comps, p.salts, p.tokens, p.replicas, p.hop_params, p.hop_values,
                self.key)

    # -- a chunk --------------------------------------------------------------------------------
    def _arrivals(self, gens: list[tuple[np.random.Generator, np.random.Generator]], drawn: list[int],
                  t0: float, t1: float, rec: FastRecorder, work: _Work) -> None:
        """Each client flow's Poisson arrivals in [t0, t1), started."""
        prog = self.prog
        parts = []
        for f, name in enumerate(prog.flows):
            rate = self.system.flows[name].rate_per_sec or 0.0
            arrivals, keys = gens[f]
            s0, s1 = self.load.to_load(t0), self.load.to_load(t1)  # (no spike: s = t)
            n = int(arrivals.poisson(rate * (s1 - s0)))
            start = np.sort(self.load.to_time(arrivals.uniform(s0, s1, n)))
            rec.start(name, start, start)
            space = self.system.keys[prog.space_of[f]]
            new = self.system.flows[name].draw == "new"
            key = (keys.integers(0, space.count, n) if new else
                   self.popular[space.name].draw(keys.random(n))).astype(np.int64)
            seq = np.arange(drawn[f], drawn[f] + n, dtype=np.int64)
            drawn[f] += n
            parts.append((start, np.full(n, f, np.int64), seq * len(prog.flows) + f, key,
                          np.full(n, int(new), np.int64), seq % self.every[f] == 0))
        t, flow, rid, key, new, marked = (np.concatenate(cols) for cols in zip(*parts, strict=True))
        work.ready_for(np.full(t.size, work.n_nodes, np.int64))
        work.marks_for(int(marked.sum()))
        first = np.asarray(prog.first_node, np.int64)
        K.start(t, flow, rid, key, new, marked, first, work.cont_f, work.cont_i, *self._tables(),
                *work.shared(), *self._fans())

    def _drain(self, work: _Work, queues: list[_Queue], rec: FastRecorder) -> None:
        """What the last kernel made: jobs to their queues, ended requests recorded."""
        n = int(work.cnt[K.C_JOBS])
        if n:
            pf, pi, off = K.split(work.out_f, work.out_i, work.out_c, np.int64(n), np.int64(len(queues)))
            for c, q in enumerate(queues):
                if off[c + 1] > off[c]:
                    q.add(pf[off[c]:off[c + 1]], pi[off[c]:off[c + 1]])
        n = int(work.cnt[K.C_FIN])
        if n:  # recorded once a chunk (`_flush`): a call per flow costs the same for 10 requests as 10,000
            self.ended.append((work.fin_i[:n].copy(), work.fin_f[:n].copy(), work.fin_m[:n].copy()))
        work.cnt[K.C_JOBS] = work.cnt[K.C_FIN] = 0

    def _flush(self, rec: FastRecorder) -> None:
        """The requests ended since the last flush, recorded."""
        if self.ended:
            fi, ff, fm = (np.concatenate(cols) for cols in zip(*self.ended, strict=True))
            self.ended = []
            self._record(rec, fi, ff, fm)

    def _record(self, rec: FastRecorder, fi: np.ndarray, ff: np.ndarray, fm: np.ndarray) -> None:
        ok = fi[:, 1] < 0
        causes = np.where(ok, 0, fi[:, 1])
        if self.scenario.policies:  # a client's timeout: a request answered after its deadline failed
            deadline = ff[:, 0] + self.deadline_s[fi[:, 0]]
            late = ff[:, 1] > deadline  # (inf where its flow has none)
            if late.any():
                ok, causes, ff = ok & ~late, np.where(late, len(self.prog.causes), causes), ff.copy()
                ff[late, 1] = deadline[late]
                self._timed_out(fi[late, 0], deadline[late], rec.D)
        for f in np.unique(fi[:, 0]).tolist():
            sel = fi[:, 0] == f
            rec.finish(self.prog.flows[f], ff[sel, 0], ff[sel, 0], ff[sel, 1], ok[sel], causes[sel],
                       self.causes, Marks([]))
        marked = ok & (fi[:, K.FIN_MARKED] == 1)
        if marked.any():
            flow, t0, end = fi[marked, 0], ff[marked, 0], ff[marked, 1]
            seconds = self._seconds(flow, t0, fm[marked])
            out_i = np.stack([flow, np.ones_like(flow), np.zeros_like(flow)], axis=1)
            self._tails.add(out_i, np.concatenate([np.stack([t0, t0, end], axis=1), seconds], axis=1),
                            rec.W, rec.D)

    def _timed_out(self, flow: np.ndarray, deadline: np.ndarray, horizon_s: float) -> None:
        """Client timeouts at these deadlines, counted on their edges as the DES's timers fire: before
        the run's end (or any time, when it drains)."""
        for f, n in zip(*np.unique(flow[deadline < horizon_s], return_counts=True), strict=True):
            self.timeouts[str(self.client_edge[int(f)])] += int(n)

    def _seconds(self, flow: np.ndarray, t0: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Marked requests' seconds per label of their flow (NaN: none), from their marks' times
        (NaN: off the path): Breakdown.add's time between successive marks, in time order from t0."""
        order = np.argsort(times, axis=1)  # NaN last
        at = np.take_along_axis(times, order, axis=1)
        since = at - np.concatenate([t0[:, None], at[:, :-1]], axis=1)
        label = self.label_of[flow[:, None], order]
        out = np.full((flow.size, max(map(len, self.labels))), np.nan)
        for j in range(at.shape[1]):
            rows = np.flatnonzero(~np.isnan(since[:, j]))
            cols = label[rows, j]
            now = out[rows, cols]
            out[rows, cols] = np.where(np.isnan(now), since[rows, j], now + since[rows, j])
        return out

    def _settle(self, below: int, safe_t: float, work: _Work, queues: list[_Queue],
                rec: FastRecorder) -> None:
        """Settle the joins whose components all come before `below` in the order (kernel.resolve)."""
        if work.cnt[K.C_TOUCHED]:
            # room for every open join to settle: one settled may settle the joins it answers, in turn
            work.ready_for(work.jq[work.in_use(), K.Q_NODE])
            K.resolve(np.int64(below), safe_t, work.cont_f, work.cont_i, *self._tables(), *work.shared(),
                      *self._fans())
            self._drain(work, queues, rec)

    def _in_order(self, c: int, t1: float, queues: list[_Queue], rec: FastRecorder, work: _Work) -> None:
        """Component c's calls made since its last turn and before t1, in the order they were made
        (kernel.made): through their keys' token buckets (the refused fail where they were made), to
        an instance up when made where a crash takes some (none up: they fail at once, as the DES's
        call to no station), then given the next instances of a round-robin rotation."""
        since, self.made_until[c] = self.made_until[c], t1
        if not len(queues[c]):
            return
        p = self.prog
        qf, qi = queues[c].columns()
        rows, times = K.made(qf, qi, since, t1, p.hop_params, p.hop_values, self.key)
        code = np.zeros(rows.size)  # each call's failure code (serve's), 0 while it goes on
        if c in self.buckets:
            code[~self.buckets[c].allow(times, qi[rows, K.J_KEY])] = K.RATE_LIMITED
            self.rate_limited += int((code != 0).sum())
        if c in self.crashable:
            live = rows[code == 0]
            K.repick(qf, qi, live, times[code == 0], np.int64(p.comps[c, 0]), np.int64(p.comps[c, 1]),
                     self.stations.ints, self.stations.win, self.key)
            code[(code == 0) & (qi[rows, K.J_ST] == K.ALL_DOWN)] = UNAVAILABLE
        if c in self.robin:
            live = rows[code == 0]
            first, count = int(p.comps[c, 0]), int(p.comps[c, 1])
            qi[live, K.J_ST] = first + (self.turn[c] + np.arange(live.size)) % count
            self.turn[c] = (self.turn[c] + live.size) % count
        failed = code != 0
        if failed.any():  # out of the queue; they fail where they were made (in that order)
            out = np.zeros(qf.shape[0], np.bool_)
            out[rows[failed]] = True
            rf, ri = qf[rows[failed]], qi[rows[failed]]
            queues[c].pieces = [(qf[~out], qi[~out])] if (~out).any() else []
            self._after(rf, ri, np.arange(rf.shape[0]), code[failed], times[failed], work, queues, rec)

    def _after(self, jf: np.ndarray, ji: np.ndarray, job: np.ndarray, start: np.ndarray, end: np.ndarray,
               work: _Work, queues: list[_Queue], rec: FastRecorder) -> None:
        """The requests of jobs answered (job[p]'s at end[p]; a negative start: its failure) move on."""
        p = self.prog
        work.ready_for(ji[:, K.J_NODE])
        K.after(jf, ji, job, start, end, work.cont_f, work.cont_i, p.nodes, p.branches, p.comps, p.salts,
                p.tokens, p.replicas, p.hit_p, self.node_flow, p.hop_params, p.hop_values, self.key,
                *work.shared(), *self._fans(), self.stations.ints, self.stations.win, self.filled_at,
                float(self.scenario.warmup_s))
        self._drain(work, queues, rec)

    def _pass(self, c: int, jf: np.ndarray, ji: np.ndarray, off: np.ndarray, pool: ThreadPoolExecutor,
              parts: list[Stations]) -> tuple[np.ndarray, ...]:
        """Serve component c's jobs, grouped by station (station s's at rows off[s]..off[s + 1]): each's
        (row, start, end) in the order served."""
        first, count = int(self.prog.comps[c, 0]), int(self.prog.comps[c, 1])
        n = jf.shape[0]
        out = (np.empty(n, np.int64), np.empty(n), np.empty(n))
        cut = int(np.searchsorted(off, n / 2)) if n > 1000 and len(parts) > 1 else count
        ranges = [(0, min(cut, count)), (min(cut, count), count)]
        p = self.prog
        calls = [(K.visit, jf, ji, off, np.int64(first), np.int64(lo), np.int64(hi), S.ints, S.floats, S.free,
                  S.ring, S.win, S.waits, S.wait_stats, S.glob, S.counts, p.nodes, p.svc_params, p.svc_values,
                  p.svc_voff, self.key, *out, p.per_member_s)
                 for (lo, hi), S in zip(ranges, parts, strict=False) if hi > lo]
        others = [pool.submit(*call) for call in calls[1:]]  # (a hand-over costs ~100 us: the first
        calls[0][0](*calls[0][1:])                              # range runs on this thread)
        for done in others:
            done.result()
        return out

    def _chunk(self, t0: float, t1: float, queues: list[_Queue], pool: ThreadPoolExecutor,
               parts: list[Stations], rec: FastRecorder, work: _Work) -> int:
        """Every component's jobs arriving before t1, in order; returns the visits. The components of
        a loop (prog.loop) take their turns in slices of at most LOOP_SLICE_S, each slice ending with
        the joins they answered settled: what goes back (a fill) reaches them in a later slice."""
        n_comps = len(self.prog.order)
        lo, hi = self.prog.loop or (n_comps, n_comps - 1)
        served = sum(self._turn(c, t1, queues, pool, parts, rec, work) for c in range(min(lo, n_comps)))
        if lo < n_comps:
            slices = max(1, math.ceil((t1 - t0) / LOOP_SLICE_S - 1e-9))
            for k in range(1, slices + 1):
                s = t1 if k == slices else t0 + (t1 - t0) * k / slices
                served += sum(self._turn(c, s, queues, pool, parts, rec, work) for c in range(lo, hi + 1))
                self._settle(hi + 1, s, work, queues, rec)
            served += sum(self._turn(c, t1, queues, pool, parts, rec, work) for c in range(hi + 1, n_comps))
        self._settle(n_comps, t1, work, queues, rec)
        self._flush(rec)
        return served

    def _turn(self, c: int, t1: float, queues: list[_Queue], pool: ThreadPoolExecutor, parts: list[Stations],
              rec: FastRecorder, work: _Work) -> int:
        """Component c's turn: the joins before it settled, then its jobs arriving before t1 served and
        moved on; returns how many."""
        p = self.prog
        self._settle(c, t1, work, queues, rec)
        first, count = int(p.comps[c, 0]), int(p.comps[c, 1])
        if c in self.robin or c in p.limits or c in self.crashable:
            self._in_order(c, t1, queues, rec, work)
        jf, ji, off = queues[c].take(t1, first, count)
        if not jf.shape[0]:
            return 0
        job, start, end = self._pass(c, jf, ji, off, pool, parts)
        self._after(jf, ji, job, start, end, work, queues, rec)
        return jf.shape[0]

    # -- the run --------------------------------------------------------------------------------
    def run(self, drain: bool = False) -> RunState:
        sc, prog = self.scenario, self.prog
        wall0 = time.perf_counter()
        D, W = sc.duration_s, float(sc.warmup_s)
        S = self.stations = self._new_stations()  # (a second run starts from empty stations too)
        self.ended: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # requests ended, to record
        # when each cached key was last refilled: read only where a Redis shard may restart empty
        restarts = any(f.kind in ("crash", "shard_loss") for f in sc.faults)
        self.filled_at = np.full(prog.hit_p.size if restarts else 1, -math.inf)
        self.turn[:] = 0
        self.made_until[:] = 0.0
        self.buckets = {c: TokenBuckets(keys, rate, burst) for c, (rate, burst, keys) in prog.limits.items()}
        self.rate_limited = 0
        S.glob[W_AT] = W
        S.glob[D_AT] = math.inf if drain else D
        # the second thread's fleet-wide counters (waits, glob, counts); station rows are shared
        second = build_stations([1], [None], [0], len(prog.order))
        second.glob[:] = S.glob
        threads = min(THREADS, os.cpu_count() or 1)
        parts = [S, S._replace(waits=second.waits, wait_stats=second.wait_stats, glob=second.glob,
                               counts=second.counts)][:threads]
        rec = FastRecorder(W, math.inf if drain else D, D, ops=prog.flows)
        self._tails = TailSums(prog.flows, self.labels, max(map(len, self.labels)), self.every)
        total_rate = sum(self.system.flows[f].rate_per_sec or 0.0 for f in prog.flows) or 1.0
        chunk_s = min(1.0, max(1e-3, ARRIVALS_PER_CHUNK / total_rate))
        chunk_s = 1.0 / math.ceil(1.0 / chunk_s)  # whole chunks per second: windows close on chunk ends
        gens = [(named_rng(sc.seed, "stations", "arrivals", f), named_rng(sc.seed, "stations", "keys", f))
                for f in prog.flows]
        drawn = self.drawn = [0] * len(prog.flows)  # requests started, per flow
        self.timeouts = Counter()
        lo, hi = prog.loop or (len(prog.order), -1)
        queues = [_Queue(in_slices=lo <= c <= hi) for c in range(len(prog.order))]
        work = _Work(prog)
        visits = 0
        sent = 0
        served_seen = np.zeros(S.floats.shape[0])
        t = 0.0
        with ThreadPoolExecutor(threads, thread_name_prefix="capsim-stations") as pool:
            while t < D - 1e-12:
                t1 = min(D, t + chunk_s)
                self._arrivals(gens, drawn, t, t1, rec, work)
                self._drain(work, queues, rec)
                visits += self._chunk(t, t1, queues, pool, parts, rec, work)
                t = t1
                while (self.on_window is not None and sent < rec.n_windows
                       and (sent + 1) * rec.window_s <= t + 1e-9):
                    served_seen = self._window(rec, sent, served_seen)
                    sent += 1
                if self.progress is not None:
                    self.progress(t, D)
            end = D
            if drain:
                while any(len(q) for q in queues) or work.cnt[K.C_TOUCHED]:
                    visits += self._chunk(t, t + chunk_s, queues, pool, parts, rec, work)
                    t += chunk_s
                end = max(D, float(S.glob[LAST_EVENT]), float(second.glob[LAST_EVENT]))
        self._unfinished(rec, queues, work)
        # what is still held at the end: join rows, queued jobs and mark rows (none after a drained run)
        self.joins_in_use = int(work.in_use().sum())
        self.marks_in_use = int((work.mk_rid >= 0).sum())  # marked requests in flight
        self.jobs_queued = sum(len(q) for q in queues)
        S.waits[:] += second.waits
        S.wait_stats[:, 0] += second.wait_stats[:, 0]
        S.wait_stats[:, 1] = np.maximum(S.wait_stats[:, 1], second.wait_stats[:, 1])
        S.wait_stats[:, 2] = np.minimum(S.wait_stats[:, 2], second.wait_stats[:, 2])
        S.counts[:] += second.counts
        return self._state(rec, work, end, visits, time.perf_counter() - wall0, drain)

    def _unfinished(self, rec: FastRecorder, queues: list[_Queue], work: _Work) -> None:
        """Requests in flight at the end: each at one place on its own path, a job on it or a join
        its path waits at (joins within joins are counted by the outermost)."""
        open_ = work.in_use() & (work.jq[:, K.Q_STATE] == 0) & (work.jq[:, K.Q_PARENT] == K.ROOT)
        flows = [work.jq[open_, K.Q_FLOW]]
        t0 = [work.jt[open_]]
        for q in queues:
            qf, qi = q.columns()
            root = qi[:, K.J_JOIN] == K.ROOT
            flows.append(self.node_flow[qi[root, K.J_NODE]])
            t0.append(qf[root, K.J_T0])
        flow, started = np.concatenate(flows), np.concatenate(t0)
        deadline = started + self.deadline_s[flow]
        late = deadline < rec.D  # a client's timer fired before the end: the request failed
        if late.any():
            n = int(late.sum())
            ended = np.stack([flow[late], np.full(n, K.OK), np.full(n, -1), np.zeros(n, np.int64)], axis=1)
            times = np.stack([started[late], np.full(n, math.inf)], axis=1)
            self._record(rec, ended, times, np.empty((n, 1)))
        for f in np.unique(flow[~late]).tolist():
            rec.unfinished(self.prog.flows[f], started[~late & (flow == f)])

    def _edges(self) -> dict[str, dict[str, object]]:
        """Each client edge's counters, as the DES's (sim/des/policy.Edge.stats): every request its
        flows started a call, and no retries."""
        calls = Counter[str]()
        for f, edge in enumerate(self.client_edge):
            if edge is not None:
                calls[edge] += self.drawn[f]
        return {edge: {"calls": calls[edge], "retries": 0, "timeouts": self.timeouts[edge],
                       "retries_denied_by_budget": 0} for edge in self.scenario.policies}

    def _window(self, rec: FastRecorder, w: int, served_seen: np.ndarray) -> np.ndarray:
        """Window w's timeseries row to `on_window`, with each instance's busy share of it (a job's
        service counts in the window it arrives in, as the calendar's live view)."""
        S, prog = self.stations, self.prog
        served = S.floats[:, SERVICE_S].copy()
        shares = (served - served_seen) / (S.ints[:, SERVERS] * rec.window_s)
        util = {name: shares[prog.comps[c, 0]:prog.comps[c, 0] + prog.comps[c, 1]].tolist()
                for c, name in enumerate(prog.order)}
        assert self.on_window is not None
        self.on_window({**rec.window_row(w, 1.0), "utilization": util})
        return served

    def _state(self, rec: FastRecorder, work: _Work, end: float, visits: int, wall_s: float,
               drain: bool) -> RunState:
        sc, S, prog = self.scenario, self.stations, self.prog
        self._tails.into({op: s.breakdown for op, s in rec.recorder.ops.items()})  # the tail breakdown
        recorder = rec.close(end, 1.0, {})
        fleets = fleet_views(S, [(name, int(prog.comps[c, 0]), int(prog.comps[c, 1]))
                                 for c, name in enumerate(prog.order)])
        cache_name = next(iter(prog.caches), None)
        has_cassandra = any(c.kind == "cassandra" for c in self.system.components.values())
        return RunState(
            scenario=sc, cell=self.cell, recorder=recorder, fleets=fleets,
            cache=prog.caches.get(cache_name) if cache_name else None, cache_component=cache_name,
            redis_hits=int(work.cnt[K.C_HITS]), redis_misses=int(work.cnt[K.C_MISSES]), kafka_lag_max_s=0.0,
            kafka_lag_max_msgs=0, kafka_backlog=0,
            async_errors=Counter({prog.causes[i]: int(x) for i, x in enumerate(work.async_err) if x}),
            mix={}, edges=self._edges(),
            cassandra_faults=dict.fromkeys(("unavailable", "hints_stored", "hints_replayed", "hedged_reads",
                                            "lost_writes"), 0) if has_cassandra else {},
            kafka_unavailable=0, rate_limited=self.rate_limited, events=visits, sim_seconds=end,
            measured_seconds=end - float(sc.warmup_s), wall_seconds=wall_s, drained=drain, system=self.system,
        )
