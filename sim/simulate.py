"""The Python API's entry point: scenario in, `Result` out."""

from __future__ import annotations

from sim.des.engine import Engine, Progress
from sim.result import Result, build_result
from sim.scenario import Scenario


def simulate(scenario: Scenario, progress: Progress | None = None, drain: bool = False) -> Result:
    """Run the discrete-event engine on `scenario`.

    `progress(t, duration)` is called every simulated second. With `drain`, arrivals stop at
    `duration_s` and the run continues until every request has finished (used by tests of
    conservation; the default stops the clock at `duration_s` with requests in flight).
    """
    return build_result(Engine(scenario, progress=progress).run(drain=drain))
