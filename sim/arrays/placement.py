"""Where keys live and who sends: the DES's placement rules, as arrays and compiled lookups.

The same rules as sim/des (and sim/workload.py's hashes): Cassandra's token ring (built by
sim/des/cassandra.py itself), Redis Cluster hash slots over shards, Kafka partitions by conversation with the
leader on broker p mod B, a group member list hashed from the conversation id. Popular users and
conversations are drawn by inverse CDF like sim/workload.popularity (the same u gives the same
member), through a guide table so that a draw costs a table look-up and a short scan instead of
a binary search over millions of entries.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.rng import GOLDEN, mix64, uniform
from sim.placement import TokenRing
from sim.scenario import Scenario
from sim.threads import in_parts
from sim.workload import splitmix64

SLOTS = 16384
_SALT_MEMBERS, _SALT_SHARD, _SALT_PARTITION = 2, 3, 4


class Ring:
    """Cassandra's token ring (sim/placement.py), from the DES's stream for it, so that both
    engines place every key on the same replicas for a seed."""

    def __init__(self, scenario: Scenario, nodes: int, rng: np.random.Generator) -> None:
        c = scenario.cassandra
        # the DES's CassandraCluster spawns three streams and builds the ring from the third
        ring = TokenRing.build(nodes, c.vnodes, c.replication_factor, scenario.network.zones, rng.spawn(3)[2])
        self.tokens = ring.tokens
        self.replicas = ring.replicas
        self._ring = ring

    def positions(self, ids: np.ndarray, salt: int) -> np.ndarray:
        """Ring position of each integer key."""
        return self._ring.positions(ids, salt)


@nb.njit(inline="always", cache=True)
def key_hash(x: np.int64, salt_mixed: np.uint64) -> np.uint64:
    """sim.workload.hash_keys for one id, with `salt_mixed` = splitmix64(salt)."""
    return mix64((np.uint64(x) ^ salt_mixed) + GOLDEN)


def salt_mixed(salt: int) -> np.uint64:
    """splitmix64(salt), the value sim.workload.hash_keys xors into every id."""
    return np.uint64(splitmix64(np.array([salt], dtype=np.uint64))[0])


@nb.njit(inline="always", cache=True)
def shard_of(key: np.int64, n_shards: np.int64, salt: np.uint64) -> np.int64:
    """The Redis shard of a key: its hash slot (of SLOTS) spread evenly over the shards."""
    return np.int64(key_hash(key, salt) % np.uint64(SLOTS)) * n_shards // SLOTS


@nb.njit(inline="always", cache=True)
def partition_of(key: np.int64, n_partitions: np.int64, salt: np.uint64) -> np.int64:
    """The Kafka partition of a key: its hash mod the partitions."""
    return np.int64(key_hash(key, salt) % np.uint64(n_partitions))


@nb.njit(cache=True)
def shards_of(conv: np.ndarray, n_shards: np.int64, salt: np.uint64) -> np.ndarray:
    out = np.empty(conv.size, np.int64)
    for i in range(conv.size):
        out[i] = shard_of(conv[i], n_shards, salt)
    return out


@nb.njit(cache=True)
def partitions_of(conv: np.ndarray, n_partitions: np.int64, salt: np.uint64) -> np.ndarray:
    out = np.empty(conv.size, np.int64)
    for i in range(conv.size):
        out[i] = partition_of(conv[i], n_partitions, salt)
    return out


@nb.njit(inline="always", cache=True)
def member(conv: np.int64, r: np.int64, n_users: np.int64, salt: np.uint64) -> np.int64:
    """User id of member slot r of conversation conv (as sim.workload.member_ids)."""
    return np.int64(key_hash(conv * np.int64(1 << 20) + r, salt) % np.uint64(n_users))


SCAN_MEMBERS = 8  # conversations this small draw by one scan; larger ones by rejection
MAX_TRIES = 64  # rejection tries before a draw falls back to the scan


@nb.njit(cache=True, nogil=True)
def draw_members(
    conv: np.ndarray, gid: np.ndarray, key: np.uint64, recipients: np.ndarray, weights: np.ndarray,
    bound: np.ndarray, n_users: np.int64, salt: np.uint64,
) -> tuple[np.ndarray, np.ndarray]:
    """(slot, user) of the member of each conversation chosen with probability proportional to
    weights[user] (sim.workload.draw_member's distribution; uniform when every weight is zero).

    Small conversations scan their members (the first slot whose running weight exceeds u x total,
    two passes). Larger ones draw by rejection: a uniform slot j is kept with probability
    weights[member j] / bound[conv], `bound` being at least every member's weight, which gives
    each member its weight's share in about bound/mean tries instead of two passes over every
    member (reads are spread over members, so a read's conversation has ~110 members on average).
    After MAX_TRIES rejections the scan decides: both parts draw from the same distribution.
    Random numbers are (key, gid, index): 0 for the scan, 1 + 2k and 2 + 2k for try k.
    """
    slots = np.empty(conv.size, np.int32)
    users = np.empty(conv.size, np.int64)
    for i in range(conv.size):
        c = conv[i]
        n = np.int64(recipients[c]) + 1
        slot = np.int64(-1)
        b = bound[c]
        if n > SCAN_MEMBERS and b > 0.0:
            for k in range(MAX_TRIES):
                j = min(np.int64(uniform(key, gid[i], 1 + 2 * k) * n), n - 1)
                if uniform(key, gid[i], 2 + 2 * k) * b < weights[member(c, j, n_users, salt)]:
                    slot = j
                    break
        if slot < 0:
            slot = _scan(c, n, uniform(key, gid[i], 0), weights, n_users, salt)
        slots[i] = slot
        users[i] = member(c, slot, n_users, salt)
    return slots, users


@nb.njit(cache=True)
def _scan(
    c: np.int64, n: np.int64, u: float, weights: np.ndarray, n_users: np.int64, salt: np.uint64
) -> np.int64:
    total = 0.0
    for j in range(n):
        total += weights[member(c, j, n_users, salt)]
    if total <= 0.0:
        return min(np.int64(u * n), n - 1)
    x = u * total
    acc = 0.0
    for j in range(n):
        acc += weights[member(c, j, n_users, salt)]
        if acc > x:
            return np.int64(j)
    return n - 1


class Popularity:
    """Member indices drawn by weight: index = first i with cdf[i] > u (sim.workload.popularity)."""

    def __init__(self, weights: np.ndarray | None = None, cdf: np.ndarray | None = None) -> None:
        """From the weights, or from their cumulative sums (`cdf`, ending at exactly 1.0)."""
        if cdf is None:
            assert weights is not None
            cdf = np.cumsum(weights)
            cdf[-1] = 1.0
        self.cdf = cdf
        cells = int(min(max(1024, 2 * cdf.size), 1 << 23))
        self.guide = np.empty(cells, np.int64)
        in_parts(cells, lambda lo, hi: _guide_part(cdf, cells, lo, hi, self.guide))

    def draw(self, u: np.ndarray) -> np.ndarray:
        return _draw(self.cdf, self.guide, u)


@nb.njit(cache=True, nogil=True)
def _guide_part(cdf: np.ndarray, cells: int, lo: int, hi: int, out: np.ndarray) -> None:
    """out[k] = np.searchsorted(cdf, k / cells, side="right") for k in lo..hi-1 (the first i with
    cdf[i] > k / cells), without numpy's temporaries, on a thread of sim.threads.in_parts."""
    n = cdf.size
    for k in range(lo, hi):
        x = k / cells
        a, b = 0, n
        while a < b:
            m = (a + b) >> 1
            if cdf[m] <= x:
                a = m + 1
            else:
                b = m
        out[k] = a


@nb.njit(cache=True, nogil=True)
def _draw(cdf: np.ndarray, guide: np.ndarray, u: np.ndarray) -> np.ndarray:
    cells = guide.size
    last = cdf.size - 1
    out = np.empty(u.size, np.int64)
    # two passes: the guide look-ups (cache misses) do not wait on each other's scans
    for n in range(u.size):
        out[n] = guide[min(int(u[n] * cells), cells - 1)]
    for n in range(u.size):
        x = u[n]
        i = out[n]
        while i < last and cdf[i] <= x:
            i += 1
        out[n] = i
    return out


class TokenBuckets:
    """Per-user token buckets (sim/des/gateway.py's rule), applied to arrivals in time order."""

    def __init__(self, users: int, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = np.full(users, burst)
        self.updated = np.zeros(users)

    def allow(self, t: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Admission of arrivals (t sorted) by their users' buckets."""
        return _allow(self.tokens, self.updated, self.rate, self.burst, t, users)


@nb.njit(cache=True)
def _allow(
    tokens: np.ndarray, updated: np.ndarray, rate: float, burst: float, t: np.ndarray, users: np.ndarray
) -> np.ndarray:
    out = np.empty(t.size, np.bool_)
    for i in range(t.size):
        u = users[i]
        x = tokens[u] + (t[i] - updated[u]) * rate
        if x > burst:
            x = burst
        updated[u] = t[i]
        if x >= 1.0:
            tokens[u] = x - 1.0
            out[i] = True
        else:
            tokens[u] = x
            out[i] = False
    return out
