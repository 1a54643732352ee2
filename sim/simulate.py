"""The Python API's entry point: scenario in, `Result` out."""

from __future__ import annotations

from sim.des.engine import Engine, Progress
from sim.errors import ScenarioError
from sim.result import Result, build_result
from sim.scenario import Scenario

ENGINES = ("des", "fast")


def simulate(scenario: Scenario, progress: Progress | None = None, drain: bool = False,
             engine: str = "des") -> Result:
    """Run `scenario` on an engine: "des" (SimPy, the reference) or "fast" (vectorised, sim/fast/).

    `progress(t, duration)` is called as simulated time advances (every simulated second on the
    DES, every chunk on the fast engine). With `drain`, arrivals stop at `duration_s` and the run
    continues until every request has finished (used by tests of conservation; the default stops
    the clock at `duration_s` with requests in flight).
    """
    if scenario.warmup_s == "auto":
        raise ScenarioError("warmup_s", "auto is resolved by replications (sim.experiments, or capsim "
                                        "run); simulate() takes a warm-up in seconds")
    if engine == "des":
        return build_result(Engine(scenario, progress=progress).run(drain=drain))
    if engine == "fast":
        from sim.fast.engine import FastEngine  # numba compiles on first use: import only when asked

        return build_result(FastEngine(scenario, progress=progress).run(drain=drain), engine="fast")
    raise ScenarioError("engine", f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
