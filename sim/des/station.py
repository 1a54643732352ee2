"""A station: one instance of a component, a multi-server FIFO queue with an optional bound.

The request path runs on callbacks attached to SimPy Timeout events rather than on a generator
process per request (DESIGN.md: ~4x faster, same results). A caller hands `submit` a service
time and a continuation `(fn, ctx)`; the station calls `fn(ctx, None)` when service completes or
`fn(ctx, "rejected")` at once when its queue is full.

Each station integrates busy servers and jobs present over time (for utilization and Little's
law); its fleet keeps one queue-wait histogram shared by all its instances.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import Timeout

from sim.histogram import Histogram

Done = Callable[[Any, str | None], None]


class Station:
    __slots__ = (
        "_last",
        "arrivals",
        "busy",
        "busy_area",
        "completions",
        "env",
        "fleet",
        "index",
        "jobs_area",
        "queue",
        "queue_limit",
        "rejections",
        "servers",
    )

    def __init__(self, env: simpy.Environment, fleet: Fleet, index: int, servers: int,
                 queue_limit: int | None) -> None:
        self.env = env
        self.fleet = fleet
        self.index = index
        self.servers = servers
        self.queue_limit = queue_limit
        self.busy = 0
        self.queue: deque[tuple[float, float, Done, Any]] = deque()
        self._last = 0.0
        self.busy_area = 0.0
        self.jobs_area = 0.0
        self.arrivals = 0
        self.completions = 0
        self.rejections = 0

    def _account(self, now: float) -> None:
        dt = now - self._last
        if dt > 0.0:
            self.busy_area += self.busy * dt
            self.jobs_area += (self.busy + len(self.queue)) * dt
            self._last = now

    def submit(self, service_s: float, fn: Done, ctx: Any) -> None:
        env = self.env
        now = env._now
        self._account(now)
        self.arrivals += 1
        if self.busy < self.servers:
            self.busy += 1
            self.fleet.waits.record(0.0)
            Timeout(env, service_s, (fn, ctx)).callbacks.append(self._finish)
        elif self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            self.rejections += 1
            fn(ctx, "rejected")
        else:
            self.queue.append((now, service_s, fn, ctx))

    def _finish(self, event: Timeout) -> None:
        now = self.env._now
        self._account(now)
        self.completions += 1
        if self.queue:
            arrived, service_s, nfn, nctx = self.queue.popleft()
            self.fleet.waits.record((now - arrived) * 1e3)
            Timeout(self.env, service_s, (nfn, nctx)).callbacks.append(self._finish)
        else:
            self.busy -= 1
        fn, ctx = event._value
        fn(ctx, None)

    def reset_stats(self) -> None:
        self._account(self.env._now)
        self.busy_area = self.jobs_area = 0.0
        self.arrivals = self.completions = self.rejections = 0

    def utilization(self, elapsed_s: float) -> float:
        self._account(self.env._now)
        return self.busy_area / (self.servers * elapsed_s) if elapsed_s > 0 else 0.0


class Fleet:
    """The instances of one component, a balancer over them, and their shared statistics."""

    def __init__(self, env: simpy.Environment, name: str, instances: int, servers: int,
                 queue_limit: int | None, balancer: str = "round_robin", seed: int = 0) -> None:
        self.name = name
        self.waits = Histogram()
        self.stations = [Station(env, self, i, servers, queue_limit) for i in range(instances)]
        self._next = 0
        self._random = random.Random(seed) if balancer == "random" else None

    def pick(self) -> Station:
        if self._random is not None:
            return self.stations[self._random.randrange(len(self.stations))]
        i = self._next
        self._next = (i + 1) % len(self.stations)
        return self.stations[i]

    def reset_stats(self) -> None:
        self.waits.reset()
        for st in self.stations:
            st.reset_stats()


def after(env: simpy.Environment, delay_s: float, fn: Done, ctx: Any) -> None:
    """Call fn(ctx, None) after `delay_s` (at once when the delay is zero)."""
    if delay_s <= 0.0:
        fn(ctx, None)
    else:
        Timeout(env, delay_s, (fn, ctx)).callbacks.append(_fire)


def _fire(event: Timeout) -> None:
    fn, ctx = event._value
    fn(ctx, None)


def call(env: simpy.Environment, hop_s: float, station: Station, service_s: float, fn: Done,
         ctx: Any) -> None:
    """A network hop of `hop_s` then service at `station`; fn(ctx, error) when done."""
    if hop_s <= 0.0:
        station.submit(service_s, fn, ctx)
    else:
        Timeout(env, hop_s, (station, service_s, fn, ctx)).callbacks.append(_arrive)


def _arrive(event: Timeout) -> None:
    station, service_s, fn, ctx = event._value
    station.submit(service_s, fn, ctx)
