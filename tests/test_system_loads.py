"""A design's load by its traffic equations (sim/system/loads.py), and what the cell, the budget and
the M/M/c estimates make of it: every expected figure here is worked by hand from the design."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest

from sim.analytic import offered_loads
from sim.cache import lru_cache_model
from sim.distributions import mean_of
from sim.loading import load_scenario, validate_scenario
from sim.scenario import Scenario
from sim.system.compile import messaging_system, system_of
from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES, che_hit_ratio
from sim.system.loads import (
    cache_capacity_keys,
    cell_top_key_share,
    design_loads,
    hot_key_visits,
    top_key_share,
)

GIB = 2**30

TINY: dict[str, Any] = {
    "name": "tiny-shortener", "duration_s": 5, "warmup_s": 1,
    "keys": {"link": {"count": 1_000_000, "zipf_s": 1.0,
                      "value_bytes": {"dist": "deterministic", "value": 500}}},
    "components": {
        "edge": {"kind": "gateway", "instances": 4, "workers": 8,
                 "service_ms": {"dist": "lognormal", "mean": 0.3, "p99": 2}},
        "api": {"kind": "service", "instances": 4, "workers": 8,
                "ops": {"resolve": {"dist": "exponential", "mean": 0.2},
                        "shorten": {"dist": "exponential", "mean": 0.5}}},
        "cache": {"kind": "redis", "shards": 2, "memory_gb_per_shard": 1},
        "links": {"kind": "cassandra", "nodes": 6, "replication_factor": 3},
    },
    "flows": {
        "resolve": {"rate_per_sec": 20_000, "key": "link", "steps": [
            {"call": "edge"}, {"call": "api.resolve"},
            {"cache": {"on": "cache", "miss": [{"call": "links.read", "consistency": "ONE"}],
                       "fill": True}}]},
        "shorten": {"rate_per_sec": 200, "key": "link.new", "steps": [
            {"call": "edge"}, {"call": "api.shorten"},
            {"parallel": {"join": "all", "steps": [{"call": "links.write", "consistency": "QUORUM"},
                                                   {"call": "cache.set"}]}}]},
    },
}


def design(**changes: Any) -> Scenario:
    raw = copy.deepcopy(TINY)
    for path, value in changes.items():
        *head, last = path.split("__")
        at = raw
        for part in head:
            at = at[int(part)] if part.isdigit() else at[part]
        if isinstance(at, list):
            at[int(last):int(last) + 1] = [value]  # replace step i, or append at i == len
        else:
            at[last] = value
    return validate_scenario(raw)


# -- traffic equations ----------------------------------------------------------------------------
def test_hand_computed_design() -> None:
    """rate x visits at every component, with the cache's hit ratio given (0.9)."""
    loads = design_loads(system_of(design()), hit_ratios={"cache": 0.9})
    ops = {c: {op: (r.per_sec, r.service_ms) for op, r in by_op.items()} for c, by_op in loads.ops.items()}
    assert ops["edge"] == {"admit": pytest.approx((20_200, 0.3))}
    assert ops["api"] == {"resolve": pytest.approx((20_000, 0.2)), "shorten": pytest.approx((200, 0.5))}
    # one get per resolve; a set per shorten plus a fill per miss (20,000 x 0.1)
    assert ops["cache"] == {"get": pytest.approx((20_000, 0.02)), "set": pytest.approx((200 + 2_000, 0.02))}
    # a miss reads ONE replica; a write goes to all 3 replicas whatever its consistency
    assert ops["links"] == {"read": pytest.approx((2_000, 1.0)), "write": pytest.approx((600, 0.35))}
    links = loads.loads["links"]
    assert (links.instances, links.servers, links.ops_per_sec) == (6, 8, pytest.approx(2_600))
    assert links.service_ms == pytest.approx((2_000 * 1.0 + 600 * 0.35) / 2_600)
    assert loads.loads["api"].service_ms == pytest.approx((20_000 * 0.2 + 200 * 0.5) / 20_200)
    assert loads.hit_ratios == {"cache": 0.9}
    assert loads.flow_rates == {"resolve": 20_000, "shorten": 200}


def test_cache_flow_database_load_is_rate_times_miss_ratio() -> None:
    """A cache too small for the space: Che's hit ratio h (keys.che_hit_ratio over the capacity in
    keys) sets the database reads to rate x (1 - h) x the replicas the level asks."""
    sc = design(components__cache__memory_gb_per_shard=0.05,
                flows__resolve__steps__2__cache__miss__0__consistency="QUORUM")
    capacity = 2 * 0.05 * 0.75 * GIB / (500 + CACHE_ENTRY_OVERHEAD_BYTES)
    h = che_hit_ratio(1_000_000, 1.0, capacity)
    assert 0.5 < h < 0.95  # the cache holds ~14% of the keys: a real miss ratio
    loads = design_loads(system_of(sc))
    assert loads.hit_ratios["cache"] == pytest.approx(h, rel=1e-12)
    assert loads.ops["links"]["read"].per_sec == pytest.approx(20_000 * (1 - h) * 2)  # QUORUM of 3
    assert loads.ops["cache"]["set"].per_sec == pytest.approx(200 + 20_000 * (1 - h))


def test_a_fixed_hit_ratio_wins_over_che() -> None:
    loads = design_loads(system_of(design(components__cache__hit_ratio=0.25)))
    assert loads.hit_ratios == {"cache": 0.25}
    assert loads.ops["links"]["read"].per_sec == pytest.approx(20_000 * 0.75)
    # a run's realised ratio wins over the scenario's
    assert design_loads(system_of(design(components__cache__hit_ratio=0.25)),
                        {"cache": 0.5}).ops["links"]["read"].per_sec == pytest.approx(10_000)


def test_fan_out_multiplies_by_the_mean_members() -> None:
    """A post fanned out to followers: every member's write, and the service's per-member time."""
    members = {"dist": "lognormal", "mean": 8, "p99": 100}
    sc = design(
        keys__user={"count": 10_000, "zipf_s": 0.5},
        components__api__ops__post={"service_ms": {"dist": "deterministic", "value": 0.4},
                                    "per_member_ms": 0.05},
        flows={"post": {"rate_per_sec": 1_000, "key": "user", "steps": [
            {"call": "api.post"},
            {"fan_out": {"members": members, "key": "user",
                         "steps": [{"call": "links.write"}, {"call": "cache.append"}]}}]}},
    )
    loads = design_loads(system_of(sc))
    assert mean_of(system_of(sc).flows["post"].steps[1].members) == 8  # type: ignore[union-attr]
    assert loads.ops["links"]["write"].per_sec == pytest.approx(1_000 * 8 * 3)
    assert loads.ops["cache"]["append"].per_sec == pytest.approx(1_000 * 8)
    assert loads.ops["api"]["post"] == pytest.approx(type(loads.ops["api"]["post"])(1_000, 0.4 + 0.05 * 8))


def test_a_produce_feeds_its_triggered_flow() -> None:
    """post -> kafka (RF appends) -> deliver, consumed once per record, fanned out to 5 members."""
    sc = design(
        keys__user={"count": 10_000, "zipf_s": 0.0},
        components__stream={"kind": "kafka", "brokers": 3, "partitions": 12, "replication_factor": 2},
        components__worker={"kind": "service", "instances": 2, "workers": 4,
                            "ops": {"deliver": {"service_ms": 0.5, "per_member_ms": 0.1}}},
        flows={
            "post": {"rate_per_sec": 300, "key": "user", "steps": [
                {"call": "api.shorten"}, {"produce": {"on": "stream", "then": "deliver"}}]},
            "deliver": {"key": "user", "consumer": {"on": "worker", "op": "deliver"}, "steps": [
                {"fan_out": {"members": 5, "key": "user", "steps": [{"call": "cache.append"}]}}]},
        },
    )
    loads = design_loads(system_of(sc))
    assert loads.flow_rates == {"post": 300, "deliver": 300}
    assert loads.ops["stream"]["produce"].per_sec == pytest.approx(300 * 2)  # leader + 1 follower
    assert loads.ops["worker"]["deliver"].per_sec == pytest.approx(300)
    assert loads.ops["worker"]["deliver"].service_ms == pytest.approx(0.5 + 0.1 * 5)
    assert loads.ops["cache"]["append"].per_sec == pytest.approx(300 * 5)
    assert loads.loads["stream"].instances == 3


def test_one_redis_over_two_spaces_splits_its_memory_by_lookups() -> None:
    """A design caches one key space per redis (compile refuses more); a System built otherwise
    with two spaces on one redis shares its memory by lookups."""
    sc = design(
        components__cache__memory_gb_per_shard=0.05,
        components__other={"kind": "redis", "shards": 1},
        keys__user={"count": 200_000, "zipf_s": 0.8, "value_bytes": 2_000},
        flows__profile={"rate_per_sec": 60_000, "key": "user", "steps": [
            {"cache": {"on": "other", "miss": [{"call": "links.read"}]}}]},
    )
    system = system_of(sc)
    profile = system.flows["profile"]
    system.flows["profile"] = dataclasses.replace(
        profile, steps=(dataclasses.replace(profile.steps[0], component="cache"),))
    loads = design_loads(system)
    assert set(loads.hit_ratios) == {"cache"}
    redis = system.components["cache"]
    share_link, share_user = 20_000 / 80_000, 60_000 / 80_000
    h_link = che_hit_ratio(1_000_000, 1.0, cache_capacity_keys(redis, 500, share_link))
    h_user = che_hit_ratio(200_000, 0.8, cache_capacity_keys(redis, 2_000, share_user))
    assert h_link != pytest.approx(h_user, abs=0.01)
    assert loads.hit_ratios["cache"] == pytest.approx(share_link * h_link + share_user * h_user, rel=1e-9)
    quorum = 2
    assert loads.ops["links"]["read"].per_sec == pytest.approx(
        20_000 * (1 - h_link) * 1 + 60_000 * (1 - h_user) * quorum)


def _zipf(n: int, s: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return w / w.sum()


@pytest.mark.parametrize(("count", "zipf_s", "capacity", "tolerance"), [
    (2_000, 0.8, 300, 1e-9),  # every rank its own bin: the same equation as the per-key sum
    (400_000, 1.0, 20_000, 1e-4),  # log-spaced bins past 10,000 ranks (keys.py: within ~1e-4)
])
def test_che_over_rank_bins_matches_the_per_key_sum(count: int, zipf_s: float, capacity: float,
                                                    tolerance: float) -> None:
    brute = lru_cache_model(_zipf(count, zipf_s), capacity * 100.0, 100.0).hit_ratio
    assert 0.05 < brute < 0.95
    assert che_hit_ratio(count, zipf_s, capacity) == pytest.approx(brute, abs=tolerance)


def test_design_hit_ratio_is_the_per_key_che_of_its_memory() -> None:
    sc = design(keys__link__count=2_000, keys__link__zipf_s=0.8, components__cache__memory_gb_per_shard=1e-4)
    capacity_bytes = 2 * 1e-4 * 0.75 * GIB
    brute = lru_cache_model(_zipf(2_000, 0.8), capacity_bytes, 500 + CACHE_ENTRY_OVERHEAD_BYTES).hit_ratio
    assert 0.05 < brute < 0.95
    assert design_loads(system_of(sc)).hit_ratios["cache"] == pytest.approx(brute, abs=1e-9)


def test_messaging_system_has_the_loads_of_offered_loads() -> None:
    """The messaging sections compiled into flows give sim.analytic's loads, component by component."""
    sc = load_scenario("scenarios/interview-small.yaml")
    expected = offered_loads(sc, recipients=2.5, hit_ratio=0.8, lookups_per_read=1.0)
    got = design_loads(messaging_system(sc), hit_ratios={"redis": 0.8},
                       relation_members={"conversation_members": 2.5, "user_conversations": 1.0})
    assert set(got.loads) == set(expected.loads)
    for name, load in expected.loads.items():
        mine = got.loads[name]
        assert (mine.instances, mine.servers) == (load.instances, load.servers), name
        assert mine.ops_per_sec == pytest.approx(load.ops_per_sec, rel=1e-12), name
        assert mine.service_ms == pytest.approx(load.service_ms, rel=1e-12), name


# -- the most popular key -----------------------------------------------------------------------------
def test_top_key_share_is_rank_one_of_zipf() -> None:
    assert top_key_share(1_000, 1.0) == pytest.approx(1 / np.sum(1 / np.arange(1, 1_001)), rel=1e-12)
    assert top_key_share(1_000, 0.0) == pytest.approx(1e-3)
    # the cell's busiest key: sim.workload.zipf_cell_weights' first weight
    from sim.workload import cell_size, zipf_cell_weights

    n = cell_size(1_000_000, 0.01)
    first = zipf_cell_weights(n, 1.0, 0.01)[0]
    assert cell_top_key_share(1_000_000, 1.0, 0.01) == pytest.approx(first, rel=1e-12)


def test_hot_key_visits_by_hand() -> None:
    """The hottest link at a fixed 50% hit ratio: every resolve step x p0; its misses read ONE replica."""
    sc = design(components__cache__hit_ratio=0.5)
    p0 = top_key_share(1_000_000, 1.0)
    visits = {(v.component, v.op): v.per_sec for v in hot_key_visits(system_of(sc), "link")}
    assert visits == {  # shorten's links are fresh keys: none of its steps is the hot key's
        ("edge", "admit"): pytest.approx(20_000 * p0), ("api", "resolve"): pytest.approx(20_000 * p0),
        ("cache", "get"): pytest.approx(20_000 * p0), ("links", "read"): pytest.approx(10_000 * p0),
        ("cache", "set"): pytest.approx(10_000 * p0)}


def test_a_hot_key_under_che_nearly_always_hits() -> None:
    sc = design(components__cache__memory_gb_per_shard=0.05)
    visits = {(v.component, v.op): v.per_sec for v in hot_key_visits(system_of(sc), "link")}
    p0 = top_key_share(1_000_000, 1.0)
    assert visits[("cache", "get")] == pytest.approx(20_000 * p0)
    assert visits[("links", "read")] < 1e-6 * 20_000 * p0  # Che: 1 - exp(-p0 T), T >> 1/p0


# -- the sample cell, its hot-key warnings, the budget and the M/M/c estimates of a design ------------
def with_stream(**changes: Any) -> Scenario:
    stream = {"kind": "kafka", "brokers": 3, "partitions": 12, "replication_factor": 2}
    produce = {"produce": {"on": "stream"}}
    return design(components__stream=stream, flows__shorten__steps__3=produce, **changes)


def test_design_cell_scales_every_component_like_a_fleet() -> None:
    from sim.sampling import make_cell

    cell = make_cell(with_stream(sample=0.5))
    sizes = {name: (f.configured, f.simulated) for name, f in cell.fleets.items()}
    assert sizes == {"edge": (4, 2), "api": (4, 2), "cache": (2, 1), "links": (6, 3), "stream": (3, 2),
                     "stream_partitions": (12, 6)}
    assert make_cell(with_stream(sample=0.1)).fleets["links"].simulated == 3  # replication_factor 3
    assert make_cell(with_stream(sample=0.1)).fleets["stream"].simulated == 2  # replication_factor 2
    # no messaging population or rates: the design's own flows instead
    assert (cell.users, cell.conversations, cell.sends_per_sec, cell.reads_per_sec) == (0, 0, 0.0, 0.0)
    assert cell.flow_rates == {"resolve": 10_000, "shorten": 100}


def test_design_hot_key_warning_by_hand() -> None:
    """The hottest of 1,000 links (Zipf 1: p0 = 1/H_1000) at 20k resolves/s, a fixed 50% hit ratio:
    its shard serves a get per resolve and a fill per miss; one of its 3 replicas a third of the
    ONE-replica reads of its misses."""
    from sim.hotkeys import WARN_SHARE
    from sim.sampling import make_cell, sample_block

    sc = design(sample=0.1, keys__link__count=1_000, components__cache__hit_ratio=0.5)
    block = sample_block(sc, make_cell(sc))
    hot = [w for w in block["warnings"] if w["kind"] == "hot_key"]  # type: ignore[union-attr, index]
    assert len(hot) == 1 and hot[0]["key"] == "link"
    p0 = 1 / np.sum(1 / np.arange(1, 1_001))
    full = 20_000 * p0
    assert hot[0]["full_per_sec"] == pytest.approx(full)
    shard, replica = hot[0]["instances"]
    assert shard["ops_per_sec"] == pytest.approx(full * 1.5)
    assert shard["share"] == pytest.approx(full * 1.5 * 0.02 / 1e3 / 1)  # one thread
    assert replica["ops_per_sec"] == pytest.approx(full * 0.5 / 3)
    assert replica["share"] == pytest.approx(full * 0.5 / 3 * 1.0 / 1e3 / 8)
    level = "bad" if shard["share"] >= 1 else "warn" if shard["share"] >= WARN_SHARE else "info"
    assert hot[0]["level"] == level
    # the cell's busiest link: the first bin of 10 ranks, at the cell's rate
    assert hot[0]["cell_per_sec"] == pytest.approx(2_000 * p0 * np.sum(1 / np.arange(1, 11)))
    assert "conversation" not in str(block["warnings"])


def test_key_weights_are_kept_between_calls_only_for_small_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's key weights are reused by the next run in the process (a replication, a sweep point)
    up to CACHED_KEYS keys; a larger space's (up to 1.6 GB) are not held once its run is done."""
    from sim.system import keys

    monkeypatch.setattr(keys, "CACHED_KEYS", 1_000)
    small = keys.cell_weights(1_000, 1.0, 1.0)
    assert keys.cell_weights(1_000, 1.0, 1.0) is small
    assert small.sum() == pytest.approx(1.0)
    assert small[0] == pytest.approx(1 / np.sum(1 / np.arange(1, 1_001)))  # Zipf 1: 1 / H_1000
    n = keys.CACHED_KEYS + 1
    big = keys.cell_weights(n, 0.0, 1.0)
    assert big.size == n and keys.cell_weights(n, 0.0, 1.0) is not big
    assert big[0] == big[-1] == 1.0 / n


def test_a_hot_key_note_does_not_send_to_a_full_scale_that_is_refused() -> None:
    """A cell's hot-key warning names --sample 1 as the run that shows the key, unless the design
    has a key space over the bound a run may hold: then it says full scale cannot run, and why."""
    from sim.sampling import make_cell, sample_block
    from sim.system.keys import MAX_CELL_KEYS

    def note(count: int) -> str:
        sc = design(sample=0.01, keys__link__count=count, components__cache__hit_ratio=0.5)
        hot = [w for w in sample_block(sc, make_cell(sc))["warnings"] if w["kind"] == "hot_key"]
        assert len(hot) == 1
        return str(hot[0]["text"])

    assert note(1_000_000).endswith("so only --sample 1 shows it")
    big = note(MAX_CELL_KEYS + 1)
    assert "--sample 1" not in big
    assert big.endswith(f"and only full scale would show it, which cannot run "
                        f"({MAX_CELL_KEYS + 1:,} link keys, over the {MAX_CELL_KEYS:,} a run may hold)")


def test_a_hot_partition_and_its_consumer() -> None:
    """A triggered flow's records of the hottest key go to one partition, drained by one consumer."""
    sc = design(
        sample=0.1, keys__user={"count": 100, "zipf_s": 0.0},
        components__stream={"kind": "kafka", "brokers": 3, "partitions": 12, "replication_factor": 3},
        components__worker={"kind": "service", "instances": 2, "workers": 4,
                            "ops": {"deliver": {"service_ms": 2.0}}},
        flows={"post": {"rate_per_sec": 5_000, "key": "user",
                        "steps": [{"produce": {"on": "stream", "then": "d"}}]},
               "d": {"key": "user", "consumer": {"on": "worker", "max_in_flight": 2},
                     "steps": [{"call": "cache.append"}]}})
    from sim.sampling import make_cell, sample_block

    hot = [w for w in sample_block(sc, make_cell(sc))["warnings"]  # type: ignore[union-attr]
           if w["kind"] == "hot_key"]
    per = {i["component"]: i for i in hot[0]["instances"]}
    assert per["stream"]["ops_per_sec"] == pytest.approx(50)  # the leader's appends, 5,000 / 100 keys
    assert per["worker"]["share"] == pytest.approx(50 * 2.0 / 1e3 / 2)  # min(workers, max_in_flight)
    assert per["cache"]["ops_per_sec"] == pytest.approx(50)


def test_design_budget_counts_the_traffic_equations() -> None:
    from sim.budget import estimate

    est = estimate(design(sample=0.5, components__cache__hit_ratio=0.9))
    visits = 20_200 + 20_200 + 22_200 + 2_600  # edge, api, cache (gets, sets, fills), links replicas
    assert est.work[0].amount == pytest.approx(visits * 0.5 * 5)
    assert est.work[0].field == "flows.resolve.rate_per_sec"
    assert est.requests == pytest.approx(20_200 * 0.5 * 5)
    keys = next(t for t in est.memory if t.field == "keys.link.count")
    # a cell key's arrays (sim/budget.py): its cumulative weight, its ring position on the links
    # Cassandra, and the cache's hit probability and weight
    assert keys.amount == 500_000 * (8 + 4 + 16)
    assert "1 x 4 B ring position" in keys.how and "1 x 16 B cache" in keys.how
    limited = estimate(design(sample=0.5, components__edge__rate_limit={"per_user_per_sec": 5, "burst": 10}))
    keys = next(t for t in limited.memory if t.field == "keys.link.count")
    assert keys.amount == 500_000 * (8 + 4 + 16 + 16)  # and the edge's token bucket per key


def test_a_too_big_design_is_refused_in_one_line() -> None:
    from sim.budget import check_budget
    from sim.errors import ScenarioError

    with pytest.raises(ScenarioError) as err:
        check_budget(design(duration_s=100_000, flows__resolve__rate_per_sec=2_000_000))
    assert err.value.where == "flows.resolve.rate_per_sec" and "exceeds the budget" in str(err.value)
    with pytest.raises(ScenarioError) as err:
        check_budget(design(keys__link__count=100_000_000_000), force=True)
    assert err.value.where == "keys.link.count" and "at most 200,000,000" in str(err.value)


def test_design_analytic_uses_design_loads_and_the_realised_hit_ratio() -> None:
    from types import SimpleNamespace

    from sim.result import _analytic
    from sim.sampling import make_cell

    sc = design(sample=0.5)
    state = SimpleNamespace(scenario=sc, cell=make_cell(sc), system=system_of(sc), redis_hits=300,
                            redis_misses=100, mix={})
    est = _analytic(state)  # type: ignore[arg-type]
    assert set(est) == {"edge", "api", "cache", "links"}
    links = (20_000 * 0.25 * 1 + 200 * 3) / 6  # misses read ONE replica; writes all 3
    assert est["links"].ops_per_sec_per_instance == pytest.approx(links)  # 3 of 6 simulated: factor 1
    mean_ms = (20_000 * 0.25 * 1.0 + 600 * 0.35) / (20_000 * 0.25 + 600)
    assert est["links"].utilization == pytest.approx(links * mean_ms / 1e3 / 8)
    factor = make_cell(sc).load_factor("edge")  # 2 of 4 edges at sample 0.5: 1
    assert est["edge"].ops_per_sec_per_instance == pytest.approx(20_200 / 4 * factor)


def test_records_of_fresh_keys_are_not_the_hot_key() -> None:
    """shorten (link.new) produces into index: its records carry fresh links, never the hottest."""
    sc = design(
        components__stream={"kind": "kafka", "brokers": 3, "partitions": 12, "replication_factor": 3},
        components__worker={"kind": "service", "instances": 2, "workers": 4, "ops": {"index": 1.0}},
        flows__shorten__steps__3={"produce": {"on": "stream", "then": "index"}},
        flows__index={"key": "link", "consumer": {"on": "worker"}, "steps": [{"call": "cache.set"}]})
    hot = {(v.flow, v.component) for v in hot_key_visits(system_of(sc), "link")}
    assert ("resolve", "cache") in hot
    assert not {f for f, _ in hot} & {"shorten", "index"}
    assert design_loads(system_of(sc)).flow_rates["index"] == 200
