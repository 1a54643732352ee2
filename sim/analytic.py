"""What queueing theory predicts for a scenario, without simulating.

`offered_loads(scenario)` follows the same request flows as the engine (README, "The model") to
the mean operation rate and mean service time at every component, fleet-wide. The traffic mix
(recipients per message, conversation lookups per read) is `scenario_mix`: the workload model's own
`sim.workload.workload_mix`, the mix runs realise, so sizing, cost and runs share one model of the
workload. Under fan-out on read a read looks up every conversation of the reader's inbox, so Redis
lookups and Cassandra reads per read are multiplied by `lookups_per_read`. `erlang_c` and
`station_estimates` turn those into per-instance utilization and queue wait for an M/M/c queue
(Poisson arrivals, exponential service): the estimate a run's report sets beside the simulated
figure. Where service times are far from exponential, or a station feeds the next with non-Poisson
traffic, the two part, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.cache import list_bytes, lru_cache_model
from sim.distributions import mean_of
from sim.scenario import Scenario, replies_needed
from sim.workload import reference_population, workload_mix


@dataclass(frozen=True)
class Load:
    """Fleet-wide demand on one component."""

    component: str
    instances: int
    servers: int  # per instance
    ops_per_sec: float
    service_ms: float  # mean, weighted over the operation mix

    @property
    def busy_servers(self) -> float:
        return self.ops_per_sec * self.service_ms / 1e3


@dataclass(frozen=True)
class Flows:
    hit_ratio: float
    mean_recipients: float  # per message: 1 for a 1:1 conversation, group size - 1 for a group
    mean_message_bytes: float
    loads: dict[str, Load]
    lookups_per_read: float = 1.0  # conversations a read looks up (its inbox under fan-out on read)


def fan_out_mode(scenario: Scenario) -> str:
    """"read" when a read assembles the reader's inbox (group_service.fan_out: read), else "write"."""
    gs = scenario.group_service
    return "read" if gs.enabled and gs.fan_out == "read" else "write"


def scenario_mix(scenario: Scenario) -> dict[str, float]:
    """`sim.workload.workload_mix` for the scenario's workload and fan-out mode: group_message_share,
    mean_recipients and lookups_per_read (the workload module caches the population behind it)."""
    return workload_mix(scenario.workload, fan_out_mode(scenario))


def expected_hit_ratio(scenario: Scenario) -> float:
    """Redis hit ratio for lookups: fixed by the scenario, or Che's LRU model over the lookup
    popularity of the workload's reference cell, with that cell's share of the fleet's memory."""
    if not scenario.redis.enabled:
        return 0.0
    if scenario.redis.hit_ratio is not None:
        return scenario.redis.hit_ratio
    w = scenario.workload
    pop, f = reference_population(w, fan_out_mode(scenario))
    weights = pop.read_weights
    item = list_bytes(w.recent_messages, mean_of(w.message_bytes))
    r = scenario.redis
    memory = r.shards * r.memory_gb_per_shard * r.usable_memory_fraction * 2**30
    return lru_cache_model(weights, memory * f, item).hit_ratio


def offered_loads(scenario: Scenario, recipients: float | None = None,
                  hit_ratio: float | None = None, lookups_per_read: float | None = None) -> Flows:
    """Fleet-wide load per component. `recipients` and `lookups_per_read` default to the workload
    model's mix (`scenario_mix`), `hit_ratio` to the cache model; pass a run's realised figures to
    compare with that run."""
    sc = scenario
    w = sc.workload
    sends, reads = w.sends_per_sec, w.reads_per_sec
    hit = expected_hit_ratio(sc) if hit_ratio is None else hit_ratio
    if recipients is None or lookups_per_read is None:
        mix = scenario_mix(sc)
        recipients = mix["mean_recipients"] if recipients is None else recipients
        lookups_per_read = mix["lookups_per_read"] if lookups_per_read is None else lookups_per_read
    lookups = reads * lookups_per_read  # cache lookups: one per conversation a read looks up
    loads: dict[str, Load] = {}

    def add(name: str, instances: int, servers: int, parts: list[tuple[float, float]]) -> None:
        rate = sum(r for r, _ in parts)
        service = sum(r * ms for r, ms in parts) / rate if rate > 0 else 0.0
        loads[name] = Load(name, instances, servers, rate, service)

    if sc.gateway.enabled:
        add("gateway", sc.gateway.instances, sc.gateway.workers,
            [(sends + reads, mean_of(sc.gateway.service_ms))])
    ms = sc.message_service
    if ms.enabled:
        add("message_service", ms.instances, ms.workers,
            [(sends, mean_of(ms.send_service_ms)), (reads, mean_of(ms.read_service_ms))])
    misses = lookups * (1 - hit)
    if sc.redis.enabled:
        add("redis", sc.redis.shards, sc.redis.workers,
            [(sends + lookups + (misses if sc.cassandra.enabled else 0.0), mean_of(sc.redis.service_ms))])
    gs = sc.group_service
    if sc.cassandra.enabled:
        c = sc.cassandra
        writes = sends * c.replication_factor
        if gs.enabled and gs.fan_out == "write":
            writes += sends * recipients * c.replication_factor
        replica_reads = misses * replies_needed(c.read_consistency, c.replication_factor)
        add("cassandra", c.nodes, c.workers,
            [(writes, mean_of(c.write_service_ms)), (replica_reads, mean_of(c.read_service_ms))])
    if sc.kafka.enabled:
        k = sc.kafka
        add("kafka", k.brokers, k.workers, [(sends * k.replication_factor, mean_of(k.append_ms))])
    if gs.enabled and sc.kafka.enabled:
        add("group_service", gs.instances, gs.workers,
            [(sends, mean_of(gs.service_ms) + recipients * gs.per_recipient_ms)])
    return Flows(hit_ratio=hit, mean_recipients=recipients, mean_message_bytes=mean_of(w.message_bytes),
                 loads=loads, lookups_per_read=lookups_per_read)


@dataclass(frozen=True)
class ErlangC:
    servers: int
    arrivals_per_sec: float
    service_ms: float
    utilization: float
    stable: bool
    p_wait: float  # probability an arrival waits (Erlang C)
    wait_ms_mean: float
    wait_ms_p99: float
    response_ms_mean: float


def erlang_c(servers: int, arrivals_per_sec: float, service_ms: float) -> ErlangC:
    """M/M/c: P(wait) by Erlang C, mean wait C/(c mu - lambda), P(Wq > t) = C exp(-(c mu - lambda) t)."""
    c = servers
    if arrivals_per_sec <= 0 or service_ms <= 0:
        return ErlangC(c, arrivals_per_sec, service_ms, 0.0, True, 0.0, 0.0, 0.0, service_ms)
    mu = 1e3 / service_ms
    a = arrivals_per_sec / mu
    rho = a / c
    if rho >= 1:
        return ErlangC(c, arrivals_per_sec, service_ms, rho, False, 1.0, math.inf, math.inf, math.inf)
    # Erlang B by the stable recursion, then C = B / (1 - rho (1 - B))
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    p_wait = b / (1 - rho * (1 - b))
    gap = c * mu - arrivals_per_sec  # per second
    wait_mean_ms = p_wait / gap * 1e3
    wait_p99_ms = math.log(p_wait / 0.01) / gap * 1e3 if p_wait > 0.01 else 0.0
    return ErlangC(c, arrivals_per_sec, service_ms, rho, True, p_wait, wait_mean_ms, wait_p99_ms,
                   wait_mean_ms + service_ms)


def station_estimates(flows: Flows) -> dict[str, ErlangC]:
    """Per-instance M/M/c estimate for every component, load spread evenly over instances."""
    return {
        name: erlang_c(load.servers, load.ops_per_sec / load.instances, load.service_ms)
        for name, load in flows.loads.items()
    }
