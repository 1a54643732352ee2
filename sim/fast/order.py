"""Putting jobs in (station, arrival time) order, cheaply, for the per-station recursion.

Jobs reach a fleet as a few lists ("parts": carried from the last chunk, then one per flow),
each in request order. Request order is nearly time order at any one station (requests overtake
each other only by the spread of their delays), so: a stable counting sort by station, an
insertion sort of each part's run inside each station's segment (cost: the number of
inversions, cut off to a merge sort when a run is badly out of order), then a merge of the runs.
Ties keep input order (earlier part first), so the result is deterministic.

The sorts move each job's index together with a copy of its time (`key`), so they read memory
in sequence rather than through the index (2-3x faster at a million jobs a chunk).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_BUDGET_PER_ITEM = 24


@nb.njit(cache=True)
def _merge(
    perm: np.ndarray,
    key: np.ndarray,
    lo: np.int64,
    mid: np.int64,
    hi: np.int64,
    tmp: np.ndarray,
    tmp_key: np.ndarray,
) -> None:
    """Merge the sorted runs [lo, mid) and [mid, hi) of (perm, key) by key (left first on ties)."""
    if mid >= hi or lo >= mid or key[mid - 1] <= key[mid]:
        return
    n = mid - lo
    for k in range(n):
        tmp[k] = perm[lo + k]
        tmp_key[k] = key[lo + k]
    i, j, o = 0, mid, lo
    while i < n and j < hi:
        if key[j] < tmp_key[i]:
            perm[o], key[o] = perm[j], key[j]
            j += 1
        else:
            perm[o], key[o] = tmp[i], tmp_key[i]
            i += 1
        o += 1
    while i < n:
        perm[o], key[o] = tmp[i], tmp_key[i]
        i += 1
        o += 1


@nb.njit(cache=True)
def _sort_run(
    perm: np.ndarray, key: np.ndarray, lo: np.int64, hi: np.int64, tmp: np.ndarray, tmp_key: np.ndarray
) -> None:
    """Sort [lo, hi) of (perm, key) by key (stable): insertion sort, or a bottom-up merge sort if
    too disordered."""
    budget = _BUDGET_PER_ITEM * (hi - lo) + 64
    moves = 0
    for i in range(lo + 1, hi):
        x, kx = perm[i], key[i]
        j = i - 1
        while j >= lo and key[j] > kx:
            perm[j + 1], key[j + 1] = perm[j], key[j]
            j -= 1
            moves += 1
        perm[j + 1], key[j + 1] = x, kx
        if moves > budget:
            width = 1
            while width < hi - lo:
                for a in range(lo, hi, 2 * width):
                    _merge(perm, key, a, min(a + width, hi), min(a + 2 * width, hi), tmp, tmp_key)
                width *= 2
            return


@nb.njit(cache=True)
def order_jobs(
    st: np.ndarray, t: np.ndarray, part: np.ndarray, n_stations: np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """(perm, offsets): jobs perm[offsets[s]:offsets[s + 1]] are station s's, in time order.

    `part` numbers the input lists (non-decreasing along the input)."""
    n = st.size
    off = np.zeros(n_stations + 1, dtype=np.int64)
    for i in range(n):
        off[st[i] + 1] += 1
    for s in range(n_stations):
        off[s + 1] += off[s]
    pos = off[:-1].copy()
    perm = np.empty(n, dtype=np.int64)
    key = np.empty(n)
    part_of = np.empty(n, dtype=np.int64)
    for i in range(n):
        p = pos[st[i]]
        perm[p], key[p], part_of[p] = i, t[i], part[i]
        pos[st[i]] = p + 1
    tmp = np.empty(n, dtype=np.int64)
    tmp_key = np.empty(n)
    for s in range(n_stations):
        a, b = off[s], off[s + 1]
        if b - a < 2:
            continue
        i = a
        while i < b:  # sort each part's run, merging it into the sorted prefix
            j = i + 1
            while j < b and part_of[j] == part_of[i]:
                j += 1
            _sort_run(perm, key, i, j, tmp, tmp_key)
            _merge(perm, key, a, i, j, tmp, tmp_key)
            i = j
    return perm, off
