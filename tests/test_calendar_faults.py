"""Timeouts and crashes on the calendar engine, against closed forms and the DES (the reference):
an M/M/1 client timeout is the sojourn tail, step timeouts fail at the timeout, Cassandra at ALL
answers "unavailable" for the writes in a crash window, QUORUM keeps hints, a crashed gateway fails
only the work caught on it, and a Redis shard restarts empty.

Counts are compared with Poisson errors (two independent counts: z x sqrt(a + b), z the two-sided
99.9% normal quantile); the timeout share over R replications with Student t at 99.9%. Seeds are
fixed, so outcomes are reproducible.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from sim import load_scenario, simulate

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "scenarios" / "validation"
SMALL = ROOT / "scenarios" / "interview-small.yaml"
ALPHA = 0.001
R = 8
Summary = dict[str, Any]


def _run(path: Path, engine: str, overrides: list[str]) -> Summary:
    return simulate(load_scenario(path, overrides), engine=engine).summary


def test_client_timeout_is_the_mm1_sojourn_tail(tmp_path: Path) -> None:
    """M/M/1 (lambda 800/s, mu 1000/s) with a client timeout T = 5 ms: the client counts a
    failure for each response slower than T, P(sojourn > T) = exp(-(mu - lambda) T) = e^-1, and
    every failure is a "timeout" at t0 + T. R replications, Student t at 99.9%."""
    path = tmp_path / "mm1-timeout.yaml"
    path.write_text(f"extends: {VALIDATION / 'mm1.yaml'}\npolicies:\n  client->gateway: {{timeout_ms: 5}}\n")
    shares = []
    for seed in range(1, R + 1):
        s = _run(path, "calendar", [f"seed={seed}", "duration_s=120", "warmup_s=10"])
        assert list(s["errors"]) == ["send:timeout"]
        assert s["resilience"]["edges"]["client->gateway"]["timeouts"] >= s["errors"]["send:timeout"]
        assert s["latency_ms"]["send"]["max"] <= 5.0  # answered ones came back in time
        shares.append(1.0 - s["availability"]["send"])
    x = np.array(shares)
    tol = float(stats.t.ppf(1 - ALPHA / 2, R - 1)) * x.std(ddof=1) / math.sqrt(R)
    print(f"timeout share {x.mean():.5f} +- {tol:.5f}, theory {math.exp(-1):.5f}")
    assert abs(x.mean() - math.exp(-1)) <= tol


def test_step_timeouts_fail_at_the_timeout_on_both_engines(tmp_path: Path) -> None:
    """Cassandra writes that take 3 ms (constant) against 2 ms timeouts: every send fails
    "cassandra.timeout" exactly 2 ms after it leaves the message service, and so does every
    delivery (its inbox writes), on both engines; a Redis timeout longer than any append never
    fires. Cassandra is overloaded (3 ms writes, utilization 1): its queue is unbounded here, as
    with a bounded one a big group's inbox writes may also be "rejected" (on either engine,
    depending on the sample path's group sizes)."""
    path = tmp_path / "step-timeouts.yaml"
    path.write_text(
        f"extends: {SMALL}\nsample: 0.1\nduration_s: 3\nwarmup_s: 0.5\n"
        "network: {hop_ms: 0.1}\n"
        "cassandra: {write_service_ms: {dist: deterministic, value: 3}, queue_limit: null}\n"
        "policies:\n"
        "  message_service->cassandra: {timeout_ms: 2}\n"
        "  group_service->cassandra: {timeout_ms: 2}\n"
        "  message_service->redis: {timeout_ms: 1000}\n"
    )
    for engine in ("des", "calendar"):
        s = _run(path, engine, [])
        assert s["availability"]["send"] == 0.0 and s["availability"]["delivery"] == 0.0, engine
        failures = {k.split(":")[1] for k in s["errors"] if not k.startswith("read:")}
        assert failures == {"cassandra.timeout"}, (engine, s["errors"])
        edges = s["resilience"]["edges"]
        assert edges["message_service->redis"]["timeouts"] == 0, engine
        assert edges["group_service->cassandra"]["timeouts"] > 0, engine


Z = float(stats.norm.ppf(1 - ALPHA / 2))  # two-sided 99.9% normal quantile


def _crash_scenario(tmp_path: Path, body: str) -> Path:
    """interview-small at F = 0.25: 3 Cassandra nodes, so every key has a replica on node 0."""
    path = tmp_path / "crash.yaml"
    path.write_text(f"extends: {SMALL}\nsample: 0.25\nduration_s: 6\nwarmup_s: 0.5\n{body}")
    return path


def test_cassandra_crash_at_consistency_all_is_unavailable_on_both_engines(tmp_path: Path) -> None:
    """Writes at ALL while a replica is down: the coordinator answers "unavailable" at once, so the
    sends stored in the 2-second crash window fail (~2 x 2,500); reads at ONE go to live replicas
    and fail only if caught on the node by the crash. The two engines agree on the count within
    the Poisson error of two independent counts (99.9%)."""
    path = _crash_scenario(
        tmp_path,
        "cassandra: {write_consistency: ALL, read_consistency: ONE}\n"
        "faults:\n  - {kind: crash, component: cassandra, nodes: [0], start_s: 2, duration_s: 2}\n",
    )
    counts = {}
    for engine in ("des", "calendar"):
        s = _run(path, engine, [])
        errors = s["errors"]
        counts[engine] = errors.get("send:cassandra.unavailable", 0)
        # the sends stored in the window: Poisson with mean 2 s x 2,500/s
        assert abs(counts[engine] - 5000) <= Z * math.sqrt(5000), (engine, errors)
        crashed = sum(n for k, n in errors.items() if k.startswith("read:"))
        assert crashed <= 64, (engine, errors)  # caught in node 0's queue or service at t = 2 s
        assert s["resilience"]["cassandra"]["unavailable"] >= counts[engine]
    a, b = counts["des"], counts["calendar"]
    assert abs(a - b) <= Z * math.sqrt(a + b), counts


def test_cassandra_crash_at_quorum_loses_no_send_and_keeps_hints(tmp_path: Path) -> None:
    """QUORUM with one of three replicas down: every write still has 2 live replicas, so no send
    fails; every write and inbox write issued in the window stores a hint for node 0."""
    path = _crash_scenario(
        tmp_path, "faults:\n  - {kind: crash, component: cassandra, nodes: [0], start_s: 2, duration_s: 2}\n"
    )
    s = _run(path, "calendar", [])
    assert s["requests"]["send"]["failed"] == 0
    # at least one hint per send stored in the window (Poisson, mean 5,000), more for inbox writes
    assert s["resilience"]["cassandra"]["hints_stored"] >= 5000 - Z * math.sqrt(5000)


def test_gateway_crash_fails_only_the_work_caught_on_it(tmp_path: Path) -> None:
    """A crashed gateway (of 2, random balancer): callers pick the live one while it is down, so
    only the requests queued or in service on it at the crash fail ("gateway.crashed"), or those
    that picked it just before and reach it after (a network hop later: "gateway.unavailable"),
    on both engines."""
    path = _crash_scenario(
        tmp_path, "faults:\n  - {kind: crash, component: gateway, nodes: [0], start_s: 2, duration_s: 2}\n"
    )
    for engine in ("des", "calendar"):
        s = _run(path, engine, [])
        errors = s["errors"]
        causes = {k.split(":")[1] for k in errors}
        assert causes <= {"gateway.crashed", "gateway.unavailable"}, (engine, errors)
        # at most its 4 workers' jobs and its queue at ~50% utilization
        assert 0 < sum(errors.values()) <= 32, (engine, errors)


def test_redis_shard_restarts_empty_on_both_engines(tmp_path: Path) -> None:
    """A Redis shard (the cell's only one) crashes for 1 s with every list cached (hit_ratio 1):
    appends fail "redis.unavailable" for the sends stored meanwhile (Poisson, mean 2,500; the two
    engines agree within two counts' Poisson error), GETs fall back to Cassandra, and after the
    restart reads miss until their list is refilled: the hit ratio dips in the second after the
    restart and climbs back."""
    path = _crash_scenario(
        tmp_path,
        "redis: {hit_ratio: 1.0}\n"
        "faults:\n  - {kind: shard_loss, nodes: [0], start_s: 2, duration_s: 1}\n",
    )
    counts = {}
    for engine in ("des", "calendar"):
        result = simulate(load_scenario(path), engine=engine)
        s, series = result.summary, result.timeseries
        counts[engine] = s["errors"].get("send:redis.unavailable", 0)
        assert abs(counts[engine] - 2500) <= Z * math.sqrt(2500), (engine, s["errors"])
        assert not any(k.startswith("read:") for k in s["errors"]), (engine, s["errors"])
        # per-second windows, labelled by their end: (1, 2] before the crash, (3, 4] after it
        ratio = series.groupby(np.ceil(series["t_s"]).astype(int))["cache_hit_ratio"].mean()
        print(engine, ratio.round(3).to_dict())
        assert ratio[2] == 1.0 and ratio[4] < 0.99 and ratio[4] < ratio[6], (engine, ratio.to_dict())
    a, b = counts["des"], counts["calendar"]
    assert abs(a - b) <= Z * math.sqrt(a + b), counts
