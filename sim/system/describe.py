"""A system's flows as text: every flow's step tree in the words of the flow language.

`capsim flows SCENARIO` prints it for either form, so the messaging sections can be read as the
flows they compile to (sim/system/compile.messaging_system).
"""

from __future__ import annotations

from sim.system.model import CacheLookup, Call, FanOut, Flow, Parallel, Step, System

RELATIONS = {
    "conversation_members": "every member of the conversation but the sender (user key)",
    "user_conversations": "every conversation of the reader (conversation key)",
}
DRAWS = {
    "popular": "drawn by the space's popularity",
    "new": "a fresh key",
    "sender": "a conversation by its send rate, then its sending member",
    "conversation_reader": "a conversation by its read rate, then its reading member",
    "reader": "a user by activity (an inbox load)",
}


def describe(system: System) -> str:
    lines = [f"{system.name}: {len(system.components)} components, {len(system.flows)} flows"
             + (" (compiled from the messaging sections)" if system.preset == "messaging" else "")]
    lines.append("components:")
    for c in system.components.values():
        ops = f" ops: {', '.join(c.ops)}" if c.kind == "service" else ""
        lines.append(f"  {c.name}: {c.kind} x {c.instances:,}{ops}")
    for flow in system.flows.values():
        lines.append("")
        lines.extend(_flow(flow))
    return "\n".join(lines) + "\n"


def _flow(flow: Flow) -> list[str]:
    if flow.triggered:
        assert flow.consumer is not None
        start = (f"started by each record committed to {flow.source}; consumed by {flow.consumer.component}."
                 f"{flow.consumer.op} (max_in_flight {flow.consumer.max_in_flight})")
    else:
        start = f"{flow.rate_per_sec:,.0f} requests/s at full scale"
    out = [f"flow {flow.name}: {start}", f"  key: {flow.space}, {DRAWS[flow.draw]}"]
    out.extend(_steps(flow.steps, 1))
    return out


def _steps(steps: tuple[Step, ...], depth: int) -> list[str]:
    out: list[str] = []
    pad = "  " * depth
    for step in steps:
        if isinstance(step, Call):
            extra = f" at {step.consistency}" if step.consistency else ""
            key = f" by {step.key}" if step.key else ""
            out.append(f"{pad}- call {step.component}.{step.op}{extra}{key}")
        elif isinstance(step, Parallel):
            waited = [s.name for s, a in zip(step.steps, step.awaited, strict=True) if a]
            join = "all" if len(waited) == len(step.steps) == step.need else (
                f"{step.need} of {len(waited)}" if step.need < len(waited) else ", ".join(waited) or "none")
            out.append(f"{pad}- parallel, joined at {join}:")
            out.extend(_steps(step.steps, depth + 1))
        elif isinstance(step, FanOut):
            whom = RELATIONS.get(step.relation) or f"a group of {step.space} keys"
            if step.steps:
                out.append(f"{pad}- fan out over {whom}, all awaited:")
                out.extend(_steps(step.steps, depth + 1))
            else:
                out.append(f"{pad}- fan out over {whom}: nothing called per member (its cost is the "
                           "consumer's per-member time)")
        elif isinstance(step, CacheLookup):
            key = f" by {step.key}" if step.key else ""
            out.append(f"{pad}- cache lookup in {step.component}{key}; on a miss"
                       + (":" if step.miss else f" the step fails ({step.component}.{step.miss_error})"))
            out.extend(_steps(step.miss, depth + 1))
            if step.fill and step.miss:
                out.append(f"{pad}  then fill {step.component} (not awaited)")
        else:
            then = f", starting flow {step.then}" if step.then else ""
            out.append(f"{pad}- produce to {step.component}{then}")
    return out
