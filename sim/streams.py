"""Named random streams of a run, spawned from the scenario's seed.

Both engines build the system's structure (group sizes, the token ring, the balancers' seeds)
from these streams with the same code, so for a seed they simulate the same system and differ
only in their sample paths. Append new purposes at the end: existing streams (and with them
common random numbers across runs) stay put.
"""

from __future__ import annotations

import numpy as np

STREAMS = (
    "send_arrivals", "read_arrivals", "senders", "readers", "send_conversations",
    "read_conversations", "conversations", "network", "gateway", "message_service",
    "group_service", "cassandra", "redis", "kafka", "balancer", "policies",
)  # fmt: skip


def stream_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One generator per purpose, spawned from SeedSequence(seed) in the order of STREAMS."""
    seqs = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs, strict=True)}


def named_rng(seed: int, *names: str) -> np.random.Generator:
    """A stream for a design's named purpose (a component, a flow's arrivals): the same names give
    the same stream for a seed, whatever else the design declares."""
    import zlib

    key = tuple(zlib.crc32(n.encode()) for n in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(STREAMS) + 1, *key)))
