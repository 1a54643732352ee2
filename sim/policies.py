"""Resilience policies per caller -> callee edge (the schema): timeouts, retries, breakers, hedging.

`policies:` maps an edge to a policy:

- `client->gateway`: the client's view of a whole request (timeout and retries of the request);
- `message_service->cassandra`, `message_service->redis`, `message_service->kafka`: storage calls;
- `group_service->cassandra`: fan-out inbox writes.

A retry waits `backoff_ms x multiplier^(attempt-2)` (with `jitter`: a uniform draw in [0, that]),
up to `max_attempts` attempts in all; `budget_ratio` caps retries at that fraction of first
attempts (a token bucket: each first attempt adds `budget_ratio` tokens, each retry takes one). A
breaker opens when, over the last `window_s`, at least `min_requests` calls saw an error rate of
`error_rate` or more; it fails calls at once (`breaker_open`) for `open_s`, then lets
`half_open_probes` calls through: all succeed -> closed, one fails -> open again. Hedged reads
(`hedge_after_ms`, Cassandra reads only) ask one more replica when the first ones have not answered
after that delay.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

EDGES = (
    "client->gateway",
    "message_service->cassandra",
    "message_service->redis",
    "message_service->kafka",
    "group_service->cassandra",
)  # the messaging sections' edges; a design's are `client` or a component, then a component


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retry(_Model):
    max_attempts: int = Field(3, ge=1, description="attempts in all, the first included")
    backoff_ms: float = Field(0.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    jitter: bool = True
    budget_ratio: float | None = Field(None, ge=0, le=1, description="retries per first attempt, at most")


class Breaker(_Model):
    error_rate: float = Field(0.5, gt=0, le=1)
    window_s: float = Field(5.0, gt=0)
    min_requests: int = Field(20, ge=1)
    open_s: float = Field(5.0, gt=0)
    half_open_probes: int = Field(5, ge=1)


class Policy(_Model):
    timeout_ms: float | None = Field(None, gt=0)
    retry: Retry | None = None
    breaker: Breaker | None = None
    hedge_after_ms: float | None = Field(None, gt=0, description="Cassandra reads: ask one more replica")
