"""The DES's flow interpreter (sim/des/flows.py) on small designs whose answers are exact: joins,
unawaited steps, fan-outs, produce and consume, faults and policies by component name; and the
compiled form of the messaging sections (sim/system/compile.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from sim import load_scenario, simulate
from sim.system.compile import system_of
from sim.system.describe import describe
from sim.system.model import CacheLookup, FanOut, Parallel

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DES = "des"  # the interpreter under test (the default, auto, sends a design to the calendar engine)


def det(ms: float) -> dict[str, Any]:
    return {"dist": "deterministic", "value": ms}


def design(tmp_path: Path, flows: dict[str, Any], components: dict[str, Any] | None = None,
           **extra: Any) -> Path:
    """A design with three single-server services a, b, c taking 1, 2 and 3 ms, no network hop."""
    doc = {
        "name": "probe", "seed": 1, "duration_s": 4, "warmup_s": 0,
        "network": {"hop_ms": 0, "zones": 1},
        "keys": {"item": {"count": 100}},
        "components": components or {
            "a": {"kind": "service", "workers": 1000, "ops": {"go": det(1)}},
            "b": {"kind": "service", "workers": 1000, "ops": {"go": det(2)}},
            "c": {"kind": "service", "workers": 1000, "ops": {"go": det(3)}},
        },
        "flows": flows, **extra,
    }
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def parallel(join: Any) -> dict[str, Any]:
    return {"x": {"rate_per_sec": 50, "key": "item", "steps": [
        {"parallel": {"join": join, "steps": [{"call": "a"}, {"call": "b"}, {"call": "c"}]}}]}}


@pytest.mark.parametrize(("join", "ms"), [("all", 3.0), (2, 2.0), (1, 1.0), (["a"], 1.0), (["b", "c"], 3.0)])
def test_a_parallel_answers_when_its_join_is_met(tmp_path: Path, join: Any, ms: float) -> None:
    s = simulate(load_scenario(design(tmp_path, parallel(join))), engine=DES).summary
    lat = s["latency_ms"]["x"]
    assert lat["count"] > 100
    # deterministic service, no hop, no queueing: every request takes exactly the join's time
    assert lat["p50"] == pytest.approx(ms, rel=0.02) and lat["max"] == pytest.approx(ms, rel=0.02)


def test_unawaited_steps_fail_apart_from_the_request(tmp_path: Path) -> None:
    comps = {"a": {"kind": "service", "workers": 1000, "ops": {"go": det(1)}},
             "b": {"kind": "service", "workers": 1, "queue_limit": 0, "ops": {"go": det(50)}}}
    flows = {"x": {"rate_per_sec": 200, "key": "item", "steps": [
        {"parallel": {"join": ["a"], "steps": [{"call": "a"}, {"call": "b"}]}}]}}
    s = simulate(load_scenario(design(tmp_path, flows, comps)), engine=DES).summary
    assert s["availability"]["x"] == 1.0
    assert s["async_errors"].get("b.rejected", 0) > 0.5 * s["requests"]["x"]["sent"]


def test_a_fan_out_calls_each_member_and_waits_for_all(tmp_path: Path) -> None:
    comps = {"a": {"kind": "service", "workers": 1000, "ops": {"go": det(1)}},
             "db": {"kind": "cassandra", "nodes": 3, "workers": 1000, "replication_factor": 3,
                    "write_consistency": "ALL", "write_service_ms": det(2)}}
    flows = {"x": {"rate_per_sec": 100, "key": "item", "steps": [
        {"call": "a"},
        {"fan_out": {"members": 5, "key": "item", "steps": [{"call": "db.write"}]}}]}}
    sc = load_scenario(design(tmp_path, flows, comps))
    s = simulate(sc, drain=True, engine=DES).summary
    done = s["requests"]["x"]["succeeded"]
    assert done == s["requests"]["x"]["sent"] > 300
    writes = s["components"]["db"]["ops_per_sec"] * s["measured_seconds"]
    assert round(writes) == done * 5 * 3  # 5 members, each written to RF = 3 replicas
    assert s["latency_ms"]["x"]["max"] == pytest.approx(3.0, rel=0.02)  # 1 ms, then 2 ms at ALL


def test_a_produced_flow_starts_at_commit_and_times_from_its_producer(tmp_path: Path) -> None:
    comps = {"a": {"kind": "service", "workers": 1000, "ops": {"go": det(1)}},
             "w": {"kind": "service", "instances": 2, "workers": 100, "ops": {"work": det(4)}},
             "log": {"kind": "kafka", "brokers": 3, "partitions": 6, "workers": 100, "append_ms": det(0.5)}}
    flows = {"x": {"rate_per_sec": 100, "key": "item", "steps": [
                 {"call": "a"}, {"produce": {"on": "log", "then": "y"}}]},
             "y": {"key": "item", "consumer": {"on": "w", "op": "work"}, "steps": [{"call": "a"}]}}
    s = simulate(load_scenario(design(tmp_path, flows, comps)), drain=True, engine=DES).summary
    assert s["requests"]["y"]["succeeded"] == s["requests"]["x"]["succeeded"] > 300
    assert "y" not in s["offered_per_sec"] and set(s["offered_per_sec"]) == {"x"}
    # y runs from x's start: a (1) + leader and follower appends (0.5 + 0.5) + w (4) + a (1)
    assert s["latency_ms"]["y"]["p50"] == pytest.approx(7.0, rel=0.02)
    assert s["latency_ms"]["x"]["p50"] == pytest.approx(2.0, rel=0.02)


def test_faults_and_policies_name_a_designs_components(tmp_path: Path) -> None:
    comps = {"a": {"kind": "service", "workers": 1000, "ops": {"go": det(1)}},
             "db": {"kind": "cassandra", "nodes": 3, "workers": 1000, "replication_factor": 3,
                    "read_consistency": "ALL", "read_service_ms": det(2)}}
    flows = {"x": {"rate_per_sec": 100, "key": "item", "steps": [{"call": "a"}, {"call": "db.read"}]}}
    crash = [{"kind": "crash", "component": "db", "nodes": [0], "start_s": 1, "duration_s": 2}]
    s = simulate(load_scenario(design(tmp_path, flows, comps, faults=crash)), engine=DES).summary
    assert s["errors"].get("x:db.unavailable", 0) > 50  # ALL needs every replica: node 0 is down
    slow = {"a->db": {"timeout_ms": 1.0}}
    s = simulate(load_scenario(design(tmp_path, flows, comps, policies=slow)), engine=DES).summary
    assert s["availability"]["x"] == 0.0 and s["errors"].get("x:db.timeout", 0) > 300


def test_a_fault_or_edge_naming_no_component_is_refused(tmp_path: Path) -> None:
    flows = {"x": {"rate_per_sec": 10, "key": "item", "steps": [{"call": "a"}]}}
    with pytest.raises(Exception, match="component nope does not exist"):
        load_scenario(design(tmp_path, flows, faults=[{"kind": "crash", "component": "nope", "count": 1,
                                                        "start_s": 1, "duration_s": 1}]))
    with pytest.raises(Exception, match="shard_loss applies to a redis component"):
        load_scenario(design(tmp_path, flows, faults=[{"kind": "shard_loss", "component": "a", "count": 1,
                                                        "start_s": 1, "duration_s": 1}]))
    with pytest.raises(Exception, match="does not name caller->callee"):
        load_scenario(design(tmp_path, flows, policies={"a->zz": {"timeout_ms": 1}}))


def test_the_messaging_sections_compile_to_send_read_and_delivery() -> None:
    sc = load_scenario(SCENARIOS / "messaging-1m.yaml")
    system = system_of(sc)
    assert list(system.flows) == ["send", "read", "delivery"] and system.client_flows() == ["send", "read"]
    store = system.flows["send"].steps[-1]
    assert isinstance(store, Parallel) and [s.name for s in store.steps] == ["cassandra", "redis", "kafka"]
    assert store.awaited == (True, True, True)  # ack_after: [cassandra, redis, kafka]
    assert isinstance(system.flows["read"].steps[-1], CacheLookup)
    assert system.flows["delivery"].consumer is not None and system.flows["delivery"].source == "kafka"
    by_read = load_scenario(SCENARIOS / "interview-small.yaml", [
        "group_service.fan_out=read", "message_service.partition_key=conversation",
        "message_service.ack_after=[cassandra]"])
    sys2 = system_of(by_read)
    inbox = sys2.flows["read"].steps[-1]
    assert isinstance(inbox, FanOut) and inbox.relation == "user_conversations"
    assert sys2.flows["send"].steps[-1].awaited == (True, False, False)  # type: ignore[union-attr]
    delivery = sys2.flows["delivery"].steps[0]
    assert isinstance(delivery, FanOut) and delivery.steps == ()  # on read: nothing written per member


def test_capsim_flows_prints_every_flow_and_step() -> None:
    text = describe(system_of(load_scenario(SCENARIOS / "designs" / "url-shortener.yaml")))
    for line in ("flow resolve:", "flow shorten:", "cache lookup in cache", "call links.read at ONE"):
        assert line in text
    out = CliRunner().invoke(app, ["flows", str(SCENARIOS / "messaging-1m.yaml")])
    assert out.exit_code == 0
    assert "flow delivery: started by each record committed to kafka" in out.output
    assert "produce to kafka, starting flow delivery" in out.output
