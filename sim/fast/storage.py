"""Redis and Cassandra together: appends, GETs and fills on the shards; writes, reads and inbox
writes on the nodes (the joins of the writes' replies: sim/fast/joins.py).

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
(sim/fast/slices.py's kernel): in each slice the shards go first (their misses become Cassandra reads
arriving later in the slice or after it), then the nodes. A GET's bound is its arrival plus the
slowest of its replicas' hop + service plus the fill's hop; a Cassandra read's is its arrival
plus its service plus the fill's hop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.arrays.rng import sample, uniform
from sim.arrays.station import D_AT, SERVED, UNAVAILABLE, W_AT, Stations, cause, is_down, last_recovery, serve
from sim.fast.joins import join_leaves
from sim.fast.slices import close_slices, end_pass, fleet_pass, next_slice, open_slices, push
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
    n_in = t.size
    leaf_start = np.empty(n_in)
    leaf_t = np.empty(n_in)
    n_gets = 0
    for j in range(n_in):
        if stage[j] == RG or stage[j] == CR:
            n_gets += 1
    cap = n_gets * (k_read + 1) + 16
    # the stations of both fleets (whatever their order in the index space)
    lo = min(shard_base if redis_on else n_st, node_base if cass_on else n_st)
    hi = max(shard_base + shards if redis_on else 0, node_base + nodes if cass_on else 0)
    C = open_slices(st, t, part, lb, n_st, cap, lo, hi, t_start, t_end)
    # the known jobs in (station, time) order, gathered once: the loops below read them in sequence
    perm = C.perm
    t, stage_s, svc = C.t, stage[perm], svc[perm]
    gt, gst, grow, gslot, gstage, gsvc, glb = C.gt, C.gst, C.grow, C.gslot, C.gstage, C.gsvc, C.glb
    gn = 0
    scratch = np.empty(max(rf, 1))
    while next_slice(C, gn):
        for fleet in range(2):
            if (fleet == 0 and not redis_on) or (fleet == 1 and not cass_on):
                continue
            base = shard_base if fleet == 0 else node_base
            count = shards if fleet == 0 else nodes
            where, order = fleet_pass(C, FILL if fleet == 0 else CR, base, count, gn)
            for n in range(order.size):
                b, j = where[n], order[n]
                if j >= 0:
                    a, s, kind = t[j], svc[j], stage_s[j]
                    r = -1  # read below for the reads' kinds only (a random access)
                else:
                    g = -j - 1
                    a, r, s, kind = gt[g], grow[g], gsvc[g], gstage[g]
                start, end = serve(ints, floats, free, ring, win, waits, wait_stats, glob, counts, b, a, s)
                counts[SERVED] += 1
                rejected = start < 0.0  # `end` is then when it failed (sim/arrays/station.py)
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
                                gn = push(
                                    C,
                                    gn,
                                    reads[r].cr_max + sample(hop, hop_values, key_fill_hop, gid, 0),
                                    shard_base + reads[r].shard,
                                    r,
                                    0,
                                    FILL,
                                    sample(redis_svc, redis_svc_values, key_fill_svc, gid, 0),
                                    math.inf,
                                )
                                reads[r].out += 1
                else:  # FILL
                    reads[r].out -= 1
                    if rejected and end < D:
                        async_errors[E_FILL + cause(start)] += 1
                    elif not rejected and redis_crashes:
                        refilled[reads[r].conv] = end
            gn = end_pass(C, order, gn)  # this fleet's served ones
    done, slices, gt, gst, grow, gslot, gstage, gsvc, glb = close_slices(C, gn)
    join_leaves(
        rf, P.k_write, timeouts_s, P.redis_required, P.cass_required, sends, inbox, done, row, slot, stage,
        leaf_start, leaf_t, D, async_errors, timed_out, scratch,
    )
    return done, gt, gst, grow, gslot, gstage, gsvc, glb, slices
