"""CLI edges (issue 10): work budgets that every shipped scenario fits, --force, fresh run folders,
--version and option metavars, warm-up scaled to a short --duration, numba's cache location."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

import cli
import sim.budget
from sim import load_scenario
from sim.arrays import numba_cache_root
from sim.budget import WORK_BUDGET, estimate
from sim.engines import choose
from sim.run_folder import fresh_folder, publish, staging_folder

ROOT = Path(__file__).parent.parent
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))
FIXED_MEMORY_BOUND = 8 * 2**30  # any machine that runs capsim has this much; the test must not depend on ours

# M/M/1 through the gateway only: a 2 s run simulates ~1,600 requests
TINY = dedent("""\
    name: tiny
    duration_s: 2
    warmup_s: 0.5
    network: {hop_ms: 0}
    workload: {users: 100, conversations: 100, sends_per_sec: 800, reads_per_sec: 0}
    gateway: {instances: 1, workers: 1, service_ms: {dist: exponential, mean: 1.0}}
    message_service: {enabled: false}
    group_service: {enabled: false}
    cassandra: {enabled: false}
    redis: {enabled: false}
    kafka: {enabled: false}
""")


def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def invoke(args: list[str]) -> object:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


# --- budgets -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SCENARIOS, ids=[str(p.relative_to(ROOT)) for p in SCENARIOS])
def test_every_shipped_scenario_fits_the_des_budget(path: Path) -> None:
    est = estimate(load_scenario(path))
    assert est.work_total < WORK_BUDGET["des"], est.work
    assert est.memory_bytes < FIXED_MEMORY_BOUND, est.memory


@pytest.mark.parametrize(("overrides", "engine"), [
    (["sample=0.005", "duration_s=20"], "des"),  # README: --sample 0.005 --duration 20
    (["sample=1", "duration_s=1", "warmup_s=0.25"], "calendar"),  # README's first command
    (["sample=1"], "calendar"),  # the whole design at full scale for the scenario's 40 s
])
def test_readme_commands_fit(overrides: list[str], engine: str) -> None:
    est = estimate(load_scenario(ROOT / "scenarios" / "messaging-1m.yaml", overrides))
    assert est.work_total < WORK_BUDGET[engine]
    assert est.memory_bytes < FIXED_MEMORY_BOUND


def test_the_estimate_scales_with_rates_spikes_and_pauses(tmp_path: Path) -> None:
    base = estimate(load_scenario(tiny(tmp_path)))
    assert base.requests == pytest.approx(800 * 2)  # rate x sample x seconds
    spiked = estimate(load_scenario(tiny(tmp_path), [
        "faults=[{kind: load_spike, factor: 10, start_s: 1, duration_s: 0.5}]"]))
    assert spiked.requests == pytest.approx(800 * (1.5 + 10 * 0.5))
    overlapping = estimate(load_scenario(tiny(tmp_path), [
        "faults=[{kind: load_spike, factor: 10, start_s: 1, duration_s: 0.5}, "
        "{kind: load_spike, factor: 2, start_s: 1.25, duration_s: 5}]"]))  # overlapping spikes multiply
    assert overlapping.requests == pytest.approx(800 * (1 + 10 * 0.25 + 20 * 0.25 + 2 * 0.5))


def test_force_runs_past_the_work_budget_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = choose(load_scenario(tiny(tmp_path)))[0]  # the engine the default (auto) runs it on
    monkeypatch.setitem(sim.budget.WORK_BUDGET, chosen, 100.0)  # the tiny run is now "too big"
    monkeypatch.chdir(tmp_path)
    refused = invoke(["run", tiny(tmp_path), "--quiet"])
    assert refused.exit_code == 2
    assert f"exceeds the budget of 1e+02 for the {chosen} engine" in refused.stderr
    assert not (tmp_path / "reports").exists()
    forced = invoke(["run", tiny(tmp_path), "--quiet", "--force"])
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert len(list((tmp_path / "reports" / "tiny").iterdir())) == 1
    # replications run as tasks (sim.experiments): --force travels with each task, not the process
    replicated = invoke(["run", tiny(tmp_path), "--quiet", "--force", "--replications", "2",
                         "--workers", "1"])
    assert replicated.exit_code == 0, replicated.stdout + replicated.stderr
    again = invoke(["run", tiny(tmp_path), "--quiet"])  # and lasts one command
    assert again.exit_code == 2


def test_runs_at_once_fit_the_memory_bound_together() -> None:
    from sim.budget import runs_at_once

    gb = 1e9
    assert runs_at_once([3 * gb] * 4, 2, 7 * gb) == (2, None)  # two fit: workers decide
    assert runs_at_once([3 * gb] * 4, 8, 7 * gb)[0] == 2  # memory decides
    assert runs_at_once([3 * gb], 8, 7 * gb) == (1, None)  # one run: nothing to share
    assert runs_at_once([1 * gb, 5 * gb, 1 * gb], 3, 5.5 * gb)[0] == 1  # the largest two do not fit
    assert runs_at_once([1 * gb, 5 * gb, 1 * gb], 3, 6.5 * gb)[0] == 2  # they do; all three do not
    k, why = runs_at_once([4 * gb, 4 * gb], 2, 6 * gb)
    assert k == 1 and why == ("memory: 2 runs at once would need ~8 GB against this machine's bound of "
                              "6 GB; running 1 at a time")


def test_a_sweep_runs_fewer_points_at_once_when_memory_says_so(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Each point is checked against the memory bound alone, but --workers 2 runs two at once: on a
    machine where one fits and two do not, the sweep runs them one at a time and says why."""
    one = estimate(load_scenario(tiny(tmp_path))).memory_bytes
    monkeypatch.setattr(sim.budget, "machine_memory_bytes", lambda: 1.5 * one)
    monkeypatch.chdir(tmp_path)
    res = invoke(["sweep", tiny(tmp_path), "--set", "seed=1,2", "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "memory: 2 runs at once would need" in res.stdout and "running 1 at a time" in res.stdout
    assert "on local (in process)" in res.stdout
    monkeypatch.setattr(sim.budget, "machine_memory_bytes", lambda: 2.5 * one)
    res = invoke(["sweep", tiny(tmp_path), "--set", "seed=1,2", "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "memory:" not in res.stdout and "on local (2 processes)" in res.stdout


# --- run folders ---------------------------------------------------------------------------------

def test_two_runs_with_the_same_default_target_get_two_folders(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "default_target", lambda root, prefix="": root / f"{prefix}20260101-120000")
    for _ in range(2):
        result = invoke(["run", tiny(tmp_path), "--quiet"])
        assert result.exit_code == 0, result.stdout + result.stderr
    folders = sorted(p.name for p in (tmp_path / "reports" / "tiny").iterdir())
    assert folders == ["20260101-120000", "20260101-120000-2"]
    for name in folders:
        assert (tmp_path / "reports" / "tiny" / name / "summary.json").is_file()
    assert "wrote reports/tiny/20260101-120000-2/" in result.stdout


def test_runs_finishing_together_publish_to_two_folders(tmp_path: Path) -> None:
    """Two processes started in the same second: both stage, the second to finish takes -2."""
    target = tmp_path / "reports" / "s" / "20260101-120000"
    target.parent.mkdir(parents=True)
    first, second = tmp_path / "reports" / "s" / ".a.partial", tmp_path / "reports" / "s" / ".b.partial"
    for staging, text in ((first, "A"), (second, "B")):
        staging.mkdir()
        (staging / "summary.json").write_text(text)
    assert publish(first, target) == target
    assert publish(second, target) == target.with_name("20260101-120000-2")
    assert (target / "summary.json").read_text() == "A"


def test_a_failure_mid_write_leaves_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "write_report", broken)  # after summary.json etc. were written
    result = invoke(["run", tiny(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert "cannot write the results (No space left on device)" in result.stderr
    assert list((tmp_path / "reports" / "tiny").iterdir()) == []  # no target, no staging folder


def test_interrupt_removes_the_staging_folder(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), fresh_folder(target) as staged:
        (staged.path / "summary.json").write_text("{}")
        assert staged.path == staging_folder(target)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_explicit_out_that_is_not_empty_is_refused_before_running(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    monkeypatch.setattr(cli, "simulate", lambda *a, **k: pytest.fail("simulated before refusing --out"))
    for command in (["run", tiny(tmp_path)], ["size", tiny(tmp_path)]):
        result = invoke([*command, "--out", out])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "exists and is not empty" in lines[0], result.stderr
    assert [p.name for p in out.iterdir()] == ["summary.json"]


def test_explicit_empty_out_is_used(tmp_path: Path) -> None:
    out = tmp_path / "new"
    out.mkdir()
    result = invoke(["run", tiny(tmp_path), "--quiet", "--out", out])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (out / "summary.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_nameless_scenario_is_named_after_its_file_safely(tmp_path: Path) -> None:
    path = tmp_path / "my scenario (v2).yaml"
    path.write_text(TINY.replace("name: tiny\n", ""))
    assert load_scenario(path).name == "my-scenario-v2-"


# --- help, version, warm-up -----------------------------------------------------------------------

def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"capsim {importlib.metadata.version('capsim')}"


@pytest.mark.parametrize("command", ["run", "sweep", "compare", "size", "validate"])
def test_help_names_what_each_option_takes(command: str) -> None:
    # a terminal wide enough that rich does not wrap the longest metavar inside its column
    result = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "<str>" not in result.stdout
    if command in ("run", "sweep", "compare"):
        for metavar in ("SECONDS", "SECONDS|auto", "FOLDER", "des|calendar|stations|auto"):
            assert metavar in result.stdout, metavar
        assert "--force" in result.stdout


def test_short_duration_scales_the_warmup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def fake(sc: object, **_kwargs: object) -> None:
        seen.append(sc)
        raise SystemExit(0)

    monkeypatch.setattr(cli, "simulate", fake)
    path = tiny(tmp_path)  # warmup_s 0.5
    result = invoke(["run", path, "--duration", "0.5", "--quiet"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert seen[0].warmup_s == pytest.approx(0.1)
    assert "warm-up: 0.1 s, 20% of --duration 0.5 (the scenario's 0.5 s is not below it" in result.stdout


def test_explicit_warmup_not_below_duration_is_still_an_error(tmp_path: Path) -> None:
    result = invoke(["run", tiny(tmp_path), "--duration", "1", "--warmup", "1"])
    assert result.exit_code == 2
    assert "warmup_s (from --warmup 1): 1.0 must be below duration_s (1.0)" in result.stderr


# --- numba's cache --------------------------------------------------------------------------------

def test_numba_cache_root_is_the_users_cache(tmp_path: Path) -> None:
    home = Path("/home/u")
    assert numba_cache_root({"XDG_CACHE_HOME": str(tmp_path)}, home) == tmp_path / "capsim" / "numba"
    assert numba_cache_root({}, home) == home / ".cache" / "capsim" / "numba"
    assert numba_cache_root({"XDG_CACHE_HOME": "relative"}, home) == home / ".cache" / "capsim" / "numba"


def test_compiled_kernels_cache_is_outside_the_source_tree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    proc = subprocess.run([sys.executable, "-c", "import sim.calendar, numba; print(numba.config.CACHE_DIR)"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cache = Path(proc.stdout.strip())
    assert cache.parent == tmp_path / "cache" / "capsim" / "numba"
    assert len(cache.name) == 16  # keyed by the hash of the compiled packages' sources (sim/arrays)
    assert cache.is_dir()
