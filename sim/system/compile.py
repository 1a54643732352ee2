"""Compiling a scenario into its `System`, once: a design's components and flows, checked, or the
messaging sections written as the same flows (`messaging_system`).

Every reference in a design is checked here, so a bad one is a one-line error naming its path
(`flows.resolve.steps[2].cache.on: ...`) before anything runs.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from sim.design import FlowSpec, StepSpec
from sim.system.model import (
    CacheLookup,
    Call,
    Component,
    Consumer,
    FanOut,
    Flow,
    KeySpace,
    Operation,
    Parallel,
    Produce,
    Step,
    System,
)

if TYPE_CHECKING:
    from sim.scenario import Scenario

CASSANDRA_OPS = ("read", "write")
RESERVED_FLOW_NAMES = ("overall", "nines", "windows")  # availability.<flow> sits beside these
REDIS_OPS = ("get", "set", "append", "incr", "delete")


class DesignError(ValueError):
    """A reference in a design that does not resolve: `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def system_of(sc: Scenario) -> System:
    """The scenario's system: its design, or the messaging sections as flows."""
    return design_system(sc) if sc.flows else messaging_system(sc)


# -- designs ---------------------------------------------------------------------------------------
def space_salt(name: str) -> int:
    return 1000 + zlib.crc32(name.encode()) % 1_000_000


def design_system(sc: Scenario) -> System:
    components: dict[str, Component] = {}
    for name, spec in sc.components.items():
        ops: dict[str, Operation] = {}
        if spec.kind == "service":
            ops = {op: Operation(o.service_ms, o.per_member_ms) for op, o in spec.ops.items()}
        elif spec.kind == "cassandra":
            ops = {"read": Operation(spec.read_service_ms), "write": Operation(spec.write_service_ms)}
        elif spec.kind == "redis":
            ops = {op: Operation(spec.service_ms) for op in REDIS_OPS}
        elif spec.kind == "gateway":
            ops = {"admit": Operation(spec.service_ms)}
        elif spec.kind == "kafka":
            ops = {"produce": Operation(spec.append_ms)}
        components[name] = Component(name, spec.kind, spec, ops)
    keys = {name: KeySpace(name, k.count, k.zipf_s, k.value_bytes, space_salt(name), space_salt(name) + 1,
                           space_salt(name) + 2) for name, k in sc.keys.items()}
    if not keys:
        raise DesignError("keys", "a design declares at least one key space, e.g. keys: {link: {count: "
                                  "1_000_000, zipf_s: 1.0}}")
    producers: dict[str, tuple[str, str, str]] = {}  # flow -> (kafka, producing flow, its key space)
    cached: dict[str, tuple[str, str]] = {}  # redis -> (the key space its cache steps hold, where first)
    flows: dict[str, Flow] = {}
    for name, f in sc.flows.items():
        path = f"flows.{name}"
        if name in RESERVED_FLOW_NAMES:
            raise DesignError(path, f"{name} names a figure of availability; allowed: any other name")
        space, _, draw = f.key.partition(".")
        if space not in keys:
            raise DesignError(f"{path}.key", f"no key space {space!r}; allowed: {_listing(keys)}")
        if draw not in ("", "new"):
            raise DesignError(f"{path}.key", f"got {f.key!r}; allowed: <space> (drawn by popularity) "
                                             "or <space>.new (a fresh key)")
        builder = _Steps(components, keys, sc.flows, producers, name, cached)
        steps = builder.steps(f.steps, f"{path}.steps", space)
        consumer = _consumer(f, components, path)
        flows[name] = Flow(name, space, "new" if draw == "new" else "popular", steps, f.rate_per_sec,
                           consumer)
    for name, f in flows.items():
        path = f"flows.{name}"
        if f.triggered and name not in producers:
            raise DesignError(path, "has no rate_per_sec and no flow produces into it; give it "
                                    "rate_per_sec, or name it in a produce step's `then`")
        if name in producers:
            kafka, by, space = producers[name]
            if f.space != space:
                raise DesignError(f"{path}.key", f"records come from flow {by} keyed by {space}; the "
                                                 f"flow must be keyed by {space} too")
            flows[name] = Flow(f.name, f.space, f.draw, f.steps, None, f.consumer, kafka)
    _no_cycles(flows, producers)
    return System(sc.name, components, keys, flows)


def _listing(names: object) -> str:
    return ", ".join(sorted(names)) or "none"  # type: ignore[call-overload]


def _consumer(f: FlowSpec, components: dict[str, Component], path: str) -> Consumer | None:
    if f.rate_per_sec is not None:
        if f.consumer is not None:
            raise DesignError(f"{path}.consumer", "a flow with rate_per_sec is started by clients; only "
                                                  "a flow another flow produces into has a consumer")
        return None
    if f.consumer is None:
        raise DesignError(path, "a flow without rate_per_sec is started by records another flow "
                                "produces; give it consumer: {on: <service>, op: <op>}")
    c = components.get(f.consumer.on)
    services = [n for n, comp in components.items() if comp.kind == "service"]
    if c is None or c.kind != "service":
        raise DesignError(f"{path}.consumer.on", f"got {f.consumer.on!r}; allowed: a service component "
                                                 f"({_listing(services)})")
    op = _service_op(c, f.consumer.op, f"{path}.consumer.op")
    return Consumer(c.name, op, f.consumer.max_in_flight)


def _service_op(c: Component, op: str | None, path: str) -> str:
    if op is None:
        if len(c.ops) == 1:
            return next(iter(c.ops))
        raise DesignError(path, f"service {c.name} has operations {_listing(c.ops)}; name one "
                                f"({c.name}.<op>)")
    if op not in c.ops:
        raise DesignError(path, f"service {c.name} has no operation {op!r}; allowed: {_listing(c.ops)}")
    return op


class _Steps:
    def __init__(self, components: dict[str, Component], keys: dict[str, KeySpace],
                 flows: dict[str, FlowSpec], producers: dict[str, tuple[str, str, str]], flow: str,
                 cached: dict[str, tuple[str, str]]) -> None:
        self.cached = cached
        self.components = components
        self.keys = keys
        self.flows = flows
        self.producers = producers
        self.flow = flow

    def component(self, name: str, kinds: tuple[str, ...], path: str) -> Component:
        c = self.components.get(name)
        if c is None or c.kind not in kinds:
            allowed = [n for n, comp in self.components.items() if comp.kind in kinds]
            what = "component" if c is None else f"{c.kind} component"
            raise DesignError(path, f"{what} {name!r} cannot be used here; allowed: {' or '.join(kinds)} "
                                    f"components ({_listing(allowed)})")
        return c

    def steps(self, specs: list[StepSpec], path: str, space: str) -> tuple[Step, ...]:
        return tuple(self.step(s, f"{path}[{i}]", space) for i, s in enumerate(specs))

    def step(self, s: StepSpec, path: str, space: str) -> Step:
        if s.call is not None:
            target, _, op = s.call.partition(".")
            c = self.component(target, ("gateway", "service", "cassandra", "redis"), f"{path}.call")
            if c.kind == "service":
                op = _service_op(c, op or None, f"{path}.call")
            elif c.kind == "cassandra":
                if op not in CASSANDRA_OPS:
                    raise DesignError(f"{path}.call", f"cassandra takes {target}.read or {target}.write; "
                                                      f"got {s.call!r}")
            elif c.kind == "redis":
                op = op or "get"
                if op not in REDIS_OPS:
                    raise DesignError(f"{path}.call", f"redis operations are {', '.join(REDIS_OPS)}; got "
                                                      f"{op!r}")
            elif op:
                raise DesignError(f"{path}.call", f"a gateway has no operations; write call: {target}")
            else:
                op = "admit"
            if s.consistency is not None and c.kind != "cassandra":
                raise DesignError(f"{path}.consistency", "only a cassandra call takes a consistency level")
            if s.consistency is not None:
                rf = c.spec.replication_factor
                from sim.fleet_specs import replies_needed

                if replies_needed(s.consistency, rf) > rf:
                    raise DesignError(f"{path}.consistency", f"{s.consistency} needs more replicas than "
                                                             f"replication_factor {rf}")
            return Call(c.name, op, s.name or c.name, None, s.consistency)
        if s.parallel is not None:
            p = s.parallel
            steps = self.steps(p.steps, f"{path}.parallel.steps", space)
            names = [st.name for st in steps]
            if len(set(names)) != len(names):
                raise DesignError(f"{path}.parallel.steps", f"step names repeat ({', '.join(names)}); give "
                                                            "each a distinct `name` to join on")
            if p.join == "all":
                awaited, need = (True,) * len(steps), len(steps)
            elif isinstance(p.join, int):
                if not 1 <= p.join <= len(steps):
                    raise DesignError(f"{path}.parallel.join", f"got {p.join}; allowed: 1..{len(steps)}")
                awaited, need = (True,) * len(steps), p.join
            else:
                unknown = [n for n in p.join if n not in names]
                if unknown:
                    raise DesignError(f"{path}.parallel.join", f"no step named {', '.join(unknown)}; "
                                                               f"allowed: {', '.join(names)}")
                awaited = tuple(n in p.join for n in names)
                need = sum(awaited)
            return Parallel(steps, awaited, need, s.name or "parallel")
        if s.fan_out is not None:
            fo = s.fan_out
            if fo.key not in self.keys:
                raise DesignError(f"{path}.fan_out.key", f"no key space {fo.key!r}; allowed: "
                                                         f"{_listing(self.keys)}")
            steps = self.steps(fo.steps, f"{path}.fan_out.steps", fo.key)
            return FanOut("group", steps, s.name or "fan_out", fo.members, fo.key)
        if s.cache is not None:
            c = self.component(s.cache.on, ("redis",), f"{path}.cache.on")
            held, first = self.cached.setdefault(c.name, (space, path))
            if held != space:
                raise DesignError(f"{path}.cache.on", f"{c.name} already caches key space {held} ({first}); "
                                                      "one cached key space per redis component: add another")
            miss = self.steps(s.cache.miss, f"{path}.cache.miss", space)
            return CacheLookup(c.name, miss, s.cache.fill, s.name or c.name)
        assert s.produce is not None
        pr = s.produce
        c = self.component(pr.on, ("kafka",), f"{path}.produce.on")
        if pr.then is not None:
            target = self.flows.get(pr.then)
            if target is None:
                raise DesignError(f"{path}.produce.then", f"no flow {pr.then!r}; allowed: "
                                                          f"{_listing(self.flows)}")
            if target.rate_per_sec is not None:
                raise DesignError(f"{path}.produce.then", f"flow {pr.then} has rate_per_sec; a produced "
                                                          "flow is started by its records only")
            if pr.then in self.producers and self.producers[pr.then][1] != self.flow:
                raise DesignError(f"{path}.produce.then", f"flow {pr.then} is already produced by flow "
                                                          f"{self.producers[pr.then][1]}")
            taken = [f for f, (kafka, _, _) in self.producers.items() if kafka == c.name and f != pr.then]
            if taken:
                raise DesignError(f"{path}.produce.on", f"{c.name} already feeds flow {taken[0]}; one "
                                                        "consumer flow per kafka component")
            self.producers[pr.then] = (c.name, self.flow, space)
        return Produce(c.name, pr.then, s.name or c.name)


def _no_cycles(flows: dict[str, Flow], producers: dict[str, tuple[str, str, str]]) -> None:
    for start in flows:
        seen, at = [start], start
        while at in producers:
            at = producers[at][1]
            if at in seen:
                raise DesignError(f"flows.{start}", f"flows produce into each other in a loop "
                                                    f"({' -> '.join([*seen, at])})")
            seen.append(at)


# -- the messaging sections --------------------------------------------------------------------------
def messaging_system(sc: Scenario) -> System:
    """The messaging design's sections as components and flows (send, read, delivery)."""
    from sim.system.model import Flow as F

    ms, gs, w = sc.message_service, sc.group_service, sc.workload
    components: dict[str, Component] = {}
    if sc.gateway.enabled:
        components["gateway"] = Component("gateway", "gateway", sc.gateway,
                                          {"admit": Operation(sc.gateway.service_ms)}, "gateway")
    if ms.enabled:
        components["message_service"] = Component(
            "message_service", "service", ms,
            {"send": Operation(ms.send_service_ms), "read": Operation(ms.read_service_ms)}, "message_service")
    kafka_on = sc.kafka.enabled
    if gs.enabled and kafka_on:
        components["group_service"] = Component(
            "group_service", "service", gs, {"deliver": Operation(gs.service_ms, gs.per_recipient_ms)},
            "group_service")
    if sc.cassandra.enabled:
        c = sc.cassandra
        components["cassandra"] = Component("cassandra", "cassandra", c, {
            "read": Operation(c.read_service_ms), "write": Operation(c.write_service_ms)}, "cassandra")
    if sc.redis.enabled:
        components["redis"] = Component("redis", "redis", sc.redis,
                                        {op: Operation(sc.redis.service_ms) for op in REDIS_OPS}, "redis")
    if kafka_on:
        components["kafka"] = Component("kafka", "kafka", sc.kafka,
                                        {"produce": Operation(sc.kafka.append_ms)}, "kafka")
    # the salts both engines have always placed these keys with
    keys = {"user": KeySpace("user", w.users, w.user_zipf_s, None, 10, 3, 4),
            "conversation": KeySpace("conversation", w.conversations, 0.0, None, 11, 3, 4)}

    front: list[Step] = []
    if sc.gateway.enabled:
        front.append(Call("gateway", "admit", "gateway", "user"))  # rate-limited per user
    delivering = gs.enabled and kafka_on
    store: list[Step] = []
    if sc.cassandra.enabled:
        by = "user" if ms.partition_key == "user" else "conversation"
        store.append(Call("cassandra", "write", "cassandra", by))
    if sc.redis.enabled:
        store.append(Call("redis", "append", "redis", "conversation"))
    if kafka_on:
        store.append(Produce("kafka", "delivery" if delivering else None, "kafka", "conversation"))
    required = set(ms.ack_after or ())
    send_steps = [*front]
    if ms.enabled:
        send_steps.append(Call("message_service", "send", "message_service"))
    if store:
        awaited = tuple(s.name in required for s in store)
        send_steps.append(Parallel(tuple(store), awaited, sum(awaited), "store"))

    inbox_reads = gs.enabled and gs.fan_out == "read"
    read_key_is_user = (gs.enabled and gs.fan_out == "write") or ms.partition_key == "user"
    lookup: list[Step] = []
    cass_read = Call("cassandra", "read", "cassandra", "user" if read_key_is_user else "conversation")
    if sc.redis.enabled:
        lookup.append(CacheLookup("redis", (cass_read,) if sc.cassandra.enabled else (), True, "redis",
                                  "conversation", "miss_without_cassandra"))
    elif sc.cassandra.enabled:
        lookup.append(cass_read)
    read_steps = [*front]
    if ms.enabled:
        read_steps.append(Call("message_service", "read", "message_service"))
    if inbox_reads and lookup:
        read_steps.append(FanOut("user_conversations", tuple(lookup), "inbox"))
    else:
        read_steps.extend(lookup)

    flows = {
        "send": F("send", "conversation", "sender", tuple(send_steps), w.sends_per_sec,
                  arrival_stream="send_arrivals"),
        "read": F("read", "user" if inbox_reads else "conversation",
                  "reader" if inbox_reads else "conversation_reader", tuple(read_steps), w.reads_per_sec,
                  arrival_stream="read_arrivals"),
    }
    if delivering:
        # the consumer resolves every recipient (per_recipient_ms each); on write it also writes each
        # one's inbox, on read it writes nothing (readers fetch the conversation)
        per_member: tuple[Step, ...] = ()
        if gs.fan_out == "write":
            per_member = (Call("cassandra", "write", "cassandra", "user"),)
        deliver: tuple[Step, ...] = (FanOut("conversation_members", per_member, "inbox"),)
        flows["delivery"] = F("delivery", "conversation", "sender", deliver, None,
                              Consumer("group_service", "deliver", gs.max_in_flight), "kafka")
    return System(sc.name, components, keys, flows, preset="messaging")
