"""Which summary.json figures experiments report, and how to label them.

A figure is a dotted path into summary.json (`latency_ms.read.p99`). The headline figures are
the ones an architect compares: latency percentiles and mean per flow (the run's own request
types: send, read, delivery in the messaging preset; resolve, shorten in a URL shortener), throughput,
availability, per-component utilization and p99 queue wait, the cache hit ratio, the Kafka
consumer lag, the monthly cost, and every figure a scenario's SLOs name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sim.scenario import Scenario
from sim.slo import lookup

LATENCY_STATS = ("mean", "p50", "p90", "p99", "p999")
COMPONENT_FIGURES = ("utilization_mean", "utilization_max", "queue_wait_ms_p99")
COST = "cost.total_monthly_usd"


def headline_paths(summary: Mapping[str, Any], scenario: Scenario | None = None) -> list[str]:
    """The headline figures `summary` has numbers for, in a stable order."""
    paths: list[str] = []
    latency = summary.get("latency_ms") or {}
    flows = flows_of(summary)
    measured = [op for op in flows if (latency.get(op) or {}).get("count")]
    for op in measured:
        paths += [f"latency_ms.{op}.{stat}" for stat in LATENCY_STATS]
    paths += [f"throughput_per_sec.{op}" for op in measured]
    paths += [f"availability.{key}" for key in (*flows, "overall")]
    paths += [COST, "cache.hit_ratio", "kafka.consumer_lag_max_s"]
    for name in summary.get("components") or {}:
        paths += [f"components.{name}.{fig}" for fig in COMPONENT_FIGURES]
    if scenario is not None:
        paths += [slo.metric for slo in scenario.slo]
    return [p for p in dict.fromkeys(paths) if lookup(summary, p) is not None]


def flows_of(summary: Mapping[str, Any]) -> list[str]:
    """The run's flows, in summary.json's order (the keys of its latency_ms)."""
    latency = summary.get("latency_ms")
    return list(latency) if isinstance(latency, Mapping) else []


def values_at(summaries: Iterable[Mapping[str, Any]], path: str) -> list[float]:
    """The figure at `path` in each summary (NaN where a summary lacks it)."""
    out = []
    for s in summaries:
        v = lookup(s, path)
        out.append(math.nan if v is None else v)
    return out


def unit_of(path: str) -> str:
    """The unit a figure is in, from its name (capsim puts units in names)."""
    last = path.split(".")[-1]
    if path.startswith("latency_ms") or last.endswith("_ms") or "_ms_" in last:
        return "ms"
    if last.endswith("_s"):
        return "s"
    if path.startswith(("throughput_per_sec", "offered_per_sec")) or last.endswith("per_sec"):
        return "per s"
    if "usd" in last:
        return "USD/month" if "monthly" in last else "USD"
    if path.startswith(("availability", "cache.hit_ratio")) or "utilization" in last or "ratio" in last:
        return "fraction"
    return ""


def label_of(path: str) -> str:
    """`read p99 latency (ms)` for `latency_ms.read.p99`; the path with its unit otherwise."""
    parts = path.split(".")
    unit = unit_of(path)
    suffix = f" ({unit})" if unit else ""
    if parts[0] == "latency_ms" and len(parts) == 3:
        return f"{parts[1]} {parts[2]} latency{suffix}"
    if parts[0] == "throughput_per_sec" and len(parts) == 2:
        return f"{parts[1]} throughput{suffix}"
    if parts[0] == "availability" and len(parts) == 2:
        return f"{parts[1]} availability{suffix}"
    if path == COST:
        return f"monthly cost{suffix}"
    return f"{path}{suffix}"
