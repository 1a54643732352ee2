"""`--engine auto`: the engine picked for a scenario (stations, else calendar, else des) and the
one-line reason printed. The choice is pure rules (each engine's `supports`, no numba compile), so most checks
run nothing; the CLI checks run tiny scenarios on the engine chosen. Everything asserted is exact
(engine names, field paths, line counts): no statistical tolerance is involved."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from sim import ScenarioError, load_scenario, simulate
from sim.budget import WORK_BUDGET, budget_problem, estimate
from sim.engines import AUTO, DEFAULT_ENGINE, ENGINES, PREFERENCE, choose, choose_all, engine
from sim.experiments import LocalExecutor, Replicated, run_points

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
RETRY_STORM = ROOT / "scenarios" / "retry-storm.yaml"
SHORTENER = ROOT / "scenarios" / "designs" / "url-shortener.yaml"
MM1 = ROOT / "scenarios" / "validation" / "mm1.yaml"
TINY = ["duration_s=2", "warmup_s=0.5"]  # an M/M/1 run of ~0.03 s on the DES


def gc_storm(component: str) -> str:
    """10,000 GC pauses on one node, 10 us each: the calendar runs any number (it merged at most
    5,000 per node before its windows were merged by a sweep line, sim/arrays/windows.py)."""
    return (f"faults=[{{kind: gc_pauses, component: {component}, count: 1, pause_ms: 0.01, every_s: 0.0001,"
            f" start_s: 0, duration_s: 1}}]")


# What only the DES runs: an automatic warm-up, whose pilot runs (and so the measured runs) are the DES's
DES_ONLY = "warmup_s=auto"
DES_ONLY_WHY = "warmup_s: auto is resolved by a pilot run before simulating"
MM1_DES = DES_ONLY
NOT_STATIONS = "stations cannot run it: flows: the messaging preset"  # (the stations engine runs designs)
CRASH = "faults=[{kind: crash, component: cassandra, count: 1, start_s: 1, duration_s: 1}]"
GC = gc_storm("cassandra")
LOSE = "faults=[{kind: crash, component: cassandra, count: 1, start_s: 1, duration_s: 1, lose_data: true}]"
HEDGE = 'policies={"message_service->cassandra": {hedge_after_ms: 5}}'


def _one_line(reason: str) -> str:
    assert "\n" not in reason and reason.startswith("engine: "), reason
    return reason


def test_a_messaging_scenario_goes_to_the_calendar_engine() -> None:
    sc = load_scenario(SMALL)
    assert ENGINES["calendar"].supports(sc) == []
    assert choose(sc) == ("calendar", f"engine: calendar ({NOT_STATIONS})")


def test_crashes_retries_hedges_and_lost_data_go_to_the_calendar_engine() -> None:
    for sc in (load_scenario(SMALL, [CRASH]), load_scenario(RETRY_STORM), load_scenario(SMALL, [LOSE]),
               load_scenario(SMALL, [HEDGE])):
        assert ENGINES["calendar"].supports(sc) == []
        assert choose(sc)[0] == "calendar"


def test_a_gc_storm_goes_to_the_calendar_engine() -> None:
    for sc in (load_scenario(SMALL, [GC]), load_scenario(SHORTENER, [gc_storm("links")])):
        assert ENGINES["calendar"].supports(sc) == []
        assert choose(sc)[0] == "calendar"


def test_a_des_only_feature_sends_a_messaging_scenario_to_the_des_with_the_reason() -> None:
    name, reason = choose(load_scenario(SMALL, [DES_ONLY]))
    assert name == "des"
    assert _one_line(reason) == f"engine: des ({NOT_STATIONS}; calendar cannot run it: {DES_ONLY_WHY})"
    assert "give seconds" not in reason  # the refusal's advice (after "; ") is cut


def test_a_design_goes_to_the_calendar_engine() -> None:
    sc = load_scenario(SHORTENER)
    assert ENGINES["calendar"].supports(sc) == []
    assert choose(sc) == ("calendar", "engine: calendar (stations only approximates it: "
                                      "flows.resolve.steps[2].fill: a cache fill, in slices of 0.5 ms)")


@pytest.mark.parametrize("override", [
    'policies={"api->links": {hedge_after_ms: 5}}',
    "faults=[{kind: crash, component: links, count: 1, start_s: 1, duration_s: 1, lose_data: true}]",
])
def test_hedges_and_lost_data_in_a_design_run_on_the_calendar(override: str) -> None:
    assert choose(load_scenario(SHORTENER, [override]))[0] == "calendar"


def test_a_design_the_calendar_refuses_goes_to_the_des_naming_the_field() -> None:
    name, reason = choose(load_scenario(SHORTENER, [DES_ONLY]))
    assert name == "des"
    # engines passed over for the same reason share it
    assert _one_line(reason).startswith("engine: des (stations and calendar cannot run it: warmup_s: ")


def test_an_automatic_warmup_stays_on_the_des() -> None:
    """The MSER-5 pilots run on the DES; the measured runs stay there (the calendar refuses it)."""
    name, reason = choose(load_scenario(SMALL, ["warmup_s=auto"]))
    assert name == "des" and "calendar cannot run it: warmup_s: auto" in reason
    name, reason = choose(load_scenario(SHORTENER, ["warmup_s=auto"]))
    assert name == "des" and "calendar cannot run it: warmup_s: auto" in reason


def test_several_scenarios_share_the_first_engine_that_runs_them_all() -> None:
    small, des_only = load_scenario(SMALL), load_scenario(SMALL, [DES_ONLY])
    name, reason = choose_all([("point #0", small), ("point #1", des_only), ("point #2", small)])
    assert name == "des"
    assert _one_line(reason) == (
        "engine: des for all 3 scenarios (stations cannot run any of them (point #0: flows: the messaging "
        f"preset); calendar cannot run point #1: {DES_ONLY_WHY})")
    name, reason = choose_all([("arm A", small), ("arm B", load_scenario(SMALL, [GC]))])
    assert name == "calendar" and reason == ("engine: calendar for both scenarios (stations cannot run any "
                                             "of them (arm A: flows: the messaging preset))")
    many = choose_all([(f"point #{i}", des_only) for i in range(5)] + [("point #5", small)])[1]
    assert "calendar cannot run point #0, point #1, point #2 and 2 more (point #0: warmup_s: auto" in many


def test_auto_is_resolved_before_an_engine_or_a_budget_is_looked_up() -> None:
    assert PREFERENCE == ("stations", "calendar", "des") and set(PREFERENCE) == set(ENGINES)
    assert DEFAULT_ENGINE in (*ENGINES, AUTO)
    with pytest.raises(ScenarioError, match=r"^engine: auto names no engine until a scenario is seen"):
        engine(AUTO)
    with pytest.raises(ScenarioError, match="allowed: des, calendar, stations, auto"):
        engine("warp")
    assert WORK_BUDGET["calendar"] > WORK_BUDGET["des"]
    # what auto sends to the stations engine instead of the calendar is never refused for it
    assert WORK_BUDGET["stations"] >= WORK_BUDGET["calendar"]
    est = estimate(load_scenario(MM1, TINY))
    assert budget_problem(est, "calendar", False, 8 * 2**30) is None
    with pytest.raises(ValueError, match="no work budget for engine 'auto'"):
        budget_problem(est, AUTO, False, 8 * 2**30)


def test_simulate_records_the_engine_auto_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """simulate() takes no automatic warm-up (sim.experiments resolves it), so the calendar is made
    to refuse a plain M/M/1 here for auto to pick the DES."""
    assert simulate(load_scenario(MM1, TINY), engine=AUTO).summary["engine"] == "calendar"
    refuse = dataclasses.replace(ENGINES["calendar"], supports=lambda sc: [ScenarioError("x", "refused")])
    monkeypatch.setitem(ENGINES, "calendar", refuse)
    result = simulate(load_scenario(MM1, TINY), engine=AUTO)
    assert result.summary["engine"] == "des"


def test_an_experiment_runs_every_point_on_the_one_engine_auto_chose() -> None:
    points = [load_scenario(MM1, TINY), load_scenario(MM1, [*TINY, MM1_DES])]
    out = run_points(points, 2, LocalExecutor(1), engine=AUTO)
    assert all(isinstance(p, Replicated) for p in out)
    assert [p.summary["engine"] for p in out if isinstance(p, Replicated)] == ["des", "des"]


def _cli(*args: object) -> object:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def test_cli_run_prints_the_reason_and_records_the_engine(tmp_path: Path) -> None:
    res = _cli("run", SMALL, "--engine", "auto", "--duration", 2, "--quiet", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("engine: ")]
    assert lines == [f"engine: calendar ({NOT_STATIONS})"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["engine"] == "calendar"


def test_cli_run_with_a_named_engine_prints_no_engine_line(tmp_path: Path) -> None:
    res = _cli("run", MM1, "--duration", 2, "--warmup", 0.5, "--engine", "des", "--quiet",
               "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "engine: " not in res.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["engine"] == "des"


def test_the_default_engine_is_auto_and_the_cli_says_which_engine_it_picked(tmp_path: Path) -> None:
    assert DEFAULT_ENGINE == AUTO
    res = _cli("run", MM1, "--duration", 2, "--warmup", 0.5, "--quiet", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("engine: ")]
    assert lines == [f"engine: calendar ({NOT_STATIONS})"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["engine"] == "calendar"


def test_cli_compare_runs_both_arms_on_one_engine_and_names_the_arm_that_forced_it(tmp_path: Path) -> None:
    # arm B's automatic warm-up in its file: --warmup would set both arms' warm-ups
    (tmp_path / "a.yaml").write_text(f"extends: {MM1}\nduration_s: 3\nwarmup_s: 0.5\n")
    (tmp_path / "b.yaml").write_text(f"extends: {MM1}\nduration_s: 3\nwarmup_s: auto\n")
    res = _cli("compare", tmp_path / "a.yaml", tmp_path / "b.yaml", "--replications", 2,
               "--workers", 1, "--engine", "auto", "--quiet", "--out", tmp_path / "cmp")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("engine: ")]
    assert len(lines) == 1 and lines[0].startswith("engine: des for both scenarios (")
    assert f"calendar cannot run arm B: {DES_ONLY_WHY}" in lines[0]
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["a"]["engine"] == saved["b"]["engine"] == "des"


def test_cli_sweep_with_auto_says_which_engine_runs_every_point(tmp_path: Path) -> None:
    res = _cli("sweep", MM1, "--set", "workload.sends_per_sec=300,600", "--duration", 2, "--warmup", 0.5,
               "--workers", 1, "--engine", "auto", "--quiet", "--out", tmp_path / "sweep")
    assert res.exit_code == 0, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("engine: ")]
    assert lines == ["engine: calendar for both scenarios (stations cannot run any of them (point #0: flows: "
                     "the messaging preset))"]


def test_cli_warmup_auto_runs_on_the_des(tmp_path: Path) -> None:
    """`warmup_s: auto` goes through replications (DES pilots, then the cut), with or without auto."""
    for name in ("des", "auto"):
        res = _cli("run", MM1, "--duration", 3, "--warmup", "auto", "--engine", name, "--quiet",
                   "--out", tmp_path / name)
        assert res.exit_code == 0, res.stdout + res.stderr
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["engine"] == "des" and summary["warmup"]["mode"] == "auto"


@pytest.mark.parametrize(("module", "scenario", "line"), [
    ("sim.calendar.engine", MM1, "compiling the calendar engine's loop first (once for this version of "
                                 "capsim: ~20-40 s on 2 cores; later runs load it from the cache)"),
    ("sim.stations.engine", ROOT / "scenarios" / "validation" / "design-mmc.yaml",
     "compiling the stations engine's kernels first (once for this version of capsim: ~10-20 s on 2 cores; "
     "later runs load it from the cache)"),
], ids=["calendar", "stations"])
def test_a_cold_engine_says_it_compiles_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str,
                                              scenario: Path, line: str) -> None:
    """An array engine's first run compiles its kernels: the CLI says so in one line before it (on the
    engine auto picks: the calendar for a messaging scenario, the stations engine for a design), and
    says nothing once they are compiled, nor for the DES."""
    import importlib

    engine_module = importlib.import_module(module)
    monkeypatch.setattr(engine_module, "kernels_cached", lambda: False)
    res = _cli("run", scenario, "--duration", 2, "--warmup", 0.5, "--quiet", "--out", tmp_path / "cold")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert [x for x in res.stderr.splitlines() if x.startswith("compiling")] == [line]
    monkeypatch.undo()
    assert engine_module.kernels_cached() is True  # it ran in this process
    res = _cli("run", scenario, "--duration", 2, "--warmup", 0.5, "--quiet", "--out", tmp_path / "warm")
    assert res.exit_code == 0 and "compiling" not in res.stderr
    des = _cli("run", scenario, "--duration", 2, "--warmup", 0.5, "--engine", "des", "--quiet",
               "--out", tmp_path / "d")
    assert des.exit_code == 0 and "compiling" not in des.stderr


def test_kernels_cached_reads_numbas_cache(tmp_path: Path) -> None:
    """In a fresh process with an empty numba cache the loop is not compiled yet (numba's private
    cache path is where kernels_cached looks: this fails if numba moves it)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for package in ("calendar", "stations"):
        out = subprocess.run([sys.executable, "-c", f"from sim.{package}.engine import kernels_cached; "
                              "print(kernels_cached())"], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "False", (package, out.stderr)
