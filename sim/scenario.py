"""The scenario: a typed schema of the workload and the fleet (pydantic).

Loading YAML files into it, with `extends:`, `--set` overrides and one-line errors, is
sim/loading.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sim.distributions import DistSpec, as_spec
from sim.faults import Fault, fault_problem
from sim.policies import Edge, Policy

Dist = Annotated[DistSpec, BeforeValidator(as_spec)]
Consistency = Literal["ONE", "TWO", "THREE", "QUORUM", "ALL"]
Step = Literal["cassandra", "redis", "kafka"]


# Upper bounds on counts, absurd on their face (the largest fleets known run ~10^4-10^5 nodes);
# what fits this machine's memory and time is sim/budget.py's estimate.
MAX_INSTANCES = 1_000_000
MAX_WORKERS = 100_000


def _dist(**kwargs: Any) -> Any:
    """A distribution default, validated like user input (models set validate_default)."""
    return Field(default_factory=lambda: dict(kwargs))


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


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


class RateLimit(Model):
    per_user_per_sec: float = Field(gt=0)
    burst: float = Field(ge=1)


class Fleet(Model):
    enabled: bool = True
    instances: int = Field(1, ge=1, le=MAX_INSTANCES)
    workers: int = Field(1, ge=1, le=MAX_WORKERS, description="servers per instance")
    queue_limit: int | None = Field(None, ge=0, description="waiting jobs per instance; full => reject")
    instance_type: str | None = None
    balancer: Literal["random", "round_robin"] = Field(
        "random",
        description="random: each instance sees a Poisson thinning of the traffic (many independent "
        "clients and balancers); round_robin: one strict rotation, which smooths each instance's "
        "arrivals and so lowers queueing as the fleet grows",
    )


class Gateway(Fleet):
    service_ms: Dist = _dist(dist="lognormal", mean=0.3, p99=2.0)
    rate_limit: RateLimit | None = None
    pricing: Literal["instances", "api_gateway_rest", "api_gateway_http"] = Field(
        "instances", description="priced as our own instances, or as a managed API gateway per request")


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


class Cassandra(Model):
    enabled: bool = True
    nodes: int = Field(6, ge=1, le=MAX_INSTANCES)
    workers: int = Field(8, ge=1, le=MAX_WORKERS, description="concurrent request threads (cores) per node")
    vnodes: int = Field(16, ge=1, le=4096, description="tokens per node on the ring")
    replication_factor: int = Field(3, ge=1, le=100)
    write_consistency: Consistency = "QUORUM"
    read_consistency: Consistency = "QUORUM"
    write_service_ms: Dist = _dist(dist="lognormal", mean=0.35, p99=2.0)
    read_service_ms: Dist = _dist(dist="lognormal", mean=1.0, p99=6.0)
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None
    disk: Literal["local", "ebs"] = Field("local", description="instance NVMe, or EBS gp3 volumes")
    disk_gb_per_node: float | None = Field(
        None, gt=0, description="usable disk per node; default: the instance type's local disk")
    compaction_headroom: float = Field(
        2.0, ge=1, description="disk provisioned per byte of data (2 = disks kept at most half full)")
    max_data_gb_per_node: float = Field(
        1280, gt=0, description="data one node can hold and still stream/repair in reasonable time")

    @model_validator(mode="after")
    def _levels_fit(self) -> Cassandra:
        if self.replication_factor > self.nodes:
            raise ValueError(
                f"replication_factor ({self.replication_factor}) exceeds nodes ({self.nodes}); "
                f"allowed: 1..{self.nodes}"
            )
        for field in ("write_consistency", "read_consistency"):
            k = replies_needed(getattr(self, field), self.replication_factor)
            if k > self.replication_factor:
                raise ValueError(
                    f"{field} {getattr(self, field)} needs {k} replicas but replication_factor is "
                    f"{self.replication_factor}"
                )
        return self


class Redis(Model):
    enabled: bool = True
    shards: int = Field(4, ge=1, le=MAX_INSTANCES)
    workers: int = Field(1, ge=1, le=MAX_WORKERS, description="Redis executes commands on one thread")
    replicas: int = Field(
        1, ge=0, le=5, description="replica nodes per shard, in other zones (ElastiCache allows 0-5): "
        "each holds the shard's memory and costs like it; sizing and cost count them, the simulation "
        "serves from the primaries")
    memory_gb_per_shard: float = Field(8.0, gt=0)
    usable_memory_fraction: float = Field(0.75, gt=0, le=1, description="share left for data")
    service_ms: Dist = _dist(dist="lognormal", mean=0.02, p99=0.15)
    hit_ratio: float | None = Field(None, ge=0, le=1, description="fix the hit ratio (else cache model)")
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None


class Kafka(Model):
    enabled: bool = True
    brokers: int = Field(3, ge=1, le=MAX_INSTANCES)
    partitions: int = Field(12, ge=1, le=10_000_000)
    replication_factor: int = Field(3, ge=1, le=100)
    acks: Literal["0", "1", "all"] = "all"
    workers: int = Field(8, ge=1, le=MAX_WORKERS, description="request handler threads per broker")
    append_ms: Dist = _dist(dist="lognormal", mean=0.05, p99=0.5)
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None
    retention_hours: float = Field(168, gt=0, description="how long brokers keep records")
    disk_gb_per_broker: float = Field(2000, gt=0, description="storage per broker")

    @model_validator(mode="before")
    @classmethod
    def _acks_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("acks"), int):
            data = {**data, "acks": str(data["acks"])}
        return data

    @model_validator(mode="after")
    def _rf_fits(self) -> Kafka:
        if self.replication_factor > self.brokers:
            raise ValueError(
                f"replication_factor ({self.replication_factor}) exceeds brokers ({self.brokers}); "
                f"allowed: 1..{self.brokers}"
            )
        return self


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
    policies: dict[Edge, Policy] = Field(default_factory=dict)
    availability_target: float = Field(
        0.999, gt=0, le=1, description="per-window availability that counts as the SLO held")

    def fleets(self) -> list[tuple[str, bool, int, str | None]]:
        """(component, enabled, configured instances, instance_type) for every fleet, in the order
        of the component kinds' registry (sim/components/: each kind knows its section and count)."""
        from sim.components import kinds  # the kinds' modules import this module

        return [(k.name, k.enabled(self), k.configured(self), k.instance_type(self)) for k in kinds()]

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.warmup_s != "auto" and self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s}) must be below duration_s ({self.duration_s})"
            )
        enabled = {"cassandra": self.cassandra.enabled, "redis": self.redis.enabled,
                   "kafka": self.kafka.enabled}
        sizes = {name: count for name, enabled, count, _ in self.fleets() if enabled}
        for i, fault in enumerate(self.faults):
            if fault.component is not None and fault.component not in sizes:
                raise ValueError(f"faults[{i}]: component {fault.component} is disabled; allowed: "
                                 f"{', '.join(sizes)}")
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


def replies_needed(level: str, rf: int) -> int:
    """Replica replies a coordinator waits for at consistency `level` with `rf` replicas."""
    return {"ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": rf // 2 + 1, "ALL": rf}[level]
