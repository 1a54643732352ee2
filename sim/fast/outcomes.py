"""Outcomes: a send is acknowledged when its `ack_after` steps have answered; finished requests
are recorded (with the client's deadline applied) and their rows compacted away.
"""

from __future__ import annotations

import math

import numpy as np

from sim.arrays.record import Marks
from sim.arrays.station import UNAVAILABLE, cause
from sim.fast.delivery import Delivery
from sim.fast.flight import Flight
from sim.fast.system import STEP_NAMES, System
from sim.fast.tables import (
    E_CASS,
    E_TIMEOUT,
    ERRORS,
    FAILED,
    NONE,
    OK,
    keep_rows,
    remap_jobs,
)


class Outcomes:
    """Acknowledgements, recording and compaction at the end of each chunk."""

    def __init__(self, system: System, flight: Flight, delivery: Delivery) -> None:
        self.sys = system
        self.fl = flight
        self.delivery = delivery

    def acks(self) -> None:
        """Sends whose ack steps have all answered: done at the last success or the first failure."""
        s = self.fl.sends
        cand = np.flatnonzero((s["st"] == NONE) & ~np.isnan(s["store"]))
        if cand.size == 0:
            return
        steps = [(c, f"{p}_st", f"{p}_t", f"{p}_err") for c, p in ((1, "cw"), (2, "rs"), (3, "ka"))]
        required = self.sys.required
        need = [(code, st_f, t_f, err) for code, st_f, t_f, err in steps if STEP_NAMES[code] in required]
        ready = np.ones(cand.size, bool)
        for _, st_f, _, _ in need:
            st = s[st_f][cand]
            ready &= (st == OK) | (st == FAILED)
        rows = cand[ready]
        if rows.size == 0:
            return
        fail_t = np.full(rows.size, math.inf)
        fail_e = np.zeros(rows.size, np.int8)
        ok_t = s["store"][rows].copy()
        last = np.zeros(rows.size, np.int8)
        for code, st_f, t_f, err in need:
            st, t = s[st_f][rows], s[t_f][rows]
            failed = (st == FAILED) & (t < fail_t)
            fail_t[failed] = t[failed]
            fail_e[failed] = s[err][rows][failed]
            later = (st == OK) & (t >= ok_t)
            ok_t[later] = t[later]
            last[later] = code
        failed = fail_t < math.inf
        s["st"][rows] = np.where(failed, FAILED, OK)
        s["fin"][rows] = np.where(failed, fail_t, ok_t)
        s["err"][rows] = np.where(failed, fail_e, 0)
        s["last"][rows] = np.where(failed, 0, last)

    def record(self) -> None:
        s, r = self.fl.sends, self.fl.reads
        # sends
        rows = np.flatnonzero(((s["st"] == OK) | (s["st"] == FAILED)) & ((s["rec"] & 1) == 0))
        if rows.size:
            t0, last = s["t0"][rows], s["last"][rows]
            fin, ok, err = self._client_deadline(t0, s["fin"][rows], s["st"][rows] == OK, s["err"][rows])
            marks = [("gateway", s["gw_end"][rows]), ("message_service", s["ms_end"][rows])]
            marks += [(STEP_NAMES[c], np.where(last == c, fin, np.nan)) for c in (1, 2, 3)]
            self.fl.rec.finish("send", t0, t0, fin, ok, err, ERRORS, Marks(marks))
            s["rec"][rows] |= 1
        # deliveries
        rows = np.flatnonzero(((s["d_st"] == OK) | (s["d_st"] == FAILED)) & ((s["rec"] & 2) == 0))
        if rows.size:
            ok = s["d_st"][rows] == OK
            marks = [
                ("send_and_produce", s["commit"][rows]),
                ("kafka_consumer_lag", s["take"][rows]),
                ("group_service", s["g_end"][rows]),
            ]
            if self.sys.scenario.group_service.fan_out == "write":
                marks.append(("cassandra", np.where(ok, s["in_max"][rows], np.nan)))
            self.fl.rec.finish(
                "delivery",
                s["t0"][rows],
                s["commit"][rows],
                s["d_fin"][rows],
                ok,
                s["d_err"][rows],
                ERRORS,
                Marks(marks),
            )
            # how long each delivery held its consumer's slot in the DES's terms (take -> done)
            take, fin = s["take"][rows], s["d_fin"][rows]
            lo, hi = np.maximum(take, self.sys.scenario.warmup_s), np.minimum(fin, self.fl.horizon)
            held = np.where(np.isnan(take), 0.0, np.clip(hi - lo, 0.0, None))
            np.add.at(self.delivery.slot_s, s["part"][rows] % self.sys.count["consumer"], held)
            s["rec"][rows] |= 2
        # reads
        rows = np.flatnonzero(((r["st"] == OK) | (r["st"] == FAILED)) & (r["rec"] == 0))
        if rows.size:
            t0 = r["t0"][rows]
            fin, ok, err = self._client_deadline(t0, r["fin"][rows], r["st"][rows] == OK, r["err"][rows])
            via_cass = ok & ~np.isnan(r["cr_max"][rows]) & (r["cr_max"][rows] > -math.inf)
            marks = [
                ("gateway", r["gw_end"][rows]),
                ("message_service", r["ms_end"][rows]),
                ("redis", r["rg_end"][rows]),
                ("cassandra", np.where(via_cass, fin, np.nan)),
            ]
            sent = r["cr_at"][rows]
            self.fl.edge_calls["message_service->cassandra"] += int((~np.isnan(sent)).sum())
            at_once = (err == E_CASS + cause(UNAVAILABLE)) & (fin == sent)  # the coordinator's answer
            self.fl.cass_faults["unavailable"] += int(at_once.sum())
            self.fl.rec.finish("read", t0, t0, fin, ok, err, ERRORS, Marks(marks))
            r["rec"][rows] = 1

    def _client_deadline(
        self, t0: np.ndarray, fin: np.ndarray, ok: np.ndarray, err: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Outcomes as the client sees them: with a client->gateway timeout, a request not answered
        by t0 + timeout fails then ("timeout"; its work goes on, as in the DES)."""
        limit = t0 + self.sys.timeout_s("client->gateway")
        late = fin > limit
        if not late.any():
            return fin, ok, err
        self.fl.client_timeouts += int(late.sum())
        return np.where(late, limit, fin), ok & ~late, np.where(late, E_TIMEOUT, err)

    def compact(self) -> None:
        s, r, ib = self.fl.sends, self.fl.reads, self.fl.inbox
        keep_s = s["out"] > 0
        keep_r = r["out"] > 0
        keep_i = ib["left"] > 0
        if keep_s.all() and keep_r.all() and keep_i.all():
            return
        smap = np.cumsum(keep_s) - 1
        smap[~keep_s] = -1
        rmap = np.cumsum(keep_r) - 1
        rmap[~keep_r] = -1
        imap = np.cumsum(keep_i) - 1
        imap[~keep_i] = -1
        self.fl.sends = keep_rows(s, keep_s)
        self.fl.reads = keep_rows(r, keep_r)
        self.fl.inbox = keep_rows(ib, keep_i)
        if self.fl.inbox.size:
            parent = smap[self.fl.inbox["parent"]]
            if (parent < 0).any():
                raise RuntimeError("an inbox write outlived its delivery")
            self.fl.inbox["parent"] = parent
        for name, jobs in self.fl.pending.items():
            if jobs.n:
                self.fl.pending[name] = remap_jobs(jobs, smap, rmap, imap)
