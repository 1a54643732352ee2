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
"""

from __future__ import annotations

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
    component: Fleet | None = None
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
                raise ValueError(f"a {k} fault needs component: one of {', '.join(FLEETS)}")
            if (self.count is None) == (self.nodes is None):
                raise ValueError(f"a {k} fault takes exactly one of count or nodes")
            if self.nodes is not None and (not self.nodes or min(self.nodes) < 0):
                raise ValueError("nodes must be a non-empty list of indices >= 0")
        if k == "broker_loss" and self.component != "kafka":
            raise ValueError("broker_loss applies to component kafka")
        if k == "shard_loss" and self.component != "redis":
            raise ValueError("shard_loss applies to component redis")
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
