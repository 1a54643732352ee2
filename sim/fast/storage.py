"""Redis and Cassandra together: appends, GETs and fills on the shards; writes, reads and inbox
writes on the nodes; the joins of replica replies.

As sim/des: a Cassandra write goes to the live replicas of its key (a crashed one gets a hint,
not replayed here) and succeeds at the k-th reply (it fails once k successes are impossible: at
the (n-k+1)-th failure of the n asked); a read goes to the first k live replicas from a random
offset and needs all k (it fails at the first failure). Fewer than k live replicas: the
coordinator answers "unavailable" at once. A step with a policy timeout fails at the timeout if
it has not answered by then (its work goes on; a timed-out read fills no cache).
A read GETs the conversation's recent list from its shard; it hits with the conversation's
cache-model probability; a miss (or a rejected GET) reads Cassandra, and a successful Cassandra
read is followed by a cache fill nobody waits for. An inbox write is a Cassandra write keyed by
the recipient; a delivery is done at its last inbox write, or failed at the first failed one.

A fill comes back to Redis after Cassandra, so the two fleets advance together in time slices
(sim/fast/slices.py): in each slice the shards go first (their misses become Cassandra reads
arriving later in the slice or after it), then the nodes. A GET's bound is its arrival plus the
slowest of its replicas' hop + service plus the fill's hop; a Cassandra read's is its arrival
plus its service plus the fill's hop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.fast.order import order_jobs
from sim.fast.rng import sample, uniform
from sim.fast.slices import any_before, drop_served, next_horizon, select_generated, suffix_min
from sim.fast.station import D_AT, SERVED, UNAVAILABLE, W_AT, Stations, cause, is_down, last_recovery, serve
from sim.fast.tables import (
    CI,
    CR,
    CW,
    E_CASS,
    E_FILL,
    E_MISS,
    E_REDIS,
    FAILED,
    FILL,
    OK,
    RG,
    RS,
    T_CASS,
    T_INBOX,
    T_REDIS,
    TIMEOUT,
)


class StorageParams(NamedTuple):
    rf: np.int64
    k_write: np.int64
    k_read: np.int64
    redis_on: bool
    cass_on: bool
    redis_required: bool
    cass_required: bool
    shard_base: np.int64
    shards: np.int64
    node_base: np.int64
    nodes: np.int64
    replicas: np.ndarray  # int64 [ring positions, RF]: node numbers
    hop: np.ndarray
    hop_values: np.ndarray
    cass_read: np.ndarray
    cass_read_values: np.ndarray
    redis_svc: np.ndarray
    redis_svc_values: np.ndarray
    key_hit: np.uint64  # the read's cache lookup, by read gid
    key_cr_hop: np.uint64  # Cassandra read replica hops / services, by read gid and replica number
    key_cr_svc: np.uint64
    key_fill_hop: np.uint64  # the fill after a Cassandra read
    key_fill_svc: np.uint64
    window_s: float  # per-window cache counters
    timeouts_s: np.ndarray  # float, by T_* (sim/fast/tables.py): the edges' timeouts (inf: none)
    redis_crashes: bool  # some shard crashes: GETs after its restart miss until a fill lands


@nb.njit(cache=True)
def fill_hop(P: StorageParams, gid: np.int64) -> float:
    hop, hop_values, key, on = P.hop, P.hop_values, P.key_fill_hop, P.redis_on
    return sample(hop, hop_values, key, gid, 0) if on else math.inf


@nb.njit(cache=True)
def issue_read(
    P: StorageParams,
    ints: np.ndarray,
    win: np.ndarray,
    reads: np.ndarray,
    r: np.int64,
    at: float,
    gt: np.ndarray,
    gst: np.ndarray,
    grow: np.ndarray,
    gslot: np.ndarray,
    gstage: np.ndarray,
    gsvc: np.ndarray,
    glb: np.ndarray,
    gn: np.int64,
) -> np.int64:
    """Send read r to Cassandra at `at`: its k replica jobs go to the buffers from index gn on;
    returns the new end of the buffers. As the DES's coordinator, it asks the first k replicas
    from the read's offset that are not down at `at`; with fewer than k up, it asks none and the
    read fails at once ("unavailable"). The i-th replica asked draws its hop and service with
    index i, whichever node it is."""
    k, rf, node_base, replicas = P.k_read, P.rf, P.node_base, P.replicas
    pos, off, gid = reads[r].pos, reads[r].off, reads[r].gid
    live = 0
    for q in range(rf):
        if not is_down(ints, win, node_base + replicas[pos, (off + q) % rf], at):
            live += 1
    reads[r].cr_at = at
    if live < k:
        _finish_read(reads, r, False, at, E_CASS + cause(UNAVAILABLE))
        return gn
    back = fill_hop(P, gid)
    reads[r].cr_left = k
    reads[r].cr_max = -math.inf
    reads[r].cr_fail = math.inf
    i = 0
    for q in range(rf):
        node = node_base + replicas[pos, (off + q) % rf]
        if i == k or is_down(ints, win, node, at):
            continue
        gt[gn] = at + sample(P.hop, P.hop_values, P.key_cr_hop, gid, i)
        gst[gn] = node
        grow[gn], gslot[gn], gstage[gn] = r, i, CR
        gsvc[gn] = sample(P.cass_read, P.cass_read_values, P.key_cr_svc, gid, i)
        glb[gn] = gt[gn] + gsvc[gn] + back
        gn += 1
        i += 1
    reads[r].out += k
    return gn


@nb.njit(cache=True)
def get_bounds(P: StorageParams, reads: np.ndarray, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bound of the earliest fill a GET arriving at t can cause (inf without Cassandra)."""
    out = np.full(rows.size, math.inf)
    k, hop, hop_values, cass_read, cass_read_values = (
        P.k_read,
        P.hop,
        P.hop_values,
        P.cass_read,
        P.cass_read_values,
    )
    key_hop, key_svc = P.key_cr_hop, P.key_cr_svc
    if not (P.cass_on and P.redis_on):
        return out
    for n in range(rows.size):
        r = rows[n]
        gid = reads[r].gid
        slowest = 0.0
        for i in range(k):
            d = sample(hop, hop_values, key_hop, gid, i) + sample(
                cass_read, cass_read_values, key_svc, gid, i
            )
            if d > slowest:
                slowest = d
        out[n] = t[n] + slowest + fill_hop(P, gid)
    return out


@nb.njit(cache=True)
def _kth_smallest(values: np.ndarray, k: np.int64, scratch: np.ndarray) -> tuple[np.int64, float]:
    """(how many values are not NaN, the k-th smallest of them or NaN)."""
    m = 0
    for i in range(values.size):
        v = values[i]
        if not math.isnan(v):
            j = m
            while j > 0 and scratch[j - 1] > v:
                scratch[j] = scratch[j - 1]
                j -= 1
            scratch[j] = v
            m += 1
    return m, scratch[k - 1] if m >= k else math.nan


@nb.njit(cache=True)
def _kth(ok: np.ndarray, rej: np.ndarray, k: np.int64, scratch: np.ndarray) -> tuple[bool, float]:
    """(success, time) of a k-of-n join over the n replicas that answered (a down replica is not
    asked: the coordinator keeps a hint): the k-th smallest reply, or the (n-k+1)-th smallest
    rejection, the one that makes k successes impossible."""
    m, at = _kth_smallest(ok, k, scratch)
    if m >= k:
        return True, at
    n = m
    for i in range(rej.size):
        if not math.isnan(rej[i]):
            n += 1
    m, at = _kth_smallest(rej, n - k + 1, scratch)
    return False, at


@nb.njit(cache=True)
def _why(rej: np.ndarray, why: np.ndarray, at: float) -> np.int64:
    """The cause of the rejection at `at` (the one that failed a join)."""
    for i in range(rej.size):
        if rej[i] == at:
            return np.int64(why[i])
    return np.int64(0)


@nb.njit(cache=True)
def _finish_read(reads: np.ndarray, r: np.int64, ok: bool, at: float, err: np.int64) -> None:
    reads[r].st = OK if ok else FAILED
    reads[r].fin = at
    reads[r].err = err


@nb.njit(cache=True)
def _join_leaves(
    P: StorageParams,
    sends: np.ndarray,
    inbox: np.ndarray,
    done: np.ndarray,
    row: np.ndarray,
    slot: np.ndarray,
    stage: np.ndarray,
    leaf_start: np.ndarray,
    leaf_t: np.ndarray,
    D: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Apply the served Redis appends, Cassandra writes and inbox writes to their sends, in input
    (request) order: the rows are then read in sequence, not in the stations' order. Nothing in
    the slices reads what this writes, and the joins (k-th reply, latest and first failure) do not
    depend on the order they see the replies in.

    A step answers at its join, or fails at its edge's timeout if that comes first (the work goes
    on at the stations, as in the DES: the caller only stops waiting)."""
    rf, k_write, timeouts_s = P.rf, P.k_write, P.timeouts_s
    redis_required, cass_required = P.redis_required, P.cass_required
    for x in range(done.size):
        kind = stage[x]
        if not done[x] or not (kind == RS or kind == CW or kind == CI):  # noqa: SIM109 (numba)
            continue
        r, sl, at, failed = row[x], slot[x], leaf_t[x], leaf_start[x] < 0.0
        if kind == RS:
            sends[r].out -= 1
            err = E_REDIS + cause(leaf_start[x]) if failed else 0
            limit = sends[r].store + timeouts_s[T_REDIS]
            if at > limit:
                failed, at, err = True, limit, E_REDIS + TIMEOUT
                timed_out[T_REDIS] += 1
            sends[r].rs_st = FAILED if failed else OK
            sends[r].rs_t = at
            sends[r].rs_err = err
            if failed and not redis_required and at < D:
                async_errors[err] += 1
        elif kind == CW:
            sends[r].out -= 1
            _replica_answer(sends[r].cw_ok, sends[r].cw_rej, sends[r].cw_why, sl, at, leaf_start[x])
            sends[r].cw_left -= 1
            if sends[r].cw_left == 0:
                ok, t_k, err = _write_outcome(
                    sends[r].cw_ok[:rf], sends[r].cw_rej[:rf], sends[r].cw_why[:rf], k_write,
                    sends[r].store + timeouts_s[T_CASS], timed_out, T_CASS, scratch,
                )
                sends[r].cw_st = OK if ok else FAILED
                sends[r].cw_t = t_k
                sends[r].cw_err = err
                if not ok and not cass_required and t_k < D:
                    async_errors[err] += 1
        else:  # CI
            _replica_answer(inbox[r].ok, inbox[r].rej, inbox[r].why, sl, at, leaf_start[x])
            inbox[r].left -= 1
            if inbox[r].left == 0:
                p = inbox[r].parent
                ok, t_k, err = _write_outcome(
                    inbox[r].ok[:rf], inbox[r].rej[:rf], inbox[r].why[:rf], k_write,
                    sends[p].g_end + timeouts_s[T_INBOX], timed_out, T_INBOX, scratch,
                )
                _inbox_done(sends, p, ok, t_k, err)


@nb.njit(cache=True)
def fail_inbox(inbox: np.ndarray, sends: np.ndarray, rows: np.ndarray, at: np.ndarray, err: np.int64) -> None:
    """Inbox writes answered at once without asking a replica (too few live: "unavailable")."""
    for n in range(rows.size):
        inbox[rows[n]].left = 0
        _inbox_done(sends, inbox[rows[n]].parent, False, at[n], err)


@nb.njit(inline="always", cache=True)
def _replica_answer(
    ok: np.ndarray, rej: np.ndarray, why: np.ndarray, slot: np.int64, at: float, start: float
) -> None:
    """Replica `slot` of a write answered at `at`: a success, or a failure of code `start` < 0."""
    if start < 0.0:
        rej[slot] = at
        why[slot] = cause(start)
    else:
        ok[slot] = at


@nb.njit(cache=True)
def _write_outcome(
    ok: np.ndarray,
    rej: np.ndarray,
    why: np.ndarray,
    k: np.int64,
    limit: float,
    timed_out: np.ndarray,
    edge: np.int64,
    scratch: np.ndarray,
) -> tuple[bool, float, np.int64]:
    """(success, time, error code) of a write whose asked replicas have all answered: its k-of-n
    join, or a timeout at `limit` if that comes first."""
    success, at = _kth(ok, rej, k, scratch)
    err = np.int64(0) if success else E_CASS + _why(rej, why, at)
    if at > limit:
        success, at, err = False, limit, np.int64(E_CASS + TIMEOUT)
        timed_out[edge] += 1
    return success, at, err


@nb.njit(cache=True)
def _inbox_done(sends: np.ndarray, p: np.int64, ok: bool, at: float, err: np.int64) -> None:
    """One inbox write of send p's delivery answered: the delivery is done at the last success,
    or failed at the earliest failure, once every write has answered."""
    sends[p].out -= 1
    if ok:
        sends[p].in_max = max(sends[p].in_max, at)
    elif at < sends[p].in_fail:
        sends[p].in_fail = at
        sends[p].in_err = err
    sends[p].in_left -= 1
    if sends[p].in_left == 0:
        if sends[p].in_fail < math.inf:
            sends[p].d_st = FAILED
            sends[p].d_fin = sends[p].in_fail
            sends[p].d_err = sends[p].in_err
        else:
            sends[p].d_st = OK
            sends[p].d_fin = sends[p].in_max


@nb.njit(cache=True)
def run_storage(
    S: Stations,
    P: StorageParams,
    sends: np.ndarray,
    reads: np.ndarray,
    inbox: np.ndarray,
    t: np.ndarray,
    st: np.ndarray,
    row: np.ndarray,
    slot: np.ndarray,
    stage: np.ndarray,
    svc: np.ndarray,
    lb: np.ndarray,
    part: np.ndarray,
    t_start: float,
    t_end: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
    hits: np.ndarray,
    misses: np.ndarray,
    refilled: dict,
) -> tuple:
    """Process the shards' and nodes' arrivals before t_end. `async_errors`: by error code, of the
    steps nobody waits for; `timed_out`: by T_* (sim/fast/tables.py); `hits`/`misses`: [measured,
    per window...]; `refilled`: conversation -> its last cache fill (kept when Redis crashes).
    Returns (done mask, generated jobs not yet arrived: t, st, row, slot, stage, svc, lb)."""
    ints, floats, free, ring, win, waits, wait_stats, glob, counts = S
    n_st = ints.shape[0]
    W, D = glob[W_AT], glob[D_AT]
    rf, k_read, redis_on, cass_on = P.rf, P.k_read, P.redis_on, P.cass_on
    shard_base, shards, node_base, nodes = P.shard_base, P.shards, P.node_base, P.nodes
    hop, hop_values, redis_svc, redis_svc_values = P.hop, P.hop_values, P.redis_svc, P.redis_svc_values
    key_hit, key_fill_hop, key_fill_svc, window_s = P.key_hit, P.key_fill_hop, P.key_fill_svc, P.window_s
    timeouts_s = P.timeouts_s
    redis_crashes = P.redis_crashes
    perm, off = order_jobs(st, t, part, n_st)
    # the known jobs in (station, time) order, gathered once: the loops below read them in sequence
    n_in = t.size
    t, stage_s, svc = t[perm], stage[perm], svc[perm]
    leaf_start = np.empty(n_in)
    leaf_t = np.empty(n_in)
    suf = suffix_min(np.arange(n_in), off, lb[perm])
    ptr = off[:-1].copy()
    done_sorted = np.zeros(n_in, np.bool_)
    done = np.zeros(n_in, np.bool_)
    n_gets = 0
    for j in range(n_in):
        if stage_s[j] == RG or stage_s[j] == CR:
            n_gets += 1
    cap = n_gets * (k_read + 1) + 16
    gt, gst, grow = np.empty(cap), np.empty(cap, np.int64), np.empty(cap, np.int64)
    gslot, gstage, gsvc, glb = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap), np.empty(cap)
    sel = np.empty(cap, np.int64)
    gn = 0
    scratch = np.empty(max(rf, 1))
    # the stations of both fleets (whatever their order in the index space)
    lo = min(shard_base if redis_on else n_st, node_base if cass_on else n_st)
    hi = max(shard_base + shards if redis_on else 0, node_base + nodes if cass_on else 0)
    h = t_start
    slices = 0
    while True:
        slices += 1
        h2 = next_horizon(h, t_end, lo, hi, ptr, off, suf, glb, gn)
        for fleet in range(2):
            if (fleet == 0 and not redis_on) or (fleet == 1 and not cass_on):
                continue
            base = shard_base if fleet == 0 else node_base
            count = shards if fleet == 0 else nodes
            nsel = select_generated(gt, gst, gstage, gn, FILL if fleet == 0 else CR, h2, sel)
            k = 0
            for b in range(base, base + count):
                i, iend = ptr[b], off[b + 1]
                while True:
                    tk = t[i] if i < iend and t[i] < h2 else math.inf
                    tg = gt[sel[k]] if k < nsel and gst[sel[k]] == b else math.inf
                    if tk == math.inf and tg == math.inf:
                        break
                    if tk <= tg:
                        j = i
                        i += 1
                        done_sorted[j] = True
                        a, s, kind = t[j], svc[j], stage_s[j]
                        r = -1  # read below for the reads' kinds only (a random access)
                    else:
                        g = sel[k]
                        k += 1
                        a, r, s, kind = gt[g], grow[g], gsvc[g], gstage[g]
                        gstage[g] = -1  # served: dropped below
                    start, end = serve(
                        ints, floats, free, ring, win, waits, wait_stats, glob, counts, b, a, s
                    )
                    counts[SERVED] += 1
                    rejected = start < 0.0  # `end` is then when it failed (sim/fast/station.py)
                    if kind == RS or kind == CW or kind == CI:  # noqa: SIM109 (numba); joined after the slices
                        leaf_start[perm[j]] = start
                        leaf_t[perm[j]] = end
                        continue
                    if r < 0:
                        r = row[perm[j]]
                    if kind == RG:
                        reads[r].out -= 1
                        at = end
                        reads[r].rg_end = at
                        to_cassandra = False
                        if rejected:
                            if end < D:
                                async_errors[E_REDIS + cause(start)] += 1
                            if cass_on:
                                to_cassandra = True
                            else:
                                _finish_read(reads, r, False, end, E_REDIS + cause(start))
                        else:
                            hit = uniform(key_hit, reads[r].gid, 0) < reads[r].hitp
                            if hit and redis_crashes:  # as the DES's: a shard restarts empty, and
                                up = last_recovery(ints, win, b, end)  # a list misses until refilled
                                if up > -math.inf and refilled.get(reads[r].conv, -math.inf) < up:
                                    hit = False
                            if end < D:
                                w = 1 + int(end / window_s)
                                if hit:
                                    hits[min(w, hits.size - 1)] += 1
                                    if end >= W:
                                        hits[0] += 1
                                else:
                                    misses[min(w, misses.size - 1)] += 1
                                    if end >= W:
                                        misses[0] += 1
                            if hit:
                                _finish_read(reads, r, True, end, 0)
                            elif cass_on:
                                to_cassandra = True
                            else:
                                _finish_read(reads, r, False, end, E_MISS)
                        if to_cassandra:
                            gn = issue_read(
                                P, ints, win, reads, r, at, gt, gst, grow, gslot, gstage, gsvc, glb, gn
                            )
                    elif kind == CR:
                        reads[r].out -= 1
                        if rejected:
                            if end < reads[r].cr_fail:
                                reads[r].cr_fail = end
                                reads[r].cr_why = cause(start)
                        else:
                            reads[r].cr_max = max(reads[r].cr_max, end)
                        reads[r].cr_left -= 1
                        if reads[r].cr_left == 0:
                            failed_at = reads[r].cr_fail  # the first failure fails it (all k needed)
                            answer = failed_at if failed_at < math.inf else reads[r].cr_max
                            limit = reads[r].cr_at + timeouts_s[T_CASS]
                            if answer > limit:  # the caller stopped waiting: no cache fill either
                                timed_out[T_CASS] += 1
                                _finish_read(reads, r, False, limit, E_CASS + TIMEOUT)
                            elif failed_at < math.inf:
                                _finish_read(reads, r, False, failed_at, E_CASS + reads[r].cr_why)
                            else:
                                _finish_read(reads, r, True, reads[r].cr_max, 0)
                                if redis_on:
                                    gid = reads[r].gid
                                    gt[gn] = reads[r].cr_max + sample(hop, hop_values, key_fill_hop, gid, 0)
                                    gst[gn] = shard_base + reads[r].shard
                                    grow[gn], gslot[gn], gstage[gn] = r, 0, FILL
                                    gsvc[gn] = sample(redis_svc, redis_svc_values, key_fill_svc, gid, 0)
                                    glb[gn] = math.inf
                                    gn += 1
                                    reads[r].out += 1
                    else:  # FILL
                        reads[r].out -= 1
                        if rejected and end < D:
                            async_errors[E_FILL + cause(start)] += 1
                        elif not rejected and redis_crashes:
                            refilled[reads[r].conv] = end
                ptr[b] = i
            gn = drop_served(gt, gst, grow, gslot, gstage, gsvc, glb, gn)  # this fleet's served ones
        h = h2
        if h2 >= t_end and not any_before(gt, gn, t_end):
            break
    done[perm] = done_sorted
    _join_leaves(
        P, sends, inbox, done, row, slot, stage, leaf_start, leaf_t, D, async_errors, timed_out, scratch
    )
    return (
        done,
        gt[:gn].copy(),
        gst[:gn].copy(),
        grow[:gn].copy(),
        gslot[:gn].copy(),
        gstage[:gn].copy(),
        gsvc[:gn].copy(),
        glb[:gn].copy(),
        slices,
    )
