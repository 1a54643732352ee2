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
- a design's Redis: memory holds every key of the key spaces its flows look up or write, count x
  (mean value_bytes + sim.system.keys.CACHE_ENTRY_OVERHEAD_BYTES). Looked up by a cache step (a
  miss goes to the miss steps), short memory is a WARN, also when flows write through to it (the
  hit ratio drops, as Che's model already assumes); reached by plain calls only, it is the keys'
  home, a store that must hold them, and short memory is CRITICAL.
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
    from sim.fleet_specs import Redis
    from sim.pricing import InstanceType
    from sim.scenario import Scenario
    from sim.traffic import DesignTraffic


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


def design_memory_dimension(r: Redis, name: str, demand: DesignTraffic) -> Dimension:
    from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES

    total, parts = 0.0, []
    for space in demand.spaces(name):
        count, value = demand.system.keys[space].count, demand.value_bytes(space)
        total += count * (value + CACHE_ENTRY_OVERHEAD_BYTES)
        parts.append(f"{space} {count:,} keys x ({value:,.0f} + {CACHE_ENTRY_OVERHEAD_BYTES}) B")
    working_set_gib = total / GIB
    per = r.memory_gb_per_shard * r.usable_memory_fraction
    needed = ceil_instances(working_set_gib / per)
    return Dimension(
        "memory", "GiB", working_set_gib, per, needed,
        f"{' + '.join(parts) or 'no key space reaches it'} = {amount(working_set_gib, 'GiB')} "
        f"({byte_text(total)})",
        f"{r.memory_gb_per_shard:g} GiB x {r.usable_memory_fraction:g} usable = {number(per)} GiB"
        + (f" (each of its {r.replicas} replica(s) holds the same)" if r.replicas else ""),
        {"working_set_bytes": total}, needed_all_zones=needed)


def cache_only(name: str, demand: DesignTraffic) -> bool:
    """Flows look keys up in it with a cache step, so a key it does not hold is a miss answered by the
    miss steps (writes into it, write-through, keep it a cache); a Redis only called directly is
    the keys' home, a store."""
    return any(c.role == "lookup" for c in demand.to(name))


def _misses_go_to(sc: Scenario) -> str:
    return "Cassandra" if sc.cassandra.enabled else "nowhere (reads fail)"


@dataclass(frozen=True)
class RedisKind(ComponentKind):
    def nodes_per_instance(self, sc: Scenario) -> int:
        return 1 + int(self.section(sc).replicas)

    def design_dimensions(self, sc: Scenario, demand: DesignTraffic, hw: InstanceType | None
                          ) -> tuple[list[Dimension], list[str]]:
        return [design_memory_dimension(self.section(sc), self.name, demand)], []

    def design_soft_dimensions(self, demand: DesignTraffic) -> tuple[str, ...]:
        return self.soft_dimensions if cache_only(self.name, demand) else ()

    def design_explain(self, d: Dimension, sc: Scenario, demand: DesignTraffic) -> str | None:
        if d.name != "memory":
            return None
        why = f"Why: the keys it is sent are {d.basis}; one shard holds {d.capacity_basis}."
        hit = demand.loads.hit_ratios.get(self.name)
        if cache_only(self.name, demand):
            return (f"{why} The cache still works, at the hit ratio Che's model gives ({hit or 0.0:.3f}); "
                    "misses take the lookup's miss steps.")
        stores = sorted({f"{c.flow}: {c.op}" for c in demand.to(self.name)
                         if c.role not in ("lookup", "fill")})
        lookups = f"; its cache lookups hit {hit:.3f} by Che's model" if hit is not None else ""
        return (f"{why} Flows use it as a store ({', '.join(stores)}): keys it cannot hold are evicted and "
                f"lost{lookups}.")

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        r = self.section(sc)
        noun = "replica" if r.replicas == 1 else "replicas"
        replicas = f", {r.replicas} {noun} per shard" if r.replicas else ""
        return (f"{r.memory_gb_per_shard:g} GB per shard{replicas}",)

    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        return [redis_memory_dimension(sc, flows)]

    def consistency(self, sc: Scenario, hw: InstanceType | None, type_name: str | None) -> list[Finding]:
        r = self.section(sc)
        if hw is not None and r.memory_gb_per_shard > hw.memory_gb:
            return [Finding(self.name, "memory", f"memory_gb_per_shard {r.memory_gb_per_shard:g} GiB "
                                                 f"exceeds {type_name}'s {hw.memory_gb:g} GiB")]
        return []

    def fleet_findings(self, sc: Scenario) -> tuple[list[Finding], list[str]]:
        zones = sc.network.zones
        r = self.section(sc)
        if not r.enabled or zones <= 1:
            return [], []
        if r.replicas == 0:
            held = "keys" if self.bound else "lists"
            misses = "their lookups miss" if self.bound else f"those lookups miss to {_misses_go_to(sc)}"
            return [Finding(self.name, "zones", (
                f"replicas 0 over {zones} zones: losing a zone loses its shards' {held} (about 1/{zones} of "
                f"the cache) until they refill, and {misses}; set {self.field_path}.replicas"))], []
        return [], [f"{self.name}: {r.replicas} replica(s) per shard in other zones take over a lost "
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
