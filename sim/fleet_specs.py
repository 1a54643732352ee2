"""The sections that configure a fleet (gateway, services, Cassandra, Redis, Kafka): the pydantic
schema shared by the messaging scenario's sections and a design's `components:` (sim/design.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sim.distributions import DistSpec, as_spec

Dist = Annotated[DistSpec, BeforeValidator(as_spec)]
Consistency = Literal["ONE", "TWO", "THREE", "QUORUM", "ALL"]



# Upper bounds on counts, absurd on their face (the largest fleets known run ~10^4-10^5 nodes);
# what fits this machine's memory and time is sim/budget.py's estimate.
MAX_INSTANCES = 1_000_000
MAX_WORKERS = 100_000


def _dist(**kwargs: Any) -> Any:
    """A distribution default, validated like user input (models set validate_default)."""
    return Field(default_factory=lambda: dict(kwargs))


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)



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



def replies_needed(level: str, rf: int) -> int:
    """Replica replies a coordinator waits for at consistency `level` with `rf` replicas."""
    return {"ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": rf // 2 + 1, "ALL": rf}[level]
