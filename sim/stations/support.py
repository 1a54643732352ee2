"""What the station-order engine (sim/stations) runs, and each thing it cannot run yet, refused in
one line (`--engine auto` never picks it yet: the calendar runs all of this and more).

Step 1 of issue 12's redesign runs feed-forward designs at full scale: client flows (Poisson
arrivals) whose steps are calls, one after another, to gateways and services picked at random,
with any service-time and hop distribution but gamma, and queue bounds. Everything else is
refused here, naming the field: the messaging preset, Cassandra, Redis and Kafka components,
parallel steps, fan-outs, cache lookups, Kafka-triggered flows, policies, faults, rate limits,
round-robin balancers, sample cells, a flow that calls a component after a component it reaches
later in another flow (the fleets must have one order: no cycle), and `warmup_s: auto`.
"""

from __future__ import annotations

from itertools import pairwise

from sim.distributions import Gamma
from sim.errors import ScenarioError
from sim.scenario import Scenario
from sim.system.compile import system_of
from sim.system.model import Call, System

KINDS = ("gateway", "service")  # the components it can call


def fleet_order(system: System) -> list[str] | None:
    """The called components in an order every flow calls them in (a topological order of the
    graph of consecutive calls, in declaration order among equals), or None when there is none."""
    comps = [name for name, c in system.components.items() if c.kind in KINDS]
    after: dict[str, set[str]] = {name: set() for name in comps}
    for flow in system.flows.values():
        calls = [s.component for s in flow.steps if isinstance(s, Call)]
        for a, b in pairwise(calls):
            after[b].add(a)
    order: list[str] = []
    while len(order) < len(comps):
        ready = [c for c in comps if c not in order and after[c] <= set(order)]
        if not ready:
            return None
        order.append(ready[0])
    return order


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the station-order engine cannot simulate, each a one-line error."""
    def no(field: str, what: str) -> ScenarioError:
        return ScenarioError(field, f"{what}: the stations engine (step 1) runs chains of calls to "
                                    "gateways and services only; run with --engine calendar or des")

    if not scenario.is_design:
        return [no("flows", "the messaging preset")]
    out: list[ScenarioError] = []
    if scenario.warmup_s == "auto":
        out.append(ScenarioError("warmup_s", "auto is resolved by a pilot run before simulating; give "
                                             "seconds to simulate directly"))
    if scenario.sample != 1:
        out.append(no("sample", f"a sample cell ({scenario.sample})"))
    if scenario.faults:
        out.append(no("faults", f"{scenario.faults[0].kind}"))
    if scenario.policies:
        out.append(no(f"policies.{next(iter(scenario.policies))}", "resilience policies"))
    if isinstance(scenario.network.hop_ms, Gamma):
        out.append(no("network.hop_ms", "a gamma distribution"))
    system = system_of(scenario)
    for name, comp in system.components.items():
        if comp.kind not in KINDS:
            out.append(no(f"components.{name}", f"a {comp.kind} component"))
            continue
        if getattr(comp.spec, "rate_limit", None) is not None:
            out.append(no(f"components.{name}.rate_limit", "a rate limit"))
        if comp.spec.balancer != "random":
            out.append(no(f"components.{name}.balancer", f"the {comp.spec.balancer} balancer"))
        for op, operation in comp.ops.items():
            if isinstance(operation.service_ms, Gamma):
                out.append(no(f"components.{name}.{op}", "a gamma distribution"))
            if operation.per_member_ms:
                out.append(no(f"components.{name}.{op}.per_member_ms", "a cost per member"))
    for name, flow in system.flows.items():
        if flow.triggered:
            out.append(no(f"flows.{name}", "a Kafka-triggered flow"))
        for i, step in enumerate(flow.steps):
            if not isinstance(step, Call):
                out.append(no(f"flows.{name}.steps[{i}]", f"a {type(step).__name__} step"))
    if not out and fleet_order(system) is None:
        out.append(no("flows", "flows that call the same components in different orders (a cycle)"))
    return out
