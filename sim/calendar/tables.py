"""The calendar kernel's tables: event kinds, the columns of its pools, and the small compiled
operations on them (the heap, pool rows, draws, frames), shared by sim/calendar/kernel.py and the
modules it calls."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.placement import partition_of, shard_of
from sim.arrays.rng import DETERMINISTIC, EXPONENTIAL, GAMMA, LOGNORMAL, _gamma, norm_ppf, uniform
from sim.arrays.station import is_down
from sim.calendar.program import C_BALANCER, C_BASE, C_COUNT, C_RR

# events
# (EV_HEDGE: a hedged read's moment to ask one more replica; EV_LOSE: a Cassandra node's disk is lost)
(EV_START, EV_ARRIVE, EV_DONE, EV_REPLICA, EV_QREPLY, EV_KLEAD, EV_KLEAD_DONE, EV_KFOLLOW, EV_KFOLLOW_DONE,
 EV_FILL, EV_RESTART, EV_AARRIVE, EV_ADONE, EV_TIMEOUT, EV_RETRY, EV_HINTS, EV_HEDGE, EV_LOSE,
 EV_KLOST, EV_KBACK, EV_KELECT) = range(21)
HINT_BATCH = 50  # hints a recovered node replays per HINT_PERIOD_S: 5,000/s, sim/des/cassandra.py's throttle
HINT_PERIOD_S = 0.01
# worklist operations: start a frame's step, advance it past its step, finish a request; an edge call's
# next attempt, an attempt's answer (packed (error + 1) << 16 | attempt), a timeout, a breaker's refusal
W_START, W_ADV, W_FINISH, W_ATTEMPT, W_REPLY, W_FAILED, W_REFUSED = range(7)
# what ends a frame's sequence (T_ATTEMPT: a client attempt of a request behind a client edge)
T_FINISH, T_JOIN, T_UNAWAITED, T_MISSED, T_ATTEMPT = range(5)
# request columns (int)
# (RQ_USER, RQ_SLOT: the messaging preset's user, a sender or a reader, and the sender's member slot)
# (RQ_MARKED: 1 when the request's critical path is marked for the tail breakdown: every request, or
# every k-th when the run starts more than MARKED_PER_SEC, sim/calendar/marks.py)
(RQ_FLOW, RQ_KEY, RQ_NEW, RQ_REFS, RQ_DONE, RQ_FAN_NODE, RQ_FAN_N, RQ_KCOMP, RQ_CONS, RQ_NEXT, RQ_USER,
 RQ_SLOT, RQ_MARKED) = range(13)
RQ_COLS = 16  # 13 used: a row of 128 bytes is two whole cache lines (sim/calendar/pools.py)
# request floats: t0, when it entered, and its tail breakdown's marks (sim/calendar/marks.py): when the
# last part of its critical path ended, the client attempt whose marks it keeps (0 without a client
# edge, -1 once answered), then per column of its flow's labels the seconds spent there (NaN: none)
RQF_T0, RQF_STARTED, RQF_MARK, RQF_OPEN, RQF_PART0 = 0, 1, 2, 3, 4
# frame columns (int); frame floats: extra service seconds (per member). FR_CALLER: the component
# making the next call (names its policy edge); FR_ATT: its client attempt's number (0: none)
# (FR_FLOW: its request's flow, so a mark finds its column without reading the request's row)
FR_REQ, FR_NODE, FR_THEN, FR_LINK, FR_STATION, FR_CALLER, FR_ATT, FR_FLOW = range(8)
FR_COLS = 8
# join, quorum, produce columns
JN_PENDING, JN_SLACK, JN_FRAME, JN_OUT, JN_DONE = range(5)
JN_COLS = 8  # 5 used: one line a row
# (QU_EC, QU_ATT and KO_EC, KO_ATT: the edge call and attempt a quorum or a produce answers; -1: none.
# A read's QU_POS is its ring row and QU_ASKED a bit per replica asked (bit j: the row's j-th), for its
# hedge; a write's QU_SOLE is its sole-copy row while lost data is tracked, else -1)
(QU_FRAME, QU_SUCC, QU_FAIL, QU_OUT, QU_DONE, QU_COMP, QU_DIST, QU_EC, QU_ATT, QU_POS, QU_ASKED,
 QU_SOLE) = range(12)
QU_COLS = 16  # 12 used: two lines a row
# (KO_SRC: the producing request's flow, whose "<flow>_and_produce" opens the triggered one's breakdown)
(KO_FRAME, KO_P, KO_LEFT, KO_ACKED, KO_COMP, KO_KEY, KO_NEW, KO_FLOW, KO_OUT, KO_OVER, KO_USER,
 KO_SLOT, KO_EC, KO_ATT, KO_LEADER, KO_SRC) = range(16)
KO_COLS = 16
# edge calls (one logical call over a caller->callee edge with a policy, or a client request behind
# a client edge): the frame (or request) it answers, its attempts, the one awaited, attempts in flight
EC_FRAME, EC_REQ, EC_EDGE, EC_NODE, EC_ATT, EC_LIVE, EC_DONE, EC_OUT, EC_STATION = range(9)
EC_COLS = 16  # 9 used: two lines a row
# sole copies (sim/calendar/sole.py): a write acknowledged at its first reply, while it is in flight and
# then, if one replica alone applied it, in its holder's list: the next row, the holder (in flight: -1
# none applied yet, -2 two or more), and the (node, hint sequence number) of each hint stored for it
SO_NEXT, SO_HOLDER, SO_N, SO_HINTS = range(4)
# per station, its list of sole copies: head and tail rows, length, length kept at the last compaction,
# and the copies that no hint covers (never safe: counted, not listed)
H_HEAD, H_TAIL, H_LEN, H_KEPT, H_BARE = range(5)
H_COLS = 5
# per station, its hints: waiting, ever stored (the last one's sequence number), ever replayed
HN_WAITING, HN_STORED, HN_REPLAYED = range(3)
HN_COLS = 3
# pools
P_REQ, P_FRAME, P_JOIN, P_QUORUM, P_KOP, P_EC, P_SOLE = range(7)
N_POOLS = 7
# state slots (S_FAULT_POS: the next of the faults' timed actions; S_TRACK: 1 when a fault may lose data;
# S_LOW: set when a pool, the heap or an output came within MARGIN of its end, so the loop checks them all;
# S_MARK_EVERY: every how many requests one is marked for the tail breakdown; S_SEQ: requests so far)
(S_HEAP_N, S_DRAWS, S_OUT_N, S_START_N, S_EVENTS, S_VISITS, S_UNAVAILABLE, S_HINTS, S_RATE_LIMITED,
 S_GROW, S_WL_N, S_HITS, S_MISSES, S_LAG_MSGS, S_KAFKA_LOST, S_ARR_POS, S_ARR_N, S_KAFKA_UNAVAILABLE,
 S_HINTS_REPLAYED, S_HEDGES, S_LOST_WRITES, S_FAULT_POS, S_TRACK, S_LOW, S_MARK_EVERY, S_SEQ,
 S_TOP0) = range(27)
N_STATE = S_TOP0 + N_POOLS
# return codes
DONE, GROW, FLUSH = 0, 1, 2
PICK_TRIES = 32  # random draws of a balancer before it walks to the next live instance
MARGIN = 1 << 14  # free rows every pool keeps before an event is taken
OK = -1  # a step's outcome without error


# The calendar is a 4-ary min-heap on time: half the depth of a binary heap, and a node's four
# children are adjacent, so a sift-down compares them in one or two cache lines (at 150k pending
# events: 171 against 212 ns per pop and push in a micro-benchmark on the 2-vCPU box). Each event's
# (kind, x, y) is one row of `hp`, so a move touches two arrays, not four (at the ~25k events of
# the reference design: 85 against 104 ns per pop and push).
# Small helpers called with many constant arguments take one explicit signature: numba would
# otherwise compile a copy per literal value (17 of _push), a fifth of the engine's first compile.
@nb.njit("void(f8[::1], i8[:, ::1], i8[::1], f8, i8, i8, i8)", cache=True, _nrt=False)
def _push(ht: np.ndarray, hp: np.ndarray, state: np.ndarray, t: float, k: np.int64, x: np.int64,
          y: np.int64) -> None:
    i = state[S_HEAP_N]
    state[S_HEAP_N] = i + 1
    if i + 1 + MARGIN > ht.size:
        state[S_LOW] = 1
    while i > 0:
        p = (i - 1) >> 2
        if ht[p] <= t:
            break
        ht[i] = ht[p]
        hp[i, 0], hp[i, 1], hp[i, 2] = hp[p, 0], hp[p, 1], hp[p, 2]
        i = p
    ht[i] = t
    hp[i, 0], hp[i, 1], hp[i, 2] = k, x, y


@nb.njit(inline="always", cache=True)
def _pop(ht: np.ndarray, hp: np.ndarray, state: np.ndarray) -> None:
    """Remove the root (read it first)."""
    n = state[S_HEAP_N] - 1
    state[S_HEAP_N] = n
    if n == 0:
        return
    t, k, x, y = ht[n], hp[n, 0], hp[n, 1], hp[n, 2]
    i = 0
    while True:
        c = 4 * i + 1
        if c >= n:
            break
        m, tm = c, ht[c]
        for j in range(c + 1, min(c + 4, n)):
            if ht[j] < tm:
                m, tm = j, ht[j]
        if tm >= t:
            break
        ht[i] = tm
        hp[i, 0], hp[i, 1], hp[i, 2] = hp[m, 0], hp[m, 1], hp[m, 2]
        i = m
    ht[i] = t
    hp[i, 0], hp[i, 1], hp[i, 2] = k, x, y


@nb.njit(cache=True)
def _route(routes: np.ndarray, hashed: np.ndarray, r: np.int64, key: np.int64) -> np.int64:
    """Where `key` goes on route r of a node (its N_ROUTE): r >= 0 is an offset into `routes` (a
    Cassandra ring position per key); r <= -2 is hashed route -2 - r, computed as sim.workload's
    hash_keys does it, by the DES's rules (sim/arrays/placement.py shard_of, partition_of): a Redis
    shard or a Kafka partition, so no table over 40M keys is read or kept."""
    if r >= 0:
        return np.int64(routes[r + key])
    h = -2 - r  # element by element: a row view would cost reference counting
    if hashed[h, 2] == 1:
        return shard_of(key, np.int64(hashed[h, 1]), hashed[h, 0])
    return partition_of(key, np.int64(hashed[h, 1]), hashed[h, 0])


@nb.njit(cache=True)
def _tick(state: np.ndarray) -> np.int64:
    """The next random draw's number (every draw of a run has its own: the counter-based streams)."""
    i = state[S_DRAWS]
    state[S_DRAWS] = i + 1
    return i


@nb.njit("i8(i8[::1], i8[::1], i8)", cache=True, _nrt=False)
def _alloc(free: np.ndarray, state: np.ndarray, pool: int) -> np.int64:
    top = state[S_TOP0 + pool] - 1
    state[S_TOP0 + pool] = top
    if top < MARGIN:
        state[S_LOW] = 1
    return free[top]


@nb.njit("void(i8[::1], i8[::1], i8, i8)", cache=True, _nrt=False)
def _release(free: np.ndarray, state: np.ndarray, pool: int, row: np.int64) -> None:
    top = state[S_TOP0 + pool]
    free[top] = row
    state[S_TOP0 + pool] = top + 1


@nb.njit(cache=True, _nrt=False)
def _draw(dists: np.ndarray, dvals: np.ndarray, d: np.int64, key: np.uint64, i: np.int64) -> float:
    """sim/arrays/rng.py's `sample` of distribution row d, read element by element: slicing the tables
    would create array views, whose reference counting costs more than the draw."""
    kind = np.int64(dists[d, 0])
    if kind == DETERMINISTIC:
        x = dists[d, 1]
    elif kind == EXPONENTIAL:
        x = -dists[d, 1] * math.log(uniform(key, i, np.int64(0)))
    elif kind == LOGNORMAL:
        x = math.exp(dists[d, 1] + dists[d, 2] * norm_ppf(uniform(key, i, np.int64(0))))
    elif kind == GAMMA:
        x = _gamma(dists[d, 1], key, i, np.int64(0)) * dists[d, 2]
    else:
        n = np.int64(dists[d, 7])
        x = dvals[np.int64(dists[d, 6]) + min(np.int64(uniform(key, i, np.int64(0)) * n), n - 1)]
    lo, hi = dists[d, 3], dists[d, 4]
    if x < lo:  # a NaN bound compares false: no bound
        x = lo
    if x > hi:
        x = hi
    return x * dists[d, 5]


@nb.njit("i8(i8[:, ::1], i8[:, ::1], f8[::1], f8[::1], i8[::1], i8[:, ::1], i8[::1], i8, i8, i8, i8)",
         cache=True, _nrt=False)
def _child(fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray, fr_t0: np.ndarray, fr_free: np.ndarray,
           rq: np.ndarray, state: np.ndarray, parent: np.int64, node: np.int64, then: np.int64,
           link: np.int64) -> np.int64:
    """A new frame of the parent's request at `node`, with the parent's keys and latency origin (a
    branch, a member, a miss branch)."""
    g = _alloc(fr_free, state, P_FRAME)
    r = fr[parent, FR_REQ]
    fr[g, FR_REQ] = r
    fr[g, FR_NODE] = node
    fr[g, FR_THEN] = then
    fr[g, FR_LINK] = link
    fr[g, FR_CALLER] = fr[parent, FR_CALLER]
    fr[g, FR_ATT] = fr[parent, FR_ATT]  # its client attempt's (sim/calendar/marks.py)
    fr[g, FR_FLOW] = fr[parent, FR_FLOW]
    for z in range(fr_keys.shape[1]):
        fr_keys[g, z] = fr_keys[parent, z]
    fr_extra[g] = 0.0
    fr_t0[g] = fr_t0[parent]
    rq[r, RQ_REFS] += 1
    return g


@nb.njit(cache=True)
def _win(t: float, window_s: float, nw: np.int64) -> np.int64:
    w = np.int64(t / window_s)
    return w if w < nw else nw


@nb.njit(cache=True, _nrt=False)
def _pick(c: np.int64, now: float, comps: np.ndarray, state: np.ndarray, key_comp: np.ndarray,
          s_ints: np.ndarray, s_win: np.ndarray) -> np.int64:
    """An instance of component c for the next call, never a crashed one while another is up (a
    crashed one when all are: it answers unavailable). Random: uniform over the live instances (a
    draw that lands on a crashed one draws again, as the DES picks among its live list; after
    PICK_TRIES the next live one in order); round robin: the rotation skips crashed instances."""
    base, n = comps[c, C_BASE], comps[c, C_COUNT]
    if comps[c, C_BALANCER] == 1:
        k = comps[c, C_RR]
    else:
        for _ in range(PICK_TRIES):
            i = _tick(state)
            # (one instance: the draw is 0 whatever it is, so it is numbered but not computed)
            k = min(np.int64(uniform(key_comp[c, 1], i, np.int64(0)) * n), n - 1) if n > 1 else np.int64(0)
            if not is_down(s_ints, s_win, base + k, now):
                return base + k
    for _ in range(n):
        if not is_down(s_ints, s_win, base + k, now):
            break
        k = k + 1 if k + 1 < n else 0
    if comps[c, C_BALANCER] == 1:
        comps[c, C_RR] = k + 1 if k + 1 < n else 0
    return base + k
