"""Cache model: which conversations' recent lists Redis holds, by Che's approximation for LRU.

For items requested independently with probabilities p_i (here: reads of conversations under
Zipf popularity) and a cache holding C items, Che, Tung and Wang (2002) give a characteristic
time T solving  sum_i (1 - exp(-p_i T)) = C; item i is then in the cache with probability
h_i = 1 - exp(-p_i T), and the hit ratio is sum_i p_i h_i. Fricker, Robert and Roberts (2012)
show it is accurate for Zipf popularity. When the cache holds everything, h_i = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

import sim.arrays  # noqa: F401  (first: it sets the directory of the compiled kernels below)
from sim.distributions import mean_of
from sim.threads import in_parts

if TYPE_CHECKING:
    from sim.scenario import Scenario

GIB = 2**30
LIST_ENTRY_OVERHEAD_BYTES = 64  # Redis quicklist entry + listpack header, per message, approx.


@dataclass(frozen=True)
class CacheModel:
    hit_probability: np.ndarray  # per conversation
    hit_ratio: float  # expected, over reads
    lists_held: float  # expected number of lists in cache
    list_bytes: float
    working_set_gb: float  # every conversation's recent list

    @property
    def memory_used_gb(self) -> float:
        return self.lists_held * self.list_bytes / GIB


def list_bytes(recent_messages: int, mean_message_bytes: float) -> float:
    return recent_messages * (mean_message_bytes + LIST_ENTRY_OVERHEAD_BYTES)


def che_characteristic_time(p: np.ndarray, capacity: float) -> float:
    """T with sum(1 - exp(-p T)) = capacity (requires 0 < capacity < len(p)).

    Safeguarded Newton on x = log T: S(T) = sum(1 - exp(-p T)) rises in T, with
    dS/dx = T sum(p exp(-p T)). Since 1 - exp(-y) <= y, S(T) <= T sum(p), so T >= C / sum(p);
    since every term is at least 1 - exp(-p_min T), T <= -log(1 - C/n) / p_min. A Newton step
    that leaves the bracket is replaced by bisection. Each step is one compiled pass over p on
    every core (the bisection it replaces needed ~45 passes: ~55 s over 40M conversations).
    """
    total = float(np.sum(p))
    n = p.size
    lo = np.log(capacity / total)
    p_min = float(np.min(p))
    if p_min > 0:
        hi = np.log(-np.log1p(-capacity / n) / p_min)
    else:
        hi = lo + 1.0
        while -_che_sums(p, float(np.exp(hi)))[0] < capacity:
            hi += 1.0
    x = lo
    for _ in range(200):
        t = float(np.exp(x))
        m, pm = _che_sums(p, t)  # sums of exp(-p T) - 1 and of p (exp(-p T) - 1)
        f = -m - capacity
        if f < 0:
            lo = x
        else:
            hi = x
        if abs(f) <= 1e-12 * capacity or hi - lo < 1e-13:
            break
        slope = t * (total + pm)
        step = x - f / slope if slope > 0 else np.nan
        x = step if lo < step < hi else 0.5 * (lo + hi)
    return float(np.exp(x))


_BLOCKS = 64  # partial sums: a fixed number, so the sums are the same bits on any number of cores


def _che_sums(p: np.ndarray, t: float, hits: np.ndarray | None = None) -> tuple[float, float]:
    """sum(expm1(-p t)) and sum(p expm1(-p t)), and hits[i] = 1 - exp(-p_i t) when `hits` is given."""
    parts = np.zeros((_BLOCKS, 2))
    out = np.empty(0) if hits is None else hits
    in_parts(_BLOCKS, lambda lo, hi: _che_blocks(p, t, lo, hi, parts, out))
    return float(parts[:, 0].sum()), float(parts[:, 1].sum())


@nb.njit(cache=True, nogil=True)
def _che_blocks(p: np.ndarray, t: float, lo: int, hi: int, parts: np.ndarray, hits: np.ndarray) -> None:
    n = p.size
    for b in range(lo, hi):
        m_sum = pm_sum = 0.0
        for i in range(b * n // _BLOCKS, (b + 1) * n // _BLOCKS):
            m = math.expm1(-p[i] * t)
            m_sum += m
            pm_sum += p[i] * m
            if hits.size:
                hits[i] = -m
        parts[b, 0], parts[b, 1] = m_sum, pm_sum


def lru_cache_model(popularity: np.ndarray, capacity_bytes: float, item_bytes: float) -> CacheModel:
    """Per-item hit probabilities of an LRU cache of `capacity_bytes` over items of `item_bytes`."""
    n = popularity.size
    capacity = capacity_bytes / item_bytes
    if capacity >= n:
        h = np.ones(n)
        held = float(n)
        hit_ratio = float(np.sum(popularity))  # np.sum, not BLAS: the same bits however many threads
    elif capacity < 1:
        h = np.zeros(n)
        held = 0.0
        hit_ratio = 0.0
    else:
        t = che_characteristic_time(popularity, capacity)
        h = np.empty(n)
        hit_ratio = -_che_sums(popularity, t, h)[1]  # sum of p h
        held = capacity
    return CacheModel(
        hit_probability=h,
        hit_ratio=hit_ratio,
        lists_held=held,
        list_bytes=item_bytes,
        working_set_gb=n * item_bytes / GIB,
    )


def fixed_cache_model(n: int, hit_ratio: float, item_bytes: float) -> CacheModel:
    """Every read hits with the same probability (the scenario fixed `hit_ratio`)."""
    return CacheModel(
        hit_probability=np.full(n, hit_ratio),
        hit_ratio=hit_ratio,
        lists_held=n * hit_ratio,
        list_bytes=item_bytes,
        working_set_gb=n * item_bytes / GIB,
    )


def scenario_cache_model(sc: Scenario, conv_w: np.ndarray, sample: float) -> CacheModel:
    """The run's cache: the scenario's fixed hit ratio, or Che's LRU model over the cell's
    conversations (popularity `conv_w`). The cell holds a fraction `sample` of the conversations,
    so it gets that fraction of the fleet's memory, whatever the shard count rounds to (rounding
    changes per-shard load, not the hit ratio). Both engines use this one."""
    item = list_bytes(sc.workload.recent_messages, mean_of(sc.workload.message_bytes))
    if sc.redis.hit_ratio is not None:
        return fixed_cache_model(conv_w.size, sc.redis.hit_ratio, item)
    full = sc.redis.shards * sc.redis.memory_gb_per_shard * sc.redis.usable_memory_fraction
    return lru_cache_model(conv_w, full * 2**30 * sample, item)
