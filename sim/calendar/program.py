"""A design's system as the calendar kernel reads it: flat integer and float tables, built once.

Every step of every flow becomes a node (a row of `nodes`): its kind, its component, the next
node of its sequence, the routing table it reads its key through, and its kind's parameters.
Components become rows of `comps` (their first station, count, balancer, ring, partitions ...),
distributions rows of `dists` (sim/arrays/rng.py's form), and every failure a request can end
with a code in `causes` ("<component>.<error>", the DES's names).

Pure construction: no numba here, nothing is simulated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from sim.arrays.placement import Popularity, salt_mixed
from sim.arrays.rng import Dist, compile_dist, constant, purpose_key
from sim.arrays.station import DOWN, Stations, Windows, build_stations
from sim.arrays.windows import fault_windows
from sim.cache import fixed_cache_model, lru_cache_model, scenario_cache_model
from sim.calendar.edges import (
    E_BACKOFF_S,
    E_BREAKER,
    E_BUDGET_RATIO,
    E_JITTER,
    E_MAX_ATT,
    E_MIN,
    E_MULT,
    E_OPEN_S,
    E_PROBES,
    E_RATE,
    E_TIMEOUT_S,
    E_WINDOW_S,
    EDGE_PARAMS,
)
from sim.distributions import mean_of
from sim.faults import Fault
from sim.placement import TokenRing
from sim.sampling import Cell, make_cell
from sim.scenario import Scenario, replies_needed
from sim.streams import named_rng, stream_rngs
from sim.system.compile import system_of
from sim.system.keys import CACHE_ENTRY_OVERHEAD_BYTES, cell_cdf, cell_keys, cell_weights
from sim.system.model import CacheLookup, Call, FanOut, Parallel, Produce, Step, System, member_space
from sim.workload import Population, in_chunks

# node kinds
K_GATEWAY, K_SERVICE, K_CASSANDRA, K_REDIS, K_PRODUCE, K_PARALLEL, K_FANOUT, K_CACHE, K_CONSUME = range(9)
# columns of `nodes`
(N_KIND, N_COMP, N_NEXT, N_ROUTE, N_SLOT, N_DIST, N_A, N_B, N_C, N_D) = range(10)
NODE_COLS = 10
# a fan-out node's N_B: over what (a group's drawn members otherwise); N_C is then the slot of the key
# it reads (the conversation whose members, the user whose inbox)
FAN_MEMBERS, FAN_INBOX = 1, 2
# columns of `comps`
(C_KIND, C_BASE, C_COUNT, C_BALANCER, C_RR, C_RF, C_WRITE_K, C_READ_K, C_DIST_A, C_DIST_B, C_RING,
 C_PARTS, C_PART_OFF, C_CONS_COMP, C_CONS_OFF, C_MAX_IN_FLIGHT, C_ACKS, C_TRIGGER, C_CONS_NODE, C_RL_OFF,
 C_HIT_OFF) = range(21)
COMP_COLS = 21
# columns of `compf`: rate limit refill per second and burst; a Cassandra read's hedge delay in seconds
# (0: no hedge)
F_RATE, F_BURST, F_HEDGE = range(3)
COMPF_COLS = 3
# the faults' timed actions: a Cassandra node back from a crash replays its hints; a disk is lost; a Kafka
# broker is lost (its partitions wait for an election) or back
A_HINTS, A_LOSE, A_KLOST, A_KBACK = 0, 1, 2, 3
DOWN_KINDS = ("crash", "zone_outage", "broker_loss", "shard_loss")
KINDS = {"gateway": 0, "service": 1, "cassandra": 2, "redis": 3, "kafka": 4}
ACKS = {"0": 0, "1": 1, "all": 2}
# errors by component: code = comp * ERRS + index (names below); cache misses have codes of their own
ERR_NAMES = ("rejected", "unavailable", "crashed", "rate_limited", "fill_rejected", "fill_unavailable",
             "fill_crashed", "timeout", "breaker_open")
ERRS = len(ERR_NAMES)


@dataclass
class Program:
    scenario: Scenario
    system: System
    cell: Cell
    flows: list[str]  # flow index -> name
    spaces: list[str]  # key slot -> space name
    nodes: np.ndarray  # int64 [N, NODE_COLS]
    node_f: np.ndarray  # float64 [N, 1]: per-member seconds of a service call
    branches: np.ndarray  # int64 [B, 2]: a parallel's (branch node, awaited)
    comps: np.ndarray  # int64 [C, COMP_COLS]
    comp_f: np.ndarray  # float64 [C, COMPF_COLS]
    comp_names: list[str]
    dists: np.ndarray  # float64 [D, 8]: sim/arrays/rng.py params, values offset, values count
    dist_values: np.ndarray
    routes: np.ndarray  # int32: per (Cassandra component, space) a ring position per key of the cell
    hashed_routes: np.ndarray  # uint64 [R, 3]: routes by a hash of the key (Redis, Kafka): see tables._route
    replicas: np.ndarray  # int64 [positions, max rf]: Cassandra rings, stacked
    cdfs: np.ndarray  # float64: per space the cumulative weights of its cell keys, stacked
    space_i: np.ndarray  # int64 [S, 2]: keys in the cell, offset in cdfs
    hit_p: np.ndarray  # float64: per caching Redis, each key's probability of being cached
    flow_i: np.ndarray  # int64 [flows, 4]: head node, key slot, triggered (1) or client (0), user slot
    causes: list[str]  # failure code -> name
    stations: Stations
    hop: int  # dist index of a network hop
    key_hop: np.uint64
    key_node: np.ndarray  # uint64 [N, 2]: per node, purposes (group size, member draw / hit)
    key_comp: np.ndarray  # uint64 [C, 3]: per component, purposes (service time, balancer, replica offset)
    rl_size: int  # token buckets of all rate-limited gateways
    n_partitions: int
    n_consumers: int
    cache_models: dict[str, object] = field(default_factory=dict)
    client_rates: dict[str, float] = field(default_factory=dict)  # per client flow, requests/s in the cell
    # the faults' timed actions in the DES's order, (time, fault, phase, action, station, component):
    # A_HINTS when a Cassandra node comes back (its hints replay), A_LOSE when a lose_data fault starts,
    # A_KLOST and A_KBACK when a Kafka broker goes down (component: election ns << 16 | component) and back
    fault_actions: list[tuple[float, int, int, int, int, int]] = field(default_factory=list)
    track_lost: bool = False  # a fault may lose data: sole copies are tracked (sim/calendar/cassandra.py)
    # the messaging preset: its member-based population (sim/workload.py), each conversation's
    # recipients, users in the cell, the member hash's salt and the arrivals' draws by flow; under
    # fan-out on read each user's inbox (the population's CSR: offsets per user into conversation ids)
    # resilience policies (sim/calendar/edges.py): per (caller + 1, callee) and per client flow the
    # edge's index (-1: none), and per edge its parameters; the client edges' own failures' codes
    edge_names: list[str] = field(default_factory=list)
    edge_of: np.ndarray = field(default_factory=lambda: np.full((1, 1), -1, np.int64))
    client_edge: np.ndarray = field(default_factory=lambda: np.full(1, -1, np.int64))
    edge_params: np.ndarray = field(default_factory=lambda: np.zeros((1, EDGE_PARAMS)))
    err_timeout: int = 0
    err_breaker: int = 0
    population: Population | None = None
    recipients: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    n_users: int = 1
    member_salt: np.uint64 = field(default_factory=lambda: np.uint64(0))
    popularity: dict[str, Popularity] = field(default_factory=dict)
    mix: dict[str, float] = field(default_factory=dict)
    inbox_off: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    inbox_conv: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))


class _Builder:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.system = system_of(scenario)
        self.cell = make_cell(scenario)
        self.dists: list[Dist] = []
        self.nodes: list[list[int]] = []
        self.node_f: list[float] = []
        self.branches: list[list[int]] = []
        self.causes: list[str] = []
        self.cause_of: dict[str, int] = {}

    def dist(self, d: Dist) -> int:
        self.dists.append(d)
        return len(self.dists) - 1

    def cause(self, name: str) -> int:
        if name not in self.cause_of:
            self.cause_of[name] = len(self.causes)
            self.causes.append(name)
        return self.cause_of[name]


def build(scenario: Scenario) -> Program:
    """The program of a design scenario (sim/calendar/support.py says which ones run)."""
    b = _Builder(scenario)
    sc, system, cell = b.sc, b.system, b.cell
    seed = sc.seed
    comp_names = list(system.components)
    ci = {name: i for i, name in enumerate(comp_names)}
    spaces = list(system.keys)
    si = {name: i for i, name in enumerate(spaces)}
    flows = list(system.flows)
    fi = {name: i for i, name in enumerate(flows)}
    # every component's errors first: code = comp * ERRS + error
    for name in comp_names:
        for err in ERR_NAMES:
            b.cause(f"{name}.{err}")

    # key spaces: cell keys and their cumulative popularity (the messaging preset's keys come from
    # its population instead: conversations by their send or read rate, then a member; or, under
    # fan-out on read, a reader by activity, who loads their inbox)
    messaging = system.preset == "messaging"
    pop: Population | None = None
    if messaging:
        gs = sc.group_service  # the DES's rule (sim/des/engine.py `_keys`)
        inbox_reads = bool(gs.enabled and gs.fan_out == "read")
        pop = Population.build(sc.workload, cell.users, cell.conversations, cell.sample,
                               stream_rngs(seed)["conversations"], inbox_reads=inbox_reads)
        space_n = {"user": cell.users, "conversation": int(pop.conversations.recipients.size)}
    else:
        space_n = {name: cell_keys(space, cell.sample) for name, space in system.keys.items()}
    # one array for every space's cumulative weights, each built in its part: no per-space copy
    cdf_size = {name: 1 if messaging else space_n[name] for name in spaces}
    total = sum(cdf_size.values())
    cdfs = np.empty(total) if total and not messaging else np.ones(max(1, total))
    space_rows, off = [], 0
    for name in spaces:
        if not messaging:  # written in place, on every core (its pages first touched there too)
            space = system.keys[name]
            cell_cdf(space.count, space.zipf_s, cell.sample, cdfs[off:off + cdf_size[name]])
        space_rows.append([space_n[name], off])
        off += cdf_size[name]

    # stations: one fleet per component, in component order
    counts = {name: cell.fleets[name].simulated for name in comp_names}
    base, servers, qlimits, fleet_of = {}, [], [], []
    for i, name in enumerate(comp_names):
        spec = system.components[name].spec
        base[name] = len(servers)
        servers += [int(spec.workers)] * counts[name]
        qlimits += [spec.queue_limit] * counts[name]
        fleet_of += [i] * counts[name]
    windows = fault_windows(sc, base, counts, servers)
    stations = build_stations(servers, qlimits, fleet_of, len(comp_names), windows)
    cassandra_st = {st for st, f in enumerate(fleet_of)
                    if system.components[comp_names[f]].kind == "cassandra"}
    kafka_st = {st for st, f in enumerate(fleet_of) if system.components[comp_names[f]].kind == "kafka"}
    actions = _fault_actions(sc, windows, base, counts, cassandra_st, fleet_of, kafka_st)

    comps = np.full((len(comp_names), COMP_COLS), -1, dtype=np.int64)
    comp_f = np.zeros((len(comp_names), COMPF_COLS))
    ring_routes: list[tuple[TokenRing, int, int]] = []  # per Cassandra route: (ring, key salt, keys)
    hashed: list[tuple[int, int, int]] = []  # per hashed route: (mixed salt, shards or partitions, is Redis)
    route_off: dict[tuple[str, str], int] = {}
    rings: list[np.ndarray] = []
    ring_off = 0
    hit_parts: list[np.ndarray] = []
    hit_off = 0
    rl_size = 0
    part_off = 0
    cons_off = 0
    cache_models: dict[str, object] = {}
    rings_of: dict[str, TokenRing] = {}
    max_rf = max([c.spec.replication_factor for c in system.of_kind("cassandra")] or [1])
    for i, name in enumerate(comp_names):
        comp = system.components[name]
        spec = comp.spec
        row = comps[i]
        row[C_KIND] = KINDS[comp.kind]
        row[C_BASE] = base[name]
        row[C_COUNT] = counts[name]
        row[C_BALANCER] = 1 if getattr(spec, "balancer", "random") == "round_robin" else 0
        row[C_RR] = 0
        if comp.kind == "gateway":
            row[C_DIST_A] = b.dist(compile_dist(spec.service_ms, 1e-3))
            if spec.rate_limit is not None:
                calling = _spaces_calling(system, name)
                row[C_RL_OFF] = rl_size
                rl_size += max(space_n[s] for s in calling) if calling else 1
                comp_f[i, F_RATE] = spec.rate_limit.per_user_per_sec
                comp_f[i, F_BURST] = spec.rate_limit.burst
        elif comp.kind == "cassandra":
            rf = spec.replication_factor
            row[C_RF] = rf
            row[C_WRITE_K] = replies_needed(spec.write_consistency, rf)
            row[C_READ_K] = replies_needed(spec.read_consistency, rf)
            row[C_DIST_A] = b.dist(compile_dist(spec.read_service_ms, 1e-3))
            row[C_DIST_B] = b.dist(compile_dist(spec.write_service_ms, 1e-3))
            ring = TokenRing.build(counts[name], spec.vnodes, rf, sc.network.zones,
                                   named_rng(seed, "calendar", "ring", name))
            rep = np.full((ring.replicas.shape[0], max_rf), -1, dtype=np.int64)
            rep[:, :rf] = ring.replicas
            rings.append(rep)
            row[C_RING] = ring_off
            ring_off += rep.shape[0]
            rings_of[name] = ring
            # the DES's rule (sim/des/engine.py): the first policy on an edge into it with a hedge
            hedges = [p.hedge_after_ms for edge, p in sc.policies.items()
                      if edge.endswith(f"->{name}") and p.hedge_after_ms]
            comp_f[i, F_HEDGE] = hedges[0] / 1e3 if hedges else 0.0
        elif comp.kind == "redis":
            row[C_DIST_A] = b.dist(compile_dist(spec.service_ms, 1e-3))
            cached = _cached_space(system, name)
            if cached is not None:
                model = (scenario_cache_model(sc, pop.read_weights, cell.sample) if pop is not None
                         else _cache_model(system, name, cached, cell.sample))
                cache_models[name] = model
                h = np.ascontiguousarray(model.hit_probability, dtype=np.float64)
                hit_parts.append(h)
                row[C_HIT_OFF] = hit_off
                hit_off += h.size
        elif comp.kind == "kafka":
            parts_fleet = cell.fleets.get(f"{name}_partitions")
            parts = parts_fleet.simulated if parts_fleet else spec.partitions
            row[C_PARTS] = parts
            row[C_PART_OFF] = part_off
            part_off += parts
            row[C_RF] = spec.replication_factor
            row[C_ACKS] = ACKS[spec.acks]
            row[C_DIST_A] = b.dist(compile_dist(spec.append_ms, 1e-3))

    # consumers: the service whose instances consume a kafka's triggered flow
    for flow in system.flows.values():
        if flow.consumer is None or flow.source is None:
            continue
        k = ci[flow.source]
        cons = ci[flow.consumer.component]
        comps[k, C_CONS_COMP] = cons
        comps[k, C_CONS_OFF] = cons_off
        cons_off += counts[flow.consumer.component]
        comps[k, C_MAX_IN_FLIGHT] = flow.consumer.max_in_flight
        comps[k, C_TRIGGER] = fi[flow.name]

    def route(comp: str, space: str) -> int:
        if (comp, space) in route_off:
            return route_off[comp, space]
        kind = system.components[comp].kind
        if kind in ("gateway", "service"):
            return -1
        salt = system.keys[space].salt_for(kind)
        if kind != "cassandra":  # a hash of the key, computed in the loop (sim/calendar/tables.py `_route`)
            # a Redis slot's shard (slot x shards // 16384), or a Kafka partition (hash mod partitions)
            n = counts[comp] if kind == "redis" else comps[ci[comp], C_PARTS]
            hashed.append((int(salt_mixed(salt)), int(n), int(kind == "redis")))
            route_off[comp, space] = -2 - (len(hashed) - 1)
            return route_off[comp, space]
        route_off[comp, space] = sum(n for _, _, n in ring_routes)
        ring_routes.append((rings_of[comp], salt, space_n[space]))  # filled once all are known
        return route_off[comp, space]

    # nodes, sequence by sequence
    def seq(steps: tuple[Step, ...], space: str, flow: str) -> int:
        """Nodes of a sequence; returns its head (-1 when empty)."""
        ids = [node(step, space, flow, steps[k + 1:]) for k, step in enumerate(steps)]
        for a, c in itertools.pairwise(ids):
            b.nodes[a][N_NEXT] = c
        return ids[0] if ids else -1

    def new_node(kind: int, comp: int = -1) -> int:
        row = [-1] * NODE_COLS
        row[N_KIND] = kind
        row[N_COMP] = comp
        b.nodes.append(row)
        b.node_f.append(0.0)
        return len(b.nodes) - 1

    def node(step: Step, space: str, flow: str, rest: tuple[Step, ...]) -> int:
        if isinstance(step, Call):
            comp = system.components[step.component]
            i = ci[step.component]
            key_space = step.key or space
            if comp.kind == "gateway":
                n = new_node(K_GATEWAY, i)
                b.nodes[n][N_DIST] = comps[i, C_DIST_A]
                b.nodes[n][N_SLOT] = si[key_space]
            elif comp.kind == "service":
                n = new_node(K_SERVICE, i)
                op = comp.ops[step.op]
                b.nodes[n][N_DIST] = b.dist(compile_dist(op.service_ms, 1e-3))
                b.node_f[n] = op.per_member_ms * 1e-3
                fan = next((s for s in rest if isinstance(s, FanOut)), None)
                b.nodes[n][N_A] = -2 if fan is None else -3  # patched once the fan-out's node exists
                pending_fans.append((n, fan, space, flow))
            elif comp.kind == "cassandra":
                n = new_node(K_CASSANDRA, i)
                write = step.op == "write"
                b.nodes[n][N_A] = 1 if write else 0
                level = step.consistency
                rf = int(comps[i, C_RF])
                b.nodes[n][N_B] = (replies_needed(level, rf) if level is not None
                                   else int(comps[i, C_WRITE_K if write else C_READ_K]))
                b.nodes[n][N_DIST] = comps[i, C_DIST_B if write else C_DIST_A]
                b.nodes[n][N_ROUTE] = route(step.component, key_space)
                b.nodes[n][N_SLOT] = si[key_space]
            elif comp.kind == "redis":
                n = new_node(K_REDIS, i)
                b.nodes[n][N_DIST] = comps[i, C_DIST_A]
                b.nodes[n][N_ROUTE] = route(step.component, key_space)
                b.nodes[n][N_SLOT] = si[key_space]
            else:  # pragma: no cover - compile allows calls to these kinds only
                raise ValueError(f"cannot call a {comp.kind}")
            return n
        if isinstance(step, Produce):
            i = ci[step.component]
            key_space = step.key or space
            n = new_node(K_PRODUCE, i)
            b.nodes[n][N_ROUTE] = route(step.component, key_space)
            b.nodes[n][N_SLOT] = si[key_space]
            b.nodes[n][N_A] = fi[step.then] if step.then else -1
            return n
        if isinstance(step, CacheLookup):
            i = ci[step.component]
            key_space = step.key or space
            n = new_node(K_CACHE, i)
            b.nodes[n][N_DIST] = comps[i, C_DIST_A]
            b.nodes[n][N_ROUTE] = route(step.component, key_space)
            b.nodes[n][N_SLOT] = si[key_space]
            b.nodes[n][N_B] = 1 if step.fill else 0
            b.nodes[n][N_C] = b.cause(f"{step.component}.{step.miss_error}")
            b.nodes[n][N_A] = seq(step.miss, space, flow)
            return n
        if isinstance(step, Parallel):
            n = new_node(K_PARALLEL)
            heads = [node(branch, space, flow, ()) for branch in step.steps]
            b.nodes[n][N_A] = len(b.branches)
            b.nodes[n][N_B] = len(heads)
            b.nodes[n][N_C] = step.need
            for head, awaited in zip(heads, step.awaited, strict=True):
                b.branches.append([head, 1 if awaited else 0])
            return n
        assert isinstance(step, FanOut)
        n = new_node(K_FANOUT)
        if step.relation == "conversation_members":  # every member of the conversation but the sender
            b.nodes[n][N_B] = FAN_MEMBERS
            b.nodes[n][N_C] = si["conversation"]
        elif step.relation == "user_conversations":  # every conversation of the user (their inbox)
            b.nodes[n][N_B] = FAN_INBOX
            b.nodes[n][N_C] = si["user"]
        elif step.relation == "group" and step.members is not None:
            b.nodes[n][N_DIST] = b.dist(compile_dist(step.members))
        else:  # pragma: no cover - refused by sim/calendar/support.py
            raise ValueError(f"fan-out over {step.relation} is not in the calendar engine")
        inner = member_space(step)
        b.nodes[n][N_SLOT] = si[inner]
        fan_nodes[id(step)] = n
        b.nodes[n][N_A] = seq(step.steps, inner, flow)
        return n

    pending_fans: list[tuple[int, FanOut | None, str, str]] = []
    fan_nodes: dict[int, int] = {}
    flow_rows = []
    for name in flows:
        flow = system.flows[name]
        head = seq(flow.steps, flow.space, name)
        if flow.triggered:
            assert flow.consumer is not None
            cons = system.components[flow.consumer.component]
            c = new_node(K_CONSUME, ci[flow.consumer.component])
            op = cons.ops[flow.consumer.op]
            b.nodes[c][N_DIST] = b.dist(compile_dist(op.service_ms, 1e-3))
            b.node_f[c] = op.per_member_ms * 1e-3
            fan = next((s for s in flow.steps if isinstance(s, FanOut)), None)
            b.nodes[c][N_A] = -2 if fan is None else -3
            pending_fans.append((c, fan, flow.space, name))
            b.nodes[c][N_NEXT] = head
            assert flow.source is not None
            comps[ci[flow.source], C_CONS_NODE] = c
            head = c
        flow_rows.append([head, si[flow.space], 1 if flow.triggered else 0,
                          si["user"] if messaging and flow.space != "user" else -1])
    for n, fan, _space, _flow in pending_fans:
        b.nodes[n][N_A] = fan_nodes[id(fan)] if fan is not None else -1

    # random purposes: per component (service time, balancer, aux), per node (group size, member key / hit)
    key_comp = np.array([[purpose_key(seed, 7_000_000 + i * 8 + j) for j in range(3)]
                         for i in range(len(comp_names))], dtype=np.uint64).reshape(len(comp_names), 3)
    key_node = np.array([[purpose_key(seed, 8_000_000 + n * 4 + j) for j in range(2)]
                         for n in range(len(b.nodes))], dtype=np.uint64).reshape(len(b.nodes), 2)
    hop = b.dist(compile_dist(sc.network.hop_ms, 1e-3))
    b.dist(constant(0.0))

    values, rows, voff = [], [], 0
    for d in b.dists:
        rows.append(np.concatenate([d.params, [voff, d.values.size]]))
        values.append(d.values)
        voff += d.values.size
    client_rates = {name: system.flows[name].rate_per_sec * cell.sample
                    for name in flows if not system.flows[name].triggered}
    prog = Program(
        scenario=sc, system=system, cell=cell, flows=flows, spaces=spaces,
        nodes=np.array(b.nodes, dtype=np.int64).reshape(len(b.nodes), NODE_COLS),
        node_f=np.array(b.node_f, dtype=np.float64),
        branches=np.array(b.branches, dtype=np.int64).reshape(len(b.branches), 2),
        comps=comps, comp_f=comp_f, comp_names=comp_names,
        dists=np.array(rows, dtype=np.float64),
        dist_values=np.concatenate(values) if values else np.zeros(0),
        routes=_ring_routes(ring_routes),
        hashed_routes=np.array(hashed if hashed else [(0, 1, 0)], dtype=np.uint64),
        replicas=np.concatenate(rings) if rings else np.zeros((1, 1), dtype=np.int64),
        cdfs=cdfs,
        space_i=np.array(space_rows, dtype=np.int64).reshape(len(space_rows), 2),
        hit_p=(hit_parts[0] if len(hit_parts) == 1 else np.concatenate(hit_parts) if hit_parts  # no copy of
               else np.zeros(1)),  # one cache's 40M probabilities
        flow_i=np.array(flow_rows, dtype=np.int64).reshape(len(flow_rows), 4),
        causes=b.causes, stations=stations, hop=hop,
        key_hop=purpose_key(seed, 6_999_999), key_node=key_node, key_comp=key_comp,
        rl_size=max(rl_size, 1), n_partitions=max(part_off, 1), n_consumers=max(cons_off, 1),
        cache_models=cache_models, client_rates=client_rates, fault_actions=actions,
        track_lost=any(f.lose_data for f in sc.faults),
    )
    _edges(prog, b, ci, fi)
    if pop is not None:
        prog.population = pop
        prog.recipients = np.asarray(pop.conversations.recipients, np.int32)  # (no copy: int32 already)
        prog.n_users = cell.users
        prog.member_salt = salt_mixed(2)  # sim.workload.member_ids's salt
        prog.popularity = {"sender": Popularity(pop.send_weights),
                           "conversation_reader": Popularity(pop.read_weights)}
        prog.mix = pop.mix()
        # the conversations' send and read weights live on as the popularities' CDFs: the kernel
        # never reads them, and at full scale they are 640 MB (prog.population.mix() is then void)
        prog.population = pop = replace(pop, send_weights=np.zeros(0), read_weights=np.zeros(0))
        if pop.inbox_offsets is not None and pop.inbox_conversations is not None:  # the population's own
            prog.inbox_off = pop.inbox_offsets  # arrays: int64 offsets, int32 conversation ids
            prog.inbox_conv = pop.inbox_conversations
            prog.popularity["reader"] = Popularity(pop.user_weights)
    return prog


def _ring_routes(ring_routes: list[tuple[TokenRing, int, int]]) -> np.ndarray:
    """Every Cassandra route's table, one after another: key k's ring position (an int32, its
    replicas' row), a chunk of keys at a time, so a route over 10^8 keys costs its 4 bytes a key."""
    out = np.zeros(max(1, sum(n for _, _, n in ring_routes)), dtype=np.int32)
    off = 0
    for ring, salt, n in ring_routes:
        _ring_positions(ring, salt, out[off:off + n])
        off += n
    return out


def _ring_positions(ring: TokenRing, salt: int, table: np.ndarray) -> None:
    """table[k] = key k's ring position, a chunk of keys at a time on every core."""
    def chunk(a: int, b: int) -> None:
        table[a:b] = ring.positions(np.arange(a, b), salt)

    in_chunks(table.size, chunk)


def _fault_stations(fault: Fault, base: dict[str, int], counts: dict[str, int], zones: int) -> list[int]:
    """The stations a down fault takes (sim/des/faults.py `targets`; sim/arrays/windows.py)."""
    if fault.kind == "zone_outage":
        return [b + i for name, b in base.items() for i in range(counts[name]) if i % zones == fault.zone]
    name = fault.component or ""
    if name not in base:
        return []
    return [base[name] + i for i in fault.node_indices(counts[name]) if i < counts[name]]


def _fault_actions(sc: Scenario, windows: dict[int, Windows], base: dict[str, int], counts: dict[str, int],
                   cassandra: set[int], fleet_of: list[int],
                   kafka: set[int] | None = None) -> list[tuple[float, int, int, int, int, int]]:
    """Hint replays and lost disks of Cassandra nodes, and Kafka brokers lost and back, in the DES's
    order: it arms every fault before the run (each one's start, then its end, in the scenario's
    order), so at one instant they act in that order. A node comes back at the end of its DOWN window
    (overlapping crashes are one window), ended by the last fault there to end then, and goes down
    at its start, by the first fault there to start then; a lose_data fault loses the disks it takes
    as it starts, down already or not (sim/des/faults.py)."""
    zones = sc.network.zones
    down = [(i, f, set(_fault_stations(f, base, counts, zones))) for i, f in enumerate(sc.faults)
            if f.kind in DOWN_KINDS]
    out = []
    for st, w in windows.items():
        if st not in cassandra:
            continue
        for t in w.t_to[w.servers == DOWN].tolist():  # not every pause of a GC storm
            order = max((i for i, f, sts in down if st in sts and f.end_s == t), default=len(sc.faults))
            out.append((t, order, 1, A_HINTS, st, fleet_of[st]))
    for i, f, sts in down:
        if f.lose_data:
            out += [(f.start_s, i, 0, A_LOSE, st, fleet_of[st]) for st in sorted(sts & cassandra)]
    for st, w in windows.items():
        if st not in (kafka or set()):
            continue
        lost = w.servers == DOWN
        for t0, t1 in zip(w.t_from[lost].tolist(), w.t_to[lost].tolist(), strict=True):
            first = min((i for i, f, sts in down if st in sts and f.start_s == t0), default=len(sc.faults))
            last = max((i for i, f, sts in down if st in sts and f.end_s == t1), default=len(sc.faults))
            # the election lasts the election_s of the fault that takes the broker down (the DES's
            # broker_lost), in whole nanoseconds above the component's 16 bits
            election_ns = round((sc.faults[first].election_s if first < len(sc.faults) else 5.0) * 1e9)
            out += [(t0, first, 0, A_KLOST, st, election_ns << 16 | fleet_of[st]),
                    (t1, last, 1, A_KBACK, st, fleet_of[st])]
    return sorted(out)


def _spaces_calling(system: System, comp: str) -> set[str]:
    from sim.system.model import routed

    return {space for flow in system.flows.values() for step, space in routed(flow)
            if isinstance(step, Call) and step.component == comp}


def _cached_space(system: System, redis: str) -> str | None:
    from sim.system.model import routed

    return next((space for flow in system.flows.values() for step, space in routed(flow)
                 if isinstance(step, CacheLookup) and step.component == redis), None)


def _cache_model(system: System, name: str, space_name: str, sample: float) -> object:
    """The DES's cache model (sim/des/engine.py `_cache_model`) for a design's caching Redis."""
    spec = system.components[name].spec
    space = system.keys[space_name]
    weights = cell_weights(space.count, space.zipf_s, sample)
    value_bytes = mean_of(space.value_bytes) if space.value_bytes is not None else 512.0
    item = value_bytes + CACHE_ENTRY_OVERHEAD_BYTES
    if spec.hit_ratio is not None:
        return fixed_cache_model(weights.size, spec.hit_ratio, item)
    full = spec.shards * spec.memory_gb_per_shard * spec.usable_memory_fraction * 2**30
    return lru_cache_model(weights, full * sample, item)


def _edges(prog: Program, b: _Builder, ci: dict[str, int], fi: dict[str, int]) -> None:
    """The scenario's policies as edge tables: a `client->X` edge wraps the whole request of every
    client flow whose first call is to X (the DES's rule); `A->B` wraps A's calls to B."""
    sc, system = prog.scenario, prog.system
    n = len(ci)
    prog.edge_of = np.full((n + 1, n), -1, np.int64)
    prog.client_edge = np.full(len(fi), -1, np.int64)
    names = list(sc.policies)
    params = np.zeros((max(1, len(names)), EDGE_PARAMS))
    for e, name in enumerate(names):
        policy = sc.policies[name]
        caller, callee = name.split("->", 1)
        row = params[e]
        row[E_TIMEOUT_S] = policy.timeout_ms / 1e3 if policy.timeout_ms else np.nan
        retry = policy.retry
        row[E_MAX_ATT] = retry.max_attempts if retry else 1
        row[E_BACKOFF_S] = retry.backoff_ms / 1e3 if retry else 0.0
        row[E_MULT] = retry.multiplier if retry else 1.0
        row[E_JITTER] = 1.0 if retry and retry.jitter else 0.0
        row[E_BUDGET_RATIO] = retry.budget_ratio if retry and retry.budget_ratio is not None else np.nan
        breaker = policy.breaker
        if breaker is not None:
            row[E_BREAKER] = 1.0
            row[E_RATE], row[E_WINDOW_S] = breaker.error_rate, breaker.window_s
            row[E_MIN] = breaker.min_requests
            row[E_OPEN_S], row[E_PROBES] = breaker.open_s, breaker.half_open_probes
        if callee not in ci:
            continue
        if caller == "client":
            for flow, f in fi.items():
                spec = system.flows[flow]
                first = next((s for s in spec.steps if hasattr(s, "component")), None)
                if not spec.triggered and first is not None and first.component == callee:
                    prog.client_edge[f] = e
        elif caller in ci:
            prog.edge_of[ci[caller] + 1, ci[callee]] = e
    prog.edge_names = names
    prog.edge_params = params
    prog.err_timeout = b.cause("timeout")
    prog.err_breaker = b.cause("breaker_open")
    prog.causes = b.causes
