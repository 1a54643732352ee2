"""The fast engine: every request of the scenario, in time chunks, fleet by fleet, with arrays.

This module wires the stages; the system they run is built once (sim/fast/system.py), the run's
tables and counters are a Flight (sim/fast/flight.py), and the RunState comes from
sim/fast/finish.py.

Flows and rules are sim/des/engine.py's (the reference): send = gateway -> message service ->
{Cassandra write at the write consistency, Redis append, Kafka produce}, acknowledged when the
`ack_after` steps have succeeded; delivery = Kafka commit -> the partition's consumer (group
service) -> one inbox write per recipient (fan-out on write); read = gateway -> message service
-> Redis GET -> on a miss a Cassandra read, then a cache fill nobody waits for.

A chunk [t, t + T) takes the requests arriving in it (sim/fast/requests.py) and moves every job
through the fleets in this order: gateway and message service (sim/fast/front.py), Kafka (time
slices: followers come back to the brokers), the consumers' gates, the group service
(sim/fast/delivery.py), Redis with Cassandra (time slices: fills come back to Redis;
sim/fast/steps.py), then acknowledges, records and compacts (sim/fast/outcomes.py).
At every fleet only the jobs arriving before t + T are served; later ones wait for the
next chunk, where nothing can arrive earlier than t + T. Each station therefore serves its
arrivals in time order across chunks, carrying its servers' free times and its waiting jobs, and
the results do not depend on T (tests/test_fast.py checks that). Requests still in flight at a
chunk's end keep their rows; finished ones are recorded and dropped, so memory follows the
requests in flight, not the run's length.

Where this engine departs from the DES (documented in README and checked where it matters):
* the consumer's `max_in_flight` bound is a FIFO gate of that many slots in front of the group
  service, each slot held for the hop and the group-service work, not for the group service's
  queueing nor the inbox writes; the DES takes records from a consumer's partitions round robin
  and holds the slot until the last inbox write. The two agree while the bound does not bind
  (`summary.sample.notes` says when it did);
* a `round_robin` message service rotates in order of the requests' arrival at the system, the
  DES in order of their leaving the gateway (both a strict rotation);
* random numbers are counter-based (sim/arrays/rng.py): same seed, same results, but not the DES's
  sample path; the two agree statistically (tests/test_fast.py).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable

from sim.arrays.station import LAST_EVENT, Stations
from sim.fast.delivery import Delivery
from sim.fast.finish import Finish
from sim.fast.flight import Flight
from sim.fast.front import Front
from sim.fast.outcomes import Outcomes
from sim.fast.requests import Requests
from sim.fast.steps import Steps
from sim.fast.support import check_supported
from sim.fast.system import System
from sim.run_state import RunState
from sim.scenario import Scenario

Progress = Callable[[float, float], None]
OnWindow = Callable[[dict[str, float]], None]


class FastEngine:
    """Build once from a scenario; `run()` simulates it and returns the DES's RunState shape."""

    def __init__(
        self,
        scenario: Scenario,
        progress: Progress | None = None,
        chunk_s: float | None = None,
        on_window: OnWindow | None = None,
    ) -> None:
        check_supported(scenario)
        self.scenario = scenario
        self.progress = progress
        # each window's row once a chunk has passed its end: provisional (a request finishing in it
        # may still be recorded a chunk later); the RunState's rows are the final ones
        self.on_window = on_window
        self.system = System(scenario, chunk_s)
        self.stations: Stations = self.system.stations
        self.slices = {"kafka": 0, "storage": 0}  # time slices taken by each cycle (of the last run)

    def run(self, drain: bool = False) -> RunState:
        sy = self.system
        wall0 = time.perf_counter()
        D = self.scenario.duration_s
        fl = Flight(sy, drain)
        self.slices = fl.slices
        steps = Steps(sy, fl)
        front = Front(sy, fl, steps)
        requests = Requests(sy, fl, front)
        delivery = Delivery(sy, fl, steps)
        outcomes = Outcomes(sy, fl, delivery)

        def chunk(t0c: float, t1c: float, arrivals: bool) -> None:
            fl.new_chunk()
            if arrivals:
                requests.arrive(t1c)
            for fleet in ("gateway", "message_service"):
                if fleet in sy.base:
                    front.serve(fleet, t1c)
            if "kafka" in sy.base:
                delivery.kafka(t0c, t1c)
            if sy.group_on:
                delivery.consumers(t1c)
                delivery.group(t1c)
            if "cassandra" in sy.base or "redis" in sy.base:
                steps.cycle(t0c, t1c)
            outcomes.acks()
            outcomes.record()
            outcomes.compact()

        # Everything built so far (populations, tables, the scenario) is long-lived: keep the cyclic
        # garbage collector from re-scanning it at every allocation burst (it cost ~9% of a run).
        gc.freeze()
        sent = 0  # windows handed to on_window
        try:
            t = 0.0
            while t < D:
                t1 = min(D, (math.floor(t / sy.chunk_s + 1e-9) + 1) * sy.chunk_s)
                chunk(t, t1, arrivals=True)
                t = t1
                if self.on_window is not None:
                    rec = fl.rec
                    while sent < rec.n_windows and (sent + 1) * rec.window_s <= t + 1e-9:
                        self.on_window(rec.window_row(sent, 1.0 / sy.cell.sample))
                        sent += 1
                if self.progress is not None:
                    self.progress(t, D)
            end = D
            if drain:
                chunk(D, math.inf, arrivals=False)
                end = max(D, float(self.stations.glob[LAST_EVENT]))
        finally:
            gc.unfreeze()
        return Finish(sy, fl, delivery).state(end, time.perf_counter() - wall0, drain)
