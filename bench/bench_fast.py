"""Fast engine benchmark: the station recursion against idiomatic SimPy, numba's gain, and the
reference design at full scale (speed and peak memory).

    .venv/bin/python bench/bench_fast.py [--requests N] [--reps R] [--send-duration S]
                                         [--whole-duration S] [--memory-duration S] [--skip ...]

(a) tandem, fast: bench_engine.py's network (5 x M/M/8, rho 0.7, hop 0) on the fast engine's
    station layer (sim.fast.fleet.serve_jobs: jobs put in time order, the Kiefer-Wolfowitz
    recursion, in chunks of --chunk requests carrying each station's state). Arrivals and service
    times are bench_engine's own samplers' values (same seeds, same blocks), each station's
    services taken in its arrival order as SimPy takes them, so the fast engine computes the very
    same sample path: the mean responses must agree to rounding.
(b) tandem, idiomatic SimPy: bench_engine.tandem_processes (a generator process per request over
    simpy.Resource), timed in the same run, interleaved (a, b, a, b, ...), best of --reps. The
    ratio of request-hops per wall second is the issue's ">= 40x".
(c) numba's gain: the same recursion over the same M/M/8 jobs in plain Python against the compiled
    loop (ns per job).
(d) the reference design (scenarios/messaging-1m.yaml) at full scale (sample 1) on the fast engine:
    the send path alone (reads_per_sec 0) and the whole workload, simulated seconds per wall second
    of FastEngine.run (the build, mostly the cache model over 40M conversations, is timed apart).
(e) peak memory: the whole workload for --memory-duration simulated seconds (60 in the issue) in a
    child process, its peak resident set (ru_maxrss) and wall time.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numba  # noqa: E402
from bench_engine import (  # noqa: E402
    ARRIVAL_RATE,
    SERVERS,
    SERVICE_MEAN_S,
    STATIONS,
    mean_and_halfwidth,
    mmc_response,
    tandem_processes,
)

import sim  # noqa: E402
from sim.arrays.station import build_stations  # noqa: E402
from sim.distributions import BLOCK, Exponential, draw  # noqa: E402
from sim.fast.engine import FastEngine  # noqa: E402
from sim.fast.fleet import serve_jobs  # noqa: E402

SCENARIO = ROOT / "scenarios" / "messaging-1m.yaml"


# --------------------------------------------------------------------------------------------
# (a) the tandem on the fast station layer


def _blocks(spec: Exponential, rng: np.random.Generator, n: int) -> np.ndarray:
    """The first n values a sim.distributions.sampler(spec, rng) would hand out (same blocks)."""
    blocks = [draw(spec, rng, BLOCK) for _ in range(math.ceil(n / BLOCK))]
    return np.concatenate(blocks)[:n]


def tandem_fast(n: int, seed: int, chunk: int) -> np.ndarray:
    """Response times of n requests through the 5 x M/M/8 tandem, chunk by chunk."""
    streams = np.random.SeedSequence(seed).spawn(STATIONS + 1)
    gaps = _blocks(
        Exponential(dist="exponential", mean=1.0 / ARRIVAL_RATE), np.random.default_rng(streams[0]), n
    )
    services = [
        _blocks(Exponential(dist="exponential", mean=SERVICE_MEAN_S), np.random.default_rng(s), n)
        for s in streams[1:]
    ]
    t0 = np.cumsum(gaps)  # each arrival after the previous one's gap, summed in order as SimPy does
    S = build_stations([SERVERS] * STATIONS, [None] * STATIONS, list(range(STATIONS)), STATIONS)
    used = [0] * STATIONS  # services handed out per station (in its arrival order)
    carried = [(np.zeros(0), np.zeros(0, np.int64)) for _ in range(STATIONS)]  # (arrival, request)
    done_at = np.full(n, np.nan)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        t_end = t0[hi] if hi < n else math.inf
        arr, req = t0[lo:hi], np.arange(lo, hi)
        for k in range(STATIONS):
            a = np.concatenate([carried[k][0], arr])
            r = np.concatenate([carried[k][1], req])
            order = np.argsort(a, kind="stable")
            a, r = a[order], r[order]
            take = int(np.searchsorted(a, t_end, side="left"))
            svc = np.empty(a.size)
            svc[:take] = services[k][used[k] : used[k] + take]
            used[k] += take
            st = np.full(a.size, k, np.int64)
            _start, end, done = serve_jobs(S, a, st, svc, np.zeros(a.size, np.int64), t_end)
            carried[k] = (a[~done], r[~done])
            arr, req = end[done], r[done]
        done_at[req] = arr
    return done_at - t0


def bench_tandem(n: int, seed: int, reps: int, chunk: int) -> None:
    hops = n * STATIONS
    theory = STATIONS * mmc_response(SERVERS, ARRIVAL_RATE, SERVICE_MEAN_S)
    print(
        f"(a)/(b) tandem: {STATIONS} x M/M/{SERVERS}, rho 0.7, {n:,} requests = {hops:,} request-hops "
        f"per run, seed {seed}; best of {reps}, interleaved; fast chunks of {chunk:,} requests"
    )
    tandem_fast(5000, seed, chunk)  # compile / load the compiled code
    tandem_processes(2000, seed)
    walls: dict[str, list[float]] = {"fast": [], "simpy": []}
    cpus: dict[str, list[float]] = {"fast": [], "simpy": []}
    resp: dict[str, np.ndarray] = {}
    for _ in range(reps):
        for key in ("fast", "simpy"):
            gc.collect()
            c, w = time.process_time(), time.perf_counter()
            out = tandem_fast(n, seed, chunk) if key == "fast" else np.asarray(tandem_processes(n, seed)[0])
            walls[key].append(time.perf_counter() - w)
            cpus[key].append(time.process_time() - c)
            resp[key] = out
    skip = max(1, n // 50)
    for key, label in (("fast", "(a) fast engine station layer (numba)"), ("simpy", "(b) idiomatic SimPy")):
        best = min(walls[key])
        mean, half = mean_and_halfwidth(resp[key].tolist(), skip)
        print(
            f"  {label}: wall {best:.3f} s (runs {', '.join(f'{x:.3f}' for x in walls[key])}), "
            f"{hops / best:,.0f} request-hops/s; CPU {min(cpus[key]):.3f} s; mean response {mean * 1e3:.4f} "
            f"+/- {half * 1e3:.4f} ms"
        )
    same = np.allclose(resp["fast"], resp["simpy"], rtol=1e-9, atol=1e-12)
    print(
        f"  same sample path: {'yes' if same else 'NO'} (max |difference| "
        f"{np.max(np.abs(resp['fast'] - resp['simpy'])):.3g} s); theory (Erlang C) {theory * 1e3:.4f} ms"
    )
    ratio = min(walls["simpy"]) / min(walls["fast"])
    print(
        f"  ratio (a)/(b), request-hops per wall second: {ratio:.1f}x (issue target >= 40x); per CPU second: "
        f"{min(cpus['simpy']) / min(cpus['fast']):.1f}x"
    )
    print()


# --------------------------------------------------------------------------------------------
# (c) numba's gain on the recursion


def recursion_python(t: list[float], svc: list[float], servers: int) -> float:
    free = [0.0] * servers
    total = 0.0
    for a, s in zip(t, svc, strict=True):
        k = min(range(servers), key=free.__getitem__)
        start = a if a > free[k] else free[k]
        free[k] = start + s
        total += free[k]
    return total


def bench_numba(n: int) -> None:
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.exponential(1.0 / (0.7 * SERVERS), n))
    svc = rng.exponential(1.0, n)
    S = build_stations([SERVERS], [None], [0], 1)
    zeros = np.zeros(n, np.int64)
    serve_jobs(S, t[:100], zeros[:100], svc[:100], zeros[:100], math.inf)
    S = build_stations([SERVERS], [None], [0], 1)
    w = time.perf_counter()
    serve_jobs(S, t, zeros, svc, zeros, math.inf)
    compiled = (time.perf_counter() - w) / n
    m = min(n, 200_000)
    w = time.perf_counter()
    recursion_python(t[:m].tolist(), svc[:m].tolist(), SERVERS)
    python = (time.perf_counter() - w) / m
    print(
        f"(c) numba's gain: the M/M/{SERVERS} recursion, {n:,} jobs: compiled serve_jobs "
        f"{compiled * 1e9:.0f} ns/job (sort + recursion + statistics), plain Python loop (recursion only) "
        f"{python * 1e9:.0f} ns/job: "
        f"{python / compiled:.0f}x (numba {numba.__version__})"
    )
    print()


# --------------------------------------------------------------------------------------------
# (d) and (e): the reference design at full scale


def bench_design(label: str, overrides: list[str]) -> None:
    sc = sim.load_scenario(SCENARIO, ["sample=1", *overrides])
    gc.collect()
    w = time.perf_counter()
    engine = FastEngine(sc)
    build = time.perf_counter() - w
    w = time.perf_counter()
    c = time.process_time()
    state = engine.run()
    wall = time.perf_counter() - w
    cpu = time.process_time() - c
    s = sim.result.build_result(state, engine="fast").summary
    visits = s["events"]
    requests = s["requests"]["send"]["sent"] + s["requests"]["read"]["sent"]
    print(
        f"(d) {label}: {SCENARIO.name} at sample 1 ({' '.join(overrides)}): {requests:,} requests, "
        f"{s['requests']['delivery']['sent']:,} deliveries, {visits:,} station visits"
    )
    print(
        f"    build {build:.1f} s; run {wall:.1f} s wall ({cpu:.1f} s CPU): "
        f"{sc.duration_s / wall:.4f} simulated s per wall s, {visits / wall:,.0f} visits/s, "
        f"{requests / wall:,.0f} requests/s; {engine.slices} slices"
    )
    lat = s["latency_ms"]
    print(
        "    "
        + "; ".join(
            f"{op} p50 {lat[op]['p50']:.3g} p99 {lat[op]['p99']:.3g} ms" for op in lat if lat[op]["count"]
        )
    )
    print(
        "    "
        + "; ".join(
            f"{k} util {v['utilization_mean']:.2f}/{v['utilization_max']:.2f} rejected {v['rejected']:,}"
            for k, v in s["components"].items()
        )
    )
    print()


def memory_child(duration: float) -> None:
    sc = sim.load_scenario(SCENARIO, ["sample=1", f"duration_s={duration}", "warmup_s=5"])
    w = time.perf_counter()
    engine = FastEngine(sc, progress=None)
    build = time.perf_counter() - w
    w = time.perf_counter()
    state = engine.run()
    run = time.perf_counter() - w
    s = sim.result.build_result(state, engine="fast").summary
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"    child: build {build:.1f} s, run {run:.1f} s ({duration / run:.4f} sim s/wall s), "
        f"{s['events']:,} visits, peak RSS {rss_gb:.2f} GiB"
    )


def bench_memory(duration: float) -> None:
    print(
        f"(e) peak memory: whole workload, full scale, {duration:g} simulated s (5 s warm-up), "
        "in a child process"
    )
    w = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--memory-child", str(duration)], check=True)
    rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(
        f"    peak RSS of the child {rss_gb:.2f} GiB (issue target < 4 GB); "
        f"wall {time.perf_counter() - w:.0f} s"
    )
    print()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chunk", type=int, default=50_000, help="requests per chunk in (a)")
    p.add_argument("--send-duration", type=float, default=3.0)
    p.add_argument("--whole-duration", type=float, default=2.0)
    p.add_argument("--memory-duration", type=float, default=0.0, help="0: skip (e); the issue asks for 60")
    p.add_argument("--skip", nargs="*", default=[], choices=["tandem", "numba", "send", "whole"])
    p.add_argument("--memory-child", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return
    print(
        f"capsim fast engine benchmark: Python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"numba {numba.__version__}, simpy {simpy.__version__}, {os.cpu_count()} CPUs (one used)"
    )
    print()
    if "tandem" not in args.skip:
        bench_tandem(args.requests, args.seed, args.reps, args.chunk)
    if "numba" not in args.skip:
        bench_numba(1_000_000)
    if "send" not in args.skip:
        bench_design(
            "send path alone",
            [
                "workload.reads_per_sec=0",
                f"duration_s={args.send_duration}",
                f"warmup_s={args.send_duration / 3:g}",
            ],
        )
    if "whole" not in args.skip:
        bench_design(
            "whole workload", [f"duration_s={args.whole_duration}", f"warmup_s={args.whole_duration / 4:g}"]
        )
    if args.memory_duration > 0:
        bench_memory(args.memory_duration)


if __name__ == "__main__":
    main()
