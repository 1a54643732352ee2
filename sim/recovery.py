"""Availability over time and recovery from faults, judged on the per-window series.

Pure functions of `timeseries` rows (one per simulated second, rates fleet-wide) and the run's
client flows (the flows clients start, `System.client_flows()`: send and read in the messaging
preset; a triggered flow such as delivery is not a client's request):

- a window's availability is succeeded / (succeeded + failed) of the client flows' requests
  completing in it; the SLO held in a window when that is at least the scenario's
  `availability_target`;
- "nines" of an availability a: -log10(1 - a) (0.999 -> 3);
- a fault's recovery: after its window ends, the first window from which goodput (client
  requests succeeded per second) stays at or above `RECOVERED_SHARE` of the offered load for
  `STABLE_WINDOWS` windows in a row. seconds_to_recover runs from the fault's end to the start of
  that window; a fault that never recovers before the run ends has recovered: false.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sim.faults import Fault

RECOVERED_SHARE = 0.95
STABLE_WINDOWS = 3
MESSAGING_CLIENT_FLOWS = ("send", "read")  # the messaging preset's client flows


def nines(availability: float) -> float:
    if not math.isfinite(availability):
        return math.nan
    return math.inf if availability >= 1.0 else -math.log10(1.0 - availability)


def _total(row: dict[str, float], flows: Sequence[str], suffix: str) -> float:
    return sum(row[f"{flow}{suffix}"] for flow in flows)


def window_availability(row: dict[str, float], flows: Sequence[str] = MESSAGING_CLIENT_FLOWS) -> float:
    ok = _total(row, flows, "_succeeded_per_sec")
    failed = _total(row, flows, "_failed_per_sec")
    return ok / (ok + failed) if ok + failed else math.nan


def availability_windows(rows: list[dict[str, float]], target: float, from_s: float,
                         flows: Sequence[str] = MESSAGING_CLIENT_FLOWS) -> dict[str, Any]:
    measured = [r for r in rows if r["t_s"] > from_s]
    values = [window_availability(r, flows) for r in measured]
    values = [v for v in values if math.isfinite(v)]
    met = sum(v >= target for v in values)
    return {
        "target": target,
        "windows": len(values),
        "windows_met": met,
        "share_met": met / len(values) if values else math.nan,
        "worst_window": min(values) if values else math.nan,
    }


def recovery(rows: list[dict[str, float]], fault: Fault, window_s: float = 1.0,
             flows: Sequence[str] = MESSAGING_CLIENT_FLOWS) -> dict[str, Any]:
    after = [r for r in rows if r["t_s"] - window_s >= fault.end_s - 1e-9]
    streak = 0
    for i, row in enumerate(after):
        offered = _total(row, flows, "_offered_per_sec")
        goodput = _total(row, flows, "_succeeded_per_sec")
        streak = streak + 1 if offered == 0 or goodput >= RECOVERED_SHARE * offered else 0
        if streak == STABLE_WINDOWS:
            first = after[i - STABLE_WINDOWS + 1]
            return {"recovered": True, "seconds_to_recover": max(0.0, first["t_s"] - window_s - fault.end_s)}
    return {"recovered": False, "seconds_to_recover": None}


def fault_report(rows: list[dict[str, float]], faults: list[Fault],
                 flows: Sequence[str] = MESSAGING_CLIENT_FLOWS) -> list[dict[str, Any]]:
    return [
        {"kind": f.kind, "label": f.label(), "start_s": f.start_s, "end_s": f.end_s,
         "component": f.component, "recovery": recovery(rows, f, flows=flows)}
        for f in faults
    ]
