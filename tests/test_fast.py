"""The fast engine (sim/fast): its station recursion, its independence from the chunk length, and its
agreement with the DES (the reference) and with closed forms.

Agreement is statistical: the engines draw different random numbers (same system, same seed,
different sample paths). Each figure is estimated by R independent replications per engine; the
engines agree when |mean_fast - mean_des| <= t x sqrt(SE_fast^2 + SE_des^2), with t the two-sided
99.9% Student-t quantile at the Welch-Satterthwaite degrees of freedom (SE = stdev / sqrt(R)).
Quantiles add the histogram's relative error (< 1%, sim/histogram.py) for each engine on top.
Where samples are iid (k-of-n replies, nothing queueing) one run per engine suffices and the SE
comes from the exact variance of the closed form. Seeds are fixed, so outcomes are reproducible.
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim import ScenarioError, load_scenario, simulate
from sim.arrays.station import (
    CRASHED,
    DOWN,
    OUT_OF_ORDER,
    QUEUED,
    REJECTED,
    STARTED,
    UNAVAILABLE,
    WAIT_S,
    Windows,
    build_stations,
)
from sim.fast.engine import FastEngine
from sim.fast.fleet import serve_jobs
from sim.histogram import GROWTH
from sim.result import build_result

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "scenarios" / "validation"
SMALL = ROOT / "scenarios" / "interview-small.yaml"
ALPHA = 0.001
HIST = math.sqrt(GROWTH) - 1  # the histogram's relative quantile error, per engine
Summary = dict[str, Any]
Getter = Callable[[Summary], float]


# --------------------------------------------------------------------------------------------
# The station recursion against an event-by-event FIFO queue


def reference_queue(
    arrivals: list[float],
    services: list[float],
    servers: int,
    qlimit: int | None,
    windows: list[tuple[float, float, int, float]],
) -> list[tuple[float, float]]:
    """A FIFO queue simulated event by event, as sim/des/station.py does it: a job starts when it
    is at the head and fewer jobs are in service than the capacity in force; an arrival that must
    wait while `qlimit` jobs wait is rejected ((REJECTED, arrival)); a window [t0, t1) sets the
    capacity and multiplies the service of jobs that start in it. A window of capacity DOWN is a
    crash (Station.crash/recover): queued jobs fail at its start, jobs in service fail when they
    would have ended and free their servers, arrivals in it are refused ((UNAVAILABLE, arrival)).
    Returns (start, end) per job, or (code, time of the failure)."""

    def window_at(t: float) -> tuple[int, float]:
        for t0, t1, cap, factor in windows:
            if t0 <= t < t1:
                return cap, factor
        return servers, 1.0

    crashes = sorted(t0 for t0, _, cap, _ in windows if cap == DOWN)
    edges = sorted({x for t0, t1, _, _ in windows for x in (t0, t1)})
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(arrivals)
    in_service: dict[int, float] = {}  # job -> end
    queue: deque[int] = deque()
    i = 0

    def start_waiting(now: float) -> None:
        cap, factor = window_at(now)
        while queue and len(in_service) < cap:
            j = queue.popleft()
            end = now + services[j] * factor
            out[j] = (now, end)
            in_service[j] = end

    while i < len(arrivals) or queue or in_service:
        nexts = [arrivals[i]] if i < len(arrivals) else []
        nexts += [min(in_service.values())] if in_service else []
        nexts += [e for e in edges if not nexts or e < min(nexts)][:1]
        now = min(nexts)
        for j in [j for j, e in in_service.items() if e <= now]:
            del in_service[j]
        if crashes and crashes[0] == now:
            crashes.pop(0)
            for j in queue:
                out[j] = (CRASHED, now)
            queue.clear()
            for j, e in in_service.items():
                out[j] = (CRASHED, e)
            in_service.clear()
        start_waiting(now)
        if i < len(arrivals) and arrivals[i] == now:
            cap, factor = window_at(now)
            if cap == DOWN:
                out[i] = (UNAVAILABLE, now)
            elif not queue and len(in_service) < cap:
                out[i] = (now, now + services[i] * factor)
                in_service[i] = now + services[i] * factor
            elif qlimit is not None and len(queue) >= qlimit:
                out[i] = (REJECTED, now)
            else:
                queue.append(i)
            i += 1
        edges = [e for e in edges if e > now]
    return out


@pytest.mark.parametrize(
    ("servers", "qlimit", "windowed"),
    [
        (1, None, ""),
        (3, 2, ""),
        (20, None, ""),
        (20, 5, ""),  # 20 servers: the heap
        (1, None, "capacity"),
        (4, 3, "capacity"),
        (4, None, "capacity"),
        (1, None, "crash"),
        (4, 3, "crash"),
        (20, 5, "crash"),
    ],
)
def test_station_recursion_matches_an_event_by_event_queue(
    servers: int, qlimit: int | None, windowed: str
) -> None:
    """Start and end of every job, to rounding, including capacity windows (a GC-pause-like 0, a
    reduced capacity, a slow factor), crashes (two, one of them inside a slow window's reach) and
    queue-bound rejections."""
    rng = np.random.default_rng(servers * 10 + (qlimit or 0) + len(windowed))
    n = 3000
    t = np.cumsum(rng.exponential(1.0 / (0.9 * servers), n))
    svc = rng.exponential(1.0, n)
    wins = {
        "": [],
        "capacity": [
            (t[300], t[300] + 15.0, 0, 1.0),
            (t[900], t[900] + 40.0, max(servers // 2, 1), 2.5),
            (t[1800], t[1800] + 30.0, servers, 0.5),
        ],
        "crash": [
            (t[300] + 0.1, t[300] + 20.0, DOWN, 1.0),
            (t[900], t[900] + 40.0, servers, 2.5),
            (t[900] + 40.0, t[900] + 45.0, DOWN, 1.0),
            (t[2000] + 0.3, t[2000] + 30.0, max(servers // 2, 1), 1.0),
        ],
    }[windowed]
    expected = reference_queue(t.tolist(), svc.tolist(), servers, qlimit, wins)
    windows = {0: Windows(*(np.array(col) for col in zip(*wins, strict=True)))} if wins else None
    S = build_stations([servers], [qlimit], [0], 1, windows)
    start, end, done = serve_jobs(S, t, np.zeros(n, np.int64), svc, np.zeros(n, np.int64), math.inf)
    assert done.all()
    exp = np.array(expected)
    np.testing.assert_allclose(start, exp[:, 0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(end, exp[:, 1], rtol=1e-12, atol=1e-9)
    if qlimit is not None:
        assert (start == REJECTED).any(), "the case should exercise rejections"
    if windowed == "crash":
        for code in (UNAVAILABLE, CRASHED):
            assert (start == code).any(), f"the case should exercise outcome {code}"
        # both kinds of crashed work: queued (fails at the crash) and in service (fails later)
        crashed_at = end[start == CRASHED]
        assert np.isin(crashed_at, [w[0] for w in wins if w[2] == DOWN]).any()
        assert (~np.isin(crashed_at, [w[0] for w in wins if w[2] == DOWN])).any()
    else:  # every job that started is served: the wait counters (P(wait), mean wait) match the reference
        ok = exp[:, 0] >= 0
        waited = exp[ok, 0] - t[ok]
        assert S.ints[0, STARTED] == ok.sum() and S.ints[0, QUEUED] == (waited > 0).sum() > 0
        assert S.floats[0, WAIT_S] == pytest.approx(waited.sum(), rel=1e-9)
    assert S.counts[OUT_OF_ORDER] == 0


# --------------------------------------------------------------------------------------------
# Chunks


def _strip(summary: Summary) -> Summary:
    return {k: v for k, v in summary.items() if k != "wall_seconds"}


def test_results_do_not_depend_on_the_chunk_length() -> None:
    """Each station serves its arrivals in time order across chunk borders (no arrival is ever
    served after a later one), so the whole summary is the same for any chunk length."""
    sc = load_scenario(SMALL, ["duration_s=2", "warmup_s=0.5", "sample=0.2"])
    summaries = []
    for chunk_s in (0.013, 0.31):
        engine = FastEngine(sc, chunk_s=chunk_s)
        summaries.append(_strip(build_result(engine.run(), engine="fast").summary))
        assert engine.stations.counts[OUT_OF_ORDER] == 0
    a, b = summaries
    assert a["requests"]["send"]["sent"] > 0 and a["latency_ms"]["delivery"]["count"] > 0
    assert _close(a, b), "summaries differ between chunk lengths"


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative (sums taken in a different grouping)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return bool(a == b)


# --------------------------------------------------------------------------------------------
# Agreement with the DES and with closed forms


def _run(name: str | Path, engine: str, overrides: list[str], drain: bool = False) -> Summary:
    path = VALIDATION / f"{name}.yaml" if isinstance(name, str) else name
    return simulate(load_scenario(path, overrides), engine=engine, drain=drain).summary


def _replications(name: str | Path, engine: str, r: int, *settings: str) -> list[Summary]:
    return [_run(name, engine, [f"seed={seed}", *settings]) for seed in range(1, r + 1)]


def _agree(
    label: str,
    des: list[Summary],
    fast: list[Summary],
    get: Getter,
    quantile: bool = False,
    theory: float | None = None,
) -> None:
    """Welch two-sample check at 99.9% (plus each histogram's 1% for quantiles), and each engine
    against theory when there is one (Student t at R - 1 degrees of freedom)."""
    xd = np.array([get(s) for s in des])
    xf = np.array([get(s) for s in fast])
    md, mf = xd.mean(), xf.mean()
    vd, vf = xd.var(ddof=1) / xd.size, xf.var(ddof=1) / xf.size
    se = math.sqrt(vd + vf)
    df = (vd + vf) ** 2 / (vd**2 / (xd.size - 1) + vf**2 / (xf.size - 1)) if se > 0 else 1.0
    tol = float(stats.t.ppf(1 - ALPHA / 2, df)) * se + (HIST * (abs(md) + abs(mf)) if quantile else 0.0)
    print(
        f"{label}: des {md:.5g}, fast {mf:.5g}, difference {mf - md:+.3g}, tolerance {tol:.3g}"
        + (f", theory {theory:.5g}" if theory is not None else "")
    )
    assert abs(mf - md) <= tol, f"{label}: fast {mf:.6g} vs des {md:.6g}, beyond {tol:.3g}"
    if theory is not None:
        for name, x in (("des", xd), ("fast", xf)):
            t_crit = float(stats.t.ppf(1 - ALPHA / 2, x.size - 1))
            tol_t = t_crit * x.std(ddof=1) / math.sqrt(x.size) + (HIST * theory if quantile else 0.0)
            assert abs(x.mean() - theory) <= tol_t, f"{label} ({name}): {x.mean():.6g} vs theory {theory:.6g}"


def latency(key: str, op: str = "send") -> Getter:
    return lambda s: s["latency_ms"][op][key]


def component(name: str, key: str) -> Getter:
    return lambda s: s["components"][name][key]


R = 8


@pytest.fixture(scope="module")
def tandem() -> tuple[list[Summary], list[Summary]]:
    settings = ("duration_s=16", "warmup_s=2")
    return _replications("tandem", "des", R, *settings), _replications("tandem", "fast", R, *settings)


def test_tandem_of_mm1_stations_agrees(tandem: tuple[list[Summary], list[Summary]]) -> None:
    """Jackson tandem of three M/M/1 (scenarios/validation/tandem.yaml): mean 6.5 ms, p99 21.451 ms
    (hypoexponential), each station's utilization lambda/mu; the engines agree on all of them."""
    des, fast = tandem
    _agree("tandem mean ms", des, fast, latency("mean"), theory=6.5)
    _agree("tandem p50 ms", des, fast, latency("p50"), quantile=True)
    _agree("tandem p99 ms", des, fast, latency("p99"), quantile=True, theory=21.451)
    for station, rho in (("gateway", 0.5), ("message_service", 0.8), ("cassandra", 0.6)):
        _agree(f"tandem {station} utilization", des, fast, component(station, "utilization_mean"), theory=rho)
    _agree("tandem throughput /s", des, fast, lambda s: s["throughput_per_sec"]["send"], theory=1000.0)


def test_fork_join_agrees() -> None:
    """Two M/M/1 queues joined at both replies (writes at ALL over RF 2): Nelson-Tantawi's
    R = (12 - rho)/8/(mu - lambda) = 4.7083 ms; p99 and utilization agree between the engines."""
    settings = ("duration_s=16", "warmup_s=2")
    des, fast = (
        _replications("forkjoin", "des", R, *settings),
        _replications("forkjoin", "fast", R, *settings),
    )
    _agree("fork-join mean ms", des, fast, latency("mean"), theory=(12 - 0.7) / 8 / 0.3)
    _agree("fork-join p99 ms", des, fast, latency("p99"), quantile=True)
    _agree("fork-join utilization", des, fast, component("cassandra", "utilization_mean"), theory=0.7)


@pytest.mark.parametrize("op", ["send", "read"])
def test_quorum_order_statistic_agrees(op: str) -> None:
    """QUORUM over RF 3 with nothing queueing: a write is the 2nd smallest of 3 Exp(1 ms) replies
    (mean 0.8333 ms, median ln 2 ms), a read the larger of 2 (mean 1.5 ms, p99 5.2958 ms). Samples
    are iid: SE from the exact variance, z at 99.9%, and each engine within it of the closed form."""
    j, m = (2, 3) if op == "send" else (2, 2)
    mean = sum(1 / i for i in range(m - j + 1, m + 1))
    var = sum(1 / i**2 for i in range(m - j + 1, m + 1))
    z = float(stats.norm.ppf(1 - ALPHA / 2))
    settings = ["seed=3", "duration_s=8", "warmup_s=1"]
    got = {engine: _run("quorum", engine, settings)["latency_ms"][op] for engine in ("des", "fast")}

    def cdf(t: float) -> float:
        f = 1 - math.exp(-t)
        return sum(math.comb(m, i) * f**i * (1 - f) ** (m - i) for i in range(j, m + 1))

    for p, key in ((0.5, "p50"), (0.99, "p99")):
        t_p = _solve(cdf, p)
        f = 1 - math.exp(-t_p)
        pdf = (
            math.factorial(m)
            / (math.factorial(j - 1) * math.factorial(m - j))
            * f ** (j - 1)
            * (1 - f) ** (m - j)
            * math.exp(-t_p)
        )
        for engine, s in got.items():
            se = math.sqrt(p * (1 - p) / s["count"]) / pdf
            assert abs(s[key] - t_p) <= z * se + HIST * t_p, f"{op} {key} {engine}: {s[key]} vs {t_p}"
        se2 = math.sqrt(sum(p * (1 - p) / s["count"] for s in got.values())) / pdf
        assert abs(got["fast"][key] - got["des"][key]) <= z * se2 + 2 * HIST * t_p
    for engine, s in got.items():
        assert abs(s["mean"] - mean) <= z * math.sqrt(var / s["count"]), f"{op} mean {engine}: {s['mean']}"


def _solve(cdf: Callable[[float], float], p: float) -> float:
    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def test_mmc_closed_forms() -> None:
    """M/M/8 at rho 0.85 (Erlang C): mean response 1.47714 ms, wait p99 3.3730 ms, utilization 0.85,
    P(wait) C = 0.57257 and mean queue wait C/(c mu - lambda) = 0.47714 ms, fast engine alone
    (10 replications; t at 9 degrees of freedom)."""
    runs = _replications("mmc", "fast", 10, "duration_s=10", "warmup_s=1")
    t_crit = float(stats.t.ppf(1 - ALPHA / 2, 9))
    for label, get, theory, q in (
        ("mean", latency("mean"), 1.47714, False),
        ("wait p99", component("gateway", "queue_wait_ms_p99"), 3.3730, True),
        ("utilization", component("gateway", "utilization_mean"), 0.85, False),
        ("P(wait)", component("gateway", "p_wait"), 0.57257, False),
        ("mean queue wait", component("gateway", "queue_wait_ms_mean"), 0.47714, False),
    ):
        x = np.array([get(s) for s in runs])
        tol = t_crit * x.std(ddof=1) / math.sqrt(x.size) + (HIST * theory if q else 0.0)
        print(f"M/M/8 {label}: fast {x.mean():.5g}, theory {theory}, tolerance {tol:.3g}")
        assert abs(x.mean() - theory) <= tol


def test_small_messaging_scenario_agrees() -> None:
    """interview-small at F = 0.1 (send, read, delivery flows over all six fleets): latency
    percentiles, utilizations, throughputs and the cache hit ratio agree between the engines."""
    settings = ("duration_s=4", "warmup_s=1", "sample=0.1")
    n = 5
    des, fast = _replications(SMALL, "des", n, *settings), _replications(SMALL, "fast", n, *settings)
    for op in ("send", "read", "delivery"):
        _agree(f"{op} mean ms", des, fast, latency("mean", op))
        _agree(f"{op} p50 ms", des, fast, latency("p50", op), quantile=True)
        _agree(f"{op} p99 ms", des, fast, latency("p99", op), quantile=True)
        _agree(f"{op} throughput /s", des, fast, lambda s, op=op: s["throughput_per_sec"][op])
    for name in des[0]["components"]:
        _agree(f"{name} utilization", des, fast, component(name, "utilization_mean"))
        _agree(f"{name} P(wait)", des, fast, component(name, "p_wait"))
    _agree("cache hit ratio", des, fast, lambda s: s["cache"]["hit_ratio"])
    for s in fast:
        assert s["engine"] == "fast" and s["checks"]["conservation_holds"]


# --------------------------------------------------------------------------------------------
# Contract, conservation, faults, refusals


def test_summary_has_the_des_contract() -> None:
    sc = load_scenario(SMALL, ["duration_s=2", "warmup_s=1", "sample=0.1"])
    des, fast = simulate(sc, engine="des").summary, simulate(sc, engine="fast").summary

    def shape(x: Any, depth: int = 0) -> Any:
        return {k: shape(v, depth + 1) for k, v in x.items()} if isinstance(x, dict) and depth < 2 else None

    skip = {"workload", "sample", "latency_breakdown", "analytic", "cost", "slo", "errors", "async_errors"}
    assert {k: v for k, v in shape(des).items() if k not in skip} == {
        k: v for k, v in shape(fast).items() if k not in skip
    }
    assert fast["engine"] == "fast" and des["engine"] == "des"
    again = simulate(sc, engine="fast").summary
    assert _close(_strip(fast), _strip(again)), "same seed, same numbers"


@pytest.mark.parametrize("name", ["tandem", "forkjoin"])
def test_drain_conserves_and_little_is_exact(name: str) -> None:
    s = _run(name, "fast", ["seed=7", "duration_s=5", "warmup_s=0"], drain=True)
    assert s["drained"] and s["checks"]["conservation_holds"]
    for op, c in s["requests"].items():
        assert c["in_flight"] == 0 and c["sent"] == c["succeeded"] + c["failed"], (op, c)
    for op, little in s["checks"]["little"].items():
        assert little["relative_difference"] < 1e-9, (op, little)


def test_slow_fault_and_gc_pauses_are_capacity_windows(tmp_path: Path) -> None:
    """Deterministic arrivals every 2 ms and service 1 ms: utilization 0.5, and 0.75 while a slow
    fault (x1.5) holds for half the run: 0.625 over it. GC pauses of 10 ms every 100 ms hold the
    jobs that arrive during them: each pause's jobs wait, none is lost."""
    path = tmp_path / "faults.yaml"
    path.write_text(
        f"extends: {VALIDATION / 'md1.yaml'}\nduration_s: 10\nwarmup_s: 0\n"
        "workload: {arrivals: deterministic, sends_per_sec: 500}\n"
        "faults:\n  - {kind: slow, component: gateway, nodes: [0], factor: 1.5, start_s: 5, "
        "duration_s: 5}\n"
    )
    s = simulate(load_scenario(path), engine="fast").summary
    assert abs(s["components"]["gateway"]["utilization_mean"] - 0.625) < 1e-3
    assert s["latency_ms"]["send"]["max"] == pytest.approx(1.5, rel=0.01)
    path.write_text(
        f"extends: {VALIDATION / 'md1.yaml'}\nduration_s: 10\nwarmup_s: 0\n"
        "workload: {arrivals: deterministic, sends_per_sec: 500}\n"
        "faults:\n  - {kind: gc_pauses, component: gateway, nodes: [0], pause_ms: 10, every_s: 0.1, "
        "start_s: 2, duration_s: 5}\n"
    )
    s = simulate(load_scenario(path), engine="fast").summary
    assert s["requests"]["send"]["failed"] == 0
    # a job arriving just after a pause starts waits out the rest of it: ~10 ms, plus its service
    assert 10.0 < s["latency_ms"]["send"]["max"] < 12.5
    assert s["availability"]["send"] == 1.0


def test_unsupported_features_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"policies\.client->gateway\.retry: retries .* --engine des"):
        simulate(load_scenario(ROOT / "scenarios" / "retry-storm.yaml"), engine="fast")
    with pytest.raises(ScenarioError, match=r"faults\[0\]\.kind: zone_outage faults .* --engine des"):
        simulate(load_scenario(ROOT / "scenarios" / "zone-outage.yaml"), engine="fast")
    for fault, match in (
        ("{kind: crash, component: kafka, nodes: [0]", r"faults\[0\]\.component: a crash of kafka"),
        ("{kind: crash, component: cassandra, nodes: [0], lose_data: true", r"faults\[0\]\.lose_data"),
    ):
        path = tmp_path / "refused.yaml"
        path.write_text(f"extends: {SMALL}\nfaults:\n  - {fault}, start_s: 1, duration_s: 1}}\n")
        with pytest.raises(ScenarioError, match=match + ".*--engine des"):
            simulate(load_scenario(path), engine="fast")
    with pytest.raises(ScenarioError, match="unknown engine"):
        simulate(load_scenario(SMALL), engine="warp")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "run",
            str(ROOT / "scenarios" / "zone-outage.yaml"),
            "--engine",
            "fast",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--engine des" in lines[0], done.stderr


# --------------------------------------------------------------------------------------------
# Timeouts and crashes


def test_client_timeout_is_the_mm1_sojourn_tail(tmp_path: Path) -> None:
    """M/M/1 (lambda 800/s, mu 1000/s) with a client timeout T = 5 ms: the client counts a
    failure for each response slower than T, P(sojourn > T) = exp(-(mu - lambda) T) = e^-1, and
    every failure is a "timeout" at t0 + T. R replications, Student t at 99.9%."""
    path = tmp_path / "mm1-timeout.yaml"
    path.write_text(f"extends: {VALIDATION / 'mm1.yaml'}\npolicies:\n  client->gateway: {{timeout_ms: 5}}\n")
    shares = []
    for seed in range(1, R + 1):
        s = _run(path, "fast", [f"seed={seed}", "duration_s=120", "warmup_s=10"])
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
    fires."""
    path = tmp_path / "step-timeouts.yaml"
    path.write_text(
        f"extends: {SMALL}\nsample: 0.1\nduration_s: 3\nwarmup_s: 0.5\n"
        "network: {hop_ms: 0.1}\n"
        "cassandra: {write_service_ms: {dist: deterministic, value: 3}}\n"
        "policies:\n"
        "  message_service->cassandra: {timeout_ms: 2}\n"
        "  group_service->cassandra: {timeout_ms: 2}\n"
        "  message_service->redis: {timeout_ms: 1000}\n"
    )
    for engine in ("des", "fast"):
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
    for engine in ("des", "fast"):
        s = _run(path, engine, [])
        errors = s["errors"]
        counts[engine] = errors.get("send:cassandra.unavailable", 0)
        # the sends stored in the window: Poisson with mean 2 s x 2,500/s
        assert abs(counts[engine] - 5000) <= Z * math.sqrt(5000), (engine, errors)
        crashed = sum(n for k, n in errors.items() if k.startswith("read:"))
        assert crashed <= 64, (engine, errors)  # caught in node 0's queue or service at t = 2 s
        assert s["resilience"]["cassandra"]["unavailable"] >= counts[engine]
    a, b = counts["des"], counts["fast"]
    assert abs(a - b) <= Z * math.sqrt(a + b), counts


def test_cassandra_crash_at_quorum_loses_no_send_and_keeps_hints(tmp_path: Path) -> None:
    """QUORUM with one of three replicas down: every write still has 2 live replicas, so no send
    fails; every write and inbox write issued in the window stores a hint for node 0."""
    path = _crash_scenario(
        tmp_path, "faults:\n  - {kind: crash, component: cassandra, nodes: [0], start_s: 2, duration_s: 2}\n"
    )
    s = _run(path, "fast", [])
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
    for engine in ("des", "fast"):
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
    for engine in ("des", "fast"):
        result = simulate(load_scenario(path), engine=engine)
        s, series = result.summary, result.timeseries
        counts[engine] = s["errors"].get("send:redis.unavailable", 0)
        assert abs(counts[engine] - 2500) <= Z * math.sqrt(2500), (engine, s["errors"])
        assert not any(k.startswith("read:") for k in s["errors"]), (engine, s["errors"])
        # per-second windows, labelled by their end: (1, 2] before the crash, (3, 4] after it
        ratio = series.groupby(np.ceil(series["t_s"]).astype(int))["cache_hit_ratio"].mean()
        print(engine, ratio.round(3).to_dict())
        assert ratio[2] == 1.0 and ratio[4] < 0.99 and ratio[4] < ratio[6], (engine, ratio.to_dict())
    a, b = counts["des"], counts["fast"]
    assert abs(a - b) <= Z * math.sqrt(a + b), counts


def _imports_des(source: str) -> list[str]:
    """The imports of the DES package (sim.des) in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "sim.des" or a.name.startswith("sim.des.")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "sim.des" or node.module.startswith("sim.des."):
                found.append(node.module)
            elif node.module == "sim":
                found += [f"sim.{a.name}" for a in node.names if a.name == "des"]
    return found


def test_fast_modules_are_small_and_do_not_import_the_des() -> None:
    """sim/fast is split along its stages: no module over 450 lines, none importing sim.des (the
    engines share only neutral modules, e.g. sim/placement.py and sim/run_state.py)."""
    assert _imports_des("from sim.des.engine import Engine\nimport sim.des.station\nfrom sim import des") == [
        "sim.des.engine", "sim.des.station", "sim.des"
    ]  # the check itself finds all three spellings
    modules = sorted((ROOT / "sim" / "fast").glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        source = path.read_text()
        assert len(source.splitlines()) <= 450, (path.name, len(source.splitlines()))
        assert _imports_des(source) == [], (path.name, _imports_des(source))


def test_kafka_and_storage_share_one_slice_merge_kernel() -> None:
    """The brokers' and the shards'/nodes' time slices run through sim/fast/slices.py's kernel
    (open_slices, next_slice, fleet_pass, end_pass, close_slices): neither module chooses slice ends,
    selects generated jobs or drops served ones itself."""
    helpers = {"next_horizon", "select_generated", "drop_served", "suffix_min", "any_before", "order_jobs"}
    kernel = {"open_slices", "next_slice", "fleet_pass", "end_pass", "close_slices"}
    for name in ("kafka.py", "storage.py"):
        tree = ast.parse((ROOT / "sim" / "fast" / name).read_text())
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        imported = {
            a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "sim.fast.slices"
            for a in n.names
        }
        assert kernel <= imported and kernel <= used, (name, kernel - imported, kernel - used)
        assert not (helpers & used), (name, helpers & used)


def test_engines_list_everything_they_cannot_run_behind_one_contract() -> None:
    """sim/engines.py: each engine's supports() names every feature it cannot run, one line each;
    the DES runs what the fast engine refuses; an unknown engine is a one-line error."""
    from sim.engines import ENGINES, engine

    sc = load_scenario(SMALL, [
        "group_service.fan_out=read", "message_service.partition_key=conversation",
        "policies={client->gateway: {timeout_ms: 100, retry: {max_attempts: 2}}}",
        "faults=[{kind: broker_loss, component: kafka, nodes: [0], start_s: 1, duration_s: 1}]",
    ])
    problems = ENGINES["fast"].supports(sc)
    text = [str(p) for p in problems]
    assert len(text) == 3 and all("\n" not in t for t in text)
    assert any("group_service.fan_out" in t for t in text)
    assert any("policies.client->gateway.retry" in t for t in text)
    assert any("faults[0].kind" in t for t in text)
    assert ENGINES["des"].supports(sc) == []
    with pytest.raises(ScenarioError, match="unknown engine 'gpu'; allowed: des, fast"):
        engine("gpu")


def test_member_draws_by_rejection_follow_the_member_weights() -> None:
    """sim/fast/placement.draw_members: a 40-member conversation (drawn by rejection) and a
    3-member one (drawn by scan) give each member its weight's share: chi-square goodness of fit
    at alpha 1e-3 over 200k draws each, with the scan's own answer as a second opinion."""
    from sim.arrays.placement import draw_members, salt_mixed
    from sim.workload import member_ids

    n_users = 1_000
    recipients = np.array([39, 2], dtype=np.int32)
    weights = np.random.default_rng(5).pareto(1.5, n_users) + 0.01  # skewed, like activity / degree
    bound = np.array([max(weights[member_ids(np.full(n, c), np.arange(n), n_users)])
                      for c, n in enumerate(recipients + 1)], dtype=np.float32) * np.float32(1.0001)
    draws = 200_000
    for c in (0, 1):
        members = member_ids(np.full(recipients[c] + 1, c), np.arange(recipients[c] + 1), n_users)
        slots, users = draw_members(np.full(draws, c, np.int64), np.arange(draws, dtype=np.int64),
                                    np.uint64(12345), recipients, weights, bound, np.int64(n_users),
                                    salt_mixed(2))
        assert (users == members[slots]).all()
        p = weights[members] / weights[members].sum()
        counts = np.bincount(slots, minlength=members.size)
        chi2 = float(((counts - draws * p) ** 2 / (draws * p)).sum())
        assert chi2 < stats.chi2.ppf(1 - 1e-3, members.size - 1), (c, chi2)
