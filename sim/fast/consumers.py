"""Kafka consumers' backlog: records committed but not yet taken, per partition (the DES's lag in
messages), from the consumers' gate order."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def backlog(
    perm: np.ndarray,
    off: np.ndarray,
    lo: np.int64,
    hi: np.int64,
    commit: np.ndarray,
    take: np.ndarray,
    part: np.ndarray,
    counts: np.ndarray,
    fifo_take: np.ndarray,
    fifo_part: np.ndarray,
    fifo_off: np.ndarray,
    W: float,
    D: float,
) -> tuple:
    """Kafka backlog per partition at each append (the DES's lag in messages), consumer by consumer.

    Each consumer's records not yet taken form a FIFO (its gate is FIFO); `counts[p]` is how many
    of them belong to partition p. Returns (max backlog at an append in [W, D), the new FIFOs)."""
    n_cons = hi - lo
    cap = fifo_take.size + perm.size
    nt = np.empty(cap)
    npart = np.empty(cap, np.int64)
    noff = np.zeros(n_cons + 1, np.int64)
    best = 0
    o = 0
    for c in range(n_cons):
        # the carried FIFO of consumer c, then its new records
        head = o
        for x in range(fifo_off[c], fifo_off[c + 1]):
            nt[o], npart[o] = fifo_take[x], fifo_part[x]
            o += 1
        s = lo + c
        for i in range(off[s], off[s + 1]):
            j = perm[i]
            while head < o and nt[head] <= commit[j]:
                counts[npart[head]] -= 1
                head += 1
            p = part[j]
            if W <= commit[j] < D and counts[p] + 1 > best:
                best = counts[p] + 1
            if take[j] > commit[j]:
                nt[o], npart[o] = take[j], p
                counts[p] += 1
                o += 1
        # compact: keep entries from head
        m = noff[c]
        for x in range(head, o):
            nt[m], npart[m] = nt[x], npart[x]
            m += 1
        o = m
        noff[c + 1] = o
    return best, nt[:o].copy(), npart[:o].copy(), noff
