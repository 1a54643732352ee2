"""`ComponentKind`: everything particular to one kind of component, in one place.

A kind says how many instances it needs at least, the dimensions it is sized on (cpu and network
for every kind, from sim/components/dimensions.py; memory or disk from its own module), its cost
rows (compute here; requests, storage and network where the kind has them), its node in the
topology diagram and the summary.json sections it fills beside `components.<name>` and
`analytic.<name>`. sim/sizing.py, sim/cost.py, sim/diagram.py and sim/sampling.py iterate the
registry (sim/components/__init__.py) and keep only what is generic.

A kind serves the messaging section of its name (`sc.cassandra`) or, bound to a design's
component (`kind.bind(name)`, `sim.components.kind_for`), that component (`sc.components[name]`):
every method reads its settings through `section(sc)`. The `design_*` methods size and price a
bound kind from a design's loads (sim/system/loads.py) and its calls (sim/traffic.py,
`DesignTraffic`) instead of the messaging workload.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.components.cost_rows import CostRow, basis_number, instance_monthly_usd, price_source

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.components.dimensions import Dimension, Finding
    from sim.pricing import Catalog, InstanceType
    from sim.scenario import Scenario
    from sim.traffic import DesignTraffic


@dataclass(frozen=True)
class Node:
    """A component (or the clients) in the topology diagram."""

    id: str
    shape: str  # rect, stadium, cylinder, queue
    lines: tuple[str, ...]


def count_text(n: int, instance_type: str | None, noun: str = "instances") -> str:
    """'3 x m6i.large', or without a type '3 nodes' / '1 node'."""
    if instance_type:
        return f"{n} x {instance_type}"
    return f"{n} {noun.removesuffix('s') if n == 1 else noun}"


@dataclass(frozen=True)
class ComponentKind:
    """One kind of component. Subclasses override the methods their kind differs in."""

    name: str  # the scenario section and the fleet's name everywhere
    label: str  # the diagram node's first line
    noun: str = "instances"  # what one unit of the fleet is called (Redis: shards)
    count_field: str = "instances"  # the section's field holding the configured count
    shape: str = "rect"  # the diagram node's shape
    diagram_rank: int = 0  # position among the Mermaid nodes (the order requests reach them)
    diagram_layer: int = 1  # SVG row, top to bottom (clients are row 0)
    diagram_column: int = 0  # SVG position in its row, left to right
    sized_on: tuple[str, ...] = ("cpu", "network")  # the dimensions sizing finds for this kind
    zone_dimensions: tuple[str, ...] = ("cpu", "network")  # moved onto the other zones when one is lost
    soft_dimensions: tuple[str, ...] = ()  # short on these still works (a WARN, not CRITICAL)
    cpu_threads: bool = True  # its workers model CPU threads (more than vCPUs is a WARN)
    summary_sections: tuple[str, ...] = ()  # summary.json sections it fills besides components/analytic
    bound: bool = False  # bound to a design's component (`bind`): its section is sc.components[name]

    def bind(self, name: str) -> ComponentKind:
        """This kind for the design component `name` (its section: `sc.components[name]`)."""
        return dataclasses.replace(self, name=name, bound=True)

    # -- the scenario ----------------------------------------------------------------------------
    def section(self, sc: Scenario) -> Any:
        return sc.components[self.name] if self.bound else getattr(sc, self.name)

    @property
    def field_path(self) -> str:
        """Where its settings are in the scenario: `cassandra`, or `components.<name>`."""
        return f"components.{self.name}" if self.bound else self.name

    def enabled(self, sc: Scenario) -> bool:
        return bool(self.section(sc).enabled)

    def configured(self, sc: Scenario) -> int:
        return int(getattr(self.section(sc), self.count_field))

    def instance_type(self, sc: Scenario) -> str | None:
        value = self.section(sc).instance_type
        return None if value is None else str(value)

    # -- counts ----------------------------------------------------------------------------------
    def minimum(self, sc: Scenario) -> int:
        """Fewest instances the design allows."""
        return 1

    def nodes_per_instance(self, sc: Scenario) -> int:
        """Machines per unit of the fleet (Redis: a shard and its replicas)."""
        return 1

    def sample_fleets(self, sc: Scenario) -> dict[str, tuple[int, int]]:
        """(configured count, fewest a sample cell may simulate) for each count the cell scales."""
        return {self.name: (self.configured(sc), self.minimum(sc))}

    # -- sizing ----------------------------------------------------------------------------------
    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        """The dimensions besides cpu and network (memory, disk)."""
        return []

    def consistency(self, sc: Scenario, hw: InstanceType | None, type_name: str | None) -> list[Finding]:
        """Settings the instance type cannot provide."""
        return []

    def fleet_findings(self, sc: Scenario) -> tuple[list[Finding], list[str]]:
        """Findings and notes about the fleet as a whole, after every fleet is sized."""
        return [], []

    def explain(self, d: Dimension, sc: Scenario, flows: Flows) -> str | None:
        """Why a shortfall on `d` matters, where the kind says more than the generic text."""
        return None

    def managed_note(self, sc: Scenario) -> str:
        """Non-empty when the fleet is not priced per instance (a managed service)."""
        return ""

    # -- a design's sizing and cost (a bound kind) --------------------------------------------------
    def design_dimensions(self, sc: Scenario, demand: DesignTraffic, hw: InstanceType | None
                          ) -> tuple[list[Dimension], list[str]]:
        """The dimensions besides cpu and network, and notes on what is not sized."""
        return [], []

    def design_soft_dimensions(self, demand: DesignTraffic) -> tuple[str, ...]:
        """Dimensions short on which the component still works (a WARN), in this design."""
        return self.soft_dimensions

    def design_explain(self, d: Dimension, sc: Scenario, demand: DesignTraffic) -> str | None:
        return None

    def design_request_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic,
                            month_s: float) -> list[CostRow]:
        return []

    def design_storage_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic) -> list[CostRow]:
        return []

    def design_network_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic,
                            month_s: float) -> list[CostRow]:
        return []

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        """A design node's settings line(s), after its name and count."""
        return ()

    # -- cost rows -------------------------------------------------------------------------------
    def compute_rows(self, sc: Scenario, catalog: Catalog, instances: int) -> list[CostRow]:
        """`instances x nodes per instance x usd_per_hour x hours_per_month`."""
        instance_type = self.instance_type(sc)
        if instance_type is None:
            return [CostRow(self.name, "compute", 0.0, "no instance_type: not priced")]
        hours = catalog.hours_per_month
        price = catalog.instance(instance_type, f"{self.field_path}.instance_type")
        if instance_type in sc.pricing.usd_per_hour:
            source = f"scenario pricing.usd_per_hour.{instance_type}"
        else:
            source = price_source(catalog, price)
        per = self.nodes_per_instance(sc)
        nodes = instances * per
        n = basis_number
        count = (f"{n(instances)} {self.noun} x (1 + {per - 1} replicas) = {n(nodes)}"
                 if nodes != instances else n(instances))
        return [CostRow(self.name, "compute", instance_monthly_usd(nodes, price.usd_per_hour, hours),
                        f"{count} x {instance_type} x ${price.usd_per_hour:g}/h x {n(hours)} h", source)]

    def request_rows(self, sc: Scenario, catalog: Catalog, month_s: float) -> list[CostRow]:
        return []

    def storage_rows(self, sc: Scenario, catalog: Catalog, flows: Flows) -> list[CostRow]:
        return []

    def network_rows(self, sc: Scenario, catalog: Catalog, flows: Flows, month_s: float) -> list[CostRow]:
        return []

    # -- diagram ---------------------------------------------------------------------------------
    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        """The node's lines after its label and count: the key settings."""
        return ()

    def diagram_node(self, sc: Scenario) -> Node | None:
        """The node, or None when the diagram leaves the component out. A design's component:
        its name, then its kind and count, then its settings."""
        if self.bound:
            count = count_text(self.configured(sc), self.instance_type(sc), self.noun)
            return Node(self.name, self.shape, (self.name, f"{self.label}, {count}",
                                                *self.design_diagram_lines(sc)))
        if not self.enabled(sc):
            return None
        count = count_text(self.configured(sc), self.instance_type(sc), self.noun)
        return Node(self.name, self.shape, (self.label, count, *self.diagram_lines(sc)))
