"""`capsim compare`'s terminal table: the headline figures in readable units, one line each.

compare.md keeps every figure; the terminal shows, per flow (the runs' own request types, in the
order the figures name them), p50, p99, throughput and
availability, the overall availability and the monthly cost, and besides those only the figures
whose paired difference is significant (its 95% CI excludes zero) or whose SLO verdict changes.
Numbers are written as an architect reads them: milliseconds to 3 significant digits,
availability and utilization as percentages (differences in percentage points), dollars and
rates with thousands separators, never in scientific notation. Every row fits one line of a
120-column terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

from rich import box
from rich.markup import escape
from rich.table import Table

from sim.experiments.figures import unit_of
from sim.experiments.stats import Interval

WIDTH = 120
MAX_DECIMALS = 9  # smaller figures read as 0
COST = "cost.total_monthly_usd"
COLUMNS = ("figure", "A", "B", "B - A [95% CI]", "change")
VERDICT_WORDS = {"no significant difference": "n.s.", "identical": "identical", "no interval": "no CI"}
SHORT_FIGURES = {"utilization_mean": "util mean", "utilization_max": "util max",
                 "queue_wait_ms_p99": "wait p99"}


class RowLike(Protocol):
    """What the table needs of sim.experiments.compare.Row."""

    metric: str
    a: Interval
    b: Interval
    diff: Interval

    @property
    def relative(self) -> float: ...

    @property
    def verdict(self) -> str: ...


MESSAGING_FLOWS = ("send", "read", "delivery")


def flows_named(metrics: Iterable[str]) -> list[str]:
    """The flows the figures' paths name (`latency_ms.<flow>.…`, `throughput_per_sec.<flow>`), in the
    order they first appear."""
    out: list[str] = []
    for metric in metrics:
        parts = metric.split(".")
        if (parts[0] == "latency_ms" and len(parts) == 3) or (parts[0] == "throughput_per_sec"
                                                                and len(parts) == 2):
            out.append(parts[1])
    return list(dict.fromkeys(out))


def headline_paths(flows: Sequence[str] = MESSAGING_FLOWS) -> list[str]:
    """The figures always shown for `flows`, in display order."""
    paths = []
    for op in flows:
        paths += [f"latency_ms.{op}.p50", f"latency_ms.{op}.p99", f"throughput_per_sec.{op}",
                  f"availability.{op}"]
    return [*paths, "availability.overall", COST]


def significant(row: RowLike) -> bool:
    return row.verdict in ("B higher", "B lower")


def select_rows(rows: Sequence[RowLike], slo_changed: Iterable[str] = ()) -> list[RowLike]:
    """The headline figures (in headline order), then every other figure whose difference is
    significant or that an SLO whose verdict changes is about (in the comparison's order)."""
    changed = set(slo_changed)
    by_metric = {r.metric: r for r in rows}
    head = [by_metric[p] for p in headline_paths(flows_named(by_metric)) if p in by_metric]
    shown = {r.metric for r in head}
    rest = [r for r in rows if r.metric not in shown and (significant(r) or r.metric in changed)]
    return head + rest


def fixed(x: float, digits: int = 3, signed: bool = False) -> str:
    """`x` to `digits` significant digits in plain notation (whole numbers from 10**digits up,
    with thousands separators): 0.000123, 1.23, 12.3, 123, 1,234,567; never 1.23e+06."""
    if not math.isfinite(x):
        return "-"
    sign = "+" if signed and x > 0 else ""
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    decimals = min(MAX_DECIMALS, max(0, digits - 1 - exponent))
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exponent:  # 9.996 -> 10.0, not 10.00
        decimals = max(0, decimals - 1)
    text = f"{x:,.{decimals}f}"
    return "0" if float(text.replace(",", "")) == 0 else sign + text


def _kind(path: str) -> str:
    unit = unit_of(path)
    if path.startswith("availability."):
        return "availability"
    return {"fraction": "percent", "USD/month": "usd", "USD": "usd"}.get(unit, unit)


def figure_text(path: str, x: float) -> str:
    """One value of the figure at `path` in its unit: 12.3 ms, 99.951%, 61.2%, 9,950/s, $151,234."""
    if not math.isfinite(x):
        return "-"
    kind = _kind(path)
    if kind == "availability":
        return f"{x * 100:.3f}%"
    if kind == "percent":
        return f"{x * 100:.1f}%"
    if kind == "usd":
        return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"
    if kind == "per s":
        return f"{fixed(x)}/s"
    return f"{fixed(x)} {kind}" if kind else fixed(x)


def difference_text(path: str, diff: Interval) -> str:
    """B - A with its 95% CI: `+1.23 [+0.80, +1.66] ms`, `-0.0120 [-0.0200, -0.00400] pp`,
    `+$1,234 [+$1,178, +$1,290]`; the mean alone when there is no interval. (The CI of a quantile
    is widened to its histogram buckets, so it need not be symmetric.)"""
    kind = _kind(path)
    scale, unit = (100.0, " pp") if kind in ("availability", "percent") else (1.0, f" {kind}" if kind else "")
    if kind == "per s":
        unit = "/s"

    def one(x: float) -> str:
        x *= scale
        if kind == "usd":
            sign = "+" if x > 0 else "-" if x < 0 else ""
            return f"{sign}${abs(x):,.0f}"
        return fixed(x, signed=True)

    text = one(diff.mean)
    if math.isfinite(diff.low) and math.isfinite(diff.high):
        text += f" [{one(diff.low)}, {one(diff.high)}]"
    return text if kind == "usd" else text + unit


def label_text(path: str) -> str:
    """A short name: `read p99`, `send throughput`, `overall availability`, `monthly cost`,
    `cassandra util max`, `Kafka lag max`; other paths as they are."""
    parts = path.split(".")
    if parts[0] == "latency_ms" and len(parts) == 3:
        return f"{parts[1]} {parts[2]}"
    if parts[0] in ("throughput_per_sec", "availability") and len(parts) == 2:
        return f"{parts[1]} {parts[0].removesuffix('_per_sec')}"
    if path == COST:
        return "monthly cost"
    if parts[0] == "components" and len(parts) == 3:
        return f"{parts[1]} {SHORT_FIGURES.get(parts[2], parts[2])}"
    if path == "cache.hit_ratio":
        return "cache hit ratio"
    if path == "kafka.consumer_lag_max_s":
        return "Kafka lag max"
    return path


def change_text(row: RowLike, slo_changes: bool = False) -> str:
    """The relative change B - A over A, `-80.0%` when significant (the sign says which way),
    `+2.0% n.s.` when its CI includes 0, then `; SLO changes` when an SLO verdict on it does."""
    rel = f"{row.relative:+.1%}" if math.isfinite(row.relative) else ""
    word = "" if significant(row) else VERDICT_WORDS.get(row.verdict, row.verdict)
    text = " ".join(part for part in (rel, word) if part) or "-"
    return text + ("; SLO changes" if slo_changes else "")


def table_rows(rows: Sequence[RowLike], slo_changed: Iterable[str] = ()) -> list[tuple[str, ...]]:
    """The terminal table's cells, one tuple per shown figure (columns: COLUMNS)."""
    changed = set(slo_changed)
    return [(label_text(r.metric), figure_text(r.metric, r.a.mean), figure_text(r.metric, r.b.mean),
             difference_text(r.metric, r.diff), change_text(r, r.metric in changed))
            for r in select_rows(rows, changed)]


def terminal_table(rows: Sequence[RowLike], slo_changed: Iterable[str] = (), title: str = "") -> Table:
    """The rich table `capsim compare` prints: the selected figures, a row in bold where B differs
    significantly and in bold red where an SLO verdict changes. Light borders (a rule under the
    header only) so that wide figures still fit WIDTH columns."""
    changed = set(slo_changed)
    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("figure", "change") else "right",
                         no_wrap=col != "figure", overflow="fold")
    for r, cells in zip(select_rows(rows, changed), table_rows(rows, changed), strict=True):
        style = "bold red" if r.metric in changed else "bold" if significant(r) else None
        table.add_row(*(escape(c) for c in cells), style=style)
    return table
