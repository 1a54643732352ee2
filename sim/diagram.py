"""The scenario's topology, as a Mermaid flowchart and as an SVG drawing: components with counts and
key settings, and the calls between them labelled with the operation, following the engine's
request flows (README, "The model"). `topology` gives both renderings the same nodes and edges;
`svg` lays them out in layers, top to bottom as requests flow (clients, gateway, message service,
the stores side by side, Kafka's consumers under Kafka), for report.html, which loads nothing. Disabled
components are left out and the calls re-routed as the engine does (no gateway: clients call the
message service; no message service: the gateway, or the clients, call the stores; no Redis:
every read goes to Cassandra).

A design (`components:` and `flows:`) is drawn from its own system instead: a node per component
(its name, its kind and count, its key settings), the clients' node listing each flow's rate, and
an edge per caller and callee, labelled with the flows and operations that use it and their
full-scale calls per second (sim/traffic.py's `design_traffic` over sim/system/loads.py's
`design_loads`): cache lookups, their miss calls ("on miss") and their fills (dotted, nobody waits
for them), produces, and dotted consume edges from a kafka component to the service whose
consumers start the triggered flow. The SVG lays a design out by call depth: each component one
row below its deepest caller.

Every label is quoted and escaped with Mermaid's entity codes (`#34;` for a double quote, and so
on), because scenario text such as an instance type is user input: a quote, bracket, pipe or `#`
must not end a label or start Mermaid syntax.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from sim.components import Node, count_text, kind_for, kinds
from sim.components.units import number
from sim.scenario import Scenario
from sim.traffic import CallRate

__all__ = ["Edge", "Node", "count_text", "layout", "mermaid", "svg", "topology"]

# characters Mermaid's flowchart grammar or its HTML labels give a meaning; written as #<code>;
SPECIAL = set('"#&<>[](){}|`%;\\')
LINE_BREAK = "<br/>"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    dotted: bool = False  # a call nobody waits for
    per_sec: float | None = None  # the scenario's rate on this call, where one follows from it alone


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
    if sc.is_design:
        return design_topology(sc)
    w = sc.workload
    nodes = [Node("clients", "stadium", ("Clients", f"{w.users:,} users",
                                         f"{w.sends_per_sec:,.0f} sends/s, {w.reads_per_sec:,.0f} reads/s"))]
    edges: list[Edge] = []
    front = [op for op, rate in (("send", w.sends_per_sec), ("read", w.reads_per_sec)) if rate > 0]
    front_label = ", ".join(front) or "send, read"
    front_rate = w.sends_per_sec + w.reads_per_sec  # requests offered, before any retry
    nodes += [n for k in sorted(kinds(), key=lambda k: k.diagram_rank)
              if (n := k.diagram_node(sc)) is not None]  # each kind draws its own node
    caller = "clients"
    if sc.gateway.enabled:
        edges.append(Edge(caller, "gateway", front_label, per_sec=front_rate))
        caller = "gateway"
    if sc.message_service.enabled:
        edges.append(Edge(caller, "message_service", front_label, per_sec=front_rate))
        caller = "message_service"
    sends, reads = w.sends_per_sec > 0, w.reads_per_sec > 0
    c, r, k, gs = sc.cassandra, sc.redis, sc.kafka, sc.group_service
    if c.enabled:
        ops = (["send"] if sends else []) + ([("read miss" if r.enabled else "read")] if reads else [])
        edges.append(Edge(caller, "cassandra", ", ".join(ops) or "send"))
    if r.enabled:
        ops = (["send"] if sends else []) + (["read"] if reads else [])
        edges.append(Edge(caller, "redis", ", ".join(ops) or "send"))
        if c.enabled and reads:
            edges.append(Edge(caller, "redis", "fill on miss", dotted=True))
    if k.enabled:
        edges.append(Edge(caller, "kafka", "produce", per_sec=w.sends_per_sec))
    if gs.enabled and k.enabled:
        edges.append(Edge("kafka", "group_service", "consume", per_sec=w.sends_per_sec))
        if gs.fan_out == "write" and c.enabled:
            edges.append(Edge("group_service", "cassandra", "fan-out: inbox writes"))
    return nodes, edges


def design_topology(sc: Scenario) -> tuple[list[Node], list[Edge]]:
    """A design's components and the calls its flows make, at full-scale rates."""
    from sim.system.compile import system_of
    from sim.system.loads import design_loads
    from sim.traffic import design_traffic

    system = system_of(sc)
    loads = design_loads(system)
    rated = [f"{f.name} {number(loads.flow_rates.get(f.name, 0.0))}/s" for f in system.flows.values()
             if not f.triggered]
    nodes = [Node("clients", "stadium", ("Clients", ", ".join(rated) or "no rated flow"))]
    nodes += [n for c in system.components.values() if (n := kind_for(c).diagram_node(sc)) is not None]
    return nodes, design_edges(design_traffic(system, loads).calls)


def design_edges(calls: tuple[CallRate, ...]) -> list[Edge]:
    """One edge per (caller, callee, awaited or not), in the order the flows first make the call:
    its label each flow's operation on it with its full-scale calls per second ('resolve: get
    20,000/s'), its rate their sum."""
    groups: dict[tuple[str, str, bool], dict[str, float]] = {}
    for c in calls:
        ops = groups.setdefault((c.caller, c.callee, not c.awaited), {})
        ops[c.label] = ops.get(c.label, 0.0) + c.per_sec
    return [Edge(source, target, ", ".join(f"{label} {number(rate)}/s" for label, rate in ops.items()),
                 dotted, sum(ops.values()))
            for (source, target, dotted), ops in groups.items()]


# -- SVG ------------------------------------------------------------------------------------------
# Drawn top to bottom in layers, as requests flow: clients, the gateway, the message service, the
# stores (Redis, Cassandra, Kafka side by side) and Kafka's consumers under Kafka.
CHAR_PX = 7.0  # width of a character at 12 px (a little over the average, so text fits its box)
LINE_PX = 16
PAD_PX = 12
GAP_X_PX = 48  # between boxes in a layer
GAP_Y_PX = 84  # between layers: room for the edge labels
MARGIN_PX = 16
CAP_PX = 7  # half-height of a cylinder's elliptic cap
LABEL_CHAR_PX = 6.3  # at 11 px
FILL = {"stadium": ("#eef1f4", "#6b7785"), "rect": ("#e8f0fb", "#3b6fb6"),
        "cylinder": ("#e9f5ec", "#2f8a4c"), "queue": ("#fff3e0", "#c7791b")}


@dataclass(frozen=True)
class Box:
    node: Node
    x: float  # centre
    y: float  # top
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height


def layout(nodes: list[Node], edges: list[Edge]) -> list[Box]:
    """Boxes for `nodes` in layers (`_layers`; ids it does not know share one more layer below; a
    design's by call depth, `_depths`), each layer centred on the widest; a layer of one node sits
    under the middle of its callers above."""
    layer, order = _layers()
    if any(n.id not in layer for n in nodes):  # a design: its own component names
        layer, order = _depths(nodes, edges), tuple(n.id for n in nodes)
    ranks = sorted({layer.get(n.id, len(order)) for n in nodes})
    rows: list[list[Node]] = [[] for _ in ranks]
    for node in sorted(nodes, key=lambda n: order.index(n.id) if n.id in order else len(order)):
        rows[ranks.index(layer.get(node.id, len(order)))].append(node)
    sizes = {n.id: (max(len(line) for line in n.lines) * CHAR_PX + 2 * PAD_PX,
                    len(n.lines) * LINE_PX + 2 * PAD_PX + (2 * CAP_PX if n.shape == "cylinder" else 0))
             for n in nodes}
    row_width = [sum(sizes[n.id][0] for n in row) + GAP_X_PX * (len(row) - 1) for row in rows]
    canvas = max(row_width, default=0.0)
    boxes: dict[str, Box] = {}
    y = float(MARGIN_PX)
    for row, width in zip(rows, row_width, strict=True):
        height = max(sizes[n.id][1] for n in row)
        callers = {e.source for e in edges if row and e.target == row[0].id and e.source in boxes}
        if len(row) == 1 and callers:  # one node: under its callers (a consumer under Kafka)
            centre = sum(boxes[c].x for c in callers) / len(callers) - MARGIN_PX
            left = min(max(centre - width / 2, 0.0), canvas - width)
        else:
            left = (canvas - width) / 2
        for node in row:
            w, h = sizes[node.id]
            boxes[node.id] = Box(node, MARGIN_PX + left + w / 2, y + (height - h) / 2, w, h)
            left += w + GAP_X_PX
        y += height + GAP_Y_PX
    return [boxes[n.id] for n in nodes]


def _layers() -> tuple[dict[str, int], tuple[str, ...]]:
    """Each node's layer (clients 0, then each kind's `diagram_layer`) and the left-to-right order
    within layers (each kind's `diagram_column`)."""
    ranked = sorted(kinds(), key=lambda k: (k.diagram_layer, k.diagram_column))
    layer = {"clients": 0, **{k.name: k.diagram_layer for k in ranked}}
    return layer, ("clients", *(k.name for k in ranked))


def _depths(nodes: list[Node], edges: list[Edge]) -> dict[str, int]:
    """Each node's row: clients 0, every other node one below its deepest caller (the longest call
    path to it; an edge that would close a loop is ignored). Nodes nobody calls sit in row 1."""
    ids = {n.id for n in nodes}
    callers: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in edges:
        if e.source in ids and e.target in ids and e.source != e.target:
            callers[e.target].append(e.source)
    depth: dict[str, int] = {}

    def visit(node: str, path: frozenset[str]) -> int:
        if node == "clients":
            return 0
        if node not in depth:
            above = [visit(c, path | {node}) for c in callers[node] if c not in path | {node}]
            depth[node] = 1 + max(above, default=0)
        return depth[node]

    return {n.id: visit(n.id, frozenset()) for n in nodes}


def svg(nodes: list[Node], edges: list[Edge], title: str = "topology") -> str:
    """The topology as one <svg> element for inline use in HTML (no xmlns: the HTML parser puts it
    in the SVG namespace, and the page keeps no URL): a box per node (its shape and lines, the first
    line bold), an arrow per edge (dashed: not waited for) labelled with its operations and, where
    known, its rate. Every text is XML-escaped."""
    boxes = {b.node.id: b for b in layout(nodes, edges)}
    width = max((b.x + b.width / 2 for b in boxes.values()), default=0.0) + MARGIN_PX
    height = max((b.bottom for b in boxes.values()), default=0.0) + MARGIN_PX
    out = [f'<svg class="topology" role="img" '
           f'aria-label="{_x(title)}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" font-family="system-ui, sans-serif" font-size="12">',
           f"<title>{_x(title)}</title>",
           '<defs><marker id="capsim-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4a4f57"/>'
           "</marker></defs>"]
    out += [_node_svg(b) for b in boxes.values()]
    labels = []
    for edge, (start, end), t in _routes(edges, boxes):
        out.append(_edge_svg(edge, start, end))
        labels.append(_label_svg(edge, _cubic_at(start, end, t)))
    out += labels  # over every line, so no arrow crosses a label
    out.append("</svg>")
    return "\n".join(out)


def _x(text: object) -> str:
    return html.escape(str(text), quote=True)


def _routes(edges: list[Edge], boxes: dict[str, Box]
            ) -> list[tuple[Edge, tuple[tuple[float, float], tuple[float, float]], float]]:
    """Per drawable edge: its end points and where along it the label sits. An edge leaves its
    caller's bottom and enters its callee's top (the other way round when the callee is above);
    the edges meeting one side of a box are spread along it in the order of their other ends, so
    they do not cross there. Parallel edges put their labels at different points along the way."""
    drawn = [e for e in edges if e.source in boxes and e.target in boxes]
    sides: dict[tuple[str, str], list[tuple[float, int]]] = {}  # (node, top|bottom) -> (other x, edge)
    for i, e in enumerate(drawn):
        s, t = boxes[e.source], boxes[e.target]
        down = t.y >= s.bottom
        sides.setdefault((e.source, "bottom" if down else "top"), []).append((t.x, i))
        sides.setdefault((e.target, "top" if down else "bottom"), []).append((s.x, i))
    port: dict[tuple[str, int], float] = {}
    for (node, _side), ends in sides.items():
        box = boxes[node]
        step = min(28.0, box.width * 0.7 / max(len(ends) - 1, 1))
        for k, (_x_other, i) in enumerate(sorted(ends)):
            port[(node, i)] = box.x + (k - (len(ends) - 1) / 2) * step
    pairs: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(drawn):
        pairs.setdefault((e.source, e.target), []).append(i)
    out = []
    for i, e in enumerate(drawn):
        s, t = boxes[e.source], boxes[e.target]
        y1, y2 = (s.bottom, t.y) if t.y >= s.bottom else (s.y, t.bottom)
        group = pairs[(e.source, e.target)]
        out.append((e, ((port[(e.source, i)], y1), (port[(e.target, i)], y2)),
                    (group.index(i) + 1) / (len(group) + 1)))
    return out


def _cubic_at(start: tuple[float, float], end: tuple[float, float], t: float) -> tuple[float, float]:
    """The point at `t` on the curve _edge_svg draws (control points half-way, straight above and
    below the ends)."""
    (x1, y1), (x2, y2) = start, end
    ease = 3 * t * t - 2 * t * t * t  # the curve's x and y both move along this
    return x1 + (x2 - x1) * ease, y1 + (y2 - y1) * ease


def _edge_svg(edge: Edge, start: tuple[float, float], end: tuple[float, float]) -> str:
    (x1, y1), (x2, y2) = start, end
    ym = (y1 + y2) / 2
    dash = ' stroke-dasharray="5 4"' if edge.dotted else ""
    return (f'<g class="edge" data-source="{_x(edge.source)}" data-target="{_x(edge.target)}">'
            f'<path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{ym:.1f} {x2:.1f},{ym:.1f} {x2:.1f},{y2:.1f}" '
            f'fill="none" stroke="#4a4f57" stroke-width="1.4"{dash} marker-end="url(#capsim-arrow)"/></g>')


def _label_svg(edge: Edge, at: tuple[float, float]) -> str:
    lines = [edge.label] + ([f"{edge.per_sec:,.0f}/s"] if edge.per_sec is not None else [])
    w = max(len(line) for line in lines) * LABEL_CHAR_PX + 8
    h = len(lines) * 14 + 4
    x, y = at
    text = "".join(f'<tspan x="{x:.1f}" dy="{0 if i == 0 else 14}">{_x(line)}</tspan>'
                   for i, line in enumerate(lines))
    return (f'<g class="edge-label"><rect x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" '
            f'height="{h}" rx="3" fill="#ffffff" fill-opacity="0.92"/>'
            f'<text x="{x:.1f}" y="{y - h / 2 + 13:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#333">{text}</text></g>')


def _node_svg(b: Box) -> str:
    fill, stroke = FILL.get(b.node.shape, FILL["rect"])
    left, right, top, bottom = b.x - b.width / 2, b.x + b.width / 2, b.y, b.bottom
    style = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
    if b.node.shape == "cylinder":
        rx, ry = b.width / 2, CAP_PX
        shape = (f'<path d="M{left:.1f},{top + ry:.1f} A{rx:.1f},{ry} 0 0 0 {right:.1f},{top + ry:.1f} '
                 f'V{bottom - ry:.1f} A{rx:.1f},{ry} 0 0 1 {left:.1f},{bottom - ry:.1f} Z" {style}/>'
                 f'<ellipse cx="{b.x:.1f}" cy="{top + ry:.1f}" rx="{rx:.1f}" ry="{ry}" {style}/>')
        top += 2 * ry
    else:
        rx = b.height / 2 if b.node.shape == "stadium" else 6
        shape = (f'<rect x="{left:.1f}" y="{top:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" '
                 f'rx="{rx:.1f}" {style}/>')
        if b.node.shape == "queue":  # Mermaid's subroutine box: a bar inside each side
            shape += "".join(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                             f'stroke="{stroke}" stroke-width="1.5"/>' for x in (left + 7, right - 7))
    text = "".join(
        f'<text x="{b.x:.1f}" y="{top + PAD_PX + 12 + i * LINE_PX:.1f}" text-anchor="middle"'
        + (' font-weight="600" font-size="13"' if i == 0 else ' fill="#333"') + f">{_x(line)}</text>"
        for i, line in enumerate(b.node.lines))
    return f'<g class="node" data-id="{_x(b.node.id)}"><title>{_x(" / ".join(b.node.lines))}</title>' \
           f"{shape}{text}</g>"
