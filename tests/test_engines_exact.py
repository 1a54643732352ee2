"""The engines on deterministic, lightly loaded designs, one per shape of flow: every request's
latency is a fixed sum, and each engine must give it exactly.

Every time below is deterministic (a hop 0.1 ms, each operation its own fixed time), 20 requests a
second never meet in a queue (every fleet has 64 workers an instance; a fan-out's members call
services, not shards), and the cache's hit ratio is 1 or 0. Then a request's latency follows from
the model's rules alone:

* a call is one hop and the callee's service (a service op with per_member_ms adds that per member of
  the fan-out that follows it, in its own visit);
* a parallel answers at its slowest awaited branch (`join: k` at its k-th answer), a fan-out at its
  slowest member;
* a Cassandra call is one hop to its coordinator, whose replicas serve at once: at any consistency
  level it is the hop and one replica's service;
* a cache lookup is a call to Redis; a miss then runs its miss branch (the fill is not awaited), and
  a fresh key (`key: user.new`) always misses;
* a Kafka produce at acks=all is a hop and the leader's append, then a hop and the followers' append
  (0.3 ms); its record's flow runs from the producer's start: the consumer is a call (a hop and its
  op, per member too) before the flow's own steps.

Policies act at fixed times too: under a timeout every attempt of a slowed call times out, so its
retries and timeouts are exact multiples of its calls; a read hedged before it answers sends one
hedge each, and none when hedged after. A gateway's token bucket admits its burst and its rate,
to the request, however the arrivals fall.

The messaging preset (its own scenario sections, compiled into flows) is held to the same rule:
with its times fixed, a send and a read take the sums of their paths, hit or miss.

The engines draw from different random streams and share no code path but the scenario: the DES
is SimPy processes, the calendar a compiled event loop (sim/calendar), the stations engine jobs in
station order (sim/stations; it refuses the shapes in NOT_ON_STATIONS, each in one line). A bug in either that
moves time (the calendar once added a service's per-member time to the Redis visit after it; the
DES once crashed on a gateway no flow calls) shows here as a mean or a maximum off the sum.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import load_scenario, simulate
from sim.engines import ENGINES

ROOT = Path(__file__).resolve().parent.parent
DESIGN = """
name: exact-shapes
seed: 1
duration_s: 12
warmup_s: 2
network:
  hop_ms: {dist: deterministic, value: 0.1}
keys:
  user: {count: 100000, zipf_s: 0.0, value_bytes: {dist: deterministic, value: 100}}
  item: {count: 100000, zipf_s: 0.0, value_bytes: {dist: deterministic, value: 100}}
components:
  gw:   # called by one shape only: an idle gateway must not stop the others
    kind: gateway
    instances: 2
    workers: 64
    instance_type: m6i.2xlarge
    service_ms: {dist: deterministic, value: 0.2}
  api:
    kind: service
    instances: 2
    workers: 64
    instance_type: m6i.2xlarge
    ops:
      a: {dist: deterministic, value: 0.5}
      m: {service_ms: {dist: deterministic, value: 0.4}, per_member_ms: 0.3}
  worker:
    kind: service
    instances: 2
    workers: 64
    instance_type: m6i.2xlarge
    ops:
      w: {dist: deterministic, value: 0.3}
      c: {service_ms: {dist: deterministic, value: 0.6}, per_member_ms: 0.2}
  r:
    kind: redis
    shards: 64
    instance_type: cache.r6g.large
    memory_gb_per_shard: 13.07
    service_ms: {dist: deterministic, value: 0.02}
  hit:
    kind: redis
    shards: 64
    instance_type: cache.r6g.large
    memory_gb_per_shard: 13.07
    hit_ratio: 1.0
    service_ms: {dist: deterministic, value: 0.03}
  miss:
    kind: redis
    shards: 64
    instance_type: cache.r6g.large
    memory_gb_per_shard: 13.07
    hit_ratio: 0.0
    service_ms: {dist: deterministic, value: 0.04}
  cas:
    kind: cassandra
    nodes: 12
    workers: 64
    instance_type: i4i.2xlarge
    replication_factor: 3
    write_service_ms: {dist: deterministic, value: 0.35}
    read_service_ms: {dist: deterministic, value: 1.0}
  k:
    kind: kafka
    brokers: 3
    partitions: 12
    replication_factor: 3
    acks: all
    retention_hours: 24
    instance_type: kafka.m5.large
    append_ms: {dist: deterministic, value: 0.05}
flows: {}
"""


def _members(n: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"fan_out": {"members": {"dist": "deterministic", "value": n}, "key": "item", "steps": steps}}


CAS_ONE = {"call": "cas.read", "consistency": "ONE"}
THREE_BRANCHES = [{"call": "r.get"}, {"call": "worker.w"}, CAS_ONE]  # 0.12, 0.4 and 1.1 ms
# shape: (steps, the latency in ms by the rules above, as a sum of the path)
SHAPES: dict[str, tuple[list[dict[str, Any]], float]] = {
    "sequence": ([{"call": "gw"}, {"call": "api.a"}, {"call": "r.get"}], 0.3 + 0.2 + 0.5 + 0.02),
    "per_member_time_then_a_call": (
        [{"call": "api.m"}, {"call": "r.get"}, _members(4, [{"call": "worker.w"}])],
        (0.1 + 0.4 + 4 * 0.3) + 0.12 + 0.4),
    "fan_out_then_a_call": (
        [{"call": "api.a"}, _members(3, [{"call": "worker.w"}, {"call": "api.a"}]), {"call": "r.set"}],
        0.6 + (0.4 + 0.6) + 0.12),
    "parallel_all": (
        [{"call": "api.a"}, {"parallel": {"join": "all", "steps": [{"call": "r.get"}, {"call": "worker.w"},
                                                                   CAS_ONE]}},
         {"call": "r.set"}],
        0.6 + max(0.12, 0.4, 1.1) + 0.12),
    "parallel_joined_by_name": (
        [{"call": "api.a"}, {"parallel": {"join": ["fast"], "steps": [{"name": "fast", "call": "r.get"},
                                                                      {"name": "slow", "call": "worker.w"}]}},
         {"call": "r.set"}],
        0.6 + 0.12 + 0.12),
    "parallel_first_of_three": (
        [{"call": "api.a"}, {"parallel": {"join": 1, "steps": THREE_BRANCHES}}],
        0.6 + 0.12),
    "parallel_first_two_of_three": (
        [{"call": "api.a"}, {"parallel": {"join": 2, "steps": THREE_BRANCHES}}],
        0.6 + 0.4),
    "cache_hit": ([{"call": "api.a"}, {"cache": {"on": "hit", "miss": [CAS_ONE], "fill": True}}], 0.6 + 0.13),
    "cache_miss_filled": (
        [{"call": "api.a"}, {"cache": {"on": "miss", "miss": [CAS_ONE], "fill": True}}, {"call": "r.get"}],
        0.6 + 0.14 + 1.1 + 0.12),
    "cache_miss_two_steps": (
        [{"call": "api.a"}, {"cache": {"on": "miss", "fill": False, "miss": [
            {"call": "worker.w"}, {"call": "cas.read", "consistency": "QUORUM"}]}}],
        0.6 + 0.14 + 0.4 + 1.1),
    "cache_lookup_of_a_new_key_misses": (  # a fresh key was never cached, whatever the hit ratio
        [{"call": "api.a"}, {"cache": {"on": "hit", "miss": [CAS_ONE], "fill": True}}],
        0.6 + 0.13 + 1.1),
    "cassandra_read_two": ([{"call": "cas.read", "consistency": "TWO"}, {"call": "r.get"}], 1.1 + 0.12),
    "cassandra_write_quorum": ([{"call": "api.a"}, {"call": "cas.write", "consistency": "QUORUM"}],
                               0.6 + 0.45),
    "cassandra_write_all": ([{"call": "cas.write", "consistency": "ALL"}, {"call": "api.a"}], 0.45 + 0.6),
    "cassandra_read_all": ([{"call": "cas.read", "consistency": "ALL"}], 1.1),
    "cassandra_write_one": ([{"call": "cas.write", "consistency": "ONE"}, {"call": "r.append"}], 0.45 + 0.12),
    "nested": (
        [{"call": "api.a"}, {"parallel": {"join": "all", "steps": [
            _members(2, [{"parallel": {"join": "all", "steps": [{"call": "r.get"}, CAS_ONE]}}]),
            {"call": "worker.w"}]}}],
        0.6 + max(max(0.12, 1.1), 0.4)),
    "produce": ([{"call": "api.a"}, {"produce": {"on": "k", "then": "consumed"}}, {"call": "r.set"}],
                0.6 + 0.3 + 0.12),
}
FLOW_KEY = {"cache_lookup_of_a_new_key_misses": "user.new"}  # else "user"
CONSUMED = {"key": "user", "consumer": {"on": "worker", "op": "c", "max_in_flight": 64},
            "steps": [{"call": "r.get"}, _members(3, [{"call": "api.a"}])]}
CONSUMED_MS = 0.6 + 0.3 + (0.1 + 0.6 + 3 * 0.2) + 0.12 + 0.6  # from the producer's start


def _save(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _design(tmp_path: Path, steps: list[dict[str, Any]], key: str = "user", rate: float = 20,
            kafka: bool = True, **sections: Any) -> Path:
    """DESIGN with flow `f` (`rate` a second, keyed by `key`) running `steps`; `sections` replace or
    add top-level sections (policies, faults) or flows; without its Kafka component if not `kafka`
    (the stations engine refuses one even when no flow produces to it)."""
    doc = yaml.safe_load(DESIGN)
    if not kafka:
        del doc["components"]["k"]
    doc["flows"]["f"] = {"rate_per_sec": rate, "key": key, "steps": copy.deepcopy(steps)}
    for name, value in sections.items():
        if name == "flows":
            doc["flows"].update(copy.deepcopy(value))
        else:
            doc[name] = value
    return _save(tmp_path, doc)


def _every_request_takes(lat: dict[str, float], ms: float) -> None:
    assert lat["mean"] == pytest.approx(ms, abs=1e-6), (lat["mean"], ms)
    assert lat["max"] == pytest.approx(ms, abs=1e-6), (lat["max"], ms)


# shapes the stations engine refuses: a flow that calls a component again after a later one (api,
# worker, api; r, then worker, then r) breaks the one order its chunks run components in; Kafka
NOT_ON_STATIONS = {"fan_out_then_a_call": "a cycle", "parallel_all": "a cycle",
                   "parallel_joined_by_name": "a cycle", "produce": "a kafka component"}


@pytest.mark.parametrize(("shape", "engine"), [
    (shape, engine) for engine in ("des", "calendar", "stations") for shape in SHAPES
    if not (engine == "stations" and shape in NOT_ON_STATIONS)])
def test_every_request_takes_the_sum_of_its_path(shape: str, engine: str, tmp_path: Path) -> None:
    flows = {"flows": {"consumed": CONSUMED}} if shape == "produce" else {}
    path = _design(tmp_path, SHAPES[shape][0], key=FLOW_KEY.get(shape, "user"), kafka=shape == "produce",
                   **flows)
    s = simulate(load_scenario(path, []), engine=engine).summary
    expected = {"f": SHAPES[shape][1]} | ({"consumed": CONSUMED_MS} if shape == "produce" else {})
    assert set(s["latency_ms"]) == set(expected)
    for flow, ms in expected.items():
        lat = s["latency_ms"][flow]
        assert lat["count"] >= 150  # ~200 requests after the warm-up, every one answered
        assert s["availability"][flow] == 1.0
        _every_request_takes(lat, ms)


@pytest.mark.parametrize("shape", list(NOT_ON_STATIONS))
def test_the_stations_engine_refuses_the_other_shapes_in_one_line(shape: str, tmp_path: Path) -> None:
    flows = {"flows": {"consumed": CONSUMED}} if shape == "produce" else {}
    path = _design(tmp_path, SHAPES[shape][0], kafka=shape == "produce", **flows)
    problems = ENGINES["stations"].supports(load_scenario(path, []))
    assert problems and NOT_ON_STATIONS[shape] in str(problems[0]), problems


@pytest.mark.parametrize("engine", ["des", "calendar"])
def test_retries_exhaust_exactly_when_every_attempt_times_out(engine: str, tmp_path: Path) -> None:
    """The worker slowed tenfold (3 ms) for the whole run under a 1 ms timeout: each call makes its 3
    attempts, each times out, and the request fails with the timeout."""
    path = _design(
        tmp_path, [{"call": "api.a"}, {"call": "worker.w"}],
        policies={"api->worker": {"timeout_ms": 1, "retry": {"max_attempts": 3, "backoff_ms": 0.5,
                                                             "multiplier": 2, "jitter": False}}},
        faults=[{"kind": "slow", "component": "worker", "nodes": [0, 1], "factor": 10, "start_s": 0,
                 "duration_s": 12}])
    s = simulate(load_scenario(path, []), engine=engine).summary
    edge = s["resilience"]["edges"]["api->worker"]
    assert edge["calls"] >= 150
    assert edge["retries"] == 2 * edge["calls"] and edge["timeouts"] == 3 * edge["calls"]
    assert s["availability"]["f"] == 0.0 and s["latency_ms"]["f"]["count"] == 0
    assert list(s["errors"]) == ["f:worker.timeout"]


@pytest.mark.parametrize("engine", ["des", "calendar"])
@pytest.mark.parametrize("hedge_after_ms", [0.5, 2.0])
def test_a_hedge_goes_out_exactly_when_the_read_outlasts_it(hedge_after_ms: float, engine: str,
                                                           tmp_path: Path) -> None:
    """A 1 ms read hedged after 0.5 ms: every read sends its hedge, and the first replica still answers
    first (0.6 + 1.1 ms); hedged after 2 ms: none is sent."""
    path = _design(tmp_path, [{"call": "api.a"}, CAS_ONE],
                   policies={"api->cas": {"hedge_after_ms": hedge_after_ms}})
    s = simulate(load_scenario(path, []), engine=engine).summary
    _every_request_takes(s["latency_ms"]["f"], 0.6 + 1.1)
    calls = s["resilience"]["edges"]["api->cas"]["calls"]
    assert calls >= 150
    assert s["resilience"]["cassandra"]["hedged_reads"] == (calls if hedge_after_ms < 1.0 else 0)



@pytest.mark.parametrize("engine", ["des", "calendar"])
@pytest.mark.parametrize("hit_ratio", [1.0, 0.0])
def test_the_messaging_presets_send_and_read_take_the_sum_of_their_paths(hit_ratio: float, engine: str,
                                                                         tmp_path: Path) -> None:
    """interview-small with every time fixed and 10 sends and 10 reads a second. A send: the gateway
    (0.1 + 0.3 ms), the message service (0.1 + 0.5), then Cassandra at QUORUM (0.1 + 0.35), Redis
    (0.1 + 0.02) and Kafka at acks=all (0.3) at once, answered by the slowest (ack_after all three):
    1.45 ms. A read: the gateway, the message service's read (0.1 + 0.3), the recent messages in Redis
    (0.12); a miss then reads Cassandra at QUORUM (0.1 + 1.0)."""
    doc = yaml.safe_load((ROOT / "scenarios" / "interview-small.yaml").read_text())

    def fixed(ms: float) -> dict[str, Any]:
        return {"dist": "deterministic", "value": ms}

    doc["network"]["hop_ms"] = fixed(0.1)
    doc["workload"].update(group_size=fixed(5), sends_per_sec=10, reads_per_sec=10, message_bytes=fixed(1000))
    doc["gateway"]["service_ms"] = fixed(0.3)
    doc["message_service"].update(send_service_ms=fixed(0.5), read_service_ms=fixed(0.3))
    doc["group_service"]["service_ms"] = fixed(0.5)
    doc["cassandra"].update(write_service_ms=fixed(0.35), read_service_ms=fixed(1.0))
    doc["redis"].update(service_ms=fixed(0.02), shards=64, hit_ratio=hit_ratio)
    doc["kafka"]["append_ms"] = fixed(0.05)
    s = simulate(load_scenario(_save(tmp_path, doc), ["duration_s=20", "warmup_s=2"]), engine=engine).summary
    expected = {"send": 0.4 + 0.6 + 0.45, "read": 0.4 + 0.4 + 0.12 + (0.0 if hit_ratio == 1.0 else 1.1)}
    for flow, ms in expected.items():
        lat = s["latency_ms"][flow]
        assert lat["count"] >= 140
        _every_request_takes(lat, ms)


@pytest.mark.parametrize("engine", ["des", "calendar"])
def test_a_gateways_token_bucket_admits_its_rate_and_its_burst(engine: str, tmp_path: Path) -> None:
    """One user sending 200 requests a second through a gateway that allows it 20 a second with a
    burst of 5: the bucket starts full and is emptied at once, so over the 12 s run it admits its
    burst plus 20 a second, 245 (244 when the last token is still filling at the end), and in the
    10 measured seconds 200 (±1 at the window's edges), whatever the arrivals; all others are
    refused as rate-limited."""
    doc = yaml.safe_load(DESIGN)
    one = {"count": 1, "zipf_s": 0.0, "value_bytes": {"dist": "deterministic", "value": 100}}
    keys = doc["keys"] | {"one": one}
    components = doc["components"]
    components["gw"]["rate_limit"] = {"per_user_per_sec": 20, "burst": 5}
    path = _design(tmp_path, [{"call": "gw"}, {"call": "api.a"}], key="one", rate=200, keys=keys,
                   components=components)
    s = simulate(load_scenario(path, []), engine=engine).summary
    assert s["requests"]["f"]["sent"] > 2000  # ~2,400 offered: the bucket is always the limit
    assert 5 + 20 * 12 - 1 <= s["requests"]["f"]["succeeded"] <= 5 + 20 * 12
    assert abs(s["latency_ms"]["f"]["count"] - 20 * 10) <= 1
    assert list(s["errors"]) == ["f:gw.rate_limited"]
