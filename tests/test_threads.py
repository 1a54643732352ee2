"""Loops split over cores (sim/threads.py) give the same bits whatever the number of threads."""

from __future__ import annotations

import numpy as np
import pytest

from sim.cache import lru_cache_model
from sim.scenario import Workload
from sim.threads import in_parts
from sim.workload import Population

WORKLOAD = Workload(users=3_000, conversations=9_000, group_share=0.3, sends_per_sec=1_000,
                    reads_per_sec=5_000,
                    group_size={"dist": "lognormal", "mean": 6, "p99": 40, "min": 3, "max": 60},
                    hot_conversations=[{"members": 500, "sends_per_sec": 10, "reads_per_sec": 100}])


@pytest.mark.parametrize("n", [0, 1, 5, 1_000])
@pytest.mark.parametrize("threads", [1, 2, 7])
def test_parts_cover_every_index_once(n: int, threads: int) -> None:
    seen = np.zeros(n, np.int64)

    def part(lo: int, hi: int) -> None:
        seen[lo:hi] += 1

    in_parts(n, part, threads)
    assert (seen == 1).all()


@pytest.mark.parametrize("inbox_reads", [False, True])
def test_population_is_the_same_on_any_number_of_threads(inbox_reads: bool) -> None:
    one, many = (Population.build(WORKLOAD, WORKLOAD.users, WORKLOAD.conversations, 1.0,
                                  np.random.default_rng(4), inbox_reads=inbox_reads, threads=k)
                 for k in (1, 3))
    for name in ("user_weights", "send_weights", "read_weights", "send_member_weights", "read_member_weights",
                 "send_member_max", "read_member_max", "inbox_offsets", "inbox_conversations"):
        a, b = getattr(one, name), getattr(many, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    assert np.array_equal(one.conversations.recipients, many.conversations.recipients)
    assert one.lookups_per_read == many.lookups_per_read


def test_cache_model_is_the_same_on_any_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.threads

    weights = np.arange(1, 50_001, dtype=float) ** -0.9
    weights /= weights.sum()
    models = []
    for k in (1, 3):
        monkeypatch.setattr(sim.threads, "usable_cores", lambda k=k: k)
        models.append(lru_cache_model(weights, capacity_bytes=5_000 * 100.0, item_bytes=100.0))
    assert models[0].hit_ratio == models[1].hit_ratio
    assert np.array_equal(models[0].hit_probability, models[1].hit_probability)
