"""A finished run's verdict for the page: the report's Findings, SLO verdicts, cost, plan warnings,
and per-instance utilization. Built from the same functions the CLI's report uses (sim/report,
sim/sizing), never a second copy of their rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from sim.report.comparison import compare
from sim.report.findings import findings
from sim.scenario import Scenario
from sim.slo import evaluate_slos


def verdict_of(summary: Mapping[str, Any], scenario: Scenario, plan_warnings: list[str]) -> dict[str, Any]:
    """{"findings": [text], "slos": [{name, met, actual, target}], "cost": {monthly_usd, usd_per_million},
    "plan_warnings": [the capacity plan's CRITICAL and WARN lines]}."""
    slo = summary.get("slo")
    if slo is None:
        slo = evaluate_slos(dict(summary), scenario.slo)
    # the plan's lines have their own panel (plan_warnings): the findings here leave them out
    lines = findings({**summary, "slo": slo}, [], compare(dict(summary), scenario),
                     scenario.capacity.target_utilization)
    cost = summary.get("cost") or {}
    return {
        "findings": [f.text for f in lines],
        "slos": [{"name": name, "met": bool(v.get("met")), "actual": v.get("actual"),
                  "target": v.get("target")} for name, v in (slo or {}).items()],
        "cost": {"monthly_usd": cost.get("total_monthly_usd"),
                 "usd_per_million": cost.get("usd_per_million_messages")},
        "plan_warnings": list(plan_warnings),
    }


def utilization_of(components: pd.DataFrame) -> dict[str, list[float]]:
    """Per-instance utilization by component, in instance order, from a run's components frame."""
    if components.empty or not {"component", "instance", "utilization"} <= set(components.columns):
        return {}
    out: dict[str, list[float]] = {}
    for name, frame in components.groupby("component", sort=False):
        out[str(name)] = [float(u) for u in frame.sort_values("instance")["utilization"]]
    return out
