"""One module per component kind (sim/components/): every registered kind provides every part, and
a kind added to the registry alone shows up in every generic consumer (sizing, cost, diagram,
sample cell, `Scenario.fleets()`) without any other module knowing its name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import sim.components as components
from sim.analytic import Load, offered_loads
from sim.components import ComponentKind, Node, kinds
from sim.components.cost_rows import KINDS, CostRow
from sim.components.dimensions import Dimension
from sim.components.units import ceil_instances
from sim.cost import monthly_cost
from sim.diagram import SHAPES, mermaid, topology
from sim.loading import load_scenario
from sim.pricing import catalog_for
from sim.sampling import fleet_sizes, make_cell
from sim.sizing import CRITICAL, size_plan
from sim.summary import Summary

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.pricing import InstanceType
    from sim.scenario import Scenario

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "scenarios" / "messaging-1m.yaml"  # every kind enabled, every instance type set
MONTH_H = 730.0


@pytest.fixture(scope="module")
def sc() -> Scenario:
    return load_scenario(REFERENCE)


# -- every kind provides every part ---------------------------------------------------------------
def test_the_registry_holds_the_six_kinds_in_fleet_order() -> None:
    assert [k.name for k in kinds()] == ["gateway", "message_service", "group_service", "cassandra",
                                         "redis", "kafka"]
    assert len({k.diagram_rank for k in kinds()}) == len(kinds())  # no two nodes share a place


@pytest.mark.parametrize("name", [k.name for k in kinds()])
def test_every_kind_provides_every_part(sc: Scenario, name: str) -> None:
    k = components.kind(name)
    assert k is not None and isinstance(k, ComponentKind)
    assert k.enabled(sc)
    # minimum count: a positive integer, never above the reference design's fleet
    assert 1 <= k.minimum(sc) <= k.configured(sc)
    assert k.noun and k.label
    # its sizing dimensions: the plan sizes this component on exactly the dimensions the kind names
    plan = size_plan(sc).component(name)
    assert plan is not None
    assert tuple(d.name for d in plan.dimensions) == k.sized_on
    assert plan.minimum == k.minimum(sc)
    assert plan.nodes_per_instance == k.nodes_per_instance(sc)
    # its cost rows: a compute row of its own, and only rows of known cost kinds naming it
    catalog = catalog_for(sc)
    flows = offered_loads(sc, hit_ratio=0.0)
    rows = (k.compute_rows(sc, catalog, k.configured(sc)) + k.request_rows(sc, catalog, MONTH_H * 3600)
            + k.storage_rows(sc, catalog, flows) + k.network_rows(sc, catalog, flows, MONTH_H * 3600))
    assert [r.kind for r in rows][:1] == ["compute"]
    assert all(isinstance(r, CostRow) and r.component == name and r.kind in KINDS for r in rows)
    assert monthly_cost(sc, with_needed=False).by_component[name] == pytest.approx(
        sum(r.monthly_usd for r in rows), rel=1e-12)
    # its diagram node: its own id, its label first, a shape the diagram can draw
    node = k.diagram_node(sc)
    assert isinstance(node, Node) and node.id == name and node.lines[0] == k.label
    assert node.shape in SHAPES
    assert node in topology(sc)[0]
    # its summary fields: sections summary.json has
    assert all(s in Summary.model_fields for s in k.summary_sections)


def _kind(name: str) -> ComponentKind:
    k = components.kind(name)
    assert k is not None, name
    return k


def test_kind_specific_figures(sc: Scenario) -> None:
    """The parts that differ between kinds hold the kinds' rules, not a default."""
    assert _kind("cassandra").minimum(sc) == sc.cassandra.replication_factor
    assert _kind("kafka").minimum(sc) == sc.kafka.replication_factor
    assert _kind("gateway").minimum(sc) == 1
    assert _kind("redis").nodes_per_instance(sc) == 1 + sc.redis.replicas
    assert _kind("redis").zone_dimensions == () and _kind("redis").soft_dimensions == ("memory",)
    assert not _kind("redis").cpu_threads and _kind("cassandra").cpu_threads
    k = sc.kafka
    assert _kind("kafka").sample_fleets(sc) == {"kafka": (k.brokers, k.replication_factor),
                                                "kafka_partitions": (k.partitions, 1)}
    assert _kind("redis").summary_sections == ("cache",) and _kind("kafka").summary_sections == ("kafka",)


# -- a kind added to the registry alone ------------------------------------------------------------
FAKE_TYPE = "m6i.xlarge"
FAKE_COUNT, FAKE_MIN = 4, 2
FAKE_DISK_GB, FAKE_DISK_PER_GB = 900.0, 100.0  # 9 instances on disk: short of the 4 configured


@dataclass(frozen=True)
class SearchKind(ComponentKind):
    """A kind no other module names: it has no scenario section, so it answers from constants."""

    def enabled(self, sc: Scenario) -> bool:
        return True

    def configured(self, sc: Scenario) -> int:
        return FAKE_COUNT

    def instance_type(self, sc: Scenario) -> str | None:
        return FAKE_TYPE

    def minimum(self, sc: Scenario) -> int:
        return FAKE_MIN

    def extra_dimensions(self, sc: Scenario, flows: Flows, hw: InstanceType | None) -> list[Dimension]:
        needed = ceil_instances(FAKE_DISK_GB / FAKE_DISK_PER_GB)
        return [Dimension("disk", "GB", FAKE_DISK_GB, FAKE_DISK_PER_GB, needed, "index", "one volume",
                          needed_all_zones=needed)]

    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        return ("inverted index",)


SEARCH = SearchKind(name="search", label="Search", noun="indexers", diagram_rank=7, diagram_layer=3,
                    diagram_column=3, sized_on=("cpu", "disk", "network"))


@pytest.fixture
def with_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(components, "REGISTRY", [*components.REGISTRY, SEARCH])


def test_a_new_kind_is_sized_priced_drawn_and_sampled(sc: Scenario, with_search: None) -> None:
    flows = offered_loads(sc)
    # the flows are the engines' business: give the new kind a load, as its station code would
    load = Load("search", instances=FAKE_COUNT, servers=8, ops_per_sec=2_000.0, service_ms=5.0)
    flows = dataclasses.replace(flows, loads={**flows.loads, "search": load})
    plan = size_plan(sc, flows)
    search = plan.component("search")
    assert search is not None
    # cpu: 2,000/s x 5 ms = 10 busy cores over 8 workers x 70% = 5.6 -> 2, with 1 of 3 zones lost 3;
    # disk: 900 / 100 GB = 9 (no zone rule on disk), above the minimum 2: disk binds at 9
    assert [d.name for d in search.dimensions] == ["cpu", "disk", "network"]
    cpu = search.dimension("cpu")
    assert cpu is not None and (cpu.needed_all_zones, cpu.needed) == (2, 3)
    assert (search.needed, search.binding, search.minimum) == (9, "disk", FAKE_MIN)
    assert "search" in plan.unholdable()
    finding = next(f for f in plan.findings if (f.component, f.dimension) == ("search", "disk"))
    assert finding.severity == CRITICAL and finding.message.startswith("needs 9 indexers, 4 configured")
    _head, rows = plan.plan_table()
    assert next(r for r in rows if r[0] == "search")[:5] == ["search", FAKE_TYPE, "disk", "9", "4"]
    # priced: compute at both fleets, from the catalog's hourly price
    usd_per_hour = catalog_for(sc).instance(FAKE_TYPE, "t").usd_per_hour
    assert plan.cost_configured.by_component["search"] == pytest.approx(FAKE_COUNT * usd_per_hour * MONTH_H)
    assert plan.cost_needed.by_component["search"] == pytest.approx(9 * usd_per_hour * MONTH_H)
    assert search.monthly_usd_needed == pytest.approx(9 * usd_per_hour * MONTH_H)
    # drawn, sampled, and a fleet of the scenario
    node = f'    search["Search<br/>{FAKE_COUNT} x {FAKE_TYPE}<br/>inverted index"]'
    assert node in mermaid(sc).splitlines()
    assert fleet_sizes(sc)["search"] == (FAKE_COUNT, FAKE_MIN)
    assert ("search", True, FAKE_COUNT, FAKE_TYPE) in sc.fleets()


def test_a_new_kind_s_floor_holds_in_the_sample_cell(sc: Scenario, with_search: None) -> None:
    cell = make_cell(sc.model_copy(update={"sample": 0.01}))
    # ceil(0.01 x 4) = 1, below the kind's minimum 2
    assert (cell.fleets["search"].configured, cell.fleets["search"].simulated) == (FAKE_COUNT, FAKE_MIN)


def test_without_the_new_kind_nothing_names_it(sc: Scenario) -> None:
    assert "search" not in fleet_sizes(sc)
    assert "search" not in monthly_cost(sc, with_needed=False).by_component
    assert "search" not in mermaid(sc)
