"""A design's key spaces: how requests pick keys, and what a cache over a space holds.

Key rank r (0 = most popular) of a space of n keys has popularity (r+1)**-zipf_s. A sample cell
of fraction F keeps ceil(F n) keys; cell key i stands for a bin of ~1/F full-space ranks and
carries the bin's share (sim/workload.zipf_cell_weights), so a cell key is as busy as a
full-space key of its rank bin, smoothed within it.

The cache over a space is Che's approximation for LRU (sim/cache.py), here over the cell's keys
(both engines) or, for plans at full scale where a space may hold 10^9 keys, over bins of ranks
(`che_hit_ratio`): the first ranks one by one, then log-spaced bins whose keys share their mean
popularity. Each bin's keys are as likely as their mean to be cached, which is exact when the
popularity is constant within a bin and, with 4,000 bins per decade, within ~1e-4 of the
per-key sum for Zipf.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from sim.cache import che_characteristic_time
from sim.system.model import KeySpace
from sim.workload import cell_size, running_sum, zipf_cell_weights, zipf_partial_sums

MAX_CELL_KEYS = 200_000_000  # keys a simulated space may hold (their memory: sim.budget's KEY_*_BYTES each)
_EXACT_RANKS = 10_000
_BINS_PER_DECADE = 4_000
CACHE_ENTRY_OVERHEAD_BYTES = 64  # a Redis string key's dict entry, key and object headers, approx.


def cell_keys(space: KeySpace, sample: float) -> int:
    """Keys a cell of fraction `sample` simulates."""
    return cell_size(space.count, sample)


CACHED_KEYS = 50_000_000  # weights kept between calls only up to this many keys: 8 x 400 MB at most


def cell_weights(count: int, zipf_s: float, sample: float) -> np.ndarray:
    """Each cell key's share of the space's requests (normalised; index 0 the most popular). Kept
    for the next call (a replication, a sweep point) up to CACHED_KEYS keys; a larger space's
    weights (8 bytes a key) are computed afresh, so a long-lived process does not hold them. Only a
    cache model needs them: keys are drawn by `cell_cdf`, which keeps nothing."""
    n = _checked_size(count, sample)
    if n > CACHED_KEYS:
        return _weights(n, zipf_s, sample)
    return _cached_weights(n, zipf_s, sample)


def cell_cdf(count: int, zipf_s: float, sample: float, out: np.ndarray) -> np.ndarray:
    """Each cell key's cumulative share, the running sum of `cell_weights` (the same bits; the last
    set to 1), built in `out` (its cell_keys floats) a chunk at a time and not kept: a space costs
    its 8 bytes a key, at the build's peak too."""
    _weights(_checked_size(count, sample), zipf_s, sample, out)
    running_sum(out)
    out[-1] = 1.0
    return out


def _checked_size(count: int, sample: float) -> int:
    n = cell_size(count, sample)
    if n > MAX_CELL_KEYS:
        raise ValueError(f"{n:,} keys in the cell; allowed: at most {MAX_CELL_KEYS:,} (lower --sample)")
    return n


@lru_cache(maxsize=8)
def _cached_weights(n: int, zipf_s: float, sample: float) -> np.ndarray:
    return _weights(n, zipf_s, sample)


def _weights(n: int, zipf_s: float, sample: float, out: np.ndarray | None = None) -> np.ndarray:
    if zipf_s == 0:
        if out is None:
            return np.full(n, 1.0 / n)
        out.fill(1.0 / n)
        return out
    return zipf_cell_weights(n, zipf_s, sample, out)


def rank_bins(count: int, zipf_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(keys per bin, each key's popularity in that bin, normalised over the space)."""
    exact = min(count, _EXACT_RANKS)
    edges = [np.arange(exact + 1, dtype=np.int64)]
    if count > exact:
        decades = math.log10(count / exact)
        n_bins = max(1, math.ceil(decades * _BINS_PER_DECADE))
        spaced = np.logspace(math.log10(exact), math.log10(count), n_bins + 1)
        far = np.unique(np.round(spaced).astype(np.int64))
        edges.append(far[far > exact])
    bounds = np.concatenate(edges)
    sizes = np.diff(bounds).astype(np.float64)
    mass = np.diff(zipf_partial_sums(bounds, zipf_s)) if zipf_s > 0 else sizes.copy()
    mass /= mass.sum()
    return sizes, mass / sizes


def che_hit_ratio(count: int, zipf_s: float, capacity_keys: float) -> float:
    """Expected hit ratio of an LRU cache holding `capacity_keys` of a space's keys (Che)."""
    if capacity_keys >= count:
        return 1.0
    if capacity_keys < 1:
        return 0.0
    sizes, p = rank_bins(count, zipf_s)
    t = che_time(sizes, p, capacity_keys)
    return float(np.sum(sizes * p * -np.expm1(-p * t)))  # np.sum: no BLAS threads, the same bits


def che_time(sizes: np.ndarray, p: np.ndarray, capacity: float) -> float:
    """Che's characteristic time T over rank bins: sum_b sizes_b (1 - exp(-p_b T)) = capacity
    (0 < capacity < keys), by bisection on log T. A key of popularity p is cached with probability
    1 - exp(-p T)."""
    lo, hi = math.log(capacity) - 60.0, math.log(capacity) + 1.0
    while float(np.sum(sizes * -np.expm1(-p * math.exp(hi)))) < capacity:
        hi += 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(np.sum(sizes * -np.expm1(-p * math.exp(mid)))) < capacity:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return math.exp(0.5 * (lo + hi))


def cell_hit_probability(weights: np.ndarray, capacity_keys: float) -> np.ndarray:
    """Per cell key: the probability it is in an LRU cache holding `capacity_keys` (Che)."""
    if capacity_keys >= weights.size:
        return np.ones(weights.size)
    if capacity_keys < 1:
        return np.zeros(weights.size)
    t = che_characteristic_time(weights, capacity_keys)
    return -np.expm1(-weights * t)
