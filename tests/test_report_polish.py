"""Report polish users hit: whose description a report shows, retry amplification, compare's terminal
table, and the topology drawn in report.html."""

from __future__ import annotations

import io
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli import app
from sim import load_scenario
from sim.diagram import mermaid, topology
from sim.experiments.compare import Row
from sim.experiments.stats import Interval
from sim.report.compare_table import (
    WIDTH,
    difference_text,
    figure_text,
    fixed,
    headline_paths,
    select_rows,
    table_rows,
    terminal_table,
)
from sim.report.document import Table, build_document
from sim.report.findings import BAD, WARN, findings
from sim.report.html import render as render_html
from sim.report.markdown import render as render_md
from sim.report.resilience import amplification, edge_retries, overall_amplification

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "scenarios"
SMALL = SCENARIOS / "interview-small.yaml"


# -- 1. an inherited description says so ----------------------------------------------------------
def test_a_scenario_that_extends_another_marks_the_description_it_inherits(tmp_path: Path) -> None:
    base = load_scenario(SMALL).description
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {SMALL}\nname: child\ncassandra: {{nodes: 24}}\n", encoding="utf-8")
    sc = load_scenario(child)
    assert sc.description == f"extends {SMALL}: {base}"
    own = tmp_path / "own.yaml"
    own.write_text(f"extends: {SMALL}\nname: own\ndescription: my own words\n", encoding="utf-8")
    assert load_scenario(own).description == "my own words"


def test_retry_storm_files_describe_themselves() -> None:
    base = load_scenario(SMALL).description
    storm = load_scenario(SCENARIOS / "retry-storm.yaml").description
    fixed_ = load_scenario(SCENARIOS / "retry-storm-fixed.yaml").description
    for text in (storm, fixed_):
        assert base not in text and not text.startswith("extends ")
    assert "retr" in storm and "no backoff" in storm
    assert "backoff" in fixed_ and "budget" in fixed_ and storm != fixed_


# -- 2. retry amplification ------------------------------------------------------------------------
def _summary(edges: dict) -> dict:
    return {"scenario": "s", "resilience": {"edges": edges}}


STORM_EDGES = {"client->gateway": {"calls": 1000, "retries": 1210, "timeouts": 1500,
                                   "retries_denied_by_budget": 0},
               "gateway->message_service": {"calls": 2210, "retries": 0, "timeouts": 0,
                                            "retries_denied_by_budget": 0},
               "idle": {"calls": 0, "retries": 0, "timeouts": 0}}


def test_amplification_is_attempts_per_call() -> None:
    assert amplification(1000, 1210) == pytest.approx(2.21)
    assert amplification(0, 0) == 1.0
    edges = edge_retries(_summary(STORM_EDGES))
    assert [e.edge for e in edges] == ["client->gateway", "gateway->message_service"]  # idle left out
    assert overall_amplification(edges) == pytest.approx((3210 + 1210) / 3210)
    assert overall_amplification([]) is None


def test_retry_amplification_is_a_finding_and_a_resilience_table() -> None:
    summary = _summary(STORM_EDGES)
    lines = [f for f in findings(summary) if f.text.startswith("Retries amplify load")]
    assert len(lines) == 1 and lines[0].level == BAD  # 2.21 on client->gateway: retries doubled it
    assert "1.38 attempts per call" in lines[0].text and "client->gateway 2.21" in lines[0].text
    doc = build_document(summary, [], [], {})
    section = next(s for s in doc.sections if s.title == "Resilience")
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert table.rows[0][:4] == ["client->gateway", "1,000", "1,210", "2.21"]
    assert table.rows[-1][0] == "all edges" and table.rows[-1][3] == "1.38"
    assert "## Resilience" in render_md(doc, Path("."))

    mild = _summary({"client->gateway": {"calls": 1000, "retries": 150, "timeouts": 150}})
    assert [f.level for f in findings(mild) if f.text.startswith("Retries")] == [WARN]
    calm = _summary({"client->gateway": {"calls": 1000, "retries": 100, "timeouts": 100}})
    assert not [f for f in findings(calm) if f.text.startswith("Retries")]  # 1.10: not above 1.1


def test_run_prints_and_reports_retry_amplification(tmp_path: Path) -> None:
    """retry-storm with a client timeout below its p50 latency: most calls time out and retry."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", str(SCENARIOS / "retry-storm.yaml"), "--duration", "2", "--warmup", "1", "--quiet",
        "--set", "faults=[]", "--set", "policies.client->gateway.timeout_ms=1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    edge = json.loads((out / "summary.json").read_text())["resilience"]["edges"]["client->gateway"]
    expected = (edge["calls"] + edge["retries"]) / edge["calls"]
    assert expected > 1.1
    shown = re.search(r"retry amplification: (\d+\.\d\d) attempts per call \(client->gateway", result.stdout)
    assert shown is not None, result.stdout
    assert float(shown[1]) == pytest.approx(expected, abs=0.005)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"Retries amplify load: {expected:.2f} attempts per call" in md
    assert "## Resilience" in md


# -- 3. compare's terminal table -------------------------------------------------------------------
def test_numbers_are_plain_with_three_significant_digits() -> None:
    cases = {0.0000123: "0.0000123", 0.000123456: "0.000123", 0.0123: "0.0123", 1.2345: "1.23",
             9.996: "10.0", 12.345: "12.3", 123.45: "123", 1_234_567.0: "1,234,567",
             -0.5: "-0.500", 0.0: "0", 2.5e12: "2,500,000,000,000"}
    for x, text in cases.items():
        assert fixed(x) == text, x
    assert fixed(1.5, signed=True) == "+1.50" and fixed(math.nan) == "-"
    for x in (1e-9, 3.3e-5, 7e8, 1e15, -4.2e6):
        assert "e" not in fixed(x).lower()


def test_figures_are_written_in_their_units() -> None:
    assert figure_text("latency_ms.read.p99", 12.3456) == "12.3 ms"
    assert figure_text("latency_ms.send.p50", 3760.2) == "3,760 ms"
    assert figure_text("availability.read", 0.99951) == "99.951%"
    assert figure_text("components.redis.utilization_max", 0.6123) == "61.2%"
    assert figure_text("cost.total_monthly_usd", 1_523_456.7) == "$1,523,457"
    assert figure_text("throughput_per_sec.send", 9950.3) == "9,950/s"
    assert difference_text("latency_ms.read.p99", Interval(1.23, 0.8, 1.66, 5)) == "+1.23 [+0.800, +1.66] ms"
    assert difference_text("availability.read", Interval(-0.00012, -0.0002, -0.00004, 5)) == \
        "-0.0120 [-0.0200, -0.00400] pp"
    assert difference_text("cost.total_monthly_usd", Interval(12345.6, 12000, 12691.2, 5)) == \
        "+$12,346 [+$12,000, +$12,691]"
    assert difference_text("throughput_per_sec.send", Interval(-3.2, -10, 3.6, 5)) == "-3.20 [-10.0, +3.60]/s"
    assert difference_text("latency_ms.read.p99", Interval(1.23, math.nan, math.nan, 1)) == "+1.23 ms"


def _row(metric: str, a: float, diff: float, half: float) -> Row:
    return Row(metric, Interval(a, a * 0.9, a * 1.1, 5), Interval(a + diff, a + diff - 1, a + diff + 1, 5),
               Interval(diff, diff - half, diff + half, 5))


def test_the_terminal_shows_headlines_and_what_changed() -> None:
    rows = [_row(f"latency_ms.{op}.{stat}", 5.0, 0.1, 1.0) for op in ("send", "read", "delivery")
            for stat in ("mean", "p50", "p90", "p99", "p999")]
    rows += [_row(f"throughput_per_sec.{op}", 10_000.0, 1.0, 5.0) for op in ("send", "read", "delivery")]
    rows += [_row(f"availability.{k}", 0.999, 0.0, 0.0001) for k in ("send", "read", "delivery", "overall")]
    rows += [_row("cost.total_monthly_usd", 150_000.0, 20_000.0, 100.0),  # significant: headline anyway
             _row("components.cassandra.utilization_max", 0.5, 0.2, 0.01),  # significant
             _row("components.redis.utilization_max", 0.5, 0.001, 0.01),  # not significant: hidden
             _row("cache.hit_ratio", 0.9, 0.001, 0.01),  # not significant, but its SLO verdict changes
             _row("kafka.consumer_lag_max_s", 0.01, 0.0, 0.001)]  # hidden
    shown = [r.metric for r in select_rows(rows, {"cache.hit_ratio"})]
    assert shown == [p for p in headline_paths() if p in {r.metric for r in rows}] + [
        "components.cassandra.utilization_max", "cache.hit_ratio"]
    assert len(shown) == 16 < len(rows)
    cells = table_rows(rows, {"cache.hit_ratio"})
    assert cells[0] == ("send p50", "5.00 ms", "5.10 ms", "+0.100 [-0.900, +1.10] ms", "+2.0% n.s.")
    assert cells[-1][0] == "cache hit ratio" and cells[-1][-1] == "+0.1% n.s.; SLO changes"
    assert cells[-2] == ("cassandra util max", "50.0%", "70.0%", "+20.0 [+19.0, +21.0] pp", "+40.0%")
    assert not any(re.search(r"\de[+-]\d", c) for row in cells for c in row)
    lines = _printed(rows, {"cache.hit_ratio"})
    assert len(lines) == 3 + len(shown)  # title, header, rule, then one line per figure: nothing wraps
    assert max(len(line) for line in lines) <= WIDTH


def test_the_widest_plausible_rows_fit_120_columns() -> None:
    rows = [_row("latency_ms.delivery.p99", 123_456.7, -98_765.4, 12_345.6),
            _row("cost.total_monthly_usd", 12_345_678.9, -1_234_567.8, 98_765.4),
            _row("throughput_per_sec.delivery", 1_234_567.8, -123_456.7, 12_345.6),
            _row("availability.delivery", 0.51234, -0.48765, 0.01234),
            _row("components.message_service.queue_wait_ms_p99", 12_345.6, 98_765.4, 1_234.5)]
    lines = _printed(rows, {r.metric for r in rows})
    assert len(lines) == 3 + len(rows)
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)


def _printed(rows: list[Row], slo_changed: set[str]) -> list[str]:
    """The table as a terminal far wider than 120 columns shows it: its natural width."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(terminal_table(rows, slo_changed, "A (x) vs B (y): means of 5 replications"))
    return [line.rstrip() for line in console.export_text().splitlines() if line.strip()]


# -- 4. the topology drawn in report.html ----------------------------------------------------------
def _svg_of(page: str) -> ET.Element:
    found = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(found) == 1
    return ET.fromstring(found[0])  # well-formed: every label escaped


@pytest.mark.parametrize("sets", [[], ["kafka.enabled=false", "group_service.enabled=false",
                                       "gateway.enabled=false", "message_service.ack_after=[cassandra]"]])
def test_html_draws_the_topology_as_svg_with_the_mermaid_source_folded(sets: list[str]) -> None:
    sc = load_scenario(SMALL, sets)
    nodes, edges = topology(sc)
    doc = build_document({"scenario": sc.name}, [], [], {}, mermaid(sc), topology(sc))
    page = render_html(doc)
    root = _svg_of(page)
    drawn = [g.get("data-id") for g in root.iter("g") if g.get("class") == "node"]
    assert sorted(drawn) == sorted(n.id for n in nodes)  # one per enabled component, and the clients
    enabled = {"gateway": sc.gateway.enabled, "kafka": sc.kafka.enabled, "redis": sc.redis.enabled,
               "group_service": sc.group_service.enabled, "cassandra": sc.cassandra.enabled,
               "message_service": sc.message_service.enabled}
    assert {k for k, on in enabled.items() if on} | {"clients"} == set(drawn)
    arrows = sorted((g.get("data-source"), g.get("data-target")) for g in root.iter("g")
                    if g.get("class") == "edge")
    assert arrows == sorted((e.source, e.target) for e in edges)
    labels = "".join(t.text or "" for t in root.iter("tspan"))
    for e in edges:
        assert e.label in labels
    folded = re.search(r"<details[^>]*><summary>Mermaid source.*?</summary>"
                       r'<pre class="mermaid-source">(.*?)</pre></details>', page, flags=re.S)
    assert folded is not None and "flowchart LR" in folded[1]
    assert not re.search(r"https?://|<script", page)


def test_a_topology_without_mermaid_source_is_drawn_and_not_left_as_an_empty_fence() -> None:
    sc = load_scenario(SMALL)
    doc = build_document({"scenario": sc.name}, [], [], {}, None, topology(sc))
    assert "<details" not in render_html(doc) and len(list(_svg_of(render_html(doc)).iter("g"))) > 7
    md = render_md(doc, Path("."))
    assert "```mermaid" not in md and "The topology is drawn in report.html" in md


def test_svg_boxes_do_not_overlap_and_keep_the_request_flow_order() -> None:
    from sim.diagram import layout

    sc = load_scenario(SCENARIOS / "messaging-1m.yaml")
    nodes, edges = topology(sc)
    boxes = {b.node.id: b for b in layout(nodes, edges)}
    flow = ["clients", "gateway", "message_service", "cassandra", "group_service"]
    assert [boxes[k].y for k in flow] == sorted(boxes[k].y for k in flow)
    middle = {k: b.y + b.height / 2 for k, b in boxes.items()}
    assert middle["redis"] == middle["cassandra"] == middle["kafka"]  # the stores side by side
    assert abs(boxes["group_service"].x - boxes["kafka"].x) < 1  # consumers under Kafka
    items = list(boxes.values())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            apart_x = abs(a.x - b.x) >= (a.width + b.width) / 2
            apart_y = a.bottom <= b.y or b.bottom <= a.y
            assert apart_x or apart_y, (a.node.id, b.node.id)


def test_svg_escapes_scenario_text() -> None:
    from sim.diagram import Edge, Node, svg

    text = svg([Node("a", "rect", ('x"><script>alert(1)</script>', "1 & 2")),
                Node("b", "cylinder", ("B",))], [Edge("a", "b", "<b>")], title="t<")
    root = ET.fromstring(text)
    assert "<script" not in text and "alert(1)" in "".join(root.itertext())


def test_cost_bars_keep_their_dollar_ticks_apart() -> None:
    """Half the 10-inch cost chart holds about six `$1,500`-wide labels; it used to draw nine."""
    from sim.report.charts import _cost_bars, _figure

    with _figure(10, 3) as fig:
        axes = fig.subplots(1, 2)
        _cost_bars(axes[0], {"cassandra": 3359.0, "redis": 700.0, "gateway": 280.0, "group_service": 140.0},
                   "by component", "#4c78a8")
        _cost_bars(axes[1], {"compute": 4000.0, "storage": 464.0}, "by kind", "#72b7b2")
        fig.canvas.draw()
        low, high = axes[0].get_xlim()
        assert len([t for t in axes[0].get_xticks() if low <= t <= high]) <= 6
