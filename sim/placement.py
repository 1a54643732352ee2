"""Where keys live: Cassandra's token ring, shared by both engines.

Tokens are allocated evenly (as Cassandra 4's allocator aims to): `vnodes` rounds, each a random
permutation of the nodes, placed at evenly spaced ring positions. A key's replicas are the first
RF distinct nodes clockwise from the first token >= hash(key), taking each zone once while there
are zones left (NetworkTopologyStrategy's rack awareness; node i is in zone i mod zones). Both
engines build the ring here from the same stream, so for a seed they place every key on the same
replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from sim.workload import hash_keys


@dataclass(frozen=True)
class TokenRing:
    tokens: np.ndarray  # uint64, sorted: token i's ring position
    replicas: np.ndarray  # int64 [tokens, rf]: the nodes holding keys that land on token i

    @classmethod
    def build(cls, nodes: int, vnodes: int, rf: int, zones: int, rng: np.random.Generator) -> TokenRing:
        n_tokens = nodes * vnodes
        owners = np.concatenate([rng.permutation(nodes) for _ in range(vnodes)])
        tokens = (np.arange(n_tokens, dtype=np.float64) / n_tokens * 2.0**64).astype(np.uint64)
        distinct_zones = min(zones, nodes)
        replicas = np.empty((n_tokens, rf), dtype=np.int64)
        for pos in range(n_tokens):
            chosen: list[int] = []
            used_zones: set[int] = set()
            j = pos
            while len(chosen) < rf:
                node = int(owners[j % n_tokens])
                zone_free = node % zones not in used_zones or len(used_zones) >= distinct_zones
                if node not in chosen and (zone_free or j - pos >= n_tokens):
                    chosen.append(node)
                    used_zones.add(node % zones)
                j += 1
            replicas[pos] = chosen
        return cls(tokens=tokens, replicas=replicas)

    def positions(self, ids: np.ndarray, salt: int) -> np.ndarray:
        """Ring position (index into `replicas`) of each integer key: the first token >= its hash,
        wrapping to token 0 past the last."""
        return _first_at_or_after(self.tokens, hash_keys(ids, salt))


@nb.njit(cache=True, nogil=True)
def _first_at_or_after(tokens: np.ndarray, h: np.ndarray) -> np.ndarray:
    """np.searchsorted(tokens, h, side="left") % tokens.size, from a guess: the tokens are evenly
    spaced, so h's share of the ring times their number is at most a step or two from the answer,
    and the walk from it ends at the same index as a binary search (10M keys: 1.0 -> 0.18 s)."""
    n = tokens.size
    out = np.empty(h.size, np.int64)
    for k in range(h.size):
        x = h[k]
        i = min(np.int64(float(x) / 18446744073709551616.0 * n), n)
        while i > 0 and tokens[i - 1] >= x:
            i -= 1
        while i < n and tokens[i] < x:
            i += 1
        out[k] = i if i < n else 0
    return out
