"""The calendar engine's compiled loop: events in time order, each station visit served on arrival.

One binary heap holds every pending event (time, kind, x, y). An event is taken in time order and
handled to the end: a call's arrival at a station is served there by the Kiefer-Wolfowitz
recursion of sim/arrays/station.py (`serve`: FIFO multi-server, queue bound, capacity windows,
statistics), which knows the job's start and end the moment it arrives, so a visit costs one
arrival event and one completion event, and the service time is drawn inside the loop
(counter-based, sim/arrays/rng.py). Everything a completion sets off at the same instant (the next
step of the flow, a join's answer, a parallel's branches, a fan-out's members, a cache miss's
branch) runs from a worklist before the next event, so nothing waits for a later event that could
act sooner: the order of events is the DES's, and every feedback (a join, a quorum, a consumer
freeing a slot) acts at its exact time.

Flows are programs (sim/calendar/program.py): a frame is where one sequence of steps stands (the
DES's Cursor), a join waits for its branches, a quorum for Cassandra's replicas, a produce for
Kafka's replicas. They live in pools of rows with free lists; when a pool runs low the loop
returns and the engine grows it (sim/calendar/engine.py), so memory follows the work in flight.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.placement import member
from sim.arrays.rng import DETERMINISTIC, EXPONENTIAL, GAMMA, LOGNORMAL, _gamma, norm_ppf, uniform
from sim.arrays.station import is_down, serve
from sim.calendar.program import (
    C_ACKS,
    C_BALANCER,
    C_BASE,
    C_CONS_COMP,
    C_CONS_NODE,
    C_CONS_OFF,
    C_COUNT,
    C_DIST_A,
    C_HIT_OFF,
    C_MAX_IN_FLIGHT,
    C_PART_OFF,
    C_PARTS,
    C_RF,
    C_RING,
    C_RL_OFF,
    C_RR,
    ERRS,
    F_BURST,
    F_RATE,
    K_CACHE,
    K_CASSANDRA,
    K_CONSUME,
    K_FANOUT,
    K_GATEWAY,
    K_PARALLEL,
    K_PRODUCE,
    K_REDIS,
    K_SERVICE,
    N_A,
    N_B,
    N_C,
    N_COMP,
    N_DIST,
    N_KIND,
    N_NEXT,
    N_ROUTE,
    N_SLOT,
)

# events
EV_START, EV_ARRIVE, EV_DONE, EV_REPLICA, EV_QREPLY, EV_KLEAD, EV_KLEAD_DONE, EV_KFOLLOW, EV_KFOLLOW_DONE, \
    EV_FILL, EV_RESTART = range(11)
# worklist operations
W_START, W_ADV = 0, 1
# what ends a frame's sequence
T_FINISH, T_JOIN, T_UNAWAITED, T_MISSED = range(4)
# request columns (int)
# (RQ_USER, RQ_SLOT: the messaging preset's user, a sender or a reader, and the sender's member slot)
(RQ_FLOW, RQ_KEY, RQ_NEW, RQ_REFS, RQ_DONE, RQ_FAN_NODE, RQ_FAN_N, RQ_KCOMP, RQ_CONS, RQ_NEXT, RQ_USER,
 RQ_SLOT) = range(12)
RQ_COLS = 12
RQF_T0, RQF_STARTED = 0, 1
# frame columns (int); frame floats: extra service seconds (per member)
FR_REQ, FR_NODE, FR_THEN, FR_LINK, FR_STATION = range(5)
FR_COLS = 5
# join, quorum, produce columns
JN_PENDING, JN_SLACK, JN_FRAME, JN_OUT, JN_DONE = range(5)
JN_COLS = 5
QU_FRAME, QU_SUCC, QU_FAIL, QU_OUT, QU_DONE, QU_COMP, QU_DIST = range(7)
QU_COLS = 7
(KO_FRAME, KO_P, KO_LEFT, KO_ACKED, KO_COMP, KO_KEY, KO_NEW, KO_FLOW, KO_OUT, KO_OVER, KO_USER,
 KO_SLOT) = range(12)
KO_COLS = 12
# pools
P_REQ, P_FRAME, P_JOIN, P_QUORUM, P_KOP = range(5)
N_POOLS = 5
# state slots
(S_HEAP_N, S_DRAWS, S_OUT_N, S_START_N, S_EVENTS, S_VISITS, S_UNAVAILABLE, S_HINTS, S_RATE_LIMITED,
 S_GROW, S_WL_N, S_HITS, S_MISSES, S_LAG_MSGS, S_KAFKA_LOST, S_ARR_POS, S_ARR_N, S_TOP0) = range(18)
N_STATE = S_TOP0 + N_POOLS
# return codes
DONE, GROW, FLUSH = 0, 1, 2
MARGIN = 1 << 14  # free rows every pool keeps before an event is taken
OK = -1  # a step's outcome without error


@nb.njit(inline="always", cache=True)
def _push(ht: np.ndarray, hk: np.ndarray, hx: np.ndarray, hy: np.ndarray, state: np.ndarray,
          t: float, k: np.int64, x: np.int64, y: np.int64) -> None:
    i = state[S_HEAP_N]
    state[S_HEAP_N] = i + 1
    while i > 0:
        p = (i - 1) >> 1
        if ht[p] <= t:
            break
        ht[i], hk[i], hx[i], hy[i] = ht[p], hk[p], hx[p], hy[p]
        i = p
    ht[i], hk[i], hx[i], hy[i] = t, k, x, y


@nb.njit(inline="always", cache=True)
def _pop(ht: np.ndarray, hk: np.ndarray, hx: np.ndarray, hy: np.ndarray, state: np.ndarray) -> None:
    """Remove the root (read it first)."""
    n = state[S_HEAP_N] - 1
    state[S_HEAP_N] = n
    if n == 0:
        return
    t, k, x, y = ht[n], hk[n], hx[n], hy[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and ht[c + 1] < ht[c]:
            c += 1
        if ht[c] >= t:
            break
        ht[i], hk[i], hx[i], hy[i] = ht[c], hk[c], hx[c], hy[c]
        i = c
    ht[i], hk[i], hx[i], hy[i] = t, k, x, y


@nb.njit(inline="always", cache=True)
def _alloc(free: np.ndarray, state: np.ndarray, pool: int) -> np.int64:
    top = state[S_TOP0 + pool] - 1
    state[S_TOP0 + pool] = top
    return free[top]


@nb.njit(inline="always", cache=True)
def _release(free: np.ndarray, state: np.ndarray, pool: int, row: np.int64) -> None:
    top = state[S_TOP0 + pool]
    free[top] = row
    state[S_TOP0 + pool] = top + 1


@nb.njit(inline="always", cache=True)
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


@nb.njit(inline="always", cache=True)
def _child(fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray, fr_free: np.ndarray, rq: np.ndarray,
           state: np.ndarray, parent: np.int64, node: np.int64, then: np.int64, link: np.int64) -> np.int64:
    """A new frame of the parent's request at `node`, with the parent's keys (a branch, a member, a
    miss branch)."""
    g = _alloc(fr_free, state, P_FRAME)
    r = fr[parent, FR_REQ]
    fr[g, FR_REQ] = r
    fr[g, FR_NODE] = node
    fr[g, FR_THEN] = then
    fr[g, FR_LINK] = link
    for z in range(fr_keys.shape[1]):
        fr_keys[g, z] = fr_keys[parent, z]
    fr_extra[g] = 0.0
    rq[r, RQ_REFS] += 1
    return g


@nb.njit(inline="always", cache=True)
def _win(t: float, window_s: float, nw: np.int64) -> np.int64:
    w = np.int64(t / window_s)
    return w if w < nw else nw


@nb.njit(cache=True)
def inject(t: np.ndarray, flow: np.ndarray, key: np.ndarray, new: np.ndarray, user: np.ndarray,
           slot: np.ndarray, arr_r: np.ndarray, rq: np.ndarray, rqf: np.ndarray, req_free: np.ndarray,
           state: np.ndarray) -> None:
    """A chunk's client requests (in time order): a request row each, listed in `arr_r` for `run` to
    start in turn (they stay out of the heap, which holds only the events of requests in flight)."""
    for n in range(t.size):
        r = _alloc(req_free, state, P_REQ)
        rq[r, RQ_FLOW] = flow[n]
        rq[r, RQ_KEY] = key[n]
        rq[r, RQ_NEW] = new[n]
        rq[r, RQ_USER] = user[n]
        rq[r, RQ_SLOT] = slot[n]
        rq[r, RQ_REFS] = 0
        rq[r, RQ_DONE] = 0
        rq[r, RQ_FAN_NODE] = -1
        rq[r, RQ_KCOMP] = -1
        rqf[r, RQF_T0] = t[n]
        rqf[r, RQF_STARTED] = t[n]
        arr_r[n] = r
    state[S_ARR_POS] = 0
    state[S_ARR_N] = t.size


@nb.njit(cache=True)
def run(t_end: float,
        # the program
        nodes: np.ndarray, node_f: np.ndarray, branches: np.ndarray, comps: np.ndarray, comp_f: np.ndarray,
        dists: np.ndarray, dvals: np.ndarray, routes: np.ndarray, replicas: np.ndarray, cdfs: np.ndarray,
        space_i: np.ndarray, hit_p: np.ndarray, flow_i: np.ndarray, hop_d: np.int64, key_hop: np.uint64,
        key_node: np.ndarray, key_comp: np.ndarray, recipients: np.ndarray, n_users: np.int64,
        member_salt: np.uint64,
        # stations (sim/fast/station.Stations)
        s_ints: np.ndarray, s_floats: np.ndarray, s_free: np.ndarray, s_ring: np.ndarray, s_win: np.ndarray,
        s_waits: np.ndarray, s_wait_stats: np.ndarray, s_glob: np.ndarray, s_counts: np.ndarray,
        # the chunk's client arrivals (time order), the calendar and the pools
        arr_t: np.ndarray, arr_r: np.ndarray,
        ht: np.ndarray, hk: np.ndarray, hx: np.ndarray, hy: np.ndarray, state: np.ndarray,
        rq: np.ndarray, rqf: np.ndarray, req_free: np.ndarray,
        fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray, fr_free: np.ndarray,
        jn: np.ndarray, jn_free: np.ndarray, qu: np.ndarray, qu_free: np.ndarray,
        ko: np.ndarray, kof: np.ndarray, ko_free: np.ndarray,
        wl_op: np.ndarray, wl_f: np.ndarray, wl_e: np.ndarray,
        # Kafka logs and consumers, rate-limit buckets
        log_head: np.ndarray, log_tail: np.ndarray, log_len: np.ndarray,
        cons_in: np.ndarray, cons_cursor: np.ndarray, rl_tokens: np.ndarray, rl_updated: np.ndarray,
        # outputs
        out_i: np.ndarray, out_f: np.ndarray, start_i: np.ndarray, start_f: np.ndarray,
        async_err: np.ndarray, window_s: float, win_hits: np.ndarray, win_misses: np.ndarray,
        win_lag: np.ndarray, win_commit: np.ndarray, win_take: np.ndarray, lag_max: np.ndarray) -> int:
    """Take events before `t_end`; DONE when there are none left before it, GROW when a pool runs
    low (the engine grows it and calls again), FLUSH when the outputs are full."""
    W = s_glob[0]
    nw = np.int64(win_hits.size - 1)
    heap_cap = ht.size
    out_cap = out_i.shape[0]
    while True:
        # -- room for one more event and everything it sets off ------------------------------
        if state[S_GROW] != 0:  # a fan-out wants this many frames (the engine resets it)
            return GROW
        if (state[S_HEAP_N] + MARGIN > heap_cap or state[S_TOP0 + P_REQ] < MARGIN
                or state[S_TOP0 + P_FRAME] < MARGIN or state[S_TOP0 + P_JOIN] < MARGIN
                or state[S_TOP0 + P_QUORUM] < MARGIN or state[S_TOP0 + P_KOP] < MARGIN):
            return GROW
        if state[S_OUT_N] + MARGIN > out_cap or state[S_START_N] + MARGIN > start_i.shape[0]:
            return FLUSH
        pos = state[S_ARR_POS]
        if pos < state[S_ARR_N] and (state[S_HEAP_N] == 0 or arr_t[pos] <= ht[0]):
            now, ev, x, y = arr_t[pos], EV_START, arr_r[pos], np.int64(0)
            state[S_ARR_POS] = pos + 1
        elif state[S_HEAP_N] == 0 or ht[0] >= t_end:
            return DONE
        else:
            now = ht[0]
            ev, x, y = hk[0], hx[0], hy[0]
            _pop(ht, hk, hx, hy, state)
        state[S_EVENTS] += 1
        wl = 0  # the worklist: (op, frame, error) handled before the next event

        # -- the event -------------------------------------------------------------------------
        if ev == EV_START:
            r = x
            fl = rq[r, RQ_FLOW]
            f = _alloc(fr_free, state, P_FRAME)
            fr[f, FR_REQ] = r
            fr[f, FR_NODE] = flow_i[fl, 0]
            fr[f, FR_THEN] = T_FINISH
            fr[f, FR_LINK] = -1
            fr_keys[f, flow_i[fl, 1]] = rq[r, RQ_KEY]
            if flow_i[fl, 3] >= 0:
                fr_keys[f, flow_i[fl, 3]] = rq[r, RQ_USER]
            fr_extra[f] = 0.0
            rq[r, RQ_REFS] += 1
            wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
            wl += 1
        elif ev == EV_ARRIVE:
            f = x
            node = fr[f, FR_NODE]
            i = state[S_DRAWS]
            state[S_DRAWS] = i + 1
            c = nodes[node, N_COMP]
            svc = _draw(dists, dvals, nodes[node, N_DIST], key_comp[c, 0], i) + fr_extra[f]
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         fr[f, FR_STATION], now, svc)
            if a < 0:
                _push(ht, hk, hx, hy, state, b, EV_DONE, f, c * ERRS + np.int64(-a) - 1)
            else:
                _push(ht, hk, hx, hy, state, b, EV_DONE, f, OK)
        elif ev == EV_DONE:
            f, err = x, y
            node = fr[f, FR_NODE]
            if nodes[node, N_KIND] != K_CACHE:
                wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, err
                wl += 1
            else:
                c = nodes[node, N_COMP]
                miss_head = nodes[node, N_A]
                outcome = OK
                if err != OK:
                    async_err[err] += 1
                    outcome = err
                else:
                    r = fr[f, FR_REQ]
                    if rq[r, RQ_NEW] == 0:
                        key = fr_keys[f, nodes[node, N_SLOT]]
                        i = state[S_DRAWS]
                        state[S_DRAWS] = i + 1
                        hit = uniform(key_node[node, 1], i, np.int64(0)) < hit_p[comps[c, C_HIT_OFF] + key]
                        w = _win(now, window_s, nw)
                        if hit:
                            win_hits[w] += 1
                            if now >= W:
                                state[S_HITS] += 1
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                            wl += 1
                            outcome = -2  # handled
                        else:
                            win_misses[w] += 1
                            if now >= W:
                                state[S_MISSES] += 1
                    if outcome == OK:
                        outcome = nodes[node, N_C]  # a miss
                if outcome != -2:
                    if miss_head < 0:
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, outcome
                        wl += 1
                    else:
                        g = _child(fr, fr_keys, fr_extra, fr_free, rq, state, f, miss_head, T_MISSED, f)
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
        elif ev in (EV_REPLICA, EV_KLEAD, EV_KFOLLOW):
            if ev == EV_REPLICA:
                c, d = qu[x, QU_COMP], qu[x, QU_DIST]
            else:
                c = ko[x, KO_COMP]
                d = comps[c, C_DIST_A]  # the append time
            i = state[S_DRAWS]
            state[S_DRAWS] = i + 1
            svc = _draw(dists, dvals, d, key_comp[c, 0], i)
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         y, now, svc)
            err = c * ERRS + np.int64(-a) - 1 if a < 0 else OK
            _push(ht, hk, hx, hy, state, b, ev + 1, x, err)  # EV_QREPLY, EV_KLEAD_DONE, EV_KFOLLOW_DONE
        elif ev == EV_QREPLY:
            q, err = x, y
            qu[q, QU_OUT] -= 1
            if qu[q, QU_DONE] == 0:
                if err == OK:
                    qu[q, QU_SUCC] -= 1
                    if qu[q, QU_SUCC] == 0:
                        qu[q, QU_DONE] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, qu[q, QU_FRAME], OK
                        wl += 1
                else:
                    qu[q, QU_FAIL] -= 1
                    if qu[q, QU_FAIL] < 0:
                        qu[q, QU_DONE] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, qu[q, QU_FRAME], err
                        wl += 1
            if qu[q, QU_OUT] == 0:
                _release(qu_free, state, P_QUORUM, q)
        elif ev in (EV_KLEAD_DONE, EV_KFOLLOW_DONE):
            o, err = x, y
            c = ko[o, KO_COMP]
            commit = False
            if ev == EV_KLEAD_DONE:
                if err != OK:
                    ko[o, KO_LEFT] = -1
                else:
                    if comps[c, C_ACKS] == 1 and ko[o, KO_ACKED] == 0:
                        ko[o, KO_ACKED] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, ko[o, KO_FRAME], OK
                        wl += 1
                    if ko[o, KO_LEFT] == 0:
                        commit = True
                    else:
                        nb_ = comps[c, C_COUNT]
                        p = ko[o, KO_P] - comps[c, C_PART_OFF]
                        for k in range(1, comps[c, C_RF]):
                            ko[o, KO_OUT] += 1
                            i = state[S_DRAWS]
                            state[S_DRAWS] = i + 1
                            h = _draw(dists, dvals, hop_d, key_hop, i)
                            _push(ht, hk, hx, hy, state, now + h, EV_KFOLLOW, o,
                                  comps[c, C_BASE] + (p + k) % nb_)
            else:
                ko[o, KO_OUT] -= 1
                if ko[o, KO_LEFT] >= 0:
                    if err != OK:
                        ko[o, KO_LEFT] = -1
                    else:
                        ko[o, KO_LEFT] -= 1
                        if ko[o, KO_LEFT] == 0:
                            commit = True
            if ko[o, KO_LEFT] < 0 and ko[o, KO_OVER] == 0:  # failed: the producer hears, or the record's lost
                ko[o, KO_OVER] = 1
                if ko[o, KO_ACKED] != 0:
                    state[S_KAFKA_LOST] += 1
                else:
                    ko[o, KO_ACKED] = 1
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, ko[o, KO_FRAME], err
                    wl += 1
            if commit:
                ko[o, KO_OVER] = 1
                if ko[o, KO_ACKED] == 0:
                    ko[o, KO_ACKED] = 1
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, ko[o, KO_FRAME], OK
                    wl += 1
                trig = ko[o, KO_FLOW]
                if trig >= 0:
                    r = _alloc(req_free, state, P_REQ)
                    rq[r, RQ_FLOW] = trig
                    rq[r, RQ_KEY] = ko[o, KO_KEY]
                    rq[r, RQ_NEW] = ko[o, KO_NEW]
                    rq[r, RQ_USER] = ko[o, KO_USER]
                    rq[r, RQ_SLOT] = ko[o, KO_SLOT]
                    rq[r, RQ_REFS] = 0
                    rq[r, RQ_DONE] = 0
                    rq[r, RQ_FAN_NODE] = -1
                    rq[r, RQ_KCOMP] = c
                    rq[r, RQ_NEXT] = -1
                    rqf[r, RQF_T0] = kof[o]
                    rqf[r, RQF_STARTED] = now
                    s = state[S_START_N]
                    start_i[s] = trig
                    start_f[s, 0] = kof[o]
                    start_f[s, 1] = now
                    state[S_START_N] = s + 1
                    p = ko[o, KO_P]
                    if log_len[p] == 0:
                        log_head[p] = r
                    else:
                        rq[log_tail[p], RQ_NEXT] = r
                    log_tail[p] = r
                    log_len[p] += 1
                    if now >= W and log_len[p] > state[S_LAG_MSGS]:
                        state[S_LAG_MSGS] = log_len[p]
                    win_commit[_win(now, window_s, nw)] += 1
                    n_cons = comps[comps[c, C_CONS_COMP], C_COUNT]
                    wl = _pump(c, (p - comps[c, C_PART_OFF]) % n_cons, now, W, window_s, nw, nodes, node_f,
                               comps, dists, dvals, hop_d, key_hop, key_node, flow_i, ht, hk, hx, hy, state,
                               rq, rqf, fr, fr_keys, fr_extra, fr_free, wl_op, wl_f, wl_e, wl, log_head,
                               log_len, rq_next_col=RQ_NEXT, cons_in=cons_in, cons_cursor=cons_cursor,
                               win_lag=win_lag, win_take=win_take, lag_max=lag_max)
            if ko[o, KO_OVER] != 0 and ko[o, KO_OUT] == 0:
                _release(ko_free, state, P_KOP, o)
        elif ev == EV_FILL:
            c = y
            i = state[S_DRAWS]
            state[S_DRAWS] = i + 1
            svc = _draw(dists, dvals, comps[c, C_DIST_A], key_comp[c, 0], i)
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         x, now, svc)
            if a < 0:
                async_err[c * ERRS + 4 + np.int64(-a) - 1] += 1
        else:  # EV_RESTART: a step deferred until its pools had room
            wl_op[wl], wl_f[wl], wl_e[wl] = W_START, x, OK
            wl += 1

        # -- everything it set off at this instant -------------------------------------------
        while wl > 0:
            wl -= 1
            op, f, err = wl_op[wl], wl_f[wl], wl_e[wl]
            if op == W_START:
                node = fr[f, FR_NODE]
                kind = nodes[node, N_KIND]
                r = fr[f, FR_REQ]
                c = nodes[node, N_COMP]
                if kind in (K_GATEWAY, K_SERVICE, K_REDIS, K_CACHE, K_CONSUME):
                    if kind in (K_REDIS, K_CACHE):
                        key = fr_keys[f, nodes[node, N_SLOT]]
                        fr[f, FR_STATION] = comps[c, C_BASE] + routes[nodes[node, N_ROUTE] + key]
                    elif kind != K_CONSUME:
                        if kind == K_GATEWAY and comps[c, C_RL_OFF] >= 0:
                            bucket = comps[c, C_RL_OFF] + fr_keys[f, nodes[node, N_SLOT]]
                            tokens = rl_tokens[bucket] + (now - rl_updated[bucket]) * comp_f[c, F_RATE]
                            if tokens > comp_f[c, F_BURST]:
                                tokens = comp_f[c, F_BURST]
                            rl_updated[bucket] = now
                            if tokens < 1.0:
                                rl_tokens[bucket] = tokens
                                state[S_RATE_LIMITED] += 1
                                wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, c * ERRS + 3
                                wl += 1
                                continue
                            rl_tokens[bucket] = tokens - 1.0
                        fr[f, FR_STATION] = _pick(c, now, comps, state, key_comp, s_ints, s_win)
                    extra = 0.0
                    if kind in (K_SERVICE, K_CONSUME) and node_f[node] > 0.0 and nodes[node, N_A] >= 0:
                        fan = nodes[node, N_A]
                        if nodes[fan, N_B] == 1:  # every member but the sender: the conversation's recipients
                            n = np.int64(recipients[fr_keys[f, nodes[fan, N_C]]])
                        else:
                            i = state[S_DRAWS]
                            state[S_DRAWS] = i + 1
                            n = max(0, round(_draw(dists, dvals, nodes[fan, N_DIST], key_node[fan, 0], i)))
                            rq[r, RQ_FAN_NODE] = fan
                            rq[r, RQ_FAN_N] = n
                        extra = n * node_f[node]
                    fr_extra[f] = extra
                    i = state[S_DRAWS]
                    state[S_DRAWS] = i + 1
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    _push(ht, hk, hx, hy, state, now + h, EV_ARRIVE, f, 0)
                elif kind == K_CASSANDRA:
                    key = fr_keys[f, nodes[node, N_SLOT]]
                    pos = comps[c, C_RING] + routes[nodes[node, N_ROUTE] + key]
                    rf = comps[c, C_RF]
                    k = nodes[node, N_B]
                    base = comps[c, C_BASE]
                    write = nodes[node, N_A] == 1
                    asked = 0
                    if write:
                        for j in range(rf):
                            if is_down(s_ints, s_win, base + replicas[pos, j], now):
                                state[S_HINTS] += 1
                            else:
                                asked += 1
                        first = 0
                    else:
                        i = state[S_DRAWS]
                        state[S_DRAWS] = i + 1
                        first = np.int64(uniform(key_comp[c, 2], i, np.int64(0)) * rf)
                        for j in range(rf):
                            if not is_down(s_ints, s_win, base + replicas[pos, (first + j) % rf], now):
                                asked += 1
                                if asked == k:
                                    break
                    if asked < k:
                        state[S_UNAVAILABLE] += 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, c * ERRS + 1
                        wl += 1
                        continue
                    q = _alloc(qu_free, state, P_QUORUM)
                    qu[q, QU_FRAME] = f
                    qu[q, QU_SUCC] = k
                    qu[q, QU_FAIL] = asked - k
                    qu[q, QU_OUT] = asked
                    qu[q, QU_DONE] = 0
                    qu[q, QU_COMP] = c
                    qu[q, QU_DIST] = nodes[node, N_DIST]
                    sent = 0
                    for j in range(rf):
                        if sent == asked:
                            break
                        stn = base + replicas[pos, (first + j) % rf]
                        if is_down(s_ints, s_win, stn, now):
                            continue
                        sent += 1
                        i = state[S_DRAWS]
                        state[S_DRAWS] = i + 1
                        h = _draw(dists, dvals, hop_d, key_hop, i)
                        _push(ht, hk, hx, hy, state, now + h, EV_REPLICA, q, stn)
                elif kind == K_PRODUCE:
                    key = fr_keys[f, nodes[node, N_SLOT]]
                    p = routes[nodes[node, N_ROUTE] + key]
                    o = _alloc(ko_free, state, P_KOP)
                    ko[o, KO_FRAME] = f
                    ko[o, KO_P] = comps[c, C_PART_OFF] + p
                    ko[o, KO_LEFT] = comps[c, C_RF] - 1
                    ko[o, KO_ACKED] = 0
                    ko[o, KO_COMP] = c
                    ko[o, KO_KEY] = rq[r, RQ_KEY]
                    ko[o, KO_NEW] = rq[r, RQ_NEW]
                    ko[o, KO_USER] = rq[r, RQ_USER]
                    ko[o, KO_SLOT] = rq[r, RQ_SLOT]
                    ko[o, KO_FLOW] = nodes[node, N_A]
                    ko[o, KO_OUT] = 1
                    ko[o, KO_OVER] = 0
                    kof[o] = rqf[r, RQF_T0]
                    if comps[c, C_ACKS] == 0:
                        ko[o, KO_ACKED] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                        wl += 1
                    i = state[S_DRAWS]
                    state[S_DRAWS] = i + 1
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    _push(ht, hk, hx, hy, state, now + h, EV_KLEAD, o,
                          comps[c, C_BASE] + p % comps[c, C_COUNT])
                elif kind == K_PARALLEL:
                    b0, nbr, need = nodes[node, N_A], nodes[node, N_B], nodes[node, N_C]
                    awaited = 0
                    for j in range(b0, b0 + nbr):
                        awaited += branches[j, 1]
                    jn_row = _alloc(jn_free, state, P_JOIN)
                    jn[jn_row, JN_PENDING] = need
                    jn[jn_row, JN_SLACK] = awaited - need
                    jn[jn_row, JN_FRAME] = f
                    jn[jn_row, JN_OUT] = awaited
                    jn[jn_row, JN_DONE] = 0
                    for j in range(b0, b0 + nbr):
                        then = T_JOIN if branches[j, 1] == 1 else T_UNAWAITED
                        g = _child(fr, fr_keys, fr_extra, fr_free, rq, state, f, branches[j, 0], then, jn_row)
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
                    if need == 0:
                        jn[jn_row, JN_DONE] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                        wl += 1
                    if awaited == 0:
                        _release(jn_free, state, P_JOIN, jn_row)
                elif kind == K_FANOUT:
                    members = nodes[node, N_B] == 1  # a conversation's members, but the sender
                    if members:
                        conv = fr_keys[f, nodes[node, N_C]]
                        n = np.int64(recipients[conv])
                    elif rq[r, RQ_FAN_NODE] == node:
                        n = rq[r, RQ_FAN_N]
                        rq[r, RQ_FAN_NODE] = -1
                    else:
                        i = state[S_DRAWS]
                        state[S_DRAWS] = i + 1
                        n = max(0, round(_draw(dists, dvals, nodes[node, N_DIST], key_node[node, 0], i)))
                    head = nodes[node, N_A]
                    if n == 0 or head < 0:
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                        wl += 1
                        continue
                    if (n + MARGIN > state[S_TOP0 + P_FRAME] or 4 * n + MARGIN > heap_cap - state[S_HEAP_N]
                            or n + MARGIN > wl_op.size - wl):
                        rq[r, RQ_FAN_NODE] = node  # keep the drawn size for the retry
                        rq[r, RQ_FAN_N] = n
                        _push(ht, hk, hx, hy, state, now, EV_RESTART, f, 0)
                        state[S_GROW] = max(state[S_GROW], n)
                        continue
                    jn_row = _alloc(jn_free, state, P_JOIN)
                    jn[jn_row, JN_PENDING] = n
                    jn[jn_row, JN_SLACK] = 0
                    jn[jn_row, JN_FRAME] = f
                    jn[jn_row, JN_OUT] = n
                    jn[jn_row, JN_DONE] = 0
                    slot = nodes[node, N_SLOT]
                    sp_n, sp_off = space_i[slot, 0], space_i[slot, 1]
                    sender = rq[r, RQ_SLOT]
                    for m in range(n):
                        if members:
                            who = member(conv, m if m < sender else m + 1, n_users, member_salt)
                        else:
                            i = state[S_DRAWS]
                            state[S_DRAWS] = i + 1
                            u = uniform(key_node[node, 1], i, np.int64(0))
                            who = np.searchsorted(cdfs[sp_off:sp_off + sp_n], u, side="right")
                            if who >= sp_n:
                                who = sp_n - 1
                        g = _child(fr, fr_keys, fr_extra, fr_free, rq, state, f, head, T_JOIN, jn_row)
                        fr_keys[g, slot] = who
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
                continue
            # W_ADV: the step at the frame's node ended with `err`
            if err == OK:
                nxt = nodes[fr[f, FR_NODE], N_NEXT]
                if nxt >= 0:
                    fr[f, FR_NODE] = nxt
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
                    wl += 1
                    continue
            then, link, r = fr[f, FR_THEN], fr[f, FR_LINK], fr[f, FR_REQ]
            if then == T_MISSED:  # the parent's cache step: a filled miss writes the value back
                parent_node = fr[link, FR_NODE]
                if err == OK and nodes[parent_node, N_B] == 1:
                    i = state[S_DRAWS]
                    state[S_DRAWS] = i + 1
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    _push(ht, hk, hx, hy, state, now + h, EV_FILL, fr[link, FR_STATION],
                          nodes[parent_node, N_COMP])
                wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, link, err
                wl += 1
            elif then == T_JOIN:
                j = link
                jn[j, JN_OUT] -= 1
                if jn[j, JN_DONE] == 0:
                    if err != OK:
                        if jn[j, JN_SLACK] > 0:
                            jn[j, JN_SLACK] -= 1
                        else:
                            jn[j, JN_DONE] = 1
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, jn[j, JN_FRAME], err
                            wl += 1
                    else:
                        jn[j, JN_PENDING] -= 1
                        if jn[j, JN_PENDING] == 0:
                            jn[j, JN_DONE] = 1
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, jn[j, JN_FRAME], OK
                            wl += 1
                if jn[j, JN_OUT] == 0 and jn[j, JN_DONE] != 0:
                    _release(jn_free, state, P_JOIN, j)
            elif then == T_UNAWAITED and err != OK:
                async_err[err] += 1
            # the frame is over
            _release(fr_free, state, P_FRAME, f)
            rq[r, RQ_REFS] -= 1
            if then == T_FINISH:
                o = state[S_OUT_N]
                out_i[o, 0] = rq[r, RQ_FLOW]
                out_i[o, 1] = 1 if err == OK else 0
                out_i[o, 2] = err
                out_f[o, 0] = rqf[r, RQF_T0]
                out_f[o, 1] = rqf[r, RQF_STARTED]
                out_f[o, 2] = now
                state[S_OUT_N] = o + 1
                rq[r, RQ_DONE] = 1
                kc = rq[r, RQ_KCOMP]
                if kc >= 0:  # a consumer finished a record: it may take the next
                    cons = rq[r, RQ_CONS]
                    cons_in[cons] -= 1
                    wl = _pump(kc, cons - comps[kc, C_CONS_OFF], now, W, window_s, nw, nodes, node_f, comps,
                               dists, dvals, hop_d, key_hop, key_node, flow_i, ht, hk, hx, hy, state, rq, rqf,
                               fr, fr_keys, fr_extra, fr_free, wl_op, wl_f, wl_e, wl, log_head, log_len,
                               rq_next_col=RQ_NEXT, cons_in=cons_in, cons_cursor=cons_cursor, win_lag=win_lag,
                               win_take=win_take, lag_max=lag_max)
            if rq[r, RQ_DONE] == 1 and rq[r, RQ_REFS] == 0:
                _release(req_free, state, P_REQ, r)


@nb.njit(inline="always", cache=True)
def _pick(c: np.int64, now: float, comps: np.ndarray, state: np.ndarray, key_comp: np.ndarray,
          s_ints: np.ndarray, s_win: np.ndarray) -> np.int64:
    """An instance of component c for the next call: random or round robin, never a crashed one
    while another is up (a crashed one when all are: it answers unavailable)."""
    base, n = comps[c, C_BASE], comps[c, C_COUNT]
    if comps[c, C_BALANCER] == 1:
        k = comps[c, C_RR]
    else:
        i = state[S_DRAWS]
        state[S_DRAWS] = i + 1
        k = np.int64(uniform(key_comp[c, 1], i, np.int64(0)) * n)
        if k >= n:
            k = n - 1
    for _ in range(n):
        if not is_down(s_ints, s_win, base + k, now):
            break
        k = k + 1 if k + 1 < n else 0
    if comps[c, C_BALANCER] == 1:
        comps[c, C_RR] = k + 1 if k + 1 < n else 0
    return base + k


@nb.njit(cache=True)
def _pump(kc: np.int64, c_local: np.int64, now: float, W: float, window_s: float, nw: np.int64,
          nodes: np.ndarray, node_f: np.ndarray, comps: np.ndarray, dists: np.ndarray, dvals: np.ndarray,
          hop_d: np.int64, key_hop: np.uint64, key_node: np.ndarray, flow_i: np.ndarray,
          ht: np.ndarray, hk: np.ndarray, hx: np.ndarray, hy: np.ndarray, state: np.ndarray,
          rq: np.ndarray, rqf: np.ndarray, fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray,
          fr_free: np.ndarray, wl_op: np.ndarray, wl_f: np.ndarray, wl_e: np.ndarray, wl: int,
          log_head: np.ndarray, log_len: np.ndarray, rq_next_col: int, cons_in: np.ndarray,
          cons_cursor: np.ndarray, win_lag: np.ndarray, win_take: np.ndarray, lag_max: np.ndarray) -> int:
    """Consumer c_local of kafka component kc takes records while it has slots: from its partitions
    (p = c_local, c_local + n, ...) in turn, each in order, as the DES's Consumer.pump."""
    cons_comp = comps[kc, C_CONS_COMP]
    n_cons = comps[cons_comp, C_COUNT]
    parts = comps[kc, C_PARTS]
    poff = comps[kc, C_PART_OFF]
    cons = comps[kc, C_CONS_OFF] + c_local
    mine = (parts - c_local + n_cons - 1) // n_cons  # partitions it owns
    node = comps[kc, C_CONS_NODE]
    limit = comps[kc, C_MAX_IN_FLIGHT]
    while cons_in[cons] < limit and mine > 0:
        found = -1
        for j in range(mine):
            m = (cons_cursor[cons] + j) % mine
            p = poff + c_local + m * n_cons
            if log_len[p] > 0:
                cons_cursor[cons] = (m + 1) % mine
                found = p
                break
        if found < 0:
            break
        p = found
        r = log_head[p]
        log_head[p] = rq[r, rq_next_col]
        log_len[p] -= 1
        lag = now - rqf[r, RQF_STARTED]
        w = _win(now, window_s, nw)
        win_take[w] += 1
        if lag > win_lag[w]:
            win_lag[w] = lag
        if now >= W and lag > lag_max[0]:
            lag_max[0] = lag
        cons_in[cons] += 1
        f = fr_free[state[S_TOP0 + P_FRAME] - 1]
        state[S_TOP0 + P_FRAME] -= 1
        fl = rq[r, RQ_FLOW]
        fr[f, FR_REQ] = r
        fr[f, FR_NODE] = node
        fr[f, FR_THEN] = T_FINISH
        fr[f, FR_LINK] = -1
        fr[f, FR_STATION] = comps[cons_comp, C_BASE] + c_local
        fr_keys[f, flow_i[fl, 1]] = rq[r, RQ_KEY]
        if flow_i[fl, 3] >= 0:
            fr_keys[f, flow_i[fl, 3]] = rq[r, RQ_USER]
        fr_extra[f] = 0.0
        rq[r, RQ_REFS] += 1
        rq[r, RQ_CONS] = cons
        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
        wl += 1
    return wl


def grow_needed(state: np.ndarray, caps: dict[int, int]) -> list[int]:
    """Pools (P_*) whose free rows are below the margin."""
    return [p for p in range(N_POOLS) if state[S_TOP0 + p] < MARGIN or state[S_TOP0 + p] < caps[p] // 8]

