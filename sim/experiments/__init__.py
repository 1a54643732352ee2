"""Experiments: replications with confidence intervals, automatic warm-up, sweeps, comparisons.

    from sim import load_scenario
    from sim.experiments import LocalExecutor, replicate
    from sim.experiments.sweep import plan_sweep, run_sweep
    from sim.experiments.compare import plan_compare, run_compare

    rep = replicate(load_scenario("scenarios/interview-small.yaml"), replications=5)
    rep.summary["ci95"]["latency_ms.read.p99"]          # [low, high]
    sweep = run_sweep(plan_sweep("scenarios/interview-small.yaml", ["cassandra.nodes=12,24"]))
    sweep.write("reports/sweep")                         # sweep.csv, sweep.md, charts
    pair = run_compare(plan_compare("a.yaml", "b.yaml"), replications=5, executor=LocalExecutor(2))

Modules, one concept each: stats.py (Student t intervals), mser.py (the MSER-5 rule),
warmup.py (`warmup_s: auto` from pilot runs), figures.py (which summary figures, their units),
tasks.py (one run as a picklable task), executors.py (in process, process pool, Dask),
replications.py (seeds, combining runs into point values and CIs), runner.py (points x
replications on an executor), sweep.py (grids), compare.py (A/B with common random numbers),
charts.py (sweep and comparison charts).
"""

from __future__ import annotations

from sim.engines import DEFAULT_ENGINE
from sim.experiments.executors import DaskExecutor, Executor, LocalExecutor, make_executor
from sim.experiments.mser import MserCut, mser
from sim.experiments.replications import Replicated, combine, replication_seeds
from sim.experiments.runner import PointFailure, Progress, ProgressFn, run_points
from sim.experiments.stats import Interval, mean_interval, paired_interval
from sim.experiments.warmup import WarmupCut, warmup_cut
from sim.scenario import Scenario

__all__ = [
    "DaskExecutor", "Executor", "Interval", "LocalExecutor", "MserCut", "PointFailure", "Progress",
    "ProgressFn", "Replicated", "WarmupCut", "combine", "make_executor", "mean_interval", "mser",
    "paired_interval", "replicate", "replication_seeds", "run_points", "warmup_cut",
]


def replicate(scenario: Scenario, replications: int | None = None, executor: Executor | None = None,
              progress: ProgressFn | None = None, engine: str = DEFAULT_ENGINE,
              force: bool = False) -> Replicated:
    """Run `scenario` `replications` times (None: once, with its own seed); raise on failure.
    `force` runs past the work budget (sim/budget.py)."""
    (out,) = run_points([scenario], replications, executor, progress, engine, force)
    if isinstance(out, PointFailure):
        raise RuntimeError(out.error)
    return out
