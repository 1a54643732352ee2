"""Two engines' replications of one scenario compared figure by figure (shared by the calendar's
agreement tests): Welch's two-sample t at a Bonferroni-split family alpha, plus each histogram's
relative quantile error for quantiles; and figures of a summary to compare (a flow's latency
quantile or availability, an error cause's share of its flow's requests, an edge's counts per
call, a component's share of a flow's tail breakdown)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from sim.histogram import GROWTH

HIST = math.sqrt(GROWTH) - 1  # the histogram's relative quantile error, per engine
Summary = dict[str, Any]
Figure = tuple[str, Callable[[Summary], float], bool]  # (label, getter, is a quantile)


def welch(a: list[float], b: list[float], alpha: float) -> tuple[float, float, float]:
    """(difference of means, SE of the difference, two-sided Student-t critical value at alpha and
    the Welch-Satterthwaite degrees of freedom)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1)) if se > 0 else 1.0
    return float(xa.mean() - xb.mean()), se, float(stats.t.ppf(1 - alpha / 2, df))


def disagreements(name: str, figures: list[Figure], cal: list[Summary], des: list[Summary],
                  family_alpha: float, engine: str = "calendar") -> list[str]:
    """One line per figure whose calendar and DES means differ beyond t x SE (t at family_alpha
    split evenly over the figures: Bonferroni), plus both histograms' error for a quantile. Every
    comparison is printed (pytest -s shows them)."""
    alpha = family_alpha / len(figures)
    failures = []
    for label, get, quantile in figures:
        a, b = [get(s) for s in cal], [get(s) for s in des]
        diff, se, t = welch(a, b, alpha)
        tol = t * se + (HIST * (abs(np.mean(a)) + abs(np.mean(b))) if quantile else 0.0)
        line = (f"{name} {label}: {engine} {np.mean(a):.5g}, des {np.mean(b):.5g}, difference {diff:+.3g}, "
                f"tolerance {tol:.3g} (t {t:.2f} x SE {se:.3g})")
        print(line)
        if not abs(diff) <= tol:
            failures.append(line)
    return failures


# Figures of a summary, for `disagreements`


def latency(flow: str, q: str) -> Figure:
    return f"latency_ms.{flow}.{q}", lambda s: s["latency_ms"][flow][q], q != "mean"


def availability(flow: str) -> Figure:
    return f"availability.{flow}", lambda s: s["availability"][flow], False


def flows(*names: str, avail: bool = True) -> list[Figure]:
    """p50 and p99 of each flow, and its availability unless it never fails (an exact check)."""
    out: list[Figure] = []
    for f in names:
        out += [latency(f, "p50"), latency(f, "p99")] + ([availability(f)] if avail else [])
    return out


def share(key: str) -> Figure:
    """An error cause ("flow:component.cause") per request of its flow sent."""
    flow = key.split(":")[0]
    return (f"errors[{key}] / {flow} sent",
            lambda s: s["errors"].get(key, 0) / s["requests"][flow]["sent"], False)


def per_call(edge: str, *path: str) -> Figure:
    """An edge's count (a path under resilience.edges[edge], e.g. ("timeouts",)) per first call."""
    def get(s: Summary) -> float:
        x = s["resilience"]["edges"][edge]
        for key in path:
            x = x[key]
        return x / s["resilience"]["edges"][edge]["calls"]
    return f"{edge} {'.'.join(path)} per call", get, False


def tail_share(flow: str, part: str) -> Figure:
    """A part's share of a flow's tail breakdown (its requests at or above p99; 0 where none of them
    marked it)."""
    return (f"latency_breakdown.{flow}.shares.{part}",
            lambda s: s["latency_breakdown"][flow]["shares"].get(part, 0.0), False)
