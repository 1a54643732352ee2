"""The typed summary of a run: summary.json as pydantic models, and which dotted paths name a figure.

`sim.result.build_result` builds a `Summary`; `Result.summary` is its `model_dump()`, the plain
dict summary.json is written from (field order here is the file's key order). Figures the run
could not measure are NaN (written as null). Maps keyed by names a run chooses (its flows,
components, edges, errors) are `dict[str, ...]`: their keys cannot be checked before a run, the
figures under them can (`figure_path_problem`, used by the scenario's SLOs and sweep metrics).
Per-flow sections are keyed by the run's own flows (send, read, delivery in the messaging preset;
resolve, shorten in a URL shortener design); `availability` holds one figure per flow beside its
fixed overall, nines and windows.

Left untyped, because each entry's shape is its producer's: `sample.warnings` (one dict per
warning, with `kind`, `level` and `text` plus the kind's own figures: sim/sampling.py,
sim/hotkeys.py).
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WrapSerializer, model_serializer


class Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # a section whose extra fields are figures a run names (availability's flows): what a key is
    extra_keys: ClassVar[Keys | None] = None


@dataclass(frozen=True)
class Keys:
    """Marks a map whose keys a run names (ops, components): what a key is, for messages."""

    name: str


FLOW_KEY = "op"  # what `Keys` calls a map keyed by the run's flows (request types)


@dataclass(frozen=True)
class NotAFigure:
    """Marks a field no SLO or sweep metric may name (e.g. `slo`, computed from the others)."""

    why: str


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, dict) and not value else value


def _none_is_empty(value: Any, handler: Any) -> Any:
    return {} if value is None else handler(value)


# A section is `{}` in summary.json when the run has none (no cache, no Kafka): None here.
EMPTY_IS_NONE = (BeforeValidator(_empty_is_none), WrapSerializer(_none_is_empty))


# -- per operation -------------------------------------------------------------------------------
class LatencySummary(Figures):
    """sim.histogram.Histogram.summary(): milliseconds, NaN where no request finished."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class TailBreakdown(Figures):
    """Where the time of requests at or above p99 goes (sim.metrics.Breakdown.tail)."""

    tail_from_ms: float
    requests: int
    mean_ms: Annotated[dict[str, float], Keys("component")]
    shares: Annotated[dict[str, float], Keys("component")]


class AvailabilityWindows(Figures):
    target: float
    windows: int
    windows_met: int
    share_met: float
    worst_window: float


class Availability(Figures):
    """One share of requests that succeeded per flow, under the flow's own name (`availability.send`,
    `availability.resolve`), first; then `overall` over the client flows (those clients start), its
    `nines` and the per-window figures. The flows are the model's extra fields, each a float."""

    model_config = ConfigDict(extra="allow", frozen=True)
    extra_keys: ClassVar[Keys | None] = Keys(FLOW_KEY)
    __pydantic_extra__: dict[str, float] = Field(init=False)

    overall: float
    nines: float
    windows: AvailabilityWindows

    @property
    def flows(self) -> dict[str, float]:
        return dict(self.__pydantic_extra__ or {})

    @classmethod
    def of(cls, flows: dict[str, float], overall: float, nines: float,
           windows: AvailabilityWindows) -> Availability:
        reserved = sorted(set(flows) & set(cls.model_fields))
        if reserved:
            raise ValueError(f"availability: a flow may not be named {', '.join(reserved)}; allowed: any "
                             f"name but {', '.join(cls.model_fields)}")
        return cls(**flows, overall=overall, nines=nines, windows=windows)

    @model_serializer(mode="wrap")
    def _flows_first(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        fixed = {name: out.pop(name) for name in type(self).model_fields if name in out}
        return {**out, **fixed}


class RequestCount(Figures):
    """Every request of an operation since t=0: sent = succeeded + failed + in flight."""

    sent: int
    succeeded: int
    failed: int
    in_flight: int
    holds: bool


class LittleCheck(Figures):
    L: float
    lambda_per_sec: float
    W_s: float
    lambda_W: float
    relative_difference: float


class Checks(Figures):
    conservation_holds: bool
    little: Annotated[dict[str, LittleCheck], Keys(FLOW_KEY)]


# -- per component -------------------------------------------------------------------------------
class ComponentSummary(Figures):
    instances: int
    simulated_instances: int
    workers: int
    utilization_mean: float
    utilization_max: float
    queue_wait_ms_p99: float
    p_wait: float
    queue_wait_ms_mean: float
    ops_per_sec: float
    ops_per_sec_per_instance: float
    rejected: int
    per_instance_load_factor: float


class AnalyticEstimate(Figures):
    """The M/M/c (Erlang C) estimate per instance at the load each simulated instance was offered."""

    ops_per_sec_per_instance: float
    utilization: float
    stable: bool
    p_wait: float
    wait_ms_mean: float
    wait_ms_p99: float


class CacheSummary(Figures):
    hit_ratio: float
    model_hit_ratio: float
    memory_used_gb: float
    working_set_gb: float
    memory_configured_gb: float


class KafkaSummary(Figures):
    consumer_lag_max_s: float
    consumer_lag_max_msgs: int
    backlog_at_end_msgs: int


# -- the sample cell -----------------------------------------------------------------------------
class FleetCell(Figures):
    configured: int
    simulated: int
    share: float
    per_instance_load_factor: float


class SampleBlock(Figures):
    """sim.sampling.sample_block: the cell simulated and what it cannot show."""

    fraction: float
    users: int
    conversations: int
    sends_per_sec: float
    reads_per_sec: float
    fleets: Annotated[dict[str, FleetCell], Keys("fleet")]
    notes: list[str]
    flow_rates: Annotated[dict[str, float], Keys("flow")] = Field(
        default_factory=dict, description="a design's client flows: requests/s the cell simulates")
    warnings: list[dict[str, Any]]


class WorkloadMix(Figures):
    """The realised traffic mix (sim.workload), and a note on what it is weighted over."""

    group_message_share: float
    mean_recipients: float
    lookups_per_read: float
    note: str


# -- cost ----------------------------------------------------------------------------------------
class CostRow(Figures):
    component: str
    kind: str
    monthly_usd: float
    basis: str
    source: str


class CostSummary(Figures):
    """sim.cost.CostBreakdown.as_summary(): the configured fleet, and under `needed` the fleet the
    load needs priced the same way (both keys absent when neither is known)."""

    monthly_usd: Annotated[dict[str, float], Keys("component")]
    by_kind_usd: Annotated[dict[str, float], Keys("kind")]
    total_monthly_usd: float
    usd_per_million_messages: float
    catalog: str
    currency: str
    hours_per_month: float
    instances: Annotated[dict[str, int], Keys("component")]
    nodes: Annotated[dict[str, int], Keys("component")]
    rows: list[CostRow]
    needed: CostSummary | None = None
    needed_note: str = ""

    @model_serializer(mode="wrap")
    def _needed_only_when_known(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if self.needed is None and not self.needed_note:
            out.pop("needed", None)
            out.pop("needed_note", None)
        return out


# -- faults and resilience -----------------------------------------------------------------------
class Recovery(Figures):
    recovered: bool
    seconds_to_recover: float | None


class FaultSummary(Figures):
    kind: str
    label: str
    start_s: float
    end_s: float
    component: str | None
    recovery: Recovery


class BreakerStats(Figures):
    state: str
    opened: int
    closed: int
    rejected: int


class EdgeStats(Figures):
    calls: int
    retries: int
    timeouts: int
    retries_denied_by_budget: int
    breaker: BreakerStats | None = None

    @model_serializer(mode="wrap")
    def _breaker_only_when_set(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if self.breaker is None:
            out.pop("breaker", None)
        return out


class CassandraFaults(Figures):
    unavailable: int
    hints_stored: int
    hints_replayed: int
    hedged_reads: int
    lost_writes: int


class Resilience(Figures):
    edges: Annotated[dict[str, EdgeStats], Keys("edge")]
    cassandra: Annotated[CassandraFaults | None, *EMPTY_IS_NONE]
    kafka_unavailable: int
    lost_writes: int


class SloVerdict(Figures):
    metric: str
    target: str
    actual: float | None
    met: bool
    status: str


# -- the whole -----------------------------------------------------------------------------------
class Summary(Figures):
    """summary.json (the README's "summary.json" section describes every field)."""

    scenario: str
    description: str
    engine: str
    seed: int
    sample: SampleBlock
    sim_seconds: float
    warmup_seconds: float
    measured_seconds: float
    wall_seconds: float
    events: int
    drained: bool
    workload: Annotated[WorkloadMix | None, *EMPTY_IS_NONE]  # the messaging mix; {} for a design
    offered_per_sec: Annotated[dict[str, float], Keys(FLOW_KEY)]
    throughput_per_sec: Annotated[dict[str, float], Keys(FLOW_KEY)]
    latency_ms: Annotated[dict[str, LatencySummary], Keys(FLOW_KEY)]
    latency_breakdown: Annotated[dict[str, Annotated[TailBreakdown | None, *EMPTY_IS_NONE]], Keys(FLOW_KEY)]
    availability: Availability
    errors: Annotated[dict[str, int], Keys("op:cause")]
    async_errors: Annotated[dict[str, int], Keys("cause")]
    requests: Annotated[dict[str, RequestCount], Keys(FLOW_KEY)]
    checks: Checks
    components: Annotated[dict[str, ComponentSummary], Keys("component")]
    analytic: Annotated[dict[str, AnalyticEstimate], Keys("component")]
    cost: CostSummary
    cache: Annotated[CacheSummary | None, *EMPTY_IS_NONE]
    kafka: Annotated[KafkaSummary | None, *EMPTY_IS_NONE]
    faults: list[FaultSummary]
    recovery: Annotated[dict[str, Recovery], Keys("fault")]
    resilience: Resilience
    slo: Annotated[dict[str, SloVerdict], NotAFigure("the SLO verdicts are computed from the other figures")
                   ] = Field(default_factory=dict)


# -- which dotted paths name a figure --------------------------------------------------------------
def figure_path_problem(path: str, flows: Sequence[str] | None = None) -> str | None:
    """Why `path` (e.g. `latency_ms.read.p99`) names no number of `Summary`, or None if it does.

    Walks the model's fields; a map's key (a flow, a component) may be anything, the field after it
    is checked. A path that stops at a section, or goes on past a number, is refused too. A flow's
    own figure in a section of fixed fields (`availability.<flow>`) is accepted for any name but a
    near miss of a fixed field (`availability.overal`). Given the run's `flows`, a flow's name
    (`latency_ms.<op>`, `availability.<op>`) must be one of them."""
    node, marks = _unwrap(Summary, [])
    where = "summary.json"
    for key in path.split("."):
        if _is_model(node):
            fields = node.model_fields
            allowed = [name for name, f in fields.items() if _addressable(f.annotation, f.metadata)]
            extra = node.extra_keys
            if key not in allowed and extra is not None and key not in fields:
                problem = _flow_problem(key, where, extra, flows, allowed)
                if problem is not None:
                    return problem
                node, marks = float, []
                where = f"{where}.<{extra.name}>"
                continue
            if key not in allowed:
                why = _not_a_figure(fields[key].annotation, fields[key].metadata) if key in fields else None
                reason = f" ({why})" if why else ""
                return f"{key} is not a figure of {where}{reason}; allowed: {', '.join(allowed)}"
            node, marks = _unwrap(fields[key].annotation, fields[key].metadata)
            where = key if where == "summary.json" else f"{where}.{key}"
        elif get_origin(node) is dict:
            name = _key_name(marks)
            if name == FLOW_KEY and flows is not None and key not in flows:
                return f"{key} is not a flow of this run ({where}.<{name}>); allowed: {', '.join(flows)}"
            where = f"{where}.<{name}>"
            node, marks = _unwrap(get_args(node)[1], [])
        else:
            return f"{where} is a figure with nothing below it; drop what follows it"
    if _is_number(node):
        return None
    if get_origin(node) is dict:
        below = f"{where}.<{_key_name(marks)}>.…"
    else:
        below = ", ".join(n for n, f in node.model_fields.items() if _addressable(f.annotation, f.metadata))
        if node.extra_keys is not None:
            below += f" or a flow's name ({where}.<{node.extra_keys.name}>)"
    return f"{where} is a section, not a figure; allowed below it: {below}"


def _flow_problem(key: str, where: str, extra: Keys, flows: Sequence[str] | None,
                  fixed: list[str]) -> str | None:
    """Why `key`, met where a section of fixed fields also takes a flow's name, is neither."""
    if flows is not None:
        if key in flows:
            return None
        return f"{key} is not a figure of {where}; allowed: {', '.join([*fixed, *flows])}"
    near = difflib.get_close_matches(key, fixed, n=1, cutoff=0.8)
    if near:
        return (f"{key} is not a figure of {where} (did you mean {near[0]}?); allowed: {', '.join(fixed)} "
                f"or a flow's name ({where}.<{extra.name}>)")
    return None


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The type under Annotated[...] and `X | None`, with the marks met on the way (and `metadata`,
    the marks pydantic keeps beside a field's annotation)."""
    marks = list(metadata)
    while True:
        if get_origin(annotation) is Annotated:
            marks += list(annotation.__metadata__)
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, marks
            annotation = args[0]
        else:
            return annotation, marks


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _is_number(node: Any) -> bool:
    return node in (int, float)


def _key_name(marks: list[Any]) -> str:
    return next((m.name for m in marks if isinstance(m, Keys)), "key")


def _not_a_figure(annotation: Any, metadata: list[Any]) -> str | None:
    return next((m.why for m in _unwrap(annotation, metadata)[1] if isinstance(m, NotAFigure)), None)


def _addressable(annotation: Any, metadata: list[Any]) -> bool:
    """A field a path may name or pass through: a number, a model or a map (not text, flags, lists)."""
    if _not_a_figure(annotation, metadata) is not None:
        return False
    node, _ = _unwrap(annotation, metadata)
    return _is_number(node) or get_origin(node) is dict or _is_model(node)
