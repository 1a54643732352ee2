"""Moving requests along their flows: the DES's interpreter of the system's step trees.

A `Cursor` is where one request stands in one sequence of steps; each step, when done, advances
it, and the last calls the cursor's `then(error)`. `Parallel` and `FanOut` start one cursor per
branch and wait at a `Join`. Marks (for the tail breakdown) follow one rule: a step marks its
component when it ends on the request's critical path, i.e. outside any join or as the answer its
join still waits for alone. Calls are wrapped by the resilience policy of their caller->callee
edge; a cache's lookup and fill are not (the miss branch's calls are).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.des.station import call
from sim.system.model import CacheLookup, Call, FanOut, Parallel, Produce, Step, walk

if TYPE_CHECKING:
    from sim.des.engine import Engine
    from sim.des.kafka import Consumer

Then = Callable[[str | None], None]


class Request:
    """One request in flight. `t0` is when its latency starts (a triggered flow's: its producer's)."""

    __slots__ = ("conv", "done", "fan_n", "flow", "key", "marks", "new", "reply", "slot", "started", "t0",
                 "token", "user")

    def __init__(self, flow: str, t0: float, user: int = -1, conv: int = -1, started: float | None = None,
                 slot: int = 0, key: int = -1, new: bool = False) -> None:
        self.flow = flow
        self.t0 = t0
        self.started = t0 if started is None else started
        self.marks: list[tuple[str, float]] = []  # (component, time its part of the path ended)
        self.reply: Callable[[Any, str | None], None] | None = None  # an attempt answers its edge
        self.token: Any = None
        self.user = user  # messaging: the sender or reader
        self.conv = conv  # messaging: the conversation
        self.slot = slot  # messaging: the sender's member slot in conv
        self.key = key  # a design's key (rank in its space)
        self.new = new  # a fresh key: no cache holds it
        self.fan_n: tuple[int, int] | None = None  # (fan-out step id, members) drawn early: the
        # service call before it costs per member
        self.done = False


class Join:
    """Waits for `need` answers of its awaited branches; fails when more than `slack` fail."""

    __slots__ = ("done", "pending", "slack", "then")

    def __init__(self, need: int, slack: int, then: Then) -> None:
        self.pending = need
        self.slack = slack
        self.then = then
        self.done = False

    def answer(self, error: str | None) -> None:
        if self.done:
            return
        if error is not None:
            if self.slack > 0:
                self.slack -= 1
                return
            self.done = True
            self.then(error)
            return
        self.pending -= 1
        if self.pending == 0:
            self.done = True
            self.then(None)


UNAWAITED = Join(0, 0, lambda _error: None)  # the join of branches nobody waits for


class Cursor:
    __slots__ = ("caller", "i", "join", "keys", "req", "space", "steps", "then")

    def __init__(self, req: Request, steps: tuple[Step, ...], keys: dict[str, int], space: str,
                 join: Join | None, caller: str | None, then: Then) -> None:
        self.req = req
        self.steps = steps
        self.i = 0
        self.keys = keys  # the key each space routes by, here
        self.space = space  # the space a step without its own `key` routes by
        self.join = join  # the innermost join around this sequence (None: the request's own path)
        self.caller = caller  # the component that makes the next call (names its policy edge)
        self.then = then

    def on_path(self) -> bool:
        """This sequence's next answer is on the request's critical path (see the module doc)."""
        join = self.join
        return join is None or (join is not UNAWAITED and join.pending == 1)


def _named(component: str, error: str) -> str:
    return error if error.startswith(component + ".") else f"{component}.{error}"


class FlowRunner:
    """The step executors, over the engine's stations, routing tables and recorder."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.env = engine.env
        self.async_errors: Counter[str] = Counter()

    def prepare(self) -> None:
        """Tables the hot path reads instead of the system (after the engine built its stations)."""
        e = self.e
        self._kind = {name: c.kind for name, c in e.system.components.items()}
        self._callers = {name for name, kind in self._kind.items() if kind in ("gateway", "service")}
        self._edges = {tuple(name.split("->", 1)): edge for name, edge in e.edges.items()}
        self._run = {Call: self.call, Parallel: self.parallel, CacheLookup: self.cache, FanOut: self.fan_out,
                     Produce: self.produce}
        # per call step: (kind, what it calls, service time draw, per-member seconds, replies needed)
        self._plan: dict[int, tuple[str, Any, Any, float, int | None]] = {}
        for flow in e.system.flows.values():
            for step in walk(flow.steps):
                if not isinstance(step, Call):
                    continue
                comp, kind = step.component, self._kind[step.component]
                if kind == "service":
                    plan = (kind, e.fleets[comp], e.op_ms[comp, step.op], e.per_member_s[comp, step.op], None)
                elif kind == "cassandra":
                    cluster = e.cassandras[comp]
                    op = cluster.write if step.op == "write" else cluster.read
                    plan = (kind, op, None, 0.0, e.consistency_k(comp, step.consistency))
                elif kind == "redis":
                    plan = (kind, e.redises[comp], None, 0.0, None)
                else:
                    plan = (kind, e.gateways[comp], None, 0.0, None)
                self._plan[id(step)] = plan

    # -- sequences -----------------------------------------------------------------------------
    def run(self, cur: Cursor) -> None:
        if cur.i == len(cur.steps):
            cur.then(None)
            return
        step = cur.steps[cur.i]
        self._run[type(step)](cur, step)  # type: ignore[operator]

    def advance(self, cur: Cursor, error: str | None) -> None:
        if error is not None:
            cur.then(error)
            return
        i = cur.i = cur.i + 1
        if i == len(cur.steps):
            cur.then(None)
            return
        step = cur.steps[i]
        self._run[type(step)](cur, step)  # type: ignore[operator]

    def _key(self, cur: Cursor, space: str | None) -> tuple[str, int]:
        space = space or cur.space
        return space, cur.keys[space]

    # -- calls ---------------------------------------------------------------------------------
    def call(self, cur: Cursor, step: Call) -> None:
        """A component's operation; without a policy edge the station is called directly."""
        e, comp, env = self.e, step.component, self.env
        kind, target, svc, per_member_s, k = self._plan[id(step)]
        space = step.key or cur.space
        key = cur.keys[space]
        edge = self._edges.get((cur.caller, comp)) if self._edges else None
        ctx = (cur, comp)
        if kind == "service":
            fleet, hop = target, e.hop_ms
            extra_s = e.next_fan_size(cur.req, cur.steps[cur.i + 1:]) * per_member_s if per_member_s else 0.0
            if edge is None:
                call(env, hop(), fleet.pick(), svc() + extra_s, self._called, ctx)
                return

            def issue(reply: Any, tok: Any) -> None:
                call(env, hop(), fleet.pick(), svc() + extra_s, reply, tok)
        elif kind == "cassandra":
            pos, op = e.route[comp, space][key], target
            if edge is None:
                if k is None:
                    op(pos, self._called, ctx)
                else:
                    op(pos, self._called, ctx, k)
                return

            def issue(reply: Any, tok: Any) -> None:
                if k is None:  # the component's own level
                    op(pos, reply, tok)
                else:
                    op(pos, reply, tok, k)
        elif kind == "redis":
            shard, redis = e.route[comp, space][key], target
            if edge is None:
                redis.command(shard, self._called, ctx)
                return

            def issue(reply: Any, tok: Any) -> None:
                redis.command(shard, reply, tok)
        else:  # gateway
            gateway = target
            if edge is None:
                gateway.admit(key, self._called, ctx)
                return

            def issue(reply: Any, tok: Any) -> None:
                gateway.admit(key, reply, tok)
        edge.call(issue, self._called, ctx)

    def _called(self, ctx: tuple[Cursor, str], error: str | None) -> None:
        cur, comp = ctx
        if error is not None:
            self.advance(cur, _named(comp, error))
            return
        join = cur.join
        if (join is None or (join is not UNAWAITED and join.pending == 1)) and not cur.req.done:
            cur.req.marks.append((comp, self.env._now))  # on the critical path (see the module doc)
        if comp in self._callers:
            cur.caller = comp
        i = cur.i = cur.i + 1
        if i == len(cur.steps):
            cur.then(None)
            return
        step = cur.steps[i]
        self._run[type(step)](cur, step)  # type: ignore[operator]

    def produce(self, cur: Cursor, step: Produce) -> None:
        e, comp = self.e, step.component
        space, key = self._key(cur, step.key)
        partition, kafka, req = e.route[comp, space][key], e.kafkas[comp], cur.req
        edge = self._edges.get((cur.caller, comp)) if self._edges else None
        if edge is None:
            kafka.produce(partition, req, self._called, (cur, comp))
            return

        def issue(reply: Any, tok: Any) -> None:
            kafka.produce(partition, req, reply, tok)
        edge.call(issue, self._called, (cur, comp))

    # -- branches ------------------------------------------------------------------------------
    def _unawaited(self, error: str | None) -> None:
        if error is not None:
            self.async_errors[error] += 1

    def parallel(self, cur: Cursor, step: Parallel) -> None:
        awaited_n = sum(step.awaited)
        join = Join(step.need, awaited_n - step.need, lambda error: self.advance(cur, error))
        req = cur.req
        keys, space, caller, run = cur.keys, cur.space, cur.caller, self._run
        for branch, awaited in zip(step.steps, step.awaited, strict=True):
            if awaited:
                branch_cur = Cursor(req, (branch,), keys, space, join, caller, join.answer)
            else:
                branch_cur = Cursor(req, (branch,), keys, space, UNAWAITED, caller, self._unawaited)
            run[type(branch)](branch_cur, branch)  # type: ignore[operator]
        if step.need == 0 and not join.done:
            join.done = True
            self.advance(cur, None)

    def fan_out(self, cur: Cursor, step: FanOut) -> None:
        e, req = self.e, cur.req
        branches: list[tuple[dict[str, int], str]]
        if step.relation == "conversation_members":
            conv = cur.keys["conversation"]
            members = e.members(conv).tolist()
            slot = req.slot
            branches = [({"user": m, "conversation": conv}, "user")
                        for m in members[:slot] + members[slot + 1:]]  # every member but the sender
        elif step.relation == "user_conversations":
            user = cur.keys["user"]
            branches = [({"user": user, "conversation": c}, "conversation")
                        for c in e.population.inbox(user).tolist()]
        else:
            assert step.space is not None
            if req.fan_n is not None and req.fan_n[0] == id(step):
                n, req.fan_n = req.fan_n[1], None
            else:
                n = e.group_size(step)
            space = step.space
            branches = [({**cur.keys, space: k}, space) for k in e.draw_members(space, n)]
        if not branches:
            self.advance(cur, None)
            return
        join = Join(len(branches), 0, lambda error: self.advance(cur, error))
        for keys, space in branches:
            self.run(Cursor(req, step.steps, keys, space, join, cur.caller, join.answer))

    # -- caches --------------------------------------------------------------------------------
    def cache(self, cur: Cursor, step: CacheLookup) -> None:
        e, comp = self.e, step.component
        space, key = self._key(cur, step.key)
        shard = e.route[comp, space][key]
        e.redises[comp].command(shard, self._looked_up, (cur, step, key, shard))

    def _looked_up(self, ctx: tuple[Cursor, CacheLookup, int, int], error: str | None) -> None:
        cur, step, key, shard = ctx
        req, comp = cur.req, step.component
        redis = self.e.redises[comp]
        if cur.on_path() and not req.done:
            req.marks.append((comp, self.env._now))
        if error is None and not req.new and redis.is_hit(key):
            self.advance(cur, None)
            return
        if error is not None:
            self.async_errors[f"{comp}.{error}"] += 1
        if not step.miss:
            self.advance(cur, f"{comp}.{error}" if error else f"{comp}.{step.miss_error}")
            return

        def missed(miss_error: str | None) -> None:
            self.advance(cur, miss_error)
            if miss_error is None and step.fill:
                redis.command(shard, self._filled, (comp, key))

        self.run(Cursor(req, step.miss, cur.keys, cur.space, cur.join, cur.caller, missed))

    def _filled(self, ctx: tuple[str, int], error: str | None) -> None:
        comp, key = ctx
        if error is None:
            self.e.redises[comp].filled(key)
        else:
            self.async_errors[f"{comp}.fill_{error}"] += 1

    # -- triggered flows -----------------------------------------------------------------------
    def consume(self, consumer: Consumer, req: Request) -> None:
        """A consumer starts a triggered flow's request: its service op, then the flow's steps."""
        e = self.e
        flow = e.system.flows[req.flow]
        assert flow.consumer is not None
        comp, op = flow.consumer.component, flow.consumer.op
        per_member_s = e.per_member_s[comp, op]
        service_s = e.op_ms[comp, op]()
        if per_member_s:
            service_s += e.next_fan_size(req, flow.steps) * per_member_s
        req.marks.append(("kafka_consumer_lag", self.env._now))
        call(self.env, e.hop_ms(), consumer.station, service_s, self._consumed, (req, consumer, comp))

    def _consumed(self, ctx: tuple[Request, Consumer, str], error: str | None) -> None:
        req, consumer, comp = ctx
        e = self.e

        def delivered(error: str | None) -> None:
            e.finish(req, error)
            consumer.finished()

        if error is not None:
            delivered(_named(comp, error))
            return
        req.marks.append((comp, self.env._now))
        flow = e.system.flows[req.flow]
        self.run(Cursor(req, flow.steps, e.keys_of(req, flow.space), flow.space, None, comp, delivered))
