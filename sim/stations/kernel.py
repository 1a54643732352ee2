"""The stations engine's compiled passes.

`take` splits a component's queue in one pass: the jobs arriving before the chunk's end grouped by
station (a counting sort), and those that wait; `split` hands the jobs `after` made to their
components the same way (`made` first lists the calls a round-robin or rate-limited one takes in
the order they were made).
`visit` serves the stations of a range one after another, each station's jobs in arrival order (a
stable sort of its segment), with sim/arrays/station.py's `serve`; two threads take disjoint
ranges. `after` then takes the served jobs in that order, on one thread, and moves each request on
along its flow (`advance`): the next call becomes a job for its component's queue, a Cassandra call
one job per replica it asks and a join row, a parallel step a join row and its branches, the end of
a sequence an answer to its join or the end of the request. `resolve` settles joins from their
answers, sorted by time: a join is answered at its `need`-th success, or fails at the failure it
cannot afford, once every answer before that time is known.

Every draw is counter-based (sim/arrays/rng.py) on (request, path, node, purpose): the path numbers
a request's branches and replicas, so the numbers do not depend on the chunk length, on how the
stations are split between threads, or on the order anything is processed in.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.placement import key_hash, shard_of
from sim.arrays.rng import sample, uniform
from sim.arrays.station import is_down, last_recovery, serve
from sim.stations.program import (
    ASK,
    BALANCED,
    BRANCH0,
    CACHE,
    CALL,
    CASSANDRA,
    CAUSE,
    COMP,
    DIST,
    FAN,
    FANOUT,
    HIT0,
    KIND,
    LIMITED,
    MCOL,
    MISS,
    NEED,
    NEXT,
    READ,
    READY,
    REP0,
    RF,
    ROBIN,
    ROUTE,
    SALT,
    SPACE,
    TOK0,
    TOKN,
)

# a job's int columns, and its float ones (J_NEW: bit 0 a fresh key; above it, for a request whose
# path is marked, its mark row + 1)
J_NODE, J_ST, J_JOIN, J_RID, J_SUB, J_KEY, J_NEW = range(7)
J_INTS = 7
J_T, J_T0 = range(2)
# a join's int columns, and its start time
(Q_NEED, Q_SLACK, Q_CONT, Q_PARENT, Q_RID, Q_SUB, Q_KEY, Q_NEW, Q_FLOW, Q_LEFT, Q_STATE, Q_READY, Q_GOT,
 Q_LISTED, Q_NODE) = range(15)
Q_INTS = 15
ROOT, UNAWAITED = -1, -2  # a sequence's join when it is the request's own path, or nobody waits for it
OK = -1  # an answer's error code when it succeeded
# counters: jobs emitted, joins listed to settle, requests ended, cache hits and misses, free join rows,
# requests waiting for `advance`'s next batch, free mark rows
C_JOBS, C_TOUCHED, C_FIN, C_HITS, C_MISSES, C_FREE, C_CONT, C_MFREE = range(8)
N_COUNTERS = 8
# an ended request's int columns: flow, error (OK or its cause), request id, marked (1: its row in
# fin_m holds its marks)
FIN_MARKED = 3
FIN_INTS = 4
# a continuation's int columns (its float ones: time, request start)
K_X, K_JOIN, K_ERR, K_RID, K_SUB, K_KEY, K_NEW, K_FLOW = range(8)
K_INTS = 8
# draw purposes
SVC, HOP, PICK, HIT, REPICK = range(5)
RATE_LIMITED = -4.0  # a call's start when its key's token bucket refused it (after `serve`'s codes)
ALL_DOWN = -2  # a call's station when every instance of its component was down as it was made
# a branch's or replica's path: parent path x PATH + its index + 1 (PATH above any branch count,
# support.MAX_NODES, and any replication factor, so the paths of one node never meet)
PATH = np.int64(4099)


@nb.njit(inline="always")
def draw_index(sub: np.int64, node: np.int64, purpose: int) -> np.int64:
    return (sub * np.int64(4096) + node) * np.int64(8) + purpose


@nb.njit(nogil=True, cache=True)
def take(qf: np.ndarray, qi: np.ndarray, before: float, first: np.int64,
         n_st: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One component's queue split in one pass: the jobs arriving before `before`, grouped by station
    (stations first..first + n_st - 1, each group in queue order) with the groups' offsets, and the
    jobs that wait, in queue order."""
    off = np.zeros(n_st + 1, np.int64)
    later = 0
    for r in range(qf.shape[0]):
        if qf[r, J_T] < before:
            off[qi[r, J_ST] - first + 1] += 1
        else:
            later += 1
    for s in range(n_st):
        off[s + 1] += off[s]
    n = off[n_st]
    jf, ji = np.empty((n, qf.shape[1])), np.empty((n, qi.shape[1]), np.int64)
    rf, ri = np.empty((later, qf.shape[1])), np.empty((later, qi.shape[1]), np.int64)
    pos = off[:-1].copy()
    w = 0
    for r in range(qf.shape[0]):
        if qf[r, J_T] < before:
            s = qi[r, J_ST] - first
            p = pos[s]
            pos[s] = p + 1
            jf[p, :] = qf[r, :]
            ji[p, :] = qi[r, :]
        else:
            rf[w, :] = qf[r, :]
            ri[w, :] = qi[r, :]
            w += 1
    return jf, ji, off, rf, ri


@nb.njit(nogil=True, cache=True)
def made(qf: np.ndarray, qi: np.ndarray, since: float, before: float, hop_params: np.ndarray,
         hop_values: np.ndarray, dkey: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """The queued calls made in [since, before), as (rows, times) in the order they were made (a
    call's time: its arrival less its hop, the same draw). When a component takes its turn in a
    chunk, every call made to it before the chunk's end is known (made by a component before it in
    the order, or by a join settled before it): a round-robin balancer or a token bucket takes them
    in this order, as the DES's do when a call is made."""
    n = qf.shape[0]
    rows = np.empty(n, np.int64)
    times = np.empty(n)
    m = 0
    for r in range(n):
        at = qf[r, J_T] - sample(hop_params, hop_values, dkey, qi[r, J_RID],
                                 draw_index(qi[r, J_SUB], qi[r, J_NODE], HOP))
        if since <= at < before:
            rows[m] = r
            times[m] = at
            m += 1
    order = np.argsort(times[:m], kind="mergesort")
    return rows[:m][order], times[:m][order]


@nb.njit(nogil=True, cache=True)
def repick(qf: np.ndarray, qi: np.ndarray, rows: np.ndarray, times: np.ndarray, first: np.int64,
           count: np.int64, ints: np.ndarray, win: np.ndarray, dkey: np.uint64) -> None:
    """The calls `rows` made at `times` to an instance down then go to another, at random among the
    instances up then (the DES's health-checked pick: Fleet.pick); with none up, their station is
    ALL_DOWN (the call fails at once, as the DES's call to no station)."""
    for m in range(rows.size):
        r, at = rows[m], times[m]
        if not is_down(ints, win, qi[r, J_ST], at):
            continue
        live = np.int64(0)
        for st in range(first, first + count):
            live += not is_down(ints, win, st, at)
        if live == 0:
            qi[r, J_ST] = ALL_DOWN
            continue
        k = min(np.int64(uniform(dkey, qi[r, J_RID], draw_index(qi[r, J_SUB], qi[r, J_NODE], REPICK)) * live),
                live - 1)
        for st in range(first, first + count):
            if not is_down(ints, win, st, at):
                if k == 0:
                    qi[r, J_ST] = st
                    break
                k -= 1


@nb.njit(nogil=True, cache=True)
def split(out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray, n: np.int64,
          n_comps: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first n jobs made, copied grouped by their component (each group in the order made),
    with the groups' offsets."""
    off = np.zeros(n_comps + 1, np.int64)
    for r in range(n):
        off[out_c[r] + 1] += 1
    for c in range(n_comps):
        off[c + 1] += off[c]
    pf, pi = np.empty((n, out_f.shape[1])), np.empty((n, out_i.shape[1]), np.int64)
    pos = off[:-1].copy()
    for r in range(n):
        c = out_c[r]
        p = pos[c]
        pos[c] = p + 1
        pf[p, :] = out_f[r, :]
        pi[p, :] = out_i[r, :]
    return pf, pi, off


@nb.njit(nogil=True, cache=True)
def visit(
    jf: np.ndarray, ji: np.ndarray, off: np.ndarray, first: np.int64, s_lo: np.int64,
    s_hi: np.int64, ints: np.ndarray, floats: np.ndarray, free: np.ndarray, ring: np.ndarray, win: np.ndarray,
    waits: np.ndarray, wait_stats: np.ndarray, glob: np.ndarray, counts: np.ndarray, nodes: np.ndarray,
    svc_params: np.ndarray, svc_values: np.ndarray, svc_voff: np.ndarray, key: np.uint64,
    out_job: np.ndarray, out_start: np.ndarray, out_end: np.ndarray, per_member_s: np.ndarray,
) -> None:
    """Serve the jobs of stations first + [s_lo, s_hi), grouped by station (station s's at rows
    off[s]..off[s + 1]), each station's in time order: for the job at sorted position p, out_job[p]
    is its row, (out_start[p], out_end[p]) what `serve` returned (a negative start: its failure code,
    and when the caller learns of it)."""
    for s in range(s_lo, s_hi):
        a, b = off[s], off[s + 1]
        if b == a:
            continue
        ts = jf[a:b, J_T].copy()
        idx = np.argsort(ts, kind="mergesort")
        st = first + s
        for k in range(b - a):
            p = a + k
            j = a + idx[k]
            nd = ji[j, J_NODE]
            d = nodes[nd, DIST]
            v0, v1 = svc_voff[d], svc_voff[d + 1]
            svc = sample(svc_params[d], svc_values[v0:v1], key, ji[j, J_RID],
                         draw_index(ji[j, J_SUB], nd, SVC))
            if per_member_s[nd] > 0.0 and nodes[nd, FAN] >= 0:  # a cost per member of the fan-out after
                svc += per_member_s[nd] * _fan_size(nodes[nd, FAN], ji[j, J_SUB], ji[j, J_RID], nodes,
                                                    svc_params, svc_values, svc_voff, key)
            a_t = ts[idx[k]]
            start, end = serve(ints, floats, free, ring, win, waits, wait_stats, glob, counts, st, a_t, svc)
            out_job[p] = j
            out_start[p] = start
            out_end[p] = end


@nb.njit(inline="always")
def _open_join(jq: np.ndarray, jt: np.ndarray, free_rows: np.ndarray, cnt: np.ndarray, need: np.int64,
               answers: np.int64, cont: np.int64, parent: np.int64, rid: np.int64, sub: np.int64, k: np.int64,
               new: np.int64, flow: np.int64, ready: np.int64, t0: float, node: np.int64) -> np.int64:
    """A join row (from the free rows: the caller made room) waiting for `need` of `answers`."""
    cnt[C_FREE] -= 1
    q = free_rows[cnt[C_FREE]]
    jq[q, Q_NEED], jq[q, Q_SLACK], jq[q, Q_CONT], jq[q, Q_PARENT] = need, answers - need, cont, parent
    jq[q, Q_RID], jq[q, Q_SUB], jq[q, Q_KEY], jq[q, Q_NEW], jq[q, Q_FLOW] = rid, sub, k, new, flow
    jq[q, Q_LEFT], jq[q, Q_STATE], jq[q, Q_READY] = answers, 1 if need == 0 else 0, ready
    jq[q, Q_GOT], jq[q, Q_LISTED], jq[q, Q_NODE] = 0, 0, node
    jt[q] = t0
    return q


@nb.njit(inline="always")
def _mark_row(rid: np.int64, new: np.int64, mk_rid: np.ndarray) -> np.int64:
    """The mark row of a marked request still in flight, else -1."""
    m = (new >> 1) - 1
    return m if m >= 0 and mk_rid[m] == rid else np.int64(-1)


@nb.njit(inline="always")
def _mark(t: float, x: np.int64, join: np.int64, rid: np.int64, new: np.int64, nodes: np.ndarray,
          jq: np.ndarray, mk_rid: np.ndarray, mk_t: np.ndarray, mk_j: np.ndarray) -> None:
    """Node x's part of a marked request's path ended at t. The DES's rule (sim/des/flows.py): it
    is on the critical path when outside any join, or when its join still waits for it alone;
    inside a join that is known when the join settles (`resolve`), so the mark waits there."""
    m = _mark_row(rid, new, mk_rid)
    if m < 0 or join == UNAWAITED:
        return
    c = nodes[x, MCOL]
    if join == ROOT:
        mk_t[m, c], mk_j[m, c] = t, ROOT
    elif jq[join, Q_STATE] == 0 and not (mk_j[m, c] == join and mk_t[m, c] >= t):
        # (a join settled already was answered before t: off the path; of a fan-out's members' marks
        # at one step, only the latest can be the one its join still waited for alone)
        mk_t[m, c], mk_j[m, c] = t, join


@nb.njit(inline="always")
def _settle_marks(q: np.int64, got: np.int64, rid: np.int64, new: np.int64, jq: np.ndarray, js_t: np.ndarray,
                  js_e: np.ndarray, mk_rid: np.ndarray, mk_t: np.ndarray, mk_j: np.ndarray) -> None:
    """Join q settles (every answer before its settling time known): each mark waiting at it is on
    the path if the join waited for one answer more when it was made: need - 1 successes before it,
    or, among successes at the very same time (members of a fan-out with equal times), one of them
    the last (the DES takes same-time events one by one: its last one finds one answer missing)."""
    m = _mark_row(rid, new, mk_rid)
    if m < 0:
        return
    for c in range(mk_t.shape[1]):
        if mk_j[m, c] == q:
            before = same = 0
            for a in range(got):
                if js_e[q, a] < 0:
                    if js_t[q, a] < mk_t[m, c]:
                        before += 1
                    elif js_t[q, a] == mk_t[m, c]:
                        same += 1
            if before <= jq[q, Q_NEED] - 1 <= before + max(same - 1, 0):
                mk_j[m, c] = ROOT
            else:
                mk_t[m, c], mk_j[m, c] = np.nan, UNAWAITED


@nb.njit(inline="always")
def _end(t: float, t0: float, join: np.int64, err: np.int64, flow: np.int64, rid: np.int64, new: np.int64,
         jq: np.ndarray, js_t: np.ndarray, js_e: np.ndarray, touched: np.ndarray, fin_i: np.ndarray,
         fin_f: np.ndarray, fin_m: np.ndarray, mk_rid: np.ndarray, mk_t: np.ndarray, mk_j: np.ndarray,
         mk_free: np.ndarray, async_err: np.ndarray, cnt: np.ndarray) -> None:
    """A sequence ended at t (err OK or a cause): its join hears (the answer in the join's row, the
    join listed for `resolve`), or the request ends (a marked one hands over the marks on its path
    and frees its mark row), or nobody waits (a failure is counted)."""
    if join >= 0:
        g = jq[join, Q_GOT]
        js_t[join, g], js_e[join, g] = t, err
        jq[join, Q_GOT] = g + 1
        if jq[join, Q_LISTED] == 0:
            jq[join, Q_LISTED] = 1
            touched[cnt[C_TOUCHED]] = join
            cnt[C_TOUCHED] += 1
    elif join == ROOT:
        n = cnt[C_FIN]
        fin_i[n, 0], fin_i[n, 1], fin_i[n, 2], fin_i[n, FIN_MARKED] = flow, err, rid, 0
        fin_f[n, 0], fin_f[n, 1] = t0, t
        m = _mark_row(rid, new, mk_rid)
        if m >= 0:
            fin_i[n, FIN_MARKED] = 1
            for c in range(mk_t.shape[1]):
                fin_m[n, c] = mk_t[m, c] if mk_j[m, c] == ROOT else np.nan
            mk_rid[m] = -1
            mk_free[cnt[C_MFREE]] = m
            cnt[C_MFREE] += 1
        cnt[C_FIN] = n + 1
    elif err >= 0:
        async_err[err] += 1


@nb.njit(inline="always")
def _fan_size(x: np.int64, sub: np.int64, rid: np.int64, nodes: np.ndarray, svc_params: np.ndarray,
              svc_values: np.ndarray, svc_voff: np.ndarray, dkey: np.uint64) -> np.int64:
    """The members of fan-out node x on path `sub` (a draw rounded, at least 0, at most its bound): one
    counter-based draw, so the call before it that costs per member counts the same number."""
    d = nodes[x, DIST]
    v0, v1 = svc_voff[d], svc_voff[d + 1]
    n = np.int64(np.rint(sample(svc_params[d], svc_values[v0:v1], dkey, rid, draw_index(sub, x, PICK))))
    return min(max(n, np.int64(0)), nodes[x, ASK])


@nb.njit(inline="always")
def _member(u: float, cdf: np.ndarray, guide: np.ndarray, at: np.ndarray) -> np.int64:
    """The key u draws from a fan-out's member space by popularity (sim/arrays/placement.Popularity's
    rule; `at`: the space's cdf and guide offsets and sizes in the concatenated tables)."""
    c0, cn, g0, gn = at[0], at[1], at[2], at[3]
    i = guide[g0 + min(np.int64(u * gn), gn - 1)]
    while i < cn - 1 and cdf[c0 + i] <= u:
        i += 1
    return i


@nb.njit(inline="always")
def _ring_position(tokens: np.ndarray, t0: np.int64, n: np.int64, h: np.uint64) -> np.int64:
    """The first token at or after hash h, wrapping (sim/placement.py's rule)."""
    i = min(np.int64(float(h) / 18446744073709551616.0 * n), n)
    while i > 0 and tokens[t0 + i - 1] >= h:
        i -= 1
    while i < n and tokens[t0 + i] < h:
        i += 1
    return i if i < n else 0


@nb.njit(inline="always")
def _emit(t: float, x: np.int64, join: np.int64, t0: float, rid: np.int64, sub: np.int64, k: np.int64,
          new: np.int64, nodes: np.ndarray, comps: np.ndarray, salts: np.ndarray, hop_params: np.ndarray,
          hop_values: np.ndarray, dkey: np.uint64, out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray,
          cnt: np.ndarray) -> None:
    """A call (or a cache lookup) at node x made at t: a job for its component, arriving after a hop,
    at an instance picked at random (gateways, services) or by the key's hash slot (Redis)."""
    c = nodes[x, COMP]
    if nodes[x, ROUTE] == BALANCED:
        u = uniform(dkey, rid, draw_index(sub, x, PICK))
        st = comps[c, 0] + min(np.int64(u * comps[c, 1]), comps[c, 1] - 1)
    elif nodes[x, ROUTE] == ROBIN:
        st = np.int64(-1)  # its turn in the rotation is given when the component takes it (`made`)
    else:  # SHARD (a design's Redis: by the key's hash slot)
        st = comps[c, 0] + shard_of(k, comps[c, 1], salts[nodes[x, SALT]])
    n = cnt[C_JOBS]
    out_f[n, J_T] = t + sample(hop_params, hop_values, dkey, rid, draw_index(sub, x, HOP))
    out_f[n, J_T0] = t0
    out_i[n, J_NODE], out_i[n, J_ST], out_i[n, J_JOIN] = x, st, join
    out_i[n, J_RID], out_i[n, J_SUB], out_i[n, J_KEY], out_i[n, J_NEW] = rid, sub, k, new
    out_c[n] = c
    cnt[C_JOBS] = n + 1


@nb.njit(inline="always")
def _defer(cont_f: np.ndarray, cont_i: np.ndarray, cnt: np.ndarray, t: float, x: np.int64, join: np.int64,
           err: np.int64, t0: float, rid: np.int64, sub: np.int64, k: np.int64, new: np.int64,
           flow: np.int64) -> None:
    """A request to move on from node x at t, left for `advance`'s next batch."""
    n = cnt[C_CONT]
    cont_f[n, 0], cont_f[n, 1] = t, t0
    cont_i[n, K_X], cont_i[n, K_JOIN], cont_i[n, K_ERR], cont_i[n, K_RID] = x, join, err, rid
    cont_i[n, K_SUB], cont_i[n, K_KEY], cont_i[n, K_NEW], cont_i[n, K_FLOW] = sub, k, new, flow
    cnt[C_CONT] = n + 1


@nb.njit(cache=True, _nrt=False)
def advance(
    cont_f: np.ndarray, cont_i: np.ndarray, m: np.int64,
    nodes: np.ndarray, branches: np.ndarray, comps: np.ndarray, salts: np.ndarray, tokens: np.ndarray,
    replicas: np.ndarray, hop_params: np.ndarray, hop_values: np.ndarray, dkey: np.uint64,
    out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray,
    jq: np.ndarray, jt: np.ndarray, free_rows: np.ndarray,
    js_t: np.ndarray, js_e: np.ndarray, touched: np.ndarray, fin_i: np.ndarray, fin_f: np.ndarray,
    async_err: np.ndarray, cnt: np.ndarray, stack: np.ndarray, fin_m: np.ndarray, mk_rid: np.ndarray,
    mk_t: np.ndarray, mk_j: np.ndarray, mk_free: np.ndarray, svc_params: np.ndarray, svc_values: np.ndarray,
    svc_voff: np.ndarray, fan_cdf: np.ndarray, fan_guide: np.ndarray, fan_spaces: np.ndarray,
) -> None:
    """Move each of m requests on (row r: from node x at time t; x -1: its sequence ended; err >= 0:
    it failed with that cause), until every path it starts waits at a station or ended. One call a
    batch: a call passes ~30 arrays, each as 7-9 words (the Redis replies' pass went from 341 to 57
    ns a job when it stopped calling here once a job)."""
    for r in range(m):
        t, t0 = cont_f[r, 0], cont_f[r, 1]
        rid, k, new, flow = cont_i[r, K_RID], cont_i[r, K_KEY], cont_i[r, K_NEW], cont_i[r, K_FLOW]
        stack[0, 0], stack[0, 1], stack[0, 2] = cont_i[r, K_X], cont_i[r, K_JOIN], cont_i[r, K_ERR]
        stack[0, 3], stack[0, 4], stack[0, 5] = cont_i[r, K_SUB], k, new
        top = 1
        while top > 0:
            top -= 1
            x, join, err, sub = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
            k, new = stack[top, 4], stack[top, 5]
            while True:
                if err >= 0 or x < 0:
                    _end(t, t0, join, err, flow, rid, new, jq, js_t, js_e, touched, fin_i, fin_f, fin_m,
                         mk_rid, mk_t, mk_j, mk_free, async_err, cnt)
                    break
                kind = nodes[x, KIND]
                if kind in (CALL, CACHE):
                    _emit(t, x, join, t0, rid, sub, k, new, nodes, comps, salts, hop_params, hop_values, dkey,
                          out_f, out_i, out_c, cnt)
                    break
                if kind == CASSANDRA:
                    c = nodes[x, COMP]
                    ask, rf, need = nodes[x, ASK], nodes[x, RF], nodes[x, NEED]
                    q = _open_join(jq, jt, free_rows, cnt, need, ask, nodes[x, NEXT], join, rid, sub, k, new,
                                   flow, nodes[x, READY], t0, x)
                    h = key_hash(k, salts[nodes[x, SALT]])
                    pos = _ring_position(tokens, nodes[x, TOK0], nodes[x, TOKN], h)
                    start = 0
                    if nodes[x, READ] == 1:
                        start = min(np.int64(uniform(dkey, rid, draw_index(sub, x, PICK)) * rf), rf - 1)
                    for i in range(ask):
                        rep = start + i
                        if rep >= rf:
                            rep -= rf
                        path = sub * PATH + i + 1
                        n = cnt[C_JOBS]
                        hop = sample(hop_params, hop_values, dkey, rid, draw_index(path, x, HOP))
                        out_f[n, J_T] = t + hop
                        out_f[n, J_T0] = t0
                        out_i[n, J_NODE], out_i[n, J_JOIN] = x, q
                        out_i[n, J_ST] = replicas[nodes[x, REP0] + pos * rf + rep]
                        out_i[n, J_RID], out_i[n, J_SUB], out_i[n, J_KEY], out_i[n, J_NEW] = rid, path, k, new
                        out_c[n] = c
                        cnt[C_JOBS] = n + 1
                    break
                if kind == FANOUT:  # a branch per member, each with its key, joined at all
                    n = _fan_size(x, sub, rid, nodes, svc_params, svc_values, svc_voff, dkey)
                    if n == 0:
                        x = nodes[x, NEXT]
                        continue
                    q = _open_join(jq, jt, free_rows, cnt, n, n, nodes[x, NEXT], join, rid, sub, k, new, flow,
                                   nodes[x, READY], t0, x)
                    sp = nodes[x, SPACE]
                    for b in range(n - 1, -1, -1):
                        path = sub * PATH + b + 1
                        u = uniform(dkey, rid, draw_index(path, x, HIT))
                        stack[top, 0], stack[top, 1], stack[top, 2] = nodes[x, BRANCH0], q, OK
                        stack[top, 3] = path
                        stack[top, 4] = _member(u, fan_cdf, fan_guide, fan_spaces[sp])
                        stack[top, 5] = new & ~np.int64(1)  # a member's key is no fresh one
                        top += 1
                    break
                # PARALLEL
                need, nb_ = nodes[x, NEED], nodes[x, ASK]
                b0 = nodes[x, BRANCH0]
                awaited = 0
                for b in range(nb_):
                    awaited += branches[b0 + b, 1]
                q = np.int64(UNAWAITED)
                if awaited > 0:
                    q = _open_join(jq, jt, free_rows, cnt, need, awaited, nodes[x, NEXT], join, rid, sub, k,
                                   new, flow, nodes[x, READY], t0, x)
                for b in range(nb_ - 1, -1, -1):
                    stack[top, 0] = branches[b0 + b, 0]
                    stack[top, 1] = q if branches[b0 + b, 1] == 1 else UNAWAITED
                    stack[top, 2] = OK
                    stack[top, 3] = sub * PATH + b + 1
                    stack[top, 4], stack[top, 5] = k, new
                    top += 1
                if need > 0:
                    break
                x = nodes[x, NEXT]  # nobody is waited for: the sequence goes on at once


@nb.njit(nogil=True, cache=True, _nrt=False)
def start(
    t: np.ndarray, flow: np.ndarray, rid: np.ndarray, key: np.ndarray, new: np.ndarray, marked: np.ndarray,
    first: np.ndarray, cont_f: np.ndarray, cont_i: np.ndarray,
    nodes: np.ndarray, branches: np.ndarray, comps: np.ndarray, salts: np.ndarray, tokens: np.ndarray,
    replicas: np.ndarray, hop_params: np.ndarray, hop_values: np.ndarray, dkey: np.uint64,
    out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray,
    jq: np.ndarray, jt: np.ndarray, free_rows: np.ndarray,
    js_t: np.ndarray, js_e: np.ndarray, touched: np.ndarray, fin_i: np.ndarray, fin_f: np.ndarray,
    async_err: np.ndarray, cnt: np.ndarray, stack: np.ndarray, fin_m: np.ndarray, mk_rid: np.ndarray,
    mk_t: np.ndarray, mk_j: np.ndarray, mk_free: np.ndarray, svc_params: np.ndarray, svc_values: np.ndarray,
    svc_voff: np.ndarray, fan_cdf: np.ndarray, fan_guide: np.ndarray, fan_spaces: np.ndarray,
) -> None:
    """Client requests arriving at t[i]: each starts its flow's steps (a marked one takes a mark row:
    the caller made room)."""
    cnt[C_CONT] = 0
    for i in range(t.size):
        fresh = new[i]
        if marked[i]:
            cnt[C_MFREE] -= 1
            m = mk_free[cnt[C_MFREE]]
            mk_rid[m] = rid[i]
            mk_t[m, :] = np.nan
            mk_j[m, :] = UNAWAITED
            fresh += (m + 1) << 1
        _defer(cont_f, cont_i, cnt, t[i], first[flow[i]], np.int64(ROOT), np.int64(OK), t[i], rid[i],
               np.int64(0), key[i], fresh, flow[i])
    advance(cont_f, cont_i, cnt[C_CONT], nodes, branches, comps, salts, tokens, replicas, hop_params,
            hop_values, dkey, out_f, out_i, out_c, jq, jt, free_rows, js_t, js_e, touched, fin_i, fin_f,
            async_err, cnt, stack, fin_m, mk_rid, mk_t, mk_j, mk_free, svc_params, svc_values,
            svc_voff, fan_cdf, fan_guide, fan_spaces)
    cnt[C_CONT] = 0


@nb.njit(nogil=True, cache=True, _nrt=False)
def after(
    jf: np.ndarray, ji: np.ndarray, out_job: np.ndarray, out_start: np.ndarray, out_end: np.ndarray,
    cont_f: np.ndarray, cont_i: np.ndarray,
    nodes: np.ndarray, branches: np.ndarray, comps: np.ndarray, salts: np.ndarray, tokens: np.ndarray,
    replicas: np.ndarray, hit_p: np.ndarray, node_flow: np.ndarray, hop_params: np.ndarray,
    hop_values: np.ndarray, dkey: np.uint64,
    out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray,
    jq: np.ndarray, jt: np.ndarray, free_rows: np.ndarray,
    js_t: np.ndarray, js_e: np.ndarray, touched: np.ndarray, fin_i: np.ndarray, fin_f: np.ndarray,
    async_err: np.ndarray, cnt: np.ndarray, stack: np.ndarray, fin_m: np.ndarray, mk_rid: np.ndarray,
    mk_t: np.ndarray, mk_j: np.ndarray, mk_free: np.ndarray, svc_params: np.ndarray, svc_values: np.ndarray,
    svc_voff: np.ndarray, fan_cdf: np.ndarray, fan_guide: np.ndarray, fan_spaces: np.ndarray,
    s_ints: np.ndarray, s_win: np.ndarray, filled_at: np.ndarray, measure_from: float,
) -> None:
    """Each served job, in sorted order: its request moves on (the common moves here, the rest in one
    batch to `advance`). Where a Redis shard may restart empty (`filled_at` has a row per cached key,
    else one), a hit needs its key filled since the shard last came back, and a fill records when.
    Hits and misses count from `measure_from` (the warm-up's end), as the DES's."""
    cnt[C_CONT] = 0
    for p in range(out_job.size):
        j = out_job[p]
        x = ji[j, J_NODE]
        kind = nodes[x, KIND]
        start, t = out_start[p], out_end[p]
        # a failure: its cause (program.py's causes: each component's rejected, unavailable, crashed;
        # a call's own CAUSE when rejected, e.g. a fill's; a rate limit's refusal)
        code = np.int64(-start) if start < 0 and start != RATE_LIMITED else np.int64(0)
        own = nodes[x, COMP] + comps.shape[0] * (code - 1)
        fill = kind == CALL and nodes[x, HIT0] >= 0  # (its causes: fill_rejected, _unavailable, _crashed)
        err = (np.int64(OK) if start >= 0 else nodes[x, LIMITED] if start == RATE_LIMITED else
               nodes[x, CAUSE] + code - 1 if fill else nodes[x, CAUSE] if code == 1 or kind == CACHE else own)
        join, rid, sub, k, new = ji[j, J_JOIN], ji[j, J_RID], ji[j, J_SUB], ji[j, J_KEY], ji[j, J_NEW]
        t0 = jf[j, J_T0]
        nxt = nodes[x, NEXT]
        if new > 1 and kind != CASSANDRA and (err < 0 or kind == CACHE):  # (a lookup marks even failed)
            _mark(t, x, join, rid, new, nodes, jq, mk_rid, mk_t, mk_j)
        if kind == CASSANDRA:  # a replica's reply: its join hears
            _end(t, t0, join, err, node_flow[x], rid, new, jq, js_t, js_e, touched, fin_i, fin_f, fin_m,
                 mk_rid, mk_t, mk_j, mk_free, async_err, cnt)
            continue
        if kind == CACHE:
            hit = False
            if err >= 0:
                async_err[own] += 1  # a failed lookup counts and is taken as a miss
            elif new & 1 == 0:
                hit = uniform(dkey, rid, draw_index(sub, x, HIT)) < hit_p[nodes[x, HIT0] + k]
                if hit and filled_at.size > 1:  # a shard that restarted holds only what was refilled since
                    up = last_recovery(s_ints, s_win, ji[j, J_ST], t)
                    hit = not (up > -math.inf and filled_at[nodes[x, HIT0] + k] < up)
                if t >= measure_from:
                    cnt[C_HITS if hit else C_MISSES] += 1
            if not hit:
                if nodes[x, MISS] >= 0:
                    nxt, err = nodes[x, MISS], np.int64(OK)
                elif err < 0:
                    err = nodes[x, CAUSE]
                else:
                    err = own  # no miss branch: fails as the lookup's own error
        elif fill and err < 0 and filled_at.size > 1:  # a fill, done
            filled_at[nodes[x, HIT0] + k] = t
        if err >= 0 or nxt < 0:  # the sequence ended (the common cases without `advance`'s call)
            _end(t, t0, join, err, node_flow[x], rid, new, jq, js_t, js_e, touched, fin_i, fin_f, fin_m,
                 mk_rid, mk_t, mk_j, mk_free, async_err, cnt)
            continue
        if nodes[nxt, KIND] in (CALL, CACHE):
            _emit(t, nxt, join, t0, rid, sub, k, new, nodes, comps, salts, hop_params, hop_values, dkey,
                  out_f, out_i, out_c, cnt)
            continue
        _defer(cont_f, cont_i, cnt, t, nxt, join, err, t0, rid, sub, k, new, node_flow[x])
    advance(cont_f, cont_i, cnt[C_CONT], nodes, branches, comps, salts, tokens, replicas, hop_params,
            hop_values, dkey, out_f, out_i, out_c, jq, jt, free_rows, js_t, js_e, touched, fin_i, fin_f,
            async_err, cnt, stack, fin_m, mk_rid, mk_t, mk_j, mk_free, svc_params, svc_values,
            svc_voff, fan_cdf, fan_guide, fan_spaces)
    cnt[C_CONT] = 0


@nb.njit(nogil=True, cache=True, _nrt=False)
def resolve(
    below: np.int64, safe_t: float, cont_f: np.ndarray, cont_i: np.ndarray,
    nodes: np.ndarray, branches: np.ndarray, comps: np.ndarray, salts: np.ndarray, tokens: np.ndarray,
    replicas: np.ndarray, hop_params: np.ndarray, hop_values: np.ndarray, dkey: np.uint64,
    out_f: np.ndarray, out_i: np.ndarray, out_c: np.ndarray,
    jq: np.ndarray, jt: np.ndarray, free_rows: np.ndarray,
    js_t: np.ndarray, js_e: np.ndarray, touched: np.ndarray, fin_i: np.ndarray, fin_f: np.ndarray,
    async_err: np.ndarray, cnt: np.ndarray, stack: np.ndarray, fin_m: np.ndarray, mk_rid: np.ndarray,
    mk_t: np.ndarray, mk_j: np.ndarray, mk_free: np.ndarray, svc_params: np.ndarray, svc_values: np.ndarray,
    svc_voff: np.ndarray, fan_cdf: np.ndarray, fan_guide: np.ndarray, fan_spaces: np.ndarray,
) -> np.int64:
    """Settle the listed joins whose components all come before `below` in the order: at the need-th
    success, or at the failure beyond its slack, counted in time order, if that is before `safe_t`
    (every answer before it is known) or every answer is in. A settled join leaves the list, and its
    row is freed once all its answers are in; one not settled yet stays listed. Joins that settling
    lists are taken in the same call. Returns the joins settled."""
    settled = 0
    while True:  # a batch moved on may answer joins listed here: scan again until none settles
        cnt[C_CONT] = 0
        i = 0
        w = 0
        while i < cnt[C_TOUCHED]:
            q = touched[i]
            i += 1
            if jq[q, Q_READY] >= below:
                touched[w] = q
                w += 1
                continue
            got = jq[q, Q_GOT]
            if jq[q, Q_STATE] == 0:
                for m in range(1, got):  # the answers in time order (a few: insertion sort)
                    x_t, x_e = js_t[q, m], js_e[q, m]
                    n = m - 1
                    while n >= 0 and js_t[q, n] > x_t:
                        js_t[q, n + 1], js_e[q, n + 1] = js_t[q, n], js_e[q, n]
                        n -= 1
                    js_t[q, n + 1], js_e[q, n + 1] = x_t, x_e
                oks = 0
                fails = 0
                at = -1  # the answer that settles it
                for m in range(got):
                    if js_t[q, m] >= safe_t and got < jq[q, Q_LEFT]:  # (all in: no earlier one to come)
                        break
                    if js_e[q, m] < 0:
                        oks += 1
                    else:
                        fails += 1
                    if oks == jq[q, Q_NEED] or fails > jq[q, Q_SLACK]:
                        at = m
                        break
                if at < 0:
                    touched[w] = q
                    w += 1
                    continue
                jq[q, Q_STATE] = 1
                settled += 1
                err = js_e[q, at] if fails > jq[q, Q_SLACK] else np.int64(OK)
                t, cont, parent = js_t[q, at], jq[q, Q_CONT], jq[q, Q_PARENT]
                rid, new = jq[q, Q_RID], jq[q, Q_NEW]
                if new > 1:
                    _settle_marks(q, got, rid, new, jq, js_t, js_e, mk_rid, mk_t, mk_j)
                    if err < 0 and nodes[jq[q, Q_NODE], KIND] == CASSANDRA:  # the call answered
                        _mark(t, jq[q, Q_NODE], parent, rid, new, nodes, jq, mk_rid, mk_t, mk_j)
                if err >= 0 or cont < 0:  # the common cases without `advance`'s call
                    _end(t, jt[q], parent, err, jq[q, Q_FLOW], rid, new, jq, js_t, js_e, touched, fin_i,
                         fin_f, fin_m, mk_rid, mk_t, mk_j, mk_free, async_err, cnt)
                elif nodes[cont, KIND] in (CALL, CACHE):
                    _emit(t, cont, parent, jt[q], jq[q, Q_RID], jq[q, Q_SUB], jq[q, Q_KEY], jq[q, Q_NEW],
                          nodes, comps, salts, hop_params, hop_values, dkey, out_f, out_i, out_c, cnt)
                else:
                    _defer(cont_f, cont_i, cnt, t, cont, parent, err, jt[q], jq[q, Q_RID], jq[q, Q_SUB],
                           jq[q, Q_KEY], jq[q, Q_NEW], jq[q, Q_FLOW])
            jq[q, Q_LISTED] = 0
            if got == jq[q, Q_LEFT]:  # every answer in: the row is free
                free_rows[cnt[C_FREE]] = q
                cnt[C_FREE] += 1
        cnt[C_TOUCHED] = w
        if cnt[C_CONT] == 0:
            return settled
        advance(cont_f, cont_i, cnt[C_CONT], nodes, branches, comps, salts, tokens, replicas, hop_params,
                hop_values, dkey, out_f, out_i, out_c, jq, jt, free_rows, js_t, js_e, touched, fin_i, fin_f,
                async_err, cnt, stack, fin_m, mk_rid, mk_t, mk_j, mk_free, svc_params, svc_values,
            svc_voff, fan_cdf, fan_guide, fan_spaces)
        cnt[C_CONT] = 0
