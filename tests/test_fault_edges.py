"""Faults at their edges: faults that would do nothing are errors, overlapping faults on one node
compose (both engines), and lost writes at ONE are counted per holder of the sole copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
import sim.des.cassandra as des_cassandra
from sim import ScenarioError, load_scenario, simulate
from sim.arrays.station import DOWN, build_stations, down_mask, last_recovery
from sim.arrays.windows import fault_windows
from sim.des.cassandra import HINT_REPLAY_PER_SEC, CassandraCluster
from sim.des.engine import Engine
from sim.des.station import schedule
from sim.scenario import Scenario

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
REFERENCE_CELL = ROOT / "tests" / "data" / "messaging-1m-cell.yaml"  # messaging-1m at F = 1/400
NODE_FAILURE = ROOT / "scenarios" / "node-failure.yaml"  # 12 Cassandra nodes (tests set sample=0.25: 3)


def crash(nodes: list[int] | None = None, start: float = 1.0, duration: float = 1.0,
          component: str = "cassandra", count: int | None = None, **extra: object) -> str:
    which = f"nodes: {nodes}" if nodes is not None else f"count: {count}"
    more = "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in extra.items())
    return (f"{{kind: crash, component: {component}, {which}, start_s: {start}, duration_s: {duration}"
            f"{more}}}")


def faults(*items: str) -> str:
    return f"faults=[{', '.join(items)}]"


def refused(path: Path, *overrides: str) -> str:
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, list(overrides))
    text = str(err.value)
    assert "\n" not in text
    return text


# -- 1. faults that name instances the sample cell does not simulate --------------------------------

def test_a_fault_on_a_node_outside_the_cell_is_an_error() -> None:
    # the case: 3 of 1,200 Cassandra nodes simulated at --sample 0.0025
    text = refused(REFERENCE_CELL, faults(crash([11])))
    assert "faults[0]" in text
    assert "3 of cassandra's 1200 nodes" in text
    assert "nodes 0..2 of the cell" in text
    assert "--sample 0.01 or larger" in text  # 12 of 1,200 nodes: node 11 is in that cell
    load_scenario(REFERENCE_CELL, [faults(crash([11])), "sample=0.01"])  # accepted


def test_a_count_beyond_the_cell_is_an_error_and_within_it_is_not() -> None:
    text = refused(NODE_FAILURE, faults(crash(count=5)), "sample=0.25")
    assert "faults[0]" in text and "3 of cassandra's 12 nodes" in text and "count 1..3 of the cell" in text
    load_scenario(NODE_FAILURE, [faults(crash(count=3)), "sample=0.25"])
    # at full scale a count above the fleet was clamped silently; it is an error too
    text = refused(SMALL, faults(crash(count=9, component="redis")))
    assert "redis has 2 shards; got count 9; allowed: count 1..2" in text


def test_kafka_broker_faults_are_checked_against_the_simulated_brokers() -> None:
    fault = "{kind: broker_loss, nodes: [5], start_s: 1, duration_s: 1}"
    text = refused(SMALL, "kafka.brokers=12", "sample=0.25", faults(fault))
    assert "3 of kafka's 12 brokers" in text and "nodes 0..2" in text


def test_a_zone_outage_that_misses_a_fleet_the_cell_has_no_instance_of_there_is_an_error() -> None:
    zone2 = faults("{kind: zone_outage, zone: 2, start_s: 1, duration_s: 1}")
    text = refused(ROOT / "scenarios" / "zone-outage.yaml", zone2, "sample=0.25")
    # 2 of 6 gateways (zones 0 and 1): the full design loses 2 gateways in zone 2, the cell none
    assert "2 of 6 gateway instances" in text and "none of them in zone 2" in text
    assert "--sample 0.5 or larger" in text
    load_scenario(ROOT / "scenarios" / "zone-outage.yaml", [zone2, "sample=0.5"])
    # at full scale a fleet with no instance in the zone is simply not hit (2 Redis shards, zone 2)
    load_scenario(SMALL, [zone2])


def test_duplicate_nodes_in_a_fault_are_an_error() -> None:
    text = refused(SMALL, faults(crash([1, 0, 1])))
    assert "names [1] more than once" in text


# -- 2. faults that start after the run ----------------------------------------------------------

def test_a_fault_starting_at_or_after_the_run_end_is_an_error() -> None:
    text = refused(SMALL, faults(crash([0], start=12.0)))  # interview-small runs 12 s
    assert "faults[0]" in text and "starts at or after the run ends (duration_s 12)" in text
    # the run's end after a --duration override
    text = refused(NODE_FAILURE, "duration_s=10")  # its crash starts at 15 s
    assert "faults[0]" in text and "duration_s 10" in text
    # starting during the warm-up is allowed, and so is running on past the end
    load_scenario(SMALL, [faults(crash([0], start=0.5, duration=30.0))])


def test_the_cli_refuses_a_fault_after_the_run_in_one_line_with_exit_2(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("bad input reached the simulator")

    monkeypatch.setattr(cli, "simulate", refuse)
    result = CliRunner().invoke(cli.app, ["run", str(NODE_FAILURE), "--duration", "10"])
    assert result.exit_code == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "faults[0]" in lines[0]


# -- 3. overlapping faults on one node -----------------------------------------------------------

# a write-only cell of 3 Cassandra nodes (RF 3) at ALL: every write needs node 0
ALL_WRITES = ["sample=0.25", "duration_s=12", "warmup_s=1", "workload.sends_per_sec=4000",
              "workload.reads_per_sec=0", "cassandra.write_consistency=ALL"]
OVERLAP = faults(crash([0], start=2.0, duration=4.0), crash([0], start=4.0, duration=6.0))  # [2, 6), [4, 10)


@pytest.mark.parametrize("engine", ["des", "calendar"])
def test_overlapping_crashes_keep_the_node_down_until_the_last_ends(engine: str) -> None:
    ts = simulate(load_scenario(SMALL, [*ALL_WRITES, OVERLAP]), engine=engine).timeseries
    for _, row in ts.iterrows():  # the window ending at t_s covers [t_s - 1, t_s), by completion time
        if 3.0 < row.t_s <= 10.0:
            assert row.send_succeeded_per_sec == 0 and row.send_failed_per_sec > 0, row.t_s
        elif row.t_s == 3.0:  # sends issued just before the crash at 2 s may still complete in it
            assert row.send_failed_per_sec > 0
        else:
            assert row.send_failed_per_sec == 0 and row.send_succeeded_per_sec > 0, row.t_s


def probe(sc: Scenario, times: list[float], read: Any) -> list[Any]:
    """`read(engine)` at each of `times` while the scenario's faults run (no traffic)."""
    engine = Engine(sc)
    seen: list[Any] = []
    for t in times:
        schedule(engine.env, t, lambda _e: seen.append(read(engine)), None)
    engine.injector.arm()
    engine.env.run(until=max(times) + 1)
    return seen


NO_TRAFFIC = ["sample=0.25", "duration_s=12", "warmup_s=1", "workload.sends_per_sec=0",
              "workload.reads_per_sec=0"]


def node0(engine: Engine) -> Any:
    return engine.cassandras["cassandra"].fleet.stations[0]


def test_des_node_state_under_overlapping_crashes() -> None:
    sc = load_scenario(SMALL, [*NO_TRAFFIC, OVERLAP])
    down = probe(sc, [1.9, 3.0, 5.0, 7.0, 9.9, 10.1], lambda e: node0(e).down)
    assert down == [False, True, True, True, True, False]


def test_des_slow_factors_multiply_and_end_exactly_at_one() -> None:
    sc = load_scenario(SMALL, [*NO_TRAFFIC, faults(
        "{kind: slow, component: cassandra, nodes: [0], factor: 3, start_s: 1, duration_s: 4}",
        "{kind: slow, component: cassandra, nodes: [0], factor: 0.7, start_s: 3, duration_s: 4}")])
    slow = probe(sc, [2.0, 4.0, 6.0, 8.0], lambda e: node0(e).slow)
    assert slow[:3] == [3.0, pytest.approx(2.1), 0.7]
    assert slow[3] == 1.0  # exactly: recomputed from the active factors, no rounding left over


def test_des_overlapping_gc_pauses_hold_capacity_at_zero_until_the_last_ends() -> None:
    # one pause [2, 3) and another [2.5, 3.5) on node 0
    sc = load_scenario(SMALL, [*NO_TRAFFIC, faults(
        "{kind: gc_pauses, component: cassandra, nodes: [0], pause_ms: 1000, every_s: 10, start_s: 2,"
        " duration_s: 2}",
        "{kind: gc_pauses, component: cassandra, nodes: [0], pause_ms: 1000, every_s: 10, start_s: 2.5,"
        " duration_s: 2}")])
    cap = probe(sc, [2.2, 2.7, 3.2, 3.6], lambda e: node0(e).capacity)
    assert cap == [0, 0, 0, sc.cassandra.workers]


def test_array_windows_of_overlapping_crashes_are_one_down_window() -> None:
    sc = load_scenario(SMALL, [*NO_TRAFFIC, OVERLAP])
    windows = fault_windows(sc, {"cassandra": 0}, {"cassandra": 3}, [8, 8, 8])
    w = windows[0]
    assert (list(w.t_from), list(w.t_to), list(w.servers)) == ([2.0], [10.0], [DOWN])
    S = build_stations([8, 8, 8], [None] * 3, [0] * 3, 1, windows)
    t = np.array([1.9, 3.0, 5.0, 7.0, 9.9, 10.1])
    assert down_mask(S.ints, S.win, np.zeros(t.size, np.int64), t).tolist() == [False, True, True, True,
                                                                               True, False]
    # a Redis shard restarts (empty) once, at the end of the last crash, not at a crash's end inside
    assert last_recovery(S.ints, S.win, np.int64(0), 7.0) == -np.inf
    assert last_recovery(S.ints, S.win, np.int64(0), 10.5) == 10.0


def test_array_crashes_that_touch_are_a_recovery_as_in_the_des() -> None:
    sc = load_scenario(SMALL, [*NO_TRAFFIC, faults(crash([0], start=2.0, duration=2.0),
                                                   crash([0], start=4.0, duration=2.0))])
    w = fault_windows(sc, {"cassandra": 0}, {"cassandra": 3}, [8, 8, 8])[0]
    assert (list(w.t_from), list(w.t_to)) == ([2.0, 4.0], [4.0, 6.0])


# -- 4. lost writes at ONE, per holder -----------------------------------------------------------

# 4 Cassandra nodes, RF 2, writes at ONE. Node i is in zone i mod 3 and a key's two replicas are in
# distinct zones, so the replica pairs are {0,1} {0,2} {1,2} {1,3} {2,3}. Node 0 is down [1, 6),
# node 1 [2, 3); node 2 loses its disk at `lose_at`. Node 1's recovery at 3 s replays the hints of
# writes to {1,2} but makes no write to {0,2} safe: their hints wait for node 0.
LOSS = ["sample=0.25", "cassandra.nodes=16", "cassandra.replication_factor=2",
        "cassandra.write_consistency=ONE", "duration_s=7", "warmup_s=1", "workload.sends_per_sec=4000",
        "workload.reads_per_sec=0"]
NODE1_BACK = 3.0


def loss_faults(lose_at: float) -> str:
    return faults(crash([0], start=1.0, duration=5.0), crash([1], start=2.0, duration=1.0),
                  crash([2], start=lose_at, duration=0.5, lose_data=True))


@pytest.mark.parametrize("lose_at", [4.0, 3.005])
def test_lost_writes_at_one_are_the_sole_copies_no_replayed_hint_covers(
        lose_at: float, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario(SMALL, [*LOSS, loss_faults(lose_at)])
    assert sc.cassandra.nodes * sc.sample == 4
    # log every write independently of the engine's sole-copy bookkeeping: its replicas, those down
    # when it was issued (they get hints, in this order), each replica's reply, and when it was acked
    log: list[dict[str, Any]] = []
    current: list[dict[str, Any] | None] = [None]
    write, call = CassandraCluster.write, des_cassandra.call

    def logged_write(self: CassandraCluster, pos: int, fn: Any, ctx: Any) -> None:
        env = self.env
        entry: dict[str, Any] = {"replicas": [st.index for st in self.replicas[pos]],
                                 "down": {st.index for st in self.replicas[pos] if st.down},
                                 "replies": {}, "acked_at": None}
        log.append(entry)

        def done(c: Any, error: str | None) -> None:
            if error is None:
                entry["acked_at"] = env.now
            fn(c, error)

        current[0] = entry
        write(self, pos, done, ctx)
        current[0] = None

    def logged_call(env: Any, hop_s: float, station: Any, service_s: float, fn: Any, ctx: Any) -> None:
        entry = current[0]
        if entry is None:
            return call(env, hop_s, station, service_s, fn, ctx)

        def reply(c: Any, error: str | None) -> None:
            entry["replies"][station.index] = error
            fn(c, error)

        return call(env, hop_s, station, service_s, reply, ctx)

    monkeypatch.setattr(CassandraCluster, "write", logged_write)
    monkeypatch.setattr(des_cassandra, "call", logged_call)
    lost = simulate(sc, engine="des").summary["resilience"]["lost_writes"]  # the log is the DES's

    # hints for node 1 replay from its recovery, HINT_REPLAY_PER_SEC in batches every 10 ms
    batch = int(HINT_REPLAY_PER_SEC * 0.01)
    ticks = int((lose_at - NODE1_BACK) / 0.01 + 1e-9) + 1
    hints_1 = [e for e in log if 1 in e["down"] and len(e["down"]) < len(e["replicas"])]  # not refused
    replayed_1 = min(len(hints_1), batch * ticks)
    safe_by_hint = {id(e) for e in hints_1[:replayed_1]}
    expected = 0
    for e in log:
        applied = {node for node, error in e["replies"].items() if error is None}
        if e["acked_at"] is not None and e["acked_at"] < lose_at and applied == {2}:
            expected += id(e) not in safe_by_hint  # node 0's hints wait until 6 s; node 3 never fails
    waiting_for_0 = [e for e in log if set(e["replicas"]) == {0, 2} and e["down"] == {0}
                     and e["acked_at"] is not None and e["acked_at"] < lose_at]
    assert len(waiting_for_0) > 100  # the scenario has what it tests
    if lose_at < 4.0:
        assert len(hints_1) > replayed_1 > 0  # node 1's replay is under way when node 2 loses its disk
    assert lost == expected


@pytest.mark.parametrize("engine", ["des", "calendar"])
def test_a_disk_lost_while_the_node_is_already_down_loses_its_sole_copies(engine: str) -> None:
    # node 0 is down from 0.5 s, so writes to {0, 2} are sole copies on node 2 until 6 s. Node 2
    # goes down at 1 s; its disk is lost either by that crash or by another one starting at 3 s,
    # while it is still down: the same writes are lost (nothing reaches node 2 or node 0 between).
    common = [*LOSS, "duration_s=7"]
    at_once = simulate(load_scenario(SMALL, [*common, faults(
        crash([0], start=0.5, duration=5.5), crash([2], start=1.0, duration=4.0, lose_data=True))]),
        engine=engine).summary
    later = simulate(load_scenario(SMALL, [*common, faults(
        crash([0], start=0.5, duration=5.5), crash([2], start=1.0, duration=4.0),
        crash([2], start=3.0, duration=1.0, lose_data=True))]), engine=engine).summary
    assert at_once["resilience"]["lost_writes"] > 50
    assert later["resilience"]["lost_writes"] == at_once["resilience"]["lost_writes"]
