"""The end of a run: the fast engine's counters, fleets and recordings as a neutral RunState."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sim.arrays.record import FleetView, StationView, histogram_from
from sim.arrays.station import (
    ARRIVALS,
    BUSY_S,
    COMPLETIONS,
    JOBS_S,
    QUEUED,
    REJECTIONS,
    SERVED,
    SERVERS,
    STARTED,
    WAIT_S,
)
from sim.fast.delivery import Delivery
from sim.fast.flight import Flight
from sim.fast.system import FLEETS, System
from sim.fast.tables import ERRORS, NONE, TIMED_EDGES
from sim.run_state import RunState
from sim.system.compile import messaging_system


class Finish:
    """Builds the RunState of a run from its stages."""

    def __init__(self, system: System, flight: Flight, delivery: Delivery) -> None:
        self.sys = system
        self.fl = flight
        self.delivery = delivery

    def _edge_stats(self) -> dict[str, dict[str, int]]:
        """The policies' edges as the DES reports them (timeouts only: nothing else is supported)."""
        out = {}
        for edge in self.sys.scenario.policies:
            timeouts = (
                self.fl.client_timeouts
                if edge == "client->gateway"
                else int(self.fl.timed_out[TIMED_EDGES.index(edge)])
            )
            out[edge] = {
                "calls": int(self.fl.edge_calls[edge]),
                "retries": 0,
                "timeouts": timeouts,
                "retries_denied_by_budget": 0,
            }
        return out

    def state(self, end: float, wall_s: float, drain: bool) -> RunState:
        sc = self.sys.scenario
        s, r = self.fl.sends, self.fl.reads
        # requests that never got an outcome: in flight at the end
        self.fl.rec.unfinished("send", s["t0"][(s["rec"] & 1) == 0])
        started = (s["d_st"] != NONE) & ((s["rec"] & 2) == 0)
        self.fl.rec.unfinished("delivery", s["commit"][started])
        self.fl.rec.unfinished("read", r["t0"][r["rec"] == 0])
        measured = end - sc.warmup_s
        extra: dict[str, np.ndarray] = {}
        n = self.fl.rec.n_windows
        if "redis" in self.sys.base:
            h, m = self.fl.hits[1 : n + 1], self.fl.misses[1 : n + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                extra["cache_hit_ratio"] = np.where(h + m > 0, h / np.maximum(h + m, 1), np.nan)
        if self.sys.group_on:
            extra["kafka_lag_max_s"] = self.delivery.lag_win[1 : n + 1]
            backlog = np.cumsum(self.delivery.commit_win) - np.cumsum(self.delivery.take_win)
            extra["kafka_backlog_msgs"] = backlog[1 : n + 1]
        recorder = self.fl.rec.close(end, 1.0 / self.sys.cell.sample, extra)
        fleets = {}
        S = self.sys.stations
        for name in FLEETS[:-1]:
            if name not in self.sys.base:
                continue
            f = FLEETS.index(name)
            b, cnt = self.sys.base[name], self.sys.count[name]
            views = [
                StationView(
                    i,
                    int(S.ints[b + i, SERVERS]),
                    int(S.ints[b + i, ARRIVALS]),
                    int(S.ints[b + i, REJECTIONS]),
                    int(S.ints[b + i, COMPLETIONS]),
                    float(S.floats[b + i, BUSY_S]),
                    float(S.floats[b + i, JOBS_S]),
                    int(S.ints[b + i, STARTED]),
                    int(S.ints[b + i, QUEUED]),
                    float(S.floats[b + i, WAIT_S]),
                )
                for i in range(cnt)
            ]
            zero = int(S.waits[f, -1])
            total, vmax, vmin = S.wait_stats[f]
            waits = histogram_from(
                S.waits[f, :-1], zero, float(total), 0.0 if zero else float(vmin), max(float(vmax), 0.0)
            )
            fleets[name] = FleetView(name, views, waits)
        async_errors = Counter({ERRORS[i]: int(x) for i, x in enumerate(self.fl.async_errors) if x})
        backlog_end = int(self.delivery.commit_win.sum() - self.delivery.take_win.sum()) if not drain else 0
        state = RunState(
            scenario=sc,
            cell=self.sys.cell,
            recorder=recorder,
            fleets=fleets,  # type: ignore[arg-type]
            cache=self.sys.cache,
            redis_hits=int(self.fl.hits[0]),
            redis_misses=int(self.fl.misses[0]),
            kafka_lag_max_s=self.delivery.lag_max_s,
            kafka_lag_max_msgs=self.delivery.lag_max_msgs,
            kafka_backlog=backlog_end,
            async_errors=async_errors,
            mix=self.sys.mix,
            edges=self._edge_stats(),
            cassandra_faults=dict(self.fl.cass_faults) if "cassandra" in self.sys.base else {},
            kafka_unavailable=0,
            rate_limited=self.fl.rate_limited,
            events=int(S.counts[SERVED]) - self.fl.gate_jobs,
            sim_seconds=end,
            measured_seconds=measured,
            wall_seconds=wall_s,
            drained=drain,
            system=messaging_system(sc),
        )
        if self.sys.group_on:
            limit = sc.group_service.max_in_flight
            busiest = float(self.delivery.slot_s.max()) / measured if measured > 0 else 0.0
            if self.delivery.gate_waits or busiest > 0.2 * limit:
                self.sys.cell.notes.append(
                    f"fast engine: the busiest consumer had {busiest:,.0f} deliveries in flight on average "
                    f"from taking a record to its last inbox write, against group_service.max_in_flight "
                    f"= {limit} ({self.delivery.gate_waits:,} records waited for a slot); the fast engine "
                    f"holds a slot only for the group-service work, so where the bound binds, delivery "
                    f"latency and consumer lag are too optimistic: confirm with --engine des"
                )
        return state
