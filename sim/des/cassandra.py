"""Cassandra: a token ring of nodes, RF replicas per key, and coordinators that answer at the
k-th replica reply for the consistency level.

Tokens are allocated evenly (as Cassandra 4's allocator aims to): `vnodes` rounds, each a random
permutation of the nodes, placed at evenly spaced ring positions. A key's replicas are the first
RF distinct nodes clockwise from the first token >= hash(key). Routing is token-aware: the
coordinator is a replica, and its own work is folded into the replica service time.

A write goes to all RF replicas and succeeds at the k-th reply; a read goes to k replicas (from a
random offset among the RF, as a dynamic snitch spreads them) and needs all k. It fails as soon as
k successes are no longer possible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy

from sim.des.station import Done, Fleet, Station, call
from sim.distributions import Draw, sampler, stream
from sim.scenario import Cassandra, replies_needed
from sim.workload import hash_keys


class _Quorum:
    __slots__ = ("ctx", "done", "failures_left", "fn", "successes_left")

    def __init__(self, need: int, asked: int, fn: Done, ctx: Any) -> None:
        self.successes_left = need
        self.failures_left = asked - need
        self.fn = fn
        self.ctx = ctx
        self.done = False


def _reply(q: _Quorum, error: str | None) -> None:
    if q.done:
        return
    if error is None:
        q.successes_left -= 1
        if q.successes_left == 0:
            q.done = True
            q.fn(q.ctx, None)
    else:
        q.failures_left -= 1
        if q.failures_left < 0:
            q.done = True
            q.fn(q.ctx, f"cassandra.{error}")


class CassandraCluster:
    def __init__(self, env: simpy.Environment, cfg: Cassandra, nodes: int, hop_ms: Draw,
                 rng: np.random.Generator) -> None:
        self.env = env
        self.cfg = cfg
        self.fleet = Fleet(env, "cassandra", nodes, cfg.workers, cfg.queue_limit)
        self.rf = cfg.replication_factor
        self.write_k = replies_needed(cfg.write_consistency, self.rf)
        self.read_k = replies_needed(cfg.read_consistency, self.rf)
        self.hop_ms = hop_ms
        streams = rng.spawn(3)
        self.write_ms = sampler(cfg.write_service_ms, streams[0], scale=1e-3)
        self.read_ms = sampler(cfg.read_service_ms, streams[1], scale=1e-3)
        offset_rng, rf = streams[2], self.rf
        self._offset = stream(lambda: offset_rng.integers(0, rf, 4096).tolist())
        n_tokens = nodes * cfg.vnodes
        owners = np.concatenate([streams[2].permutation(nodes) for _ in range(cfg.vnodes)])
        self.tokens = (np.arange(n_tokens, dtype=np.float64) / n_tokens * 2.0**64).astype(np.uint64)
        self.replicas: list[tuple[Station, ...]] = []
        for pos in range(n_tokens):
            chosen: list[int] = []
            j = pos
            while len(chosen) < self.rf:
                node = int(owners[j % n_tokens])
                if node not in chosen:
                    chosen.append(node)
                j += 1
            self.replicas.append(tuple(self.fleet.stations[n] for n in chosen))

    def positions(self, ids: np.ndarray, salt: int) -> np.ndarray:
        """Ring position (index into `replicas`) of each integer key."""
        pos = np.searchsorted(self.tokens, hash_keys(ids, salt), side="left")
        return (pos % len(self.tokens)).astype(np.int32)

    def write(self, pos: int, fn: Done, ctx: Any) -> None:
        q = _Quorum(self.write_k, self.rf, fn, ctx)
        env, hop, svc = self.env, self.hop_ms, self.write_ms
        for station in self.replicas[pos]:
            call(env, hop(), station, svc(), _reply, q)

    def read(self, pos: int, fn: Done, ctx: Any) -> None:
        k = self.read_k
        q = _Quorum(k, k, fn, ctx)
        replicas = self.replicas[pos]
        start = self._offset()
        env, hop, svc, rf = self.env, self.hop_ms, self.read_ms, self.rf
        for i in range(k):
            call(env, hop(), replicas[(start + i) % rf], svc(), _reply, q)
