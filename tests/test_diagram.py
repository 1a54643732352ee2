"""`capsim diagram`: the topology as Mermaid, with every enabled component, no disabled one, and
scenario text escaped so it cannot break out of a label."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

import cli
from sim import Scenario, load_scenario
from sim.diagram import escape, mermaid

ROOT = Path(__file__).parent.parent
SMALL = ROOT / "scenarios" / "interview-small.yaml"
COMPONENTS = {"gateway", "message_service", "group_service", "cassandra", "redis", "kafka"}

# what mermaid() may emit: a comment, the header, a quoted node, a quoted edge label
TEXT = r'[^"\[\](){}|<>]*'  # label text: no raw quote, bracket, brace, pipe or angle bracket
NODE = re.compile(rf'^    (\w+)(\["|\(\["|\[\("|\[\[")({TEXT}(?:<br/>{TEXT})*)("\]|"\]\)|"\)\]|"\]\])$')
EDGE = re.compile(rf'^    (\w+) (-->|-\.->)\|"({TEXT})"\| (\w+)$')


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Node id -> label and (source, label, target) edges; fails on any other line."""
    lines = text.splitlines()
    assert lines[0].startswith("%% ") and lines[1] == "flowchart LR"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[2:]:
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, f"not a quoted node or edge: {line!r}"
        if node:
            nodes[node[1]] = node[3]
        elif edge:
            edges.append((edge[1], edge[3], edge[4]))
    for source, _label, target in edges:
        assert source in nodes and target in nodes
    return nodes, edges


def test_interview_small_has_every_enabled_component() -> None:
    nodes, edges = parse(mermaid(load_scenario(SMALL)))
    assert set(nodes) == COMPONENTS | {"clients"}
    assert nodes["cassandra"] == "Cassandra<br/>12 x i4i.2xlarge<br/>RF 3, QUORUM/QUORUM"
    assert nodes["kafka"].startswith("Kafka<br/>3 x kafka.m5.large<br/>12 partitions, RF 3")
    assert ("clients", "send, read", "gateway") in edges
    assert ("gateway", "send, read", "message_service") in edges
    assert ("message_service", "send, read miss", "cassandra") in edges
    assert ("message_service", "produce", "kafka") in edges
    assert ("kafka", "consume", "group_service") in edges
    assert ("group_service", "fan-out: inbox writes", "cassandra") in edges
    assert ("message_service", "fill on miss", "redis") in edges


def test_disabled_components_are_left_out() -> None:
    sc = load_scenario(SMALL, ["kafka.enabled=false", "group_service.enabled=false", "redis.enabled=false",
                               "gateway.enabled=false", "message_service.ack_after=[cassandra]"])
    text = mermaid(sc)
    nodes, edges = parse(text)
    assert set(nodes) == {"clients", "message_service", "cassandra"}
    for gone in ("kafka", "group_service", "redis", "gateway"):
        assert gone not in text
    # without a gateway the clients call the service; without Redis every read goes to Cassandra
    assert edges == [("clients", "send, read", "message_service"),
                     ("message_service", "send, read", "cassandra")]


def test_escape_turns_special_characters_into_entity_codes() -> None:
    assert escape('a"b') == "a#34;b"
    assert escape("x[1](2){3}|<b>#&") == "x#91;1#93;#40;2#41;#123;3#125;#124;#60;b#62;#35;#38;"
    assert escape("two\nlines") == "two lines"
    assert escape("m6i.2xlarge, RF 3/QUORUM") == "m6i.2xlarge, RF 3/QUORUM"


def test_user_text_cannot_break_out_of_a_label() -> None:
    # load_scenario checks instance types against the catalog, but a custom catalog (a YAML path)
    # may name its types freely (a scenario's name is a checked id): build the scenario directly
    raw = yaml.safe_load(SMALL.read_text())
    raw["gateway"]["instance_type"] = 'm6i"] --> pwned["x'
    text = mermaid(Scenario.model_validate(raw))
    nodes, _ = parse(text)  # every line still a single well-formed node or edge
    assert "pwned" not in nodes
    assert nodes["gateway"].split("<br/>")[1] == "6 x m6i#34;#93; --#62; pwned#91;#34;x"
    assert text.splitlines()[0] == "%% capsim topology: interview-small"


def test_diagram_command_prints_mermaid() -> None:
    result = CliRunner().invoke(cli.app, ["diagram", str(SMALL)])
    assert result.exit_code == 0, result.output
    assert result.stdout == mermaid(load_scenario(SMALL))
