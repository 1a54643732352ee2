"""What the calendar engine (sim/calendar) measures, in the shapes sim/result.py reads from the DES.

Requests are recorded in bulk when their outcome is known: counters, latency histograms
(bucketed by compiled code in sim/histogram.py's layout, then handed over as `Histogram`s),
per-window counts and percentiles, the Little's-law integrals and the tail breakdown, into a
real `sim.metrics.Recorder`. Stations' statistics come back as `FleetView`/`StationView`, which
answer what `build_result` asks of the DES's `Fleet` and `Station`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np

from sim.arrays.station import (
    ARRIVALS,
    BUSY_S,
    COMPLETIONS,
    JOBS_S,
    QUEUED,
    REJECTIONS,
    SERVERS,
    STARTED,
    WAIT_S,
    Stations,
)
from sim.histogram import GROWTH, MIN_VALUE, Histogram
from sim.metrics import Breakdown, Recorder

BUCKETS = 1600
_LOG_G = math.log(GROWTH)


@nb.njit(cache=True)
def bucket_of(values_ms: np.ndarray) -> np.ndarray:
    """Histogram bucket of each value (-1 below MIN_VALUE, capped at BUCKETS - 1)."""
    out = np.empty(values_ms.size, np.int64)
    for i in range(values_ms.size):
        v = values_ms[i]
        if v < MIN_VALUE:
            out[i] = -1
        else:
            out[i] = min(int(math.log(v / MIN_VALUE) / _LOG_G), BUCKETS - 1)
    return out


@nb.njit(cache=True)
def _tally(
    win: np.ndarray,
    lat_ms: np.ndarray,
    buckets: np.ndarray,
    counts: np.ndarray,
    under: np.ndarray,
    vmin: np.ndarray,
    vmax: np.ndarray,
) -> None:
    """Per-window latency histograms (bucket counts, underflow, min, max; NaN wins as np.minimum)."""
    for i in range(win.size):
        w, b, x = win[i], buckets[i], lat_ms[i]
        if b < 0:
            under[w] += 1
        else:
            counts[w, b] += 1
        if x < vmin[w] or math.isnan(x):
            vmin[w] = x
        if x > vmax[w] or math.isnan(x):
            vmax[w] = x


def histogram_from(counts: np.ndarray, underflow: int, total: float, vmin: float, vmax: float) -> Histogram:
    """A sim.histogram.Histogram holding these bucket counts (same layout; filled field by field)."""
    hist = Histogram()
    last = int(np.flatnonzero(counts)[-1]) + 1 if counts.any() else 0
    hist._counts = counts[:last].astype(np.int64).copy()
    hist._underflow = int(underflow)
    hist._count = int(counts.sum()) + int(underflow)
    hist._sum = float(total)
    if hist._count:
        hist._min = float(vmin)
        hist._max = float(vmax)
    return hist


class BulkHistogram:
    """Bucket counts plus count/sum/min/max, fed with arrays; `.histogram()` converts."""

    def __init__(self) -> None:
        self.counts = np.zeros(BUCKETS, np.int64)
        self.underflow = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, values_ms: np.ndarray, buckets: np.ndarray | None = None) -> None:
        if values_ms.size == 0:
            return
        b = bucket_of(values_ms) if buckets is None else buckets
        low = b < 0
        self.underflow += int(low.sum())
        self.counts += np.bincount(b[~low], minlength=BUCKETS)
        self.total += float(values_ms.sum())
        self.min = min(self.min, float(values_ms.min()))
        self.max = max(self.max, float(values_ms.max()))

    def histogram(self) -> Histogram:
        return histogram_from(self.counts, self.underflow, self.total, self.min, self.max)


class Marks:
    """The critical path of a batch of requests: (component, time its part ended), NaN = not on it."""

    def __init__(self, parts: Sequence[tuple[str, np.ndarray]]) -> None:
        self.parts = list(parts)


class FastRecorder:
    """Feeds a sim.metrics.Recorder with batches. Outcomes count up to `horizon_s` (the duration, or
    infinity when draining); windows are `window_s` long over [0, duration)."""

    def __init__(self, warmup_s: float, horizon_s: float, duration_s: float, window_s: float = 1.0,
                 ops: Sequence[str] | None = None) -> None:
        self.recorder = Recorder(warmup_s, window_s) if ops is None else Recorder(warmup_s, window_s, ops=ops)
        self.W = warmup_s
        self.D = horizon_s
        self.window_s = window_s
        self.n_windows = math.floor(duration_s / window_s + 1e-9)
        n = self.n_windows + 1  # the last slot collects what falls after the last full window
        self.latency = {op: BulkHistogram() for op in self.recorder.ops}
        self.win_counts = {op: np.zeros((n, BUCKETS), np.int32) for op in self.recorder.ops}
        self.win_under = {op: np.zeros(n, np.int64) for op in self.recorder.ops}
        self.win_min = {op: np.full(n, math.inf) for op in self.recorder.ops}
        self.win_max = {op: np.full(n, -math.inf) for op in self.recorder.ops}
        self.offered = {op: np.zeros(n, np.int64) for op in self.recorder.ops}
        self.succeeded = {op: np.zeros(n, np.int64) for op in self.recorder.ops}
        self.failed = {op: np.zeros(n, np.int64) for op in self.recorder.ops}
        self.in_flight_end = dict.fromkeys(self.recorder.ops, 0)

    def _window(self, t: np.ndarray) -> np.ndarray:
        return np.minimum((t / self.window_s).astype(np.int64), self.n_windows)

    def start(self, op: str, t0: np.ndarray, started: np.ndarray) -> None:
        s = self.recorder.ops[op]
        keep = started < self.D
        s.sent += int(keep.sum())
        s.offered_m += int((t0[keep] >= self.W).sum())
        _count(self.offered[op], self._window(started[keep]))

    def _area(self, started: np.ndarray, end: np.ndarray) -> float:
        lo = np.maximum(started, self.W)
        hi = np.minimum(end, self.D)
        return float(np.clip(hi - lo, 0.0, None).sum())

    def finish(
        self,
        op: str,
        t0: np.ndarray,
        started: np.ndarray,
        fin: np.ndarray,
        ok: np.ndarray,
        causes: np.ndarray,
        cause_names: Sequence[str],
        marks: Marks,
    ) -> None:
        """Requests whose outcome is known (`fin` may lie beyond the run: then they are in flight)."""
        s = self.recorder.ops[op]
        s.in_flight_area += self._area(started, fin)
        within = fin < self.D
        self.in_flight_end[op] += int((~within).sum())
        t0, started, fin, ok, causes = t0[within], started[within], fin[within], ok[within], causes[within]
        measured = t0 >= self.W
        win = self._window(fin)
        n_ok = int(ok.sum())
        s.succeeded += n_ok
        s.failed += int(ok.size - n_ok)
        _count(self.succeeded[op], win[ok])
        _count(self.failed[op], win[~ok])
        lat = (fin[ok] - t0[ok]) * 1e3
        b = bucket_of(lat)
        _tally(win[ok], lat, b, self.win_counts[op], self.win_under[op], self.win_min[op], self.win_max[op])
        m_ok = measured[ok]
        self.latency[op].add(lat[m_ok], b[m_ok])
        s.succeeded_m += int(m_ok.sum())
        failed_m = measured & ~ok
        s.failed_m += int(failed_m.sum())
        if failed_m.any():
            codes, counts = np.unique(causes[failed_m], return_counts=True)
            for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
                s.errors_m[cause_names[code]] += n
        if (~ok).any():
            codes, counts = np.unique(causes[~ok], return_counts=True)
            for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
                s.errors[cause_names[code]] += n
        s.sojourn_sum_m += float((fin[measured] - started[measured]).sum())
        sel = np.flatnonzero(within)[ok & measured]
        if sel.size and marks.parts:  # without marks the breakdown has nothing to show (Breakdown.tail)
            _breakdown(
                s.breakdown, lat[m_ok], t0[ok & measured], [(name, times[sel]) for name, times in marks.parts]
            )

    def unfinished(self, op: str, started: np.ndarray) -> None:
        """Requests started but with no known outcome at the end of the run."""
        s = self.recorder.ops[op]
        keep = started < self.D
        s.in_flight_area += self._area(started[keep], np.full(int(keep.sum()), self.D))
        self.in_flight_end[op] += int(keep.sum())

    def close(self, end_s: float, scale: float, extra: dict[str, np.ndarray]) -> Recorder:
        """Fill the Recorder's histograms, in-flight counts and per-window rows (`extra`: more columns)."""
        rec = self.recorder
        for op, s in rec.ops.items():
            s.latency_ms = self.latency[op].histogram()
            s.in_flight = self.in_flight_end[op]
            s.area_from = end_s
        rec._measuring = True
        for w in range(self.n_windows):
            rec.rows.append(self.window_row(w, scale, extra))
        return rec

    def window_row(self, w: int, scale: float,
                   extra: dict[str, np.ndarray] | None = None) -> dict[str, float]:
        """Window `w`'s timeseries row from what is recorded so far (`extra`: more columns)."""
        row: dict[str, float] = {"t_s": (w + 1) * self.window_s}
        for op in self.recorder.ops:
            hist = histogram_from(
                self.win_counts[op][w].astype(np.int64),
                int(self.win_under[op][w]),
                0.0,
                float(self.win_min[op][w]),
                float(self.win_max[op][w]),
            )
            p50, p99 = hist.quantiles([0.5, 0.99])
            row[f"{op}_offered_per_sec"] = float(self.offered[op][w]) * scale / self.window_s
            row[f"{op}_succeeded_per_sec"] = float(self.succeeded[op][w]) * scale / self.window_s
            row[f"{op}_failed_per_sec"] = float(self.failed[op][w]) * scale / self.window_s
            row[f"{op}_p50_ms"] = float(p50)
            row[f"{op}_p99_ms"] = float(p99)
        for name, values in (extra or {}).items():
            row[name] = float(values[w])
        return row


def _count(counts: np.ndarray, windows: np.ndarray) -> None:
    """counts[w] += 1 for each w in `windows` (np.add.at's result, by one bincount)."""
    if windows.size:
        counts += np.bincount(windows, minlength=counts.size)[:counts.size]


def _breakdown(
    bd: Breakdown, latency_ms: np.ndarray, t0: np.ndarray, parts: list[tuple[str, np.ndarray]]
) -> None:
    """Breakdown.add for a batch: time between successive marks, summed per 5% latency bucket."""
    bucket = np.where(
        latency_ms > 1e-3,
        np.floor(np.log(np.maximum(latency_ms, 1e-300) / 1e-3) / math.log(Breakdown.GROWTH)),
        -1,
    ).astype(np.int64)
    first = int(bucket.min())
    index = bucket - first
    counts = np.bincount(index)
    present = np.flatnonzero(counts)
    prev = t0.copy()
    sums: dict[str, np.ndarray] = {}
    marked: dict[str, np.ndarray] = {}  # requests per bucket that carry the mark
    for name, times in parts:
        here = ~np.isnan(times)
        if not here.any():
            continue
        seg = np.where(here, times - prev, 0.0)
        sums[name] = sums.get(name, 0.0) + np.bincount(index, weights=seg, minlength=counts.size)
        marked[name] = marked.get(name, 0.0) + np.bincount(index, weights=here, minlength=counts.size)
        prev = np.where(here, times, prev)
    totals = {name: (arr[present].tolist(), marked[name][present].tolist()) for name, arr in sums.items()}
    for i, (x, n) in enumerate(zip(present.tolist(), counts[present].tolist(), strict=True)):
        entry = bd.buckets.get(x + first)
        if entry is None:
            entry = bd.buckets[x + first] = [0, {}]
        entry[0] += n
        for name, (values, carried) in totals.items():
            if carried[i] > 0:  # as Breakdown.add: a part is named where a request of the bucket has it,
                entry[1][name] = entry[1].get(name, 0.0) + values[i]  # however the requests were batched


class StationView:
    """One simulated instance's statistics, as sim/result.py reads a DES Station."""

    def __init__(
        self,
        index: int,
        servers: int,
        arrivals: int,
        rejections: int,
        completions: int,
        busy_s: float,
        jobs_s: float,
        started: int = 0,
        queued: int = 0,
        wait_s: float = 0.0,
    ) -> None:
        self.index = index
        self.servers = servers
        self.arrivals = arrivals
        self.rejections = rejections
        self.completions = completions
        self.busy_area = busy_s
        self.jobs_area = jobs_s
        self.at_once = started - queued  # jobs that started service on arrival, as the DES counts them
        self.queued = queued  # jobs that started after queueing ...
        self.wait_s = wait_s  # ... and their summed wait

    def utilization(self, elapsed_s: float) -> float:
        return self.busy_area / (self.servers * elapsed_s) if elapsed_s > 0 else 0.0


class FleetView:
    """A fleet's instances and queue waits, as sim/result.py reads a DES Fleet."""

    def __init__(self, name: str, stations: list[StationView], waits: Histogram) -> None:
        self.name = name
        self.stations = stations
        self._waits = waits

    def wait_histogram(self) -> Histogram:
        return Histogram().merge(self._waits)


def fleet_views(S: Stations, spans: Sequence[tuple[str, int, int]]) -> dict[str, FleetView]:
    """Each fleet's statistics from the stations' arrays: spans[c] = (name, first station, count) of
    fleet c (the row of S.waits and S.wait_stats its jobs' waits went to)."""
    fleets = {}
    for c, (name, b, cnt) in enumerate(spans):
        views = [StationView(i, int(S.ints[b + i, SERVERS]), int(S.ints[b + i, ARRIVALS]),
                             int(S.ints[b + i, REJECTIONS]), int(S.ints[b + i, COMPLETIONS]),
                             float(S.floats[b + i, BUSY_S]), float(S.floats[b + i, JOBS_S]),
                             int(S.ints[b + i, STARTED]), int(S.ints[b + i, QUEUED]),
                             float(S.floats[b + i, WAIT_S])) for i in range(cnt)]
        zero = int(S.waits[c, -1])
        total, vmax, vmin = S.wait_stats[c]
        waits = histogram_from(S.waits[c, :-1], zero, float(total), 0.0 if zero else float(vmin),
                               max(float(vmax), 0.0))
        fleets[name] = FleetView(name, views, waits)
    return fleets
