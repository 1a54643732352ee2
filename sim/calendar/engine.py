"""The calendar engine: a design's flows, every request, on the compiled event loop.

Build once (sim/calendar/program.py), then run in chunks of simulated time: each chunk's client
arrivals (Poisson per flow, keys by their space's popularity, drawn with numpy from the flow's own
named streams, so they do not depend on the chunk length) enter the calendar, the kernel
(sim/calendar/kernel.py) takes every event before the chunk's end, and the requests that ended
are recorded in bulk (sim/arrays/record.py's recorder, the shapes sim/result.py reads). Pools grow
when the kernel asks, so memory follows the requests in flight, not the run's length.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from sim.arrays import compiled
from sim.arrays.load import Load
from sim.arrays.record import FastRecorder, Marks, fleet_views
from sim.arrays.rng import purpose_key
from sim.arrays.station import (
    D_AT,
    LAST_EVENT,
    SERVERS,
    SERVICE_S,
    W_AT,
)
from sim.arrays.tails import TailSums
from sim.calendar import kernel
from sim.calendar import tables as K
from sim.calendar.arrivals import Chunk, Source, draw_chunk
from sim.calendar.edges import (
    X_CALLS,
    X_CLOSED,
    X_DENIED,
    X_OPENED,
    X_REJECTED,
    X_RETRIES,
    X_STATE,
    X_TIMEOUTS,
)
from sim.calendar.marks import MARKED_PER_SEC
from sim.calendar.pools import Pools, force_grow, live_requests
from sim.calendar.program import (
    C_BASE,
    C_COUNT,
    Program,
    build,
)
from sim.calendar.support import unsupported
from sim.run_state import OnWindow, Progress, RunState
from sim.scenario import Scenario
from sim.streams import named_rng

ARRIVALS_PER_CHUNK = 200_000  # client requests per chunk: bounds the arrival arrays


def kernels_cached() -> bool | None:
    """Whether the event loop is compiled already, in this process or in numba's cache (None: this
    numba keeps its cache where we cannot look). A cold one costs the next run ~20-40 s of compile."""
    return compiled(kernel.run)


class CalendarEngine:
    """Build once from a design scenario; `run()` simulates it and returns the neutral RunState."""

    def __init__(self, scenario: Scenario, progress: Progress | None = None,
                 on_window: OnWindow | None = None) -> None:
        problems = unsupported(scenario)
        if problems:
            raise problems[0]
        self.scenario = scenario
        self.progress = progress
        self.on_window = on_window
        self.program = build(scenario)

    # -- arrivals -------------------------------------------------------------------------------
    def _sources(self) -> list[Source]:
        prog, sc = self.program, self.scenario
        load = Load(sc)
        out = []
        for f, name in enumerate(prog.flows):
            rate = prog.client_rates.get(name)
            if not rate:
                continue
            flow = prog.system.flows[name]
            slot = prog.spaces.index(flow.space)
            n, off = int(prog.space_i[slot, 0]), int(prog.space_i[slot, 1])
            deterministic = prog.population is not None and sc.workload.arrivals == "deterministic"
            out.append(Source(f, name, rate, flow.draw, n, prog.cdfs[off:off + n],
                               named_rng(sc.seed, "calendar", "arrivals", name),
                               named_rng(sc.seed, "calendar", "keys", name),
                               purpose_key(sc.seed, 9_000_000 + f), deterministic, load))
        return out

    def run(self, drain: bool = False) -> RunState:
        prog, sc = self.program, self.scenario
        wall0 = time.perf_counter()
        D, W = sc.duration_s, float(sc.warmup_s)
        S = prog.stations
        S.glob[W_AT] = W
        S.glob[D_AT] = math.inf if drain else D
        rec = FastRecorder(W, math.inf if drain else D, D, ops=prog.flows)
        pools = Pools(prog, rec.n_windows)
        sources = self._sources()
        total_rate = sum(src.rate for src in sources) or 1.0
        every = max(1, math.ceil(total_rate / MARKED_PER_SEC))  # requests a marked one stands for
        pools.state[K.S_MARK_EVERY] = every
        self._tails = TailSums(prog.flows, pools.label_names, pools.mark_columns, every)
        self._jitter_key = purpose_key(sc.seed, 6_999_998)  # retries' jitter (a SeedSequence: ~20 us)
        self._served_seen = np.zeros(S.floats.shape[0])  # service seconds at the last window's close
        chunk_s = min(1.0, max(1e-3, ARRIVALS_PER_CHUNK / total_rate))
        chunk_s = 1.0 / math.ceil(1.0 / chunk_s)  # whole chunks per second: windows close on chunk ends
        ends: list[float] = []
        t = 0.0
        while t < D - 1e-12:
            t = min(D, t + chunk_s)
            ends.append(t)
        sent = 0
        end = D
        # while the kernel (which releases the GIL) runs a chunk, one helper thread draws the next
        # chunk's arrivals (they depend only on their flows' own streams, drawn in chunk order) and
        # records what the kernel handed back, in the order it was handed: the numbers are the same
        # bits as doing both in turn on this thread (one thread, not two: they would contend for
        # the GIL)
        with (ThreadPoolExecutor(1, thread_name_prefix="capsim-helper") as ahead,
              _Recording(rec, ahead) as recording):
            pending = [ahead.submit(draw_chunk, sources, ends[0], prog)] if ends else []
            for i, t1 in enumerate(ends):
                batch = pending.pop().result()
                if i + 1 < len(ends):
                    pending.append(ahead.submit(draw_chunk, sources, ends[i + 1], prog))
                self._inject(batch, pools, recording)
                self._advance(t1, pools, recording)
                t = t1
                if self.on_window is not None:
                    recording.wait()
                    while sent < rec.n_windows and (sent + 1) * rec.window_s <= t + 1e-9:
                        row = rec.window_row(sent, 1.0 / prog.cell.sample, self._extra(pools, rec))
                        self.on_window({**row, "utilization": self._window_utilization(rec.window_s)})
                        sent += 1
                if self.progress is not None:
                    self.progress(t, D)
            if drain:
                self._advance(math.inf, pools, recording)
                end = max(D, float(S.glob[LAST_EVENT]))
        # rows still held in each pool (requests, frames, joins, quorums, produces, edge calls): work in
        # flight at the end, none after a drained run (tests/test_calendar.py checks nothing leaks)
        self.rows_in_use = {name: int(getattr(pools, table).shape[0] - pools.state[K.S_TOP0 + p])
                            for p, name, table in ((K.P_REQ, "requests", "rq"), (K.P_FRAME, "frames", "fr"),
                                                   (K.P_JOIN, "joins", "jn"), (K.P_QUORUM, "quorums", "qu"),
                                                   (K.P_KOP, "produces", "ko"), (K.P_EC, "edge_calls", "ec"))}
        # sole-copy rows still held: the writes in flight that may become one, and the copies listed per
        # holder (after a drained run, only the latter: `sole_copies_listed`)
        self.sole_rows_in_use = int(pools.so.shape[0] - pools.state[K.S_TOP0 + K.P_SOLE])
        self.sole_copies_listed = int(pools.holders[:, K.H_LEN].sum())
        return self._state(pools, rec, end, time.perf_counter() - wall0, drain)

    def _inject(self, batch: Chunk, pools: Pools, recording: _Recording) -> None:
        """A chunk's client arrivals into the calendar (time order), recorded as started."""
        recording.submit(_record_starts, recording.rec, batch.started)
        n = batch.t.size
        if not n:
            pools.state[K.S_ARR_N] = 0
            return
        while pools.state[K.S_TOP0 + K.P_REQ] < n + K.MARGIN:
            force_grow(pools, n)
        pools.arr_t = batch.t
        pools.arr_r = np.empty(n, np.int64)
        kernel.inject(batch.t, batch.flow, batch.key, batch.new, batch.user, batch.slot, pools.arr_r,
                      pools.rq, pools.rqf, pools.free[K.P_REQ], pools.state)

    def _advance(self, t_end: float, pools: Pools, recording: _Recording) -> None:
        prog = self.program
        S = prog.stations
        while True:
            p = pools
            code = kernel.run(
                t_end, prog.nodes, prog.node_f, prog.branches, prog.comps, prog.comp_f, prog.dists,
                prog.dist_values, prog.routes, prog.hashed_routes, prog.replicas, prog.cdfs, prog.space_i,
                prog.hit_p, p.flow_i, prog.hop, prog.key_hop, prog.key_node, prog.key_comp,
                prog.recipients, np.int64(prog.n_users), prog.member_salt, prog.inbox_off, prog.inbox_conv,
                prog.edge_of, prog.client_edge, prog.edge_params, p.ex, p.ef, p.bk_tot, p.bk_bad,
                self._jitter_key, np.int64(prog.err_timeout),
                np.int64(prog.err_breaker), p.filled_at, p.hints, p.so, p.free[K.P_SOLE], p.holders,
                p.fault_t, p.fault_i,
                S.ints, S.floats, S.free, S.ring, S.win, S.waits, S.wait_stats, S.glob, S.counts,
                p.arr_t, p.arr_r, p.ht, p.hp, p.state, p.rq, p.rqf, p.free[K.P_REQ],
                p.fr, p.fr_keys, p.fr_extra, p.fr_t0, p.free[K.P_FRAME], p.jn, p.free[K.P_JOIN], p.qu,
                p.free[K.P_QUORUM], p.ko, p.kof, p.free[K.P_KOP], p.ec, p.ecf, p.free[K.P_EC], p.wl_op,
                p.wl_f, p.wl_e,
                p.k_lead, p.log_head, p.log_tail, p.log_len, p.cons_in, p.cons_cursor, p.rl_tokens,
                p.rl_updated,
                p.out_i, p.out_f, p.start_i, p.start_f, p.async_err, recording.rec.window_s, p.win_hits,
                p.win_misses, p.win_lag, p.win_commit, p.win_take, p.lag_max)
            self._flush(pools, recording)
            if code == K.DONE:
                return
            if code == K.GROW:
                pools.grow()

    def _flush(self, pools: Pools, recording: _Recording) -> None:
        """Hand the requests that ended and the triggered ones that started to the recorder (copies:
        the kernel reuses its output rows)."""
        st = pools.state
        n = int(st[K.S_START_N])
        if n:
            recording.submit(_record_triggered, recording.rec, self.program, pools.start_i[:n].copy(),
                             pools.start_f[:n].copy())
            st[K.S_START_N] = 0
        n = int(st[K.S_OUT_N])
        if n:
            recording.submit(_record_outcomes, recording.rec, self.program, self._tails,
                             pools.out_i[:n].copy(), pools.out_f[:n].copy())
            st[K.S_OUT_N] = 0

    def _window_utilization(self, window_s: float) -> dict[str, list[float]]:
        """Each instance's busy share of the window just closed, per component (the live view's heat
        map, as the DES's rows carry it; the run's own figure is the measured period's, in
        summary.json). A job's service counts in the window it arrives in: a window gains what ends
        after it and loses what it finishes of the previous one's, one service time at most."""
        S = self.program.stations
        served = S.floats[:, SERVICE_S].copy()
        shares = (served - self._served_seen) / (S.ints[:, SERVERS] * window_s)
        self._served_seen = served
        comps = self.program.comps
        return {name: shares[comps[c, C_BASE]:comps[c, C_BASE] + comps[c, C_COUNT]].tolist()
                for c, name in enumerate(self.program.comp_names)}

    # -- the end ----------------------------------------------------------------------------------
    def _edge_stats(self, pools: Pools) -> dict[str, dict[str, object]]:
        """Each policy edge's counters, as the DES reports them (sim/des/policy.Edge.stats)."""
        out: dict[str, dict[str, object]] = {}
        for e, name in enumerate(self.program.edge_names):
            x = pools.ex[e]
            stats: dict[str, object] = {"calls": int(x[X_CALLS]), "retries": int(x[X_RETRIES]),
                                        "timeouts": int(x[X_TIMEOUTS]),
                                        "retries_denied_by_budget": int(x[X_DENIED])}
            if self.scenario.policies[name].breaker is not None:
                stats["breaker"] = {"state": ("closed", "open", "half_open")[int(x[X_STATE])],
                                    "opened": int(x[X_OPENED]), "closed": int(x[X_CLOSED]),
                                    "rejected": int(x[X_REJECTED])}
            out[name] = stats
        return out

    def _extra(self, pools: Pools, rec: FastRecorder) -> dict[str, np.ndarray]:
        n = rec.n_windows
        extra: dict[str, np.ndarray] = {}
        prog = self.program
        if prog.cache_models:
            h, m = pools.win_hits[:n].astype(float), pools.win_misses[:n].astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                extra["cache_hit_ratio"] = np.where(h + m > 0, h / np.maximum(h + m, 1), np.nan)
        if (prog.comps[:, 13] >= 0).any():  # C_CONS_COMP: a consumer group
            extra["kafka_lag_max_s"] = pools.win_lag[:n]
            extra["kafka_backlog_msgs"] = (np.cumsum(pools.win_commit) - np.cumsum(pools.win_take))[:n]
        return extra

    def _state(self, pools: Pools, rec: FastRecorder, end: float, wall_s: float, drain: bool) -> RunState:
        prog, sc = self.program, self.scenario
        S = prog.stations
        # requests still in flight: started, never ended
        live = live_requests(pools)
        for f in np.unique(pools.rq[live, K.RQ_FLOW]).tolist() if live.size else []:
            sel = live[pools.rq[live, K.RQ_FLOW] == f]
            rec.unfinished(prog.flows[f], pools.rqf[sel, K.RQF_STARTED])
        self._tails.into({op: s.breakdown for op, s in rec.recorder.ops.items()})  # the tail breakdown
        recorder = rec.close(end, 1.0 / prog.cell.sample, self._extra(pools, rec))
        fleets = fleet_views(S, [(name, int(prog.comps[c, 1]), int(prog.comps[c, 2]))
                                 for c, name in enumerate(prog.comp_names)])
        st = pools.state
        async_errors = Counter({prog.causes[i]: int(x) for i, x in enumerate(pools.async_err) if x})
        cache_name = next(iter(prog.cache_models), None)
        backlog = int(pools.log_len.sum())
        return RunState(
            scenario=sc, cell=prog.cell, recorder=recorder, fleets=fleets,
            cache=prog.cache_models.get(cache_name) if cache_name else None,  # type: ignore[arg-type]
            cache_component=cache_name,
            redis_hits=int(st[K.S_HITS]), redis_misses=int(st[K.S_MISSES]),
            kafka_lag_max_s=float(pools.lag_max[0]), kafka_lag_max_msgs=int(st[K.S_LAG_MSGS]),
            kafka_backlog=backlog, async_errors=async_errors, mix=prog.mix, edges=self._edge_stats(pools),
            cassandra_faults={"unavailable": int(st[K.S_UNAVAILABLE]), "hints_stored": int(st[K.S_HINTS]),
                              "hints_replayed": int(st[K.S_HINTS_REPLAYED]),
                              "hedged_reads": int(st[K.S_HEDGES]), "lost_writes": int(st[K.S_LOST_WRITES])}
            if (prog.comps[:, 0] == 2).any() else {},
            kafka_unavailable=int(st[K.S_KAFKA_UNAVAILABLE]), rate_limited=int(st[K.S_RATE_LIMITED]),
            events=int(st[K.S_EVENTS]), sim_seconds=end, measured_seconds=end - float(sc.warmup_s),
            wall_seconds=wall_s, drained=drain, system=prog.system,
        )


class _Recording:
    """The recorder's work on the helper thread `pool`, done in the order it was submitted; `wait`
    returns once everything submitted is recorded (and raises what any of it raised). The queue
    holds at most two chunks' outputs: each chunk's arrivals are drawn on the same thread, queued
    behind the outputs of the chunk two before it, and the loop waits for them before running it."""

    def __init__(self, rec: FastRecorder, pool: ThreadPoolExecutor) -> None:
        self.rec = rec
        self._pool = pool
        self._queued: list[Future[None]] = []

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        self._queued.append(self._pool.submit(fn, *args))

    def wait(self) -> None:
        queued, self._queued = self._queued, []
        for done in queued:
            done.result()

    def __enter__(self) -> _Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.wait()


def _record_starts(rec: FastRecorder, started: list[tuple[str, np.ndarray]]) -> None:
    for name, t in started:
        rec.start(name, t, t)


def _record_triggered(rec: FastRecorder, prog: Program, flows: np.ndarray, times: np.ndarray) -> None:
    """Triggered requests that started (flow, and their start and first-attempt times)."""
    for f in np.unique(flows).tolist():
        sel = flows == f
        rec.start(prog.flows[f], times[:, 0][sel], times[:, 1][sel])


def _record_outcomes(rec: FastRecorder, prog: Program, tails: TailSums, oi: np.ndarray,
                     of: np.ndarray) -> None:
    """Requests that ended: (flow, ok, cause) and (t0, started, end, a success's seconds per label of
    its critical path) rows."""
    tails.add(oi, of, rec.W, rec.D)
    for f in np.unique(oi[:, 0]).tolist():
        sel = oi[:, 0] == f
        ok = oi[sel, 1] == 1
        causes = np.where(ok, 0, oi[sel, 2])
        rec.finish(prog.flows[f], of[sel, 0], of[sel, 1], of[sel, 2], ok, causes, prog.causes, Marks([]))
