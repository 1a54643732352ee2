"""The station-order engine: a feed-forward design, every request, fleet by fleet in chunks of time.

A chunk [T0, T1) runs the called components in one order every flow follows (support.fleet_order).
A component takes every job that arrives at it before T1, from the chunk's client arrivals (its
flows' first calls) and from the components before it, groups them by station and serves each
station's in time order (kernel.py). Jobs arriving at T1 or later wait for the next chunk. That is
exact: a job that reaches a component before T1 left every earlier component before T1, so it is
among the jobs those components served this chunk or before. The stations of a component are
split between two threads at the job count's midpoint (each thread with its own fleet-wide wait
counters, merged at the end); the draws are numbered by station, so the split changes no number.

Requests are recorded in bulk as they end (sim/arrays/record.py). Not recorded yet: the tail
breakdown (which component a slow request's time went to); summary.json's `events` counts station
visits.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sim.arrays.record import FastRecorder, Marks, fleet_views
from sim.arrays.rng import compile_dist, purpose_key, sample_many, uniform_many
from sim.arrays.station import (
    D_AT,
    LAST_EVENT,
    REJECTED,
    SERVERS,
    SERVICE_S,
    W_AT,
    Stations,
    build_stations,
)
from sim.run_state import RunState
from sim.sampling import make_cell
from sim.scenario import Scenario
from sim.stations import kernel
from sim.stations.support import fleet_order, unsupported
from sim.streams import named_rng
from sim.system.compile import system_of
from sim.system.model import Call

Progress = Callable[[float, float], None]
OnWindow = Callable[[dict[str, float]], None]
ARRIVALS_PER_CHUNK = 200_000  # client requests per chunk: bounds the job arrays
THREADS = 2  # the stations of a component are split between this many threads


class _Jobs:
    """Jobs waiting to arrive at one component: arrival time, request start, call (node), station."""

    def __init__(self) -> None:
        self.t = np.empty(0)
        self.t0 = np.empty(0)
        self.node = np.empty(0, np.int64)
        self.st = np.empty(0, np.int64)

    def add(self, t: np.ndarray, t0: np.ndarray, node: np.ndarray, st: np.ndarray) -> None:
        self.t = np.concatenate([self.t, t])
        self.t0 = np.concatenate([self.t0, t0])
        self.node = np.concatenate([self.node, node])
        self.st = np.concatenate([self.st, st])

    def take(self, before: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The jobs arriving before `before`, removed."""
        now = self.t < before
        out = self.t[now], self.t0[now], self.node[now], self.st[now]
        later = ~now
        self.t, self.t0, self.node, self.st = self.t[later], self.t0[later], self.node[later], self.st[later]
        return out


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
        self.order = order  # the components, in the order a chunk runs them
        comps = self.system.components
        self.base: dict[str, int] = {}
        servers: list[int] = []
        qlimits: list[int | None] = []
        fleets: list[int] = []
        for f, name in enumerate(self.order):
            spec = comps[name].spec
            self.base[name] = len(servers)
            servers += [spec.workers] * spec.instances
            qlimits += [spec.queue_limit] * spec.instances
            fleets += [f] * spec.instances
        self.stations: Stations = build_stations(servers, qlimits, fleets, len(self.order))
        # the calls: one node per call of each client flow, a flow's consecutive; node + 1 is the next call
        self.flows = [name for name, fl in self.system.flows.items() if fl.rate_per_sec]
        self.node_flow: list[int] = []
        self.node_comp: list[int] = []
        params, values, voff = [], [np.zeros(0)], [0]
        self.first_node: list[int] = []
        for f, name in enumerate(self.flows):
            self.first_node.append(len(self.node_flow))
            for step in self.system.flows[name].steps:
                assert isinstance(step, Call)
                dist = compile_dist(comps[step.component].ops[step.op].service_ms, 1e-3)
                params.append(dist.params)
                values.append(dist.values)
                voff.append(voff[-1] + dist.values.size)
                self.node_flow.append(f)
                self.node_comp.append(self.order.index(step.component))
        n_nodes = len(self.node_flow)
        self.svc_params = np.array(params).reshape(n_nodes, 6)
        self.svc_values = np.concatenate(values)
        self.svc_voff = np.asarray(voff, np.int64)
        self.next_base = np.zeros(n_nodes, np.int64)
        self.next_count = np.zeros(n_nodes, np.int64)
        for nd in range(n_nodes):
            if nd + 1 < n_nodes and self.node_flow[nd + 1] == self.node_flow[nd]:
                nxt = self.order[self.node_comp[nd + 1]]
                self.next_base[nd], self.next_count[nd] = self.base[nxt], comps[nxt].instances
        hop = compile_dist(scenario.network.hop_ms, 1e-3)
        self.hop_params, self.hop_values = hop.params, hop.values
        self.key = purpose_key(scenario.seed, 12_000_001)  # the stations' draws
        self.first_key = purpose_key(scenario.seed, 12_000_002)  # the client's first hop and instance
        self.visits = np.zeros(len(servers), np.int64)  # each station's visits: numbers its draws
        self.causes = [f"{name}.rejected" for name in self.order]  # a failed job's cause: its component's

    # -- a chunk --------------------------------------------------------------------------------
    def _arrivals(self, gens: list[np.random.Generator], drawn: list[int], t0: float, t1: float,
                  queues: list[_Jobs], rec: FastRecorder) -> int:
        """Each client flow's Poisson arrivals in [t0, t1) onto the queue of its first component."""
        comps = self.system.components
        n_all = 0
        for f, name in enumerate(self.flows):
            rate = self.system.flows[name].rate_per_sec or 0.0
            n = int(gens[f].poisson(rate * (t1 - t0)))
            start = np.sort(gens[f].uniform(t0, t1, n))
            rec.start(name, start, start)
            ids = np.arange(drawn[f], drawn[f] + n, dtype=np.int64) * len(self.flows) + f
            drawn[f] += n
            nd = self.first_node[f]
            comp = self.order[self.node_comp[nd]]
            count = comps[comp].instances
            hop = sample_many(self.hop_params, self.hop_values, self.first_key, ids, np.int64(0))
            u = uniform_many(self.first_key, ids, np.int64(1))
            pick = np.minimum((u * count).astype(np.int64), count - 1)
            queues[self.node_comp[nd]].add(start + hop, start, np.full(n, nd, np.int64),
                                           self.base[comp] + pick)
            n_all += n
        return n_all

    def _pass(self, c: int, t: np.ndarray, node: np.ndarray, st: np.ndarray, pool: ThreadPoolExecutor,
              parts: list[Stations]) -> tuple[np.ndarray, ...]:
        """Serve component c's jobs (station order); their outcomes in sorted order."""
        comp = self.order[c]
        first, count = self.base[comp], self.system.components[comp].instances
        order, off = kernel.bucket(st, np.int64(first), np.int64(count))
        n = t.size
        out = (np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64),
               np.empty(n, np.int64))
        cut = int(np.searchsorted(off, n / 2)) if n > 1000 else count
        ranges = [(0, min(cut, count)), (min(cut, count), count)]
        futures = []
        for (lo, hi), S in zip(ranges, parts, strict=True):
            if hi > lo:
                futures.append(pool.submit(
                    kernel.visit, t, node, order, off, np.int64(first), np.int64(lo), np.int64(hi), S.ints,
                    S.floats, S.free, S.ring, S.win, S.waits, S.wait_stats, S.glob, S.counts, self.svc_params,
                    self.svc_values, self.svc_voff, self.hop_params, self.hop_values, self.next_base,
                    self.next_count, self.key, self.visits, *out))
        for done in futures:
            done.result()
        return out

    def _chunk(self, t1: float, queues: list[_Jobs], pool: ThreadPoolExecutor, parts: list[Stations],
               rec: FastRecorder) -> int:
        """Every component's jobs arriving before t1, in fleet order; returns the visits."""
        served = 0
        for c in range(len(self.order)):
            t, t0, node, st = queues[c].take(t1)
            if not t.size:
                continue
            job, out_t, out_node, out_st, code = self._pass(c, t, node, st, pool, parts)
            served += t.size
            t0 = t0[job]
            nd = node[job]
            go = code == kernel.NEXT
            if go.any():
                nxt = out_node[go]
                for target in np.unique(np.asarray(self.node_comp)[nxt]).tolist():
                    sel = np.flatnonzero(go)[np.asarray(self.node_comp)[nxt] == target]
                    queues[target].add(out_t[sel], t0[sel], out_node[sel], out_st[sel])
            ended = ~go
            if ended.any():
                self._record(rec, c, t0[ended], out_t[ended], code[ended] == kernel.DONE,
                             np.asarray(self.node_flow)[nd[ended]], out_node[ended])
        return served

    def _record(self, rec: FastRecorder, c: int, t0: np.ndarray, fin: np.ndarray, ok: np.ndarray,
                flows: np.ndarray, fail_codes: np.ndarray) -> None:
        if (~ok).any():
            assert (fail_codes[~ok] == np.int64(REJECTED)).all()  # the only failure without faults
        causes = np.where(ok, 0, c)
        for f in np.unique(flows).tolist():
            sel = flows == f
            rec.finish(self.flows[f], t0[sel], t0[sel], fin[sel], ok[sel], causes[sel], self.causes,
                       Marks([]))

    # -- the run --------------------------------------------------------------------------------
    def run(self, drain: bool = False) -> RunState:
        sc = self.scenario
        wall0 = time.perf_counter()
        D, W = sc.duration_s, float(sc.warmup_s)
        S = self.stations
        S.glob[W_AT] = W
        S.glob[D_AT] = math.inf if drain else D
        # the second thread's fleet-wide counters (waits, glob, counts); station rows are shared
        second = build_stations([1], [None], [0], len(self.order))
        second.glob[:] = S.glob
        parts = [S, S._replace(waits=second.waits, wait_stats=second.wait_stats, glob=second.glob,
                               counts=second.counts)]
        rec = FastRecorder(W, math.inf if drain else D, D, ops=self.flows)
        total_rate = sum(self.system.flows[f].rate_per_sec or 0.0 for f in self.flows) or 1.0
        chunk_s = min(1.0, max(1e-3, ARRIVALS_PER_CHUNK / total_rate))
        chunk_s = 1.0 / math.ceil(1.0 / chunk_s)  # whole chunks per second: windows close on chunk ends
        gens = [named_rng(sc.seed, "stations", "arrivals", name) for name in self.flows]
        drawn = [0] * len(self.flows)
        queues = [_Jobs() for _ in self.order]
        visits = 0
        sent = 0
        served_seen = np.zeros(S.floats.shape[0])
        t = 0.0
        threads = min(THREADS, os.cpu_count() or 1)
        with ThreadPoolExecutor(threads, thread_name_prefix="capsim-stations") as pool:
            while t < D - 1e-12:
                t1 = min(D, t + chunk_s)
                self._arrivals(gens, drawn, t, t1, queues, rec)
                visits += self._chunk(t1, queues, pool, parts, rec)
                t = t1
                while (self.on_window is not None and sent < rec.n_windows
                       and (sent + 1) * rec.window_s <= t + 1e-9):
                    served_seen = self._window(rec, sent, served_seen)
                    sent += 1
                if self.progress is not None:
                    self.progress(t, D)
            end = D
            if drain:
                visits += self._chunk(math.inf, queues, pool, parts, rec)
                end = max(D, float(S.glob[LAST_EVENT]), float(second.glob[LAST_EVENT]))
        for q in queues:  # in flight at the end (none after a drained run)
            flows = np.asarray(self.node_flow, np.int64)[q.node]
            for f in np.unique(flows).tolist():
                rec.unfinished(self.flows[f], q.t0[flows == f])
        S.waits[:] += second.waits
        S.wait_stats[:, 0] += second.wait_stats[:, 0]
        S.wait_stats[:, 1] = np.maximum(S.wait_stats[:, 1], second.wait_stats[:, 1])
        S.wait_stats[:, 2] = np.minimum(S.wait_stats[:, 2], second.wait_stats[:, 2])
        S.counts[:] += second.counts
        return self._state(rec, end, visits, time.perf_counter() - wall0, drain)

    def _window(self, rec: FastRecorder, w: int, served_seen: np.ndarray) -> np.ndarray:
        """Window w's timeseries row to `on_window`, with each instance's busy share of it (a job's
        service counts in the window it arrives in, as the calendar's live view)."""
        S = self.stations
        served = S.floats[:, SERVICE_S].copy()
        shares = (served - served_seen) / (S.ints[:, SERVERS] * rec.window_s)
        comps = self.system.components
        util = {name: shares[self.base[name]:self.base[name] + comps[name].instances].tolist()
                for name in self.order}
        assert self.on_window is not None
        self.on_window({**rec.window_row(w, 1.0), "utilization": util})
        return served

    def _state(self, rec: FastRecorder, end: float, visits: int, wall_s: float, drain: bool) -> RunState:
        sc, S = self.scenario, self.stations
        recorder = rec.close(end, 1.0, {})
        fleets = fleet_views(S, [(name, self.base[name], self.system.components[name].instances)
                                 for name in self.order])
        return RunState(
            scenario=sc, cell=self.cell, recorder=recorder, fleets=fleets, cache=None, cache_component=None,
            redis_hits=0, redis_misses=0, kafka_lag_max_s=0.0, kafka_lag_max_msgs=0, kafka_backlog=0,
            async_errors=Counter(), mix={}, edges={}, cassandra_faults={}, kafka_unavailable=0,
            rate_limited=0, events=visits, sim_seconds=end, measured_seconds=end - float(sc.warmup_s),
            wall_seconds=wall_s,
            drained=drain, system=self.system,
        )
