"""Replications: R independent runs of one scenario combined into point values with 95% CIs.

Seeds: replication k runs with seed `SeedSequence(seed).spawn(R)[k].generate_state(1)[0]`. The
k-th child does not depend on R, so R = 10 extends R = 5 with five new runs; and the seeds
depend on nothing but `seed`, so the same seed and R give the same results whichever executor
runs them and in whatever order they finish. Two scenarios run with the same seed share their
replication seeds (common random numbers), which is what `compare` pairs on.

Combining (`combine`), the point summary keeps the summary.json contract:
- `latency_ms` comes from the replications' merged histograms (all their requests pooled);
- every other number is the mean over replications (errors count 0 where a replication had
  none), booleans hold if they hold in every replication, text comes from the first;
- `slo` verdicts are re-evaluated on those point values;
- `ci95` {figure path: [low, high]} is the Student t interval (R - 1 degrees of freedom) over
  the replication values of every headline figure (sim/experiments/figures.py), a quantile's
  never narrower than the histogram bucket holding its estimate (sim/experiments/stats.py), and
  `replications` records the seeds, the per-figure replication means (the centres of the
  intervals) and how the point values were formed. With R = 1 there is no interval.
A pooled percentile and the mean of per-replication percentiles estimate the same quantile; they
part when runs are short (a single short run's p99 is biased), which is itself worth seeing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.figures import headline_paths, values_at
from sim.experiments.stats import Interval, is_quantile, mean_interval, quantile_interval
from sim.experiments.warmup import WarmupCut
from sim.histogram import Histogram
from sim.result import LATENCY_QUANTILES, Result
from sim.scenario import Scenario, Slo
from sim.slo import MET, MISSED, NOT_MEASURED, evaluate_slos

POINT_NOTE = ("latency_ms from the replications' merged histograms; other figures are means over "
              "replications; ci95 is Student t over replication values (R - 1 degrees of freedom)")
_COUNTS = ("errors", "async_errors")  # a missing key means none happened in that replication


def replication_seeds(seed: int, replications: int) -> list[int]:
    """The seeds of `replications` independent runs, spawned from SeedSequence(seed)."""
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(child.generate_state(1)[0]) for child in children]


@dataclass
class Replicated:
    """One scenario's replications and their combination."""

    scenario: Scenario  # as run: warm-up resolved (seed: the base seed)
    seeds: list[int]
    summaries: list[dict[str, Any]]
    histograms: dict[str, Histogram]  # merged over replications
    timeseries: pd.DataFrame  # per window, mean over replications
    components: pd.DataFrame  # per instance, mean over replications
    summary: dict[str, Any]  # point values + ci95 + replications (+ warmup when auto)
    warmup: WarmupCut | None = None
    intervals: dict[str, Interval] = field(default_factory=dict)

    @property
    def replications(self) -> int:
        return len(self.summaries)

    def values(self, path: str) -> list[float]:
        """The figure at `path` in each replication, in replication order."""
        return values_at(self.summaries, path)

    def interval(self, path: str) -> Interval:
        """Mean and 95% CI of the figure at `path` over replications (a quantile's at least as wide
        as the histogram bucket holding its estimate)."""
        if path not in self.intervals:
            iv = mean_interval(self.values(path))
            self.intervals[path] = quantile_interval(iv) if is_quantile(path) else iv
        return self.intervals[path]

    def result(self) -> Result:
        """As a `Result`, for the run's files and report."""
        latency = pd.DataFrame([
            {"op": op, "quantile": q, "latency_ms": v}
            for op, h in self.histograms.items()
            for q, v in zip(LATENCY_QUANTILES, h.quantiles(list(LATENCY_QUANTILES)), strict=True)
        ])
        return Result(summary=self.summary, latency=latency, components=self.components,
                      timeseries=self.timeseries, histograms=self.histograms)


def combine(scenario: Scenario, seeds: Sequence[int], summaries: Sequence[dict[str, Any]],
            histograms: Sequence[Mapping[str, Histogram]], timeseries: Sequence[pd.DataFrame],
            components: Sequence[pd.DataFrame], warmup: WarmupCut | None = None) -> Replicated:
    """Point values and 95% CIs from replications of `scenario` (in replication order)."""
    if not summaries:
        raise ValueError("no replications to combine")
    merged: dict[str, Histogram] = {}
    for hists in histograms:
        for op, h in hists.items():
            merged.setdefault(op, Histogram(h.min_value)).merge(h)
    point = mean_tree(list(summaries))
    point["seed"] = scenario.seed
    point["latency_ms"] = {op: h.summary() for op, h in merged.items()}
    if warmup is not None:
        point["warmup"] = warmup.as_summary()
    point["slo"] = evaluate_slos(point, scenario.slo)
    rep = Replicated(scenario=scenario, seeds=list(seeds), summaries=list(summaries), histograms=merged,
                     timeseries=_mean_frame(timeseries, ["t_s"]),
                     components=_mean_frame(components, ["component", "instance"]),
                     summary=point, warmup=warmup)
    paths = headline_paths(point, scenario)
    point["replications"] = {
        "count": len(summaries),
        "seeds": list(seeds),
        "seed_rule": "SeedSequence(seed).spawn(R)[k].generate_state(1)[0]",
        "point_values": POINT_NOTE,
        "mean": {p: rep.interval(p).mean for p in paths},
        "wall_seconds_total": math.fsum(float(s.get("wall_seconds") or 0.0) for s in summaries),
    }
    if len(summaries) >= 2:
        point["ci95"] = {p: rep.interval(p).as_list() for p in paths}
    return rep


def mean_tree(trees: list[Any], key: str = "") -> Any:
    """Element-wise mean of summaries of the same shape (see the module docstring for the rules)."""
    first = trees[0]
    if isinstance(first, Mapping):
        keys = list(dict.fromkeys(k for t in trees if isinstance(t, Mapping) for k in t))
        out = {}
        for k in keys:
            if key in _COUNTS:
                out[k] = mean_tree([t.get(k, 0) if isinstance(t, Mapping) else 0 for t in trees], k)
            else:
                present = [t[k] for t in trees if isinstance(t, Mapping) and k in t]
                out[k] = mean_tree(present, k)
        return out
    if isinstance(first, list | tuple) and all(isinstance(t, list | tuple) and len(t) == len(first)
                                               for t in trees):
        return [mean_tree([t[i] for t in trees], key) for i in range(len(first))]
    if isinstance(first, bool):
        return all(bool(t) for t in trees)
    if isinstance(first, int | float) and all(isinstance(t, int | float) and not isinstance(t, bool)
                                              for t in trees):
        if all(t == first for t in trees):
            return first  # identical in every replication (a setting, a count that cannot vary)
        finite = [float(t) for t in trees if math.isfinite(float(t))]
        return math.fsum(finite) / len(finite) if finite else math.nan
    return first


def _mean_frame(frames: Sequence[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """Numeric columns averaged over replications, row by row (matched on `keys`)."""
    usable = [f for f in frames if f is not None and not f.empty and all(k in f.columns for k in keys)]
    if not usable:
        return frames[0] if frames and frames[0] is not None else pd.DataFrame()
    stacked = pd.concat(usable, ignore_index=True)
    numeric = [c for c in stacked.columns if c not in keys and pd.api.types.is_numeric_dtype(stacked[c])]
    return stacked.groupby(keys, sort=False)[numeric].mean().reset_index()


def slo_status(rep: Replicated, slo: Slo) -> str:
    """met / missed / not measured on the replication mean of the SLO's figure, with a `*` when
    its 95% CI reaches across the bound (the verdict is the mean's, not a confident one)."""
    iv = rep.interval(slo.metric)
    if not math.isfinite(iv.mean):
        return NOT_MEASURED
    bound = slo.max if slo.max is not None else slo.min
    assert bound is not None
    met = iv.mean <= bound if slo.max is not None else iv.mean >= bound
    crosses = math.isfinite(iv.low) and iv.low <= bound <= iv.high
    return (MET if met else MISSED) + ("*" if crosses else "")
