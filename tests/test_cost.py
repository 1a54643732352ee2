"""The cost model (sim/cost.py) against hand-computed figures.

Prices used below (aws-us-east-1 catalog, as listed in shared/CALIBRATION.md): m6i.xlarge $0.192/h,
m6i.2xlarge $0.384/h, i4i.2xlarge $0.686/h, cache.r6g.large $0.206/h, kafka.m5.large $0.21/h,
EBS gp3 $0.08/GB-month, MSK storage $0.10/GB-month, cross-AZ $0.01/GB each direction, cross-region
$0.02/GB, API Gateway REST $3.50/$2.80/$2.38/$1.51 per million (first 333M/next 667M/next 19B/
beyond), HTTP $1.00 (first 300M)/$0.90 per million. A month is 730 h = 2,628,000 s; GB = 1e9 B.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import ScenarioError, load_scenario, simulate
from sim.analytic import Flows
from sim.cost import (
    cassandra_cross_zone_copies,
    graduated_usd,
    kafka_follower_cross_zone_copies,
    monthly_cost,
)
from sim.pricing import CATALOG_DIR, load_catalog
from sim.scenario import Scenario

ROOT = Path(__file__).parent.parent
MONTH_S = 730 * 3600  # 2,628,000 s

# 1,000 sends/s of 1,000 B, 3 recipients per message (inbox entries of 100 B), 10 days' retention,
# 3 zones, 2 regions.
FLOWS = Flows(hit_ratio=0.0, mean_recipients=3.0, mean_message_bytes=1000.0, loads={})


def small(**changes: Any) -> Scenario:
    """A small priced design; `changes` maps dotted paths to values, e.g. cassandra__disk='local'."""
    data: dict[str, Any] = {
        "network": {"zones": 3, "regions": 2},
        "workload": {"users": 1000, "conversations": 1000, "group_share": 0.0, "sends_per_sec": 1000,
                     "reads_per_sec": 4000, "message_bytes": 1000, "retention_days": 10},
        "gateway": {"instances": 2, "instance_type": "m6i.xlarge"},
        "message_service": {"instances": 3, "instance_type": "m6i.2xlarge"},
        "group_service": {"instances": 1, "instance_type": "m6i.xlarge", "inbox_entry_bytes": 100},
        "cassandra": {"nodes": 6, "instance_type": "i4i.2xlarge", "replication_factor": 3,
                      "compaction_headroom": 2.0, "disk": "ebs"},
        "redis": {"shards": 2, "instance_type": "cache.r6g.large"},
        "kafka": {"brokers": 3, "instance_type": "kafka.m5.large", "replication_factor": 3,
                  "retention_hours": 24},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return Scenario.model_validate(data)


def row(breakdown: Any, component: str, kind: str) -> Any:
    [match] = [r for r in breakdown.rows if r.component == component and r.kind == kind]
    return match


# ---- per-request tiers ------------------------------------------------------------------------

REST = load_catalog("aws-us-east-1").api_gateway.rest.tiers
HTTP = load_catalog("aws-us-east-1").api_gateway.http.tiers


@pytest.mark.parametrize(("millions", "usd"), [
    (0, 0.0),
    (100, 100 * 3.50),
    (333, 333 * 3.50),                                          # exactly the first tier: 1,165.50
    (334, 333 * 3.50 + 1 * 2.80),
    (1000, 333 * 3.50 + 667 * 2.80),                            # 1B: 3,033.10
    (20_000, 333 * 3.50 + 667 * 2.80 + 19_000 * 2.38),          # 20B: 48,253.10
    (25_000, 333 * 3.50 + 667 * 2.80 + 19_000 * 2.38 + 5_000 * 1.51),  # 25B: 55,803.10
])
def test_rest_api_tiers_are_graduated(millions: float, usd: float) -> None:
    total, _parts = graduated_usd(millions, REST)
    assert total == pytest.approx(usd)


def test_tier_parts_name_each_tier_used() -> None:
    _total, parts = graduated_usd(1000, REST)
    assert parts == [(333, 3.50), (667, 2.80)]


def test_http_api_gateway_prices_a_month_of_requests() -> None:
    # 1,000M requests a month: (sends + reads) = 1e9 / 2,628,000 s per second
    per_sec = 1e9 / MONTH_S
    sc = small(gateway__pricing="api_gateway_http", workload__sends_per_sec=100,
               workload__reads_per_sec=per_sec - 100)
    cost = monthly_cost(sc, FLOWS)
    assert row(cost, "gateway", "requests").monthly_usd == pytest.approx(300 * 1.00 + 700 * 0.90)  # 930
    assert row(cost, "gateway", "compute").monthly_usd == 0.0  # managed: no instances


def test_rest_api_gateway_at_25_billion_requests() -> None:
    per_sec = 25e9 / MONTH_S
    sc = small(gateway__pricing="api_gateway_rest", workload__sends_per_sec=per_sec / 5,
               workload__reads_per_sec=per_sec * 4 / 5)
    cost = monthly_cost(sc, FLOWS)
    assert cost.by_component["gateway"] == pytest.approx(55_803.10)
    assert cost.by_kind["requests"] == pytest.approx(55_803.10)


# ---- compute ----------------------------------------------------------------------------------


def test_compute_is_instances_times_hourly_price_times_730_h() -> None:
    cost = monthly_cost(small(), FLOWS)
    expected = {
        "gateway": 2 * 0.192 * 730,          # 280.32
        "message_service": 3 * 0.384 * 730,  # 840.96
        "group_service": 1 * 0.192 * 730,    # 140.16
        "cassandra": 6 * 0.686 * 730,        # 3,004.68
        "redis": 2 * 2 * 0.206 * 730,        # 601.52: 2 shards x (1 + 1 replica)
        "kafka": 3 * 0.21 * 730,             # 459.90
    }
    for component, usd in expected.items():
        assert row(cost, component, "compute").monthly_usd == pytest.approx(usd), component
    assert cost.by_kind["compute"] == pytest.approx(5327.54)
    assert row(cost, "cassandra", "compute").basis == "6 x i4i.2xlarge x $0.686/h x 730 h"


@pytest.mark.parametrize("replicas", [0, 1, 2])
def test_redis_replicas_cost_like_shards(replicas: int) -> None:
    cost = monthly_cost(small(redis__replicas=replicas), FLOWS)
    redis = row(cost, "redis", "compute")
    assert redis.monthly_usd == pytest.approx(2 * (1 + replicas) * 0.206 * 730)
    assert cost.nodes["redis"] == 2 * (1 + replicas) and cost.instances["redis"] == 2
    if replicas:
        assert redis.basis.startswith(f"2 shards x (1 + {replicas} replicas) = {2 * (1 + replicas)} x ")


def test_a_fleet_override_prices_other_counts_with_the_same_rows() -> None:
    configured = monthly_cost(small(), FLOWS, with_needed=False)
    bigger = monthly_cost(small(), FLOWS, fleet={"cassandra": 10, "redis": 3}, with_needed=False)
    assert [(r.component, r.kind) for r in bigger.rows] == [(r.component, r.kind) for r in configured.rows]
    assert row(bigger, "cassandra", "compute").monthly_usd == pytest.approx(10 * 0.686 * 730)
    assert row(bigger, "redis", "compute").monthly_usd == pytest.approx(3 * 2 * 0.206 * 730)
    for kind in ("storage", "network", "requests"):  # follow the data and traffic, not the counts
        assert bigger.by_kind[kind] == pytest.approx(configured.by_kind[kind])


def test_price_override_changes_compute_cost() -> None:
    sc = small(pricing__usd_per_hour={"i4i.2xlarge": 1.0})
    cassandra = row(monthly_cost(sc, FLOWS), "cassandra", "compute")
    assert cassandra.monthly_usd == pytest.approx(6 * 1.0 * 730)  # 4,380
    assert "pricing.usd_per_hour" in cassandra.source


def test_fleet_without_instance_type_costs_nothing_and_says_so() -> None:
    cost = monthly_cost(small(redis__instance_type=None), FLOWS)
    redis = row(cost, "redis", "compute")
    assert redis.monthly_usd == 0.0
    assert "no instance_type" in redis.basis


def test_disabled_fleet_is_not_priced() -> None:
    cost = monthly_cost(small(redis__enabled=False), FLOWS)
    assert "redis" not in cost.by_component


def test_unknown_instance_type_names_the_field_and_the_allowed_types() -> None:
    with pytest.raises(ScenarioError) as err:
        monthly_cost(small(cassandra__instance_type="i9.huge"), FLOWS)
    assert err.value.where == "cassandra.instance_type"
    assert "'i9.huge'" in err.value.message
    assert "i4i.2xlarge" in err.value.message and "m6i.xlarge" in err.value.message  # allowed list
    assert "\n" not in str(err.value)


# ---- storage ----------------------------------------------------------------------------------


def test_cassandra_storage_on_ebs_is_retention_times_rf_times_headroom() -> None:
    # written per second: 1,000 msg x 1,000 B + 1,000 x 3 recipients x 100 B = 1,300,000 B
    # over 10 days (864,000 s): 1.1232e12 B; x RF 3 x headroom 2 = 6.7392e12 B = 6,739.2 GB
    cost = monthly_cost(small(), FLOWS)
    assert row(cost, "cassandra", "storage").monthly_usd == pytest.approx(6739.2 * 0.08)  # 539.136
    assert "6,739 GB" in row(cost, "cassandra", "storage").basis


def test_cassandra_storage_on_local_disk_is_in_the_instance_price() -> None:
    cost = monthly_cost(small(cassandra__disk="local"), FLOWS)
    local = row(cost, "cassandra", "storage")
    assert local.monthly_usd == 0.0
    assert "local" in local.basis
    assert cost.by_component["cassandra"] == pytest.approx(6 * 0.686 * 730 + 136.656)  # compute + network


def test_storage_grows_with_retention_and_fan_out_on_read_stores_no_inbox() -> None:
    year = monthly_cost(small(workload__retention_days=365), FLOWS)
    # 1,300,000 B/s x 365 x 86,400 s x 3 x 2 = 245,980.8 GB
    assert row(year, "cassandra", "storage").monthly_usd == pytest.approx(245_980.8 * 0.08)
    by_read = small(group_service__fan_out="read", message_service__partition_key="conversation")
    # 1,000,000 B/s x 864,000 s x 3 x 2 = 5,184 GB
    assert row(monthly_cost(by_read, FLOWS), "cassandra", "storage").monthly_usd == pytest.approx(5184 * 0.08)


def test_kafka_storage_is_a_retention_of_produced_bytes_times_rf() -> None:
    # 1,000 msg/s x 1,000 B x 24 h x 3,600 s x RF 3 = 2.592e11 B = 259.2 GB at $0.10
    assert row(monthly_cost(small(), FLOWS), "kafka", "storage").monthly_usd == pytest.approx(25.92)


# ---- network ----------------------------------------------------------------------------------


def test_cross_zone_copies_for_rf3() -> None:
    assert cassandra_cross_zone_copies(3, 3) == pytest.approx(2.0)
    assert cassandra_cross_zone_copies(3, 1) == 0.0
    assert kafka_follower_cross_zone_copies(3, 3) == pytest.approx(2.0)  # one follower per other zone
    assert kafka_follower_cross_zone_copies(3, 2) == pytest.approx(4 / 3)  # zones hold 2 + 1
    assert kafka_follower_cross_zone_copies(3, 1) == 0.0
    assert kafka_follower_cross_zone_copies(6, 3) == pytest.approx(4.0)  # 2 per zone: 6 - 12/6


def test_cassandra_cross_zone_replication_rf3_over_3_zones() -> None:
    # 1,300,000 B/s x 2,628,000 s = 3,416.4 GB/month; 2 of 3 replicas elsewhere: 6,832.8 GB,
    # billed both ways at $0.01: $136.656
    assert row(monthly_cost(small(), FLOWS), "cassandra", "network").monthly_usd == pytest.approx(136.656)


def test_kafka_cross_zone_produce_replicate_and_consume() -> None:
    # self-managed brokers: 1,000,000 B/s x 2,628,000 s = 2,628 GB/month,
    # x (produce 2/3 + followers 2 + consumer 2/3) = 8,760 GB, x 2 directions x $0.01 = $175.20
    ec2 = small(kafka__instance_type="m6i.xlarge")
    assert row(monthly_cost(ec2, FLOWS), "kafka", "network").monthly_usd == pytest.approx(175.2)


def test_msk_replication_between_brokers_is_not_billed() -> None:
    # kafka.m5.large is MSK: only produce 2/3 + consumer 2/3 cross zones: 2,628 x 4/3 = 3,504 GB
    # x 2 directions x $0.01 = $70.08
    assert row(monthly_cost(small(), FLOWS), "kafka", "network").monthly_usd == pytest.approx(70.08)


def test_one_zone_one_region_has_no_network_cost() -> None:
    cost = monthly_cost(small(network__zones=1, network__regions=1), FLOWS)
    assert cost.by_kind["network"] == 0.0
    assert not [r for r in cost.rows if r.kind == "network"]


def test_cross_region_copies_every_message_to_each_other_region() -> None:
    # 2,628 GB of messages a month x (regions - 1) x $0.02
    assert monthly_cost(small(), FLOWS).by_component["cross_region"] == pytest.approx(2628 * 0.02)
    three = monthly_cost(small(network__regions=3), FLOWS)
    assert three.by_component["cross_region"] == pytest.approx(2628 * 2 * 0.02)  # 105.12


# ---- totals -----------------------------------------------------------------------------------


def test_totals_and_usd_per_million_messages() -> None:
    cost = monthly_cost(small(), FLOWS)
    compute = 280.32 + 840.96 + 140.16 + 3004.68 + 601.52 + 459.90  # 5,327.54
    storage = 539.136 + 25.92
    network = 136.656 + 70.08 + 52.56
    total = compute + storage + network  # 6,151.892
    assert cost.total_monthly_usd == pytest.approx(total)
    assert cost.by_kind == pytest.approx(
        {"compute": compute, "storage": storage, "network": network, "requests": 0.0})
    # 1,000 sends/s x 2,628,000 s = 2,628 million messages a month
    assert cost.usd_per_million_messages == pytest.approx(total / 2628)  # 2.3409
    summary = cost.as_summary()
    assert summary["total_monthly_usd"] == pytest.approx(total)
    assert summary["monthly_usd"]["cassandra"] == pytest.approx(3004.68 + 539.136 + 136.656)
    assert summary["by_kind_usd"]["storage"] == pytest.approx(storage)
    assert summary["catalog"] == "aws-us-east-1"
    assert len(summary["rows"]) == len(cost.rows)
    assert {"component", "kind", "monthly_usd", "basis", "source"} <= summary["rows"][0].keys()


def test_default_flows_use_the_nominal_mix() -> None:
    # group_share 0: one recipient per message; message_bytes fixed at 1,000 B
    # (1,000,000 + 1,000 x 100) B/s x 864,000 s x 3 x 2 = 5,702.4 GB
    cost = monthly_cost(small())
    assert row(cost, "cassandra", "storage").monthly_usd == pytest.approx(5702.4 * 0.08)


def test_no_sends_has_no_price_per_message() -> None:
    cost = monthly_cost(small(workload__sends_per_sec=0), FLOWS)
    assert math.isnan(cost.usd_per_million_messages)


# ---- bad catalogs and the reference design ----------------------------------------------------


def test_every_price_cites_its_public_page_and_date() -> None:
    catalog = load_catalog("aws-us-east-1")
    dated = re.compile(r"^20\d\d-\d\d(-\d\d)?$")
    prices = [*catalog.instances.values(), catalog.storage.ebs_gp3_usd_per_gb_month,
              catalog.storage.msk_usd_per_gb_month, catalog.storage.s3_standard_usd_per_gb_month,
              catalog.network.cross_zone_usd_per_gb_each_direction, catalog.network.cross_region_usd_per_gb,
              catalog.api_gateway.rest, catalog.api_gateway.http]
    for price in prices:
        assert price.source_url.startswith("https://aws.amazon.com/"), price
        assert dated.match(price.date), price
        assert "CALIBRATION" not in price.source, price  # a public page, not the internal notes
    for name, it in catalog.instances.items():
        assert it.hardware_url.startswith("https://docs.aws.amazon.com/"), name
        assert 0 < it.network_gbps_sustained <= it.network_gbps, name
    raw = (CATALOG_DIR / "aws-us-east-1.yaml").read_text()
    assert raw.count("source_url:") == len(prices)


def test_dense_storage_types_are_in_the_catalog() -> None:
    catalog = load_catalog("aws-us-east-1").instances
    i3en = [f"i3en.{s}" for s in ("large", "xlarge", "2xlarge", "3xlarge", "6xlarge", "12xlarge", "24xlarge")]
    i4i = [f"i4i.{s}" for s in ("4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge")]
    for name in i3en + i4i:
        assert catalog[name].local_disk_gb > 0 and catalog[name].usd_per_hour > 0, name
    assert catalog["i3en.24xlarge"].local_disk_gb == 60_000
    assert catalog["i4i.32xlarge"].local_disk_gb == 30_000
    # disk per dollar: the dense types hold more NVMe per $ than the i4i.2xlarge of the reference design
    per_dollar = {n: catalog[n].local_disk_gb / catalog[n].usd_per_hour
                  for n in ("i4i.2xlarge", "i3en.6xlarge")}
    assert per_dollar["i3en.6xlarge"] > 2 * per_dollar["i4i.2xlarge"]


def test_a_price_without_its_source_page_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((CATALOG_DIR / "aws-us-east-1.yaml").read_text())
    del data["instances"]["i3en.large"]["source_url"]
    bad = tmp_path / "unsourced.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        monthly_cost(small(pricing__catalog=str(bad)), FLOWS)
    assert "instances.i3en.large.source_url" in err.value.where


def test_bad_catalog_field_names_the_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load((CATALOG_DIR / "aws-us-east-1.yaml").read_text())
    data["instances"]["i4i.2xlarge"]["usd_per_hour"] = "cheap"
    bad = tmp_path / "bad-catalog.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        monthly_cost(small(pricing__catalog=str(bad)), FLOWS)
    assert str(bad) in err.value.where
    assert "instances.i4i.2xlarge.usd_per_hour" in err.value.where


def test_unparsable_catalog_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("catalog: broken\ninstances: {m6i.xlarge: [\n")
    with pytest.raises(ScenarioError) as err:
        monthly_cost(small(pricing__catalog=str(bad)), FLOWS)
    assert str(bad) in err.value.where
    assert "YAML" in err.value.message


def test_reference_design_is_fully_priced() -> None:
    sc = load_scenario(ROOT / "scenarios" / "messaging-1m.yaml")
    cost = monthly_cost(sc, Flows(hit_ratio=0.0, mean_recipients=2.44, mean_message_bytes=1024.0, loads={}))
    assert math.isfinite(cost.total_monthly_usd) and cost.total_monthly_usd > 0
    for component in ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka"):
        compute = row(cost, component, "compute")
        assert compute.monthly_usd > 0 and "not priced" not in compute.basis, component
    assert row(cost, "cassandra", "compute").monthly_usd == pytest.approx(1200 * 0.686 * 730)  # 600,936
    assert row(cost, "redis", "compute").monthly_usd == pytest.approx(400 * 2 * 0.206 * 730)  # 120,304
    # 1M sends/s: 2,628,000 million messages a month
    assert cost.usd_per_million_messages == pytest.approx(cost.total_monthly_usd / 2_628_000)


def test_summary_json_prices_the_run_at_its_realised_recipients() -> None:
    sc = load_scenario(ROOT / "scenarios" / "interview-small.yaml",
                       ["duration_s=1.5", "warmup_s=0.5", "sample=0.05"])
    summary = simulate(sc).summary
    cost = summary["cost"]
    assert {"monthly_usd", "by_kind_usd", "total_monthly_usd", "usd_per_million_messages", "catalog",
            "rows"} <= cost.keys()
    # configured fleets, not the 5% cell: 12 x i4i.2xlarge, 6 x m6i.xlarge gateways
    assert row_dict(cost, "cassandra", "compute")["monthly_usd"] == pytest.approx(12 * 0.686 * 730)
    assert row_dict(cost, "gateway", "compute")["monthly_usd"] == pytest.approx(6 * 0.192 * 730)
    # local disk: Cassandra's network row is its only non-compute cost; it carries the run's
    # recipients: (10,000 x 1,024 B + 10,000 x r x 120 B)/s x 2,628,000 s x 2 copies x 2 x $0.01 / 1e9
    r = summary["workload"]["mean_recipients"]
    expected = (10_000 * 1024 + 10_000 * r * 120) * MONTH_S * 2 * 2 * 0.01 / 1e9
    assert row_dict(cost, "cassandra", "network")["monthly_usd"] == pytest.approx(expected)
    assert sum(cost["monthly_usd"].values()) == pytest.approx(cost["total_monthly_usd"])
    # the needed fleet beside it, by the sizing code, priced by the same rows
    needed = cost["needed"]
    assert needed is not None and needed["instances"].keys() == cost["instances"].keys()
    assert [(r["component"], r["kind"]) for r in needed["rows"]] == [(r["component"], r["kind"])
                                                                     for r in cost["rows"]]
    for kind in ("storage", "network", "requests"):
        assert needed["by_kind_usd"][kind] == pytest.approx(cost["by_kind_usd"][kind])
    assert "zones lost" in cost["needed_note"]


def row_dict(cost: dict[str, Any], component: str, kind: str) -> dict[str, Any]:
    [match] = [r for r in cost["rows"] if r["component"] == component and r["kind"] == kind]
    return match


def test_report_cost_section_sets_configured_beside_needed() -> None:
    from sim.report.document import Table, _cost_section

    summary = {"cost": monthly_cost(small(), FLOWS, fleet={"cassandra": 9}, with_needed=False).as_summary()}
    summary["cost"]["needed"] = summary["cost"].copy()
    summary["cost"].update(monthly_cost(small(), FLOWS, with_needed=False).as_summary())
    summary["cost"]["needed_note"] = "what capsim size finds"
    tables = [b for b in _cost_section(summary, {}).blocks if isinstance(b, Table)]
    by_kind, by_component = tables[0], tables[1]
    assert by_kind.columns == ["kind", "configured USD per month", "needed USD per month"]
    [cassandra] = [r for r in by_component.rows if r[0] == "cassandra"]
    assert cassandra[1:3] == ["6", "9"]  # configured and needed nodes
    assert by_component.row_classes[by_component.rows.index(cassandra)] == "bad"  # short of its need
