"""What a run measures: per-operation counters, latency histograms, errors and a per-second series.

Counting rules (the conservation law `sent = succeeded + failed + in flight` holds over the whole
run, warm-up included). Latency, availability and throughput are measured on requests that
*arrive* after the warm-up; the per-window series counts arrivals as offered and completions in
the window they complete in, with p50/p99 from a histogram reset each window.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from sim.histogram import Histogram

OPS = ("send", "read", "delivery")


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
    latency_ms: Histogram = field(default_factory=Histogram)
    window_latency_ms: Histogram = field(default_factory=Histogram)
    window_offered: int = 0
    window_succeeded: int = 0
    window_failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    errors_m: Counter[str] = field(default_factory=Counter)


class Recorder:
    """Counts, histograms and the time series, fed by the engine's request callbacks."""

    def __init__(self, warmup_s: float, window_s: float = 1.0) -> None:
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.ops = {name: OpStats(name) for name in OPS}
        self.rows: list[dict[str, float]] = []
        self._last_t = 0.0
        self._measuring = warmup_s <= 0

    # -- events -----------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        dt = now - self._last_t
        if dt < 0:
            raise RuntimeError(f"recorder clock moved backwards: {self._last_t} -> {now}")
        if self._measuring and dt > 0:
            for op in self.ops.values():
                op.in_flight_area += op.in_flight * dt
        self._last_t = now

    def start(self, op: str, t0: float, now: float) -> None:
        self._advance(now)
        s = self.ops[op]
        s.sent += 1
        s.in_flight += 1
        s.window_offered += 1
        if t0 >= self.warmup_s:
            s.offered_m += 1

    def finish(self, op: str, t0: float, started: float, now: float, error: str | None) -> None:
        """`t0` starts the latency; `started` is when the request entered (Little's law)."""
        self._advance(now)
        s = self.ops[op]
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
