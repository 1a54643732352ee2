"""Cassandra's hedged reads and lost writes (`lose_data`) on the calendar engine, against closed
forms and against the DES (the reference, sim/des/cassandra.py).

The calendar draws its random numbers from counters, not from the DES's streams (and builds its
token ring from its own stream), so the engines agree in distribution, not run by run: each figure
is estimated over independent replications (seeds 1..R, SE = stdev / sqrt(R)).

* Calendar vs DES: the two means agree within t x sqrt(SE_cal^2 + SE_des^2), the figures of one
  comparison being one family held at a false-alarm rate of ALPHA = 0.001 by Bonferroni (each figure
  at 0.001 / m, two-sided). The brief's z is replaced by the Student-t quantile at the
  Welch-Satterthwaite degrees of freedom, as in tests/test_calendar.py: the SEs are themselves
  estimated from R values, and z at 0.001 / m would false-alarm far above the stated rate. A
  quantile's tolerance adds the histogram's bucket resolution for each engine (sim/histogram.py:
  within sqrt(1.02) - 1 < 1% of the sample quantile, a bound, not noise).
* Closed forms: the replications' mean within T_CRIT x SE of theory, T_CRIT the two-sided 99.9%
  Student-t quantile at R - 1 degrees of freedom. Only means and shares, never quantiles.
* Exact properties (the order of simultaneous fault actions, bounded sole-copy lists, no row leaked)
  hold run by run and are asserted exactly.

Replications run in the process pool of tests/conftest.py. About 40 s on 2 cores (plus the calendar
kernel's numba compile, ~35 s, when its cache is cold).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agreement import Figure, disagreements
from conftest import PoolMap
from scipy import stats

from sim import load_scenario, simulate
from sim.engines import ENGINES

ROOT = Path(__file__).resolve().parent.parent
QUORUM = ROOT / "scenarios" / "validation" / "design-quorum.yaml"
SMALL = ROOT / "scenarios" / "interview-small.yaml"

ALPHA = 0.001

Summary = dict[str, Any]
Job = tuple[str, str, tuple[str, ...]]  # scenario path, engine, overrides


def _run(job: Job) -> Summary:
    """One simulation run (top level, so a process pool can call it)."""
    path, engine, overrides = job
    return simulate(load_scenario(path, list(overrides)), engine=engine).summary


def _replicate(pool_map: PoolMap, path: Path, overrides: list[str], runs: int) -> dict[str, list[Summary]]:
    """Seeds 1..runs of the scenario on each engine."""
    jobs = [(str(path), engine, (*overrides, f"seed={seed}")) for engine in ("calendar", "des")
            for seed in range(1, runs + 1)]
    out = pool_map(_run, jobs)
    for job, summary in zip(jobs, out, strict=True):
        assert summary["engine"] == job[1]  # the engine asked for ran it (neither refuses these features)
    return {"calendar": out[:runs], "des": out[runs:]}


def agree(name: str, runs: dict[str, list[Summary]], figures: list[Figure]) -> None:
    """Every figure's calendar and DES means within the Bonferroni-held Welch tolerance (module doc)."""
    failures = disagreements(name, figures, runs["calendar"], runs["des"], ALPHA)
    assert not failures, f"{len(failures)} of {len(figures)} figures disagree:\n" + "\n".join(failures)


def near_theory(label: str, values: list[float], theory: float) -> None:
    """The replications' mean within T_CRIT x SE of theory (T_CRIT: the module doc)."""
    x = np.asarray(values, dtype=float)
    mean, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    t_crit = float(stats.t.ppf(1 - ALPHA / 2, x.size - 1))
    print(f"{label}: theory {theory:.5g}, simulated {mean:.5g}, SE {se:.3g}, tolerance {t_crit * se:.3g}")
    assert abs(mean - theory) <= t_crit * se, (
        f"{label}: {mean:.6g} vs theory {theory:.6g}, off by {abs(mean - theory):.3g} > {t_crit * se:.3g}")


# --------------------------------------------------------------------------------------------
# 1. Hedged reads

# design-quorum (3 nodes, RF 3, exponential service of mean 1 ms, 128 workers: nothing queues) with a
# network hop of a constant D = 0.2 ms and a hedge after H = 0.9 ms on the client's edge into db (the
# DES's rule, sim/des/engine.py: a policy on an edge into the component hedges every read of it at
# k < RF). The read_one median without a hedge is D + ln 2 = 0.89 ms, so about half the reads hedge.
# No warm-up: the hedges count from the start, like the reads.
HOP_MS, HEDGE_MS = 0.2, 0.9
HEDGED = ["duration_s=21", "warmup_s=0", f"network.hop_ms={HOP_MS}",
          f'policies={{"client->db": {{hedge_after_ms: {HEDGE_MS}}}}}']
R_HEDGE = 10
READS = ("read_one", "read_quorum")  # k = 1 and 2 of RF 3: both hedge; read_all (k = RF) never does


@pytest.fixture(scope="module")
def hedged_runs(pool_map: PoolMap) -> dict[str, list[Summary]]:
    return _replicate(pool_map, QUORUM, HEDGED, R_HEDGE)


def _hedge_share(s: Summary) -> float:
    return s["resilience"]["cassandra"]["hedged_reads"] / sum(s["requests"][f]["sent"] for f in READS)


def test_hedged_reads_agree_with_the_des(hedged_runs: dict[str, list[Summary]]) -> None:
    """Read latency (p50, p99, mean) of both hedged flows and the hedges per read: 7 figures, one
    family."""
    figures: list[Figure] = [(f"latency_ms.{flow}.{key}", lambda s, f=flow, k=key: s["latency_ms"][f][k],
                              key != "mean") for flow in READS for key in ("p50", "p99", "mean")]
    figures.append(("hedged_reads per read", _hedge_share, False))
    agree("hedged", hedged_runs, figures)
    for s in hedged_runs["calendar"]:
        assert s["latency_ms"]["read_all"]["count"] > 0
        assert s["components"]["db"]["p_wait"] == 0.0  # nothing queued: the closed forms below are exact


@pytest.mark.parametrize("engine", ["calendar", "des"])
def test_a_hedged_read_at_one_is_the_first_of_the_replica_and_the_hedge(
        hedged_runs: dict[str, list[Summary]], engine: str) -> None:
    """A read at ONE asks one replica: its reply comes at D + X1 (X ~ Exp(mu), mu = 1/ms). If that is
    after H, a second replica is asked at H and replies at H + D + X2. With G = H - D the latency is
    D + X1 when X1 <= G, else H + min(R, D + X2), R = X1 - G ~ Exp(mu) (memoryless), so
        E[L] = D + (1 - e^(-mu G)) / mu + e^(-mu G) (1 - e^(-mu D) / 2) / mu,
    and a read hedges with probability e^(-mu G) at ONE, 1 - (1 - e^(-mu G))^2 at QUORUM (it asks two
    and needs both). The hedges per read are checked against each run's own mix of the two flows."""
    mu, d, g = 1.0, HOP_MS, HEDGE_MS - HOP_MS
    p_one, p_quorum = math.exp(-mu * g), 1 - (1 - math.exp(-mu * g)) ** 2
    mean = d + (1 - p_one) / mu + p_one * (1 - math.exp(-mu * d) / 2) / mu
    runs = hedged_runs[engine]
    near_theory(f"{engine} read_one mean ms", [s["latency_ms"]["read_one"]["mean"] for s in runs], mean)

    def excess(s: Summary) -> float:  # hedges per read minus this run's expected share
        n1, n2 = (s["requests"][f]["sent"] for f in READS)
        return _hedge_share(s) - (n1 * p_one + n2 * p_quorum) / (n1 + n2)

    near_theory(f"{engine} hedges per read - expected", [excess(s) for s in runs], 0.0)


def test_a_read_asking_every_replica_never_hedges() -> None:
    """read_all asks all RF replicas: there is no other to ask (k < RF is the DES's condition)."""
    s = simulate(load_scenario(QUORUM, [*HEDGED, "duration_s=3", "flows.read_one.rate_per_sec=0",
                                        "flows.read_quorum.rate_per_sec=0"]), engine="calendar").summary
    assert s["latency_ms"]["read_all"]["count"] > 0
    assert s["resilience"]["cassandra"]["hedged_reads"] == 0


# --------------------------------------------------------------------------------------------
# 2. Lost writes

# tests/test_faults.py's cell: 3 Cassandra nodes, RF 3 (every key on all three), 4,000 sends/s x 0.25
BASE = ["sample=0.25", "duration_s=6", "warmup_s=1", "workload.sends_per_sec=4000",
        "workload.reads_per_sec=0"]
# ONE with nodes 0 and 1 down over [1, 5): node 2 alone applies (and acknowledges) every write issued in
# [1, 4); their hints wait for nodes 0 and 1, which are back only at 5 s, after node 2 loses its disk
# at 4 s. From 4 s to 5 s no replica is up: writes are refused (unavailable) and store no hint.
ONE_LOST = [*BASE, "cassandra.write_consistency=ONE",
            "faults=[{kind: crash, component: cassandra, nodes: [0, 1], start_s: 1, duration_s: 4},"
            " {kind: crash, component: cassandra, nodes: [2], start_s: 4, duration_s: 1, lose_data: true}]"]
QUORUM_LOST = [*BASE, "faults=[{kind: crash, component: cassandra, nodes: [0], start_s: 1, duration_s: 4},"
                      " {kind: crash, component: cassandra, nodes: [1], start_s: 4, duration_s: 1,"
                      " lose_data: true}]"]
R_LOST = 8


@pytest.fixture(scope="module")
def one_runs(pool_map: PoolMap) -> dict[str, list[Summary]]:
    return _replicate(pool_map, SMALL, ONE_LOST, R_LOST)


def _lost(s: Summary) -> float:
    return float(s["resilience"]["lost_writes"])


def test_quorum_loses_no_write_on_the_calendar() -> None:
    """tests/test_faults.py's first case: at QUORUM every acknowledged write has two copies."""
    s = simulate(load_scenario(SMALL, QUORUM_LOST), engine="calendar").summary
    assert s["engine"] == "calendar"
    assert s["resilience"]["cassandra"]["hints_stored"] > 0  # node 0 was down: writes were hinted
    assert s["resilience"]["lost_writes"] == s["resilience"]["cassandra"]["lost_writes"] == 0


def _per_hinted_write(s: Summary) -> float:
    return _lost(s) / (s["resilience"]["cassandra"]["hints_stored"] / 2)


def test_one_loses_the_sole_copies_and_agrees_with_the_des(one_runs: dict[str, list[Summary]]) -> None:
    """tests/test_faults.py's second case, replicated: every run on both engines loses writes. Every
    write issued in [1, 4) stored exactly two hints (nodes 0 and 1 were down; refused writes store
    none) and is lost unless node 2 had not applied it when its disk went (in flight at 4 s); the
    writes in flight at 1 s that nodes 0 and 1 failed as they crashed are sole copies on node 2 with
    no hint, lost too. So lost_writes is hints_stored / 2 up to the writes in flight at the two
    crashes, which the summary does not count: the count is not a closed form of the summary, and
    the comparison is across replications. lost_writes and lost_writes per hinted write (the share
    that measures the edges, rid of the load's run-to-run variance) agree with the DES: 2 figures,
    one family."""
    for runs in one_runs.values():
        for s in runs:
            assert _lost(s) > 0
            assert s["resilience"]["cassandra"]["lost_writes"] == s["resilience"]["lost_writes"]
    agree("ONE, node 2's disk lost", one_runs, [("lost_writes", _lost, False),
                                                ("lost_writes per hinted write", _per_hinted_write, False)])


# tests/test_fault_edges.py's per-holder case: 4 nodes, RF 2, ONE (replica pairs {0,1} {0,2} {1,2} {1,3}
# {2,3}). Node 0 is down [1, 6), node 1 [2, 3); node 2 loses its disk at 3.005 s, while node 1 is
# replaying its hints (one batch of 50 at 3.0 s, the next at 3.01 s): the writes to {1,2} whose hints
# are in that first batch are safe, the rest of node 2's sole copies are lost. The token ring is drawn
# per seed (each engine from its own stream), so the share of {0,2} keys varies from run to run: the
# replications carry that variance too.
LOSS = ["sample=0.25", "cassandra.nodes=16", "cassandra.replication_factor=2",
        "cassandra.write_consistency=ONE", "duration_s=7", "warmup_s=1", "workload.sends_per_sec=4000",
        "workload.reads_per_sec=0"]
R_LOSS = 12


def crash(nodes: list[int], start: float, duration: float, lose_data: bool = False) -> str:
    return (f"{{kind: crash, component: cassandra, nodes: {nodes}, start_s: {start}, duration_s: {duration}"
            + (", lose_data: true}" if lose_data else "}"))


def faults(*items: str) -> str:
    return f"faults=[{', '.join(items)}]"


def test_lost_writes_per_holder_during_a_replay_agree_with_the_des(pool_map: PoolMap) -> None:
    runs = _replicate(pool_map, SMALL, [*LOSS, faults(crash([0], 1.0, 5.0), crash([1], 2.0, 1.0),
                                                      crash([2], 3.005, 0.5, lose_data=True))], R_LOSS)
    agree("per holder, lost at 3.005 s", runs, [("lost_writes", _lost, False)])


@pytest.mark.parametrize("engine", ["calendar", "des"])
def test_a_recovery_and_a_lost_disk_at_one_instant_act_in_the_scenarios_order(engine: str) -> None:
    """Node 1 comes back at 3 s (its first batch of hints replays at once) as node 2 loses its disk.
    The DES arms every fault before the run, each one's start then its end, so at one instant they act
    in the order the scenario lists them: node 1's recovery first saves the sole copies on node 2
    whose hints are in that batch; the lost disk first loses them. The sample path is the same
    otherwise (same seed), so the difference is exactly those copies: at most the batch of 50, and
    more than none (the batch holds the hints of the first writes to {1,2} or {1,3} while node 1 was
    down; seed 1's ring gives {1,2} its share of them on both engines)."""
    recovery_first = faults(crash([0], 1.0, 5.0), crash([1], 2.0, 1.0), crash([2], 3.0, 0.5, lose_data=True))
    disk_first = faults(crash([0], 1.0, 5.0), crash([2], 3.0, 0.5, lose_data=True), crash([1], 2.0, 1.0))
    a, b = (simulate(load_scenario(SMALL, [*LOSS, f]), engine=engine).summary for f in (recovery_first,
                                                                                       disk_first))
    assert a["resilience"]["cassandra"]["hints_stored"] == b["resilience"]["cassandra"]["hints_stored"]
    assert 0 < _lost(b) - _lost(a) <= 50, (_lost(a), _lost(b))


# --------------------------------------------------------------------------------------------
# 3. Bounded memory, determinism, and what the engine takes


def test_sole_copy_lists_hold_about_twice_the_unsafe_copies() -> None:
    """sim/calendar/cassandra.py's lists, driven directly: holder 0 first gets a copy whose only
    hint (node 1) never replays, which stays at the front of its list, then 20,000 copies hinted to
    node 2, whose replay trails them by 5. As a copy joins, 7 are unsafe (node 1's, the 5 the replay
    has not reached, the new one). Front pruning alone would keep all 20,001 behind the first copy;
    the compaction keeps the list within 2 x 7 + COMPACT_SLACK (it runs once the list is longer than
    twice what the last one kept plus the slack), and the rows it holds are exactly the pool rows in
    use. Losing the disk then loses the 6 copies still unsafe (node 2 has replayed up to the 6th
    last)."""
    from sim.calendar import tables as K
    from sim.calendar.cassandra import COMPACT_SLACK, lose, sole_reply

    n_rows = 4096
    so = np.zeros((n_rows, K.SO_HINTS + 2), np.int64)
    free = np.arange(n_rows - 1, -1, -1, dtype=np.int64)
    state = np.zeros(K.N_STATE, np.int64)
    state[K.S_TOP0 + K.P_SOLE] = n_rows
    holders = np.zeros((3, K.H_COLS), np.int64)
    holders[:, K.H_HEAD] = holders[:, K.H_TAIL] = -1
    hints = np.zeros((3, K.HN_COLS), np.int64)
    qu = np.zeros((1, K.QU_COLS), np.int64)  # one write quorum, its last reply just in (QU_OUT 0)
    longest = 0

    def copy(node: int) -> None:
        row = free[state[K.S_TOP0 + K.P_SOLE] - 1]
        state[K.S_TOP0 + K.P_SOLE] -= 1
        hints[node, K.HN_STORED] += 1
        so[row, K.SO_HOLDER], so[row, K.SO_N] = -1, 1
        so[row, K.SO_HINTS], so[row, K.SO_HINTS + 1] = node, hints[node, K.HN_STORED]
        qu[0, K.QU_SOLE] = row
        sole_reply(np.int64(0), np.int64(0), np.int64(K.OK), qu, so, free, holders, hints, state)

    copy(1)
    for _ in range(20_000):
        copy(2)
        hints[2, K.HN_REPLAYED] = max(0, hints[2, K.HN_STORED] - 5)
        longest = max(longest, int(holders[0, K.H_LEN]))
        assert n_rows - state[K.S_TOP0 + K.P_SOLE] == holders[0, K.H_LEN]  # every held row is listed
    assert 2 * 7 < longest <= 2 * 7 + COMPACT_SLACK, longest
    lose(np.int64(0), so, free, holders, hints, state)
    assert state[K.S_LOST_WRITES] == 1 + 5
    assert state[K.S_TOP0 + K.P_SOLE] == n_rows and holders[0, K.H_LEN] == 0


# the lost-writes cell with reads at ONE, hedged after 0.5 ms
HEDGED_READS = ["workload.reads_per_sec=2000", "cassandra.read_consistency=ONE",
                'policies={"message_service->cassandra": {hedge_after_ms: 0.5}}']


def test_a_drained_run_with_hedges_and_lost_data_leaks_no_row() -> None:
    """Every pool is empty after a drained run (hedges held their quorum rows until their time), and
    the sole-copy rows still held are exactly the copies listed per holder: none left in flight."""
    from sim.calendar.engine import CalendarEngine

    engine = CalendarEngine(load_scenario(SMALL, [*ONE_LOST, *HEDGED_READS]))
    s = engine.run(drain=True)
    assert s.cassandra_faults["hedged_reads"] > 0 and s.cassandra_faults["lost_writes"] > 0
    assert engine.rows_in_use == dict.fromkeys(engine.rows_in_use, 0)
    assert engine.sole_rows_in_use == engine.sole_copies_listed


def test_the_same_seed_gives_the_same_hedges_and_lost_writes_whatever_the_chunks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seed, same figures; chunks of 500 arrivals instead of 200,000 (the faults' actions are
    taken across chunk ends) give the same sample path: the same counts and the same latencies."""
    import sim.calendar.engine as calendar_engine

    sc = load_scenario(SMALL, [*ONE_LOST, *HEDGED_READS])
    a, b = (simulate(sc, engine="calendar").summary for _ in range(2))
    assert a["resilience"] == b["resilience"] and a["latency_ms"] == b["latency_ms"]
    assert a["resilience"]["cassandra"]["hedged_reads"] > 0 and a["resilience"]["lost_writes"] > 0
    monkeypatch.setattr(calendar_engine, "ARRIVALS_PER_CHUNK", 500)
    chunked = simulate(sc, engine="calendar").summary
    assert chunked["resilience"] == a["resilience"] and chunked["requests"] == a["requests"]
    for flow, figures in a["latency_ms"].items():  # a batch's sum may differ in its last bits (test_calendar)
        for key, x in figures.items():
            y = chunked["latency_ms"][flow][key]
            assert x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-12 * abs(x) + 1e-12, (
                flow, key, x, y)


def test_the_calendar_takes_hedges_and_lost_data_up_to_the_rf_it_can_mark() -> None:
    hedge = 'policies={"message_service->cassandra": {hedge_after_ms: 5}}'
    lose = faults(crash([0], 1.0, 1.0, lose_data=True))
    assert ENGINES["calendar"].supports(load_scenario(SMALL, [hedge, lose])) == []
    wide = ["cassandra.nodes=252", "cassandra.replication_factor=63", "sample=0.25", hedge]
    (problem,) = ENGINES["calendar"].supports(load_scenario(SMALL, wide))
    assert str(problem).startswith("policies.message_service->cassandra.hedge_after_ms: hedged reads at "
                                   "replication_factor 63")
