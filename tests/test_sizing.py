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
from sim.cost import monthly_cost
from sim.pricing import load_catalog
from sim.report.findings import BAD, WARN, findings
from sim.sizing import SizePlan, Traffic, instances_surviving_zone_loss, network_bytes_per_sec, size_plan
from sim.workload import workload_mix

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "scenarios" / "messaging-1m.yaml"
GIB = 2**30

OFF: dict[str, Any] = {
    "name": "t",
    "network": {"hop_ms": 0, "zones": 1},  # zone-loss headroom: its own tests
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
    assert finding.severity == "critical"
    assert plan.warnings == [f"CRITICAL gateway cpu: {finding.message}"]
    assert plan.unholdable() == ["gateway"] and not plan.holds


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
    # the cache works, at that lower hit ratio: a warning, and the fleet still holds
    assert finding.severity == "warn" and plan.unholdable() == [] and plan.holds


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
def test_network_each_direction_against_sustained_bandwidth() -> None:
    # Kafka alone, 1e6 sends/s of 1,000 B, RF 3, no consumer: into the fleet the produce (1e9 B/s) and
    # the followers' copies (2e9), out of it the leaders' copies (2e9). In 3e9 B/s = 24 Gbit/s binds;
    # out is 16. kafka.m5.large sustains 0.75 Gbit/s each direction (AWS baseline; "up to" 10 is a
    # burst) -> ceil(24 / 0.75) = 32 brokers. (Burst, in + out: 40 / 10 = 4.)
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 1_000_000},
                  kafka={"brokers": 3, "instance_type": "kafka.m5.large", "append_ms": 0.001,
                         "disk_gb_per_broker": 1e12})
    assert network_bytes_per_sec(sc, offered_loads(sc))["kafka"] == Traffic(3e9, 2e9)
    plan = size_plan(sc)
    kafka = plan.component("kafka")
    assert kafka is not None
    net = kafka.dimension("network")
    assert net is not None
    assert (net.parts["in_gbps"], net.parts["out_gbps"]) == (pytest.approx(24.0), pytest.approx(16.0))
    assert net.demand == pytest.approx(24.0)
    broker = load_catalog("aws-us-east-1").instances["kafka.m5.large"]
    assert net.per_instance == broker.network_gbps_sustained
    assert net.per_instance == 0.75
    assert (net.needed, kafka.binding, kafka.needed) == (32, "network", 32)
    assert "sustained" in net.capacity_basis


def test_network_gateway_is_symmetric_and_priced_at_the_needed_count() -> None:
    # a send carries 1,000 B in; a read's page of 10 x 1,000 B comes back. The gateway receives
    # 1e6 x 1,000 + 1,000 x 10,000 = 1.01e9 B/s and sends as much: 8.08 Gbit/s each way; m6i.xlarge
    # sustains 1.5625 -> ceil(5.17) = 6 (in + out against the 12.5 burst said 2)
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
    assert net.parts["in_gbps"] == pytest.approx(8.08) and net.parts["out_gbps"] == pytest.approx(8.08)
    assert net.per_instance == 1.562
    assert (net.needed, gw.binding, gw.needed) == (6, "network", 6)
    assert ("gateway", "network") in [(f.component, f.dimension) for f in plan.findings]
    # cost: needed x usd_per_hour x 730 h (the catalog's month), here at an overridden $1/h
    assert gw.monthly_usd_needed == pytest.approx(6 * 1.0 * 730)
    assert gw.monthly_usd_configured == pytest.approx(1 * 1.0 * 730)


def test_network_model_counts_replication_and_consumers() -> None:
    # 1,000 sends/s of 1,000 B from the clients straight to the stores (no gateway, no service):
    # Cassandra in: 1e6 written + 2 forwarded copies 2e6 + inbox 1.2e5 from the group service and its
    #   2 copies 2.4e5; out: the 2 forwarded copies 2e6 + 2.4e5 (no reads)
    # Kafka in: 1e6 produced + 2e6 to followers; out: 2e6 from leaders + 1e6 to the consumer
    # group service in: 1e6 consumed; out: 1.2e5 inbox entries (1 recipient x 120 B per message)
    sc = scenario(cassandra={"nodes": 3, "replication_factor": 3}, kafka={"brokers": 3},
                  group_service={"fan_out": "write"})
    traffic = network_bytes_per_sec(sc, offered_loads(sc))
    assert traffic == {"cassandra": Traffic(pytest.approx(3e6 + 3.6e5), pytest.approx(2e6 + 2.4e5)),
                       "kafka": Traffic(pytest.approx(3e6), pytest.approx(3e6)),
                       "group_service": Traffic(pytest.approx(1e6), pytest.approx(1.2e5))}


def test_redis_primaries_send_writes_and_fills_to_their_replicas() -> None:
    # 1,000 sends/s of 1,000 B appended to Redis, no reads: 2 replicas per shard receive 2e6 B/s,
    # out of the primaries; with 0 replicas nothing goes out
    def out_bytes(replicas: int) -> float:
        sc = scenario(redis={"shards": 2, "replicas": replicas, "hit_ratio": 1.0})
        return network_bytes_per_sec(sc, offered_loads(sc))["redis"].out_bytes_per_sec

    assert out_bytes(2) == pytest.approx(2e6)
    assert out_bytes(0) == 0.0


# -- zones and replicas ---------------------------------------------------------------------------
@pytest.mark.parametrize(("base", "zones", "expected"), [
    (7, 1, 7), (7, 3, 11), (2, 3, 3), (1, 2, 2), (10, 2, 20), (9, 3, 14), (0, 3, 0)])
def test_instances_surviving_zone_loss(base: int, zones: int, expected: int) -> None:
    # n spread over z zones loses its fullest zone, ceil(n/z): 11 over 3 keep 11 - 4 = 7, 10 keep 6;
    # 14 over 3 keep 14 - 5 = 9, 13 keep 13 - 5 = 8
    n = instances_surviving_zone_loss(base, zones)
    assert n == expected
    if zones > 1 and base > 0:
        assert n - math.ceil(n / zones) >= base
        assert (n - 1) - math.ceil((n - 1) / zones) < base


def test_needed_counts_hold_the_load_with_one_zone_lost() -> None:
    # 7 busy cores at 1 core per instance: 7 with every zone up; over 3 zones 11 (11 - 4 = 7 left)
    def gateway(zones: int) -> Any:
        sc = scenario(network={"hop_ms": 0, "zones": zones},
                      workload={**OFF["workload"], "sends_per_sec": 7000},
                      gateway={"instances": 8, "workers": 2, "service_ms": 1},
                      capacity={"target_utilization": 0.5})
        return size_plan(sc)

    one, three = gateway(1), gateway(3)
    assert one.component("gateway").needed == 7  # type: ignore[union-attr]
    assert one.holds
    gw = three.component("gateway")
    assert gw is not None
    cpu = gw.dimension("cpu")
    assert cpu is not None and (cpu.needed_all_zones, cpu.needed, gw.needed) == (7, 11, 11)
    assert "1 of 3 zones lost" in cpu.zone_basis
    assert three.unholdable() == ["gateway"]  # 8 hold the load, not the load with a zone lost
    assert three.unholdable_reasons() == ["short: gateway cpu"]
    [finding] = three.findings
    assert finding.severity == "critical" and "1 of 3 zones lost" in finding.message
    assert "1 of 3 zones lost" in three.to_markdown()


def test_zone_loss_leaves_disk_and_redis_shards_alone() -> None:
    # data does not move when a zone is lost, and Redis shards fail over to their replicas
    sc = scenario(network={"hop_ms": 0, "zones": 3},
                  workload={**OFF["workload"], "sends_per_sec": 100, "retention_days": 1},
                  cassandra={**CASSANDRA, "nodes": 7, "write_service_ms": 0.001},
                  redis={"shards": 8, "memory_gb_per_shard": 0.25, "usable_memory_fraction": 0.5,
                         "hit_ratio": 0.9, "service_ms": 0.001},
                  )
    plan = size_plan(sc)
    disk = plan.component("cassandra").dimension("disk")  # type: ignore[union-attr]
    assert disk is not None and disk.needed == disk.needed_all_zones == 7  # as the disk test above
    assert plan.component("redis").dimension("cpu").needed == 1  # type: ignore[union-attr]


def test_redis_replicas_count_in_needed_nodes_and_cost() -> None:
    # 1 GiB of lists, 0.125 GiB per shard -> 8 shards; with 2 replicas each, 24 nodes at $1/h
    def plan(replicas: int) -> SizePlan:
        sc = scenario(workload={**OFF["workload"], "conversations": 2**20, "recent_messages": 1,
                                "message_bytes": 960},
                      redis={"shards": 2, "memory_gb_per_shard": 0.25, "usable_memory_fraction": 0.5,
                             "hit_ratio": 0.9, "replicas": replicas, "instance_type": "cache.r6g.large"},
                      pricing={"usd_per_hour": {"cache.r6g.large": 1.0}})
        return size_plan(sc)

    two = plan(2).component("redis")
    assert two is not None
    assert (two.needed, two.needed_nodes, two.configured_nodes) == (8, 24, 6)
    assert two.monthly_usd_needed == pytest.approx(24 * 730)
    assert two.monthly_usd_configured == pytest.approx(6 * 730)
    none = plan(0).component("redis")
    assert none is not None and (none.needed_nodes, none.monthly_usd_needed) == (8, pytest.approx(8 * 730))


def test_no_redis_replicas_over_zones_is_a_warning() -> None:
    sc = scenario(network={"hop_ms": 0, "zones": 3}, redis={"shards": 2, "replicas": 0, "hit_ratio": 0.9})
    assert [(f.component, f.dimension, f.severity) for f in size_plan(sc).findings] == \
        [("redis", "zones", "warn")]


# -- one model of the workload --------------------------------------------------------------------
GROUPS = {**OFF["workload"], "users": 2000, "conversations": 1000, "group_share": 0.5,
          "group_size": {"dist": "lognormal", "mean": 8, "p99": 100, "min": 3, "max": 500},
          "reads_per_sec": 1000}


def test_sizing_uses_the_workload_models_recipients_not_the_nominal_mix() -> None:
    # the nominal mix, 0.5 x 1 + 0.5 x (8 - 1) = 4 recipients, is not what runs realise
    sc = scenario(workload=GROUPS, cassandra={"nodes": 3}, kafka={"brokers": 3},
                  group_service={"fan_out": "write", "per_recipient_ms": 1.0})
    mix = workload_mix(sc.workload, "write")
    assert abs(mix["mean_recipients"] - 4.0) > 0.1
    plan = size_plan(sc)
    assert plan.mean_recipients == pytest.approx(mix["mean_recipients"])
    gs = plan.component("group_service")
    assert gs is not None
    assert gs.ops_per_sec == pytest.approx(1000)
    assert gs.dimension("cpu").demand == pytest.approx(1000 * (0.5 + mix["mean_recipients"]) / 1e3, rel=1e-3)  # type: ignore[union-attr]
    # and the cost prices inbox storage with the same recipients
    cost = monthly_cost(sc)
    inbox = plan.component("cassandra").dimension("disk").parts["inbox_bytes_before_replication"]  # type: ignore[union-attr]
    assert inbox == pytest.approx(1000 * mix["mean_recipients"] * 120 * 365 * 86_400)
    assert cost.needed is not None


def test_fan_out_on_read_multiplies_store_reads_by_lookups_per_read() -> None:
    # a read assembles the reader's inbox: Redis lookups and Cassandra reads per read are the
    # workload model's lookups_per_read (> 1), so Redis sees sends + reads x L + misses
    sc = scenario(workload=GROUPS, cassandra={"nodes": 3}, kafka={"brokers": 3},
                  redis={"shards": 2, "hit_ratio": 0.75},
                  group_service={"fan_out": "read"}, message_service={"partition_key": "conversation"})
    lookups = workload_mix(sc.workload, "read")["lookups_per_read"]
    assert lookups > 1.5
    flows = offered_loads(sc)
    assert flows.lookups_per_read == pytest.approx(lookups)
    assert flows.loads["redis"].ops_per_sec == pytest.approx(1000 + 1000 * lookups * (1 + 0.25))
    # QUORUM of RF 3: 2 replica reads per missed lookup, plus 3 replica writes per send
    assert flows.loads["cassandra"].ops_per_sec == pytest.approx(3000 + 1000 * lookups * 0.25 * 2)
    assert size_plan(sc).lookups_per_read == pytest.approx(lookups)


# -- severities and the workers-per-vCPU check -----------------------------------------------------
def test_more_workers_than_vcpus_is_a_warning() -> None:
    # 8 request-handler workers on kafka.m5.large's 2 vCPUs (the reference design's brokers)
    sc = scenario(kafka={"brokers": 3, "workers": 8, "instance_type": "kafka.m5.large"})
    plan = size_plan(sc)
    [finding] = [f for f in plan.findings if f.dimension == "workers"]
    assert (finding.component, finding.severity) == ("kafka", "warn")
    assert "8 workers per instance on kafka.m5.large's 2 vCPU" in finding.message
    assert plan.holds  # a warning, not a shortfall
    # Redis's one worker is its command thread, not a CPU count to check; 2 workers on 2 vCPU is fine
    assert not [f for f in size_plan(scenario(kafka={"brokers": 3, "workers": 2,
                                                     "instance_type": "kafka.m5.large"})).findings
                if f.dimension == "workers"]


def test_unstable_fleet_is_critical_even_without_a_cpu_shortfall() -> None:
    # 1,000/s x 2 ms on 2 workers: rho = 1 exactly, so at target 100% the cpu need is met (2 cores)
    sc = scenario(gateway={"instances": 1, "workers": 2, "service_ms": 2},
                  capacity={"target_utilization": 1.0})
    plan = size_plan(sc)
    gw = plan.component("gateway")
    assert gw is not None and gw.needed == 1 and gw.unstable
    [finding] = plan.findings
    assert finding.severity == "critical" and "unstable" in finding.message
    assert plan.unholdable() == ["gateway"]
    assert plan.unholdable_reasons() == ["unstable: gateway cpu (100%)"]


def test_report_findings_mark_shortfalls_red_and_warnings_amber() -> None:
    sc = scenario(workload={**OFF["workload"], "sends_per_sec": 100},
                  kafka={"brokers": 3, "retention_hours": 1, "disk_gb_per_broker": 0.25, "workers": 8,
                         "instance_type": "kafka.m5.large", "append_ms": 0.001})
    plan = size_plan(sc)
    lines = findings({}, size_warnings=plan.warnings)
    capacity = [f for f in lines if f.text.startswith("Capacity")]
    assert [f.level for f in capacity] == [BAD, WARN]
    assert "kafka disk" in capacity[0].text and "kafka workers" in capacity[1].text


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
    # the group service is comfortably CPU-bound: 1M/s x (0.5 + r x 0.02) ms, r the model's recipients
    gs = reference.component("group_service")
    assert gs is not None and gs.binding == "cpu" and gs.headroom > 0
    assert ("group_service", "cpu") not in found


def test_reference_cost_is_needed_instances_at_catalog_prices(reference: SizePlan) -> None:
    needed, configured = reference.cost_needed, reference.cost_configured
    for c in reference.components:
        assert c.usd_per_hour is not None
        [compute] = [r for r in needed.rows if r.component == c.component and r.kind == "compute"]
        assert compute.monthly_usd == pytest.approx(c.needed_nodes * c.usd_per_hour * 730)
    assert reference.component("redis").nodes_per_instance == 2  # type: ignore[union-attr]  # 1 replica
    # configured and needed priced by the same rows: only compute differs
    assert [(r.component, r.kind) for r in needed.rows] == [(r.component, r.kind) for r in configured.rows]
    for kind in ("storage", "network", "requests"):
        assert needed.by_kind[kind] == pytest.approx(configured.by_kind[kind])
    assert reference.monthly_usd_needed > reference.monthly_usd_configured
    # Cassandra 1,200 nodes hold a year of data 100-fold short: red, and the fleet cannot hold
    assert "cassandra" in reference.unholdable()
    [disk] = [f for f in reference.findings if f.component == "cassandra" and f.dimension == "disk"]
    assert disk.severity == "critical"
    found = [(f.component, f.dimension, f.severity) for f in reference.findings]
    assert ("kafka", "workers", "warn") in found


def test_run_summary_cost_has_the_needed_fleet_from_the_sizing_code() -> None:
    # the same arithmetic `capsim size` does: run's summary cost carries configured and needed
    sc = load_scenario(REFERENCE)
    cost = monthly_cost(sc)
    plan = size_plan(sc)
    summary = cost.as_summary()
    assert summary["total_monthly_usd"] == pytest.approx(plan.monthly_usd_configured)
    assert summary["needed"]["total_monthly_usd"] == pytest.approx(plan.monthly_usd_needed)
    assert summary["needed"]["instances"] == {c.component: c.needed for c in plan.components}
    assert summary["nodes"]["redis"] == 400 * 2 and summary["needed"]["nodes"]["redis"] == plan.component(
        "redis").needed_nodes  # type: ignore[union-attr]
    assert "cassandra" in summary["needed_note"]  # names the fleets short as configured


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
    assert "CRITICAL kafka disk" in result.stdout
    assert "cannot hold as configured: kafka" in result.stdout
    data = json.loads((out / "size.json").read_text())
    assert data["scenario"] == "short"
    [kafka] = data["components"]
    assert (kafka["component"], kafka["binding"]) == ("kafka", "disk")
    assert (kafka["needed"], kafka["configured"]) == (5, 3)
    assert data["warnings"] and data["warnings"][0].startswith("CRITICAL kafka disk: needs 5 brokers")
    assert data["unholdable"] == ["kafka"]
    assert {"cost_configured", "cost_needed"} <= data.keys()
    md = (out / "size.md").read_text()
    assert md.startswith("# Capacity plan: short")
    assert "| kafka | disk (binding) |" in md and "kafka disk" in md
    assert "## Cannot hold (critical)" in md and "## Cost, configured and needed" in md


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
