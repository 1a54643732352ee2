"""Payload bytes per second into and out of each fleet: the demand on sizing's network dimension.

Sizing sets each direction against the instance type's sustained (baseline) bandwidth, which AWS
specifies per direction (`network_gbps_sustained`; the burst "up to" figure lasts minutes); the
busier direction binds. A send carries its message on every hop towards the stores; a read's page of
the recent list (messages_per_read x mean message bytes) flows back towards the client on every hop;
each cache hit returns a page, each miss costs the whole recent list twice (Cassandra's answer, then
the Redis fill). Cassandra coordinators are replicas and forward each write to RF - 1 others; Kafka
leaders send each record to RF - 1 followers and to the consumer; a Redis primary sends its writes
and fills to each replica. Not counted: request bodies of reads, headers, acks, digests, repair,
cross-region copies.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import TYPE_CHECKING

from sim.components.dimensions import Traffic

if TYPE_CHECKING:
    from sim.analytic import Flows
    from sim.scenario import Scenario


def network_bytes_per_sec(sc: Scenario, flows: Flows) -> dict[str, Traffic]:
    """Fleet-wide payload bytes/s into and out of each component (the module docstring's model)."""
    w = sc.workload
    msg = flows.mean_message_bytes
    page = w.messages_per_read * msg  # one read's answer, and one cache hit's
    whole_list = w.recent_messages * msg  # a miss reads, and refills, the whole recent list
    sends, reads = w.sends_per_sec, w.reads_per_sec
    lookups = reads * flows.lookups_per_read
    hits, misses = lookups * flows.hit_ratio, lookups * (1 - flows.hit_ratio)
    into: dict[str, float] = defaultdict(float)
    out: dict[str, float] = defaultdict(float)

    def send(a: str, b: str, bytes_per_sec: float) -> None:
        out[a] += bytes_per_sec
        into[b] += bytes_per_sec

    chain = ["clients", *[c for c in ("gateway", "message_service") if getattr(sc, c).enabled]]
    for a, b in itertools.pairwise(chain):
        send(a, b, sends * msg)
        send(b, a, reads * page)
    caller = chain[-1]
    if sc.cassandra.enabled:
        rf = sc.cassandra.replication_factor
        send(caller, "cassandra", sends * msg)
        send("cassandra", caller, misses * whole_list)
        send("cassandra", "cassandra", (rf - 1) * sends * msg)
    if sc.redis.enabled:
        fills = misses * whole_list if sc.cassandra.enabled else 0.0
        send(caller, "redis", sends * msg + fills)
        send("redis", caller, hits * page)
        send("redis", "redis_replicas", sc.redis.replicas * (sends * msg + fills))
    if sc.kafka.enabled:
        send(caller, "kafka", sends * msg)
        send("kafka", "kafka", (sc.kafka.replication_factor - 1) * sends * msg)
        gs = sc.group_service
        if gs.enabled:
            send("kafka", "group_service", sends * msg)
            if gs.fan_out == "write" and sc.cassandra.enabled:
                inbox = sends * flows.mean_recipients * gs.inbox_entry_bytes
                send("group_service", "cassandra", inbox)
                send("cassandra", "cassandra", (sc.cassandra.replication_factor - 1) * inbox)
    names = (set(into) | set(out)) - {"clients", "redis_replicas"}
    return {n: Traffic(into.get(n, 0.0), out.get(n, 0.0)) for n in sorted(names)}
