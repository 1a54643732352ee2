"""A design's flow against queueing theory: the cache path of scenarios/validation/design-cache-tandem.yaml
(its header states the closed form) is a probabilistic Jackson tandem, api -> cache -> db on a miss.

Tolerances follow tests/test_queueing.py: R = 10 replications (seeds 1..10), the mean of their
statistics within T_CRIT x SE of theory, SE = stdev / sqrt(R), T_CRIT the two-sided 99.9% Student-t
quantile with 9 degrees of freedom (4.78). The hit ratio's samples are independent Bernoulli draws,
so its SE is exact: sqrt(h (1 - h) / lookups), at Z_CRIT = 3.29.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from sim import load_scenario, simulate

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "validation" / "design-cache-tandem.yaml"
R = 10
T_CRIT = float(stats.t.ppf(1 - 0.001 / 2, R - 1))
Z_CRIT = float(stats.norm.ppf(1 - 0.001 / 2))
LAMBDA, HIT = 400.0, 0.7
API_MS, CACHE_MS, DB_MS = 1.0, 0.5, 2.0


def mm1_response_ms(lam: float, mean_ms: float) -> float:
    mu = 1000.0 / mean_ms
    return 1000.0 / (mu - lam)


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    return [simulate(load_scenario(SCENARIO, [f"seed={seed}"]), engine="des").summary
            for seed in range(1, R + 1)]


def within(values: list[float], theory: float) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - theory) <= T_CRIT * se, f"{mean:.4f} vs {theory:.4f} (T_CRIT x SE = {T_CRIT * se:.4f})"
    return mean, se


def test_the_scenario_states_the_rates_this_test_uses() -> None:
    sc = load_scenario(SCENARIO)
    assert sc.flows["get"].rate_per_sec == LAMBDA
    assert sc.components["cache"].hit_ratio == HIT


def test_mean_latency_is_the_probabilistic_tandem(runs: list[dict[str, Any]]) -> None:
    theory = (mm1_response_ms(LAMBDA, API_MS) + mm1_response_ms(LAMBDA, CACHE_MS)
              + (1 - HIT) * mm1_response_ms(LAMBDA * (1 - HIT), DB_MS))
    assert theory == pytest.approx(3.0811, abs=1e-4)  # the header's figure
    within([s["latency_ms"]["get"]["mean"] for s in runs], theory)


def test_each_station_sees_its_share_of_the_flow(runs: list[dict[str, Any]]) -> None:
    for name, rate, mean_ms in (("api", LAMBDA, API_MS), ("cache", LAMBDA, CACHE_MS),
                                ("db", LAMBDA * (1 - HIT), DB_MS)):
        within([s["components"][name]["utilization_mean"] for s in runs], rate * mean_ms / 1000)


def test_the_hit_ratio_is_the_fixed_one(runs: list[dict[str, Any]]) -> None:
    for s in runs:
        lookups = s["throughput_per_sec"]["get"] * s["measured_seconds"]
        se = math.sqrt(HIT * (1 - HIT) / lookups)
        assert abs(s["cache"]["hit_ratio"] - HIT) <= Z_CRIT * se


def test_every_request_is_accounted_for(runs: list[dict[str, Any]]) -> None:
    for s in runs:
        c = s["requests"]["get"]
        assert c["sent"] == c["succeeded"] + c["failed"] + c["in_flight"]
        assert c["failed"] == 0
