"""The engines behind one contract, selected by name.

Each engine runs a scenario and returns the neutral run state (sim/run_state.py) that
sim/result.py turns into a summary. `supports(scenario)` lists, each as a one-line error, what an
engine cannot run; an empty list means it runs the scenario. No engine imports another: this
registry is the only place that knows both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.errors import ScenarioError
from sim.run_state import RunState
from sim.scenario import Scenario

Progress = Callable[[float, float], None]
OnWindow = Callable[[dict[str, float]], None]  # a per-second timeseries row, as its window closes


@dataclass(frozen=True)
class EngineSpec:
    name: str
    description: str
    supports: Callable[[Scenario], list[ScenarioError]]
    run: Callable[[Scenario, Progress | None, bool, OnWindow | None], RunState]


def _des_supports(scenario: Scenario) -> list[ScenarioError]:
    if scenario.warmup_s == "auto":
        return [ScenarioError("warmup_s", "auto is resolved by replications (sim.experiments, or capsim "
                                          "run); simulate() takes a warm-up in seconds")]
    return []


def _des_run(scenario: Scenario, progress: Progress | None, drain: bool,
             on_window: OnWindow | None = None) -> RunState:
    from sim.des.engine import Engine

    return Engine(scenario, progress=progress, on_window=on_window).run(drain=drain)


def _fast_supports(scenario: Scenario) -> list[ScenarioError]:
    from sim.fast.support import unsupported  # no numba compile: only the rules

    return unsupported(scenario)


def _fast_run(scenario: Scenario, progress: Progress | None, drain: bool,
              on_window: OnWindow | None = None) -> RunState:
    from sim.fast.engine import FastEngine  # numba compiles on first use: import only when asked

    return FastEngine(scenario, progress=progress, on_window=on_window).run(drain=drain)


ENGINES: dict[str, EngineSpec] = {
    "des": EngineSpec("des", "SimPy, every behaviour (the reference)", _des_supports, _des_run),
    "fast": EngineSpec("fast", "arrays + numba, full scale; no retries, breakers, hedging, "
                               "fan-out on read or data loss", _fast_supports, _fast_run),
}


def engine(name: str) -> EngineSpec:
    """The engine called `name`, or a one-line error listing the engines."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ScenarioError("engine", f"unknown engine {name!r}; allowed: {', '.join(ENGINES)}") from None
