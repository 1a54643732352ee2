"""Component models in isolation: token ring, token buckets, the Che cache model, Kafka acks."""

from __future__ import annotations

import math
from collections import Counter, OrderedDict

import numpy as np
import pytest
import simpy

from sim.cache import che_characteristic_time, lru_cache_model
from sim.des.cassandra import CassandraCluster
from sim.des.gateway import TokenBuckets
from sim.distributions import sampler
from sim.scenario import Cassandra, RateLimit, Scenario, replies_needed
from sim.workload import zipf_cell_weights


def ring(nodes: int, rf: int = 3, vnodes: int = 16) -> CassandraCluster:
    cfg = Cassandra(nodes=nodes, replication_factor=rf, vnodes=vnodes)
    hop = sampler(Scenario().network.hop_ms, np.random.default_rng(0))
    return CassandraCluster(simpy.Environment(), cfg, nodes, hop, np.random.default_rng(1))


@pytest.mark.parametrize("level, rf, k", [("ONE", 3, 1), ("QUORUM", 3, 2), ("ALL", 3, 3),
                                          ("QUORUM", 5, 3), ("QUORUM", 4, 3), ("TWO", 3, 2)])
def test_replies_needed(level: str, rf: int, k: int) -> None:
    assert replies_needed(level, rf) == k


def test_replicas_are_distinct_and_load_is_even() -> None:
    cluster = ring(nodes=12)
    assert all(len({id(s) for s in reps}) == 3 for reps in cluster.replicas)
    positions = cluster.positions(np.arange(300_000), salt=10)
    counts = Counter()
    for pos, n in zip(*np.unique(positions, return_counts=True), strict=True):
        for station in cluster.replicas[pos]:
            counts[station.index] += int(n)
    # each node holds a replica of ~RF/nodes of the keys; even token allocation keeps it within 15%
    share = np.array([counts[i] for i in range(12)]) / 300_000
    assert np.allclose(share, 3 / 12, rtol=0.15), share


def test_token_bucket_admits_the_rate_plus_the_burst() -> None:
    buckets = TokenBuckets(users=2, limit=RateLimit(per_user_per_sec=10, burst=5))
    admitted = sum(buckets.allow(0, t / 100) for t in range(1000))  # 100 req/s for 10 s
    assert admitted == pytest.approx(10 * 10 + 5, abs=1)
    assert buckets.allow(1, 0.0)  # other users are untouched


def lru_hit_ratio(weights: np.ndarray, capacity: int, n_requests: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    warm = n_requests // 5
    for i, item in enumerate(rng.choice(weights.size, n_requests, p=weights).tolist()):
        if item in cache:
            cache.move_to_end(item)
            hits += i >= warm
        else:
            cache[item] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / (n_requests - warm)


@pytest.mark.parametrize("s, capacity", [(0.8, 200), (1.0, 500)])
def test_che_approximation_matches_a_simulated_lru(s: float, capacity: int) -> None:
    weights = zipf_cell_weights(5_000, s, 1.0)
    model = lru_cache_model(weights, capacity_bytes=capacity * 100.0, item_bytes=100.0)
    simulated = lru_hit_ratio(weights, capacity, 300_000, seed=3)
    se = math.sqrt(simulated * (1 - simulated) / 240_000)
    # Che's approximation is not exact; Fricker, Robert & Roberts (2012) find it within a fraction
    # of a percent for Zipf popularity. Allow 0.5 points plus 4 standard errors of the simulation.
    assert abs(model.hit_ratio - simulated) < 0.005 + 4 * se, (model.hit_ratio, simulated)


@pytest.mark.parametrize(
    "weights, capacity",
    [
        (np.arange(1, 100_001, dtype=float) ** -0.9, 500.0),  # unnormalised Zipf, small cache
        (np.arange(1, 100_001, dtype=float) ** -1.2, 99_000.0),  # cache nearly holds everything
        (np.r_[np.full(10, 1.0), np.zeros(5)], 9.5),  # items never read: no finite upper bound
    ],
)
def test_che_characteristic_time_solves_the_fixed_point(weights: np.ndarray, capacity: float) -> None:
    t = che_characteristic_time(weights, capacity)
    assert float(np.sum(-np.expm1(-weights * t))) == pytest.approx(capacity, rel=1e-9)


def test_cache_that_holds_everything_always_hits() -> None:
    weights = zipf_cell_weights(100, 1.0, 1.0)
    assert lru_cache_model(weights, capacity_bytes=1e9, item_bytes=100.0).hit_ratio == pytest.approx(1.0)
    assert lru_cache_model(weights, capacity_bytes=10.0, item_bytes=100.0).hit_ratio == 0.0
