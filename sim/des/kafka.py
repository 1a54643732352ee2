"""Kafka: partitions led by brokers, produce with acks 0/1/all, and a consumer group.

Partition p is led by broker p mod B and followed by the next RF-1 brokers. A produce appends at
the leader, then the followers replicate it (in parallel); the record is committed, and visible
to consumers, when every replica has it. The producer is answered at once (acks=0), after the
leader's append (acks=1) or at commit (acks=all). Batching and linger are not modelled.

The consumer group gives each partition to one consumer (round robin over consumers; consumers
beyond the partition count idle). A consumer works on at most `max_in_flight` records at once,
taking them from its partitions in turn, each partition in order. Lag is measured per partition:
records waiting, and how long the oldest waited before a consumer took it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.des.station import Done, Fleet, Station, call, schedule
from sim.distributions import Draw, sampler
from sim.scenario import Kafka
from sim.workload import hash_keys


class _Produce:
    __slots__ = ("acked", "ctx", "fn", "p", "record", "replicas_left")

    def __init__(self, p: int, record: Any, fn: Done, ctx: Any, replicas_left: int) -> None:
        self.p = p
        self.record = record
        self.fn = fn
        self.ctx = ctx
        self.replicas_left = replicas_left
        self.acked = False


class Consumer:
    __slots__ = ("cursor", "group", "in_flight", "partitions", "station")

    def __init__(self, group: ConsumerGroup, station: Station) -> None:
        self.group = group
        self.station = station
        self.partitions: list[int] = []
        self.in_flight = 0
        self.cursor = 0

    def pump(self) -> None:
        group = self.group
        logs = group.logs
        n = len(self.partitions)
        while self.in_flight < group.max_in_flight:
            for i in range(n):
                p = self.partitions[(self.cursor + i) % n]
                if logs[p]:
                    self.cursor = (self.cursor + i + 1) % n
                    break
            else:
                return
            appended, record = logs[p].popleft()
            lag_s = group.env._now - appended
            if lag_s > group.window_lag_max_s:
                group.window_lag_max_s = lag_s
                if group.measuring and lag_s > group.lag_max_s:
                    group.lag_max_s = lag_s
            self.in_flight += 1
            group.handle(self, record)

    def finished(self) -> None:
        self.in_flight -= 1
        self.pump()


class ConsumerGroup:
    def __init__(self, env: simpy.Environment, partitions: int, stations: list[Station],
                 max_in_flight: int, handle: Callable[[Consumer, Any], None]) -> None:
        self.env = env
        self.logs: list[deque[tuple[float, Any]]] = [deque() for _ in range(partitions)]
        self.consumers = [Consumer(self, st) for st in stations]
        self.owner: list[Consumer] = []
        for p in range(partitions):
            consumer = self.consumers[p % len(self.consumers)]
            consumer.partitions.append(p)
            self.owner.append(consumer)
        self.max_in_flight = max_in_flight
        self.handle = handle
        self.measuring = False
        self.lag_max_s = 0.0
        self.lag_max_msgs = 0
        self.window_lag_max_s = 0.0  # reset by the engine every window

    def append(self, p: int, record: Any) -> None:
        log = self.logs[p]
        log.append((self.env._now, record))
        if self.measuring and len(log) > self.lag_max_msgs:
            self.lag_max_msgs = len(log)
        self.owner[p].pump()

    def backlog(self) -> int:
        return sum(len(log) for log in self.logs)


class KafkaCluster:
    def __init__(self, env: simpy.Environment, cfg: Kafka, brokers: int, partitions: int,
                 hop_ms: Draw, rng: np.random.Generator, name: str = "kafka") -> None:
        self.env = env
        self.cfg = cfg
        self.fleet = Fleet(env, name, brokers, cfg.workers, cfg.queue_limit)
        self.partitions = partitions
        self.hop_ms = hop_ms
        self.append_ms = sampler(cfg.append_ms, rng, scale=1e-3)
        stations = self.fleet.stations
        rf = cfg.replication_factor
        self.replicas = [tuple(stations[(p + i) % brokers] for i in range(rf)) for p in range(partitions)]
        self.leader = [r[0] for r in self.replicas]
        self.followers = [r[1:] for r in self.replicas]
        self.leaderless_until = [0.0] * partitions
        self.group: ConsumerGroup | None = None
        self.on_commit: Callable[[Any], None] | None = None
        self.lost = 0
        self.unavailable = 0

    def partitions_of(self, keys: np.ndarray, salt: int = 4) -> np.ndarray:
        return (hash_keys(keys, salt=salt) % np.uint64(self.partitions)).astype(np.int32)

    def produce(self, p: int, record: Any, fn: Done, ctx: Any) -> None:
        if self.leaderless_until[p] > self.env._now:
            self.unavailable += 1
            fn(ctx, "unavailable")  # no leader until the election ends
            return
        op = _Produce(p, record, fn, ctx, len(self.followers[p]))
        if self.cfg.acks == "0":
            op.acked = True
            fn(ctx, None)
        call(self.env, self.hop_ms(), self.leader[p], self.append_ms(), self._leader_done, op)

    def _leader_done(self, op: _Produce, error: str | None) -> None:
        if error is not None:
            self._fail(op, error)
            return
        if self.cfg.acks == "1":
            op.acked = True
            op.fn(op.ctx, None)
        if op.replicas_left == 0:
            self._commit(op)
            return
        env, hop, svc = self.env, self.hop_ms, self.append_ms
        for station in self.followers[op.p]:
            call(env, hop(), station, svc(), self._follower_done, op)

    def _follower_done(self, op: _Produce, error: str | None) -> None:
        if op.replicas_left < 0:
            return
        if error is not None:
            op.replicas_left = -1
            self._fail(op, error)
            return
        op.replicas_left -= 1
        if op.replicas_left == 0:
            self._commit(op)

    def _commit(self, op: _Produce) -> None:
        if not op.acked:
            op.acked = True
            op.fn(op.ctx, None)
        if self.on_commit is not None:
            self.on_commit(op.p, op.record)

    def _fail(self, op: _Produce, error: str) -> None:
        if op.acked:
            self.lost += 1  # acknowledged (acks 0 or 1) but never committed
        else:
            op.acked = True
            op.fn(op.ctx, error)  # the caller names the component

    # -- faults ------------------------------------------------------------------------------
    def broker_lost(self, broker: Station, election_s: float) -> None:
        """Partitions it led have no leader for `election_s`; it leaves every ISR at once."""
        now = self.env._now
        for p, replicas in enumerate(self.replicas):
            if broker not in replicas:
                continue
            if self.leader[p] is broker:
                self.leaderless_until[p] = now + election_s
                schedule(self.env, election_s, self._elect, p)
            else:
                self.followers[p] = tuple(s for s in self.followers[p] if s is not broker)

    def _elect(self, event: Any) -> None:
        p = event._value
        live = [s for s in self.replicas[p] if not s.down]
        if not live:
            self.leaderless_until[p] = float("inf")
            return
        self.leader[p] = live[0]
        self.followers[p] = tuple(live[1:])

    def broker_recovered(self, broker: Station) -> None:
        """It rejoins the ISR of its partitions as a follower (leadership stays where it is)."""
        for p, replicas in enumerate(self.replicas):
            if broker in replicas and self.leader[p] is not broker and broker not in self.followers[p]:
                self.followers[p] = (*self.followers[p], broker)
            if broker in replicas and self.leaderless_until[p] == float("inf"):  # none was up at its election
                self.leaderless_until[p] = 0.0
                self.leader[p] = broker
                self.followers[p] = tuple(s for s in replicas if s is not broker and not s.down)
