"""Requests entering the system: the send and read arrivals of a chunk, their rows (conversation,
sender, partition, shard, ring position), the gateway's token buckets, and their first hop.

Arrival times come from sim/fast/sources.py; each request's draws are counter-based random
numbers keyed by its purpose and its id (sim/arrays/rng.py), so a chunk's cut does not move them.
"""

from __future__ import annotations

import math

import numpy as np

from sim.arrays.placement import draw_members, partitions_of, shards_of
from sim.arrays.rng import uniform, uniform_many
from sim.fast.flight import Flight
from sim.fast.front import Front
from sim.fast.sources import arrivals, merge_order
from sim.fast.system import System
from sim.fast.tables import (
    E_RATE,
    FAILED,
    GW_READ,
    GW_SEND,
    add_at,
    add_rows,
    make_jobs,
)


class Requests:
    """The arrival streams of a run: where each stream's next arrival is, and the requests' rows."""

    def __init__(self, system: System, flight: Flight, front: Front) -> None:
        self.sys = system
        self.fl = flight
        self.front = front
        self._ranks: dict[str, np.ndarray | None] = {"send": None, "read": None}
        self._next = {"send": (0, math.nan), "read": (0, math.nan)}  # (next id, its arrival time)
        sc = system.scenario
        for op, rate, purpose in (
            ("send", system.cell.sends_per_sec, "send.gap"),
            ("read", system.cell.reads_per_sec, "read.gap"),
        ):
            if rate > 0:
                first = (
                    -math.log(float(uniform(system.keys[purpose], np.int64(0), np.int64(0)))) / rate
                    if sc.workload.arrivals == "poisson"
                    else 1.0 / rate
                )
                self._next[op] = (0, first)

    def arrive(self, t1c: float) -> None:
        sc = self.sys.scenario
        poisson = sc.workload.arrivals == "poisson"
        times = {}
        for op, rate in (("send", self.sys.cell.sends_per_sec), ("read", self.sys.cell.reads_per_sec)):
            gid0, t_next = self._next[op]
            if rate <= 0:
                times[op] = (np.zeros(0), np.zeros(0, np.int64))
                continue
            t, t_after = arrivals(self.sys.keys[f"{op}.gap"], np.int64(gid0), t_next, t1c, rate, poisson)
            gid = np.arange(gid0, gid0 + t.size, dtype=np.int64)
            self._next[op] = (gid0 + t.size, t_after)
            times[op] = (t, gid)
        (ts, gs), (tr, gr) = times["send"], times["read"]
        s_rows = self._new_sends(ts, gs)
        r_rows = self._new_reads(tr, gr)
        self.fl.rec.start("send", ts, ts)
        self.fl.rec.start("read", tr, tr)
        self.fl.edge_calls["client->gateway"] += ts.size + tr.size
        rank_s = rank_r = None
        if self.sys.buckets is not None or any(
            getattr(sc, f).balancer == "round_robin"
            for f in ("gateway", "message_service")
            if f in self.sys.base
        ):
            rank_s, rank_r = merge_order(ts, tr)
        self._ranks = {"send": rank_s, "read": rank_r}
        if "gateway" not in self.sys.base:
            self.front.after_gateway("send", s_rows, ts)
            self.front.after_gateway("read", r_rows, tr)
            return
        if self.sys.buckets is not None:
            order = np.empty(ts.size + tr.size, np.int64)
            who = np.empty(ts.size + tr.size, np.int64)
            assert rank_s is not None and rank_r is not None
            order[rank_s] = np.arange(ts.size)
            who[rank_s] = 0
            order[rank_r] = np.arange(tr.size)
            who[rank_r] = 1
            t_all = np.empty(ts.size + tr.size)
            t_all[rank_s] = ts
            t_all[rank_r] = tr
            u_all = np.empty(ts.size + tr.size, np.int64)
            u_all[rank_s] = self.fl.sends["user"][s_rows]
            u_all[rank_r] = self.fl.reads["user"][r_rows]
            allowed = self.sys.buckets.allow(t_all, u_all)
            ok_s = allowed[rank_s]
            ok_r = allowed[rank_r]
            # the rotation counts only admitted requests (the DES picks after the token bucket)
            admitted_rank = np.cumsum(allowed) - 1
            self._ranks = {"send": admitted_rank[rank_s], "read": admitted_rank[rank_r]}
            self.fl.rate_limited += int((~allowed).sum())
            for table, rows, ok, t in ((self.fl.sends, s_rows, ok_s, ts), (self.fl.reads, r_rows, ok_r, tr)):
                table["st"][rows[~ok]] = FAILED
                table["fin"][rows[~ok]] = t[~ok]
                table["err"][rows[~ok]] = E_RATE
        else:
            ok_s = np.ones(ts.size, bool)
            ok_r = np.ones(tr.size, bool)
        for op, table, rows, gids, ok, t, stage in (
            ("send", self.fl.sends, s_rows, gs, ok_s, ts, GW_SEND),
            ("read", self.fl.reads, r_rows, gr, ok_r, tr, GW_READ),
        ):
            rows, t, gid = rows[ok], t[ok], gids[ok]
            ranks = self._ranks[op][ok] if self._ranks[op] is not None else None
            st = self.front.pick("gateway", f"{op}.gw.pick", gid, ranks, t)
            jobs = make_jobs(
                t + self.sys.draw_hop(f"{op}.gw.hop", gid),
                st,
                rows,
                stage,
                self.sys.draw("gw", f"{op}.gw.svc", gid),
            )
            add_at(table["out"], rows, 1)
            self.fl.incoming["gateway"].append(jobs)
        self._advance_rr(int(ok_s.sum() + ok_r.sum()), fleet="gateway")

    def _advance_rr(self, n: int, fleet: str | None = None) -> None:
        for f in (fleet,) if fleet else ("gateway", "message_service"):
            if f in self.sys.count:
                self.fl.rr[f] = (self.fl.rr[f] + n) % self.sys.count[f]

    def _new_sends(self, t: np.ndarray, gid: np.ndarray) -> np.ndarray:
        n = t.size
        start = self.fl.sends.size
        self.fl.sends = add_rows(self.fl.sends, n)
        rows = self.fl.sends[start:]
        rows["gid"], rows["t0"] = gid, t
        conv = self.sys.send_pop.draw(uniform_many(self.sys.keys["send.conv"], gid, np.int64(0)))
        pop = self.sys.population
        rows["slot"], rows["user"] = draw_members(
            conv, gid, self.sys.keys["send.user"], self.sys.recipients, pop.send_member_weights,
            pop.send_member_max, np.int64(self.sys.n_users), self.sys.salts["members"])
        rows["conv"] = conv
        rows["recips"] = self.sys.recipients[conv]
        if "kafka" in self.sys.base:
            rows["part"] = partitions_of(conv, np.int64(self.sys.partitions), self.sys.salts["partition"])
        if "redis" in self.sys.base:
            rows["shard"] = shards_of(conv, np.int64(self.sys.count["redis"]), self.sys.salts["shard"])
        if self.sys.ring is not None:
            sy = self.sys
            rows["pos"] = sy.user_pos[rows["user"]] if sy.send_key_is_user else sy.conv_pos[conv]
        return np.arange(start, start + n, dtype=np.int64)

    def _new_reads(self, t: np.ndarray, gid: np.ndarray) -> np.ndarray:
        n = t.size
        start = self.fl.reads.size
        self.fl.reads = add_rows(self.fl.reads, n)
        rows = self.fl.reads[start:]
        rows["gid"], rows["t0"] = gid, t
        conv = self.sys.read_pop.draw(uniform_many(self.sys.keys["read.conv"], gid, np.int64(0)))
        pop = self.sys.population
        _, rows["user"] = draw_members(
            conv, gid, self.sys.keys["read.user"], self.sys.recipients, pop.read_member_weights,
            pop.read_member_max, np.int64(self.sys.n_users), self.sys.salts["members"])
        rows["conv"] = conv
        if "redis" in self.sys.base:
            rows["hitp"] = self.sys.hit_p[conv]
            rows["shard"] = shards_of(conv, np.int64(self.sys.count["redis"]), self.sys.salts["shard"])
        if self.sys.ring is not None:
            sy = self.sys
            rows["pos"] = sy.user_pos[rows["user"]] if sy.read_key_is_user else sy.conv_pos[conv]
            u = uniform_many(self.sys.keys["read.offset"], gid, np.int64(0))
            rows["off"] = np.minimum((u * self.sys.rf).astype(np.int64), self.sys.rf - 1)
        return np.arange(start, start + n, dtype=np.int64)
