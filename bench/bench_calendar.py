"""Calendar engine benchmark: M/M/8 through the Python API against idiomatic SimPy, every shipped
design at full scale, numba's first compile, and peak memory.

    .venv/bin/python bench/bench_calendar.py [--mmc-duration S] [--reps R] [--replications N]
                                             [--design-duration S] [--memory-duration S]
                                             [--memory-design NAME] [--messaging-duration S]
                                             [--skip mmc designs compile memory messaging]

(a) M/M/8 at rho 0.85 (scenarios/validation/design-mmc.yaml: Poisson 6,800/s, exponential 1 ms,
    8 workers, hop 0): customers per wall second of `sim.simulate(sc, engine="calendar")` (build +
    run + result; one untimed warm-up call first, so numba's cache is loaded) against idiomatic
    SimPy on the same model with the same number of customers (a source process, one generator
    process per customer doing `with resource.request() as req: yield req; yield
    env.timeout(service)` over one simpy.Resource(capacity=8)). Alternating calendar, simpy, ...,
    best of --reps. Both mean responses are compared with Erlang C (1.47714 ms): SimPy's 95%
    interval from 40 batch means of its one run (bench_engine.py's estimator), the calendar's from
    --replications independent runs (seeds seed..seed+N-1; the timed run is the first), since a
    summary holds means, not each customer's response. Then the calendar's time split, best of
    --reps each: CalendarEngine(sc), .run(), build_result.
(b) each design in scenarios/designs/ at sample 1 for --design-duration simulated seconds, in a
    child process each: a sample is refused as `simulate` refuses it (sim.budget.check_budget) and
    the next of SAMPLES is tried. Build s, run s, simulated s per wall s, events (summary
    "events"), events per wall s and ns per event of the run, client requests per wall s, peak RSS.
(c) numba's compile from a cold cache: a child with NUMBA_CACHE_DIR set to a fresh temp dir
    imports capsim and runs a 1-second design-mmc on the calendar; its wall time from spawn to
    exit. Then the same child again, the cache now warm.
(d) peak memory (ru_maxrss of a child, from os.wait4) of the largest full-scale design run: the
    sample-1 design with the most events per simulated second in (b), for --memory-duration
    simulated seconds (or --memory-design).
(e) the reference design (scenarios/messaging-1m.yaml, the calendar's messaging preset) at sample 1,
    whole workload, for --messaging-duration simulated seconds: (b)'s figures and peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_engine import mean_and_halfwidth, mmc_response  # noqa: E402

import sim  # noqa: E402
from sim.distributions import Exponential, sampler  # noqa: E402

MMC = ROOT / "scenarios" / "validation" / "design-mmc.yaml"
DESIGNS = ROOT / "scenarios" / "designs"
MESSAGING = ROOT / "scenarios" / "messaging-1m.yaml"
SERVERS, RATE, SERVICE_S = 8, 6800.0, 0.001  # design-mmc.yaml's model, checked against the file
SAMPLES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)  # tried in order in (b) until one is accepted
T95 = {2: 4.303, 4: 2.776, 9: 2.262, 19: 2.093}  # Student t, 97.5% quantile, by degrees of freedom


def machine_line() -> str:
    load = os.getloadavg()
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load average {' '.join(f'{x:.2f}' for x in load)}"


def calendar_digest() -> str:
    """A hash of sim/calendar's sources: printed first and last, so an edit mid-run shows."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "sim" / "calendar").glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


Child = tuple[dict[str, Any], float, float, float]


def run_child(args: list[str], env: dict[str, str] | None = None) -> Child:
    """Run this script as a child: (its last JSON line, wall s from spawn to exit, its CPU s (user +
    system), its ru_maxrss in GiB), the last two from os.wait4, so they are this child's alone."""
    w = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - w
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} exited with {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return json.loads(out.strip().splitlines()[-1]), wall, cpu, usage.ru_maxrss / 2**20


# --------------------------------------------------------------------------------------------
# (a) M/M/8 through the Python API against idiomatic SimPy


def mmc_simpy(n: int, seed: int) -> list[float]:
    """Idiomatic SimPy M/M/8: response time of each of n customers, in arrival order."""
    env = simpy.Environment()
    streams = np.random.SeedSequence(seed).spawn(2)
    gap = sampler(Exponential(dist="exponential", mean=1.0 / RATE), np.random.default_rng(streams[0]))
    svc = sampler(Exponential(dist="exponential", mean=SERVICE_S), np.random.default_rng(streams[1]))
    pool = simpy.Resource(env, capacity=SERVERS)
    resp = [math.nan] * n

    def customer(i: int) -> Any:
        t0 = env.now
        service = svc()
        with pool.request() as req:
            yield req
            yield env.timeout(service)
        resp[i] = env.now - t0

    def source() -> Any:
        for i in range(n):
            yield env.timeout(gap())
            env.process(customer(i))

    env.process(source())
    env.run()
    return resp


def bench_mmc(duration: float, warmup: float, reps: int, replications: int, seed: int) -> None:
    from sim.calendar.engine import CalendarEngine
    from sim.result import build_result

    sc = sim.load_scenario(MMC, [f"duration_s={duration:g}", f"warmup_s={warmup:g}", f"seed={seed}"])
    pool, flow = sc.components["pool"], sc.flows["work"]
    model = (pool.instances, pool.workers, flow.rate_per_sec, pool.ops["work"].service_ms.mean)
    if model != (1, SERVERS, RATE, SERVICE_S * 1e3) or sc.network.hop_ms.value != 0:
        raise SystemExit(f"{MMC.name}: expected 1 instance, {SERVERS} workers, {RATE:g}/s, 1 ms, hop 0; "
                         f"found {model}")
    theory = mmc_response(SERVERS, RATE, SERVICE_S)
    warm = sim.simulate(sc, engine="calendar").summary  # untimed: loads numba's cache
    n = int(warm["requests"]["work"]["sent"])
    mmc_simpy(2000, seed)
    print(f"(a) M/M/{SERVERS}, rho {RATE * SERVICE_S / SERVERS:g} ({MMC.relative_to(ROOT)}): {duration:g} "
          f"simulated s ({warmup:g} s warm-up), seed {seed}: {n:,} customers per run, best of {reps}, "
          f"alternating calendar, simpy, ...")
    walls: dict[str, list[float]] = {"calendar": [], "simpy": []}
    summary: dict[str, Any] = {}
    resp: list[float] = []
    for _ in range(reps):
        gc.collect()
        w = time.perf_counter()
        summary = sim.simulate(sc, engine="calendar").summary
        walls["calendar"].append(time.perf_counter() - w)
        gc.collect()
        w = time.perf_counter()
        resp = mmc_simpy(n, seed)
        walls["simpy"].append(time.perf_counter() - w)
    assert summary["requests"]["work"]["sent"] == n and summary["engine"] == "calendar"
    for key in ("calendar", "simpy"):
        best = min(walls[key])
        extra = f", {summary['events'] / best:,.0f} events/s ({summary['events']:,} events)" \
            if key == "calendar" else ""
        print(f"    {key:<8}: wall {best:.3f} s (runs {', '.join(f'{x:.3f}' for x in walls[key])}), "
              f"{n / best:,.0f} customers/s{extra}")
    ratio = min(walls["simpy"]) / min(walls["calendar"])
    print(f"    ratio calendar/simpy, customers per wall second: {ratio:.1f}x (issue target >= 40x)")

    # Means against Erlang C. SimPy: 40 batch means of its run after the customers of the warm-up
    # (warmup x rate of them). Calendar: `replications` independent runs (t with N-1 df).
    skip = int(warmup * RATE)
    s_mean, s_half = mean_and_halfwidth(resp, skip)
    means = [summary["latency_ms"]["work"]["mean"] / 1e3]
    for k in range(1, replications):
        rep = sim.load_scenario(MMC, [f"duration_s={duration:g}", f"warmup_s={warmup:g}", f"seed={seed + k}"])
        means.append(sim.simulate(rep, engine="calendar").summary["latency_ms"]["work"]["mean"] / 1e3)
    c_mean = float(np.mean(means))
    c_half = T95[replications - 1] * float(np.std(means, ddof=1)) / math.sqrt(replications)
    print(f"    Erlang C mean response {theory * 1e3:.5f} ms")
    for key, mean, half, how in (
        ("calendar", c_mean, c_half, f"{replications} replications, seeds {seed}..{seed + replications - 1}"),
        ("simpy", s_mean, s_half, f"40 batch means, first {skip:,} customers dropped"),
    ):
        ok = abs(mean - theory) <= half
        print(f"    {key:<8}: mean response {mean * 1e3:.5f} +/- {half * 1e3:.5f} ms (95%, {how}): "
              f"{(mean - theory) / theory:+.3%} vs theory, {'within' if ok else 'OUTSIDE'} the interval")

    split: dict[str, list[float]] = {"build": [], "run": [], "result": []}
    for _ in range(reps):
        gc.collect()
        w = time.perf_counter()
        engine = CalendarEngine(sc)
        split["build"].append(time.perf_counter() - w)
        w = time.perf_counter()
        state = engine.run()
        split["run"].append(time.perf_counter() - w)
        w = time.perf_counter()
        build_result(state, engine="calendar")
        split["result"].append(time.perf_counter() - w)
    parts = {k: min(v) for k, v in split.items()}
    other = min(walls["calendar"]) - sum(parts.values())
    print(f"    calendar time split (best of {reps} each): build {parts['build']:.3f} s, "
          f"run {parts['run']:.3f} s "
          f"({n / parts['run']:,.0f} customers/s, {summary['events'] / parts['run']:,.0f} events/s), "
          f"result {parts['result']:.3f} s; simulate() minus the three {other:+.3f} s "
          "(its checks, and noise: each part is its own best)")
    print(f"    {machine_line()}")
    print()


# --------------------------------------------------------------------------------------------
# (b) and (d): the designs at full scale, each in a child process


def design_child(path: str, duration: float) -> None:
    """Run one design at the first accepted sample of SAMPLES; print one JSON line."""
    from sim.budget import check_budget
    from sim.calendar.engine import CalendarEngine
    from sim.result import build_result

    warm = sim.load_scenario(MMC, ["duration_s=0.5", "warmup_s=0.1"])
    sim.simulate(warm, engine="calendar")  # load numba's cache before timing
    refused: list[str] = []
    for sample in SAMPLES:
        sc = sim.load_scenario(path, [f"sample={sample:g}", f"duration_s={duration:g}",
                                      f"warmup_s={duration / 4:g}"])
        try:
            check_budget(sc, "calendar")
            w = time.perf_counter()
            engine = CalendarEngine(sc)
        except ValueError as err:  # ScenarioError is a ValueError, and so is the key space's own check
            refused.append(f"sample {sample:g}: {err}")
            continue
        build = time.perf_counter() - w
        w = time.perf_counter()
        state = engine.run()
        run = time.perf_counter() - w
        w = time.perf_counter()
        s = build_result(state, engine="calendar").summary
        result = time.perf_counter() - w
        clients = engine.program.system.client_flows()
        sent = {k: int(v["sent"]) for k, v in s["requests"].items()}
        print(json.dumps({"sample": sample, "refused": refused, "build": build, "run": run, "result": result,
                          "events": int(s["events"]), "sim_s": float(s["sim_seconds"]),
                          "requests": sum(sent[k] for k in clients), "sent": sent, "clients": clients}))
        return
    print(json.dumps({"sample": None, "refused": refused}))


def child_run(name: str, path: str, duration: float) -> tuple[float, float, float] | None:
    """Run a design in a child and print its figures; (sample, peak RSS GiB, events per simulated s)."""
    r, wall, cpu, rss = run_child(["--design-child", path, str(duration)])
    for line in r["refused"]:
        print(f"    {name}: refused at {line}")
    if r["sample"] is None:
        print(f"    {name}: no sample of {SAMPLES} accepted")
        return None
    run, ev = r["run"], r["events"]
    print(f"    {name} at sample {r['sample']:g}: build {r['build']:.2f} s, run {run:.2f} s, result "
          f"{r['result']:.2f} s (child wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.2f} GiB)")
    with_build = r["sim_s"] / (r["build"] + run)
    print(f"        {r['sim_s'] / run:.4f} simulated s per wall s of run ({with_build:.4f} "
          f"with the build); {ev:,} events, {ev / run:,.0f} events/s, {run / ev * 1e9:.0f} ns/event; "
          f"{r['requests']:,} client requests ({', '.join(r['clients'])}), {r['requests'] / run:,.0f}/s; "
          f"all flows started: {r['sent']}")
    return r["sample"], rss, ev / r["sim_s"]


def bench_designs(duration: float) -> dict[str, tuple[float, float, float]]:
    """(b); returns {design path: (sample, peak RSS GiB, events per simulated s)}."""
    print(f"(b) designs at full scale on the calendar, {duration:g} simulated s "
          f"({duration / 4:g} s warm-up), "
          "a child process each; rates are per wall second of the run, build apart")
    out = {}
    for path in sorted(DESIGNS.glob("*.yaml")):
        got = child_run(path.stem, str(path), duration)
        if got is not None:
            out[str(path)] = got
    print(f"    {machine_line()}")
    print()
    return out


def bench_one(title: str, path: str, duration: float) -> None:
    """(d) and (e): one run at sample 1 in a child process."""
    print(f"{title}: {Path(path).stem} at sample 1, {duration:g} simulated s ({duration / 4:g} s warm-up), "
          "in a child process; peak RSS is its ru_maxrss (issue target < 4 GB)")
    child_run(Path(path).stem, path, duration)
    print(f"    {machine_line()}")
    print()


# --------------------------------------------------------------------------------------------
# (c) numba's compile


def compile_child() -> None:
    w = time.perf_counter()
    from sim.calendar.engine import CalendarEngine  # noqa: F401  (the kernel module, imported)

    imported = time.perf_counter() - w
    w = time.perf_counter()
    s = sim.simulate(sim.load_scenario(MMC, ["duration_s=1", "warmup_s=0.2"]), engine="calendar").summary
    print(json.dumps({"import": imported, "run": time.perf_counter() - w, "events": int(s["events"])}))


def bench_compile() -> None:
    print("(c) numba compile: a child imports capsim and runs design-mmc for 1 simulated s on the calendar, "
          "NUMBA_CACHE_DIR = a fresh temp dir")
    cache = tempfile.mkdtemp(prefix="capsim-bench-numba-")
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    try:
        for label in ("cold cache", "warm cache"):
            r, wall, cpu, _rss = run_child(["--compile-child"], env)
            target = " (issue target for the first compile: <= 20 s)" if label == "cold cache" else ""
            print(f"    {label}: child wall {wall:.1f} s{target}, CPU {cpu:.1f} s; in the child: "
                  f"sim.calendar.engine imported in {r['import']:.1f} s, first simulate() {r['run']:.1f} s")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"    {machine_line()}")
    print()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mmc-duration", type=float, default=200.0, help="simulated s of each M/M/8 run in (a)")
    p.add_argument("--mmc-warmup", type=float, default=5.0)
    p.add_argument("--reps", type=int, default=3, help="timed repetitions in (a); the best counts")
    p.add_argument("--replications", type=int, default=10, choices=sorted(k + 1 for k in T95),
                   help="calendar runs for its confidence interval in (a)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--design-duration", type=float, default=10.0, help="simulated s of each design in (b)")
    p.add_argument("--memory-duration", type=float, default=30.0, help="simulated s of (d)")
    p.add_argument("--memory-design", default=None, choices=sorted(x.stem for x in DESIGNS.glob("*.yaml")),
                   help="design of (d) (default: (b)'s sample-1 design with the most events per simulated s)")
    p.add_argument("--messaging-duration", type=float, default=0.5, help="simulated s of (e)")
    p.add_argument("--skip", nargs="*", default=[],
                   choices=["mmc", "designs", "compile", "memory", "messaging"])
    p.add_argument("--design-child", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.design_child is not None:
        design_child(args.design_child[0], float(args.design_child[1]))
        return
    if args.compile_child:
        compile_child()
        return
    if args.reps < 1 or min(args.mmc_duration, args.design_duration, args.memory_duration,
                            args.messaging_duration) <= 0:
        p.error("--reps must be at least 1 and every duration above 0")
    if args.mmc_warmup * 2 > args.mmc_duration:
        p.error("--mmc-warmup must be at most half of --mmc-duration")
    import numba

    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    digest = calendar_digest()
    print(f"capsim calendar engine benchmark: Python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"numba {numba.__version__}, simpy {simpy.__version__}, {os.cpu_count()} CPUs; "
          f"commit {head}, sim/calendar sources {digest}")
    print("    (the calendar uses two threads: its event loop, and a helper that draws the next chunk's "
          "arrivals and records the last one's outcomes; SimPy uses one)")
    print(f"    {machine_line()}")
    print()
    if "mmc" not in args.skip:
        bench_mmc(args.mmc_duration, args.mmc_warmup, args.reps, args.replications, args.seed)
    full: dict[str, tuple[float, float, float]] = {}
    if "designs" not in args.skip:
        full = bench_designs(args.design_duration)
    if "compile" not in args.skip:
        bench_compile()
    if "memory" not in args.skip:
        at_one = {k: per_s for k, (sample, _rss, per_s) in full.items() if sample == 1.0}
        title = "(d) peak memory, the largest full-scale design run"
        if args.memory_design is not None:
            bench_one(title, str(DESIGNS / f"{args.memory_design}.yaml"), args.memory_duration)
        elif at_one:  # the most events per simulated second: the largest run
            bench_one(title, max(at_one, key=lambda k: at_one[k]), args.memory_duration)
        else:
            print("(d) skipped: no design ran at sample 1 in (b)")
    if "messaging" not in args.skip:
        bench_one("(e) the reference design, whole workload", str(MESSAGING), args.messaging_duration)
    if calendar_digest() != digest:
        print(f"WARNING: sim/calendar changed during the run ({digest} -> {calendar_digest()}): rerun")


if __name__ == "__main__":
    main()
