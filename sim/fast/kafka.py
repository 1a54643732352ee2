"""Kafka produce: the leader append, then RF-1 follower appends on other brokers, then the commit.

As sim/des/kafka.py: partition p is led by broker p mod B and followed by the next RF-1 brokers;
the producer is answered at once (acks=0), after the leader's append (acks=1) or at the commit
(acks=all), when every follower has appended. A rejected append fails the produce (at the first
rejection: for acks=all the earliest rejected follower's arrival) and no commit happens; under
acks 0/1 the producer has already been answered, and the record is lost.

Leaders and followers share the brokers, so the brokers advance in time slices (sim/fast/slices.py's
kernel):
a leader job's bound is its arrival plus its append time plus its shortest follower hop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from sim.arrays.rng import sample
from sim.arrays.station import D_AT, SERVED, Stations, cause, serve
from sim.fast.slices import close_slices, end_pass, fleet_pass, next_slice, open_slices, push
from sim.fast.tables import E_KAFKA, FAILED, KF, KL, OK, PENDING, T_KAFKA, TIMEOUT


class KafkaParams(NamedTuple):
    rf: np.int64
    acks: np.int64  # 0, 1, 2 = all
    required: bool  # kafka is in message_service.ack_after
    broker_base: np.int64
    brokers: np.int64
    hop: np.ndarray  # Dist params
    hop_values: np.ndarray
    append: np.ndarray
    append_values: np.ndarray
    key_hop: np.uint64  # follower hops, by send gid and follower number
    key_svc: np.uint64  # follower appends
    timeout_s: float  # the message_service->kafka policy's (inf: none)


@nb.njit(cache=True)
def follower_bound(P: KafkaParams, gid: np.int64, t: float, svc: float) -> float:
    """Earliest follower arrival a leader job arriving at t can cause (inf with RF 1)."""
    rf, hop, hop_values, key = P.rf, P.hop, P.hop_values, P.key_hop
    m = math.inf
    for i in range(1, rf):
        h = sample(hop, hop_values, key, gid, i)
        if h < m:
            m = h
    return t + svc + m


@nb.njit(cache=True)
def _answer(
    P: KafkaParams,
    sends: np.ndarray,
    r: np.int64,
    ok: bool,
    at: float,
    err: np.int64,
    D: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
) -> None:
    """The producer hears of its produce at `at`, or gives up at its timeout if that comes first."""
    limit = sends[r].store + P.timeout_s
    if at > limit:
        ok, at, err = False, limit, E_KAFKA + TIMEOUT
        timed_out[T_KAFKA] += 1
    sends[r].ka_st = OK if ok else FAILED
    sends[r].ka_t = at
    sends[r].ka_err = 0 if ok else err
    if not ok and not P.required and at < D:
        async_errors[err] += 1


@nb.njit(cache=True)
def _commit(
    P: KafkaParams,
    sends: np.ndarray,
    r: np.int64,
    at: float,
    D: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
) -> None:
    sends[r].commit = at
    if P.acks == 2:
        _answer(P, sends, r, True, at, 0, D, async_errors, timed_out)


@nb.njit(cache=True)
def _fail(
    P: KafkaParams,
    sends: np.ndarray,
    r: np.int64,
    at: float,
    err: np.int64,
    D: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
) -> None:
    if sends[r].ka_st != PENDING:
        return  # acks 0/1: answered already; the record is lost
    _answer(P, sends, r, False, at, err, D, async_errors, timed_out)


@nb.njit(cache=True)
def run_kafka(
    S: Stations,
    P: KafkaParams,
    sends: np.ndarray,
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
) -> tuple:
    """Process the brokers' arrivals before t_end. Returns (done mask of the given jobs, and the
    follower jobs generated but not yet arrived: t, st, row, slot, svc, and the slices taken)."""
    ints, floats, free, ring, win, waits, wait_stats, glob, counts = S
    rf, acks, brokers = P.rf, P.acks, P.brokers
    hop, hop_values, append, append_values, key_hop, key_svc = (
        P.hop,
        P.hop_values,
        P.append,
        P.append_values,
        P.key_hop,
        P.key_svc,
    )
    D = glob[D_AT]
    lo, hi = P.broker_base, P.broker_base + P.brokers
    n_leaders = 0
    for j in range(t.size):
        if stage[j] == KL:
            n_leaders += 1
    cap = n_leaders * max(P.rf - 1, 0) + 16
    C = open_slices(st, t, part, lb, ints.shape[0], cap, lo, hi, t_start, t_end)
    # the known jobs in (station, time) order, gathered once: the loops below read them in sequence
    perm = C.perm
    t, row, stage, svc = C.t, row[perm], stage[perm], svc[perm]
    gt, grow, gsvc = C.gt, C.grow, C.gsvc
    gn = 0
    while next_slice(C, gn):
        where, order = fleet_pass(C, KF, lo, brokers, gn)
        for n in range(order.size):
            b, j = where[n], order[n]
            if j >= 0:
                a, r, s, kind = t[j], row[j], svc[j], stage[j]
            else:
                g = -j - 1
                a, r, s, kind = gt[g], grow[g], gsvc[g], KF
            start, end = serve(ints, floats, free, ring, win, waits, wait_stats, glob, counts, b, a, s)
            counts[SERVED] += 1
            sends[r].out -= 1
            gid = sends[r].gid
            if kind == KL:
                if start < 0.0:
                    _fail(P, sends, r, end, E_KAFKA + cause(start), D, async_errors, timed_out)
                    continue
                if acks == 1:
                    _answer(P, sends, r, True, end, 0, D, async_errors, timed_out)
                if rf == 1:
                    _commit(P, sends, r, end, D, async_errors, timed_out)
                    continue
                sends[r].k_left = rf - 1
                sends[r].k_max = -math.inf
                sends[r].k_fail = math.inf
                for f in range(1, rf):
                    gn = push(
                        C,
                        gn,
                        end + sample(hop, hop_values, key_hop, gid, f),
                        lo + (sends[r].part + f) % brokers,
                        r,
                        f,
                        KF,
                        sample(append, append_values, key_svc, gid, f),
                        math.inf,
                    )
                    sends[r].out += 1
            else:
                if start < 0.0:
                    sends[r].k_fail = min(sends[r].k_fail, end)  # rejections only: no crash here
                else:
                    sends[r].k_max = max(sends[r].k_max, end)
                sends[r].k_left -= 1
                if sends[r].k_left == 0:
                    if sends[r].k_fail < math.inf:
                        _fail(P, sends, r, sends[r].k_fail, E_KAFKA, D, async_errors, timed_out)
                    else:
                        _commit(P, sends, r, sends[r].k_max, D, async_errors, timed_out)
        gn = end_pass(C, order, gn)
    done, slices, gt, gst, grow, gslot, _, gsvc, _ = close_slices(C, gn)
    return done, gt, gst, grow, gslot, gsvc, slices
