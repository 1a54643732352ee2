"""Faults and resilience: Cassandra under node loss, hints, breakers, retries, conservation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sim import ScenarioError, load_scenario, simulate

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
# a small write-heavy cell: 3 Cassandra nodes (RF 3), 1,000 sends/s, no reads
BASE = ["sample=0.25", "duration_s=6", "warmup_s=1", "workload.sends_per_sec=4000",
        "workload.reads_per_sec=0"]


ENGINE = "auto"  # the engine every test here runs on: auto, then the DES (the fixture below)


@pytest.fixture(autouse=True, params=["auto", "des"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs twice: on the engine auto picks (the calendar, for all but lost data) and on
    the DES, the reference, so both keep the behaviours asserted here."""
    monkeypatch.setattr(sys.modules[__name__], "ENGINE", request.param)
    return str(request.param)


def run(*overrides: str, drain: bool = False) -> dict:
    return simulate(load_scenario(SMALL, [*BASE, *overrides]), drain=drain, engine=ENGINE).summary


def crash(nodes: list[int], start: float = 1.0, duration: float = 5.0, **extra: object) -> str:
    more = "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in extra.items())
    return (f"faults=[{{kind: crash, component: cassandra, nodes: {nodes}, start_s: {start}, "
            f"duration_s: {duration}{more}}}]")


def test_quorum_writes_survive_one_replica_down() -> None:
    s = run(crash([0]))
    assert s["requests"]["send"]["failed"] == 0
    assert s["availability"]["send"] == 1.0
    assert s["resilience"]["cassandra"]["unavailable"] == 0
    assert s["resilience"]["cassandra"]["hints_stored"] > 0  # every write had a replica on node 0


def test_quorum_writes_fail_as_unavailable_with_two_replicas_down() -> None:
    s = run(crash([0, 1]))
    # every send measured (arriving 1..6 s) falls in the fault window: all fail, all as unavailable
    assert s["availability"]["send"] == 0.0
    assert {k for k in s["errors"] if k.startswith("send:")} == {"send:cassandra.unavailable"}
    assert s["errors"]["send:cassandra.unavailable"] > 0


def test_one_writes_survive_two_replicas_down() -> None:
    s = run(crash([0, 1]), "cassandra.write_consistency=ONE")
    assert s["availability"]["send"] == 1.0


def test_hints_replay_after_recovery() -> None:
    s = run(crash([0], start=1.0, duration=1.0), "duration_s=8")
    c = s["resilience"]["cassandra"]
    assert c["hints_stored"] > 0
    assert c["hints_replayed"] == c["hints_stored"]


def test_lost_data_is_zero_at_quorum_and_counted_at_one() -> None:
    # QUORUM with one replica down: every acknowledged write has 2 copies; losing a disk loses none
    quorum = run("faults=[{kind: crash, component: cassandra, nodes: [0], start_s: 1, duration_s: 4},"
                 " {kind: crash, component: cassandra, nodes: [1], start_s: 4, duration_s: 1,"
                 " lose_data: true}]")
    assert quorum["resilience"]["lost_writes"] == 0
    # ONE with two replicas down: acknowledged writes live on node 2 alone; its disk is then lost
    one = run("cassandra.write_consistency=ONE",
              "faults=[{kind: crash, component: cassandra, nodes: [0, 1], start_s: 1, duration_s: 4},"
              " {kind: crash, component: cassandra, nodes: [2], start_s: 4, duration_s: 1,"
              " lose_data: true}]")
    assert one["resilience"]["lost_writes"] > 0


def test_circuit_breaker_opens_and_closes() -> None:
    s = run(crash([0, 1], start=2.0, duration=2.0), "duration_s=10",
            "policies={message_service->cassandra: {breaker: {error_rate: 0.5, window_s: 1, "
            "min_requests: 20, open_s: 0.5, half_open_probes: 5}}}")
    breaker = s["resilience"]["edges"]["message_service->cassandra"]["breaker"]
    assert breaker["opened"] >= 1
    assert breaker["rejected"] > 0
    assert breaker["closed"] >= 1 and breaker["state"] == "closed"
    assert "send:cassandra.breaker_open" in s["errors"]


def test_timeouts_and_retries_turn_a_slow_node_into_retried_calls() -> None:
    s = run("faults=[{kind: slow, component: cassandra, nodes: [0, 1], factor: 200, start_s: 2,"
            " duration_s: 2}]",
            "policies={message_service->cassandra: {timeout_ms: 20, retry: {max_attempts: 2}}}")
    edge = s["resilience"]["edges"]["message_service->cassandra"]
    assert edge["timeouts"] > 0 and edge["retries"] > 0
    assert s["errors"].get("send:cassandra.timeout", 0) > 0


@pytest.mark.parametrize("fault", [
    "{kind: crash, component: cassandra, nodes: [0, 1], start_s: 1, duration_s: 2}",
    "{kind: zone_outage, zone: 0, start_s: 1, duration_s: 2}",
    "{kind: slow, component: redis, count: 1, factor: 50, start_s: 1, duration_s: 2}",
    "{kind: gc_pauses, component: cassandra, count: 2, pause_ms: 300, every_s: 1, start_s: 1,"
    " duration_s: 3}",
    "{kind: broker_loss, count: 1, election_s: 1, start_s: 1, duration_s: 2}",
    "{kind: shard_loss, count: 1, start_s: 1, duration_s: 1}",
    "{kind: crash, component: group_service, count: 1, start_s: 1, duration_s: 2}",
    "{kind: load_spike, factor: 3, start_s: 1, duration_s: 2}",
])
def test_conservation_holds_under_every_fault(fault: str) -> None:
    s = run(f"faults=[{fault}]", "workload.reads_per_sec=3000",
            "policies={client->gateway: {timeout_ms: 50, retry: {max_attempts: 2}}}", drain=True)
    for op, c in s["requests"].items():
        assert c["sent"] == c["succeeded"] + c["failed"], op
        assert c["in_flight"] == 0, op
    assert s["checks"]["conservation_holds"]


def test_broker_loss_makes_its_partitions_unavailable_until_election() -> None:
    s = run("faults=[{kind: broker_loss, count: 1, election_s: 1, start_s: 2, duration_s: 3}]",
            "message_service.ack_after=[cassandra, kafka]")
    assert s["resilience"]["kafka_unavailable"] > 0
    assert s["errors"].get("send:kafka.unavailable", 0) == s["resilience"]["kafka_unavailable"]


def test_fault_windows_and_recovery_are_reported() -> None:
    s = run(crash([0], start=2.0, duration=1.0), "duration_s=8")
    assert s["faults"][0]["start_s"] == 2.0 and s["faults"][0]["end_s"] == 3.0
    rec = s["faults"][0]["recovery"]
    assert rec["recovered"] is True and rec["seconds_to_recover"] == 0.0
    assert s["availability"]["windows"]["windows"] == 7


@pytest.mark.parametrize("fault, message", [
    ("{kind: crash, component: cassandr, nodes: [0], start_s: 1, duration_s: 1}", "component"),
    ("{kind: crash, component: cassandra, nodes: [99], start_s: 1, duration_s: 1}", "nodes 0..11"),
    ("{kind: crash, component: cassandra, nodes: [0], start_s: 1, duration_s: -1}", "duration_s"),
    ("{kind: crash, nodes: [0], start_s: 1, duration_s: 1}", "needs component"),
    ("{kind: zone_outage, zone: 7, start_s: 1, duration_s: 1}", "zone 7 does not exist"),
    ("{kind: meteor, start_s: 1, duration_s: 1}", "kind"),
])
def test_invalid_fault_entries_get_clear_errors(fault: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(SMALL, [f"faults=[{fault}]"])
    assert "faults" in str(err.value)
    assert "\n" not in str(err.value)


# a quarter of scenarios/retry-storm.yaml's load on one single-worker gateway (~75% busy before
# the spike, as there), a 3 s spike, 8 s to recover
STORM = ["duration_s=16", "warmup_s=2", "workload.sends_per_sec=625", "workload.reads_per_sec=1875",
         "gateway.instances=1", "gateway.workers=1", "message_service.instances=1",
         "faults=[{kind: load_spike, factor: 2.5, start_s: 5, duration_s: 3}]"]


def storm(name: str) -> dict:
    return simulate(load_scenario(ROOT / "scenarios" / f"{name}.yaml", STORM), engine=ENGINE).summary


def test_retry_storm_stays_degraded_after_its_trigger_while_its_twin_recovers() -> None:
    storm_s, fixed_s = storm("retry-storm"), storm("retry-storm-fixed")
    (stormy,) = storm_s["faults"]
    (fixed,) = fixed_s["faults"]
    assert stormy["recovery"]["recovered"] is False
    assert fixed["recovery"]["recovered"] is True
    assert fixed["recovery"]["seconds_to_recover"] <= 2.0
    # the storm's retries multiply the load: more attempts than requests, most of them timing out
    edge = storm_s["resilience"]["edges"]["client->gateway"]
    assert edge["retries"] > edge["calls"] and edge["timeouts"] > edge["calls"]
    # the twin's budget caps retries at about 10% of requests
    twin = fixed_s["resilience"]["edges"]["client->gateway"]
    assert twin["retries"] <= 0.1 * twin["calls"] + 1
    assert fixed_s["availability"]["overall"] > storm_s["availability"]["overall"]
