"""Sweeps: run a scenario over a grid of settings and find the cheapest design that holds.

The grid is every combination of the values given per dotted path, from `--set path=v1,v2,...`
(a single value is a fixed override) or the scenario's `sweep:` section (`--set` values replace
a path's list). Each point is the base scenario with that combination applied, validated like
any scenario: an invalid combination (replication_factor above nodes, ...) is a failed point
with its one-line error, and a point whose run crashes is failed with the exception; the other
points complete. Every point runs with the same seeds (common random numbers across the grid).

`SweepResult.write(out)` writes:
- sweep.csv: one row per point and headline figure: the point's parameters, its capacity verdict
  ("holds", or "short: cassandra disk", ...), the point value (summary.json), the replication
  mean and its 95% CI bounds, the SLO bound where one applies; a failed point is one row with its
  error;
- sweep.md: the points with the chosen figures (mean [95% CI]), cost, SLO verdicts and whether
  `capsim size` finds the design short or unstable, the failed points, the Pareto front of cost
  against latency and the cheapest point that meets every SLO (a short or unstable point is on
  neither: `unholdable`);
- charts (sim/experiments/charts.py): each chosen figure against the swept parameter with CI
  bands and SLO lines, and cost against latency with the Pareto front.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.engines import DEFAULT_ENGINE
from sim.errors import ScenarioError
from sim.experiments.executors import Executor
from sim.experiments.figures import COST, headline_paths, label_of
from sim.experiments.replications import Replicated, slo_status
from sim.experiments.runner import PointFailure, ProgressFn, run_points
from sim.loading import load_scenario
from sim.sampling import require_following
from sim.scenario import Scenario, Slo
from sim.sizing import size_plan
from sim.slo import lookup
from sim.summary import figure_path_problem
from sim.system.compile import system_of


@dataclass
class SweepPoint:
    index: int
    params: dict[str, str]  # dotted path -> value as given (YAML text)
    outcome: Replicated | PointFailure | None = None

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())

    @property
    def ok(self) -> bool:
        return isinstance(self.outcome, Replicated)

    @property
    def error(self) -> str | None:
        return self.outcome.error if isinstance(self.outcome, PointFailure) else None


@dataclass
class SweepPlan:
    source: str  # the scenario file
    base: Scenario
    axes: dict[str, list[str]]
    points: list[SweepPoint]
    scenarios: list[Scenario | PointFailure]
    metrics: list[str]
    replications: int | None


def split_values(text: str) -> list[str]:
    """`48,96,[a, b],'x,y'` -> ['48', '96', '[a, b]', "'x,y'"]: commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def value_text(value: Any) -> str:
    """A YAML value as override text that parses back to the same value."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value else json.dumps(value)
    return json.dumps(value)


def parse_sets(sets: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`--set` items split into fixed overrides and swept axes (path -> values)."""
    fixed: list[str] = []
    axes: dict[str, list[str]] = {}
    for item in sets:
        if "=" not in item:
            raise ScenarioError(f"--set {item}", "no '=' in the override; expected dotted.path=value or "
                                                 "dotted.path=v1,v2,... to sweep, e.g. cassandra.nodes=48,96")
        key, _, text = item.partition("=")
        key = key.strip()
        values = split_values(text)
        if len(values) > 1:
            if any(not v for v in values):
                raise ScenarioError(f"--set {item}", "an empty value in the list; allowed: v1,v2,... each "
                                                     "non-empty")
            if key in axes:
                raise ScenarioError(f"--set {item}", f"{key} is swept twice; allowed: one --set per path")
            axes[key] = values
        else:
            fixed.append(f"{key}={text}")
    return fixed, axes


def plan_sweep(path: str | Path, sets: Sequence[str] = (), options: Sequence[str] = (),
               metrics: Sequence[str] = (), replications: int | None = None) -> SweepPlan:
    """The grid of points for `path` with `--set` items and run options (`duration_s=20`, ...).

    Raises ScenarioError (bad input, exit 2) when the base scenario is invalid, there is nothing
    to sweep, every point is invalid, or the sample cell cannot follow a swept fleet's count
    (sim.sampling.require_following); a point that is invalid on its own is a failed point.
    """
    fixed, cli_axes = parse_sets(sets)
    base = load_scenario(path, [*fixed, *options])
    axes: dict[str, list[str]] = {}
    if base.sweep is not None:
        axes = {k: [value_text(v) for v in vs] for k, vs in base.sweep.parameters.items()}
    for item in fixed:  # a fixed --set of a swept path pins it
        key = item.partition("=")[0]
        if key in axes:
            axes[key] = [item.partition("=")[2]]
    axes.update(cli_axes)
    if not axes:
        raise ScenarioError(str(path), "nothing to sweep; give --set path=v1,v2,... or a sweep: section "
                                       "with parameters")
    flows = list(base.flows) or None  # a design's figures name its own flows
    for metric in metrics:  # --metric: checked against the typed summary like sweep.metrics
        problem = figure_path_problem(metric, flows)
        if problem is not None:
            raise ScenarioError(f"--metric {metric}", problem)
    chosen = list(metrics) or (list(base.sweep.metrics) if base.sweep and base.sweep.metrics else [])
    if not chosen:
        defaults = [f"latency_ms.{flow}.p99" for flow in system_of(base).client_flows()]
        chosen = [*defaults, *(s.metric for s in base.slo)]
    chosen = list(dict.fromkeys(chosen))
    if replications is None and base.sweep is not None and base.sweep.replications > 1:
        replications = base.sweep.replications
    points, scenarios = [], []
    for i, combo in enumerate(itertools.product(*axes.values())):
        params = dict(zip(axes, combo, strict=True))
        point = SweepPoint(i, params)
        overrides = [*fixed, *options, *(f"{k}={v}" for k, v in params.items())]
        origins = [*(f"--set {o}" for o in fixed), *(f"--{o.partition('=')[0].removesuffix('_s')} "
                                                      f"{o.partition('=')[2]}" for o in options),
                   *(f"sweep point {point.label}" for _ in params)]
        try:
            scenarios.append(load_scenario(path, overrides, origins=origins))
        except ScenarioError as exc:
            failure = PointFailure(f"invalid combination: {exc}")
            scenarios.append(failure)
            point.outcome = failure
        points.append(point)
    if all(isinstance(s, PointFailure) for s in scenarios):
        first = scenarios[0]
        assert isinstance(first, PointFailure)
        raise ScenarioError("sweep", f"every point is invalid; the first: {first.error}")
    valid = [(p.label, s) for p, s in zip(points, scenarios, strict=True) if isinstance(s, Scenario)]
    require_following([s for _, s in valid], [label for label, _ in valid], "sweep")
    return SweepPlan(str(path), base, axes, points, scenarios, chosen, replications)


def unholdable(scenario: Scenario) -> list[str]:
    """Why `capsim size` says this design cannot hold, e.g. ["short: cassandra disk",
    "unstable: cassandra cpu (117%)"]; [] when it holds. A point with a reason is never the
    cheapest that meets the SLOs, nor on the Pareto front.

    The rule is sizing's own (`SizePlan.unholdable_reasons`): short on a dimension (with one zone
    lost; Redis memory aside: a cache below its working set still works, at the lower hit ratio
    the run simulates) or unstable by the M/M/c estimate. Warnings that do not stop the design
    holding (more workers than vCPUs, no Redis replicas) do not disqualify. A design that cannot be
    sized is "not sized".
    """
    try:
        plan = size_plan(scenario)
    except ScenarioError as exc:
        return [f"not sized: {exc}"]
    return plan.unholdable_reasons()


@dataclass
class SweepResult:
    plan: SweepPlan
    executor: str
    points: list[SweepPoint] = field(default_factory=list)
    _unholdable: dict[int, list[str]] = field(default_factory=dict, repr=False)

    # -- figures ------------------------------------------------------------------------------
    def slos(self) -> list[Slo]:
        return list(self.plan.base.slo)

    def figure(self, point: SweepPoint, path: str) -> dict[str, float]:
        """{value, mean, low, high} of a figure at a point (NaN where absent or no interval)."""
        rep = point.outcome
        if not isinstance(rep, Replicated):
            return {"value": math.nan, "mean": math.nan, "low": math.nan, "high": math.nan}
        value = lookup(rep.summary, path)
        iv = rep.interval(path)
        return {"value": math.nan if value is None else value, "mean": iv.mean, "low": iv.low,
                "high": iv.high}

    def verdicts(self, point: SweepPoint) -> dict[str, str]:
        """SLO name -> met / missed / not measured on the replication mean (`*`: the 95% CI reaches
        across the bound)."""
        rep = point.outcome
        if not isinstance(rep, Replicated):
            return {}
        return {slo.name or slo.metric: slo_status(rep, slo) for slo in rep.scenario.slo}

    def short_reasons(self, point: SweepPoint) -> list[str]:
        """Why `capsim size` says the point's design cannot hold ([] when it holds)."""
        if point.index not in self._unholdable:
            sc = self.plan.scenarios[point.index]
            self._unholdable[point.index] = unholdable(sc) if isinstance(sc, Scenario) else []
        return self._unholdable[point.index]

    def capacity_text(self, point: SweepPoint) -> str:
        """'holds' or the reasons it does not ("short: cassandra disk; unstable: ..."), '-' if failed."""
        if not point.ok:
            return "-"
        return "; ".join(self.short_reasons(point)) or "holds"

    def meets_all(self, point: SweepPoint) -> bool:
        v = self.verdicts(point)
        return bool(point.ok) and all(s.startswith("met") for s in v.values())

    def latency_metric(self) -> str:
        latency = [m for m in self.plan.metrics if m.startswith("latency_ms.")]
        return latency[0] if latency else "latency_ms.read.p99"

    def pareto(self) -> list[SweepPoint]:
        """Points whose design holds (`capsim size`) that no other such point beats on both cost
        and latency (lower is better), by cost."""
        lat = self.latency_metric()
        scored = []
        for p in self.points:
            if self.short_reasons(p):
                continue
            cost, latency = self.figure(p, COST)["mean"], self.figure(p, lat)["mean"]
            if math.isfinite(cost) and math.isfinite(latency):
                scored.append((cost, latency, p.index, p))
        front, best = [], math.inf
        for _cost, latency, _i, p in sorted(scored):
            if latency < best:
                front.append(p)
                best = latency
        return front

    def cheapest_meeting(self) -> SweepPoint | None:
        """The cheapest point that meets every SLO (replication means) and that `capsim size` finds
        neither short nor unstable; None if none does."""
        ok = [p for p in self.points if self.meets_all(p) and math.isfinite(self.figure(p, COST)["mean"])
              and not self.short_reasons(p)]
        return min(ok, key=lambda p: (self.figure(p, COST)["mean"], p.index)) if ok else None

    # -- tables -------------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """One row per point and headline figure (sweep.csv); a failed point is one row."""
        bounds = {s.metric: (s.max, s.min) for s in self.slos()}
        rows: list[dict[str, Any]] = []
        for p in self.points:
            head = {"point": p.index, **p.params}
            rep = p.outcome
            if not isinstance(rep, Replicated):
                rows.append({**head, "status": "failed", "metric": "", "error": p.error})
                continue
            head["capacity"] = self.capacity_text(p)
            paths = list(dict.fromkeys([*self.plan.metrics, *headline_paths(rep.summary, rep.scenario)]))
            for path in paths:
                fig = self.figure(p, path)
                slo_max, slo_min = bounds.get(path, (None, None))
                rows.append({**head, "status": "ok", "metric": path, "value": fig["value"],
                             "mean": fig["mean"], "ci95_low": fig["low"], "ci95_high": fig["high"],
                             "replications": rep.replications, "slo_max": slo_max, "slo_min": slo_min,
                             "error": ""})
        columns = ["point", *self.plan.axes, "status", "capacity", "metric", "value", "mean", "ci95_low",
                   "ci95_high", "replications", "slo_max", "slo_min", "error"]
        return pd.DataFrame(rows).reindex(columns=columns)

    def markdown(self, charts: dict[str, Path] | None = None, out_dir: Path | None = None) -> str:
        plan = self.plan
        reps = plan.replications
        lines = [f"# Sweep: {plan.base.name}", "",
                 f"Scenario `{plan.source}`; grid: " + "; ".join(f"`{k}` in {', '.join(v)}"
                                                                 for k, v in plan.axes.items())
                 + f" ({len(self.points)} points).",
                 f"{reps or 1} run(s) per point" + (" (seeds spawned from the scenario seed; figures are "
                                                    "mean [95% CI], Student t)" if reps and reps > 1 else
                                                    " (one seed: no confidence intervals)")
                 + f"; {plan.base.duration_s:g} s simulated per run; executor: {self.executor}.", ""]
        head = ["#", *plan.axes, *(label_of(m) for m in plan.metrics), "monthly cost (USD)", "SLOs",
                "capacity (capsim size)"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for p in self.points:
            cells = [str(p.index), *(p.params[k] for k in plan.axes)]
            if not p.ok:
                cells += ["-" for _ in plan.metrics] + ["-", "failed", "-"]
            else:
                cells += [self.cell(p, m) for m in plan.metrics]
                cost = self.figure(p, COST)["mean"]
                cells.append(f"{cost:,.0f}" if math.isfinite(cost) else "-")
                verdicts = self.verdicts(p)
                cells.append(", ".join(f"{n}: {v}" for n, v in verdicts.items()) or "no SLOs")
                short = self.short_reasons(p)
                cells.append(f"**{'; '.join(short)}**" if short else "holds")
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
        if any(v.endswith("*") for p in self.points for v in self.verdicts(p).values()):
            lines += ["`*`: the verdict of the mean over replications; its 95% CI reaches across the "
                      "bound.", ""]
        failed = [p for p in self.points if not p.ok]
        if failed:
            lines += ["## Failed points", ""]
            lines += [f"- #{p.index} ({p.label}): {p.error}" for p in failed]
            lines.append("")
        lines += ["## Cost against latency", ""]
        short = [p for p in self.points if p.ok and self.short_reasons(p)]
        if short:
            lines.append(f"{len(short)} point(s) that `capsim size` finds short or unstable (the capacity "
                         "column) are left out of the Pareto front and can never be the cheapest point: "
                         + "; ".join(f"#{p.index} ({self.capacity_text(p)})" for p in short) + ".")
        front = self.pareto()
        lat = self.latency_metric()
        if front:
            lines.append(f"Pareto front (no other point is both cheaper and faster on {label_of(lat)}): "
                         + "; ".join(f"#{p.index} ({p.label})" for p in front) + ".")
        cheapest = self.cheapest_meeting()
        if not self.slos():
            lines.append("The scenario has no SLOs, so every point qualifies; add `slo:` to name the "
                         "cheapest point that meets them.")
        elif cheapest is None:
            meeting = [p for p in self.points if self.meets_all(p)]
            lines.append("Cheapest point that meets every SLO: none that holds; every point meeting them ("
                         + ", ".join(f"#{p.index}" for p in meeting) + ") is short or unstable in `capsim "
                         "size` (the capacity column)." if meeting else "No point meets every SLO.")
        else:
            confident = all(v == "met" for v in self.verdicts(cheapest).values())
            lines.append(f"Cheapest point that meets every SLO: **#{cheapest.index} ({cheapest.label})**, "
                         f"{self.figure(cheapest, COST)['mean']:,.0f} USD/month"
                         + ("." if confident else " (met by the means; a 95% CI crosses a bound)."))
        lines.append("")
        for name, path in (charts or {}).items():
            rel = path.relative_to(out_dir) if out_dir is not None and path.is_relative_to(out_dir) else path
            lines += [f"![{name}]({rel})", ""]
        return "\n".join(lines)

    def cell(self, p: SweepPoint, metric: str) -> str:
        fig = self.figure(p, metric)
        if not math.isfinite(fig["mean"]):
            return "-"
        if not math.isfinite(fig["low"]):
            return _num(fig["mean"])
        return f"{_num(fig['mean'])} [{_num(fig['low'])}, {_num(fig['high'])}]"

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """sweep.csv, sweep.md and the charts in `out_dir`; {name: path}."""
        from sim.experiments import charts

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"sweep_csv": out / "sweep.csv", "sweep_md": out / "sweep.md"}
        self.table().to_csv(paths["sweep_csv"], index=False)
        drawn = charts.sweep_charts(self, out)
        paths["sweep_md"].write_text(self.markdown(drawn, out) + "\n", encoding="utf-8")
        return {**paths, **drawn}


def run_sweep(plan: SweepPlan, executor: Executor | None = None,
              progress: ProgressFn | None = None, engine: str = DEFAULT_ENGINE,
              force: bool = False) -> SweepResult:
    """Run every valid point of `plan` (its replications) and collect the outcomes (`force`: past
    the work budget, sim/budget.py)."""
    from sim.experiments.executors import LocalExecutor

    executor = executor or LocalExecutor()
    outcomes = run_points(plan.scenarios, plan.replications, executor, progress, engine, force)
    for point, outcome in zip(plan.points, outcomes, strict=True):
        point.outcome = outcome
    return SweepResult(plan, executor.name, plan.points)


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}" if abs(x) < 1 else f"{x:.3g}"
