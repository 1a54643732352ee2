"""The web app in a real headless Chromium (Debian's chromium and chromium-driver, which .ci/run
installs): `capsim serve` runs in a subprocess on a free port with a temporary runs folder, and
Selenium drives the page as a user does (the DOM contract of issue 13).

Runs are tiny: interview-small with knobs duration 3 s (300 s for the run whose live chart is watched:
the calendar engine, which the page runs it on, takes a few seconds for them), warm-up 0.5 s and
sample 0.25. The tests share one server and one
browser; the module's runs are made once by module fixtures and each test asserts one behaviour of
them.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from web_browser_helpers import (
    ROOT,
    Server,
    browser,
    click_run,
    design_id,
    diagram_nodes,
    diagram_svg,
    knob,
    missing_browser,
    num_attr,
    pick_design,
    pick_for_compare,
    set_knob,
    status,
    text_of,
    upload,
    upload_scenario,
    wait_for,
    wait_loaded,
    wait_status,
)

SMALL = "scenarios/interview-small.yaml"
DEFAULT = "scenarios/messaging-1m.yaml"
TINY = {"duration_s": 3, "warmup_s": 0.5, "sample": 0.25}  # ~1 s per run, most of it the build
RUN_TIMEOUT_S = 180.0  # a tiny run on a busy 2-core machine, with the child process's imports
FINISHED = {"done", "failed", "cancelled"}


@dataclass
class Session:
    server: Server
    driver: Any
    tmp: Path


@dataclass
class Observed:
    """A run started from the page, and what the page showed while it went."""

    run_id: str
    final_status: str
    # (#run-status, #chart-latency data-points, #progress data-t) sampled every ~0.1 s until it ended
    samples: list[tuple[str, float | None, float | None]] = field(default_factory=list)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    if (why := missing_browser()) is not None:
        pytest.fail(why)  # not a skip: CI installs both, so a missing browser is a broken set-up
    tmp = tmp_path_factory.mktemp("web-browser")
    server = Server(tmp / "runs")
    try:
        with browser() as driver:
            driver.get(server.base + "/")
            yield Session(server, driver, tmp)
    finally:
        server.stop()


def small_design(s: Session) -> None:
    """Load interview-small (2 Redis shards, where messaging-1m has 400) and make the run tiny."""
    pick_design(s.driver, design_id(s.server, SMALL), {"redis.shards": 2})
    for path, value in TINY.items():
        set_knob(s.driver, path, value)


def run_and_watch(s: Session, timeout: float = RUN_TIMEOUT_S) -> Observed:
    """Press Run and sample the page until the run ends."""
    run_id = click_run(s.driver, s.server)
    seen = Observed(run_id, "")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = status(s.driver)
        seen.samples.append((now, num_attr(s.driver, "chart-latency", "data-points"),
                             num_attr(s.driver, "progress", "data-t")))
        if now in FINISHED:
            seen.final_status = now
            return seen
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end in {timeout:.0f} s; last page state {seen.samples[-1:]}, "
                         f"API: {s.server.get(f'/api/runs/{run_id}')['status']}")


def run_view(s: Session, run_id: str) -> dict[str, Any]:
    return s.server.get(f"/api/runs/{run_id}?since=0")


@pytest.fixture(scope="module")
def shards_run(session: Session) -> Observed:
    """interview-small with the Redis shard count turned from 2 down to 1 in the page, run."""
    small_design(session)
    set_knob(session.driver, "redis.shards", 1)
    set_knob(session.driver, "duration_s", 300)  # 300 one-second windows (~5 s): the chart grows
    seen = run_and_watch(session)
    assert seen.final_status == "done", (seen.final_status, run_view(session, seen.run_id)["error"])
    return seen


SLO_NAMES = ("read p99 under 100 ms", "send p99 under 1 microsecond")


@pytest.fixture(scope="module")
def slo_run(session: Session) -> Observed:
    """An uploaded scenario (interview-small with two SLOs, one impossible, and seed 11), run."""
    text = (ROOT / SMALL).read_text().replace("name: interview-small", "name: browser-slo")
    text = text.replace("\nseed: 1\n", "\nseed: 11\n")
    text += ("\nslo:\n"
             f"  - {{name: {SLO_NAMES[0]}, metric: latency_ms.read.p99, max: 100}}\n"
             f"  - {{name: {SLO_NAMES[1]}, metric: latency_ms.send.p99, max: 0.001}}\n")
    file = session.tmp / "browser-slo.yaml"
    file.write_text(text)
    upload_scenario(session.driver, file, {"seed": 11})
    assert text_of(session.driver, "upload-error") == ""
    for path, value in TINY.items():
        set_knob(session.driver, path, value)
    seen = run_and_watch(session)
    assert seen.final_status == "done", (seen.final_status, run_view(session, seen.run_id)["error"])
    return seen


def test_default_design_draws_its_components_and_flows(session: Session) -> None:
    from sim import load_scenario
    from sim.system.compile import system_of

    designs = session.server.get("/api/designs")
    assert designs[0]["path"] == DEFAULT
    system = system_of(load_scenario(ROOT / DEFAULT))
    d = session.driver
    wait_loaded(d, {"redis.shards": system.components["redis"].instances}, "the default design")
    assert d.find_element(By.ID, "design-select").get_attribute("value") == designs[0]["id"]
    drawn = diagram_nodes(d)
    assert set(system.components) <= set(drawn), f"#diagram draws {drawn}, not {list(system.components)}"
    # the current fleet sizes are drawn: messaging-1m's gateway is 800 instances
    gateway = d.find_element(By.CSS_SELECTOR, '#diagram svg g.node[data-id="gateway"]')
    assert f"{system.components['gateway'].instances} x" in gateway.text.replace(",", "")
    flows = d.find_element(By.ID, "flows").text
    for name in ("send", "read", "delivery"):
        assert re.search(rf"\b{name}\b", flows), f"#flows does not list {name}: {flows!r}"


def test_bad_upload_shows_one_line_naming_the_field_and_the_page_keeps_working(session: Session) -> None:
    bad = session.tmp / "bad-shards.yaml"
    bad.write_text((ROOT / SMALL).read_text().replace("shards: 2", "shards: -1"))
    cli = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "validate", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 2
    # the CLI's line without its "error: FILE:LINE: " prefix: the field path and what is allowed
    reason = cli.stderr.strip().split(": ", 2)[-1]
    assert reason.startswith("redis.shards: got -1; allowed:"), cli.stderr

    d = session.driver
    upload(d, bad)
    shown = wait_for(d, lambda dr: text_of(dr, "upload-error"), 30, "#upload-error after a bad upload")
    assert "\n" not in shown, f"#upload-error is not one line: {shown!r}"
    assert reason in shown, f"#upload-error {shown!r} lacks the CLI's {reason!r}"
    # the server is up and the page still loads a design, clearing the error
    assert session.server.get("/api/designs")
    pick_design(d, design_id(session.server, SMALL), {"redis.shards": 2})
    assert text_of(d, "upload-error") == ""
    assert diagram_svg(d) is not None and "redis" in diagram_nodes(d)


def test_redis_shard_knob_reaches_the_run(session: Session, shards_run: Observed) -> None:
    runs = {r["run_id"]: r for r in session.server.get("/api/runs")}
    overrides = runs[shards_run.run_id]["overrides"]
    assert float(overrides["redis.shards"]) == 1, overrides
    summary = run_view(session, shards_run.run_id)["summary"]
    assert summary["components"]["redis"]["instances"] == 1  # interview-small has 2
    assert summary["cost"]["instances"]["redis"] == 1


def test_latency_chart_grows_while_the_run_is_running(shards_run: Observed) -> None:
    seen = f"(#run-status, data-points, data-t) sampled: {shards_run.samples}"
    running = [(p, t) for st, p, t in shards_run.samples if st == "running" and p is not None and p > 0]
    points = [p for p, _ in running]
    assert len(set(points)) >= 2, f"#chart-latency data-points took < 2 values while running; {seen}"
    assert points == sorted(points), f"data-points went down while running; {seen}"
    times = [t for _, t in running if t is not None]
    assert times and max(times) > min(times), f"#progress data-t did not advance while running; {seen}"
    # and the page kept every point: the final count is at least the last one seen while running
    final = [p for st, p, _ in shards_run.samples if st == "done" and p is not None]
    assert final and final[-1] >= points[-1], seen


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json as JSON sees it, without the one figure that depends on the machine."""
    from sim.jsonsafe import json_safe

    out = json.loads(json.dumps(json_safe(summary)))
    out.pop("wall_seconds", None)
    return out


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in (_differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}"))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _differences(x, y, f"{path}[{i}]")]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return [] if same else [f"{path}: {a!r} != {b!r}"]


def test_downloaded_yaml_reproduces_the_runs_summary(session: Session, shards_run: Observed) -> None:
    from sim import load_scenario

    d = session.driver
    link = wait_for(d, lambda dr: (h := dr.find_element(By.ID, "download-yaml").get_attribute("href"))
                    and shards_run.run_id in h and h, 30, "#download-yaml to link the run")
    code, text = session.server.fetch(link)
    assert code == 200
    file = session.tmp / "downloaded.yaml"
    file.write_text(text)
    sc = load_scenario(file)
    assert (sc.redis.shards, sc.duration_s, sc.sample) == (1, 300, 0.25)  # the knobs travel in the YAML
    served = run_view(session, shards_run.run_id)["summary"]
    out = session.tmp / "cli-run"
    cli = subprocess.run([str(Path(sys.executable).with_name("capsim")), "run", str(file), "--engine",
                          served["engine"], "--quiet", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    local = json.loads((out / "summary.json").read_text())  # what `capsim run` of the download wrote
    diffs = _differences(_comparable(served), _comparable(local))
    assert not diffs, f"{len(diffs)} figures differ, e.g. {diffs[:5]}"

    report = wait_for(d, lambda dr: dr.find_element(By.ID, "download-report").get_attribute("href"), 10,
                      "#download-report to have a link")
    code, html = session.server.fetch(report)
    assert code == 200 and "<html" in html.lower() and "interview-small" in html


def test_verdict_shows_slos_and_cost_when_done(session: Session, slo_run: Observed) -> None:
    verdict = run_view(session, slo_run.run_id)["verdict"]
    assert [v["name"] for v in verdict["slos"]] == list(SLO_NAMES)
    assert verdict["slos"][1]["met"] is False  # a 1 microsecond send p99 cannot be met
    d = session.driver
    rows = wait_for(d, lambda dr: dr.find_elements(By.CSS_SELECTOR, "#slos tbody tr"), 10, "#slos rows")
    assert len(rows) == 2, [r.text for r in rows]
    for row, slo in zip(rows, verdict["slos"], strict=True):
        assert slo["name"] in row.text
        assert ("missed" in row.text) is (not slo["met"]), (row.text, slo)
    cost = d.find_element(By.ID, "cost").text
    assert "per month" in cost and "per million" in cost, cost
    dollars = [float(x.replace(",", "")) for x in re.findall(r"\$([\d,]+(?:\.\d+)?)", cost)]
    monthly = verdict["cost"]["monthly_usd"]
    assert monthly > 0 and any(abs(x - monthly) <= 1 for x in dollars), (cost, monthly)


def test_compare_two_runs_fills_the_table(session: Session, shards_run: Observed, slo_run: Observed) -> None:
    d = session.driver
    for run_id in (shards_run.run_id, slo_run.run_id):
        pick_for_compare(d, run_id)
    # the list is redrawn as runs change (ticks kept): read the ticked boxes in one script, not
    # element by element (an element found before a redraw is stale after it)
    ticked = d.execute_script("return Array.from(document.querySelectorAll("
                              "'#runs-list input.compare-pick:checked')).map(e => e.dataset.runId)")
    assert set(ticked) == {shards_run.run_id, slo_run.run_id}, ticked
    d.find_element(By.ID, "compare-button").click()
    rows = wait_for(d, lambda dr: dr.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr"), 20,
                    "#compare-table rows")
    api = session.server.get(f"/api/compare?a={shards_run.run_id}&b={slo_run.run_id}")["rows"]
    assert api, "GET /api/compare has no rows"
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == [r["figure"] for r in api]
    assert all(len(r.find_elements(By.CSS_SELECTOR, "td")) == 5 for r in rows)


def test_cancel_stops_a_running_run(session: Session) -> None:
    d = session.driver
    small_design(session)
    set_knob(d, "duration_s", 3600)  # an hour of simulated time (~1 min): far longer than the test waits
    run_id = click_run(d, session.server)
    wait_for(d, lambda dr: status(dr) == "running" and (num_attr(dr, "progress", "data-t") or 0) > 0,
             RUN_TIMEOUT_S, "the run to be running and advancing")
    cancel = d.find_element(By.ID, "cancel-button")
    assert cancel.is_enabled()
    cancel.click()
    wait_status(d, {"cancelled"}, 30)
    view = run_view(session, run_id)
    assert view["status"] == "cancelled" and view["summary"] is None
    assert view["progress"]["t"] < 3600
    time.sleep(2)  # it stays cancelled: the child was stopped, not left to finish
    assert run_view(session, run_id)["status"] == "cancelled"
    assert status(d) == "cancelled"
    assert not list(session.server.runs_dir.glob(f"**/{run_id}/summary.json"))
    assert not knob(d, "redis.shards").get_attribute("disabled")  # the page is usable again

