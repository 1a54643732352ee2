"""Retry amplification: how many attempts each call took, per policy edge and overall.

summary.json's `resilience.edges` counts, per edge with a call policy (`client->gateway`, ...),
the calls made and the retries issued. Every retry is one more attempt on the callee, so the load
the callee sees is (calls + retries) / calls times the load the caller offers: 1.0 means no
retries, 2.0 means retries doubled the callee's load. Overall is the same ratio over all edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.report.fmt import num

AMPLIFICATION_WARN = 1.1  # more than 10% extra attempts: worth a Finding
AMPLIFICATION_BAD = 2.0  # retries at least doubled the callee's load: act on it


@dataclass(frozen=True)
class EdgeRetries:
    edge: str
    calls: int
    retries: int
    timeouts: int
    denied_by_budget: int

    @property
    def amplification(self) -> float:
        return amplification(self.calls, self.retries)


def amplification(calls: float, retries: float) -> float:
    """Attempts per call, (calls + retries) / calls; 1.0 when nothing was called."""
    return (calls + retries) / calls if calls > 0 else 1.0


def edge_retries(summary: Mapping[str, Any]) -> list[EdgeRetries]:
    """The edges in summary.json's `resilience.edges` that made calls, in the summary's order."""
    resilience = summary.get("resilience")
    edges = resilience.get("edges") if isinstance(resilience, Mapping) else None
    out = []
    for name, stats in edges.items() if isinstance(edges, Mapping) else ():
        if not isinstance(stats, Mapping):
            continue
        calls = num(stats.get("calls"))
        if not calls:
            continue
        out.append(EdgeRetries(str(name), int(calls), int(num(stats.get("retries")) or 0),
                               int(num(stats.get("timeouts")) or 0),
                               int(num(stats.get("retries_denied_by_budget")) or 0)))
    return out


def overall_amplification(edges: list[EdgeRetries]) -> float | None:
    """Attempts per call over every edge; None when no edge made calls."""
    calls = sum(e.calls for e in edges)
    return amplification(calls, sum(e.retries for e in edges)) if calls else None


def amplification_line(edges: list[EdgeRetries]) -> str | None:
    """`2.21 attempts per call (client->gateway 2.21: 330,892 retries on 274,318 calls)`, or None
    without call policies."""
    overall = overall_amplification(edges)
    if overall is None:
        return None
    per_edge = "; ".join(f"{e.edge} {e.amplification:.2f}: {e.retries:,} retries on {e.calls:,} calls"
                         for e in edges)
    return f"{overall:.2f} attempts per call ({per_edge})"
