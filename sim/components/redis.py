"""Redis: shards holding every conversation's recent list, each shard with `redis.replicas`
replica nodes in other zones.

- memory: the working set is every conversation's recent list,
  conversations x recent_messages x (mean message bytes + 64 B), as sim/cache.py lays it out. One
  shard holds `memory_gb_per_shard x usable_memory_fraction`. A cache smaller than its working set
  still works, at a lower hit ratio: a WARN, not a fleet that cannot hold.
- zones: shards fail over to their replicas in other zones, so no dimension carries zone headroom;
  with `redis.replicas` 0 a lost zone takes its share of the cache with it (a WARN).
- counts: the plan counts shards; nodes (and their cost) are shards x (1 + replicas).
- its workers are not CPU threads (Redis runs commands on one thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.cache import GIB, LIST_ENTRY_OVERHEAD_BYTES, list_bytes
from sim.components.base import ComponentKind
from sim.components.dimensions import Dimension, Finding
from sim.components.units import amount, byte_text, ceil_instances, number

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.pricing import InstanceType
    from sim.scenario import Scenario


def redis_memory_dimension(sc: Scenario, flows: Flows) -> Dimension:
    w, r = sc.workload, sc.redis
    item_bytes = list_bytes(w.recent_messages, flows.mean_message_bytes)
    working_set_gib = w.conversations * item_bytes / GIB
    per = r.memory_gb_per_shard * r.usable_memory_fraction
    needed = ceil_instances(working_set_gib / per)
    return Dimension(
        "memory", "GiB", working_set_gib, per, needed,
        f"{w.conversations:,} conversations x {w.recent_messages} recent messages x "
        f"({flows.mean_message_bytes:,.0f} + {LIST_ENTRY_OVERHEAD_BYTES}) B = "
        f"{amount(working_set_gib, 'GiB')} "
        f"({byte_text(working_set_gib * GIB)})",
        f"{r.memory_gb_per_shard:g} GiB x {r.usable_memory_fraction:g} usable = {number(per)} GiB"
        + (f" (each of its {r.replicas} replica(s) holds the same)" if r.replicas else ""),
        {"conversations": w.conversations, "list_bytes": item_bytes,
         "working_set_bytes": working_set_gib * GIB}, needed_all_zones=needed)


def _misses_go_to(sc: Scenario) -> str:
    return "Cassandra" if sc.cassandra.enabled else "nowhere (reads fail)"


@dataclass(frozen=True)
class RedisKind(ComponentKind):
    def nodes_per_instance(self, sc: Scenario) -> int:
        return 1 + sc.redis.replicas

    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        return [redis_memory_dimension(sc, flows)]

    def consistency(self, sc: Scenario, hw: InstanceType | None, type_name: str | None) -> list[Finding]:
        if hw is not None and sc.redis.memory_gb_per_shard > hw.memory_gb:
            return [Finding(self.name, "memory", f"memory_gb_per_shard {sc.redis.memory_gb_per_shard:g} GiB "
                                                 f"exceeds {type_name}'s {hw.memory_gb:g} GiB")]
        return []

    def fleet_findings(self, sc: Scenario) -> tuple[list[Finding], list[str]]:
        zones = sc.network.zones
        if not sc.redis.enabled or zones <= 1:
            return [], []
        if sc.redis.replicas == 0:
            return [Finding(self.name, "zones", (
                f"replicas 0 over {zones} zones: losing a zone loses its shards' lists (about 1/{zones} of "
                "the cache) until they refill, and those lookups miss to "
                f"{_misses_go_to(sc)}; set redis.replicas"))], []
        return [], [f"redis: {sc.redis.replicas} replica(s) per shard in other zones take over a lost "
                    "zone's shards, so shard counts carry no zone headroom"]

    def explain(self, d: Dimension, sc: Scenario, flows: Flows) -> str | None:
        if d.name != "memory":
            return None
        return (f"Why: the recent lists are {d.basis}; one shard holds {d.capacity_basis}. The cache "
                f"still works, at the hit ratio the cache model expects ({flows.hit_ratio:.3f}); misses "
                f"go to {_misses_go_to(sc)}.")

    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        r, w = sc.redis, sc.workload
        return (f"{r.memory_gb_per_shard:g} GB per shard, last {w.recent_messages} messages",)


REDIS = RedisKind(name="redis", label="Redis", noun="shards", count_field="shards", shape="cylinder",
                  diagram_rank=4, diagram_layer=3, diagram_column=0, sized_on=("cpu", "memory", "network"),
                  zone_dimensions=(), soft_dimensions=("memory",), cpu_threads=False,
                  summary_sections=("cache",))
