"""Confidence intervals over replications: Student t on independent replication values.

A replication is one run with its own seed, so its figures are independent draws of the run's
estimator; their mean has standard error s / sqrt(R) and (mean - true) / SE follows Student's t
with R - 1 degrees of freedom when the replication values are close to normal. A paired
comparison (common random numbers) applies the same to the per-replication differences.

A quantile figure (a p99) is read from a log-bucketed histogram (sim/histogram.py): each
replication reports the centre of the bucket holding its sample quantile, so replications that
land in one bucket agree exactly and their t interval has zero width although the quantile is
only known to that bucket. `quantile_interval` and `paired_quantile_interval` widen such an
interval to at least the bucket around the estimate (for a difference, the widest difference the
two figures' buckets allow).

The t quantile is computed here (regularized incomplete beta by continued fraction, inverted by
bisection) rather than taken from scipy, which capsim does not otherwise need at run time;
tests/test_experiments.py checks it against scipy.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sim.histogram import GROWTH, MIN_VALUE

LEVEL = 0.95
_QUANTILE = re.compile(r"(^|_)p\d+$")  # the last segment of a quantile figure: p99, p999, queue_wait_ms_p99


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval (NaN bounds when it cannot be computed)."""

    mean: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Student t interval for the mean of independent `values`; NaN values are left out.

    With fewer than two finite values there is no interval (bounds NaN). Identical values give
    a zero-width interval.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    mean = math.fsum(xs) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, level)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    half = t_quantile(0.5 + level / 2, n - 1) * math.sqrt(var / n)
    return Interval(mean, mean - half, mean + half, n, level)


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Interval for the mean of b - a over pairs (replication i of both arms shares its seeds).

    A pair with a missing value on either side is left out.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need equal counts, got {len(a)} and {len(b)}")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)
             if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    return mean_interval(diffs, level)


def is_quantile(path: str) -> bool:
    """Whether the figure at dotted `path` is a histogram quantile (`latency_ms.read.p99`,
    `components.kafka.queue_wait_ms_p99`); means, maxima and rates are not."""
    return bool(_QUANTILE.search(path.rsplit(".", 1)[-1]))


def histogram_bucket(value: float, min_value: float = MIN_VALUE) -> tuple[float, float]:
    """The bounds [low, high) of the sim/histogram.py bucket holding `value` (the underflow bucket
    [0, min_value) for smaller values); NaN bounds for a value that is not finite."""
    if not math.isfinite(value) or value < 0:
        return math.nan, math.nan
    if value < min_value:
        return 0.0, min_value
    i = math.floor(math.log(value / min_value) / math.log(GROWTH))
    return min_value * GROWTH**i, min_value * GROWTH ** (i + 1)


def quantile_interval(iv: Interval) -> Interval:
    """`iv` (a quantile's interval over replications) widened to cover at least the histogram bucket
    holding its estimate: the quantile is known no better than that bucket."""
    low, high = histogram_bucket(iv.mean)
    if not (math.isfinite(iv.low) and math.isfinite(iv.high) and math.isfinite(low)):
        return iv
    return replace(iv, low=min(iv.low, low), high=max(iv.high, high))


def paired_quantile_interval(diff: Interval, a: Interval, b: Interval) -> Interval:
    """A paired difference B - A of quantiles (`diff`) widened to at least the range of differences
    the buckets of A's and B's estimates allow: [low_B - high_A, high_B - low_A]."""
    a_low, a_high = histogram_bucket(a.mean)
    b_low, b_high = histogram_bucket(b.mean)
    if not (math.isfinite(diff.low) and math.isfinite(diff.high) and math.isfinite(a_low)
            and math.isfinite(b_low)):
        return diff
    return replace(diff, low=min(diff.low, b_low - a_high), high=max(diff.high, b_high - a_low))


@functools.lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (0 < p < 1, df > 0)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    hi = 1.0
    while t_cdf(hi, df) < p:  # bracket, then bisect: the cdf is monotone
        hi *= 2.0
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)  # P(T > |t|)
    return 1.0 - tail if t >= 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) (continued fraction, modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h
