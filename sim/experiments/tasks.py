"""The unit of work an executor runs: one simulation of one scenario with one seed.

`execute(task)` is a top-level function of picklable arguments, so a process pool or a Dask
worker can call it; it never raises for a failing run, it returns the error as text (a point
that crashes must not sink a sweep). What it returns is what experiments need, not the whole
`Result`: the summary, the latency histograms (to merge), the per-window series and the
per-instance frame.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import pandas as pd

from sim.histogram import Histogram
from sim.scenario import Scenario
from sim.simulate import simulate


@dataclass(frozen=True)
class RunTask:
    scenario: Scenario  # seed and a numeric warm-up already set
    point: int  # which scenario of the experiment
    replication: int
    pilot: bool = False  # pilots only need the per-window series
    engine: str = "des"  # sim.simulate's engine: des or calendar (run_points resolves auto first)
    force: bool = False  # run past the work budget (sim/budget.py; never past the memory bound)


@dataclass
class RunOutcome:
    point: int
    replication: int
    summary: dict | None = None
    histograms: dict[str, Histogram] | None = None
    timeseries: pd.DataFrame | None = None
    components: pd.DataFrame | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def execute(task: RunTask) -> RunOutcome:
    """Simulate `task.scenario`; a failure comes back as `error` (type, message, where)."""
    try:
        result = simulate(task.scenario, engine=task.engine, force=task.force)
    except Exception as exc:
        return RunOutcome(task.point, task.replication, error=describe(exc))
    if task.pilot:
        return RunOutcome(task.point, task.replication, timeseries=result.timeseries)
    return RunOutcome(task.point, task.replication, summary=result.summary, histograms=result.histograms,
                      timeseries=result.timeseries, components=result.components)


def describe(exc: BaseException) -> str:
    """One line: the exception and the innermost frame it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}{where}"
