"""The scenario: a typed schema of the workload and the fleet (pydantic).

Loading YAML files into it, with `extends:`, `--set` overrides and one-line errors, is
sim/loading.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from sim.design import ComponentSpec, FlowSpec, KeySpace, Name
from sim.faults import Fault, fault_problem
from sim.fleet_specs import (
    MAX_INSTANCES,
    MAX_WORKERS,
    Cassandra,
    Consistency,
    Dist,
    Fleet,
    Gateway,
    Kafka,
    Model,
    RateLimit,
    Redis,
    _dist,
    replies_needed,
)
from sim.policies import EDGES, Policy

__all__ = ["MAX_INSTANCES", "MAX_WORKERS", "Cassandra", "Consistency", "Fleet", "Gateway", "Kafka",
           "RateLimit", "Redis", "Scenario", "replies_needed"]

Step = Literal["cassandra", "redis", "kafka"]
MESSAGING_SECTIONS = ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka")


class Network(Model):
    hop_ms: Dist = _dist(dist="lognormal", mean=0.25, p99=1.0)
    zones: int = Field(3, ge=1, le=1000, description="availability zones the fleets and replicas spread over")
    regions: int = Field(1, ge=1, le=1000, description="regions; every write is copied to each other region")


class HotConversation(Model):
    """A deliberate hot key: one conversation with many members and its own traffic."""

    members: int = Field(ge=2, le=1_000_000)
    sends_per_sec: float = Field(0.0, ge=0, description="full-scale sends into it (of the workload's)")
    reads_per_sec: float = Field(0.0, ge=0, description="full-scale reads of it (of the workload's)")


class Workload(Model):
    users: int = Field(10_000_000, ge=1, le=10_000_000_000)
    user_zipf_s: float = Field(0.5, ge=0, description="Zipf exponent of per-user activity")
    conversations: int = Field(20_000_000, ge=1, le=100_000_000_000)
    group_share: float = Field(0.2, ge=0, le=1, description="fraction of conversations that are groups")
    send_size_exponent: float = Field(
        1.0, ge=0, le=4,
        description="a user's sends are spread over their conversations with weight size**-e: 0 = "
        "evenly (a group's traffic grows with its members), 1 = a group gets about what a direct chat "
        "gets (few members write, most read)")
    hot_conversations: list[HotConversation] = Field(
        default_factory=list,
        description="deliberate hot keys (a celebrity's channel, a live event) with their own rates, "
        "on top of the population's conversations")
    group_size: Dist = _dist(dist="lognormal", mean=8, p99=100, min=3, max=5000)
    sends_per_sec: float = Field(1_000_000, ge=0)
    reads_per_sec: float = Field(10_000_000, ge=0)
    arrivals: Literal["poisson", "deterministic"] = "poisson"
    message_bytes: Dist = _dist(dist="lognormal", mean=1024, p99=8192, min=16)
    recent_messages: int = Field(100, ge=1, le=1_000_000,
                                 description="messages kept per conversation in Redis")
    messages_per_read: int = Field(
        20, ge=1, le=100_000,
        description="messages a read returns (a page of the recent list); sizes read traffic")
    retention_days: float = Field(365, gt=0, description="how long Cassandra keeps messages")

    @model_validator(mode="before")
    @classmethod
    def _retired_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and "conversation_zipf_s" in data:
            raise ValueError(
                "conversation_zipf_s was removed: a conversation's traffic now comes from its members "
                "(user_zipf_s, group sizes, send_size_exponent); declare a deliberate hot key with "
                "hot_conversations")
        return data

    @model_validator(mode="after")
    def _hot_fits(self) -> Workload:
        for field, total in (("sends_per_sec", self.sends_per_sec), ("reads_per_sec", self.reads_per_sec)):
            hot = sum(getattr(h, field) for h in self.hot_conversations)
            if hot > total:
                raise ValueError(f"hot_conversations take {hot:g} {field} but workload.{field} is "
                                 f"{total:g}; allowed: at most the total")
        return self


class MessageService(Fleet):
    send_service_ms: Dist = _dist(dist="lognormal", mean=0.5, p99=3.0)
    read_service_ms: Dist = _dist(dist="lognormal", mean=0.3, p99=2.0)
    partition_key: Literal["user", "conversation"] = "user"
    ack_after: list[Step] | None = Field(
        None, description="steps the client's ack waits for; default: cassandra and redis, if enabled")


class GroupService(Fleet):
    fan_out: Literal["write", "read"] = "write"
    service_ms: Dist = _dist(dist="lognormal", mean=0.5, p99=3.0)
    per_recipient_ms: float = Field(0.02, ge=0, description="CPU per recipient on top of service_ms")
    max_in_flight: int = Field(64, ge=1, le=1_000_000, description="events each consumer works on at once")
    inbox_entry_bytes: float = Field(
        120, gt=0, description="stored per recipient by fan-out on write (a message reference)")


def _figure_path(path: str) -> str:
    """An SLO's or sweep's metric: a dotted path naming a number of summary.json (sim.summary)."""
    from sim.summary import figure_path_problem

    problem = figure_path_problem(path)
    if problem is not None:
        raise ValueError(f"{path}: {problem}")
    return path


FigurePath = Annotated[str, AfterValidator(_figure_path)]


class Slo(Model):
    """A service-level objective on one figure of summary.json, e.g. latency_ms.read.p99 < 100."""

    name: str | None = None
    metric: FigurePath = Field(description="dotted path into summary.json, e.g. latency_ms.read.p99")
    max: float | None = Field(None, description="met when the figure is at most this")
    min: float | None = Field(None, description="met when the figure is at least this")

    @model_validator(mode="after")
    def _one_bound(self) -> Slo:
        if (self.max is None) == (self.min is None):
            raise ValueError("an SLO takes exactly one of max or min")
        if self.name is None:
            bound = f"<= {self.max:g}" if self.max is not None else f">= {self.min:g}"
            self.name = f"{self.metric} {bound}"
        return self


class Pricing(Model):
    catalog: str = Field("aws-us-east-1", description="a catalog in sim/data/pricing/, or a YAML path")
    usd_per_hour: dict[str, float] = Field(
        default_factory=dict, description="override instance prices by instance type")


class Capacity(Model):
    target_utilization: float = Field(
        0.7, gt=0, le=1, description="CPU share `capsim size` plans for, leaving headroom for bursts")


def _seconds_or_auto(value: Any) -> Any:
    """`warmup_s`: seconds (a number >= 0) or `auto` (MSER-5, sim/experiments/warmup.py)."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"got {value!r}; allowed: seconds (a number >= 0) or auto") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"got {value!r}; allowed: seconds (a number >= 0) or auto")
    if value < 0:
        raise ValueError(f"got {value:g}; allowed: seconds >= 0, or auto")
    return float(value)


WarmupSeconds = Annotated[float | Literal["auto"], BeforeValidator(_seconds_or_auto)]


class Sweep(Model):
    """`capsim sweep`: a grid of runs, every combination of the listed values."""

    parameters: dict[str, list[Any]] = Field(
        min_length=1, description="dotted.path: [values], e.g. cassandra.nodes: [48, 96]")
    metrics: list[FigurePath] = Field(
        default_factory=list, description="summary.json figures to chart, e.g. latency_ms.read.p99")
    replications: int = Field(1, ge=1, description="independent runs per point (CI from 2 up)")

    @model_validator(mode="after")
    def _well_formed(self) -> Sweep:
        for path, values in self.parameters.items():
            if not values:
                raise ValueError(f"parameters.{path} has no values; allowed: a list of one or more")
        return self


NAME_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}"


def _safe_name(value: Any) -> Any:
    """`name` becomes a folder under reports/: one plain path component, never `..` or `/`."""
    if isinstance(value, str) and not re.fullmatch(NAME_PATTERN, value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise ValueError(f"got {shown}; allowed: 1-100 letters, digits, '-', '_' and '.', not "
                         "starting with '.' (the name is a folder under reports/)")
    return value


class Scenario(Model):
    name: Annotated[str, BeforeValidator(_safe_name)] = "scenario"
    description: str = ""
    seed: int = Field(1, ge=0)
    duration_s: float = Field(30.0, gt=0, description="simulated seconds, warm-up included")
    warmup_s: WarmupSeconds = Field(
        5.0, description="seconds discarded before measuring, or auto (MSER-5 on a pilot's series)")
    sample: float = Field(1.0, gt=0, le=1, description="fraction of users, traffic and fleet simulated")
    network: Network = Field(default_factory=Network)
    workload: Workload = Field(default_factory=Workload)
    gateway: Gateway = Field(default_factory=Gateway)
    message_service: MessageService = Field(default_factory=MessageService)
    group_service: GroupService = Field(default_factory=GroupService)
    cassandra: Cassandra = Field(default_factory=Cassandra)
    redis: Redis = Field(default_factory=Redis)
    kafka: Kafka = Field(default_factory=Kafka)
    slo: list[Slo] = Field(default_factory=list)
    pricing: Pricing = Field(default_factory=Pricing)
    capacity: Capacity = Field(default_factory=Capacity)
    sweep: Sweep | None = Field(None, description="the grid `capsim sweep` runs (see sim/experiments)")
    faults: list[Fault] = Field(default_factory=list)
    policies: dict[str, Policy] = Field(
        default_factory=dict, description="caller->callee edge: policy (sim/policies.py)")
    availability_target: float = Field(
        0.999, gt=0, le=1, description="per-window availability that counts as the SLO held")
    # the design form (sim/design.py): named components and flows instead of the messaging sections
    keys: dict[Name, KeySpace] = Field(default_factory=dict, description="a design's key spaces")
    components: dict[Name, ComponentSpec] = Field(default_factory=dict, description="a design's components")
    flows: dict[Name, FlowSpec] = Field(default_factory=dict, description="a design's request types")

    @property
    def is_design(self) -> bool:
        """Declared as components and flows (else: the messaging sections)."""
        return bool(self.flows)

    def fleets(self) -> list[tuple[str, bool, int, str | None]]:
        """(component, enabled, configured instances, instance_type) for every fleet: a design's
        components in declaration order, else the messaging sections in the order of the component
        kinds' registry (sim/components/: each kind knows its section and count)."""
        if self.is_design:
            from sim.system.model import Component

            return [(name, True, Component(name, c.kind, c).instances, c.instance_type)
                    for name, c in self.components.items()]
        from sim.components import kinds  # the kinds' modules import this module

        return [(k.name, k.enabled(self), k.configured(self), k.instance_type(self)) for k in kinds()]

    def _figures_name_flows(self) -> None:
        """A design's SLOs and sweep metrics name its own flows (latency_ms.resolve.p99)."""
        from sim.summary import figure_path_problem

        named = [(f"slo[{i}].metric", s.metric) for i, s in enumerate(self.slo)]
        if self.sweep is not None:
            named += [(f"sweep.metrics[{i}]", m) for i, m in enumerate(self.sweep.metrics)]
        for where, path in named:
            problem = figure_path_problem(path, list(self.flows))
            if problem is not None:
                raise ValueError(f"{where}: {path}: {problem}")

    def _component_kinds(self) -> dict[str, str]:
        if self.is_design:
            return {name: c.kind for name, c in self.components.items()}
        named = {"gateway": "gateway", "message_service": "service", "group_service": "service",
                 "cassandra": "cassandra", "redis": "redis", "kafka": "kafka"}
        return {name: named[name] for name, enabled, _, _ in self.fleets() if enabled}

    def _edges_exist(self) -> None:
        if self.is_design:
            names = set(self.components)
            for edge in self.policies:
                caller, _, callee = edge.partition("->")
                if (caller not in names | {"client"}) or callee not in names:
                    raise ValueError(f"policies: edge {edge!r} does not name caller->callee; allowed: "
                                     f"client or a component, then a component ({', '.join(names)})")
            return
        for edge in self.policies:
            if edge not in EDGES:
                raise ValueError(f"policies: unknown edge {edge!r}; allowed: {', '.join(EDGES)}")

    @model_validator(mode="before")
    @classmethod
    def _one_form(cls, data: Any) -> Any:
        """A design (components + flows) leaves the messaging sections out; they are disabled."""
        if not isinstance(data, dict) or not (data.get("flows") or data.get("components")):
            return data
        legacy = [k for k in ("workload", *MESSAGING_SECTIONS) if k in data]
        if legacy:
            raise ValueError(f"a design (components and flows) cannot also set {', '.join(legacy)}; "
                             "allowed: keys, components, flows (the messaging sections are the other form)")
        missing = [k for k in ("keys", "components", "flows") if not data.get(k)]
        if missing:
            raise ValueError(f"a design needs keys, components and flows; missing: {', '.join(missing)}")
        return {**data, **{k: {"enabled": False} for k in MESSAGING_SECTIONS}}

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.warmup_s != "auto" and self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s}) must be below duration_s ({self.duration_s})"
            )
        self._edges_exist()
        if self.is_design:
            from sim.system.compile import design_system

            design_system(self)  # every reference resolves, or a one-line error naming its path
            self._figures_name_flows()
        enabled = {"cassandra": self.cassandra.enabled, "redis": self.redis.enabled,
                   "kafka": self.kafka.enabled}
        sizes = {name: count for name, enabled, count, _ in self.fleets() if enabled}
        kinds = self._component_kinds()
        for i, fault in enumerate(self.faults):
            if fault.component is not None and fault.component not in sizes:
                what = "does not exist" if self.is_design else "is disabled"
                raise ValueError(f"faults[{i}]: component {fault.component} {what}; allowed: "
                                 f"{', '.join(sizes)}")
            needs = {"broker_loss": "kafka", "shard_loss": "redis"}.get(fault.kind)
            if needs is not None and kinds.get(fault.component or "") != needs:
                allowed = [n for n, k in kinds.items() if k == needs]
                raise ValueError(f"faults[{i}]: {fault.kind} applies to a {needs} component; allowed: "
                                 f"{', '.join(allowed) or 'none in this scenario'}")
            if fault.nodes is not None and fault.component is not None:
                bad = [n for n in fault.nodes if n >= sizes[fault.component]]
                if bad:
                    last = sizes[fault.component] - 1
                    raise ValueError(f"faults[{i}]: {fault.component} has nodes 0..{last}; got {bad}")
            if fault.zone is not None and fault.zone >= self.network.zones:
                raise ValueError(f"faults[{i}]: zone {fault.zone} does not exist; allowed: "
                                 f"0..{self.network.zones - 1} (network.zones)")
        if self.faults:  # a fault that would do nothing in the run (or its sample cell) is an error
            from sim.sampling import make_cell  # sim.sampling imports this module

            fleets = make_cell(self).fleets
            simulated = {name: fleets[name].simulated for name in sizes}
            for i, fault in enumerate(self.faults):
                problem = fault_problem(fault, self.duration_s, self.network.zones, self.sample, sizes,
                                        simulated)
                if problem is not None:
                    raise ValueError(f"faults[{i}]: {problem}")
        if self.is_design:
            return self
        if self.message_service.ack_after is None:
            self.message_service.ack_after = [s for s in ("cassandra", "redis") if enabled[s]]
        for step in self.message_service.ack_after:
            if not enabled[step]:
                raise ValueError(
                    f"message_service.ack_after names {step}, which is disabled; allowed: "
                    f"{[s for s, on in enabled.items() if on]}"
                )
        if self.group_service.enabled and not self.kafka.enabled:
            raise ValueError("group_service needs kafka enabled (fan-out reads events from Kafka)")
        gs = self.group_service
        if gs.enabled and gs.fan_out == "write" and not self.cassandra.enabled:
            raise ValueError("group_service.fan_out: write needs cassandra enabled for inbox writes")
        if (self.group_service.enabled and self.group_service.fan_out == "read"
                and self.message_service.partition_key != "conversation"):
            raise ValueError(
                "group_service.fan_out: read needs message_service.partition_key: conversation "
                "(readers find a conversation's messages in one partition)"
            )
        return self

