"""What the calendar engine (sim/calendar) cannot run yet, found by inspecting the scenario, and
refused in one line each (`--engine auto` then picks another engine and says why).

It interprets the system's flows (sim/system/model.py): calls to gateways, services, Cassandra,
Redis and Kafka, parallel joins, fan-outs, cache lookups with their miss branch and fill, and
Kafka-triggered flows, for a design and for the messaging preset (its member-based population,
fan-out on write); queue bounds, random and round-robin balancers, gateway rate limits, and the
`slow` and `gc_pauses` faults. Not yet: fan-out on read (an inbox load), resilience policies
(timeouts, retries, breakers, hedging), crashes, zone outages, broker loss and load spikes: those
run on the DES.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.scenario import Scenario

SUPPORTED_FAULTS = ("slow", "gc_pauses")


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the calendar engine cannot simulate, each a one-line error."""
    out: list[ScenarioError] = []
    gs = getattr(scenario, "group_service", None)
    if not scenario.is_design and gs is not None and gs.enabled and gs.fan_out == "read":
        out.append(ScenarioError(
            "group_service.fan_out", "read (an inbox load reads every conversation of the reader) is not in "
                                     "the calendar engine yet; run with --engine des"))
    for edge, policy in scenario.policies.items():
        features = (("timeout_ms", policy.timeout_ms), ("retry", policy.retry), ("breaker", policy.breaker),
                    ("hedge_after_ms", policy.hedge_after_ms))
        used = [name for name, value in features if value is not None]
        if used:
            out.append(ScenarioError(
                f"policies.{edge}.{used[0]}",
                "resilience policies are not in the calendar engine yet; run with --engine des"))
    for i, fault in enumerate(scenario.faults):
        if fault.kind not in SUPPORTED_FAULTS:
            out.append(ScenarioError(
                f"faults[{i}].kind",
                f"{fault.kind} faults are not in the calendar engine yet (it runs: "
                f"{', '.join(SUPPORTED_FAULTS)}); run with --engine des"))
    if scenario.warmup_s == "auto":
        out.append(ScenarioError(
            "warmup_s", "auto is resolved by a pilot run before simulating; give seconds to simulate "
                        "directly"))
    return out
