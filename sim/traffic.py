"""Payload bytes per second into and out of each fleet: the demand on sizing's network dimension.

Sizing sets each direction against the instance type's sustained (baseline) bandwidth, which AWS
specifies per direction (`network_gbps_sustained`; the burst "up to" figure lasts minutes); the
busier direction binds. A send carries its message on every hop towards the stores; a read's page of
the recent list (messages_per_read x mean message bytes) flows back towards the client on every hop;
each cache hit returns a page, each miss costs the whole recent list twice (Cassandra's answer, then
the Redis fill). Cassandra coordinators are replicas and forward each write to RF - 1 others; Kafka
leaders send each record to RF - 1 followers and to the consumer; a Redis primary sends its writes
and fills to each replica. Not counted: request bodies of reads, headers, acks, digests, repair,
cross-region copies.

A design (`design_traffic`, `design_bytes_per_sec`) follows its own flows instead: each call
carries its key space's mean `value_bytes` (into the callee for a write, out of it for a read),
stated on `CallRate`.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.dimensions import Traffic
from sim.distributions import mean_of
from sim.system.model import CacheLookup, Call, FanOut, Parallel, Produce, Step, System, walk

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.scenario import Scenario
    from sim.system.loads import DesignLoads


def network_bytes_per_sec(sc: Scenario, flows: Flows) -> dict[str, Traffic]:
    """Fleet-wide payload bytes/s into and out of each component (the module docstring's model)."""
    w = sc.workload
    msg = flows.mean_message_bytes
    page = w.messages_per_read * msg  # one read's answer, and one cache hit's
    whole_list = w.recent_messages * msg  # a miss reads, and refills, the whole recent list
    sends, reads = w.sends_per_sec, w.reads_per_sec
    lookups = reads * flows.lookups_per_read
    hits, misses = lookups * flows.hit_ratio, lookups * (1 - flows.hit_ratio)
    into: dict[str, float] = defaultdict(float)
    out: dict[str, float] = defaultdict(float)

    def send(a: str, b: str, bytes_per_sec: float) -> None:
        out[a] += bytes_per_sec
        into[b] += bytes_per_sec

    chain = ["clients", *[c for c in ("gateway", "message_service") if getattr(sc, c).enabled]]
    for a, b in itertools.pairwise(chain):
        send(a, b, sends * msg)
        send(b, a, reads * page)
    caller = chain[-1]
    if sc.cassandra.enabled:
        rf = sc.cassandra.replication_factor
        send(caller, "cassandra", sends * msg)
        send("cassandra", caller, misses * whole_list)
        send("cassandra", "cassandra", (rf - 1) * sends * msg)
    if sc.redis.enabled:
        fills = misses * whole_list if sc.cassandra.enabled else 0.0
        send(caller, "redis", sends * msg + fills)
        send("redis", caller, hits * page)
        send("redis", "redis_replicas", sc.redis.replicas * (sends * msg + fills))
    if sc.kafka.enabled:
        send(caller, "kafka", sends * msg)
        send("kafka", "kafka", (sc.kafka.replication_factor - 1) * sends * msg)
        gs = sc.group_service
        if gs.enabled:
            send("kafka", "group_service", sends * msg)
            if gs.fan_out == "write" and sc.cassandra.enabled:
                inbox = sends * flows.mean_recipients * gs.inbox_entry_bytes
                send("group_service", "cassandra", inbox)
                send("cassandra", "cassandra", (sc.cassandra.replication_factor - 1) * inbox)
    names = (set(into) | set(out)) - {"clients", "redis_replicas"}
    return {n: Traffic(into.get(n, 0.0), out.get(n, 0.0)) for n in sorted(names)}


# -- a design's calls and bytes --------------------------------------------------------------------
@dataclass(frozen=True)
class CallRate:
    """Calls per second (full scale) from one caller to one component, for one step of one flow.

    `in_bytes` and `out_bytes` are payload bytes into and out of the callee per call: the mean
    value_bytes of the step's key space, into the callee for writes (cassandra write, redis set or
    append, kafka produce; a gateway or service on a flow that writes), out of it for reads
    (cassandra read, a redis get: on a cache lookup only its hits return the value; a gateway or
    service on a flow that reads)."""

    flow: str
    caller: str  # "clients" or a component
    callee: str
    op: str
    per_sec: float
    in_bytes: float = 0.0
    out_bytes: float = 0.0
    role: str = "call"  # call | lookup (a cache's get) | miss (on a cache miss) | fill | produce | consume
    awaited: bool = True  # does the flow wait for it (a fill, a parallel step outside the join: no)
    space: str = ""  # the key space of the key it carries
    kind: str = ""  # the callee's kind

    @property
    def label(self) -> str:
        """'resolve' (a gateway; a service's operation named like the flow), 'resolve: get',
        'resolve: read on miss', 'resolve: fill', 'deliver: consume'."""
        if self.role == "fill":
            return f"{self.flow}: fill"
        front = self.kind == "gateway" or (self.kind == "service" and self.op == self.flow)
        op = "" if front and self.role != "consume" else self.op
        text = f"{self.flow}: {op}" if op else self.flow
        return text + (" on miss" if self.role == "miss" else "")


@dataclass(frozen=True)
class DesignTraffic:
    """What a design's plan and cost read: its system, its loads (sim/system/loads.py) and its calls."""

    system: System
    loads: DesignLoads
    calls: tuple[CallRate, ...]

    def to(self, component: str, ops: tuple[str, ...] | None = None) -> list[CallRate]:
        """The calls reaching `component` (with one of `ops`, if given)."""
        return [c for c in self.calls if c.callee == component and (ops is None or c.op in ops)]

    def spaces(self, component: str) -> list[str]:
        """The key spaces whose keys reach `component`, in the order the flows first send them."""
        return list(dict.fromkeys(c.space for c in self.to(component) if c.op != "consume"))

    def value_bytes(self, space: str) -> float:
        """Mean value bytes of a key of `space`."""
        return _value(self.system, space)

    def bytes_per_sec(self, component: str, ops: tuple[str, ...]) -> float:
        """Payload bytes/s the calls with `ops` carry into `component` (one copy)."""
        return sum(c.per_sec * c.in_bytes for c in self.to(component, ops))


WRITE_OPS = ("write", "set", "append", "produce")
READ_OPS = ("read", "get")


def design_traffic(system: System, loads: DesignLoads) -> DesignTraffic:
    """Every call of every flow at its full-scale rate: a flow's rate (`loads.flow_rates`) times the
    step's expected visits (a fan-out's mean members; a cache miss branch and its fill 1 - hit ratio,
    with `loads.hit_ratios`). A triggered flow starts at its consumer service, called by its kafka
    component once per record."""
    calls: list[CallRate] = []
    for flow in system.flows.values():
        rate = loads.flow_rates.get(flow.name, 0.0)
        moves = _moves(flow.steps)
        writes, reads = any(op in WRITE_OPS for op in moves), any(op in READ_OPS for op in moves)
        value = _value(system, flow.space)
        caller = "clients"
        if flow.consumer is not None and flow.source is not None:
            caller = flow.consumer.component
            calls.append(CallRate(flow.name, flow.source, caller, "consume", rate, value, 0.0, "consume",
                                  False, flow.space, "service"))
        _walk(system, loads, flow.name, flow.steps, caller, rate, flow.space, True, "call",
              (value if writes else 0.0, value if reads else 0.0), calls)
    return DesignTraffic(system, loads, tuple(calls))


def design_bytes_per_sec(demand: DesignTraffic) -> dict[str, Traffic]:
    """Fleet-wide payload bytes/s into and out of each design component: its calls' bytes (into the
    callee and out of the caller, and back), plus the copies the stores make: a Cassandra
    coordinator forwards each write to RF - 1 replicas, a Kafka leader each record to RF - 1
    followers, a Redis primary each write to its replicas."""
    into: dict[str, float] = defaultdict(float)
    out: dict[str, float] = defaultdict(float)
    comps = demand.system.components
    for c in demand.calls:
        into[c.callee] += c.per_sec * c.in_bytes
        out[c.caller] += c.per_sec * c.in_bytes
        out[c.callee] += c.per_sec * c.out_bytes
        into[c.caller] += c.per_sec * c.out_bytes
        spec = comps[c.callee].spec
        written = c.per_sec * c.in_bytes
        if c.op in WRITE_OPS and comps[c.callee].kind in ("cassandra", "kafka"):
            copies = (spec.replication_factor - 1) * written
            into[c.callee] += copies
            out[c.callee] += copies
        elif c.op in WRITE_OPS and comps[c.callee].kind == "redis":
            out[c.callee] += spec.replicas * written
    return {n: Traffic(into.get(n, 0.0), out.get(n, 0.0)) for n in comps}


def _value(system: System, space: str) -> float:
    spec = system.keys[space].value_bytes if space in system.keys else None
    return 0.0 if spec is None else mean_of(spec)


def _moves(steps: tuple[Step, ...]) -> set[str]:
    """The operations a step tree performs (a cache lookup: get; its fill is not the flow's own)."""
    ops: set[str] = set()
    for s in walk(steps):
        if isinstance(s, Call):
            ops.add(s.op)
        elif isinstance(s, CacheLookup):
            ops.add("get")
        elif isinstance(s, Produce):
            ops.add("produce")
    return ops


def _walk(system: System, loads: DesignLoads, flow: str, steps: tuple[Step, ...], caller: str, rate: float,
          space: str, awaited: bool, role: str, front: tuple[float, float], calls: list[CallRate]) -> None:
    """Append the calls of `steps`, in order; a call to a gateway or service makes it the caller of
    the steps after it (in this branch)."""
    for s in steps:
        if isinstance(s, Call):
            space_of = s.key or space
            value = _value(system, space_of)
            kind = system.components[s.component].kind
            if kind in ("gateway", "service"):
                calls.append(CallRate(flow, caller, s.component, s.op, rate, *front, role, awaited, space_of,
                                      kind))
                caller = s.component
            else:
                in_b = value if s.op in WRITE_OPS else 0.0
                out_b = value if s.op in READ_OPS else 0.0
                calls.append(CallRate(flow, caller, s.component, s.op, rate, in_b, out_b, role, awaited,
                                      space_of, kind))
        elif isinstance(s, Parallel):
            for step, waited in zip(s.steps, s.awaited, strict=True):
                _walk(system, loads, flow, (step,), caller, rate, space, awaited and waited, role, front,
                      calls)
        elif isinstance(s, FanOut):
            members = mean_of(s.members) if s.members is not None else 1.0
            _walk(system, loads, flow, s.steps, caller, rate * members, s.space or space, awaited, role,
                  front, calls)
        elif isinstance(s, CacheLookup):
            hit = loads.hit_ratios.get(s.component, 0.0)
            space_of = s.key or space
            value = _value(system, space_of)
            calls.append(CallRate(flow, caller, s.component, "get", rate, 0.0, hit * value,
                                  "miss" if role == "miss" else "lookup", awaited, space_of, "redis"))
            _walk(system, loads, flow, s.miss, caller, rate * (1 - hit), space_of, awaited, "miss",
                  front, calls)
            if s.fill:
                calls.append(CallRate(flow, caller, s.component, "set", rate * (1 - hit), value, 0.0, "fill",
                                      False, space_of, "redis"))
        else:
            space_of = s.key or space
            value = _value(system, space_of)
            calls.append(CallRate(flow, caller, s.component, "produce", rate, value, 0.0, "produce", awaited,
                                  space_of, "kafka"))
