"""What the fast engine cannot express, found by inspecting the scenario, and refused in one line.

The fast engine computes each request's path feed-forward (with time slices where a fleet feeds
back into itself). Behaviour whose future depends on how a request's earlier attempts went
cannot be computed that way: retries feed failed work back into the network, circuit breakers
change routing on the recent error rate, hedged reads race a duplicate started after a delay
that depends on the outcome so far. Those are refused, naming the edge and the feature, with a
pointer to `--engine des`. A timeout needs no feedback: the caller stops waiting and counts a
failure while the stations go on with the work, so every edge's `timeout_ms` is simulated.

Faults map onto the stations' capacity windows (sim/arrays/station.py) with the DES's meaning
(sim/des/station.py): `slow` multiplies the service time of jobs that start in the window, a GC
pause is capacity 0 for its length (jobs in service finish, queued ones wait), and a `crash` is
a DOWN window (queued work fails at the crash, work in service when it would have ended, arrivals
are refused) of gateways, message services, group services, Cassandra nodes or Redis shards
(`shard_loss` is a Redis crash). Around a crash the callers act as the DES's: balancers pick live
instances, Cassandra coordinators ask the live replicas, store hints for the down ones and answer
"unavailable" when fewer than k are up, and a Redis shard restarts empty: a GET after the
restart misses until a cache fill of that conversation has landed.
Refused: fan-out on read (an inbox load is a join over the reader's conversations), a crash of
Kafka (leader election), a crash that loses data (the fast engine neither
replays hints nor tracks sole copies), a zone outage (it takes Kafka brokers down too), a crash
of a round-robin fleet (the DES's rotation skips the dead instance), and faults that change the
workload or leadership (broker_loss, load_spike).
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.faults import MAX_PAUSES_PER_NODE, pauses_per_node
from sim.scenario import Scenario

SUPPORTED_FAULTS = ("slow", "gc_pauses", "crash", "shard_loss")
CRASHABLE = ("gateway", "message_service", "group_service", "cassandra", "redis")


def check_supported(scenario: Scenario) -> None:
    """Raise ScenarioError naming the first feature the fast engine cannot simulate."""
    problems = unsupported(scenario)
    if problems:
        raise problems[0]


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the fast engine cannot simulate, each a one-line error."""
    out: list[ScenarioError] = []
    if scenario.is_design:
        return [ScenarioError(
            "flows", "the fast engine runs the messaging sections' flows (send, read, delivery) only, not a "
                     "design's own flows yet; run with --engine des")]
    gs = getattr(scenario, "group_service", None)
    if gs is not None and gs.enabled and gs.fan_out == "read":
        out.append(ScenarioError(
            "group_service.fan_out",
            "read (an inbox load reads every conversation of the reader) is not supported by the fast "
            "engine yet; run with --engine des",
        ))
    for edge, policy in getattr(scenario, "policies", {}).items():
        features = [
            name
            for name, value in (
                ("retry", policy.retry),
                ("breaker", policy.breaker),
                ("hedge_after_ms", policy.hedge_after_ms),
            )
            if value is not None
        ]
        if features:
            out.append(ScenarioError(
                f"policies.{edge}.{features[0]}",
                f"{_FEATURES[features[0]]} are not supported by the fast engine (it computes each request's "
                f"path without feedback from its outcome); run with --engine des",
            ))
    for i, fault in enumerate(getattr(scenario, "faults", [])):
        if pauses_per_node(fault) > MAX_PAUSES_PER_NODE:
            out.append(ScenarioError(
                f"faults[{i}].every_s",
                f"{pauses_per_node(fault):,} GC pauses per node; the fast engine makes each a capacity "
                f"window and takes at most {MAX_PAUSES_PER_NODE:,} per node: run with --engine des"))
        if fault.kind not in SUPPORTED_FAULTS:
            out.append(ScenarioError(
                f"faults[{i}].kind",
                f"{fault.kind} faults are not supported by the fast engine (supported: "
                f"{', '.join(SUPPORTED_FAULTS)}); run with --engine des",
            ))
        if fault.kind not in ("crash", "shard_loss"):
            continue
        if fault.component not in CRASHABLE:
            out.append(ScenarioError(
                f"faults[{i}].component",
                f"a crash of {fault.component} is not supported by the fast engine (supported: "
                f"{', '.join(CRASHABLE)}); run with --engine des",
            ))
        if fault.lose_data:
            out.append(ScenarioError(
                f"faults[{i}].lose_data",
                "lost data is not tracked by the fast engine (no hint replay, no sole copies); "
                "run with --engine des",
            ))
        section = getattr(scenario, fault.component)
        if getattr(section, "balancer", "random") == "round_robin":
            out.append(ScenarioError(
                f"faults[{i}].component",
                f"a crash of a round_robin {fault.component} is not supported by the fast engine "
                "(use balancer: random); run with --engine des",
            ))
    if getattr(scenario, "warmup_s", 0.0) == "auto":
        out.append(ScenarioError(
            "warmup_s", "auto is resolved by a pilot run before simulating; give seconds to simulate directly"
        ))
    return out


_FEATURES = {
    "retry": "retries",
    "breaker": "circuit breakers",
    "hedge_after_ms": "hedged reads",
}
