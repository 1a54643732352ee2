"""capsim's command line: a thin typer layer over the Python API in `sim`."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim import ScenarioError, load_scenario, simulate
from sim.diagram import mermaid
from sim.report import write_report
from sim.result import Result
from sim.scenario import Scenario
from sim.sizing import size_plan

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="capsim: simulate a messaging system's capacity, latency and availability.")
console = Console(width=120)
err_console = Console(stderr=True, width=120)


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2. The message is printed literally (no markup)."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    err_console.print(f"[bold red]error:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)
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


SetOpt = Annotated[list[str], typer.Option("--set", help="Override a field: dotted.path=value (repeatable).")]


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
             set_: SetOpt = []) -> None:  # noqa: B006 - typer reads the default
    """Check a scenario against the schema without simulating."""
    sc = _load(scenario, set_)
    console.print(f"[green]ok[/]: {scenario} ({sc.name}) is a valid scenario")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    # numbers arrive as text so that a bad value gets capsim's one-line error, not click's usage box
    duration: Annotated[str | None, typer.Option(help="Simulated seconds (warm-up included).")] = None,
    warmup: Annotated[str | None, typer.Option(help="Seconds discarded before measuring.")] = None,
    seed: Annotated[str | None, typer.Option(help="Random seed (same seed, same numbers).")] = None,
    sample: Annotated[str | None, typer.Option(help="Fraction F of users, traffic and fleets.")] = None,
    set_: SetOpt = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Output folder [reports/<scenario>/<time>/].")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Simulate a scenario; write summary.json, latency.csv, components.csv, timeseries.csv, report.md,
    report.html and the charts."""
    sc = _load(scenario, set_, duration_s=duration, warmup_s=warmup, seed=seed, sample=sample)
    console.print(_sample_line(sc))
    with Progress(TextColumn("[bold]simulating[/]"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total:.0f} simulated s"), TimeElapsedColumn(),
                  console=err_console, disable=quiet, transient=True) as bar:
        task = bar.add_task("sim", total=sc.duration_s)
        result = simulate(sc, progress=lambda t, _total: bar.update(task, completed=t))
    out_dir = out or Path("reports") / sc.name / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        result.write(out_dir)
    except OSError as exc:
        _fail(f"--out {out_dir}: cannot write the results ({exc.strerror or exc}); "
              "allowed: a writable folder")
    size_warnings: list[str] | None = None
    try:
        size_warnings = size_plan(sc).warnings
    except ScenarioError as exc:  # a sizing gap (e.g. an unpriced fleet) must not lose the report
        err_console.print(f"[yellow]report:[/] no capacity warnings ({escape(str(exc))})", highlight=False)
    try:
        report = write_report(result, out_dir, sc, size_warnings=size_warnings, diagram=mermaid(sc))
    except OSError as exc:
        _fail(f"--out {out_dir}: cannot write the report ({exc.strerror or exc}); "
              "allowed: a writable folder")
        raise  # unreachable: _fail exits
    _print_summary(result)
    for name, verdict in (result.summary.get("slo") or {}).items():
        status = verdict.get("status", "met" if verdict.get("met") else "missed")
        style = {"met": "green", "missed": "bold red"}.get(status, "yellow")
        actual = verdict.get("actual")
        shown = "-" if actual is None else f"{actual:.4g}"
        console.print(f"[{style}]SLO {status}[/]: {escape(name)} (actual {shown}, target "
                      f"{escape(str(verdict.get('target')))})", highlight=False)
    for note in result.summary["sample"]["notes"]:
        console.print(f"[yellow]sample:[/] {note}", highlight=False)
    if not result.summary["checks"]["conservation_holds"]:
        err_console.print("[bold red]conservation check failed[/]: see summary.json 'requests'")
        raise typer.Exit(1)
    console.print(f"wrote {out_dir}/", highlight=False)
    console.print(f"report: {report['report_html']} (and {report['report_md'].name}, "
                  f"{len(report) - 2} charts)", highlight=False)


@app.command()
def size(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOpt = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(help="Output folder (default reports/<scenario>/size).")] = None,
) -> None:
    """Capacity plan without simulating: demand per dimension, instances needed, cost, WARN findings."""
    sc = _load(scenario, set_)
    try:
        plan = size_plan(sc)
    except ScenarioError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits
    out_dir = out or Path("reports") / sc.name / "size"
    try:
        plan.write(out_dir)
    except OSError as exc:
        _fail(f"--out {out_dir}: cannot write the plan ({exc.strerror or exc}); allowed: a writable folder")
    titles = (f"{sc.name} — capacity plan (CPU at {plan.target_utilization:.0%}; cost: instances only)",
              "demand by dimension", "queueing estimate per instance (M/M/c, Erlang C, configured fleet)")
    for title, (head, rows) in zip(titles, (plan.plan_table(), plan.dimension_table(),
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
    for finding in plan.findings:
        console.print(f"[bold yellow]WARN[/] {escape(finding.component)} {escape(finding.dimension)}: "
                      f"{escape(finding.message)}", highlight=False)
    console.print(f"wrote {out_dir}/size.json, size.md", highlight=False)


@app.command()
def diagram(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
            set_: SetOpt = []) -> None:  # noqa: B006
    """Print the topology as a Mermaid flowchart (enabled components, counts, calls)."""
    sc = _load(scenario, set_)
    typer.echo(mermaid(sc), nl=False)


def _sample_line(sc: Scenario) -> str:
    if sc.sample >= 1:
        return f"[bold]{sc.name}[/]: full scale, {sc.duration_s:g} s simulated ({sc.warmup_s:g} s warm-up)"
    return (f"[bold]{sc.name}[/]: sample F={sc.sample:g} (that share of users, traffic and every fleet), "
            f"{sc.duration_s:g} s simulated ({sc.warmup_s:g} s warm-up); fleet-wide rates scaled by 1/F")


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _print_summary(result: Result) -> None:
    s = result.summary
    table = Table(title=f"{s['scenario']} — latency and availability", title_justify="left")
    for col in ("operation", "offered/s", "throughput/s", "p50 ms", "p99 ms", "p99.9 ms", "availability"):
        table.add_column(col, justify="right" if col != "operation" else "left")
    for op in ("send", "read", "delivery"):
        lat = s["latency_ms"][op]
        avail = s["availability"][op]
        table.add_row(op, _fmt(s["offered_per_sec"].get(op)), _fmt(s["throughput_per_sec"][op]),
                      _fmt(lat["p50"]), _fmt(lat["p99"]), _fmt(lat["p999"]),
                      "-" if avail != avail or avail is None else f"{avail:.5%}")
    console.print(table)
    comp = Table(title="components (per-instance figures as simulated)", title_justify="left")
    for col in ("component", "instances", "simulated", "util mean", "util max", "wait p99 ms",
                "ops/s (fleet)", "rejected"):
        comp.add_column(col, justify="right" if col != "component" else "left")
    for name, c in s["components"].items():
        comp.add_row(name, str(c["instances"]), str(c["simulated_instances"]),
                     f"{c['utilization_mean']:.1%}", f"{c['utilization_max']:.1%}",
                     _fmt(c["queue_wait_ms_p99"]), _fmt(c["ops_per_sec"]), str(c["rejected"]))
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
        err_console.print(f"error: {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
