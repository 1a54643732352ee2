"""What the calendar engine (sim/calendar) cannot run yet, found by inspecting the scenario, and
refused in one line each (`--engine auto` then picks another engine and says why).

It interprets the system's flows (sim/system/model.py): calls to gateways, services, Cassandra,
Redis and Kafka, parallel joins, fan-outs, cache lookups with their miss branch and fill, and
Kafka-triggered flows, for a design and for the messaging preset (its member-based population,
fan-out on write, and fan-out on read: an inbox load looks up every conversation of the reader);
queue bounds, random and round-robin balancers, gateway rate limits, and the resilience policies
on caller->callee and client edges (timeouts, retries with backoff, jitter and a budget, circuit
breakers: sim/calendar/edges.py), hedged Cassandra reads, and every fault kind: crashes (balancers
skip dead instances, Cassandra coordinators ask the live replicas, store hints and replay them when
the node is back, a Redis shard restarts empty; with `lose_data` the writes only the lost disk had
are lost: sim/calendar/cassandra.py), Redis shard loss, zone outages, Kafka broker loss (partitions
it led have no leader for `election_s`), slow nodes, GC pauses (any number per node: capacity
windows merged by a sweep line, sim/arrays/windows.py; the memory bound, sim/budget.py, counts
them) and load spikes. It refuses only what it cannot represent (below); those run on the DES.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario import Scenario

MAX_HEDGED_RF = 62  # a hedged read's replicas asked are bits of one int64 (sim/calendar/kernel.py)


def _replication_factors(scenario: Scenario) -> dict[str, int]:
    """Each Cassandra component's replication factor, by the name policy edges call it."""
    if scenario.is_design:
        return {name: c.replication_factor for name, c in scenario.components.items()
                if c.kind == "cassandra"}
    return {"cassandra": scenario.cassandra.replication_factor} if scenario.cassandra.enabled else {}


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the calendar engine cannot simulate, each a one-line error."""
    out: list[ScenarioError] = []
    rf = _replication_factors(scenario)
    for edge, policy in scenario.policies.items():
        callee = edge.partition("->")[2]
        if policy.hedge_after_ms is not None and rf.get(callee, 0) > MAX_HEDGED_RF:
            out.append(ScenarioError(
                f"policies.{edge}.hedge_after_ms",
                f"hedged reads at replication_factor {rf[callee]}: the calendar engine keeps the replicas a "
                f"read asked as bits of one integer, for replication_factor up to {MAX_HEDGED_RF}; run with "
                "--engine des"))
    if scenario.warmup_s == "auto":
        out.append(ScenarioError(
            "warmup_s", "auto is resolved by a pilot run before simulating; give seconds to simulate "
                        "directly"))
    return out
