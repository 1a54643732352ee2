"""A scenario's knobs for the web page, and the page's knob values back into a scenario.

A knob is a `--set` path (`redis.shards`, `components.cache.memory_gb_per_shard`,
`policies.client->gateway.timeout_ms`) with its current value, or one of three special paths:
`fault` (a fault to inject, turned into a `faults:` entry), `replications` (independent runs, 1..5)
and the run settings, which are plain scenario fields (`duration_s`, `warmup_s`, `sample`, `seed`).
Values go through sim.loading exactly as `capsim run --set path=value` would, so a bad value gets
the CLI's one line. `merged_yaml` writes the scenario with the overrides applied: `capsim run` of
that file reproduces the web run for the same seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.errors import ScenarioError
from sim.loading import load_scenario, merged_raw
from sim.scenario import Scenario

CONSISTENCY = ["ONE", "TWO", "THREE", "QUORUM", "ALL"]
FAULTS = ["none", "crash one Cassandra node", "Redis shard loss", "zone outage", "load spike x2"]
MAX_REPLICATIONS = 5
# keys that name a file on the server: never set from the page (nothing a user sends picks a path)
PATH_KEYS = frozenset({"extends", "file", "catalog", "base_dir"})
SPECIAL = ("fault", "replications")


@dataclass(frozen=True)
class Knob:
    path: str
    label: str
    group: str  # load | fleet | consistency | cache | fan-out | policy | fault | run
    type: str  # int | float | choice
    value: Any
    min: float | None = None
    max: float | None = None
    choices: list[Any] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.type != "choice":
            out.pop("choices")
        else:
            out.pop("min")
            out.pop("max")
        return out


@dataclass(frozen=True)
class RunSettings:
    """What a run request's overrides come to: `--set` items (the fault's included) and replications."""

    sets: list[str]
    replications: int
    fault: str = "none"


def _count_field(spec: Any) -> str:
    return next(a for a in ("instances", "nodes", "shards", "brokers") if hasattr(spec, a))


def _sections(sc: Scenario) -> list[tuple[str, str, Any]]:
    """(path prefix, name, section) for every enabled fleet."""
    if sc.is_design:
        return [(f"components.{name}", name, spec) for name, spec in sc.components.items()]
    return [(name, name, getattr(sc, name)) for name, enabled, _, _ in sc.fleets() if enabled]


def _kind(sc: Scenario, name: str, spec: Any) -> str:
    if sc.is_design:
        return str(spec.kind)
    return {"gateway": "gateway", "message_service": "service", "group_service": "service"}.get(name, name)


def client_edge(sc: Scenario) -> str | None:
    """The edge from the clients to the first component they call (where a request's policy sits)."""
    if not sc.is_design:
        return "client->gateway" if sc.gateway.enabled else None
    for flow in sc.flows.values():
        for step in flow.steps:
            call = getattr(step, "call", None)
            if call:
                return f"client->{call.split('.')[0]}"
    return None


def _hi(value: float, floor: float) -> float:
    return float(max(floor, 4 * value))


def knobs_of(sc: Scenario) -> list[Knob]:
    """The knobs people trade off, with the scenario's current values (pure)."""
    out: list[Knob] = []
    if sc.is_design:
        for name, flow in sc.flows.items():
            if flow.rate_per_sec is not None:
                out.append(Knob(f"flows.{name}.rate_per_sec", f"{name} requests/s", "load", "float",
                                flow.rate_per_sec, 0, _hi(flow.rate_per_sec, 1000)))
    else:
        w = sc.workload
        out.append(Knob("workload.sends_per_sec", "sends/s", "load", "float", w.sends_per_sec, 0,
                        _hi(w.sends_per_sec, 1000)))
        out.append(Knob("workload.reads_per_sec", "reads/s", "load", "float", w.reads_per_sec, 0,
                        _hi(w.reads_per_sec, 1000)))
    for prefix, name, spec in _sections(sc):
        count = _count_field(spec)
        n = int(getattr(spec, count))
        out.append(Knob(f"{prefix}.{count}", f"{name} {count}", "fleet", "int", n, 1, int(_hi(n, 16))))
        if hasattr(spec, "workers"):
            out.append(Knob(f"{prefix}.workers", f"{name} workers", "fleet", "int", spec.workers, 1,
                            int(_hi(spec.workers, 16))))
        kind = _kind(sc, name, spec)
        if kind == "cassandra":
            for op in ("write", "read"):
                out.append(Knob(f"{prefix}.{op}_consistency", f"{name} {op} consistency", "consistency",
                                "choice", getattr(spec, f"{op}_consistency"), choices=CONSISTENCY))
        if kind == "redis":
            gb = float(spec.memory_gb_per_shard)
            out.append(Knob(f"{prefix}.memory_gb_per_shard", f"{name} memory GB per shard", "cache", "float",
                            gb, 0.01, _hi(gb, 64)))
    if not sc.is_design and sc.group_service.enabled:
        out.append(Knob("group_service.fan_out", "group fan-out", "fan-out", "choice",
                        sc.group_service.fan_out, choices=["write", "read"]))
    edge = client_edge(sc)
    if edge is not None:
        policy = sc.policies.get(edge)
        timeout = policy.timeout_ms if policy else None
        attempts = policy.retry.max_attempts if policy and policy.retry else 1
        out.append(Knob(f"policies.{edge}.timeout_ms", f"{edge} timeout ms (empty: none)", "policy", "float",
                        timeout, 1, 10_000))
        out.append(Knob(f"policies.{edge}.retry.max_attempts", f"{edge} attempts (1: no retries)", "policy",
                        "int", attempts, 1, 10))
    out.append(Knob("fault", "fault to inject", "fault", "choice", "none", choices=fault_choices(sc)))
    warm = sc.warmup_s if sc.warmup_s != "auto" else None
    out += [
        Knob("duration_s", "simulated seconds", "run", "float", sc.duration_s, 1, 3600),
        Knob("warmup_s", "warm-up seconds", "run", "float", warm, 0, 3600),
        Knob("sample", "sample fraction F", "run", "float", sc.sample, 0.001, 1),
        Knob("seed", "seed", "run", "int", sc.seed, 0, 2**31 - 1),
        Knob("replications", "replications (CIs from 2)", "run", "int", 1, 1, MAX_REPLICATIONS),
    ]
    return out


def _named(sc: Scenario, kind: str) -> str | None:
    """The first enabled fleet of `kind` (its section or component name)."""
    for _, name, spec in _sections(sc):
        if _kind(sc, name, spec) == kind:
            return name
    return None


def fault_choices(sc: Scenario) -> list[str]:
    """The fault knob's choices that this scenario has the fleets for."""
    has = {"crash one Cassandra node": _named(sc, "cassandra"), "Redis shard loss": _named(sc, "redis")}
    return [c for c in FAULTS if has.get(c, True)]


def fault_entry(sc: Scenario, choice: str) -> dict[str, Any] | None:
    """The `faults:` entry of a fault knob choice: it starts a third of the way into the measured
    time and lasts a third of it (pure)."""
    if choice == "none":
        return None
    warm = 0.0 if sc.warmup_s == "auto" else float(sc.warmup_s)
    third = max(sc.duration_s - warm, 0.0) / 3
    start, length = round(warm + third, 3), round(max(third, 0.001), 3)
    timing = {"start_s": start, "duration_s": length}
    if choice == "crash one Cassandra node":
        return {"kind": "crash", "component": _named(sc, "cassandra"), "count": 1, **timing}
    if choice == "Redis shard loss":
        return {"kind": "shard_loss", "component": _named(sc, "redis"), "count": 1, **timing}
    if choice == "zone outage":
        return {"kind": "zone_outage", "zone": 0, **timing}
    return {"kind": "load_spike", "factor": 2, **timing}


def _text(value: Any) -> str:
    """A knob value as `--set` text: strings as typed, numbers and booleans as YAML."""
    return value if isinstance(value, str) else json.dumps(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def run_settings(sc: Scenario, overrides: Any) -> RunSettings:
    """The page's `{path: value}` as `--set` items and replications. A knob left at its current value
    is not set (the downloaded YAML stays the scenario's own); a path that names a file, a value that
    is not a number, text, boolean or null, or a fault the scenario cannot have: one line."""
    if not isinstance(overrides, dict):
        raise ScenarioError("overrides", "allowed: a mapping of --set paths to values")
    current = {k.path: k.value for k in knobs_of(sc)}
    sets: list[str] = []
    reps, fault = 1, "none"
    for path, value in overrides.items():
        if not isinstance(path, str) or not path.strip() or len(path) > 200:
            raise ScenarioError("overrides", f"{str(path)[:40]!r}: allowed: a dotted --set path")
        if PATH_KEYS & {part.strip() for part in path.split(".")}:
            raise ScenarioError(f"overrides.{path}", "names a file on the server; allowed: the knobs' "
                                                     "paths (no extends, file, catalog or base_dir)")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ScenarioError(f"overrides.{path}", "allowed: a number, text, true/false or null")
        if path == "replications":
            reps = _replications(value)
        elif path == "fault":
            if value not in fault_choices(sc):
                raise ScenarioError("fault", f"got {value!r}; allowed: {', '.join(fault_choices(sc))}")
            fault = str(value)
        elif path in current and (value is None or value == "" or _same(value, current[path])):
            continue  # unchanged, or an optional knob left empty
        else:
            sets.append(f"{path}={'' if value is None else _text(value)}")
    return RunSettings(sets, reps, fault)


def _replications(value: Any) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or not 1 <= int(value) <= MAX_REPLICATIONS:
        raise ScenarioError("replications", f"got {value!r}; allowed: a whole number 1 to {MAX_REPLICATIONS}")
    return int(value)


def with_fault(path: Path, settings: RunSettings) -> tuple[Scenario, list[str]]:
    """Load `path` with the settings' `--set` items and, if a fault is chosen, a `faults:` item that
    keeps the scenario's own faults and adds it; return the scenario and every item applied."""
    sc = load_scenario(path, settings.sets)
    entry = fault_entry(sc, settings.fault)
    if entry is None:
        return sc, list(settings.sets)
    faults = [f.model_dump(mode="json", exclude_none=True) for f in sc.faults] + [entry]
    sets = [*settings.sets, f"faults={json.dumps(faults)}"]
    return load_scenario(path, sets, origins=[*(f"--set {s}" for s in settings.sets), "fault"]), sets


def merged_yaml(path: Path, sets: list[str], header: str = "") -> str:
    """The scenario at `path` (its `extends:` bases merged in) with `sets` applied, as YAML that
    loads to the same scenario from any folder."""
    raw, _ = merged_raw(path, sets, absolute=True)
    body = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=110)
    return (header + body) if header else body


def upload_problem(raw: Any, source: str = "upload.yaml") -> ScenarioError | None:
    """Why an uploaded mapping may not be loaded on the server: it names a file there (`extends:`, an
    empirical distribution's `file:`, a pricing catalog by path). None if it names none."""
    if not isinstance(raw, dict):
        return None
    if "extends" in raw:
        return ScenarioError(f"{source}: extends", "an uploaded scenario cannot extend a file on the server; "
                                                   "allowed: a self-contained scenario (paste the base's "
                                                   "sections in)")
    catalog = (raw.get("pricing") or {}).get("catalog") if isinstance(raw.get("pricing"), dict) else None
    is_path = isinstance(catalog, str) and (any(c in catalog for c in "/\\")
                                            or catalog.endswith((".yaml", ".yml")))
    if is_path:
        return ScenarioError(f"{source}: pricing.catalog", "an uploaded scenario cannot read a catalog file "
                                                           "on the server; allowed: a shipped catalog name "
                                                           "(e.g. aws-us-east-1)")
    found = _file_key(raw, ())
    if found is not None:
        return ScenarioError(f"{source}: {found}", "an uploaded scenario cannot read a file on the "
                                                   "server; allowed: a parametric distribution (lognormal, "
                                                   "gamma, ...)")
    return None


def _file_key(raw: Any, loc: tuple[str, ...]) -> str | None:
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in ("file", "base_dir"):
                return ".".join((*loc, str(key)))
            found = _file_key(value, (*loc, str(key)))
            if found is not None:
                return found
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            found = _file_key(value, (*loc, f"[{i}]"))
            if found is not None:
                return found
    return None
