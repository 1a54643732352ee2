"""Cassandra in the calendar kernel beyond the quorum itself: hints, hedged reads and sole copies
(lost writes), as sim/des/cassandra.py does them.

Hints: a write that goes ahead stores a hint for each replica down when it is issued (a write
refused as unavailable stores none); a node that comes back replays its hints in stored order
(the kernel's EV_HINTS), so each node's hints carry sequence numbers: stored (the last one's) and
replayed (`hints` columns HN_STORED, HN_REPLAYED).

Hedged reads: with `hedge_after_ms` on an edge into the component, a read that asked k < RF
replicas holds its quorum row until `hedge_after_ms` after it was issued (EV_HEDGE); then, if the
quorum is not done, it asks the first replica in ring order that it has not asked and that is up,
and needs k of k + 1 replies from then on.

Sole copies, tracked only when a fault may lose data (state S_TRACK): a write acknowledged at its
first reply (k = 1) gets a row when issued, with the (node, sequence number) of each hint stored
for it. When its last reply is in, if exactly one replica applied it, that replica (its holder)
alone has it: the row joins the holder's list, or, with no hint, the holder's count of copies no
hint will ever cover. A copy is safe once any of its hints' nodes has replayed that far. A disk
lost (EV_LOSE) loses its node's unsafe copies. Safe copies leave a list lazily: from its front
when a copy joins (hint numbers grow about in acknowledgement order), and by a pass over the whole
list when it has grown past twice the length the last pass kept (plus COMPACT_SLACK), so a list
holds at most about twice the copies that were unsafe at its last pass: memory follows the unsafe
copies, not the run's length.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.station import is_down
from sim.calendar.program import C_BASE, C_RF
from sim.calendar.tables import (
    EV_REPLICA,
    H_BARE,
    H_HEAD,
    H_KEPT,
    H_LEN,
    H_TAIL,
    HN_REPLAYED,
    HN_STORED,
    HN_WAITING,
    OK,
    P_SOLE,
    QU_ASKED,
    QU_COMP,
    QU_FAIL,
    QU_OUT,
    QU_POS,
    QU_SOLE,
    S_HEDGES,
    S_HINTS,
    S_LOST_WRITES,
    S_TRACK,
    SO_HINTS,
    SO_HOLDER,
    SO_N,
    SO_NEXT,
    _alloc,
    _draw,
    _push,
    _release,
    _tick,
)

COMPACT_SLACK = 64  # copies a holder's list may grow beyond twice its last pass's before the next


@nb.njit(cache=True, _nrt=False)
def store_hints(c: np.int64, pos: np.int64, k: np.int64, now: float, comps: np.ndarray, replicas: np.ndarray,
                s_ints: np.ndarray, s_win: np.ndarray, hints: np.ndarray, state: np.ndarray, so: np.ndarray,
                so_free: np.ndarray) -> np.int64:
    """A write to ring row `pos` goes ahead: a hint for each replica down now; while lost data is
    tracked and the write is acknowledged at its first reply (k = 1), its sole-copy row (else -1)."""
    row = np.int64(-1)
    if state[S_TRACK] != 0 and k == 1:
        row = _alloc(so_free, state, P_SOLE)
        so[row, SO_NEXT] = -1
        so[row, SO_HOLDER] = -1
        so[row, SO_N] = 0
    base = comps[c, C_BASE]
    for j in range(comps[c, C_RF]):
        stn = base + replicas[pos, j]
        if is_down(s_ints, s_win, stn, now):
            state[S_HINTS] += 1
            hints[stn, HN_WAITING] += 1
            hints[stn, HN_STORED] += 1
            if row >= 0:
                n = so[row, SO_N]
                so[row, SO_HINTS + 2 * n] = stn
                so[row, SO_HINTS + 2 * n + 1] = hints[stn, HN_STORED]
                so[row, SO_N] = n + 1
    return row


@nb.njit(cache=True, _nrt=False)
def hedge(q: np.int64, now: float, qu: np.ndarray, comps: np.ndarray, replicas: np.ndarray, dists: np.ndarray,
          dvals: np.ndarray, hop_d: np.int64, key_hop: np.uint64, s_ints: np.ndarray, s_win: np.ndarray,
          ht: np.ndarray, hp: np.ndarray, state: np.ndarray) -> None:
    """Read quorum q, not done `hedge_after_ms` after it was issued, asks the first replica of its
    ring row it has not asked that is up (none: nothing happens), and may now fail once more."""
    c = qu[q, QU_COMP]
    base, pos = comps[c, C_BASE], qu[q, QU_POS]
    for j in range(comps[c, C_RF]):
        if (qu[q, QU_ASKED] >> j) & 1:
            continue
        stn = base + replicas[pos, j]
        if is_down(s_ints, s_win, stn, now):
            continue
        state[S_HEDGES] += 1
        qu[q, QU_ASKED] |= np.int64(1) << j
        qu[q, QU_FAIL] += 1
        qu[q, QU_OUT] += 1
        i = _tick(state)
        h = _draw(dists, dvals, hop_d, key_hop, i)
        _push(ht, hp, state, now + h, EV_REPLICA, q, stn)
        return


@nb.njit(cache=True, _nrt=False)
def sole_reply(q: np.int64, stn: np.int64, err: np.int64, qu: np.ndarray, so: np.ndarray, so_free: np.ndarray,
               holders: np.ndarray, hints: np.ndarray, state: np.ndarray) -> None:
    """A reply of station stn to tracked write q (after the quorum counted it): once the last reply
    is in, a write exactly one replica applied is a sole copy on that replica."""
    row = qu[q, QU_SOLE]
    if err == OK:
        so[row, SO_HOLDER] = stn if so[row, SO_HOLDER] == -1 else -2
    if qu[q, QU_OUT] != 0:
        return
    qu[q, QU_SOLE] = -1
    h = so[row, SO_HOLDER]
    if h < 0:  # none or several applied it: no sole copy
        _release(so_free, state, P_SOLE, row)
        return
    if so[row, SO_N] == 0:  # no hint was stored for it: it stays a sole copy
        holders[h, H_BARE] += 1
        _release(so_free, state, P_SOLE, row)
        return
    _prune_front(h, so, so_free, holders, hints, state)
    so[row, SO_NEXT] = -1
    tail = holders[h, H_TAIL]
    if tail < 0:
        holders[h, H_HEAD] = row
    else:
        so[tail, SO_NEXT] = row
    holders[h, H_TAIL] = row
    holders[h, H_LEN] += 1
    if holders[h, H_LEN] > 2 * holders[h, H_KEPT] + COMPACT_SLACK:
        _compact(h, so, so_free, holders, hints, state)


@nb.njit(cache=True, _nrt=False)
def lose(h: np.int64, so: np.ndarray, so_free: np.ndarray, holders: np.ndarray, hints: np.ndarray,
         state: np.ndarray) -> None:
    """Station h's disk is lost, and with it the writes only it has: each unsafe copy is a lost write."""
    lost = holders[h, H_BARE]
    row = holders[h, H_HEAD]
    while row >= 0:
        nxt = so[row, SO_NEXT]
        if not _safe(row, so, hints):
            lost += 1
        _release(so_free, state, P_SOLE, row)
        row = nxt
    state[S_LOST_WRITES] += lost
    holders[h, H_HEAD] = -1
    holders[h, H_TAIL] = -1
    holders[h, H_LEN] = 0
    holders[h, H_KEPT] = 0
    holders[h, H_BARE] = 0


@nb.njit(inline="always", cache=True)
def _safe(row: np.int64, so: np.ndarray, hints: np.ndarray) -> bool:
    """A second copy exists: one of the copy's hints has been replayed."""
    for j in range(so[row, SO_N]):
        if so[row, SO_HINTS + 2 * j + 1] <= hints[so[row, SO_HINTS + 2 * j], HN_REPLAYED]:
            return True
    return False


@nb.njit(cache=True, _nrt=False)
def _prune_front(h: np.int64, so: np.ndarray, so_free: np.ndarray, holders: np.ndarray, hints: np.ndarray,
                 state: np.ndarray) -> None:
    row = holders[h, H_HEAD]
    while row >= 0 and _safe(row, so, hints):
        nxt = so[row, SO_NEXT]
        _release(so_free, state, P_SOLE, row)
        holders[h, H_LEN] -= 1
        row = nxt
    holders[h, H_HEAD] = row
    if row < 0:
        holders[h, H_TAIL] = -1


@nb.njit(cache=True, _nrt=False)
def _compact(h: np.int64, so: np.ndarray, so_free: np.ndarray, holders: np.ndarray, hints: np.ndarray,
             state: np.ndarray) -> None:
    """Drop every safe copy of holder h's list, keeping the others in order."""
    prev = np.int64(-1)
    row = holders[h, H_HEAD]
    n = 0
    while row >= 0:
        nxt = so[row, SO_NEXT]
        if _safe(row, so, hints):
            _release(so_free, state, P_SOLE, row)
            if prev < 0:
                holders[h, H_HEAD] = nxt
            else:
                so[prev, SO_NEXT] = nxt
        else:
            prev = row
            n += 1
        row = nxt
    holders[h, H_TAIL] = prev
    holders[h, H_LEN] = n
    holders[h, H_KEPT] = n
