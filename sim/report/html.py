"""report.html: a Document as one self-contained page that opens offline in any browser.

Charts are embedded as base64 `data:` URIs and the style sheet is inline; the page loads nothing
from anywhere. Every piece of text goes through `html.escape`, so a scenario named
`<script>...</script>` shows as text. The topology is drawn as inline SVG by sim/diagram.py
(Mermaid would need a script from the network); its Mermaid source follows in a collapsed
<details>, as report.md carries it for viewers that draw Mermaid.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from sim.diagram import svg
from sim.report.document import Bullets, Diagram, Document, Findings, Image, Paragraph, Table

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { margin-bottom: 0.3em; }
ul.facts { list-style: none; padding: 0; color: #555; margin-top: 0; }
ul.facts li { display: inline; }
ul.facts li + li::before { content: " \\00b7 "; }
ul.findings { list-style: none; padding: 0; }
ul.findings li { padding: 0.45em 0.8em; margin: 0.3em 0; border-left: 5px solid #9aa5b1;
                 background: #f6f8fa; }
ul.findings li.bad { border-color: #d62728; background: #fdecec; }
ul.findings li.warn { border-color: #ff9f1c; background: #fff6e5; }
div.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; }
th { background: #f0f3f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.ok td:last-child { color: #116329; font-weight: 600; }
tr.bad td { background: #fdecec; }
tr.bad td:last-child { color: #b3261e; font-weight: 700; }
tr.na td:last-child { color: #8a6d00; font-weight: 600; }
tr.warn td:last-child { color: #8a4b00; font-weight: 600; }
p.note { color: #666; font-style: italic; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
.legend { color: #666; font-size: 0.88em; }
figure.topology svg { max-width: 100%; height: auto; display: block; }
details.mermaid summary { cursor: pointer; color: #555; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _table(table: Table) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.rows):
        cls = table.row_classes[i] if i < len(table.row_classes) else ""
        cells = "".join(f"<td>{_e(c)}</td>" if j in table.text_columns else f'<td class="num">{_e(c)}</td>'
                        for j, c in enumerate(row))
        body.append(f'<tr class="{_e(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table></div>")


def _block(block: object) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="note">{_e(block.text)}</p>' if block.note else f"<p>{_e(block.text)}</p>"
    if isinstance(block, Findings):
        items = "".join(f'<li class="{_e(f.level)}">{_e(f.text)}</li>' for f in block.items)
        return (f'<ul class="findings">{items}</ul><p class="legend">red: act on it; amber: look at '
                "it; grey: for information.</p>")
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Diagram):
        drawn = ""
        if block.nodes:
            drawn = (f'<figure class="topology">{svg(list(block.nodes), list(block.edges), "topology")}'
                     "<figcaption>Components with their counts and settings, top to bottom as requests "
                     "flow; arrows are calls labelled with their operations (and rates where the "
                     "scenario fixes them); dashed: not waited for.</figcaption></figure>")
        if not block.source:
            return drawn
        return (f'{drawn}<details class="mermaid"><summary>Mermaid source (to paste into a Mermaid '
                f'viewer; report.md carries it too)</summary><pre class="mermaid-source">{_e(block.source)}'
                "</pre></details>")
    if isinstance(block, Image):
        return (f"<figure><h3>{_e(block.title)}</h3>"
                f'<img alt="{_e(block.title)}" src="{data_uri(block.path)}">'
                f"<figcaption>{_e(block.caption)}</figcaption></figure>")
    raise TypeError(f"unknown report block {block!r}")


def render(doc: Document) -> str:
    """The whole page as one string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(doc.title)}</h1>",
        '<ul class="facts">' + "".join(f"<li>{_e(f)}</li>" for f in doc.facts) + "</ul>",
    ]
    for section in doc.sections:
        parts.append(f"<section><h2>{_e(section.title)}</h2>")
        parts += [_block(b) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
