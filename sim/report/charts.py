"""The report's charts: one function per chart, each writing a PNG and returning its path.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch, nothing shown on screen). A chart whose data the run does not have (no Kafka, no cache,
no cost) returns None instead of an empty picture. Text is drawn literally (`text.parse_math`
off), so a `$` in a scenario name or a price is not read as mathematics.

Charts stay readable at any fleet size: per-node utilization is a sorted bar chart up to
`MAX_BARS` nodes and a histogram (log count, so one hot node still shows) with mean, p99 and the
hottest node marked beyond that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, PercentFormatter

from sim.histogram import Histogram

OPS = ("send", "read", "delivery")
OP_COLORS = {"send": "#1f77b4", "read": "#ff7f0e", "delivery": "#2ca02c"}
MAX_BARS = 60  # per fleet: more nodes than this are drawn as a distribution
DPI = 110
HOT, WARM, COOL = "#d62728", "#ff9f1c", "#4c78a8"
WARMUP_COLOR = "#e6e6e6"
_STYLE = {"text.parse_math": False, "axes.grid": True, "grid.alpha": 0.3, "axes.titleweight": "bold",
          "axes.spines.top": False, "axes.spines.right": False, "font.size": 9.5}
# quantile levels shown on the latency CDF's logit axis
_CDF_TICKS = {0.01: "p1", 0.1: "p10", 0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9",
              0.9999: "p99.99", 0.99999: "p99.999"}
_QUANTILE_OF = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}


@contextmanager
def _figure(width_in: float, height_in: float) -> Iterator[Figure]:
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns and frame[c].notna().any() for c in columns)


def _shade_warmup(ax: Axes, warmup_s: float) -> None:
    if warmup_s > 0:
        ax.axvspan(0, warmup_s, color=WARMUP_COLOR, zorder=0, label="warm-up (not measured)")


def _time_axis(ax: Axes, timeseries: pd.DataFrame) -> None:
    ax.set_xlabel("simulated time (s, end of each 1-s window)")
    ax.set_xlim(0, max(1.0, float(timeseries["t_s"].max())))


def _marker(timeseries: pd.DataFrame) -> str | None:
    return "o" if len(timeseries) <= 30 else None


def latency_cdf_chart(histograms: Mapping[str, Histogram], path: Path, title: str,
                      slo_points: list[tuple[str, str, float]] | None = None) -> Path | None:
    """Latency CDF per operation: log time axis, logit quantile axis (so p99 and p99.9 are as
    legible as the median). `slo_points` are (op, statistic, max ms) objectives, drawn as an x
    that the curve must pass to the left of."""
    curves = {op: h.cdf_points() for op, h in histograms.items() if h.count > 0}
    if not curves:
        return None
    top_count = max(h.count for h in histograms.values())
    top = min(0.99999, max(0.999, 1 - 1 / top_count))
    bottom = 0.01
    with _figure(10, 5.5) as fig:
        ax = fig.add_subplot()
        for op, (edges, cumulative) in curves.items():
            y = np.clip(cumulative, bottom, top)
            # start the curve at the bottom of the axis, at the first bucket's lower edge
            x = np.concatenate([[edges[0] / 1.02], edges])
            y = np.concatenate([[bottom], y])
            h = histograms[op]
            ax.step(x, y, where="post", color=OP_COLORS.get(op), lw=1.8,
                    label=f"{op}: p50 {h.quantile(0.5):.3g} ms, p99 {h.quantile(0.99):.3g} ms, "
                          f"n={h.count:,}")
        for op, stat, limit_ms in slo_points or []:
            q = _QUANTILE_OF.get(stat)
            if q is None:
                continue
            ax.plot([limit_ms], [q], marker="X", ms=11, color=OP_COLORS.get(op, "black"),
                    markeredgecolor="black", ls="none", label=f"SLO {op} {stat} <= {limit_ms:g} ms")
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.set_ylim(bottom, top)
        ticks = [q for q in _CDF_TICKS if bottom <= q <= top]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _CDF_TICKS.get(round(v, 6), "")))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("share of requests at or below (quantile)")
        ax.set_title(f"{title}: latency CDF per operation")
        ax.legend(loc="lower right")
        return _save(fig, path)


def latency_over_time_chart(timeseries: pd.DataFrame, path: Path, title: str,
                            warmup_s: float = 0.0) -> Path | None:
    """p50 (dashed) and p99 (solid) per operation per simulated second."""
    ops = [op for op in OPS if _has(timeseries, "t_s", f"{op}_p99_ms")]
    if not ops:
        return None
    with _figure(10, 5) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s)
        t = timeseries["t_s"]
        values = []
        for op in ops:
            color = OP_COLORS.get(op)
            p99 = timeseries[f"{op}_p99_ms"]
            ax.plot(t, p99, color=color, lw=1.8, marker=_marker(timeseries), label=f"{op} p99")
            values.append(p99)
            if f"{op}_p50_ms" in timeseries:
                p50 = timeseries[f"{op}_p50_ms"]
                ax.plot(t, p50, color=color, lw=1.2, ls="--", marker=_marker(timeseries),
                        label=f"{op} p50")
                values.append(p50)
        finite = pd.concat(values).dropna()
        finite = finite[finite > 0]
        if len(finite) and finite.max() / finite.min() > 20:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.set_ylabel("latency (ms, log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("latency (ms)")
        _time_axis(ax, timeseries)
        ax.set_title(f"{title}: p50 and p99 latency per operation over time")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
        return _save(fig, path)


def throughput_chart(timeseries: pd.DataFrame, path: Path, title: str,
                     warmup_s: float = 0.0) -> Path | None:
    """Top: offered (dashed) against succeeded (solid) per operation. Bottom: failed per second."""
    ops = [op for op in OPS if _has(timeseries, "t_s", f"{op}_succeeded_per_sec")]
    if not ops:
        return None
    rate = EngFormatter(sep="")
    with _figure(10, 6.5) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        t = timeseries["t_s"]
        for ax in (top, bottom):
            _shade_warmup(ax, warmup_s)
        for op in ops:
            color = OP_COLORS.get(op)
            if f"{op}_offered_per_sec" in timeseries:
                label = "deliveries started" if op == "delivery" else f"{op} offered"
                top.plot(t, timeseries[f"{op}_offered_per_sec"], color=color, ls="--", lw=1.2,
                         marker=_marker(timeseries), label=label)
            top.plot(t, timeseries[f"{op}_succeeded_per_sec"], color=color, lw=2,
                     marker=_marker(timeseries), label=f"{op} succeeded")
        top.set_ylim(bottom=0)
        top.yaxis.set_major_formatter(rate)
        top.set_ylabel("requests per second\n(fleet-wide)")
        top.set_title(f"{title}: throughput and errors against offered load")
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
        failed_any = False
        for op in ops:
            col = f"{op}_failed_per_sec"
            if col in timeseries:
                failed_any = failed_any or bool((timeseries[col].fillna(0) > 0).any())
                bottom.plot(t, timeseries[col], color=OP_COLORS.get(op), lw=1.8,
                            marker=_marker(timeseries), label=f"{op} failed")
        if not failed_any:
            bottom.text(0.5, 0.5, "no failed requests", transform=bottom.transAxes, ha="center",
                        va="center", color="#555555")
            bottom.set_ylim(0, 1)
        else:
            bottom.set_ylim(bottom=0)
        bottom.yaxis.set_major_formatter(rate)
        bottom.set_ylabel("failed per second")
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
        _time_axis(bottom, timeseries)
        return _save(fig, path)


def _utilization_bars(ax: Axes, fleet: pd.DataFrame, target: float | None) -> None:
    ordered = fleet.sort_values("utilization", ascending=False)
    u = ordered["utilization"].to_numpy(dtype=float)
    warm = target if target is not None else 0.7
    colors = [HOT if x >= 0.9 else WARM if x >= warm else COOL for x in u]
    ax.bar(np.arange(len(u)), u, color=colors, width=0.8)
    if len(u) <= 24:
        ax.set_xticks(np.arange(len(u)), [str(i) for i in ordered["instance"]], fontsize=8)
        ax.set_xlabel("instance (sorted by utilization)", fontsize=8.5)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(u)} instances, sorted by utilization", fontsize=8.5)
    ax.set_xlim(-0.6, len(u) - 0.4)
    ax.axhline(u.mean(), color="black", ls="--", lw=1, label=f"mean {u.mean():.1%}")
    ax.grid(axis="x", visible=False)


def _utilization_distribution(ax: Axes, fleet: pd.DataFrame, target: float | None) -> None:
    u = fleet["utilization"].to_numpy(dtype=float)
    hi = max(1.0, float(u.max()))
    ax.hist(u, bins=np.linspace(0, hi, 51), color=COOL, edgecolor="white", linewidth=0.3,
            label="nodes per 2% band")
    ax.set_yscale("log")
    ax.set_ylabel("nodes (log)", fontsize=8.5)
    hottest = fleet.loc[fleet["utilization"].idxmax()]
    for value, label, style, color in (
        (u.mean(), f"mean {u.mean():.1%}", "--", "black"),
        (float(np.percentile(u, 99)), f"p99 {np.percentile(u, 99):.1%}", "-.", "#555555"),
        (u.max(), f"max {u.max():.1%} (instance {int(hottest['instance'])})", "-", HOT),
    ):
        ax.axvline(value, color=color, ls=style, lw=1.3, label=label)
    ax.set_xlim(0, hi)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"utilization of each of {len(u):,} nodes", fontsize=8.5)


def utilization_chart(components: pd.DataFrame, path: Path, title: str,
                      target_utilization: float | None = None) -> Path | None:
    """Per-node utilization of every fleet, one panel per fleet: sorted bars up to MAX_BARS nodes
    (a hot shard stands out on the left), a histogram with mean/p99/max beyond."""
    if components.empty or not {"component", "instance", "utilization"} <= set(components.columns):
        return None
    fleets = list(dict.fromkeys(components["component"]))
    with _figure(10, 1.0 + 2.1 * len(fleets)) as fig:
        axes = fig.subplots(len(fleets), 1, squeeze=False)[:, 0]
        for ax, name in zip(axes, fleets, strict=True):
            fleet = components[components["component"] == name]
            u = fleet["utilization"]
            if len(fleet) <= MAX_BARS:
                _utilization_bars(ax, fleet, target_utilization)
                ax.set_ylim(0, max(1.0, float(u.max()) * 1.05))
                ax.yaxis.set_major_formatter(PercentFormatter(1.0))
                ax.set_ylabel("utilization", fontsize=8.5)
            else:
                _utilization_distribution(ax, fleet, target_utilization)
            if target_utilization is not None:
                line = ax.axhline if len(fleet) <= MAX_BARS else ax.axvline
                line(target_utilization, color="#7f7f7f", ls=":", lw=1.3,
                     label=f"planning target {target_utilization:.0%}")
            hot = fleet.loc[u.idxmax()]
            ax.set_title(f"{name}: {len(fleet):,} simulated instances, hottest #{int(hot['instance'])} "
                         f"at {float(hot['utilization']):.1%}, mean {float(u.mean()):.1%}",
                         fontsize=9.5, loc="left")
            handles, labels = ax.get_legend_handles_labels()
            if len(fleet) <= MAX_BARS:
                handles += [Patch(color=c) for c in (COOL, WARM, HOT)]
                warm = target_utilization if target_utilization is not None else 0.7
                labels += [f"< {warm:.0%}", f"{warm:.0%}-90%", ">= 90%"]
            ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        fig.suptitle(f"{title}: utilization per node of each fleet (as simulated)", fontweight="bold")
        return _save(fig, path)


def kafka_lag_chart(timeseries: pd.DataFrame, path: Path, title: str,
                    warmup_s: float = 0.0) -> Path | None:
    """Consumer lag (the oldest uncommitted record's age, max per second) and the backlog."""
    if not _has(timeseries, "t_s", "kafka_lag_max_s"):
        return None
    with _figure(10, 4.5) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s)
        t = timeseries["t_s"]
        ax.plot(t, timeseries["kafka_lag_max_s"], color="#9467bd", lw=2, marker=_marker(timeseries),
                label="consumer lag, max in window")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(EngFormatter(unit="s", sep=" "))
        ax.set_ylabel("consumer lag (time)")
        handles, labels = ax.get_legend_handles_labels()
        if _has(timeseries, "kafka_backlog_msgs"):
            right = ax.twinx()
            right.plot(t, timeseries["kafka_backlog_msgs"], color="#8c564b", lw=1.4, ls="--",
                       marker=_marker(timeseries), label="backlog at window end")
            right.set_ylim(bottom=0)
            right.yaxis.set_major_formatter(EngFormatter(sep=""))
            right.set_ylabel("backlog (messages)")
            right.grid(False)
            right.spines["right"].set_visible(True)
            h2, l2 = right.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        _time_axis(ax, timeseries)
        ax.set_title(f"{title}: Kafka consumer lag over time")
        ax.legend(handles, labels, loc="upper left", fontsize=8.5)
        return _save(fig, path)


def cache_hit_chart(timeseries: pd.DataFrame, path: Path, title: str, warmup_s: float = 0.0,
                    model_hit_ratio: float | None = None) -> Path | None:
    """Redis hit ratio per second, with Che's model estimate for comparison."""
    if not _has(timeseries, "t_s", "cache_hit_ratio"):
        return None
    hit = timeseries["cache_hit_ratio"]
    with _figure(10, 4) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s)
        ax.plot(timeseries["t_s"], hit, color="#17becf", lw=2, marker=_marker(timeseries),
                label="simulated, per window")
        levels = [float(hit.min()), float(hit.max())]
        if model_hit_ratio is not None and math.isfinite(model_hit_ratio):
            ax.axhline(model_hit_ratio, color="black", ls="--", lw=1.2,
                       label=f"Che LRU model {model_hit_ratio:.1%}")
            levels.append(model_hit_ratio)
        span = max(levels) - min(levels)
        ax.set_ylim(max(0.0, min(levels) - max(0.05, span)), min(1.0, max(levels) + max(0.05, span)))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("reads answered by Redis")
        _time_axis(ax, timeseries)
        ax.set_title(f"{title}: cache hit ratio over time")
        ax.legend(loc="lower right", fontsize=8.5)
        return _save(fig, path)


def numeric_items(mapping: Any) -> dict[str, float]:
    """{key: number} from a mapping; a nested mapping counts as the sum of its numbers."""
    out: dict[str, float] = {}
    if not isinstance(mapping, Mapping):
        return out
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = sum(numeric_items(value).values())
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[str(key)] = float(value)
    return out


def usd(amount: float) -> str:
    return f"${amount:,.0f}" if abs(amount) >= 100 else f"${amount:,.2f}"


def _cost_bars(ax: Axes, items: dict[str, float], heading: str, color: str) -> None:
    ordered = sorted(items.items(), key=lambda kv: kv[1])
    total = sum(items.values())
    names = [k for k, _ in ordered]
    values = [v for _, v in ordered]
    bars = ax.barh(names, values, color=color)
    for bar, value in zip(bars, values, strict=True):
        share = f" ({value / total:.0%})" if total > 0 else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {usd(value)}{share}",
                va="center", fontsize=8.5)
    ax.set_xlim(0, max(values) * 1.3 if max(values) > 0 else 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: usd(v)))
    ax.set_xlabel("USD per month")
    ax.set_title(heading, fontsize=9.5, loc="left")
    ax.grid(axis="y", visible=False)


def cost_chart(cost: Mapping[str, Any], path: Path, title: str) -> Path | None:
    """Monthly cost by component and, when given, by kind (compute, storage, network, ...)."""
    by_component = numeric_items(cost.get("monthly_usd"))
    by_kind = numeric_items(cost.get("by_kind_usd"))
    panels = [(items, heading, color) for items, heading, color in (
        (by_component, "by component", "#4c78a8"), (by_kind, "by kind", "#72b7b2")) if items]
    if not panels:
        return None
    total = cost.get("total_monthly_usd")
    per_million = cost.get("usd_per_million_messages")
    headline = f"{title}: monthly cost"
    if isinstance(total, int | float) and math.isfinite(total):
        headline += f", total {usd(total)}/month"
    if isinstance(per_million, int | float) and math.isfinite(per_million):
        headline += f", {usd(per_million)} per million messages"
    rows = max(len(items) for items, _, _ in panels)
    with _figure(10, 1.4 + 0.38 * rows) as fig:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (items, heading, color) in zip(axes, panels, strict=True):
            _cost_bars(ax, items, heading, color)
        fig.suptitle(headline, fontweight="bold")
        return _save(fig, path)
