"""Benchmarks of the station-order engine (sim/stations), side by side in one run:

(a) M/M/8 at rho 0.85 (scenarios/validation/design-mmc.yaml) through the Python API: customers per
    wall second on the stations engine, the calendar and idiomatic SimPy, alternating, best of N;
(b) full-scale paths at 1M requests/s, every request: a three-fleet chain (bench/chain-1m.yaml) and
    the reference design's write path without Kafka (bench/write-path-1m.yaml: gateway, message
    service, Cassandra at QUORUM beside a Redis append); simulated seconds per wall second and wall
    ns per station visit, on the stations engine with two threads and with one, and on the
    calendar, alternating;
(c) where the stations engine's time goes on the write path, on one thread: each kernel's wall time
    per call site, timed from Python (the rest is numpy glue and recording);
(d) a loop: url-shortener (scenarios/designs/url-shortener.yaml: a cache fill) at full scale through
    the Python API, the stations engine (its loop in slices) against the calendar, alternating; then
    the stations engine alone with slices of 0.25 to 2 ms: the fills served after a later lookup
    (out of arrival order) and the redirects' mean and p99.

Usage: python bench/bench_stations.py [--reps 3] [--mmc-duration 200] [--path-duration 1]
                                      [--loop-duration 10] [--skip mmc paths breakdown loop]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from bench_calendar import machine_line, mmc_simpy

import sim
import sim.stations.engine as stations_engine

ROOT = Path(__file__).resolve().parent.parent
MMC = ROOT / "scenarios" / "validation" / "design-mmc.yaml"
CHAIN = Path(__file__).resolve().parent / "chain-1m.yaml"
WRITE_PATH = Path(__file__).resolve().parent / "write-path-1m.yaml"
URL = ROOT / "scenarios" / "designs" / "url-shortener.yaml"


def timed(fn: object) -> tuple[float, dict]:
    gc.collect()
    w = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - w, out


def bench_mmc(duration: float, reps: int) -> None:
    sc = sim.load_scenario(MMC, [f"duration_s={duration:g}", "warmup_s=5"])
    for engine in ("stations", "calendar"):
        sim.simulate(sc, engine=engine)  # untimed: numba's cache loaded or compiled
    n = int(sim.simulate(sc, engine="stations").summary["requests"]["work"]["sent"])
    print(f"(a) M/M/8, rho 0.85, {duration:g} simulated s: {n:,} customers a run, best of {reps}, "
          "alternating")
    walls: dict[str, list[float]] = {"stations": [], "calendar": [], "simpy": []}
    means: dict[str, float] = {}
    for _ in range(reps):
        for engine in ("stations", "calendar"):
            wall, res = timed(lambda engine=engine: sim.simulate(sc, engine=engine).summary)
            walls[engine].append(wall)
            means[engine] = res["latency_ms"]["work"]["mean"]
        wall, _ = timed(lambda: mmc_simpy(n, 1))
        walls["simpy"].append(wall)
    for key, w in walls.items():
        mean = f", mean response {means[key]:.4f} ms" if key in means else ""
        print(f"    {key:<8}: best {min(w):.3f} s ({', '.join(f'{x:.3f}' for x in w)}), "
              f"{n / min(w):,.0f} customers/s{mean}")
    for key in ("stations", "calendar"):
        print(f"    {key} / simpy, customers per wall s: {min(walls['simpy']) / min(walls[key]):.1f}x "
              "(issue 12's target >= 40x)")
    print(f"    {machine_line()}")
    print()


def bench_path(path: Path, duration: float, reps: int) -> None:
    sc = sim.load_scenario(path, [f"duration_s={duration:g}"])
    flow = next(iter(sc.flows))
    print(f"(b) {path.name}: {sc.flows[flow].rate_per_sec:,.0f} requests/s, {duration:g} simulated s "
          f"({sc.warmup_s:g} s of it warm-up), alternating")
    for engine in ("calendar", "stations"):  # compile, or load numba's cache
        sim.simulate(sim.load_scenario(path, ["duration_s=0.05", "warmup_s=0"]), engine=engine)
    arms = (("stations, 2 threads", "stations", 2), ("stations, 1 thread", "stations", 1),
            ("calendar", "calendar", 0))
    walls: dict[str, list[float]] = {label: [] for label, _, _ in arms}
    visits = 0
    p99: dict[str, float] = {}
    for _ in range(reps):
        for label, engine, threads in arms:
            stations_engine.THREADS = threads or stations_engine.THREADS
            wall, res = timed(lambda engine=engine: sim.simulate(sc, engine=engine).summary)
            walls[label].append(wall)
            p99[label] = res["latency_ms"][flow]["p99"]
            if engine == "stations":
                visits = int(res["events"])
        stations_engine.THREADS = 2
    for label, w in walls.items():
        best = min(w)
        print(f"    {label:<20}: best {best:.2f} s ({', '.join(f'{x:.2f}' for x in w)}): "
              f"{duration / best:.3f} simulated s per wall s, {best / visits * 1e9:.0f} ns per visit "
              f"({visits:,} visits); {flow} p99 {p99[label]:.3f} ms")
    print(f"    calendar / stations (2 threads), wall: "
          f"{min(walls['calendar']) / min(walls['stations, 2 threads']):.1f}x")
    print(f"    {machine_line()}")
    print()


def bench_breakdown(duration: float) -> None:
    """Each stations kernel's wall time on the write path, by call site."""
    import sim.stations.kernel as kernel

    spent: dict[str, list[float]] = {}
    names = ("start", "take", "split", "visit", "after", "resolve")
    originals = {name: getattr(kernel, name) for name in names}

    def timed_kernel(name: str) -> object:
        def run(*args: object) -> object:
            w = time.perf_counter()
            out = originals[name](*args)
            key = name
            if name == "after":  # by the node of the pass's first job: one component's
                key = f"after (node {int(args[1][0, kernel.J_NODE])})"  # type: ignore[index]
            acc = spent.setdefault(key, [0.0, 0])
            acc[0] += time.perf_counter() - w
            acc[1] += 1
            return out
        return run

    sc = sim.load_scenario(WRITE_PATH, [f"duration_s={duration:g}"])
    sim.simulate(sc, engine="stations")
    for name in originals:
        setattr(kernel, name, timed_kernel(name))
    stations_engine.THREADS = 1  # every kernel on this thread: each figure is wall time
    try:
        wall, res = timed(lambda: sim.simulate(sc, engine="stations").summary)
    finally:
        stations_engine.THREADS = 2
        for name, fn in originals.items():
            setattr(kernel, name, fn)
    visits = int(res["events"])
    print(f"(c) where the stations engine's time goes on {WRITE_PATH.name}, {duration:g} simulated s, on one "
          f"thread: {wall:.2f} s wall, {visits:,} visits, {wall / visits * 1e9:.0f} ns a visit all included")
    kernels = 0.0
    for key, (t, calls) in sorted(spent.items()):
        kernels += t
        print(f"    {key:<22}: {t:6.2f} s in {calls:5d} calls, {t / visits * 1e9:5.0f} ns a visit")
    rest = wall - kernels
    print(f"    the rest, numpy and Python glue: {rest:.2f} s, {rest / visits * 1e9:.0f} ns a visit")
    print(f"    {machine_line()}")
    print()


def bench_loop(duration: float, reps: int) -> None:
    from sim.arrays.station import OUT_OF_ORDER
    from sim.stations.engine import StationsEngine

    sc = sim.load_scenario(URL, [f"duration_s={duration:g}", "warmup_s=1"])
    print(f"(d) url-shortener (a cache fill), 121,200 requests/s, {duration:g} simulated s, through "
          f"simulate(), alternating, best of {reps}")
    for engine in ("calendar", "stations"):
        sim.simulate(sim.load_scenario(URL, ["duration_s=0.05", "warmup_s=0"]), engine=engine)
    walls: dict[str, list[float]] = {"stations": [], "calendar": []}
    p99: dict[str, float] = {}
    for _ in range(reps):
        for engine in walls:
            wall, res = timed(lambda engine=engine: sim.simulate(sc, engine=engine).summary)
            walls[engine].append(wall)
            p99[engine] = res["latency_ms"]["resolve"]["p99"]
    for engine, w in walls.items():
        print(f"    {engine:<9}: best {min(w):.2f} s ({', '.join(f'{x:.2f}' for x in w)}), resolve p99 "
              f"{p99[engine]:.3f} ms")
    print(f"    stations / calendar, wall: {min(walls['stations']) / min(walls['calendar']):.2f}x")
    default = stations_engine.LOOP_SLICE_S
    for slice_ms in (0.25, 0.5, 1.0, 2.0):
        stations_engine.LOOP_SLICE_S = slice_ms / 1e3
        engine_ = StationsEngine(sc)
        wall, state = timed(engine_.run)
        late = int(engine_.stations.counts[OUT_OF_ORDER])
        ops = state.recorder.ops["resolve"].latency_ms
        print(f"    slices of {slice_ms:g} ms: run {wall:.2f} s (no build), {late:,} fills served after "
              f"a later lookup ({late / max(state.redis_misses, 1):.1%} of the misses), resolve mean "
              f"{ops.mean:.4f} ms, p99 {ops.quantile(0.99):.4f} ms")
    stations_engine.LOOP_SLICE_S = default
    print(f"    {machine_line()}")
    print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--mmc-duration", type=float, default=200.0)
    p.add_argument("--path-duration", type=float, default=1.0)
    p.add_argument("--loop-duration", type=float, default=10.0)
    p.add_argument("--skip", nargs="*", default=[], choices=["mmc", "paths", "breakdown", "loop"])
    args = p.parse_args()
    if "mmc" not in args.skip:
        bench_mmc(args.mmc_duration, args.reps)
    if "paths" not in args.skip:
        for path in (CHAIN, WRITE_PATH):
            bench_path(path, args.path_duration, args.reps)
    if "breakdown" not in args.skip:
        bench_breakdown(args.path_duration)
    if "loop" not in args.skip:
        bench_loop(args.loop_duration, args.reps)


if __name__ == "__main__":
    main()
