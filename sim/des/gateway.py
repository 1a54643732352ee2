"""API gateway: a fleet that authenticates each request, behind a per-user token bucket."""

from __future__ import annotations

from array import array
from typing import Any

import simpy

from sim.des.station import Done, Fleet, call
from sim.distributions import Draw
from sim.scenario import Gateway, RateLimit


class TokenBuckets:
    """One token bucket per user: `per_user_per_sec` refill, `burst` capacity, full at start."""

    def __init__(self, users: int, limit: RateLimit) -> None:
        self.rate = limit.per_user_per_sec
        self.burst = limit.burst
        self.tokens = array("d", [limit.burst]) * users
        self.updated = array("d", [0.0]) * users

    def allow(self, user: int, now: float) -> bool:
        tokens = self.tokens[user] + (now - self.updated[user]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.updated[user] = now
        if tokens >= 1.0:
            self.tokens[user] = tokens - 1.0
            return True
        self.tokens[user] = tokens
        return False


class GatewayFleet:
    def __init__(self, env: simpy.Environment, cfg: Gateway, instances: int, users: int,
                 hop_ms: Draw, service_ms: Draw, balancer_seed: int, name: str = "gateway") -> None:
        self.env = env
        self.fleet = Fleet(env, name, instances, cfg.workers, cfg.queue_limit, cfg.balancer,
                           balancer_seed)
        self.buckets = TokenBuckets(users, cfg.rate_limit) if cfg.rate_limit else None
        self.hop_ms = hop_ms
        self.service_ms = service_ms
        self.rate_limited = 0

    def admit(self, user: int, fn: Done, ctx: Any) -> None:
        """Rate-limit, then authenticate on one instance; fn(ctx, error) when done."""
        if self.buckets is not None and not self.buckets.allow(user, self.env._now):
            self.rate_limited += 1
            fn(ctx, "rate_limited")
            return
        call(self.env, self.hop_ms(), self.fleet.pick(), self.service_ms(), fn, ctx)
