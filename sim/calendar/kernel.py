"""The calendar engine's compiled loop: events in time order, each station visit served on arrival.

One 4-ary heap holds every pending event (time, kind, x, y). An event is taken in time order and
handled to the end: a call's arrival at a station is served there by the Kiefer-Wolfowitz
recursion of sim/arrays/station.py (`serve`: FIFO multi-server, queue bound, capacity windows,
statistics), which knows the job's start and end the moment it arrives, so a visit costs one
arrival event and one completion event, and the service time is drawn inside the loop
(counter-based, sim/arrays/rng.py). Everything a completion sets off at the same instant (the next
step of the flow, a join's answer, a parallel's branches, a fan-out's members, a cache miss's
branch) runs from a worklist before the next event, so nothing waits for a later event that could
act sooner: the order of events is the DES's, and every feedback (a join, a quorum, a consumer
freeing a slot) acts at its exact time.

The faults' timed actions (a Cassandra node back from a crash starts replaying its hints, a
`lose_data` fault loses a disk, a Kafka broker is lost or back: each partition's leader is state,
`k_lead`, as the DES elects it) are a list sorted before the run in the DES's order, taken ahead of
any other event at the same instant; a Cassandra read with a hedge holds its quorum row until its
hedge time (EV_HEDGE); hints, hedges and sole copies are sim/calendar/cassandra.py's.

Flows are programs (sim/calendar/program.py): a frame is where one sequence of steps stands (the
DES's Cursor), a join waits for its branches, a quorum for Cassandra's replicas, a produce for
Kafka's replicas. They live in pools of rows with free lists; when a pool runs low the loop
returns and the engine grows it (sim/calendar/engine.py), so memory follows the work in flight.

At full scale the loop waits on memory: a request's rows were last touched thousands of events
ago. So when it takes an event it hints the cache (sim/arrays/prefetch.py) to fetch the next
event's row (its frame, quorum, produce or edge call), and, the frame's row having come in
meanwhile, its request's rows, keys and station; taking a client arrival, the rows of the one
after next, and the next one's rate-limit bucket (its user's, 10M of them): their misses overlap
with the work in between (the whole reference workload ~17% faster; a hint changes no result).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.prefetch import prefetch_row
from sim.arrays.rng import uniform
from sim.arrays.station import is_down, last_recovery, serve
from sim.calendar.cassandra import hedge, lose, sole_reply, store_hints
from sim.calendar.consumers import pump
from sim.calendar.edges import (
    E_BACKOFF_S,
    E_BUDGET_RATIO,
    E_JITTER,
    E_MAX_ATT,
    E_MULT,
    E_TIMEOUT_S,
    F_BUDGET,
    X_CALLS,
    X_DENIED,
    X_REJECTED,
    X_RETRIES,
    X_TIMEOUTS,
    breaker_allows,
    breaker_records,
)
from sim.calendar.fans import related, related_key
from sim.calendar.marks import draw_marked, mark, on_path, open_marks
from sim.calendar.program import (
    C_ACKS,
    C_BASE,
    C_CONS_COMP,
    C_CONS_OFF,
    C_COUNT,
    C_DIST_A,
    C_DIST_B,
    C_HIT_OFF,
    C_PART_OFF,
    C_PARTS,
    C_RF,
    C_RING,
    C_RL_OFF,
    ERRS,
    F_BURST,
    F_HEDGE,
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
from sim.calendar.tables import (
    DONE,
    EC_ATT,
    EC_DONE,
    EC_EDGE,
    EC_FRAME,
    EC_LIVE,
    EC_NODE,
    EC_OUT,
    EC_REQ,
    EV_AARRIVE,
    EV_ADONE,
    EV_ARRIVE,
    EV_DONE,
    EV_FILL,
    EV_HEDGE,
    EV_HINTS,
    EV_KBACK,
    EV_KELECT,
    EV_KFOLLOW,
    EV_KFOLLOW_DONE,
    EV_KLEAD,
    EV_KLEAD_DONE,
    EV_KLOST,
    EV_LOSE,
    EV_QREPLY,
    EV_REPLICA,
    EV_RESTART,
    EV_RETRY,
    EV_START,
    EV_TIMEOUT,
    FLUSH,
    FR_ATT,
    FR_CALLER,
    FR_FLOW,
    FR_LINK,
    FR_NODE,
    FR_REQ,
    FR_STATION,
    FR_THEN,
    GROW,
    HINT_BATCH,
    HINT_PERIOD_S,
    HN_REPLAYED,
    HN_WAITING,
    JN_DONE,
    JN_FRAME,
    JN_OUT,
    JN_PENDING,
    JN_SLACK,
    KO_ACKED,
    KO_ATT,
    KO_COMP,
    KO_EC,
    KO_FLOW,
    KO_FRAME,
    KO_KEY,
    KO_LEADER,
    KO_LEFT,
    KO_NEW,
    KO_OUT,
    KO_OVER,
    KO_P,
    KO_SLOT,
    KO_SRC,
    KO_USER,
    MARGIN,
    OK,
    P_EC,
    P_FRAME,
    P_JOIN,
    P_KOP,
    P_QUORUM,
    P_REQ,
    P_SOLE,
    QU_ASKED,
    QU_ATT,
    QU_COMP,
    QU_DIST,
    QU_DONE,
    QU_EC,
    QU_FAIL,
    QU_FRAME,
    QU_OUT,
    QU_POS,
    QU_SOLE,
    QU_SUCC,
    RQ_CONS,
    RQ_DONE,
    RQ_FAN_N,
    RQ_FAN_NODE,
    RQ_FLOW,
    RQ_KCOMP,
    RQ_KEY,
    RQ_MARKED,
    RQ_NEW,
    RQ_NEXT,
    RQ_REFS,
    RQ_SLOT,
    RQ_USER,
    RQF_OPEN,
    RQF_PART0,
    RQF_STARTED,
    RQF_T0,
    S_ARR_N,
    S_ARR_POS,
    S_EVENTS,
    S_FAULT_POS,
    S_GROW,
    S_HEAP_N,
    S_HINTS_REPLAYED,
    S_HITS,
    S_KAFKA_LOST,
    S_KAFKA_UNAVAILABLE,
    S_LAG_MSGS,
    S_LOW,
    S_MISSES,
    S_OUT_N,
    S_RATE_LIMITED,
    S_START_N,
    S_TOP0,
    S_TRACK,
    S_UNAVAILABLE,
    S_VISITS,
    T_ATTEMPT,
    T_FINISH,
    T_JOIN,
    T_MISSED,
    T_UNAWAITED,
    W_ADV,
    W_ATTEMPT,
    W_FAILED,
    W_FINISH,
    W_REFUSED,
    W_REPLY,
    W_START,
    _alloc,
    _child,
    _draw,
    _pick,
    _pop,
    _push,
    _release,
    _route,
    _tick,
    _win,
)


@nb.njit(cache=True, _nrt=False)
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
        rq[r, RQ_MARKED] = draw_marked(state)
        if rq[r, RQ_MARKED] != 0:
            open_marks(rqf, r, t[n], 0)
        arr_r[n] = r
    state[S_ARR_POS] = 0
    state[S_ARR_N] = t.size


@nb.njit(cache=True, nogil=True, _nrt=False)  # the next chunk's arrivals are drawn meanwhile
def run(t_end: float,
        # the program
        nodes: np.ndarray, node_f: np.ndarray, branches: np.ndarray, comps: np.ndarray, comp_f: np.ndarray,
        dists: np.ndarray, dvals: np.ndarray, routes: np.ndarray, hroutes: np.ndarray, replicas: np.ndarray,
        cdfs: np.ndarray,
        space_i: np.ndarray, hit_p: np.ndarray, flow_i: np.ndarray, hop_d: np.int64, key_hop: np.uint64,
        key_node: np.ndarray, key_comp: np.ndarray, recipients: np.ndarray, n_users: np.int64,
        member_salt: np.uint64, inbox_off: np.ndarray, inbox_conv: np.ndarray,
        # policies: edge per (caller + 1, callee) and per client flow, parameters, counters, breakers
        edge_of: np.ndarray, client_edge: np.ndarray, ep: np.ndarray, ex: np.ndarray, ef: np.ndarray,
        bk_tot: np.ndarray, bk_bad: np.ndarray, key_jitter: np.uint64, err_timeout: np.int64,
        err_breaker: np.int64,
        # crashes: when each cached key was last refilled, each Cassandra node's hints (waiting, stored,
        # replayed), its sole copies (sim/calendar/cassandra.py), and the faults' timed actions in the
        # DES's order (time; kind EV_HINTS, EV_LOSE, EV_KLOST or EV_KBACK, station, component)
        filled_at: np.ndarray, hints: np.ndarray, so: np.ndarray, so_free: np.ndarray, holders: np.ndarray,
        fault_t: np.ndarray, fault_i: np.ndarray,
        # stations (sim/arrays/station.Stations)
        s_ints: np.ndarray, s_floats: np.ndarray, s_free: np.ndarray, s_ring: np.ndarray, s_win: np.ndarray,
        s_waits: np.ndarray, s_wait_stats: np.ndarray, s_glob: np.ndarray, s_counts: np.ndarray,
        # the chunk's client arrivals (time order), the calendar and the pools
        arr_t: np.ndarray, arr_r: np.ndarray,
        ht: np.ndarray, hp: np.ndarray, state: np.ndarray,
        rq: np.ndarray, rqf: np.ndarray, req_free: np.ndarray,
        fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray, fr_t0: np.ndarray, fr_free: np.ndarray,
        jn: np.ndarray, jn_free: np.ndarray, qu: np.ndarray, qu_free: np.ndarray,
        ko: np.ndarray, kof: np.ndarray, ko_free: np.ndarray, ec: np.ndarray, ecf: np.ndarray,
        ec_free: np.ndarray, wl_op: np.ndarray, wl_f: np.ndarray, wl_e: np.ndarray,
        # Kafka leaders, logs and consumers, rate-limit buckets
        k_lead: np.ndarray, log_head: np.ndarray, log_tail: np.ndarray, log_len: np.ndarray,
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
    lag_label = comps.shape[0]  # marks' labels: the components, consumer lag, each flow's produce
    state[S_LOW] = 1  # the room for the next event is checked at once
    while True:
        # -- room for one more event and everything it sets off ------------------------------
        if state[S_GROW] != 0:  # a fan-out wants this many frames (the engine resets it)
            return GROW
        if state[S_LOW] != 0:  # something came near its end since the last look (or this is the first)
            if (state[S_HEAP_N] + MARGIN > heap_cap or state[S_TOP0 + P_REQ] < MARGIN
                    or state[S_TOP0 + P_FRAME] < MARGIN or state[S_TOP0 + P_JOIN] < MARGIN
                    or state[S_TOP0 + P_QUORUM] < MARGIN or state[S_TOP0 + P_KOP] < MARGIN
                    or state[S_TOP0 + P_EC] < MARGIN
                    or (state[S_TRACK] != 0 and state[S_TOP0 + P_SOLE] < MARGIN)):
                return GROW
            if state[S_OUT_N] + MARGIN > out_cap or state[S_START_N] + MARGIN > start_i.shape[0]:
                return FLUSH
            state[S_LOW] = 0
        pos = state[S_ARR_POS]
        fp = state[S_FAULT_POS]  # a fault's action comes first at a tie, as the DES arms them before the run
        if (fp < fault_t.size and fault_t[fp] < t_end and (pos >= state[S_ARR_N] or fault_t[fp] <= arr_t[pos])
                and (state[S_HEAP_N] == 0 or fault_t[fp] <= ht[0])):
            now, ev, x, y = fault_t[fp], fault_i[fp, 0], fault_i[fp, 1], fault_i[fp, 2]
            state[S_FAULT_POS] = fp + 1
        elif pos < state[S_ARR_N] and (state[S_HEAP_N] == 0 or arr_t[pos] <= ht[0]):
            now, ev, x, y = arr_t[pos], EV_START, arr_r[pos], np.int64(0)
            state[S_ARR_POS] = pos + 1
            if pos + 2 < state[S_ARR_N]:  # the request after next, written when its chunk came
                prefetch_row(rq, arr_r[pos + 2])
                prefetch_row(rqf, arr_r[pos + 2])
            if pos + 1 < state[S_ARR_N]:  # the next one (its row hinted one arrival ago): its user's bucket
                r1 = arr_r[pos + 1]
                fl1 = rq[r1, RQ_FLOW]
                n1 = flow_i[fl1, 0]
                rl1 = comps[nodes[n1, N_COMP], C_RL_OFF]
                if nodes[n1, N_KIND] == K_GATEWAY and rl1 >= 0:  # the key _root puts in the gateway's slot
                    rl1 += rq[r1, RQ_KEY] if nodes[n1, N_SLOT] == flow_i[fl1, 1] else rq[r1, RQ_USER]
                    prefetch_row(rl_tokens, rl1)
                    prefetch_row(rl_updated, rl1)
        elif state[S_HEAP_N] == 0 or ht[0] >= t_end:
            return DONE
        else:
            now = ht[0]
            ev, x, y = hp[0, 0], hp[0, 1], hp[0, 2]
            _pop(ht, hp, state)
            if ev in (EV_ARRIVE, EV_DONE):  # its frame's row came in while the last event ran
                pr = fr[x, FR_REQ]
                prefetch_row(rq, pr)
                prefetch_row(rqf, pr)
                prefetch_row(fr_keys, x)
                if ev == EV_ARRIVE:
                    prefetch_row(s_ints, fr[x, FR_STATION])
                    prefetch_row(s_floats, fr[x, FR_STATION])
            if state[S_HEAP_N] > 0:  # the next event's row, fetched while this one runs
                nk, nx = hp[0, 0], hp[0, 1]
                if nk in (EV_ARRIVE, EV_DONE):
                    prefetch_row(fr, nx)
                elif nk in (EV_REPLICA, EV_QREPLY):
                    prefetch_row(qu, nx)
                elif EV_KLEAD <= nk <= EV_KFOLLOW_DONE:
                    prefetch_row(ko, nx)
                elif nk in (EV_AARRIVE, EV_ADONE):
                    prefetch_row(ec, nx)
        state[S_EVENTS] += 1
        wl = 0  # the worklist: (op, frame, error) handled before the next event

        # -- the event -------------------------------------------------------------------------
        if ev == EV_START:
            r = x
            fl = rq[r, RQ_FLOW]
            e = client_edge[fl]
            if e >= 0:  # behind a client edge: each attempt is a path of its own through the system
                g = _alloc(ec_free, state, P_EC)
                ec[g, EC_FRAME], ec[g, EC_REQ], ec[g, EC_EDGE], ec[g, EC_NODE] = -1, r, e, -1
                ec[g, EC_ATT], ec[g, EC_LIVE], ec[g, EC_DONE], ec[g, EC_OUT] = 0, 0, 0, 0
                ex[e, X_CALLS] += 1
                if not math.isnan(ep[e, E_BUDGET_RATIO]):
                    ef[e, F_BUDGET] += ep[e, E_BUDGET_RATIO]
                rq[r, RQ_REFS] += 1  # the edge call holds the request until it answers
                wl_op[wl], wl_f[wl], wl_e[wl] = W_ATTEMPT, g, OK
                wl += 1
            else:
                f = _root(fr, fr_keys, fr_extra, fr_t0, fr_free, rq, state, flow_i, r, T_FINISH, -1, 0,
                          rqf[r, RQF_T0])
                wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
                wl += 1
        elif ev == EV_ARRIVE:
            f = x
            node = fr[f, FR_NODE]
            i = _tick(state)
            c = nodes[node, N_COMP]
            svc = _draw(dists, dvals, nodes[node, N_DIST], key_comp[c, 0], i) + fr_extra[f]
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         fr[f, FR_STATION], now, svc)
            if a < 0:
                _push(ht, hp, state, b, EV_DONE, f, c * ERRS + np.int64(-a) - 1)
            else:
                _push(ht, hp, state, b, EV_DONE, f, OK)
        elif ev == EV_DONE:
            f, err = x, y
            node = fr[f, FR_NODE]
            if nodes[node, N_KIND] != K_CACHE:
                wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, err
                wl += 1
            else:
                c = nodes[node, N_COMP]
                if on_path(fr, jn, rqf, f):  # the lookup's answer, hit, miss or error
                    mark(rqf, flow_i, fr[f, FR_FLOW], fr[f, FR_REQ], c, now)
                miss_head = nodes[node, N_A]
                outcome = OK
                if err != OK:
                    async_err[err] += 1
                    outcome = err
                else:
                    r = fr[f, FR_REQ]
                    if rq[r, RQ_NEW] == 0:
                        key = fr_keys[f, nodes[node, N_SLOT]]
                        i = _tick(state)
                        hit = uniform(key_node[node, 1], i, np.int64(0)) < hit_p[comps[c, C_HIT_OFF] + key]
                        if hit:  # a shard that restarted holds only what was refilled since
                            up = last_recovery(s_ints, s_win, fr[f, FR_STATION], now)
                            if up > -math.inf and filled_at[comps[c, C_HIT_OFF] + key] < up:
                                hit = False
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
                        g = _child(fr, fr_keys, fr_extra, fr_t0, fr_free, rq, state, f, miss_head, T_MISSED,
                                   f)
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
        elif ev in (EV_REPLICA, EV_KLEAD, EV_KFOLLOW):
            if ev == EV_REPLICA:
                c, d = qu[x, QU_COMP], qu[x, QU_DIST]
            else:
                c = ko[x, KO_COMP]
                d = comps[c, C_DIST_A]  # the append time
            i = _tick(state)
            svc = _draw(dists, dvals, d, key_comp[c, 0], i)
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         y, now, svc)
            err = c * ERRS + np.int64(-a) - 1 if a < 0 else OK
            if ev == EV_REPLICA:  # the replica's station too: a sole copy's holder
                _push(ht, hp, state, b, EV_QREPLY, x, ((err + 1) << 32) | y)
            else:
                _push(ht, hp, state, b, ev + 1, x, err)  # EV_KLEAD_DONE, EV_KFOLLOW_DONE
        elif ev == EV_QREPLY:
            q, err, stn = x, (y >> 32) - 1, y & 0xFFFFFFFF
            qu[q, QU_OUT] -= 1
            if qu[q, QU_DONE] == 0:
                if err == OK:
                    qu[q, QU_SUCC] -= 1
                    if qu[q, QU_SUCC] == 0:
                        qu[q, QU_DONE] = 1
                        if qu[q, QU_EC] < 0:
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, qu[q, QU_FRAME], OK
                        else:
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, qu[q, QU_EC], qu[q, QU_ATT]
                        wl += 1
                else:
                    qu[q, QU_FAIL] -= 1
                    if qu[q, QU_FAIL] < 0:
                        qu[q, QU_DONE] = 1
                        if qu[q, QU_EC] < 0:
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, qu[q, QU_FRAME], err
                        else:
                            packed = ((err + 1) << 16) | qu[q, QU_ATT]
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, qu[q, QU_EC], packed
                        wl += 1
            if qu[q, QU_SOLE] >= 0:
                sole_reply(q, stn, err, qu, so, so_free, holders, hints, state)
            if qu[q, QU_OUT] == 0:
                _release(qu_free, state, P_QUORUM, q)
        elif ev == EV_HEDGE:  # a read's hedge (its pending hedge held its quorum row)
            q = x
            qu[q, QU_OUT] -= 1
            if qu[q, QU_DONE] == 0:
                hedge(q, now, qu, comps, replicas, dists, dvals, hop_d, key_hop, s_ints, s_win, ht, hp, state)
            elif qu[q, QU_OUT] == 0:
                _release(qu_free, state, P_QUORUM, q)
        elif ev == EV_KLOST:  # Kafka broker x is lost (y: election ns << 16 | component): what it led
            c = y & 0xFFFF  # waits for an election
            elected = now + np.float64(y >> 16) * 1e-9
            for q in range(comps[c, C_PART_OFF], comps[c, C_PART_OFF] + comps[c, C_PARTS]):
                if np.int64(k_lead[q, 0]) == x:
                    k_lead[q, 1] = elected
                    _push(ht, hp, state, elected, EV_KELECT, q, c)
        elif ev == EV_KELECT:  # partition x (of component y) elects its first replica that is up, if any
            _elect(x, y, now, comps, k_lead, s_ints, s_win)
        elif ev == EV_KBACK:  # broker x is back: it leads the partitions of its that had no replica up
            _back(x, y, now, comps, k_lead)
        elif ev == EV_LOSE:  # a lose_data fault starts on Cassandra node x: its sole copies are lost
            lose(x, so, so_free, holders, hints, state)
        elif ev in (EV_KLEAD_DONE, EV_KFOLLOW_DONE):
            o, err = x, y
            c = ko[o, KO_COMP]
            commit = False
            if ev == EV_KLEAD_DONE:
                ko[o, KO_OUT] -= 1  # the leader's append is back (followers add their own)
                if err != OK:
                    ko[o, KO_LEFT] = -1
                else:
                    if comps[c, C_ACKS] == 1 and ko[o, KO_ACKED] == 0:
                        ko[o, KO_ACKED] = 1
                        wl = _ack(ko, o, OK, wl, wl_op, wl_f, wl_e)
                    nb_ = comps[c, C_COUNT]
                    p = ko[o, KO_P] - comps[c, C_PART_OFF]
                    left = 0  # the in-sync followers: the partition's other replicas that are up
                    for k in range(comps[c, C_RF]):
                        stn = comps[c, C_BASE] + (p + k) % nb_
                        if stn == ko[o, KO_LEADER] or is_down(s_ints, s_win, stn, now):
                            continue
                        left += 1
                        ko[o, KO_OUT] += 1
                        i = _tick(state)
                        h = _draw(dists, dvals, hop_d, key_hop, i)
                        _push(ht, hp, state, now + h, EV_KFOLLOW, o, stn)
                    ko[o, KO_LEFT] = left
                    if left == 0:
                        commit = True
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
                    wl = _ack(ko, o, err, wl, wl_op, wl_f, wl_e)
            if commit:
                ko[o, KO_OVER] = 1
                if ko[o, KO_ACKED] == 0:
                    ko[o, KO_ACKED] = 1
                    wl = _ack(ko, o, OK, wl, wl_op, wl_f, wl_e)
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
                    rq[r, RQ_MARKED] = draw_marked(state)
                    if rq[r, RQ_MARKED] != 0:
                        open_marks(rqf, r, kof[o], 0)
                        mark(rqf, flow_i, trig, r, lag_label + 1 + ko[o, KO_SRC], now)
                    s = state[S_START_N]
                    start_i[s] = trig
                    start_f[s, 0] = kof[o]
                    start_f[s, 1] = now
                    state[S_START_N] = s + 1
                    if s + 1 + MARGIN > start_i.shape[0]:
                        state[S_LOW] = 1
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
                    wl = pump(c, (p - comps[c, C_PART_OFF]) % n_cons, now, W, window_s, nw, nodes, node_f,
                               comps, dists, dvals, hop_d, key_hop, key_node, flow_i, ht, hp, state,
                               rq, rqf, fr, fr_keys, fr_extra, fr_t0, fr_free, wl_op, wl_f, wl_e, wl,
                               log_head, log_len, rq_next_col=RQ_NEXT, cons_in=cons_in,
                               cons_cursor=cons_cursor, win_lag=win_lag, win_take=win_take, lag_max=lag_max)
            if ko[o, KO_OVER] != 0 and ko[o, KO_OUT] == 0:
                _release(ko_free, state, P_KOP, o)
        elif ev == EV_FILL:  # y: the key << 16 | the Redis component
            c, key = y & 0xFFFF, y >> 16
            i = _tick(state)
            svc = _draw(dists, dvals, comps[c, C_DIST_A], key_comp[c, 0], i)
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         x, now, svc)
            if a < 0:
                async_err[c * ERRS + 4 + np.int64(-a) - 1] += 1
            elif comps[c, C_HIT_OFF] >= 0 and filled_at.size > 1:  # (kept only when a shard may restart)
                filled_at[comps[c, C_HIT_OFF] + key] = b
        elif ev == EV_HINTS:  # a Cassandra node (x, of component y) that came back replays its hints, in
            # batches of a hundredth of HINT_REPLAY_PER_SEC every 10 ms (sim/des/cassandra.py's throttle)
            stn, c = x, y
            if not is_down(s_ints, s_win, stn, now) and hints[stn, HN_WAITING] > 0:
                batch = min(hints[stn, HN_WAITING], HINT_BATCH)
                hints[stn, HN_WAITING] -= batch
                hints[stn, HN_REPLAYED] += batch
                state[S_HINTS_REPLAYED] += batch
                for _h in range(batch):
                    i = _tick(state)
                    svc = _draw(dists, dvals, comps[c, C_DIST_B], key_comp[c, 0], i)
                    state[S_VISITS] += 1
                    serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                          stn, now, svc)
                if hints[stn, HN_WAITING] > 0:
                    _push(ht, hp, state, now + HINT_PERIOD_S, EV_HINTS, stn, c)
        elif ev == EV_AARRIVE:  # an attempt of an edge call reaches its station (y: station << 16 | attempt)
            g, stn, att = x, y >> 16, y & 0xFFFF
            node = ec[g, EC_NODE]
            c = nodes[node, N_COMP]
            i = _tick(state)
            svc = _draw(dists, dvals, nodes[node, N_DIST], key_comp[c, 0], i) + ecf[g]
            state[S_VISITS] += 1
            a, b = serve(s_ints, s_floats, s_free, s_ring, s_win, s_waits, s_wait_stats, s_glob, s_counts,
                         stn, now, svc)
            err = c * ERRS + np.int64(-a) - 1 if a < 0 else OK
            _push(ht, hp, state, b, EV_ADONE, g, ((err + 1) << 16) | att)
        elif ev == EV_ADONE:
            wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, x, y
            wl += 1
        elif ev == EV_TIMEOUT:  # y: the attempt it times
            g = x
            ec[g, EC_OUT] -= 1
            if y == ec[g, EC_LIVE] and ec[g, EC_DONE] == 0:
                ex[ec[g, EC_EDGE], X_TIMEOUTS] += 1
                e_code = err_timeout if ec[g, EC_REQ] >= 0 else nodes[ec[g, EC_NODE], N_COMP] * ERRS + 7
                wl_op[wl], wl_f[wl], wl_e[wl] = W_FAILED, g, e_code
                wl += 1
            elif ec[g, EC_DONE] != 0 and ec[g, EC_OUT] == 0:
                _release(ec_free, state, P_EC, g)
        elif ev == EV_RETRY:
            g = x
            ec[g, EC_OUT] -= 1
            wl_op[wl], wl_f[wl], wl_e[wl] = W_ATTEMPT, g, OK
            wl += 1
        else:  # EV_RESTART: a step deferred until its pools had room
            wl_op[wl], wl_f[wl], wl_e[wl] = W_START, x, OK
            wl += 1

        # -- everything it set off at this instant -------------------------------------------
        while wl > 0:
            wl -= 1
            op, f, err = wl_op[wl], wl_f[wl], wl_e[wl]
            if op in (W_REPLY, W_FAILED, W_REFUSED):  # an edge call's attempt answered, timed out or refused
                g = f
                e = ec[g, EC_EDGE]
                code = err
                if op == W_REPLY:
                    att, code = err & 0xFFFF, (err >> 16) - 1
                    ec[g, EC_OUT] -= 1
                    if att != ec[g, EC_LIVE] or ec[g, EC_DONE] != 0:  # an attempt the caller gave up on
                        if ec[g, EC_DONE] != 0 and ec[g, EC_OUT] == 0:
                            _release(ec_free, state, P_EC, g)
                        continue
                    if code == OK:
                        breaker_records(e, now, False, ep, ex, ef, bk_tot, bk_bad)
                retry = False
                if code != OK:
                    ec[g, EC_LIVE] = 0
                    if op != W_REFUSED:
                        breaker_records(e, now, True, ep, ex, ef, bk_tot, bk_bad)
                    if ec[g, EC_ATT] < ep[e, E_MAX_ATT]:
                        retry = True
                        if not math.isnan(ep[e, E_BUDGET_RATIO]):
                            if ef[e, F_BUDGET] < 1.0:
                                ex[e, X_DENIED] += 1
                                retry = False
                            else:
                                ef[e, F_BUDGET] -= 1.0
                if retry:
                    ex[e, X_RETRIES] += 1
                    delay = ep[e, E_BACKOFF_S] * ep[e, E_MULT] ** (ec[g, EC_ATT] - 1)
                    if ep[e, E_JITTER] != 0.0:
                        i = _tick(state)
                        delay *= uniform(key_jitter, i, np.int64(0))
                    ec[g, EC_OUT] += 1
                    _push(ht, hp, state, now + delay, EV_RETRY, g, 0)
                    continue
                ec[g, EC_DONE] = 1  # the answer: the attempt's success, or the last failure
                if ec[g, EC_REQ] >= 0:
                    rq[ec[g, EC_REQ], RQ_REFS] -= 1
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_FINISH, ec[g, EC_REQ], code
                else:
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, ec[g, EC_FRAME], code
                wl += 1
                if ec[g, EC_OUT] == 0:
                    _release(ec_free, state, P_EC, g)
                continue
            if op == W_FINISH:  # a request's answer: recorded now
                r = f
                o = state[S_OUT_N]
                out_i[o, 0] = rq[r, RQ_FLOW]
                out_i[o, 1] = 1 if err == OK else 0
                out_i[o, 2] = err
                out_f[o, 0] = rqf[r, RQF_T0]
                out_f[o, 1] = rqf[r, RQF_STARTED]
                out_f[o, 2] = now
                state[S_OUT_N] = o + 1
                if o + 1 + MARGIN > out_cap:
                    state[S_LOW] = 1
                if rq[r, RQ_MARKED] != 0:  # a success hands its critical path over (sim/calendar/marks.py)
                    if err == OK:
                        for j in range(RQF_PART0, rqf.shape[1]):
                            out_f[o, 3 - RQF_PART0 + j] = rqf[r, j]
                    rqf[r, RQF_OPEN] = -1.0  # answered: nothing marks it any more
                elif err == OK:
                    out_f[o, 3] = -math.inf
                rq[r, RQ_DONE] = 1
                kc = rq[r, RQ_KCOMP]
                if kc >= 0:  # a consumer finished a record: it may take the next
                    cons = rq[r, RQ_CONS]
                    cons_in[cons] -= 1
                    wl = pump(kc, cons - comps[kc, C_CONS_OFF], now, W, window_s, nw, nodes, node_f, comps,
                              dists, dvals, hop_d, key_hop, key_node, flow_i, ht, hp, state, rq, rqf,
                              fr, fr_keys, fr_extra, fr_t0, fr_free, wl_op, wl_f, wl_e, wl, log_head, log_len,
                              rq_next_col=RQ_NEXT, cons_in=cons_in, cons_cursor=cons_cursor, win_lag=win_lag,
                              win_take=win_take, lag_max=lag_max)
                if rq[r, RQ_REFS] == 0:
                    _release(req_free, state, P_REQ, r)
                continue
            if op in (W_START, W_ATTEMPT):
                direct = op == W_START  # a call without a policy edge, or any other step
                g, att = np.int64(-1), np.int64(0)
                if not direct:  # the next attempt of an edge call
                    g = f
                    if ec[g, EC_DONE] != 0:
                        if ec[g, EC_OUT] == 0:
                            _release(ec_free, state, P_EC, g)
                        continue
                    e = ec[g, EC_EDGE]
                    ec[g, EC_ATT] += 1
                    att = ec[g, EC_ATT]
                    if not breaker_allows(e, now, ep, ex, ef):
                        ex[e, X_REJECTED] += 1
                        code = err_breaker if ec[g, EC_REQ] >= 0 else nodes[ec[g, EC_NODE], N_COMP] * ERRS + 8
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_REFUSED, g, code
                        wl += 1
                        continue
                    ec[g, EC_LIVE] = att
                    if not math.isnan(ep[e, E_TIMEOUT_S]):
                        ec[g, EC_OUT] += 1
                        _push(ht, hp, state, now + ep[e, E_TIMEOUT_S], EV_TIMEOUT, g, att)
                    if ec[g, EC_REQ] >= 0:  # a client attempt: a path of its own
                        ec[g, EC_OUT] += 1  # its root frame answers it (W_REPLY)
                        r = ec[g, EC_REQ]
                        if rq[r, RQ_MARKED] != 0:  # its marks alone count, from the t0 (the DES's rule)
                            open_marks(rqf, r, rqf[r, RQF_T0], att)
                        f = _root(fr, fr_keys, fr_extra, fr_t0, fr_free, rq, state, flow_i, r, T_ATTEMPT, g,
                                  att, now)  # its records' latency starts now
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
                        wl += 1
                        continue
                    f = ec[g, EC_FRAME]
                    node = ec[g, EC_NODE]
                else:
                    node = fr[f, FR_NODE]
                kind = nodes[node, N_KIND]
                r = fr[f, FR_REQ]
                c = nodes[node, N_COMP]
                if direct:  # this step's cost beyond its draw: a service's per-member time, else none
                    extra = 0.0  # (a frame moves on to its next step: what the last one cost stays behind)
                    if kind in (K_SERVICE, K_CONSUME) and node_f[node] > 0.0 and nodes[node, N_A] >= 0:
                        fan = nodes[node, N_A]
                        n = related(fan, f, nodes, fr_keys, recipients, inbox_off)  # recipients, an inbox
                        if n < 0:  # a group's size, drawn now and kept for its fan-out
                            i = _tick(state)
                            n = max(0, round(_draw(dists, dvals, nodes[fan, N_DIST], key_node[fan, 0], i)))
                            rq[r, RQ_FAN_NODE] = fan
                            rq[r, RQ_FAN_N] = n
                        extra = n * node_f[node]
                    fr_extra[f] = extra
                if direct and kind in (K_GATEWAY, K_SERVICE, K_REDIS, K_CASSANDRA, K_PRODUCE):
                    e = edge_of[fr[f, FR_CALLER] + 1, c]
                    if e >= 0:  # a call over an edge with a policy: its attempts are the edge's
                        g = _alloc(ec_free, state, P_EC)
                        ec[g, EC_FRAME], ec[g, EC_REQ], ec[g, EC_EDGE], ec[g, EC_NODE] = f, -1, e, node
                        ec[g, EC_ATT], ec[g, EC_LIVE], ec[g, EC_DONE], ec[g, EC_OUT] = 0, 0, 0, 0
                        ecf[g] = fr_extra[f] if kind == K_SERVICE else 0.0
                        ex[e, X_CALLS] += 1
                        if not math.isnan(ep[e, E_BUDGET_RATIO]):
                            ef[e, F_BUDGET] += ep[e, E_BUDGET_RATIO]
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ATTEMPT, g, OK
                        wl += 1
                        continue
                if kind in (K_GATEWAY, K_SERVICE, K_REDIS, K_CACHE, K_CONSUME):
                    stn = fr[f, FR_STATION]  # a consumer's own station
                    if kind in (K_REDIS, K_CACHE):
                        key = fr_keys[f, nodes[node, N_SLOT]]
                        stn = comps[c, C_BASE] + _route(routes, hroutes, nodes[node, N_ROUTE], key)
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
                                wl = _refuse(direct, f, g, att, c * ERRS + 3, ec, wl, wl_op, wl_f, wl_e)
                                continue
                            rl_tokens[bucket] = tokens - 1.0
                        stn = _pick(c, now, comps, state, key_comp, s_ints, s_win)
                    i = _tick(state)
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    if direct:
                        fr[f, FR_STATION] = stn
                        _push(ht, hp, state, now + h, EV_ARRIVE, f, 0)
                    else:
                        ec[g, EC_OUT] += 1
                        _push(ht, hp, state, now + h, EV_AARRIVE, g, (stn << 16) | att)
                elif kind == K_CASSANDRA:
                    key = fr_keys[f, nodes[node, N_SLOT]]
                    pos = comps[c, C_RING] + _route(routes, hroutes, nodes[node, N_ROUTE], key)
                    rf = comps[c, C_RF]
                    k = nodes[node, N_B]
                    base = comps[c, C_BASE]
                    write = nodes[node, N_A] == 1
                    asked = 0
                    if write:
                        for j in range(rf):
                            if not is_down(s_ints, s_win, base + replicas[pos, j], now):
                                asked += 1
                        first = 0
                    else:
                        i = _tick(state)
                        first = np.int64(uniform(key_comp[c, 2], i, np.int64(0)) * rf)
                        for j in range(rf):
                            if not is_down(s_ints, s_win, base + replicas[pos, (first + j) % rf], now):
                                asked += 1
                                if asked == k:
                                    break
                    if asked < k:
                        state[S_UNAVAILABLE] += 1
                        wl = _refuse(direct, f, g, att, c * ERRS + 1, ec, wl, wl_op, wl_f, wl_e)
                        continue
                    q = _alloc(qu_free, state, P_QUORUM)
                    qu[q, QU_FRAME] = f
                    qu[q, QU_EC] = g
                    qu[q, QU_ATT] = att
                    if not direct:
                        ec[g, EC_OUT] += 1
                    qu[q, QU_SUCC] = k
                    qu[q, QU_FAIL] = asked - k
                    qu[q, QU_OUT] = asked
                    qu[q, QU_DONE] = 0
                    qu[q, QU_COMP] = c
                    qu[q, QU_DIST] = nodes[node, N_DIST]
                    qu[q, QU_POS] = pos
                    qu[q, QU_SOLE] = -1
                    if write and (asked < rf or state[S_TRACK] != 0):  # hints for the replicas down
                        qu[q, QU_SOLE] = store_hints(c, pos, k, now, comps, replicas, s_ints, s_win, hints,
                                                     state, so, so_free)
                    hedged = not write and k < rf and comp_f[c, F_HEDGE] > 0.0  # (RF <= 62: support.py)
                    mask = np.int64(0)
                    sent = 0
                    for j in range(rf):
                        if sent == asked:
                            break
                        stn = base + replicas[pos, (first + j) % rf]
                        if is_down(s_ints, s_win, stn, now):
                            continue
                        sent += 1
                        if hedged:
                            mask |= np.int64(1) << ((first + j) % rf)
                        i = _tick(state)
                        h = _draw(dists, dvals, hop_d, key_hop, i)
                        _push(ht, hp, state, now + h, EV_REPLICA, q, stn)
                    qu[q, QU_ASKED] = mask
                    if hedged:  # the hedge holds the quorum row until its time
                        qu[q, QU_OUT] += 1
                        _push(ht, hp, state, now + comp_f[c, F_HEDGE], EV_HEDGE, q, 0)
                elif kind == K_PRODUCE:
                    key = fr_keys[f, nodes[node, N_SLOT]]
                    p = _route(routes, hroutes, nodes[node, N_ROUTE], key)
                    q = comps[c, C_PART_OFF] + p
                    leader = np.int64(k_lead[q, 0]) if now >= k_lead[q, 1] else np.int64(-1)
                    if leader < 0:  # no leader until the election ends (or no replica is up)
                        state[S_KAFKA_UNAVAILABLE] += 1
                        wl = _refuse(direct, f, g, att, c * ERRS + 1, ec, wl, wl_op, wl_f, wl_e)
                        continue
                    o = _alloc(ko_free, state, P_KOP)
                    ko[o, KO_LEADER] = leader
                    ko[o, KO_FRAME] = f
                    ko[o, KO_EC] = g
                    ko[o, KO_ATT] = att
                    ko[o, KO_P] = comps[c, C_PART_OFF] + p
                    ko[o, KO_LEFT] = comps[c, C_RF] - 1
                    ko[o, KO_ACKED] = 0
                    ko[o, KO_COMP] = c
                    ko[o, KO_KEY] = rq[r, RQ_KEY]
                    ko[o, KO_NEW] = rq[r, RQ_NEW]
                    ko[o, KO_USER] = rq[r, RQ_USER]
                    ko[o, KO_SLOT] = rq[r, RQ_SLOT]
                    ko[o, KO_FLOW] = nodes[node, N_A]
                    ko[o, KO_SRC] = rq[r, RQ_FLOW]
                    ko[o, KO_OUT] = 1
                    ko[o, KO_OVER] = 0
                    kof[o] = fr_t0[f]  # the producer's t0: its attempt's, behind a client edge
                    if not direct:
                        ec[g, EC_OUT] += 1
                    if comps[c, C_ACKS] == 0:
                        ko[o, KO_ACKED] = 1
                        if direct:
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                        else:
                            wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, g, att
                        wl += 1
                    i = _tick(state)
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    _push(ht, hp, state, now + h, EV_KLEAD, o, leader)
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
                        g = _child(fr, fr_keys, fr_extra, fr_t0, fr_free, rq, state, f, branches[j, 0], then,
                                   jn_row)
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
                    if need == 0:
                        jn[jn_row, JN_DONE] = 1
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, OK
                        wl += 1
                    if awaited == 0:
                        _release(jn_free, state, P_JOIN, jn_row)
                elif kind == K_FANOUT:
                    # a conversation's members but the sender, a user's conversations (sim/calendar/fans.py),
                    # or a group's members, drawn
                    n = related(node, f, nodes, fr_keys, recipients, inbox_off)
                    relation = n >= 0
                    if not relation:
                        if rq[r, RQ_FAN_NODE] == node:
                            n = rq[r, RQ_FAN_N]
                            rq[r, RQ_FAN_NODE] = -1
                        else:
                            i = _tick(state)
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
                        _push(ht, hp, state, now, EV_RESTART, f, 0)
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
                        if relation:
                            who = related_key(node, f, m, sender, nodes, fr_keys, inbox_off, inbox_conv,
                                              n_users, member_salt)
                        else:
                            i = _tick(state)
                            u = uniform(key_node[node, 1], i, np.int64(0))
                            who = np.searchsorted(cdfs[sp_off:sp_off + sp_n], u, side="right")
                            if who >= sp_n:
                                who = sp_n - 1
                        g = _child(fr, fr_keys, fr_extra, fr_t0, fr_free, rq, state, f, head, T_JOIN, jn_row)
                        fr_keys[g, slot] = who
                        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, g, OK
                        wl += 1
                continue
            # W_ADV: the step at the frame's node ended with `err`
            if err == OK:
                done_kind = nodes[fr[f, FR_NODE], N_KIND]
                if (done_kind in (K_GATEWAY, K_SERVICE, K_REDIS, K_CASSANDRA, K_PRODUCE, K_CONSUME)
                        and on_path(fr, jn, rqf, f)):  # a call's answer (a cache marked at its lookup)
                    mark(rqf, flow_i, fr[f, FR_FLOW], fr[f, FR_REQ], nodes[fr[f, FR_NODE], N_COMP], now)
                if done_kind in (K_GATEWAY, K_SERVICE, K_CONSUME):  # it makes the next calls (its edges)
                    fr[f, FR_CALLER] = nodes[fr[f, FR_NODE], N_COMP]
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
                    i = _tick(state)
                    h = _draw(dists, dvals, hop_d, key_hop, i)
                    key = fr_keys[link, nodes[parent_node, N_SLOT]]
                    _push(ht, hp, state, now + h, EV_FILL, fr[link, FR_STATION],
                          (key << 16) | nodes[parent_node, N_COMP])
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
            att = fr[f, FR_ATT]
            _release(fr_free, state, P_FRAME, f)
            rq[r, RQ_REFS] -= 1
            if then == T_FINISH:
                wl_op[wl], wl_f[wl], wl_e[wl] = W_FINISH, r, err
                wl += 1
            else:
                if then == T_ATTEMPT:  # a client attempt ended: its edge decides (answer, or retry)
                    wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, link, ((err + 1) << 16) | att
                    wl += 1
                if rq[r, RQ_DONE] == 1 and rq[r, RQ_REFS] == 0:  # the last frame of an answered request
                    _release(req_free, state, P_REQ, r)


@nb.njit("i8(b1, i8, i8, i8, i8, i8[:, ::1], i8, i8[::1], i8[::1], i8[::1])", cache=True, _nrt=False)
def _refuse(direct: bool, f: np.int64, g: np.int64, att: np.int64, err: np.int64, ec: np.ndarray, wl: int,
            wl_op: np.ndarray, wl_f: np.ndarray, wl_e: np.ndarray) -> int:
    """A call that fails at once (rate limited, too few replicas, no partition leader): its frame
    advances with the error, or its edge call's attempt answers it."""
    if direct:
        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, f, err
    else:
        ec[g, EC_OUT] += 1
        wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, g, ((err + 1) << 16) | att
    return wl + 1


@nb.njit("i8(i8[:, ::1], i8, i8, i8, i8[::1], i8[::1], i8[::1])", cache=True, _nrt=False)
def _ack(ko: np.ndarray, o: np.int64, err: np.int64, wl: int, wl_op: np.ndarray, wl_f: np.ndarray,
         wl_e: np.ndarray) -> int:
    """A produce's answer to its producer: the frame waiting on it, or its edge call's attempt."""
    if ko[o, KO_EC] < 0:
        wl_op[wl], wl_f[wl], wl_e[wl] = W_ADV, ko[o, KO_FRAME], err
    else:
        wl_op[wl], wl_f[wl], wl_e[wl] = W_REPLY, ko[o, KO_EC], ((err + 1) << 16) | ko[o, KO_ATT]
    return wl + 1


@nb.njit("i8(i8[:, ::1], i8[:, ::1], f8[::1], f8[::1], i8[::1], i8[:, ::1], i8[::1], i8[:, ::1], i8, i8, i8, "
         "i8, f8)", cache=True, _nrt=False)
def _root(fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray, fr_t0: np.ndarray, fr_free: np.ndarray,
          rq: np.ndarray, state: np.ndarray, flow_i: np.ndarray, r: np.int64, then: np.int64, link: np.int64,
          att: np.int64, t0: float) -> np.int64:
    """The frame at the start of request r's flow (a client attempt's, with its number), whose records
    produced start their triggered flow's latency at t0 (the request's t0, or the attempt's start:
    the DES's attempt is a request of its own, started then)."""
    fl = rq[r, RQ_FLOW]
    f = _alloc(fr_free, state, P_FRAME)
    fr[f, FR_REQ] = r
    fr[f, FR_NODE] = flow_i[fl, 0]
    fr[f, FR_THEN] = then
    fr[f, FR_LINK] = link
    fr[f, FR_CALLER] = -1
    fr[f, FR_ATT] = att if rq[r, RQ_MARKED] != 0 else -1  # (-1: not marked, sim/calendar/marks.py)
    fr[f, FR_FLOW] = fl
    fr_keys[f, flow_i[fl, 1]] = rq[r, RQ_KEY]
    if flow_i[fl, 3] >= 0:
        fr_keys[f, flow_i[fl, 3]] = rq[r, RQ_USER]
    fr_extra[f] = 0.0
    fr_t0[f] = t0
    rq[r, RQ_REFS] += 1
    return f




@nb.njit(cache=True, _nrt=False)
def _elect(q: np.int64, c: np.int64, now: float, comps: np.ndarray, k_lead: np.ndarray, s_ints: np.ndarray,
           s_win: np.ndarray) -> None:
    """Partition q of Kafka component c, leaderless since its leader was lost `election_s` ago, elects
    its first replica (broker p mod B, then the next ones) that is up now, which then leads until it is
    lost itself, a broker that comes back leading nothing (the DES's rule); with none up, it has no
    leader until one of its replicas is back (`_back`)."""
    p = q - comps[c, C_PART_OFF]
    base, nb_ = comps[c, C_BASE], comps[c, C_COUNT]
    k_lead[q, 1] = math.inf
    for k in range(comps[c, C_RF]):
        stn = base + (p + k) % nb_
        if not is_down(s_ints, s_win, stn, now):
            k_lead[q, 0] = stn
            k_lead[q, 1] = now
            return


@nb.njit(cache=True, _nrt=False)
def _back(stn: np.int64, c: np.int64, now: float, comps: np.ndarray, k_lead: np.ndarray) -> None:
    """Broker `stn` of Kafka component c is back: it leads its partitions that found no replica up at
    their election."""
    base, nb_, off = comps[c, C_BASE], comps[c, C_COUNT], comps[c, C_PART_OFF]
    for q in range(off, off + comps[c, C_PARTS]):
        if k_lead[q, 1] == math.inf:
            for k in range(comps[c, C_RF]):
                if base + (q - off + k) % nb_ == stn:
                    k_lead[q, 0] = stn
                    k_lead[q, 1] = now
                    break


