"""The web app's HTTP layer (FastAPI): the page, its static files, and the JSON API over sim.

Every error is `{"error": "<one line>"}`: a bad scenario or knob value gets the same line the CLI
prints (sim.loading), with the HTTP status the API contract gives (422, 409, 413, 429, 404). Runs
go to the run manager (sim/web/runs.py), which executes them in a child process; nothing here
blocks on a simulation. Nothing a user sends chooses a path: design ids map to the listed files,
uploads are written to a server-named file under `runs_dir/.uploads/`, run ids are server-made.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from sim.budget import check_budget
from sim.diagram import svg, topology
from sim.engines import ENGINES, choose
from sim.errors import ScenarioError
from sim.jsonsafe import json_safe
from sim.loading import MAX_YAML_BYTES, load_scenario
from sim.scenario import Scenario
from sim.system.compile import system_of
from sim.system.describe import describe
from sim.web.compare import compare_runs
from sim.web.knobs import knobs_of, merged_yaml, run_settings, upload_problem, with_fault
from sim.web.runs import QueueFull, RunManager

STATIC = Path(__file__).parent / "static"
UPLOAD_NAME = "upload.yaml"
KEEP_SCENARIOS = 100
# The web app runs each scenario on the engine `capsim run` picks for it (`auto`, sim.engines.choose):
# both engines' on_window rows carry the live heat map's per-instance utilization. The run's child
# (sim/web/runs.py) gets the engine by name, and the downloaded scenario.yaml's header names it, so
# that `capsim run` reproduces the web run.


def plotly_js() -> Path:
    """plotly.min.js as the installed plotly package ships it (the page needs no internet)."""
    spec = find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is not installed; pip install -e .")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@dataclass(frozen=True)
class Design:
    id: str
    name: str
    path: Path
    shown: str  # the path as listed (scenarios/...)
    description: str


@dataclass
class Loaded:
    scenario_id: str
    path: Path
    scenario: Scenario
    text: str
    upload: bool


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()), **extra}, status_code=status)


def list_designs(scenarios_dir: Path, default: Path | None = None) -> list[Design]:
    """Every scenarios/*.yaml and scenarios/designs/*.yaml that loads; messaging-1m (or the
    scenario `capsim serve` was given) first."""
    files = sorted(scenarios_dir.glob("*.yaml")) + sorted((scenarios_dir / "designs").glob("*.yaml"))
    out: list[Design] = []
    for path in files:
        rel = path.relative_to(scenarios_dir)
        try:
            sc = load_scenario(path)
        except ScenarioError:
            continue  # a broken file in the folder is not offered
        ident = rel.with_suffix("").as_posix()
        out.append(Design(ident, sc.name, path, f"{scenarios_dir.name}/{rel.as_posix()}", sc.description))
    out.sort(key=lambda d: d.id != "messaging-1m")
    if default is not None:
        resolved = default.resolve()
        match = next((d for d in out if d.path.resolve() == resolved), None)
        if match is None:
            sc = load_scenario(default)
            match = Design("default", sc.name, default, str(default), sc.description)
        out = [match, *(d for d in out if d is not match)]
    return out


def scenario_view(loaded: Loaded) -> dict[str, Any]:
    sc = loaded.scenario
    system = system_of(sc)
    nodes, edges = topology(sc)
    return {
        "scenario_id": loaded.scenario_id,
        "name": sc.name,
        "yaml": loaded.text,
        "flows": [{"name": f.name, "rate_per_sec": f.rate_per_sec, "triggered": f.triggered}
                  for f in system.flows.values()],
        "components": [{"name": c.name, "kind": c.kind, "instances": c.instances,
                        "workers": getattr(c.spec, "workers", None)} for c in system.components.values()],
        "describe": describe(system),
        "diagram_svg": svg(nodes, edges, sc.name),
        "knobs": [k.as_json() for k in knobs_of(sc)],
    }


def create_app(runs_dir: Path, scenarios_dir: Path, default_scenario: Path | None = None,
               manager: RunManager | None = None) -> FastAPI:
    """The app: `runs_dir` receives each finished run's folder; `scenarios_dir` holds the designs."""
    runs_dir, scenarios_dir = Path(runs_dir), Path(scenarios_dir)
    runs = manager or RunManager(runs_dir)
    uploads = runs.runs_dir / ".uploads"
    designs_cache: list[list[Design]] = []
    loaded: OrderedDict[str, Loaded] = OrderedDict()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        runs.shutdown()  # cancel what is queued, stop the running child

    app = FastAPI(title="capsim", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.runs = runs

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return error(422, f"{where}: {first.get('msg', 'bad request')}")

    def designs() -> list[Design]:
        if not designs_cache:
            designs_cache.append(list_designs(scenarios_dir, default_scenario))
        return designs_cache[0]

    def remember(item: Loaded) -> None:
        loaded[item.scenario_id] = item
        while len(loaded) > KEEP_SCENARIOS:
            _, old = loaded.popitem(last=False)
            if old.upload:
                shutil.rmtree(old.path.parent, ignore_errors=True)

    def load_upload(text: str, scenario_id: str) -> Loaded:
        size = len(text.encode("utf-8"))
        if size > MAX_YAML_BYTES:
            raise ScenarioError(UPLOAD_NAME, f"the upload is {size:,} bytes, more than {MAX_YAML_BYTES:,}; "
                                             "allowed: a scenario file (a few kB)")
        try:
            raw = yaml.safe_load(text) if size else None
        except yaml.YAMLError:
            raw = None  # sim.loading reports it, with the line
        problem = upload_problem(raw, UPLOAD_NAME)
        if problem is not None:
            raise problem
        folder = uploads / scenario_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / UPLOAD_NAME
        path.write_text(text, encoding="utf-8")
        try:
            sc = load_scenario(path)
        except ScenarioError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise ScenarioError("", str(exc).replace(str(path), UPLOAD_NAME)) from None
        return Loaded(scenario_id, path, sc, text, upload=True)

    @app.get("/", response_class=HTMLResponse)
    def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/plotly.min.js")
    def plotly() -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/designs")
    def api_designs() -> list[dict[str, str]]:
        return [{"id": d.id, "name": d.name, "path": d.shown, "description": d.description}
                for d in designs()]

    @app.post("/api/scenarios")
    async def api_scenarios(request: Request) -> Response:
        body = await _json_body(request, MAX_YAML_BYTES * 2)
        if isinstance(body, JSONResponse):
            return body
        scenario_id = secrets.token_hex(8)
        try:
            if isinstance(body.get("design"), str):
                design = next((d for d in designs() if d.id == body["design"]), None)
                if design is None:
                    ids = ", ".join(d.id for d in designs())
                    return error(422, f"design: unknown design {body['design'][:80]!r}; allowed: {ids}")
                item = Loaded(scenario_id, design.path, load_scenario(design.path),
                              design.path.read_text(encoding="utf-8"), upload=False)
            elif isinstance(body.get("yaml"), str):
                item = load_upload(body["yaml"], scenario_id)
            else:
                return error(422, 'body: allowed: {"design": id} or {"yaml": text}')
            view = scenario_view(item)
        except ScenarioError as exc:
            status = 413 if "more than" in str(exc) and "bytes" in str(exc) else 422
            return error(status, str(exc))
        remember(item)
        return JSONResponse(json_safe(view))

    @app.post("/api/runs")
    async def api_runs(request: Request) -> Response:
        body = await _json_body(request, 1_000_000)
        if isinstance(body, JSONResponse):
            return body
        item = loaded.get(str(body.get("scenario_id")))
        if item is None:
            return error(404, "scenario_id: unknown or expired scenario; allowed: an id from POST "
                              "/api/scenarios (load the design again)")
        try:
            settings = run_settings(item.scenario, body.get("overrides") or {})
            sc, sets = with_fault(item.path, settings)
            engine, _ = choose(sc)
            problems = ENGINES[engine].supports(sc)
            if problems:
                raise problems[0]
        except ScenarioError as exc:
            text = str(exc).replace(str(item.path), UPLOAD_NAME) if item.upload else str(exc)
            return error(422, text)
        force = False
        try:
            check_budget(sc, engine)
        except ScenarioError as exc:
            try:
                check_budget(sc, engine, force=True)
            except ScenarioError as hard:
                return error(422, str(hard))
            if body.get("confirm") is not True:
                return error(409, str(exc), needs_confirm=True)
            force = True
        options = (f" --replications {settings.replications}" if settings.replications > 1 else "") + (
            " --force" if force else "") + f" --engine {engine}"
        header = (f"# {sc.name}: the scenario of a capsim web run, knob values applied\n"
                  f"# capsim run scenario.yaml{options} reproduces it\n")
        text = merged_yaml(item.path, sets, header)
        overrides = body.get("overrides") or {}
        try:
            run_id = runs.submit(sc.name, overrides, text, settings.replications, force, engine)
        except QueueFull as exc:
            return error(429, str(exc))
        return JSONResponse({"run_id": run_id}, status_code=202)

    @app.get("/api/runs")
    def api_list() -> Response:
        return JSONResponse(json_safe(runs.listing()))

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str, since: int = 0) -> Response:
        run = runs.get(run_id)
        if run is None:
            return error(404, f"run {run_id[:40]!r}: no such run")
        since = max(0, since)
        folder = runs.folder(run_id) if run.status == "done" else None
        out = {
            "run_id": run.run_id, "status": run.status,
            "progress": {"t": run.t, "duration": run.duration},
            "rows": run.rows[since:], "next": len(run.rows), "error": run.error,
            "summary": _read(folder, "summary.json"), "verdict": _read(folder, "verdict.json"),
            # the measured period's per instance when done; while running, the last second's
            "utilization": _read(folder, "utilization.json") if folder else run.live_utilization,
            "utilization_live": folder is None and run.live_utilization is not None,
        }
        return JSONResponse(json_safe(out))

    @app.post("/api/runs/{run_id}/cancel")
    def api_cancel(run_id: str) -> Response:
        status = runs.cancel(run_id)
        if status is None:
            return error(404, f"run {run_id[:40]!r}: no such run")
        if status != "cancelled":
            return error(409, f"run {run_id}: already {status}; allowed: cancel a queued or running run")
        return JSONResponse({"status": "cancelled"})

    @app.get("/api/runs/{run_id}/scenario.yaml")
    def api_yaml(run_id: str) -> Response:
        run = runs.get(run_id)
        folder = runs.folder(run_id)
        if folder is not None:
            text = (folder / "scenario.yaml").read_text(encoding="utf-8")
        elif run is not None and run.job.scenario_yaml:
            text = run.job.scenario_yaml
        else:
            return error(404, f"run {run_id[:40]!r}: no such run")
        return PlainTextResponse(text, media_type="application/x-yaml",
                                 headers={"Content-Disposition": 'attachment; filename="scenario.yaml"'})

    @app.get("/api/runs/{run_id}/report.html")
    def api_report(run_id: str) -> Response:
        folder = runs.folder(run_id)
        if folder is None or not (folder / "report.html").is_file():
            return error(404, f"run {run_id[:40]!r}: no finished run with a report")
        return FileResponse(folder / "report.html", media_type="text/html")

    @app.get("/api/compare")
    def api_compare(a: str, b: str) -> Response:
        summaries = []
        for key in (a, b):
            folder = runs.folder(key)
            summary = _read(folder, "summary.json")
            if summary is None:
                return error(404, f"run {key[:40]!r}: no finished run; allowed: two done runs")
            summaries.append(summary)
        return JSONResponse(json_safe({"rows": compare_runs(summaries[0], summaries[1])}))

    return app


async def _json_body(request: Request, limit: int) -> dict[str, Any] | JSONResponse:
    data = await request.body()
    if len(data) > limit:
        return error(413, f"request body: {len(data):,} bytes, more than {limit:,}; allowed: a scenario of "
                          f"at most {MAX_YAML_BYTES:,} bytes")
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        return error(422, "request body: not JSON; allowed: a JSON object")
    if not isinstance(body, dict):
        return error(422, "request body: allowed: a JSON object")
    return body


def _read(folder: Path | None, name: str) -> Any:
    if folder is None or not (folder / name).is_file():
        return None
    return json.loads((folder / name).read_text(encoding="utf-8"))
