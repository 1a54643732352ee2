"""The `--sample F` cell: a fraction F of users and traffic on the same fraction of every fleet.

Each fleet keeps ceil(F x count) instances, never fewer than it needs to work (Cassandra's
replication factor, Kafka's replication factor, one instance). Where rounding gives a fleet a
share other than F, each of its simulated instances carries F/share times the per-instance load
of the full design; the cell says so for that fleet, and every output reports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.scenario import Scenario
from sim.workload import cell_size


@dataclass(frozen=True)
class FleetCell:
    configured: int
    simulated: int

    def share(self) -> float:
        return self.simulated / self.configured


@dataclass(frozen=True)
class Cell:
    sample: float
    users: int
    conversations: int
    sends_per_sec: float
    reads_per_sec: float
    fleets: dict[str, FleetCell]
    notes: list[str] = field(default_factory=list)

    def load_factor(self, fleet: str) -> float:
        """Per-instance offered load in the cell relative to the full design."""
        return self.sample / self.fleets[fleet].share()

    def as_dict(self) -> dict[str, object]:
        return {
            "fraction": self.sample,
            "users": self.users,
            "conversations": self.conversations,
            "sends_per_sec": self.sends_per_sec,
            "reads_per_sec": self.reads_per_sec,
            "fleets": {
                name: {
                    "configured": f.configured,
                    "simulated": f.simulated,
                    "share": f.share(),
                    "per_instance_load_factor": self.load_factor(name),
                }
                for name, f in self.fleets.items()
            },
            "notes": list(self.notes),
        }


def _fleet(configured: int, sample: float, floor: int) -> FleetCell:
    return FleetCell(configured, min(configured, max(floor, math.ceil(configured * sample - 1e-9))))


def make_cell(scenario: Scenario) -> Cell:
    f = scenario.sample
    fleets: dict[str, FleetCell] = {}
    if scenario.gateway.enabled:
        fleets["gateway"] = _fleet(scenario.gateway.instances, f, 1)
    if scenario.message_service.enabled:
        fleets["message_service"] = _fleet(scenario.message_service.instances, f, 1)
    if scenario.group_service.enabled:
        fleets["group_service"] = _fleet(scenario.group_service.instances, f, 1)
    if scenario.cassandra.enabled:
        fleets["cassandra"] = _fleet(scenario.cassandra.nodes, f, scenario.cassandra.replication_factor)
    if scenario.redis.enabled:
        fleets["redis"] = _fleet(scenario.redis.shards, f, 1)
    if scenario.kafka.enabled:
        fleets["kafka"] = _fleet(scenario.kafka.brokers, f, scenario.kafka.replication_factor)
        fleets["kafka_partitions"] = _fleet(scenario.kafka.partitions, f, 1)
    notes = []
    if f < 1:
        for name, fc in fleets.items():
            factor = f / fc.share()
            if abs(factor - 1) > 0.01:
                notes.append(
                    f"{name}: {fc.simulated} of {fc.configured} simulated (share {fc.share():.4g} vs "
                    f"sample {f:.4g}): each simulated instance carries {factor:.3g}x the full design's "
                    f"per-instance load"
                )
        for name in ("gateway", "message_service"):
            section = getattr(scenario, name)
            if section.enabled and section.balancer == "round_robin" and fleets[name].simulated > 0:
                notes.append(
                    f"{name}: round_robin balancing over {fleets[name].simulated} instead of "
                    f"{fleets[name].configured} instances changes each instance's arrival pattern "
                    f"(a strict rotation over n instances smooths arrivals), so queueing in the cell "
                    f"differs from the full fleet; balancer: random keeps it"
                )
    return Cell(
        sample=f,
        users=cell_size(scenario.workload.users, f),
        conversations=cell_size(scenario.workload.conversations, f),
        sends_per_sec=scenario.workload.sends_per_sec * f,
        reads_per_sec=scenario.workload.reads_per_sec * f,
        fleets=fleets,
        notes=notes,
    )
