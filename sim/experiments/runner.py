"""Running an experiment: several scenarios (points), each replicated, on one executor.

`run_points(points, replications, executor)` schedules every (point, replication) run at once,
so a sweep keeps all workers busy, and returns per point a `Replicated` or a `PointFailure` (an
invalid combination, or any replication that crashed: a point with a missing replication has no
honest interval, so it is failed whole, and the other points go on).

`replications=None` runs each point once with its own seed (a plain run); an integer R runs R
replications with seeds spawned from the point's seed (sim/experiments/replications.py). Points
whose `warmup_s` is `auto` first run pilots (sim/experiments/warmup.py).

`engine="auto"` is resolved once, before any run, to the one engine that runs every point
(sim.engines.choose_all): every replication of every point runs on it, so points differ by their
settings and not by their engine (common random numbers stay common).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim.engines import AUTO, DEFAULT_ENGINE, choose_all
from sim.experiments.executors import Executor, LocalExecutor
from sim.experiments.replications import Replicated, combine, replication_seeds
from sim.experiments.tasks import RunOutcome, RunTask, describe, execute
from sim.experiments.warmup import WarmupCut, warmup_cut
from sim.scenario import Scenario


@dataclass(frozen=True)
class PointFailure:
    """A point that could not be run or combined, and why (one line)."""

    error: str
    scenario: Scenario | None = None


@dataclass(frozen=True)
class Progress:
    runs_done: int
    runs_total: int
    points_done: int
    points_total: int
    phase: str  # "pilot" or "run"


ProgressFn = Callable[[Progress], None]


def run_points(points: Sequence[Scenario | PointFailure], replications: int | None = None,
               executor: Executor | None = None,
               progress: ProgressFn | None = None, engine: str = DEFAULT_ENGINE,
               force: bool = False) -> list[Replicated | PointFailure]:
    """Run every point `replications` times (None: once, with its own seed) on `engine` and
    combine (`auto`: the engine `resolve_engine` picks for all the points). Pilots for automatic
    warm-ups run on the DES (the calendar engine refuses `auto`).
    `force` lets every run past the work budget (sim/budget.py; never past the memory bound)."""
    executor = executor or LocalExecutor(1)
    failed: dict[int, PointFailure] = {i: p for i, p in enumerate(points) if isinstance(p, PointFailure)}
    todo: dict[int, Scenario] = {i: p for i, p in enumerate(points) if isinstance(p, Scenario)}
    engine = resolve_engine(engine, list(todo.values()))
    seeds = {i: [sc.seed] if replications is None else replication_seeds(sc.seed, replications)
             for i, sc in todo.items()}
    auto = [i for i, sc in todo.items() if sc.warmup_s == "auto"]
    runs_total = (replications or 1) * (len(todo) + len(auto))
    state = {"runs": 0, "points": len(failed)}

    def report(phase: str) -> None:
        if progress:
            progress(Progress(state["runs"], runs_total, state["points"], len(points), phase))

    # -- pass 1: pilots (warm-up 0) for automatic warm-ups ----------------------------------
    cuts: dict[int, WarmupCut] = {}
    pilots = [RunTask(_with(todo[i], seed, 0.0), i, k, pilot=True, engine="des", force=force)
              for i in auto for k, seed in enumerate(seeds[i])]
    for i, mine in _by_point(_map(executor, pilots, state, lambda _o: report("pilot"))).items():
        bad = next((o for o in mine if not o.ok), None)
        if bad is not None:
            error = f"warm-up pilot, replication {bad.replication}: {bad.error}"
            failed[i] = PointFailure(error, todo.pop(i))
            state["points"] += 1
        else:
            cuts[i] = warmup_cut([o.timeseries for o in mine if o.timeseries is not None],
                                 todo[i].duration_s)
            todo[i] = _with(todo[i], None, cuts[i].cut_s)
    report("run")

    # -- pass 2: the measured runs ----------------------------------------------------------
    tasks = [RunTask(_with(sc, seed, None), i, k, engine=engine, force=force)
             for i, sc in todo.items() for k, seed in enumerate(seeds[i])]
    remaining = {i: len(seeds[i]) for i in todo}

    def finished(outcome: RunOutcome) -> None:
        remaining[outcome.point] -= 1
        if remaining[outcome.point] == 0:
            state["points"] += 1
        report("run")

    done: dict[int, Replicated] = {}
    for i, mine in _by_point(_map(executor, tasks, state, finished)).items():
        bad = next((o for o in mine if not o.ok), None)
        if bad is not None:
            label = "" if replications is None else f"replication {bad.replication}: "
            failed[i] = PointFailure(f"{label}{bad.error}", todo[i])
            continue
        try:
            done[i] = combine(todo[i], seeds[i], [o.summary or {} for o in mine],
                           [o.histograms or {} for o in mine],
                           [o.timeseries for o in mine if o.timeseries is not None],
                           [o.components for o in mine if o.components is not None], cuts.get(i))
        except Exception as exc:  # a summary the combiner cannot read fails this point only
            failed[i] = PointFailure(f"combining replications: {describe(exc)}", todo[i])
    return [failed[i] if i in failed else done[i] for i in range(len(points))]


def resolve_engine(engine: str, scenarios: Sequence[Scenario]) -> str:
    """`engine` itself, or for `auto` the one engine that runs all `scenarios` (sim.engines.choose_all,
    whose one-line reason the CLI prints)."""
    if engine != AUTO:
        return engine
    if not scenarios:
        return "des"  # every point failed to build: nothing will run
    return choose_all([(f"point #{i}", sc) for i, sc in enumerate(scenarios)])[0]


def _by_point(outcomes: list[RunOutcome]) -> dict[int, list[RunOutcome]]:
    grouped: dict[int, list[RunOutcome]] = {}
    for o in sorted(outcomes, key=lambda o: (o.point, o.replication)):
        grouped.setdefault(o.point, []).append(o)
    return grouped


def _with(scenario: Scenario, seed: int | None, warmup_s: float | None) -> Scenario:
    update: dict[str, object] = {}
    if seed is not None:
        update["seed"] = seed
    if warmup_s is not None:
        update["warmup_s"] = warmup_s
    return scenario.model_copy(update=update)


def _map(executor: Executor, tasks: list[RunTask], state: dict[str, int],
         each: Callable[[RunOutcome], None]) -> list[RunOutcome]:
    """Run `tasks`; an executor-level failure (a dead worker) becomes that task's error."""
    if not tasks:
        return []

    def on_done(i: int) -> None:
        state["runs"] += 1
        each(RunOutcome(tasks[i].point, tasks[i].replication))

    raw = executor.map(execute, tasks, on_done)
    out = []
    for task, r in zip(tasks, raw, strict=True):
        if isinstance(r, RunOutcome):
            out.append(r)
        else:
            error = describe(r) if isinstance(r, BaseException) else f"no result ({r!r})"
            out.append(RunOutcome(task.point, task.replication, error=error))
    return out
