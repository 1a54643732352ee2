"""The `--sample F` cell keeps per-node load: F = 0.1 matches F = 1 within statistical error."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean, stdev

import pytest
from scipy import stats

from sim import load_scenario, simulate
from sim.sampling import make_cell

SCENARIO = Path(__file__).parent.parent / "scenarios" / "validation" / "sample-cell.yaml"
ALPHA = 1e-3  # two-sided; each comparison fails by chance once in a thousand


def replicate(sample: float, seeds: range) -> list[dict]:
    return [simulate(load_scenario(SCENARIO, [f"sample={sample}", f"seed={s}"])).summary for s in seeds]


def agree(a: list[float], b: list[float]) -> tuple[bool, str]:
    """Welch's t-test on replication means: the difference is within its statistical error."""
    se = math.sqrt(stdev(a) ** 2 / len(a) + stdev(b) ** 2 / len(b))
    t = stats.ttest_ind(a, b, equal_var=False)
    return t.pvalue > ALPHA, f"{mean(a):.4g} vs {mean(b):.4g} (se {se:.2g}, p={t.pvalue:.3g})"


@pytest.fixture(scope="module")
def runs() -> tuple[list[dict], list[dict]]:
    return replicate(1.0, range(1, 5)), replicate(0.1, range(101, 111))


def test_cell_keeps_an_exact_tenth_of_every_fleet() -> None:
    cell = make_cell(load_scenario(SCENARIO, ["sample=0.1"]))
    assert cell.notes == []
    for name, fleet in cell.fleets.items():
        assert fleet.simulated * 10 == fleet.configured, name
        assert cell.load_factor(name) == pytest.approx(1.0)


def test_fleet_wide_throughput_is_scaled_back_up(runs: tuple[list[dict], list[dict]]) -> None:
    full, cell = runs
    for op in ("send", "read"):
        ok, detail = agree([s["throughput_per_sec"][op] for s in full],
                           [s["throughput_per_sec"][op] for s in cell])
        assert ok, f"{op} throughput: {detail}"


@pytest.mark.parametrize("component", ["gateway", "message_service", "cassandra", "redis", "kafka",
                                       "group_service"])
def test_per_node_utilization_matches(runs: tuple[list[dict], list[dict]], component: str) -> None:
    full, cell = runs
    ok, detail = agree([s["components"][component]["utilization_mean"] for s in full],
                       [s["components"][component]["utilization_mean"] for s in cell])
    assert ok, f"{component} utilization: {detail}"


@pytest.mark.parametrize("op", ["send", "read", "delivery"])
@pytest.mark.parametrize("quantile", ["p50", "p99"])
def test_latency_percentiles_match(runs: tuple[list[dict], list[dict]], op: str, quantile: str) -> None:
    full, cell = runs
    ok, detail = agree([s["latency_ms"][op][quantile] for s in full],
                       [s["latency_ms"][op][quantile] for s in cell])
    assert ok, f"{op} {quantile}: {detail}"


def test_every_output_states_the_sample(runs: tuple[list[dict], list[dict]]) -> None:
    _, cell = runs
    assert cell[0]["sample"]["fraction"] == 0.1
    assert cell[0]["sample"]["fleets"]["cassandra"] == {
        "configured": 30, "simulated": 3, "share": 0.1, "per_instance_load_factor": pytest.approx(1.0)}
