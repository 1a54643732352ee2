"""What a report says, independent of how it is rendered.

`build_document` turns a run's summary, its scenario and the chart files into a `Document`: a
title, facts about the run and sections of plain-text blocks (paragraphs, findings, tables, a
diagram, images). sim/report/markdown.py and sim/report/html.py render the same Document, so
report.md and report.html always say the same thing. No text here carries markup: renderers
escape everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.diagram import Edge, Node
from sim.report.comparison import NO_ESTIMATE, PART, Comparison
from sim.report.findings import Finding
from sim.report.fmt import availability, fmt, num, numeric_items, pct, usd
from sim.report.resilience import AMPLIFICATION_BAD, AMPLIFICATION_WARN, edge_retries, overall_amplification
from sim.slo import MET, MISSED

# the messaging preset's flows as the report has always named their requests
PLURALS = {"send": "sends", "read": "reads", "delivery": "deliveries"}


@dataclass(frozen=True)
class Paragraph:
    text: str
    note: bool = False  # a side remark ("not available", caveats)


@dataclass(frozen=True)
class Findings:
    items: list[Finding]


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    row_classes: list[str] = field(default_factory=list)  # per row: "ok", "bad", "na", "warn" or ""
    text_columns: tuple[int, ...] = (0,)  # left-aligned; the other columns are numbers


@dataclass(frozen=True)
class Diagram:
    source: str  # Mermaid ("" when not given)
    nodes: tuple[Node, ...] = ()  # the topology it shows, for renderers that draw it themselves
    edges: tuple[Edge, ...] = ()


@dataclass(frozen=True)
class Image:
    title: str
    path: Path
    caption: str


Block = Paragraph | Findings | Bullets | Table | Diagram | Image


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    facts: list[str]
    sections: list[Section]


# -- sections ------------------------------------------------------------------------------------
CHART_CAPTIONS = {
    "latency_cdf": ("Latency CDF per operation",
                    "Share of requests answered within a time (log axis); the quantile axis stretches "
                    "the tail so p99 and p99.9 can be read off. An X marks a latency SLO: the curve "
                    "must pass to its left."),
    "latency_over_time": ("Latency over time", "p50 (dashed) and p99 (solid) per operation, per "
                          "simulated second; the grey band is the warm-up, not measured."),
    "throughput": ("Throughput and errors against offered load",
                   "Per operation, offered (black, dashed) against succeeded requests per second, "
                   "fleet-wide; below, failed requests per second."),
    "utilization": ("Utilization per node",
                    "Fleets of up to 60 instances: every instance as a bar, busiest first, with the "
                    "fleet's mean dashed and its hottest instance labelled, so a hot shard stands "
                    "out. Larger fleets: how many nodes run at each utilization (log count, so one "
                    "hot node still shows), with the mean, p99 and hottest node marked."),
    "cache_hit_ratio": ("Cache hit ratio", "Share of reads answered by Redis, per second, with Che's "
                        "LRU model estimate."),
    "kafka_lag": ("Kafka consumer lag", "How long a committed record waited for its consumer (the "
                  "longest in each second) and the records still waiting at each second's end."),
    "cost": ("Cost breakdown", "Monthly cost by component and by kind."),
}


def _image(charts: Mapping[str, Path], key: str) -> list[Block]:
    path = charts.get(key)
    if path is None:
        return []
    title, caption = CHART_CAPTIONS[key]
    return [Image(title, path, caption)]


def _slo_section(slo: Mapping[str, Any] | None) -> Section:
    section = Section("SLOs")
    if not slo:
        section.blocks.append(Paragraph("No SLOs declared: add slo entries to the scenario "
                                        "(metric, and max or min).", note=True))
        return section
    rows, classes = [], []
    for name, v in slo.items():
        status = v.get("status", MET if v.get("met") else MISSED)
        rows.append([name, str(v.get("metric", "")), str(v.get("target", "")), fmt(v.get("actual"), 4),
                     status.upper() if status == MISSED else status])
        classes.append("ok" if status == MET else "bad" if status == MISSED else "na")
    met = sum(1 for c in classes if c == "ok")
    section.blocks.append(Paragraph(f"{met} of {len(rows)} met."))
    section.blocks.append(Table(["SLO", "metric", "target", "actual", "verdict"], rows, classes,
                                (0, 1, 2, 4)))
    return section


def requests_of(flows: list[str]) -> str:
    """The requests of `flows`, for a sentence: `sends and reads`, `requests of resolve and shorten`."""
    if not flows:
        return "no client requests"
    words = [PLURALS.get(f) for f in flows]
    if all(words):
        return _and([w for w in words if w])
    return f"requests of {_and(flows)}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _headline_section(s: Mapping[str, Any], charts: Mapping[str, Path]) -> Section:
    section = Section("Latency, throughput and availability")
    latency = s.get("latency_ms") or {}
    offered = s.get("offered_per_sec") or {}
    throughput = s.get("throughput_per_sec") or {}
    avail = s.get("availability") or {}
    rows = []
    for op in latency:  # the run's flows, in summary.json's order
        lat = latency.get(op) or {}
        rows.append([op, fmt(offered.get(op)), fmt(throughput.get(op)), fmt(lat.get("mean")),
                     fmt(lat.get("p50")), fmt(lat.get("p90")), fmt(lat.get("p99")), fmt(lat.get("p999")),
                     fmt(lat.get("max")), availability(avail.get(op))])
    section.blocks.append(Table(["operation", "offered/s", "throughput/s", "mean ms", "p50 ms", "p90 ms",
                                 "p99 ms", "p99.9 ms", "max ms", "availability"], rows))
    overall = num(avail.get("overall"))
    if overall is not None:
        over = requests_of(list(offered))  # the client flows: those with an offered load
        section.blocks.append(Paragraph(f"Overall availability ({over}): {overall:.4%}. "
                                        "Rates are fleet-wide; latency counts requests that arrived "
                                        "after the warm-up."))
    for key in ("latency_cdf", "latency_over_time", "throughput"):
        section.blocks += _image(charts, key)
    return section


def _breakdown_section(s: Mapping[str, Any]) -> Section | None:
    breakdown = s.get("latency_breakdown")
    if not isinstance(breakdown, Mapping) or not breakdown:
        return None
    section = Section("Where the p99 time goes")
    names: list[str] = []
    for entry in breakdown.values():
        for k in (entry.get("shares") or {}) if isinstance(entry, Mapping) else {}:
            if k not in names:
                names.append(k)
    rows = []
    for op, entry in breakdown.items():
        if not isinstance(entry, Mapping):
            continue
        shares = entry.get("shares") or {}
        if not shares:  # an operation the scenario does not run
            continue
        rows.append([op, fmt(entry.get("tail_from_ms"))] + [pct(shares.get(k), 0) for k in names])
    section.blocks.append(Paragraph("Share of the time spent in each component by requests at or above "
                                    "their operation's p99."))
    section.blocks.append(Table(["operation", "tail from ms", *names], rows))
    return section


def _components_section(s: Mapping[str, Any], comparisons: list[Comparison],
                        charts: Mapping[str, Path]) -> Section:
    section = Section("Components: simulated against the M/M/c estimate")
    comps = s.get("components") or {}
    analytic = s.get("analytic") or {}
    by_name = {c.component: c for c in comparisons}
    has_estimate = any(c.verdict != NO_ESTIMATE for c in comparisons)
    rows, classes = [], []
    for name, c in comps.items():
        if not isinstance(c, Mapping):
            continue
        cmp = by_name.get(name)
        verdict = cmp.verdict if cmp else NO_ESTIMATE
        est = analytic.get(name) if isinstance(analytic.get(name), Mapping) else {}
        rows.append([name, fmt(c.get("instances")), fmt(c.get("simulated_instances")),
                     pct(c.get("utilization_mean")), pct(cmp.utilization_est if cmp else None),
                     pct(c.get("utilization_max")), pct(c.get("p_wait")), pct(est.get("p_wait")),
                     fmt(c.get("queue_wait_ms_mean")), fmt(est.get("wait_ms_mean")),
                     fmt(c.get("queue_wait_ms_p99")),
                     fmt(cmp.wait_p99_est_ms if cmp else None), fmt(c.get("ops_per_sec")),
                     fmt(c.get("rejected")), verdict])
        classes.append("warn" if verdict == PART else "")
    section.blocks.append(Table(
        ["component", "instances", "simulated", "util mean", "util M/M/c", "util max", "P(wait)",
         "P(wait) Erlang C", "wait mean ms", "wait mean ms M/M/c", "wait p99 ms", "wait p99 ms M/M/c",
         "ops/s (fleet)", "rejected", "estimate vs simulation"], rows, classes, (0, 14)))
    section.blocks.append(Paragraph("Utilization and queue waits are per instance as simulated; the "
                                    "M/M/c estimate is for the same per-instance load, spread evenly, "
                                    "with Poisson arrivals and exponential service. P(wait) is the share "
                                    "of jobs that queued before service (Erlang C beside it); the mean "
                                    "wait is over all jobs, those that did not wait included.", note=True))
    if not has_estimate:
        section.blocks.append(Paragraph("Analytic estimate: not available (this run's summary has no "
                                        "`analytic` figures).", note=True))
    else:
        parted = [c for c in comparisons if c.verdict == PART]
        if parted:
            section.blocks.append(Paragraph("Where the estimate and the simulation part, and why:"))
            section.blocks.append(Bullets([c.sentence() for c in parted]))
        else:
            section.blocks.append(Paragraph("The estimate and the simulation agree on every component "
                                            "(utilization within 3 points or 10%, p99 wait within "
                                            "1.5x or 0.1 ms)."))
    section.blocks += _image(charts, "utilization")
    return section


def _cache_kafka_section(s: Mapping[str, Any], charts: Mapping[str, Path]) -> Section:
    section = Section("Cache and Kafka")
    cache = s.get("cache") or {}
    if cache:
        section.blocks.append(Paragraph(
            f"Redis hit ratio {pct(cache.get('hit_ratio'))} (Che LRU model "
            f"{pct(cache.get('model_hit_ratio'))}); memory used {fmt(cache.get('memory_used_gb'))} GB of "
            f"{fmt(cache.get('memory_configured_gb'))} GB configured; working set "
            f"{fmt(cache.get('working_set_gb'))} GB."))
        section.blocks += _image(charts, "cache_hit_ratio")
    else:
        section.blocks.append(Paragraph("Cache: not available (no Redis cache in this scenario).",
                                        note=True))
    kafka = s.get("kafka") or {}
    if kafka:
        lag_s = num(kafka.get("consumer_lag_max_s"))
        lag = "-" if lag_s is None else f"{lag_s * 1e3:,.3g} ms"
        section.blocks.append(Paragraph(
            f"Kafka consumer lag max {lag}; at most {fmt(kafka.get('consumer_lag_max_msgs'))} records "
            f"waiting in one partition; {fmt(kafka.get('backlog_at_end_msgs'))} waiting at the end."))
        section.blocks += _image(charts, "kafka_lag")
    else:
        section.blocks.append(Paragraph("Kafka: not available (Kafka is disabled in this scenario).",
                                        note=True))
    return section


def _errors_section(s: Mapping[str, Any]) -> Section:
    section = Section("Errors")
    rows = [[k, "request", fmt(v)] for k, v in (s.get("errors") or {}).items()]
    rows += [[k, "background step", fmt(v)] for k, v in (s.get("async_errors") or {}).items()]
    if rows:
        section.blocks.append(Table(["operation:cause", "kind", "count"], rows, ["bad"] * len(rows),
                                    (0, 1)))
    else:
        section.blocks.append(Paragraph("No errors."))
    return section


def _resilience_section(s: Mapping[str, Any]) -> Section:
    """Per policy edge: calls, retries, attempts per call (retry amplification) and timeouts."""
    section = Section("Resilience")
    edges = edge_retries(s)
    if not edges:
        section.blocks.append(Paragraph("No call policies (timeouts, retries) in this scenario.", note=True))
        return section
    rows = [[e.edge, fmt(e.calls), fmt(e.retries), f"{e.amplification:.2f}", fmt(e.timeouts),
             fmt(e.denied_by_budget)] for e in edges]
    classes = ["bad" if e.amplification >= AMPLIFICATION_BAD else "warn"
               if e.amplification > AMPLIFICATION_WARN else "" for e in edges]
    overall = overall_amplification(edges)
    if len(edges) > 1 and overall is not None:
        rows.append(["all edges", fmt(sum(e.calls for e in edges)), fmt(sum(e.retries for e in edges)),
                     f"{overall:.2f}", fmt(sum(e.timeouts for e in edges)),
                     fmt(sum(e.denied_by_budget for e in edges))])
        classes.append("")
    section.blocks.append(Paragraph("Retry amplification is attempts per call, (calls + retries) / calls: "
                                    "the factor by which retries multiply the load on the callee. Counts "
                                    "cover the whole run, warm-up included."))
    section.blocks.append(Table(["edge", "calls", "retries", "attempts per call", "timeouts",
                                 "retries denied by budget"], rows, classes))
    return section


def _cost_section(s: Mapping[str, Any], charts: Mapping[str, Path]) -> Section:
    section = Section("Cost")
    cost = s.get("cost")
    if not isinstance(cost, Mapping) or not cost:
        section.blocks.append(Paragraph("Cost: not available (this run's summary has no cost figures).",
                                        note=True))
        return section
    total = num(cost.get("total_monthly_usd"))
    per_million = num(cost.get("usd_per_million_messages"))
    line = []
    if total is not None:
        line.append(f"Total {usd(total)} per month")
    if per_million is not None:
        line.append(f"{usd(per_million)} per million messages")
    if line:
        section.blocks.append(Paragraph(", ".join(line) + "."))
    section.blocks += _needed_blocks(cost)
    for key, label in (("monthly_usd", "component"), ("by_kind_usd", "kind")):
        items = numeric_items(cost.get(key))
        if not items:
            continue
        whole = sum(items.values())
        rows = [[k, usd(v), pct(v / whole, 0) if whole > 0 else "-"]
                for k, v in sorted(items.items(), key=lambda kv: -kv[1])]
        section.blocks.append(Table([label, "USD per month", "share"], rows))
    detail = [r for r in cost.get("rows") or [] if isinstance(r, Mapping)]
    if detail:
        section.blocks.append(Paragraph("How each figure is computed:"))
        section.blocks.append(Table(
            ["component", "kind", "USD per month", "basis"],
            [[str(r.get("component", "")), str(r.get("kind", "")),
              usd(r["monthly_usd"]) if num(r.get("monthly_usd")) is not None else "-",
              str(r.get("basis", ""))] for r in detail], text_columns=(0, 1, 3)))
    section.blocks += _image(charts, "cost")
    return section


def _needed_blocks(cost: Mapping[str, Any]) -> list[Block]:
    """The configured fleet's cost beside the needed fleet's (sim.sizing, priced by the same rows):
    by kind, then by component with instance counts; a fleet short of its need is marked "bad"."""
    if "needed" not in cost:
        return []
    needed = cost.get("needed")
    note = str(cost.get("needed_note") or "")
    if not isinstance(needed, Mapping):
        return [Paragraph(f"Needed fleet: not available ({note or 'not sized'}).", note=True)]
    blocks: list[Block] = [Paragraph(
        "Configured and needed fleets, priced by the same rows (only compute differs): the needed fleet "
        f"is {note or 'what capsim size finds the load needs'}.")]
    conf_kind, need_kind = cost.get("by_kind_usd") or {}, needed.get("by_kind_usd") or {}
    rows = [[k, usd(conf_kind[k]), usd(need_kind[k])] for k in conf_kind
            if num(conf_kind.get(k)) is not None and num(need_kind.get(k)) is not None]
    totals = [num(cost.get("total_monthly_usd")), num(needed.get("total_monthly_usd"))]
    rows.append(["total", *("-" if t is None else usd(t) for t in totals)])
    blocks.append(Table(["kind", "configured USD per month", "needed USD per month"], rows))
    conf_n, need_n = cost.get("nodes") or {}, needed.get("nodes") or {}
    conf_usd, need_usd = cost.get("monthly_usd") or {}, needed.get("monthly_usd") or {}
    names = [n for n in conf_usd if n in need_usd]
    comp_rows, classes = [], []
    for n in names:
        have, want = num(conf_n.get(n)), num(need_n.get(n))
        comp_rows.append([n, fmt(have) if have is not None else "-", fmt(want) if want is not None else "-",
                          usd(conf_usd[n]), usd(need_usd[n])])
        classes.append("bad" if have is not None and want is not None and want > have else "")
    if comp_rows:
        blocks.append(Table(["component", "configured nodes", "needed nodes", "configured USD per month",
                             "needed USD per month"], comp_rows, classes))
    return blocks


def _run_facts(s: Mapping[str, Any], scenario_name: str) -> list[str]:
    sample = s.get("sample") or {}
    fraction = num(sample.get("fraction"))
    scale = ("full scale" if fraction is None or fraction >= 1
             else f"sample F={fraction:g} (rates scaled by 1/F)")
    checks = s.get("checks") or {}
    conservation = "holds" if checks.get("conservation_holds") else "FAILED"
    description = str(s.get("description") or "")
    return [
        f"scenario {scenario_name}" + (f": {description}" if description else ""),
        f"engine {s.get('engine', '-')}, seed {s.get('seed', '-')}, {scale}",
        f"{fmt(s.get('sim_seconds'))} s simulated, {fmt(s.get('warmup_seconds'))} s warm-up, "
        f"{fmt(s.get('measured_seconds'))} s measured",
        f"{fmt(s.get('events'))} events in {fmt(s.get('wall_seconds'))} s wall; conservation {conservation}",
    ]


def build_document(summary: Mapping[str, Any], findings: list[Finding], comparisons: list[Comparison],
                   charts: Mapping[str, Path], diagram: str | None = None,
                   topology: tuple[list[Node], list[Edge]] | None = None) -> Document:
    """The report's content: Findings first, then SLOs, headline figures, components, cache and
    Kafka, errors, resilience, cost and the architecture diagram (`diagram`: Mermaid source;
    `topology`: the nodes and edges it shows, drawn by the HTML report)."""
    name = str(summary.get("scenario", "scenario"))
    sections = [Section("Findings", [Findings(findings)])]
    sections.append(_slo_section(summary.get("slo")))
    sections.append(_headline_section(summary, charts))
    breakdown = _breakdown_section(summary)
    if breakdown is not None:
        sections.append(breakdown)
    sections.append(_components_section(summary, comparisons, charts))
    sections.append(_cache_kafka_section(summary, charts))
    sections.append(_errors_section(summary))
    sections.append(_resilience_section(summary))
    sections.append(_cost_section(summary, charts))
    notes = list((summary.get("sample") or {}).get("notes") or [])
    if notes:
        sections.append(Section("Sampling notes", [Bullets([str(n) for n in notes])]))
    arch = Section("Architecture")
    if diagram or topology:
        nodes, edges = topology or ([], [])
        arch.blocks.append(Diagram(diagram or "", tuple(nodes), tuple(edges)))
    else:
        arch.blocks.append(Paragraph("Diagram: not available.", note=True))
    sections.append(arch)
    return Document(title=f"capsim report: {name}", facts=_run_facts(summary, name), sections=sections)
