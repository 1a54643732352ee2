"""The gateway and message-service fleets: a send or read passes the gateway, then a message
service, then its storage steps (sim/fast/steps.py).

Each fleet is served feed-forward over a chunk (sim/fast/fleet.py). A rejected or crashed visit
fails the request there; a served one moves on. Instances are picked as the DES's balancers do:
at random, health-checked around a crash, or in one strict rotation (`round_robin`).
"""

from __future__ import annotations

import numpy as np

from sim.arrays.rng import uniform_many
from sim.arrays.station import down_mask
from sim.fast.fleet import serve_fleet
from sim.fast.flight import Flight, failure_causes
from sim.fast.steps import Steps
from sim.fast.system import System
from sim.fast.tables import (
    E_GW,
    E_MS,
    FAILED,
    GW_READ,
    GW_SEND,
    MS_READ,
    MS_SEND,
    add_at,
    make_jobs,
)


class Front:
    """The gateway and message service of a run."""

    def __init__(self, system: System, flight: Flight, steps: Steps) -> None:
        self.sys = system
        self.fl = flight
        self.steps = steps

    def serve(self, fleet: str, t1c: float) -> None:
        jobs, start, end, done = serve_fleet(self.sys.stations, self.fl, fleet, t1c)
        if not jobs.n:
            return
        gw = fleet == "gateway"
        for table, stage, op in (
            (self.fl.sends, GW_SEND if gw else MS_SEND, "send"),
            (self.fl.reads, GW_READ if gw else MS_READ, "read"),
        ):
            sel = done & (jobs.stage == stage)
            rows, e = jobs.row[sel], end[sel]
            add_at(table["out"], rows, -1)
            code = start[sel]
            rej = code < 0  # failed: `end` is when (sim/arrays/station.py)
            bad = rows[rej]
            table["st"][bad] = FAILED
            table["fin"][bad] = e[rej]
            table["err"][bad] = (E_GW if gw else E_MS) + failure_causes(code[rej])
            good, at = rows[~rej], e[~rej]
            table["gw_end" if gw else "ms_end"][good] = at
            if gw:
                self.after_gateway(op, good, at)
            elif op == "send":
                self.steps.store(good, at)
            else:
                self.steps.lookup(good, at)

    def after_gateway(self, op: str, rows: np.ndarray, at: np.ndarray) -> None:
        table = self.fl.sends if op == "send" else self.fl.reads
        if "message_service" not in self.sys.base:
            if op == "send":
                self.steps.store(rows, at)
            else:
                self.steps.lookup(rows, at)
            return
        gid = table["gid"][rows]
        ranks = None
        if self.sys.scenario.message_service.balancer == "round_robin":
            # a strict rotation in order of arrival at the system (the DES: of leaving the gateway)
            ranks = np.argsort(np.argsort(table["t0"][rows], kind="stable"), kind="stable")
            ranks = (ranks + self.fl.rr["message_service"]) % self.sys.count["message_service"]
            self.fl.rr["message_service"] = (self.fl.rr["message_service"] + rows.size) % self.sys.count[
                "message_service"
            ]
            st = self.sys.base["message_service"] + ranks
        else:
            st = self.pick("message_service", f"{op}.ms.pick", gid, None, at)
        stage = MS_SEND if op == "send" else MS_READ
        svc = self.sys.draw(f"ms.{op}", f"{op}.ms.svc", gid)
        self.fl.incoming["message_service"].append(
            make_jobs(at + self.sys.draw_hop(f"{op}.ms.hop", gid), st, rows, stage, svc)
        )
        add_at(table["out"], rows, 1)

    def pick(
        self, fleet: str, purpose: str, gid: np.ndarray, ranks: np.ndarray | None, t: np.ndarray
    ) -> np.ndarray:
        """Instance of each request picked at `t`: random (u), or a strict rotation over `ranks`
        (arrival order). Health-checked as the DES's Fleet.pick: a random pick of a crashed
        instance is drawn again until it is a live one (uniform over the live instances), up to
        64 times (then all are down: the call finds it "unavailable")."""
        n = self.sys.count[fleet]
        section = getattr(self.sys.scenario, fleet)
        if section.balancer == "round_robin" and ranks is not None:
            picks = (self.fl.rr[fleet] + ranks) % n
            return self.sys.base[fleet] + picks
        u = uniform_many(self.sys.keys[purpose], gid, np.int64(0))
        st = self.sys.base[fleet] + np.minimum((u * n).astype(np.int64), n - 1)
        if fleet in self.sys.crashed:
            S = self.sys.stations
            down = np.flatnonzero(down_mask(S.ints, S.win, st, t))
            for j in range(1, 65):
                if down.size == 0:
                    break
                u = uniform_many(self.sys.keys[purpose], gid[down], np.int64(j))
                st[down] = self.sys.base[fleet] + np.minimum((u * n).astype(np.int64), n - 1)
                down = down[down_mask(S.ints, S.win, st[down], t[down])]
        return st
