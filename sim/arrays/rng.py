"""Counter-based random numbers: every random quantity is a pure function of (seed, purpose, id, index).

The array engines never keep a generator's state: the service time of replica 2 of send number
81,723 at Cassandra is `sample(dist, key("cassandra.write.svc"), 81723, 2)` wherever and whenever
it is computed. That makes results independent of the order work is done in (chunk length,
slices, which station is processed first) and lets a lower bound of a later delay be computed
before the job exists.

The bits come from two rounds of the splitmix64 finaliser over (key + id * golden) and (+ index),
the construction of SplitMix/`SeedSequence`-style counter generators; a uniform is the top 53
bits, shifted to the open interval (0, 1). Normal deviates use Acklam's rational approximation
of the inverse normal CDF (relative error < 1.2e-9), so a lognormal costs one uniform, one
rational function and one exp. Gamma uses Marsaglia and Tsang's method with numbered sub-draws.

A distribution spec (sim/distributions.py) becomes a `Dist`: a float64 parameter row
(kind, a, b, min, max, scale) and, for empirical specs, the values.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.distributions import Deterministic, Empirical, Exponential, Gamma, Lognormal, _Spec

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 2.0**-53

DETERMINISTIC, EXPONENTIAL, LOGNORMAL, GAMMA, EMPIRICAL = 0, 1, 2, 3, 4


class Dist(NamedTuple):
    """A distribution in the form compiled code samples: `params` = [kind, a, b, min, max, scale]
    (min/max NaN when absent; values in the spec's unit times `scale`), `values` for empirical."""

    params: np.ndarray
    values: np.ndarray


def compile_dist(spec: _Spec, scale: float = 1.0) -> Dist:
    """`spec` (milliseconds, bytes, ...) as a `Dist` whose samples are multiplied by `scale`."""
    lo = math.nan if spec.min is None else spec.min
    hi = math.nan if spec.max is None else spec.max
    values = np.zeros(0)
    if isinstance(spec, Deterministic):
        kind, a, b = DETERMINISTIC, spec.value, 0.0
    elif isinstance(spec, Exponential):
        kind, a, b = EXPONENTIAL, spec.mean, 0.0
    elif isinstance(spec, Lognormal):
        kind, (a, b) = LOGNORMAL, spec.shape
    elif isinstance(spec, Gamma):
        kind, a, b = GAMMA, 1.0 / spec.cv**2, spec.mean * spec.cv**2  # shape, scale
    elif isinstance(spec, Empirical):
        kind, a, b = EMPIRICAL, 0.0, 0.0
        values = np.ascontiguousarray(spec.values(), dtype=np.float64)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown distribution {spec!r}")
    return Dist(np.array([kind, a, b, lo, hi, scale], dtype=np.float64), values)


def constant(value: float) -> Dist:
    """A deterministic `Dist` (already in the engine's unit)."""
    return Dist(np.array([DETERMINISTIC, value, 0.0, math.nan, math.nan, 1.0]), np.zeros(0))


def purpose_key(seed: int, purpose: int) -> np.uint64:
    """The key of one random purpose under `seed` (independent across purposes and seeds)."""
    return np.random.SeedSequence([seed, purpose]).generate_state(1, np.uint64)[0]


@nb.njit(inline="always", cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """The splitmix64 finaliser (a bijective mixer)."""
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


@nb.njit(cache=True)
def uniform(key: np.uint64, i: np.int64, j: np.int64) -> float:
    """A uniform value in (0, 1) for (key, id i, index j)."""
    z = mix64(key + np.uint64(i) * GOLDEN)
    z = mix64(z + np.uint64(j) * GOLDEN + GOLDEN)
    return (float(z >> _S11) + 0.5) * _TO_UNIT


@nb.njit(inline="always", cache=True)
def _normal_tail(q: float) -> float:
    """Acklam's rational approximation in the lower tail, q = sqrt(-2 log p)."""
    return (
        (
            (
                ((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
                - 2.549732539343734e00
            )
            * q
            + 4.374664141464968e00
        )
        * q
        + 2.938163982698783e00
    ) / (
        (
            ((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
            + 3.754408661907416e00
        )
        * q
        + 1.0
    )


@nb.njit(cache=True)
def norm_ppf(p: float) -> float:
    """Acklam's inverse standard normal CDF, relative error below 1.15e-9 over (0, 1)."""
    if p < 0.02425:
        return _normal_tail(math.sqrt(-2.0 * math.log(p)))
    if p > 0.97575:
        return -_normal_tail(math.sqrt(-2.0 * math.log(1.0 - p)))
    q = p - 0.5
    r = q * q
    return (
        (
            (
                (
                    ((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r
                    + 1.383577518672690e02
                )
                * r
                - 3.066479806614716e01
            )
            * r
            + 2.506628277459239e00
        )
        * q
        / (
            (
                (
                    ((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r
                    + 6.680131188771972e01
                )
                * r
                - 1.328068155288572e01
            )
            * r
            + 1.0
        )
    )


@nb.njit(cache=True)
def _gamma(shape: float, key: np.uint64, i: np.int64, j: np.int64) -> float:
    """Standard gamma(shape) by Marsaglia-Tsang, sub-draws numbered j*64 + 1, 2, ..."""
    boost = 1.0
    if shape < 1.0:
        boost = uniform(key, i, j * 64 + 63) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    n = 1
    while True:
        x = norm_ppf(uniform(key, i, j * 64 + n))
        v = 1.0 + c * x
        n += 1
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform(key, i, j * 64 + n)
        n += 1
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v) or n > 60:
            return d * v * boost


@nb.njit(cache=True)
def sample(params: np.ndarray, values: np.ndarray, key: np.uint64, i: np.int64, j: np.int64) -> float:
    """One draw of the distribution for (key, i, j), clipped and scaled."""
    kind = int(params[0])
    if kind == DETERMINISTIC:
        x = params[1]
    elif kind == EXPONENTIAL:
        x = -params[1] * math.log(uniform(key, i, j))
    elif kind == LOGNORMAL:
        x = math.exp(params[1] + params[2] * norm_ppf(uniform(key, i, j)))
    elif kind == GAMMA:
        x = _gamma(params[1], key, i, j) * params[2]
    else:
        x = values[min(int(uniform(key, i, j) * values.size), values.size - 1)]
    if not math.isnan(params[3]) and x < params[3]:
        x = params[3]
    if not math.isnan(params[4]) and x > params[4]:
        x = params[4]
    return x * params[5]


@nb.njit(inline="always", cache=True)
def _lognormal(mu: float, sigma: float, lo: float, hi: float, scale: float, u: float) -> float:
    """`sample` of a lognormal at uniform u, its parameters taken out of the loop (a NaN bound
    compares false, as `sample`'s skipped test)."""
    x = math.exp(mu + sigma * norm_ppf(u))
    if x < lo:
        x = lo
    if x > hi:
        x = hi
    return x * scale


@nb.njit(cache=True)
def sample_many(
    params: np.ndarray, values: np.ndarray, key: np.uint64, ids: np.ndarray, j: np.int64
) -> np.ndarray:
    """`sample` for each id in `ids` at index j."""
    out = np.empty(ids.size)
    if int(params[0]) == LOGNORMAL:  # the common case, without a dispatch per draw
        mu, sigma, lo, hi, scale = params[1], params[2], params[3], params[4], params[5]
        for n in range(ids.size):
            out[n] = _lognormal(mu, sigma, lo, hi, scale, uniform(key, ids[n], j))
    else:
        for n in range(ids.size):
            out[n] = sample(params, values, key, ids[n], j)
    return out


@nb.njit(cache=True)
def sample_each(
    params: np.ndarray, values: np.ndarray, key: np.uint64, ids: np.ndarray, js: np.ndarray
) -> np.ndarray:
    """`sample` for each (id, index) pair of `ids` and `js`."""
    out = np.empty(ids.size)
    if int(params[0]) == LOGNORMAL:
        mu, sigma, lo, hi, scale = params[1], params[2], params[3], params[4], params[5]
        for n in range(ids.size):
            out[n] = _lognormal(mu, sigma, lo, hi, scale, uniform(key, ids[n], js[n]))
    else:
        for n in range(ids.size):
            out[n] = sample(params, values, key, ids[n], js[n])
    return out


@nb.njit(cache=True)
def uniform_many(key: np.uint64, ids: np.ndarray, j: np.int64) -> np.ndarray:
    out = np.empty(ids.size)
    for n in range(ids.size):
        out[n] = uniform(key, ids[n], j)
    return out
