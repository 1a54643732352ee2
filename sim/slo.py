"""SLO verdicts: each objective's figure looked up in a summary and held against its bound.

A metric is a dotted path into summary.json; which paths name a figure is `sim.summary`'s
`figure_path_problem` (the scenario checks each SLO's metric with it when it loads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sim.scenario import Slo

MET, MISSED, NOT_MEASURED = "met", "missed", "not measured"


def lookup(summary: Mapping[str, Any], dotted: str) -> float | None:
    """The number at `dotted` (e.g. `latency_ms.read.p99`) in `summary`; None if absent or not a
    finite number (NaN means the run did not measure it)."""
    node: Any = summary
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    value = float(node)
    return value if math.isfinite(value) else None


def target_text(slo: Slo) -> str:
    """'<= 100' for a maximum, '>= 0.999' for a minimum."""
    return f"<= {slo.max:g}" if slo.max is not None else f">= {slo.min:g}"


def evaluate_slo(summary: Mapping[str, Any], slo: Slo) -> dict[str, Any]:
    """{metric, target, actual, met, status} for one objective; a missing figure is not met."""
    actual = lookup(summary, slo.metric)
    if actual is None:
        status = NOT_MEASURED
    elif slo.max is not None:
        status = MET if actual <= slo.max else MISSED
    else:
        assert slo.min is not None
        status = MET if actual >= slo.min else MISSED
    return {
        "metric": slo.metric,
        "target": target_text(slo),
        "actual": actual,
        "met": status == MET,
        "status": status,
    }


def evaluate_slos(summary: Mapping[str, Any], slos: Iterable[Slo]) -> dict[str, dict[str, Any]]:
    """{name: {metric, target, actual, met, status}} in the scenario's order. Two objectives with
    the same name keep both, the second as 'name (2)'."""
    out: dict[str, dict[str, Any]] = {}
    for slo in slos:
        name = slo.name or slo.metric
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name} ({n})"
        out[key] = evaluate_slo(summary, slo)
    return out
