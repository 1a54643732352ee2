"""The Python API's entry point: scenario in, `Result` out."""

from __future__ import annotations

from sim.budget import check_budget
from sim.engines import AUTO, DEFAULT_ENGINE, ENGINES, OnWindow, Progress, choose
from sim.engines import engine as engine_named
from sim.result import Result, build_result
from sim.scenario import Scenario

__all__ = ["ENGINES", "simulate"]


def simulate(scenario: Scenario, progress: Progress | None = None, drain: bool = False,
             engine: str = DEFAULT_ENGINE, force: bool = False, on_window: OnWindow | None = None) -> Result:
    """Run `scenario` on an engine: "des" (SimPy, the reference), "calendar" (compiled event calendar
    over the scenario's flows, sim/calendar/), "stations" (jobs in station order, sim/stations/) or
    "auto" (the first of those last two that runs the scenario, else the DES: sim.engines.choose);
    the summary's `engine` names the engine that ran.

    `progress(t, duration)` is called as simulated time advances (every simulated second on the
    DES, every chunk of arrivals on the calendar). With `drain`, arrivals stop at `duration_s` and the run
    continues until every request has finished (used by tests of conservation; the default stops
    the clock at `duration_s` with requests in flight). `on_window(row)` receives each per-second
    timeseries row (the columns of timeseries.csv) as the run passes its end, so a caller can draw
    the run live; the calendar's rows are provisional (a request finishing in a window may be
    recorded a chunk later), timeseries.csv holds the final ones.

    A run whose estimated work exceeds the engine's budget is refused with a ScenarioError before
    anything is built (sim/budget.py), unless `force`; a run beyond the memory bound always is.
    """
    if engine == AUTO:
        engine = choose(scenario)[0]
    spec = engine_named(engine)
    problems = spec.supports(scenario)
    if problems:
        raise problems[0]
    check_budget(scenario, engine, force=force)
    return build_result(spec.run(scenario, progress, drain, on_window), engine=engine)
