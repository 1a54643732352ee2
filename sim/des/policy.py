"""Resilience policies at run time: timeouts, retries with backoff and budget, circuit breakers.

`Edge.call(issue, fn, ctx)` makes one logical call over a caller -> callee edge: `issue(reply,
token)` starts one attempt and must call `reply(token, error)` once. The edge answers
`fn(ctx, error)` exactly once: the first attempt to succeed, or the last failure when no retry is
left ("timeout", the callee's error, or "breaker_open"). Late replies of abandoned attempts are
dropped, as a client drops a connection it gave up on; the callee still does the work (that is
what makes retry storms expensive).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from sim.des.station import Done, schedule
from sim.distributions import uniforms
from sim.policies import Breaker, Policy

Issue = Callable[[Done, Any], None]


class CircuitBreaker:
    """Closed -> open on a high error rate over a sliding window -> half-open probes -> closed."""

    def __init__(self, env: simpy.Environment, cfg: Breaker) -> None:
        self.env = env
        self.cfg = cfg
        self.state = "closed"
        self.opened_at = 0.0
        self.outcomes: deque[tuple[float, bool]] = deque()  # (time, failed)
        self.failures = 0
        self.probes_left = 0
        self.probes_ok = 0
        self.opened = 0  # times it opened
        self.closed = 0  # times it closed again

    def allow(self) -> bool:
        now = self.env._now
        if self.state == "open":
            if now - self.opened_at < self.cfg.open_s:
                return False
            self.state = "half_open"
            self.probes_left = self.cfg.half_open_probes
            self.probes_ok = 0
        if self.state == "half_open":
            if self.probes_left == 0:
                return False
            self.probes_left -= 1
        return True

    def record(self, failed: bool) -> None:
        now = self.env._now
        if self.state == "half_open":
            if failed:
                self._open(now)
            else:
                self.probes_ok += 1
                if self.probes_ok >= self.cfg.half_open_probes:
                    self.state = "closed"
                    self.closed += 1
                    self.outcomes.clear()
                    self.failures = 0
            return
        if self.state == "open":
            return
        self.outcomes.append((now, failed))
        self.failures += failed
        horizon = now - self.cfg.window_s
        while self.outcomes and self.outcomes[0][0] < horizon:
            self.failures -= self.outcomes.popleft()[1]
        n = len(self.outcomes)
        if n >= self.cfg.min_requests and self.failures / n >= self.cfg.error_rate:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self.opened += 1
        self.outcomes.clear()
        self.failures = 0


class _Call:
    __slots__ = ("attempts", "ctx", "done", "fn", "issue", "live")

    def __init__(self, issue: Issue, fn: Done, ctx: Any) -> None:
        self.issue = issue
        self.fn = fn
        self.ctx = ctx
        self.attempts = 0  # attempts used, breaker rejections included
        self.live = 0  # the attempt whose reply is awaited (0: none)
        self.done = False


class Edge:
    def __init__(self, env: simpy.Environment, name: str, policy: Policy, rng: np.random.Generator) -> None:
        self.env = env
        self.name = name
        self.policy = policy
        self.timeout_s = policy.timeout_ms / 1e3 if policy.timeout_ms else None
        self.retry = policy.retry
        self.breaker = CircuitBreaker(env, policy.breaker) if policy.breaker else None
        self._jitter = uniforms(rng)
        self.budget = 0.0
        self.calls = 0
        self.retries = 0
        self.timeouts = 0
        self.budget_denied = 0
        self.breaker_rejected = 0

    def call(self, issue: Issue, fn: Done, ctx: Any) -> None:
        self.calls += 1
        if self.retry is not None and self.retry.budget_ratio is not None:
            self.budget += self.retry.budget_ratio
        self._attempt(_Call(issue, fn, ctx))

    def _attempt(self, c: _Call) -> None:
        c.attempts += 1
        if self.breaker is not None and not self.breaker.allow():
            self.breaker_rejected += 1
            self._failed(c, "breaker_open", attempted=False)
            return
        c.live = c.attempts
        token = (c, c.attempts)
        if self.timeout_s is not None:
            schedule(self.env, self.timeout_s, self._on_timeout, token)
        c.issue(self._reply, token)

    def _on_timeout(self, event: Any) -> None:
        c, attempt = event._value
        if attempt == c.live and not c.done:
            self.timeouts += 1
            self._failed(c, "timeout")

    def _reply(self, token: tuple[_Call, int], error: str | None) -> None:
        c, attempt = token
        if attempt != c.live or c.done:
            return  # an attempt the caller gave up on
        if error is None:
            if self.breaker is not None:
                self.breaker.record(False)
            c.done = True
            c.fn(c.ctx, None)
        else:
            self._failed(c, error)

    def _failed(self, c: _Call, error: str, attempted: bool = True) -> None:
        c.live = 0
        if attempted and self.breaker is not None:
            self.breaker.record(True)
        retry = self.retry
        if retry is not None and c.attempts < retry.max_attempts:
            if retry.budget_ratio is not None:
                if self.budget < 1.0:
                    self.budget_denied += 1
                    self._give_up(c, error)
                    return
                self.budget -= 1.0
            self.retries += 1
            delay = retry.backoff_ms / 1e3 * retry.multiplier ** (c.attempts - 1)
            if retry.jitter:
                delay *= self._jitter()
            schedule(self.env, delay, self._retry, c)
            return
        self._give_up(c, error)

    def _retry(self, event: Any) -> None:
        c = event._value
        if not c.done:
            self._attempt(c)

    def _give_up(self, c: _Call, error: str) -> None:
        c.done = True
        c.fn(c.ctx, error)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"calls": self.calls, "retries": self.retries, "timeouts": self.timeouts,
                               "retries_denied_by_budget": self.budget_denied}
        if self.breaker is not None:
            out["breaker"] = {"state": self.breaker.state, "opened": self.breaker.opened,
                              "closed": self.breaker.closed, "rejected": self.breaker_rejected}
        return out
