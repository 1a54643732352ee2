"""The log-bucketed histogram: quantiles within 1% of the exact sample quantile, merge = union."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.histogram import GROWTH, Histogram

REL_ERR = math.sqrt(GROWTH) - 1  # the bound the module promises (< 1%)

values = st.lists(st.floats(min_value=0.002, max_value=1e6, allow_nan=False), min_size=1, max_size=400)
qs = st.floats(min_value=0.0, max_value=1.0)


def exact(xs: list[float], q: float) -> float:
    return float(np.quantile(np.array(xs), q, method="inverted_cdf"))


@settings(max_examples=200, deadline=None)
@given(values, qs)
def test_quantile_within_relative_error(xs: list[float], q: float) -> None:
    h = Histogram()
    for x in xs:
        h.record(x)
    assert h.count == len(xs)
    truth = exact(xs, q)
    assert abs(h.quantile(q) - truth) <= REL_ERR * truth + 1e-12


@settings(max_examples=100, deadline=None)
@given(values, values, qs)
def test_merge_equals_recording_everything(a: list[float], b: list[float], q: float) -> None:
    ha, hb, hall = Histogram(), Histogram(), Histogram()
    ha.record_many(np.array(a))
    hb.record_many(np.array(b))
    hall.record_many(np.array(a + b))
    ha.merge(hb)
    assert ha.count == hall.count
    assert ha.quantile(q) == hall.quantile(q)
    assert math.isclose(ha.mean, hall.mean, rel_tol=1e-9)
    assert ha.max == hall.max


def test_large_lognormal_sample_quantiles_and_bounded_memory() -> None:
    rng = np.random.default_rng(7)
    xs = rng.lognormal(0.0, 1.5, 1_000_000)
    h = Histogram()
    for chunk in np.array_split(xs, 37):
        h.record_many(chunk)
    for q in (0.5, 0.9, 0.99, 0.999):
        truth = float(np.quantile(xs, q, method="inverted_cdf"))
        assert abs(h.quantile(q) - truth) <= REL_ERR * truth
    # memory: one counter per bucket spanned, not per sample
    assert h._counts.size < 2000


def test_zero_and_tiny_values_go_to_underflow() -> None:
    h = Histogram()
    for x in (0.0, 0.0, 0.0, 5.0):
        h.record(x)
    assert h.quantile(0.5) == 0.0
    assert abs(h.quantile(1.0) - 5.0) <= REL_ERR * 5.0


def test_empty_histogram_reports_nan() -> None:
    s = Histogram().summary()
    assert s["count"] == 0
    assert math.isnan(s["p99"]) and math.isnan(s["mean"])


def test_rejects_negative_values() -> None:
    h = Histogram()
    h.record(-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        h.quantile(0.5)
