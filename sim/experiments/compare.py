"""Comparisons: two designs run with common random numbers, every headline figure side by side.

The arms are two scenario files, or one scenario with two sets of overrides (`--a key=value`,
`--b key=value`). Both run R replications with the *same* seeds (B takes A's seed), so
replication k of A and of B see the same arrivals, users, conversations and service-time draws
wherever the two designs draw them alike (the engine keeps one random stream per purpose). The
difference B - A is then estimated from the R paired differences (Student t, R - 1 degrees of
freedom), which cancels the noise the arms share: a much narrower interval than two
independent runs would give.

For every headline figure (sim/experiments/figures.py) the table shows A and B (mean over
replications), B - A with its 95% CI and the relative change, and whether the interval excludes
zero; SLO verdicts (of either scenario's `slo:`) that change between the arms are marked. The
chart puts both arms' latency CDFs (merged over replications) on one axis.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.engines import DEFAULT_ENGINE
from sim.errors import ScenarioError
from sim.experiments.executors import Executor, LocalExecutor
from sim.experiments.figures import headline_paths, label_of
from sim.experiments.replications import Replicated, slo_status
from sim.experiments.runner import PointFailure, ProgressFn, run_points
from sim.experiments.stats import Interval, is_quantile, paired_interval, paired_quantile_interval
from sim.jsonsafe import json_safe
from sim.loading import load_scenario
from sim.sampling import require_following
from sim.scenario import Scenario, Slo

DEFAULT_REPLICATIONS = 5
SATURATED = 0.98  # utilization of a fleet's busiest instance that counts as saturated


@dataclass(frozen=True)
class Arms:
    a: Scenario
    b: Scenario
    labels: tuple[str, str]
    notes: tuple[str, ...] = ()


def plan_compare(path_a: str | Path, path_b: str | Path | None = None, sets: Sequence[str] = (),
                 a_sets: Sequence[str] = (), b_sets: Sequence[str] = (), options: Sequence[str] = ()) -> Arms:
    """The two arms: two files, or one file with `--a`/`--b` overrides; B runs with A's seed.

    Raises ScenarioError (exit 2) when the sample cell cannot follow a fleet count the arms differ
    in (sim.sampling.require_following): both arms would simulate the same instances.
    """
    notes: list[str] = []
    if path_b is None and not (a_sets or b_sets):
        raise ScenarioError("compare", "one scenario needs --a key=value and/or --b key=value to make two "
                                       "arms; or give two scenario files")

    def load(path: str | Path, arm_sets: Sequence[str], flag: str) -> Scenario:
        overrides = [*sets, *arm_sets, *options]
        origins = [*(f"--set {s}" for s in sets), *(f"--{flag} {s}" for s in arm_sets),
                   *(f"--{o.partition('=')[0].removesuffix('_s')} {o.partition('=')[2]}" for o in options)]
        return load_scenario(path, overrides, origins=origins)

    a = load(path_a, a_sets, "a")
    b = load(path_b if path_b is not None else path_a, b_sets, "b")
    if b.seed != a.seed:
        notes.append(f"B's seed {b.seed} replaced by A's seed {a.seed}: both arms share their replication "
                     "seeds (common random numbers)")
        b = b.model_copy(update={"seed": a.seed})
    if path_b is None:
        labels = (f"A ({', '.join(a_sets)})" if a_sets else f"A ({a.name})",
                  f"B ({', '.join(b_sets)})" if b_sets else f"B ({b.name})")
    else:
        names = (Path(path_a).stem, Path(path_b).stem)
        labels = (f"A ({names[0]})", f"B ({names[1]})")
    require_following([a, b], list(labels), "comparison")
    return Arms(a, b, labels, tuple(notes))


@dataclass(frozen=True)
class Row:
    metric: str
    a: Interval
    b: Interval
    diff: Interval  # B - A, paired

    @property
    def relative(self) -> float:
        return self.diff.mean / self.a.mean if self.a.mean else math.nan

    @property
    def identical(self) -> bool:
        """Equal in every replication pair (the designs do not touch this figure)."""
        return self.diff.n > 0 and self.diff.low == self.diff.high == 0.0

    @property
    def verdict(self) -> str:
        """'B higher', 'B lower', 'no significant difference', 'identical' in every pair, or
        'no interval' (R < 2)."""
        if self.identical:
            return "identical"
        if not (math.isfinite(self.diff.low) and math.isfinite(self.diff.high)):
            return "no interval"
        if self.diff.low > 0:
            return "B higher"
        if self.diff.high < 0:
            return "B lower"
        return "no significant difference"


@dataclass
class Comparison:
    arms: Arms
    a: Replicated
    b: Replicated
    executor: str

    @property
    def labels(self) -> tuple[str, str]:
        return self.arms.labels

    def rows(self) -> list[Row]:
        """Every headline figure both arms have, in A's order."""
        in_b = set(headline_paths(self.b.summary, self.b.scenario))
        paths = [p for p in headline_paths(self.a.summary, self.a.scenario) if p in in_b]
        paths += [s.metric for s in self.slos() if s.metric not in paths]
        return [Row(p, self.a.interval(p), self.b.interval(p), self.difference(p)) for p in paths]

    def difference(self, path: str) -> Interval:
        """B - A over paired replications; for a quantile, at least as wide as the two estimates'
        histogram buckets allow."""
        diff = paired_interval(self.a.values(path), self.b.values(path))
        if is_quantile(path):
            return paired_quantile_interval(diff, self.a.interval(path), self.b.interval(path))
        return diff

    def slos(self) -> list[Slo]:
        """Either scenario's SLOs (the same objective once)."""
        seen: dict[tuple[str, float | None, float | None], Slo] = {}
        for slo in [*self.a.scenario.slo, *self.b.scenario.slo]:
            seen.setdefault((slo.metric, slo.max, slo.min), slo)
        return list(seen.values())

    def saturation(self) -> list[str]:
        """A warning per arm whose busiest instance of a fleet was busy all the time: its queue grows
        for as long as the run lasts, so that arm's latencies measure the run length and queue
        limits, not a steady state."""
        out = []
        for label, rep in zip(self.labels, (self.a, self.b), strict=True):
            full = [f"{name} ({c.get('utilization_max', 0):.0%} busy)"
                    for name, c in (rep.summary.get("components") or {}).items()
                    if isinstance(c, dict) and (c.get("utilization_max") or 0) >= SATURATED]
            if full:
                out.append(f"{label} saturates {', '.join(full)}: its queues grow while the run lasts, so "
                           "its latencies reflect the run length and queue limits rather than a steady state")
        return out

    def slo_changes(self) -> list[tuple[str, str, str, bool]]:
        """(SLO name, verdict A, verdict B, changed) with verdicts on the replication means."""
        out = []
        for slo in self.slos():
            va, vb = slo_status(self.a, slo), slo_status(self.b, slo)
            out.append((slo.name or slo.metric, va, vb, va.rstrip("*") != vb.rstrip("*")))
        return out

    def table(self) -> pd.DataFrame:
        """compare.csv: one row per figure."""
        slo_by_metric = {slo.metric: slo for slo in self.slos()}
        rows = []
        for r in self.rows():
            slo = slo_by_metric.get(r.metric)
            rows.append({
                "metric": r.metric, "a_mean": r.a.mean, "a_ci95_low": r.a.low, "a_ci95_high": r.a.high,
                "b_mean": r.b.mean, "b_ci95_low": r.b.low, "b_ci95_high": r.b.high,
                "diff_mean": r.diff.mean, "diff_ci95_low": r.diff.low, "diff_ci95_high": r.diff.high,
                "relative_diff": r.relative, "verdict": r.verdict,
                "slo_a": slo_status(self.a, slo) if slo else "",
                "slo_b": slo_status(self.b, slo) if slo else "",
                "replications": self.a.replications,
            })
        return pd.DataFrame(rows)

    def markdown(self, chart: Path | None = None, out_dir: Path | None = None, heading: str = "#",
                 brief: bool = True) -> str:
        """The comparison as Markdown; `brief` leaves out figures equal in every pair."""
        la, lb = self.labels
        reps = self.a.replications
        lines = [f"{heading} {la} vs {lb}", "",
                 f"{reps} replications per arm with common random numbers (the same {reps} seeds, spawned "
                 f"from seed {self.a.scenario.seed}); {self.a.scenario.duration_s:g} s simulated per run, "
                 f"warm-up {self.a.scenario.warmup_s:g} s (A) / {self.b.scenario.warmup_s:g} s (B); "
                 f"executor: {self.executor}. A and B are means over replications with their 95% CI; "
                 "B - A is the mean paired difference with its 95% CI (Student t).", ""]
        notes = [*self.arms.notes, *self.saturation()]
        lines += [f"Note: {n}." for n in notes] + ([""] if notes else [])
        changes = [c for c in self.slo_changes() if c[3]]
        if self.slos():
            lines += ["SLO verdicts (on the means): " + "; ".join(
                f"{'**' if changed else ''}{name}: {va} -> {vb}{'**' if changed else ''}"
                for name, va, vb, changed in self.slo_changes()) + "."]
            if changes:
                lines.append(f"{len(changes)} SLO verdict(s) change between the arms (in bold).")
            if any(v.endswith("*") for _n, va, vb, _c in self.slo_changes() for v in (va, vb)):
                lines.append("`*`: the verdict of the mean over replications; its 95% CI reaches across "
                             "the bound.")
            lines.append("")
        lines += ["| figure | A | B | B - A [95% CI] | change | |", "|---|---|---|---|---|---|"]
        changed_metrics = {slo.metric for slo in self.slos()
                           if slo_status(self.a, slo).rstrip("*") != slo_status(self.b, slo).rstrip("*")}
        rows = self.rows()
        shown = [r for r in rows if not r.identical or r.metric in changed_metrics or not brief]
        for r in shown:
            rel = f"{r.relative:+.1%}" if math.isfinite(r.relative) else "-"
            mark = "SLO verdict changes" if r.metric in changed_metrics else ""
            cells = (label_of(r.metric), format_interval(r.a), format_interval(r.b),
                     format_interval(r.diff, signed=True), f"{rel}, {r.verdict}", mark)
            lines.append("| " + " | ".join(cells) + " |")
        if len(shown) < len(rows):
            hidden = [r.metric for r in rows if r not in shown]
            lines += ["", f"Equal in every replication pair, so not shown (the two designs do not touch "
                          f"{'it' if len(hidden) == 1 else 'them'}; see the CSV): {', '.join(hidden)}."]
        lines.append("")
        if chart is not None:
            inside = out_dir is not None and chart.is_relative_to(out_dir)
            lines += [f"![latency CDFs, {la} vs {lb}]({chart.relative_to(out_dir) if inside else chart})", ""]
        return "\n".join(lines)

    def write(self, out_dir: str | Path, name: str = "compare") -> dict[str, Path]:
        """compare.md, compare.csv, the CDF chart and both arms' point summaries in `out_dir`."""
        from sim.experiments.charts import cdf_comparison_chart

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {"csv": out / f"{name}.csv", "md": out / f"{name}.md",
                                  "json": out / f"{name}.json"}
        self.table().to_csv(paths["csv"], index=False)
        chart = cdf_comparison_chart(self.a.histograms, self.b.histograms, self.labels,
                                     out / f"{name}_latency_cdf.png",
                                     f"latency CDF per operation: {self.labels[0]} vs {self.labels[1]} "
                                     f"({self.a.replications} replications each, merged)")
        if chart is not None:
            paths["chart"] = chart
        paths["md"].write_text(self.markdown(chart, out) + "\n", encoding="utf-8")
        payload: dict[str, Any] = {"labels": list(self.labels), "notes": list(self.arms.notes),
                                   "a": self.a.summary, "b": self.b.summary}
        paths["json"].write_text(json.dumps(json_safe(payload), indent=2) + "\n", encoding="utf-8")
        return paths


def run_compare(arms: Arms, replications: int = DEFAULT_REPLICATIONS, executor: Executor | None = None,
                progress: ProgressFn | None = None, engine: str = DEFAULT_ENGINE,
                force: bool = False) -> Comparison:
    """Run both arms with the same replication seeds; raise RuntimeError naming a failed arm."""
    executor = executor or LocalExecutor()
    a, b = run_points([arms.a, arms.b], replications, executor, progress, engine, force)
    for label, arm in zip(arms.labels, (a, b), strict=True):
        if isinstance(arm, PointFailure):
            raise RuntimeError(f"{label} failed: {arm.error}")
    assert isinstance(a, Replicated) and isinstance(b, Replicated)
    return Comparison(arms, a, b, executor.name)


def format_interval(iv: Interval, signed: bool = False) -> str:
    def num(x: float) -> str:
        if not math.isfinite(x):
            return "-"
        text = f"{x:,.0f}" if abs(x) >= 1000 else (f"{x:.4g}" if abs(x) < 1 else f"{x:.3g}")
        return f"+{text}" if signed and x > 0 else text

    if not math.isfinite(iv.low):
        return num(iv.mean)
    return f"{num(iv.mean)} [{num(iv.low)}, {num(iv.high)}]"
