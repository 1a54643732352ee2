"""Redis and Cassandra together: appends, GETs and fills on the shards; writes, reads and inbox
writes on the nodes; the joins of replica replies.

As sim/des: a Cassandra write goes to the RF replicas of its key and succeeds at the k-th reply
(it fails once k successes are impossible: at the (RF-k+1)-th rejection); a read goes to k of
the RF replicas, starting at a random offset, and needs all k (it fails at the first rejection).
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
from sim.fast.slices import next_horizon, select_generated, suffix_min
from sim.fast.station import D_AT, SERVED, W_AT, Stations, serve
from sim.fast.tables import (
    A_CASS,
    A_FILL,
    A_REDIS,
    CI,
    CR,
    CW,
    E_CASS,
    E_MISS,
    E_REDIS,
    FAILED,
    FILL,
    OK,
    RG,
    RS,
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


@nb.njit(cache=True)
def fill_hop(P: StorageParams, gid: np.int64) -> float:
    hop, hop_values, key, on = P.hop, P.hop_values, P.key_fill_hop, P.redis_on
    return sample(hop, hop_values, key, gid, 0) if on else math.inf


@nb.njit(cache=True)
def read_replicas(P: StorageParams, reads: np.ndarray, r: np.int64, at: float) -> tuple:
    """The k Cassandra read jobs of read r, sent at `at`: (t, station, slot, svc, lb) arrays."""
    k, rf, node_base, replicas = P.k_read, P.rf, P.node_base, P.replicas
    hop, hop_values, cass_read, cass_read_values = P.hop, P.hop_values, P.cass_read, P.cass_read_values
    key_hop, key_svc = P.key_cr_hop, P.key_cr_svc
    gid = reads[r].gid
    back = fill_hop(P, gid)
    t = np.empty(k)
    st = np.empty(k, np.int64)
    slot = np.empty(k, np.int64)
    svc = np.empty(k)
    lb = np.empty(k)
    for i in range(k):
        node = replicas[reads[r].pos, (reads[r].off + i) % rf]
        t[i] = at + sample(hop, hop_values, key_hop, gid, i)
        st[i] = node_base + node
        slot[i] = i
        svc[i] = sample(cass_read, cass_read_values, key_svc, gid, i)
        lb[i] = t[i] + svc[i] + back
    return t, st, slot, svc, lb


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
    """(success, time) of a k-of-n join: the k-th smallest reply, or the (n-k+1)-th smallest rejection."""
    m, at = _kth_smallest(ok, k, scratch)
    if m >= k:
        return True, at
    m, at = _kth_smallest(rej, ok.size - k + 1, scratch)
    return False, at


@nb.njit(cache=True)
def _finish_read(reads: np.ndarray, r: np.int64, ok: bool, at: float, err: np.int64) -> None:
    reads[r].st = OK if ok else FAILED
    reads[r].fin = at
    reads[r].err = err


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
    hits: np.ndarray,
    misses: np.ndarray,
) -> tuple:
    """Process the shards' and nodes' arrivals before t_end. `hits`/`misses`: [measured, per window...].
    Returns (done mask, generated jobs not yet arrived: t, st, row, slot, stage, svc, lb)."""
    ints, floats, free, ring, win, waits, wait_stats, glob, counts = S
    n_st = ints.shape[0]
    W, D = glob[W_AT], glob[D_AT]
    rf, k_write, k_read, redis_on, cass_on = P.rf, P.k_write, P.k_read, P.redis_on, P.cass_on
    redis_required, cass_required = P.redis_required, P.cass_required
    shard_base, shards, node_base, nodes = P.shard_base, P.shards, P.node_base, P.nodes
    hop, hop_values, redis_svc, redis_svc_values = P.hop, P.hop_values, P.redis_svc, P.redis_svc_values
    key_hit, key_fill_hop, key_fill_svc, window_s = P.key_hit, P.key_fill_hop, P.key_fill_svc, P.window_s
    replicas, cass_read, cass_read_values, key_cr_hop, key_cr_svc = (
        P.replicas,
        P.cass_read,
        P.cass_read_values,
        P.key_cr_hop,
        P.key_cr_svc,
    )
    perm, off = order_jobs(st, t, part, n_st)
    # the known jobs in (station, time) order, gathered once: the loops below read them in sequence
    n_in = t.size
    t, row, slot, stage, svc = t[perm], row[perm], slot[perm], stage[perm], svc[perm]
    suf = suffix_min(np.arange(n_in), off, lb[perm])
    ptr = off[:-1].copy()
    done_sorted = np.zeros(n_in, np.bool_)
    done = np.zeros(n_in, np.bool_)
    n_gets = 0
    for j in range(t.size):
        if stage[j] == RG or stage[j] == CR:
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
                        a, r, s, sl, kind = t[j], row[j], svc[j], slot[j], stage[j]
                    else:
                        g = sel[k]
                        k += 1
                        a, r, s, sl, kind = gt[g], grow[g], gsvc[g], gslot[g], gstage[g]
                        gstage[g] = -1  # served: dropped below
                    start, end = serve(
                        ints, floats, free, ring, win, waits, wait_stats, glob, counts, b, a, s
                    )
                    counts[SERVED] += 1
                    rejected = start < 0.0
                    if kind == RS:
                        sends[r].out -= 1
                        sends[r].rs_st = FAILED if rejected else OK
                        sends[r].rs_t = a if rejected else end
                        if rejected and not redis_required and a < D:
                            async_errors[A_REDIS] += 1
                    elif kind == CW:
                        sends[r].out -= 1
                        if rejected:
                            sends[r].cw_rej[sl] = a
                        else:
                            sends[r].cw_ok[sl] = end
                        sends[r].cw_left -= 1
                        if sends[r].cw_left == 0:
                            ok, at = _kth(sends[r].cw_ok[:rf], sends[r].cw_rej[:rf], k_write, scratch)
                            sends[r].cw_st = OK if ok else FAILED
                            sends[r].cw_t = at
                            if not ok and not cass_required and at < D:
                                async_errors[A_CASS] += 1
                    elif kind == CI:
                        if rejected:
                            inbox[r].rej[sl] = a
                        else:
                            inbox[r].ok[sl] = end
                        inbox[r].left -= 1
                        if inbox[r].left == 0:
                            ok, at = _kth(inbox[r].ok[:rf], inbox[r].rej[:rf], k_write, scratch)
                            p = inbox[r].parent
                            sends[p].out -= 1
                            if ok:
                                sends[p].in_max = max(sends[p].in_max, at)
                            else:
                                sends[p].in_fail = min(sends[p].in_fail, at)
                            sends[p].in_left -= 1
                            if sends[p].in_left == 0:
                                if sends[p].in_fail < math.inf:
                                    sends[p].d_st = FAILED
                                    sends[p].d_fin = sends[p].in_fail
                                    sends[p].d_err = E_CASS
                                else:
                                    sends[p].d_st = OK
                                    sends[p].d_fin = sends[p].in_max
                    elif kind == RG:
                        reads[r].out -= 1
                        at = a if rejected else end
                        reads[r].rg_end = at
                        to_cassandra = False
                        if rejected:
                            if a < D:
                                async_errors[A_REDIS] += 1
                            if cass_on:
                                to_cassandra = True
                            else:
                                _finish_read(reads, r, False, a, E_REDIS)
                        else:
                            hit = uniform(key_hit, reads[r].gid, 0) < reads[r].hitp
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
                        if to_cassandra:  # as read_replicas()
                            gid = reads[r].gid
                            back = sample(hop, hop_values, key_fill_hop, gid, 0) if redis_on else math.inf
                            pos, off0 = reads[r].pos, reads[r].off
                            reads[r].cr_left = k_read
                            reads[r].cr_max = -math.inf
                            reads[r].cr_fail = math.inf
                            for q in range(k_read):
                                gt[gn] = at + sample(hop, hop_values, key_cr_hop, gid, q)
                                gst[gn] = node_base + replicas[pos, (off0 + q) % rf]
                                grow[gn], gslot[gn], gstage[gn] = r, q, CR
                                gsvc[gn] = sample(cass_read, cass_read_values, key_cr_svc, gid, q)
                                glb[gn] = gt[gn] + gsvc[gn] + back
                                gn += 1
                                reads[r].out += 1
                    elif kind == CR:
                        reads[r].out -= 1
                        if rejected:
                            reads[r].cr_fail = min(reads[r].cr_fail, a)
                        else:
                            reads[r].cr_max = max(reads[r].cr_max, end)
                        reads[r].cr_left -= 1
                        if reads[r].cr_left == 0:
                            if reads[r].cr_fail < math.inf:
                                _finish_read(reads, r, False, reads[r].cr_fail, E_CASS)
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
                        if rejected and a < D:
                            async_errors[A_FILL] += 1
                ptr[b] = i
            # drop the generated jobs this fleet processed
            m = 0
            for g in range(gn):
                if gstage[g] < 0:
                    continue
                gt[m], gst[m], grow[m], gslot[m] = gt[g], gst[g], grow[g], gslot[g]
                gstage[m], gsvc[m], glb[m] = gstage[g], gsvc[g], glb[g]
                m += 1
            gn = m
        h = h2
        if h2 >= t_end:
            pending = False
            for g in range(gn):
                if gt[g] < t_end:
                    pending = True
            if not pending:
                break
    done[perm] = done_sorted
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
