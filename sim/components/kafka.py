"""Kafka: brokers holding the send stream, which the group service consumes.

- minimum: replication_factor brokers; a sample cell also scales the partitions (at least one).
- disk: sends x mean message bytes x kafka.replication_factor x retention_hours x 3600 s, against
  `disk_gb_per_broker`; priced at the catalog's MSK storage price per GB-month.
- cross-zone network, per message byte produced: the produce to the partition leader crosses with
  probability (Z-1)/Z; each follower outside the leader's zone copies it across: with c_z replicas
  in zone z (spread as evenly as possible) and the leader any one of them, RF - sum(c_z^2)/RF
  copies (RF-1 when RF <= Z; 4/3 for RF 3 over 2 zones); the consumer (group_service, when
  enabled) fetches from a leader in another zone with probability (Z-1)/Z. With an MSK broker type
  (`kafka.*`) the follower copies are free: MSK does not bill transfer between a cluster's brokers.
- a design's Kafka: the same rules over the records its flows produce (produce rate x the
  producing key space's mean value_bytes); the consumer copy counts when a flow consumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.base import ComponentKind
from sim.components.cost_rows import CostRow, basis_number, price_source, stored_gb
from sim.components.dimensions import Dimension
from sim.components.units import BYTES_PER_GB, SECONDS_PER_HOUR, byte_text, ceil_instances

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.fleet_specs import Kafka
    from sim.pricing import Catalog, InstanceType
    from sim.scenario import Scenario
    from sim.traffic import DesignTraffic


def kafka_follower_cross_zone_copies(replication_factor: int, zones: int) -> float:
    """Follower copies outside the leader's zone, the replicas spread as evenly as possible over
    the zones (c_z replicas in zone z) and the leader any one of them: RF - sum(c_z^2)/RF."""
    rf = replication_factor
    per_zone = [rf // zones + (1 if z < rf % zones else 0) for z in range(zones)]
    return rf - sum(c * c for c in per_zone) / rf


def kafka_disk_dimension(sc: Scenario, flows: Flows) -> Dimension:
    return _disk_dimension(sc.kafka, sc.workload.sends_per_sec * flows.mean_message_bytes)


def _produced(name: str, demand: DesignTraffic) -> tuple[float, str]:
    """A design's produce bytes/s into kafka component `name` (one copy), and that sum in words."""
    n = basis_number
    calls = demand.to(name, ("produce",))
    text = " + ".join(f"{c.flow} {n(c.per_sec)}/s x {n(c.in_bytes)} B" for c in calls) or "0"
    return sum(c.per_sec * c.in_bytes for c in calls), f"({text})" if len(calls) > 1 else text


def _disk_dimension(k: Kafka, produce_bytes_per_sec: float) -> Dimension:
    retention_s = k.retention_hours * SECONDS_PER_HOUR
    demand_gb = produce_bytes_per_sec * k.replication_factor * retention_s / BYTES_PER_GB
    needed = ceil_instances(demand_gb / k.disk_gb_per_broker)
    return Dimension(
        "disk", "GB", demand_gb, k.disk_gb_per_broker, needed,
        f"{byte_text(produce_bytes_per_sec)}/s produced x RF {k.replication_factor} x "
        f"{k.retention_hours:g} h retention = {byte_text(demand_gb * BYTES_PER_GB)}",
        f"{k.disk_gb_per_broker:,g} GB disk_gb_per_broker",
        {"produce_bytes_per_sec": produce_bytes_per_sec, "retention_s": retention_s},
        needed_all_zones=needed)


@dataclass(frozen=True)
class KafkaKind(ComponentKind):
    def minimum(self, sc: Scenario) -> int:
        return int(self.section(sc).replication_factor)

    def design_dimensions(self, sc: Scenario, demand: DesignTraffic, hw: InstanceType | None
                          ) -> tuple[list[Dimension], list[str]]:
        return [_disk_dimension(self.section(sc), _produced(self.name, demand)[0])], []

    def design_storage_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic) -> list[CostRow]:
        k = self.section(sc)
        bps, text = _produced(self.name, demand)
        return [_storage_row(self.name, k, catalog, bps, text)]

    def design_network_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic,
                            month_s: float) -> list[CostRow]:
        bps, text = _produced(self.name, demand)
        consumed = any(c.caller == self.name and c.role == "consume" for c in demand.calls)
        return _cross_zone_rows(self.name, sc, self.section(sc), catalog, bps, text, consumed, month_s)

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        k = self.section(sc)
        return (f"{k.partitions} partitions, RF {k.replication_factor}, acks {k.acks}",)

    def sample_fleets(self, sc: Scenario) -> dict[str, tuple[int, int]]:
        partitions = "kafka_partitions" if not self.bound else f"{self.name}_partitions"
        return {**super().sample_fleets(sc), partitions: (self.section(sc).partitions, 1)}

    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        return [kafka_disk_dimension(sc, flows)]

    def storage_rows(self, sc: Scenario, catalog: Catalog, flows: Flows) -> list[CostRow]:
        k = sc.kafka
        if not k.enabled:
            return []
        n = basis_number
        text = f"{n(sc.workload.sends_per_sec)} msg/s x {n(flows.mean_message_bytes)} B"
        bps = sc.workload.sends_per_sec * flows.mean_message_bytes
        return [_storage_row(self.name, k, catalog, bps, text)]

    def network_rows(self, sc: Scenario, catalog: Catalog, flows: Flows, month_s: float) -> list[CostRow]:
        if not sc.kafka.enabled:
            return []
        n = basis_number
        text = f"{n(sc.workload.sends_per_sec)} msg/s x {n(flows.mean_message_bytes)} B"
        return _cross_zone_rows(self.name, sc, sc.kafka, catalog,
                                sc.workload.sends_per_sec * flows.mean_message_bytes, text,
                                sc.group_service.enabled, month_s)

    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        k = sc.kafka
        return (f"{k.partitions} partitions, RF {k.replication_factor}, acks {k.acks}",)


def _storage_row(name: str, k: Kafka, catalog: Catalog, bps: float, text: str) -> CostRow:
    """`bps` produced, kept retention_hours on RF brokers, at the MSK storage price."""
    n = basis_number
    price = catalog.storage.msk_usd_per_gb_month
    gb = stored_gb(bps, k.retention_hours * SECONDS_PER_HOUR, k.replication_factor)
    return CostRow(name, "storage", gb * price.value,
                   f"{text} x {n(k.retention_hours)} h x RF {k.replication_factor} = {n(gb)} GB x "
                   f"${price.value:g}/GB-month (MSK)", price_source(catalog, price))


def _cross_zone_rows(name: str, sc: Scenario, k: Kafka, catalog: Catalog, bps: float, text: str,
                     consumed: bool, month_s: float) -> list[CostRow]:
    """Produce, follower and consumer copies crossing zones (the module docstring's rule)."""
    z = sc.network.zones
    if z < 2:
        return []
    cz = catalog.network.cross_zone_usd_per_gb_each_direction
    n = basis_number
    rf = k.replication_factor
    elsewhere = (z - 1) / z
    # Amazon MSK does not bill replication between the brokers of a cluster; self-managed
    # brokers on EC2 pay cross-zone rates for it like any other traffic.
    managed = (k.instance_type or "").startswith("kafka.")
    followers = 0.0 if managed else kafka_follower_cross_zone_copies(rf, z)
    consumer = elsewhere if consumed else 0.0
    copies = elsewhere + followers + consumer
    gb = bps * month_s * copies / BYTES_PER_GB
    return [CostRow(
        name, "network", gb * 2 * cz.value,
        f"cross-zone: {text} x {n(month_s)} s x (produce {n(elsewhere)} + followers {n(followers)} + "
        f"consumer {n(consumer)}) = {n(gb)} GB x 2 directions x ${cz.value:g}/GB", price_source(catalog, cz))]


KAFKA = KafkaKind(name="kafka", label="Kafka", noun="brokers", count_field="brokers", shape="queue",
                  diagram_rank=5, diagram_layer=3, diagram_column=2, sized_on=("cpu", "disk", "network"),
                  summary_sections=("kafka",))
