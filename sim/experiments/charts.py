"""Charts for experiments: sweep figures against a parameter, cost against latency, and the
latency CDFs of a comparison. Same style as a run's report (sim/report/charts.py): matplotlib's
object API on the Agg canvas, titles, units and legends on every chart.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter

from sim.chart_style import OP_COLORS
from sim.chart_style import figure as _figure
from sim.chart_style import save as _save
from sim.experiments.figures import COST, label_of
from sim.histogram import Histogram

if TYPE_CHECKING:
    from sim.experiments.sweep import SweepPoint, SweepResult

_CDF_TICKS = {0.01: "p1", 0.1: "p10", 0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9", 0.9999: "p99.99"}
_SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def sweep_charts(result: SweepResult, out_dir: Path) -> dict[str, Path]:
    """One chart per chosen figure against the swept parameter, and cost against latency."""
    drawn: dict[str, Path] = {}
    for metric in result.plan.metrics:
        path = metric_chart(result, metric, out_dir / f"sweep_{_slug(metric)}.png")
        if path is not None:
            drawn[f"{metric} against {next(iter(result.plan.axes))}"] = path
    path = cost_latency_chart(result, out_dir / "cost_vs_latency.png")
    if path is not None:
        drawn["cost against latency"] = path
    return drawn


def metric_chart(result: SweepResult, metric: str, path: Path) -> Path | None:
    """`metric` (mean, 95% CI band) against the first swept parameter, one line per combination
    of the others; the SLO bound on `metric`, if any, as a dashed line."""
    axes = list(result.plan.axes)
    x_key, others = axes[0], axes[1:]
    xs_text = result.plan.axes[x_key]
    numeric = all(_number(v) is not None for v in xs_text)
    position = {v: (_number(v) if numeric else float(i)) for i, v in enumerate(xs_text)}
    series: dict[tuple[str, ...], list[SweepPoint]] = {}
    for p in result.points:
        series.setdefault(tuple(p.params[k] for k in others), []).append(p)
    if not any(math.isfinite(result.figure(p, metric)["mean"]) for p in result.points):
        return None
    reps = result.plan.replications or 1
    with _figure(9, 5) as fig:
        ax = fig.add_subplot()
        for n, (key, pts) in enumerate(series.items()):
            color = _SERIES_COLORS[n % len(_SERIES_COLORS)]
            name = ", ".join(f"{k}={v}" for k, v in zip(others, key, strict=True)) or metric
            rows = [(position[p.params[x_key]], result.figure(p, metric)) for p in pts]
            ok = [(x, f) for x, f in rows if math.isfinite(f["mean"])]
            if ok:
                x = np.array([r[0] for r in ok])
                mean = np.array([r[1]["mean"] for r in ok])
                ax.plot(x, mean, marker="o", color=color, lw=1.8, label=name)
                low = np.array([r[1]["low"] for r in ok])
                high = np.array([r[1]["high"] for r in ok])
                if np.isfinite(low).all() and np.isfinite(high).all():
                    ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0,
                                    label=f"{name}: 95% CI ({reps} replications)")
            bad = [x for x, f in rows if not math.isfinite(f["mean"])]
            if bad:
                ax.plot(bad, [0] * len(bad), marker="x", ls="none", color=color, ms=9,
                        label=f"{name}: failed point (see sweep.md)", clip_on=False)
        for slo in result.slos():
            if slo.metric == metric:
                bound = slo.max if slo.max is not None else slo.min
                ax.axhline(bound, color="#d62728", ls="--", lw=1.4,
                           label=f"SLO {'<=' if slo.max is not None else '>='} {bound:g}")
        _log_if_wide(ax, "y", [result.figure(p, metric)["mean"] for p in result.points])
        if not numeric:
            ax.xaxis.set_major_locator(FixedLocator(list(position.values())))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: next(
                (k for k, pos in position.items() if pos == v), "")))
        ax.set_xlabel(x_key)
        ax.set_ylabel(label_of(metric))
        ci = "mean and 95% CI" if reps > 1 else "one run per point"
        ax.set_title(f"{result.plan.base.name}: {label_of(metric)} against {x_key} ({ci})")
        ax.legend(loc="best", fontsize=8)
        return _save(fig, path)


def cost_latency_chart(result: SweepResult, path: Path) -> Path | None:
    """Monthly cost against latency per point; the Pareto front joined, the cheapest point that
    meets every SLO circled, the latency SLO as a dashed line."""
    lat = result.latency_metric()
    pts = [(p, result.figure(p, COST)["mean"], result.figure(p, lat)) for p in result.points if p.ok]
    pts = [(p, c, f) for p, c, f in pts if math.isfinite(c) and math.isfinite(f["mean"])]
    if not pts:
        return None
    front = result.pareto()
    cheapest = result.cheapest_meeting()
    with _figure(9, 5.5) as fig:
        ax = fig.add_subplot()
        for p, cost, f in pts:
            meets = result.meets_all(p)
            ax.scatter([f["mean"]], [cost], s=40, zorder=3, color="#2ca02c" if meets else "#7f7f7f")
            if math.isfinite(f["low"]):
                ax.errorbar([f["mean"]], [cost], xerr=[[f["mean"] - f["low"]], [f["high"] - f["mean"]]],
                            color="#7f7f7f", lw=1, capsize=3, zorder=2)
            ax.annotate(f"#{p.index}", (f["mean"], cost), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ax.scatter([], [], color="#2ca02c", label="meets every SLO" if result.slos() else "no SLOs defined")
        ax.scatter([], [], color="#7f7f7f", label="misses an SLO" if result.slos() else "point")
        if front:
            xs = [result.figure(p, lat)["mean"] for p in front]
            ax.plot(xs, [result.figure(p, COST)["mean"] for p in front], color="#1f77b4", lw=1.5, zorder=1,
                    marker="D", ms=11, mfc="none", mew=1.5,
                    label="Pareto front: no point both cheaper and faster")
        if cheapest is not None and result.slos():
            ax.scatter([result.figure(cheapest, lat)["mean"]], [result.figure(cheapest, COST)["mean"]],
                       s=260, facecolors="none", edgecolors="#d62728", lw=2, zorder=4,
                       label=f"cheapest meeting every SLO: #{cheapest.index} ({cheapest.label})")
        for slo in result.slos():
            if slo.metric == lat and slo.max is not None:
                ax.axvline(slo.max, color="#d62728", ls="--", lw=1.2,
                           label=f"SLO {label_of(lat)} <= {slo.max:g}")
        _log_if_wide(ax, "x", [f["mean"] for _p, _c, f in pts])
        several = (result.plan.replications or 1) > 1
        ax.set_xlabel(label_of(lat) + (" (mean over replications; bars: 95% CI)" if several else ""))
        ax.set_ylabel("monthly cost (USD)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
        ax.set_title(f"{result.plan.base.name}: cost against {label_of(lat)}")
        fig.legend(loc="outside lower center", ncols=2, fontsize=8)  # below: points stay visible
        return _save(fig, path)


def _log_if_wide(ax: Any, axis: str, values: list[float]) -> None:
    """A log scale when positive values span more than 30x (an overloaded point beside the rest)."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if len(finite) >= 2 and max(finite) / min(finite) > 30:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        target = ax.yaxis if axis == "y" else ax.xaxis
        target.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        target.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))


def cdf_comparison_chart(a: Mapping[str, Histogram], b: Mapping[str, Histogram], labels: tuple[str, str],
                         path: Path, title: str) -> Path | None:
    """Latency CDFs of two arms on one chart: A solid, B dashed, one colour per operation."""
    curves = [(arm, op, h) for arm, hists in zip(("A", "B"), (a, b), strict=True) for op, h in hists.items()
              if h.count > 0]
    if not curves:
        return None
    top = min(0.9999, max(0.999, 1 - 1 / max(h.count for _a, _o, h in curves)))
    bottom = 0.01
    with _figure(10, 5.5) as fig:
        ax = fig.add_subplot()
        for arm, op, h in curves:
            edges, cumulative = h.cdf_points()
            first = max(0, int(np.searchsorted(cumulative, bottom)) - 1)
            x = np.concatenate([[edges[first] / 1.02], edges[first:]])
            y = np.clip(np.concatenate([[0.0], cumulative[first:]]), bottom, top)
            ls = "-" if arm == "A" else "--"
            ax.step(x, y, where="post", color=OP_COLORS.get(op), lw=1.7, ls=ls,
                    label=f"{arm} {op}: p50 {h.quantile(0.5):.3g} ms, p99 {h.quantile(0.99):.3g} ms")
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.set_ylim(bottom, top)
        ax.yaxis.set_major_locator(FixedLocator([q for q in _CDF_TICKS if bottom <= q <= top]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _CDF_TICKS.get(round(v, 6), "")))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("share of requests at or below (quantile)")
        ax.set_title("\n".join(textwrap.wrap(title, 100)))
        ax.legend(loc="lower right", fontsize=8, title=f"{labels[0]}: solid\n{labels[1]}: dashed",
                  title_fontsize=8)
        return _save(fig, path)
