"""Two finished runs' headline figures side by side: A, B, B - A and, when both runs were replicated,
a 95% confidence interval of the difference.

The runs are independent (each has its own replications), so the interval is Welch's: each run's
`ci95[path]` is mean +- t(0.975, n-1) * s / sqrt(n), which gives back its standard error; the
difference of the means has standard error sqrt(se_a^2 + se_b^2) and Welch-Satterthwaite degrees of
freedom. (`capsim compare` pairs replications by seed, a tighter interval; two runs chosen on a page
need not share seeds.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.experiments.stats import t_quantile
from sim.slo import lookup

LEVEL = 0.95


def headline(summary: Mapping[str, Any]) -> list[str]:
    """Per flow p50, p99, throughput and availability; overall availability; monthly cost."""
    flows = list(summary.get("latency_ms") or {})
    paths: list[str] = []
    for flow in flows:
        paths += [f"latency_ms.{flow}.p50", f"latency_ms.{flow}.p99", f"throughput_per_sec.{flow}",
                  f"availability.{flow}"]
    return [*paths, "availability.overall", "cost.total_monthly_usd", "cost.usd_per_million_messages"]


def _mean_se(summary: Mapping[str, Any], path: str) -> tuple[float, float, int] | None:
    """(mean, standard error, replications) from a replicated run's ci95, or None."""
    reps = int((summary.get("replications") or {}).get("count") or 1)
    bounds = (summary.get("ci95") or {}).get(path)
    if reps < 2 or not bounds or len(bounds) != 2:
        return None
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    half = (hi - lo) / 2
    return (lo + hi) / 2, half / t_quantile(0.5 + LEVEL / 2, reps - 1), reps


def welch_interval(a: tuple[float, float, int], b: tuple[float, float, int]) -> list[float]:
    """95% CI of mean_b - mean_a from each side's (mean, standard error, n) (pure)."""
    (ma, sa, na), (mb, sb, nb) = a, b
    var = sa * sa + sb * sb
    diff = mb - ma
    if var == 0:
        return [diff, diff]
    df = var * var / ((sa**4) / (na - 1) + (sb**4) / (nb - 1))
    half = t_quantile(0.5 + LEVEL / 2, df) * math.sqrt(var)
    return [diff - half, diff + half]


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows {figure, a, b, diff, ci95} for the headline figures either run has (pure)."""
    paths = list(dict.fromkeys([*headline(a), *headline(b)]))
    rows = []
    for path in paths:
        va, vb = lookup(a, path), lookup(b, path)
        if va is None and vb is None:
            continue
        diff = vb - va if va is not None and vb is not None else None
        sa, sb = _mean_se(a, path), _mean_se(b, path)
        ci = welch_interval(sa, sb) if sa is not None and sb is not None else None
        rows.append({"figure": path, "a": va, "b": vb, "diff": diff, "ci95": ci})
    return rows
