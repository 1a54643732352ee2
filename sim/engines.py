"""The engines behind one contract, selected by name.

Each engine runs a scenario and returns the neutral run state (sim/run_state.py) that
sim/result.py turns into a summary. `supports(scenario)` lists, each as a one-line error, what an
engine cannot run; an empty list means it runs the scenario. No engine imports another: this
registry is the only place that knows both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.errors import ScenarioError
from sim.run_state import OnWindow, Progress, RunState
from sim.scenario import Scenario


@dataclass(frozen=True)
class EngineSpec:
    name: str
    description: str
    supports: Callable[[Scenario], list[ScenarioError]]
    run: Callable[[Scenario, Progress | None, bool, OnWindow | None], RunState]
    # what it runs only approximately, each naming the field (auto prefers an engine exact on it)
    approximates: Callable[[Scenario], list[ScenarioError]] = lambda scenario: []


def _des_supports(scenario: Scenario) -> list[ScenarioError]:
    if scenario.warmup_s == "auto":
        return [ScenarioError("warmup_s", "auto is resolved by replications (sim.experiments, or capsim "
                                          "run); simulate() takes a warm-up in seconds")]
    return []


def _des_run(scenario: Scenario, progress: Progress | None, drain: bool,
             on_window: OnWindow | None = None) -> RunState:
    from sim.des.engine import Engine

    return Engine(scenario, progress=progress, on_window=on_window).run(drain=drain)


def _calendar_supports(scenario: Scenario) -> list[ScenarioError]:
    from sim.calendar.support import unsupported  # no numba compile: only the rules

    return unsupported(scenario)


def _calendar_run(scenario: Scenario, progress: Progress | None, drain: bool,
                  on_window: OnWindow | None = None) -> RunState:
    from sim.calendar.engine import CalendarEngine  # numba compiles on first use: import only when asked

    return CalendarEngine(scenario, progress=progress, on_window=on_window).run(drain=drain)


def _stations_supports(scenario: Scenario) -> list[ScenarioError]:
    from sim.stations.support import unsupported  # no numba compile: only the rules

    return unsupported(scenario)


def _stations_approximates(scenario: Scenario) -> list[ScenarioError]:
    from sim.stations.support import approximated

    return approximated(scenario)


def _stations_run(scenario: Scenario, progress: Progress | None, drain: bool,
                  on_window: OnWindow | None = None) -> RunState:
    from sim.stations.engine import StationsEngine  # numba compiles on first use: import only when asked

    return StationsEngine(scenario, progress=progress, on_window=on_window).run(drain=drain)


ENGINES: dict[str, EngineSpec] = {
    "des": EngineSpec("des", "SimPy, every behaviour (the reference)", _des_supports, _des_run),
    "calendar": EngineSpec("calendar", "compiled event calendar over the system's flows (numba): designs and "
                                       "the messaging preset, policies, hedged reads and faults, lost writes "
                                       "included",
                           _calendar_supports, _calendar_run),
    "stations": EngineSpec("stations", "jobs in station order, component by component, on both cores "
                                       "(numba; feed-forward designs: calls, rate limits, joins, fan-outs, "
                                       "Cassandra, Redis, cache lookups, client timeouts, slow nodes, GC "
                                       "pauses, load spikes, crashes of gateways, services and Redis shards; "
                                       "a cache fill approximately)",
                           _stations_supports, _stations_run, _stations_approximates),
}


AUTO = "auto"  # not an engine: `choose` picks one for the scenario
DEFAULT_ENGINE = AUTO  # what the CLI, simulate() and sim.experiments use when no engine is named
# the fastest engine that runs the scenario: the stations engine (feed-forward designs at full scale),
# the calendar (nearly everything), and the DES, which runs everything: the last resort
PREFERENCE = ("stations", "calendar", "des")
_CHOSEN = {"stations": "jobs in station order, every request, on both cores",
           "calendar": "compiled event calendar, every request of the scenario's cell",
           "des": "SimPy, the reference"}


def engine(name: str) -> EngineSpec:
    """The engine called `name`, or a one-line error listing the engines (`auto` is resolved by
    `choose` first: it names no engine until it has seen the scenario)."""
    if name == AUTO:
        raise ScenarioError("engine", "auto names no engine until a scenario is seen; resolve it with "
                                      "sim.engines.choose(scenario) first")
    try:
        return ENGINES[name]
    except KeyError:
        raise ScenarioError("engine", f"unknown engine {name!r}; allowed: {', '.join(ENGINES)}, "
                                      f"{AUTO}") from None


def choose(scenario: Scenario) -> tuple[str, str]:
    """The engine `auto` runs `scenario` on, and a one-line reason to print: the first engine of
    PREFERENCE whose `supports` finds nothing it cannot run (the DES runs everything, and a
    `warmup_s: auto` scenario lands on it: its pilots and measured runs stay on one engine)."""
    return choose_all([("it", scenario)])


def choose_all(named: Sequence[tuple[str, Scenario]]) -> tuple[str, str]:
    """One engine for several scenarios run side by side (a sweep's points, a comparison's arms),
    each given as (label, scenario): the first engine of PREFERENCE that runs every one of them, so
    their differences are the scenarios' and not the engines'. The reason names, for each engine
    passed over, the scenarios it cannot run and the first thing it cannot run in the first of them
    (engines passed over for the same reason share it: "stations and calendar cannot run it: ...")."""
    passed: list[tuple[str, str]] = []  # (engines, what they cannot run)
    chosen = PREFERENCE[-1]
    for name in PREFERENCE[:-1]:
        spec = ENGINES[name]
        refused = [(label, problems[0]) for label, sc in named if (problems := spec.supports(sc))]
        verb = "cannot run"
        if not refused:  # it runs them all: chosen, unless it only approximates one (the DES is exact)
            refused = [(label, notes[0]) for label, sc in named if (notes := spec.approximates(sc))]
            verb = "only approximates"
            if not refused:
                chosen = name
                break
        labels = [label for label, _ in refused]
        why = _short(refused[0][1])
        if len(refused) == 1:  # the only scenario ("it"), or the only one of several it cannot run
            gist = f"{verb} {labels[0]}: {why}"
        else:
            who = ("any of them" if len(refused) == len(named) else
                   ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else ""))
            gist = f"{verb} {who} ({labels[0]}: {why})"
        if passed and passed[-1][1] == gist:
            passed[-1] = (f"{passed[-1][0]} and {name}", gist)
        else:
            passed.append((name, gist))
    scope = "" if len(named) == 1 else f" for {'both' if len(named) == 2 else f'all {len(named)}'} scenarios"
    why_not = "; ".join(f"{names} {gist}" for names, gist in passed)
    return chosen, f"engine: {chosen}{scope} ({why_not or _CHOSEN[chosen]})"


def approximation_note(name: str, named: Sequence[tuple[str, Scenario]]) -> str | None:
    """One line when engine `name`, chosen by the user, runs a scenario only approximately (the
    first thing it approximates, in the first such scenario), else None."""
    for label, sc in named:
        notes = ENGINES[name].approximates(sc) if name in ENGINES else []
        if notes:
            where = "" if label == "it" else f"{label}: "
            return f"engine: {name} approximates {where}{notes[0]}"
    return None


def compile_note(name: str) -> str | None:
    """One line when engine `name` must compile before its first run (the calendar's loop or the
    stations engine's kernels, on the first run of this version of capsim, or after their sources
    change), else None."""
    if name == "calendar":
        from sim.calendar.engine import kernels_cached

        what, seconds = "the calendar engine's loop", "~20-40 s"
    elif name == "stations":
        from sim.stations.engine import kernels_cached

        what, seconds = "the stations engine's kernels", "~10-20 s"
    else:
        return None
    if kernels_cached() is not False:
        return None
    return (f"compiling {what} first (once for this version of capsim: {seconds} on 2 cores; later runs load "
            "it from the cache)")


def _short(problem: ScenarioError) -> str:
    """The field path and the gist of a refusal: its message without asides in parentheses and up
    to the advice after "; " (which names an --engine, beside the point once auto has chosen)."""
    gist, previous = problem.message, ""
    while gist != previous:  # innermost parentheses first
        previous, gist = gist, re.sub(r" ?\([^()]*\)", "", gist)
    gist = gist.split("; ", 1)[0].strip().rstrip(".")
    return f"{problem.where}: {gist}" if problem.where else gist
