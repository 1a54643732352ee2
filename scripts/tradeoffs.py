"""Regenerate docs/tradeoffs.md: the classic design pairs in scenarios/tradeoffs/, each compared
with common random numbers (sim.experiments.compare), with its table and latency-CDF chart.

    .venv/bin/python scripts/tradeoffs.py [--replications 5] [--workers N] [--dask-scheduler ADDR]

All ten arms run in one batch on the executor (50 runs of 8 simulated seconds at full scale: ~7
minutes on 2 cores). Writes docs/tradeoffs.md, docs/tradeoffs/<pair>_latency_cdf.png and
docs/tradeoffs/<pair>.csv (every figure, with CI bounds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sim.experiments import Replicated, make_executor, run_points
from sim.experiments.charts import cdf_comparison_chart
from sim.experiments.compare import Comparison, format_interval, plan_compare
from sim.experiments.figures import label_of
from sim.loading import load_scenario

ROOT = Path(__file__).resolve().parent.parent
PAIRS_DIR = ROOT / "scenarios" / "tradeoffs"
DOCS = ROOT / "docs"
PAIRS = [  # (slug, title, A, B, what the pair is about)
    ("consistency", "QUORUM vs ONE", "consistency-quorum", "consistency-one",
     "Cassandra writes and reads wait for 2 of 3 replicas, or for the first."),
    ("cache", "Cache vs no cache", "cache-on", "cache-off",
     "Redis holds each conversation's recent messages, or every read goes to Cassandra."),
    ("fanout", "Fan-out on write vs on read", "fanout-write", "fanout-read",
     "One inbox entry per recipient at send time (a read opens one conversation), or one copy per "
     "conversation and an inbox load that reads every conversation of the reader (~10 lookups per "
     "read here; both partitioned by conversation, which fan-out on read needs)."),
    ("partition", "Partition by user vs by conversation", "partition-user", "partition-conversation",
     "Messages keyed by the sender's user id, or by conversation."),
    ("nodes", "64 vs 128 Cassandra nodes", "cassandra-64", "cassandra-128",
     "The same load on twice the ring."),
]
HEADLINE = ("latency_ms.send.p99", "latency_ms.read.p99", "latency_ms.delivery.p99", "availability.overall",
            "cost.total_monthly_usd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--dask-scheduler", default=None)
    args = parser.parse_args()
    executor = make_executor(args.workers, args.dask_scheduler)
    arms = [plan_compare(PAIRS_DIR / f"{a}.yaml", PAIRS_DIR / f"{b}.yaml") for _s, _t, a, b, _w in PAIRS]
    points = [sc for arm in arms for sc in (arm.a, arm.b)]
    with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total:.0f} runs"), TimeElapsedColumn()) as bar:
        task = bar.add_task("trade-offs", total=len(points) * args.replications)
        results = run_points(points, args.replications, executor,
                             lambda p: bar.update(task, completed=p.runs_done, total=p.runs_total))
    out_dir = DOCS / "tradeoffs"
    out_dir.mkdir(parents=True, exist_ok=True)
    sections, summary_rows = [], []
    for i, ((slug, title, a, b, what), arm) in enumerate(zip(PAIRS, arms, strict=True)):
        ra, rb = results[2 * i], results[2 * i + 1]
        if not (isinstance(ra, Replicated) and isinstance(rb, Replicated)):
            errors = "; ".join(r.error for r in (ra, rb) if not isinstance(r, Replicated))  # type: ignore[union-attr]
            sections.append(f"## {title}\n\nFailed: {errors}\n")
            continue
        comparison = Comparison(arm, ra, rb, executor.name)
        comparison.table().to_csv(out_dir / f"{slug}.csv", index=False)
        chart = cdf_comparison_chart(ra.histograms, rb.histograms, comparison.labels,
                                     out_dir / f"{slug}_latency_cdf.png",
                                     f"{title}: latency CDF per operation ({args.replications} replications "
                                     "each, merged)")
        body = comparison.markdown(chart, DOCS, heading="##")
        body = body.replace(f"## {comparison.labels[0]} vs {comparison.labels[1]}",
                            f"## {title}\n\n{what} `scenarios/tradeoffs/{a}.yaml` (A) vs `{b}.yaml` (B); "
                            f"data: [tradeoffs/{slug}.csv](tradeoffs/{slug}.csv).", 1)
        sections.append(body)
        rows = {r.metric: r for r in comparison.rows()}
        cells = [f"[{title}](#{_anchor(title)})"]
        for metric in HEADLINE:
            r = rows.get(metric)
            if r is None:
                cells.append("-")
                continue
            rel = f" ({r.relative:+.0%})" if math.isfinite(r.relative) and abs(r.relative) >= 0.005 else ""
            same = r.verdict == "identical"
            cells.append("same" if same else f"{format_interval(r.diff, signed=True)}{rel}")
        moved = [f"{name}: {va} -> {vb}" for name, va, vb, changed in comparison.slo_changes() if changed]
        cells.append("; ".join(moved) or "none")
        summary_rows.append(cells)
    head = ["pair (B - A)", *(label_of(m) for m in HEADLINE), "SLO verdicts that change"]
    base = load_scenario(PAIRS_DIR / "base.yaml")
    scale = "every request at full scale" if base.sample >= 1 else f"a cell of F = {base.sample:g}"
    seeing = ("Each run simulates every node of the ring, so the hottest node's queue is in the figures "
              "(a cell keeps each simulated node at a real node's mean load, not the hottest's; README, "
              "Sampling)." if base.sample >= 1 else
              f"The cell (F = {base.sample:g}) keeps each simulated node at a real node's mean load but "
              "cannot show the ring's hottest node nor a single hot key (README, Sampling).")
    lines = [
        "# Design trade-offs",
        "",
        "Five classic decisions for the messaging system, each simulated as a pair of scenarios that "
        "differ in that decision only (`scenarios/tradeoffs/`, all extending `base.yaml`: 80k sends/s, "
        f"240k reads/s, 800k users, 64 Cassandra nodes, {scale}, {base.duration_s:g} s simulated with "
        f"{base.warmup_s:g} s of warm-up).",
        f"Each arm runs {args.replications} replications; both arms of a pair use the same "
        f"{args.replications} seeds (common random numbers), so B - A is estimated from paired differences "
        "(Student t, 95%). "
        "A difference whose interval excludes 0 is one the simulation can tell apart from noise; \"same\" "
        "means equal in every replication pair (the decision does not touch that figure).",
        "",
        f"Regenerate: `.venv/bin/python scripts/tradeoffs.py` (last run {dt.date.today().isoformat()}, "
        f"executor: {executor.name}). One pair by hand: "
        "`capsim compare scenarios/tradeoffs/consistency-quorum.yaml "
        "scenarios/tradeoffs/consistency-one.yaml`.",
        "",
        "## Headline: B - A [95% CI] (relative)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(row) + " |" for row in summary_rows),
        "",
        "What the model leaves out matters for reading these: staleness of ONE reads, Cassandra "
        "compaction and repair, GC pauses, cache warm-up after a deploy, and failures (see README, "
        f"Not modelled). {seeing}",
        "",
        *sections,
    ]
    (DOCS / "tradeoffs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {DOCS / 'tradeoffs.md'} and {out_dir}/")


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


if __name__ == "__main__":
    main()
