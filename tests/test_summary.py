"""The typed summary (sim/summary.py): it is summary.json exactly, SLO and sweep metric paths are
checked against it, and the result layer does not import the report."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import load_scenario, simulate
from sim.errors import ScenarioError
from sim.jsonsafe import json_safe
from sim.summary import Summary, figure_path_problem

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
TINY = ["duration_s=2", "warmup_s=0.5", "sample=0.2"]


def _text(summary: dict[str, Any]) -> str:
    """summary.json's bytes as Result.write makes them (key order kept, NaN as null)."""
    return json.dumps(json_safe(summary), indent=2)


@pytest.fixture(scope="module", params=["des", "calendar"])
def result(request: pytest.FixtureRequest) -> Any:
    slos = ("slo=[{metric: latency_ms.read.p99, max: 100}, "
            "{metric: components.redis.utilization_max, max: 0.9}]")
    fault = "faults=[{kind: slow, component: cassandra, nodes: [0], factor: 2, start_s: 1, duration_s: 0.5}]"
    sc = load_scenario(SMALL, [*TINY, slos, fault])
    res = simulate(sc, engine=request.param)
    res.scenario = sc  # for the producers' own figures below
    return res


# -- the model is the summary ----------------------------------------------------------------------
def test_summary_is_the_typed_model_dumped(result: Any) -> None:
    """Result.summary is Result.typed dumped, and validating it back gives the same bytes: the model
    neither drops, adds, reorders nor retypes a field (an int read as a float would show as 3.0)."""
    summary = result.summary
    assert isinstance(result.typed, Summary)
    assert _text(result.typed.model_dump()) == _text(summary)
    again = Summary.model_validate(summary).model_dump()
    assert _text(again) == _text(summary)
    assert json.dumps(again, default=str) == json.dumps(summary, default=str)  # NaN/inf kept too
    assert result.typed.latency_ms["read"].p99 == summary["latency_ms"]["read"]["p99"]
    assert result.typed.slo["latency_ms.read.p99 <= 100"].actual == summary["latency_ms"]["read"]["p99"]
    assert summary["engine"] == result.typed.engine


def test_sections_are_their_producers_figures_unchanged(result: Any) -> None:
    """The model's dump against each producer's own dict, built again here without the model: the
    same keys, order and types (a count typed float would show as 3.0, a dropped key as missing)."""
    from sim.analytic import offered_loads
    from sim.cost import monthly_cost
    from sim.recovery import availability_windows, fault_report
    from sim.sampling import make_cell, sample_block

    sc, summary = result.scenario, result.summary
    rows = result.timeseries.to_dict("records")
    assert _text(summary["latency_ms"]) == _text({op: h.summary() for op, h in result.histograms.items()})
    assert _text(summary["sample"]) == _text(sample_block(sc, make_cell(sc)))
    loads = offered_loads(sc, recipients=summary["workload"]["mean_recipients"], hit_ratio=0.0)
    assert _text(summary["cost"]) == _text(monthly_cost(sc, loads).as_summary())
    faults = fault_report(rows, sc.faults)
    assert len(faults) == 1 and _text(summary["faults"]) == _text(faults)
    assert _text(summary["recovery"]) == _text({f["label"]: f["recovery"] for f in faults})
    windows = availability_windows(rows, sc.availability_target, sc.warmup_s)
    assert _text(summary["availability"]["windows"]) == _text(windows)


def test_empty_sections_and_absent_keys_round_trip() -> None:
    """No cache, no Kafka, no Cassandra faults, an empty tail breakdown: `{}` in summary.json, None in
    the model; an edge without a breaker and a cost without `needed` keep those keys absent."""
    base = {
        "monthly_usd": {"gateway": 1.0}, "by_kind_usd": {"compute": 1.0}, "total_monthly_usd": 1.0,
        "usd_per_million_messages": math.nan, "catalog": "c", "currency": "USD", "hours_per_month": 730.0,
        "instances": {"gateway": 1}, "nodes": {"gateway": 1},
        "rows": [{"component": "gateway", "kind": "compute", "monthly_usd": 1.0, "basis": "b", "source": ""}],
    }
    from sim.summary import CostSummary, EdgeStats, Resilience

    cost = CostSummary.model_validate(base)
    assert cost.needed is None and "needed" not in cost.model_dump()
    with_needed = CostSummary.model_validate({**base, "needed": base, "needed_note": "n"})
    assert list(with_needed.model_dump())[-2:] == ["needed", "needed_note"]
    assert "needed" not in with_needed.model_dump()["needed"]
    edge = {"calls": 3, "retries": 0, "timeouts": 1, "retries_denied_by_budget": 0}
    assert EdgeStats.model_validate(edge).model_dump() == edge
    res = Resilience.model_validate({"edges": {"a->b": edge}, "cassandra": {}, "kafka_unavailable": 0,
                                     "lost_writes": 0})
    assert res.cassandra is None and res.model_dump()["cassandra"] == {}


def test_an_unknown_field_is_refused() -> None:
    """The model is closed: a figure build_result adds must be declared here first."""
    from pydantic import ValidationError

    from sim.summary import LatencySummary

    row = {"count": 1, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0, "p999": 1.0, "max": 1.0}
    assert LatencySummary.model_validate(row).model_dump() == row
    with pytest.raises(ValidationError):
        LatencySummary.model_validate({**row, "p42": 1.0})


# -- metric paths ----------------------------------------------------------------------------------
def _shipped_metrics() -> list[str]:
    """Every SLO metric and sweep metric in scenarios/ and in the tests' own text."""
    out: list[str] = []
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        out += [s["metric"] for s in raw.get("slo") or []]
        out += list((raw.get("sweep") or {}).get("metrics") or [])
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text()
        out += re.findall(r"metric[=:]\s*\"?([a-z_]+(?:\.[A-Za-z0-9_>\-]+)+)", text)
        out += re.findall(r"metrics:\s*\[([a-z_.0-9]+)\]", text)
    return sorted(set(out))


def test_every_metric_the_scenarios_and_tests_use_is_a_figure() -> None:
    metrics = _shipped_metrics()
    assert {"latency_ms.read.p99", "availability.overall", "availability.send", "availability.read",
            "latency_ms.send.mean"} <= set(metrics)
    assert {m: figure_path_problem(m) for m in metrics} == dict.fromkeys(metrics)


@pytest.mark.parametrize("path", [
    "latency_ms.any_op.p99", "components.any_fleet.utilization_max", "throughput_per_sec.delivery",
    "cost.total_monthly_usd", "cost.needed.total_monthly_usd", "cache.hit_ratio",
    "kafka.consumer_lag_max_s", "availability.windows.share_met", "checks.little.read.L",
    "requests.send.in_flight", "resilience.edges.client->gateway.breaker.opened",
    "analytic.redis.wait_ms_p99", "sample.fleets.redis.share", "latency_breakdown.read.shares.cassandra",
    "errors.read:timeout",
])
def test_a_path_to_a_number_is_accepted(path: str) -> None:
    assert figure_path_problem(path) is None


# one case per kind of mistake: (path, the one-line problem)
MISTAKES = {
    "unknown root": ("latncy_ms.read.p99",
                     "latncy_ms is not a figure of summary.json; allowed: seed, sample, sim_seconds"),
    "unknown figure after an open key": (
        "latency_ms.read.p42",
        "p42 is not a figure of latency_ms.<op>; allowed: count, mean, p50, p90, p99, p999, max"),
    "unknown figure of a fleet": ("components.cassandra.nope",
                                  "nope is not a figure of components.<component>; allowed: instances, "),
    "unknown figure of a fixed section": ("availability.windows.nope",
                                          "nope is not a figure of availability.windows; allowed: target"),
    "near miss of availability's own figure": (
        "availability.overal", "overal is not a figure of availability (did you mean overall?)"),
    "a section, not a figure": ("latency_ms.read",
                                "latency_ms.<op> is a section, not a figure; allowed below it: count, mean"),
    "a map, not a figure": ("components", "components is a section, not a figure; allowed below it: "
                                          "components.<component>"),
    "past a number": ("latency_ms.read.p99.max",
                      "latency_ms.<op>.p99 is a figure with nothing below it"),
    "text, not a number": ("scenario", "scenario is not a figure of summary.json"),
    "a flag, not a number": ("analytic.cassandra.stable", "stable is not a figure of analytic.<component>"),
    "a list": ("cost.rows", "rows is not a figure of cost; allowed: monthly_usd"),
    "the verdicts themselves": ("slo.x.actual", "slo is not a figure of summary.json (the SLO verdicts"),
}


@pytest.mark.parametrize("kind", list(MISTAKES))
def test_a_mistaken_path_is_refused_with_what_is_allowed(kind: str) -> None:
    path, expected = MISTAKES[kind]
    problem = figure_path_problem(path)
    assert problem is not None and problem.startswith(expected), problem
    assert "\n" not in problem


@pytest.mark.parametrize(("section", "where"), [
    ("slo:\n  - {metric: latency_ms.read.p42, max: 100}\n", "s.yaml:3: slo.0.metric: latency_ms.read.p42: "),
    ("sweep:\n  parameters: {redis.shards: [1, 2]}\n"
     "  metrics: [latency_ms.read.p99, components.redis.nope]\n",
     "s.yaml:4: sweep.metrics.1: components.redis.nope: "),
])
def test_a_scenario_with_a_mistaken_metric_fails_in_one_line(tmp_path: Path, section: str,
                                                             where: str) -> None:
    (tmp_path / "s.yaml").write_text("name: t\n" + section)
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "s.yaml")
    text = str(err.value)
    assert where in text and "is not a figure of" in text and "; allowed: " in text, text
    assert "\n" not in text


def test_capsim_run_exits_2_on_a_mistaken_slo_metric(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    res = CliRunner().invoke(app, ["run", str(SMALL), "--quiet", "--out", str(tmp_path / "o"),
                                   "--set", "slo=[{metric: latency_ms.read.p42, max: 5}]"])
    assert res.exit_code == 2, res.output
    assert "latency_ms.read.p42: p42 is not a figure of latency_ms.<op>; allowed: count, mean" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


# -- import direction ------------------------------------------------------------------------------
def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


@pytest.mark.parametrize("module", ["sim/result.py", "sim/slo.py", "sim/summary.py"])
def test_the_result_layer_does_not_import_the_report(module: str) -> None:
    imported = _imported_modules(ROOT / module)
    assert not [m for m in imported if m == "sim.report" or m.startswith("sim.report.")], imported
    assert "sim.slo" in _imported_modules(ROOT / "sim" / "result.py")  # the walk sees imports at all


def test_slo_evaluation_left_the_report() -> None:
    assert not (ROOT / "sim" / "report" / "slo.py").exists()
    users = [p for p in [*ROOT.glob("*.py"), *(ROOT / "sim").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
             if "sim.report.slo" in _imported_modules(p)]
    assert users == []


def test_a_mistaken_metric_on_the_sweep_command_line_is_refused() -> None:
    from pathlib import Path

    from sim import ScenarioError
    from sim.experiments.sweep import plan_sweep

    with pytest.raises(ScenarioError, match=r"--metric latency_ms.read.p42: p42 is not a figure"):
        plan_sweep(Path("scenarios/interview-small.yaml"), ["cassandra.nodes=12,24"], [],
                   ["latency_ms.read.p42"], None)
    plan = plan_sweep(Path("scenarios/interview-small.yaml"), ["cassandra.nodes=12,24"], [],
                      ["latency_ms.read.p99"], None)
    assert plan.metrics == ["latency_ms.read.p99"]
