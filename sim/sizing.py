"""The capacity plan: how many instances each component needs, on every dimension, without simulating.

`size_plan(scenario)` takes the fleet-wide demand on each enabled component (sim.analytic, which
follows the engine's request flows with the workload model's own mix, `sim.workload.workload_mix`)
and divides it by what one instance holds on each dimension; the dimension that needs the most
instances binds. It sets that beside the configured count, prices both fleets the same way
(sim/cost.py: compute, storage, network and requests), adds the M/M/c queueing estimate for the
configured fleet, and lists findings: CRITICAL where the configured design cannot hold (a shortfall
on any dimension, or a fleet unstable by Erlang C) and WARN for what still works or is inconsistent
(Redis memory below the working set: a lower hit ratio; more workers than vCPUs; a setting the
instance type cannot provide; no Redis replicas across zones). Everything here is arithmetic on the
scenario and its pricing catalog (sim/data/pricing/); `SizePlan.write` is the only I/O.

Other code asks the plan one question: `plan.unholdable()` lists the fleets that cannot hold the
scenario as configured (short on a dimension, zone loss included, or unstable), the fleets with a
CRITICAL finding; empty means the design holds. `plan.unholdable_reasons()` says why, one line
each. A sweep point with any unholdable fleet can never be the cheapest point meeting the SLOs.

Units: CPU in busy cores (workers), memory in GiB (2^30 B, as Redis and sim/cache.py count it),
disk in GB (1e9 B, as AWS sizes instance storage), network in Gbit/s (1e9 bit/s) per direction.

The model, dimension by dimension
- cpu: busy cores = ops/s x mean service ms / 1000 (sim.analytic.offered_loads; Cassandra and
  Kafka count replica operations; Redis and Cassandra reads count every conversation a read looks
  up: `lookups_per_read`, above 1 under fan-out on read). One instance plans for
  `workers x capacity.target_utilization`. Workers are the simulation's servers; where they model
  CPU threads (gateway, services, Cassandra, Kafka) and exceed the instance type's vCPUs, a WARN says
  how many instances CPU-bound work would need.
- memory (Redis): the working set is every conversation's recent list,
  conversations x recent_messages x (mean message bytes + 64 B), as sim/cache.py lays it out. One
  shard holds `memory_gb_per_shard x usable_memory_fraction`. A cache smaller than its working set
  still works, at a lower hit ratio: the finding says which ratio the cache model expects.
- disk (Cassandra): at steady state the retention period's data is on disk:
  (sends x mean message bytes + sends x mean recipients x inbox_entry_bytes [fan-out on write])
  x retention seconds x replication_factor x compaction_headroom. One node holds
  min(disk_gb_per_node, or the instance type's local disk for `disk: local`;
  max_data_gb_per_node x compaction_headroom). `disk: ebs` without disk_gb_per_node is bounded by
  max_data_gb_per_node x compaction_headroom alone (volumes are sized to fit).
- disk (Kafka): sends x mean message bytes x kafka.replication_factor x retention_hours x 3600 s,
  against `disk_gb_per_broker`.
- network: payload bytes per second into and out of each fleet, each direction against the
  instance type's sustained (baseline) bandwidth, which AWS specifies per direction
  (`network_gbps_sustained`; the burst "up to" figure lasts minutes). The busier direction binds.
  A send carries its message on every hop towards the stores; a read's page of the recent list
  (messages_per_read x mean message bytes) flows back towards the client on every hop; each cache
  hit returns a page, each miss costs the whole recent list twice (Cassandra's answer, then the
  Redis fill). Cassandra coordinators are replicas and forward each write to RF - 1 others; Kafka
  leaders send each record to RF - 1 followers and to the consumer; a Redis primary sends its writes
  and fills to each replica. Not counted: request bodies of reads, headers, acks, digests, repair,
  cross-region copies.
- zones (network.zones = z >= 2): the fleet must hold its load at target utilization with one zone
  lost. Instances spread evenly over z zones; the fewest n with n - ceil(n/z) >= the count the load
  needs, i.e. about z/(z-1) times it. This applies to the load dimensions (cpu, network) of every
  fleet but Redis, whose shards fail over to their replicas in other zones (with `redis.replicas`
  0, a lost zone takes its share of the cache with it: a WARN). Disk and memory do not move when a
  zone is lost (replicas in the other zones already hold the data).
- minimum: Cassandra needs at least replication_factor nodes and Kafka replication_factor brokers;
  every other fleet at least one instance.
- Redis replicas: every shard has `redis.replicas` replica nodes holding the same memory; the plan
  counts shards, and needed and configured nodes (and their cost) are shards x (1 + replicas).

Cost: both fleets priced by sim.cost.monthly_cost, row for row (compute, storage, network,
requests); the fleets differ only in instance counts, so only compute differs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sim.analytic import ErlangC, Flows, Load, offered_loads, station_estimates
from sim.cache import GIB, LIST_ENTRY_OVERHEAD_BYTES, list_bytes
from sim.cost import KINDS, CostBreakdown, monthly_cost
from sim.jsonsafe import json_safe
from sim.pricing import InstanceType, catalog_for
from sim.scenario import Scenario

COMPONENTS = ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka")
NOUNS = {"gateway": "instances", "message_service": "instances", "group_service": "instances",
         "cassandra": "nodes", "redis": "shards", "kafka": "brokers"}
CPU_THREAD_FLEETS = ("gateway", "message_service", "group_service", "cassandra", "kafka")
ZONE_DIMENSIONS = ("cpu", "network")  # what a lost zone's load moves onto the others
BYTES_PER_GB = 1e9
BITS_PER_GBIT = 1e9
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0
CRITICAL, WARN = "critical", "warn"
Severity = Literal["critical", "warn"]


@dataclass(frozen=True)
class Dimension:
    """One resource of one component: fleet-wide demand, what one instance holds, instances needed."""

    name: str  # cpu, memory, disk, network
    unit: str  # cores, GiB, GB, Gbps
    demand: float  # fleet-wide, in `unit` (network: the busier direction)
    per_instance: float  # what one instance holds at plan, in `unit`
    needed: int  # instances for the demand, with one zone lost where the zone rule applies
    basis: str  # the demand's arithmetic, in words
    capacity_basis: str  # the per-instance figure's arithmetic, in words
    parts: dict[str, float] = field(default_factory=dict)  # intermediate figures, for checking
    needed_all_zones: int = 0  # ceil(demand / per_instance): every zone up
    zone_basis: str = ""  # the zone rule's arithmetic, when it applies


@dataclass(frozen=True)
class Finding:
    """A dimension on which the configured design cannot hold (critical), or an inconsistency (warn)."""

    component: str
    dimension: str
    message: str
    severity: Severity = WARN

    def line(self) -> str:
        return f"{'CRITICAL' if self.severity == CRITICAL else 'WARN'} {self.component} {self.dimension}: " \
               f"{self.message}"


@dataclass(frozen=True)
class ComponentPlan:
    component: str
    instance_type: str | None
    configured: int  # instances (Redis: shards)
    ops_per_sec: float
    dimensions: tuple[Dimension, ...]
    minimum: int  # fewest instances the design allows (RF for Cassandra and Kafka)
    needed: int  # max over the dimensions and the minimum (Redis: shards)
    binding: str  # the dimension that needs the most instances ("minimum" if that binds)
    headroom: float  # configured / needed - 1; negative = short
    usd_per_hour: float | None  # per node; None when not priced per instance
    monthly_usd_needed: float | None  # this component's cost rows (every kind) at the needed fleet
    monthly_usd_configured: float | None  # the same rows at the configured fleet
    estimate: ErlangC  # M/M/c on the configured fleet, load spread evenly
    cost_note: str = ""
    nodes_per_instance: int = 1  # Redis: 1 + replicas; every other fleet 1

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    @property
    def needed_nodes(self) -> int:
        return self.needed * self.nodes_per_instance

    @property
    def configured_nodes(self) -> int:
        return self.configured * self.nodes_per_instance

    @property
    def short(self) -> bool:
        """Fewer instances than a dimension that must hold needs (see `short_dimensions`)."""
        return bool(self.short_dimensions())

    def short_dimensions(self) -> list[str]:
        """Dimensions needing more instances than are configured, and the minimum if that binds.
        Redis memory is not among them: a cache below its working set still works, at the lower hit
        ratio the plan (and a run) already assume, so it is a warning, not a fleet that cannot hold."""
        out = [d.name for d in self.dimensions
               if d.needed > self.configured and (self.component, d.name) != ("redis", "memory")]
        return out + (["minimum"] if self.minimum > self.configured else [])

    @property
    def unstable(self) -> bool:
        return not self.estimate.stable


@dataclass(frozen=True)
class SizePlan:
    scenario: str
    catalog: str
    hours_per_month: float
    target_utilization: float
    zones: int
    mean_message_bytes: float
    mean_recipients: float
    lookups_per_read: float
    hit_ratio: float
    components: tuple[ComponentPlan, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    cost_configured: CostBreakdown
    cost_needed: CostBreakdown

    def component(self, name: str) -> ComponentPlan | None:
        return next((c for c in self.components if c.component == name), None)

    def unholdable(self) -> list[str]:
        """The fleets that cannot hold the scenario as configured: fewer instances than needed on
        a dimension (with one zone lost, where the zone rule applies; Redis memory aside, see
        `ComponentPlan.short_dimensions`) or unstable by the Erlang C estimate (rho >= 1). Empty when
        the configured design holds; a design with any unholdable fleet can never be "the cheapest
        point meeting the SLOs". These are exactly the fleets with a CRITICAL finding."""
        return [c.component for c in self.components if c.short or c.unstable]

    def unholdable_reasons(self) -> list[str]:
        """Why, one line per cause: "short: cassandra disk", "unstable: kafka cpu (117%)"."""
        out = []
        for c in self.components:
            if c.unstable:
                out.append(f"unstable: {c.component} cpu ({c.estimate.utilization:.0%})")
            out += [f"short: {c.component} {d}" for d in c.short_dimensions()
                    if not (d == "cpu" and c.unstable)]
        return out

    @property
    def holds(self) -> bool:
        return not self.unholdable()

    @property
    def warnings(self) -> list[str]:
        """Every finding as one line, "CRITICAL <fleet> <dimension>: ..." (red in reports) first,
        then "WARN ...": what `capsim run` hands the report's Findings."""
        ordered = sorted(self.findings, key=lambda f: f.severity != CRITICAL)
        return [f.line() for f in ordered]

    @property
    def monthly_usd_needed(self) -> float:
        return self.cost_needed.total_monthly_usd

    @property
    def monthly_usd_configured(self) -> float:
        return self.cost_configured.total_monthly_usd

    # -- tables shared by the markdown and the CLI ------------------------------------------------
    def plan_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["component", "instance type", "binding", "needed", "configured", "headroom",
                "$/month needed", "$/month configured"]  # Redis counts: shards x (1 + replicas)
        rows = [[c.component, c.instance_type or "-", c.binding, _count(c.needed, c.nodes_per_instance),
                 _count(c.configured, c.nodes_per_instance), f"{c.headroom:+.0%}",
                 _usd(c.monthly_usd_needed), _usd(c.monthly_usd_configured)] for c in self.components]
        fleets = {c.component for c in self.components}
        for name in self.cost_needed.by_component:  # e.g. cross_region: priced, not a fleet
            if name not in fleets:
                rows.append([name, "-", "-", "-", "-", "-", _usd(self.cost_needed.by_component[name]),
                             _usd(self.cost_configured.by_component.get(name))])
        rows.append(["total", "", "", "", "", "", _usd(self.monthly_usd_needed),
                     _usd(self.monthly_usd_configured)])
        return head, rows

    def cost_table(self) -> tuple[list[str], list[list[str]]]:
        """Monthly cost by kind, the configured and the needed fleet side by side."""
        head = ["kind", "$/month configured", "$/month needed", "difference"]
        conf, need = self.cost_configured.by_kind, self.cost_needed.by_kind
        rows = [[k, _usd(conf[k]), _usd(need[k]), _usd_delta(need[k] - conf[k])] for k in KINDS]
        total_c, total_n = self.monthly_usd_configured, self.monthly_usd_needed
        rows.append(["total", _usd(total_c), _usd(total_n), _usd_delta(total_n - total_c)])
        rows.append(["per million messages", _usd2(self.cost_configured.usd_per_million_messages),
                     _usd2(self.cost_needed.usd_per_million_messages), ""])
        return head, rows

    def dimension_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["component", "dimension", "demand (fleet)", "one instance holds",
                "needed (every zone up)", "configured", "headroom"]
        rows = []
        for c in self.components:
            for d in c.dimensions:
                mark = " (binding)" if d.name == c.binding else ""
                needed = f"{d.needed:,}" + (f" ({d.needed_all_zones:,})" if d.needed != d.needed_all_zones
                                            else "")
                rows.append([c.component, d.name + mark, _amount(d.demand, d.unit),
                             _amount(d.per_instance, d.unit), needed, f"{c.configured:,}",
                             f"{c.configured / d.needed - 1:+.0%}" if d.needed else "-"])
        return head, rows

    def queueing_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["component", "ops/s", "ops/s each", "servers", "service ms", "util",
                "P(wait)", "wait mean ms", "wait p99 ms"]
        rows = []
        for c in self.components:
            e = c.estimate
            rows.append([c.component, _rate(c.ops_per_sec), _rate(e.arrivals_per_sec), str(e.servers),
                         _num(e.service_ms),
                         f"{e.utilization:.1%}" + ("" if e.stable else " (unstable)"),
                         f"{e.p_wait:.3f}", _num(e.wait_ms_mean), _num(e.wait_ms_p99)])
        return head, rows

    def facts(self) -> str:
        """The plan's assumptions in one sentence."""
        facts = [f"mean message {self.mean_message_bytes:,.0f} B"]
        if self.component("group_service") is not None:
            facts.append(f"{self.mean_recipients:.2f} recipients per message (workload model)")
        if self.lookups_per_read != 1:
            facts.append(f"{self.lookups_per_read:.3g} conversation lookups per read")
        if self.component("redis") is not None:
            facts.append(f"Redis hit ratio {self.hit_ratio:.3f}")
        zones = (f"holding the load with 1 of {self.zones} zones lost (cpu and network)" if self.zones > 1
                 else "one zone: no zone-loss headroom")
        return (f"CPU planned at {self.target_utilization:.0%} utilization, {zones}; network against "
                f"sustained bandwidth per direction; {', '.join(facts)}")

    # -- outputs --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_configured"] = self.cost_configured.as_summary()
        out["cost_needed"] = self.cost_needed.as_summary()
        for c, plan in zip(out["components"], self.components, strict=True):
            c["needed_nodes"], c["configured_nodes"] = plan.needed_nodes, plan.configured_nodes
        out["warnings"] = self.warnings
        out["unholdable"] = self.unholdable()
        out["monthly_usd_needed"] = self.monthly_usd_needed
        out["monthly_usd_configured"] = self.monthly_usd_configured
        return json_safe(out)

    def to_markdown(self) -> str:
        lines = [f"# Capacity plan: {self.scenario}", "",
                 f"Catalog {self.catalog} ({self.hours_per_month:g} h/month); {self.facts()}.",
                 "Both fleets are priced by the same rows (compute, storage, network, requests): "
                 "only the instance counts differ.", ""]
        critical = [f for f in self.findings if f.severity == CRITICAL]
        warns = [f for f in self.findings if f.severity != CRITICAL]
        if critical:
            lines += ["## Cannot hold (critical)", "",
                      *[f"- **{f.component} {f.dimension}**: {f.message}" for f in critical], ""]
        if warns:
            lines += ["## Warnings", "", *[f"- **{f.component} {f.dimension}**: {f.message}"
                                           for f in warns], ""]
        lines += ["## Plan", "", *_md_table(*self.plan_table()), "",
                  "## Cost, configured and needed", "", *_md_table(*self.cost_table()), "",
                  "## Demand by dimension", "", *_md_table(*self.dimension_table()), ""]
        for c in self.components:
            for d in c.dimensions:
                lines.append(f"- {c.component} {d.name}: {d.basis}; one instance: {d.capacity_basis}"
                             + (f"; {d.zone_basis}" if d.zone_basis else ""))
        lines += ["", "## Queueing estimate (M/M/c on the configured fleet)", "",
                  *_md_table(*self.queueing_table()), "",
                  "Erlang C with Poisson arrivals and exponential service, load spread evenly; the p99 "
                  "wait is P(Wq > t) = C exp(-(c mu - lambda) t) at 1%.", ""]
        if self.notes:
            lines += ["## Notes", "", *[f"- {n}" for n in self.notes], ""]
        return "\n".join(lines)

    def write(self, out_dir: Path) -> list[Path]:
        """size.json and size.md in `out_dir` (created)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "size.json", out_dir / "size.md"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        paths[1].write_text(self.to_markdown())
        return paths


# -- the plan ---------------------------------------------------------------------------------------
def size_plan(scenario: Scenario, flows: Flows | None = None) -> SizePlan:
    """The capacity plan for `scenario`; `flows` defaults to sim.analytic.offered_loads(scenario)."""
    sc = scenario
    flows = offered_loads(sc) if flows is None else flows
    catalog = catalog_for(sc)
    estimates = station_estimates(flows)
    traffic = network_bytes_per_sec(sc, flows)
    zones = sc.network.zones
    payloads = (f"a send carries {flows.mean_message_bytes:,.0f} B, a read returns the "
                f"page of {sc.workload.messages_per_read} recent messages, "
                f"{_bytes(sc.workload.messages_per_read * flows.mean_message_bytes)}")
    findings: list[Finding] = []
    notes: list[str] = []
    plans = []
    for name in COMPONENTS:
        load = flows.loads.get(name)
        if load is None:
            continue
        type_name = _instance_type_name(sc, name)
        hw = catalog.instance(type_name, f"{name}.instance_type") if type_name else None
        dims = [cpu_dimension(load, sc.capacity.target_utilization)]
        if name == "redis":
            dims.append(redis_memory_dimension(sc, flows))
        if name == "cassandra":
            dims.append(cassandra_disk_dimension(sc, flows, hw))
        if name == "kafka":
            dims.append(kafka_disk_dimension(sc, flows))
        if hw is not None:
            dims.append(network_dimension(traffic.get(name, Traffic()), hw, type_name or "", payloads))
        else:
            notes.append(f"{name}: no instance_type, so no network dimension and no cost")
        if name != "redis":
            dims = [with_zone_loss(d, zones) if d.name in ZONE_DIMENSIONS else d for d in dims]
        plan = _component_plan(name, type_name, hw, load, dims, _minimum(sc, name), estimates[name], sc)
        plans.append(plan)
        if plan.cost_note:
            notes.append(f"{name}: {plan.cost_note}")
        findings += _shortfalls(plan, sc, flows)
        findings += _consistency(sc, name, hw, type_name)
        if hw is not None and name in CPU_THREAD_FLEETS and hw.vcpu < load.servers:
            findings.append(_workers_over_vcpus(plan, load, hw, type_name or "", sc))
    if sc.redis.enabled and zones > 1:
        if sc.redis.replicas == 0:
            findings.append(Finding("redis", "zones", (
                f"replicas 0 over {zones} zones: losing a zone loses its shards' lists (about 1/{zones} of "
                "the cache) until they refill, and those lookups miss to "
                f"{'Cassandra' if sc.cassandra.enabled else 'nowhere (reads fail)'}; set redis.replicas")))
        else:
            notes.append(f"redis: {sc.redis.replicas} replica(s) per shard in other zones take over a lost "
                         "zone's shards, so shard counts carry no zone headroom")
    notes.append("ops/s for cassandra and kafka count replica operations (RF per write)")
    notes.append("network: payload bytes only, each direction against sustained (baseline) bandwidth; "
                 f"a read returns a page of {sc.workload.messages_per_read} recent messages on every hop "
                 "back to the client")
    counts = {p.component: p.needed for p in plans}
    configured = monthly_cost(sc, flows, with_needed=False)
    needed = monthly_cost(sc, flows, fleet=counts, with_needed=False)
    plans = [_priced(p, configured, needed) for p in plans]
    return SizePlan(
        scenario=sc.name, catalog=catalog.catalog, hours_per_month=catalog.hours_per_month,
        target_utilization=sc.capacity.target_utilization, zones=zones,
        mean_message_bytes=flows.mean_message_bytes, mean_recipients=flows.mean_recipients,
        lookups_per_read=flows.lookups_per_read, hit_ratio=flows.hit_ratio, components=tuple(plans),
        findings=tuple(findings), notes=tuple(notes), cost_configured=configured, cost_needed=needed)


def instances_surviving_zone_loss(base: int, zones: int) -> int:
    """The fewest instances n, spread as evenly as possible over `zones`, that keep at least `base`
    when the fullest zone (ceil(n / zones) instances) is lost: about base x zones / (zones - 1)."""
    if zones <= 1 or base <= 0:
        return base
    n = math.ceil(base * zones / (zones - 1))  # n - n/z >= base is necessary
    while n - math.ceil(n / zones) < base:
        n += 1
    return n


def with_zone_loss(d: Dimension, zones: int) -> Dimension:
    """`d` with its needed count raised to hold the demand with one of `zones` zones lost."""
    needed = instances_surviving_zone_loss(d.needed_all_zones, zones)
    if zones <= 1:
        return d
    text = (f"with 1 of {zones} zones lost: {needed:,} spread over {zones} zones keep "
            f"{needed - math.ceil(needed / zones):,} >= {d.needed_all_zones:,}")
    return dataclasses.replace(d, needed=needed, zone_basis=text)


def cpu_dimension(load: Load, target_utilization: float) -> Dimension:
    per = load.servers * target_utilization
    needed = _ceil(load.busy_servers / per)
    return Dimension(
        "cpu", "cores", load.busy_servers, per, needed,
        f"{_n(load.ops_per_sec)} ops/s x {_n(load.service_ms)} ms mean = {_n(load.busy_servers)} busy cores",
        f"{load.servers} workers x {target_utilization:.0%} target utilization = {_n(per)} cores",
        {"ops_per_sec": load.ops_per_sec, "service_ms": load.service_ms}, needed_all_zones=needed)


def redis_memory_dimension(sc: Scenario, flows: Flows) -> Dimension:
    w, r = sc.workload, sc.redis
    item_bytes = list_bytes(w.recent_messages, flows.mean_message_bytes)
    working_set_gib = w.conversations * item_bytes / GIB
    per = r.memory_gb_per_shard * r.usable_memory_fraction
    needed = _ceil(working_set_gib / per)
    return Dimension(
        "memory", "GiB", working_set_gib, per, needed,
        f"{w.conversations:,} conversations x {w.recent_messages} recent messages x "
        f"({flows.mean_message_bytes:,.0f} + {LIST_ENTRY_OVERHEAD_BYTES}) B = "
        f"{_amount(working_set_gib, 'GiB')} "
        f"({_bytes(working_set_gib * GIB)})",
        f"{r.memory_gb_per_shard:g} GiB x {r.usable_memory_fraction:g} usable = {_n(per)} GiB"
        + (f" (each of its {r.replicas} replica(s) holds the same)" if r.replicas else ""),
        {"conversations": w.conversations, "list_bytes": item_bytes,
         "working_set_bytes": working_set_gib * GIB}, needed_all_zones=needed)


def cassandra_disk_dimension(sc: Scenario, flows: Flows, hw: InstanceType | None) -> Dimension:
    c, w, gs = sc.cassandra, sc.workload, sc.group_service
    retention_s = w.retention_days * SECONDS_PER_DAY
    messages_bytes = w.sends_per_sec * flows.mean_message_bytes * retention_s
    inbox = gs.enabled and gs.fan_out == "write"
    inbox_bytes = (w.sends_per_sec * flows.mean_recipients * gs.inbox_entry_bytes * retention_s
                   if inbox else 0.0)
    factor = c.replication_factor * c.compaction_headroom
    demand_gb = (messages_bytes + inbox_bytes) * factor / BYTES_PER_GB
    basis = (f"{w.retention_days:g} days of messages at {_n(w.sends_per_sec)}/s x "
             f"{flows.mean_message_bytes:,.0f} B = {_bytes(messages_bytes)} before replication")
    if inbox:
        basis += (f", plus inbox entries {_n(w.sends_per_sec)}/s x {flows.mean_recipients:.2f} recipients"
                  f" x {gs.inbox_entry_bytes:g} B = {_bytes(inbox_bytes)}")
    basis += (f"; x RF {c.replication_factor} x compaction headroom {c.compaction_headroom:g} = "
              f"{_bytes(demand_gb * BYTES_PER_GB)}")
    ops_limit = c.max_data_gb_per_node * c.compaction_headroom
    ops_text = f"{c.max_data_gb_per_node:,g} GB data limit x {c.compaction_headroom:g} headroom"
    if c.disk_gb_per_node is not None:
        disk, disk_text = c.disk_gb_per_node, f"{c.disk_gb_per_node:,g} GB disk_gb_per_node"
    elif c.disk == "local" and hw is not None and hw.local_disk_gb > 0:
        disk, disk_text = hw.local_disk_gb, f"{hw.local_disk_gb:,g} GB local disk of {c.instance_type}"
    else:
        disk, disk_text = None, ""
    per = ops_limit if disk is None else min(disk, ops_limit)
    cap_basis = f"min({disk_text}, {ops_text}) = {_n(per)} GB" if disk is not None else (
        f"{ops_text} = {_n(per)} GB" + ("" if c.disk == "ebs" else
                                         " (local disk size unknown: set disk_gb_per_node)"))
    needed = _ceil(demand_gb / per)
    return Dimension("disk", "GB", demand_gb, per, needed, basis, cap_basis,
                     {"messages_bytes_before_replication": messages_bytes,
                      "inbox_bytes_before_replication": inbox_bytes, "retention_s": retention_s,
                      "replication_factor": c.replication_factor,
                      "compaction_headroom": c.compaction_headroom}, needed_all_zones=needed)


def kafka_disk_dimension(sc: Scenario, flows: Flows) -> Dimension:
    k, w = sc.kafka, sc.workload
    produce_bytes_per_sec = w.sends_per_sec * flows.mean_message_bytes
    retention_s = k.retention_hours * SECONDS_PER_HOUR
    demand_gb = produce_bytes_per_sec * k.replication_factor * retention_s / BYTES_PER_GB
    needed = _ceil(demand_gb / k.disk_gb_per_broker)
    return Dimension(
        "disk", "GB", demand_gb, k.disk_gb_per_broker, needed,
        f"{_bytes(produce_bytes_per_sec)}/s produced x RF {k.replication_factor} x "
        f"{k.retention_hours:g} h retention = {_bytes(demand_gb * BYTES_PER_GB)}",
        f"{k.disk_gb_per_broker:,g} GB disk_gb_per_broker",
        {"produce_bytes_per_sec": produce_bytes_per_sec, "retention_s": retention_s},
        needed_all_zones=needed)


@dataclass(frozen=True)
class Traffic:
    """Fleet-wide payload bytes per second into and out of one fleet."""

    in_bytes_per_sec: float = 0.0
    out_bytes_per_sec: float = 0.0


def network_dimension(traffic: Traffic, hw: InstanceType, type_name: str, payloads: str = "") -> Dimension:
    """The busier direction against the sustained bandwidth, which AWS gives for each direction."""
    gbps_in = traffic.in_bytes_per_sec * 8 / BITS_PER_GBIT
    gbps_out = traffic.out_bytes_per_sec * 8 / BITS_PER_GBIT
    demand = max(gbps_in, gbps_out)
    per = hw.network_gbps_sustained
    needed = _ceil(demand / per)
    return Dimension(
        "network", "Gbps", demand, per, needed,
        f"in {_bytes(traffic.in_bytes_per_sec)}/s = {_n(gbps_in)} Gbit/s, out "
        f"{_bytes(traffic.out_bytes_per_sec)}/s = {_n(gbps_out)} Gbit/s; the busier direction binds"
        + (f" ({payloads})" if payloads else ""),
        f"{per:g} Gbit/s sustained each direction of {type_name} (burst 'up to' {hw.network_gbps:g}, "
        "not sustained)",
        {"in_bytes_per_sec": traffic.in_bytes_per_sec, "out_bytes_per_sec": traffic.out_bytes_per_sec,
         "in_gbps": gbps_in, "out_gbps": gbps_out}, needed_all_zones=needed)


def network_bytes_per_sec(sc: Scenario, flows: Flows) -> dict[str, Traffic]:
    """Fleet-wide payload bytes/s into and out of each component (the module docstring's model)."""
    w = sc.workload
    msg = flows.mean_message_bytes
    page = w.messages_per_read * msg  # one read's answer, and one cache hit's
    whole_list = w.recent_messages * msg  # a miss reads, and refills, the whole recent list
    sends, reads = w.sends_per_sec, w.reads_per_sec
    lookups = reads * flows.lookups_per_read
    hits, misses = lookups * flows.hit_ratio, lookups * (1 - flows.hit_ratio)
    into: dict[str, float] = defaultdict(float)
    out: dict[str, float] = defaultdict(float)

    def send(a: str, b: str, bytes_per_sec: float) -> None:
        out[a] += bytes_per_sec
        into[b] += bytes_per_sec

    chain = ["clients", *[c for c in ("gateway", "message_service") if getattr(sc, c).enabled]]
    for a, b in itertools.pairwise(chain):
        send(a, b, sends * msg)
        send(b, a, reads * page)
    caller = chain[-1]
    if sc.cassandra.enabled:
        rf = sc.cassandra.replication_factor
        send(caller, "cassandra", sends * msg)
        send("cassandra", caller, misses * whole_list)
        send("cassandra", "cassandra", (rf - 1) * sends * msg)
    if sc.redis.enabled:
        fills = misses * whole_list if sc.cassandra.enabled else 0.0
        send(caller, "redis", sends * msg + fills)
        send("redis", caller, hits * page)
        send("redis", "redis_replicas", sc.redis.replicas * (sends * msg + fills))
    if sc.kafka.enabled:
        send(caller, "kafka", sends * msg)
        send("kafka", "kafka", (sc.kafka.replication_factor - 1) * sends * msg)
        gs = sc.group_service
        if gs.enabled:
            send("kafka", "group_service", sends * msg)
            if gs.fan_out == "write" and sc.cassandra.enabled:
                inbox = sends * flows.mean_recipients * gs.inbox_entry_bytes
                send("group_service", "cassandra", inbox)
                send("cassandra", "cassandra", (sc.cassandra.replication_factor - 1) * inbox)
    names = (set(into) | set(out)) - {"clients", "redis_replicas"}
    return {n: Traffic(into.get(n, 0.0), out.get(n, 0.0)) for n in sorted(names)}


# -- helpers ----------------------------------------------------------------------------------------
def _component_plan(name: str, type_name: str | None, hw: InstanceType | None, load: Load,
                    dims: list[Dimension], minimum: int, estimate: ErlangC, sc: Scenario) -> ComponentPlan:
    top = max(dims, key=lambda d: d.needed)
    needed, binding = (top.needed, top.name) if top.needed >= minimum else (minimum, "minimum")
    price = hw.usd_per_hour if hw is not None else None
    cost_note = ""
    if name == "gateway" and sc.gateway.pricing != "instances":
        price, cost_note = None, f"managed {sc.gateway.pricing}: priced per request by sim/cost.py"
    return ComponentPlan(
        component=name, instance_type=type_name, configured=load.instances, ops_per_sec=load.ops_per_sec,
        dimensions=tuple(dims), minimum=minimum, needed=needed, binding=binding,
        headroom=load.instances / needed - 1, usd_per_hour=price, monthly_usd_needed=None,
        monthly_usd_configured=None, estimate=estimate, cost_note=cost_note,
        nodes_per_instance=1 + sc.redis.replicas if name == "redis" else 1)


def _priced(plan: ComponentPlan, configured: CostBreakdown, needed: CostBreakdown) -> ComponentPlan:
    """The plan with its component's cost rows summed at both fleets (None: not priced at all)."""
    if plan.usd_per_hour is None and not plan.cost_note:
        return plan
    return dataclasses.replace(plan, monthly_usd_needed=needed.by_component.get(plan.component, 0.0),
                               monthly_usd_configured=configured.by_component.get(plan.component, 0.0))


def _shortfalls(plan: ComponentPlan, sc: Scenario, flows: Flows) -> list[Finding]:
    """A CRITICAL finding for each dimension that needs more instances than are configured (a WARN
    for Redis memory: the cache works, at a lower hit ratio), and for a fleet the Erlang C estimate
    calls unstable."""
    out = []
    noun = NOUNS[plan.component]
    have = plan.configured
    for d in plan.dimensions:
        if d.needed <= have:
            continue
        short = d.needed - have
        holds = (plan.component, d.name) == ("redis", "memory")  # works, at a lower hit ratio
        zone = ""
        if d.needed != d.needed_all_zones:
            zone = (f" ({d.needed_all_zones:,} with every zone up, "
                    f"{have / d.needed_all_zones - 1:+.0%})" if d.needed_all_zones > have else
                    f" to hold with 1 of {sc.network.zones} zones lost ({d.needed_all_zones:,} with every "
                    "zone up)")
        text = (f"needs {d.needed:,} {noun}{zone}, {have:,} configured: short by {short:,} "
                f"({have / d.needed - 1:+.0%}); {have:,} hold {_amount(have * d.per_instance, d.unit)} "
                f"of {_amount(d.demand, d.unit)}. {_why(plan, d, sc, flows)}")
        out.append(Finding(plan.component, d.name, text, WARN if holds else CRITICAL))
    cpu = plan.dimension("cpu")
    if plan.unstable and (cpu is None or cpu.needed <= have):
        e = plan.estimate
        out.append(Finding(plan.component, "cpu", (
            f"unstable: M/M/c predicts {e.utilization:.0%} utilization per instance "
            f"({_n(e.arrivals_per_sec)} ops/s on {e.servers} workers of {_n(e.service_ms)} ms): queues grow "
            "without bound"), CRITICAL))
    return out


def _workers_over_vcpus(plan: ComponentPlan, load: Load, hw: InstanceType, type_name: str,
                        sc: Scenario) -> Finding:
    cpu = plan.dimension("cpu")
    busy = cpu.demand if cpu is not None else load.busy_servers
    target = sc.capacity.target_utilization
    bound = _ceil(busy / (hw.vcpu * target))
    zones = sc.network.zones
    held = instances_surviving_zone_loss(bound, zones)
    zone = f" ({held:,} to hold with 1 of {zones} zones lost)" if held != bound else ""
    return Finding(plan.component, "workers", (
        f"{load.servers} workers per instance on {type_name}'s {hw.vcpu} vCPU: the simulation serves "
        f"{load.servers} requests at once, the hardware runs {hw.vcpu}. If the service time is CPU time, "
        f"{_n(busy)} busy cores need {bound:,} {NOUNS[plan.component]} at {target:.0%} of {hw.vcpu} vCPU"
        f"{zone}, against {plan.needed:,} planned and {plan.configured:,} configured; set workers to the "
        "vCPUs, or calibrate service times on this instance type"))


def _why(plan: ComponentPlan, d: Dimension, sc: Scenario, flows: Flows) -> str:
    if d.name == "cpu":
        e = plan.estimate
        state = (f"M/M/c predicts {e.utilization:.0%} utilization"
                 + (", unstable: queues grow without bound" if not e.stable else
                    f", above the {sc.capacity.target_utilization:.0%} target"
                    if e.utilization > sc.capacity.target_utilization else
                    f", within the {sc.capacity.target_utilization:.0%} target with every zone up"))
        return f"Why: {d.basis}; one instance plans for {d.capacity_basis}; {state}."
    if d.name == "memory":
        return (f"Why: the recent lists are {d.basis}; one shard holds {d.capacity_basis}. The cache "
                f"still works, at the hit ratio the cache model expects ({flows.hit_ratio:.3f}); misses "
                f"go to {'Cassandra' if sc.cassandra.enabled else 'nowhere (reads fail)'}.")
    if d.name == "disk":
        return f"Why: {d.basis}; one instance holds {d.capacity_basis}."
    return f"Why: {d.basis}; one instance has {d.capacity_basis}."


def _consistency(sc: Scenario, name: str, hw: InstanceType | None, type_name: str | None) -> list[Finding]:
    """Settings an instance type cannot provide."""
    if hw is None:
        return []
    if name == "redis" and sc.redis.memory_gb_per_shard > hw.memory_gb:
        return [Finding(name, "memory", f"memory_gb_per_shard {sc.redis.memory_gb_per_shard:g} GiB exceeds "
                                        f"{type_name}'s {hw.memory_gb:g} GiB")]
    c = sc.cassandra
    if name == "cassandra" and c.disk == "local":
        if c.disk_gb_per_node is not None and c.disk_gb_per_node > hw.local_disk_gb:
            return [Finding(name, "disk", f"disk_gb_per_node {c.disk_gb_per_node:,g} GB exceeds "
                                          f"{type_name}'s {hw.local_disk_gb:,g} GB of local disk "
                                          "(disk: local)")]
        if c.disk_gb_per_node is None and hw.local_disk_gb == 0:
            return [Finding(name, "disk", f"disk: local but {type_name} has no local disk; set "
                                          "cassandra.disk: ebs or disk_gb_per_node")]
    return []


def _instance_type_name(sc: Scenario, name: str) -> str | None:
    return getattr(sc, name).instance_type


def _minimum(sc: Scenario, name: str) -> int:
    if name == "cassandra":
        return sc.cassandra.replication_factor
    if name == "kafka":
        return sc.kafka.replication_factor
    return 1


def _count(instances: int, nodes_per_instance: int) -> str:
    """'1,322' or, for Redis with a replica per shard, '1,322 x2' (shards x nodes per shard)."""
    if nodes_per_instance == 1:
        return f"{instances:,}"
    return f"{instances:,} x{nodes_per_instance}"


def _usd_delta(x: float) -> str:
    return f"+${x:,.0f}" if x >= 0 else f"-${-x:,.0f}"


def _usd2(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:,.2f}"


def _ceil(x: float) -> int:
    """Instances to hold `x` instance-loads: ceil, forgiving float noise (2.0000000001 -> 2)."""
    if not math.isfinite(x):
        raise ValueError(f"cannot size for {x} instance-loads")
    return max(0, math.ceil(x - 1e-9 * max(1.0, abs(x))))


def _n(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _num(x: float) -> str:
    return "-" if not math.isfinite(x) else _n(x)


def _rate(x: float) -> str:
    """Compact: 11,058,275 -> '11.06M'."""
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.4g}{suffix}"
    return _num(x)


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.0f}"


def _bytes(b: float) -> str:
    """Decimal units, four significant figures: 3.1536e16 -> '31.54 PB'."""
    for unit, size in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(b) >= size:
            return f"{b / size:.4g} {unit}"
    return f"{b:.4g} B"


def _amount(value: float, unit: str) -> str:
    if unit == "GB":
        return _bytes(value * BYTES_PER_GB)
    return f"{_n(value)} {unit}"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out
