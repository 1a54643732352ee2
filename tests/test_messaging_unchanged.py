"""The messaging design's figures did not move when its request paths became flows (issue 11).

tests/data/messaging_*.json hold figures of summary.json (latencies, throughput, availability,
errors, request counts, cache and Kafka figures, each component's utilization, load, rejections
and p99 queue wait) that the DES produced for these runs BEFORE the messaging sections were
compiled into flows and interpreted (commit 6ad3302, the last with the hand-written paths; the
figures were produced by that commit's code, run from a separate checkout). The
interpreter draws every random number in the same order, so the figures are the same to the last
bit; the comparison allows 1e-9 relative for floating-point summation order only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim import load_scenario, simulate

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CASES = {
    "interview": ["duration_s=4", "warmup_s=1"],
    "interview_fanread": ["duration_s=3", "warmup_s=1", "group_service.fan_out=read",
                          "message_service.partition_key=conversation"],
}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flat(v, key))
        else:
            out[key] = v
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_messaging_figures_are_the_hand_written_engines(case: str) -> None:
    held = json.loads((DATA / f"messaging_{case}.json").read_text())
    sc = load_scenario(SCENARIOS / "interview-small.yaml", CASES[case])
    now = flat(simulate(sc, engine="des").summary)
    moved = {k: (v, now.get(k)) for k, v in held.items() if now.get(k) != pytest.approx(v, rel=1e-9)}
    assert not moved, f"{len(moved)} figures moved, e.g. {list(moved.items())[:5]}"
    assert len(held) > 60  # latencies, throughput, availability, errors, components: not a token check
