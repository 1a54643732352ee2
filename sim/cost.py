"""Monthly cost of a scenario: compute, storage, network and per-request prices, by component.

`monthly_cost(scenario, flows=None)` prices the configured design (the full fleet counts, never
the sampled cell) from the scenario's pricing catalog (sim/pricing.py: prices are data, each with
its public source page and date; `pricing.usd_per_hour` overrides instance prices). It returns a
`CostBreakdown` of rows (component, kind, monthly_usd, basis: the arithmetic in words, source: where
the price came from), with totals by component and by kind and `usd_per_million_messages`.
`flows` (sim.analytic.Flows) supplies the mean recipients per message and the mean message size;
it defaults to the workload model's mix (sim.workload.workload_mix, as `capsim size` uses); pass a
run's realised figures to price that run.

Configured and needed, side by side: `fleet` prices other instance counts (by fleet; Redis in
shards) with the same rows, and by default the breakdown carries `needed`: the fleet sim.sizing
finds the load needs (zone loss, replicas and every dimension included), priced by this same
function from the same flows. Only compute differs between the two: storage, transfer and request
prices follow the data and the traffic, not the instance count. `as_summary()` (summary.json's
`cost`) holds both. Everything here is arithmetic on its arguments.

Units and conventions
- A month is the catalog's `hours_per_month` (730 h = 2,628,000 s for aws-us-east-1).
- GB = 1e9 bytes, for storage (GB-month) and for transfer (GB) alike. (EBS really bills GiB =
  2^30 bytes; pricing 1e9-byte GB overstates EBS storage by 7%, on the safe side.)
- Sizes are payload bytes: the mean message size, `group_service.inbox_entry_bytes` per inbox
  entry; no per-row or per-record overhead, no compression.

Rules, by kind (each component kind's own rows are in its module, sim/components/)
- compute: `instances x usd_per_hour x hours_per_month` for each enabled fleet (gateway instances,
  message_service instances, group_service instances, Cassandra nodes, Redis shards, Kafka
  brokers; Redis nodes are shards x (1 + redis.replicas): a replica costs what its shard costs).
  A fleet without `instance_type` costs 0 ("no instance_type: not priced"); an unknown
  instance type raises ScenarioError naming `<fleet>.instance_type` and the catalog's types.
  Redis memory is part of the cache instance's price (sim/components/base.py).
- requests: a gateway priced as a managed API gateway, per request through the catalog's graduated
  tiers (sim/components/gateway.py).
- storage: Cassandra's and Kafka's retained data (sim/components/cassandra.py, kafka.py).
- network, cross-zone (network.zones = Z >= 2): a byte that crosses a zone boundary is billed in
  both directions (2 x cross_zone_usd_per_gb_each_direction); Cassandra's replica writes and
  Kafka's produce, follower and consumer copies (sim/components/cassandra.py, kafka.py).
- network, cross-region (network.regions = R >= 2): every message (its bytes) is copied to each
  other region once, at cross_region_usd_per_gb (component "cross_region"); each region rebuilds
  its own replicas, inboxes and caches locally.
Not priced: traffic between the stateless tiers (assumed zone-local), read traffic (Redis and
Cassandra read responses), internet egress to clients, Cassandra repair, hints and streaming,
snapshots/backups, and Kafka or Cassandra disk beyond the formulas above.

`usd_per_million_messages` = total monthly USD / (sends_per_sec x seconds per month / 1e6).

A design (`components:` and `flows:`) is priced by the same rules per named component (its kind's
`design_*` rows): compute from each component's instance_type; a managed gateway's requests are
the calls its flows make to it; Cassandra storage is the keys of the key spaces it stores (count x
mean value_bytes x RF x compaction headroom), Kafka storage its produce bytes over retention_hours;
cross-zone network the bytes its flows write (sim/traffic.py). A design has no messages:
`sends_per_sec` is 0 and `usd_per_million_messages` NaN; cross-region copies are not priced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.analytic import Flows, offered_loads
from sim.components import kinds, kinds_of
from sim.components.cassandra import cassandra_cross_zone_copies
from sim.components.cost_rows import (
    KINDS,
    CostRow,
    Kind,
    basis_number,
    graduated_usd,
    price_source,
    stored_gb,
)
from sim.components.kafka import kafka_follower_cross_zone_copies
from sim.errors import ScenarioError
from sim.pricing import Catalog, catalog_for
from sim.scenario import Scenario
from sim.system.loads import DesignLoads, design_loads

__all__ = ["KINDS", "CostBreakdown", "CostRow", "Kind", "cassandra_cross_zone_copies", "graduated_usd",
           "kafka_follower_cross_zone_copies", "monthly_cost", "stored_gb", "usd_per_million"]

BYTES_PER_GB = 1e9
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CostBreakdown:
    rows: tuple[CostRow, ...]
    catalog: str
    currency: str
    hours_per_month: float
    sends_per_sec: float
    instances: dict[str, int] = field(default_factory=dict)  # priced count per fleet (Redis: shards)
    nodes: dict[str, int] = field(default_factory=dict)  # machines priced (Redis: shards x (1 + replicas))
    needed: CostBreakdown | None = None  # the fleet sim.sizing says the load needs, priced the same way
    needed_note: str = ""  # how `needed` was found, or why it is missing

    @property
    def seconds_per_month(self) -> float:
        return self.hours_per_month * SECONDS_PER_HOUR

    @property
    def by_component(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for row in self.rows:
            out[row.component] = out.get(row.component, 0.0) + row.monthly_usd
        return out

    @property
    def by_kind(self) -> dict[str, float]:
        out = dict.fromkeys(KINDS, 0.0)
        for row in self.rows:
            out[row.kind] += row.monthly_usd
        return out

    @property
    def total_monthly_usd(self) -> float:
        return sum(row.monthly_usd for row in self.rows)

    @property
    def usd_per_million_messages(self) -> float:
        return usd_per_million(self.total_monthly_usd, self.sends_per_sec, self.seconds_per_month)

    def as_summary(self) -> dict[str, Any]:
        """The `cost` section of summary.json: the configured fleet's figures at the top level, the
        needed fleet's (same keys, same rows) under `needed`."""
        out = {
            "monthly_usd": self.by_component,
            "by_kind_usd": self.by_kind,
            "total_monthly_usd": self.total_monthly_usd,
            "usd_per_million_messages": self.usd_per_million_messages,
            "catalog": self.catalog,
            "currency": self.currency,
            "hours_per_month": self.hours_per_month,
            "instances": dict(self.instances),
            "nodes": dict(self.nodes),
            "rows": [row.as_dict() for row in self.rows],
        }
        if self.needed is not None or self.needed_note:
            out["needed"] = self.needed.as_summary() if self.needed is not None else None
            out["needed_note"] = self.needed_note
        return out


# ---- pure arithmetic -------------------------------------------------------------------------


def usd_per_million(total_monthly_usd: float, sends_per_sec: float, seconds_per_month: float) -> float:
    messages = sends_per_sec * seconds_per_month
    return total_monthly_usd / (messages / 1e6) if messages > 0 else math.nan


# ---- the model -------------------------------------------------------------------------------


def monthly_cost(scenario: Scenario, flows: Flows | DesignLoads | None = None, *,
                 fleet: Mapping[str, int] | None = None, with_needed: bool = True) -> CostBreakdown:
    """Monthly cost of `scenario` by component and kind (rules in the module docstring).

    `flows` defaults to the workload model's mix (sim.analytic.offered_loads); only its
    mean_recipients, mean_message_bytes and lookups_per_read enter the cost. `fleet` replaces
    configured instance counts by fleet (Redis: shards). With `with_needed`, the result's `needed`
    prices the fleet sim.sizing finds the load needs, from the same mix (None, with `needed_note`
    saying why, when sizing cannot tell). A design takes its `DesignLoads` (default: design_loads of
    its system; a messaging `Flows` is ignored).
    """
    sc = scenario
    if sc.is_design:
        return _design_cost(sc, flows if isinstance(flows, DesignLoads) else None, fleet, with_needed)
    catalog = catalog_for(sc)
    if flows is None or isinstance(flows, DesignLoads):
        flows = offered_loads(sc, hit_ratio=0.0)  # the hit ratio does not enter the cost
    month_s = catalog.hours_per_month * SECONDS_PER_HOUR
    enabled = [k for k in kinds() if k.enabled(sc)]
    counts = {k.name: (fleet or {}).get(k.name, k.configured(sc)) for k in enabled}
    rows: list[CostRow] = []
    for k in enabled:
        rows += k.compute_rows(sc, catalog, counts[k.name])
    for k in kinds():
        rows += k.request_rows(sc, catalog, month_s)
    for k in kinds():
        rows += k.storage_rows(sc, catalog, flows)
    for k in kinds():
        rows += k.network_rows(sc, catalog, flows, month_s)
    rows += _cross_region_rows(sc, catalog, flows, month_s)
    needed, note = _needed(sc, flows) if with_needed else (None, "")
    return CostBreakdown(rows=tuple(rows), catalog=catalog.catalog, currency=catalog.currency,
                         hours_per_month=catalog.hours_per_month,
                         sends_per_sec=sc.workload.sends_per_sec, instances=counts,
                         nodes={k.name: counts[k.name] * k.nodes_per_instance(sc) for k in enabled},
                         needed=needed, needed_note=note)


def _design_cost(sc: Scenario, loads: DesignLoads | None, fleet: Mapping[str, int] | None,
                 with_needed: bool) -> CostBreakdown:
    """A design's monthly cost, per named component (the module docstring's rules)."""
    from sim.system.compile import system_of
    from sim.traffic import design_traffic

    catalog = catalog_for(sc)
    system = system_of(sc)
    loads = design_loads(system) if loads is None else loads
    demand = design_traffic(system, loads)
    month_s = catalog.hours_per_month * SECONDS_PER_HOUR
    ks = kinds_of(sc)
    counts = {k.name: (fleet or {}).get(k.name, k.configured(sc)) for k in ks}
    rows: list[CostRow] = []
    for k in ks:
        rows += k.compute_rows(sc, catalog, counts[k.name])
    for k in ks:
        rows += k.design_request_rows(sc, catalog, demand, month_s)
    for k in ks:
        rows += k.design_storage_rows(sc, catalog, demand)
    for k in ks:
        rows += k.design_network_rows(sc, catalog, demand, month_s)
    needed, note = None, ""
    if with_needed:
        from sim.sizing import size_plan  # sizing prices its fleets with this module

        try:
            plan = size_plan(sc, loads)
        except (ScenarioError, ValueError) as exc:
            note = f"needed fleet not sized: {exc}"
        else:
            needed, short = plan.cost_needed, plan.unholdable()
            note = (f"the fleet `capsim size` finds the load needs (CPU at {plan.target_utilization:.0%}, "
                    f"{'one of ' + str(plan.zones) + ' zones lost' if plan.zones > 1 else 'one zone'}, "
                    f"every dimension); configured fleets short: {', '.join(short) if short else 'none'}")
    return CostBreakdown(rows=tuple(rows), catalog=catalog.catalog, currency=catalog.currency,
                         hours_per_month=catalog.hours_per_month, sends_per_sec=0.0, instances=counts,
                         nodes={k.name: counts[k.name] * k.nodes_per_instance(sc) for k in ks},
                         needed=needed, needed_note=note)


def _needed(sc: Scenario, flows: Flows) -> tuple[CostBreakdown | None, str]:
    """The needed fleet's cost, by the sizing code, at `flows`' mix (the cache model's hit ratio:
    the load the stores carry depends on it, the prices do not)."""
    from sim.sizing import size_plan  # sizing prices its fleets with this module

    try:
        plan = size_plan(sc, offered_loads(sc, recipients=flows.mean_recipients,
                                           lookups_per_read=flows.lookups_per_read))
    except (ScenarioError, ValueError) as exc:
        return None, f"needed fleet not sized: {exc}"
    short = plan.unholdable()
    return plan.cost_needed, (
        f"the fleet `capsim size` finds the load needs (CPU at {plan.target_utilization:.0%}, "
        f"{'one of ' + str(plan.zones) + ' zones lost' if plan.zones > 1 else 'one zone'}, every dimension), "
        f"{plan.mean_recipients:.3g} recipients per message; configured fleets short: "
        f"{', '.join(short) if short else 'none'}")


def _cross_region_rows(sc: Scenario, catalog: Catalog, flows: Flows, month_s: float) -> list[CostRow]:
    """Every message copied once to each other region (network.regions = R >= 2)."""
    r = sc.network.regions
    if r < 2:
        return []
    cr = catalog.network.cross_region_usd_per_gb
    bps = sc.workload.sends_per_sec * flows.mean_message_bytes
    gb = bps * month_s * (r - 1) / BYTES_PER_GB
    return [CostRow(
        "cross_region", "network", gb * cr.value,
        f"{_n(sc.workload.sends_per_sec)} msg/s x {_n(flows.mean_message_bytes)} B x {_n(month_s)} s "
        f"x ({r}-1) other regions = {_n(gb)} GB x ${cr.value:g}/GB", price_source(catalog, cr))]


_n = basis_number
