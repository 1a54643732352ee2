"""The system a scenario compiles into: plain typed data that both engines consume, neither owns.

Components are named instances of the kinds (gateway, service, cassandra, redis, kafka), each
with its fleet section. Flows are request types as step trees: `Call`, `Parallel`, `FanOut`,
`CacheLookup` and `Produce` (sim/design.py describes the YAML that declares them). Key spaces say
how a flow's requests pick their keys; the messaging preset's keys come from its member-based
population (sim/workload.py) instead of a Zipf space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sim.distributions import DistSpec

Kind = Literal["gateway", "service", "cassandra", "redis", "kafka"]

# How a flow draws its request's keys. `popular`: a rank of its key space by Zipf popularity;
# `new`: a fresh key; the messaging population's draws: `sender` (a conversation by its send rate,
# then the member who sends), `conversation_reader` (a conversation by its read rate, then the
# member who reads), `reader` (a user by activity, who loads their inbox).
Draw = Literal["popular", "new", "sender", "conversation_reader", "reader"]

# Whom a fan-out reaches: `group`, a `members` distribution's count of keys drawn from a space;
# the messaging population's `conversation_members` (every member but the sender) and
# `user_conversations` (every conversation of the reader).
Relation = Literal["group", "conversation_members", "user_conversations"]


@dataclass(frozen=True)
class Operation:
    service_ms: DistSpec
    per_member_ms: float = 0.0  # added per member of the group the flow fans out to next


@dataclass(frozen=True)
class Component:
    name: str
    kind: Kind
    spec: Any  # the fleet section (sim/fleet_specs.py): instances, workers, service times, ...
    ops: dict[str, Operation] = field(default_factory=dict)  # services: their operations
    stream: str | None = None  # its random stream among sim/streams.STREAMS; None: one by its name

    @property
    def instances(self) -> int:
        for attr in ("instances", "nodes", "shards", "brokers"):
            if hasattr(self.spec, attr):
                return int(getattr(self.spec, attr))
        raise AttributeError(f"{self.kind} has no count")


@dataclass(frozen=True)
class KeySpace:
    name: str
    count: int  # keys at full scale
    zipf_s: float
    value_bytes: DistSpec | None
    salt: int  # routes the space's keys on a Cassandra ring apart from other spaces'
    redis_salt: int  # ... to Redis hash slots
    kafka_salt: int  # ... to Kafka partitions

    def salt_for(self, kind: str) -> int:
        return {"cassandra": self.salt, "redis": self.redis_salt, "kafka": self.kafka_salt}[kind]


@dataclass(frozen=True)
class Call:
    component: str
    op: str  # a service's operation; cassandra: read | write; redis: get | set | append; gateway: admit
    name: str
    key: str | None = None  # the key space it routes by; None: the step's current key
    consistency: str | None = None  # cassandra: overrides the component's level for this op


@dataclass(frozen=True)
class Parallel:
    steps: tuple[Step, ...]
    awaited: tuple[bool, ...]  # per step: does the join wait for it
    need: int  # awaited answers that complete the join
    name: str


@dataclass(frozen=True)
class FanOut:
    relation: Relation
    steps: tuple[Step, ...]
    name: str
    members: DistSpec | None = None  # relation `group`: members per group
    space: str | None = None  # relation `group`: the key space members come from


@dataclass(frozen=True)
class CacheLookup:
    component: str  # a redis component
    miss: tuple[Step, ...]
    fill: bool
    name: str
    key: str | None = None
    miss_error: str = "miss"  # with no miss branch, a miss fails the step as `<component>.<miss_error>`


@dataclass(frozen=True)
class Produce:
    component: str  # a kafka component
    then: str | None  # the flow its consumer runs
    name: str
    key: str | None = None


Step = Call | Parallel | FanOut | CacheLookup | Produce


@dataclass(frozen=True)
class Consumer:
    component: str  # a service whose instances consume, one per partition owned
    op: str
    max_in_flight: int


@dataclass(frozen=True)
class Flow:
    name: str
    space: str  # the key space its requests are keyed by
    draw: Draw
    steps: tuple[Step, ...]
    rate_per_sec: float | None = None  # full scale; None: triggered by another flow's Produce
    consumer: Consumer | None = None  # triggered flows: who consumes the records that start it
    source: str | None = None  # triggered flows: the kafka component whose records start it
    arrival_stream: str | None = None  # its arrivals' stream among sim/streams.STREAMS; None: by name

    @property
    def triggered(self) -> bool:
        return self.rate_per_sec is None


@dataclass(frozen=True)
class System:
    name: str
    components: dict[str, Component]
    keys: dict[str, KeySpace]
    flows: dict[str, Flow]
    preset: str | None = None  # "messaging" when compiled from the messaging sections

    def of_kind(self, kind: Kind) -> list[Component]:
        return [c for c in self.components.values() if c.kind == kind]

    def client_flows(self) -> list[str]:
        """Flows clients start (with a rate): what availability.overall is measured over."""
        return [f.name for f in self.flows.values() if not f.triggered]


def member_space(step: FanOut) -> str:
    """The key space the steps under a fan-out route by: its members'."""
    if step.relation == "conversation_members":
        return "user"
    if step.relation == "user_conversations":
        return "conversation"
    assert step.space is not None
    return step.space


def routed(flow: Flow) -> list[tuple[Call | CacheLookup | Produce, str]]:
    """Every step of a flow that reaches a component, with the key space it routes by: its own `key`,
    else the space of where it stands (the flow's, or under a fan-out its members')."""
    out: list[tuple[Call | CacheLookup | Produce, str]] = []

    def visit(steps: tuple[Step, ...], space: str) -> None:
        for step in steps:
            if isinstance(step, Parallel):
                visit(step.steps, space)
            elif isinstance(step, FanOut):
                visit(step.steps, member_space(step))
            else:
                out.append((step, step.key or space))
                if isinstance(step, CacheLookup):
                    visit(step.miss, space)

    visit(flow.steps, flow.space)
    return out


def walk(steps: tuple[Step, ...]) -> list[Step]:
    """Every step of a tree, depth first in declaration order."""
    out: list[Step] = []
    for step in steps:
        out.append(step)
        if isinstance(step, Parallel | FanOut):
            out.extend(walk(step.steps))
        elif isinstance(step, CacheLookup):
            out.extend(walk(step.miss))
    return out
