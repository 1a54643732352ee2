"""The stateless services: the message service (every send and read) and the group service
(Kafka's consumer, fanning a message out), and a design's services (`SERVICE`, bound to each
component of `kind: service`). Sized on cpu and network, one instance at least."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.base import ComponentKind, Node

if TYPE_CHECKING:
    from sim.scenario import Scenario


@dataclass(frozen=True)
class MessageServiceKind(ComponentKind):
    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        ms = sc.message_service
        return (f"{ms.workers} workers, keyed by {ms.partition_key}",
                f"ack after {', '.join(ms.ack_after or []) or 'nothing'}")


@dataclass(frozen=True)
class GroupServiceKind(ComponentKind):
    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        gs = sc.group_service
        return (f"fan-out on {gs.fan_out}, {gs.workers} workers",)

    def diagram_node(self, sc: Scenario) -> Node | None:
        """Drawn only with Kafka enabled: Kafka is what calls it."""
        return super().diagram_node(sc) if sc.kafka.enabled else None


@dataclass(frozen=True)
class ServiceKind(ComponentKind):
    """A design's service: named operations, each with its service time."""

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        s = self.section(sc)
        return (f"{s.workers} workers, ops {', '.join(s.ops)}",)


MESSAGE_SERVICE = MessageServiceKind(name="message_service", label="Message service", diagram_rank=2,
                                     diagram_layer=2)
GROUP_SERVICE = GroupServiceKind(name="group_service", label="Group service", diagram_rank=6,
                                 diagram_layer=4)
SERVICE = ServiceKind(name="service", label="Service")
