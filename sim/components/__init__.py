"""The component kinds, one module each, and the registry the generic code iterates.

`kinds()` is the registry in fleet order (the order of `Scenario.fleets()`, cost rows and plans);
`kind(name)` looks one up. Adding a kind: write its module (a `ComponentKind` subclass, see
base.py), add it to `REGISTRY` below, and give the engines its station code."""

from __future__ import annotations

from sim.components.base import ComponentKind, Node, count_text
from sim.components.cassandra import CASSANDRA
from sim.components.gateway import GATEWAY
from sim.components.kafka import KAFKA
from sim.components.redis import REDIS
from sim.components.service import GROUP_SERVICE, MESSAGE_SERVICE

__all__ = ["REGISTRY", "ComponentKind", "Node", "count_text", "kind", "kinds"]

REGISTRY: list[ComponentKind] = [GATEWAY, MESSAGE_SERVICE, GROUP_SERVICE, CASSANDRA, REDIS, KAFKA]


def kinds() -> tuple[ComponentKind, ...]:
    """Every registered kind, in fleet order."""
    return tuple(REGISTRY)


def kind(name: str) -> ComponentKind | None:
    return next((k for k in REGISTRY if k.name == name), None)
