"""The run report: files, charts, SLO verdicts, Findings, escaping, offline HTML, large fleets."""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle
from typer.testing import CliRunner

from cli import app
from sim import load_scenario, simulate
from sim.report import CHART_FILES, fault_windows, write_report
from sim.report import charts as ch
from sim.report.comparison import PART, compare_component, cv_of
from sim.report.document import build_document
from sim.report.findings import BAD, findings
from sim.report.html import render as render_html
from sim.report.markdown import escape as md_escape
from sim.report.markdown import render as render_md
from sim.scenario import Slo
from sim.slo import MET, MISSED, NOT_MEASURED, evaluate_slos, lookup

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
QUICK = ["duration_s=3", "warmup_s=1", "sample=0.2"]
MARKUP = "<script>alert(1)</script>"  # free text (a description): names are checked ids
SLOS = ("slo=[{metric: latency_ms.read.p99, max: 100}, {metric: latency_ms.send.p99, max: 0.001}, "
        "{metric: availability.overall, min: 0.999}, {name: lag, metric: latency_ms.no_such_op.p99, max: 1}]")
ALL_CHARTS = set(CHART_FILES)  # interview-small has a cache, Kafka and a priced fleet


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One short run of interview-small described with markup, with four SLOs, reported."""
    sc = load_scenario(SMALL, [*QUICK, f"description={MARKUP}", SLOS])
    result = simulate(sc)
    out = tmp_path_factory.mktemp("report")
    paths = write_report(result, out, sc, size_warnings=["WARN kafka disk: needs 10 brokers, 3 configured"],
                         diagram="flowchart LR\n    gateway --> message_service\n")
    return {"scenario": sc, "result": result, "out": out, "paths": paths,
            "html": paths["report_html"].read_text(encoding="utf-8"),
            "md": paths["report_md"].read_text(encoding="utf-8")}


# -- files ---------------------------------------------------------------------------------------
def test_every_chart_and_both_reports_are_written(run: dict) -> None:
    paths = run["paths"]
    assert set(paths) == ALL_CHARTS | {"report_md", "report_html"}
    for key in ALL_CHARTS:
        png = paths[key]
        assert png.parent == run["out"] and png.name == CHART_FILES[key]
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, key
    for key in ("report_md", "report_html"):
        assert paths[key].stat().st_size > 2_000


def test_markdown_opens_with_findings_and_links_every_chart(run: dict) -> None:
    md = run["md"]
    sections = re.findall(r"^## (.+)$", md, flags=re.M)
    assert sections[0] == "Findings"
    assert {"SLOs", "Cost", "Architecture"} <= set(sections)
    for name in CHART_FILES.values():
        assert f"]({name})" in md
    assert "```mermaid\nflowchart LR" in md
    assert "Bottleneck:" in md and "Capacity: kafka disk: needs 10 brokers" in md


# -- HTML ----------------------------------------------------------------------------------------
def test_html_embeds_every_chart_as_a_data_uri(run: dict) -> None:
    page = run["html"]
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(ALL_CHARTS)
    files = {base64.b64encode(run["paths"][k].read_bytes()).decode("ascii") for k in ALL_CHARTS}
    assert set(embedded) == files


def test_html_loads_nothing_from_the_network(run: dict) -> None:
    page = run["html"]
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|iframe)\b", page, flags=re.I)
    assert not re.search(r'\b(src|href)="(?!data:)', page)


def test_markup_in_the_scenario_description_shows_as_text(run: dict) -> None:
    page, md = run["html"], run["md"]
    assert MARKUP not in page
    assert html.escape(MARKUP) in page
    assert "<h1>capsim report: interview-small</h1>" in page
    assert not re.search(r"(?<!\\)<script", md) and r"\<script>alert(1)\</script>" in md


def test_html_shows_every_slo_with_its_verdict(run: dict) -> None:
    page = run["html"]
    for name in run["result"].summary["slo"]:
        assert html.escape(name) in page
    rows = re.findall(r'<tr class="(ok|bad|na)">(.*?)</tr>', page)
    names = {html.escape(name) for name in run["result"].summary["slo"]}
    verdicts = {first: cls for cls, cells in rows  # other tables (cost) mark their rows too
                if (first := re.findall(r"<td[^>]*>(.*?)</td>", cells)[0]) in names}
    assert verdicts == {
        html.escape("latency_ms.read.p99 <= 100"): "ok",
        html.escape("latency_ms.send.p99 <= 0.001"): "bad",
        html.escape("availability.overall >= 0.999"): "ok",
        "lag": "na",
    }


# -- SLOs ----------------------------------------------------------------------------------------
def test_summary_carries_the_slo_verdicts(run: dict) -> None:
    slo = run["result"].summary["slo"]
    assert list(slo) == ["latency_ms.read.p99 <= 100", "latency_ms.send.p99 <= 0.001",
                         "availability.overall >= 0.999", "lag"]
    read = slo["latency_ms.read.p99 <= 100"]
    assert read["met"] is True and read["target"] == "<= 100"
    assert read["actual"] == run["result"].summary["latency_ms"]["read"]["p99"]
    assert slo["latency_ms.send.p99 <= 0.001"]["met"] is False
    assert slo["latency_ms.send.p99 <= 0.001"]["status"] == MISSED
    assert slo["lag"] == {"metric": "latency_ms.no_such_op.p99", "target": "<= 1", "actual": None,
                          "met": False, "status": NOT_MEASURED}


def test_slo_verdicts_on_hand_made_summaries() -> None:
    summary = {"latency_ms": {"read": {"p99": 80.0, "p50": math.nan}, "send": {"p99": 60.0}},
               "availability": {"overall": 0.9995, "send": 0.99}, "cache": {},
               "components": {"cassandra": {"stable": True}}}
    slos = [Slo(metric="latency_ms.read.p99", max=100), Slo(metric="latency_ms.send.p99", max=50),
            Slo(metric="availability.overall", min=0.999), Slo(name="send avail", metric="availability.send",
                                                                 min=0.999),
            Slo(metric="latency_ms.read.p50", max=10), Slo(metric="cache.hit_ratio", min=0.5),
            Slo(metric="latency_ms.read.p99", max=100)]
    got = evaluate_slos(summary, slos)
    status = {k: v["status"] for k, v in got.items()}
    assert status == {
        "latency_ms.read.p99 <= 100": MET, "latency_ms.send.p99 <= 50": MISSED,
        "availability.overall >= 0.999": MET, "send avail": MISSED,
        "latency_ms.read.p50 <= 10": NOT_MEASURED,  # NaN: the run did not measure it
        "cache.hit_ratio >= 0.5": NOT_MEASURED,  # absent
        "latency_ms.read.p99 <= 100 (2)": MET,  # a repeated name is kept, numbered
    }
    assert all(v["met"] == (v["status"] == MET) for v in got.values())
    assert got["availability.overall >= 0.999"]["target"] == ">= 0.999"
    assert got["latency_ms.send.p99 <= 50"] == {"metric": "latency_ms.send.p99", "target": "<= 50",
                                                "actual": 60.0, "met": False, "status": MISSED}
    assert got["latency_ms.read.p50 <= 10"]["actual"] is None
    assert evaluate_slos(summary, []) == {}
    # a section or a flag is no figure (a scenario's SLO cannot name one: sim.summary checks paths)
    assert lookup(summary, "components.cassandra") is None
    assert lookup(summary, "components.cassandra.stable") is None


def test_an_slo_at_exactly_its_bound_is_met() -> None:
    got = evaluate_slos({"latency_ms": {"read": {"p99": 100.0}}},
                        [Slo(metric="latency_ms.read.p99", max=100),
                         Slo(metric="latency_ms.read.p99", min=100)])
    assert [v["met"] for v in got.values()] == [True, True]


# -- Findings and the analytic comparison -----------------------------------------------------------
def _summary(**extra: object) -> dict:
    base = {
        "scenario": "s", "latency_ms": {"read": {"p99": 12.0}, "send": {"p99": 7.0}},
        "components": {
            "gateway": {"instances": 4, "simulated_instances": 4, "utilization_mean": 0.5,
                        "utilization_max": 0.55, "queue_wait_ms_p99": 0.2},
            "cassandra": {"instances": 12, "simulated_instances": 12, "utilization_mean": 0.4,
                          "utilization_max": 0.93, "queue_wait_ms_p99": 9.0},
        },
        "errors": {}, "checks": {"conservation_holds": True},
    }
    base.update(extra)
    return base


def test_findings_name_the_bottleneck_and_each_operations_p99_contributor() -> None:
    s = _summary(latency_breakdown={
        "read": {"tail_from_ms": 12.0, "shares": {"gateway": 0.1, "cassandra": 0.7, "redis": 0.2}},
        "send": {"tail_from_ms": 7.0, "shares": {"message_service": 0.55, "cassandra": 0.45}}},
        slo={"read p99": {"metric": "latency_ms.read.p99", "target": "<= 10", "actual": 12.0,
                          "met": False, "status": MISSED}},
        faults=[{"kind": "crash", "label": "crash cassandra nodes [0] at 15-30 s", "start_s": 15.0,
                 "end_s": 30.0, "component": "cassandra",
                 "recovery": {"recovered": True, "seconds_to_recover": 2.0}},
                {"kind": "crash", "component": "cassandra", "instance": 3, "at_s": 5},
                "partition between zones a and b"])
    lines = findings(s, size_warnings=["WARN redis memory: short by 4 shards"])
    texts = [f.text for f in lines]
    assert texts[0].startswith("Bottleneck: cassandra, hottest instance at 93.0%")
    assert "hot spot" in texts[0] and lines[0].level == BAD
    assert "read p99 12 ms: cassandra contributes most, 70%" in texts[1]
    assert "send p99 7 ms: message_service contributes most, 55%" in texts[2]
    assert "SLO missed: read p99: latency_ms.read.p99 is 12, target <= 10" in texts
    assert "Capacity: redis memory: short by 4 shards" in texts
    assert [t for t in texts if t.startswith("Fault:")] == [
        "Fault: crash cassandra nodes [0] at 15-30 s; recovered 2 s after it ended",
        "Fault: crash on cassandra 3 (at_s=5)", "Fault: partition between zones a and b"]
    assert fault_windows(s["faults"]) == [(15.0, 30.0)]  # shaded on the time-series charts


def test_findings_say_what_is_not_available() -> None:
    texts = [f.text for f in findings(_summary())]
    assert any("p99 contributors per operation: not available" in t for t in texts)
    assert any(t.startswith("SLOs: none declared") for t in texts)
    assert not any(t.startswith(("Fault:", "Capacity:", "Cost:")) for t in texts)


def test_comparison_explains_a_wait_gap_by_service_variability() -> None:
    simulated = {"utilization_mean": 0.6, "utilization_max": 0.62, "queue_wait_ms_p99": 3.0, "rejected": 0}
    agree = compare_component("redis", simulated, {"utilization": 0.61, "wait_ms_p99": 2.8, "stable": True})
    assert agree.verdict == "agree"
    parted = compare_component("redis", simulated, {"utilization": 0.6, "wait_ms_p99": 1.0, "stable": True},
                               cv=2.0, measured_s=60)
    assert parted.verdict == PART and parted.parts_on == ["p99 wait"]
    assert "cv 2.00" in parted.sentence() and "2.5x" in parted.sentence()
    overloaded = compare_component("redis", simulated, {"utilization": 1.3, "wait_ms_p99": math.inf,
                                                        "stable": False})
    assert overloaded.verdict == PART and "overloaded" in overloaded.sentence()
    assert compare_component("redis", simulated, None).verdict == "no estimate"


def test_run_report_sets_the_estimate_beside_the_simulation(run: dict) -> None:
    md = run["md"]
    assert "| util M/M/c |" in md.replace("util mean | util M/M/c", "| util M/M/c")
    assert run["result"].summary.get("analytic"), "the run's summary carries the M/M/c estimate"
    assert "estimate vs simulation" in md
    assert cv_of(run["scenario"].redis.service_ms) > 1  # lognormal with p99 7.5x the mean


# -- degrading gracefully ------------------------------------------------------------------------------
def test_charts_without_data_are_skipped(run: dict, tmp_path: Path) -> None:
    ts = run["result"].timeseries.drop(columns=["kafka_lag_max_s", "kafka_backlog_msgs", "cache_hit_ratio"])
    assert ch.kafka_lag_chart(ts, tmp_path / "k.png", "x") is None
    assert ch.cache_hit_chart(ts, tmp_path / "c.png", "x") is None
    assert ch.cost_chart({}, tmp_path / "cost.png", "x") is None
    assert ch.utilization_chart(pd.DataFrame(), tmp_path / "u.png", "x") is None
    assert not list(tmp_path.iterdir())
    summary = {**run["result"].summary, "kafka": {}, "cache": {}}
    for key in ("cost", "analytic", "latency_breakdown"):
        summary.pop(key)
    doc = build_document(summary, findings(summary), [], {}, None)
    md, page = render_md(doc, tmp_path), render_html(doc)
    for text in ("Kafka: not available", "Cache: not available", "Cost: not available",
                 "Analytic estimate: not available", "Diagram: not available"):
        assert text in md and text in page


# -- large fleets --------------------------------------------------------------------------------------
def test_utilization_of_10000_nodes_is_a_distribution_not_10000_bars(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rows = []
    for name, n in (("gateway", 40), ("cassandra", 10_000)):
        u = np.clip(rng.normal(0.5, 0.05, n), 0, 1)
        u[123 % n] = 0.97  # a hot shard
        rows += [{"component": name, "instance": i, "utilization": x} for i, x in enumerate(u)]
    frame = pd.DataFrame(rows)
    start = time.perf_counter()
    fig = ch.utilization_figure(frame, "big", 0.7)
    assert fig is not None
    fig.savefig(tmp_path / "u.png")
    assert time.perf_counter() - start < 10
    assert (tmp_path / "u.png").stat().st_size > 10_000
    small, big = fig.axes[0], fig.axes[1]
    bars = [p for p in small.patches if isinstance(p, Rectangle)]
    assert len(bars) == 40  # one bar per gateway node, sorted: the hot one first
    assert bars[0].get_height() == pytest.approx(0.97) and bars[0].get_height() >= bars[-1].get_height()
    assert len(big.patches) <= 60  # histogram bins, not a bar per node
    assert big.get_yscale() == "log"  # so the one hot node still shows
    labels = big.get_legend_handles_labels()[1]
    assert any(label.startswith("max 97.0% (instance 123)") for label in labels)
    assert any(label.startswith("mean ") for label in labels)
    assert "10,000" in big.get_title(loc="left")


# -- markdown escaping ---------------------------------------------------------------------------------
def test_markdown_escape_keeps_text_literal_and_readable() -> None:
    assert md_escape("a | b") == r"a \| b"
    assert md_escape("<img src=x>") == r"\<img src=x>"
    assert md_escape("p99 <= 100 ms") == "p99 <= 100 ms"
    assert md_escape("message_service") == "message_service"
    assert md_escape("_x_ *y*") == r"\_x\_ \*y\*"
    assert md_escape("# not a heading\nsecond line") == r"\# not a heading second line"


# -- the command line ----------------------------------------------------------------------------------
def test_capsim_run_writes_the_report_and_prints_slo_verdicts(run: dict, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # the module's run stands in for the simulation and the charts are left out (the tests above
    # cover both): this checks the command's wiring
    monkeypatch.setattr("cli.simulate", lambda _sc, progress=None, **_options: run["result"])
    monkeypatch.setattr("sim.report.draw_charts", lambda *_args: {})
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(SMALL), "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "SLO met: latency_ms.read.p99 <= 100 (actual" in res.output
    assert "SLO missed: latency_ms.send.p99 <= 0.001" in res.output
    assert "SLO not measured: lag (actual -, target <= 1)" in res.output
    assert f"report: {out / 'report.html'} (and report.md, 0 charts)" in res.output
    for name in ("report.md", "report.html", "summary.json", "latency.csv", "timeseries.csv"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slo"]["lag"] == {"metric": "latency_ms.no_such_op.p99", "target": "<= 1", "actual": None,
                                     "met": False, "status": NOT_MEASURED}
    md = (out / "report.md").read_text()
    if importlib.util.find_spec("sim.diagram"):
        assert "```mermaid" in md
    if importlib.util.find_spec("sim.sizing"):  # one Findings line per `capsim size` warning
        from sim.sizing import size_plan

        warnings = size_plan(load_scenario(SMALL)).warnings
        assert md.count("Capacity: ") + md.count("Capacity, cannot hold: ") == len(warnings)
