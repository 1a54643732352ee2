"""The web app's JSON API (sim/web), through FastAPI's TestClient: designs, scenario loading and
knobs, one-line errors, the run lifecycle in a child process, cancel, the queue bound, the work
budget, the downloaded YAML reproducing the run, and comparing runs."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from sim import load_scenario, simulate
from sim.experiments.stats import mean_interval
from sim.jsonsafe import json_safe
from sim.web.app import create_app
from sim.web.compare import compare_runs, welch_interval

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

# a gateway in front of nothing: a run is a few thousand requests, seconds of wall time in a child
TINY = """\
name: tiny-web
seed: 3
duration_s: 6
warmup_s: 1
network: {hop_ms: 0.1}
workload: {users: 1000, conversations: 1000, sends_per_sec: 3000, reads_per_sec: 0}
gateway: {instances: 2, workers: 2, service_ms: {dist: exponential, mean: 0.5}}
message_service: {enabled: false}
group_service: {enabled: false}
cassandra: {enabled: false}
redis: {enabled: false}
kafka: {enabled: false}
slo:
  - {name: send p99 < 50 ms, metric: latency_ms.send.p99, max: 50}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "runs", SCENARIOS)) as c:
        yield c


def _upload(client: TestClient, text: str = TINY) -> dict[str, Any]:
    r = client.post("/api/scenarios", json={"yaml": text})
    assert r.status_code == 200, r.text
    return r.json()


def _wait(client: TestClient, run_id: str,
          timeout_s: float = 120) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll a run until it ends; return its last state and every poll."""
    polls = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.get(f"/api/runs/{run_id}").json()
        polls.append(state)
        if state["status"] in ("done", "failed", "cancelled"):
            return state, polls
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end in {timeout_s} s: {polls[-1]['status']}")


def _one_line_error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error"} and "\n" not in body["error"] and body["error"]
    return str(body["error"])


def test_designs_lists_every_shipped_scenario_messaging_first(client: TestClient) -> None:
    designs = client.get("/api/designs").json()
    ids = [d["id"] for d in designs]
    assert ids[0] == "messaging-1m"
    shipped = {p.stem for p in SCENARIOS.glob("*.yaml")} | {f"designs/{p.stem}" for p in
                                                            (SCENARIOS / "designs").glob("*.yaml")}
    assert set(ids) == shipped
    short = next(d for d in designs if d["id"] == "designs/url-shortener")
    assert short["path"] == "scenarios/designs/url-shortener.yaml" and short["name"] == "url-shortener"


def test_scenario_load_gives_flows_components_diagram_and_knobs(client: TestClient) -> None:
    r = client.post("/api/scenarios", json={"design": "interview-small"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["name"] == "interview-small"
    assert [f["name"] for f in view["flows"]] == ["send", "read", "delivery"]
    assert next(f for f in view["flows"] if f["name"] == "delivery")["triggered"] is True
    redis = next(c for c in view["components"] if c["name"] == "redis")
    assert redis["instances"] == 2 and redis["kind"] == "redis"
    assert view["diagram_svg"].startswith("<svg") and "components:" in view["describe"]
    knobs = {k["path"]: k for k in view["knobs"]}
    assert knobs["redis.shards"]["value"] == 2 and knobs["redis.shards"]["group"] == "fleet"
    assert knobs["cassandra.write_consistency"]["choices"] == ["ONE", "TWO", "THREE", "QUORUM", "ALL"]
    assert knobs["group_service.fan_out"]["value"] == "write"
    assert knobs["redis.memory_gb_per_shard"]["group"] == "cache"
    assert "policies.client->gateway.timeout_ms" in knobs
    assert knobs["fault"]["choices"] == ["none", "crash one Cassandra node", "Redis shard loss",
                                         "zone outage", "load spike x2"]
    assert {"duration_s", "warmup_s", "sample", "seed", "replications"} <= set(knobs)
    design = client.post("/api/scenarios", json={"design": "designs/url-shortener"}).json()
    paths = {k["path"] for k in design["knobs"]}
    assert {"flows.resolve.rate_per_sec", "components.cache.shards", "components.links.read_consistency",
            "components.cache.memory_gb_per_shard", "policies.client->edge.timeout_ms"} <= paths
    assert _one_line_error(client.post("/api/scenarios", json={"design": "../../etc/passwd"}), 422)


def test_bad_upload_gets_the_clis_one_line_and_the_server_keeps_running(client: TestClient,
                                                                       tmp_path: Path) -> None:
    bad = TINY.replace("instances: 2", "instances: 0")
    line = _one_line_error(client.post("/api/scenarios", json={"yaml": bad}), 422)
    path = tmp_path / "upload.yaml"
    path.write_text(bad)
    with pytest.raises(ValueError) as cli:
        load_scenario(path)
    assert line == str(cli.value).replace(str(path), "upload.yaml")
    assert "gateway.instances" in line
    syntax = _one_line_error(client.post("/api/scenarios", json={"yaml": "name: [unclosed\n"}), 422)
    assert syntax.startswith("upload.yaml:") and "YAML syntax error" in syntax
    extends = _one_line_error(client.post("/api/scenarios", json={"yaml": "extends: ../../x.yaml\n"}), 422)
    assert "extends" in extends and "upload" in extends
    catalog = TINY + "pricing: {catalog: /etc/passwd.yaml}\n"
    assert "catalog" in _one_line_error(client.post("/api/scenarios", json={"yaml": catalog}), 422)
    big = "# " + "x" * 1_000_001 + "\n" + TINY
    assert "more than" in _one_line_error(client.post("/api/scenarios", json={"yaml": big}), 413)
    assert _upload(client)["name"] == "tiny-web"  # still serving


def test_bad_knob_value_gets_the_clis_one_line(client: TestClient) -> None:
    sid = client.post("/api/scenarios", json={"design": "interview-small"}).json()["scenario_id"]
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": {"redis.shards": "abc"}})
    line = _one_line_error(r, 422)
    with pytest.raises(ValueError) as cli:
        load_scenario(SCENARIOS / "interview-small.yaml", ["redis.shards=abc"])
    assert line == str(cli.value)
    assert "file" in _one_line_error(client.post("/api/runs", json={
        "scenario_id": sid, "overrides": {"pricing.catalog": "/etc/passwd"}}), 422)
    assert "replications" in _one_line_error(client.post("/api/runs", json={
        "scenario_id": sid, "overrides": {"replications": 9}}), 422)
    assert "fault" in _one_line_error(client.post("/api/runs", json={
        "scenario_id": sid, "overrides": {"fault": "meteor"}}), 422)
    assert client.get("/api/runs").json() == []  # nothing queued by a refused request


def test_over_budget_needs_confirm_and_past_memory_is_refused(client: TestClient) -> None:
    sid = client.post("/api/scenarios", json={"design": "interview-small"}).json()["scenario_id"]
    big = {"duration_s": 36_000, "workload.reads_per_sec": 300_000}  # ~6e10 visits: over the calendar's 5e10
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": big})
    assert "exceeds the budget" in _one_line_error(r, 409) and r.json()["needs_confirm"] is True
    huge = {"workload.users": 10_000_000_000, "workload.conversations": 10_000_000_000}
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": huge, "confirm": True})
    assert "memory" in _one_line_error(r, 422)
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": big, "confirm": True})
    assert r.status_code == 202, r.text  # confirmed: runs with force; cancelled at once here
    run_id = r.json()["run_id"]
    assert "--force" in client.get(f"/api/runs/{run_id}/scenario.yaml").text.splitlines()[1]
    assert client.post(f"/api/runs/{run_id}/cancel").json() == {"status": "cancelled"}


def _without_wall(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _without_wall(v) for k, v in tree.items() if k != "wall_seconds"}
    if isinstance(tree, list):
        return [_without_wall(v) for v in tree]
    return tree


@pytest.mark.slow
def test_run_lifecycle_live_rows_verdict_files_and_yaml_round_trip(client: TestClient,
                                                                   tmp_path: Path) -> None:
    # 300 simulated s: on the calendar engine (what the page runs it on) ~1 s of run, long enough
    # to watch rows arrive while it runs (its 6 s would be over between two polls)
    sid = _upload(client, TINY.replace("duration_s: 6", "duration_s: 300"))["scenario_id"]
    overrides = {"gateway.workers": 3, "seed": 11, "duration_s": 300}  # duration_s unchanged: not set
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": overrides})
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    state, polls = _wait(client, run_id)
    assert state["status"] == "done", state["error"]
    statuses = [p["status"] for p in polls]
    assert statuses[0] in ("queued", "running") and "running" in statuses
    live = [p for p in polls if p["status"] == "running" and p["rows"]]
    assert live, "no timeseries row arrived before the run was done"
    assert 0 < live[0]["progress"]["t"] < 300 and live[0]["progress"]["duration"] == 300
    assert len(state["rows"]) == 300 and state["next"] == 300
    assert set(state["rows"][0]) >= {"t_s", "send_p50_ms", "send_p99_ms", "send_offered_per_sec",
                                     "send_succeeded_per_sec", "send_failed_per_sec"}
    assert client.get(f"/api/runs/{run_id}?since=4").json()["rows"] == state["rows"][4:]
    assert state["rows"][: len(live[0]["rows"])] == live[0]["rows"]  # live rows are the final ones
    verdict = state["verdict"]
    assert verdict["slos"][0]["name"] == "send p99 < 50 ms" and verdict["slos"][0]["met"] is True
    assert verdict["findings"] and verdict["findings"][0].startswith("Bottleneck")
    assert verdict["cost"]["monthly_usd"] == pytest.approx(state["summary"]["cost"]["total_monthly_usd"])
    assert len(state["utilization"]["gateway"]) == 2
    folder = tmp_path / "runs" / run_id
    assert {"summary.json", "timeseries.csv", "latency.csv", "components.csv", "report.md", "report.html",
            "scenario.yaml"} <= {p.name for p in folder.iterdir()}
    report = client.get(f"/api/runs/{run_id}/report.html")
    assert report.status_code == 200 and report.text == (folder / "report.html").read_text()
    assert client.get("/api/runs").json()[0]["run_id"] == run_id
    # the downloaded YAML, run by the Python API (as `capsim run` does), gives the same summary
    text = client.get(f"/api/runs/{run_id}/scenario.yaml").text
    assert yaml.safe_load(text)["gateway"]["workers"] == 3 and yaml.safe_load(text)["seed"] == 11
    engine = state["summary"]["engine"]
    assert engine == "calendar"  # what `capsim run` (auto) picks for it
    assert text.splitlines()[1] == f"# capsim run scenario.yaml --engine {engine} reproduces it"
    path = tmp_path / "downloaded.yaml"
    path.write_text(text)
    again = simulate(load_scenario(path), engine=engine)  # the engine the header names
    fresh = json.loads(json.dumps(json_safe(again.summary)))
    assert _without_wall(fresh) == _without_wall(state["summary"])
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409  # already done


@pytest.mark.slow
def test_cancel_queue_bound_and_nothing_half_written(client: TestClient, tmp_path: Path) -> None:
    sid = _upload(client)["scenario_id"]
    long = {"duration_s": 3000}
    ids = []
    for _ in range(5):  # one runs, four wait
        r = client.post("/api/runs", json={"scenario_id": sid, "overrides": long})
        assert r.status_code == 202, r.text
        ids.append(r.json()["run_id"])
    assert "queue full" in _one_line_error(client.post("/api/runs", json={"scenario_id": sid,
                                                                           "overrides": long}), 429)
    deadline = time.monotonic() + 60
    while client.get(f"/api/runs/{ids[0]}").json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    for run_id in ids[1:]:  # queued: dropped
        assert client.post(f"/api/runs/{run_id}/cancel").json() == {"status": "cancelled"}
    deadline = time.monotonic() + 60
    while not client.get(f"/api/runs/{ids[0]}").json()["rows"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the child is simulating
    assert client.post(f"/api/runs/{ids[0]}/cancel").json() == {"status": "cancelled"}
    states = [client.get(f"/api/runs/{i}").json()["status"] for i in ids]
    assert states == ["cancelled"] * 5
    runs_dir = tmp_path / "runs"
    assert [p.name for p in runs_dir.iterdir() if p.name != ".uploads"] == []  # no folder, no staging
    r = client.post("/api/runs", json={"scenario_id": sid, "overrides": {"duration_s": 3000}})
    assert r.status_code == 202  # room again
    client.post(f"/api/runs/{r.json()['run_id']}/cancel")


@pytest.mark.slow
def test_compare_two_replicated_runs_has_ci_of_the_difference(client: TestClient) -> None:
    sid = _upload(client)["scenario_id"]
    ids = []
    for seed, workers in ((5, 2), (6, 1)):
        r = client.post("/api/runs", json={"scenario_id": sid, "overrides": {
            "replications": 2, "seed": seed, "gateway.workers": workers, "duration_s": 3}})
        assert r.status_code == 202, r.text
        ids.append(r.json()["run_id"])
    summaries = []
    for run_id in ids:
        state, _ = _wait(client, run_id)
        assert state["status"] == "done", state["error"]
        assert state["summary"]["replications"]["count"] == 2
        summaries.append(state["summary"])
    rows = {row["figure"]: row for row in client.get(f"/api/compare?a={ids[0]}&b={ids[1]}").json()["rows"]}
    p99 = rows["latency_ms.send.p99"]
    assert p99["diff"] == pytest.approx(p99["b"] - p99["a"]) and p99["b"] > p99["a"]  # fewer workers: slower
    lo, hi = p99["ci95"]
    assert lo < hi
    assert rows["cost.total_monthly_usd"]["diff"] == pytest.approx(0)
    assert _one_line_error(client.get(f"/api/compare?a={ids[0]}&b=nope"), 404)


def test_welch_interval_matches_the_textbook_formula() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [10.0, 12.0, 11.0, 13.0], [14.0, 15.5, 13.0]
    ia, ib = mean_interval(a), mean_interval(b)
    ta, tb = scipy_stats.t.ppf(0.975, len(a) - 1), scipy_stats.t.ppf(0.975, len(b) - 1)
    se = [(ia.high - ia.low) / 2 / ta, (ib.high - ib.low) / 2 / tb]
    lo, hi = welch_interval((ia.mean, se[0], len(a)), (ib.mean, se[1], len(b)))
    va, vb = scipy_stats.tvar(a) / len(a), scipy_stats.tvar(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = sum(b) / len(b) - sum(a) / len(a)
    assert (lo, hi) == pytest.approx((diff - half, diff + half), rel=1e-9)
    summary_a = {"latency_ms": {"send": {"p99": ia.mean}}, "replications": {"count": 4},
                 "ci95": {"latency_ms.send.p99": [ia.low, ia.high]}}
    summary_b = {"latency_ms": {"send": {"p99": ib.mean}}, "replications": {"count": 3},
                 "ci95": {"latency_ms.send.p99": [ib.low, ib.high]}}
    (row,) = [r for r in compare_runs(summary_a, summary_b) if r["figure"] == "latency_ms.send.p99"]
    assert row["ci95"] == pytest.approx([diff - half, diff + half], rel=1e-9)
    single = {"latency_ms": {"send": {"p99": 1.0}}}
    (row,) = [r for r in compare_runs(single, single) if r["figure"] == "latency_ms.send.p99"]
    assert row["ci95"] is None


def test_calendar_on_window_rows_are_the_timeseries(tmp_path: Path) -> None:
    """The calendar's live rows (what the web page draws while a run goes) are its timeseries rows,
    plus each instance's busy share of the window. A job's service counts in the window it arrives
    in, so over the measured windows the shares add up to the run's utilization but for the work in
    service at the two ends of the measured period: at most one residual service per server at
    each end (exponential, mean 0.5 ms: under 10 ms but with probability e^-20), against 5 s."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    rows: list[dict[str, float]] = []
    result = simulate(load_scenario(path), on_window=rows.append, engine="calendar")
    assert len(rows) == 6
    live = [row.pop("utilization") for row in rows]
    assert json_safe(rows) == json_safe(result.timeseries.to_dict("records"))
    warmup, duration = result.summary["warmup_seconds"], result.summary["sim_seconds"]
    measured = [u for u, row in zip(live, rows, strict=True) if row["t_s"] > warmup + 1e-9]
    figures = result.summary["components"]["gateway"]
    per_window = [sum(w["gateway"]) / len(w["gateway"]) for w in measured]
    assert len(live[-1]["gateway"]) == figures["simulated_instances"] == 2
    assert sum(per_window) / len(per_window) == pytest.approx(figures["utilization_mean"],
                                                              abs=2 * 0.010 / (duration - warmup))
    assert all(0.2 < u < 0.6 for w in live for u in w["gateway"])  # ~37.5% busy, warm-up included
    plain = simulate(load_scenario(path), engine="calendar").summary  # watching is read-only
    assert json_safe({**plain, "wall_seconds": 0}) == json_safe({**result.summary, "wall_seconds": 0})


def test_des_on_window_rows_are_the_timeseries(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("duration_s: 6", "duration_s: 3"))
    rows: list[dict[str, float]] = []
    result = simulate(load_scenario(path), on_window=rows.append, engine="des")  # the web app's engine
    assert len(rows) == 3
    live = [row.pop("utilization") for row in rows]  # the live view's extra: per-instance busy shares
    assert json_safe(rows) == json_safe(result.timeseries.to_dict("records"))
    # the windows after the warm-up cover the measured period: their mean is the run's utilization
    warmup = result.summary["warmup_seconds"]
    measured = [u for u, row in zip(live, rows, strict=True) if row["t_s"] > warmup + 1e-9]
    for component, figures in result.summary["components"].items():
        per_window = [sum(w[component]) / len(w[component]) for w in measured]
        assert sum(per_window) / len(per_window) == pytest.approx(figures["utilization_mean"], rel=1e-9)
        assert len(live[-1][component]) == figures["simulated_instances"]
    # watching is read-only: the same run without the hook has the same summary, bit for bit
    plain = simulate(load_scenario(path), engine="des").summary
    assert json_safe({**plain, "wall_seconds": 0}) == json_safe({**result.summary, "wall_seconds": 0})
