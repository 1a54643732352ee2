"""The Findings that open a report: what an architect reads first.

In order: the bottleneck (the station with the highest utilization), for each operation the
component contributing most to its p99, the SLOs missed, what a sample cell cannot show (its
warnings in summary.json's `sample`), capacity warnings from `capsim size`,
one line per injected fault, errors, Kafka lag, retry amplification above 1.1 attempts per call
(sim/report/resilience.py), where the analytic estimate and the simulation
part, and the monthly cost. Every line is plain text with a level: "bad" (act on it), "warn"
(look at it) or "info".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.report.comparison import PART, Comparison
from sim.report.fmt import ms, num, numeric_items, usd
from sim.report.resilience import AMPLIFICATION_BAD, AMPLIFICATION_WARN, amplification_line, edge_retries
from sim.slo import MISSED, NOT_MEASURED

BAD, WARN, INFO = "bad", "warn", "info"
HOT_UTILIZATION = 0.9
LAG_WARN_S = 1.0
AVAILABILITY_BAD = 0.999  # errors below three nines are "act on it"; above, "look at it"


@dataclass(frozen=True)
class Finding:
    text: str
    level: str = INFO


def bottleneck(summary: Mapping[str, Any], target_utilization: float = 0.7) -> Finding:
    """The station whose hottest instance is the busiest."""
    comps = {name: c for name, c in (summary.get("components") or {}).items()
             if isinstance(c, Mapping) and num(c.get("utilization_max")) is not None}
    if not comps:
        return Finding("Bottleneck: not available (no per-component utilization in this run)", INFO)
    name, c = max(comps.items(), key=lambda kv: kv[1]["utilization_max"])
    u_max = float(c["utilization_max"])
    u_mean = num(c.get("utilization_mean"))
    n = c.get("simulated_instances", c.get("instances"))
    text = f"Bottleneck: {name}, hottest instance at {u_max:.1%} utilization"
    if n == 1:
        text += " (1 simulated instance)"
    elif u_mean is not None:
        text += f" (mean {u_mean:.1%} over {n} simulated instances"
        if u_mean > 0 and u_max / u_mean > 1.25 and u_max - u_mean > 0.1:
            text += f"; a hot spot at {u_max / u_mean:.2g}x the mean"
        text += ")"
    wait = num(c.get("queue_wait_ms_p99"))
    if wait is not None:
        text += f", p99 queue wait {ms(wait)}"
    level = BAD if u_max >= HOT_UTILIZATION else WARN if u_max >= target_utilization else INFO
    if level != INFO:
        text += f"; above the {target_utilization:.0%} planning target" if level == WARN else \
            f"; at or above {HOT_UTILIZATION:.0%}, queues grow sharply with any more load"
    return Finding(text, level)


def p99_contributors(summary: Mapping[str, Any]) -> list[Finding]:
    """Per operation, the component with the largest share of the time in its slowest 1%."""
    breakdown = summary.get("latency_breakdown")
    if not isinstance(breakdown, Mapping) or not breakdown:
        return [Finding("p99 contributors per operation: not available (this run's summary has no "
                        "latency_breakdown)", INFO)]
    out = []
    latency = summary.get("latency_ms") or {}
    for op, entry in breakdown.items():
        if not isinstance(entry, Mapping):
            continue
        shares = {k: v for k, v in (entry.get("shares") or {}).items() if num(v) is not None}
        if not shares:
            if num((latency.get(op) or {}).get("count")):  # measured, yet no breakdown
                out.append(Finding(f"{op} p99: no breakdown measured", INFO))
            continue
        top, share = max(shares.items(), key=lambda kv: kv[1])
        p99 = num((latency.get(op) or {}).get("p99"))
        tail = num(entry.get("tail_from_ms"))
        head = f"{op} p99" + (f" {ms(p99)}" if p99 is not None else "")
        where = f"requests at or above {ms(tail)}" if tail is not None else "the slowest 1%"
        runner = [kv for kv in sorted(shares.items(), key=lambda kv: kv[1], reverse=True)[1:2]
                  if kv[1] >= 0.01]
        then = f"; next {runner[0][0]} {runner[0][1]:.0%}" if runner else ""
        out.append(Finding(f"{head}: {top} contributes most, {share:.0%} of the time in {where}{then}",
                           INFO))
    return out


def slo_findings(slo: Mapping[str, Any] | None) -> list[Finding]:
    if not slo:
        return [Finding("SLOs: none declared (add slo entries to the scenario)", INFO)]
    out = []
    for name, v in slo.items():
        status = v.get("status", "met" if v.get("met") else MISSED)
        if status == MISSED:
            metric, target = v.get("metric", ""), v.get("target", "")
            label = "" if name == f"{metric} {target}" else f"{name}: "
            out.append(Finding(f"SLO missed: {label}{metric} is {v.get('actual'):.4g}, target {target}",
                               BAD))
        elif status == NOT_MEASURED:
            out.append(Finding(f"SLO not measured: {name} ({v.get('metric', 'its metric')} is not in "
                               "this run's summary), counted as not met", WARN))
    if not out:
        out.append(Finding(f"SLOs: all {len(slo)} met", INFO))
    return out


def _recovery_text(recovery: Any) -> str:
    if not isinstance(recovery, Mapping) or "recovered" not in recovery:
        return ""
    if not recovery.get("recovered"):
        return "; not recovered by the end of the run"
    seconds = num(recovery.get("seconds_to_recover"))
    return "; recovered" + (f" {seconds:g} s after it ended" if seconds is not None else "")


def describe_fault(item: Any) -> str:
    """One line for an injected fault, whatever shape the fault record has: its label (or
    summary/description) and, when known, how long the system took to recover."""
    if isinstance(item, str):
        return item
    if not isinstance(item, Mapping):
        return str(item)
    for key in ("label", "summary", "description", "text"):
        if isinstance(item.get(key), str):
            return item[key] + _recovery_text(item.get("recovery"))
    head = " ".join(str(item[k]) for k in ("kind", "type", "name") if k in item)
    target = " ".join(str(item[k]) for k in ("component", "target", "instance") if k in item)
    rest = ", ".join(f"{k}={v}" for k, v in item.items()
                     if k not in {"kind", "type", "name", "component", "target", "instance"})
    return " ".join(p for p in (head, f"on {target}" if target else "", f"({rest})" if rest else "")
                    if p) or "fault"


def fault_findings(faults: Any) -> list[Finding]:
    if isinstance(faults, Mapping):
        items: list[Any] = [{"name": k, **v} if isinstance(v, Mapping) else f"{k}: {v}"
                            for k, v in faults.items()]
    elif isinstance(faults, list | tuple):
        items = list(faults)
    else:
        return []
    return [Finding(f"Fault: {describe_fault(item)}", WARN) for item in items]


def error_findings(summary: Mapping[str, Any]) -> list[Finding]:
    errors = {k: v for k, v in (summary.get("errors") or {}).items() if num(v)}
    out = []
    if errors:
        total = sum(errors.values())
        top = ", ".join(f"{k} {v:,}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:3])
        overall = num((summary.get("availability") or {}).get("overall"))
        avail = f"; availability {overall:.4%}" if overall is not None else ""
        level = BAD if overall is None or overall < AVAILABILITY_BAD else WARN
        out.append(Finding(f"Errors: {total:,} failed requests ({top}){avail}", level))
    if not (summary.get("checks") or {}).get("conservation_holds", True):
        out.append(Finding("Conservation check failed: requests were lost in the simulation (see "
                           "summary.json 'requests')", BAD))
    return out


def kafka_findings(summary: Mapping[str, Any]) -> list[Finding]:
    kafka = summary.get("kafka") or {}
    lag = num(kafka.get("consumer_lag_max_s"))
    backlog = num(kafka.get("backlog_at_end_msgs"))
    if lag is None or lag < LAG_WARN_S:
        return []
    tail = f", {backlog:,.0f} messages still waiting at the end" if backlog else ""
    return [Finding(f"Kafka consumers fall behind: lag reached {lag:.3g} s{tail}", BAD)]


def retry_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """Retries that add more than 10% to the load their callees see (red from 2x: retries at least
    doubled it)."""
    edges = edge_retries(summary)
    worst = max((e.amplification for e in edges), default=1.0)
    if worst <= AMPLIFICATION_WARN:
        return []
    timeouts = sum(e.timeouts for e in edges)
    text = (f"Retries amplify load: {amplification_line(edges)}"
            + (f"; {timeouts:,} timeouts" if timeouts else "")
            + "; every retry is one more request on the callee (see 'Resilience')")
    return [Finding(text, BAD if worst >= AMPLIFICATION_BAD else WARN)]


def sample_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """What a sample cell (F < 1) cannot show, from summary.json's `sample.warnings`: fleets whose
    per-instance load is not the design's, and the busiest keys against their one instance."""
    sample = summary.get("sample") or {}
    fraction = num(sample.get("fraction"))
    if fraction is None or fraction >= 1:
        return []
    out = [Finding(f"Sample cell F={fraction:g}: {w.get('text', '')}",
                   {"bad": BAD, "warn": WARN}.get(str(w.get("level")), INFO))
           for w in sample.get("warnings") or [] if isinstance(w, Mapping)]
    return sorted(out, key=lambda f: {BAD: 0, WARN: 1}.get(f.level, 2))


def capacity_finding(line: str) -> Finding:
    """One `capsim size` finding line (sim.sizing.SizePlan.warnings): "CRITICAL ..." (a fleet short
    of what its load needs, or unstable by Erlang C) is "bad", red; "WARN ..." is "warn"."""
    if line.startswith("CRITICAL"):
        return Finding(f"Capacity, cannot hold: {line.removeprefix('CRITICAL').strip()}", BAD)
    return Finding(f"Capacity: {line.removeprefix('WARN').strip()}", WARN)


def comparison_finding(comparisons: list[Comparison]) -> list[Finding]:
    if not comparisons or all(c.verdict == "no estimate" for c in comparisons):
        return []
    parted = [c.component for c in comparisons if c.verdict == PART]
    if not parted:
        return [Finding("Analytic M/M/c estimate and simulation agree on every component", INFO)]
    return [Finding(f"Analytic estimate and simulation part on {', '.join(parted)} "
                    "(see 'Components' for where and why)", INFO)]


def cost_finding(summary: Mapping[str, Any]) -> list[Finding]:
    cost = summary.get("cost")
    if not isinstance(cost, Mapping):
        return []
    total = num(cost.get("total_monthly_usd"))
    if total is None or total <= 0:  # nothing priced (no instance types): nothing to say
        return []
    text = f"Cost: {usd(total)} per month"
    per_million = num(cost.get("usd_per_million_messages"))
    if per_million is not None:
        text += f", {usd(per_million)} per million messages"
    monthly = numeric_items(cost.get("monthly_usd"))
    if monthly and total > 0:
        top, amount = max(monthly.items(), key=lambda kv: kv[1])
        text += f"; largest: {top} {usd(amount)} ({amount / total:.0%})"
    return [Finding(text, INFO)]


def findings(summary: Mapping[str, Any], size_warnings: list[str] | None = None,
             comparisons: list[Comparison] | None = None,
             target_utilization: float = 0.7) -> list[Finding]:
    """The Findings section, most important first."""
    out = [bottleneck(summary, target_utilization)]
    out += p99_contributors(summary)
    out += slo_findings(summary.get("slo"))
    out += sample_findings(summary)
    out += [capacity_finding(w) for w in size_warnings or []]
    out += fault_findings(summary.get("faults"))
    out += error_findings(summary)
    out += kafka_findings(summary)
    out += retry_findings(summary)
    out += comparison_finding(comparisons or [])
    out += cost_finding(summary)
    return out
