"""Benchmarks of the station-order engine (sim/stations), side by side in one run:

(a) M/M/8 at rho 0.85 (scenarios/validation/design-mmc.yaml) through the Python API: customers per
    wall second on the stations engine, the calendar and idiomatic SimPy, alternating, best of N;
(b) a three-fleet chain at 1M requests/s, every request (bench/chain-1m.yaml): simulated seconds per
    wall second and wall ns per station visit, on the stations engine with two threads and with
    one, and on the calendar, alternating.

Usage: python bench/bench_stations.py [--reps 3] [--mmc-duration 200] [--chain-duration 1]
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


def bench_chain(duration: float, reps: int) -> None:
    sc = sim.load_scenario(CHAIN, [f"duration_s={duration:g}"])
    print(f"(b) {CHAIN.name}: 1M requests/s through 800 + 800 + 1,200 instances, {duration:g} simulated s "
          f"after {sc.warmup_s:g} s of warm-up (its run is {duration:g} s in all), alternating")
    sim.simulate(sim.load_scenario(CHAIN, ["duration_s=0.05", "warmup_s=0"]), engine="calendar")  # compile
    sim.simulate(sim.load_scenario(CHAIN, ["duration_s=0.05", "warmup_s=0"]), engine="stations")
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
            p99[label] = res["latency_ms"]["send"]["p99"]
            if engine == "stations":
                visits = int(res["events"])
        stations_engine.THREADS = 2
    for label, w in walls.items():
        best = min(w)
        print(f"    {label:<20}: best {best:.2f} s ({', '.join(f'{x:.2f}' for x in w)}): "
              f"{duration / best:.3f} simulated s per wall s, {best / visits * 1e9:.0f} ns per visit "
              f"({visits:,} visits); send p99 {p99[label]:.3f} ms")
    print(f"    calendar / stations (2 threads), wall: "
          f"{min(walls['calendar']) / min(walls['stations, 2 threads']):.1f}x")
    print(f"    {machine_line()}")
    print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--mmc-duration", type=float, default=200.0)
    p.add_argument("--chain-duration", type=float, default=1.0)
    p.add_argument("--skip", nargs="*", default=[], choices=["mmc", "chain"])
    args = p.parse_args()
    if "mmc" not in args.skip:
        bench_mmc(args.mmc_duration, args.reps)
    if "chain" not in args.skip:
        bench_chain(args.chain_duration, args.reps)


if __name__ == "__main__":
    main()
