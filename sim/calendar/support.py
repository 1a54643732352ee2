"""What the calendar engine (sim/calendar) cannot run yet, found by inspecting the scenario, and
refused in one line each (`--engine auto` then picks another engine and says why).

It interprets the system's flows (sim/system/model.py): calls to gateways, services, Cassandra,
Redis and Kafka, parallel joins, fan-outs, cache lookups with their miss branch and fill, and
Kafka-triggered flows, for a design and for the messaging preset (its member-based population,
fan-out on write, and fan-out on read: an inbox load looks up every conversation of the reader);
queue bounds, random and round-robin balancers, gateway rate limits, and the resilience policies
on caller->callee and client edges (timeouts, retries with backoff, jitter and a budget, circuit
breakers: sim/calendar/edges.py), and every fault kind: crashes (balancers skip dead instances,
Cassandra coordinators ask the live replicas, store hints and replay them when the node is back, a
Redis shard restarts empty), Redis shard loss, zone outages, Kafka broker loss (partitions it led
have no leader for `election_s`), slow nodes, GC pauses and load spikes. Not yet: hedged reads and
`lose_data` (lost writes): those run on the DES.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.faults import MAX_PAUSES_PER_NODE, pauses_per_node
from sim.scenario import Scenario


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the calendar engine cannot simulate, each a one-line error."""
    out: list[ScenarioError] = []
    for edge, policy in scenario.policies.items():
        if policy.hedge_after_ms is not None:
            out.append(ScenarioError(
                f"policies.{edge}.hedge_after_ms",
                "hedged reads are not in the calendar engine yet; run with --engine des"))
    for i, fault in enumerate(scenario.faults):
        if pauses_per_node(fault) > MAX_PAUSES_PER_NODE:
            out.append(ScenarioError(
                f"faults[{i}].every_s",
                f"{pauses_per_node(fault):,} GC pauses per node; the calendar engine makes each a capacity "
                f"window and takes at most {MAX_PAUSES_PER_NODE:,} per node: run with --engine des"))
        if fault.lose_data:
            out.append(ScenarioError(
                f"faults[{i}].lose_data",
                "lost writes (sole copies on a node whose disk is lost) are not tracked by the calendar "
                "engine yet; run with --engine des"))
    if scenario.warmup_s == "auto":
        out.append(ScenarioError(
            "warmup_s", "auto is resolved by a pilot run before simulating; give seconds to simulate "
                        "directly"))
    return out
