"""End-to-end runs: the summary contract, reproducibility, conservation, output files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from sim import load_scenario, simulate
from sim.engines import choose

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
# a fifth of the system (2k sends/s, 6k reads/s) for 3 s keeps each run to a few seconds
QUICK = ["duration_s=3", "warmup_s=1", "sample=0.2"]

REQUIRED_KEYS = {
    "scenario", "engine", "seed", "sample", "sim_seconds", "warmup_seconds", "wall_seconds", "events",
    "offered_per_sec", "throughput_per_sec", "latency_ms", "availability", "errors", "components",
    "cache", "kafka",
}


@pytest.fixture(scope="module")
def small() -> dict:
    return simulate(load_scenario(SMALL, QUICK)).summary


def test_summary_has_the_contract_keys(small: dict) -> None:
    assert small.keys() >= REQUIRED_KEYS
    assert small["engine"] == choose(load_scenario(SMALL, QUICK))[0]  # the default (auto) says which ran
    assert set(small["offered_per_sec"]) == {"send", "read"}
    assert set(small["throughput_per_sec"]) == {"send", "read", "delivery"}
    for op in ("send", "read", "delivery"):
        assert set(small["latency_ms"][op]) == {"count", "mean", "p50", "p90", "p99", "p999", "max"}
        assert small["latency_ms"][op]["count"] > 0
    assert set(small["availability"]) >= {"send", "read", "overall"}
    for comp in small["components"].values():
        assert {"instances", "utilization_mean", "utilization_max", "queue_wait_ms_p99",
                "ops_per_sec"} <= comp.keys()
    assert {"hit_ratio", "memory_used_gb"} <= small["cache"].keys()
    assert {"consumer_lag_max_s", "consumer_lag_max_msgs"} <= small["kafka"].keys()


def test_offered_load_matches_the_scenario(small: dict) -> None:
    # Poisson counts over the 2 measured seconds: sd = sqrt(n); allow 4 sd.
    for op, rate in (("send", 10_000), ("read", 30_000)):
        n = rate * 0.2 * 2  # simulated arrivals; offered_per_sec is scaled back up by 1/F
        assert abs(small["offered_per_sec"][op] * 0.2 * 2 - n) < 4 * math.sqrt(n)


def test_same_seed_same_numbers_and_another_seed_differs(small: dict) -> None:
    again = simulate(load_scenario(SMALL, QUICK)).summary
    other = simulate(load_scenario(SMALL, [*QUICK, "seed=2"])).summary
    strip = lambda s: {k: v for k, v in s.items() if k != "wall_seconds"}  # noqa: E731
    assert json.dumps(strip(small), sort_keys=True) == json.dumps(strip(again), sort_keys=True)
    assert small["latency_ms"]["read"]["mean"] != other["latency_ms"]["read"]["mean"]


def test_conservation_holds_and_drain_empties_the_system() -> None:
    summary = simulate(load_scenario(SMALL, QUICK), drain=True).summary
    for op, c in summary["requests"].items():
        assert c["sent"] == c["succeeded"] + c["failed"] + c["in_flight"], op
        assert c["in_flight"] == 0, op
        assert c["sent"] > 0
    # every send that Kafka committed was delivered (or failed) exactly once
    assert summary["requests"]["delivery"]["sent"] == summary["requests"]["send"]["sent"]
    assert summary["checks"]["conservation_holds"]


def test_littles_law_per_operation(small: dict) -> None:
    for op, little in small["checks"]["little"].items():
        # L and lambda*W differ only by requests straddling the window edges: a few ms of traffic
        assert little["relative_difference"] < 0.02, (op, little)


def test_measured_hit_ratio_matches_the_cache_model(small: dict) -> None:
    lookups = small["throughput_per_sec"]["read"] * 0.2 * small["measured_seconds"]
    p = small["cache"]["model_hit_ratio"]
    se = math.sqrt(p * (1 - p) / lookups)
    assert abs(small["cache"]["hit_ratio"] - p) < 4 * se


def test_write_produces_the_files(tmp_path: Path) -> None:
    result = simulate(load_scenario(SMALL, ["duration_s=2", "warmup_s=0.5", "sample=0.1"]))
    out = result.write(tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "interview-small"
    latency = pd.read_csv(out / "latency.csv")
    assert set(latency["op"]) == {"send", "read", "delivery"}
    components = pd.read_csv(out / "components.csv")
    assert len(components[components["component"] == "cassandra"]) == 3  # ceil(0.1 x 12) -> RF
    series = pd.read_csv(out / "timeseries.csv")
    assert list(series["t_s"]) == [1.0, 2.0]
    assert {"send_p99_ms", "read_p50_ms", "delivery_succeeded_per_sec", "read_failed_per_sec"} <= set(
        series.columns)


def test_overload_is_rejected_and_counted() -> None:
    # one gateway worker with a queue bound of 10 at ~4x its capacity: most sends are rejected
    sc = load_scenario(SMALL, [*QUICK, "gateway.instances=1", "gateway.workers=1",
                               "gateway.queue_limit=10", "gateway.rate_limit=null"])
    s = simulate(sc).summary
    rejected = s["errors"].get("send:gateway.rejected", 0) + s["errors"].get("read:gateway.rejected", 0)
    assert rejected > 0
    assert s["availability"]["overall"] < 0.5
    assert s["components"]["gateway"]["utilization_mean"] > 0.95
    assert s["checks"]["conservation_holds"]
