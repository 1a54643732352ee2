"""Redis Cluster: 16,384 hash slots in contiguous ranges over the shards, one thread per shard.

Whether a read finds a conversation's recent list comes from the cache model (sim/cache.py):
each conversation is in the cache with its own probability, so hot conversations hit and cold
ones miss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from sim.cache import CacheModel
from sim.des.station import Done, Fleet, call
from sim.distributions import Draw, sampler, uniforms
from sim.scenario import Redis
from sim.workload import hash_keys

SLOTS = 16384


class RedisCluster:
    def __init__(self, env: simpy.Environment, cfg: Redis, shards: int, cache: CacheModel,
                 hop_ms: Draw, rng: np.random.Generator, name: str = "redis") -> None:
        self.env = env
        self.fleet = Fleet(env, name, shards, cfg.workers, cfg.queue_limit)
        self.cache = cache
        self.hop_ms = hop_ms
        streams = rng.spawn(2)
        self.service_ms = sampler(cfg.service_ms, streams[0], scale=1e-3)
        self._uniform = uniforms(streams[1])
        self._hit_p = memoryview(np.ascontiguousarray(cache.hit_probability, dtype=np.float64))
        self.conv_shard: memoryview | None = None  # set by the engine: the cached key space's shards
        self.cold: dict[int, set[int]] = {}  # shard -> keys refilled since it came back
        self.hits = 0  # cumulative over the run
        self.misses = 0

    def shards_of(self, keys: np.ndarray, salt: int = 3) -> np.ndarray:
        slots = hash_keys(keys, salt=salt) % np.uint64(SLOTS)
        return (slots.astype(np.int64) * len(self.fleet.stations) // SLOTS).astype(np.int32)

    def command(self, shard: int, fn: Done, ctx: Any) -> None:
        """One command (GET, RPUSH+LTRIM, SET) on `shard`; fn(ctx, error) on reply."""
        call(self.env, self.hop_ms(), self.fleet.stations[shard], self.service_ms(), fn, ctx)

    def is_hit(self, conv: int) -> bool:
        hit = self._uniform() < self._hit_p[conv]
        if hit and self.cold and self.conv_shard is not None:
            refilled = self.cold.get(self.conv_shard[conv])
            if refilled is not None and conv not in refilled:
                hit = False  # the shard restarted empty and this list was not refilled yet
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        return hit

    def filled(self, conv: int) -> None:
        """A read miss refilled the conversation's list."""
        if self.cold and self.conv_shard is not None:
            refilled = self.cold.get(self.conv_shard[conv])
            if refilled is not None:
                refilled.add(conv)

    def restarted_empty(self, shard: int) -> None:
        self.cold[shard] = set()
