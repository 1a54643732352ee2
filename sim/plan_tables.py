"""The capacity plan (sim/sizing.py's `SizePlan`) as tables and markdown: what `capsim size` prints
and writes to size.md. Pure formatting of the plan's figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.components.dimensions import CRITICAL
from sim.components.units import amount as _amount
from sim.components.units import number as _n
from sim.cost import KINDS, usd_per_million

if TYPE_CHECKING:
    from sim.sizing import SizePlan


def plan_table(plan: SizePlan) -> tuple[list[str], list[list[str]]]:
    head = ["component", "instance type", "binding", "needed", "configured", "headroom",
            "$/month needed", "$/month configured"]  # Redis counts: shards x (1 + replicas)
    rows = [[c.component, c.instance_type or "-", c.binding, _count(c.needed, c.nodes_per_instance),
             _count(c.configured, c.nodes_per_instance), f"{c.headroom:+.0%}",
             _usd(c.monthly_usd_needed), _usd(c.monthly_usd_configured)] for c in plan.components]
    fleets = {c.component for c in plan.components}
    for name in plan.cost_needed.by_component:  # e.g. cross_region: priced, not a fleet
        if name not in fleets:
            rows.append([name, "-", "-", "-", "-", "-", _usd(plan.cost_needed.by_component[name]),
                         _usd(plan.cost_configured.by_component.get(name))])
    rows.append(["total", "", "", "", "", "", _usd(plan.monthly_usd_needed),
                 _usd(plan.monthly_usd_configured)])
    return head, rows

def cost_table(plan: SizePlan) -> tuple[list[str], list[list[str]]]:
    """Monthly cost by kind, the configured and the needed fleet side by side."""
    head = ["kind", "$/month configured", "$/month needed", "difference"]
    conf, need = plan.cost_configured.by_kind, plan.cost_needed.by_kind
    rows = [[k, _usd(conf[k]), _usd(need[k]), _usd_delta(need[k] - conf[k])] for k in KINDS]
    total_c, total_n = plan.monthly_usd_configured, plan.monthly_usd_needed
    rows.append(["total", _usd(total_c), _usd(total_n), _usd_delta(total_n - total_c)])
    if plan.design:  # a design has requests (its rated flows), not messages
        month_s = plan.cost_configured.seconds_per_month
        rows.append(["per million requests",
                     _usd2(usd_per_million(total_c, plan.requests_per_sec, month_s)),
                     _usd2(usd_per_million(total_n, plan.requests_per_sec, month_s)), ""])
    else:
        rows.append(["per million messages", _usd2(plan.cost_configured.usd_per_million_messages),
                     _usd2(plan.cost_needed.usd_per_million_messages), ""])
    return head, rows

def dimension_table(plan: SizePlan) -> tuple[list[str], list[list[str]]]:
    head = ["component", "dimension", "demand (fleet)", "one instance holds",
            "needed (every zone up)", "configured", "headroom"]
    rows = []
    for c in plan.components:
        for d in c.dimensions:
            mark = " (binding)" if d.name == c.binding else ""
            needed = f"{d.needed:,}" + (f" ({d.needed_all_zones:,})" if d.needed != d.needed_all_zones
                                        else "")
            rows.append([c.component, d.name + mark, _amount(d.demand, d.unit),
                         _amount(d.per_instance, d.unit), needed, f"{c.configured:,}",
                         f"{c.configured / d.needed - 1:+.0%}" if d.needed else "-"])
    return head, rows

def queueing_table(plan: SizePlan) -> tuple[list[str], list[list[str]]]:
    head = ["component", "ops/s", "ops/s each", "servers", "service ms", "util",
            "P(wait)", "wait mean ms", "wait p99 ms"]
    rows = []
    for c in plan.components:
        e = c.estimate
        rows.append([c.component, _rate(c.ops_per_sec), _rate(e.arrivals_per_sec), str(e.servers),
                     _num(e.service_ms),
                     f"{e.utilization:.1%}" + ("" if e.stable else " (unstable)"),
                     f"{e.p_wait:.3f}", _num(e.wait_ms_mean), _num(e.wait_ms_p99)])
    return head, rows


def markdown(plan: SizePlan) -> str:
    """size.md: the findings, the plan, cost, demand by dimension and the queueing estimate."""
    lines = [f"# Capacity plan: {plan.scenario}", "",
             f"Catalog {plan.catalog} ({plan.hours_per_month:g} h/month); {plan.facts()}.",
             "Both fleets are priced by the same rows (compute, storage, network, requests): "
             "only the instance counts differ.", ""]
    critical = [f for f in plan.findings if f.severity == CRITICAL]
    warns = [f for f in plan.findings if f.severity != CRITICAL]
    if critical:
        lines += ["## Cannot hold (critical)", "",
                  *[f"- **{f.component} {f.dimension}**: {f.message}" for f in critical], ""]
    if warns:
        lines += ["## Warnings", "", *[f"- **{f.component} {f.dimension}**: {f.message}"
                                       for f in warns], ""]
    lines += ["## Plan", "", *_md_table(*plan.plan_table()), "",
              "## Cost, configured and needed", "", *_md_table(*plan.cost_table()), "",
              "## Demand by dimension", "", *_md_table(*plan.dimension_table()), ""]
    for c in plan.components:
        for d in c.dimensions:
            lines.append(f"- {c.component} {d.name}: {d.basis}; one instance: {d.capacity_basis}"
                         + (f"; {d.zone_basis}" if d.zone_basis else ""))
    lines += ["", "## Queueing estimate (M/M/c on the configured fleet)", "",
              *_md_table(*plan.queueing_table()), "",
              "Erlang C with Poisson arrivals and exponential service, load spread evenly; the p99 "
              "wait is P(Wq > t) = C exp(-(c mu - lambda) t) at 1%.", ""]
    if plan.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in plan.notes], ""]
    return "\n".join(lines)


def _count(instances: int, nodes_per_instance: int) -> str:
    """'1,322' or, for Redis with a replica per shard, '1,322 x2' (shards x nodes per shard)."""
    if nodes_per_instance == 1:
        return f"{instances:,}"
    return f"{instances:,} x{nodes_per_instance}"


def _usd_delta(x: float) -> str:
    return f"+${x:,.0f}" if x >= 0 else f"-${-x:,.0f}"


def _usd2(x: float) -> str:
    return "-" if not math.isfinite(x) else f"${x:,.2f}"


def _num(x: float) -> str:
    return "-" if not math.isfinite(x) else _n(x)


def _rate(x: float) -> str:
    """Compact: 11,058,275 -> '11.06M'."""
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.4g}{suffix}"
    return _num(x)


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.0f}"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out
