"""What a sampled cell cannot show: the busiest keys' load on the ONE instance each key lands on.

A key (a conversation, a user) is placed on one Redis shard, one Kafka partition (led by one
broker, drained by one consumer in the group service) and one set of Cassandra replicas, whatever
the fleet's size. A cell of fraction F < 1 smooths the busiest keys' rates into their bins, so an
instance the busiest key saturates at full scale looks idle in the cell. `hot_key_loads` sets each
busiest key's full-scale rate (sim.workload.hottest_keys) against the capacity of the instance it
lands on: capacity = workers x 1000 / mean service ms, at the key's mix of operations.

Everything here is arithmetic on the scenario and two HotKeys records (no simulation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.distributions import mean_of
from sim.scenario import Scenario, replies_needed
from sim.system.model import System
from sim.workload import HotKeys, Population, cell_size, keys_of

WARN_SHARE = 0.1  # one key taking a tenth of an instance is load the cell misplaces: a warning


FAITHFUL = 0.8  # a cell key at least this share of the full-scale rate is "about as busy"


@dataclass(frozen=True)
class InstanceLoad:
    """One busiest key's operations on the one instance it lands on."""

    component: str  # redis, kafka, group_service, cassandra
    instance: str  # "Redis shard", "Kafka partition leader", ...
    ops: tuple[tuple[float, float], ...]  # (operations/s, mean service ms) per kind of operation
    servers: int  # the instance's workers

    @property
    def ops_per_sec(self) -> float:
        return sum(rate for rate, _ in self.ops)

    @property
    def share(self) -> float:
        """The key's busy servers over the instance's servers (1.0 = the instance is saturated)."""
        return sum(rate * ms for rate, ms in self.ops) / 1e3 / self.servers

    @property
    def capacity_ops_per_sec(self) -> float:
        """Operations/s one instance completes at full utilization, at this key's mix."""
        return self.ops_per_sec / self.share if self.share > 0 else float("inf")


@dataclass(frozen=True)
class HotKeyLoad:
    """A busiest key at full scale, where it lands, and what the cell makes of it."""

    key: str  # conversation_reads, conversation_sends, user
    label: str  # "hottest conversation by reads"
    rate: str  # "208k reads/s"
    full_per_sec: float  # the key's requests/s at full scale
    cell_per_sec: float | None  # the cell's busiest key of this kind, requests/s in the cell
    instances: tuple[InstanceLoad, ...]
    full_scale_refused: str | None = None  # why --sample 1 cannot run this design, if it cannot

    @property
    def share(self) -> float:
        return max((i.share for i in self.instances), default=0.0)

    @property
    def level(self) -> str:
        """bad: the key alone saturates its instance; warn: it takes WARN_SHARE of it or more."""
        return "bad" if self.share >= 1 else "warn" if self.share >= WARN_SHARE else "info"

    def text(self) -> str:
        parts = [f"{i.instance} = {percent(i.share)} of its capacity ({rate(i.capacity_ops_per_sec)} ops/s)"
                 for i in self.instances]
        head = f"{self.label}: {self.rate} on one " + "; one ".join(parts)
        only = ("so only --sample 1 shows it" if self.full_scale_refused is None else
                f"and only full scale would show it, which cannot run ({self.full_scale_refused})")
        if self.cell_per_sec is None:
            return head + f"; the cell smooths it into its bin, {only}"
        cell = f"cell's busiest: {rate(self.cell_per_sec)}/s"
        if self.cell_per_sec >= FAITHFUL * self.full_per_sec:
            return head + f"; the cell has a key about as busy ({cell})"
        return head + f"; the cell smooths it into its bin ({cell}), {only}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": "hot_key", "key": self.key, "text": self.text(),
            "level": self.level, "full_per_sec": self.full_per_sec,
            "cell_per_sec": self.cell_per_sec, "max_share": self.share,
            "instances": [{"component": i.component, "instance": i.instance, "ops_per_sec": i.ops_per_sec,
                           "capacity_ops_per_sec": i.capacity_ops_per_sec, "share": i.share}
                          for i in self.instances],
        }


def hot_key_loads(scenario: Scenario, full: HotKeys, cell: HotKeys | None = None,
                  hit_ratio: float = 0.0) -> list[HotKeyLoad]:
    """The busiest keys' load on their one instance, per instance the key reaches (pure).

    `full`: the busiest keys at full scale; `cell`: the cell's busiest (requests/s in the cell),
    shown beside them; `hit_ratio`: the Redis hit ratio, for the reads that reach Cassandra.
    Conversation keys: the Redis shard (one command per send and per read), the Kafka partition
    (its leader appends every send) and that partition's consumer (one delivery per send, service
    plus per-recipient time); a conversation-keyed Cassandra partition when message_service's
    partition_key is conversation. User keys: the user's Cassandra replicas (every replica writes
    each send; a read that misses the cache asks k of RF replicas).
    """
    sc = scenario
    out: list[HotKeyLoad] = []
    c = sc.cassandra
    rf = c.replication_factor
    read_k = replies_needed(c.read_consistency, rf)
    miss = 1.0 - hit_ratio if sc.redis.enabled else 1.0
    gs = sc.group_service
    send_by_user = sc.message_service.partition_key == "user"
    read_by_user = (gs.enabled and gs.fan_out == "write") or send_by_user

    def cassandra(writes: float, reads: float) -> InstanceLoad:
        return InstanceLoad("cassandra", "Cassandra replica", (
            (writes, mean_of(c.write_service_ms)), (reads * miss * read_k / rf, mean_of(c.read_service_ms))),
            c.workers)

    reads = full.conversation_reads_per_sec
    where: list[InstanceLoad] = []
    if sc.redis.enabled:
        where.append(InstanceLoad("redis", "Redis shard", ((reads, mean_of(sc.redis.service_ms)),),
                                  sc.redis.workers))
    if c.enabled and not read_by_user:
        where.append(cassandra(0.0, reads))
    if where and reads > 0:
        out.append(HotKeyLoad("conversation_reads", "hottest conversation by reads", f"{rate(reads)} reads/s",
                              reads, None if cell is None else cell.conversation_reads_per_sec, tuple(where)))

    sends = full.conversation_sends_per_sec
    where = []
    if sc.redis.enabled:
        where.append(InstanceLoad("redis", "Redis shard", ((sends, mean_of(sc.redis.service_ms)),),
                                  sc.redis.workers))
    if sc.kafka.enabled:
        where.append(InstanceLoad("kafka", "Kafka partition leader", ((sends, mean_of(sc.kafka.append_ms)),),
                                  sc.kafka.workers))
        if gs.enabled:
            delivery_ms = mean_of(gs.service_ms) + full.conversation_recipients * gs.per_recipient_ms
            where.append(InstanceLoad("group_service", "consumer of its partition (group_service)",
                                      ((sends, delivery_ms),), min(gs.workers, gs.max_in_flight)))
    if c.enabled and not send_by_user:
        where.append(cassandra(sends, 0.0))
    if where and sends > 0:
        out.append(HotKeyLoad(
            "conversation_sends", "hottest conversation by sends",
            f"{rate(sends)} sends/s ({full.conversation_recipients:,} "
            f"recipient{'' if full.conversation_recipients == 1 else 's'} each)", sends,
            None if cell is None else cell.conversation_sends_per_sec, tuple(where)))

    user_writes = full.user_sends_per_sec if send_by_user else 0.0
    user_reads = full.user_reads_per_sec if read_by_user else 0.0
    if c.enabled and user_writes + user_reads > 0:
        cell_user = None if cell is None else ((cell.user_sends_per_sec if send_by_user else 0.0)
                                               + (cell.user_reads_per_sec if read_by_user else 0.0))
        out.append(HotKeyLoad(
            "user", "most active user (Cassandra partition key)",
            f"{rate(full.user_sends_per_sec)} sends/s + {rate(full.user_reads_per_sec)} reads/s",
            user_writes + user_reads, cell_user, (cassandra(user_writes, user_reads),)))
    return out


def percent(share: float) -> str:
    """0.0012 -> '0.12%', 4.58 -> '458%'."""
    return f"{share:.0%}" if share >= 0.01 else f"{share * 100:.2g}%"


def rate(x: float) -> str:
    """Compact: 208_000 -> '208k', 20_833 -> '20.8k', 0.94 -> '0.94'."""
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    for suffix, size in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def cell_hottest_keys(scenario: Scenario) -> HotKeys:
    """The cell's busiest keys, requests/s in the cell: what the cell simulates for the keys that
    `sim.workload.hottest_keys` gives at full scale (the same rule on the cell's population)."""
    w, f = scenario.workload, scenario.sample
    gs = scenario.group_service
    pop = Population.build(w, cell_size(w.users, f), cell_size(w.conversations, f), f,
                           np.random.default_rng(0), inbox_reads=bool(gs.enabled and gs.fan_out == "read"))
    return keys_of(pop, w, f)


def fan_out_burst(scenario: Scenario, cassandra_cell_nodes: int) -> dict[str, object] | None:
    """A warning when one message to the largest group queues its inbox writes on the cell's few
    Cassandra nodes: at full scale the same writes spread over every node (pure).

    The cell keeps group sizes but not the ring's width, so a big group's fan-out (recipients x RF
    replica writes at once) lands on `cassandra_cell_nodes` nodes instead of all of them; the time
    one node needs to drain its share is queueing the design would not see.
    """
    sc = scenario
    gs, c = sc.group_service, sc.cassandra
    if not (gs.enabled and gs.fan_out == "write" and c.enabled) or cassandra_cell_nodes >= c.nodes:
        return None
    largest = max([int(sc.workload.group_size.max or 0), *(h.members for h in sc.workload.hot_conversations)])
    recipients = largest - 1
    if recipients < 1:
        return None
    writes = recipients * c.replication_factor
    per_cell_node = writes / cassandra_cell_nodes
    per_node = max(1.0, writes / c.nodes)
    drain_ms = per_cell_node * mean_of(c.write_service_ms) / c.workers
    if drain_ms < BURST_MS:
        return None
    return {
        "kind": "fan_out_burst", "level": "warn", "drain_ms": drain_ms,
        "text": (f"a message to the largest group ({recipients:,} recipients) puts {rate(per_cell_node)} "
                 f"inbox writes on each of the cell's {cassandra_cell_nodes} Cassandra nodes at once "
                 f"({rate(per_node)} per node over {c.nodes:,} at full scale): about {drain_ms:.0f} ms of "
                 f"queueing the design would not see, so the cell's send and delivery tails after big "
                 f"groups are not the design's; --sample 1 spreads them"),
    }


BURST_MS = 10.0  # a burst that takes a node this long to drain shows in the cell's tail latencies


# -- designs -----------------------------------------------------------------------------------------
def design_hot_key_loads(system: System, sample: float) -> list[HotKeyLoad]:
    """The most popular key of each key space at full scale, on the one instance of each component
    it lands on: a redis shard, a cassandra replica (every replica writes each write; a read asks k
    of RF), a kafka partition's leader (one append per record) and the consumer of that partition
    (one operation per record). Its rate is rank 0's share (sim.system.keys.rank_bins) x the rate
    of every step routed by a key of the space (sim.system.loads.hot_key_visits); caches on the
    space use that key's own Che hit probability (pure).

    The cell's busiest key of the space carries the first cell bin's share of the cell's rate
    (`cell_top_key_share`), so the cell's figure is the full one x F x (bin share / rank 0's share).
    """
    from sim.system.keys import MAX_CELL_KEYS
    from sim.system.loads import cell_top_key_share, hot_key_visits, top_key_share

    refused = next((f"{ks.count:,} {name} keys, over the {MAX_CELL_KEYS:,} a run may hold"
                    for name, ks in system.keys.items() if ks.count > MAX_CELL_KEYS), None)
    consumers = {(f.consumer.component, f.consumer.op): (f.source or "", f.consumer.max_in_flight)
                 for f in system.flows.values() if f.consumer is not None}
    out: list[HotKeyLoad] = []
    for space, ks in system.keys.items():
        visits = hot_key_visits(system, space)
        by_component: dict[str, list[tuple[float, float]]] = {}
        where: list[InstanceLoad] = []
        for v in visits:
            comp = system.components[v.component]
            if comp.kind == "cassandra":
                per_instance = v.per_sec / comp.spec.replication_factor  # one replica of the set
            elif comp.kind == "kafka" or (comp.kind == "service" and (v.component, v.op) in consumers):
                per_instance = v.requests_per_sec  # the partition's leader; the partition's consumer
            elif comp.kind == "redis":
                per_instance = v.per_sec
            else:
                continue  # gateways and services are balanced, not keyed
            if per_instance <= 0:
                continue  # e.g. a database behind a cache the key always hits
            by_component.setdefault(v.component, []).append((per_instance, v.service_ms))
        for name, ops in by_component.items():
            comp = system.components[name]
            servers = int(comp.spec.workers)
            if comp.kind == "service":
                source, in_flight = next(c for (svc, _), c in consumers.items() if svc == name)
                label = f"consumer of its {source} partition ({name})"
                servers = min(servers, in_flight)
            else:
                label = {"redis": f"{name} shard (redis)", "cassandra": f"{name} replica (cassandra)",
                         "kafka": f"{name} partition leader (kafka)"}[comp.kind]
            where.append(InstanceLoad(name, label, tuple(ops), servers))
        per_flow: dict[str, float] = {}
        for v in visits:
            if not system.flows[v.flow].triggered:
                per_flow[v.flow] = max(per_flow.get(v.flow, 0.0), v.requests_per_sec)
        full = sum(per_flow.values())
        if not where or full <= 0:
            continue
        top = top_key_share(ks.count, ks.zipf_s)
        cell = full * sample * cell_top_key_share(ks.count, ks.zipf_s, sample) / top
        text = " + ".join(f"{rate(r)} {flow}/s" for flow, r in per_flow.items() if r > 0)
        out.append(HotKeyLoad(space, f"hottest {space} key (rank 1 of {ks.count:,})", text, full, cell,
                              tuple(where), refused))
    return out
