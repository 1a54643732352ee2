"""The compiled primitives under the calendar engine (sim/arrays): the station recursion against
an event-by-event FIFO queue, job by job to rounding, and member draws by rejection against their
weights (chi-square). Both are exact checks or a goodness-of-fit test at a fixed seed. And the
cache hint the kernel uses (sim/arrays/prefetch.py): it changes no result, and is really emitted."""

from __future__ import annotations

import math
import platform
from collections import deque

import numba as nb
import numpy as np
import pytest
from scipy import stats

from sim.arrays.prefetch import prefetch_row
from sim.arrays.station import (
    CRASHED,
    DOWN,
    OUT_OF_ORDER,
    QUEUED,
    REJECTED,
    STARTED,
    UNAVAILABLE,
    WAIT_S,
    Stations,
    Windows,
    build_stations,
    serve,
)


@nb.njit
def serve_in_order(S: Stations, t: np.ndarray, svc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Station 0 serves jobs arriving at `t` (time order) with service times `svc`: (start, end)
    per job; a failed job has start < 0 (its code) and end = the time the caller learns of it."""
    ints, floats, free, ring, win, waits, wait_stats, glob, counts = S
    start = np.empty(t.size)
    end = np.empty(t.size)
    for i in range(t.size):
        start[i], end[i] = serve(ints, floats, free, ring, win, waits, wait_stats, glob, counts, 0, t[i],
                                 svc[i])
    return start, end


def reference_queue(
    arrivals: list[float],
    services: list[float],
    servers: int,
    qlimit: int | None,
    windows: list[tuple[float, float, int, float]],
) -> list[tuple[float, float]]:
    """A FIFO queue simulated event by event, as sim/des/station.py does it: a job starts when it
    is at the head and fewer jobs are in service than the capacity in force; an arrival that must
    wait while `qlimit` jobs wait is rejected ((REJECTED, arrival)); a window [t0, t1) sets the
    capacity and multiplies the service of jobs that start in it. A window of capacity DOWN is a
    crash (Station.crash/recover): queued jobs fail at its start, jobs in service fail when they
    would have ended and free their servers, arrivals in it are refused ((UNAVAILABLE, arrival)).
    Returns (start, end) per job, or (code, time of the failure)."""

    def window_at(t: float) -> tuple[int, float]:
        for t0, t1, cap, factor in windows:
            if t0 <= t < t1:
                return cap, factor
        return servers, 1.0

    crashes = sorted(t0 for t0, _, cap, _ in windows if cap == DOWN)
    edges = sorted({x for t0, t1, _, _ in windows for x in (t0, t1)})
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(arrivals)
    in_service: dict[int, float] = {}  # job -> end
    queue: deque[int] = deque()
    i = 0

    def start_waiting(now: float) -> None:
        cap, factor = window_at(now)
        while queue and len(in_service) < cap:
            j = queue.popleft()
            end = now + services[j] * factor
            out[j] = (now, end)
            in_service[j] = end

    while i < len(arrivals) or queue or in_service:
        nexts = [arrivals[i]] if i < len(arrivals) else []
        nexts += [min(in_service.values())] if in_service else []
        nexts += [e for e in edges if not nexts or e < min(nexts)][:1]
        now = min(nexts)
        for j in [j for j, e in in_service.items() if e <= now]:
            del in_service[j]
        if crashes and crashes[0] == now:
            crashes.pop(0)
            for j in queue:
                out[j] = (CRASHED, now)
            queue.clear()
            for j, e in in_service.items():
                out[j] = (CRASHED, e)
            in_service.clear()
        start_waiting(now)
        if i < len(arrivals) and arrivals[i] == now:
            cap, factor = window_at(now)
            if cap == DOWN:
                out[i] = (UNAVAILABLE, now)
            elif not queue and len(in_service) < cap:
                out[i] = (now, now + services[i] * factor)
                in_service[i] = now + services[i] * factor
            elif qlimit is not None and len(queue) >= qlimit:
                out[i] = (REJECTED, now)
            else:
                queue.append(i)
            i += 1
        edges = [e for e in edges if e > now]
    return out


@pytest.mark.parametrize(
    ("servers", "qlimit", "windowed"),
    [
        (1, None, ""),
        (3, 2, ""),
        (20, None, ""),
        (20, 5, ""),  # 20 servers: the heap
        (1, None, "capacity"),
        (4, 3, "capacity"),
        (4, None, "capacity"),
        (1, None, "crash"),
        (4, 3, "crash"),
        (20, 5, "crash"),
    ],
)
def test_station_recursion_matches_an_event_by_event_queue(
    servers: int, qlimit: int | None, windowed: str
) -> None:
    """Start and end of every job, to rounding, including capacity windows (a GC-pause-like 0, a
    reduced capacity, a slow factor), crashes (two, one of them inside a slow window's reach) and
    queue-bound rejections."""
    rng = np.random.default_rng(servers * 10 + (qlimit or 0) + len(windowed))
    n = 3000
    t = np.cumsum(rng.exponential(1.0 / (0.9 * servers), n))
    svc = rng.exponential(1.0, n)
    wins = {
        "": [],
        "capacity": [
            (t[300], t[300] + 15.0, 0, 1.0),
            (t[900], t[900] + 40.0, max(servers // 2, 1), 2.5),
            (t[1800], t[1800] + 30.0, servers, 0.5),
        ],
        "crash": [
            (t[300] + 0.1, t[300] + 20.0, DOWN, 1.0),
            (t[900], t[900] + 40.0, servers, 2.5),
            (t[900] + 40.0, t[900] + 45.0, DOWN, 1.0),
            (t[2000] + 0.3, t[2000] + 30.0, max(servers // 2, 1), 1.0),
        ],
    }[windowed]
    expected = reference_queue(t.tolist(), svc.tolist(), servers, qlimit, wins)
    windows = {0: Windows(*(np.array(col) for col in zip(*wins, strict=True)))} if wins else None
    S = build_stations([servers], [qlimit], [0], 1, windows)
    start, end = serve_in_order(S, t, svc)
    exp = np.array(expected)
    np.testing.assert_allclose(start, exp[:, 0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(end, exp[:, 1], rtol=1e-12, atol=1e-9)
    if qlimit is not None:
        assert (start == REJECTED).any(), "the case should exercise rejections"
    if windowed == "crash":
        for code in (UNAVAILABLE, CRASHED):
            assert (start == code).any(), f"the case should exercise outcome {code}"
        # both kinds of crashed work: queued (fails at the crash) and in service (fails later)
        crashed_at = end[start == CRASHED]
        assert np.isin(crashed_at, [w[0] for w in wins if w[2] == DOWN]).any()
        assert (~np.isin(crashed_at, [w[0] for w in wins if w[2] == DOWN])).any()
    else:  # every job that started is served: the wait counters (P(wait), mean wait) match the reference
        ok = exp[:, 0] >= 0
        waited = exp[ok, 0] - t[ok]
        assert S.ints[0, STARTED] == ok.sum() and S.ints[0, QUEUED] == (waited > 0).sum() > 0
        assert S.floats[0, WAIT_S] == pytest.approx(waited.sum(), rel=1e-9)
    assert S.counts[OUT_OF_ORDER] == 0



def test_member_draws_by_rejection_follow_the_member_weights() -> None:
    """sim/arrays/placement.draw_members (the calendar's member draws): a 40-member conversation
    (drawn by rejection) and a 3-member one (drawn by scan) give each member its weight's share:
    chi-square goodness of fit at alpha 1e-3 over 200k draws each, with the scan's own answer as a
    second opinion."""
    from sim.arrays.placement import draw_members, salt_mixed
    from sim.workload import member_ids

    n_users = 1_000
    recipients = np.array([39, 2], dtype=np.int32)
    weights = np.random.default_rng(5).pareto(1.5, n_users) + 0.01  # skewed, like activity / degree
    bound = np.array([max(weights[member_ids(np.full(n, c), np.arange(n), n_users)])
                      for c, n in enumerate(recipients + 1)], dtype=np.float32) * np.float32(1.0001)
    draws = 200_000
    for c in (0, 1):
        members = member_ids(np.full(recipients[c] + 1, c), np.arange(recipients[c] + 1), n_users)
        slots, users = draw_members(np.full(draws, c, np.int64), np.arange(draws, dtype=np.int64),
                                    np.uint64(12345), recipients, weights, bound, np.int64(n_users),
                                    salt_mixed(2))
        assert (users == members[slots]).all()
        p = weights[members] / weights[members].sum()
        counts = np.bincount(slots, minlength=members.size)
        chi2 = float(((counts - draws * p) ** 2 / (draws * p)).sum())
        assert chi2 < stats.chi2.ppf(1 - 1e-3, members.size - 1), (c, chi2)


@nb.njit(cache=False)
def _sum_with_hints(rows: np.ndarray, cells: np.ndarray) -> float:
    total = 0.0
    for i in range(rows.shape[0]):
        prefetch_row(rows, (i * 7) % rows.shape[0])  # rows other than the one read next
        prefetch_row(cells, cells.size - 1 - i)
        total += rows[i, 1] + cells[i]
    return total


def test_a_prefetch_hint_changes_no_result_and_compiles_to_a_prefetch() -> None:
    rows = np.arange(30.0).reshape(10, 3)
    cells = np.arange(10.0) ** 2
    assert _sum_with_hints(rows, cells) == rows[:, 1].sum() + cells.sum()
    if platform.machine() in ("x86_64", "AMD64"):  # the hint is there, not dropped
        asm = _sum_with_hints.inspect_asm(_sum_with_hints.signatures[0])
        assert "prefetcht0" in asm  # the instruction, not a call to an unknown function


@nb.njit(cache=False)
def _hint_only(arr: np.ndarray, i: int) -> None:
    prefetch_row(arr, i)


@pytest.mark.parametrize(("shape", "hints"), [((4, 13), 3), ((4, 3), 3), ((40,), 1)])
def test_a_rows_hint_reaches_its_last_line(shape: tuple[int, ...], hints: int) -> None:
    """A 2-D row is hinted at its first byte, 64 bytes on (or its end, if nearer) and its last byte: a
    13-column int64 row (104 bytes) spans two or three lines, and a hint of its first line alone
    left a read of its 11th column to miss. A 1-D element is one hint."""
    arr = np.zeros(shape, np.int64)
    _hint_only(arr, 2)
    llvm = _hint_only.inspect_llvm(_hint_only.signatures[-1])
    assert llvm.count("call void @llvm.prefetch") == hints
