"""The web app's run manager: runs execute one at a time in a child process, off the request path.

A run request joins a queue (at most `MAX_WAITING` waiting behind the one running; more is refused
with QueueFull). A server thread starts each run in a child process (multiprocessing 'spawn') and
drains the child's messages (progress, each closed per-second timeseries row, done or the error)
from a multiprocessing queue into the run's state, which the API reads. The child writes what
`capsim run` writes (summary.json, the CSVs, report.md/html, the charts), plus scenario.yaml (the
merged scenario it ran), run.json, verdict.json and utilization.json, into a staging folder that
becomes `runs_dir/<run_id>/` only when complete (sim/run_folder.py). Cancelling a running run
terminates its child and removes the staging folder; a queued one is just dropped. Run ids are made
here, never from user text. At most `KEEP_IN_MEMORY` runs' state is held; older finished runs are
read back from their folders when asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import queue
import re
import secrets
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.jsonsafe import json_safe

MAX_WAITING = 4
KEEP_IN_MEMORY = 50
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
STATUSES = ("queued", "running", "done", "failed", "cancelled")


class QueueFull(Exception):
    """More runs asked for than the queue holds."""


@dataclass(frozen=True)
class Job:
    """What the child needs: everything plain data (it is pickled for the spawned process)."""

    run_id: str
    runs_dir: str
    name: str
    created: str
    overrides: dict[str, Any]
    scenario_yaml: str
    replications: int
    force: bool
    engine: str  # sim.engines' name of the engine that runs it (app.py picks it as `auto` would)


@dataclass
class Run:
    job: Job
    status: str = "queued"
    t: float = 0.0
    duration: float = 0.0
    rows: list[dict[str, float]] = field(default_factory=list)
    live_utilization: dict[str, list[float]] | None = None  # the last closed window's, per instance
    error: str | None = None
    cancel: bool = False

    @property
    def run_id(self) -> str:
        return self.job.run_id

    def listing(self) -> dict[str, Any]:
        j = self.job
        return {"run_id": j.run_id, "name": j.name, "status": self.status, "created": j.created,
                "overrides": j.overrides}


def new_run_id(now: dt.datetime | None = None) -> str:
    return f"{(now or dt.datetime.now()):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_child(job: Job, out: Any) -> None:
    """The child process: run the job's scenario and publish its folder; report over `out`."""
    try:
        _run(job, out)
    except Exception as exc:  # report every failure as one line; the staging folder is gone
        from sim.errors import ScenarioError

        text = str(exc) if isinstance(exc, ScenarioError) else f"{type(exc).__name__}: {exc}"
        out.put(("error", " ".join(text.split())))


def _run(job: Job, out: Any) -> None:
    from sim import load_scenario, simulate
    from sim.diagram import mermaid
    from sim.errors import ScenarioError
    from sim.report import write_report
    from sim.run_folder import fresh_folder
    from sim.sizing import size_plan
    from sim.web.verdict import utilization_of, verdict_of

    target = Path(job.runs_dir) / job.run_id
    with fresh_folder(target, explicit=True) as staged:
        path = staged.path / "scenario.yaml"
        path.write_text(job.scenario_yaml, encoding="utf-8")
        sc = load_scenario(path)
        out.put(("progress", 0.0, sc.duration_s))
        if job.replications > 1 or sc.warmup_s == "auto":
            from sim.experiments import LocalExecutor, replicate

            def tick(p: Any) -> None:
                share = p.runs_done / p.runs_total if p.runs_total else 0.0
                out.put(("progress", share * sc.duration_s, sc.duration_s))

            reps = job.replications if job.replications > 1 else None
            replicated = replicate(sc, reps, LocalExecutor(1), tick, job.engine, job.force)
            sc, result = replicated.scenario, replicated.result()
            for row in result.timeseries.to_dict("records"):
                out.put(("row", row))
        else:
            result = simulate(sc, progress=lambda t, d: out.put(("progress", t, d)), force=job.force,
                              on_window=lambda row: out.put(("row", row)), engine=job.engine)
        result.write(staged.path)
        try:
            warnings = size_plan(sc).warnings
        except ScenarioError:
            warnings = []
        write_report(result, staged.path, sc, size_warnings=warnings, diagram=mermaid(sc))
        _write_json(staged.path / "verdict.json", verdict_of(result.summary, sc, warnings))
        _write_json(staged.path / "utilization.json", utilization_of(result.components))
        _write_json(staged.path / "run.json", {"run_id": job.run_id, "name": job.name, "created": job.created,
                                               "overrides": job.overrides, "replications": job.replications})
    out.put(("progress", sc.duration_s, sc.duration_s))
    out.put(("done", str(staged.final)))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2) + "\n", encoding="utf-8")


class RunManager:
    """Queue, execute (one at a time, in a child process), cancel and look up runs."""

    def __init__(self, runs_dir: Path, child: Callable[[Job, Any], None] = run_child,
                 max_waiting: int = MAX_WAITING, keep: int = KEEP_IN_MEMORY) -> None:
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.child = child
        self.max_waiting = max_waiting
        self.keep = keep
        self.ctx = mp.get_context("spawn")
        self.runs: OrderedDict[str, Run] = OrderedDict()
        self.waiting: deque[Run] = deque()
        self.lock = threading.Condition()
        self.stopped = False
        self.current: Run | None = None
        self.thread = threading.Thread(target=self._loop, name="capsim-runs", daemon=True)
        self.thread.start()

    # -- requests -----------------------------------------------------------------------------
    def submit(self, name: str, overrides: dict[str, Any], scenario_yaml: str, replications: int,
               force: bool, engine: str) -> str:
        with self.lock:
            active = len(self.waiting) + (self.current is not None)
            if active > self.max_waiting:
                raise QueueFull(f"queue full: {active} runs queued or running (one runs at a time, at most "
                                f"{self.max_waiting} wait); try again when one finishes, or cancel one")
            run_id = new_run_id()
            while run_id in self.runs or (self.runs_dir / run_id).exists():
                run_id = new_run_id()
            job = Job(run_id, str(self.runs_dir), name, dt.datetime.now().isoformat(timespec="seconds"),
                      dict(overrides), scenario_yaml, replications, force, engine)
            run = Run(job)
            self.runs[run_id] = run
            self.waiting.append(run)
            self._evict()
            self.lock.notify_all()
            return run_id

    def cancel(self, run_id: str) -> str | None:
        """Cancel a queued or running run; its status afterwards, or None if unknown."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                return None if self.folder(run_id) is None else "done"
            if run.status == "queued":
                self.waiting.remove(run)
                run.status = "cancelled"
            elif run.status == "running":
                run.cancel = True
                while run.status == "running":  # the server thread terminates the child
                    self.lock.wait(timeout=0.1)
            return run.status

    def get(self, run_id: str) -> Run | None:
        with self.lock:
            run = self.runs.get(run_id)
        return run if run is not None else self._from_disk(run_id)

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            out = {r.run_id: r.listing() for r in self.runs.values()}
        for folder in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            if folder.name not in out and RUN_ID.match(folder.name) and (folder / "run.json").is_file():
                meta = _read_json(folder / "run.json") or {}
                out[folder.name] = {"run_id": folder.name, "name": meta.get("name"), "status": "done",
                                    "created": meta.get("created"), "overrides": meta.get("overrides") or {}}
        return sorted(out.values(), key=lambda r: (r["created"] or "", r["run_id"]), reverse=True)

    def folder(self, run_id: str) -> Path | None:
        """The finished run's folder (only a server-made id names one), or None."""
        if not RUN_ID.match(run_id):
            return None
        path = self.runs_dir / run_id
        return path if (path / "run.json").is_file() else None

    def shutdown(self) -> None:
        with self.lock:
            self.stopped = True
            for run in self.waiting:
                run.status = "cancelled"
            self.waiting.clear()
            if self.current is not None:
                self.current.cancel = True
            self.lock.notify_all()
        self.thread.join(timeout=10)

    # -- the server thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.stopped:
                    self.lock.wait()
                if self.stopped:
                    return
                run = self.current = self.waiting.popleft()
                run.status = "running"
            try:
                self._execute(run)
            except Exception as exc:  # the manager must outlive any one run
                with self.lock:
                    run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                with self.lock:
                    self.current = None
                    self.lock.notify_all()

    def _execute(self, run: Run) -> None:
        messages = self.ctx.Queue()
        proc = self.ctx.Process(target=self.child, args=(run.job, messages), daemon=True,
                                name=f"capsim-run-{run.run_id}")
        proc.start()
        finished = False
        while True:
            if run.cancel:
                proc.terminate()
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
                self._remove(run.run_id)
                with self.lock:
                    run.status = "cancelled"
                    self.lock.notify_all()
                break
            try:
                message = messages.get(timeout=0.1)
            except queue.Empty:
                if proc.is_alive():
                    continue
                finished = self._drain(run, messages)
                break
            if self._handle(run, message):
                finished = True
                proc.join(timeout=30)
                break
        messages.close()
        messages.join_thread()
        if run.status == "running":
            with self.lock:
                if not finished:
                    run.status = "failed"
                    run.error = run.error or f"the run's process exited with code {proc.exitcode}"
                self.lock.notify_all()
            self._remove_staging(run.run_id)

    def _drain(self, run: Run, messages: Any) -> bool:
        while True:
            try:
                message = messages.get(timeout=0.2)
            except queue.Empty:
                return False
            if self._handle(run, message):
                return True

    def _handle(self, run: Run, message: tuple[Any, ...]) -> bool:
        """Apply one message from the child; True when the run is over (done or failed)."""
        kind = message[0]
        with self.lock:
            if kind == "progress":
                run.t, run.duration = max(run.t, float(message[1])), float(message[2])
            elif kind == "row":
                row = dict(message[1])
                utilization = row.pop("utilization", None)  # only the latest is kept: memory stays bounded
                if utilization is not None:
                    run.live_utilization = utilization
                run.rows.append(row)
                # a closed window means the run has reached its end, whichever message came first
                run.t = max(run.t, float(row.get("t_s", 0.0)))
            elif kind == "done":
                run.status = "done"
                return True
            elif kind == "error":
                run.status, run.error = "failed", str(message[1])
                return True
        return False

    def _remove(self, run_id: str) -> None:
        """Nothing half-written: the staging folder, and the folder if the run published it meanwhile."""
        self._remove_staging(run_id)
        folder = self.runs_dir / run_id
        if RUN_ID.match(run_id) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

    def _remove_staging(self, run_id: str) -> None:
        for staging in self.runs_dir.glob(f".{run_id}.partial-*"):
            shutil.rmtree(staging, ignore_errors=True)

    def _evict(self) -> None:
        """Keep at most `keep` runs' state (the oldest finished ones go; their folders stay)."""
        while len(self.runs) > self.keep:
            old = next((r for r in self.runs.values() if r.status not in ("queued", "running")), None)
            if old is None:
                return
            del self.runs[old.run_id]

    def _from_disk(self, run_id: str) -> Run | None:
        folder = self.folder(run_id)
        if folder is None:
            return None
        meta = _read_json(folder / "run.json") or {}
        job = Job(run_id, str(self.runs_dir), str(meta.get("name")), str(meta.get("created")),
                  meta.get("overrides") or {}, "", int(meta.get("replications") or 1), False)
        rows: list[dict[str, float]] = []
        if (folder / "timeseries.csv").is_file():
            rows = pd.read_csv(folder / "timeseries.csv").to_dict("records")
        duration = float(rows[-1]["t_s"]) if rows else 0.0
        return Run(job, status="done", t=duration, duration=duration, rows=rows)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
