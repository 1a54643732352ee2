"""What sizing finds on one dimension of one fleet (`Dimension`), the dimensions every kind shares
(cpu, network), the zone-loss rule, and a plan's `Finding`s. The kind-specific dimensions (Redis
memory, Cassandra and Kafka disk) live in their kind's module."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sim.components.units import BITS_PER_GBIT, byte_text, ceil_instances, number

if TYPE_CHECKING:
    from sim.analytic import Load
    from sim.pricing import InstanceType

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
class Traffic:
    """Fleet-wide payload bytes per second into and out of one fleet."""

    in_bytes_per_sec: float = 0.0
    out_bytes_per_sec: float = 0.0


def cpu_dimension(load: Load, target_utilization: float) -> Dimension:
    per = load.servers * target_utilization
    needed = ceil_instances(load.busy_servers / per)
    return Dimension(
        "cpu", "cores", load.busy_servers, per, needed,
        f"{number(load.ops_per_sec)} ops/s x {number(load.service_ms)} ms mean = "
        f"{number(load.busy_servers)} busy cores",
        f"{load.servers} workers x {target_utilization:.0%} target utilization = {number(per)} cores",
        {"ops_per_sec": load.ops_per_sec, "service_ms": load.service_ms}, needed_all_zones=needed)


def network_dimension(traffic: Traffic, hw: InstanceType, type_name: str, payloads: str = "") -> Dimension:
    """The busier direction against the sustained bandwidth, which AWS gives for each direction."""
    gbps_in = traffic.in_bytes_per_sec * 8 / BITS_PER_GBIT
    gbps_out = traffic.out_bytes_per_sec * 8 / BITS_PER_GBIT
    demand = max(gbps_in, gbps_out)
    per = hw.network_gbps_sustained
    needed = ceil_instances(demand / per)
    return Dimension(
        "network", "Gbps", demand, per, needed,
        f"in {byte_text(traffic.in_bytes_per_sec)}/s = {number(gbps_in)} Gbit/s, out "
        f"{byte_text(traffic.out_bytes_per_sec)}/s = {number(gbps_out)} Gbit/s; the busier direction binds"
        + (f" ({payloads})" if payloads else ""),
        f"{per:g} Gbit/s sustained each direction of {type_name} (burst 'up to' {hw.network_gbps:g}, "
        "not sustained)",
        {"in_bytes_per_sec": traffic.in_bytes_per_sec, "out_bytes_per_sec": traffic.out_bytes_per_sec,
         "in_gbps": gbps_in, "out_gbps": gbps_out}, needed_all_zones=needed)


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
