"""Build the simulated system from a scenario, drive traffic through it, and collect results.

Request flows (each arrow a network hop of `network.hop_ms` plus service at a station):

  send:     client -> gateway -> message service -> { Cassandra write, Redis append, Kafka produce }
            the client's ack comes when the steps in `message_service.ack_after` have succeeded.
  delivery: Kafka commit -> consumer (group service) -> one inbox write per recipient (fan-out on
            write) or nothing more (fan-out on read); latency runs from the send to the last write.
  read:     client -> gateway -> message service -> Redis GET -> on a miss: Cassandra read at the
            read consistency level, answered to the client, then a Redis fill (not waited for).

Traffic sources and the per-window ticker are the only long-lived actors; the request path runs
on callbacks (sim/des/station.py).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.cache import CacheModel, scenario_cache_model
from sim.des.cassandra import CassandraCluster
from sim.des.faults import FaultInjector
from sim.des.gateway import GatewayFleet
from sim.des.kafka import Consumer, KafkaCluster
from sim.des.policy import Edge
from sim.des.redis import RedisCluster
from sim.des.station import Fleet, call, schedule
from sim.distributions import BLOCK, sampler, stream, uniforms
from sim.metrics import Recorder
from sim.run_state import RunState
from sim.sampling import make_cell
from sim.scenario import Scenario
from sim.streams import stream_rngs
from sim.workload import Population, draw_member, popularity

Progress = Callable[[float, float], None]


class Request:
    """One operation in flight. `t0` is when its latency starts (a delivery's: its send's)."""

    __slots__ = ("conv", "done", "marks", "op", "pending", "reply", "slot", "started", "t0", "token", "user")

    def __init__(self, op: str, t0: float, user: int, conv: int, started: float | None = None,
                 slot: int = 0) -> None:
        self.op = op
        self.t0 = t0
        self.started = t0 if started is None else started
        self.marks: list[tuple[str, float]] = []  # (component, time its part of the path ended)
        self.reply: Callable[[Any, str | None], None] | None = None  # an attempt answers its edge
        self.token: Any = None
        self.user = user
        self.conv = conv
        self.slot = slot  # the sender's member slot in conv (its recipients are the other members)
        self.pending = 0
        self.done = False


class Engine:
    def __init__(self, scenario: Scenario, progress: Progress | None = None) -> None:
        self.scenario = sc = scenario
        self.cell = cell = make_cell(scenario)
        self.progress = progress
        self.rngs = stream_rngs(sc.seed)
        self.env = env = simpy.Environment()
        self.recorder = Recorder(sc.warmup_s)
        self.async_errors: Counter[str] = Counter()
        self.events = 0
        self._arrivals_open = True
        self._lookups_at_warmup = (0, 0)
        self._window_lookups = (0, 0)
        self._windows_closed = 0
        self._members_cache: dict[int, np.ndarray] = {}
        self._positions_cache: dict[int, list[int]] = {}
        self.measured_from = sc.warmup_s

        # workload
        w = sc.workload
        gs = sc.group_service
        self.inbox_reads = gs.enabled and gs.fan_out == "read"
        self.population = pop = Population.build(w, cell.users, cell.conversations, cell.sample,
                                                 self.rngs["conversations"], inbox_reads=self.inbox_reads)
        self.n_users = cell.users
        self.n_conv = pop.conversations.recipients.size  # the declared hot conversations included
        self.sender_u = uniforms(self.rngs["senders"])
        self.reader_u = uniforms(self.rngs["readers"])
        self.readers = popularity(pop.user_weights, self.rngs["readers"])
        self.send_conv = popularity(pop.send_weights, self.rngs["send_conversations"])
        self.read_conv = popularity(pop.read_weights, self.rngs["read_conversations"])
        self.conversations = pop.conversations
        self.mix = pop.mix()
        self._recipients = memoryview(self.conversations.recipients)
        self.hop_ms = sampler(sc.network.hop_ms, self.rngs["network"], scale=1e-3)

        # fleets
        fleets: dict[str, Fleet] = {}
        balancer_seed = int(self.rngs["balancer"].integers(2**31))
        self.gateway = None
        if sc.gateway.enabled:
            self.gateway = GatewayFleet(
                env, sc.gateway, cell.fleets["gateway"].simulated, cell.users, self.hop_ms,
                sampler(sc.gateway.service_ms, self.rngs["gateway"], 1e-3), balancer_seed)
            fleets["gateway"] = self.gateway.fleet
        ms = sc.message_service
        self.msg = None
        if ms.enabled:
            self.msg = Fleet(env, "message_service", cell.fleets["message_service"].simulated,
                             ms.workers, ms.queue_limit, ms.balancer, balancer_seed + 1)
            fleets["message_service"] = self.msg
            send_rng, read_rng = self.rngs["message_service"].spawn(2)
            self.msg_send_ms = sampler(ms.send_service_ms, send_rng, 1e-3)
            self.msg_read_ms = sampler(ms.read_service_ms, read_rng, 1e-3)
        self.cass = None
        if sc.cassandra.enabled:
            self.cass = CassandraCluster(env, sc.cassandra, cell.fleets["cassandra"].simulated,
                                         self.hop_ms, self.rngs["cassandra"], sc.network.zones)
            fleets["cassandra"] = self.cass.fleet
            self.user_pos = memoryview(self.cass.positions(np.arange(cell.users), salt=10))
            self.conv_pos = memoryview(self.cass.positions(np.arange(self.n_conv), salt=11))
        self.cache: CacheModel | None = None
        self.redis = None
        if sc.redis.enabled:
            self.cache = scenario_cache_model(self.scenario, pop.read_weights, self.cell.sample)
            self.redis = RedisCluster(env, sc.redis, cell.fleets["redis"].simulated, self.cache,
                                      self.hop_ms, self.rngs["redis"])
            fleets["redis"] = self.redis.fleet
            self.conv_shard = memoryview(self.redis.shards_of(np.arange(self.n_conv)))
        self.kafka = None
        if sc.kafka.enabled:
            self.kafka = KafkaCluster(env, sc.kafka, cell.fleets["kafka"].simulated,
                                      cell.fleets["kafka_partitions"].simulated, self.hop_ms,
                                      self.rngs["kafka"])
            fleets["kafka"] = self.kafka.fleet
            self.conv_partition = memoryview(self.kafka.partitions_of(np.arange(self.n_conv)))
        if gs.enabled and self.kafka is not None:
            self.group_fleet = Fleet(env, "group_service", cell.fleets["group_service"].simulated,
                                     gs.workers, gs.queue_limit)
            fleets["group_service"] = self.group_fleet
            self.group_ms = sampler(gs.service_ms, self.rngs["group_service"], 1e-3)
            self.per_recipient_s = gs.per_recipient_ms * 1e-3
            self.fan_out_write = gs.fan_out == "write"
            from sim.des.kafka import ConsumerGroup

            self.kafka.group = ConsumerGroup(env, self.kafka.partitions, self.group_fleet.stations,
                                             gs.max_in_flight, self._consume)
            self.kafka.on_commit = self._committed
        self.fleets = fleets
        for fleet in fleets.values():
            for st in fleet.stations:
                st.zone = st.index % sc.network.zones

        # resilience and faults
        policy_rngs = self.rngs["policies"].spawn(len(sc.policies) or 1)
        self.edges = {name: Edge(env, name, policy, rng)
                      for (name, policy), rng in zip(sc.policies.items(), policy_rngs, strict=False)}
        self.client_edge = self.edges.get("client->gateway")
        self.cass_edge = self.edges.get("message_service->cassandra")
        self.redis_edge = self.edges.get("message_service->redis")
        self.kafka_edge = self.edges.get("message_service->kafka")
        self.inbox_edge = self.edges.get("group_service->cassandra")
        if self.cass is not None:
            if self.cass_edge is not None and self.cass_edge.policy.hedge_after_ms:
                self.cass.hedge_s = self.cass_edge.policy.hedge_after_ms / 1e3
            self.cass._tracking = any(f.lose_data for f in sc.faults)
        if self.redis is not None:
            self.redis.conv_shard = self.conv_shard
        self.load_factor = 1.0
        self.injector = FaultInjector(self)

        # routing choices
        self.send_key_is_user = ms.partition_key == "user"
        self.read_key_is_user = (gs.enabled and gs.fan_out == "write") or ms.partition_key == "user"
        self.required = set(ms.ack_after or ())

        # traffic
        self._send_gap = self._gap_sampler(cell.sends_per_sec, "send_arrivals")
        self._read_gap = self._gap_sampler(cell.reads_per_sec, "read_arrivals")

    # -- construction helpers ------------------------------------------------------------------
    def _gap_sampler(self, rate: float, purpose: str) -> Callable[[], float] | None:
        if rate <= 0:
            return None
        rng = self.rngs[purpose]
        if self.scenario.workload.arrivals == "deterministic":
            return itertools.repeat(1.0 / rate).__next__
        mean = 1.0 / rate
        return stream(lambda: rng.exponential(mean, BLOCK).tolist())

    # -- sources -------------------------------------------------------------------------------
    def _schedule(self, gap: Callable[[], float] | None, fn: Callable[[Any], None]) -> None:
        if gap is None or not self._arrivals_open:
            return
        delay = gap() / self.load_factor
        if self.env._now + delay < self.scenario.duration_s:
            schedule(self.env, delay, fn, None)

    def _on_send(self, _event: Any) -> None:
        self._schedule(self._send_gap, self._on_send)
        now = self.env._now
        conv = self.send_conv()
        members = self._members(conv)
        slot = draw_member(members, self.population.send_member_weights, self.sender_u())
        req = Request("send", now, int(members[slot]), conv, slot=slot)
        self.recorder.start("send", now, now)
        if self.client_edge is None:
            self._admit(req, self._send_admitted)
        else:
            self.client_edge.call(self._send_attempt, self._record, req)

    def _on_read(self, _event: Any) -> None:
        self._schedule(self._read_gap, self._on_read)
        now = self.env._now
        if self.inbox_reads:  # an inbox load: the reader, then every conversation of theirs
            req = Request("read", now, self.readers(), -1)
        else:  # opening a conversation: the conversation, then which member reads it
            conv = self.read_conv()
            members = self._members(conv)
            slot = draw_member(members, self.population.read_member_weights, self.reader_u())
            req = Request("read", now, int(members[slot]), conv, slot=slot)
        self.recorder.start("read", now, now)
        if self.client_edge is None:
            self._admit(req, self._read_admitted)
        else:
            self.client_edge.call(self._read_attempt, self._record, req)

    def _send_attempt(self, reply: Callable[[Any, str | None], None], token: Any) -> None:
        self._attempt(reply, token, self._send_admitted)

    def _read_attempt(self, reply: Callable[[Any, str | None], None], token: Any) -> None:
        self._attempt(reply, token, self._read_admitted)

    def _attempt(self, reply: Callable[[Any, str | None], None], token: Any,
                 then: Callable[[Request, str | None], None]) -> None:
        """One client attempt of a request: its own path through the system, answering `reply`."""
        root: Request = token[0].ctx
        att = Request(root.op, self.env._now, root.user, root.conv, slot=root.slot)
        att.reply = reply
        att.token = token
        self._admit(att, then)

    def _record(self, root: Request, error: str | None) -> None:
        """The client's final answer for a request made through the client->gateway edge."""
        self._finish(root, error)

    def _admit(self, req: Request, then: Callable[[Request, str | None], None]) -> None:
        if self.gateway is None:
            then(req, None)
        else:
            self.gateway.admit(req.user, self._gateway_done, (req, then))

    def _gateway_done(self, ctx: tuple[Request, Callable[[Request, str | None], None]],
                      error: str | None) -> None:
        req, then = ctx
        if error is not None:
            self._finish(req, f"gateway.{error}")
        else:
            req.marks.append(("gateway", self.env._now))
            then(req, None)

    def _finish(self, req: Request, error: str | None) -> None:
        if req.done:
            raise RuntimeError(f"{req.op} request finished twice")
        req.done = True
        if req.reply is not None:  # an attempt: the client edge decides (retry or answer)
            if error is None:
                req.token[0].ctx.marks = req.marks
            req.reply(req.token, error)
            return
        self.recorder.finish(req.op, req.t0, req.started, self.env._now, error, req.marks)

    # -- send ----------------------------------------------------------------------------------
    def _send_admitted(self, req: Request, _error: None) -> None:
        if self.msg is None:
            self._store(req, None)
        else:
            call(self.env, self.hop_ms(), self.msg.pick(), self.msg_send_ms(), self._store, req)

    def _store(self, req: Request, error: str | None) -> None:
        if error is not None:
            self._finish(req, f"message_service.{error}")
            return
        if self.msg is not None:
            req.marks.append(("message_service", self.env._now))
        req.pending = len(self.required)
        if self.cass is not None:
            pos = self.user_pos[req.user] if self.send_key_is_user else self.conv_pos[req.conv]
            write = self.cass.write
            if self.cass_edge is None:
                write(pos, self._step_done, (req, "cassandra"))
            else:
                self.cass_edge.call(lambda reply, tok: write(pos, reply, tok), self._step_done,
                                    (req, "cassandra"))
        if self.redis is not None:
            shard, command = self.conv_shard[req.conv], self.redis.command
            if self.redis_edge is None:
                command(shard, self._step_done, (req, "redis"))
            else:
                self.redis_edge.call(lambda reply, tok: command(shard, reply, tok), self._step_done,
                                     (req, "redis"))
        if self.kafka is not None:
            partition, produce = self.conv_partition[req.conv], self.kafka.produce
            if self.kafka_edge is None:
                produce(partition, req, self._step_done, (req, "kafka"))
            else:
                self.kafka_edge.call(lambda reply, tok: produce(partition, req, reply, tok),
                                     self._step_done, (req, "kafka"))
        if req.pending == 0 and not req.done:
            self._finish(req, None)

    def _step_done(self, ctx: tuple[Request, str], error: str | None) -> None:
        req, step = ctx
        if error is not None and not error.startswith(step):
            error = f"{step}.{error}"
        if step not in self.required:
            if error is not None:
                self.async_errors[error] += 1
            return
        self._join(req, error, step)  # the last step marks what held the ack up

    def _join(self, req: Request, error: str | None, mark: str | None) -> None:
        """One of `req.pending` parallel parts answered: the first error fails the request, the
        last success answers it (marked as `mark`, the part that held it up)."""
        if req.done:
            return
        if error is not None:
            self._finish(req, error)
            return
        req.pending -= 1
        if req.pending == 0:
            if mark is not None:
                req.marks.append((mark, self.env._now))
            self._finish(req, None)

    # -- delivery ------------------------------------------------------------------------------
    def _committed(self, partition: int, send: Request) -> None:
        now = self.env._now
        self.recorder.start("delivery", send.t0, now)
        assert self.kafka is not None and self.kafka.group is not None
        delivery = Request("delivery", send.t0, send.user, send.conv, now, slot=send.slot)
        delivery.marks.append(("send_and_produce", now))
        self.kafka.group.append(partition, delivery)

    def _consume(self, consumer: Consumer, delivery: Request) -> None:
        n = self._recipients[delivery.conv]
        service_s = self.group_ms() + n * self.per_recipient_s
        delivery.pending = n
        delivery.marks.append(("kafka_consumer_lag", self.env._now))
        call(self.env, self.hop_ms(), consumer.station, service_s, self._fan_out, (delivery, consumer))

    def _fan_out(self, ctx: tuple[Request, Consumer], error: str | None) -> None:
        delivery, _consumer = ctx
        if error is not None:
            self._deliver_done(ctx, f"group_service.{error}")
            return
        delivery.marks.append(("group_service", self.env._now))
        if not self.fan_out_write:
            self._deliver_done(ctx, None)
            return
        assert self.cass is not None
        write, done = self.cass.write, self._inbox_written
        edge = self.inbox_edge
        positions = self._inbox_positions(delivery.conv)
        for pos in positions[:delivery.slot] + positions[delivery.slot + 1:]:  # every member but the sender
            if edge is None:
                write(pos, done, ctx)
            else:
                edge.call(lambda reply, tok, pos=pos: write(pos, reply, tok), done, ctx)

    def _members(self, conv: int) -> np.ndarray:
        """A conversation's members' user ids, by slot (cached: busy conversations repeat)."""
        members = self._members_cache.get(conv)
        if members is None:
            if len(self._members_cache) >= 100_000:
                self._members_cache.clear()
                self._positions_cache.clear()
            members = self._members_cache[conv] = self.conversations.members(conv, self.n_users)
        return members

    def _inbox_positions(self, conv: int) -> list[int]:
        """Ring positions of every member's inbox, by slot."""
        positions = self._positions_cache.get(conv)
        if positions is None:
            positions = self._positions_cache[conv] = np.asarray(self.user_pos)[self._members(conv)].tolist()
        return positions

    def _inbox_written(self, ctx: tuple[Request, Consumer], error: str | None) -> None:
        delivery = ctx[0]
        if delivery.done:
            return
        if error is not None:
            self._deliver_done(ctx, _from_cassandra(error))
            return
        delivery.pending -= 1
        if delivery.pending == 0:
            delivery.marks.append(("cassandra", self.env._now))
            self._deliver_done(ctx, None)

    def _deliver_done(self, ctx: tuple[Request, Consumer], error: str | None) -> None:
        delivery, consumer = ctx
        self._finish(delivery, error)
        consumer.finished()

    # -- read ----------------------------------------------------------------------------------
    def _read_admitted(self, req: Request, _error: None) -> None:
        if self.msg is None:
            self._lookup(req, None)
        else:
            call(self.env, self.hop_ms(), self.msg.pick(), self.msg_read_ms(), self._lookup, req)

    def _lookup(self, req: Request, error: str | None) -> None:
        if error is not None:
            self._finish(req, f"message_service.{error}")
            return
        if self.msg is not None:
            req.marks.append(("message_service", self.env._now))
        if self.redis is None and self.cass is None:
            self._finish(req, None)  # no storage modelled: the read ends at the service
            return
        if not self.inbox_reads:
            req.pending = 1
            self._lookup_one(req, req.conv)
            return
        convs = self.population.inbox(req.user).tolist()  # fan-out on read: every conversation
        if not convs:
            self._finish(req, None)
            return
        req.pending = len(convs)
        for conv in convs:
            self._lookup_one(req, conv)

    def _lookup_one(self, req: Request, conv: int) -> None:
        """One conversation's recent messages: Redis, then Cassandra on a miss."""
        if self.redis is not None:
            self.redis.command(self.conv_shard[conv], self._cache_answered, (req, conv))
        else:
            self._from_cassandra(req, conv)

    def _part_done(self, req: Request, component: str, error: str | None) -> None:
        """A read is answered when every conversation it looks up has answered (the first error fails it)."""
        self._join(req, error, "cassandra" if component == "cassandra" else None)

    def _cache_answered(self, ctx: tuple[Request, int], error: str | None) -> None:
        assert self.redis is not None
        req, conv = ctx
        if req.pending == 1 and not req.done:
            req.marks.append(("redis", self.env._now))
        if error is None and self.redis.is_hit(conv):
            self._part_done(req, "redis", None)
            return
        if error is not None:
            self.async_errors[f"redis.{error}"] += 1
        if self.cass is None:
            self._part_done(req, "redis", f"redis.{error}" if error else "redis.miss_without_cassandra")
        else:
            self._from_cassandra(req, conv)

    def _from_cassandra(self, req: Request, conv: int) -> None:
        assert self.cass is not None
        pos = self.user_pos[req.user] if self.read_key_is_user else self.conv_pos[conv]
        read = self.cass.read
        if self.cass_edge is None:
            read(pos, self._read_done, (req, conv))
        else:
            self.cass_edge.call(lambda reply, tok: read(pos, reply, tok), self._read_done, (req, conv))

    def _read_done(self, ctx: tuple[Request, int], error: str | None) -> None:
        req, conv = ctx
        self._part_done(req, "cassandra", _from_cassandra(error))
        if error is None and self.redis is not None:
            self.redis.command(self.conv_shard[conv], self._fill_done, conv)

    def _fill_done(self, conv: int, error: str | None) -> None:
        if error is None:
            self.redis.filled(conv)  # type: ignore[union-attr]
        else:
            self.async_errors[f"redis.fill_{error}"] += 1

    # -- run -----------------------------------------------------------------------------------
    def _start_measuring(self, _event: Any) -> None:
        now = self.env._now
        for fleet in self.fleets.values():
            fleet.reset_stats()
        if self.redis is not None:
            self._lookups_at_warmup = (self.redis.hits, self.redis.misses)
        if self.kafka is not None and self.kafka.group is not None:
            self.kafka.group.measuring = True
        self.recorder.begin_measuring(now)

    def _ticker(self) -> Any:
        window = self.recorder.window_s
        while (self._windows_closed + 1) * window <= self.scenario.duration_s + 1e-9:
            yield self.env.timeout(window)
            if (self._windows_closed + 1) * window > self.scenario.duration_s + 1e-9:
                return  # run() closed the last window itself (run(until) stops before it fires)
            self._close_window()

    def _close_window(self) -> None:
        """Close the next per-second window: the recorder's counts plus cache and Kafka state."""
        self._windows_closed += 1
        t = self._windows_closed * self.recorder.window_s
        row = self.recorder.close_window(t, 1.0 / self.cell.sample)
        if self.redis is not None:
            hits, misses = self.redis.hits, self.redis.misses
            dh, dm = hits - self._window_lookups[0], misses - self._window_lookups[1]
            self._window_lookups = (hits, misses)
            row["cache_hit_ratio"] = dh / (dh + dm) if dh + dm else float("nan")
        if self.kafka is not None and self.kafka.group is not None:
            group = self.kafka.group
            row["kafka_lag_max_s"] = group.window_lag_max_s
            row["kafka_backlog_msgs"] = group.backlog()
            group.window_lag_max_s = 0.0
        if self.progress is not None:
            self.progress(t, self.scenario.duration_s)

    def run(self, drain: bool = False) -> RunState:
        """Simulate `duration_s`; with `drain`, stop arrivals then and run until all requests end."""
        sc = self.scenario
        env = self.env
        wall0 = time.perf_counter()
        if sc.warmup_s > 0:
            schedule(env, sc.warmup_s, self._start_measuring, None)
        else:
            self._start_measuring(None)
        for gap, fn in ((self._send_gap, self._on_send), (self._read_gap, self._on_read)):
            if gap is not None:
                delay = gap()
                if delay < sc.duration_s:
                    schedule(env, delay, fn, None)
        env.process(self._ticker())
        self.injector.arm()
        env.run(until=sc.duration_s)
        # run(until) stops before events at exactly duration_s: close the last window by hand
        while (self._windows_closed + 1) * self.recorder.window_s <= sc.duration_s + 1e-9:
            self._close_window()
        end = sc.duration_s
        if drain:
            self._arrivals_open = False
            env.run()
            end = env.now
        for fleet in self.fleets.values():
            for st in fleet.stations:
                st._account(env.now)
        self.recorder._advance(sc.duration_s if not drain else end)
        group = self.kafka.group if self.kafka is not None else None
        return RunState(
            scenario=sc,
            cell=self.cell,
            recorder=self.recorder,
            fleets=self.fleets,
            cache=self.cache,
            redis_hits=self.redis.hits - self._lookups_at_warmup[0] if self.redis else 0,
            redis_misses=self.redis.misses - self._lookups_at_warmup[1] if self.redis else 0,
            kafka_lag_max_s=group.lag_max_s if group else 0.0,
            kafka_lag_max_msgs=group.lag_max_msgs if group else 0,
            kafka_backlog=group.backlog() if group else 0,
            async_errors=self.async_errors,
            mix=self.mix,
            edges={name: edge.stats() for name, edge in self.edges.items()},
            cassandra_faults={
                "unavailable": self.cass.unavailable, "hints_stored": self.cass.hints_stored,
                "hints_replayed": self.cass.hints_replayed, "hedged_reads": self.cass.hedges,
                "lost_writes": self.cass.lost_writes,
            } if self.cass is not None else {},
            kafka_unavailable=self.kafka.unavailable if self.kafka is not None else 0,
            rate_limited=self.gateway.rate_limited if self.gateway else 0,
            events=next(env._eid),  # events scheduled (SimPy numbers each one)
            sim_seconds=end,
            measured_seconds=end - sc.warmup_s,
            wall_seconds=time.perf_counter() - wall0,
            drained=drain,
        )


def _from_cassandra(error: str | None) -> str | None:
    """A Cassandra call's error as the component's: the edge's own "timeout" is "cassandra.timeout"."""
    if error is None or error.startswith("cassandra."):
        return error
    return f"cassandra.{error}"
