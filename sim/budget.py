"""How much work and memory a run will take, estimated before running, and the budgets it must fit.

`estimate(scenario)` is arithmetic on the scenario alone (nothing is built or drawn):

- requests: (sends_per_sec + reads_per_sec) x sample x the run's seconds, each second weighted by
  the product of the `load_spike` factors active in it (overlapping spikes multiply, as in the
  engines);
- station visits: requests x the stations a send or a read passes (gateway, message service,
  Cassandra replicas, Redis, Kafka replicas, the group service and its inbox writes per recipient,
  the conversations an inbox read loads under fan-out on read). Retries and hedges come on top
  (a nominal estimate, not a worst case);
- fault events: every `gc_pauses` pause on every node it names, over the run;
- time windows: one per simulated second (each is recorded, on every engine);
- memory: the cell's users and conversations (and their memberships where an engine keeps them),
  the simulated instances and Cassandra's ring (nodes x vnodes), the per-second series, and every
  `gc_pauses` pause over the fault's whole duration (the calendar holds one capacity window per
  pause per node, the DES two scheduled events per pause), so a GC storm too big to hold is refused
  here, never allocated.

A design (components and flows) counts its station visits by its traffic equations instead
(`design_estimate`: every component's operations per second, sim/system/loads.py) and its key
spaces' cell keys instead of users and conversations.

`check_budget(scenario, engine, force)` refuses, in one line naming the field that makes the run
too big and the estimate, a run beyond `WORK_BUDGET[engine]` station visits (unless `force`) or
beyond the memory bound (always: a run past it ends in a MemoryError or swapping).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.distributions import mean_of
from sim.errors import ScenarioError
from sim.faults import Fault
from sim.sampling import Cell, make_cell, partitions_fleet
from sim.scenario import Scenario, replies_needed

if TYPE_CHECKING:
    from sim.system.model import System

# Station visits one run may take. The DES does ~350k visits/s on a 2-core box, the calendar
# engine 1.5-5M/s and the stations engine ~2M/s (docs/PERFORMANCE.md), so each budget is of the
# order of an hour or two of wall time: far above every shipped scenario and the README's commands
# (tests/test_cli_edges.py checks they fit), far below a runaway. The stations engine's is the
# calendar's: `auto` picks it over the calendar for what it runs, where it is as fast or faster
# (1.1-1.7x), so no run the calendar would take is refused for going to it.
# Keyed by engine name only: `auto` is resolved (sim.engines.choose) before a budget is looked up.
WORK_BUDGET: dict[str, float] = {"des": 2e9, "calendar": 5e10, "stations": 5e10}

BYTES_PER_USER = 64  # activity and membership weights, rate-limit buckets (float64 arrays)
BYTES_PER_CONVERSATION = 64  # size, group flag, send and read weights
BYTES_PER_MEMBERSHIP = 4  # an inbox entry (an int32 conversation id) kept for inbox reads (fan-out on read)
BYTES_PER_INSTANCE = 16_384  # a station: queues, counters, histograms
BYTES_PER_VNODE = 32  # a token on Cassandra's ring
# a design key space's arrays, per cell key (sim/system/keys.py; built a chunk at a time on up to
# sim.workload.CHUNK_THREADS threads, so no whole-space temporary: their chunks, at most ~200 MB
# together, are in BASE_BYTES):
KEY_CDF_BYTES = 8  # its cumulative weight, which both engines draw keys by (float64)
KEY_ROUTE_BYTES = 4  # per Cassandra component the space's keys are routed to: its ring position (int32)
KEY_CACHE_BYTES = 16  # per Redis that caches the space: its hit probability and weight (float64 each)
KEY_RATE_LIMIT_BYTES = 16  # per rate-limited gateway the space's flows enter: a token bucket (2 float64)
BYTES_PER_WINDOW = 4_096  # one simulated second of series, all fleets
# a GC pause: per node, a capacity window (a 48-byte row of Stations.win, plus its merged copy and
# the sweep's arrays while built: 107-212 B measured 2026-11-30, 1M pauses on 1-12 nodes); and once,
# the DES's two scheduled events (595 B measured). Their sum bounds either engine.
BYTES_PER_PAUSE_WINDOW = 256
BYTES_PER_PAUSE_EVENTS = 640
# the interpreter with numpy and the compiled kernels (~0.3 GB measured: a run of 0.1% of a design)
# and a run's chunked working arrays (0.34-0.54 GB above its build: ride-hailing, url-shortener
# and news-feed at full scale, measured 2026-12-02)
BASE_BYTES = 2**30
FALLBACK_MEMORY_BYTES = 8 * 2**30  # when the machine's memory cannot be read


@dataclass(frozen=True)
class Term:
    """One contribution to an estimate: how much, which field drives it, and how it was computed."""

    amount: float
    field: str
    how: str


@dataclass(frozen=True)
class Estimate:
    requests: float
    visits_per_request: float
    work: list[Term]  # station visits, fault events, time windows
    memory: list[Term]  # bytes

    @property
    def work_total(self) -> float:
        return sum(t.amount for t in self.work)

    @property
    def memory_bytes(self) -> float:
        return sum(t.amount for t in self.memory)


def spike_seconds(scenario: Scenario) -> float:
    """The run's seconds weighted by the product of the load spikes active in each (plain seconds
    when there are none)."""
    duration = scenario.duration_s
    spikes = [f for f in scenario.faults if f.kind == "load_spike" and f.factor is not None]
    edges = sorted({0.0, duration, *(min(max(t, 0.0), duration) for f in spikes
                                     for t in (f.start_s, f.end_s))})
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        mid = (lo + hi) / 2
        factor = math.prod(f.factor for f in spikes if f.start_s <= mid < f.end_s)  # type: ignore[misc]
        total += (hi - lo) * factor
    return total


def mean_recipients(scenario: Scenario) -> float:
    """Recipients per message by conversation count (a direct chat has 1, a group its size - 1)."""
    w = scenario.workload
    spec = w.group_size
    size = mean_of(spec)
    size = max(size, spec.min) if spec.min is not None else size
    size = min(size, spec.max) if spec.max is not None else size
    return (1 - w.group_share) * 1 + w.group_share * max(size - 1, 1)


def visits_per_request(scenario: Scenario) -> float:
    """Station visits of an average request (sends and reads weighted by their rates)."""
    sc, w = scenario, scenario.workload
    front = int(sc.gateway.enabled) + int(sc.message_service.enabled)
    cass_rf = sc.cassandra.replication_factor if sc.cassandra.enabled else 0
    kafka_rf = sc.kafka.replication_factor if sc.kafka.enabled else 0
    redis = int(sc.redis.enabled)
    recipients = mean_recipients(sc)
    send = front + cass_rf + redis + kafka_rf
    inbox_reads = sc.group_service.enabled and sc.group_service.fan_out == "read"
    if sc.group_service.enabled:
        send += 1 + (recipients * max(cass_rf, 1) if sc.group_service.fan_out == "write" else 0)
    lookups = 1.0
    if inbox_reads:  # a reader loads every conversation they belong to
        lookups = max(1.0, w.conversations * (recipients + 1) / w.users)
    read_consistency = replies_needed(sc.cassandra.read_consistency, sc.cassandra.replication_factor)
    read = front + lookups * (redis + (read_consistency if sc.cassandra.enabled else 0))
    rate = w.sends_per_sec + w.reads_per_sec
    if rate <= 0:
        return float(send)
    return w.sends_per_sec / rate * send + w.reads_per_sec / rate * read


def estimate(scenario: Scenario) -> Estimate:
    """The work (station visits, fault events, windows) and memory (bytes) of one run."""
    if scenario.is_design:
        return design_estimate(scenario)
    sc, w = scenario, scenario.workload
    cell = make_cell(sc)
    seconds = spike_seconds(sc)
    rate = w.sends_per_sec + w.reads_per_sec
    requests = rate * sc.sample * seconds
    per_request = visits_per_request(sc)
    driver, spiked = _spike_driver(
        sc, "workload.sends_per_sec" if w.sends_per_sec >= w.reads_per_sec else "workload.reads_per_sec",
        seconds)
    work = [Term(requests * per_request, driver,
                 f"{_n(rate)} requests/s x sample {sc.sample:g} x {sc.duration_s:g} s{spiked}"
                 f" x ~{per_request:.3g} station visits per request")]
    work += _pause_terms(sc, cell)
    windows = math.ceil(sc.duration_s)
    work.append(Term(float(windows), "duration_s", f"{windows:,} one-second windows"))

    instances = sum(f.simulated for name, f in cell.fleets.items() if name != "kafka_partitions")
    ring = cell.fleets["cassandra"].simulated * sc.cassandra.vnodes if "cassandra" in cell.fleets else 0
    members = cell.conversations * (mean_recipients(sc) + 1)
    inbox_reads = sc.group_service.enabled and sc.group_service.fan_out == "read"
    memory = [
        Term(float(BASE_BYTES), "", "the interpreter and working arrays"),
        Term(cell.users * BYTES_PER_USER, "workload.users",
             f"{cell.users:,} users in the cell (workload.users {w.users:,} x sample {sc.sample:g}) x "
             f"{BYTES_PER_USER} B"),
        Term(cell.conversations * BYTES_PER_CONVERSATION, "workload.conversations",
             f"{cell.conversations:,} conversations in the cell (workload.conversations "
             f"{w.conversations:,} x sample {sc.sample:g}) x {BYTES_PER_CONVERSATION} B"),
        Term(members * BYTES_PER_MEMBERSHIP if inbox_reads else 0.0, "workload.conversations",
             f"{members:.3g} memberships kept for inbox reads x {BYTES_PER_MEMBERSHIP} B"),
        Term(instances * BYTES_PER_INSTANCE, _largest_fleet(sc),
             f"{instances:,} simulated instances x {BYTES_PER_INSTANCE // 1024} KiB"),
        Term(ring * BYTES_PER_VNODE, "cassandra.vnodes",
             f"{ring:,} ring tokens (cassandra nodes in the cell x vnodes {sc.cassandra.vnodes}) x "
             f"{BYTES_PER_VNODE} B"),
        Term(windows * BYTES_PER_WINDOW, "duration_s", f"{windows:,} one-second windows x "
                                                       f"{BYTES_PER_WINDOW // 1024} KiB"),
        *_pause_memory(sc, cell),
    ]
    return Estimate(requests=requests, visits_per_request=per_request, work=work, memory=memory)


def _pause_nodes(sc: Scenario, cell: Cell) -> list[tuple[int, Fault, int]]:
    """(index, fault, nodes it names in the cell) of every `gc_pauses` fault."""
    out = []
    for i, fault in enumerate(sc.faults):
        if fault.kind != "gc_pauses" or not fault.every_s:
            continue
        fleet = cell.fleets.get(fault.component or "")
        out.append((i, fault, len(fault.nodes) if fault.nodes is not None else min(
            fault.count or 0, fleet.simulated if fleet else 0)))
    return out


def _pause_memory(sc: Scenario, cell: Cell) -> list[Term]:
    """Every pause of each `gc_pauses` fault, over its whole duration (both engines make them all
    before it starts): a capacity window per node, and the DES's events once."""
    out = []
    for i, fault, nodes in _pause_nodes(sc, cell):
        assert fault.every_s is not None
        pauses = fault.duration_s / fault.every_s
        pauses = float(math.ceil(pauses)) if math.isfinite(pauses) else pauses
        per = nodes * BYTES_PER_PAUSE_WINDOW + BYTES_PER_PAUSE_EVENTS
        out.append(Term(pauses * per, f"faults[{i}].every_s",
                        f"{_n(pauses)} gc pauses (every {fault.every_s:g} s for {fault.duration_s:g} s) x "
                        f"({nodes} nodes x {BYTES_PER_PAUSE_WINDOW} B of capacity windows + "
                        f"{BYTES_PER_PAUSE_EVENTS} B of DES events)"))
    return out


def _pause_terms(sc: Scenario, cell: Cell) -> list[Term]:
    """Two events per `gc_pauses` pause on every node it names, over the run."""
    out = []
    for i, fault, nodes in _pause_nodes(sc, cell):
        assert fault.every_s is not None
        window = max(0.0, min(fault.end_s, sc.duration_s) - fault.start_s)
        pauses = nodes * window / fault.every_s
        out.append(Term(2 * pauses, f"faults[{i}].every_s",
                        f"{pauses:.3g} gc pauses (every {fault.every_s:g} s on {nodes} nodes for "
                        f"{window:g} s), 2 events each"))
    return out


def _spike_driver(sc: Scenario, driver: str, seconds: float) -> tuple[str, str]:
    """(the field that makes the work big, the spike text for the estimate's `how`)."""
    if math.isclose(seconds, sc.duration_s):
        return driver, ""
    spiked = f" x {seconds / sc.duration_s:.3g} (load_spike factors over their windows)"
    top_factor, top = max((f.factor or 1.0, i) for i, f in enumerate(sc.faults) if f.kind == "load_spike")
    if top_factor > max(sc.duration_s, 2.0):  # the spike, not the base rate, makes it big
        driver = f"faults[{top}].factor"
    return driver, spiked


def design_estimate(scenario: Scenario) -> Estimate:
    """A design's work and memory. Station visits: every component's full-scale operations per
    second by the design's traffic equations (sim.system.loads: each flow's rate x the visits of its
    steps, replicas counted, fan-outs by their mean members, misses by the cache model) x sample x
    the run's (spike-weighted) seconds. Memory: each key space's cell keys (their arrays:
    `_key_bytes`), the simulated instances, the cassandra rings and the windows."""
    from sim.system.compile import system_of
    from sim.system.keys import cell_keys
    from sim.system.loads import design_loads, station_visits_per_sec

    sc = scenario
    system = system_of(sc)
    cell = make_cell(sc)
    seconds = spike_seconds(sc)
    client = {name: f.rate_per_sec or 0.0 for name, f in system.flows.items() if not f.triggered}
    rate = sum(client.values())
    visits = station_visits_per_sec(design_loads(system))
    per_request = visits / rate if rate > 0 else 0.0
    top_flow = max(client, key=lambda name: client[name])
    driver, spiked = _spike_driver(sc, f"flows.{top_flow}.rate_per_sec", seconds)
    work = [Term(visits * sc.sample * seconds, driver,
                 f"{_n(rate)} requests/s over {len(client)} flows x sample {sc.sample:g} x "
                 f"{sc.duration_s:g} s{spiked} x ~{per_request:.3g} station visits per request")]
    work += _pause_terms(sc, cell)
    windows = math.ceil(sc.duration_s)
    work.append(Term(float(windows), "duration_s", f"{windows:,} one-second windows"))

    partitions = {partitions_fleet(c.name) for c in system.of_kind("kafka")}
    instances = sum(f.simulated for name, f in cell.fleets.items() if name not in partitions)
    memory = [Term(float(BASE_BYTES), "", "the interpreter and working arrays")]
    for name, ks in system.keys.items():
        n = cell_keys(ks, sc.sample)
        per_key, parts = _key_bytes(system, name)
        memory.append(Term(n * per_key, f"keys.{name}.count",
                           f"{n:,} {name} keys in the cell (keys.{name}.count {ks.count:,} x sample "
                           f"{sc.sample:g}) x {per_key} B ({parts})"))
    largest = max(cell.fleets.items(), key=lambda kv: kv[1].configured if kv[0] not in partitions else 0)[0]
    count_field = next(a for a in ("instances", "nodes", "shards", "brokers")
                       if hasattr(system.components[largest].spec, a))
    memory.append(Term(instances * BYTES_PER_INSTANCE, f"components.{largest}.{count_field}",
                       f"{instances:,} simulated instances x {BYTES_PER_INSTANCE // 1024} KiB"))
    for c in system.of_kind("cassandra"):
        ring = cell.fleets[c.name].simulated * c.spec.vnodes
        memory.append(Term(ring * BYTES_PER_VNODE, f"components.{c.name}.vnodes",
                           f"{ring:,} ring tokens ({c.name} nodes in the cell x vnodes {c.spec.vnodes}) x "
                           f"{BYTES_PER_VNODE} B"))
    memory.append(Term(windows * BYTES_PER_WINDOW, "duration_s",
                       f"{windows:,} one-second windows x {BYTES_PER_WINDOW // 1024} KiB"))
    memory += _pause_memory(sc, cell)
    return Estimate(requests=rate * sc.sample * seconds, visits_per_request=per_request, work=work,
                    memory=memory)


def _key_bytes(system: System, space: str) -> tuple[int, str]:
    """Bytes a cell key of `space` takes in either engine, and what they are."""
    from sim.system.model import CacheLookup, routed

    uses = {(step.component, type(step)) for flow in system.flows.values() for step, sp in routed(flow)
            if sp == space}
    kind = {name: c.kind for name, c in system.components.items()}
    rings = len({c for c, _ in uses if kind[c] == "cassandra"})
    caches = len({c for c, t in uses if t is CacheLookup})
    limits = len({c for c, _ in uses if kind[c] == "gateway"
                  and getattr(system.components[c].spec, "rate_limit", None) is not None})
    parts = [f"{KEY_CDF_BYTES} B cumulative weight"]
    parts += [f"{rings} x {KEY_ROUTE_BYTES} B ring position"] if rings else []
    parts += [f"{caches} x {KEY_CACHE_BYTES} B cache hit probability and weight"] if caches else []
    parts += [f"{limits} x {KEY_RATE_LIMIT_BYTES} B token bucket"] if limits else []
    total = (KEY_CDF_BYTES + rings * KEY_ROUTE_BYTES + caches * KEY_CACHE_BYTES
             + limits * KEY_RATE_LIMIT_BYTES)
    return total, ", ".join(parts)


def key_space_problem(scenario: Scenario) -> ScenarioError | None:
    """A design key space whose cell holds more keys than a run can simulate (sim.system.keys)."""
    from sim.system.keys import MAX_CELL_KEYS
    from sim.workload import cell_size

    for name, ks in scenario.keys.items():
        n = cell_size(ks.count, scenario.sample)
        if n > MAX_CELL_KEYS:
            return ScenarioError(f"keys.{name}.count", f"{n:,} keys in the cell (count {ks.count:,} x sample "
                                 f"{scenario.sample:g}); allowed: at most {MAX_CELL_KEYS:,} (lower --sample "
                                 "or the count); --force does not skip this bound")
    return None


def _largest_fleet(sc: Scenario) -> str:
    field = {"gateway": "gateway.instances", "message_service": "message_service.instances",
             "group_service": "group_service.instances", "cassandra": "cassandra.nodes",
             "redis": "redis.shards", "kafka": "kafka.brokers"}
    name = max((f for f in sc.fleets() if f[1]), key=lambda f: f[2], default=("gateway", True, 0, None))[0]
    return field[name]


def machine_memory_bytes() -> float:
    """80% of this machine's physical memory (what a run may plan to use)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return float(FALLBACK_MEMORY_BYTES)
    return 0.8 * total if total > 0 else float(FALLBACK_MEMORY_BYTES)


def budget_problem(est: Estimate, engine: str, force: bool, memory_bound: float) -> ScenarioError | None:
    """The one-line refusal for an estimate beyond the budgets, or None if it fits (pure)."""
    if engine not in WORK_BUDGET:  # a caller's slip (e.g. `auto` not resolved), not bad input
        raise ValueError(f"no work budget for engine {engine!r}; allowed: {', '.join(WORK_BUDGET)} "
                         "(resolve auto with sim.engines.choose first)")
    if est.memory_bytes > memory_bound:
        top = max(est.memory, key=lambda t: t.amount)
        return ScenarioError(
            top.field or "scenario",
            f"memory: {_approx_bytes(est.memory_bytes)} estimated ({top.how}) exceeds this machine's bound "
            f"of {_bytes(memory_bound)}; allowed: a smaller population, fleet or --sample (--force does not "
            "skip this bound)")
    budget = WORK_BUDGET[engine]
    if not force and est.work_total > budget:
        top = max(est.work, key=lambda t: t.amount)
        return ScenarioError(
            top.field,
            f"work: {_approx(est.work_total)} station visits and events ({top.how}) exceeds the budget of "
            f"{budget:.2g} for the {engine} engine; allowed: a smaller scenario (rates, --sample, "
            "--duration), or --force (simulate(force=True)) to run anyway")
    return None


def check_budget(scenario: Scenario, engine: str = "des", force: bool = False,
                 memory_bound: float | None = None) -> Estimate:
    """Raise ScenarioError if a run of `scenario` on `engine` would exceed the work budget (unless
    `force`) or the memory bound (always); return the estimate otherwise."""
    problem = key_space_problem(scenario) if scenario.is_design else None
    if problem is not None:
        raise problem
    est = estimate(scenario)
    problem = budget_problem(est, engine, force,
                             machine_memory_bytes() if memory_bound is None else memory_bound)
    if problem is not None:
        raise problem
    return est


def runs_at_once(memory_bytes: Sequence[float], workers: int, memory_bound: float) -> tuple[int, str | None]:
    """How many of these runs (their memory estimates) may go at once on `workers` processes: the
    most, from 1 to `workers`, whose largest estimates together fit `memory_bound` (each run is a
    process with its own interpreter, which its estimate counts). With a one-line reason when
    memory, not `workers` or the number of runs, sets it (pure)."""
    largest = sorted(memory_bytes, reverse=True)
    wanted = max(1, min(workers, len(largest)))
    k = 1
    while k < wanted and sum(largest[:k + 1]) <= memory_bound:
        k += 1
    if k == wanted:
        return k, None
    return k, (f"memory: {wanted} runs at once would need {_approx_bytes(sum(largest[:wanted]))} against "
               f"this machine's bound of {_bytes(memory_bound)}; running {k} at a time")


def _approx(x: float) -> str:
    return _n(x) if not math.isfinite(x) else f"~{_n(x)}"


def _n(x: float) -> str:
    """A count as people read it: 40,000 or 6.3e+14 (or 'more than 1e308' past float range)."""
    if not math.isfinite(x):
        return "more than 1e308"
    return f"{x:,.0f}" if x < 1e7 else f"{x:.2g}"


def _approx_bytes(n: float) -> str:
    return "more than 1e308 bytes" if not math.isfinite(n) else f"~{_bytes(n)}"


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g} B"
