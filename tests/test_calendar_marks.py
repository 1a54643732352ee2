"""sim/calendar/marks.py: each flow's labels, the guard on a label outside them, and the tail sums
against sim/metrics.Breakdown.add, the DES's accumulation, on the same requests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import load_scenario
from sim.arrays.tails import TailSums
from sim.calendar.marks import FI_LABELS, label_table, mark
from sim.calendar.program import build
from sim.calendar.tables import RQF_MARK, RQF_PART0
from sim.metrics import Breakdown


def test_each_flow_has_the_labels_of_its_own_path() -> None:
    prog = build(load_scenario("scenarios/interview-small.yaml", ["sample=0.1", "duration_s=1",
                                                                  "warmup_s=0"]))
    table, names = label_table(prog.system, prog.comp_names, prog.flows)
    got = {flow: names[i] for i, flow in enumerate(prog.flows)}
    assert got == {
        "send": ["gateway", "message_service", "cassandra", "redis", "kafka"],
        "read": ["gateway", "message_service", "redis", "cassandra"],
        "delivery": ["cassandra", "group_service", "kafka_consumer_lag", "send_and_produce"],
    }
    for i in range(len(prog.flows)):  # each of a flow's columns is one label's, the rest -1
        cols = table[i][table[i] >= 0]
        assert sorted(cols.tolist()) == list(range(len(names[i])))
        assert (table[i] == -1).sum() == table.shape[1] - len(names[i])


def test_a_mark_outside_its_flows_labels_is_an_error_not_a_loss() -> None:
    rqf = np.full((1, RQF_PART0 + 1), math.nan)
    rqf[0, RQF_MARK] = 0.0  # the last mark's time
    flow_i = np.full((1, FI_LABELS + 2), -1, np.int64)
    flow_i[0, FI_LABELS + 0] = 0  # label 0 marks column 0; label 1 is not the flow's
    mark(rqf, flow_i, np.int64(0), np.int64(0), np.int64(0), 0.002)
    assert rqf[0, RQF_PART0] == pytest.approx(0.002)
    with pytest.raises(RuntimeError, match="outside its flow's labels"):
        mark(rqf, flow_i, np.int64(0), np.int64(0), np.int64(1), 0.003)


def test_tail_sums_are_breakdown_add_on_the_same_requests() -> None:
    """Random requests of two flows, some failed, some before the warm-up or past the horizon, each
    with a random subset of its parts: the sums per bucket are Breakdown.add's (to rounding), and
    parts no request of a bucket carried are not named."""
    rng = np.random.default_rng(7)
    n, W, D = 20_000, 1.0, 9.0
    names = [["a", "b", "c"], ["x", "y"]]
    flow = rng.integers(0, 2, n)
    t0 = rng.uniform(0, 10, n)
    latency_s = rng.lognormal(math.log(2e-3), 1.0, n)
    seconds = rng.uniform(0, 1, (n, 3)) * latency_s[:, None] / 3
    seconds[rng.random((n, 3)) < 0.3] = math.nan
    seconds[flow == 1, 2] = math.nan  # flow 1 has two columns
    ok = rng.random(n) < 0.9
    out_i = np.stack([flow, ok.astype(np.int64), np.zeros(n, np.int64)], axis=1)
    out_f = np.concatenate([np.stack([t0, t0, t0 + latency_s], axis=1), seconds], axis=1)
    tails = TailSums(["f0", "f1"], names, 3, 1)
    half = n // 2  # two batches, as the recorder hands them over
    tails.add(out_i[:half], out_f[:half], W, D)
    tails.add(out_i[half:], out_f[half:], W, D)
    got = {"f0": Breakdown(), "f1": Breakdown()}
    tails.into(got)

    expected = {"f0": Breakdown(), "f1": Breakdown()}
    for i in range(n):
        if not ok[i] or t0[i] < W or not t0[i] + latency_s[i] < D:
            continue
        fl = int(flow[i])
        prev, marks = t0[i], []
        for k, name in enumerate(names[fl]):
            if not math.isnan(seconds[i, k]):
                prev += seconds[i, k]
                marks.append((name, prev))
        expected[f"f{fl}"].add(latency_s[i] * 1e3, t0[i], marks)
    for flow_name in ("f0", "f1"):
        e, g = expected[flow_name].buckets, got[flow_name].buckets
        # a latency within rounding of a bucket's edge may land on either side of it
        assert sum(c for c, _ in g.values()) == sum(c for c, _ in e.values())
        moved = sum(abs(g.get(b, [0])[0] - e.get(b, [0])[0]) for b in set(e) | set(g))
        assert moved <= 2, moved
        for b in set(e) & set(g):
            if g[b][0] != e[b][0]:
                continue
            assert set(g[b][1]) == set(e[b][1]), b
            for part, s in e[b][1].items():
                assert g[b][1][part] == pytest.approx(s, rel=1e-9, abs=1e-15)
        for cut_ms in (1.0, 5.0, 20.0):  # and the figures the report shows
            te, tg = expected[flow_name].tail(cut_ms), got[flow_name].tail(cut_ms)
            assert tg["requests"] == pytest.approx(te["requests"], abs=2)
            for part, share in te["shares"].items():
                assert tg["shares"][part] == pytest.approx(share, abs=1e-3)


def test_marking_every_kth_request_changes_nothing_but_the_breakdowns_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MARKED_PER_SEC requests a second one in k is marked (sim/calendar/marks.py). With the
    threshold lowered so that k = 4 on interview-small: every other figure is the same to the bit
    (marks draw nothing), the tail's request count (the sample's times k) is within 4 binomial
    standard deviations of the full count, sqrt(n (k - 1)), and each part's share within 4 x its
    bound, 0.5 / sqrt(tail requests sampled) (a share averages per-request fractions in [0, 1])."""
    import sim.calendar.engine as calendar_engine
    from sim import simulate

    sc = load_scenario("scenarios/interview-small.yaml", ["sample=0.25", "duration_s=4", "warmup_s=1"])
    full = simulate(sc, engine="calendar").summary
    rate = 0.25 * (10_000 + 30_000)  # the cell's client requests a second
    monkeypatch.setattr(calendar_engine, "MARKED_PER_SEC", rate / 4)
    thinned = simulate(sc, engine="calendar").summary
    drop = {"latency_breakdown", "wall_seconds"}
    same = {k: v for k, v in full.items() if k not in drop}
    assert {k: v for k, v in thinned.items() if k not in drop} == same
    k = 4
    for flow in ("send", "read", "delivery"):
        a, b = full["latency_breakdown"][flow], thinned["latency_breakdown"][flow]
        n = a["requests"]
        assert abs(b["requests"] - n) <= 4 * math.sqrt(n * (k - 1)), (flow, n, b["requests"])
        bound = 4 * 0.5 / math.sqrt(b["requests"] / k)
        for part, share in a["shares"].items():
            if share > 0.05:
                assert abs(b["shares"].get(part, 0.0) - share) <= bound, (flow, part, share, b["shares"])
