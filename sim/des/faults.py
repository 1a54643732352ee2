"""Injecting the scenario's faults into the running system at their start and end times.

Faults on one node may overlap; each node keeps the faults active on it, and a fault's end
consults them:
- down (crash, zone_outage, broker_loss, shard_loss): the node goes down at the first one's start
  and comes back when the last one active on it ends. A `lose_data` crash that starts while the
  node is already down loses its disk then.
- slow: the factors active on a node multiply (x3 and x2 overlapping is x6), and the node is back
  to x1 exactly when the last ends.
- gc_pauses: a node is paused (capacity 0) while any pause covers it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sim.des.station import Station, schedule
from sim.faults import Fault

if TYPE_CHECKING:
    from sim.des.engine import Engine


class FaultInjector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.env = engine.env
        self._down: dict[Station, int] = {}  # down faults active on each node
        self._slow: dict[Station, list[float]] = {}  # slow factors active on each node
        self._paused: dict[Station, int] = {}  # GC pauses in progress on each node

    def arm(self) -> None:
        for fault in self.engine.scenario.faults:
            schedule(self.env, fault.start_s, self._start, fault)
            schedule(self.env, fault.end_s, self._end, fault)

    def targets(self, fault: Fault) -> list[Station]:
        fleets = self.engine.fleets
        if fault.kind == "zone_outage":
            return [st for fleet in fleets.values() for st in fleet.stations if st.zone == fault.zone]
        fleet = fleets.get(fault.component or "")
        if fleet is None:
            return []
        size = len(fleet.stations)
        return [fleet.stations[i] for i in fault.node_indices(size) if i < size]

    def _start(self, event: Any) -> None:
        fault: Fault = event._value
        engine = self.engine
        if fault.kind == "load_spike":
            engine.load_factor *= fault.factor or 1.0
            return
        stations = self.targets(fault)
        if fault.kind == "slow":
            for st in stations:
                self._slow.setdefault(st, []).append(fault.factor or 1.0)
                st.slow = math.prod(self._slow[st])
        elif fault.kind == "gc_pauses":
            self._pause(stations, fault)
        else:  # crash, zone_outage, broker_loss, shard_loss
            for st in stations:
                active = self._down.get(st, 0)
                self._down[st] = active + 1
                if active == 0:
                    self._crash(st, fault)
                elif fault.lose_data and st.fleet.name in engine.cassandras:
                    engine.cassandras[st.fleet.name].crashed(st, True)  # down already; its disk is lost now

    def _end(self, event: Any) -> None:
        fault: Fault = event._value
        engine = self.engine
        if fault.kind == "load_spike":
            engine.load_factor /= fault.factor or 1.0
            return
        stations = self.targets(fault)
        if fault.kind == "slow":
            for st in stations:
                factors = self._slow[st]
                factors.remove(fault.factor or 1.0)
                st.slow = math.prod(factors)
        elif fault.kind in ("crash", "zone_outage", "broker_loss", "shard_loss"):
            for st in stations:
                active = self._down[st] - 1
                self._down[st] = active
                if active == 0:  # the last fault holding it down has ended
                    self._recover(st)

    def _crash(self, st: Station, fault: Fault) -> None:
        if st.down:
            return
        st.crash()
        engine = self.engine
        name = st.fleet.name
        if name in engine.cassandras:
            engine.cassandras[name].crashed(st, fault.lose_data)
        elif name in engine.kafkas:
            engine.kafkas[name].broker_lost(st, fault.election_s)

    def _recover(self, st: Station) -> None:
        if not st.down:
            return
        st.recover()
        engine = self.engine
        name = st.fleet.name
        if name in engine.cassandras:
            engine.cassandras[name].recovered(st)
        elif name in engine.kafkas:
            engine.kafkas[name].broker_recovered(st)
        elif name in engine.redises:
            engine.redises[name].restarted_empty(st.index)

    def _pause(self, stations: list[Station], fault: Fault) -> None:
        """Stop-the-world pauses every `every_s` within the fault window."""
        assert fault.every_s is not None and fault.pause_ms is not None
        pause_s = fault.pause_ms / 1e3
        t = 0.0
        while t < fault.duration_s:
            schedule(self.env, t, self._pause_begin, stations)
            schedule(self.env, t + min(pause_s, fault.duration_s - t), self._pause_end, stations)
            t += fault.every_s

    def _pause_begin(self, event: Any) -> None:
        for st in event._value:
            active = self._paused.get(st, 0)
            self._paused[st] = active + 1
            if active == 0:
                st.set_capacity(0)

    def _pause_end(self, event: Any) -> None:
        for st in event._value:
            active = self._paused[st] - 1
            self._paused[st] = active
            if active == 0:  # no other pause covers it
                st.set_capacity(st.servers)
