"""Who sends and reads what: user and conversation populations, keys, and request streams.

Users and conversations are ranked by popularity (Zipf with exponent s: weight of rank r is
r**-s). A sampled cell of fraction F keeps every (1/F)-th rank of the full population
(stratified), so the cell's popularity curve has the shape of the full one and the hottest users
keep their absolute rates.

Keys are placed by a 64-bit mixing hash (splitmix64), vectorised over whole populations at build
time, so the per-request path only indexes precomputed arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.distributions import BLOCK, draw
from sim.scenario import Workload

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a well-mixed uint64 for each uint64 input."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_keys(ids: np.ndarray, salt: int) -> np.ndarray:
    """A uint64 hash of integer ids, different for each salt."""
    with np.errstate(over="ignore"):
        salted = np.asarray(ids, dtype=np.uint64) ^ splitmix64(np.array([salt], dtype=np.uint64))[0]
    return splitmix64(salted)


def hash_unit(ids: np.ndarray, salt: int) -> np.ndarray:
    """A uniform [0, 1) value per id, fixed by the id and salt."""
    return (hash_keys(ids, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def cell_size(full: int, sample: float) -> int:
    return max(1, math.ceil(full * sample - 1e-9))


def zipf_cell_weights(n_cell: int, s: float, sample: float) -> np.ndarray:
    """Normalised popularity of the cell's members: every (1/F)-th rank of a Zipf(s) population."""
    ranks = np.floor(np.arange(n_cell) / sample) + 1.0
    weights = ranks**-s
    return weights / weights.sum()


class Popularity:
    """Draws member indices (0 = most popular) in blocks by inverse CDF."""

    __slots__ = ("_cdf", "_it", "_rng", "weights")

    def __init__(self, weights: np.ndarray, rng: np.random.Generator) -> None:
        self.weights = weights
        self._cdf = np.cumsum(weights)
        self._cdf[-1] = 1.0
        self._rng = rng
        self._it = iter(())

    def __call__(self) -> int:
        try:
            return next(self._it)
        except StopIteration:
            u = self._rng.random(BLOCK)
            self._it = iter(np.searchsorted(self._cdf, u, side="right").tolist())
            return next(self._it)


@dataclass(frozen=True)
class Conversations:
    """Per-conversation facts of the cell, indexed by conversation id (popularity rank order)."""

    recipients: np.ndarray  # int32: 1 for a direct conversation, group size - 1 for a group
    is_group: np.ndarray  # bool

    @classmethod
    def build(cls, workload: Workload, n_conv: int, rng: np.random.Generator) -> Conversations:
        ids = np.arange(n_conv, dtype=np.uint64)
        is_group = hash_unit(ids, salt=1) < workload.group_share
        recipients = np.ones(n_conv, dtype=np.int32)
        n_groups = int(is_group.sum())
        if n_groups:
            sizes = np.maximum(np.rint(draw(workload.group_size, rng, n_groups)), 2)
            recipients[is_group] = (sizes - 1).astype(np.int32)
        return cls(recipients=recipients, is_group=is_group)

    def members(self, conv: int, n_users: int) -> np.ndarray:
        """The recipients' user ids (a fixed hash of the conversation id and member slot)."""
        n = int(self.recipients[conv])
        slots = np.uint64(conv) * np.uint64(1 << 20) + np.arange(n, dtype=np.uint64)
        return (hash_keys(slots, salt=2) % np.uint64(n_users)).astype(np.int64)


def mean_group_size(workload: Workload, rng: np.random.Generator, n: int = 200_000) -> float:
    """Monte Carlo mean of the configured group size after rounding and clipping."""
    return float(np.maximum(np.rint(draw(workload.group_size, rng, n)), 2).mean())
