"""What the fast engine cannot express, found by inspecting the scenario, and refused in one line.

The fast engine computes each request's path feed-forward (with time slices where a fleet feeds
back into itself). Behaviour whose future depends on how a request's earlier attempts went
cannot be computed that way: retries feed failed work back into the network, circuit breakers
change routing on the recent error rate, hedged reads race a duplicate started after a delay
that depends on the outcome so far, timeouts cut a request that its stations still serve. Those
(`policies:`) are refused, naming the edge and the feature, with a pointer to `--engine des`.

Faults: `slow` and `gc_pauses` map onto the stations' capacity windows (sim/fast/station.py)
with the DES's meaning (sim/des/station.py): `slow` multiplies the service time of jobs that
start in the window, a GC pause is capacity 0 for its length (jobs in service finish, queued ones
wait). The others change what happens to work already queued or in service (a crash fails
it, a broker loss moves leadership, a shard loss empties the cache, a load spike changes the
arrival rate) and are refused until the fast engine models them.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario import Scenario

SUPPORTED_FAULTS = ("slow", "gc_pauses")


def check_supported(scenario: Scenario) -> None:
    """Raise ScenarioError naming the first feature the fast engine cannot simulate."""
    for edge, policy in getattr(scenario, "policies", {}).items():
        features = [
            name
            for name, value in (
                ("timeout_ms", policy.timeout_ms),
                ("retry", policy.retry),
                ("breaker", policy.breaker),
                ("hedge_after_ms", policy.hedge_after_ms),
            )
            if value is not None
        ]
        if features:
            raise ScenarioError(
                f"policies.{edge}.{features[0]}",
                f"{_FEATURES[features[0]]} are not supported by the fast engine (it computes each request's "
                f"path without feedback from its outcome); run with --engine des",
            )
    for i, fault in enumerate(getattr(scenario, "faults", [])):
        if fault.kind not in SUPPORTED_FAULTS:
            raise ScenarioError(
                f"faults[{i}].kind",
                f"{fault.kind} faults are not supported by the fast engine (supported: "
                f"{', '.join(SUPPORTED_FAULTS)}); run with --engine des",
            )
    if getattr(scenario, "warmup_s", 0.0) == "auto":
        raise ScenarioError(
            "warmup_s", "auto is resolved by a pilot run before simulating; give seconds to simulate directly"
        )


_FEATURES = {
    "timeout_ms": "timeouts",
    "retry": "retries",
    "breaker": "circuit breakers",
    "hedge_after_ms": "hedged reads",
}
