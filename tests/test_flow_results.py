"""Results named after the run's own flows: a design's summary, SLO paths, recovery, report, charts,
experiments and the CLI table speak of resolve and shorten, not of send, read and delivery.

The run state here is made by hand (a Recorder fed known requests), so every figure below is known
exactly: no engine runs, and the test does not wait for the DES flow interpreter.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from sim import load_scenario
from sim.experiments.figures import headline_paths as experiment_paths
from sim.experiments.stats import Interval
from sim.experiments.warmup import series_names, warmup_cut
from sim.faults import Fault
from sim.jsonsafe import json_safe
from sim.metrics import Recorder, flows_in_series
from sim.recovery import availability_windows, fault_report, window_availability
from sim.report import charts as ch
from sim.report import triggered_flows, write_report
from sim.report.compare_table import select_rows
from sim.result import Result, build_result
from sim.run_state import RunState
from sim.sampling import make_cell
from sim.scenario import Scenario, Slo
from sim.slo import evaluate_slos
from sim.summary import Availability, Summary, figure_path_problem
from sim.system.compile import system_of
from sim.system.model import Flow, System

DESIGN = """\
name: tiny-shortener
duration_s: 5
warmup_s: 1
keys: {link: {count: 1_000_000, zipf_s: 1.0, value_bytes: {dist: deterministic, value: 500}}}
components:
  edge: {kind: gateway, instances: 4, workers: 8, service_ms: {dist: lognormal, mean: 0.3, p99: 2}}
  api: {kind: service, instances: 4, workers: 8, ops: {resolve: {dist: exponential, mean: 0.2},
        shorten: {dist: exponential, mean: 0.5}}}
  cache: {kind: redis, shards: 2, memory_gb_per_shard: 1}
  links: {kind: cassandra, nodes: 6, replication_factor: 3}
flows:
  resolve:
    rate_per_sec: 20000
    key: link
    steps:
      - call: edge
      - call: api.resolve
      - cache: {on: cache, miss: [{call: links.read, consistency: ONE}], fill: true}
  shorten:
    rate_per_sec: 200
    key: link.new
    steps:
      - call: edge
      - call: api.shorten
      - parallel: {join: all, steps: [{call: links.write, consistency: QUORUM}, {call: cache.set}]}
"""
FLOWS = ("resolve", "shorten", "notify")  # notify: triggered (no rate), so not a client's request
CLIENTS = ("resolve", "shorten")
MEASURED_S = 3.0


def _text(data: Any) -> str:
    return json.dumps(json_safe(data), indent=2)


def _request(rec: Recorder, flow: str, t0: float, latency_ms: float, error: str | None = None) -> None:
    """One request of `flow` arriving at `t0`, done `latency_ms` later; half its time at the edge."""
    done = t0 + latency_ms / 1e3
    rec.start(flow, t0, t0)
    rec.finish(flow, t0, t0, done, error, [("edge", t0 + latency_ms / 2e3), ("api", done)])


def _recorder() -> Recorder:
    """Windows of 1 s; warm-up until 1 s. Measured, per flow (succeeded/failed):
    resolve 9/1, shorten 4/0, notify 1/2. Window 1-2: one resolve and one notify fail; window 2-3:
    every client request succeeds, one notify fails; window 3-4: one notify succeeds, no client."""
    rec = Recorder(1.0, 1.0, FLOWS)
    _request(rec, "resolve", 0.2, 5.0)  # in the warm-up: counted in `requests`, not measured
    _request(rec, "resolve", 0.6, 5.0)
    rec.close_window(1.0, 1.0)
    rec.begin_measuring(1.0)
    for i in range(5):
        _request(rec, "resolve", 1.1 + 0.1 * i, 2.0 * (i + 1), "timeout" if i == 4 else None)
    for i in range(2):
        _request(rec, "shorten", 1.2 + 0.3 * i, 8.0)
    _request(rec, "notify", 1.5, 3.0, "unavailable")
    rec.close_window(2.0, 1.0)
    for i in range(5):
        _request(rec, "resolve", 2.1 + 0.1 * i, 2.0 * (i + 1))
    for i in range(2):
        _request(rec, "shorten", 2.2 + 0.3 * i, 8.0)
    _request(rec, "notify", 2.5, 3.0, "unavailable")
    rec.close_window(3.0, 1.0)
    _request(rec, "notify", 3.5, 3.0)
    rec.close_window(4.0, 1.0)
    return rec


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    path = tmp_path_factory.mktemp("design") / "tiny.yaml"
    path.write_text(DESIGN)
    return load_scenario(path)


@pytest.fixture(scope="module")
def system(design: Scenario) -> System:
    """The design's system, plus a flow another flow triggers (a consumer's, as delivery is)."""
    compiled = system_of(design)
    notify = Flow("notify", "link", "popular", (), None)
    return dataclasses.replace(compiled, flows={**compiled.flows, "notify": notify})


@pytest.fixture(scope="module")
def result(design: Scenario, system: System) -> Result:
    state = RunState(
        scenario=design, cell=make_cell(design), recorder=_recorder(), fleets={}, cache=None,
        redis_hits=0, redis_misses=0, kafka_lag_max_s=0.0, kafka_lag_max_msgs=0, kafka_backlog=0,
        async_errors=Counter(), mix={}, edges={}, cassandra_faults={}, kafka_unavailable=0,
        rate_limited=0, events=0, sim_seconds=4.0, measured_seconds=MEASURED_S, wall_seconds=0.0,
        drained=True, system=system)
    return build_result(state)


# -- summary.json ----------------------------------------------------------------------------------
def test_the_summary_is_keyed_by_the_runs_flows(result: Result) -> None:
    s = result.summary
    for section in ("latency_ms", "throughput_per_sec", "latency_breakdown", "requests"):
        assert list(s[section]) == list(FLOWS), section
    assert list(s["checks"]["little"]) == list(FLOWS)
    assert list(s["offered_per_sec"]) == list(CLIENTS)  # what clients offer; notify is triggered
    assert s["offered_per_sec"] == {"resolve": 10 / MEASURED_S, "shorten": 4 / MEASURED_S}
    assert s["throughput_per_sec"] == {"resolve": 9 / MEASURED_S, "shorten": 4 / MEASURED_S,
                                       "notify": 1 / MEASURED_S}
    assert s["latency_ms"]["resolve"]["count"] == 9 and s["latency_ms"]["notify"]["count"] == 1
    assert s["requests"]["resolve"] == {"sent": 12, "succeeded": 11, "failed": 1, "in_flight": 0,
                                        "holds": True}
    assert set(s["latency_breakdown"]["resolve"]["shares"]) == {"edge", "api"}
    assert s["errors"] == {"notify:unavailable": 2, "resolve:timeout": 1}
    assert s["workload"] == {}  # the messaging mix: a design has none
    assert result.histograms["shorten"].count == 4
    assert sorted(set(result.latency["op"])) == sorted(FLOWS)


def test_availability_per_flow_and_overall_over_the_client_flows(result: Result) -> None:
    a = result.summary["availability"]
    assert list(a) == [*FLOWS, "overall", "nines", "windows"]  # flows first, as in the messaging summary
    assert a["resolve"] == 9 / 10 and a["shorten"] == 1.0 and a["notify"] == 1 / 3
    assert a["overall"] == 13 / 14  # resolve and shorten; with notify it would be 14/17
    assert a["nines"] == pytest.approx(-math.log10(1 - 13 / 14), rel=1e-12)
    # per window, over resolve and shorten: 6/7 (missed), 7/7 (met); the window with only a notify
    # has no client request. Over every flow it would be 3 windows: 6/8, 7/8, 1/1.
    assert a["windows"] == {"target": 0.999, "windows": 2, "windows_met": 1, "share_met": 0.5,
                            "worst_window": 6 / 7}
    assert result.typed is not None and result.typed.availability.flows == {
        "resolve": 0.9, "shorten": 1.0, "notify": 1 / 3}


def test_the_typed_summary_round_trips(result: Result) -> None:
    again = Summary.model_validate(result.summary).model_dump()
    assert _text(again) == _text(result.summary)


def test_a_flow_named_like_a_fixed_availability_figure_is_refused() -> None:
    from sim.summary import AvailabilityWindows

    windows = AvailabilityWindows(target=0.9, windows=0, windows_met=0, share_met=math.nan,
                                  worst_window=math.nan)
    with pytest.raises(ValueError, match="a flow may not be named overall"):
        Availability.of({"overall": 1.0}, overall=1.0, nines=math.inf, windows=windows)


def test_recorder_refuses_repeated_flow_names() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Recorder(0.0, 1.0, ("resolve", "resolve"))


# -- SLO paths -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["availability.resolve", "availability.notify", "latency_ms.resolve.p99",
                                  "throughput_per_sec.shorten", "checks.little.resolve.L",
                                  "requests.shorten.failed", "availability.overall", "availability.send",
                                  "availability.windows.share_met", "latency_breakdown.resolve.shares.api"])
def test_a_flows_figure_is_a_path_for_any_flow_name(path: str) -> None:
    assert figure_path_problem(path) is None


@pytest.mark.parametrize(("path", "expected"), [
    ("latency_ms.read.p42", "p42 is not a figure of latency_ms.<op>; allowed: count, mean, p50"),
    ("latency_ms.resolve.p42", "p42 is not a figure of latency_ms.<op>; allowed: count, mean, p50"),
    ("availability.overal", "overal is not a figure of availability (did you mean overall?); allowed: "
                            "overall, nines, windows or a flow's name (availability.<op>)"),
    ("availability.resolve.p99", "availability.<op> is a figure with nothing below it"),
    ("availability", "availability is a section, not a figure; allowed below it: overall, nines, "
                     "windows or a flow's name"),
])
def test_nonsense_is_still_refused(path: str, expected: str) -> None:
    problem = figure_path_problem(path)
    assert problem is not None and problem.startswith(expected), problem


def test_given_the_runs_flows_a_path_must_name_one_of_them() -> None:
    flows = list(FLOWS)
    assert figure_path_problem("availability.resolve", flows) is None
    assert figure_path_problem("latency_ms.notify.p99", flows) is None
    assert figure_path_problem("availability.read", flows) == (
        "read is not a figure of availability; allowed: overall, nines, windows, resolve, shorten, notify")
    assert figure_path_problem("latency_ms.read.p99", flows) == (
        "read is not a flow of this run (latency_ms.<op>); allowed: resolve, shorten, notify")


def test_slos_on_a_flows_figures_are_evaluated(result: Result) -> None:
    slos = [Slo(metric="availability.resolve", min=0.95), Slo(metric="latency_ms.shorten.p99", max=100),
            Slo(metric="availability.overall", min=0.9)]
    verdicts = evaluate_slos(result.summary, slos)
    assert [(v["actual"], v["status"]) for v in verdicts.values()] == [
        (0.9, "missed"), (result.summary["latency_ms"]["shorten"]["p99"], "met"), (13 / 14, "met")]


# -- recovery and availability windows ------------------------------------------------------------
def test_recovery_judges_the_client_flows_only(result: Result) -> None:
    rows = result.timeseries.to_dict("records")
    assert flows_in_series(result.timeseries.columns) == list(FLOWS)
    assert math.isnan(window_availability(rows[3], CLIENTS))  # only a notify completed
    assert window_availability(rows[3], FLOWS) == 1.0
    assert availability_windows(rows, 0.999, 1.0, CLIENTS)["windows"] == 2
    assert availability_windows(rows, 0.999, 1.0, FLOWS)["windows"] == 3
    fault = Fault.model_validate({"kind": "crash", "component": "cassandra", "nodes": [0], "start_s": 0.5,
                                  "duration_s": 0.5})
    # after the fault (ends at 1 s): window 1-2 loses a resolve (6/7 < 95%), 2-3 and 3-4 hold (3-4
    # has no client request), and the run ends: two good windows, not three. One more window like
    # 3-4 recovers it, from 2 s; judged on every flow, 2-3 would not hold (a notify failed, 7/8).
    report = fault_report(rows, [fault], CLIENTS)
    assert report[0]["recovery"] == {"recovered": False, "seconds_to_recover": None}
    padded = [*rows, {**rows[3], "t_s": 5.0}]
    assert fault_report(padded, [fault], CLIENTS)[0]["recovery"] == {"recovered": True,
                                                                    "seconds_to_recover": 1.0}
    assert fault_report(padded, [fault], FLOWS)[0]["recovery"]["recovered"] is False


# -- the report and its charts ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(result: Result, design: Scenario, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report written for the design, with every chart's titles and legend texts captured."""
    captured: dict[str, list[str]] = {}
    original = ch._save

    def save(fig: Figure, path: Path) -> Path:
        texts = [fig.get_suptitle()] + [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center")]
        texts += [t.get_text() for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]
                  if legend is not None for t in legend.get_texts()]
        captured[path.stem] = [t for t in texts if t]
        return original(fig, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(ch, "_save", save)
    try:
        out = tmp_path_factory.mktemp("report")
        paths = write_report(result, out, design)
    finally:
        mp.undo()
    return {"paths": paths, "md": paths["report_md"].read_text(encoding="utf-8"), "charts": captured}


def test_the_report_table_has_a_row_per_flow(report: dict[str, Any]) -> None:
    md = report["md"]
    for flow in FLOWS:
        assert f"\n| {flow} |" in md, flow
    assert "| send |" not in md and "| delivery |" not in md
    assert "Overall availability (requests of resolve and shorten): 92.8571%." in md


def test_the_charts_name_the_flows(report: dict[str, Any]) -> None:
    charts = report["charts"]
    assert {"latency_cdf", "latency_over_time", "throughput"} <= set(charts)
    cdf = " ".join(charts["latency_cdf"])
    assert "latency CDF of resolve, shorten and notify" in cdf and "resolve: p50" in cdf
    over_time = charts["latency_over_time"]
    assert any("latency of resolve, shorten and notify over time" in t for t in over_time)
    assert {"resolve p99", "shorten p50", "notify p99"} <= set(over_time)
    throughput = charts["throughput"]
    assert {"resolve (requests/s, fleet-wide)", "shorten (requests/s, fleet-wide)",
            "notify (requests/s, fleet-wide)", "resolve failed", "notify failed"} <= set(throughput)
    assert "started" in throughput  # notify's dashed line: the requests another flow started
    assert not any(word in " ".join(t for v in charts.values() for t in v)
                   for word in ("send", "delivery"))


def test_triggered_flows_are_those_without_offered_load(result: Result) -> None:
    assert triggered_flows(result.summary) == ["notify"]


def test_flow_colours_are_the_same_in_every_chart() -> None:
    flows = ["resolve", "shorten", "notify"]
    colours = [ch.flow_color(f, flows) for f in flows]
    assert len(set(colours)) == 3
    assert ch.flow_color("send", flows) == "#1f77b4"  # the messaging preset keeps its own


# -- experiments, compare and the CLI --------------------------------------------------------------
def test_experiment_figures_follow_the_flows(result: Result, design: Scenario) -> None:
    paths = experiment_paths(result.summary, design)
    assert {"latency_ms.resolve.p99", "latency_ms.notify.p50", "throughput_per_sec.shorten",
            "availability.resolve", "availability.notify", "availability.overall"} <= set(paths)
    assert not any(".send" in p or ".read" in p or ".delivery" in p for p in paths)


def test_the_warmup_cut_reads_the_flows_series(result: Result) -> None:
    names = series_names(result.timeseries.columns)
    assert names == [f"{f}_{k}" for f in FLOWS for k in ("p50_ms", "succeeded_per_sec")]
    cut = warmup_cut([result.timeseries], 4.0)
    assert set(cut.per_series_s) <= set(names) and cut.per_series_s  # the flows' series voted


def test_compare_headlines_are_the_flows_figures() -> None:
    from sim.experiments.compare import Row

    def row(metric: str) -> Row:
        same = Interval(1.0, 0.9, 1.1, 5)
        return Row(metric, same, same, Interval(0.0, -1.0, 1.0, 5))

    rows = [row(f"latency_ms.{f}.{s}") for f in ("resolve", "shorten") for s in ("mean", "p50", "p99")]
    rows += [row(f"availability.{k}") for k in ("resolve", "shorten", "overall")]
    rows += [row("components.api.utilization_max")]  # not significant: hidden
    shown = [r.metric for r in select_rows(rows)]
    assert shown == ["latency_ms.resolve.p50", "latency_ms.resolve.p99", "availability.resolve",
                     "latency_ms.shorten.p50", "latency_ms.shorten.p99", "availability.shorten",
                     "availability.overall"]


def test_the_cli_table_lists_the_flows(result: Result, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    import cli

    console = Console(record=True, width=160)
    monkeypatch.setattr(cli, "console", console)
    cli._print_summary(result)
    text = console.export_text()
    assert "resolve" in text and "shorten" in text and "notify" in text
    assert "90.00000%" in text and "send" not in text
