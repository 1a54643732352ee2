"""What an engine hands to the result builder (sim/result.py): the neutral run state.

Both engines fill it; neither owns it. Fleets are read through `FleetStats`: the DES's
sim/des/station.Fleet and the array engines' sim/arrays/record.FleetView both provide it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sim.cache import CacheModel
from sim.histogram import Histogram
from sim.sampling import Cell
from sim.scenario import Scenario

# what an engine is handed besides the scenario: simulated seconds done and in all, as they pass;
# and each per-second timeseries row, as its window closes
Progress = Callable[[float, float], None]
OnWindow = Callable[[dict[str, float]], None]


class StationStats(Protocol):
    index: int
    arrivals: int
    rejections: int
    completions: int
    jobs_area: float

    def utilization(self, elapsed_s: float) -> float: ...


class FleetStats(Protocol):
    stations: Sequence[Any]  # StationStats, plus the wait counters sim/result.py reads

    def wait_histogram(self) -> Histogram: ...


@dataclass
class RunState:
    """What the engine hands to the result builder."""

    scenario: Scenario
    cell: Cell
    recorder: Any  # sim.metrics.Recorder, or sim/arrays/record.FastRecorder (same interface)
    fleets: dict[str, Any]  # FleetStats per fleet
    cache: CacheModel | None
    redis_hits: int
    redis_misses: int
    kafka_lag_max_s: float
    kafka_lag_max_msgs: int
    kafka_backlog: int
    async_errors: Counter[str]
    mix: dict[str, float]
    edges: dict[str, Any]
    cassandra_faults: dict[str, int]
    kafka_unavailable: int
    rate_limited: int
    events: int
    sim_seconds: float
    measured_seconds: float
    wall_seconds: float
    drained: bool
    system: Any = None  # sim.system.model.System the run simulated (flows, components by name)
    cache_component: str | None = "redis"  # the redis component whose cache `cache` models
