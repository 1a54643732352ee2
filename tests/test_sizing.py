"""`capsim size`: the capacity plan, checked against figures computed by hand.

Small scenarios switch everything off but the component under test and use deterministic message
sizes (a bare number), so every expected value below is arithmetic written out in the test. Units:
disk GB = 1e9 B, memory GiB = 2^30 B, network Gbit/s = 1e9 bit/s.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import cli
from sim import Scenario, load_scenario
from sim.analytic import erlang_c, offered_loads
from sim.sizing import SizePlan, network_bytes_per_sec, size_plan

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "scenarios" / "messaging-1m.yaml"
GIB = 2**30

OFF: dict[str, Any] = {
    "name": "t",
    "network": {"hop_ms": 0},
    "workload": {"users": 1000, "conversations": 1000, "sends_per_sec": 1000, "reads_per_sec": 0,
                 "message_bytes": 1000, "group_share": 0},
    "gateway": {"enabled": False},
    "message_service": {"enabled": False},
    "group_service": {"enabled": False},
    "cassandra": {"enabled": False},
    "redis": {"enabled": False},
    "kafka": {"enabled": False},
}


def scenario(**sections: dict[str, Any]) -> Scenario:
    """OFF with `sections` merged in (a section given here is enabled unless it says otherwise)."""
    raw = copy.deepcopy(OFF)
    for name, values in sections.items():
        base = raw.get(name, {})
        if isinstance(base, dict) and name not in ("workload", "network", "capacity", "pricing"):
            base = {k: v for k, v in base.items() if k != "enabled"}
        raw[name] = {**base, **values}
    return Scenario.model_validate(raw)


# -- cpu ------------------------------------------------------------------------------------------
def test_cpu_busy_cores_over_workers_at_target() -> None:
    # 1,000 sends + 1,000 reads per s x 1 ms = 2 busy cores; one instance plans 2 workers x 0.5 = 1
    sc = scenario(workload={**OFF["workload"], "reads_per_sec": 1000},
                  gateway={"instances": 4, "workers": 2, "service_ms": 1},
                  capacity={"target_utilization": 0.5})
    plan = size_plan(sc)
    gw = plan.component("gateway")
    assert gw is not None
    cpu = gw.dimension("cpu")
    assert cpu is not None
    assert cpu.demand == pytest.approx(2.0)
    assert cpu.per_instance == pytest.approx(1.0)
    assert cpu.needed == 2
    assert (gw.binding, gw.needed, gw.configured) == ("cpu", 2, 4)
    assert gw.headroom == pytest.approx(1.0)  # 4 / 2 - 1
    assert gw.dimension("network") is None  # no instance_type: no network capacity known
    assert gw.monthly_usd_needed is None
    assert plan.findings == ()


def test_cpu_shortfall_warns_with_the_queueing_prediction() -> None:
    # 2 busy cores; 2 workers x 0.4 = 0.8 per instance -> ceil(2.5) = 3 needed, 2 configured
    sc = scenario(workload={**OFF["workload"], "reads_per_sec": 1000},
                  gateway={"instances": 2, "workers": 2, "service_ms": 1},
                  capacity={"target_utilization": 0.4})
    gw = size_plan(sc).component("gateway")
    assert gw is not None and gw.needed == 3
    assert gw.headroom == pytest.approx(2 / 3 - 1)
    plan = size_plan(sc)
    [finding] = plan.findings
    assert (finding.component, finding.dimension) == ("gateway", "cpu")
    assert "short by 1" in finding.message
    # per instance 1,000/s x 1 ms over 2 servers = 50% utilization, above the 40% target
    assert gw.estimate.utilization == pytest.approx(0.5)
    assert "50% utilization" in finding.message and "40% target" in finding.message
    assert plan.warnings == [f"WARN gateway cpu: {finding.message}"]


def test_headroom_sign() -> None:
    def headroom(instances: int) -> float:
        sc = scenario(gateway={"instances": instances, "workers": 1, "service_ms": 1},
                      capacity={"target_utilization": 0.5})  # 1 busy core, 0.5 per instance -> 2
        gw = size_plan(sc).component("gateway")
        assert gw is not None and gw.needed == 2
        return gw.headroom

    assert headroom(3) == pytest.approx(0.5)
    assert headroom(2) == 0.0
    assert headroom(1) == pytest.approx(-0.5)  # short


# -- memory ---------------------------------------------------------------------------------------
def test_redis_memory_working_set() -> None:
    # 2^20 conversations x 1 message x (960 + 64) B = 2^30 B = 1 GiB; a shard holds 0.25 x 0.5 GiB
    sc = scenario(workload={**OFF["workload"], "conversations": 2**20, "recent_messages": 1,
                            "message_bytes": 960},
                  redis={"shards": 2, "memory_gb_per_shard": 0.25, "usable_memory_fraction": 0.5,
                         "hit_ratio": 0.9})
    plan = size_plan(sc)
    redis = plan.component("redis")
    assert redis is not None
    mem = redis.dimension("memory")
    assert mem is not None
    assert mem.demand == pytest.approx(1.0)
    assert mem.per_instance == pytest.approx(0.125)
    assert mem.needed == 8
    assert redis.binding == "memory"
    assert redis.headroom == pytest.approx(2 / 8 - 1)
    [finding] = plan.findings
    assert (finding.component, finding.dimension) == ("redis", "memory")
    assert "short by 6" in finding.message and "0.900" in finding.message  # the expected hit ratio


def test_ten_million_conversations_of_100_kilobyte_messages_is_about_a_terabyte_of_redis() -> None:
    # the example: 10M x 100 recent messages x 1 KB ~ 1 TB; with the 64 B list overhead
    # 1e7 x 100 x 1,064 B = 1.064e12 B = 990.9 GiB, far beyond 400 shards x 1 GiB x 0.75 = 300 GiB
    sc = load_scenario(REFERENCE, ["workload.conversations=10000000", "workload.message_bytes=1000",
                                   "redis.hit_ratio=0.9", "redis.memory_gb_per_shard=1"])
    plan = size_plan(sc)
    redis = plan.component("redis")
    assert redis is not None
    mem = redis.dimension("memory")
    assert mem is not None
    assert mem.demand * GIB == pytest.approx(1e7 * 100 * 1064)
    assert mem.needed == math.ceil(1.064e12 / GIB / 0.75) == 1322
    assert any(f.component == "redis" and f.dimension == "memory" and "short by 922" in f.message
               for f in plan.findings)


# -- disk -----------------------------------------------------------------------------------------
CASSANDRA = {"nodes": 6, "replication_factor": 3, "disk_gb_per_node": 10, "max_data_gb_per_node": 4,
             "compaction_headroom": 2}


def test_cassandra_disk_retention_times_rf_and_headroom() -> None:
    # 100/s x 1,000 B x 86,400 s = 8.64 GB before replication; x RF 3 x headroom 2 = 51.84 GB;
    # one node holds min(10 GB disk, 4 GB x 2) = 8 GB -> ceil(6.48) = 7 nodes; 6 configured
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 100, "retention_days": 1},
                  cassandra=CASSANDRA)
    plan = size_plan(sc)
    cass = plan.component("cassandra")
    assert cass is not None
    disk = cass.dimension("disk")
    assert disk is not None
    assert disk.parts["messages_bytes_before_replication"] == pytest.approx(8.64e9)
    assert disk.demand == pytest.approx(51.84)
    assert disk.per_instance == pytest.approx(8.0)
    assert (disk.needed, cass.binding, cass.needed) == (7, "disk", 7)
    assert cass.headroom == pytest.approx(6 / 7 - 1)
    [finding] = plan.findings
    assert (finding.component, finding.dimension) == ("cassandra", "disk")
    assert "short by 1" in finding.message


def test_cassandra_disk_adds_fan_out_inbox_entries() -> None:
    # every conversation a group of 5: 4 recipients per message; inbox 100/s x 4 x 250 B x 86,400 s
    # = 8.64 GB, the same as the messages: (8.64 + 8.64) x 6 = 103.68 GB -> ceil(12.96) = 13 nodes
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 100, "retention_days": 1,
                            "group_share": 1, "group_size": 5},
                  cassandra={**CASSANDRA, "nodes": 13}, kafka={"brokers": 3},
                  group_service={"fan_out": "write", "inbox_entry_bytes": 250})
    plan = size_plan(sc)
    assert plan.mean_recipients == pytest.approx(4.0)
    cass = plan.component("cassandra")
    assert cass is not None
    disk = cass.dimension("disk")
    assert disk is not None
    assert disk.parts["inbox_bytes_before_replication"] == pytest.approx(8.64e9)
    assert disk.demand == pytest.approx(103.68)
    assert disk.needed == 13 and cass.headroom == 0.0
    assert not [f for f in plan.findings if f.component == "cassandra"]


def test_cassandra_node_disk_comes_from_the_instance_type() -> None:
    # i4i.2xlarge has 1,875 GB of local NVMe (AWS); the data limit 1,280 GB x 2 = 2,560 GB is looser,
    # and with max_data_gb_per_node 500 the limit 500 x 2 = 1,000 GB binds instead
    def per_node(**cassandra: Any) -> float:
        sc = scenario(cassandra={"nodes": 3, "instance_type": "i4i.2xlarge", **cassandra})
        cass = size_plan(sc).component("cassandra")
        assert cass is not None
        disk = cass.dimension("disk")
        assert disk is not None
        return disk.per_instance

    assert per_node() == 1875
    assert per_node(max_data_gb_per_node=500) == 1000


def test_kafka_disk_produce_rate_times_rf_and_retention() -> None:
    # 100/s x 1,000 B x RF 3 x 3,600 s = 1.08 GB; 0.25 GB per broker -> ceil(4.32) = 5; 3 configured
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 100},
                  kafka={"brokers": 3, "replication_factor": 3, "retention_hours": 1,
                         "disk_gb_per_broker": 0.25})
    plan = size_plan(sc)
    kafka = plan.component("kafka")
    assert kafka is not None
    disk = kafka.dimension("disk")
    assert disk is not None
    assert disk.demand == pytest.approx(1.08)
    assert (disk.needed, kafka.binding) == (5, "disk")
    assert kafka.headroom == pytest.approx(3 / 5 - 1)
    assert [(f.component, f.dimension) for f in plan.findings] == [("kafka", "disk")]
    assert "short by 2" in plan.findings[0].message


# -- network and cost -----------------------------------------------------------------------------
def test_network_in_plus_out_against_the_instance_link() -> None:
    # a send carries 1,000 B, a read returns 10 x 1,000 B. The gateway receives and forwards both:
    # 2 x (1e6 x 1,000 + 1,000 x 10,000) = 2.02e9 B/s = 16.16 Gbit/s; m6i.xlarge has 12.5 -> 2
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 1_000_000, "reads_per_sec": 1000,
                            "recent_messages": 10, "messages_per_read": 10},
                  gateway={"instances": 1, "workers": 4, "service_ms": 0.001, "instance_type": "m6i.xlarge"},
                  message_service={"instances": 1, "workers": 4, "send_service_ms": 0.001,
                                   "read_service_ms": 0.001, "instance_type": "m6i.xlarge"},
                  pricing={"usd_per_hour": {"m6i.xlarge": 1.0}})
    plan = size_plan(sc)
    gw = plan.component("gateway")
    assert gw is not None
    net = gw.dimension("network")
    assert net is not None
    assert net.demand == pytest.approx(16.16)
    assert net.per_instance == 12.5
    assert (net.needed, gw.binding, gw.needed) == (2, "network", 2)
    assert ("gateway", "network") in [(f.component, f.dimension) for f in plan.findings]
    # cost: needed x usd_per_hour x 730 h (the catalog's month), here at an overridden $1/h
    assert gw.monthly_usd_needed == pytest.approx(2 * 1.0 * 730)
    assert gw.monthly_usd_configured == pytest.approx(1 * 1.0 * 730)


def test_network_model_counts_replication_and_consumers() -> None:
    # 1,000 sends/s of 1,000 B from the clients straight to the stores (no gateway, no service):
    # Cassandra: 1e6 in + the coordinator forwards RF-1 = 2 copies, counted out and in: 4e6;
    #   plus inbox entries 1,000 x 1 recipient x 120 B = 1.2e5, forwarded the same way (4.8e5)
    # Kafka: 1e6 produce + 2 x 2e6 to followers + 1e6 to the consumer = 6e6
    # group service: 1e6 consumed + 1.2e5 inbox entries written = 1.12e6
    sc = scenario(cassandra={"nodes": 3, "replication_factor": 3}, kafka={"brokers": 3},
                  group_service={"fan_out": "write"})
    traffic = network_bytes_per_sec(sc, offered_loads(sc))
    assert traffic == pytest.approx({"cassandra": 1e6 + 4e6 + 1.2e5 + 4.8e5, "kafka": 6e6,
                                     "group_service": 1.12e6})


# -- queueing -------------------------------------------------------------------------------------
def test_erlang_c_textbook_mm2() -> None:
    # M/M/2, lambda = 1/s, mu = 1/s: a = 1, rho = 1/2, C(2, 1) = (1/2 / (1/2)) / (1 + 1 + 1) = 1/3;
    # Wq = C / (c mu - lambda) = 1/3 s; P(Wq > t) = C exp(-t) = 1% at t = ln(100/3) s
    e = erlang_c(2, 1.0, 1000.0)
    assert e.p_wait == pytest.approx(1 / 3)
    assert e.wait_ms_mean == pytest.approx(1000 / 3)
    # and the plan carries the same estimate for a station built that way
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 1},
                  gateway={"instances": 1, "workers": 2, "service_ms": {"dist": "exponential", "mean": 1000}})
    est = size_plan(sc).component("gateway").estimate  # type: ignore[union-attr]
    assert est.utilization == pytest.approx(0.5)
    assert est.p_wait == pytest.approx(1 / 3)
    assert est.wait_ms_mean == pytest.approx(1000 / 3)
    assert est.wait_ms_p99 == pytest.approx(1000 * math.log(100 / 3))


# -- the reference design -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference() -> SizePlan:
    return size_plan(load_scenario(REFERENCE))


def test_reference_cassandra_is_disk_bound_and_warns(reference: SizePlan) -> None:
    cass = reference.component("cassandra")
    assert cass is not None and cass.binding == "disk"
    disk = cass.dimension("disk")
    assert disk is not None
    # a year of 1M messages/s of 1,024 B (the lognormal's mean): 1e6 x 1,024 x 365 x 86,400 B
    assert disk.parts["messages_bytes_before_replication"] == pytest.approx(1e6 * 1024 * 365 * 86_400)
    inbox = 1e6 * reference.mean_recipients * 120 * 365 * 86_400
    assert disk.demand == pytest.approx((1e6 * 1024 * 365 * 86_400 + inbox) * 3 * 2 / 1e9)
    assert disk.per_instance == 1875  # i4i.2xlarge local disk, below 1,280 GB x 2
    assert cass.needed > 100 * cass.configured and cass.headroom < -0.99
    [finding] = [f for f in reference.findings if f.component == "cassandra"]
    assert finding.dimension == "disk" and "32.29 PB before replication" in finding.message


def test_a_year_of_one_kilobyte_messages_is_31_5_petabytes() -> None:
    # the figure: 1M/s x 1,000 B x 365 x 86,400 s = 3.1536e16 B = 31.5 PB before replication
    sc = load_scenario(REFERENCE, ["workload.message_bytes=1000", "redis.hit_ratio=0.99"])
    plan = size_plan(sc)
    disk = plan.component("cassandra").dimension("disk")  # type: ignore[union-attr]
    assert disk is not None
    assert disk.parts["messages_bytes_before_replication"] == pytest.approx(3.1536e16)
    assert any("31.54 PB before replication" in w for w in plan.warnings)


def test_reference_other_findings(reference: SizePlan) -> None:
    found = {(f.component, f.dimension) for f in reference.findings}
    # Kafka: 1M/s x 1,024 B x RF 3 x 168 h = 1.858 PB against 40 x 2,000 GB
    assert ("kafka", "disk") in found
    kafka = reference.component("kafka")
    assert kafka is not None
    assert kafka.dimension("disk").demand == pytest.approx(1e6 * 1024 * 3 * 168 * 3600 / 1e9)  # type: ignore[union-attr]
    # Redis: 40M conversations x 100 x (1,024 + 64) B = 4,053 GiB against 400 x 13 x 0.75 = 3,900 GiB
    assert ("redis", "memory") in found
    # the group service is comfortably CPU-bound: 1M/s x (0.5 + 2.44 x 0.02) ms ~ 549 busy cores
    gs = reference.component("group_service")
    assert gs is not None and gs.binding == "cpu" and gs.headroom > 0
    assert ("group_service", "cpu") not in found


def test_reference_cost_is_needed_instances_at_catalog_prices(reference: SizePlan) -> None:
    for c in reference.components:
        assert c.usd_per_hour is not None
        assert c.monthly_usd_needed == pytest.approx(c.needed * c.usd_per_hour * 730)
    assert reference.monthly_usd_needed > reference.monthly_usd_configured


# -- the command ----------------------------------------------------------------------------------
def test_size_command_writes_json_and_markdown_and_exits_0_on_warnings(tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    raw = copy.deepcopy(OFF)
    raw["name"] = "short"
    raw["workload"] = {**raw["workload"], "sends_per_sec": 100}
    raw["kafka"] = {"brokers": 3, "retention_hours": 1, "disk_gb_per_broker": 0.25}
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.app, ["size", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "WARN kafka disk" in result.stdout
    data = json.loads((out / "size.json").read_text())
    assert data["scenario"] == "short"
    [kafka] = data["components"]
    assert (kafka["component"], kafka["binding"]) == ("kafka", "disk")
    assert (kafka["needed"], kafka["configured"]) == (5, 3)
    assert data["warnings"] and data["warnings"][0].startswith("WARN kafka disk: needs 5 brokers")
    md = (out / "size.md").read_text()
    assert md.startswith("# Capacity plan: short")
    assert "| kafka | disk (binding) |" in md and "kafka disk" in md


def test_size_command_bad_instance_type_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    raw = copy.deepcopy(OFF)
    raw["gateway"] = {"instance_type": "m9.huge"}
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli.app, ["size", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "gateway.instance_type" in lines[0] and "m9.huge" in lines[0]


def test_size_json_has_no_infinities(tmp_path: Path) -> None:
    # an overloaded station: Erlang C gives inf waits, which JSON cannot hold -> null
    sc = scenario(gateway={"instances": 1, "workers": 1, "service_ms": 2})  # 1,000/s x 2 ms = rho 2
    plan = size_plan(sc)
    plan.write(tmp_path)
    data = json.loads((tmp_path / "size.json").read_text())
    assert data["components"][0]["estimate"]["stable"] is False
    assert data["components"][0]["estimate"]["wait_ms_mean"] is None
    assert "unstable" in plan.findings[0].message
