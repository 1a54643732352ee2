"""Faults a scenario schedules: what breaks, where, when and for how long (the schema).

Each entry of `faults:` has a `kind`, a `start_s` and a `duration_s`:

- crash: nodes stop; queued and in-service work fails, nothing is served (component, count|nodes;
  `lose_data: true` loses their disks too).
- zone_outage: every node of every fleet in `zone` crashes (zone).
- slow: service times x `factor` on the nodes, a gray failure (component, count|nodes, factor).
- gc_pauses: every `every_s` the nodes stop for `pause_ms` (component, count|nodes, pause_ms, every_s).
- broker_loss: Kafka brokers crash; their partitions have no leader for `election_s`, then a follower
  leads (count|nodes).
- shard_loss: Redis shards crash; on recovery their keys are cold, a miss storm on Cassandra
  (count|nodes).
- load_spike: offered load x `factor` (factor).

Nodes are instance indices of the configured fleet (0-based); with `count`, the first `count`
nodes. Node i of every fleet is in zone i mod `network.zones`. With `--sample`, faults name
nodes of the simulated cell (the run reports the cell's size).

A fault that would do nothing is an error, not a fault reported as injected (`fault_problem`):
one that starts at or after the run ends (it may start during the warm-up), one naming nodes
(or a `count`) beyond the instances the cell simulates, and a zone outage of a zone in which
the cell simulates no instance of a fleet that has one there at full scale.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal["crash", "zone_outage", "slow", "gc_pauses", "broker_loss", "shard_loss", "load_spike"]
Fleet = Literal["gateway", "message_service", "group_service", "cassandra", "redis", "kafka"]
FLEETS = ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka")


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    component: str | None = Field(None, description="a messaging section, or a design's component name")
    count: int | None = Field(None, ge=1, description="the first `count` nodes of the fleet")
    nodes: list[int] | None = Field(None, description="node indices (0-based)")
    zone: int | None = Field(None, ge=0)
    factor: float | None = Field(None, gt=0)
    pause_ms: float | None = Field(None, gt=0)
    every_s: float | None = Field(None, gt=0)
    election_s: float = Field(5.0, ge=0, description="broker_loss: time until a follower leads")
    lose_data: bool = Field(False, description="crash: the nodes' disks are lost too")

    @model_validator(mode="after")
    def _fits_kind(self) -> Fault:
        k = self.kind
        if k == "broker_loss":
            self.component = self.component or "kafka"
        if k == "shard_loss":
            self.component = self.component or "redis"
        if k in ("crash", "slow", "gc_pauses", "broker_loss", "shard_loss"):
            if self.component is None:
                raise ValueError(f"a {k} fault needs component: a fleet's name ({', '.join(FLEETS)}, or a "
                                 "design's component)")
            if (self.count is None) == (self.nodes is None):
                raise ValueError(f"a {k} fault takes exactly one of count or nodes")
            if self.nodes is not None and (not self.nodes or min(self.nodes) < 0):
                raise ValueError("nodes must be a non-empty list of indices >= 0")
            if self.nodes is not None and len(set(self.nodes)) < len(self.nodes):
                twice = sorted({n for n in self.nodes if self.nodes.count(n) > 1})
                raise ValueError(f"nodes {self.nodes} names {twice} more than once; allowed: distinct "
                                 "indices")
        if k == "zone_outage" and self.zone is None:
            raise ValueError("a zone_outage fault needs zone: (0-based)")
        if k in ("slow", "load_spike") and self.factor is None:
            raise ValueError(f"a {k} fault needs factor: (> 0)")
        if k == "gc_pauses" and (self.pause_ms is None or self.every_s is None):
            raise ValueError("a gc_pauses fault needs pause_ms and every_s")
        return self

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def label(self) -> str:
        where = self.component or (f"zone {self.zone}" if self.zone is not None else "workload")
        nodes = f" nodes {self.nodes}" if self.nodes else (f" x{self.count}" if self.count else "")
        extra = f" x{self.factor:g}" if self.factor else ""
        return f"{self.kind} {where}{nodes}{extra} at {self.start_s:g}-{self.end_s:g} s"

    def node_indices(self, fleet_size: int) -> list[int]:
        return list(self.nodes) if self.nodes is not None else list(range(min(self.count or 0, fleet_size)))


UNITS = {"cassandra": "nodes", "redis": "shards", "kafka": "brokers"}  # the rest: instances


def fault_problem(fault: Fault, duration_s: float, zones: int, sample: float,
                  configured: dict[str, int], simulated: dict[str, int]) -> str | None:
    """Why `fault` would do nothing in this run, with what is allowed; None if it acts.

    `configured` and `simulated` give each enabled fleet's instances in the design and in the
    `sample` cell (sim/sampling.py); node i of a fleet is in zone i mod `zones`.
    """
    if fault.start_s >= duration_s:
        return (f"{fault.label()} starts at or after the run ends (duration_s {duration_s:g}); allowed: "
                f"start_s below {duration_s:g} (a fault may start during the warm-up), or a longer "
                "--duration")
    name = fault.component
    if name is not None and name in simulated and (fault.nodes is not None or fault.count is not None):
        k, n, unit = simulated[name], configured[name], UNITS.get(name, "instances")
        wanted = max(fault.nodes) + 1 if fault.nodes is not None else fault.count or 0
        if wanted <= k:
            return None
        what = f"nodes {fault.nodes}" if fault.nodes is not None else f"count {fault.count}"
        if k == n:
            return f"{fault.label()}: {name} has {n} {unit}; got {what}; allowed: " + (
                f"nodes 0..{n - 1}" if fault.nodes is not None else f"count 1..{n}")
        beyond = f"{what} are outside it" if fault.nodes is not None else f"{what} is more than it has"
        return (f"{fault.label()}: the --sample {sample:g} cell simulates {k} of {name}'s {n} {unit}, so "
                f"{beyond}; allowed: "
                + (f"nodes 0..{k - 1}" if fault.nodes is not None else f"count 1..{k}")
                + f" of the cell, or --sample {_sample_for(wanted, n)} or larger (--sample 1: all {n})")
    if fault.kind == "zone_outage" and fault.zone is not None:
        # the fleets with an instance in the zone at full scale but none in the cell
        missing = [f for f in simulated if configured[f] > fault.zone >= simulated[f]]
        if missing:
            cells = ", ".join(f"{simulated[f]} of {configured[f]} {f} {UNITS.get(f, 'instances')}"
                              for f in missing)
            lowest = min(simulated[f] for f in missing)
            need = max(_sample_for(fault.zone + 1, configured[f]) for f in missing)
            return (f"{fault.label()}: the --sample {sample:g} cell simulates {cells} (instance i is in zone "
                    f"i mod {zones}), none of them in zone {fault.zone}, so the outage would miss what it "
                    f"takes at full scale; allowed: zone 0..{lowest - 1}, or --sample {need} or larger")
    return None


def _sample_for(instances: int, configured: int) -> str:
    """The smallest --sample (as text, rounded up) whose cell simulates `instances` of `configured`."""
    f = min(1.0, instances / configured)
    scale = 10.0 ** (2 - math.floor(math.log10(f)))  # three significant digits
    return f"{math.ceil(f * scale - 1e-6) / scale:g}"
