"""Distribution specs draw what they claim: means, the lognormal's p99, clipping, empirical files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from sim.distributions import draw, mean_of, sampler
from sim.scenario import Dist

N = 400_000
parse = TypeAdapter(Dist).validate_python


def check_mean(xs: np.ndarray, mean: float, z: float = 4.0) -> None:
    se = xs.std(ddof=1) / math.sqrt(xs.size)
    assert abs(xs.mean() - mean) < z * se, (xs.mean(), mean, se)


@pytest.mark.parametrize(
    "raw, mean",
    [
        ({"dist": "exponential", "mean": 2.0}, 2.0),
        ({"dist": "lognormal", "mean": 1.0, "p99": 5.0}, 1.0),
        ({"dist": "lognormal", "mean": 3.0, "sigma": 0.5}, 3.0),
        ({"dist": "gamma", "mean": 4.0, "cv": 0.5}, 4.0),
    ],
)
def test_sample_mean_matches_spec(raw: dict, mean: float) -> None:
    spec = parse(raw)
    xs = draw(spec, np.random.default_rng(1), N)
    check_mean(xs, mean)
    assert mean_of(spec) == mean


def test_lognormal_by_mean_and_p99_hits_the_p99() -> None:
    spec = parse({"dist": "lognormal", "mean": 1.0, "p99": 5.0})
    xs = draw(spec, np.random.default_rng(2), N)
    # standard error of a sample quantile: sqrt(p(1-p)/n) / f(x_p); check the empirical CDF at 5.0
    frac_below = float((xs <= 5.0).mean())
    se = math.sqrt(0.99 * 0.01 / N)
    assert abs(frac_below - 0.99) < 4 * se


def test_gamma_cv() -> None:
    xs = draw(parse({"dist": "gamma", "mean": 2.0, "cv": 0.25}), np.random.default_rng(3), N)
    assert abs(xs.std() / xs.mean() - 0.25) < 0.005


def test_bare_number_is_deterministic_and_clip_applies() -> None:
    spec = parse(2.5)
    assert sampler(spec, np.random.default_rng(0), scale=1e-3)() == pytest.approx(2.5e-3)
    clipped = parse({"dist": "exponential", "mean": 1.0, "min": 0.5, "max": 2.0})
    xs = draw(clipped, np.random.default_rng(4), 10_000)
    assert xs.min() >= 0.5 and xs.max() <= 2.0
    assert (xs == 0.5).any() and (xs == 2.0).any()


def test_sampler_draws_in_blocks_reproducibly() -> None:
    spec = parse({"dist": "exponential", "mean": 1.0})
    a = sampler(spec, np.random.default_rng(9))
    b = sampler(spec, np.random.default_rng(9))
    xs = [a() for _ in range(10_000)]
    assert xs == [b() for _ in range(10_000)]
    assert len(set(xs)) == len(xs)
    # one value per call, in the order the generator draws them, across block boundaries
    assert xs == draw(spec, np.random.default_rng(9), 4096 * 3)[:10_000].tolist()


def test_empirical_resamples_the_file(tmp_path) -> None:
    f = tmp_path / "lat.csv"
    f.write_text("latency_ms\n1.0\n2.0\n4.0\n")
    spec = parse({"dist": "empirical", "file": str(f), "column": "latency_ms"})
    xs = draw(spec, np.random.default_rng(5), 30_000)
    assert set(np.unique(xs)) == {1.0, 2.0, 4.0}
    check_mean(xs, 7.0 / 3.0)


@pytest.mark.parametrize(
    "raw",
    [
        {"dist": "lognormal", "mean": 1.0, "p99": 0.5},  # p99 below the mean
        {"dist": "lognormal", "mean": 1.0, "p99": 100.0},  # no lognormal has this mean and p99
        {"dist": "lognormal", "mean": 1.0},  # no shape
        {"dist": "exponential", "mean": -1.0},
        {"dist": "exponential", "mean": 1.0, "min": 3.0, "max": 2.0},
        {"dist": "weibull", "mean": 1.0},
    ],
)
def test_impossible_specs_are_refused(raw: dict) -> None:
    with pytest.raises(ValidationError):
        parse(raw)
