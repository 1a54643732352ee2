"""What a run measures: per flow (request type) counters, latency histograms, errors and a per-second series.

Counting rules (the conservation law `sent = succeeded + failed + in flight` holds over the whole
run, warm-up included). Latency, availability and throughput are measured on requests that
*arrive* after the warm-up; the per-window series counts arrivals as offered and completions in
the window they complete in, with p50/p99 from a histogram reset each window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.histogram import Histogram

OPS = ("send", "read", "delivery")  # the messaging preset's flows (the calendar's recorder keeps these too)


def flows_in_series(columns: Iterable[str]) -> list[str]:
    """The flows a per-window series (`Recorder.close_window` rows) has columns for, in column
    order: every name with a `<flow>_succeeded_per_sec` column (a flow's name may hold underscores)."""
    suffix = "_succeeded_per_sec"
    return list(dict.fromkeys(c.removesuffix(suffix) for c in columns
                              if c.endswith(suffix) and len(c) > len(suffix)))


class Breakdown:
    """Where the time of slow requests goes, by component, in bounded memory.

    Requests are grouped by latency into log buckets (5% wide); each bucket sums the time its
    requests spent in each component along their critical path (network hops count with the
    component they lead to). `tail(p)` averages the buckets from the one holding the p-quantile
    up: the make-up of the requests at or above it (the boundary bucket included, so the cut is
    within 5% of the quantile).
    """

    GROWTH = 1.05

    def __init__(self) -> None:
        self._log_g = math.log(self.GROWTH)
        self.buckets: dict[int, list[Any]] = {}  # bucket -> [count, {component: seconds}]

    def add(self, latency_ms: float, t0: float, marks: list[tuple[str, float]]) -> None:
        b = int(math.log(latency_ms / 1e-3) / self._log_g) if latency_ms > 1e-3 else -1
        entry = self.buckets.get(b)
        if entry is None:
            entry = self.buckets[b] = [0, {}]
        entry[0] += 1
        parts = entry[1]
        prev = t0
        for component, t in marks:
            parts[component] = parts.get(component, 0.0) + (t - prev)
            prev = t

    def tail(self, from_ms: float) -> dict[str, Any]:
        if not self.buckets or not math.isfinite(from_ms):
            return {}
        cut = int(math.log(from_ms / 1e-3) / self._log_g) if from_ms > 1e-3 else -1
        count = 0
        totals: dict[str, float] = {}
        for b, (n, parts) in self.buckets.items():
            if b >= cut:
                count += n
                for component, seconds in parts.items():
                    totals[component] = totals.get(component, 0.0) + seconds
        whole = sum(totals.values())
        if count == 0 or whole <= 0:
            return {}
        return {
            "tail_from_ms": from_ms,
            "requests": count,
            "mean_ms": {c: v / count * 1e3 for c, v in sorted(totals.items(), key=lambda kv: -kv[1])},
            "shares": {c: v / whole for c, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        }


@dataclass
class OpStats:
    name: str
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0
    # measured: arrived after warm-up
    offered_m: int = 0
    succeeded_m: int = 0
    failed_m: int = 0
    sojourn_sum_m: float = 0.0  # seconds, successes and failures (Little's law)
    in_flight_area: float = 0.0  # integral of in-flight count over measured time
    area_from: float = 0.0  # time up to which in_flight_area is integrated
    latency_ms: Histogram = field(default_factory=Histogram)
    window_latency_ms: Histogram = field(default_factory=Histogram)
    window_offered: int = 0
    window_succeeded: int = 0
    window_failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    errors_m: Counter[str] = field(default_factory=Counter)
    breakdown: Breakdown = field(default_factory=lambda: Breakdown())


class Recorder:
    """Counts, histograms and the time series, fed by the engine's request callbacks."""

    def __init__(self, warmup_s: float, window_s: float = 1.0, ops: Sequence[str] = OPS) -> None:
        """`ops`: the run's flows, in the order summary.json lists them."""
        if len(set(ops)) != len(ops) or not all(ops):
            raise ValueError(f"recorder ops must be distinct non-empty names; got {list(ops)}")
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.ops = {name: OpStats(name) for name in ops}
        self.rows: list[dict[str, float]] = []
        self._measuring = warmup_s <= 0

    # -- events -----------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        """Integrate every operation's in-flight count up to `now`."""
        for op in self.ops.values():
            self._advance_op(op, now)

    def _advance_op(self, s: OpStats, now: float) -> None:
        dt = now - s.area_from
        if dt < 0:
            raise RuntimeError(f"recorder clock moved backwards: {s.area_from} -> {now}")
        if self._measuring:
            s.in_flight_area += s.in_flight * dt
        s.area_from = now

    def start(self, op: str, t0: float, now: float) -> None:
        s = self.ops[op]
        self._advance_op(s, now)
        s.sent += 1
        s.in_flight += 1
        s.window_offered += 1
        if t0 >= self.warmup_s:
            s.offered_m += 1

    def finish(self, op: str, t0: float, started: float, now: float, error: str | None,
               marks: list[tuple[str, float]] | None = None) -> None:
        """`t0` starts the latency; `started` is when the request entered (Little's law);
        `marks` are (component, time its part ended) along the request's critical path."""
        s = self.ops[op]
        self._advance_op(s, now)
        s.in_flight -= 1
        measured = t0 >= self.warmup_s
        if error is None:
            s.succeeded += 1
            s.window_succeeded += 1
            ms = (now - t0) * 1e3
            s.window_latency_ms.record(ms)
            if measured:
                s.succeeded_m += 1
                s.latency_ms.record(ms)
                if marks:
                    s.breakdown.add(ms, t0, marks)
        else:
            s.failed += 1
            s.window_failed += 1
            s.errors[error] += 1
            if measured:
                s.failed_m += 1
                s.errors_m[error] += 1
        if measured:
            s.sojourn_sum_m += now - started

    def begin_measuring(self, now: float) -> None:
        self._advance(now)
        self._measuring = True

    def close_window(self, t_end: float, scale: float) -> dict[str, float]:
        """Finish the window ending at `t_end`; rates are scaled to the full design by `scale`."""
        self._advance(t_end)
        row: dict[str, float] = {"t_s": t_end}
        for name, s in self.ops.items():
            p50, p99 = s.window_latency_ms.quantiles([0.5, 0.99])
            row[f"{name}_offered_per_sec"] = s.window_offered * scale / self.window_s
            row[f"{name}_succeeded_per_sec"] = s.window_succeeded * scale / self.window_s
            row[f"{name}_failed_per_sec"] = s.window_failed * scale / self.window_s
            row[f"{name}_p50_ms"] = p50
            row[f"{name}_p99_ms"] = p99
            s.window_latency_ms.reset()
            s.window_offered = s.window_succeeded = s.window_failed = 0
        self.rows.append(row)
        return row

    # -- results ----------------------------------------------------------------------------
    def little(self, measured_s: float) -> dict[str, dict[str, float]]:
        """Time-average requests in flight (L) against arrival rate x mean time in system."""
        out = {}
        for name, s in self.ops.items():
            done = s.succeeded_m + s.failed_m
            if done == 0 or measured_s <= 0:
                continue
            lam = s.offered_m / measured_s
            w = s.sojourn_sum_m / done
            L = s.in_flight_area / measured_s
            out[name] = {
                "L": L,
                "lambda_per_sec": lam,
                "W_s": w,
                "lambda_W": lam * w,
                "relative_difference": abs(L - lam * w) / L if L > 0 else math.nan,
            }
        return out


def queue_figures(at_once: int, queued: int, wait_s: float) -> tuple[float, float]:
    """(P(wait), mean queue wait in ms over all jobs started, zero waits included) from the count of
    jobs that started service on arrival, the count that queued first, and their summed wait."""
    started = at_once + queued
    if started <= 0:
        return math.nan, math.nan
    return queued / started, wait_s * 1e3 / started
