"""The storage steps of a send and a read, and the Redis-Cassandra cycle that serves them.

A send leaving the message service writes Cassandra (its replicas, as a coordinator asks them),
appends to Redis and produces to Kafka (sim/fast/delivery.py serves the brokers); a read GETs
Redis, or reads Cassandra without a cache. The shards and nodes then advance together over the
chunk in time slices (sim/fast/storage.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.station import UNAVAILABLE, cause, down_mask
from sim.fast.flight import Flight
from sim.fast.kafka import KafkaParams, follower_bound
from sim.fast.storage import StorageParams, get_bounds, issue_read, run_storage
from sim.fast.system import System
from sim.fast.tables import (
    CR,
    CW,
    E_CASS,
    FAILED,
    KL,
    OK,
    PENDING,
    RG,
    RS,
    Jobs,
    add_at,
    concat_jobs,
    make_jobs,
    take_jobs,
)


@nb.njit(cache=True)
def _read_jobs(
    P: StorageParams, ints: np.ndarray, win: np.ndarray, reads: np.ndarray, rows: np.ndarray, at: np.ndarray
) -> tuple:
    """Cassandra read jobs of reads going to Cassandra at `at` (row-major, replica-minor); a read
    with too few live replicas fails at once (sim/fast/storage.py issue_read)."""
    cap = rows.size * P.k_read
    t, svc, lb = np.empty(cap), np.empty(cap), np.empty(cap)
    st, row = np.empty(cap, np.int64), np.empty(cap, np.int64)
    slot, stage = np.empty(cap, np.int64), np.empty(cap, np.int64)
    n = 0
    for i in range(rows.size):
        n = issue_read(P, ints, win, reads, rows[i], at[i], t, st, row, slot, stage, svc, lb, n)
    return t[:n], st[:n], row[:n], slot[:n], svc[:n], lb[:n]


@nb.njit(cache=True)
def _leader_bounds(P: KafkaParams, gid: np.ndarray, t: np.ndarray, svc: np.ndarray) -> np.ndarray:
    out = np.empty(gid.size)
    for n in range(gid.size):
        out[n] = follower_bound(P, gid[n], t[n], svc[n])
    return out


class Steps:
    """The storage steps of a run's sends and reads."""

    def __init__(self, system: System, flight: Flight) -> None:
        self.sys = system
        self.fl = flight

    def store(self, rows: np.ndarray, at: np.ndarray) -> None:
        """A send leaves the message service: Cassandra write, Redis append, Kafka produce."""
        s = self.fl.sends
        s["store"][rows] = at
        if rows.size == 0:
            return
        gid = s["gid"][rows]
        for step in ("cassandra", "redis", "kafka"):
            if step in self.sys.base:
                self.fl.edge_calls[f"message_service->{step}"] += rows.size
        if "cassandra" in self.sys.base:
            rf = self.sys.rf
            s["cw_left"][rows] = rf
            s["cw_st"][rows] = PENDING
            pos = s["pos"][rows]
            t = np.empty((rows.size, rf))
            svc = np.empty((rows.size, rf))
            st = np.empty((rows.size, rf), np.int64)
            for i in range(rf):
                t[:, i] = at + self.sys.draw_hop("cw.hop", gid, i)
                svc[:, i] = self.sys.draw("cw", "cw.svc", gid, i)
                st[:, i] = self.sys.base["cassandra"] + self.sys.ring.replicas[pos, i]
            slot = np.broadcast_to(np.arange(rf), (rows.size, rf))
            ask = self.coordinate(st, at)
            if ask is None:
                self.fl.incoming["storage"].append(
                    make_jobs(t.ravel(), st.ravel(), np.repeat(rows, rf), CW, svc.ravel(), slot.ravel())
                )
                add_at(s["out"], rows, rf)
            else:  # a crash: hints for down replicas, "unavailable" with fewer than k up
                n_ask = ask.sum(axis=1)
                bad = n_ask == 0
                s["cw_st"][rows[bad]] = FAILED
                s["cw_t"][rows[bad]] = at[bad]
                s["cw_err"][rows[bad]] = E_CASS + cause(UNAVAILABLE)
                if "cassandra" not in self.sys.required:
                    late = int((at[bad] < self.fl.horizon).sum())
                    self.fl.async_errors[E_CASS + cause(UNAVAILABLE)] += late
                s["cw_left"][rows] = n_ask
                flat = ask.ravel()
                self.fl.incoming["storage"].append(
                    make_jobs(
                        t.ravel()[flat], st.ravel()[flat], np.repeat(rows, rf)[flat], CW, svc.ravel()[flat],
                        slot.ravel()[flat],
                    )
                )
                s["out"][rows] += n_ask
        if "redis" in self.sys.base:
            s["rs_st"][rows] = PENDING
            t = at + self.sys.draw_hop("rs.hop", gid)
            st = self.sys.base["redis"] + s["shard"][rows]
            svc = self.sys.draw("redis", "rs.svc", gid)
            self.fl.incoming["storage"].append(make_jobs(t, st, rows, RS, svc))
            add_at(s["out"], rows, 1)
        if "kafka" in self.sys.base:
            if self.sys.kp.acks == 0:
                s["ka_st"][rows] = OK
                s["ka_t"][rows] = at
            else:
                s["ka_st"][rows] = PENDING
            t = at + self.sys.draw_hop("kl.hop", gid)
            svc = self.sys.draw("append", "kl.svc", gid)
            st = self.sys.base["kafka"] + s["part"][rows] % self.sys.count["kafka"]
            lb = _leader_bounds(self.sys.kp, gid, t, svc)
            self.fl.incoming["kafka"].append(make_jobs(t, st, rows, KL, svc, lb=lb))
            add_at(s["out"], rows, 1)

    def lookup(self, rows: np.ndarray, at: np.ndarray) -> None:
        """A read leaves the message service: Redis GET, or Cassandra, or done (no storage)."""
        r = self.fl.reads
        if rows.size == 0:
            return
        gid = r["gid"][rows]
        if "redis" in self.sys.base:
            t = at + self.sys.draw_hop("rg.hop", gid)
            st = self.sys.base["redis"] + r["shard"][rows]
            lb = get_bounds(self.sys.sp, r, rows, t)
            self.fl.incoming["storage"].append(
                make_jobs(t, st, rows, RG, self.sys.draw("redis", "rg.svc", gid), lb=lb)
            )
            add_at(r["out"], rows, 1)
        elif "cassandra" in self.sys.base:
            S = self.sys.stations
            t, st, row, slot, svc, lb = _read_jobs(self.sys.sp, S.ints, S.win, r, rows, at)
            self.fl.incoming["storage"].append(make_jobs(t, st, row, CR, svc, slot, lb))
        else:
            r["st"][rows] = OK
            r["fin"][rows] = at

    def coordinate(self, st: np.ndarray, at: np.ndarray) -> np.ndarray | None:
        """The replicas a Cassandra write coordinator asks, [writes, RF], for writes sent at `at` to
        the nodes `st`, as the DES's: the live ones (a down one gets a hint, not replayed here),
        none when fewer than k are live (the write is "unavailable" at once). None: no crash in
        the scenario, every replica is asked."""
        if not self.sys.cass_crashes:
            return None
        S = self.sys.stations
        rf = st.shape[1]
        live = ~down_mask(S.ints, S.win, st.ravel(), np.repeat(at, rf)).reshape(st.shape)
        enough = live.sum(axis=1) >= self.sys.sp.k_write
        self.fl.cass_faults["unavailable"] += int((~enough).sum())
        self.fl.cass_faults["hints_stored"] += int((~live[enough]).sum())
        return live & enough[:, None]

    def cycle(self, t0c: float, t1c: float) -> None:
        jobs, part = concat_jobs([self.fl.pending["storage"], *self.fl.incoming["storage"]])
        if not jobs.n:
            return
        done, gt, gst, grow, gslot, gstage, gsvc, glb, slices = run_storage(
            self.sys.stations,
            self.sys.sp,
            self.fl.sends,
            self.fl.reads,
            self.fl.inbox,
            *jobs,  # t, st, row, slot, stage, svc, lb
            part,
            t0c,
            t1c,
            self.fl.async_errors,
            self.fl.timed_out,
            self.fl.hits,
            self.fl.misses,
            self.fl.refilled,
        )
        self.fl.slices["storage"] += slices
        left = Jobs(gt, gst, grow, gslot, gstage, gsvc, glb)
        self.fl.pending["storage"], _ = concat_jobs([take_jobs(jobs, ~done), left])
