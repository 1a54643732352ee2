"""The DES: build the system's stations from its components, drive each flow's traffic, collect.

The scenario compiles into a `System` (sim/system/): components by name and flows as step trees.
This module builds one station fleet per component (sim/des/gateway.py, cassandra.py, redis.py,
kafka.py, station.py), the routing of every key space to each component it reaches, and one
source per flow with a rate; sim/des/flows.py moves each request along its flow. Traffic sources
and the per-window ticker are the only long-lived actors; requests run on callbacks.

The messaging sections compile to flows send, read and delivery (sim/system/compile.py); their
keys come from the member-based population (sim/workload.py) and their random streams are the
named streams of sim/streams.py, so a messaging run gives the figures it always gave.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.cache import CacheModel, fixed_cache_model, lru_cache_model, scenario_cache_model
from sim.des.cassandra import CassandraCluster
from sim.des.faults import FaultInjector
from sim.des.flows import Cursor, FlowRunner, Request
from sim.des.gateway import GatewayFleet
from sim.des.kafka import ConsumerGroup, KafkaCluster
from sim.des.policy import Edge
from sim.des.redis import RedisCluster
from sim.des.station import Fleet, schedule
from sim.distributions import BLOCK, Draw, mean_of, sampler, stream, uniforms
from sim.metrics import Recorder
from sim.run_state import OnWindow, Progress, RunState
from sim.sampling import make_cell
from sim.scenario import Scenario, replies_needed
from sim.streams import named_rng, stream_rngs
from sim.system.compile import system_of
from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES, cell_cdf, cell_keys, cell_weights
from sim.system.model import CacheLookup, Call, FanOut, Flow, Step, System, routed, walk
from sim.workload import Population, by_cdf, draw_member, popularity


class Engine:
    def __init__(self, scenario: Scenario, progress: Progress | None = None,
                 on_window: OnWindow | None = None) -> None:
        self.scenario = sc = scenario
        self.on_window = on_window  # called with a copy of each per-second row as its window closes
        self.system: System = system_of(sc)
        self.cell = make_cell(sc)
        self.messaging = self.system.preset == "messaging"
        self.progress = progress
        self.rngs = stream_rngs(sc.seed)
        self.env = env = simpy.Environment()
        self.recorder = Recorder(sc.warmup_s, ops=tuple(self.system.flows))
        self.runner = FlowRunner(self)
        self.events = 0
        self.load_factor = 1.0
        self._arrivals_open = True
        self._lookups_at_warmup = (0, 0)
        self._window_lookups = (0, 0)
        self._windows_closed = 0
        self._members_cache: dict[int, np.ndarray] = {}
        self._busy_seen: dict[Any, float] = {}  # per station: busy seconds at the last window (live view)
        self._busy_carry: dict[Any, float] = {}  # ... and those of the window the warm-up reset cut
        self.hop_ms = sampler(sc.network.hop_ms, self.rngs["network"], scale=1e-3)
        self._keys()
        self._stations()
        self._routes()
        policy_rngs = self.rngs["policies"].spawn(len(sc.policies) or 1)
        self.edges = {name: Edge(env, name, policy, rng)
                      for (name, policy), rng in zip(sc.policies.items(), policy_rngs, strict=False)}
        for name, cluster in self.cassandras.items():
            hedges = [e.policy.hedge_after_ms for n, e in self.edges.items()
                      if n.endswith(f"->{name}") and e.policy.hedge_after_ms]
            if hedges:
                cluster.hedge_s = hedges[0] / 1e3
            cluster._tracking = any(f.lose_data for f in sc.faults)
        self.injector = FaultInjector(self)
        self.runner.prepare()
        self._sources()

    # -- keys ----------------------------------------------------------------------------------
    def _keys(self) -> None:
        """How many keys each space has in the cell, and how requests draw them."""
        sc, cell, system = self.scenario, self.cell, self.system
        self.population: Population | None = None
        self.space_size: dict[str, int] = {}
        self._space_draw: dict[str, Callable[[], int]] = {}
        if self.messaging:
            gs = sc.group_service
            inbox_reads = gs.enabled and gs.fan_out == "read"
            self.population = pop = Population.build(sc.workload, cell.users, cell.conversations, cell.sample,
                                                     self.rngs["conversations"], inbox_reads=inbox_reads)
            self.space_size = {"user": cell.users, "conversation": pop.conversations.recipients.size}
            self.sender_u = uniforms(self.rngs["senders"])
            self.reader_u = uniforms(self.rngs["readers"])
            self.readers = popularity(pop.user_weights, self.rngs["readers"])
            self.send_conv = popularity(pop.send_weights, self.rngs["send_conversations"])
            self.read_conv = popularity(pop.read_weights, self.rngs["read_conversations"])
            self._recipients = memoryview(pop.conversations.recipients)
            self.mix = pop.mix()
            return
        self.mix = {}
        for name, space in system.keys.items():
            self.space_size[name] = cell_keys(space, cell.sample)
            cdf = cell_cdf(space.count, space.zipf_s, cell.sample, np.empty(self.space_size[name]))
            self._space_draw[name] = by_cdf(cdf, named_rng(sc.seed, "keys", name))
        self._fresh: dict[str, Callable[[], int]] = {}
        self._group_sizes: dict[int, Draw] = {}
        for flow in system.flows.values():
            rng = named_rng(sc.seed, "new_keys", flow.name)
            n = self.space_size[flow.space]
            self._fresh[flow.name] = stream(lambda rng=rng, n=n: rng.integers(0, n, BLOCK).tolist())
            for i, step in enumerate(walk(flow.steps)):
                if isinstance(step, FanOut) and step.members is not None:
                    self._group_sizes[id(step)] = sampler(step.members, named_rng(sc.seed, "group", flow.name,
                                                                                  str(i)))

    def members(self, conv: int) -> np.ndarray:
        """A conversation's members' user ids, by slot (cached: busy conversations repeat)."""
        members = self._members_cache.get(conv)
        if members is None:
            if len(self._members_cache) >= 100_000:
                self._members_cache.clear()
            assert self.population is not None
            members = self._members_cache[conv] = self.population.conversations.members(conv, self.cell.users)
        return members

    def group_size(self, step: FanOut) -> int:
        return max(0, round(self._group_sizes[id(step)]()))

    def draw_members(self, space: str, n: int) -> list[int]:
        draw = self._space_draw[space]
        return [draw() for _ in range(n)]

    def next_fan_size(self, req: Request, steps: tuple[Step, ...]) -> int:
        """Members of the next fan-out among `steps` (the rest of a sequence), drawn now: the service
        call before it costs `per_member_ms` for each (sim/system/loads.py counts the same)."""
        fan = next((s for s in steps if isinstance(s, FanOut)), None)
        if fan is None:
            return 0
        if fan.relation == "conversation_members":
            return self._recipients[req.conv]
        if fan.relation == "user_conversations":
            assert self.population is not None
            return len(self.population.inbox(req.user))
        n = self.group_size(fan)
        req.fan_n = (id(fan), n)
        return n

    def keys_of(self, req: Request, space: str) -> dict[str, int]:
        if self.population is not None:  # the messaging preset: a user and a conversation
            return {"user": req.user, "conversation": req.conv}
        return {space: req.key}

    # -- stations ------------------------------------------------------------------------------
    def _rng(self, name: str) -> np.random.Generator:
        stream = self.system.components[name].stream
        return self.rngs[stream] if stream else named_rng(self.scenario.seed, "component", name)

    def _stations(self) -> None:
        sc, env, cell, hop = self.scenario, self.env, self.cell, self.hop_ms
        self.fleets: dict[str, Any] = {}
        self.gateways: dict[str, GatewayFleet] = {}
        self.cassandras: dict[str, CassandraCluster] = {}
        self.redises: dict[str, RedisCluster] = {}
        self.kafkas: dict[str, KafkaCluster] = {}
        self.op_ms: dict[tuple[str, str], Draw] = {}
        self.per_member_s: dict[tuple[str, str], float] = {}
        self.caches: dict[str, CacheModel] = {}
        self._k: dict[tuple[str, str], int] = {}
        balancer = int(self.rngs["balancer"].integers(2**31))
        balancer_seeds = itertools.count(balancer)
        for comp in self.system.components.values():
            name, spec = comp.name, comp.spec
            n = cell.fleets[name].simulated
            if comp.kind == "gateway":
                # one bucket per key of the spaces calling it (none when no flow does)
                buckets = max((self.space_size[s] for s in self._spaces_calling(name)), default=0)
                g = GatewayFleet(env, spec, n, buckets, hop,
                                 sampler(spec.service_ms, self._rng(name), 1e-3), next(balancer_seeds), name)
                self.gateways[name] = g
                self.fleets[name] = g.fleet
            elif comp.kind == "service":
                if not self._spaces_calling(name):  # a consumer only: stations owned per partition
                    fleet = Fleet(env, name, n, spec.workers, spec.queue_limit)
                else:
                    fleet = Fleet(env, name, n, spec.workers, spec.queue_limit, spec.balancer,
                                  next(balancer_seeds))
                self.fleets[name] = fleet
                rng = self._rng(name)
                rngs = [rng] if len(comp.ops) == 1 else rng.spawn(len(comp.ops))
                for (op, o), r in zip(comp.ops.items(), rngs, strict=True):
                    self.op_ms[name, op] = sampler(o.service_ms, r, 1e-3)
                    self.per_member_s[name, op] = o.per_member_ms * 1e-3
            elif comp.kind == "cassandra":
                c = CassandraCluster(env, spec, n, hop, self._rng(name), sc.network.zones, name)
                self.cassandras[name] = c
                self.fleets[name] = c.fleet
            elif comp.kind == "redis":
                cache = self._cache_model(name)
                if self._cached_space(name) is not None:
                    self.caches[name] = cache
                r = RedisCluster(env, spec, n, cache, hop, self._rng(name), name)
                self.redises[name] = r
                self.fleets[name] = r.fleet
            else:
                partitions = cell.fleets.get(f"{name}_partitions")
                k = KafkaCluster(env, spec, n, partitions.simulated if partitions else spec.partitions, hop,
                                 self._rng(name), name)
                self.kafkas[name] = k
                self.fleets[name] = k.fleet
        for flow in self.system.flows.values():  # each triggered flow's consumer group
            if flow.consumer is None or flow.source is None:
                continue
            kafka = self.kafkas[flow.source]
            stations = self.fleets[flow.consumer.component].stations
            kafka.group = ConsumerGroup(env, kafka.partitions, stations, flow.consumer.max_in_flight,
                                        self.runner.consume)
            kafka.on_commit = self._committer(flow)
        for fleet in self.fleets.values():
            for st in fleet.stations:
                st.zone = st.index % sc.network.zones

    def _spaces_calling(self, comp: str) -> set[str]:
        """The key spaces of the calls that reach `comp` (a gateway keeps a token bucket per key)."""
        return {space for flow in self.system.flows.values() for step, space in routed(flow)
                if isinstance(step, Call) and step.component == comp}

    def _cached_space(self, redis: str) -> str | None:
        """The key space `redis`'s cache steps look up (compile allows one), or None."""
        return next((space for flow in self.system.flows.values() for step, space in routed(flow)
                     if isinstance(step, CacheLookup) and step.component == redis), None)

    def _cache_model(self, name: str) -> CacheModel:
        sc, cell = self.scenario, self.cell
        if self.messaging:
            assert self.population is not None
            return scenario_cache_model(sc, self.population.read_weights, cell.sample)
        spec = self.system.components[name].spec
        space_name = self._cached_space(name)
        if space_name is None:
            return fixed_cache_model(1, 0.0, 1.0)
        space = self.system.keys[space_name]
        value_bytes = mean_of(space.value_bytes) if space.value_bytes is not None else 512.0
        item = value_bytes + CACHE_ENTRY_OVERHEAD_BYTES
        weights = cell_weights(space.count, space.zipf_s, cell.sample)
        if spec.hit_ratio is not None:
            return fixed_cache_model(weights.size, spec.hit_ratio, item)
        full = spec.shards * spec.memory_gb_per_shard * spec.usable_memory_fraction * 2**30
        return lru_cache_model(weights, full * cell.sample, item)

    def consistency_k(self, comp: str, level: str | None) -> int | None:
        if level is None:
            return None
        key = (comp, level)
        if key not in self._k:
            self._k[key] = replies_needed(level, self.cassandras[comp].rf)
        return self._k[key]

    # -- routing -------------------------------------------------------------------------------
    def _routes(self) -> None:
        """Per (component, key space) a flow routes by: each cell key's node, shard or partition."""
        self.route: dict[tuple[str, str], Any] = {}
        for flow in self.system.flows.values():
            for step, space in routed(flow):
                self._route(step.component, space)

    def _route(self, comp: str, space_name: str) -> None:
        if (comp, space_name) in self.route:
            return
        kind = self.system.components[comp].kind
        if kind in ("gateway", "service"):
            return
        ids = np.arange(self.space_size[space_name])
        salt = self.system.keys[space_name].salt_for(kind)
        if kind == "cassandra":
            table = self.cassandras[comp].positions(ids, salt=salt)
        elif kind == "redis":
            table = self.redises[comp].shards_of(ids, salt=salt)
        else:
            table = self.kafkas[comp].partitions_of(ids, salt=salt)
        self.route[comp, space_name] = memoryview(table)
        if kind == "redis" and self._cached_space(comp) == space_name:
            self.redises[comp].conv_shard = self.route[comp, space_name]


    # -- sources -------------------------------------------------------------------------------
    def _sources(self) -> None:
        self._gaps: dict[str, Callable[[], float] | None] = {}
        self._draws: dict[str, Callable[[], Request]] = {}
        self._client_edges: dict[str, Edge | None] = {}
        for flow in self.system.flows.values():
            if flow.triggered:
                continue
            assert flow.rate_per_sec is not None
            rate = flow.rate_per_sec * self.cell.sample
            rng = (self.rngs[flow.arrival_stream] if flow.arrival_stream
                   else named_rng(self.scenario.seed, "arrivals", flow.name))
            self._gaps[flow.name] = self._gap_sampler(rate, rng)
            self._draws[flow.name] = self._drawer(flow)
            first = next((s for s in flow.steps if hasattr(s, "component")), None)
            self._client_edges[flow.name] = (self.edges.get(f"client->{first.component}")  # type: ignore[union-attr]
                                             if first is not None else None)

    def _gap_sampler(self, rate: float, rng: np.random.Generator) -> Callable[[], float] | None:
        if rate <= 0:
            return None
        if self.scenario.workload.arrivals == "deterministic" and self.messaging:
            return itertools.repeat(1.0 / rate).__next__
        mean = 1.0 / rate
        return stream(lambda: rng.exponential(mean, BLOCK).tolist())

    def _drawer(self, flow: Flow) -> Callable[[], Request]:
        env, name = self.env, flow.name
        if flow.draw == "reader":
            return lambda: Request(name, env._now, self.readers(), -1)
        if flow.draw in ("sender", "conversation_reader"):  # a conversation, then one of its members
            pop = self.population
            assert pop is not None
            sending = flow.draw == "sender"
            conversation = self.send_conv if sending else self.read_conv
            weights = pop.send_member_weights if sending else pop.read_member_weights
            uniform = self.sender_u if sending else self.reader_u

            def member() -> Request:
                conv = conversation()
                members = self.members(conv)
                slot = draw_member(members, weights, uniform())
                return Request(name, env._now, int(members[slot]), conv, slot=slot)
            return member
        if flow.draw == "new":
            fresh = self._fresh[name]
            return lambda: Request(name, env._now, key=fresh(), new=True)
        popular = self._space_draw[flow.space]
        return lambda: Request(name, env._now, key=popular())

    def _arrive(self, event: Any) -> None:
        name: str = event._value
        gap = self._gaps[name]
        if gap is not None and self._arrivals_open:
            delay = gap() / self.load_factor
            if self.env._now + delay < self.scenario.duration_s:
                schedule(self.env, delay, self._arrive, name)
        req = self._draws[name]()
        now = self.env._now
        self.recorder.start(name, now, now)
        edge = self._client_edges[name]
        if edge is None:
            self._start(req)
        else:
            edge.call(self._attempt, self.finish, req)

    def _start(self, req: Request) -> None:
        flow = self.system.flows[req.flow]
        self.runner.run(Cursor(req, flow.steps, self.keys_of(req, flow.space), flow.space, None, None,
                               lambda error: self.finish(req, error)))

    def _attempt(self, reply: Callable[[Any, str | None], None], token: Any) -> None:
        """One client attempt of a request: its own path through the system, answering `reply`."""
        root: Request = token[0].ctx
        att = Request(root.flow, self.env._now, root.user, root.conv, slot=root.slot, key=root.key,
                      new=root.new)
        att.reply = reply
        att.token = token
        self._start(att)

    def finish(self, req: Request, error: str | None) -> None:
        if req.done:
            raise RuntimeError(f"{req.flow} request finished twice")
        req.done = True
        if req.reply is not None:  # an attempt: the client edge decides (retry or answer)
            if error is None:
                req.token[0].ctx.marks = req.marks
            req.reply(req.token, error)
            return
        self.recorder.finish(req.flow, req.t0, req.started, self.env._now, error, req.marks)

    def _committer(self, flow: Flow) -> Callable[[int, Any], None]:
        kafka = self.kafkas[flow.source]  # type: ignore[index]

        def committed(partition: int, record: Request) -> None:
            now = self.env._now
            self.recorder.start(flow.name, record.t0, now)
            req = Request(flow.name, record.t0, record.user, record.conv, now, slot=record.slot,
                          key=record.key, new=record.new)
            req.marks.append((f"{record.flow}_and_produce", now))
            assert kafka.group is not None
            kafka.group.append(partition, req)
        return committed

    # -- run -----------------------------------------------------------------------------------
    def _window_utilization(self) -> dict[str, list[float]]:
        """Each instance's busy share over the window just closed, per component (the live view's
        heat map; the run's own figure is the measured period's, in summary.json)."""
        now, window = self.env._now, self.recorder.window_s
        out: dict[str, list[float]] = {}
        for name, fleet in self.fleets.items():
            shares = []
            for st in fleet.stations:
                area = st.busy_area + st.busy * (now - st._last)  # read only: watching must not change
                # the run's own sums (their rounding), so the live view leaves its figures bit-identical
                total = area + self._busy_carry.pop(st, 0.0)  # busy seconds since the last window
                shares.append((total - self._busy_seen.get(st, 0.0)) / (st.servers * window))
                self._busy_seen[st] = area
            out[name] = shares
        return out

    def _start_measuring(self, _event: Any) -> None:
        now = self.env._now
        if self.on_window is not None:  # the reset zeroes busy time: carry what the window has so far
            for fleet in self.fleets.values():
                for st in fleet.stations:
                    area = st.busy_area + st.busy * (now - st._last)
                    self._busy_carry[st] = area - self._busy_seen.get(st, 0.0)
                    self._busy_seen[st] = 0.0
        for fleet in self.fleets.values():
            fleet.reset_stats()
        self._lookups_at_warmup = self._lookups()
        for kafka in self.kafkas.values():
            if kafka.group is not None:
                kafka.group.measuring = True
        self.recorder.begin_measuring(now)

    def _lookups(self) -> tuple[int, int]:
        return (sum(r.hits for r in self.redises.values()), sum(r.misses for r in self.redises.values()))

    def _ticker(self) -> Any:
        window = self.recorder.window_s
        while (self._windows_closed + 1) * window <= self.scenario.duration_s + 1e-9:
            yield self.env.timeout(window)
            if (self._windows_closed + 1) * window > self.scenario.duration_s + 1e-9:
                return  # run() closed the last window itself (run(until) stops before it fires)
            self._close_window()

    def _groups(self) -> list[ConsumerGroup]:
        return [k.group for k in self.kafkas.values() if k.group is not None]

    def _close_window(self) -> None:
        """Close the next per-second window: the recorder's counts plus cache and Kafka state."""
        self._windows_closed += 1
        t = self._windows_closed * self.recorder.window_s
        row = self.recorder.close_window(t, 1.0 / self.cell.sample)
        if self.redises:
            hits, misses = self._lookups()
            dh, dm = hits - self._window_lookups[0], misses - self._window_lookups[1]
            self._window_lookups = (hits, misses)
            row["cache_hit_ratio"] = dh / (dh + dm) if dh + dm else math.nan
        groups = self._groups()
        if groups:
            row["kafka_lag_max_s"] = max(g.window_lag_max_s for g in groups)
            row["kafka_backlog_msgs"] = sum(g.backlog() for g in groups)
            for g in groups:
                g.window_lag_max_s = 0.0
        if self.on_window is not None:  # a copy: the live view adds what timeseries.csv leaves out
            self.on_window({**row, "utilization": self._window_utilization()})
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
        for name, gap in self._gaps.items():
            if gap is not None:
                delay = gap()
                if delay < sc.duration_s:
                    schedule(env, delay, self._arrive, name)
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
        groups = self._groups()
        hits, misses = self._lookups()
        cassandras = list(self.cassandras.values())
        return RunState(
            scenario=sc,
            cell=self.cell,
            recorder=self.recorder,
            fleets=self.fleets,
            cache=next(iter(self.caches.values()), None),
            cache_component=next(iter(self.caches), None),
            redis_hits=hits - self._lookups_at_warmup[0],
            redis_misses=misses - self._lookups_at_warmup[1],
            kafka_lag_max_s=max((g.lag_max_s for g in groups), default=0.0),
            kafka_lag_max_msgs=max((g.lag_max_msgs for g in groups), default=0),
            kafka_backlog=sum(g.backlog() for g in groups),
            async_errors=self.runner.async_errors,
            mix=self.mix,
            edges={name: edge.stats() for name, edge in self.edges.items()},
            cassandra_faults={
                "unavailable": sum(c.unavailable for c in cassandras),
                "hints_stored": sum(c.hints_stored for c in cassandras),
                "hints_replayed": sum(c.hints_replayed for c in cassandras),
                "hedged_reads": sum(c.hedges for c in cassandras),
                "lost_writes": sum(c.lost_writes for c in cassandras),
            } if cassandras else {},
            kafka_unavailable=sum(k.unavailable for k in self.kafkas.values()),
            rate_limited=sum(g.rate_limited for g in self.gateways.values()),
            events=next(env._eid),  # events scheduled (SimPy numbers each one)
            sim_seconds=end,
            measured_seconds=end - sc.warmup_s,
            wall_seconds=time.perf_counter() - wall0,
            drained=drain,
            system=self.system,
        )

