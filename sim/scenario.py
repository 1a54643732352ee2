"""The scenario: a typed schema of workload and fleet, loaded from YAML with clear errors.

`load_scenario(path, overrides)` reads YAML (following `extends:` to a base file), applies
`--set dotted.path=value` overrides, and validates against the schema below. Any problem raises
`ScenarioError` whose text is one line naming the field path, what was wrong and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from sim.distributions import DistSpec, as_spec
from sim.errors import ScenarioError

Dist = Annotated[DistSpec, BeforeValidator(as_spec)]
Consistency = Literal["ONE", "TWO", "THREE", "QUORUM", "ALL"]
Step = Literal["cassandra", "redis", "kafka"]


def _dist(**kwargs: Any) -> Any:
    """A distribution default, validated like user input (models set validate_default)."""
    return Field(default_factory=lambda: dict(kwargs))


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Network(Model):
    hop_ms: Dist = _dist(dist="lognormal", mean=0.25, p99=1.0)


class Workload(Model):
    users: int = Field(10_000_000, ge=1)
    user_zipf_s: float = Field(0.5, ge=0, description="Zipf exponent of per-user activity")
    conversations: int = Field(20_000_000, ge=1)
    conversation_zipf_s: float = Field(0.9, ge=0, description="Zipf exponent of conversation popularity")
    group_share: float = Field(0.2, ge=0, le=1, description="fraction of conversations that are groups")
    group_size: Dist = _dist(dist="lognormal", mean=8, p99=100, min=3, max=5000)
    sends_per_sec: float = Field(1_000_000, ge=0)
    reads_per_sec: float = Field(10_000_000, ge=0)
    arrivals: Literal["poisson", "deterministic"] = "poisson"
    message_bytes: Dist = _dist(dist="lognormal", mean=1024, p99=8192, min=16)
    recent_messages: int = Field(100, ge=1, description="messages kept per conversation in Redis")


class RateLimit(Model):
    per_user_per_sec: float = Field(gt=0)
    burst: float = Field(ge=1)


class Fleet(Model):
    enabled: bool = True
    instances: int = Field(1, ge=1)
    workers: int = Field(1, ge=1, description="servers per instance")
    queue_limit: int | None = Field(None, ge=0, description="waiting jobs per instance; full => reject")
    instance_type: str | None = None
    balancer: Literal["round_robin", "random"] = "round_robin"


class Gateway(Fleet):
    service_ms: Dist = _dist(dist="lognormal", mean=0.3, p99=2.0)
    rate_limit: RateLimit | None = None


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
    max_in_flight: int = Field(64, ge=1, description="events each consumer works on at once")


class Cassandra(Model):
    enabled: bool = True
    nodes: int = Field(6, ge=1)
    workers: int = Field(8, ge=1, description="concurrent request threads (cores) per node")
    vnodes: int = Field(16, ge=1, description="tokens per node on the ring")
    replication_factor: int = Field(3, ge=1)
    write_consistency: Consistency = "QUORUM"
    read_consistency: Consistency = "QUORUM"
    write_service_ms: Dist = _dist(dist="lognormal", mean=0.35, p99=2.0)
    read_service_ms: Dist = _dist(dist="lognormal", mean=1.0, p99=6.0)
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None

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
    shards: int = Field(4, ge=1)
    workers: int = Field(1, ge=1, description="Redis executes commands on one thread")
    memory_gb_per_shard: float = Field(8.0, gt=0)
    usable_memory_fraction: float = Field(0.75, gt=0, le=1, description="share left for data")
    service_ms: Dist = _dist(dist="lognormal", mean=0.02, p99=0.15)
    hit_ratio: float | None = Field(None, ge=0, le=1, description="fix the hit ratio (else cache model)")
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None


class Kafka(Model):
    enabled: bool = True
    brokers: int = Field(3, ge=1)
    partitions: int = Field(12, ge=1)
    replication_factor: int = Field(3, ge=1)
    acks: Literal["0", "1", "all"] = "all"
    workers: int = Field(8, ge=1, description="request handler threads per broker")
    append_ms: Dist = _dist(dist="lognormal", mean=0.05, p99=0.5)
    queue_limit: int | None = Field(None, ge=0)
    instance_type: str | None = None

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


class Scenario(Model):
    name: str = "scenario"
    description: str = ""
    seed: int = Field(1, ge=0)
    duration_s: float = Field(30.0, gt=0, description="simulated seconds, warm-up included")
    warmup_s: float = Field(5.0, ge=0)
    sample: float = Field(1.0, gt=0, le=1, description="fraction of users, traffic and fleet simulated")
    network: Network = Field(default_factory=Network)
    workload: Workload = Field(default_factory=Workload)
    gateway: Gateway = Field(default_factory=Gateway)
    message_service: MessageService = Field(default_factory=MessageService)
    group_service: GroupService = Field(default_factory=GroupService)
    cassandra: Cassandra = Field(default_factory=Cassandra)
    redis: Redis = Field(default_factory=Redis)
    kafka: Kafka = Field(default_factory=Kafka)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.warmup_s >= self.duration_s:
            raise ValueError(
                f"warmup_s ({self.warmup_s}) must be below duration_s ({self.duration_s})"
            )
        enabled = {"cassandra": self.cassandra.enabled, "redis": self.redis.enabled,
                   "kafka": self.kafka.enabled}
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


# --------------------------------------------------------------------------------------------
# Loading


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, merge (`extends:`), override (`a.b=value`) and validate a scenario file."""
    path = Path(path)
    raw, lines = _read_yaml(path, seen=())
    raw = copy.deepcopy(raw)
    for item in overrides or []:
        _apply_override(raw, item)
    _set_base_dir(raw, path.parent)
    raw.setdefault("name", path.stem)
    return validate_scenario(raw, lines=lines, source=str(path))


def validate_scenario(raw: dict[str, Any], lines: dict[tuple, int] | None = None,
                      source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc, lines or {}, source) from None


def _read_yaml(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[tuple, int]]:
    if not path.is_file():
        raise ScenarioError(str(path), "file not found")
    if path.resolve() in seen:
        raise ScenarioError(str(path), "extends: forms a cycle")
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError(where, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), f"YAML error: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(str(path), "a scenario must be a mapping of sections (workload:, gateway:, ...)")
    lines = _line_index(node, ()) if node is not None else {}
    base = data.pop("extends", None)
    if base is None:
        return data, lines
    if not isinstance(base, str):
        raise ScenarioError(f"{path}: extends", "must be a path to another scenario file")
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    base_data, base_lines = _read_yaml(base_path, (*seen, path.resolve()))
    _set_base_dir(base_data, base_path.parent)
    base_data.pop("name", None)
    return _deep_merge(base_data, data), {**base_lines, **lines}


def _line_index(node: yaml.Node, prefix: tuple) -> dict[tuple, int]:
    out: dict[tuple, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_line_index(value, (*prefix, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out.update(_line_index(value, (*prefix, i)))
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "dist" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_base_dir(raw: Any, base_dir: Path) -> None:
    """Empirical distributions read files relative to the scenario that names them."""
    if isinstance(raw, dict):
        if raw.get("dist") == "empirical" and "base_dir" not in raw:
            raw["base_dir"] = str(base_dir)
        for value in raw.values():
            _set_base_dir(value, base_dir)


def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ScenarioError(f"--set {item}", "expected dotted.path=value, e.g. cassandra.nodes=12")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ScenarioError(f"--set {item}", "the path before '=' is empty")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    target = raw
    for i, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            nxt = target[part] = {}
        if not isinstance(nxt, dict):
            raise ScenarioError(f"--set {key}", f"{'.'.join(parts[: i + 1])} is not a section")
        target = nxt
    target[parts[-1]] = value


_DIST_TAGS = {"exponential", "deterministic", "lognormal", "gamma", "empirical"}


def _one_line(exc: ValidationError, lines: dict[tuple, int], source: str) -> ScenarioError:
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and (p in _DIST_TAGS or "[" in p))]
    path = ".".join(str(p) for p in loc)
    line = _nearest_line(tuple(loc), lines)
    where = f"{source}:{line}: {path}" if line else (f"{source}: {path}" if path else source)
    kind = err["type"]
    if kind == "extra_forbidden":
        return ScenarioError(where, f"unknown key{_did_you_mean(loc)}")
    if kind == "union_tag_invalid":
        return ScenarioError(where, f"unknown dist; allowed: {sorted(_DIST_TAGS)}")
    if kind == "union_tag_not_found":
        return ScenarioError(where, f"a distribution needs 'dist:' (one of {sorted(_DIST_TAGS)})")
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return ScenarioError(where, "required field is missing")
    if kind.startswith("literal_error") or "Input should be" in msg:
        got = err.get("input")
        if not isinstance(got, dict | list):
            msg = f"got {got!r}; {msg[0].lower()}{msg[1:]}"
    return ScenarioError(where, msg)


def _nearest_line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines and n > 0:
            return lines[loc[:n]]
    return None


def _did_you_mean(loc: list) -> str:
    model: Any = Scenario
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        model = _model_of(field.annotation)
        if model is None:
            return ""
    known = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} allowed: {', '.join(k for k in known if k != 'base_dir')}"


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
