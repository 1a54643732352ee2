"""The component kinds, one module each, and the registry the generic code iterates.

`kinds()` is the registry in fleet order (the order of `Scenario.fleets()`, cost rows and plans);
`kind(name)` looks one up. Adding a kind: write its module (a `ComponentKind` subclass, see
base.py), add it to `REGISTRY` below, and give the engines its station code.

A design's components are named by the design: `kind_for(component)` is the module's kind bound to
that name (`DESIGN_KINDS` maps a design's `kind:` to it), and `kinds_of(sc)` the kinds a scenario
iterates, in its fleet order (the registry, or the design's components as declared)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.components.base import ComponentKind, Node, count_text
from sim.components.cassandra import CASSANDRA
from sim.components.gateway import GATEWAY
from sim.components.kafka import KAFKA
from sim.components.redis import REDIS
from sim.components.service import GROUP_SERVICE, MESSAGE_SERVICE, SERVICE

if TYPE_CHECKING:
    from sim.scenario import Scenario
    from sim.system.model import Component

__all__ = ["DESIGN_KINDS", "REGISTRY", "ComponentKind", "Node", "count_text", "kind", "kind_for", "kinds",
           "kinds_of"]

REGISTRY: list[ComponentKind] = [GATEWAY, MESSAGE_SERVICE, GROUP_SERVICE, CASSANDRA, REDIS, KAFKA]


def kinds() -> tuple[ComponentKind, ...]:
    """Every registered kind, in fleet order."""
    return tuple(REGISTRY)


def kind(name: str) -> ComponentKind | None:
    return next((k for k in REGISTRY if k.name == name), None)


# a design component's `kind:` -> the kind that serves it (bound to the component's name)
DESIGN_KINDS: dict[str, ComponentKind] = {"gateway": GATEWAY, "service": SERVICE, "cassandra": CASSANDRA,
                                          "redis": REDIS, "kafka": KAFKA}


def kind_for(component: Component) -> ComponentKind:
    """The kind of a design's component, bound to its name: its section is sc.components[name]."""
    return DESIGN_KINDS[component.kind].bind(component.name)


def kinds_of(sc: Scenario) -> tuple[ComponentKind, ...]:
    """The kinds a scenario's fleets are: the registry, or a design's components in declared order."""
    if not sc.is_design:
        return kinds()
    return tuple(DESIGN_KINDS[spec.kind].bind(name) for name, spec in sc.components.items())
