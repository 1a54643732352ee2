"""What the station-order engine (sim/stations) runs, and each thing it cannot run yet, refused in
one line (`--engine auto` picks it for every scenario it runs, and otherwise the calendar).

It runs designs at full scale whose components form one order every flow follows (no cycle):
client flows (Poisson arrivals, keys by their space's Zipf popularity or fresh) whose steps are
calls to gateways (a token bucket per key too) and services (random or round-robin balancer; a cost
per member of the fan-out after), fan-outs over a group's members (at most MAX_MEMBERS), calls to
Redis (by the key's hash slot) and to Cassandra (the token ring; a write asks every replica, a read
k of them from a random offset, answered at the consistency level's k-th reply), parallel steps
joined at all, k of n or a named subset, and cache lookups with a miss branch and a fill (the one
loop: run in slices, see sim/stations/engine.py); any service-time and hop distribution but gamma,
and queue bounds. Everything else is refused here, naming the field: Kafka, fan-outs over a
relation (the messaging preset's), triggered flows, steps keyed by another space, policies but a
client's timeout, faults but slow nodes, GC pauses, load spikes and crashes of gateways, services
and Redis shards (`_fault_problems`), the messaging preset, sample cells, and `warmup_s: auto`.
"""

from __future__ import annotations

from sim.distributions import Gamma
from sim.errors import ScenarioError
from sim.scenario import Scenario
from sim.stations.program import KINDS, LOOP_SLICE_S, MAX_MEMBERS, component_order, members_bound
from sim.system.compile import system_of
from sim.system.model import CacheLookup, Call, FanOut, Parallel, Produce, Step, System, walk

MAX_NODES = 4096  # steps that reach a component, over all flows (a draw's index holds a node number)


def fleet_order(system: System) -> list[str] | None:
    """The called components in an order every flow calls them in, or None (a cycle)."""
    return component_order(system, [name for name, c in system.components.items() if c.kind in KINDS])


def _step_problems(steps: tuple[Step, ...], path: str, space: str) -> list[ScenarioError]:
    """What a flow's steps use that the engine does not run, by the steps' field paths."""
    out = []
    for i, step in enumerate(steps):
        where = f"{path}[{i}]"
        if isinstance(step, Produce):
            out.append(_no(where, "a Produce step"))
        elif isinstance(step, FanOut):
            if step.relation != "group" or step.members is None or step.space is None:
                out.append(_no(where, f"a fan-out over {step.relation}"))
                continue
            bound = members_bound(step.members)
            if bound is None or bound > MAX_MEMBERS:
                got = "no max" if bound is None else f"a max of {bound}"
                out.append(ScenarioError(f"{where}.members", f"{got}; the stations engine runs fan-outs of "
                                         f"at most {MAX_MEMBERS} members (a max of at most that): run with "
                                         "--engine calendar or des"))
            out += _step_problems(step.steps, f"{where}.steps", step.space)
        elif isinstance(step, Parallel):
            out += _step_problems(step.steps, f"{where}.steps", space)
        elif isinstance(step, CacheLookup):
            out += _step_problems(step.miss, f"{where}.miss", space)
        if isinstance(step, Call | CacheLookup) and step.key is not None and step.key != space:
            out.append(_no(f"{where}.key", f"a step keyed by another space ({step.key})"))
    return out


def approximated(scenario: Scenario) -> list[ScenarioError]:
    """What the station-order engine runs only approximately, each in one line naming the field (auto
    passes it over for an exact engine): a cache fill, the loop back to the cache it runs in slices
    (sim/stations/engine.py)."""
    if not scenario.is_design:
        return []
    return [ScenarioError(where, f"a cache fill, in slices of {LOOP_SLICE_S * 1e3:g} ms (a fill due "
                                 "within its lookup's slice is served in the next); the calendar and des "
                                 "engines run it exactly")
            for name, flow in system_of(scenario).flows.items()
            for where in _fills(flow.steps, f"flows.{name}.steps")]


def _fills(steps: tuple[Step, ...], path: str) -> list[str]:
    """The field paths of the cache fills among steps (a fill follows a miss branch: none without)."""
    out = []
    for i, step in enumerate(steps):
        where = f"{path}[{i}]"
        if isinstance(step, CacheLookup):
            out += [f"{where}.fill"] if step.fill and step.miss else []
            out += _fills(step.miss, f"{where}.miss")
        elif isinstance(step, Parallel | FanOut):
            out += _fills(step.steps, f"{where}.steps")
    return out


def _fault_problems(scenario: Scenario) -> list[ScenarioError]:
    """The faults it does not run: it runs slow nodes, GC pauses and load spikes anywhere, crashes of
    gateways and services picked at random (a call goes to an instance up when it is made, as the
    DES's health-checked balancer) and of Redis shards (shard loss: calls to a shard fail while it
    is down, and it comes back empty); not crashes of Cassandra (hints, unavailable quorums) or of a
    round-robin fleet, zone outages or broker loss."""
    out = []
    components = scenario.components if scenario.is_design else {}
    for i, fault in enumerate(scenario.faults):
        if fault.kind in ("slow", "gc_pauses", "load_spike"):
            continue
        comp = components.get(fault.component or "")
        if fault.kind in ("crash", "shard_loss") and comp is not None and comp.kind == "redis":
            continue  # its calls fail while it is down; it comes back empty (kernel.after's filled_at)
        if fault.kind == "crash" and comp is not None and comp.kind in ("gateway", "service"):
            if getattr(comp, "balancer", "random") == "random":
                continue
            out.append(_no(f"faults[{i}]", f"a crash of {fault.component}, a round-robin fleet"))
        else:
            crash = fault.kind == "crash" and comp is not None
            out.append(_no(f"faults[{i}]", f"a crash of {fault.component}, a {comp.kind}" if crash and comp
                           else fault.kind))
    return out


def _no(field: str, what: str) -> ScenarioError:
    return ScenarioError(field, f"{what}; the stations engine runs feed-forward calls, joins, fan-outs and "
                                "cache lookups so far: run with --engine calendar or des")


def unsupported(scenario: Scenario) -> list[ScenarioError]:
    """Every feature of `scenario` the station-order engine cannot simulate, each a one-line error."""
    if not scenario.is_design:
        return [_no("flows", "the messaging preset")]
    out: list[ScenarioError] = []
    if scenario.warmup_s == "auto":
        out.append(ScenarioError("warmup_s", "auto is resolved by a pilot run before simulating; give "
                                             "seconds to simulate directly"))
    if scenario.sample != 1:
        out.append(_no("sample", f"a sample cell ({scenario.sample})"))
    out += _fault_problems(scenario)
    for edge, policy in scenario.policies.items():
        if not edge.startswith("client->") or policy.model_dump(exclude_none=True).keys() - {"timeout_ms"}:
            out.append(_no(f"policies.{edge}", "a resilience policy but a client's timeout"))
            break
    if isinstance(scenario.network.hop_ms, Gamma):
        out.append(_no("network.hop_ms", "a gamma distribution"))
    system = system_of(scenario)
    for name, comp in system.components.items():
        if comp.kind not in KINDS:
            out.append(_no(f"components.{name}", f"a {comp.kind} component"))
            continue
        for op, operation in comp.ops.items():
            if isinstance(operation.service_ms, Gamma):
                out.append(_no(f"components.{name}.{op}", "a gamma distribution"))
    for name, flow in system.flows.items():
        if flow.triggered:
            out.append(_no(f"flows.{name}", "a Kafka-triggered flow"))
        out += _step_problems(flow.steps, f"flows.{name}.steps", flow.space)
    if not out and sum(len(walk(f.steps)) for f in system.flows.values()) > MAX_NODES:
        out.append(_no("flows", f"more than {MAX_NODES} steps"))
    if not out and fleet_order(system) is None:
        out.append(_no("flows", "flows that call the same components in different orders (a cycle)"))
    return out
