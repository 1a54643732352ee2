"""capsim's command line: a thin typer layer over the Python API in `sim`."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sim import ScenarioError, load_scenario, simulate
from sim.diagram import mermaid
from sim.engines import AUTO, DEFAULT_ENGINE
from sim.report import write_report
from sim.report.resilience import amplification_line, edge_retries
from sim.result import Result
from sim.run_folder import Staged, check_target, default_target, fresh_folder
from sim.scenario import Scenario

if TYPE_CHECKING:
    from sim.experiments import Executor
from sim.sizing import size_plan

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="capsim: simulate a messaging system's capacity, latency and availability.")
# emoji off: a user's `:x:` in a name or value is printed as written, never as an emoji
console = Console(width=120, emoji=False)
err_console = Console(stderr=True, width=120, emoji=False)


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2. The message is printed literally (no markup,
    no emoji codes, no highlighting): it quotes what the user wrote."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    err_console.print(Text.assemble(("error:", "bold red"), " ", line), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(path: Path, sets: list[str], **fields: object) -> Scenario:
    """Load a scenario with `--set` overrides and the run options (`duration_s=--duration`, ...)."""
    overrides = list(sets)
    origins = [f"--set {item}" for item in sets]
    for key, value in fields.items():
        if value is not None:  # option text is parsed and checked like a --set value
            overrides.append(f"{key}={value}")
            origins.append(f"--{key.removesuffix('_s')} {value}")
    try:
        return load_scenario(path, overrides, origins=origins)
    except ScenarioError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"capsim {version('capsim')}")
        except PackageNotFoundError:
            typer.echo("capsim (version unknown: the package is not installed; pip install -e .)")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", metavar="", callback=_version, is_eager=True, help="Print capsim's version and exit.")]
          = False,
          ) -> None:
    """capsim: simulate a messaging system's capacity, latency and availability."""


def _opt(metavar: str, *names: str, help: str) -> Any:
    """An option whose help says what its value is (SECONDS, N, F, ...): numbers are typed str so
    that a bad value gets capsim's one-line error, and typer would show them as <str>."""
    return typer.Option(*names, metavar=metavar, help=help)


SetOpt = Annotated[list[str], _opt("PATH=VALUE", "--set",
                                   help="Override a field: dotted.path=value (repeatable).")]
ForceOpt = Annotated[bool, typer.Option(
    "--force", metavar="", help="Run even if the work estimate exceeds the engine's budget (never past the "
                                "memory bound).")]
OUT_HELP = ("Output folder, new or empty (default: a fresh reports/{default}); written in a staging folder "
            "and moved into place when complete.")
EngineOpt = Annotated[str, typer.Option(
    metavar="des|calendar|stations|auto",
    help="des: SimPy, every behaviour (the reference); calendar: compiled event calendar over the "
         "scenario's flows, every request at full scale (what it cannot run yet it refuses in one line); "
         "stations: jobs in station order on both cores (designs without Kafka, policies but a client's "
         "timeout, or crashes of Cassandra, so far; a cache fill approximately); "
         "auto: the first of stations, calendar and des that runs every scenario of the command "
         "exactly, with the reason printed.")]


def _pick_engine(engine: str, named: list[tuple[str, Scenario]]) -> tuple[str, str | None]:
    """--engine auto: the one engine that runs every (label, scenario) of the command and the line
    saying why (sim.engines.choose_all), printed by _say_engine once the checks pass; any other
    --engine as given, with a line only when it runs one of them approximately."""
    from sim.engines import approximation_note, choose_all

    return choose_all(named) if engine == AUTO else (engine, approximation_note(engine, named))


def _say_engine(reason: str | None, engine: str) -> None:
    """auto's reason for its engine, and a line when that engine compiles before it runs."""
    from sim.engines import compile_note

    for line in (reason, compile_note(engine)):
        if line is not None:  # one line however long: it names field paths the user may grep for
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _check_engine(engine: str, scenarios: list[Scenario]) -> None:
    """One line and exit 2 for an unknown engine or a scenario it cannot run (the first reason,
    and how many more there are: sim/engines.py lists them all)."""
    from sim.engines import ENGINES

    if engine not in ENGINES:
        _fail(f"--engine {engine}: unknown engine; allowed: {', '.join(ENGINES)}, {AUTO}")
    for sc in scenarios:
        # the DES refuses only `warmup_s: auto` (simulate() needs seconds); every command sends such a
        # scenario through sim.experiments, whose DES pilots resolve it before the measured runs
        problems = [p for p in ENGINES[engine].supports(sc)
                    if not (engine == "des" and p.where == "warmup_s")]
        if problems:
            n = len(problems) - 1
            more = f" (and {n} more the {engine} engine cannot run)" if n else ""
            _fail(f"{problems[0]}{more}")


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
             set_: SetOpt = []) -> None:  # noqa: B006 - typer reads the default
    """Check a scenario against the schema without simulating."""
    sc = _load(scenario, set_)
    console.print(f"[green]ok[/]: {scenario} ({sc.name}) is a valid scenario")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Scenario YAML file.")],
    # numbers arrive as text so that a bad value gets capsim's one-line error, not click's usage box
    duration: Annotated[str | None, _opt("SECONDS", help="Simulated seconds (warm-up included).")] = None,
    warmup: Annotated[str | None, _opt("SECONDS|auto", help="Seconds discarded before measuring.")] = None,
    seed: Annotated[str | None, _opt("N", help="Random seed (same seed, same numbers).")] = None,
    sample: Annotated[str | None, _opt("F", help="Fraction F of users, traffic and fleets.")] = None,
    set_: SetOpt = [],  # noqa: B006
    out: Annotated[Path | None, _opt("FOLDER", help=OUT_HELP.format(default="NAME/TIME"))] = None,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option(metavar="", help="No progress bar.")] = False,
    replications: Annotated[str | None, _opt("N",
        help="Independent replications (seeds spawned from --seed); adds 95% CIs (ci95).")] = None,
    workers: Annotated[str | None, _opt("N", help="Processes for replications (default: all).")] = None,
    engine: EngineOpt = DEFAULT_ENGINE,
) -> None:
    """Simulate a scenario; write summary.json, latency.csv, components.csv, timeseries.csv, report.md,
    report.html and the charts."""
    warmup = _fit_warmup([scenario], set_, duration, warmup)
    sc = _load(scenario, set_, duration_s=duration, warmup_s=warmup, seed=seed, sample=sample)
    reps = _count(replications, "--replications")
    engine, why = _pick_engine(engine, [("it", sc)])
    _check_engine(engine, [sc])
    memory = _check_budget(engine, [sc], force)
    _check_out(out)
    _say_engine(why, engine)
    console.print(_sample_line(sc))
    if reps is not None or sc.warmup_s == "auto":  # replications and/or the MSER-5 warm-up
        from sim.experiments import replicate

        executor = _executor(workers, None, memory * (reps or 1))
        with _experiment_progress(quiet) as tick:
            try:
                replicated = replicate(sc, reps, executor, tick, engine, force)
            except RuntimeError as exc:  # a replication crashed: say which, and how
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
                raise typer.Exit(1) from None
        sc, result = replicated.scenario, replicated.result()
    else:
        with Progress(TextColumn("[bold]simulating[/]"), BarColumn(),
                      TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"), TimeElapsedColumn(),
                      console=err_console, disable=quiet, transient=True) as bar:
            task = bar.add_task("sim", total=sc.duration_s)
            try:
                result = simulate(sc, progress=lambda t, _total: bar.update(task, completed=t), engine=engine,
                                  force=force)
            except ScenarioError as exc:  # e.g. a feature the calendar engine cannot simulate
                _fail(str(exc))
                raise  # unreachable: _fail exits
    with _staged(out, Path("reports") / sc.name, "", "the results") as staged:
        result.write(staged.path)
        size_warnings: list[str] | None = None
        try:
            size_warnings = size_plan(sc).warnings
        except ScenarioError as exc:  # a sizing gap (e.g. an unpriced fleet) must not lose the report
            err_console.print(f"[yellow]report:[/] no capacity warnings ({escape(str(exc))})",
                              highlight=False)
        report = write_report(result, staged.path, sc, size_warnings=size_warnings, diagram=mermaid(sc))
    out_dir = staged.final
    report = {name: staged.published(path) for name, path in report.items()}
    _print_summary(result)
    if (retries := amplification_line(edge_retries(result.summary))) is not None:
        console.print(f"retry amplification: {retries}", markup=False, highlight=False)
    _print_intervals(result.summary)
    for name, verdict in (result.summary.get("slo") or {}).items():
        status = verdict.get("status", "met" if verdict.get("met") else "missed")
        style = {"met": "green", "missed": "bold red"}.get(status, "yellow")
        actual = verdict.get("actual")
        shown = "-" if actual is None else f"{actual:.4g}"
        console.print(f"[{style}]SLO {status}[/]: {escape(name)} (actual {shown}, target "
                      f"{escape(str(verdict.get('target')))})", highlight=False)
    sample = result.summary["sample"]
    for warning in sample.get("warnings") or []:  # what the cell cannot show (sim/sampling.py)
        level = warning.get("level")
        head = {"bad": "[bold red]WARN sample cell:[/]", "warn": "[bold yellow]WARN sample cell:[/]"}.get(
            level, "[yellow]sample cell:[/]")  # info: a hot key well within one instance, stated all the same
        console.print(f"{head} {escape(str(warning['text']))}", highlight=False)
    for note in sample["notes"]:
        console.print(f"[yellow]sample:[/] {escape(note)}", highlight=False)
    if not result.summary["checks"]["conservation_holds"]:
        err_console.print("[bold red]conservation check failed[/]: see summary.json 'requests'")
        raise typer.Exit(1)
    console.print(f"wrote {out_dir}/", highlight=False)
    console.print(f"report: {report['report_html']} (and {report['report_md'].name}, "
                  f"{len(report) - 2} charts)", highlight=False)


@app.command()
def size(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Scenario YAML file.")],
    set_: SetOpt = [],  # noqa: B006
    out: Annotated[Path | None, _opt("FOLDER", help=OUT_HELP.format(default="NAME/size-TIME"))] = None,
) -> None:
    """Capacity plan without simulating: demand per dimension, instances needed (one zone lost), the
    configured and needed fleets' cost side by side, CRITICAL and WARN findings."""
    sc = _load(scenario, set_)
    _check_out(out)
    try:
        plan = size_plan(sc)
    except ScenarioError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    with _staged(out, Path("reports") / sc.name, "size-", "the plan") as staged:
        plan.write(staged.path)
    out_dir = staged.final or staged.target
    console.print(escape(plan.facts()), highlight=False)
    titles = (f"{sc.name} — capacity plan (cost: compute, storage, network, requests)",
              "monthly cost, configured and needed fleets (same rows, same prices)",
              "demand by dimension", "queueing estimate per instance (M/M/c, Erlang C, configured fleet)")
    for title, (head, rows) in zip(titles, (plan.plan_table(), plan.cost_table(), plan.dimension_table(),
                                            plan.queueing_table()), strict=True):
        table = Table(title=title, title_justify="left")
        for i, col in enumerate(head):  # cells never truncate; headers may wrap
            text = i == 0 or col in ("dimension", "binding", "instance type")
            table.add_column(col, justify="left" if text else "right",
                             min_width=max(len(row[i]) for row in rows))
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    for finding in sorted(plan.findings, key=lambda f: f.severity != "critical"):
        label = "[bold red]CRITICAL[/]" if finding.severity == "critical" else "[bold yellow]WARN[/]"
        console.print(f"{label} {escape(finding.component)} {escape(finding.dimension)}: "
                      f"{escape(finding.message)}", highlight=False)
    short = plan.unholdable()
    if short:
        console.print(f"[bold red]cannot hold as configured:[/] {escape(', '.join(short))}", highlight=False)
    console.print(f"wrote {out_dir}/size.json, size.md", highlight=False)


@app.command()
def diagram(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
            set_: SetOpt = []) -> None:  # noqa: B006
    """Print the topology as a Mermaid flowchart (enabled components, counts, calls)."""
    sc = _load(scenario, set_)
    typer.echo(mermaid(sc), nl=False)


@app.command()
def flows(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
          set_: SetOpt = []) -> None:  # noqa: B006
    """Print the components and every flow's steps (a design's, or the messaging sections' flows)."""
    from sim.system.compile import system_of
    from sim.system.describe import describe

    typer.echo(describe(system_of(_load(scenario, set_))), nl=False)


@app.command()
def serve(
    scenario: Annotated[Path | None, typer.Argument(
        metavar="SCENARIO", help="Scenario YAML the page opens first (default: messaging-1m).")] = None,
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to bind (127.0.0.1: this machine only).")]
        = "127.0.0.1",
    port: Annotated[str, _opt("PORT", help="Port to listen on.")] = "8000",
    runs_dir: Annotated[Path, typer.Option(
        "--runs-dir", metavar="FOLDER", help="Where each finished run's folder goes.")] = Path("reports/web"),
) -> None:
    """Start the local web app: pick or upload a design, turn knobs, run and watch it live, compare
    runs, download the YAML and report.html."""
    import uvicorn

    from sim.web import create_app

    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        _fail(f"--port {port}: allowed: a whole number 1 to 65535")
    if scenario is not None:
        _load(scenario, [])  # a bad scenario: one line, exit 2, before the server starts
    scenarios_dir = Path(__file__).resolve().parent / "scenarios"
    if not scenarios_dir.is_dir():
        scenarios_dir = Path("scenarios")
    try:
        web = create_app(runs_dir, scenarios_dir, default_scenario=scenario)
    except OSError as exc:
        _fail(f"--runs-dir {runs_dir}: cannot use it ({exc.strerror or exc}); allowed: a writable folder")
    shown = f"[{host}]" if ":" in host else host
    console.print(f"capsim serve: http://{shown}:{number}/", markup=False, highlight=False)
    uvicorn.run(web, host=host, port=number, log_level="warning")


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(
        metavar="SCENARIO", help="Scenario YAML file (may have a sweep: section).")],
    set_: Annotated[list[str], _opt("PATH=V1,V2,...",
        "--set", help="path=v1,v2,... sweeps a path; path=value fixes it (repeatable).")] = [],  # noqa: B006
    replications: Annotated[str | None, _opt("N", help="Replications per point (CIs from 2 up).")] = None,
    workers: Annotated[str | None, _opt("N", help="Local processes (default: all cores).")] = None,
    dask_scheduler: Annotated[str | None, _opt("tcp://HOST:PORT",
        "--dask-scheduler", help="Run on a Dask cluster at tcp://host:port (needs the dask extra).")] = None,
    metric: Annotated[list[str], _opt("FIGURE",
        "--metric", help="summary.json figure to chart, e.g. latency_ms.read.p99 (repeatable).")] = [],  # noqa: B006
    duration: Annotated[str | None, _opt("SECONDS", help="Simulated seconds per run.")] = None,
    warmup: Annotated[str | None, _opt("SECONDS|auto", help="Warm-up seconds, or auto (MSER-5).")] = None,
    seed: Annotated[str | None, _opt("N", help="Base seed (every point shares its seeds).")] = None,
    sample: Annotated[str | None, _opt("F", help="Fraction F of users, traffic and fleets.")] = None,
    out: Annotated[Path | None, _opt("FOLDER", help=OUT_HELP.format(default="NAME/sweep-TIME"))] = None,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option(metavar="", help="No progress bar.")] = False,
    engine: EngineOpt = DEFAULT_ENGINE,
) -> None:
    """Run a scenario over a grid of settings; write sweep.csv, sweep.md and charts (each figure
    against the swept parameter with CI bands and SLO lines; cost against latency with the Pareto
    front and the cheapest point that meets every SLO)."""
    from sim.experiments.sweep import plan_sweep, run_sweep

    reps = _count(replications, "--replications")
    warmup = _fit_warmup([scenario], set_, duration, warmup)
    options = _options(duration_s=duration, warmup_s=warmup, seed=seed, sample=sample)
    try:
        plan = plan_sweep(scenario, set_, options, metric, reps)
    except ScenarioError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    runnable = [(p, sc) for p, sc in zip(plan.points, plan.scenarios, strict=True)
                if isinstance(sc, Scenario)]
    # auto: one engine for every point, so points differ by their settings only (sim.engines.choose_all)
    named = [(f"point #{p.index}", sc) for p, sc in runnable] or [("it", plan.base)]
    engine, why = _pick_engine(engine, named)
    checked = [sc for _, sc in named] if why is not None else [plan.base, *(sc for _, sc in runnable)]
    _check_engine(engine, checked)  # auto's pick runs what it was chosen for; the base is not run itself
    memory = _check_budget(engine, [sc for _, sc in runnable], force,
                           [f"sweep point #{p.index} ({p.label})" for p, _ in runnable])
    _check_out(out)
    executor = _executor(workers, dask_scheduler, memory * (plan.replications or 1))
    _say_engine(why, engine)
    console.print(f"[bold]{plan.base.name}[/]: sweeping {len(plan.points)} points ("
                  + " x ".join(f"{k}: {len(v)}" for k, v in plan.axes.items())
                  + f"), {plan.replications or 1} run(s) each, on {executor.name}", highlight=False)
    with _experiment_progress(quiet, len(plan.points)) as tick:
        try:
            result = run_sweep(plan, executor, tick, engine, force)
        except ScenarioError as exc:  # e.g. the Dask scheduler cannot be reached
            _fail(str(exc))
            raise
    with _staged(out, Path("reports") / plan.base.name, "sweep-", "the sweep") as staged:
        paths = result.write(staged.path)
    out_dir = staged.final
    table = Table(title=f"{plan.base.name} — sweep (mean [95% CI] over replications)", title_justify="left")
    for col in ("#", *plan.axes, *plan.metrics, "cost USD/mo", "SLOs", "capacity (size)"):
        table.add_column(col, justify="left" if col in ("SLOs", "capacity (size)", *plan.axes) else "right")
    for p in result.points:
        if not p.ok:
            table.add_row(str(p.index), *(escape(p.params[k]) for k in plan.axes),
                          *("-" for _ in plan.metrics), "-", "[bold red]failed[/]", "-")
            continue
        verdicts = result.verdicts(p)
        slo_text = ", ".join(f"{v}" for v in verdicts.values()) or "-"
        cost = result.figure(p, "cost.total_monthly_usd")["mean"]
        short = result.short_reasons(p)  # capsim size: short or unstable, never the cheapest
        capacity = f"[bold red]{escape('; '.join(short))}[/]" if short else "holds"
        table.add_row(str(p.index), *(escape(p.params[k]) for k in plan.axes),
                      *(result.cell(p, m) for m in plan.metrics), _fmt(cost), escape(slo_text), capacity)
    console.print(table)
    for p in result.points:
        if not p.ok:
            console.print(f"[bold red]point #{p.index} failed[/] ({escape(p.label)}): "
                          f"{escape(p.error or '')}", highlight=False)
    cheapest = result.cheapest_meeting()
    if plan.base.slo:
        short = any(result.short_reasons(p) for p in result.points if p.ok)
        if cheapest is None:
            meeting = any(result.meets_all(p) for p in result.points)
            console.print("[bold red]no point meets every SLO[/]" if not meeting else
                          "[bold red]no point that meets every SLO holds[/]: capsim size finds each short or "
                          "unstable (the capacity column)", highlight=False)
        else:
            cost = result.figure(cheapest, "cost.total_monthly_usd")["mean"]
            console.print(f"[green]cheapest point meeting every SLO[/]"
                          f"{' that capsim size finds neither short nor unstable' if short else ''}: "
                          f"#{cheapest.index} ({escape(cheapest.label)}), {_fmt(cost)} USD/month",
                          highlight=False)
    console.print(f"wrote {out_dir}/ ({', '.join(p.name for p in paths.values())})", highlight=False)
    if not any(p.ok for p in result.points):
        raise typer.Exit(1)


@app.command()
def compare(
    scenario_a: Annotated[Path, typer.Argument(metavar="SCENARIO_A", help="Scenario A (YAML).")],
    scenario_b: Annotated[Path | None, typer.Argument(
        metavar="SCENARIO_B", help="Scenario B; omit to use --a/--b on A.")] = None,
    a: Annotated[list[str], _opt(
        "PATH=VALUE", "--a", help="Override for arm A: path=value (repeatable).")] = [],  # noqa: B006
    b: Annotated[list[str], _opt(
        "PATH=VALUE", "--b", help="Override for arm B: path=value (repeatable).")] = [],  # noqa: B006
    set_: SetOpt = [],  # noqa: B006
    replications: Annotated[str | None, _opt("N", help="Replications per arm (default: 5).")] = None,
    workers: Annotated[str | None, _opt("N", help="Local processes (default: all cores).")] = None,
    dask_scheduler: Annotated[str | None, _opt("tcp://HOST:PORT",
        "--dask-scheduler", help="Run on a Dask cluster at tcp://host:port (needs the dask extra).")] = None,
    duration: Annotated[str | None, _opt("SECONDS", help="Simulated seconds per run.")] = None,
    warmup: Annotated[str | None, _opt("SECONDS|auto", help="Warm-up seconds, or auto (MSER-5).")] = None,
    seed: Annotated[str | None, _opt("N", help="Base seed, shared by both arms.")] = None,
    sample: Annotated[str | None, _opt("F", help="Fraction F of users, traffic and fleets.")] = None,
    out: Annotated[Path | None, _opt("FOLDER", help=OUT_HELP.format(default="A/compare-TIME"))] = None,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option(metavar="", help="No progress bar.")] = False,
    engine: EngineOpt = DEFAULT_ENGINE,
) -> None:
    """Run two designs with common random numbers; print the headline figures (and any that differ
    significantly) side by side with the difference and its 95% CI, mark SLO verdicts that change,
    draw both latency CDFs; every figure goes to compare.md and compare.csv."""
    from sim.experiments.compare import DEFAULT_REPLICATIONS, plan_compare, run_compare

    reps = _count(replications, "--replications") or DEFAULT_REPLICATIONS
    if reps < 2:
        _fail(f"--replications {reps}: a difference needs an interval; allowed: 2 or more")
    warmup = _fit_warmup([p for p in (scenario_a, scenario_b) if p is not None], set_, duration, warmup)
    options = _options(duration_s=duration, warmup_s=warmup, seed=seed, sample=sample)
    try:
        arms = plan_compare(scenario_a, scenario_b, set_, a, b, options)
    except ScenarioError as exc:
        _fail(str(exc))
        raise
    engine, why = _pick_engine(engine, [("arm A", arms.a), ("arm B", arms.b)])  # one engine: common numbers
    _check_engine(engine, [arms.a, arms.b])
    memory = _check_budget(engine, [arms.a, arms.b], force, ["arm A", "arm B"])
    _check_out(out)
    executor = _executor(workers, dask_scheduler, memory * reps)
    _say_engine(why, engine)
    console.print(f"comparing {escape(arms.labels[0])} with {escape(arms.labels[1])}: {reps} replications "
                  f"each, common random numbers, on {executor.name}", highlight=False)
    with _experiment_progress(quiet, 2) as tick:
        try:
            comparison = run_compare(arms, reps, executor, tick, engine, force)
        except ScenarioError as exc:
            _fail(str(exc))
            raise
        except RuntimeError as exc:  # an arm failed to run
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None
    for note in arms.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    from sim.report.compare_table import select_rows, terminal_table

    changed = {row[0] for row in comparison.slo_changes() if row[3]}
    slo_metric = {(s.name or s.metric): s.metric for s in comparison.slos()}
    changed_metrics = {slo_metric[name] for name in changed}
    all_rows = comparison.rows()
    console.print(terminal_table(all_rows, changed_metrics, escape(
        f"{arms.labels[0]} vs {arms.labels[1]}: means of {reps} replications, B - A paired")))
    hidden = len(all_rows) - len(select_rows(all_rows, changed_metrics))
    more = f"; {hidden} more figures, none significantly different, in compare.md" if hidden else ""
    console.print(f"n.s.: not significant, the 95% CI of B - A includes 0{more}", highlight=False)
    for name, va, vb, moved in comparison.slo_changes():
        style = "bold red" if moved else "green"
        console.print(f"[{style}]SLO {escape(name)}[/]: A {va}, B {vb}{' (changes)' if moved else ''}",
                      highlight=False)
    with _staged(out, Path("reports") / arms.a.name, "compare-", "the comparison") as staged:
        paths = comparison.write(staged.path)
    out_dir = staged.final
    console.print(f"wrote {out_dir}/ ({', '.join(p.name for p in paths.values())})", highlight=False)


def _check_budget(engine: str, scenarios: list[Scenario], force: bool,
                  labels: list[str] | None = None) -> list[float]:
    """Refuse (one line, exit 2) a run whose work estimate exceeds the engine's budget (unless --force)
    or whose memory estimate exceeds the machine's bound (always): sim/budget.py. Returns each
    scenario's memory estimate (bytes)."""
    from sim.budget import check_budget

    memory = []
    for i, sc in enumerate(scenarios):
        try:
            memory.append(check_budget(sc, engine, force=force).memory_bytes)
        except ScenarioError as exc:
            _fail(f"{labels[i]}: {exc}" if labels else str(exc))
    return memory


def _check_out(out: Path | None) -> None:
    """An explicit --out must be new or empty: checked before any work, and again when publishing."""
    if out is not None:
        try:
            check_target(out)
        except ScenarioError as exc:
            _fail(str(exc))


@contextmanager
def _staged(out: Path | None, root: Path, prefix: str, what: str) -> Iterator[Staged]:
    """Write into a staging folder and publish it as --out, or as a fresh `root/<prefix><time>`
    (sim/run_folder.py); a failure removes the staging folder and fails in one line."""
    target = out if out is not None else default_target(root, prefix)
    try:
        with fresh_folder(target, explicit=out is not None) as staged:
            yield staged
    except ScenarioError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"--out {target}: cannot write {what} ({exc.strerror or exc}); allowed: a writable folder")


def _fit_warmup(paths: list[Path], sets: list[str], duration: str | None, warmup: str | None) -> str | None:
    """--duration given without --warmup: if a scenario's own warm-up is not below that duration, the
    warm-up becomes 20% of it, said in one printed line. An explicit --warmup (or --set warmup_s /
    duration_s) is left alone, so --warmup >= --duration is still an error."""
    if duration is None or warmup is not None:
        return warmup
    if any(item.partition("=")[0].strip() in ("warmup_s", "duration_s") for item in sets):
        return warmup
    try:
        seconds = float(duration)
    except ValueError:
        return warmup  # _load gives the one-line error
    if not (math.isfinite(seconds) and seconds > 0):
        return warmup
    own: list[float] = []
    for path in paths:
        try:
            base = load_scenario(path)
        except ScenarioError:
            return warmup  # the command's own loading reports it
        if base.warmup_s != "auto":
            own.append(base.warmup_s)
    if not own or max(own) < seconds:
        return warmup
    scaled = 0.2 * seconds
    console.print(f"warm-up: {scaled:g} s, 20% of --duration {seconds:g} (the scenario's {max(own):g} s is "
                  "not below it; --warmup sets it)", markup=False, highlight=False)
    return repr(scaled)


def _count(text: str | None, flag: str) -> int | None:
    """A whole number >= 1 given as text (so a bad value gets the one-line error), or None."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        _fail(f"{flag} {text}: allowed: a whole number >= 1")
    return value


def _options(**fields: str | None) -> list[str]:
    """Run options as overrides (`duration_s=20`), checked with the scenario like --set values."""
    return [f"{key}={value}" for key, value in fields.items() if value is not None]


def _executor(workers: str | None, dask_scheduler: str | None, runs_memory: list[float]) -> Executor:
    """Dask at --dask-scheduler, or local processes: --workers (default: every core), fewer when the
    runs' memory estimates (`runs_memory`, one per run) would not fit this machine together."""
    from sim.budget import machine_memory_bytes, runs_at_once
    from sim.experiments import make_executor

    if dask_scheduler is not None and workers is not None:
        _fail("--workers and --dask-scheduler: choose one (Dask workers are the cluster's)")
    count = _count(workers, "--workers")
    if dask_scheduler is None:
        count, why = runs_at_once(runs_memory, count or os.cpu_count() or 1, machine_memory_bytes())
        if why is not None:
            console.print(why, highlight=False)
    executor = make_executor(count, dask_scheduler)
    connect = getattr(executor, "connect", None)
    if connect is not None:  # an unreachable scheduler is bad input, reported before any work
        try:
            connect()
        except ScenarioError as exc:
            _fail(str(exc))
    return executor


@contextmanager
def _experiment_progress(quiet: bool, points: int = 1) -> Iterator[Callable[[Any], None]]:
    """A progress bar over points (and runs) for sim.experiments; yields its callback."""
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total:.0f} points"),
                  TextColumn("{task.fields[runs]}"), TimeElapsedColumn(), console=err_console, disable=quiet,
                  transient=True) as bar:
        task = bar.add_task("running", total=points, runs="")

        def tick(p: Any) -> None:
            phase = "warm-up pilots" if p.phase == "pilot" else "running"
            bar.update(task, completed=p.points_done, total=p.points_total, description=phase,
                       runs=f"runs {p.runs_done}/{p.runs_total}")

        yield tick


def _print_intervals(summary: dict[str, Any]) -> None:
    """For replicated runs: the headline figures' 95% CIs; for warmup auto: the cut."""
    warm = summary.get("warmup")
    if isinstance(warm, dict) and warm.get("mode") == "auto":
        rough = "" if warm.get("reliable") else f" [yellow](rough: {escape('; '.join(warm['notes']))})[/]"
        console.print(f"warm-up (auto, MSER-5): cut {warm['cut_s']:g} s of {warm['windows']} windows{rough}",
                      highlight=False)
    ci = summary.get("ci95")
    reps = (summary.get("replications") or {}).get("count")
    if not ci:
        return
    table = Table(title=f"95% confidence intervals over {reps} replications (Student t)",
                  title_justify="left")
    for col in ("figure", "point value", "replication mean", "95% CI"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    from sim.slo import lookup

    means = summary["replications"]["mean"]
    for path, (low, high) in ci.items():
        if path.startswith("components."):
            continue  # per-component intervals are in summary.json
        table.add_row(path, _fmt(lookup(summary, path)), _fmt(means.get(path)),
                      f"[{_fmt(low)}, {_fmt(high)}]")
    console.print(table)


def _warmup_text(sc: Scenario) -> str:
    return "warm-up auto (MSER-5)" if sc.warmup_s == "auto" else f"{sc.warmup_s:g} s warm-up"


def _sample_line(sc: Scenario) -> str:
    if sc.sample >= 1:
        return f"[bold]{sc.name}[/]: full scale, {sc.duration_s:g} s simulated ({_warmup_text(sc)})"
    return (f"[bold]{sc.name}[/]: sample F={sc.sample:g} (that share of users, traffic and every fleet), "
            f"{sc.duration_s:g} s simulated ({_warmup_text(sc)}); fleet-wide rates scaled by 1/F; what the "
            f"cell cannot show (hottest keys, fleets off their per-instance load) follows the results")


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _print_summary(result: Result) -> None:
    s = result.summary
    table = Table(title=f"{s['scenario']} — latency and availability", title_justify="left")
    for col in ("operation", "offered/s", "throughput/s", "p50 ms", "p99 ms", "p99.9 ms", "availability"):
        table.add_column(col, justify="right" if col != "operation" else "left")
    for op in s["latency_ms"]:  # the run's flows
        lat = s["latency_ms"][op]
        avail = s["availability"].get(op)
        table.add_row(op, _fmt(s["offered_per_sec"].get(op)), _fmt(s["throughput_per_sec"][op]),
                      _fmt(lat["p50"]), _fmt(lat["p99"]), _fmt(lat["p999"]),
                      "-" if avail != avail or avail is None else f"{avail:.5%}")
    console.print(table)
    comp = Table(title="components (per-instance figures as simulated)", title_justify="left")
    for col in ("component", "count", "in cell", "util mean", "util max", "P(wait)", "wait mean ms",
                "wait p99 ms", "ops/s (fleet)", "rejected"):
        comp.add_column(col, justify="right" if col != "component" else "left", no_wrap=col == "component")
    for name, c in s["components"].items():
        p_wait = c.get("p_wait")
        comp.add_row(name, str(c["instances"]), str(c["simulated_instances"]),
                     f"{c['utilization_mean']:.1%}", f"{c['utilization_max']:.1%}",
                     "-" if p_wait is None or p_wait != p_wait else f"{p_wait:.1%}",
                     _fmt(c.get("queue_wait_ms_mean")), _fmt(c["queue_wait_ms_p99"]), _fmt(c["ops_per_sec"]),
                     str(c["rejected"]))
    console.print(comp)
    extras = []
    if s["cache"]:
        cache = s["cache"]
        extras.append(f"cache hit ratio {cache['hit_ratio']:.3f} (model {cache['model_hit_ratio']:.3f})")
    if s["kafka"]:
        extras.append(f"Kafka consumer lag max {s['kafka']['consumer_lag_max_s'] * 1e3:.1f} ms")
    if s["errors"]:
        extras.append("errors: " + ", ".join(f"{k}={v}" for k, v in s["errors"].items()))
    extras.append(f"{s['events']:,} events in {s['wall_seconds']:.1f} s wall")
    for line in extras:
        console.print(line, highlight=False)


def main() -> None:
    try:
        app()
    except ScenarioError as exc:  # pragma: no cover - commands catch their own
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
