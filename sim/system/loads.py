"""A design's load without simulating: the traffic equations of its flows (pure arithmetic).

Each flow's full-scale rate times the expected visits of each of its steps gives every
component's operations per second, by the conventions of sim/analytic.py:

- a `Call` is one operation, except on Cassandra: a write goes to every one of the
  replication_factor replicas, a read to the k replicas its consistency level waits for (the
  step's `consistency`, else the component's read_consistency);
- a `Produce` is one append on the partition leader plus one per follower (replication_factor
  appends), and starts its flow `then` at the producing rate;
- a `Parallel` runs every branch, awaited or not;
- a `FanOut` runs its steps once per member: the mean of its `members` distribution
  (`sim.distributions.mean_of`, the mean before any min/max clipping);
- a `CacheLookup` is one redis `get`; its miss branch runs (1 - h) times, and a fill (a redis
  `set`) (1 - h) times when `fill`;
- a service operation costs its mean service time plus per_member_ms x the mean members of the
  first `FanOut` after it in the same step list (0 when none follows); a triggered flow's consumer
  runs its operation once per record, its per_member_ms against the first `FanOut` of the flow's
  own steps.

A redis component's hit ratio h is its `hit_ratio` when the scenario fixes one, else Che's
approximation for LRU (`sim.system.keys.che_hit_ratio`) over each key space its cache steps look
up. Its memory, shards x memory_gb_per_shard x usable_memory_fraction, holds keys of mean
value_bytes + CACHE_ENTRY_OVERHEAD_BYTES. A design caches one space per redis (sim/system/compile.py
refuses more); for a System that caches several on one redis, its memory is split
between them by each space's share of its lookups (a rough rule: LRU over the merged key set would
share it by popularity, not by lookups), and each space's misses use that space's own ratio. The
ratio reported for the component is the lookup-weighted mean over its spaces. A cache inside
another cache's miss branch makes the lookup shares depend on the hit ratios; the ratios are
iterated to their fixed point.

`hot_key_visits` applies the same equations to the most popular key of one space, the key whose
operations land on one redis shard, one cassandra replica set and one kafka partition.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from sim.analytic import Load
from sim.distributions import mean_of
from sim.fleet_specs import replies_needed
from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES, che_hit_ratio, che_time, rank_bins
from sim.system.model import CacheLookup, Call, Component, FanOut, Flow, Parallel, Produce, Step, System

GIB = 2**30
MAX_ITERATIONS = 100  # hit-ratio fixed point (only nested caches need more than one pass)

HitOf = Callable[[str, str], float]  # (redis component, key space) -> hit probability


@dataclass(frozen=True)
class OpRate:
    per_sec: float  # full scale; replica operations for cassandra, leader + follower appends for kafka
    service_ms: float  # mean, weighted over the places the operation is called from


@dataclass(frozen=True)
class DesignLoads:
    ops: dict[str, dict[str, OpRate]]  # component -> operation -> calls per second
    loads: dict[str, Load]  # component -> instances, servers per instance, ops/s, weighted mean service_ms
    hit_ratios: dict[str, float]  # redis component -> hit ratio used for its cache steps
    flow_rates: dict[str, float]  # every flow's full-scale rate (triggered: its producers' rate)


@dataclass(frozen=True)
class Visit:
    """One step's operations on one component, from one flow."""

    flow: str
    component: str
    op: str
    per_sec: float  # operations/s on the component (replicas counted)
    requests_per_sec: float  # requests reaching the step (a cassandra read by 2 replicas: half per_sec)
    service_ms: float
    space: str  # the key space the operation routes by
    popular: bool  # its key is drawn by popularity (False: a fresh `.new` key)


@dataclass
class _Ledger:
    visits: list[Visit] = field(default_factory=list)
    lookups: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    produced: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    fresh: set[str] = field(default_factory=set)  # triggered flows whose records carry fresh keys


class _Walker:
    """Walks a flow's steps at a rate, recording visits (the traffic equations of the module doc)."""

    def __init__(self, system: System, hit_of: HitOf, relation_members: dict[str, float]) -> None:
        self.system = system
        self.hit_of = hit_of
        self.relation_members = relation_members
        self.ledger = _Ledger()

    def members(self, fo: FanOut) -> float:
        if fo.relation == "group":
            assert fo.members is not None
            return mean_of(fo.members)
        if fo.relation not in self.relation_members:
            raise ValueError(f"fan-out {fo.name}: relation {fo.relation} needs its mean members "
                             "(relation_members), as the messaging workload model gives them")
        return self.relation_members[fo.relation]

    def following_members(self, steps: tuple[Step, ...]) -> float:
        fo = next((s for s in steps if isinstance(s, FanOut)), None)
        return 0.0 if fo is None else self.members(fo)

    def emit(self, flow: Flow, comp: Component, op: str, requests: float, space: str, popular: bool,
             per_member: float = 0.0, replicas: int = 1) -> None:
        o = comp.ops[op]
        ms = mean_of(o.service_ms) + o.per_member_ms * per_member
        self.ledger.visits.append(Visit(flow.name, comp.name, op, requests * replicas, requests, ms, space,
                                        popular))

    def flow(self, flow: Flow, rate: float) -> None:
        popular = flow.draw != "new" and flow.name not in self.ledger.fresh
        if flow.consumer is not None:
            comp = self.system.components[flow.consumer.component]
            self.emit(flow, comp, flow.consumer.op, rate, flow.space, popular,
                      self.following_members(flow.steps))
        self.steps(flow, flow.steps, rate, flow.space, popular)

    def steps(self, flow: Flow, steps: tuple[Step, ...], rate: float, space: str, popular: bool) -> None:
        for i, step in enumerate(steps):
            self.step(flow, step, steps[i + 1:], rate, space, popular)

    def step(self, flow: Flow, step: Step, rest: tuple[Step, ...], rate: float, space: str,
             popular: bool) -> None:
        comps = self.system.components
        if isinstance(step, Call):
            comp = comps[step.component]
            where = step.key or space
            if comp.kind == "cassandra":
                rf = comp.spec.replication_factor
                level = step.consistency or comp.spec.read_consistency
                replicas = rf if step.op == "write" else replies_needed(level, rf)
                self.emit(flow, comp, step.op, rate, where, popular, replicas=replicas)
            else:
                per_member = self.following_members(rest) if comp.kind == "service" else 0.0
                self.emit(flow, comp, step.op, rate, where, popular, per_member)
        elif isinstance(step, Parallel):
            for branch in step.steps:
                self.step(flow, branch, (), rate, space, popular)
        elif isinstance(step, FanOut):
            inner = step.space or {"conversation_members": "user", "user_conversations": "conversation"}.get(
                step.relation, space)
            self.steps(flow, step.steps, rate * self.members(step), inner, True)
        elif isinstance(step, CacheLookup):
            comp = comps[step.component]
            where = step.key or space
            self.ledger.lookups[(comp.name, where)] += rate
            self.emit(flow, comp, "get", rate, where, popular)
            misses = rate * (1.0 - self.hit_of(comp.name, where))
            self.steps(flow, step.miss, misses, space, popular)
            if step.fill:
                self.emit(flow, comp, "set", misses, where, popular)
        else:
            assert isinstance(step, Produce)
            comp = comps[step.component]
            self.emit(flow, comp, "produce", rate, step.key or space, popular,
                      replicas=comp.spec.replication_factor)
            if step.then is not None:
                self.ledger.produced[step.then] += rate
                if not popular:  # its records carry the producing request's fresh key
                    self.ledger.fresh.add(step.then)


def walk_flows(system: System, hit_of: HitOf,
               relation_members: dict[str, float] | None = None) -> tuple[_Ledger, dict[str, float]]:
    """Every flow's visits at its full-scale rate, and every flow's rate (a triggered flow's is the
    rate of the produce steps feeding it; flows are walked after the flows that produce into them)."""
    walker = _Walker(system, hit_of, relation_members or {})
    rates: dict[str, float] = {}
    pending = list(system.flows.values())
    while pending:
        ready = [f for f in pending if not f.triggered or _producer_done(system, f, rates)]
        if not ready:  # compile rejects loops and orphans; this is a guard, not a path
            raise ValueError(f"flows {', '.join(f.name for f in pending)} are never produced into")
        for f in ready:
            rate = f.rate_per_sec if f.rate_per_sec is not None else walker.ledger.produced.get(f.name, 0.0)
            rates[f.name] = rate
            walker.flow(f, rate)
        pending = [f for f in pending if f.name not in rates]
    return walker.ledger, rates


def _producer_done(system: System, flow: Flow, rates: dict[str, float]) -> bool:
    producers = [f.name for f in system.flows.values()
                 if any(isinstance(s, Produce) and s.then == flow.name for s in _all_steps(f.steps))]
    return all(p in rates for p in producers)


def _all_steps(steps: tuple[Step, ...]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out.append(s)
        if isinstance(s, Parallel | FanOut):
            out += _all_steps(s.steps)
        elif isinstance(s, CacheLookup):
            out += _all_steps(s.miss)
    return out


# -- the cache ---------------------------------------------------------------------------------------
def cache_capacity_keys(redis: Component, value_bytes: float, share: float = 1.0) -> float:
    """Keys of `value_bytes` (plus the entry overhead) a redis component's usable memory holds,
    times `share`, the part of its memory given to one key space."""
    spec = redis.spec
    memory = spec.shards * spec.memory_gb_per_shard * spec.usable_memory_fraction * GIB
    return share * memory / (value_bytes + CACHE_ENTRY_OVERHEAD_BYTES)


def _space_shares(lookups: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Each (redis, space)'s share of that redis's lookups (equal shares when it has none)."""
    out: dict[tuple[str, str], float] = {}
    for redis in {r for r, _ in lookups}:
        mine = {k: v for k, v in lookups.items() if k[0] == redis}
        total = sum(mine.values())
        for k, v in mine.items():
            out[k] = v / total if total > 0 else 1.0 / len(mine)
    return out


def _che(system: System, redis: str, space: str, share: float) -> float:
    ks = system.keys[space]
    if ks.value_bytes is None:
        raise ValueError(f"key space {space} has no value_bytes; pass redis {redis}'s hit ratio")
    capacity = cache_capacity_keys(system.components[redis], mean_of(ks.value_bytes), share)
    return _che_ratio(ks.count, ks.zipf_s, capacity)


@lru_cache(maxsize=64)
def _che_ratio(count: int, zipf_s: float, capacity_keys: float) -> float:
    return che_hit_ratio(count, zipf_s, capacity_keys)


@lru_cache(maxsize=16)
def _bins(count: int, zipf_s: float) -> tuple[np.ndarray, np.ndarray]:
    return rank_bins(count, zipf_s)


def cache_hits(system: System, hit_ratios: dict[str, float] | None = None,
               relation_members: dict[str, float] | None = None
               ) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """Hit probability per (redis, key space) its cache steps look up, and per redis component
    (lookup-weighted). `hit_ratios` (e.g. a run's realised ones) and a component's fixed
    `hit_ratio` win over Che, in that order."""
    fixed = {c.name: float(c.spec.hit_ratio) for c in system.of_kind("redis") if c.spec.hit_ratio is not None}
    fixed.update(hit_ratios or {})
    space_hits: dict[tuple[str, str], float] = {}

    def hit_of(redis: str, space: str) -> float:
        return fixed[redis] if redis in fixed else space_hits.get((redis, space), 0.0)

    ledger, _ = walk_flows(system, hit_of, relation_members)
    for _ in range(MAX_ITERATIONS):
        shares = _space_shares(ledger.lookups)
        space_hits = {k: hit_of(*k) if k[0] in fixed else _che(system, k[0], k[1], share)
                      for k, share in shares.items()}
        before = dict(ledger.lookups)
        ledger, _ = walk_flows(system, hit_of, relation_members)
        if all(math.isclose(v, before.get(k, math.nan), rel_tol=1e-12, abs_tol=1e-12)
               for k, v in ledger.lookups.items()):
            break  # the lookups (so the memory shares) no longer move: the ratios are the fixed point
    per_redis: dict[str, float] = {}
    for redis in sorted({r for r, _ in space_hits}):
        mine = {k: v for k, v in ledger.lookups.items() if k[0] == redis}
        total = sum(mine.values())
        per_redis[redis] = (fixed[redis] if redis in fixed else
                            sum(space_hits[k] * v for k, v in mine.items()) / total if total > 0 else
                            sum(space_hits[k] for k in mine) / len(mine))
    return space_hits, per_redis


def design_loads(system: System, hit_ratios: dict[str, float] | None = None,
                 relation_members: dict[str, float] | None = None) -> DesignLoads:
    """Full-scale operations per component and operation, and the fleet-wide `Load` per component.

    `hit_ratios`: per redis component, overriding the cache model (a run's realised ratios);
    `relation_members`: mean members of the messaging population's fan-out relations
    (conversation_members, user_conversations), needed only for the messaging preset's system."""
    space_hits, per_redis = cache_hits(system, hit_ratios, relation_members)
    ledger, rates = walk_flows(system, lambda r, s: space_hits[(r, s)], relation_members)
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for v in ledger.visits:
        acc = sums[v.component][v.op]
        acc[0] += v.per_sec
        acc[1] += v.per_sec * v.service_ms
    ops = {comp: {op: OpRate(r, w / r if r > 0 else mean_of(system.components[comp].ops[op].service_ms))
                  for op, (r, w) in by_op.items()}
           for comp, by_op in sums.items()}
    loads: dict[str, Load] = {}
    for name, comp in system.components.items():
        mine = ops.get(name, {})
        rate = sum(o.per_sec for o in mine.values())
        service = sum(o.per_sec * o.service_ms for o in mine.values()) / rate if rate > 0 else 0.0
        loads[name] = Load(name, comp.instances, int(comp.spec.workers), rate, service)
    return DesignLoads(ops=ops, loads=loads, hit_ratios=per_redis, flow_rates=rates)


def station_visits_per_sec(loads: DesignLoads) -> float:
    """Operations per second over every component: the station visits a run of the design makes."""
    return sum(load.ops_per_sec for load in loads.loads.values())


# -- the most popular key ------------------------------------------------------------------------------
def top_key_share(space_count: int, zipf_s: float) -> float:
    """The most popular key's share of its space's requests (rank 0 of `rank_bins`)."""
    _, p = _bins(space_count, zipf_s)
    return float(p[0])


def cell_top_key_share(space_count: int, zipf_s: float, sample: float) -> float:
    """The busiest cell key's share of the cell's requests: its bin of ~1/F ranks
    (sim.workload.zipf_cell_weights' first weight, without building the others)."""
    from sim.workload import cell_size, zipf_partial_sums

    n_cell = cell_size(space_count, sample)
    if zipf_s == 0:
        return 1.0 / n_cell
    n_full = max(n_cell, round(n_cell / sample))
    first, last = math.floor(n_full / n_cell), math.floor(n_cell * (n_full / n_cell))
    s = zipf_partial_sums(np.array([0, first, last], dtype=np.int64), zipf_s)
    return float((s[1] - s[0]) / (s[2] - s[0]))


def top_key_hit(system: System, redis: str, space: str, share: float) -> float:
    """Che's probability that the most popular key of `space` is in `redis` (given `share` of its
    memory), 1 - exp(-p_0 T)."""
    ks = system.keys[space]
    assert ks.value_bytes is not None
    capacity = cache_capacity_keys(system.components[redis], mean_of(ks.value_bytes), share)
    if capacity >= ks.count:
        return 1.0
    if capacity < 1:
        return 0.0
    sizes, p = _bins(ks.count, ks.zipf_s)
    return float(-math.expm1(-p[0] * che_time(sizes, p, capacity)))


def hot_key_visits(system: System, space: str, hit_ratios: dict[str, float] | None = None) -> list[Visit]:
    """The full-scale visits of the most popular key of `space`: every step routed by a key of the
    space drawn by popularity, at (requests reaching the step) x the key's share. Caches on the
    space use the key's own hit probability (Che: near 1 for a hot key), other caches their mean."""
    space_hits, _ = cache_hits(system, hit_ratios)
    ledger, _ = walk_flows(system, lambda r, s: space_hits[(r, s)])
    fixed = {c.name for c in system.of_kind("redis") if c.spec.hit_ratio is not None} | set(hit_ratios or {})
    shares = _space_shares(ledger.lookups)
    hot_hits = {k: (h if k[0] in fixed or k[1] != space else top_key_hit(system, k[0], k[1], shares[k]))
                for k, h in space_hits.items()}
    ledger, _ = walk_flows(system, lambda r, s: hot_hits[(r, s)])
    ks = system.keys[space]
    top = top_key_share(ks.count, ks.zipf_s)
    return [Visit(v.flow, v.component, v.op, v.per_sec * top, v.requests_per_sec * top, v.service_ms, v.space,
                  True)
            for v in ledger.visits if v.space == space and v.popular]
