"""Who sends and reads what: user and conversation populations, keys, and request streams.

Users and conversations are ranked by popularity (Zipf with exponent s: weight of rank r is
r**-s). A sampled cell of fraction F has F of the members; cell member i stands for a contiguous
bin of about 1/F full-population ranks and carries their combined share of the traffic. The
cell's traffic over member quantiles is then that of the full population (the top 1% of the cell
carries what the top 1% of users carries), while each member's own rate is its bin's average:
a single celebrity's extreme rate is smoothed into its bin, which only F = 1 shows.

Keys are placed by a 64-bit mixing hash (splitmix64), vectorised over whole populations at build
time, so the per-request path only indexes precomputed arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.distributions import BLOCK, draw, stream
from sim.scenario import Scenario, Workload

_GOLDEN = (5**0.5 - 1) / 2
_SQRT2 = 2**0.5
_EXACT_SUMS = 2_000_000
_SIZE_QUANTILES = 200_000  # sorted draws of group_size that stand for its quantile function


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


def zipf_partial_sums(ranks: np.ndarray, s: float) -> np.ndarray:
    """S(m) = sum_{r=1..m} r**-s for each m in `ranks`: exact up to 2M, Euler-Maclaurin beyond."""
    ranks = np.asarray(ranks, dtype=np.int64)
    exact_upto = int(min(ranks.max(initial=0), _EXACT_SUMS))
    table = np.concatenate([[0.0], np.cumsum(np.arange(1, exact_upto + 1, dtype=np.float64) ** -s)])
    out = table[np.minimum(ranks, exact_upto)]
    far = ranks > exact_upto
    if far.any():
        lo, hi = exact_upto + 0.5, ranks[far] + 0.5
        tail = np.log(hi / lo) if s == 1 else (hi ** (1 - s) - lo ** (1 - s)) / (1 - s)
        out = out.copy()
        out[far] += tail
    return out


def zipf_cell_weights(n_cell: int, s: float, sample: float) -> np.ndarray:
    """Normalised traffic share of each cell member: its bin of ~1/F full-population ranks."""
    n_full = max(n_cell, round(n_cell / sample))
    edges = np.floor(np.arange(n_cell + 1) * (n_full / n_cell)).astype(np.int64)
    weights = np.diff(zipf_partial_sums(edges, s))
    return weights / weights.sum()


def popularity(weights: np.ndarray, rng: np.random.Generator) -> Callable[[], int]:
    """Member indices (0 = most popular) drawn by `weights`, one per call, by inverse CDF."""
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    return stream(lambda: np.searchsorted(cdf, rng.random(BLOCK), side="right").tolist())


@dataclass(frozen=True)
class Conversations:
    """Per-conversation facts of the cell, indexed by conversation id (popularity rank order).

    Which conversations are groups, and how big, is spread evenly over popularity ranks with two
    Kronecker (golden-ratio and sqrt 2) sequences rather than drawn at random, so that every
    stretch of ranks has the scenario's group share and size distribution: conversation i is a
    group when frac((i + 1) * 0.618...) < group_share, and its size is the frac((i + 1) * sqrt 2)
    quantile of `group_size`. The realised, traffic-weighted mix still depends on the few hottest
    conversations (as it would in a real population); `mix()` reports it.
    """

    recipients: np.ndarray  # int32: 1 for a direct conversation, group size - 1 for a group
    is_group: np.ndarray  # bool

    @classmethod
    def build(cls, workload: Workload, n_conv: int, rng: np.random.Generator) -> Conversations:
        index = np.arange(1, n_conv + 1, dtype=np.float64)
        is_group = np.modf(index * _GOLDEN)[0] < workload.group_share
        recipients = np.ones(n_conv, dtype=np.int32)
        if is_group.any():
            sizes = np.sort(np.maximum(np.rint(draw(workload.group_size, rng, _SIZE_QUANTILES)), 2))
            u = np.modf(index[is_group] * _SQRT2)[0]
            recipients[is_group] = (sizes[(u * sizes.size).astype(np.int64)] - 1).astype(np.int32)
        return cls(recipients=recipients, is_group=is_group)

    def mix(self, weights: np.ndarray) -> dict[str, float]:
        """Traffic-weighted share of group messages and mean recipients per message."""
        return {
            "group_message_share": float(np.dot(weights, self.is_group)),
            "mean_recipients": float(np.dot(weights, self.recipients)),
        }

    def members(self, conv: int, n_users: int) -> np.ndarray:
        """The recipients' user ids (a fixed hash of the conversation id and member slot)."""
        n = int(self.recipients[conv])
        slots = np.uint64(conv) * np.uint64(1 << 20) + np.arange(n, dtype=np.uint64)
        return (hash_keys(slots, salt=2) % np.uint64(n_users)).astype(np.int64)


def mean_group_size(workload: Workload, rng: np.random.Generator, n: int = 200_000) -> float:
    """Monte Carlo mean of the configured group size after rounding and clipping."""
    return float(np.maximum(np.rint(draw(workload.group_size, rng, n)), 2).mean())


@dataclass(frozen=True)
class HotKeys:
    """The busiest keys of the full population (full scale, whatever the cell), per second.

    A cell of fraction F < 1 smooths each key's rate into its bin; these figures are what one
    instance would have to absorb for the busiest key at full scale.
    """

    conversation_sends_per_sec: float  # sends into the busiest conversation (its Kafka partition)
    conversation_reads_per_sec: float  # cache lookups of the most-read conversation (its Redis shard)
    conversation_recipients: int  # recipients per message of the busiest conversation
    user_sends_per_sec: float  # sends by the most active user (its partition when keyed by user)
    user_reads_per_sec: float  # reads by the most active reader


def hottest_keys(scenario: Scenario) -> HotKeys:
    """The busiest conversation and user at full scale, from the popularity model (no simulation)."""
    w = scenario.workload
    user_top = float(zipf_partial_sums(np.array([1]), w.user_zipf_s)[0]
                     / zipf_partial_sums(np.array([w.users]), w.user_zipf_s)[0])
    conv_top = float(zipf_partial_sums(np.array([1]), w.conversation_zipf_s)[0]
                     / zipf_partial_sums(np.array([w.conversations]), w.conversation_zipf_s)[0])
    return HotKeys(
        conversation_sends_per_sec=conv_top * w.sends_per_sec,
        conversation_reads_per_sec=conv_top * w.reads_per_sec,
        conversation_recipients=1,
        user_sends_per_sec=user_top * w.sends_per_sec,
        user_reads_per_sec=user_top * w.reads_per_sec,
    )


def workload_mix(workload: Workload) -> dict[str, float]:
    """The traffic-weighted mix that runs realise: group message share, mean recipients per
    message, and conversation lookups per read. Sizing and cost use it, so `size` and `run`
    share one model of the workload."""
    sample = min(1.0, 2_000_000 / workload.conversations)
    n_conv = cell_size(workload.conversations, sample)
    conv = Conversations.build(workload, n_conv, np.random.default_rng(0))
    weights = zipf_cell_weights(n_conv, workload.conversation_zipf_s, sample)
    return {**conv.mix(weights), "lookups_per_read": 1.0}
