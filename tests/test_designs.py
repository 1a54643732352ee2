"""The shipped designs (scenarios/designs/) and the design form's bad input.

Every shipped design loads, compiles to its own flows, names only its own flows in its SLOs, cites
its sources, and keeps every fleet's per-instance load in its default cell (Kafka aside: its floor
is the replication factor). A bad reference in a design fails through the CLI with one line that
names the field's path, exit code 2, and no traceback, before anything is simulated.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import cli
from sim.loading import load_scenario
from sim.sampling import faithful, simulated_count
from sim.system.compile import system_of
from sim.system.model import CacheLookup, Produce, walk

ROOT = Path(__file__).parent.parent
DESIGNS = sorted((ROOT / "scenarios" / "designs").glob("*.yaml"))
CAPSIM = Path(sys.executable).parent / "capsim"

# A small design as a user writes it: bare `on:` keys (YAML 1.1 reads `on` as true).
TINY = dedent("""\
    name: tiny-shortener
    duration_s: 5
    warmup_s: 1
    keys: {link: {count: 1_000_000, zipf_s: 1.0, value_bytes: {dist: deterministic, value: 500}}}
    components:
      edge: {kind: gateway, instances: 4, workers: 8, service_ms: {dist: lognormal, mean: 0.3, p99: 2}}
      api: {kind: service, instances: 4, workers: 8,
            ops: {resolve: {dist: exponential, mean: 0.2}, shorten: {dist: exponential, mean: 0.5}}}
      cache: {kind: redis, shards: 2, memory_gb_per_shard: 1}
      links: {kind: cassandra, nodes: 6, replication_factor: 3}
      bus: {kind: kafka, brokers: 3, partitions: 6}
      archiver: {kind: service, instances: 2, workers: 2, ops: {archive: {dist: exponential, mean: 0.3}}}
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
          - produce: {on: bus, then: archive}
      archive:
        key: link
        consumer: {on: archiver, op: archive}
        steps:
          - call: links.write
""")


@pytest.fixture(autouse=True)
def _no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("bad input reached the simulator")

    monkeypatch.setattr(cli, "simulate", refuse)


# -- the shipped designs ----------------------------------------------------------------------------
def test_the_three_designs_ship() -> None:
    assert {p.stem for p in DESIGNS} >= {"url-shortener", "news-feed", "ride-hailing"}


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_design_loads_as_a_design(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.is_design
    system = system_of(sc)
    assert system.preset is None
    assert system.client_flows(), "a design needs at least one flow clients start"
    # every messaging section is off: the design's components are the only fleets
    assert [name for name, *_ in sc.fleets()] == list(sc.components)
    assert not any(getattr(sc, s).enabled for s in ("gateway", "cassandra", "redis", "kafka"))


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_design_slos_name_its_own_flows(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.slo, f"{path.name} declares no SLO"
    flows = set(sc.flows)
    for slo in sc.slo:
        section, _, rest = slo.metric.partition(".")
        assert section in ("latency_ms", "availability"), slo.metric
        named = rest.split(".")[0]
        assert named in flows | {"overall"}, f"{slo.metric} names no flow of {path.name} ({sorted(flows)})"
    assert any(s.metric.startswith("latency_ms.") for s in sc.slo)
    assert any(s.metric.startswith("availability.") for s in sc.slo)


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_design_opens_with_its_sources(path: Path) -> None:
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert "SOURCE NUMBERS" in text and "SLOs" in text, f"{path.name}: the opening comment names its sources"
    assert "ASSUMPTION" in text, f"{path.name}: say which figures are assumptions"


# The cell each design's opening comment offers (each runs at full scale by default)
CELLS = {"news-feed": 0.03125, "ride-hailing": 0.05, "url-shortener": 0.125}


@pytest.mark.parametrize("path", DESIGNS, ids=lambda p: p.stem)
def test_design_cell_keeps_each_instance_load(path: Path) -> None:
    """The cell a design offers simulates F of every fleet, so each simulated instance carries the
    full design's per-instance load (Kafka excepted: the cell keeps RF brokers, which the run warns
    of)."""
    default = load_scenario(path).sample
    assert default in (1.0, CELLS[path.stem]), "a design runs at full scale or in the cell it offers"
    assert f"--sample {CELLS[path.stem]:g}" in path.read_text() or default == CELLS[path.stem]
    sc = load_scenario(path, [f"sample={CELLS[path.stem]}"])
    for name, comp in system_of(sc).components.items():
        floor = comp.spec.replication_factor if comp.kind in ("cassandra", "kafka") else 1
        n = comp.instances
        factor = sc.sample * n / simulated_count(n, sc.sample, floor)
        if comp.kind == "kafka":
            assert factor <= 1, name
            partitions = comp.spec.partitions * sc.sample
            assert partitions == int(partitions) >= 1, f"{name}: {comp.spec.partitions} partitions at F"
        else:
            assert faithful(factor), f"{path.name}: {name} carries {factor:.3g}x its load in the cell"


def test_designs_use_every_step_kind() -> None:
    """Between them the shipped designs show each step kind, named joins and a triggered flow."""
    kinds: set[str] = set()
    named_join = triggered = False
    for path in DESIGNS:
        system = system_of(load_scenario(path))
        for flow in system.flows.values():
            triggered |= flow.triggered
            for step in walk(flow.steps):
                kinds.add(type(step).__name__)
                if type(step).__name__ == "Parallel" and not all(step.awaited):  # type: ignore[union-attr]
                    named_join = True
    assert kinds >= {"Call", "Parallel", "FanOut", "CacheLookup", "Produce"}
    assert named_join and triggered


# -- the design form -------------------------------------------------------------------------------
def test_bare_on_keys_load(tmp_path: Path) -> None:
    """`cache: {on: cache}`, `produce: {on: bus}` and `consumer: {on: archiver}` as users write them:
    YAML 1.1 reads the bare key `on` as the boolean true, which the schema takes as `on`."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    system = system_of(load_scenario(path))
    lookup = system.flows["resolve"].steps[2]
    assert isinstance(lookup, CacheLookup) and lookup.component == "cache"
    produce = system.flows["shorten"].steps[3]
    assert isinstance(produce, Produce) and (produce.component, produce.then) == ("bus", "archive")
    consumer = system.flows["archive"].consumer
    assert consumer is not None and (consumer.component, consumer.op) == ("archiver", "archive")
    assert system.flows["archive"].source == "bus"


def _tiny() -> dict[str, Any]:
    return yaml.safe_load(TINY.replace("{on:", "{'on':"))


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _flows(d: dict[str, Any]) -> dict[str, Any]:
    return d["flows"]  # type: ignore[no-any-return]


def _cache_on_unknown(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["steps"][2]["cache"]["on"] = "memcache"


def _cache_on_cassandra(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["steps"][2]["cache"]["on"] = "links"


def _produce_into_rated_flow(d: dict[str, Any]) -> None:
    _flows(d)["shorten"]["steps"][3]["produce"]["then"] = "resolve"


def _produce_into_unknown_flow(d: dict[str, Any]) -> None:
    _flows(d)["shorten"]["steps"][3]["produce"]["then"] = "archve"


def _consumer_op_unknown(d: dict[str, Any]) -> None:
    _flows(d)["archive"]["consumer"]["op"] = "compress"


def _consumer_on_redis(d: dict[str, Any]) -> None:
    _flows(d)["archive"]["consumer"]["on"] = "cache"


def _join_unknown_step(d: dict[str, Any]) -> None:
    _flows(d)["shorten"]["steps"][2]["parallel"]["join"] = ["links", "db"]


def _join_too_many(d: dict[str, Any]) -> None:
    _flows(d)["shorten"]["steps"][2]["parallel"]["join"] = 3


def _service_op_unknown(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["steps"][1]["call"] = "api.redirect"


def _cassandra_op_unknown(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["steps"][2]["cache"]["miss"][0]["call"] = "links.scan"


def _key_space_unknown(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["key"] = "url"


def _fan_out_key_unknown(d: dict[str, Any]) -> None:
    _flows(d)["resolve"]["steps"].append(
        {"fan_out": {"members": {"dist": "deterministic", "value": 3}, "key": "user",
                     "steps": [{"call": "cache.get"}]}})


def _triggered_flow_without_producer(d: dict[str, Any]) -> None:
    del _flows(d)["shorten"]["steps"][3]


def _flows_in_a_loop(d: dict[str, Any]) -> None:
    d["components"]["bus2"] = {"kind": "kafka", "brokers": 3, "partitions": 6}
    _flows(d)["archive"]["steps"].append({"produce": {"on": "bus2", "then": "audit"}})
    _flows(d)["audit"] = {"key": "link", "consumer": {"on": "archiver", "op": "archive"},
                          "steps": [{"produce": {"on": "bus", "then": "archive"}}]}
    del _flows(d)["shorten"]["steps"][3]


def _policy_edge_unknown(d: dict[str, Any]) -> None:
    d["policies"] = {"api->database": {"timeout_ms": 50}}


BAD = [
    (_cache_on_unknown, "flows.resolve.steps[2].cache.on", "allowed: redis components (cache)"),
    (_cache_on_cassandra, "flows.resolve.steps[2].cache.on", "cassandra component 'links'"),
    (_produce_into_rated_flow, "flows.shorten.steps[3].produce.then", "flow resolve has rate_per_sec"),
    (_produce_into_unknown_flow, "flows.shorten.steps[3].produce.then", "allowed: archive, resolve, shorten"),
    (_consumer_op_unknown, "flows.archive.consumer.op", "no operation 'compress'; allowed: archive"),
    (_consumer_on_redis, "flows.archive.consumer.on", "allowed: a service component (api, archiver)"),
    (_join_unknown_step, "flows.shorten.steps[2].parallel.join", "no step named db; allowed: links, cache"),
    (_join_too_many, "flows.shorten.steps[2].parallel.join", "got 3; allowed: 1..2"),
    (_service_op_unknown, "flows.resolve.steps[1].call", "no operation 'redirect'; allowed: resolve"),
    (_cassandra_op_unknown, "flows.resolve.steps[2].cache.miss[0].call", "links.read or links.write"),
    (_key_space_unknown, "flows.resolve.key", "no key space 'url'; allowed: link"),
    (_fan_out_key_unknown, "flows.resolve.steps[3].fan_out.key", "no key space 'user'"),
    (_triggered_flow_without_producer, "flows.archive", "no flow produces into it"),
    (_flows_in_a_loop, "flows.archive", "in a loop"),
    (_policy_edge_unknown, "policies", "'api->database'"),
]


@pytest.mark.parametrize(("mutate", "field_path", "says"), BAD, ids=[b[0].__name__.strip("_") for b in BAD])
def test_bad_reference_is_one_line_naming_its_path(tmp_path: Path, mutate: Any, field_path: str,
                                                   says: str) -> None:
    data = copy.deepcopy(_tiny())
    mutate(data)
    path = _write(tmp_path, data)
    result = CliRunner().invoke(cli.app, ["run", str(path)])
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}"), lines[0]
    assert f" {field_path}: " in lines[0], lines[0]
    assert says in lines[0], lines[0]


def test_bad_reference_through_the_installed_command(tmp_path: Path) -> None:
    """The same, end to end: the `capsim` executable, a separate process."""
    data = copy.deepcopy(_tiny())
    _cache_on_unknown(data)
    path = _write(tmp_path, data)
    proc = subprocess.run([CAPSIM, "run", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "flows.resolve.steps[2].cache.on: " in lines[0], proc.stderr
