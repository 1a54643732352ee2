"""A mergeable, bounded-memory, log-bucketed histogram for latencies.

Bucket i holds values in [min_value * g**i, min_value * g**(i+1)) with g = 1.02. A quantile is
reported as the geometric centre of the bucket holding the sample of that rank, so its relative
error is at most sqrt(g) - 1 < 1%. Values below `min_value` (including 0) go to an underflow
bucket reported as 0. Memory is one int64 per bucket actually reached (about 1,300 buckets span
1 microsecond to a day), whatever the number of samples.
"""

from __future__ import annotations

import math

import numpy as np

GROWTH = 1.02
MIN_VALUE = 1e-3  # in the unit recorded (capsim records milliseconds: 1 microsecond)
_BUFFER = 8192


class Histogram:
    __slots__ = ("_buf", "_count", "_counts", "_log_g", "_max", "_min", "_sum", "_underflow", "min_value")

    def __init__(self, min_value: float = MIN_VALUE) -> None:
        self.min_value = min_value
        self._log_g = math.log(GROWTH)
        self._counts = np.zeros(0, dtype=np.int64)
        self._buf: list[float] = []
        self._underflow = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, value: float) -> None:
        self._buf.append(value)
        if len(self._buf) >= _BUFFER:
            self._flush()

    def record_many(self, values: np.ndarray) -> None:
        self._flush()
        self._add(np.asarray(values, dtype=float))

    def record_zeros(self, n: int) -> None:
        """Record `n` zeros (e.g. jobs that did not wait) at once."""
        if n > 0:
            self._underflow += n
            self._count += n
            self._min = 0.0
            self._max = max(self._max, 0.0)

    def _flush(self) -> None:
        if self._buf:
            values = np.fromiter(self._buf, dtype=float, count=len(self._buf))
            self._buf.clear()
            self._add(values)

    def _add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        if np.isnan(values).any() or (values < 0).any():
            raise ValueError("histogram values must be finite and non-negative")
        self._count += int(values.size)
        self._sum += float(values.sum())
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))
        low = values < self.min_value
        self._underflow += int(low.sum())
        high = values[~low]
        if high.size:
            idx = np.floor(np.log(high / self.min_value) / self._log_g).astype(np.int64)
            counts = np.bincount(idx)
            if counts.size > self._counts.size:
                counts[: self._counts.size] += self._counts
                self._counts = counts
            else:
                self._counts[: counts.size] += counts

    def merge(self, other: Histogram) -> Histogram:
        """Add `other`'s samples into this histogram (same bucket layout required)."""
        if other.min_value != self.min_value:
            raise ValueError("cannot merge histograms with different bucket layouts")
        self._flush()
        other._flush()
        self._count += other._count
        self._sum += other._sum
        self._underflow += other._underflow
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        n = max(self._counts.size, other._counts.size)
        merged = np.zeros(n, dtype=np.int64)
        merged[: self._counts.size] += self._counts
        merged[: other._counts.size] += other._counts
        self._counts = merged
        return self

    def reset(self) -> None:
        self._buf.clear()
        self._counts = np.zeros(0, dtype=np.int64)
        self._underflow = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def count(self) -> int:
        self._flush()
        return self._count

    @property
    def sum(self) -> float:
        self._flush()
        return self._sum

    @property
    def min(self) -> float:
        self._flush()
        return self._min

    @property
    def max(self) -> float:
        self._flush()
        return self._max

    @property
    def mean(self) -> float:
        self._flush()
        return self._sum / self._count if self._count else math.nan

    def quantile(self, q: float) -> float:
        """The value at rank ceil(q * count) (the 'inverted CDF' definition), within 1%."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: list[float]) -> list[float]:
        self._flush()
        if self._count == 0:
            return [math.nan for _ in qs]
        cumulative = np.cumsum(self._counts) + self._underflow
        out = []
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be in [0, 1], got {q}")
            rank = max(1, math.ceil(q * self._count))
            if rank <= self._underflow:
                out.append(0.0 if self._min < self.min_value else self._min)
                continue
            i = int(np.searchsorted(cumulative, rank))
            centre = self.min_value * GROWTH ** (i + 0.5)
            out.append(min(max(centre, self._min), self._max))
        return out

    def cdf_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(upper bucket edges, cumulative fraction) for drawing a CDF."""
        self._flush()
        if self._count == 0:
            return np.zeros(0), np.zeros(0)
        edges = self.min_value * GROWTH ** (np.arange(self._counts.size) + 1)
        cumulative = (np.cumsum(self._counts) + self._underflow) / self.count
        keep = self._counts > 0
        return edges[keep], cumulative[keep]

    def summary(self) -> dict[str, float]:
        """count, mean, p50, p90, p99, p999, max — the shape summary.json uses."""
        p50, p90, p99, p999 = self.quantiles([0.5, 0.9, 0.99, 0.999])
        return {
            "count": self._count,
            "mean": self.mean,
            "p50": p50,
            "p90": p90,
            "p99": p99,
            "p999": p999,
            "max": self._max if self._count else math.nan,
        }
