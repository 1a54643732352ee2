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
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    EngFormatter,
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

from sim.chart_style import OP_COLORS
from sim.chart_style import figure as _figure
from sim.chart_style import save as _save
from sim.histogram import GROWTH, Histogram
from sim.metrics import flows_in_series
from sim.report.fmt import ms, numeric_items, usd

# a flow without a colour of its own (OP_COLORS: the messaging preset's) takes the palette's
# colour at its place among the run's flows, the same in every chart
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#d62728")
MAX_BARS = 60  # per fleet: more nodes than this are drawn as a distribution
GROUP_MIN_SLOTS = 4  # bar slots a small fleet's group takes at least, so labels do not collide
HOT, WARM, COOL = "#d62728", "#ff9f1c", "#4c78a8"
WARMUP_COLOR = "#e6e6e6"
FAULT_COLOR = "#fbe3e3"
# quantile levels shown on the latency CDF's logit axis
_CDF_TICKS = {0.01: "p1", 0.1: "p10", 0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9",
              0.9999: "p99.99", 0.99999: "p99.999"}
_QUANTILE_OF = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}


def flow_color(flow: str, flows: Sequence[str]) -> str:
    """The colour a flow is drawn in: its own (OP_COLORS), else its place among `flows`."""
    own = OP_COLORS.get(flow)
    if own is not None:
        return own
    return PALETTE[list(flows).index(flow) % len(PALETTE)] if flow in flows else PALETTE[-1]


def _has(frame: pd.DataFrame, *columns: str) -> bool:
    return all(c in frame.columns and frame[c].notna().any() for c in columns)


def _names(flows: Sequence[str]) -> str:
    """`send, read and delivery`: the flows a chart draws, for its title."""
    return flows[0] if len(flows) == 1 else f"{', '.join(flows[:-1])} and {flows[-1]}"


def _plain_log_labels(axis: Any, pattern: str) -> None:
    """Decades labelled as plain numbers (the default labels are mathtext, which is off here)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: pattern.format(v) if v >= 1e-9 else ""))
    axis.set_minor_formatter(NullFormatter())


def _shade_warmup(ax: Axes, warmup_s: float, faults: Sequence[tuple[float, float]] = ()) -> None:
    """Grey: the warm-up; hatched red: windows in which a fault was injected."""
    if warmup_s > 0:
        ax.axvspan(0, warmup_s, color=WARMUP_COLOR, zorder=0, label="warm-up (not measured)")
    for i, (start_s, end_s) in enumerate(faults):
        ax.axvspan(start_s, end_s, facecolor=FAULT_COLOR, edgecolor="#e3a3a3", hatch="/", lw=0, zorder=0,
                   label="fault injected (see Findings)" if i == 0 else None)


def _time_axis(ax: Axes, timeseries: pd.DataFrame) -> None:
    ax.set_xlabel("simulated time (s, end of each 1-s window)")
    ax.set_xlim(0, max(1.0, float(timeseries["t_s"].max())))


def _marker(timeseries: pd.DataFrame) -> str | None:
    return "o" if len(timeseries) <= 30 else None


def latency_cdf_chart(histograms: Mapping[str, Histogram], path: Path, title: str,
                      slo_points: list[tuple[str, str, float]] | None = None) -> Path | None:
    """Latency CDF per flow (request type): log time axis, logit quantile axis (so p99 and p99.9 are as
    legible as the median). `slo_points` are (op, statistic, max ms) objectives, drawn as an x
    that the curve must pass to the left of."""
    curves = {op: h.cdf_points() for op, h in histograms.items() if h.count > 0}
    if not curves:
        return None
    top_count = max(h.count for h in histograms.values())
    top = min(0.99999, max(0.999, 1 - 1 / top_count))
    bottom = 0.01
    with _figure(10, 6) as fig:
        ax = fig.add_subplot()
        for op, (edges, cumulative) in curves.items():
            # start where the curve enters the axis (the body below p1 would be a flat line
            # along the bottom); before the first bucket the CDF is 0
            first = max(0, int(np.searchsorted(cumulative, bottom)) - 1)
            x = np.concatenate([[edges[first] / GROWTH], edges[first:]])
            y = np.clip(np.concatenate([[0.0], cumulative[first:]]), bottom, top)
            h = histograms[op]
            ax.step(x, y, where="post", color=flow_color(op, list(histograms)), lw=1.8,
                    label=f"{op}: p50 {ms(h.quantile(0.5))}, p99 {ms(h.quantile(0.99))}, n={h.count:,}")
        for op, stat, limit_ms in slo_points or []:
            q = _QUANTILE_OF.get(stat)
            if q is None:
                continue
            color = flow_color(op, list(histograms)) if op in histograms else "black"
            ax.plot([limit_ms], [q], marker="X", ms=11, color=color,
                    markeredgecolor="black", ls="none", label=f"SLO {op} {stat} <= {limit_ms:g} ms")
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.set_ylim(bottom, top)
        ticks = [q for q in _CDF_TICKS if bottom <= q <= top]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _CDF_TICKS.get(round(v, 6), "")))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
        _plain_log_labels(ax.xaxis, "{:g}")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("share of requests at or below (quantile)")
        ax.set_title(f"{title}: latency CDF of {_names(list(curves))}")
        fig.legend(loc="outside lower center", ncols=2, fontsize=9)  # never over a curve
        return _save(fig, path)


def latency_over_time_chart(timeseries: pd.DataFrame, path: Path, title: str, warmup_s: float = 0.0,
                            faults: Sequence[tuple[float, float]] = ()) -> Path | None:
    """p50 (dashed) and p99 (solid) per flow per simulated second."""
    flows = flows_in_series(timeseries.columns)
    ops = [op for op in flows if _has(timeseries, "t_s", f"{op}_p99_ms")]
    if not ops:
        return None
    with _figure(10, 5) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s, faults)
        t = timeseries["t_s"]
        values = []
        for op in ops:
            color = flow_color(op, flows)
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
            _plain_log_labels(ax.yaxis, "{:g}")
            ax.set_ylabel("latency (ms, log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("latency (ms)")
        _time_axis(ax, timeseries)
        ax.set_title(f"{title}: p50 and p99 latency of {_names(ops)} over time")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
        return _save(fig, path)


def throughput_chart(timeseries: pd.DataFrame, path: Path, title: str, warmup_s: float = 0.0,
                     faults: Sequence[tuple[float, float]] = (),
                     triggered: Collection[str] = ()) -> Path | None:
    """Top: offered (dashed) against succeeded (solid), one panel per flow so that lines of
    similar rates do not hide each other; a `triggered` flow's (one another flow starts, as a
    committed Kafka record starts delivery) dashed line is its requests started. Bottom: failed
    requests per second, every flow."""
    flows = flows_in_series(timeseries.columns)
    ops = [op for op in flows if _has(timeseries, "t_s", f"{op}_succeeded_per_sec") and any(
        timeseries[c].fillna(0).abs().sum() > 0 for c in
        (f"{op}_offered_per_sec", f"{op}_succeeded_per_sec", f"{op}_failed_per_sec") if c in timeseries)]
    if not ops:  # (an operation the scenario does not run gets no panel)
        return None
    rate = EngFormatter(sep="")
    t = timeseries["t_s"]
    with _figure(11, 6.5) as fig:
        grid = fig.add_gridspec(2, len(ops), height_ratios=[3, 2])
        for i, op in enumerate(ops):
            ax = fig.add_subplot(grid[0, i])
            _shade_warmup(ax, warmup_s, faults)
            color = flow_color(op, flows)
            if f"{op}_offered_per_sec" in timeseries:
                label = "started" if op in triggered else "offered"
                ax.plot(t, timeseries[f"{op}_offered_per_sec"], color="black", ls="--", lw=1.2,
                        marker=_marker(timeseries), ms=4, label=label, zorder=3)
            ax.plot(t, timeseries[f"{op}_succeeded_per_sec"], color=color, lw=2.4,
                    marker=_marker(timeseries), label="succeeded", zorder=2)
            ax.set_ylim(bottom=0, top=max(1.0, float(timeseries[
                [c for c in (f"{op}_offered_per_sec", f"{op}_succeeded_per_sec") if c in timeseries]
            ].max().max()) * 1.25))
            ax.yaxis.set_major_formatter(rate)
            ax.set_title(f"{op} (requests/s, fleet-wide)", fontsize=9.5, loc="left")
            _time_axis(ax, timeseries)
            ax.set_xlabel("simulated time (s)")
            ax.legend(loc="lower right", fontsize=8)
        errors = fig.add_subplot(grid[1, :])
        _shade_warmup(errors, warmup_s, faults)
        failed_any = False
        for op in ops:
            col = f"{op}_failed_per_sec"
            if col in timeseries:
                failed_any = failed_any or bool((timeseries[col].fillna(0) > 0).any())
                errors.plot(t, timeseries[col], color=flow_color(op, flows), lw=1.8,
                            marker=_marker(timeseries), label=f"{op} failed")
        if failed_any:
            errors.set_ylim(bottom=0)
            errors.yaxis.set_major_formatter(rate)
        else:
            errors.text(0.5, 0.5, "no failed requests", transform=errors.transAxes, ha="center",
                        va="center", color="#555555", fontsize=11)
            errors.set_ylim(0, 1)
            errors.set_yticks([0])
        errors.set_ylabel("failed per second")
        errors.set_title("errors (failed requests/s, fleet-wide)", fontsize=9.5, loc="left")
        errors.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8.5)
        _time_axis(errors, timeseries)
        fig.suptitle(f"{title}: throughput and errors against offered load", fontweight="bold")
        return _save(fig, path)


def _band_colour(u: float, warm: float) -> str:
    return HOT if u >= 0.9 else WARM if u >= warm else COOL


def _utilization_bars(ax: Axes, fleets: list[tuple[str, pd.DataFrame]], target: float | None) -> None:
    """Small fleets side by side on one axis: each fleet's nodes sorted, busiest first, its mean
    as a dashed segment over its group and its hottest node labelled."""
    warm = target if target is not None else 0.7
    cursor = 0.0
    centres, names = [], []
    for i, (name, fleet) in enumerate(fleets):
        ordered = fleet.sort_values("utilization", ascending=False)
        u = ordered["utilization"].to_numpy(dtype=float)
        slots = max(len(u), GROUP_MIN_SLOTS)  # room for the fleet's label under a narrow group
        x = cursor + (slots - len(u)) / 2 + np.arange(len(u))
        ax.bar(x, u, color=[_band_colour(v, warm) for v in u], width=0.8)
        ax.hlines(u.mean(), x[0] - 0.4, x[-1] + 0.4, color="black", ls="--", lw=1.1,
                  label="fleet mean" if i == 0 else None)
        ax.annotate(f"#{int(ordered['instance'].iloc[0])} {u[0]:.0%}", (x[0] - 0.4, u[0]), xytext=(0, 3),
                    textcoords="offset points", ha="left", va="bottom", fontsize=7.5)
        centres.append(cursor + (slots - 1) / 2)
        names.append(f"{name}\n{len(u)} node{'s' if len(u) != 1 else ''}\nmean {u.mean():.0%}")
        cursor += slots + max(1.5, 0.08 * cursor)
    ax.set_xticks(centres, names, fontsize=8)
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(-1, cursor - 0.5)
    ax.set_ylim(0, max(1.0, max(float(f["utilization"].max()) for _, f in fleets)) * 1.08)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("utilization per node")
    ax.grid(axis="x", visible=False)
    ax.set_title(f"fleets of up to {MAX_BARS} nodes: every node, busiest first "
                 "(label: hottest node and its utilization)", fontsize=9.5, loc="left")
    if target is not None:
        ax.axhline(target, color="#7f7f7f", ls=":", lw=1.3, label=f"planning target {target:.0%}")
    handles, labels = ax.get_legend_handles_labels()
    handles += [Patch(color=c) for c in (COOL, WARM, HOT)]
    labels += [f"node < {warm:.0%}", f"node {warm:.0%}-90%", "node >= 90%"]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def _utilization_distribution(ax: Axes, fleet: pd.DataFrame, target: float | None) -> None:
    u = fleet["utilization"].to_numpy(dtype=float)
    hi = max(1.0, float(u.max()))
    _, edges, patches = ax.hist(u, bins=np.linspace(0, hi, 51), color=COOL, edgecolor="white",
                                linewidth=0.3, label="nodes per 2% band")
    warm = target if target is not None else 0.7
    for left, patch in zip(edges[:-1], patches, strict=True):
        if left >= 0.9 - 1e-9:
            patch.set_facecolor(HOT)
        elif left >= warm - 1e-9:
            patch.set_facecolor(WARM)
    ax.set_yscale("log")
    _plain_log_labels(ax.yaxis, "{:,.0f}")
    ax.set_ylabel("nodes (log scale)", fontsize=8.5)
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
    fig = utilization_figure(components, title, target_utilization)
    return None if fig is None else _save(fig, path)


def utilization_figure(components: pd.DataFrame, title: str,
                       target_utilization: float | None = None) -> Figure | None:
    """The figure utilization_chart saves (None without per-instance data): one panel of bars
    for all fleets of up to MAX_BARS nodes, one histogram panel per larger fleet."""
    if components.empty or not {"component", "instance", "utilization"} <= set(components.columns):
        return None
    fleets = [(name, components[components["component"] == name])
              for name in dict.fromkeys(components["component"])]
    small = [(n, f) for n, f in fleets if len(f) <= MAX_BARS]
    large = [(n, f) for n, f in fleets if len(f) > MAX_BARS]
    heights = ([3.6] if small else []) + [2.3] * len(large)
    with _figure(10, 0.6 + sum(heights)) as fig:
        axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0]
        if small:
            _utilization_bars(axes[0], small, target_utilization)
        for ax, (name, fleet) in zip(axes[1 if small else 0:], large, strict=True):
            _utilization_distribution(ax, fleet, target_utilization)
            if target_utilization is not None:
                ax.axvline(target_utilization, color="#7f7f7f", ls=":", lw=1.3,
                           label=f"planning target {target_utilization:.0%}")
            u = fleet["utilization"]
            ax.set_title(f"{name}: {len(fleet):,} nodes, too many for bars: how many nodes run at "
                         f"each utilization (mean {float(u.mean()):.1%}, max {float(u.max()):.1%})",
                         fontsize=9.5, loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        fig.suptitle(f"{title}: utilization per node of each fleet (as simulated)", fontweight="bold")
        return fig


def kafka_lag_chart(timeseries: pd.DataFrame, path: Path, title: str, warmup_s: float = 0.0,
                    faults: Sequence[tuple[float, float]] = ()) -> Path | None:
    """Consumer lag (how long a committed record waited for its consumer, max per second) and
    the backlog (records waiting at each window's end)."""
    if not _has(timeseries, "t_s", "kafka_lag_max_s"):
        return None
    with _figure(10, 4.5) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s, faults)
        t = timeseries["t_s"]
        ax.plot(t, timeseries["kafka_lag_max_s"], color="#9467bd", lw=2, marker=_marker(timeseries),
                label="consumer lag, max in window")
        lag_max = float(timeseries["kafka_lag_max_s"].max())
        ax.set_ylim(0, max(1e-3, lag_max * 1.15))
        ax.yaxis.set_major_formatter(EngFormatter(unit="s", sep=" "))
        if lag_max <= 0:
            ax.text(0.5, 0.5, "no consumer lag: consumers picked up every committed record at once",
                    transform=ax.transAxes, ha="center", va="center", color="#555555")
        ax.set_ylabel("consumer lag (time)")
        handles, labels = ax.get_legend_handles_labels()
        if _has(timeseries, "kafka_backlog_msgs"):
            right = ax.twinx()
            right.plot(t, timeseries["kafka_backlog_msgs"], color="#8c564b", lw=1.4, ls="--",
                       marker=_marker(timeseries), label="backlog at window end")
            right.set_ylim(0, max(10.0, float(timeseries["kafka_backlog_msgs"].max()) * 1.15))
            right.yaxis.set_major_locator(MaxNLocator(integer=True))
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
                    model_hit_ratio: float | None = None,
                    faults: Sequence[tuple[float, float]] = ()) -> Path | None:
    """Redis hit ratio per second, with Che's model estimate for comparison."""
    if not _has(timeseries, "t_s", "cache_hit_ratio"):
        return None
    hit = timeseries["cache_hit_ratio"]
    with _figure(10, 4) as fig:
        ax = fig.add_subplot()
        _shade_warmup(ax, warmup_s, faults)
        ax.plot(timeseries["t_s"], hit, color="#17becf", lw=2, marker=_marker(timeseries),
                label="simulated, per window")
        levels = [float(hit.min()), float(hit.max())]
        if model_hit_ratio is not None and math.isfinite(model_hit_ratio):
            ax.axhline(model_hit_ratio, color="black", ls="--", lw=1.2,
                       label=f"Che LRU model {model_hit_ratio:.1%}")
            levels.append(model_hit_ratio)
        span = max(levels) - min(levels)
        ax.set_ylim(max(0.0, min(levels) - max(0.05, span)), min(1.0, max(levels) + max(0.05, span)))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel("reads answered by Redis")
        _time_axis(ax, timeseries)
        ax.set_title(f"{title}: cache hit ratio over time")
        ax.legend(loc="lower right", fontsize=8.5)
        return _save(fig, path)


def _usd_tick(amount: float, scale: float) -> str:
    """A tick label in the unit the axis' largest value calls for ($, $k or $M)."""
    if scale >= 1e6:
        return f"${amount / 1e6:,.4g}M"
    if scale >= 1e4:
        return f"${amount / 1e3:,.4g}k"
    return f"${amount:,.0f}"


def _cost_bars(ax: Axes, items: dict[str, float], heading: str, color: str) -> None:
    ordered = sorted(((k, v) for k, v in items.items() if v > 0), key=lambda kv: kv[1])
    total = sum(items.values())
    names = [k for k, _ in ordered]
    values = [v for _, v in ordered]
    bars = ax.barh(names, values, color=color)
    for bar, value in zip(bars, values, strict=True):
        share = f" ({value / total:.0%})" if total > 0 else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {usd(value)}{share}",
                va="center", fontsize=8.5)
    ax.set_xlim(0, max(values) * 1.3 if max(values) > 0 else 1)
    scale = max(values)
    ax.xaxis.set_major_locator(MaxNLocator(5))  # dollar labels are wide: at most 6 fit half a figure
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _usd_tick(v, scale)))
    ax.set_xlabel("USD per month")
    ax.set_title(heading, fontsize=9.5, loc="left")
    ax.grid(axis="y", visible=False)


def cost_chart(cost: Mapping[str, Any], path: Path, title: str) -> Path | None:
    """Monthly cost by component and, when given, by kind (compute, storage, network, ...)."""
    by_component = numeric_items(cost.get("monthly_usd"))
    by_kind = numeric_items(cost.get("by_kind_usd"))
    panels = [(items, heading, color) for items, heading, color in (
        (by_component, "by component", "#4c78a8"), (by_kind, "by kind", "#72b7b2"))
        if any(v > 0 for v in items.values())]
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
