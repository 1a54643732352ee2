"""Cassandra: nodes holding every message (and, with fan-out on write, every inbox entry).

- minimum: replication_factor nodes.
- disk: at steady state the retention period's data is on disk:
  (sends x mean message bytes + sends x mean recipients x inbox_entry_bytes [fan-out on write])
  x retention seconds x replication_factor x compaction_headroom. One node holds
  min(disk_gb_per_node, or the instance type's local disk for `disk: local`;
  max_data_gb_per_node x compaction_headroom). `disk: ebs` without disk_gb_per_node is bounded by
  max_data_gb_per_node x compaction_headroom alone (volumes are sized to fit).
- cost: storage is that data at EBS gp3 per GB-month with `disk: ebs` (0 with `disk: local`: the
  NVMe is in the instance price); cross-zone network is RF x (Z-1)/Z copies of every byte written
  (the coordinator in the writer's zone, replicas spread rack-aware over Z zones).
- a design's Cassandra: disk holds the keys of every key space its flows read or write, count x
  mean value_bytes x replication_factor x compaction_headroom (storage priced the same way); a
  design declares no retention, so the growth of flows writing fresh keys (`key: <space>.new`) is
  stated in a note, not sized. Cross-zone network: the bytes its flows write, x RF x (Z-1)/Z.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.base import ComponentKind
from sim.components.cost_rows import CostRow, basis_number, price_source, stored_gb
from sim.components.dimensions import Dimension, Finding
from sim.components.units import BYTES_PER_GB, SECONDS_PER_DAY, byte_text, ceil_instances, number

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.fleet_specs import Cassandra
    from sim.pricing import Catalog, InstanceType
    from sim.scenario import Scenario
    from sim.traffic import DesignTraffic


def cassandra_cross_zone_copies(replication_factor: int, zones: int) -> float:
    """Replica writes leaving the coordinator's zone, per write: RF x (Z-1)/Z."""
    return replication_factor * (zones - 1) / zones


def cassandra_disk_dimension(sc: Scenario, flows: Flows, hw: InstanceType | None) -> Dimension:
    c, w, gs = sc.cassandra, sc.workload, sc.group_service
    retention_s = w.retention_days * SECONDS_PER_DAY
    messages_bytes = w.sends_per_sec * flows.mean_message_bytes * retention_s
    inbox = gs.enabled and gs.fan_out == "write"
    inbox_bytes = (w.sends_per_sec * flows.mean_recipients * gs.inbox_entry_bytes * retention_s
                   if inbox else 0.0)
    factor = c.replication_factor * c.compaction_headroom
    demand_gb = (messages_bytes + inbox_bytes) * factor / BYTES_PER_GB
    basis = (f"{w.retention_days:g} days of messages at {number(w.sends_per_sec)}/s x "
             f"{flows.mean_message_bytes:,.0f} B = {byte_text(messages_bytes)} before replication")
    if inbox:
        basis += (f", plus inbox entries {number(w.sends_per_sec)}/s x {flows.mean_recipients:.2f} "
                  f"recipients x {gs.inbox_entry_bytes:g} B = {byte_text(inbox_bytes)}")
    basis += (f"; x RF {c.replication_factor} x compaction headroom {c.compaction_headroom:g} = "
              f"{byte_text(demand_gb * BYTES_PER_GB)}")
    per, cap_basis = _node_disk_gb(c, hw)
    needed = ceil_instances(demand_gb / per)
    return Dimension("disk", "GB", demand_gb, per, needed, basis, cap_basis,
                     {"messages_bytes_before_replication": messages_bytes,
                      "inbox_bytes_before_replication": inbox_bytes, "retention_s": retention_s,
                      "replication_factor": c.replication_factor,
                      "compaction_headroom": c.compaction_headroom}, needed_all_zones=needed)


def _node_disk_gb(c: Cassandra, hw: InstanceType | None) -> tuple[float, str]:
    """What one node holds (GB) and that figure's arithmetic in words."""
    ops_limit = c.max_data_gb_per_node * c.compaction_headroom
    ops_text = f"{c.max_data_gb_per_node:,g} GB data limit x {c.compaction_headroom:g} headroom"
    if c.disk_gb_per_node is not None:
        disk, disk_text = c.disk_gb_per_node, f"{c.disk_gb_per_node:,g} GB disk_gb_per_node"
    elif c.disk == "local" and hw is not None and hw.local_disk_gb > 0:
        disk, disk_text = hw.local_disk_gb, f"{hw.local_disk_gb:,g} GB local disk of {c.instance_type}"
    else:
        disk, disk_text = None, ""
    per = ops_limit if disk is None else min(disk, ops_limit)
    cap_basis = f"min({disk_text}, {ops_text}) = {number(per)} GB" if disk is not None else (
        f"{ops_text} = {number(per)} GB" + ("" if c.disk == "ebs" else
                                            " (local disk size unknown: set disk_gb_per_node)"))
    return per, cap_basis


def design_stored_bytes(c: Cassandra, name: str, demand: DesignTraffic) -> tuple[float, str]:
    """Bytes a design's Cassandra component holds before replication (every key of the key spaces
    its flows read or write, at the space's mean value_bytes), and that sum in words."""
    total, parts = 0.0, []
    for space in demand.spaces(name):
        count, value = demand.system.keys[space].count, demand.value_bytes(space)
        total += count * value
        parts.append(f"{space} {count:,} keys x {value:,.0f} B")
    return total, " + ".join(parts) or "no key space reaches it"


def design_disk_dimension(c: Cassandra, name: str, demand: DesignTraffic, hw: InstanceType | None
                          ) -> tuple[Dimension, list[str]]:
    """The design component's disk dimension, and a note on the growth it does not size."""
    data, text = design_stored_bytes(c, name, demand)
    demand_gb = data * c.replication_factor * c.compaction_headroom / BYTES_PER_GB
    basis = (f"{text} = {byte_text(data)} before replication; x RF {c.replication_factor} x compaction "
             f"headroom {c.compaction_headroom:g} = {byte_text(demand_gb * BYTES_PER_GB)}")
    per, cap_basis = _node_disk_gb(c, hw)
    needed = ceil_instances(demand_gb / per)
    notes = []
    flows = demand.system.flows
    fresh = [(call.flow, call.per_sec, call.per_sec * call.in_bytes) for call in demand.to(name, ("write",))
             if flows[call.flow].draw == "new" and call.space == flows[call.flow].space]
    if fresh:
        growth = " + ".join(f"{flow} {number(rate)} new keys/s" for flow, rate, _ in fresh)
        per_day = sum(b for _, _, b in fresh) * SECONDS_PER_DAY
        notes.append(f"{name} disk: sized on the keys its key spaces declare; {growth} add "
                     f"{byte_text(per_day)}/day before replication: growth not sized, a design does not "
                     "declare retention")
    return Dimension("disk", "GB", demand_gb, per, needed, basis, cap_basis,
                     {"stored_bytes_before_replication": data, "replication_factor": c.replication_factor,
                      "compaction_headroom": c.compaction_headroom}, needed_all_zones=needed), notes


def cassandra_write_bytes(sc: Scenario, flows: Flows) -> tuple[float, str]:
    """Bytes written to Cassandra per second (one copy), and that sum in words."""
    sends = sc.workload.sends_per_sec
    gs = sc.group_service
    inbox = (sends * flows.mean_recipients if gs.enabled and gs.fan_out == "write" and sc.cassandra.enabled
             else 0.0)
    entry = gs.inbox_entry_bytes
    n = basis_number
    text = f"{n(sends)} msg/s x {n(flows.mean_message_bytes)} B"
    if inbox:
        text = f"({text} + {n(inbox)} inbox entries/s x {n(entry)} B)"
    return sends * flows.mean_message_bytes + inbox * entry, text


@dataclass(frozen=True)
class CassandraKind(ComponentKind):
    def minimum(self, sc: Scenario) -> int:
        return int(self.section(sc).replication_factor)

    def design_dimensions(self, sc: Scenario, demand: DesignTraffic, hw: InstanceType | None
                          ) -> tuple[list[Dimension], list[str]]:
        d, notes = design_disk_dimension(self.section(sc), self.name, demand, hw)
        return [d], notes

    def design_storage_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic) -> list[CostRow]:
        c = self.section(sc)
        data, text = design_stored_bytes(c, self.name, demand)
        gb = data * c.replication_factor * c.compaction_headroom / BYTES_PER_GB
        return _storage_rows(self.name, c, catalog, gb, f"({text}) x RF {c.replication_factor} x headroom "
                                                        f"{c.compaction_headroom:g} = {basis_number(gb)} GB")

    def design_network_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic,
                            month_s: float) -> list[CostRow]:
        writes = demand.to(self.name, ("write",))
        bps = sum(w.per_sec * w.in_bytes for w in writes)
        n = basis_number
        text = " + ".join(f"{w.flow} {n(w.per_sec)}/s x {n(w.in_bytes)} B" for w in writes)
        return _cross_zone_rows(self.name, sc, catalog, self.section(sc).replication_factor, bps,
                                f"({text})" if len(writes) > 1 else text, month_s)

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        c = self.section(sc)
        return (f"RF {c.replication_factor}, {c.write_consistency}/{c.read_consistency}",)

    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        return [cassandra_disk_dimension(sc, flows, hw)]

    def consistency(self, sc: Scenario, hw: InstanceType | None, type_name: str | None) -> list[Finding]:
        c = self.section(sc)
        if hw is None or c.disk != "local":
            return []
        if c.disk_gb_per_node is not None and c.disk_gb_per_node > hw.local_disk_gb:
            return [Finding(self.name, "disk", f"disk_gb_per_node {c.disk_gb_per_node:,g} GB exceeds "
                                               f"{type_name}'s {hw.local_disk_gb:,g} GB of local disk "
                                               "(disk: local)")]
        if c.disk_gb_per_node is None and hw.local_disk_gb == 0:
            return [Finding(self.name, "disk", f"disk: local but {type_name} has no local disk; set "
                                               f"{self.field_path}.disk: ebs or disk_gb_per_node")]
        return []

    def storage_rows(self, sc: Scenario, catalog: Catalog, flows: Flows) -> list[CostRow]:
        c = sc.cassandra
        if not c.enabled:
            return []
        n = basis_number
        bps, text = cassandra_write_bytes(sc, flows)
        retention_s = sc.workload.retention_days * SECONDS_PER_DAY
        gb = stored_gb(bps, retention_s, c.replication_factor, c.compaction_headroom)
        data = (f"{text} x {n(sc.workload.retention_days)} d x RF {c.replication_factor} "
                f"x headroom {c.compaction_headroom:g} = {n(gb)} GB")
        return _storage_rows(self.name, c, catalog, gb, data)

    def network_rows(self, sc: Scenario, catalog: Catalog, flows: Flows, month_s: float) -> list[CostRow]:
        if not sc.cassandra.enabled:
            return []
        bps, text = cassandra_write_bytes(sc, flows)
        return _cross_zone_rows(self.name, sc, catalog, sc.cassandra.replication_factor, bps, text, month_s)

    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        c = sc.cassandra
        return (f"RF {c.replication_factor}, {c.write_consistency}/{c.read_consistency}",)


def _storage_rows(name: str, c: Cassandra, catalog: Catalog, gb: float, data: str) -> list[CostRow]:
    """`gb` of data on EBS gp3 (`disk: ebs`), or on local NVMe, priced in the instance."""
    if c.disk == "ebs":
        price = catalog.storage.ebs_gp3_usd_per_gb_month
        return [CostRow(name, "storage", gb * price.value,
                        f"{data} x ${price.value:g}/GB-month (EBS gp3)", price_source(catalog, price))]
    return [CostRow(name, "storage", 0.0,
                    f"{data} on local NVMe: in the instance price (sizing checks the fit)")]


def _cross_zone_rows(name: str, sc: Scenario, catalog: Catalog, rf: int, bps: float, text: str,
                     month_s: float) -> list[CostRow]:
    """Replica writes leaving the coordinator's zone: bytes written x RF x (Z-1)/Z, both directions."""
    z = sc.network.zones
    if z < 2:
        return []
    cz = catalog.network.cross_zone_usd_per_gb_each_direction
    n = basis_number
    gb = bps * month_s * cassandra_cross_zone_copies(rf, z) / BYTES_PER_GB
    return [CostRow(
        name, "network", gb * 2 * cz.value,
        f"cross-zone replica writes: {text} x {n(month_s)} s x RF {rf} x ({z}-1)/{z} zones "
        f"= {n(gb)} GB x 2 directions x ${cz.value:g}/GB", price_source(catalog, cz))]


CASSANDRA = CassandraKind(name="cassandra", label="Cassandra", noun="nodes", count_field="nodes",
                          shape="cylinder", diagram_rank=3, diagram_layer=3, diagram_column=1,
                          sized_on=("cpu", "disk", "network"))
