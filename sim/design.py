"""The design form of a scenario: key spaces, named components and flows, as YAML declares them.

A design scenario names its own components (`components:`, any number of each kind) and its
request types (`flows:`), instead of the messaging sections (gateway, message_service, ...).
sim/system/ compiles either form into one `System` that both engines consume.

A flow has a rate (`rate_per_sec`, full scale) or is started by another flow's `produce` step,
and a key space its requests are keyed by (`key: link`, drawn by the space's Zipf popularity, or
`key: link.new`, a fresh key nobody asked for before). Its steps run in order; each is one of:

    call: api.resolve                      a component's operation (gateway, service, cassandra,
                                           redis); cassandra takes `consistency`
    parallel: {steps: [...], join: all}    the steps at once; the flow goes on when `join` answered:
                                           all, an integer k (any k of them) or a list of step names
                                           (the others run unawaited, their errors counted apart)
    fan_out: {members: DIST, key: user, steps: [...]}
                                           the steps once per member of a group of `members` keys
                                           drawn from space `key`, all awaited
    cache: {on: cache, miss: [...], fill: true}
                                           a lookup in a redis component: a hit ends the step, a
                                           miss runs `miss` and then (unawaited) fills the key
    produce: {on: stream, then: flow}      append to a kafka component; when the record commits,
                                           the consumer group of flow `then` starts it

A triggered flow names its consumer: `consumer: {on: <service>, op: <op>, max_in_flight: 64}`;
its latency runs from the start of the request that produced it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sim.distributions import DistSpec, as_spec
from sim.fleet_specs import Cassandra, Fleet, Gateway, Kafka, Redis

Dist = Annotated[DistSpec, BeforeValidator(as_spec)]
Consistency = Literal["ONE", "TWO", "THREE", "QUORUM", "ALL"]
NAME = r"[a-z][a-z0-9_]{0,39}"
STEP_KINDS = ("call", "parallel", "fan_out", "cache", "produce")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _name(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(NAME, value):
        raise ValueError(f"got {value!r}; allowed: a lowercase name of letters, digits and '_' "
                         "(1-40 characters, starting with a letter)")
    return value


Name = Annotated[str, BeforeValidator(_name)]


class KeySpace(_Model):
    """A population of keys (links, users, drivers) and how requests pick among them."""

    count: int = Field(ge=1, le=100_000_000_000, description="keys in the space at full scale")
    zipf_s: float = Field(0.0, ge=0, le=3, description="popularity of the key ranked i is i**-zipf_s")
    value_bytes: Dist = Field(default_factory=lambda: {"dist": "deterministic", "value": 512},
                              description="bytes a cache holds per key (its value)")


class ServiceOp(_Model):
    """One operation of a service: its CPU time, plus time per member of the group it fans out to."""

    service_ms: Dist
    per_member_ms: float = Field(0.0, ge=0, description="added per member when the flow fans out next")

    @model_validator(mode="before")
    @classmethod
    def _bare_distribution(cls, data: Any) -> Any:
        if isinstance(data, int | float) or (isinstance(data, dict) and "dist" in data):
            return {"service_ms": data}
        return data


class ParallelSpec(_Model):
    steps: list[StepSpec] = Field(min_length=1)
    join: Literal["all"] | int | list[str] = Field(
        "all", description="all, k (the first k answers), or the names of the steps waited for")


class FanOutSpec(_Model):
    members: Dist = Field(description="members per group (a count distribution)")
    key: str = Field(description="the key space the members are drawn from")
    steps: list[StepSpec] = Field(min_length=1)


class _OnKey(_Model):
    """A model with an `on:` field, which YAML 1.1 (PyYAML) reads as the boolean key true."""

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k is True for k in data) and "on" not in data:
            return {("on" if k is True else k): v for k, v in data.items()}
        return data


class CacheSpec(_OnKey):
    on: str = Field(description="a redis component")
    miss: list[StepSpec] = Field(default_factory=list, description="steps run on a miss; with none, a "
                                 "miss fails the request as <redis>.miss")
    fill: bool = Field(True, description="after a miss, write the value back (nobody waits for it)")


class ProduceSpec(_OnKey):
    on: str = Field(description="a kafka component")
    then: str | None = Field(None, description="the flow the record's consumer runs")


class StepSpec(_Model):
    """Exactly one of call, parallel, fan_out, cache, produce; `name` labels it for a join."""

    name: str | None = None
    call: str | None = Field(None, description="component or component.operation")
    consistency: Consistency | None = None
    parallel: ParallelSpec | None = None
    fan_out: FanOutSpec | None = None
    cache: CacheSpec | None = None
    produce: ProduceSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of call, parallel, fan_out, cache, produce; got "
                             f"{', '.join(given) or 'none'}")
        if self.consistency is not None and self.call is None:
            raise ValueError("consistency belongs to a call step")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class ConsumerSpec(_OnKey):
    on: str = Field(description="the service whose instances consume (one per partition owned)")
    op: str | None = Field(None, description="the service operation run per record")
    max_in_flight: int = Field(64, ge=1, le=1_000_000, description="records each consumer works on at once")


class FlowSpec(_Model):
    rate_per_sec: float | None = Field(None, ge=0, description="full-scale requests per second; "
                                       "omit for a flow another flow's produce step starts")
    key: str = Field(description="a key space (drawn by popularity) or <space>.new (a fresh key)")
    consumer: ConsumerSpec | None = None
    steps: list[StepSpec] = Field(min_length=1)


ParallelSpec.model_rebuild()
FanOutSpec.model_rebuild()
CacheSpec.model_rebuild()


# -- components -------------------------------------------------------------------------------------
class GatewayComponent(Gateway):
    """An API gateway: `service_ms` per request; `rate_limit` is per key of the flow."""

    kind: Literal["gateway"]


class ServiceComponent(Fleet):
    """A stateless service with named operations, each with its own service time."""

    kind: Literal["service"]
    ops: dict[str, ServiceOp] = Field(min_length=1, description="operation: service time (a distribution)")


class CassandraComponent(Cassandra):
    kind: Literal["cassandra"]


class RedisComponent(Redis):
    kind: Literal["redis"]


class KafkaComponent(Kafka):
    kind: Literal["kafka"]


ComponentSpec = Annotated[
    GatewayComponent | ServiceComponent | CassandraComponent | RedisComponent | KafkaComponent,
    Field(discriminator="kind"),
]
