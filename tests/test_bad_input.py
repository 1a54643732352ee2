"""Bad input fails well: one line on stderr naming the field (and YAML line), what was wrong and
what is allowed; exit code 2; never a traceback, never a silently wrong run.

Cases run in-process through typer's CliRunner (fast). `run` cases patch out the simulator, which
both keeps them fast and proves that validation happens before anything is simulated.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

import cli
from sim import ScenarioError, load_scenario

ROOT = Path(__file__).parent.parent
CAPSIM = Path(sys.executable).parent / "capsim"

# A small valid scenario (M/M/1 through the gateway only) for the option and override cases.
BASE = dedent("""\
    name: base
    duration_s: 10
    warmup_s: 1
    network: {hop_ms: 0}
    workload: {users: 1000, conversations: 1000, sends_per_sec: 800, reads_per_sec: 0}
    gateway: {instances: 1, workers: 1, service_ms: {dist: exponential, mean: 1.0}}
    message_service: {enabled: false}
    group_service: {enabled: false}
    cassandra: {enabled: false}
    redis: {enabled: false}
    kafka: {enabled: false}
""")


@pytest.fixture(autouse=True)
def _no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("bad input reached the simulator")

    monkeypatch.setattr(cli, "simulate", refuse)


def invoke_fails(args: list[str]) -> str:
    """Run the CLI, check it failed well, and return its one stderr line."""
    result = CliRunner().invoke(cli.app, [str(a) for a in args])
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(dedent(text))
    return path


# (case id, {file name: content}; the first file is the one given to the command, expected fragments)
FILE_CASES = [
    ("yaml-syntax-flow", {"s.yaml": "name: t\nworkload:\n  users: [1, 2\n  sends_per_sec: 3\n"},
     ["s.yaml:4:", "YAML syntax error", "expected ',' or ']'", "while parsing a flow sequence (line 3)"]),
    ("yaml-syntax-indent", {"s.yaml": "name: t\nworkload:\n  users: 1\n   bad: 2\n"},
     ["s.yaml:4:", "YAML syntax error", "mapping values are not allowed", "indentation"]),
    ("yaml-tab", {"s.yaml": "name: t\n\tworkload: 1\n"}, ["s.yaml:2:", "YAML syntax error", "not tabs"]),
    ("unknown-top-level-key", {"s.yaml": "name: t\nduraton_s: 3\n"},
     ["s.yaml:2: duraton_s: unknown key", "did you mean 'duration_s'?", "allowed: name,"]),
    ("unknown-nested-key", {"s.yaml": "name: t\ncassandra:\n  node: 3\n"},
     ["s.yaml:3: cassandra.node: unknown key", "did you mean 'nodes'?", "allowed:", "replication_factor"]),
    ("unknown-section", {"s.yaml": "name: t\ncasandra:\n  nodes: 3\n"},
     ["s.yaml:2: casandra: unknown key", "did you mean 'cassandra'?"]),
    ("unknown-dist-param",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: lognormal, mean: 1, p95: 3}\n"},
     ["s.yaml:3: gateway.service_ms.p95: unknown key", "did you mean 'p99'?",
      "allowed: dist, mean, p99, sigma"]),
    ("wrong-type", {"s.yaml": "name: t\ngateway:\n  instances: many\n"},
     ["s.yaml:3: gateway.instances", "got 'many'", "allowed: a whole number, 1 <= instances <= 1,000,000"]),
    ("fractional-int", {"s.yaml": "name: t\ngateway:\n  instances: 2.5\n"},
     ["gateway.instances", "got 2.5", "a whole number"]),
    ("bool-for-number", {"s.yaml": "name: t\ngateway:\n  instances: true\n"},
     ["s.yaml:3: gateway.instances", "got true", "a whole number"]),
    ("section-not-mapping", {"s.yaml": "name: t\ngateway: 3\n"},
     ["s.yaml:2: gateway", "got 3", "allowed: a mapping with keys", "instances"]),
    ("section-empty", {"s.yaml": "name: t\ngateway:\n"},
     ["s.yaml:2: gateway", "is empty", "leave gateway out for its default"]),
    ("negative-rate", {"s.yaml": "name: t\nworkload:\n  sends_per_sec: -5\n"},
     ["s.yaml:3: workload.sends_per_sec", "got -5", "allowed: sends_per_sec >= 0"]),
    ("infinite-rate", {"s.yaml": "name: t\nworkload:\n  sends_per_sec: .inf\n"},
     ["s.yaml:3: workload.sends_per_sec", "got inf", "finite"]),
    ("cassandra-rf-above-nodes", {"s.yaml": "name: t\ncassandra:\n  nodes: 2\n  replication_factor: 3\n"},
     ["s.yaml:4: cassandra.replication_factor", "3 exceeds nodes (2)", "allowed: 1..2"]),
    ("kafka-rf-above-brokers", {"s.yaml": "name: t\nkafka:\n  brokers: 2\n  replication_factor: 3\n"},
     ["s.yaml:4: kafka.replication_factor", "3 exceeds brokers (2)", "allowed: 1..2"]),
    ("consistency-above-rf",
     {"s.yaml": "name: t\ncassandra: {replication_factor: 2, write_consistency: THREE}\n"},
     ["cassandra.write_consistency", "THREE needs 3 replicas", "replication_factor is 2"]),
    ("bad-literal", {"s.yaml": "name: t\ncassandra:\n  write_consistency: quorum\n"},
     ["s.yaml:3: cassandra.write_consistency", "got 'quorum'", "'QUORUM'"]),
    ("warmup-not-below-duration", {"s.yaml": "name: t\nduration_s: 10\nwarmup_s: 10\n"},
     ["s.yaml:3: warmup_s", "must be below duration_s (10.0)"]),
    ("unknown-dist", {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: weibull, mean: 1}\n"},
     ["s.yaml:3: gateway.service_ms", "unknown dist 'weibull'", "allowed: deterministic, empirical"]),
    ("misspelt-dist", {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: lognorm, mean: 1}\n"},
     ["gateway.service_ms", "did you mean 'lognormal'?"]),
    ("dist-without-dist", {"s.yaml": "name: t\ngateway:\n  service_ms: {mean: 1}\n"},
     ["gateway.service_ms", "no 'dist:'", "a number (deterministic) or a mapping with dist:"]),
    ("lognormal-p99-below-mean",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: lognormal, mean: 2, p99: 1}\n"},
     ["s.yaml:3: gateway.service_ms.p99", "must be above mean (2)", "allowed for a lognormal: 2 < p99"]),
    ("lognormal-p99-too-far",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: lognormal, mean: 1, p99: 100}\n"},
     ["gateway.service_ms.p99", "100x mean", "at most 15x"]),
    ("lognormal-p99-and-sigma",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: lognormal, mean: 1, p99: 2, sigma: 1}\n"},
     ["gateway.service_ms", "one of p99 or sigma, not both"]),
    ("dist-min-above-max",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: exponential, mean: 1, min: 5, max: 3}\n"},
     ["gateway.service_ms.min", "5 must not exceed max (3)", "allowed: min <= max"]),
    ("empirical-file-missing",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: empirical, file: nope.csv}\n"},
     ["s.yaml:3: gateway.service_ms.file", "nope.csv' does not exist", "relative to the scenario file"]),
    ("empirical-bad-value",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: empirical, file: d.csv}\n", "d.csv": "ms\n1\nx\n"},
     ["gateway.service_ms.file", "line 3 has 'x'", "non-negative numbers"]),
    ("empirical-bad-column",
     {"s.yaml": "name: t\ngateway:\n  service_ms: {dist: empirical, file: d.csv, column: lat}\n",
      "d.csv": "ms\n1\n"},
     ["gateway.service_ms.column", "'lat' is not in the header", "allowed: ms"]),
    ("ack-after-disabled",
     {"s.yaml": "name: t\nredis:\n  enabled: false\nmessage_service:\n  ack_after: [cassandra, redis]\n"},
     ["s.yaml:5: message_service.ack_after", "redis, which is disabled", "allowed: ['cassandra', 'kafka']"]),
    ("duplicate-key", {"s.yaml": "name: t\nduration_s: 10\nduration_s: 20\n"},
     ["s.yaml:3: duration_s", "duplicate key (first given at line 2)"]),
    ("yaml-list", {"s.yaml": "- workload\n- gateway\n"},
     ["s.yaml", "got a YAML list", "must be a mapping of sections"]),
    ("yaml-scalar", {"s.yaml": "hello\n"}, ["s.yaml", "single value", "must be a mapping"]),
    ("empty-file", {"s.yaml": ""}, ["s.yaml", "the scenario is empty", "workload:"]),
    ("comment-only-file", {"s.yaml": "# nothing here\n"}, ["s.yaml", "the scenario is empty"]),
    ("not-utf8", {"s.yaml": b"\xff\xfe name: t\n"}, ["s.yaml", "not UTF-8 text", "YAML text file"]),
    ("extends-missing", {"s.yaml": "extends: nothere.yaml\nname: t\n"},
     ["s.yaml:1: extends", "base scenario", "nothere.yaml' not found", "relative to"]),
    ("extends-not-a-path", {"s.yaml": "extends: 3\nname: t\n"},
     ["s.yaml:1: extends", "got 3", "a path to a base scenario file"]),
    ("extends-cycle", {"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "extends: a.yaml\nname: b\n"},
     ["b.yaml:1: extends", "forms a cycle (a.yaml -> b.yaml -> a.yaml)"]),
    ("extends-self", {"a.yaml": "extends: a.yaml\nname: a\n"}, ["a.yaml:1: extends", "forms a cycle"]),
    # non-finite numbers inside lists and mappings, like top-level ones (issue 10)
    ("inf-in-fault", {"s.yaml": "name: t\nfaults:\n  - {kind: load_spike, factor: .inf, start_s: 1, "
                                "duration_s: 2}\n"},
     ["s.yaml:3: faults.0.factor", "got inf", "allowed: a finite number"]),
    ("nan-in-price", {"s.yaml": "name: t\npricing:\n  usd_per_hour: {m6i.xlarge: .nan}\n"},
     ["pricing.usd_per_hour.m6i.xlarge", "got nan", "finite"]),
    ("overflow-in-slo", {"s.yaml": "name: t\nslo:\n  - {metric: latency_ms.read.p99, max: 1e999}\n"},
     ["s.yaml:3: slo.0.max", "got inf", "finite"]),
    ("inf-in-policy", {"s.yaml": "name: t\npolicies:\n  client->gateway: {timeout_ms: .inf}\n"},
     ["policies.client->gateway.timeout_ms", "got inf", "finite"]),
    # counts absurd on their face
    ("nodes-absurd", {"s.yaml": "name: t\ncassandra:\n  nodes: 100000000\n"},
     ["s.yaml:3: cassandra.nodes", "got 100000000", "1 <= nodes <= 1,000,000"]),
    ("users-absurd", {"s.yaml": "name: t\nworkload:\n  users: 1000000000000\n"},
     ["s.yaml:3: workload.users", "1 <= users <= 10,000,000,000"]),
    # the scenario's name is a folder under reports/: never a path
    ("name-escapes", {"s.yaml": "name: ../../tmp/x\n"},
     ["s.yaml:1: name", "got '../../tmp/x'", "letters, digits, '-', '_' and '.'"]),
    ("name-absolute", {"s.yaml": "name: /etc\n"}, ["s.yaml:1: name", "got '/etc'"]),
    ("name-hidden", {"s.yaml": "name: .hidden\n"}, ["s.yaml:1: name", "not starting with '.'"]),
    # a YAML alias bomb ("billion laughs") is refused before it is expanded
    ("alias-bomb", {"s.yaml": "name: t\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))},
     ["s.yaml: the YAML document expands to", "through its aliases, more than 200,000"]),
    ("too-many-aliases", {"s.yaml": "name: t\nv: &v 1\nw: [" + ", ".join(["*v"] * 1001) + "]\n"},
     ["s.yaml: the YAML document has more than 1,000 aliases"]),
    ("recursive-alias", {"s.yaml": "name: t\nv: &v [1, *v]\n"}, ["s.yaml: the YAML document expands to"]),
    ("document-too-big", {"s.yaml": "name: t\n" + "# padding\n" * 110_000},
     ["s.yaml: the YAML document is 1,100,008 bytes, more than 1,000,000"]),
    ("error-in-base-names-the-base",
     {"child.yaml": "extends: sub/base.yaml\nworkload: {users: 5}\n",
      "sub/base.yaml": "name: base\ncassandra:\n  nodes: 2\n  replication_factor: 3\n"},
     ["base.yaml:4: cassandra.replication_factor", "3 exceeds nodes (2)"]),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_scenario_file(tmp_path: Path, command: str, files: dict, expected: list[str]) -> None:
    paths = [write(tmp_path, name, text) for name, text in files.items()]
    line = invoke_fails([command, paths[0]])
    for fragment in expected:
        assert fragment in line, f"{fragment!r} not in {line!r}"


# (case id, command-line args after the scenario path, expected fragments)
OPTION_CASES = [
    ("set-without-equals", ["validate", "--set", "foo"], ["--set foo", "expected dotted.path=value"]),
    ("set-empty-path", ["validate", "--set", "=3"], ["--set =3", "the path before '=' is empty"]),
    ("set-unknown-field", ["validate", "--set", "cassandra.node=3"],
     ["cassandra.node (from --set cassandra.node=3)", "unknown key", "did you mean 'nodes'?"]),
    ("set-unknown-section", ["validate", "--set", "cassandr.nodes=3"],
     ["cassandr (from --set cassandr.nodes=3)", "did you mean 'cassandra'?"]),
    ("set-wrong-type", ["validate", "--set", "cassandra.nodes=abc"],
     ["cassandra.nodes (from --set cassandra.nodes=abc)", "got 'abc'", "a whole number"]),
    ("set-into-a-value", ["validate", "--set", "name.x=3"],
     ["--set name.x=3", "name is 'base', not a section", "--set name=VALUE"]),
    ("set-infinite", ["validate", "--set", "workload.sends_per_sec=.inf"],
     ["workload.sends_per_sec", "got inf", "finite"]),
    ("set-on-run", ["run", "--set", "kafka.replication_factor=0"],
     ["kafka.replication_factor (from --set kafka.replication_factor=0)", "1 <= replication_factor <= 100"]),
    ("sample-0", ["run", "--sample", "0"],
     ["sample (from --sample 0)", "got 0", "allowed: 0 < sample <= 1"]),
    ("sample-1.5", ["run", "--sample", "1.5"], ["sample (from --sample 1.5)", "allowed: 0 < sample <= 1"]),
    ("sample-2", ["run", "--sample", "2"], ["sample (from --sample 2)", "allowed: 0 < sample <= 1"]),
    ("duration-negative", ["run", "--duration", "-1"],
     ["duration_s (from --duration -1)", "got -1", "allowed: duration_s > 0"]),
    ("duration-infinite", ["run", "--duration", "inf"], ["duration_s (from --duration inf)", "finite"]),
    ("warmup-not-below-duration", ["run", "--warmup", "20"],
     ["warmup_s (from --warmup 20)", "must be below duration_s (10.0)"]),
    ("seed-negative", ["run", "--seed", "-1"], ["seed (from --seed -1)", "allowed: seed >= 0"]),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in OPTION_CASES],
                         ids=[c[0] for c in OPTION_CASES])
def test_bad_option(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    scenario = write(tmp_path, "base.yaml", BASE)
    line = invoke_fails([args[0], scenario, *args[1:]])
    for fragment in expected:
        assert fragment in line, f"{fragment!r} not in {line!r}"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_scenario_file(tmp_path: Path, command: str) -> None:
    line = invoke_fails([command, tmp_path / "nope.yaml"])
    assert "nope.yaml: no such file; expected a scenario YAML file" in line


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "is a directory; expected a scenario YAML file" in invoke_fails(["validate", tmp_path])


def test_message_is_printed_literally(tmp_path: Path) -> None:
    """Text from the user (keys, paths) must not be read as rich markup."""
    scenario = write(tmp_path, "s.yaml", 'name: t\n"[bold]x[/]": 1\n')
    assert "[bold]x[/]: unknown key" in invoke_fails(["validate", scenario])


def test_the_base_option_scenario_is_valid(tmp_path: Path) -> None:
    """The option cases above fail because of the option, not the file."""
    result = CliRunner().invoke(cli.app, ["validate", str(write(tmp_path, "base.yaml", BASE))])
    assert result.exit_code == 0, result.stderr


def test_api_raises_one_line_scenario_error(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", "name: t\ncassandra:\n  node: 3\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario)
    assert info.value.where.endswith("s.yaml:3: cassandra.node")
    assert "\n" not in str(info.value)


SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[str(p.relative_to(ROOT)) for p in SCENARIOS])
def test_every_shipped_scenario_validates(path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["validate", str(path)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "is a valid scenario" in result.stdout


def test_shipped_scenarios_exist() -> None:
    assert len(SCENARIOS) >= 2


def test_real_entry_point_fails_in_one_line(tmp_path: Path) -> None:
    """The installed `capsim` script, not just the in-process runner."""
    bad = write(tmp_path, "s.yaml", "name: t\ncassandra:\n  node: 3\n")
    base = write(tmp_path, "base.yaml", BASE)
    for args, expected in ((["validate", bad], "cassandra.node: unknown key; did you mean 'nodes'?"),
                           (["run", base, "--sample", "0"], "sample (from --sample 0): got 0")):
        proc = subprocess.run([CAPSIM, *map(str, args)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert expected in lines[0]


def test_non_numeric_option_value_is_rejected_without_traceback(tmp_path: Path) -> None:
    """typer/click parse `--sample abc` before capsim sees it: exit 2 and no traceback..."""
    result = CliRunner().invoke(cli.app, ["run", str(write(tmp_path, "b.yaml", BASE)), "--sample", "abc"])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "--sample" in result.stderr


def test_non_numeric_option_value_is_one_line(tmp_path: Path) -> None:
    invoke_fails(["run", write(tmp_path, "b.yaml", BASE), "--sample", "abc"])


# Runaways (issue 10): refused before anything is simulated, in one line naming the field that makes
# the run too big and the estimate. The autouse fixture proves nothing reached the simulator.
RUNAWAYS = [
    ("sends-1e308", "workload: {sends_per_sec: 1.0e+308}\n",
     ["error: workload.sends_per_sec: work: more than 1e308 station visits",
      "budget of 5e+10 for the calendar engine", "--force"]),  # the engine auto picks for BASE
    ("spike-1e9", "faults: [{kind: load_spike, factor: 1.0e+9, start_s: 2, duration_s: 5}]\n",
     ["error: faults[0].factor: work: ~", "load_spike factors over their windows", "exceeds the budget"]),
    # 5e9 pauses: too many to hold (a capacity window each on the calendar, two events on the DES)
    ("gc-every-ns", "faults: [{kind: gc_pauses, component: gateway, count: 1, pause_ms: 1, every_s: 1.0e-9, "
                    "start_s: 2, duration_s: 5}]\n",
     ["error: faults[0].every_s: memory: ~4.48 TB estimated", "5e+09 gc pauses (every 1e-09 s for 5 s) x "
      "(1 nodes x 256 B of capacity windows + 640 B of DES events)", "--force does not skip this bound"]),
    ("users-5e9", "workload: {users: 5000000000}\n",
     ["error: workload.users: memory: ~", "GB estimated", "5,000,000,000 users in the cell",
      "--force does not skip this bound"]),
]


@pytest.mark.parametrize(("extra", "expected"), [c[1:] for c in RUNAWAYS], ids=[c[0] for c in RUNAWAYS])
def test_runaway_is_refused_before_running(tmp_path: Path, extra: str, expected: list[str]) -> None:
    scenario = write(tmp_path, "s.yaml", "extends: base.yaml\nname: big\n" + extra)
    write(tmp_path, "base.yaml", BASE)
    line = invoke_fails(["run", scenario, "--quiet"])
    for fragment in expected:
        assert fragment in line, f"{fragment!r} not in {line!r}"


def test_memory_bound_holds_under_force(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", BASE)
    line = invoke_fails(["run", scenario, "--force", "--set", "workload.users=5000000000"])
    assert "workload.users (from --set" not in line  # the schema accepts it; the memory bound does not
    assert "error: workload.users: memory:" in line


def test_simulate_refuses_a_runaway_like_the_cli(tmp_path: Path) -> None:
    from sim.simulate import simulate  # the real one: the check runs before an engine is built

    sc = load_scenario(write(tmp_path, "s.yaml", BASE), ["workload.sends_per_sec=1.0e+300"])
    with pytest.raises(ScenarioError) as info:
        simulate(sc)
    assert info.value.where == "workload.sends_per_sec"
    assert "exceeds the budget" in info.value.message
    with pytest.raises(ScenarioError, match="memory"):
        simulate(load_scenario(write(tmp_path, "s.yaml", BASE), ["workload.users=5000000000"]), force=True)


def test_extends_never_prints_the_file(tmp_path: Path) -> None:
    """`extends: /etc/passwd` printed the file's text in the error."""
    scenario = write(tmp_path, "s.yaml", "extends: secret.txt\nname: t\n")
    write(tmp_path, "secret.txt", "hunter2 is the password\n")
    line = invoke_fails(["validate", scenario])
    assert "secret.txt: got a YAML single value, not a scenario" in line
    assert "hunter2" not in line


def test_user_text_is_not_rendered_as_markup_or_emoji(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", "name: ':x: [bold]hi[/bold]'\n")
    line = invoke_fails(["validate", scenario])
    assert "got ':x: [bold]hi[/bold]'" in line
    assert "\u274c" not in line  # rich's :x: emoji


def test_long_values_are_quoted_and_truncated(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", f"name: t\ngateway:\n  instances: {'y' * 500}\n")
    line = invoke_fails(["validate", scenario])
    assert f"got '{'y' * 76}..." in line
    assert len(line) < 300
