"""The scenario's topology as a Mermaid flowchart: components with counts and key settings, and the
calls between them labelled with the operation, following the engine's request flows (README,
"The model"). Disabled components are left out and the calls re-routed as the engine does (no
gateway: clients call the message service; no message service: the gateway, or the clients, call
the stores; no Redis: every read goes to Cassandra).

Every label is quoted and escaped with Mermaid's entity codes (`#34;` for a double quote, and so
on), because scenario text such as an instance type is user input: a quote, bracket, pipe or `#`
must not end a label or start Mermaid syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario import Scenario

# characters Mermaid's flowchart grammar or its HTML labels give a meaning; written as #<code>;
SPECIAL = set('"#&<>[](){}|`%;\\')
LINE_BREAK = "<br/>"


@dataclass(frozen=True)
class Node:
    id: str
    shape: str  # rect, stadium, cylinder, queue
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    dotted: bool = False  # a call nobody waits for


SHAPES = {"rect": ('["', '"]'), "stadium": ('(["', '"])'), "cylinder": ('[("', '")]'),
          "queue": ('[["', '"]]')}


def escape(text: str) -> str:
    """`text` safe inside a quoted Mermaid label: special characters as entity codes, one line."""
    flat = " ".join(str(text).split())
    return "".join(f"#{ord(ch)};" if ch in SPECIAL else ch for ch in flat)


def mermaid(scenario: Scenario) -> str:
    """The topology of `scenario` as Mermaid flowchart text (`flowchart LR`)."""
    nodes, edges = topology(scenario)
    out = [f"%% capsim topology: {escape(scenario.name)}", "flowchart LR"]
    for node in nodes:
        start, end = SHAPES[node.shape]
        out.append(f"    {node.id}{start}{LINE_BREAK.join(escape(x) for x in node.lines)}{end}")
    for edge in edges:
        arrow = "-.->" if edge.dotted else "-->"
        out.append(f'    {edge.source} {arrow}|"{escape(edge.label)}"| {edge.target}')
    return "\n".join(out) + "\n"


def topology(scenario: Scenario) -> tuple[list[Node], list[Edge]]:
    """The enabled components and the calls between them."""
    sc = scenario
    w = sc.workload
    nodes = [Node("clients", "stadium", ("Clients", f"{w.users:,} users",
                                         f"{w.sends_per_sec:,.0f} sends/s, {w.reads_per_sec:,.0f} reads/s"))]
    edges: list[Edge] = []
    front = [op for op, rate in (("send", w.sends_per_sec), ("read", w.reads_per_sec)) if rate > 0]
    front_label = ", ".join(front) or "send, read"
    caller = "clients"
    if sc.gateway.enabled:
        g = sc.gateway
        settings = [f"{g.workers} workers"]
        if g.rate_limit is not None:
            settings.append(f"limit {g.rate_limit.per_user_per_sec:g}/s per user")
        if g.pricing != "instances":
            settings.append(f"priced as {g.pricing}")
        nodes.append(Node("gateway", "rect", ("API gateway", _count(g.instances, g.instance_type),
                                              ", ".join(settings))))
        edges.append(Edge(caller, "gateway", front_label))
        caller = "gateway"
    ms = sc.message_service
    if ms.enabled:
        nodes.append(Node("message_service", "rect", (
            "Message service", _count(ms.instances, ms.instance_type),
            f"{ms.workers} workers, keyed by {ms.partition_key}",
            f"ack after {', '.join(ms.ack_after or []) or 'nothing'}")))
        edges.append(Edge(caller, "message_service", front_label))
        caller = "message_service"
    sends, reads = w.sends_per_sec > 0, w.reads_per_sec > 0
    c, r, k, gs = sc.cassandra, sc.redis, sc.kafka, sc.group_service
    if c.enabled:
        nodes.append(Node("cassandra", "cylinder", (
            "Cassandra", _count(c.nodes, c.instance_type, "nodes"),
            f"RF {c.replication_factor}, {c.write_consistency}/{c.read_consistency}")))
        ops = (["send"] if sends else []) + ([("read miss" if r.enabled else "read")] if reads else [])
        edges.append(Edge(caller, "cassandra", ", ".join(ops) or "send"))
    if r.enabled:
        nodes.append(Node("redis", "cylinder", (
            "Redis", _count(r.shards, r.instance_type, "shards"),
            f"{r.memory_gb_per_shard:g} GB per shard, last {w.recent_messages} messages")))
        ops = (["send"] if sends else []) + (["read"] if reads else [])
        edges.append(Edge(caller, "redis", ", ".join(ops) or "send"))
        if c.enabled and reads:
            edges.append(Edge(caller, "redis", "fill on miss", dotted=True))
    if k.enabled:
        nodes.append(Node("kafka", "queue", (
            "Kafka", _count(k.brokers, k.instance_type, "brokers"),
            f"{k.partitions} partitions, RF {k.replication_factor}, acks {k.acks}")))
        edges.append(Edge(caller, "kafka", "produce"))
    if gs.enabled and k.enabled:
        nodes.append(Node("group_service", "rect", (
            "Group service", _count(gs.instances, gs.instance_type),
            f"fan-out on {gs.fan_out}, {gs.workers} workers")))
        edges.append(Edge("kafka", "group_service", "consume"))
        if gs.fan_out == "write" and c.enabled:
            edges.append(Edge("group_service", "cassandra", "fan-out: inbox writes"))
    return nodes, edges


def _count(n: int, instance_type: str | None, noun: str = "instances") -> str:
    if instance_type:
        return f"{n} x {instance_type}"
    return f"{n} {noun.removesuffix('s') if n == 1 else noun}"
