"""Delivery: Kafka's produce cycle, the consumers' gates and the group service's fan-out.

The brokers serve leader and follower appends in time slices (sim/fast/kafka.py); a committed
record reaches its partition's consumer, whose gate of `max_in_flight` slots lets it on to the
group service (the consumers' lag and backlog are measured there); with fan-out on write the
group service writes one inbox row per recipient to Cassandra (joined in sim/fast/joins.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.placement import member
from sim.arrays.rng import sample_each
from sim.arrays.station import UNAVAILABLE, cause
from sim.fast.consumers import backlog
from sim.fast.fleet import serve_fleet
from sim.fast.flight import Flight, failure_causes
from sim.fast.joins import fail_inbox
from sim.fast.kafka import run_kafka
from sim.fast.order import order_jobs
from sim.fast.steps import Steps
from sim.fast.system import System
from sim.fast.tables import (
    CI,
    E_CASS,
    E_GROUP,
    FAILED,
    GATE,
    GROUP,
    KF,
    NONE,
    OK,
    PENDING,
    add_at,
    add_rows,
    concat_jobs,
    make_jobs,
    take_jobs,
)


@nb.njit(cache=True)
def _inbox_jobs(
    sends: np.ndarray,
    rows: np.ndarray,
    g_end: np.ndarray,
    n_users: np.int64,
    user_pos: np.ndarray,
    replicas: np.ndarray,
    node_base: np.int64,
    rf: np.int64,
    hop: np.ndarray,
    hop_v: np.ndarray,
    svc: np.ndarray,
    svc_v: np.ndarray,
    key_hop: np.uint64,
    key_svc: np.uint64,
    salt: np.uint64,
) -> tuple:
    """Inbox rows (parent, gid, recipient) and their write jobs for deliveries leaving the group
    service: job q * rf + i is replica i of inbox row q, drawn at index (recipient * rf + i)."""
    total = 0
    for n in range(rows.size):
        total += sends[rows[n]].recips
    parent = np.empty(total, np.int64)
    gid = np.empty(total, np.int64)
    rec = np.empty(total, np.int64)
    user = np.empty(total, np.int64)
    q = 0
    for n in range(rows.size):
        r = rows[n]
        g = sends[r].gid
        conv = sends[r].conv
        sender = sends[r].slot
        for k in range(sends[r].recips):
            parent[q], gid[q], rec[q] = r, g, k
            user[q] = member(conv, k + (k >= sender), n_users, salt)  # every member but the sender
            q += 1
    jid = np.empty(total * rf, np.int64)
    jidx = np.empty(total * rf, np.int64)
    jst = np.empty(total * rf, np.int64)
    jrow = np.empty(total * rf, np.int64)
    jslot = np.empty(total * rf, np.int64)
    for q in range(total):
        pos = user_pos[user[q]]  # a cache miss; kept apart from the draws so that misses overlap
        for i in range(rf):
            x = q * rf + i
            jid[x], jidx[x], jrow[x], jslot[x] = gid[q], rec[q] * rf + i, q, i
            jst[x] = node_base + replicas[pos, i]
    jt = sample_each(hop, hop_v, key_hop, jid, jidx)
    x = 0
    for n in range(rows.size):
        for _ in range(sends[rows[n]].recips * rf):
            jt[x] += g_end[n]
            x += 1
    jsvc = sample_each(svc, svc_v, key_svc, jid, jidx)
    return parent, gid, rec, jt, jst, jrow, jslot, jsvc


class Delivery:
    """The delivery stages of a run and what they measure: the consumers' lag (max and per
    window), commits and takes per window, the partitions' backlog, slot-seconds held."""

    def __init__(self, system: System, flight: Flight, steps: Steps) -> None:
        self.sys = system
        self.fl = flight
        self.steps = steps
        n_win = flight.rec.n_windows + 2
        self.lag_win = np.zeros(n_win)
        self.commit_win = np.zeros(n_win, np.int64)
        self.take_win = np.zeros(n_win, np.int64)
        self.lag_max_s = 0.0
        self.lag_max_msgs = 0
        self.gate_waits = 0
        self.part_counts = np.zeros(system.partitions, np.int64)
        n_cons = system.count.get("consumer", 0)
        self.fifo = (np.zeros(0), np.zeros(0, np.int64), np.zeros(n_cons + 1, np.int64))
        self.slot_s = np.zeros(max(n_cons, 1))  # consumer slot-seconds held take -> delivery done

    def kafka(self, t0c: float, t1c: float) -> None:
        jobs, part = concat_jobs([self.fl.pending["kafka"], *self.fl.incoming["kafka"]])
        if not jobs.n:
            return
        before = self.fl.sends["commit"].copy() if self.sys.group_on else None
        done, gt, gst, grow, gslot, gsvc, slices = run_kafka(
            self.sys.stations,
            self.sys.kp,
            self.fl.sends,
            *jobs,  # t, st, row, slot, stage, svc, lb
            part,
            t0c,
            t1c,
            self.fl.async_errors,
            self.fl.timed_out,
        )
        self.fl.slices["kafka"] += slices
        left = make_jobs(gt, gst, grow, KF, gsvc, gslot)
        self.fl.pending["kafka"], _ = concat_jobs([take_jobs(jobs, ~done), left])
        if before is not None:
            s = self.fl.sends
            new = np.flatnonzero(np.isnan(before) & ~np.isnan(s["commit"]) & (s["d_st"] == NONE))
            if new.size:
                self._deliver(new)

    def _deliver(self, rows: np.ndarray) -> None:
        """Committed records reach their consumer's gate (the delivery starts at the commit)."""
        s = self.fl.sends
        commit = s["commit"][rows]
        s["d_st"][rows] = PENDING
        s["in_max"][rows] = -math.inf
        s["in_fail"][rows] = math.inf
        self.fl.rec.start("delivery", s["t0"][rows], commit)
        gid = s["gid"][rows]
        hop = self.sys.draw_hop("group.hop", gid)
        svc = (
            self.sys.draw("group", "group.svc", gid)
            + s["recips"][rows] * self.sys.scenario.group_service.per_recipient_ms * 1e-3
        )
        consumer = s["part"][rows] % self.sys.count["consumer"]
        self.fl.incoming["consumer"].append(
            make_jobs(commit, self.sys.base["consumer"] + consumer, rows, GATE, hop + svc)
        )
        add_at(s["out"], rows, 1)

    def consumers(self, t1c: float) -> None:
        jobs, start, _end, done = serve_fleet(self.sys.stations, self.fl, "consumer", t1c)
        if not jobs.n:
            return
        rows, commit, take = jobs.row[done], jobs.t[done], start[done]
        self.fl.gate_jobs += int(done.sum())
        s = self.fl.sends
        add_at(s["out"], rows, -1)
        s["take"][rows] = take
        lag = take - commit
        W, H = self.sys.scenario.warmup_s, self.fl.horizon
        self.gate_waits += int((lag > 0).sum())
        measured = (take >= W) & (take < H)
        if measured.any():
            self.lag_max_s = max(self.lag_max_s, float(lag[measured].max()))
        win = self._window(take)
        np.maximum.at(self.lag_win, win, lag)
        np.add.at(self.take_win, win, 1)
        np.add.at(self.commit_win, self._window(commit), 1)
        # backlog per partition at each append, consumer by consumer (gate order)
        sub = take_jobs(jobs, done)
        perm, off = order_jobs(
            sub.st, sub.t, np.zeros(sub.n, np.int64), np.int64(self.sys.stations.ints.shape[0])
        )
        best, ft, fp, fo = backlog(
            perm,
            off,
            np.int64(self.sys.base["consumer"]),
            np.int64(self.sys.base["consumer"] + self.sys.count["consumer"]),
            sub.t,
            take,
            s["part"][sub.row].astype(np.int64),
            self.part_counts,
            *self.fifo,
            W,
            H,
        )
        self.fifo = (ft, fp, fo)
        self.lag_max_msgs = max(self.lag_max_msgs, int(best))
        gid = s["gid"][rows]
        hop = self.sys.draw_hop("group.hop", gid)
        svc = (
            self.sys.draw("group", "group.svc", gid)
            + s["recips"][rows] * self.sys.scenario.group_service.per_recipient_ms * 1e-3
        )
        st = self.sys.base["group_service"] + (jobs.st[done] - self.sys.base["consumer"])
        self.fl.incoming["group_service"].append(make_jobs(take + hop, st, rows, GROUP, svc))
        add_at(s["out"], rows, 1)

    def _window(self, t: np.ndarray) -> np.ndarray:
        return 1 + np.minimum(np.floor(t / self.fl.rec.window_s).astype(np.int64), self.fl.rec.n_windows)

    def group(self, t1c: float) -> None:
        jobs, start, end, done = serve_fleet(self.sys.stations, self.fl, "group_service", t1c)
        if not jobs.n:
            return
        s = self.fl.sends
        rows, e = jobs.row[done], end[done]
        add_at(s["out"], rows, -1)
        code = start[done]
        rej = code < 0  # failed: `end` is when
        bad = rows[rej]
        s["d_st"][bad] = FAILED
        s["d_fin"][bad] = e[rej]
        s["d_err"][bad] = E_GROUP + failure_causes(code[rej])
        good, at = rows[~rej], e[~rej]
        s["g_end"][good] = at
        if self.sys.scenario.group_service.fan_out == "read" or good.size == 0:
            s["d_st"][good] = OK
            s["d_fin"][good] = at
            return
        d, rf = self.sys.dists["cw"], self.sys.rf
        parent, gid, rec, jt, jst, jrow, jslot, jsvc = _inbox_jobs(
            s,
            good,
            at,
            np.int64(self.sys.n_users),
            self.sys.user_pos,
            self.sys.ring.replicas,
            np.int64(self.sys.base["cassandra"]),
            np.int64(rf),
            self.sys.hop.params,
            self.sys.hop.values,
            d.params,
            d.values,
            self.sys.keys["ci.hop"],
            self.sys.keys["ci.svc"],
            self.sys.salts["members"],
        )
        start_row = self.fl.inbox.size
        self.fl.inbox = add_rows(self.fl.inbox, parent.size)
        rows_new = self.fl.inbox[start_row:]
        rows_new["parent"], rows_new["gid"], rows_new["r"], rows_new["left"] = parent, gid, rec, rf
        s["in_left"][good] = s["recips"][good]
        s["out"][good] += s["recips"][good]
        self.fl.edge_calls["group_service->cassandra"] += parent.size
        sent = s["g_end"][parent]
        ask = self.steps.coordinate(jst.reshape(-1, rf), sent)
        if ask is not None:  # a crash: hints for down replicas, "unavailable" with fewer than k up
            n_ask = ask.sum(axis=1)
            rows_new["left"] = n_ask
            bad = np.flatnonzero(n_ask == 0)
            fail_inbox(self.fl.inbox, s, bad + start_row, sent[bad], np.int64(E_CASS + cause(UNAVAILABLE)))
            flat = ask.ravel()
            jt, jst, jrow, jsvc, jslot = jt[flat], jst[flat], jrow[flat], jsvc[flat], jslot[flat]
        self.fl.incoming["storage"].append(make_jobs(jt, jst, jrow + start_row, CI, jsvc, jslot))
