"""Cassandra: a token ring of nodes, RF replicas per key, and coordinators that answer at the
k-th replica reply for the consistency level.

The token ring (vnodes, RF replicas per key, one per zone while zones are left) is
sim/placement.py's, shared with the calendar engine. Routing is token-aware: the coordinator is a
replica, and its own work is folded into the replica service time.

A write goes to the live replicas and succeeds at the k-th reply; a read goes to k live replicas
(from a random offset among the RF, as a dynamic snitch spreads them) and needs all k; with
`hedge_after_ms` it asks one more replica if they have not all answered by then. Either fails
as soon as k successes are no longer possible, and answers "unavailable" at once when fewer than
k replicas are alive (the coordinator knows from gossip). The coordinator stores a hint for each
down replica of a write and replays the hints when the node recovers, at `HINT_REPLAY_PER_SEC`.

Lost data: an acknowledged write that only one replica applied (the others down or failing) is a
sole copy on that replica (its holder) until a second copy exists: until the hint stored for one
of its down replicas has been replayed (sim/des/faults.py recovers that node). If the holder
then crashes with `lose_data`, the write is lost. Each sole copy remembers the hints stored for
it (node, that node's hint sequence number); it is safe once any of those nodes has replayed
that far. A replica that was live but failed the write gets no hint (as in Cassandra, where
repair, not modelled here, restores it): a write with no hint stays a sole copy.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import simpy

from sim.des.station import Done, Fleet, Station, call, schedule
from sim.distributions import Draw, sampler, stream
from sim.placement import TokenRing
from sim.scenario import Cassandra, replies_needed

HINT_REPLAY_PER_SEC = 5000.0  # per recovering node, a stand-in for hinted_handoff_throttle


class _Quorum:
    __slots__ = ("applied", "ctx", "done", "failures_left", "fn", "last_applied", "outstanding",
                 "successes_left")

    def __init__(self, need: int, asked: int, fn: Done, ctx: Any) -> None:
        self.successes_left = need
        self.failures_left = asked - need
        self.outstanding = asked
        self.applied = 0
        self.last_applied: Station | None = None
        self.fn = fn
        self.ctx = ctx
        self.done = False


def _reply(q: _Quorum, error: str | None) -> None:
    q.outstanding -= 1
    if error is None:
        q.applied += 1
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
            q.fn(q.ctx, error)  # the caller names the component ("<component>.<error>")


class CassandraCluster:
    def __init__(self, env: simpy.Environment, cfg: Cassandra, nodes: int, hop_ms: Draw,
                 rng: np.random.Generator, zones: int = 1, name: str = "cassandra") -> None:
        self.env = env
        self.cfg = cfg
        self.fleet = Fleet(env, name, nodes, cfg.workers, cfg.queue_limit)
        self.rf = cfg.replication_factor
        self.write_k = replies_needed(cfg.write_consistency, self.rf)
        self.read_k = replies_needed(cfg.read_consistency, self.rf)
        self.hop_ms = hop_ms
        streams = rng.spawn(3)
        self.write_ms = sampler(cfg.write_service_ms, streams[0], scale=1e-3)
        self.read_ms = sampler(cfg.read_service_ms, streams[1], scale=1e-3)
        offset_rng, rf = streams[2], self.rf
        self._offset = stream(lambda: offset_rng.integers(0, rf, 4096).tolist())
        ring = TokenRing.build(nodes, cfg.vnodes, self.rf, zones, streams[2])  # sim/placement.py
        self.ring = ring
        self.tokens = ring.tokens
        self.replicas: list[tuple[Station, ...]] = [
            tuple(self.fleet.stations[n] for n in row) for row in ring.replicas.tolist()]
        self.hedge_s: float | None = None
        self.hints = [0] * nodes  # hints waiting for each node
        self.hints_stored = 0
        self.hints_replayed = 0
        self._hint_seq = [0] * nodes  # hints ever stored for each node (the last one's sequence number)
        self._hint_done = [0] * nodes  # hints ever replayed to each node (in stored order)
        # per holder: the acknowledged writes only it has, each as ((node, hint seq), ...) of its hints,
        # in acknowledgement order
        self.sole_copies: list[deque[tuple[tuple[int, int], ...]]] = [deque() for _ in range(nodes)]
        self.lost_writes = 0
        self.unavailable = 0
        self.hedges = 0

    def positions(self, ids: np.ndarray, salt: int) -> np.ndarray:
        """Ring position (index into `replicas`) of each integer key."""
        return self.ring.positions(ids, salt).astype(np.int32)

    def write(self, pos: int, fn: Done, ctx: Any, k: int | None = None) -> None:
        """Write to every live replica; fn(ctx, error) at the `k`-th reply (default: the
        component's write consistency)."""
        write_k = self.write_k if k is None else k
        replicas = self.replicas[pos]
        live = [st for st in replicas if not st.down]
        if len(live) < write_k:
            self.unavailable += 1
            fn(ctx, "unavailable")
            return
        hinted: list[tuple[int, int]] = []
        for st in replicas:
            if st.down:
                i = st.index
                self.hints[i] += 1
                self.hints_stored += 1
                self._hint_seq[i] += 1
                hinted.append((i, self._hint_seq[i]))
        env, hop, svc = self.env, self.hop_ms, self.write_ms
        if len(live) == self.rf and not self._tracking:
            q = _Quorum(write_k, self.rf, fn, ctx)
            for station in replicas:
                call(env, hop(), station, svc(), _reply, q)
            return
        q = _Quorum(write_k, len(live), fn, ctx)
        hints = tuple(hinted)
        for station in live:
            call(env, hop(), station, svc(), self._tracked_reply, (q, station, hints))

    _tracking = False  # set when a fault may lose data: replies then say which replica applied

    def _tracked_reply(self, ctx: tuple[_Quorum, Station, tuple[tuple[int, int], ...]],
                       error: str | None) -> None:
        q, station, hints = ctx
        if error is None:
            q.last_applied = station
        _reply(q, error)
        if q.outstanding == 0 and q.applied == 1 and q.successes_left <= 0 and q.last_applied is not None:
            # acknowledged, yet only one replica has it until one of its hints replays
            self.sole_copies[q.last_applied.index].append(hints)

    def read(self, pos: int, fn: Done, ctx: Any, k: int | None = None) -> None:
        k = self.read_k if k is None else k
        replicas = self.replicas[pos]
        start = self._offset()
        rf = self.rf
        asked = []
        for i in range(rf):
            st = replicas[(start + i) % rf]
            if not st.down:
                asked.append(st)
                if len(asked) == k:
                    break
        if len(asked) < k:
            self.unavailable += 1
            fn(ctx, "unavailable")
            return
        q = _Quorum(k, k, fn, ctx)
        env, hop, svc = self.env, self.hop_ms, self.read_ms
        for st in asked:
            call(env, hop(), st, svc(), _reply, q)
        if self.hedge_s is not None and k < rf:
            schedule(env, self.hedge_s, self._hedge, (q, replicas, asked))

    def _hedge(self, event: Any) -> None:
        q, replicas, asked = event._value
        if q.done:
            return
        for st in replicas:
            if st not in asked and not st.down:
                self.hedges += 1
                q.failures_left += 1
                q.outstanding += 1
                call(self.env, self.hop_ms(), st, self.read_ms(), _reply, q)
                return

    # -- faults ------------------------------------------------------------------------------
    def recovered(self, station: Station) -> None:
        """Replay the hints stored for `station`, throttled; a sole copy whose hint for `station`
        has replayed has a second copy (`unsafe_copies`)."""
        self._replay(station)

    def _replay(self, station: Station) -> None:
        i = station.index
        batch = min(self.hints[i], max(1, int(HINT_REPLAY_PER_SEC * 0.01)))
        if batch <= 0 or station.down:
            return
        self.hints[i] -= batch
        for _ in range(batch):
            station.submit(self.write_ms(), _ignore, None)
        self.hints_replayed += batch
        self._hint_done[i] += batch
        schedule(self.env, 0.01, lambda _e: self._replay(station), None)

    def unsafe_copies(self, holder: int) -> int:
        """Acknowledged writes that node `holder` alone has now (no hint of theirs replayed yet)."""
        copies, done = self.sole_copies[holder], self._hint_done
        # hint numbers grow about in acknowledgement order: drop the safe copies at the front, count the rest
        while copies and any(seq <= done[node] for node, seq in copies[0]):
            copies.popleft()
        return sum(1 for hints in copies if not any(seq <= done[node] for node, seq in hints))

    def crashed(self, station: Station, lose_data: bool) -> None:
        """`station` went down; with `lose_data` its disk is gone, and with it its sole copies."""
        if lose_data:
            self.lost_writes += self.unsafe_copies(station.index)
            self.sole_copies[station.index].clear()


def _ignore(_ctx: Any, _error: str | None) -> None:
    return
