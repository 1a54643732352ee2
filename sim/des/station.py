"""A station: one instance of a component, a multi-server FIFO queue with an optional bound.

The request path runs on callbacks, not on a generator process per request (DESIGN.md: ~4x
faster, same results). A caller hands `submit` a service time and a continuation `(fn, ctx)`;
the station calls `fn(ctx, None)` when service completes, or `fn(ctx, "rejected")` at once when
its queue is full.

Timers on the request path are `_Wake` objects pushed straight onto SimPy's event queue: they
carry exactly what `Environment.step` reads (`callbacks`, `_ok`, `_value`) and nothing else, which
costs far less than a `simpy.Timeout` (an object with a `__dict__`, a type check and a method call
per event). They are processed by SimPy's own loop, in SimPy's (time, priority, id) order.

Each station integrates busy servers and jobs present over time (utilization and Little's law)
and counts the jobs that started service at once and those that queued first, with their summed
wait (P(wait) and the mean queue wait, the figures Erlang C predicts); its fleet keeps one
queue-wait histogram shared by all its instances.

Faults act on stations: `crash()` fails the queue at once and the work in service when it would
have finished (the caller sees "crashed"), and the station answers "unavailable" until
`recover()`; `slow` multiplies service times of jobs that start; `set_capacity(n)` takes servers
away (a GC pause is capacity 0 for its length) or gives them back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import numpy as np
import simpy

from sim.distributions import stream
from sim.histogram import Histogram

Done = Callable[[Any, str | None], None]
_NORMAL = 1  # simpy.events.NORMAL: the priority Timeout events get


class _Wake:
    """The minimum SimPy's `Environment.step` needs of an event: callbacks, _ok, _value."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable[[_Wake], None], value: Any) -> None:
        self._ok = True
        self._value = value
        self.callbacks = [callback]


def schedule(env: simpy.Environment, delay_s: float, callback: Callable[[Any], None], value: Any) -> None:
    """Call `callback(event)` with `event._value == value` after `delay_s` simulated seconds."""
    heappush(env._queue, (env._now + delay_s, _NORMAL, next(env._eid), _Wake(callback, value)))


class Station:
    __slots__ = (
        "_last",
        "arrivals",
        "at_once",
        "busy",
        "busy_area",
        "capacity",
        "completions",
        "down",
        "env",
        "epoch",
        "fleet",
        "index",
        "jobs_area",
        "queue",
        "queue_limit",
        "queued",
        "rejections",
        "servers",
        "slow",
        "wait_s",
        "zone",
    )

    def __init__(self, env: simpy.Environment, fleet: Fleet, index: int, servers: int,
                 queue_limit: int | None) -> None:
        self.env = env
        self.fleet = fleet
        self.index = index
        self.servers = servers
        self.capacity = servers  # servers usable now (fewer during a GC pause)
        self.queue_limit = queue_limit
        self.down = False
        self.epoch = 0  # bumped by a crash: work started before it is lost
        self.slow = 1.0
        self.zone = 0
        self.busy = 0
        self.queue: deque[tuple[float, float, Done, Any]] = deque()
        self._last = 0.0
        self.busy_area = 0.0
        self.jobs_area = 0.0
        self.arrivals = 0
        self.completions = 0
        self.rejections = 0
        self.at_once = 0  # jobs that started service on arrival
        self.queued = 0  # jobs that started service after queueing ...
        self.wait_s = 0.0  # ... and their summed queue wait

    def submit(self, service_s: float, fn: Done, ctx: Any) -> None:
        if self.down:
            fn(ctx, "unavailable")
            return
        env = self.env
        now = env._now
        busy = self.busy
        dt = now - self._last
        if dt > 0.0:
            self.busy_area += busy * dt
            self.jobs_area += (busy + len(self.queue)) * dt
            self._last = now
        self.arrivals += 1
        if busy < self.capacity:
            self.busy = busy + 1
            self.at_once += 1
            heappush(env._queue, (now + service_s * self.slow, _NORMAL, next(env._eid),
                                  _Wake(self._finish, (fn, ctx, self.epoch))))
        elif self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            self.rejections += 1
            fn(ctx, "rejected")
        else:
            self.queue.append((now, service_s, fn, ctx))

    def _finish(self, event: _Wake) -> None:
        fn, ctx, epoch = event._value
        if epoch != self.epoch:  # started before a crash: the work is lost
            fn(ctx, "crashed")
            return
        env = self.env
        now = env._now
        queue = self.queue
        dt = now - self._last
        if dt > 0.0:
            self.busy_area += self.busy * dt
            self.jobs_area += (self.busy + len(queue)) * dt
            self._last = now
        self.completions += 1
        if queue and self.busy <= self.capacity:
            arrived, service_s, nfn, nctx = queue.popleft()
            self._waited(now - arrived)
            heappush(env._queue, (now + service_s * self.slow, _NORMAL, next(env._eid),
                                  _Wake(self._finish, (nfn, nctx, self.epoch))))
        else:
            self.busy -= 1
        fn(ctx, None)

    # -- faults ------------------------------------------------------------------------------
    def crash(self) -> None:
        self._account(self.env._now)
        self.down = True
        self.epoch += 1
        self.busy = 0
        queued, self.queue = self.queue, deque()
        self.fleet.update_live()
        for _arrived, _service_s, fn, ctx in queued:
            fn(ctx, "crashed")

    def recover(self) -> None:
        self._account(self.env._now)
        self.down = False
        self.fleet.update_live()

    def set_capacity(self, servers: int) -> None:
        """Change the usable servers; queued work starts if servers were given back."""
        now = self.env._now
        self._account(now)
        self.capacity = servers
        while self.queue and self.busy < self.capacity and not self.down:
            arrived, service_s, fn, ctx = self.queue.popleft()
            self._waited(now - arrived)
            self.busy += 1
            schedule(self.env, service_s * self.slow, self._finish, (fn, ctx, self.epoch))

    def _waited(self, wait_s: float) -> None:
        """A queued job starts after `wait_s`."""
        self.queued += 1
        self.wait_s += wait_s
        self.fleet.waits.record(wait_s * 1e3)

    def _account(self, now: float) -> None:
        dt = now - self._last
        if dt > 0.0:
            self.busy_area += self.busy * dt
            self.jobs_area += (self.busy + len(self.queue)) * dt
            self._last = now

    def reset_stats(self) -> None:
        self._account(self.env._now)
        self.busy_area = self.jobs_area = 0.0
        self.arrivals = self.completions = self.rejections = 0
        self.at_once = self.queued = 0
        self.wait_s = 0.0

    def utilization(self, elapsed_s: float) -> float:
        self._account(self.env._now)
        return self.busy_area / (self.servers * elapsed_s) if elapsed_s > 0 else 0.0


class Fleet:
    """The instances of one component, a balancer over them, and their shared statistics."""

    def __init__(self, env: simpy.Environment, name: str, instances: int, servers: int,
                 queue_limit: int | None, balancer: str = "round_robin", seed: int = 0) -> None:
        self.name = name
        self.waits = Histogram()  # queue waits in ms of jobs that queued (its stations count the rest)
        self.stations = [Station(env, self, i, servers, queue_limit) for i in range(instances)]
        self.live = list(self.stations)
        self._next = 0
        self._random_index: Callable[[], int] | None = None
        if balancer == "random":
            rng = np.random.default_rng(seed)
            self._random_index = stream(lambda: rng.integers(0, instances, 4096).tolist())

    def pick(self) -> Station | None:
        """An instance for the next call (health-checked: never a crashed one); None if all are down."""
        if self._random_index is not None:
            st = self.stations[self._random_index()]
            if st.down:
                st = self.live[self._random_index() % len(self.live)] if self.live else None
            return st
        for _ in range(len(self.stations)):
            i = self._next
            self._next = (i + 1) % len(self.stations)
            if not self.stations[i].down:
                return self.stations[i]
        return None

    def update_live(self) -> None:
        self.live = [st for st in self.stations if not st.down]

    def wait_histogram(self) -> Histogram:
        """All queue waits (ms) since the last reset, the zero waits included."""
        hist = Histogram().merge(self.waits)
        hist.record_zeros(sum(st.at_once for st in self.stations))
        return hist

    def reset_stats(self) -> None:
        self.waits.reset()
        for st in self.stations:
            st.reset_stats()


def after(env: simpy.Environment, delay_s: float, fn: Done, ctx: Any) -> None:
    """Call fn(ctx, None) after `delay_s` (at once when the delay is zero)."""
    if delay_s <= 0.0:
        fn(ctx, None)
    else:
        heappush(env._queue, (env._now + delay_s, _NORMAL, next(env._eid), _Wake(_fire, (fn, ctx))))


def _fire(event: _Wake) -> None:
    fn, ctx = event._value
    fn(ctx, None)


def call(env: simpy.Environment, hop_s: float, station: Station, service_s: float, fn: Done,
         ctx: Any) -> None:
    """A network hop of `hop_s` then service at `station`; fn(ctx, error) when done.
    `station` None (a fleet with every instance down) answers "unavailable" at once."""
    if station is None:
        fn(ctx, "unavailable")
    elif hop_s <= 0.0:
        station.submit(service_s, fn, ctx)
    else:
        heappush(env._queue, (env._now + hop_s, _NORMAL, next(env._eid),
                              _Wake(_arrive, (station, service_s, fn, ctx))))


def _arrive(event: _Wake) -> None:
    station, service_s, fn, ctx = event._value
    station.submit(service_s, fn, ctx)
