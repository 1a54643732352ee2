"""The capacity plan: how many instances each component needs, on every dimension, without simulating.

`size_plan(scenario)` takes the fleet-wide demand on each enabled component (sim.analytic, which
follows the engine's request flows) and divides it by what one instance holds on each dimension;
the dimension that needs the most instances binds. It sets that beside the configured count, prices
the fleet that would hold, adds the M/M/c queueing estimate for the configured fleet, and says, as
WARN findings, where the configured design cannot hold. Everything here is arithmetic on the
scenario and its pricing catalog (sim/data/pricing/); `SizePlan.write` is the only I/O.

Units: CPU in busy cores (workers), memory in GiB (2^30 B, as Redis and sim/cache.py count it),
disk in GB (1e9 B, as AWS sizes instance storage), network in Gbit/s (1e9 bit/s).

The model, dimension by dimension
- cpu: busy cores = ops/s x mean service ms / 1000 (sim.analytic.offered_loads; Cassandra and
  Kafka count replica operations). One instance plans for `workers x capacity.target_utilization`.
  Workers are the simulation's servers; where an instance type has fewer vCPUs than workers, a
  note says how many instances CPU-bound work would need.
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
- network: payload bytes in + out per instance against the instance type's `network_gbps` (AWS's
  "up to" figure, used whole). A send carries its message on every hop; a read returns the
  page of the recent list (messages_per_read x mean message bytes) on every hop back to the client;
  a Cassandra or Redis miss costs the list once more (Cassandra's answer, then the Redis fill).
  Cassandra coordinators are replicas and forward each write to RF - 1 others; Kafka leaders send
  each record to RF - 1 followers and to the consumer. Both ends of a transfer count it. Not
  counted: headers, acks, digests, repair, cross-region copies.
- minimum: Cassandra needs at least replication_factor nodes and Kafka replication_factor brokers;
  every other fleet at least one instance.

Cost: needed instances x usd_per_hour x the catalog's hours_per_month. Instances only: storage,
transfer and managed-gateway request prices are sim/cost.py's.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.analytic import ErlangC, Flows, Load, offered_loads, station_estimates
from sim.cache import GIB, LIST_ENTRY_OVERHEAD_BYTES, list_bytes
from sim.jsonsafe import json_safe
from sim.pricing import Catalog, InstanceType, catalog_for
from sim.scenario import Scenario

COMPONENTS = ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka")
NOUNS = {"gateway": "instances", "message_service": "instances", "group_service": "instances",
         "cassandra": "nodes", "redis": "shards", "kafka": "brokers"}
BYTES_PER_GB = 1e9
BITS_PER_GBIT = 1e9
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Dimension:
    """One resource of one component: fleet-wide demand, what one instance holds, instances needed."""

    name: str  # cpu, memory, disk, network
    unit: str  # cores, GiB, GB, Gbps
    demand: float  # fleet-wide, in `unit`
    per_instance: float  # what one instance holds at plan, in `unit`
    needed: int  # ceil(demand / per_instance)
    basis: str  # the demand's arithmetic, in words
    capacity_basis: str  # the per-instance figure's arithmetic, in words
    parts: dict[str, float] = field(default_factory=dict)  # intermediate figures, for checking


@dataclass(frozen=True)
class Finding:
    """A WARN: a dimension on which the configured design cannot hold, or a design inconsistency."""

    component: str
    dimension: str
    message: str

    def line(self) -> str:
        return f"WARN {self.component} {self.dimension}: {self.message}"


@dataclass(frozen=True)
class ComponentPlan:
    component: str
    instance_type: str | None
    configured: int
    ops_per_sec: float
    dimensions: tuple[Dimension, ...]
    minimum: int  # fewest instances the design allows (RF for Cassandra and Kafka)
    needed: int  # max over the dimensions and the minimum
    binding: str  # the dimension that needs the most instances ("minimum" if that binds)
    headroom: float  # configured / needed - 1; negative = short
    usd_per_hour: float | None
    monthly_usd_needed: float | None  # needed x usd_per_hour x hours_per_month
    monthly_usd_configured: float | None
    estimate: ErlangC  # M/M/c on the configured fleet, load spread evenly
    cost_note: str = ""

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)


@dataclass(frozen=True)
class SizePlan:
    scenario: str
    catalog: str
    hours_per_month: float
    target_utilization: float
    mean_message_bytes: float
    mean_recipients: float
    hit_ratio: float
    components: tuple[ComponentPlan, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]

    def component(self, name: str) -> ComponentPlan | None:
        return next((c for c in self.components if c.component == name), None)

    @property
    def warnings(self) -> list[str]:
        return [f.line() for f in self.findings]

    @property
    def monthly_usd_needed(self) -> float:
        return sum(c.monthly_usd_needed or 0.0 for c in self.components)

    @property
    def monthly_usd_configured(self) -> float:
        return sum(c.monthly_usd_configured or 0.0 for c in self.components)

    # -- tables shared by the markdown and the CLI ------------------------------------------------
    def plan_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["component", "instance type", "binding", "needed", "configured", "headroom",
                "$/month needed", "$/month configured"]
        rows = [[c.component, c.instance_type or "-", c.binding, f"{c.needed:,}",
                 f"{c.configured:,}", f"{c.headroom:+.0%}", _usd(c.monthly_usd_needed),
                 _usd(c.monthly_usd_configured)] for c in self.components]
        priced = any(c.usd_per_hour is not None for c in self.components)
        rows.append(["total", "", "", "", "", "", _usd(self.monthly_usd_needed if priced else None),
                     _usd(self.monthly_usd_configured if priced else None)])
        return head, rows

    def dimension_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["component", "dimension", "demand (fleet)", "one instance holds", "needed", "configured",
                "headroom"]
        rows = []
        for c in self.components:
            for d in c.dimensions:
                mark = " (binding)" if d.name == c.binding else ""
                rows.append([c.component, d.name + mark, _amount(d.demand, d.unit),
                             _amount(d.per_instance, d.unit), f"{d.needed:,}", f"{c.configured:,}",
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

    # -- outputs --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = self.warnings
        out["monthly_usd_needed"] = self.monthly_usd_needed
        out["monthly_usd_configured"] = self.monthly_usd_configured
        return json_safe(out)

    def to_markdown(self) -> str:
        facts = [f"mean message {self.mean_message_bytes:,.0f} B"]
        if self.component("group_service") is not None:
            facts.append(f"{self.mean_recipients:.2f} recipients per message")
        if self.component("redis") is not None:
            facts.append(f"Redis hit ratio {self.hit_ratio:.3f}")
        lines = [f"# Capacity plan: {self.scenario}", "",
                 f"Catalog {self.catalog} ({self.hours_per_month:g} h/month); CPU planned at "
                 f"{self.target_utilization:.0%} utilization; {', '.join(facts)}.",
                 "Cost is instances only (storage, transfer and per-request prices: `sim/cost.py`).", ""]
        if self.findings:
            lines += ["## Warnings", "", *[f"- **{f.component} {f.dimension}**: {f.message}"
                                           for f in self.findings], ""]
        lines += ["## Plan", "", *_md_table(*self.plan_table()), "",
                  "## Demand by dimension", "", *_md_table(*self.dimension_table()), ""]
        for c in self.components:
            for d in c.dimensions:
                lines.append(f"- {c.component} {d.name}: {d.basis}; one instance: {d.capacity_basis}")
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
            dims.append(network_dimension(traffic.get(name, 0.0), hw, type_name or "", payloads))
        else:
            notes.append(f"{name}: no instance_type, so no network dimension and no cost")
        minimum = _minimum(sc, name)
        plan = _component_plan(name, type_name, hw, load, dims, minimum, estimates[name], catalog, sc)
        plans.append(plan)
        if plan.cost_note:
            notes.append(f"{name}: {plan.cost_note}")
        findings += _shortfalls(plan, sc, flows)
        findings += _consistency(sc, name, hw, type_name)
        if hw is not None and hw.vcpu < load.servers:
            cpu = dims[0]
            bound = _ceil(cpu.demand / (hw.vcpu * sc.capacity.target_utilization))
            notes.append(
                f"{name}: {load.servers} workers on {type_name}'s {hw.vcpu} vCPU; the plan counts workers "
                f"as the simulation does. If the service time is CPU time, {_n(cpu.demand)} busy cores "
                f"need {bound:,} {NOUNS[name]} at {sc.capacity.target_utilization:.0%} of {hw.vcpu} vCPU")
    notes.append("ops/s for cassandra and kafka count replica operations (RF per write)")
    notes.append("network: payload bytes only; a read returns a page of "
                 f"{sc.workload.messages_per_read} recent messages on every hop back to the client")
    return SizePlan(
        scenario=sc.name, catalog=catalog.catalog, hours_per_month=catalog.hours_per_month,
        target_utilization=sc.capacity.target_utilization, mean_message_bytes=flows.mean_message_bytes,
        mean_recipients=flows.mean_recipients, hit_ratio=flows.hit_ratio, components=tuple(plans),
        findings=tuple(findings), notes=tuple(notes))


def cpu_dimension(load: Load, target_utilization: float) -> Dimension:
    per = load.servers * target_utilization
    return Dimension(
        "cpu", "cores", load.busy_servers, per, _ceil(load.busy_servers / per),
        f"{_n(load.ops_per_sec)} ops/s x {_n(load.service_ms)} ms mean = {_n(load.busy_servers)} busy cores",
        f"{load.servers} workers x {target_utilization:.0%} target utilization = {_n(per)} cores",
        {"ops_per_sec": load.ops_per_sec, "service_ms": load.service_ms})


def redis_memory_dimension(sc: Scenario, flows: Flows) -> Dimension:
    w, r = sc.workload, sc.redis
    item_bytes = list_bytes(w.recent_messages, flows.mean_message_bytes)
    working_set_gib = w.conversations * item_bytes / GIB
    per = r.memory_gb_per_shard * r.usable_memory_fraction
    return Dimension(
        "memory", "GiB", working_set_gib, per, _ceil(working_set_gib / per),
        f"{w.conversations:,} conversations x {w.recent_messages} recent messages x "
        f"({flows.mean_message_bytes:,.0f} + {LIST_ENTRY_OVERHEAD_BYTES}) B = "
        f"{_amount(working_set_gib, 'GiB')} "
        f"({_bytes(working_set_gib * GIB)})",
        f"{r.memory_gb_per_shard:g} GiB x {r.usable_memory_fraction:g} usable = {_n(per)} GiB",
        {"conversations": w.conversations, "list_bytes": item_bytes,
         "working_set_bytes": working_set_gib * GIB})


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
    return Dimension("disk", "GB", demand_gb, per, _ceil(demand_gb / per), basis, cap_basis,
                     {"messages_bytes_before_replication": messages_bytes,
                      "inbox_bytes_before_replication": inbox_bytes, "retention_s": retention_s,
                      "replication_factor": c.replication_factor,
                      "compaction_headroom": c.compaction_headroom})


def kafka_disk_dimension(sc: Scenario, flows: Flows) -> Dimension:
    k, w = sc.kafka, sc.workload
    produce_bytes_per_sec = w.sends_per_sec * flows.mean_message_bytes
    retention_s = k.retention_hours * SECONDS_PER_HOUR
    demand_gb = produce_bytes_per_sec * k.replication_factor * retention_s / BYTES_PER_GB
    return Dimension(
        "disk", "GB", demand_gb, k.disk_gb_per_broker, _ceil(demand_gb / k.disk_gb_per_broker),
        f"{_bytes(produce_bytes_per_sec)}/s produced x RF {k.replication_factor} x "
        f"{k.retention_hours:g} h retention = {_bytes(demand_gb * BYTES_PER_GB)}",
        f"{k.disk_gb_per_broker:,g} GB disk_gb_per_broker",
        {"produce_bytes_per_sec": produce_bytes_per_sec, "retention_s": retention_s})


def network_dimension(bytes_per_sec: float, hw: InstanceType, type_name: str,
                      payloads: str = "") -> Dimension:
    gbps = bytes_per_sec * 8 / BITS_PER_GBIT
    return Dimension("network", "Gbps", gbps, hw.network_gbps, _ceil(gbps / hw.network_gbps),
                     f"{_bytes(bytes_per_sec)}/s in + out = {_n(gbps)} Gbit/s"
                     + (f" ({payloads})" if payloads else ""),
                     f"{hw.network_gbps:g} Gbit/s of {type_name}", {"bytes_per_sec": bytes_per_sec})


def network_bytes_per_sec(sc: Scenario, flows: Flows) -> dict[str, float]:
    """Fleet-wide payload bytes/s in + out of each component (the module docstring's model)."""
    w = sc.workload
    msg = flows.mean_message_bytes
    recent = w.messages_per_read * msg  # one read's answer
    whole_list = w.recent_messages * msg  # a miss reads, and refills, the whole recent list
    sends, reads, hit = w.sends_per_sec, w.reads_per_sec, flows.hit_ratio
    misses = reads * (1 - hit)
    io: dict[str, float] = defaultdict(float)

    def link(a: str, b: str, bytes_per_sec: float) -> None:
        io[a] += bytes_per_sec
        io[b] += bytes_per_sec

    chain = ["clients", *[c for c in ("gateway", "message_service") if getattr(sc, c).enabled]]
    for a, b in itertools.pairwise(chain):
        link(a, b, sends * msg + reads * recent)
    caller = chain[-1]
    if sc.cassandra.enabled:
        rf = sc.cassandra.replication_factor
        link(caller, "cassandra", sends * msg + misses * whole_list)
        link("cassandra", "cassandra", (rf - 1) * sends * msg)
    if sc.redis.enabled:
        fills = misses * whole_list if sc.cassandra.enabled else 0.0
        link(caller, "redis", sends * msg + reads * hit * recent + fills)
    if sc.kafka.enabled:
        link(caller, "kafka", sends * msg)
        link("kafka", "kafka", (sc.kafka.replication_factor - 1) * sends * msg)
        gs = sc.group_service
        if gs.enabled:
            link("kafka", "group_service", sends * msg)
            if gs.fan_out == "write" and sc.cassandra.enabled:
                inbox = sends * flows.mean_recipients * gs.inbox_entry_bytes
                link("group_service", "cassandra", inbox)
                link("cassandra", "cassandra", (sc.cassandra.replication_factor - 1) * inbox)
    io.pop("clients", None)
    return dict(io)


# -- helpers ----------------------------------------------------------------------------------------
def _component_plan(name: str, type_name: str | None, hw: InstanceType | None, load: Load,
                    dims: list[Dimension], minimum: int, estimate: ErlangC, catalog: Catalog,
                    sc: Scenario) -> ComponentPlan:
    top = max(dims, key=lambda d: d.needed)
    needed, binding = (top.needed, top.name) if top.needed >= minimum else (minimum, "minimum")
    price = hw.usd_per_hour if hw is not None else None
    cost_note = ""
    if name == "gateway" and sc.gateway.pricing != "instances":
        price, cost_note = None, f"managed {sc.gateway.pricing}: priced per request by sim/cost.py"
    month = catalog.hours_per_month

    def cost(n: int) -> float | None:
        return None if price is None else n * price * month

    return ComponentPlan(
        component=name, instance_type=type_name, configured=load.instances, ops_per_sec=load.ops_per_sec,
        dimensions=tuple(dims), minimum=minimum, needed=needed, binding=binding,
        headroom=load.instances / needed - 1, usd_per_hour=price, monthly_usd_needed=cost(needed),
        monthly_usd_configured=cost(load.instances), estimate=estimate, cost_note=cost_note)


def _shortfalls(plan: ComponentPlan, sc: Scenario, flows: Flows) -> list[Finding]:
    """A WARN for each dimension (and the minimum) that needs more instances than are configured."""
    out = []
    noun = NOUNS[plan.component]
    have = plan.configured
    for d in plan.dimensions:
        if d.needed <= have:
            continue
        short = d.needed - have
        text = (f"needs {d.needed:,} {noun}, {have:,} configured: short by {short:,} "
                f"({have / d.needed - 1:+.0%}); {have:,} hold {_amount(have * d.per_instance, d.unit)} "
                f"of {_amount(d.demand, d.unit)}. {_why(plan, d, sc, flows)}")
        out.append(Finding(plan.component, d.name, text))
    return out


def _why(plan: ComponentPlan, d: Dimension, sc: Scenario, flows: Flows) -> str:
    if d.name == "cpu":
        e = plan.estimate
        state = (f"M/M/c predicts {e.utilization:.0%} utilization"
                 + (", unstable: queues grow without bound" if not e.stable else
                    f", above the {sc.capacity.target_utilization:.0%} target"))
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
