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
- memory, disk: the kinds that hold data say how (sim/components/redis.py: every conversation's
  recent list against memory_gb_per_shard; sim/components/cassandra.py and kafka.py: the retention
  period's data against the disk one node or broker holds).
- network: payload bytes per second into and out of each fleet (sim/traffic.py), the busier
  direction against the instance type's sustained bandwidth per direction.
- zones (network.zones = z >= 2): the fleet must hold its load at target utilization with one zone
  lost. Instances spread evenly over z zones; the fewest n with n - ceil(n/z) >= the count the load
  needs, i.e. about z/(z-1) times it. This applies to the load dimensions (cpu, network) of every
  fleet but Redis, whose shards fail over to their replicas in other zones (with `redis.replicas`
  0, a lost zone takes its share of the cache with it: a WARN). Disk and memory do not move when a
  zone is lost (replicas in the other zones already hold the data).
- minimum, nodes per instance, findings particular to a kind (an instance type that cannot
  provide a setting, Redis without replicas across zones): the kind's module in sim/components/,
  which the plan iterates (`sim.components.kinds()`).

Cost: both fleets priced by sim.cost.monthly_cost, row for row (compute, storage, network,
requests); the fleets differ only in instance counts, so only compute differs.

A design (`components:` and `flows:`) is planned the same way, per named component (its kind from
`sim.components.kinds_of`): cpu from its load by sim/system/loads.py's `design_loads` (the flows'
rates times their steps' visits), network from the bytes its calls carry (sim/traffic.py,
`design_traffic`), and each kind's own dimensions from the design (`design_dimensions`: Redis
memory from the key spaces it holds, Cassandra disk from the keys of the spaces it stores, Kafka
disk from its produce rate and retention_hours). What a design does not declare is not sized, and
the plan's notes say so (Cassandra's growth from fresh keys: a design declares no retention).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim import plan_tables
from sim.analytic import ErlangC, Flows, Load, erlang_c, offered_loads, station_estimates
from sim.components import ComponentKind, kinds, kinds_of
from sim.components.dimensions import (
    CRITICAL,
    WARN,
    Dimension,
    Finding,
    Traffic,
    cpu_dimension,
    instances_surviving_zone_loss,
    network_dimension,
    with_zone_loss,
)
from sim.components.units import amount as _amount
from sim.components.units import byte_text as _bytes
from sim.components.units import ceil_instances as _ceil
from sim.components.units import number as _n
from sim.cost import CostBreakdown, monthly_cost
from sim.jsonsafe import json_safe
from sim.pricing import Catalog, InstanceType, catalog_for
from sim.scenario import Scenario
from sim.system.loads import DesignLoads, design_loads
from sim.traffic import design_bytes_per_sec, design_traffic, network_bytes_per_sec

__all__ = ["CRITICAL", "WARN", "ComponentPlan", "Dimension", "Finding", "SizePlan", "Traffic",
           "cpu_dimension", "instances_surviving_zone_loss", "network_bytes_per_sec", "network_dimension",
           "size_plan", "with_zone_loss"]


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
    soft_dimensions: tuple[str, ...] = ()  # short on these it still works (Redis memory as a cache)

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
               if d.needed > self.configured and d.name not in self.soft_dimensions]
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
    design: bool = False  # planned from a design's components and flows
    hit_ratios: dict[str, float] = field(default_factory=dict)  # a design's redis components (Che)
    requests_per_sec: float = 0.0  # a design's client requests (its rated flows), full scale

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

    # -- tables shared by the markdown and the CLI (sim/plan_tables.py) ---------------------------
    def plan_table(self) -> tuple[list[str], list[list[str]]]:
        return plan_tables.plan_table(self)

    def cost_table(self) -> tuple[list[str], list[list[str]]]:
        """Monthly cost by kind, the configured and the needed fleet side by side."""
        return plan_tables.cost_table(self)

    def dimension_table(self) -> tuple[list[str], list[list[str]]]:
        return plan_tables.dimension_table(self)

    def queueing_table(self) -> tuple[list[str], list[list[str]]]:
        return plan_tables.queueing_table(self)

    def facts(self) -> str:
        """The plan's assumptions in one sentence."""
        zones = (f"holding the load with 1 of {self.zones} zones lost (cpu and network)" if self.zones > 1
                 else "one zone: no zone-loss headroom")
        if self.design:
            hits = ", ".join(f"{name} {h:.3f}" for name, h in self.hit_ratios.items())
            return (f"CPU planned at {self.target_utilization:.0%} utilization, {zones}; network against "
                    f"sustained bandwidth per direction; loads from the flows' rates and steps"
                    + (f"; cache hit ratios (Che) {hits}" if hits else ""))
        facts = [f"mean message {self.mean_message_bytes:,.0f} B"]
        if self.component("group_service") is not None:
            facts.append(f"{self.mean_recipients:.2f} recipients per message (workload model)")
        if self.lookups_per_read != 1:
            facts.append(f"{self.lookups_per_read:.3g} conversation lookups per read")
        if self.component("redis") is not None:
            facts.append(f"Redis hit ratio {self.hit_ratio:.3f}")
        return (f"CPU planned at {self.target_utilization:.0%} utilization, {zones}; network against "
                f"sustained bandwidth per direction; {', '.join(facts)}")

    # -- outputs --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_configured"] = self.cost_configured.as_summary()
        out["cost_needed"] = self.cost_needed.as_summary()
        for c, plan in zip(out["components"], self.components, strict=True):
            c["needed_nodes"], c["configured_nodes"] = plan.needed_nodes, plan.configured_nodes
            del c["soft_dimensions"]
        messaging = ("mean_message_bytes", "mean_recipients", "lookups_per_read", "hit_ratio")
        for key in (messaging if self.design else ("design", "hit_ratios", "requests_per_sec")):
            del out[key]
        out["warnings"] = self.warnings
        out["unholdable"] = self.unholdable()
        out["monthly_usd_needed"] = self.monthly_usd_needed
        out["monthly_usd_configured"] = self.monthly_usd_configured
        return json_safe(out)

    def to_markdown(self) -> str:
        return plan_tables.markdown(self)

    def write(self, out_dir: Path) -> list[Path]:
        """size.json and size.md in `out_dir` (created)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "size.json", out_dir / "size.md"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        paths[1].write_text(self.to_markdown())
        return paths


# -- the plan ---------------------------------------------------------------------------------------
def size_plan(scenario: Scenario, flows: Flows | DesignLoads | None = None) -> SizePlan:
    """The capacity plan for `scenario`; `flows` defaults to sim.analytic.offered_loads(scenario)
    (a design: sim.system.loads.design_loads of its system)."""
    sc = scenario
    if sc.is_design:
        return _design_plan(sc, flows if isinstance(flows, DesignLoads) else None)
    flows = offered_loads(sc) if flows is None or isinstance(flows, DesignLoads) else flows
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
    for k in kinds():
        load = flows.loads.get(k.name)
        if load is None:
            continue
        hw, type_name = _hardware(k, sc, catalog)
        plan = _size_component(k, sc, load, estimates[k.name], hw, type_name,
                               k.extra_dimensions(sc, flows, hw), traffic, payloads, k.soft_dimensions,
                               lambda d, k=k: k.explain(d, sc, flows), findings, notes)
        plans.append(plan)
    _fleet_findings(kinds(), sc, findings, notes)
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


def _hardware(k: ComponentKind, sc: Scenario, catalog: Catalog) -> tuple[InstanceType | None, str | None]:
    type_name = k.instance_type(sc)
    return (catalog.instance(type_name, f"{k.field_path}.instance_type") if type_name else None), type_name


def _size_component(k: ComponentKind, sc: Scenario, load: Load, estimate: ErlangC, hw: InstanceType | None,
                    type_name: str | None, extra: list[Dimension], traffic: dict[str, Traffic],
                    payloads: str, soft: tuple[str, ...], explain: Callable[[Dimension], str | None],
                    findings: list[Finding], notes: list[str]) -> ComponentPlan:
    """One component's plan: cpu, the kind's `extra` dimensions and network (with a zone lost where
    the kind moves load), its shortfalls and warnings added to `findings`, its notes to `notes`."""
    name = k.name
    dims = [cpu_dimension(load, sc.capacity.target_utilization), *extra]
    if hw is not None:
        dims.append(network_dimension(traffic.get(name, Traffic()), hw, type_name or "", payloads))
    else:
        notes.append(f"{name}: no instance_type, so no network dimension and no cost")
    dims = [with_zone_loss(d, sc.network.zones) if d.name in k.zone_dimensions else d for d in dims]
    plan = _component_plan(k, type_name, hw, load, dims, estimate, sc, soft)
    if plan.cost_note:
        notes.append(f"{name}: {plan.cost_note}")
    findings += _shortfalls(plan, k, sc, explain)
    findings += k.consistency(sc, hw, type_name)
    if hw is not None and k.cpu_threads and hw.vcpu < load.servers:
        findings.append(_workers_over_vcpus(plan, k, load, hw, type_name or "", sc))
    return plan


def _fleet_findings(kinds_in_order: Iterable[ComponentKind], sc: Scenario, findings: list[Finding],
                    notes: list[str]) -> None:
    """Findings and notes about each fleet as a whole, once every fleet is sized."""
    for k in kinds_in_order:
        fleet_findings, fleet_notes = k.fleet_findings(sc)
        findings += fleet_findings
        notes += fleet_notes


def _design_plan(sc: Scenario, loads: DesignLoads | None) -> SizePlan:
    """The plan of a design: every component by its name, from the design's loads and calls."""
    from sim.system.compile import system_of

    system = system_of(sc)
    loads = design_loads(system) if loads is None else loads
    demand = design_traffic(system, loads)
    traffic = design_bytes_per_sec(demand)
    catalog = catalog_for(sc)
    zones = sc.network.zones
    findings: list[Finding] = []
    notes: list[str] = []
    plans = []
    for k in kinds_of(sc):
        name = k.name
        load = loads.loads.get(name) or Load(name, k.configured(sc), int(k.section(sc).workers), 0.0, 0.0)
        estimate = erlang_c(load.servers, load.ops_per_sec / load.instances, load.service_ms)
        hw, type_name = _hardware(k, sc, catalog)
        extra, extra_notes = k.design_dimensions(sc, demand, hw)
        notes += extra_notes
        plan = _size_component(k, sc, load, estimate, hw, type_name, extra, traffic, "",
                               k.design_soft_dimensions(demand),
                               lambda d, k=k: k.design_explain(d, sc, demand), findings, notes)
        plans.append(plan)
    _fleet_findings(kinds_of(sc), sc, findings, notes)
    notes.append("ops/s for cassandra count replica operations (RF per write, the consistency level's "
                 "replicas per read) and for kafka leader and follower appends (RF per produce)")
    notes.append("network: payload bytes only, each direction against sustained (baseline) bandwidth; "
                 "a call carries its key space's mean value_bytes (into the callee for a write, out of it "
                 "for a read; a cache lookup returns it on a hit), gateways and services pass on their "
                 "flow's")
    counts = {p.component: p.needed for p in plans}
    configured = monthly_cost(sc, loads, with_needed=False)
    needed = monthly_cost(sc, loads, fleet=counts, with_needed=False)
    plans = [_priced(p, configured, needed) for p in plans]
    return SizePlan(
        scenario=sc.name, catalog=catalog.catalog, hours_per_month=catalog.hours_per_month,
        target_utilization=sc.capacity.target_utilization, zones=zones, mean_message_bytes=0.0,
        mean_recipients=0.0, lookups_per_read=1.0, hit_ratio=0.0, components=tuple(plans),
        findings=tuple(findings), notes=tuple(notes), cost_configured=configured, cost_needed=needed,
        design=True, hit_ratios=dict(loads.hit_ratios),
        requests_per_sec=sum(loads.flow_rates.get(f, 0.0) for f in system.client_flows()))


# -- helpers ----------------------------------------------------------------------------------------
def _component_plan(k: ComponentKind, type_name: str | None, hw: InstanceType | None, load: Load,
                    dims: list[Dimension], estimate: ErlangC, sc: Scenario,
                    soft: tuple[str, ...]) -> ComponentPlan:
    minimum = k.minimum(sc)
    top = max(dims, key=lambda d: d.needed)
    needed, binding = (top.needed, top.name) if top.needed >= minimum else (minimum, "minimum")
    cost_note = k.managed_note(sc)
    price = hw.usd_per_hour if hw is not None and not cost_note else None
    return ComponentPlan(
        component=k.name, instance_type=type_name, configured=load.instances, ops_per_sec=load.ops_per_sec,
        dimensions=tuple(dims), minimum=minimum, needed=needed, binding=binding,
        headroom=load.instances / needed - 1, usd_per_hour=price, monthly_usd_needed=None,
        monthly_usd_configured=None, estimate=estimate, cost_note=cost_note,
        nodes_per_instance=k.nodes_per_instance(sc), soft_dimensions=soft)


def _priced(plan: ComponentPlan, configured: CostBreakdown, needed: CostBreakdown) -> ComponentPlan:
    """The plan with its component's cost rows summed at both fleets (None: not priced at all)."""
    if plan.usd_per_hour is None and not plan.cost_note:
        return plan
    return dataclasses.replace(plan, monthly_usd_needed=needed.by_component.get(plan.component, 0.0),
                               monthly_usd_configured=configured.by_component.get(plan.component, 0.0))


def _shortfalls(plan: ComponentPlan, k: ComponentKind, sc: Scenario,
                explain: Callable[[Dimension], str | None]) -> list[Finding]:
    """A CRITICAL finding for each dimension that needs more instances than are configured (a WARN
    for Redis memory: the cache works, at a lower hit ratio), and for a fleet the Erlang C estimate
    calls unstable."""
    out = []
    noun = k.noun
    have = plan.configured
    for d in plan.dimensions:
        if d.needed <= have:
            continue
        short = d.needed - have
        holds = d.name in plan.soft_dimensions  # works (Redis memory: at a lower hit ratio)
        zone = ""
        if d.needed != d.needed_all_zones:
            zone = (f" ({d.needed_all_zones:,} with every zone up, "
                    f"{have / d.needed_all_zones - 1:+.0%})" if d.needed_all_zones > have else
                    f" to hold with 1 of {sc.network.zones} zones lost ({d.needed_all_zones:,} with every "
                    "zone up)")
        text = (f"needs {d.needed:,} {noun}{zone}, {have:,} configured: short by {short:,} "
                f"({have / d.needed - 1:+.0%}); {have:,} hold {_amount(have * d.per_instance, d.unit)} "
                f"of {_amount(d.demand, d.unit)}. {explain(d) or _why(plan, d, sc)}")
        out.append(Finding(plan.component, d.name, text, WARN if holds else CRITICAL))
    cpu = plan.dimension("cpu")
    if plan.unstable and (cpu is None or cpu.needed <= have):
        e = plan.estimate
        out.append(Finding(plan.component, "cpu", (
            f"unstable: M/M/c predicts {e.utilization:.0%} utilization per instance "
            f"({_n(e.arrivals_per_sec)} ops/s on {e.servers} workers of {_n(e.service_ms)} ms): queues grow "
            "without bound"), CRITICAL))
    return out


def _workers_over_vcpus(plan: ComponentPlan, k: ComponentKind, load: Load, hw: InstanceType,
                        type_name: str, sc: Scenario) -> Finding:
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
        f"{_n(busy)} busy cores need {bound:,} {k.noun} at {target:.0%} of {hw.vcpu} vCPU"
        f"{zone}, against {plan.needed:,} planned and {plan.configured:,} configured; set workers to the "
        "vCPUs, or calibrate service times on this instance type"))


def _why(plan: ComponentPlan, d: Dimension, sc: Scenario) -> str:
    if d.name == "cpu":
        e = plan.estimate
        state = (f"M/M/c predicts {e.utilization:.0%} utilization"
                 + (", unstable: queues grow without bound" if not e.stable else
                    f", above the {sc.capacity.target_utilization:.0%} target"
                    if e.utilization > sc.capacity.target_utilization else
                    f", within the {sc.capacity.target_utilization:.0%} target with every zone up"))
        return f"Why: {d.basis}; one instance plans for {d.capacity_basis}; {state}."
    if d.name == "disk":
        return f"Why: {d.basis}; one instance holds {d.capacity_basis}."
    return f"Why: {d.basis}; one instance has {d.capacity_basis}."
