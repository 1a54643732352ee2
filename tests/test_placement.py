"""Where keys live (sim/placement.py) and who is drawn (sim/arrays/placement.py): the compiled
searches the build uses give numpy's `searchsorted` answers exactly, at the ring's and the
table's edges as well as inside."""

from __future__ import annotations

import numpy as np
import pytest

from sim.arrays.placement import Popularity
from sim.placement import TokenRing, _first_at_or_after
from sim.workload import hash_keys, zipf_cell_weights


@pytest.mark.parametrize(("nodes", "vnodes"), [(1, 1), (3, 1), (7, 256), (1200, 16)])
def test_ring_positions_are_numpys_first_token_at_or_after_each_hash(nodes: int, vnodes: int) -> None:
    ring = TokenRing.build(nodes, vnodes, min(3, nodes), 3, np.random.default_rng(1))
    ids = np.arange(200_000)
    got = ring.positions(ids, salt=77)
    h = hash_keys(ids, 77)
    want = np.searchsorted(ring.tokens, h, side="left") % len(ring.tokens)
    np.testing.assert_array_equal(got, want)
    # the edges: a hash on a token, just past it, before the first, past the last (wraps to 0)
    t = ring.tokens
    with np.errstate(over="ignore"):  # on a one-token ring, token 0 - 1 wraps: still a key
        edge = np.array([0, t[-1], t[-1] + np.uint64(1), np.iinfo(np.uint64).max, t[len(t) // 2],
                         t[len(t) // 2] + np.uint64(1), t[len(t) // 2] - np.uint64(1)], dtype=np.uint64)
    np.testing.assert_array_equal(_first_at_or_after(t, edge),
                                  np.searchsorted(t, edge, side="left") % len(t))


@pytest.mark.parametrize("weights", [
    zipf_cell_weights(500_000, 1.0, 1.0),  # skewed: most cells in the head
    np.random.default_rng(3).random(100_003),
    np.r_[np.zeros(10), np.random.default_rng(4).random(100), np.zeros(5)],  # members never drawn
    np.ones(1),
])
def test_the_guide_table_is_numpys_searchsorted_of_each_cell_start(weights: np.ndarray) -> None:
    pop = Popularity(weights / weights.sum())
    cells = pop.guide.size
    np.testing.assert_array_equal(pop.guide, np.searchsorted(pop.cdf, np.arange(cells) / cells, side="right"))


def test_ring_search_is_exact_for_any_sorted_tokens_however_far_the_guess() -> None:
    """The even spacing only makes the guess close: clustered tokens move it far, and the walks
    still end where a binary search does (keys on tokens, between them, past both ends)."""
    rng = np.random.default_rng(11)
    top = np.iinfo(np.uint64).max - np.uint64(1 << 40)  # a guess above the answer: walks down
    tokens = np.unique(np.r_[rng.integers(0, 1 << 40, 500, dtype=np.uint64),  # below: walks up
                             rng.integers(top, top + np.uint64(1 << 39), 500, dtype=np.uint64)])
    keys = np.r_[tokens, tokens + np.uint64(1), tokens - np.uint64(1),
                 rng.integers(0, np.iinfo(np.uint64).max, 5000, dtype=np.uint64, endpoint=True)]
    np.testing.assert_array_equal(_first_at_or_after(tokens, keys),
                                  np.searchsorted(tokens, keys, side="left") % len(tokens))
