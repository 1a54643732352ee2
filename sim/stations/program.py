"""A design's flows as the stations engine's kernels read them: nodes in flat tables, built once.

Each step that reaches a component is a node; a flow's steps are linked by `NEXT` (-1: the sequence
ends and answers its join, or ends the request). A `Parallel` is a node whose branches start at
rows of the branch table; a Cassandra call is a node that sends one job to each replica it asks
and waits at a join for the replies its consistency level needs (the DES's rules: a write asks
every replica, a read the first k from a random offset in the replica list); a cache lookup is a
Redis job whose answer is a hit with the key's probability under the cache model (a fresh key
never hits), else its miss branch runs in line, and a fill after it is a parallel step nobody waits
for whose one branch sets the key on the cache. Components run in one order every flow follows
(`order`): a flow calls a component only after the ones before it in the order, but for a fill,
which goes back to the cache (`loop`: the components a chunk runs in slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from sim.arrays.placement import salt_mixed
from sim.arrays.rng import compile_dist
from sim.cache import CacheModel, fixed_cache_model, lru_cache_model
from sim.distributions import Deterministic, DistSpec, Empirical, mean_of
from sim.fleet_specs import replies_needed
from sim.placement import TokenRing
from sim.scenario import Scenario
from sim.streams import named_rng
from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES, cell_weights
from sim.system.model import CacheLookup, Call, FanOut, Parallel, Step, System

# node kinds
CALL, CASSANDRA, PARALLEL, CACHE, FANOUT = 0, 1, 2, 3, 4
# columns of Program.nodes (a fan-out: DIST its members' distribution, BRANCH0 its branch's first
# node, ASK the most members, SPACE its members' key space in `fan_spaces`; a call: FAN the fan-out
# whose members its per-member cost counts, -1 none)
(KIND, COMP, NEXT, FLOW, DIST, ROUTE, SALT, NEED, ASK, READ, BRANCH0, MISS, CAUSE, READY, TOK0, TOKN,
 REP0, RF, HIT0, MCOL, LIMITED, FAN, SPACE) = range(23)
N_COLS = 23
MAX_MEMBERS = 256  # a fan-out's members at most: a join row keeps room for each one's answer
# how a component picks the instance of a call: at random, by the key's hash slot, by the token ring,
# or in one rotation in the order the calls are made (assigned when the component takes them)
BALANCED, SHARD, RING, ROBIN = 0, 1, 2, 3
KINDS = ("gateway", "service", "cassandra", "redis")
# The components of a loop (a cache fill goes back to the cache after the miss branch) take their turns
# in slices of this much simulated time at most. A fill made and due within the slice its lookup was
# served in reaches the cache after the cache's turn: it waits for the next slice, where the station
# serves it behind the lookups that arrived after it, less than this much later (the fill's work the
# same; nobody waits for it). A loop whose delay has a positive minimum above this would be exact.
LOOP_SLICE_S = 0.5e-3


Edges = list[tuple[int, int]]


def _entries_exits(steps: tuple[Step, ...], comp: dict[str, int]) -> tuple[set[int], set[int], Edges]:
    """The components a sequence's first step reaches, those its last answers from, and the edges
    (a, b): a component b reached after an answer from a."""
    edges: Edges = []
    first: set[int] = set()
    last: set[int] = set()
    for i, step in enumerate(steps):
        if isinstance(step, Parallel | FanOut):
            ins, outs = set(), set()
            for branch in (step.steps if isinstance(step, Parallel) else (step.steps,)):
                a, b, e = _entries_exits(branch if isinstance(branch, tuple) else (branch,), comp)
                ins |= a
                outs |= b
                edges += e
        elif isinstance(step, CacheLookup):
            lookup = comp[step.component]
            a, b, e = _entries_exits(step.miss, comp)
            edges += e + [(lookup, x) for x in a]
            ins, outs = {lookup}, {lookup} | b
        else:
            assert isinstance(step, Call)
            ins = outs = {comp[step.component]}
        edges += [(a, b) for a in last for b in ins]
        if i == 0:
            first = set(ins)
        last = outs
    return first, last, edges


def component_order(system: System, names: list[str]) -> list[str] | None:
    """The components in an order every flow calls them in (declaration order among equals), or
    None when the flows call them in a cycle."""
    comp = {name: i for i, name in enumerate(names)}
    before: dict[int, set[int]] = {i: set() for i in range(len(names))}
    for flow in system.flows.values():
        for a, b in _entries_exits(flow.steps, comp)[2]:
            before[b].add(a)
    order: list[int] = []
    while len(order) < len(names):
        ready = [i for i in range(len(names)) if i not in order and before[i] <= set(order)]
        if not ready:
            return None
        order.append(ready[0])
    return [names[i] for i in order]


@dataclass
class Program:
    system: System
    order: list[str]  # the components, in the order a chunk runs them
    base: dict[str, int]  # each component's first station
    nodes: np.ndarray  # int64 [N, N_COLS]
    branches: np.ndarray  # int64 [B, 2]: a branch's first node, awaited (1) or not
    svc_params: np.ndarray  # float64 [D, 6]: service distributions (sim/arrays/rng.py rows)
    svc_values: np.ndarray
    svc_voff: np.ndarray  # int64 [D + 1]
    hop_params: np.ndarray
    hop_values: np.ndarray
    comps: np.ndarray  # int64 [C, 2]: first station, instances (in `order`)
    salts: np.ndarray  # uint64: mixed salts of the (component, key space) routes
    tokens: np.ndarray  # uint64: each Cassandra component's ring tokens, concatenated
    replicas: np.ndarray  # int64: their replica lists, concatenated
    hit_p: np.ndarray  # float64: each cached space's hit probability per key, concatenated
    flows: list[str]  # client flows, by index
    first_node: list[int]  # each flow's first node
    causes: list[str]  # failure causes by code
    space_of: list[str]  # each flow's key space
    # per flow, the component each of its marks names (a node's MCOL: its column in the flow's marks)
    mark_labels: list[list[str]] = field(default_factory=list)
    caches: dict[str, CacheModel] = field(default_factory=dict)
    # rate-limited components (by their place in `order`): (per key per s, burst, keys: the largest
    # space calling it; a key's bucket is its index, as the DES's GatewayFleet)
    limits: dict[int, tuple[float, float, int]] = field(default_factory=dict)
    per_member_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 [N]: a call's per member
    fan_spaces: list[str] = field(default_factory=list)  # the key spaces fan-outs draw members from
    servers: list[int] = field(default_factory=list)
    qlimits: list[int | None] = field(default_factory=list)
    fleets: list[int] = field(default_factory=list)
    # the components a loop runs through, first and last in `order` (a cache fill goes back to the
    # cache after its miss branch's components): a chunk runs them in slices (sim/stations/engine.py)
    loop: tuple[int, int] | None = None


def build(scenario: Scenario, system: System, order: list[str]) -> Program:
    comps = system.components
    c_of = {name: i for i, name in enumerate(order)}
    base: dict[str, int] = {}
    servers: list[int] = []
    qlimits: list[int | None] = []
    fleets: list[int] = []
    for i, name in enumerate(order):
        spec, n = comps[name].spec, comps[name].instances
        base[name] = len(servers)
        servers += [spec.workers] * n
        qlimits += [spec.queue_limit] * n
        fleets += [i] * n
    flows = [name for name, fl in system.flows.items() if fl.rate_per_sec]
    # each component's failures (kernel.after: its code's block), then the others as they come
    causes = [f"{name}.{what}" for what in ("rejected", "unavailable", "crashed") for name in order]
    dists: list[tuple[np.ndarray, np.ndarray]] = []
    dist_of: dict[tuple[str, str], int] = {}
    salts: list[int] = []
    salt_of: dict[tuple[str, str], int] = {}
    rings: dict[str, tuple[int, int, int, int]] = {}
    tokens: list[np.ndarray] = []
    replicas: list[np.ndarray] = []
    hit: dict[str, int] = {}
    hit_arrays: list[np.ndarray] = []
    caches: dict[str, CacheModel] = {}
    n_tok = n_rep = n_hit = 0
    nodes: list[list[int]] = []
    branches: list[list[int]] = []
    mark_labels: list[list[str]] = []
    limits: dict[int, tuple[float, float, int]] = {}
    per_member: dict[int, float] = {}
    fan_spaces: list[str] = []
    loops: list[tuple[int, int]] = []

    def dist(name: str, op: str) -> int:
        if (name, op) not in dist_of:
            d = compile_dist(comps[name].ops[op].service_ms, 1e-3)
            dist_of[name, op] = len(dists)
            dists.append((d.params, d.values))
        return dist_of[name, op]

    def salt(name: str, space: str) -> int:
        if (name, space) not in salt_of:
            salt_of[name, space] = len(salts)
            salts.append(int(salt_mixed(system.keys[space].salt_for(comps[name].kind))))
        return salt_of[name, space]

    def ring(name: str) -> tuple[int, int, int, int]:
        nonlocal n_tok, n_rep
        if name not in rings:
            spec = comps[name].spec
            rng = named_rng(scenario.seed, "stations", "ring", name)
            r = TokenRing.build(spec.nodes, spec.vnodes, spec.replication_factor, scenario.network.zones, rng)
            rings[name] = (n_tok, r.tokens.size, n_rep, spec.replication_factor)
            tokens.append(r.tokens)
            replicas.append(r.replicas.ravel() + base[name])
            n_tok += r.tokens.size
            n_rep += r.replicas.size
        return rings[name]

    def hits(name: str, space: str) -> int:
        nonlocal n_hit
        if name not in hit:
            model = _cache_model(system, name, space)
            caches[name] = model
            hit[name] = n_hit
            hit_arrays.append(np.ascontiguousarray(model.hit_probability, dtype=np.float64))
            n_hit += model.hit_probability.size
        return hit[name]

    def node(f: int, step: Step, space: str) -> int:
        row = [0] * N_COLS
        row[FLOW], row[NEXT], row[COMP], row[MISS], row[HIT0], row[MCOL] = f, -1, -1, -1, -1, -1
        row[LIMITED], row[FAN], row[SPACE] = -1, -1, -1
        i = len(nodes)
        nodes.append(row)
        if isinstance(step, Parallel):
            row[KIND], row[NEED], row[ASK], row[BRANCH0] = PARALLEL, step.need, len(step.steps), len(branches)
            slots = [[0, int(a)] for a in step.awaited]
            branches.extend(slots)
            ready = -1
            for slot, branch in zip(slots, step.steps, strict=True):
                slot[0] = sequence(f, (branch,), space)
                ready = max(ready, _deepest(nodes, slot[0], branches))
            row[READY] = ready
            return i
        if isinstance(step, FanOut):  # (support.py: a group's members, at most MAX_MEMBERS)
            assert step.members is not None and step.space is not None
            d = compile_dist(step.members, 1.0)
            row[KIND], row[DIST], row[ASK] = FANOUT, len(dists), members_bound(step.members) or 0
            dists.append((d.params, d.values))
            if step.space not in fan_spaces:
                fan_spaces.append(step.space)
            row[SPACE] = fan_spaces.index(step.space)
            row[BRANCH0] = sequence(f, step.steps, step.space)
            row[READY] = _deepest(nodes, row[BRANCH0], branches)
            return i
        name = step.component
        kind = comps[name].kind
        row[COMP], row[CAUSE] = c_of[name], c_of[name]
        row[MCOL] = len(mark_labels[f])  # a call or lookup marks its request's path when it answers
        mark_labels[f].append(name)
        row[SALT] = salt(name, space) if kind in ("cassandra", "redis") else 0
        robin = getattr(comps[name].spec, "balancer", "random") == "round_robin"
        row[ROUTE] = {"cassandra": RING, "redis": SHARD}.get(kind, ROBIN if robin else BALANCED)
        limit = getattr(comps[name].spec, "rate_limit", None)
        if limit is not None:  # a gateway's token bucket per key: its refusals' cause
            c = c_of[name]
            size = max(limits.get(c, (0.0, 0.0, 0))[2], system.keys[step.key or space].count)
            limits[c] = (limit.per_user_per_sec, limit.burst, size)
            if f"{name}.rate_limited" not in causes:
                causes.append(f"{name}.rate_limited")
            row[LIMITED] = causes.index(f"{name}.rate_limited")
        if isinstance(step, CacheLookup):
            row[KIND], row[DIST] = CACHE, dist(name, "get")
            row[HIT0] = hits(name, space)
            causes.append(f"{name}.{step.miss_error}")
            row[CAUSE] = len(causes) - 1
            row[MISS] = sequence(f, step.miss, space) if step.miss else -1
            if step.fill and step.miss:  # after a miss branch that succeeded: the value written back
                m = row[MISS]
                while nodes[m][NEXT] >= 0:
                    m = nodes[m][NEXT]
                loops.append((c_of[name], _deepest(nodes, row[MISS], branches)))
                _link(nodes, m, fill(f, name, space))
            return i
        assert isinstance(step, Call)
        row[DIST] = dist(name, step.op)
        if kind == "service" and comps[name].ops[step.op].per_member_ms:
            per_member[i] = comps[name].ops[step.op].per_member_ms / 1e3
        if kind == "cassandra":
            spec = comps[name].spec
            rf = spec.replication_factor
            default = spec.read_consistency if step.op == "read" else spec.write_consistency
            level = step.consistency or default
            k = replies_needed(level, rf)
            row[KIND], row[NEED], row[READ] = CASSANDRA, k, int(step.op == "read")
            row[ASK] = k if step.op == "read" else rf
            row[TOK0], row[TOKN], row[REP0], row[RF] = ring(name)
            row[READY] = c_of[name]
        else:
            row[KIND] = CALL
        return i

    def fill(f: int, name: str, space: str) -> int:
        """A cache fill: a parallel step nobody waits for, whose one branch sets the key on the cache
        (the DES's: a command on the key's shard, after a hop, once the miss branch answered)."""
        if f"{name}.fill_rejected" not in causes:  # (kernel.after: a fill's failure code's offset)
            causes.extend(f"{name}.fill_{what}" for what in ("rejected", "unavailable", "crashed"))
        call = [0] * N_COLS
        call[KIND], call[COMP], call[NEXT], call[FLOW], call[ROUTE] = CALL, c_of[name], -1, f, SHARD
        call[DIST] = dist(name, "set" if "set" in comps[name].ops else "get")
        call[SALT], call[CAUSE] = salt(name, space), causes.index(f"{name}.fill_rejected")
        call[MISS], call[MCOL], call[LIMITED], call[FAN], call[SPACE] = -1, -1, -1, -1, -1
        call[HIT0] = hits(name, space)  # (a fill: when its key was refilled, for a shard that restarts)
        par = [0] * N_COLS
        par[KIND], par[NEED], par[ASK], par[BRANCH0], par[FLOW] = PARALLEL, 0, 1, len(branches), f
        par[COMP], par[NEXT], par[READY] = -1, -1, c_of[name]
        par[MISS], par[HIT0], par[MCOL], par[LIMITED], par[FAN], par[SPACE] = -1, -1, -1, -1, -1, -1
        nodes.extend([par, call])
        branches.append([len(nodes) - 1, 0])
        return len(nodes) - 2

    def sequence(f: int, steps: tuple[Step, ...], space: str) -> int:
        """The nodes of a sequence, linked; its first node. A cache's miss branch runs in line: its
        last node continues where the lookup's hit does."""
        ids = [node(f, step, space) for step in steps]
        for a, b in pairwise(ids):
            _link(nodes, a, b)
        for at, i in enumerate(ids):  # a call with a cost per member: the next fan-out of its sequence
            if i in per_member:
                nodes[i][FAN] = next((j for j in ids[at + 1:] if nodes[j][KIND] == FANOUT), -1)
        return ids[0]

    first_node = []
    for f, name in enumerate(flows):
        mark_labels.append([])
        first_node.append(sequence(f, system.flows[name].steps, system.flows[name].space))
    hop = compile_dist(scenario.network.hop_ms, 1e-3)
    n = max(len(dists), 1)
    values = [np.zeros(0)] + [v for _, v in dists]
    return Program(
        system=system, order=order, base=base,
        nodes=np.asarray(nodes, np.int64).reshape(len(nodes), N_COLS),
        branches=np.asarray(branches, np.int64).reshape(len(branches), 2),
        svc_params=np.asarray([p for p, _ in dists], np.float64).reshape(n if dists else 0, 6),
        svc_values=np.concatenate(values),
        svc_voff=np.concatenate([[0], np.cumsum([v.size for _, v in dists])]).astype(np.int64),
        hop_params=hop.params, hop_values=hop.values,
        comps=np.asarray([[base[c], comps[c].instances] for c in order], np.int64).reshape(len(order), 2),
        salts=np.asarray(salts or [0], np.uint64),
        tokens=np.concatenate(tokens) if tokens else np.zeros(1, np.uint64),
        replicas=np.concatenate(replicas) if replicas else np.zeros(1, np.int64),
        hit_p=np.concatenate(hit_arrays) if hit_arrays else np.zeros(1),
        flows=flows, first_node=first_node, causes=causes,
        space_of=[system.flows[f].space for f in flows], mark_labels=mark_labels, caches=caches,
        servers=servers, qlimits=qlimits, fleets=fleets, limits=limits,
        per_member_s=np.asarray([per_member.get(i, 0.0) for i in range(len(nodes))], np.float64),
        fan_spaces=fan_spaces,
        loop=(min(lo for lo, _ in loops), max(hi for _, hi in loops)) if loops else None,
    )


def members_bound(members: DistSpec) -> int | None:
    """The most members a fan-out's distribution gives (a draw rounded, as the DES's group_size), or
    None when it has no bound."""
    if isinstance(members, Deterministic):
        top = members.value
    elif isinstance(members, Empirical):
        top = float(np.max(members.values()))
    elif members.max is not None:
        top = members.max
    else:
        return None
    if members.max is not None:
        top = min(top, members.max)
    return max(0, round(top))


def _link(nodes: list[list[int]], a: int, b: int) -> None:
    """Node a's sequence continues at b: a's own NEXT, or, for a lookup with a miss branch, also
    the miss branch's last node's (the branch runs in line and then continues)."""
    nodes[a][NEXT] = b
    if nodes[a][KIND] == CACHE and nodes[a][MISS] >= 0:
        m = nodes[a][MISS]
        while nodes[m][NEXT] >= 0:
            m = nodes[m][NEXT]
        _link(nodes, m, b)


def _deepest(nodes: list[list[int]], start: int, branches: list[list[int]]) -> int:
    """The latest component in the order a sequence from `start` reaches (its join waits for it)."""
    out, i = -1, start
    while i >= 0:
        row = nodes[i]
        out = max(out, row[COMP], row[READY])
        if row[MISS] >= 0:
            out = max(out, _deepest(nodes, row[MISS], branches))
        i = row[NEXT]
    return out


def _cache_model(system: System, name: str, space_name: str) -> CacheModel:
    """The DES's cache model for a Redis component looked up by a cache step (sim/des/engine.py)."""
    spec = system.components[name].spec
    space = system.keys[space_name]
    value_bytes = mean_of(space.value_bytes) if space.value_bytes is not None else 512.0
    item = value_bytes + CACHE_ENTRY_OVERHEAD_BYTES
    weights = cell_weights(space.count, space.zipf_s, 1.0)
    if spec.hit_ratio is not None:
        return fixed_cache_model(weights.size, spec.hit_ratio, item)
    full = spec.shards * spec.memory_gb_per_shard * spec.usable_memory_fraction * 2**30
    return lru_cache_model(weights, full, item)
