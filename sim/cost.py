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

Rules, by kind
- compute: `instances x usd_per_hour x hours_per_month` for each enabled fleet (gateway instances,
  message_service instances, group_service instances, Cassandra nodes, Redis shards, Kafka
  brokers; Redis nodes are shards x (1 + redis.replicas): a replica costs what its shard costs).
  A fleet without `instance_type` costs 0 ("no instance_type: not priced"); an unknown
  instance type raises ScenarioError naming `<fleet>.instance_type` and the catalog's types. Redis
  memory is part of the cache instance's price. A gateway priced as a managed API gateway
  (`gateway.pricing: api_gateway_rest | api_gateway_http`) has no instances (compute 0) and:
- requests: monthly requests = (sends + reads)/s x seconds per month, priced through the catalog's
  graduated tiers (in millions of requests per month): each tier's price applies to the requests
  that fall inside it (REST: the first 333M at $3.50/M, the next 667M at $2.80/M, ...).
- storage, Cassandra: at steady state the retention period's data is on disk:
  `(sends x mean message bytes + inbox entries/s x inbox_entry_bytes) x retention_days x 86400 s
  x replication_factor x compaction_headroom`, where inbox entries/s = sends x mean recipients
  with group_service enabled and `fan_out: write` (0 otherwise). `disk: ebs` prices that at EBS
  gp3 per GB-month (the data need, not `disk_gb_per_node`); `disk: local` costs 0 here: instance
  NVMe is in the instance price (whether the data fits is the sizing module's question).
- storage, Kafka: `sends x mean message bytes x kafka.replication_factor x retention_hours x 3600 s`
  at the catalog's MSK storage price per GB-month.
- network, cross-zone (network.zones = Z >= 2): a byte that crosses a zone boundary is billed in
  both directions (2 x cross_zone_usd_per_gb_each_direction). Replicas are placed rack-aware,
  spread evenly over the zones. Cassandra: the coordinator is in the writer's zone, which is
  uniform over the zones and independent of the replicas' zones, so each of the RF replica writes
  leaves the zone with probability (Z-1)/Z: RF x (Z-1)/Z copies of every message and inbox
  byte written (RF 3 over 3 zones: 2 copies). Kafka, per message byte produced: the produce to the
  partition leader crosses with probability (Z-1)/Z; each follower outside the leader's zone copies
  it across: with c_z replicas in zone z (spread as evenly as possible) and the leader any one of
  them, RF - sum(c_z^2)/RF copies (RF-1 when RF <= Z; 4/3 for RF 3 over 2 zones); the consumer
  (group_service, when enabled) fetches from a leader in another zone with probability (Z-1)/Z.
  With an MSK broker type (`kafka.*`) the follower copies are free: MSK does not bill data
  transfer between the brokers of a cluster; producer and consumer traffic is billed as usual.
- network, cross-region (network.regions = R >= 2): every message (its bytes) is copied to each
  other region once, at cross_region_usd_per_gb (component "cross_region"); each region rebuilds
  its own replicas, inboxes and caches locally.
Not priced: traffic between the stateless tiers (assumed zone-local), read traffic (Redis and
Cassandra read responses), internet egress to clients, Cassandra repair, hints and streaming,
snapshots/backups, and Kafka or Cassandra disk beyond the formulas above.

`usd_per_million_messages` = total monthly USD / (sends_per_sec x seconds per month / 1e6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sim.analytic import Flows, offered_loads
from sim.errors import ScenarioError
from sim.pricing import Catalog, Tier, catalog_for
from sim.scenario import Scenario

Kind = Literal["compute", "storage", "network", "requests"]
KINDS: tuple[Kind, ...] = ("compute", "storage", "network", "requests")
BYTES_PER_GB = 1e9
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class CostRow:
    component: str
    kind: Kind
    monthly_usd: float
    basis: str  # the arithmetic, in words
    source: str = ""  # where the price came from, and its date

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "kind": self.kind, "monthly_usd": self.monthly_usd,
                "basis": self.basis, "source": self.source}


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


def graduated_usd(quantity: float, tiers: Sequence[Tier]) -> tuple[float, list[tuple[float, float]]]:
    """Price `quantity` through graduated tiers (each tier's price applies to the units inside it).

    Returns the total and the (units, unit price) of every tier used. Tier bounds are cumulative
    (`up_to`, None = unbounded), in the same unit as `quantity`.
    """
    total, parts, lower = 0.0, [], 0.0
    for tier in tiers:
        upper = math.inf if tier.up_to is None else tier.up_to
        units = min(quantity, upper) - lower
        if units <= 0:
            break
        total += units * tier.usd
        parts.append((units, tier.usd))
        lower = upper
    return total, parts


def instance_monthly_usd(instances: int, usd_per_hour: float, hours_per_month: float) -> float:
    return instances * usd_per_hour * hours_per_month


def stored_gb(bytes_per_sec: float, retention_s: float, copies: float, headroom: float = 1.0) -> float:
    """Data on disk at steady state: a retention period's writes, times copies and headroom."""
    return bytes_per_sec * retention_s * copies * headroom / BYTES_PER_GB


def cassandra_cross_zone_copies(replication_factor: int, zones: int) -> float:
    """Replica writes leaving the coordinator's zone, per write: RF x (Z-1)/Z."""
    return replication_factor * (zones - 1) / zones


def kafka_follower_cross_zone_copies(replication_factor: int, zones: int) -> float:
    """Follower copies outside the leader's zone, the replicas spread as evenly as possible over
    the zones (c_z replicas in zone z) and the leader any one of them: RF - sum(c_z^2)/RF."""
    rf = replication_factor
    per_zone = [rf // zones + (1 if z < rf % zones else 0) for z in range(zones)]
    return rf - sum(c * c for c in per_zone) / rf


def usd_per_million(total_monthly_usd: float, sends_per_sec: float, seconds_per_month: float) -> float:
    messages = sends_per_sec * seconds_per_month
    return total_monthly_usd / (messages / 1e6) if messages > 0 else math.nan


# ---- the model -------------------------------------------------------------------------------


def monthly_cost(scenario: Scenario, flows: Flows | None = None, *, fleet: Mapping[str, int] | None = None,
                 with_needed: bool = True) -> CostBreakdown:
    """Monthly cost of `scenario` by component and kind (rules in the module docstring).

    `flows` defaults to the workload model's mix (sim.analytic.offered_loads); only its
    mean_recipients, mean_message_bytes and lookups_per_read enter the cost. `fleet` replaces
    configured instance counts by fleet (Redis: shards). With `with_needed`, the result's `needed`
    prices the fleet sim.sizing finds the load needs, from the same mix (None, with `needed_note`
    saying why, when sizing cannot tell).
    """
    sc = scenario
    catalog = catalog_for(sc)
    if flows is None:
        flows = offered_loads(sc, hit_ratio=0.0)  # the hit ratio does not enter the cost
    month_s = catalog.hours_per_month * SECONDS_PER_HOUR
    counts = {name: (fleet or {}).get(name, configured)
              for name, enabled, configured, _type in sc.fleets() if enabled}
    rows: list[CostRow] = []
    rows += _compute_rows(sc, catalog, counts)
    rows += _request_rows(sc, catalog, month_s)
    rows += _storage_rows(sc, catalog, flows)
    rows += _network_rows(sc, catalog, flows, month_s)
    needed, note = _needed(sc, flows) if with_needed else (None, "")
    return CostBreakdown(rows=tuple(rows), catalog=catalog.catalog, currency=catalog.currency,
                         hours_per_month=catalog.hours_per_month,
                         sends_per_sec=sc.workload.sends_per_sec, instances=counts,
                         nodes={n: c * _nodes_per_instance(sc, n) for n, c in counts.items()},
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


def _nodes_per_instance(sc: Scenario, name: str) -> int:
    return 1 + sc.redis.replicas if name == "redis" else 1


def _compute_rows(sc: Scenario, catalog: Catalog, counts: Mapping[str, int]) -> list[CostRow]:
    rows = []
    hours = catalog.hours_per_month
    for name, enabled, _configured, instance_type in sc.fleets():
        if not enabled:
            continue
        instances = counts[name]
        if name == "gateway" and sc.gateway.pricing != "instances":
            rows.append(CostRow(name, "compute", 0.0,
                                f"gateway.pricing {sc.gateway.pricing}: managed, no instances"))
            continue
        if instance_type is None:
            rows.append(CostRow(name, "compute", 0.0, "no instance_type: not priced"))
            continue
        price = catalog.instance(instance_type, f"{name}.instance_type")
        if instance_type in sc.pricing.usd_per_hour:
            source = f"scenario pricing.usd_per_hour.{instance_type}"
        else:
            source = f"{catalog.catalog}: {price.source}, {price.source_url}, {price.date}"
        nodes = instances * _nodes_per_instance(sc, name)
        count = (f"{_n(instances)} shards x (1 + {sc.redis.replicas} replicas) = {_n(nodes)}"
                 if nodes != instances else _n(instances))
        rows.append(CostRow(
            name, "compute", instance_monthly_usd(nodes, price.usd_per_hour, hours),
            f"{count} x {instance_type} x ${price.usd_per_hour:g}/h x {_n(hours)} h", source))
    return rows


def _request_rows(sc: Scenario, catalog: Catalog, month_s: float) -> list[CostRow]:
    gw = sc.gateway
    if not gw.enabled or gw.pricing == "instances":
        return []
    prices = catalog.api_gateway.rest if gw.pricing == "api_gateway_rest" else catalog.api_gateway.http
    w = sc.workload
    millions = (w.sends_per_sec + w.reads_per_sec) * month_s / 1e6
    usd, parts = graduated_usd(millions, prices.tiers)
    tiers = " + ".join(f"{_n(units)}M x ${price:g}" for units, price in parts) or "0"
    basis = (f"({_n(w.sends_per_sec)} sends + {_n(w.reads_per_sec)} reads)/s x {_n(month_s)} s = "
             f"{_n(millions)}M requests/month, {gw.pricing} tiers: {tiers}")
    return [CostRow("gateway", "requests", usd, basis, _source(catalog, prices))]


def _inbox_entries_per_sec(sc: Scenario, flows: Flows) -> float:
    gs = sc.group_service
    if gs.enabled and gs.fan_out == "write" and sc.cassandra.enabled:
        return sc.workload.sends_per_sec * flows.mean_recipients
    return 0.0


def _cassandra_write_bytes(sc: Scenario, flows: Flows) -> tuple[float, str]:
    """Bytes written to Cassandra per second (one copy), and that sum in words."""
    sends = sc.workload.sends_per_sec
    inbox = _inbox_entries_per_sec(sc, flows)
    entry = sc.group_service.inbox_entry_bytes
    text = f"{_n(sends)} msg/s x {_n(flows.mean_message_bytes)} B"
    if inbox:
        text = f"({text} + {_n(inbox)} inbox entries/s x {_n(entry)} B)"
    return sends * flows.mean_message_bytes + inbox * entry, text


def _storage_rows(sc: Scenario, catalog: Catalog, flows: Flows) -> list[CostRow]:
    rows = []
    c = sc.cassandra
    if c.enabled:
        bps, text = _cassandra_write_bytes(sc, flows)
        retention_s = sc.workload.retention_days * SECONDS_PER_DAY
        gb = stored_gb(bps, retention_s, c.replication_factor, c.compaction_headroom)
        data = (f"{text} x {_n(sc.workload.retention_days)} d x RF {c.replication_factor} "
                f"x headroom {c.compaction_headroom:g} = {_n(gb)} GB")
        if c.disk == "ebs":
            price = catalog.storage.ebs_gp3_usd_per_gb_month
            rows.append(CostRow("cassandra", "storage", gb * price.value,
                                f"{data} x ${price.value:g}/GB-month (EBS gp3)", _source(catalog, price)))
        else:
            rows.append(CostRow("cassandra", "storage", 0.0,
                                f"{data} on local NVMe: in the instance price (sizing checks the fit)"))
    k = sc.kafka
    if k.enabled:
        price = catalog.storage.msk_usd_per_gb_month
        bps = sc.workload.sends_per_sec * flows.mean_message_bytes
        gb = stored_gb(bps, k.retention_hours * SECONDS_PER_HOUR, k.replication_factor)
        rows.append(CostRow(
            "kafka", "storage", gb * price.value,
            f"{_n(sc.workload.sends_per_sec)} msg/s x {_n(flows.mean_message_bytes)} B x "
            f"{_n(k.retention_hours)} h x RF {k.replication_factor} = {_n(gb)} GB x "
            f"${price.value:g}/GB-month (MSK)", _source(catalog, price)))
    return rows


def _network_rows(sc: Scenario, catalog: Catalog, flows: Flows, month_s: float) -> list[CostRow]:
    rows = []
    z = sc.network.zones
    cz = catalog.network.cross_zone_usd_per_gb_each_direction
    billed = f"x 2 directions x ${cz.value:g}/GB"
    if z >= 2 and sc.cassandra.enabled:
        rf = sc.cassandra.replication_factor
        bps, text = _cassandra_write_bytes(sc, flows)
        copies = cassandra_cross_zone_copies(rf, z)
        gb = bps * month_s * copies / BYTES_PER_GB
        rows.append(CostRow(
            "cassandra", "network", gb * 2 * cz.value,
            f"cross-zone replica writes: {text} x {_n(month_s)} s x RF {rf} x ({z}-1)/{z} zones "
            f"= {_n(gb)} GB {billed}", _source(catalog, cz)))
    if z >= 2 and sc.kafka.enabled:
        rf = sc.kafka.replication_factor
        elsewhere = (z - 1) / z
        # Amazon MSK does not bill replication between the brokers of a cluster; self-managed
        # brokers on EC2 pay cross-zone rates for it like any other traffic.
        managed = (sc.kafka.instance_type or "").startswith("kafka.")
        followers = 0.0 if managed else kafka_follower_cross_zone_copies(rf, z)
        consumer = elsewhere if sc.group_service.enabled else 0.0
        copies = elsewhere + followers + consumer
        bps = sc.workload.sends_per_sec * flows.mean_message_bytes
        gb = bps * month_s * copies / BYTES_PER_GB
        rows.append(CostRow(
            "kafka", "network", gb * 2 * cz.value,
            f"cross-zone: {_n(sc.workload.sends_per_sec)} msg/s x {_n(flows.mean_message_bytes)} B x "
            f"{_n(month_s)} s x (produce {_n(elsewhere)} + followers {_n(followers)} + consumer "
            f"{_n(consumer)}) = {_n(gb)} GB {billed}", _source(catalog, cz)))
    r = sc.network.regions
    if r >= 2:
        cr = catalog.network.cross_region_usd_per_gb
        bps = sc.workload.sends_per_sec * flows.mean_message_bytes
        gb = bps * month_s * (r - 1) / BYTES_PER_GB
        rows.append(CostRow(
            "cross_region", "network", gb * cr.value,
            f"{_n(sc.workload.sends_per_sec)} msg/s x {_n(flows.mean_message_bytes)} B x {_n(month_s)} s "
            f"x ({r}-1) other regions = {_n(gb)} GB x ${cr.value:g}/GB", _source(catalog, cr)))
    return rows


def _source(catalog: Catalog, price: Any) -> str:
    return f"{catalog.catalog}: {price.source}, {price.source_url}, {price.date}"


def _n(x: float) -> str:
    """A number for a basis text: thousands separators, at most 4 significant digits past them."""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{x:,.0f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"
