"""A run's report: report.md, a self-contained report.html and the PNG charts they show.

    from sim.report import write_report
    paths = write_report(result, "reports/try", scenario)   # {"report_md": ..., "report_html": ...,
                                                             #  "latency_cdf": ..., ...}

Modules: slo.py (SLO verdicts, also used by sim/result.py for summary.json's `slo`), charts.py
(one function per chart), comparison.py (the M/M/c estimate beside the simulated figure and why
they part), findings.py (what an architect reads first), document.py (the content), markdown.py
and html.py (its two renderings), fmt.py (numbers as the report writes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.diagram import topology
from sim.report import charts as ch
from sim.report import html, markdown
from sim.report.comparison import compare
from sim.report.document import build_document
from sim.report.findings import findings
from sim.report.fmt import num
from sim.scenario import Scenario
from sim.slo import evaluate_slos

if TYPE_CHECKING:  # sim.result must not import the report: no import of it here at run time
    from sim.result import Result

__all__ = ["CHART_FILES", "draw_charts", "evaluate_slos", "fault_windows", "triggered_flows", "write_report"]

CHART_FILES = {
    "latency_cdf": "latency_cdf.png",
    "latency_over_time": "latency_over_time.png",
    "throughput": "throughput.png",
    "utilization": "utilization.png",
    "cache_hit_ratio": "cache_hit_ratio.png",
    "kafka_lag": "kafka_lag.png",
    "cost": "cost.png",
}


def _latency_slo_points(scenario: Scenario) -> list[tuple[str, str, float]]:
    """(flow, statistic, max ms) for SLOs like latency_ms.read.p99 <= 100."""
    points = []
    for slo in scenario.slo:
        parts = slo.metric.split(".")
        if len(parts) == 3 and parts[0] == "latency_ms" and slo.max is not None:
            points.append((parts[1], parts[2], slo.max))
    return points


def fault_windows(faults: Any) -> list[tuple[float, float]]:
    """(start_s, end_s) of every injected fault in summary.json's `faults` that has both."""
    out = []
    for item in faults if isinstance(faults, list | tuple) else []:
        if isinstance(item, Mapping):
            start, end = num(item.get("start_s")), num(item.get("end_s"))
            if start is not None and end is not None and end > start:
                out.append((start, end))
    return out


def triggered_flows(summary: Mapping[str, Any]) -> list[str]:
    """The run's flows that another flow starts (delivery, started by a committed Kafka record): those
    with figures in latency_ms but no offered load (summary.json lists offered_per_sec for the flows
    clients start)."""
    offered = summary.get("offered_per_sec") or {}
    return [flow for flow in summary.get("latency_ms") or {} if flow not in offered]


def draw_charts(result: Result, out_dir: Path, scenario: Scenario) -> dict[str, Path]:
    """Every chart the run has data for, as PNGs in `out_dir`; {chart: path}."""
    s = result.summary
    name = str(s.get("scenario", scenario.name))
    warmup = float(s.get("warmup_seconds") or 0.0)
    ts = result.timeseries
    cache = s.get("cache") or {}
    faults = fault_windows(s.get("faults"))
    drawn = {
        "latency_cdf": ch.latency_cdf_chart(result.histograms, out_dir / CHART_FILES["latency_cdf"], name,
                                            _latency_slo_points(scenario)),
        "latency_over_time": ch.latency_over_time_chart(ts, out_dir / CHART_FILES["latency_over_time"],
                                                        name, warmup, faults),
        "throughput": ch.throughput_chart(ts, out_dir / CHART_FILES["throughput"], name, warmup, faults,
                                          triggered_flows(s)),
        "utilization": ch.utilization_chart(result.components, out_dir / CHART_FILES["utilization"], name,
                                            scenario.capacity.target_utilization),
        "cache_hit_ratio": ch.cache_hit_chart(ts, out_dir / CHART_FILES["cache_hit_ratio"], name, warmup,
                                              cache.get("model_hit_ratio"), faults),
        "kafka_lag": ch.kafka_lag_chart(ts, out_dir / CHART_FILES["kafka_lag"], name, warmup, faults),
        "cost": ch.cost_chart(s.get("cost") or {}, out_dir / CHART_FILES["cost"], name),
    }
    for key, path in drawn.items():  # a chart this run has no data for must not be a stale file
        if path is None:
            (out_dir / CHART_FILES[key]).unlink(missing_ok=True)
    return {k: p for k, p in drawn.items() if p is not None}


def write_report(result: Result, out_dir: str | Path, scenario: Scenario,
                 size_warnings: list[str] | None = None, diagram: str | None = None) -> dict[str, Path]:
    """Write report.md, report.html and the charts into `out_dir`; return their paths by name
    ("report_md", "report_html" and one key per chart drawn)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary
    if "slo" not in summary:
        summary = {**summary, "slo": evaluate_slos(summary, scenario.slo)}
    charts = draw_charts(result, out, scenario)
    comparisons = compare(summary, scenario)
    lines = findings(summary, size_warnings, comparisons, scenario.capacity.target_utilization)
    doc = build_document(summary, lines, comparisons, charts, diagram, topology(scenario))
    md_path = out / "report.md"
    md_path.write_text(markdown.render(doc, out), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(html.render(doc), encoding="utf-8")
    return {"report_md": md_path, "report_html": html_path, **charts}
