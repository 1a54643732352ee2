"""report.md: a Document rendered as Markdown, charts linked as PNG files beside it.

All text is escaped so that a scenario's names and descriptions show literally: characters that
Markdown reads as markup or raw HTML are backslash-escaped and table cells keep their pipes.
"""

from __future__ import annotations

import os
from pathlib import Path

from sim.report.document import Bullets, Diagram, Document, Findings, Image, Paragraph, Table

_SPECIAL = "\\`*[]|&"
LEVEL_TAGS = {"bad": "**[!]** ", "warn": "**[~]** ", "info": ""}


def escape(text: str, block_start: bool = True) -> str:
    """Plain text made literal in Markdown (one line: newlines become spaces). `block_start`:
    the text opens a block (a paragraph or list item), where `#`, `-`, `>` ... would be markup."""
    line = " ".join(str(text).split())
    out = []
    for i, ch in enumerate(line):
        before = line[i - 1] if i else " "
        after = line[i + 1] if i + 1 < len(line) else " "
        # `_` only emphasises at a word's edge; `#`, `-`, `+`, `=` only matter at a line's start
        edge = ch == "_" and not (before.isalnum() and after.isalnum())
        start = block_start and i == 0 and ch in "#-+=>"
        # `<` opens raw HTML only before a letter, `/`, `!` or `?` (`<= 5` stays readable)
        tag = ch == "<" and (after.isalpha() or after in "/!?")
        out.append("\\" + ch if ch in _SPECIAL or edge or start or tag else ch)
    return "".join(out)


def _table(table: Table) -> list[str]:
    align = ["---" if i in table.text_columns else "---:" for i in range(len(table.columns))]
    lines = ["| " + " | ".join(escape(c, False) for c in table.columns) + " |",
             "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(escape(c, False) for c in row) + " |" for row in table.rows]
    return lines


def _link(path: Path, base: Path) -> str:
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        rel = str(path)
    return rel.replace(os.sep, "/").replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def render(doc: Document, base: Path) -> str:
    """Markdown for `doc`; image links are relative to `base` (the folder report.md goes in)."""
    lines = [f"# {escape(doc.title)}", ""]
    lines += [f"- {escape(f)}" for f in doc.facts]
    for section in doc.sections:
        lines += ["", f"## {escape(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [f"_{escape(block.text)}_" if block.note else escape(block.text), ""]
            elif isinstance(block, Findings):
                lines += [f"- {LEVEL_TAGS.get(f.level, '')}{escape(f.text)}" for f in block.items]
                lines += ["", "_[!] act on it, [~] look at it._", ""]
            elif isinstance(block, Bullets):
                lines += [f"- {escape(item)}" for item in block.items] + [""]
            elif isinstance(block, Table):
                lines += [*_table(block), ""]
            elif isinstance(block, Diagram) and not block.source:  # drawn only in report.html
                lines += ["_The topology is drawn in report.html._", ""]
            elif isinstance(block, Diagram):
                # the fence must be longer than any backtick run inside the diagram
                fence = "`" * max(3, _longest_backticks(block.source) + 1)
                lines += [f"{fence}mermaid", block.source.rstrip("\n"), fence, ""]
            elif isinstance(block, Image):
                lines += [f"### {escape(block.title)}", "", f"![{escape(block.title)}]"
                          f"({_link(block.path, base)})", "", escape(block.caption), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest
