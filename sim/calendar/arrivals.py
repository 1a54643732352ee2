"""A client flow's arrivals for the calendar engine: Poisson (or evenly spaced) times drawn ahead
in blocks of a fixed size, so they do not depend on the chunk length; load spikes as a change of
time; and each request's keys (a design's by its space's popularity, the messaging preset's from
its member-based population: a conversation and one of its members, or a reader); and a chunk's
requests of every flow together, in time order (`draw_chunk`, which the engine runs on its helper
thread)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arrays.load import Load
from sim.arrays.placement import Popularity, draw_members
from sim.calendar.program import Program

ARRIVAL_BLOCK = 4096  # interarrival gaps drawn at a time, per flow


class Source:
    """One client flow's arrivals: a Poisson stream (or evenly spaced, for the messaging preset's
    `arrivals: deterministic`) drawn ahead in blocks of a fixed size and continued across chunks,
    so the times do not depend on the chunk length; and its requests' keys."""

    def __init__(self, flow: int, name: str, rate: float, draw: str, n_keys: int, cdf: np.ndarray,
                 arrivals: np.random.Generator, keys: np.random.Generator, member_key: np.uint64,
                 deterministic: bool, load: Load) -> None:
        self.flow, self.name, self.rate, self.draw = flow, name, rate, draw
        self.n_keys = n_keys
        self.popular = Popularity(cdf=cdf) if draw == "popular" else None  # cdf[i] > u by a guide table
        self.arrivals, self.key_rng, self.member_key = arrivals, keys, member_key
        self.deterministic = deterministic
        self.load = load
        self.drawn = 0  # requests drawn so far (the members' draws are numbered by it)
        first = 1.0 / rate if deterministic else float(arrivals.exponential(1.0 / rate))
        self.pending = np.array([first])

    def until(self, t1: float) -> np.ndarray:
        buf = self.pending  # in load time
        s1 = self.load.to_load(t1)
        while buf[-1] < s1:  # blocks of a fixed size: the same sums wherever chunks end
            if self.deterministic:
                k = np.arange(1, ARRIVAL_BLOCK + 1) + round(buf[-1] * self.rate)
                more = k / self.rate
            else:
                more = buf[-1] + np.cumsum(self.arrivals.exponential(1.0 / self.rate, ARRIVAL_BLOCK))
            buf = np.concatenate([buf, more])
        cut = int(np.searchsorted(buf, s1, side="left"))
        self.pending = buf[cut:]
        return self.load.to_time(buf[:cut])

    def keys(self, n: int, prog: Program) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(key, user, member slot) of the next n requests: a design's key by its space's popularity
        (or a fresh one); the messaging preset's conversation by its send or read rate, then its
        sender or reader among the members, or under fan-out on read a reader by activity
        (sim/workload.py's population)."""
        zeros = np.zeros(n, np.int64)
        if self.draw == "new":
            return self.key_rng.integers(0, self.n_keys, n).astype(np.int64), zeros, zeros
        if self.popular is not None:
            k = self.popular.draw(self.key_rng.random(n))
            return np.minimum(k, self.n_keys - 1), zeros, zeros
        if self.draw == "reader":  # the user is the key: the read flow's space is "user"
            user = prog.popularity["reader"].draw(self.key_rng.random(n))
            return user, user, zeros
        pop = prog.population
        assert pop is not None
        conv = prog.popularity[self.draw].draw(self.key_rng.random(n))
        sending = self.draw == "sender"
        gid = np.arange(self.drawn, self.drawn + n, dtype=np.int64)
        self.drawn += n
        slot, user = draw_members(
            conv, gid, self.member_key, prog.recipients,
            pop.send_member_weights if sending else pop.read_member_weights,
            pop.send_member_max if sending else pop.read_member_max, np.int64(prog.n_users), prog.member_salt)
        return conv.astype(np.int64), user.astype(np.int64), slot.astype(np.int64)


@dataclass(frozen=True)
class Chunk:
    """A chunk's client requests of every flow, in time order, and each flow's start times."""

    t: np.ndarray
    flow: np.ndarray
    key: np.ndarray
    new: np.ndarray
    user: np.ndarray
    slot: np.ndarray
    started: list[tuple[str, np.ndarray]]


def draw_chunk(sources: list[Source], t1: float, prog: Program) -> Chunk:
    """Each client flow's arrivals before t1, with their keys (sources continue where they stopped)."""
    parts: list[tuple[np.ndarray, ...]] = []
    started: list[tuple[str, np.ndarray]] = []
    for src in sources:
        t = src.until(t1)
        if not t.size:
            continue
        key, user, slot = src.keys(t.size, prog)
        new = np.full(t.size, int(src.draw == "new"), np.int64)
        parts.append((t, np.full(t.size, src.flow, np.int64), key, new, user, slot))
        started.append((src.name, t))
    if not parts:
        empty = np.empty(0, np.int64)
        return Chunk(np.empty(0), empty, empty, empty, empty, empty, started)
    t, flow, key, new, user, slot = (np.concatenate(cols) for cols in zip(*parts, strict=True))
    order = np.argsort(t, kind="stable")
    return Chunk(t[order], flow[order], key[order], new[order], user[order], slot[order], started)
