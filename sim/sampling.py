"""The `--sample F` cell: a fraction F of users and traffic on the same fraction of every fleet.

Each fleet keeps ceil(F x count) instances, never fewer than it needs to work (Cassandra's
replication factor, Kafka's replication factor, one instance). Where rounding gives a fleet a
share other than F, each of its simulated instances carries F/share times the per-instance load
of the full design; the cell says so for that fleet, and every output reports it.

What a cell cannot show is a warning in summary.json's `sample.warnings`, the terminal and the
report's Findings (`sample_block`): fleets whose per-instance load factor is not 1, and the
busiest keys' full-scale load on the one instance each lands on (sim/hotkeys.py). A sweep or
comparison whose swept fleet's simulated count does not follow the value is refused before
anything runs (`require_following`), with the smallest --sample that would answer.

A design (components and flows) scales each component like a fleet and each client flow's rate by
F; its hot-key warnings are the most popular key of each key space (sim/hotkeys.py,
`design_hot_key_loads`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from sim.components import kinds
from sim.errors import ScenarioError
from sim.scenario import Scenario
from sim.workload import cell_size

FAITHFUL_TOLERANCE = 0.01  # a per-instance load factor within 1% of 1 keeps the full design's load


@dataclass(frozen=True)
class FleetCell:
    configured: int
    simulated: int

    def share(self) -> float:
        return self.simulated / self.configured


@dataclass(frozen=True)
class Cell:
    sample: float
    users: int
    conversations: int
    sends_per_sec: float
    reads_per_sec: float
    fleets: dict[str, FleetCell]
    notes: list[str] = field(default_factory=list)
    # a design's client flows at cell scale (requests/s); a design has no users, conversations,
    # sends or reads (those fields are 0), a messaging scenario no flow rates here
    flow_rates: dict[str, float] = field(default_factory=dict)

    def load_factor(self, fleet: str) -> float:
        """Per-instance offered load in the cell relative to the full design."""
        return self.sample / self.fleets[fleet].share()

    def as_dict(self) -> dict[str, object]:
        return {
            "fraction": self.sample,
            "users": self.users,
            "conversations": self.conversations,
            "sends_per_sec": self.sends_per_sec,
            "reads_per_sec": self.reads_per_sec,
            "fleets": {
                name: {
                    "configured": f.configured,
                    "simulated": f.simulated,
                    "share": f.share(),
                    "per_instance_load_factor": self.load_factor(name),
                }
                for name, f in self.fleets.items()
            },
            "notes": list(self.notes),
            "flow_rates": dict(self.flow_rates),
        }

    def load_factor_warnings(self) -> list[dict[str, object]]:
        """One warning per fleet whose per-instance load in the cell is not the full design's."""
        out: list[dict[str, object]] = []
        if self.sample >= 1:
            return out
        for name, fc in self.fleets.items():
            factor = self.load_factor(name)
            if not faithful(factor):
                out.append({
                    "kind": "load_factor", "component": name, "level": "warn", "configured": fc.configured,
                    "simulated": fc.simulated, "per_instance_load_factor": factor,
                    "text": f"{name}: {fc.simulated} of {fc.configured:,} simulated (share "
                            f"{fc.share():.4g} vs sample {self.sample:.4g}): each simulated instance carries "
                            f"{factor:.3g}x the full design's per-instance load, so its utilization and "
                            f"queueing are not the design's"})
        return out


def _fleet(configured: int, sample: float, floor: int) -> FleetCell:
    return FleetCell(configured, simulated_count(configured, sample, floor))


def simulated_count(configured: int, sample: float, floor: int) -> int:
    """Instances a cell of fraction `sample` simulates: ceil(F x count), at least `floor`."""
    return min(configured, max(floor, math.ceil(configured * sample - 1e-9)))


def load_factor(configured: int, sample: float, floor: int) -> float:
    """Per-instance load in the cell relative to the full design: F / (simulated / configured)."""
    return sample * configured / simulated_count(configured, sample, floor)


def faithful(factor: float) -> bool:
    """The cell keeps the full design's per-instance load within FAITHFUL_TOLERANCE."""
    return abs(factor - 1) <= FAITHFUL_TOLERANCE


def fleet_sizes(scenario: Scenario) -> dict[str, tuple[int, int]]:
    """Per enabled fleet: (configured count, fewest instances a cell may simulate)."""
    if scenario.is_design:
        return design_fleet_sizes(scenario)
    out: dict[str, tuple[int, int]] = {}
    for k in kinds():  # each kind's floor: its minimum (Cassandra, Kafka: the replication factor)
        if k.enabled(scenario):
            out.update(k.sample_fleets(scenario))
    return out


def partitions_fleet(kafka: str) -> str:
    """The cell's name for a kafka component's partition count (messaging: kafka_partitions)."""
    return f"{kafka}_partitions"


def design_fleet_sizes(scenario: Scenario) -> dict[str, tuple[int, int]]:
    """A design's components as fleets: (configured count, floor), the floor being cassandra's and
    kafka's replication_factor, else 1; each kafka component's partitions scale too (floor 1)."""
    out: dict[str, tuple[int, int]] = {}
    for name, _, count, _ in scenario.fleets():
        spec = scenario.components[name]
        out[name] = (count, spec.replication_factor if spec.kind in ("cassandra", "kafka") else 1)
        if spec.kind == "kafka":
            out[partitions_fleet(name)] = (spec.partitions, 1)
    return out


def _design_cell(scenario: Scenario) -> Cell:
    f = scenario.sample
    fleets = {name: _fleet(n, f, floor) for name, (n, floor) in design_fleet_sizes(scenario).items()}
    notes = []
    if f < 1:
        for name, spec in scenario.components.items():
            if spec.kind in ("gateway", "service") and spec.balancer == "round_robin":
                notes.append(_round_robin_note(name, fleets[name]))
    rates = {name: flow.rate_per_sec * f for name, flow in scenario.flows.items()
             if flow.rate_per_sec is not None}
    return Cell(sample=f, users=0, conversations=0, sends_per_sec=0.0, reads_per_sec=0.0, fleets=fleets,
                notes=notes, flow_rates=rates)


def _round_robin_note(name: str, fleet: FleetCell) -> str:
    return (f"{name}: round_robin balancing over {fleet.simulated} instead of {fleet.configured} "
            f"instances changes each instance's arrival pattern (a strict rotation over n instances "
            f"smooths arrivals), so queueing in the cell differs from the full fleet; balancer: random "
            f"keeps it")


def make_cell(scenario: Scenario) -> Cell:
    """The cell of fraction `scenario.sample`: each fleet's simulated count; for the messaging form
    the cell's population and rates, for a design its client flows' rates."""
    if scenario.is_design:
        return _design_cell(scenario)
    f = scenario.sample
    fleets = {name: _fleet(n, f, floor) for name, (n, floor) in fleet_sizes(scenario).items()}
    notes = []
    if f < 1:
        for name in ("gateway", "message_service"):
            section = getattr(scenario, name)
            if section.enabled and section.balancer == "round_robin" and fleets[name].simulated > 0:
                notes.append(_round_robin_note(name, fleets[name]))
    return Cell(
        sample=f,
        users=cell_size(scenario.workload.users, f),
        conversations=cell_size(scenario.workload.conversations, f),
        sends_per_sec=scenario.workload.sends_per_sec * f,
        reads_per_sec=scenario.workload.reads_per_sec * f,
        fleets=fleets,
        notes=notes,
    )


# -- what a cell cannot show ------------------------------------------------------------------------
def sample_block(scenario: Scenario, cell: Cell) -> dict[str, object]:
    """summary.json's `sample`: the cell, and (F < 1) its warnings: every fleet whose per-instance
    load is not the full design's, and the busiest keys' full-scale load on their one instance
    (sim/hotkeys.py). Report and CLI both read `warnings`."""
    from sim.hotkeys import cell_hottest_keys, fan_out_burst, hot_key_loads
    from sim.workload import hottest_keys

    block = cell.as_dict()
    warnings: list[dict[str, object]] = list(cell.load_factor_warnings())
    if cell.sample < 1 and scenario.is_design:
        from sim.hotkeys import design_hot_key_loads
        from sim.system.compile import system_of

        warnings += [load.as_dict() for load in design_hot_key_loads(system_of(scenario), cell.sample)]
    elif cell.sample < 1:
        hit = 0.0
        if scenario.redis.enabled:
            from sim.analytic import expected_hit_ratio

            hit = expected_hit_ratio(scenario)
        loads = hot_key_loads(scenario, hottest_keys(scenario), cell_hottest_keys(scenario), hit)
        warnings += [load.as_dict() for load in loads]
        if "cassandra" in cell.fleets:
            burst = fan_out_burst(scenario, cell.fleets["cassandra"].simulated)
            if burst is not None:
                warnings.append(burst)
    block["warnings"] = warnings
    return block


# -- sweeps and comparisons: the cell must follow the value ---------------------------------------
@dataclass(frozen=True)
class Unfollowed:
    """A fleet whose simulated count does not follow the swept (or compared) value."""

    fleet: str
    points: tuple[tuple[str, int, int, float], ...]  # (point label, configured, simulated, load factor)


def unfollowed_fleets(scenarios: list[Scenario], labels: list[str]) -> list[Unfollowed]:
    """Fleets whose configured count (or its floor, the replication factor) differs between the
    scenarios (the swept or compared fleets) and whose per-instance load factor is not 1 (within
    1%) at some point: the cell would not show the count's real effect there."""
    if len(scenarios) < 2:
        return []
    sizes = [fleet_sizes(sc) for sc in scenarios]
    out = []
    for name in dict.fromkeys(n for s in sizes for n in s):
        rows = []
        for sc, label, s in zip(scenarios, labels, sizes, strict=True):
            if name in s:
                n, floor = s[name]
                sim = simulated_count(n, sc.sample, floor)
                rows.append((label, n, sim, load_factor(n, sc.sample, floor)))
        swept = len({s[name] for s in sizes if name in s}) > 1  # the count (or its floor) differs
        if swept and not all(faithful(r[3]) for r in rows):
            out.append(Unfollowed(name, tuple(rows)))
    return out


def smallest_faithful_sample(scenarios: list[Scenario], fleets: list[str]) -> float:
    """The smallest F (as printed with 4 significant figures) at which every scenario's count of
    each of `fleets` keeps its per-instance load within 1%: the smallest --sample that answers."""
    sizes = [fleet_sizes(sc) for sc in scenarios]
    pairs = sorted({s[name] for s in sizes for name in fleets if name in s})
    if not pairs:
        return 1.0
    # F = k / n gives fleet n an exact share; the answer is one of these (or within 1% of one)
    candidates = heapq.merge(*((k / n for k in range(max(floor, 1), n + 1)) for n, floor in pairs))
    for f in candidates:
        shown = float(f"{f:.4g}")
        if shown <= 1 and all(faithful(load_factor(n, shown, floor)) for n, floor in pairs):
            return shown
    return 1.0


def require_following(scenarios: list[Scenario], labels: list[str], what: str) -> None:
    """Raise ScenarioError (one line, exit 2) when a swept or compared fleet's simulated count does
    not follow its value: the cell would give a row that looks like an answer and is not one."""
    bad = unfollowed_fleets(scenarios, labels)
    if not bad:
        return
    fractions = sorted({sc.sample for sc in scenarios})
    answer = smallest_faithful_sample(scenarios, [u.fleet for u in bad])
    parts = []
    for u in bad:
        seen: dict[tuple[int, int], str] = {}
        for label, n, sim, factor in u.points:
            seen.setdefault((n, sim), f"{label}: {sim} of {n:,} simulated, load factor {factor:.3g}x")
        parts.append(f"{u.fleet} ({'; '.join(seen.values())})")
    sample_text = ", ".join(f"{f:g}" for f in fractions)
    raise ScenarioError(
        f"--sample {sample_text}",
        f"the cell cannot answer this {what}: the simulated count of {'; '.join(parts)} does not follow "
        f"the value, so a point would show another count's per-instance load, not its own; allowed: "
        f"--sample {answer:g} (the smallest at which every value keeps its per-instance load) or "
        f"--sample 1 (every request, on the calendar engine)")
