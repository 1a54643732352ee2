"""`warmup_s: auto`: the warm-up found by MSER-5 on the per-window series of pilot runs.

The engine measures from `warmup_s`, and a run's latency histograms cannot be cut afterwards,
so the automatic warm-up takes two passes over the same sample paths:

1. pilot: every replication runs with `warmup_s: 0`. Its per-window (1 s) series are recorded
   whatever the warm-up, and the warm-up does not change the sample path (the same seed gives
   the same arrivals and service times), so the pilot *is* the run, unmeasured.
2. the per-window series are averaged over the replications (which damps their noise), MSER-5
   (sim/experiments/mser.py) finds a cut on each series, and the warm-up is the largest cut,
   in whole windows.
3. every replication runs again with that warm-up: the same paths, now measured from the cut.

The series: per flow with traffic (the run's own request types, read off the series' columns),
the window's median latency and its successful completions per second (queues filling up show
in both). The window's p99 is left out: it is heavy-tailed, and MSER, which minimises the
standard error of what it keeps, chases its spikes (on a steady M/M/1 it cut half the run).
Windows before a flow's first completion count
as transient. MSER cuts some pure noise too (on steady white noise it cuts a few batches about
a third of the time): that costs data, not bias. The cost is twice the simulation time; give `warmup_s`
in seconds to skip the pilot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.mser import BATCH, mser
from sim.metrics import flows_in_series

SERIES_KINDS = ("p50_ms", "succeeded_per_sec")
METHOD = ("MSER-5 on the per-window series (median latency and completions/s per operation) "
          "averaged over the pilot replications; warm-up = the largest cut")


@dataclass(frozen=True)
class WarmupCut:
    """The automatic warm-up: the cut and how each series voted."""

    cut_s: float
    window_s: float
    windows: int  # length of the series
    per_series_s: dict[str, float] = field(default_factory=dict)
    reliable: bool = True
    notes: tuple[str, ...] = ()

    def as_summary(self) -> dict[str, Any]:
        return {
            "mode": "auto",
            "cut_s": self.cut_s,
            "method": METHOD,
            "window_s": self.window_s,
            "windows": self.windows,
            "per_series_s": dict(self.per_series_s),
            "reliable": self.reliable,
            "notes": list(self.notes),
        }


def series_names(columns: Iterable[str]) -> list[str]:
    """The series MSER-5 cuts: each flow's median latency and completions per second, flow by flow."""
    return [f"{flow}_{kind}" for flow in flows_in_series(columns) for kind in SERIES_KINDS]


def mean_series(timeseries: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The per-window series averaged over replications (NaN windows left out of each mean)."""
    if not timeseries:
        raise ValueError("no timeseries to average")
    stacked = pd.concat(list(timeseries), ignore_index=True)
    numeric = stacked.select_dtypes("number")
    return numeric.groupby("t_s", sort=True).mean().reset_index()


def warmup_cut(timeseries: Sequence[pd.DataFrame], duration_s: float) -> WarmupCut:
    """MSER-5 warm-up from the pilot replications' per-window series (`Result.timeseries`)."""
    series = mean_series(timeseries)
    t = series["t_s"].to_numpy(dtype=float)
    window_s = float(t[0]) if t.size else 1.0
    per_series: dict[str, float] = {}
    notes: list[str] = []
    flagged: dict[str, list[str]] = {}  # note -> the series it applies to
    reliable = True
    for name in series_names(series.columns):
        if name not in series.columns:
            continue
        values = series[name].to_numpy(dtype=float)
        finite = np.isfinite(values)
        if not finite.any() or (name.endswith("_per_sec") and not np.any(values[finite] > 0)):
            continue  # the operation has no traffic in this scenario
        lead = int(np.argmax(finite))  # windows before the first completion are transient
        rest = pd.Series(values[lead:]).interpolate(limit_direction="both").to_numpy()
        cut = mser(rest)
        per_series[name] = (lead + cut.cut_observations) * window_s
        if not cut.reliable and cut.note:
            reliable = False
            for note in cut.note.split("; "):
                flagged.setdefault(note, []).append(name)
    if not per_series:
        return WarmupCut(0.0, window_s, len(t), {}, False, ("no series with traffic: no cut",))
    notes += [f"{note} ({', '.join(names)})" for note, names in flagged.items()]
    cut_s = max(per_series.values())
    if cut_s >= duration_s:  # cannot happen with the half-way limit, but the schema needs it
        cut_s = math.floor(duration_s / 2 / window_s) * window_s
        reliable = False
        notes.append(f"cut limited to {cut_s:g} s, half the run")
    if len(t) < 2 * BATCH:
        reliable = False
    return WarmupCut(cut_s, window_s, len(t), per_series, reliable, tuple(dict.fromkeys(notes)))
