"""capsim: a discrete-event capacity simulator for large messaging systems.

    from sim import load_scenario, simulate
    result = simulate(load_scenario("scenarios/interview-small.yaml"))
    result.summary["latency_ms"]["read"]["p99"]
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.loading import load_scenario
from sim.result import Result
from sim.scenario import Scenario
from sim.simulate import simulate

__all__ = ["Result", "Scenario", "ScenarioError", "load_scenario", "simulate"]
