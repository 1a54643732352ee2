"""Figures that were wrong or missing: fleet-wide rates in a sample cell, quantile intervals no
narrower than the histogram's resolution, and P(wait) with the mean queue wait in every output.

The Erlang C checks of P(wait) and the mean wait are with the other closed forms: tests/test_queueing.py
(the DES, scenarios/validation/mmc.yaml) and tests/test_calendar.py (the calendar engine,
scenarios/validation/design-mmc.yaml).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats

import cli
from sim import load_scenario, simulate
from sim.des.engine import Engine
from sim.experiments.compare import Comparison
from sim.experiments.replications import combine
from sim.experiments.stats import (
    Interval,
    histogram_bucket,
    is_quantile,
    paired_quantile_interval,
    quantile_interval,
)
from sim.histogram import Histogram
from sim.report import write_report
from sim.result import Result, build_result

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "scenarios" / "validation"
Z_CRIT = float(stats.norm.ppf(1 - 0.001 / 2))  # two-sided 99.9%


# -- 1. fleet-wide rates scale by 1/F, not by 1/share --------------------------------------------

# sample-cell's fleets are multiples of 10; at F = 0.05 each keeps its floor: gateway 1 of 10
# (share 0.1), Kafka 3 of 40 (its replication factor: share 0.075), Redis 1 of 10 (share 0.1)
CELL = ["kafka.brokers=40", "sample=0.05", "duration_s=11", "warmup_s=1"]


@pytest.fixture(scope="module")
def cell_run() -> dict[str, Any]:
    sc = load_scenario(VALIDATION / "sample-cell.yaml", CELL)
    return {"scenario": sc, "summary": simulate(sc).summary}


def test_the_cell_under_test_has_fleets_whose_share_is_not_f(cell_run: dict[str, Any]) -> None:
    fleets = cell_run["summary"]["sample"]["fleets"]
    assert fleets["kafka"]["simulated"] == 3 and fleets["kafka"]["share"] == pytest.approx(0.075)
    assert fleets["gateway"]["share"] == pytest.approx(0.1) and fleets["redis"]["share"] == pytest.approx(0.1)


@pytest.mark.parametrize("fleet", ["kafka", "gateway"])
def test_fleet_ops_per_sec_is_the_rate_the_workload_implies(cell_run: dict[str, Any], fleet: str) -> None:
    """Kafka appends every send on each of its replication_factor replicas; the gateway serves every
    send and read. Arrivals are Poisson, so the cell's count over the measured T seconds has variance
    equal to its mean: ops/s = k N / (T F) has SD k sqrt(lambda F T) / (T F)."""
    sc, s = cell_run["scenario"], cell_run["summary"]
    w, f, t = sc.workload, sc.sample, s["measured_seconds"]
    k, lam = ((sc.kafka.replication_factor, w.sends_per_sec) if fleet == "kafka"
              else (1, w.sends_per_sec + w.reads_per_sec))
    expected = k * lam
    sd = k * math.sqrt(lam * f * t) / (t * f)
    got = s["components"][fleet]["ops_per_sec"]
    print(f"{fleet}: ops/s {got:.1f}, workload implies {expected:.1f} +- {Z_CRIT * sd:.1f}")
    assert abs(got - expected) <= Z_CRIT * sd


def test_cache_memory_used_scales_by_f_like_the_working_set(cell_run: dict[str, Any]) -> None:
    """With a fixed hit ratio h, the cache holds a fraction h of the lists: memory used is h times the
    working set at any scale (both figures come from the cell's conversations, scaled by 1/F)."""
    cache = cell_run["summary"]["cache"]
    assert cache["memory_used_gb"] == pytest.approx(cache["model_hit_ratio"] * cache["working_set_gb"])


# -- 2. quantile intervals are never narrower than the histogram's resolution -------------------

def _replication(values: np.ndarray) -> tuple[dict[str, Any], dict[str, Histogram]]:
    """A replication's summary and histograms holding `values` as send latencies (ms)."""
    h = Histogram()
    h.record_many(values)
    summary = {"latency_ms": {"send": h.summary()}, "throughput_per_sec": {"send": float(values.size)},
               "wall_seconds": 0.0}
    return summary, {"send": h}


Replications = list[tuple[dict[str, Any], dict[str, Histogram]]]


def _one_bucket_replications(seed: int, near_ms: float) -> Replications:
    """Five replications of 20,000 latencies spread +-0.2% around the centre of the histogram bucket
    holding `near_ms`: every replication's p99 lands in that 2% bucket, so their values are identical."""
    rng = np.random.default_rng(seed)
    centre = math.sqrt(math.prod(histogram_bucket(near_ms)))
    return [_replication(centre * (1 + rng.uniform(-0.002, 0.002, 20_000))) for _ in range(5)]


def test_replications_in_one_bucket_give_a_p99_interval_as_wide_as_the_bucket() -> None:
    reps = _one_bucket_replications(1, 5.04)
    p99s = {s["latency_ms"]["send"]["p99"] for s, _ in reps}
    assert len(p99s) == 1, "the premise: every replication reports the same p99"
    sc = load_scenario(VALIDATION / "mm1.yaml")
    rep = combine(sc, list(range(5)), [s for s, _ in reps], [h for _, h in reps], [pd.DataFrame()] * 5,
                  [pd.DataFrame()] * 5)
    low, high = rep.summary["ci95"]["latency_ms.send.p99"]
    b_low, b_high = histogram_bucket(p99s.pop())
    print(f"p99 ci95 [{low:.4f}, {high:.4f}], bucket [{b_low:.4f}, {b_high:.4f})")
    assert low <= b_low < b_high <= high
    assert (high - low) / rep.interval("latency_ms.send.p99").mean >= 0.0198  # the bucket: 2%, not 0
    # a mean is not a histogram quantile: its interval stays Student t
    mean_iv = rep.interval("latency_ms.send.mean")
    assert mean_iv.high - mean_iv.low < 1e-3 * mean_iv.mean


def test_paired_quantile_difference_is_not_narrower_than_both_buckets() -> None:
    """Two arms whose p99s sit in one bucket each in every replication: B - A is known only to the
    difference of the two buckets, not to the zero-width interval the paired values give."""
    sc = load_scenario(VALIDATION / "mm1.yaml")

    def arm(seed: int, centre_ms: float) -> Any:
        reps = _one_bucket_replications(seed, centre_ms)
        return combine(sc, list(range(5)), [s for s, _ in reps], [h for _, h in reps], [pd.DataFrame()] * 5,
                       [pd.DataFrame()] * 5)

    comparison = Comparison(arms=None, a=arm(1, 5.04), b=arm(2, 6.0), executor="local")  # type: ignore[arg-type]
    for side in (comparison.a, comparison.b):
        assert len(set(side.values("latency_ms.send.p99"))) == 1, "the premise: one bucket per arm"
    diff = comparison.difference("latency_ms.send.p99")
    a_low, a_high = histogram_bucket(comparison.a.summaries[0]["latency_ms"]["send"]["p99"])
    b_low, b_high = histogram_bucket(comparison.b.summaries[0]["latency_ms"]["send"]["p99"])
    print(f"B - A p99 [{diff.low:.4f}, {diff.high:.4f}]")
    assert diff.low <= b_low - a_high and diff.high >= b_high - a_low


def test_quantile_interval_rules() -> None:
    assert is_quantile("latency_ms.read.p99") and is_quantile("components.kafka.queue_wait_ms_p99")
    assert is_quantile("latency_ms.send.p50") and is_quantile("latency_ms.send.p999")
    assert not is_quantile("latency_ms.read.mean") and not is_quantile("components.kafka.queue_wait_ms_mean")
    assert not is_quantile("latency_ms.read.max") and not is_quantile("components.kafka.p_wait")
    low, high = histogram_bucket(5.04)
    assert low <= 5.04 < high and high / low == pytest.approx(1.02)
    assert histogram_bucket(0.0) == (0.0, 1e-3)  # the underflow bucket (a p99 wait of 0)
    wide = Interval(5.0, 4.0, 6.0, 5)
    assert quantile_interval(wide) == wide  # wider than the bucket: unchanged
    none = Interval(5.0, math.nan, math.nan, 1)
    assert math.isnan(quantile_interval(none).low)  # one replication: still no interval
    same, p99 = Interval(0.0, 0.0, 0.0, 5), Interval(5.04, 5.04, 5.04, 5)
    assert paired_quantile_interval(same, p99, p99).low < 0 < paired_quantile_interval(same, p99, p99).high


# -- 3. P(wait) and the mean queue wait in every output ------------------------------------------

@pytest.fixture(scope="module")
def mmc_result() -> Result:
    return simulate(load_scenario(VALIDATION / "mmc.yaml", ["duration_s=2", "warmup_s=0.5"]))


def test_p_wait_and_mean_wait_in_summary_and_components_csv(mmc_result: Result, tmp_path: Path) -> None:
    g = mmc_result.summary["components"]["gateway"]
    assert 0 < g["p_wait"] < 1 and g["queue_wait_ms_mean"] > 0
    assert mmc_result.summary["analytic"]["gateway"]["p_wait"] == pytest.approx(0.57257, abs=5e-6)
    mmc_result.write(tmp_path)
    rows = pd.read_csv(tmp_path / "components.csv")
    assert {"p_wait", "queue_wait_ms_mean"} <= set(rows.columns)
    assert rows.loc[0, "p_wait"] == pytest.approx(g["p_wait"])  # one instance: its figures are the fleet's
    assert rows.loc[0, "queue_wait_ms_mean"] == pytest.approx(g["queue_wait_ms_mean"])


def test_p_wait_agrees_with_the_wait_histogram() -> None:
    """The counters and the fleet's wait histogram (zero waits included) describe the same jobs."""
    sc = load_scenario(VALIDATION / "mmc.yaml", ["duration_s=2", "warmup_s=0.5"])
    g = simulate(sc, engine="des").summary["components"]["gateway"]  # the DES's counters and histogram
    state = Engine(sc).run()
    again = build_result(state).summary["components"]["gateway"]
    assert again["p_wait"] == g["p_wait"]  # same scenario and seed, same numbers
    waits = state.fleets["gateway"].wait_histogram()
    positive = state.fleets["gateway"].waits
    assert g["p_wait"] == pytest.approx(positive.count / waits.count)
    assert g["queue_wait_ms_mean"] == pytest.approx(waits.mean)


def test_terminal_and_report_show_p_wait_and_mean_wait(mmc_result: Result, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    cli._print_summary(mmc_result)
    text = out.getvalue()
    g = mmc_result.summary["components"]["gateway"]
    assert "P(wait)" in text and "wait mean ms" in text
    assert f"{g['p_wait']:.1%}" in text and cli._fmt(g["queue_wait_ms_mean"]) in text
    monkeypatch.setattr("sim.report.draw_charts", lambda *_args: {})
    sc = load_scenario(VALIDATION / "mmc.yaml", ["duration_s=2", "warmup_s=0.5"])
    md = write_report(mmc_result, tmp_path, sc)["report_md"].read_text()
    header = next(line for line in md.splitlines() if line.startswith("| component |"))
    assert "| P(wait) | P(wait) Erlang C | wait mean ms | wait mean ms M/M/c |" in header
    row = next(line for line in md.splitlines() if line.startswith("| gateway |"))
    assert f"{g['p_wait']:.1%}" in row and "57.3%" in row  # simulated and Erlang C side by side
