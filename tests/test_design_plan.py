"""`capsim size`, the cost and `capsim diagram` for a design (components and flows): figures a hand
computation predicts, rows and nodes named after the design's own components, and the messaging
outputs unchanged by the design path."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.components.dimensions import instances_surviving_zone_loss
from sim.cost import monthly_cost
from sim.diagram import mermaid, svg, topology
from sim.jsonsafe import json_safe
from sim.loading import load_scenario
from sim.pricing import catalog_for
from sim.scenario import Scenario
from sim.sizing import CRITICAL, size_plan

ROOT = Path(__file__).parent.parent

# A URL shortener. Deterministic service times so that means are exact; the cache's hit ratio fixed
# at 0.9 so that the miss path's rate is 10% of the lookups by hand.
DESIGN = """
name: plan-shortener
duration_s: 5
warmup_s: 1
keys: {link: {count: 1_000_000, zipf_s: 1.0, value_bytes: {dist: deterministic, value: 500}}}
components:
  edge: {kind: gateway, instances: 4, workers: 8, instance_type: m6i.xlarge,
         service_ms: {dist: deterministic, value: 0.3}}
  api: {kind: service, instances: 2, workers: 4, instance_type: m6i.xlarge,
        ops: {resolve: {dist: deterministic, value: 0.5}, shorten: {dist: deterministic, value: 1.0}}}
  cache: {kind: redis, shards: 2, memory_gb_per_shard: 1, hit_ratio: 0.9, instance_type: cache.r6g.large}
  links: {kind: cassandra, nodes: 6, replication_factor: 3, instance_type: i4i.2xlarge}
flows:
  resolve:
    rate_per_sec: 20000
    key: link
    steps:
      - call: edge
      - call: api.resolve
      - cache: {on: cache, miss: [{call: links.read, consistency: ONE}], fill: true}
  shorten:
    rate_per_sec: 200
    key: link.new
    steps:
      - call: edge
      - call: api.shorten
      - parallel: {join: all, steps: [{call: links.write, consistency: QUORUM}, {call: cache.set}]}
"""


def design(tmp_path: Path, text: str = DESIGN) -> Scenario:
    path = tmp_path / "design.yaml"
    path.write_text(text)
    return load_scenario(path)


# -- size ------------------------------------------------------------------------------------------
def test_a_design_plan_finds_the_cpu_shortfall_a_hand_computation_predicts(tmp_path: Path) -> None:
    plan = size_plan(design(tmp_path))
    assert [c.component for c in plan.components] == ["edge", "api", "cache", "links"]
    api = plan.component("api")
    assert api is not None
    cpu = api.dimension("cpu")
    assert cpu is not None
    # busy cores = 20,000/s x 0.5 ms + 200/s x 1.0 ms = 10.2; one instance plans for 4 x 0.7 = 2.8
    assert cpu.demand == pytest.approx(10.2, rel=1e-12)
    assert cpu.per_instance == pytest.approx(2.8, rel=1e-12)
    assert cpu.needed_all_zones == math.ceil(10.2 / 2.8) == 4
    # with 1 of 3 zones lost: the fewest n with n - ceil(n/3) >= 4 is 6
    assert cpu.needed == instances_surviving_zone_loss(4, 3) == 6
    assert api.needed == 6 and api.binding == "cpu" and api.configured == 2
    assert "api" in plan.unholdable()
    assert [(f.component, f.dimension) for f in plan.findings if f.severity == CRITICAL] == [("api", "cpu")]
    # the gateway: 20,200/s x 0.3 ms = 6.06 busy cores over 8 x 0.7 = 5.6 each -> 2, 3 with a zone lost
    edge = plan.component("edge")
    assert edge is not None and edge.dimension("cpu").demand == pytest.approx(6.06)  # type: ignore[union-attr]
    assert edge.needed == 3 and "edge" not in plan.unholdable()
    # cassandra ops count replicas: misses 20,000 x 0.1 x ONE (1) + writes 200 x RF 3 = 2,600/s
    links = plan.component("links")
    assert links is not None and links.ops_per_sec == pytest.approx(2600)


def test_a_design_plan_sizes_memory_and_disk_from_its_key_spaces(tmp_path: Path) -> None:
    plan = size_plan(design(tmp_path))
    memory = plan.component("cache").dimension("memory")  # type: ignore[union-attr]
    assert memory is not None
    # 1,000,000 links x (500 + 64 B entry overhead), in GiB
    assert memory.demand == pytest.approx(1e6 * 564 / 2**30, rel=1e-12)
    disk = plan.component("links").dimension("disk")  # type: ignore[union-attr]
    assert disk is not None
    # the space's keys x value x RF 3 x compaction headroom 2, in GB
    assert disk.demand == pytest.approx(1e6 * 500 * 3 * 2 / 1e9, rel=1e-12)
    # growth from fresh keys is stated, not sized: a design declares no retention
    assert any("links disk" in n and "not sized" in n and "retention" in n for n in plan.notes)
    written = json.loads(json.dumps(plan.to_dict()))
    assert written["design"] is True and written["hit_ratios"] == {"cache": 0.9}
    assert "mean_message_bytes" not in written


def test_a_cache_short_of_memory_is_a_warning_and_a_store_short_of_it_is_critical(tmp_path: Path) -> None:
    small = DESIGN.replace("memory_gb_per_shard: 1,", "memory_gb_per_shard: 0.1,")
    plan = size_plan(design(tmp_path, small))
    cache = [f for f in plan.findings if f.component == "cache" and f.dimension == "memory"]
    # resolve looks keys up with a miss branch: a cache (shorten's write-through cache.set keeps it
    # one); short memory lowers the hit ratio, it does not lose data
    assert [f.severity for f in cache] == ["warn"] and "cache" not in plan.unholdable()
    lookup = "- cache: {on: cache, miss: [{call: links.read, consistency: ONE}], fill: true}"
    assert lookup in small
    store = small.replace(lookup, "- call: cache.get")  # read from Redis alone: the keys' home
    plan = size_plan(design(tmp_path, store))
    cache = [f for f in plan.findings if f.component == "cache" and f.dimension == "memory"]
    assert [f.severity for f in cache] == [CRITICAL] and "cache" in plan.unholdable()


def test_kafka_disk_in_a_design_is_its_produce_bytes_over_retention(tmp_path: Path) -> None:
    stream = "  stream: {kind: kafka, brokers: 3, retention_hours: 24, disk_gb_per_broker: 100}\n"
    text = DESIGN.replace("  links: {kind", stream + "  links: {kind")
    text = text.replace("{call: cache.set}]}", "{call: cache.set}, {produce: {on: stream}}]}")
    plan = size_plan(design(tmp_path, text))
    disk = plan.component("stream").dimension("disk")  # type: ignore[union-attr]
    assert disk is not None
    # 200 records/s x 500 B x RF 3 x 24 h
    assert disk.demand == pytest.approx(200 * 500 * 3 * 24 * 3600 / 1e9, rel=1e-12)
    assert disk.needed == math.ceil(disk.demand / 100)


# -- cost ------------------------------------------------------------------------------------------
def test_cost_rows_are_named_after_the_design_components(tmp_path: Path) -> None:
    sc = design(tmp_path)
    cost = monthly_cost(sc, with_needed=False)
    assert list(cost.by_component) == ["edge", "api", "cache", "links"]
    catalog = catalog_for(sc)
    compute = {r.component: r.monthly_usd for r in cost.rows if r.kind == "compute"}
    hours = catalog.hours_per_month
    assert compute["api"] == pytest.approx(2 * catalog.instances["m6i.xlarge"].usd_per_hour * hours)
    assert compute["edge"] == pytest.approx(4 * catalog.instances["m6i.xlarge"].usd_per_hour * hours)
    # redis: 2 shards x (1 + 1 replica)
    assert compute["cache"] == pytest.approx(4 * catalog.instances["cache.r6g.large"].usd_per_hour * hours)
    # cross-zone replica writes: 200/s x 500 B x month x RF 3 x 2/3, both directions
    network = next(r for r in cost.rows if r.component == "links" and r.kind == "network")
    gb = 200 * 500 * hours * 3600 * 3 * 2 / 3 / 1e9
    per_gb = catalog.network.cross_zone_usd_per_gb_each_direction.value
    assert network.monthly_usd == pytest.approx(gb * 2 * per_gb)
    # the needed fleet is priced too: api needs 6 instances, so its compute triples
    needed = monthly_cost(sc).needed
    assert needed is not None
    assert needed.by_component["api"] == pytest.approx(3 * compute["api"])


def test_a_managed_gateway_in_a_design_prices_the_requests_its_flows_send(tmp_path: Path) -> None:
    text = DESIGN.replace("instances: 4, workers: 8, instance_type: m6i.xlarge,",
                          "instances: 4, workers: 8, pricing: api_gateway_http,")
    sc = design(tmp_path, text)
    cost = monthly_cost(sc, with_needed=False)
    catalog = catalog_for(sc)
    month_s = catalog.hours_per_month * 3600
    millions = (20_000 + 200) * month_s / 1e6
    tiers = catalog.api_gateway.http.tiers
    expected, lower = 0.0, 0.0  # the tiers by hand: each tier's price on the units inside it
    for tier in tiers:
        upper = math.inf if tier.up_to is None else tier.up_to
        units = min(millions, upper) - lower
        if units <= 0:
            break
        expected += units * tier.usd
        lower = upper
    row = next(r for r in cost.rows if r.component == "edge" and r.kind == "requests")
    assert row.monthly_usd == pytest.approx(expected, rel=1e-12)
    assert next(r for r in cost.rows if r.component == "edge" and r.kind == "compute").monthly_usd == 0


def test_a_design_plan_prices_per_million_requests(tmp_path: Path) -> None:
    plan = size_plan(design(tmp_path))
    _, rows = plan.cost_table()
    row = next(r for r in rows if r[0] == "per million requests")
    month_s = plan.hours_per_month * 3600
    assert plan.requests_per_sec == 20_200
    assert row[1] == f"${plan.monthly_usd_configured / (20_200 * month_s / 1e6):,.2f}"


# -- diagram ---------------------------------------------------------------------------------------
def test_the_diagram_has_every_component_and_flow_edge(tmp_path: Path) -> None:
    text = mermaid(design(tmp_path))
    lines = text.splitlines()
    kinds = {"edge": "API gateway", "api": "Service", "cache": "Redis", "links": "Cassandra"}
    for name, kind in kinds.items():
        assert any(line.startswith(f"    {name}") and f"{name}<br/>{kind}, " in line for line in lines), name
    assert '    clients -->|"resolve 20,000/s, shorten 200/s"| edge' in lines
    assert '    edge -->|"resolve 20,000/s, shorten 200/s"| api' in lines
    assert '    api -->|"resolve: get 20,000/s, shorten: set 200/s"| cache' in lines
    # a miss is 10% of the lookups; the fill is not waited for (dotted)
    assert '    api -->|"resolve: read on miss 2,000/s, shorten: write 200/s"| links' in lines
    assert '    api -.->|"resolve: fill 2,000/s"| cache' in lines


def test_the_diagram_draws_produce_and_consume(tmp_path: Path) -> None:
    doc = yaml.safe_load(DESIGN)
    doc["components"]["stream"] = {"kind": "kafka", "brokers": 3}
    push = {"dist": "deterministic", "value": 0.1}
    doc["components"]["notify"] = {"kind": "service", "instances": 2, "ops": {"push": push}}
    doc["flows"]["shorten"]["steps"].append({"produce": {"on": "stream", "then": "announce"}})
    doc["flows"]["announce"] = {"key": "link", "consumer": {"on": "notify", "op": "push"},
                                "steps": [{"call": "cache.delete"}]}
    sc = design(tmp_path, yaml.safe_dump(doc))
    lines = mermaid(sc).splitlines()
    assert '    api -->|"shorten: produce 200/s"| stream' in lines
    assert '    stream -.->|"announce: consume 200/s"| notify' in lines
    assert '    notify -->|"announce: delete 200/s"| cache' in lines
    nodes, edges = topology(sc)
    drawing = svg(nodes, edges, sc.name)
    for name in ("edge", "api", "cache", "links", "stream", "notify"):
        assert f'data-id="{name}"' in drawing


# -- messaging unchanged ---------------------------------------------------------------------------
# sha256 (first 16 hex digits) of size.json, size.md, the Mermaid, the SVG and the cost summary of
# every shipped messaging scenario (floats in the JSON to 12 significant digits), computed by commit
# 6ad3302's own code, before the design path was added.
BEFORE = {
    "scenarios/cache-flush.yaml": "11e321fabdd98d69",
    "scenarios/interview-small.yaml": "5c65623c9a54ffc3",
    "scenarios/live-event.yaml": "84ffda447368c672",
    "scenarios/messaging-1m.yaml": "7fe7427ea571dbc4",
    "scenarios/node-failure.yaml": "5ece32dc81c96ec1",
    "scenarios/retry-storm-fixed.yaml": "5fafeba5e27e0d33",
    "scenarios/retry-storm.yaml": "713a5b556fd26820",
    "scenarios/tradeoffs/base.yaml": "ed7f263965222b07",
    "scenarios/tradeoffs/cache-off.yaml": "64e86d8d18352b38",
    "scenarios/tradeoffs/cache-on.yaml": "db6cad9076e62947",
    "scenarios/tradeoffs/cassandra-128.yaml": "122c95289ef97842",
    "scenarios/tradeoffs/cassandra-64.yaml": "c861278516f256d0",
    "scenarios/tradeoffs/consistency-one.yaml": "26d0dd07a4d620fa",
    "scenarios/tradeoffs/consistency-quorum.yaml": "a1d159399471a514",
    "scenarios/tradeoffs/fanout-read.yaml": "26a01940ba9afbea",
    "scenarios/tradeoffs/fanout-write.yaml": "eb28b01818ce2cbe",
    "scenarios/tradeoffs/partition-conversation.yaml": "d56aae453349b52f",
    "scenarios/tradeoffs/partition-user.yaml": "f744d4bfbf11a252",
    "scenarios/validation/forkjoin.yaml": "e5627e1765235efa",
    "scenarios/validation/md1.yaml": "7c2fedc5d600082a",
    "scenarios/validation/mm1.yaml": "8b50cd5c87e597e3",
    "scenarios/validation/mmc.yaml": "d8b24cec1d21729e",
    "scenarios/validation/quorum.yaml": "22dcbaeb4ff892be",
    # differs from 6ad3302 in one place, checked by hand: its workload mix sums weight x recipients
    # with np.sum since np.dot went (it rounded per BLAS thread count), which gives mean recipients
    # exactly 1.0 where np.dot gave 0.9999999999999999: "1,000 inbox entries/s" in four cost bases
    # (was "1000") and a cassandra P(wait) of 0.313 (was 0.312) in size.md
    "scenarios/validation/sample-cell.yaml": "ac96cef9295a2bdd",
    "scenarios/validation/tandem.yaml": "6bb23d8d096ff5a9",
    "scenarios/zone-outage.yaml": "73487e77f46497d5",
}


def _rounded(x: Any) -> Any:
    """Floats to 12 significant digits: the last bits of a sum are not what the fingerprint guards."""
    if isinstance(x, float):
        return float(f"{x:.12g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _fingerprint(path: Path) -> str:
    sc = load_scenario(path)
    plan = size_plan(sc)
    nodes, edges = topology(sc)
    cost = _rounded(json_safe(monthly_cost(sc).as_summary()))
    text = "\n".join([json.dumps(_rounded(json_safe(plan.to_dict())), indent=2), plan.to_markdown(),
                      mermaid(sc), svg(nodes, edges, sc.name), json.dumps(cost, indent=2, sort_keys=True)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("path", sorted(BEFORE))
def test_messaging_plans_costs_and_diagrams_are_unchanged(path: str) -> None:
    assert _fingerprint(ROOT / path) == BEFORE[path]
