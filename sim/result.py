"""A run's results: the `summary.json` contract, pandas frames, and the files a run writes.

The summary's shape is the typed model in sim/summary.py; SLO verdicts come from sim/slo.py. This
module imports nothing from sim/report (the report reads results, not the other way round).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analytic import erlang_c, offered_loads
from sim.cost import monthly_cost
from sim.histogram import Histogram
from sim.jsonsafe import json_safe
from sim.metrics import queue_figures
from sim.recovery import availability_windows, fault_report, nines
from sim.run_state import RunState
from sim.sampling import sample_block
from sim.slo import evaluate_slos
from sim.summary import (
    AnalyticEstimate,
    Availability,
    AvailabilityWindows,
    CacheSummary,
    CassandraFaults,
    Checks,
    ComponentSummary,
    CostSummary,
    EdgeStats,
    FaultSummary,
    KafkaSummary,
    LatencySummary,
    LittleCheck,
    RequestCount,
    Resilience,
    SampleBlock,
    SloVerdict,
    Summary,
    TailBreakdown,
    WorkloadMix,
)
from sim.system.compile import system_of

LATENCY_QUANTILES = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0)


@dataclass
class Result:
    summary: dict[str, Any]  # summary.json as plain data: `typed.model_dump()` for a single run
    latency: pd.DataFrame  # op, quantile, latency_ms
    components: pd.DataFrame  # one row per simulated instance
    timeseries: pd.DataFrame  # one row per window
    histograms: dict[str, Histogram]
    # the typed summary of a single run; None for replications combined by sim.experiments, whose
    # summary holds means and adds ci95 and replications
    typed: Summary | None = None

    def write(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(json_safe(self.summary), indent=2) + "\n")
        self.latency.to_csv(out / "latency.csv", index=False)
        self.components.to_csv(out / "components.csv", index=False)
        self.timeseries.to_csv(out / "timeseries.csv", index=False)
        return out


def build_result(state: RunState, engine: str = "des") -> Result:
    """The result of a run; `engine` names the engine that produced `state` ("des", "calendar" or
    "stations")."""
    sc, cell, rec = state.scenario, state.cell, state.recorder
    measured = state.measured_seconds
    scale = 1.0 / cell.sample
    ops = rec.ops  # the run's flows, in the order summary.json lists them
    system = state.system if state.system is not None else system_of(sc)
    clients = [name for name in system.client_flows() if name in ops]  # what availability.overall is over

    def rate(count: int) -> float:
        return count * scale / measured if measured > 0 else math.nan

    def fraction(op: str) -> float:
        done = ops[op].succeeded_m + ops[op].failed_m
        return ops[op].succeeded_m / done if done else math.nan

    finished_clients = sum(ops[o].succeeded_m + ops[o].failed_m for o in clients)
    succeeded_clients = sum(ops[o].succeeded_m for o in clients)
    errors: dict[str, int] = {}
    for op in ops.values():
        for cause, n in op.errors_m.items():
            errors[f"{op.name}:{cause}"] = errors.get(f"{op.name}:{cause}", 0) + n

    conservation = {
        name: RequestCount(
            sent=s.sent,
            succeeded=s.succeeded,
            failed=s.failed,
            in_flight=s.in_flight,
            holds=s.sent == s.succeeded + s.failed + s.in_flight and s.in_flight >= 0,
        )
        for name, s in ops.items()
    }

    components: dict[str, ComponentSummary] = {}
    rows = []
    for name, fleet in state.fleets.items():
        utils = [st.utilization(measured) for st in fleet.stations]
        completions = sum(st.completions for st in fleet.stations)
        fc = cell.fleets[name]
        p_wait, wait_ms_mean = queue_figures(sum(st.at_once for st in fleet.stations),
                                             sum(st.queued for st in fleet.stations),
                                             math.fsum(st.wait_s for st in fleet.stations))
        components[name] = ComponentSummary(
            instances=fc.configured,
            simulated_instances=fc.simulated,
            workers=fleet.stations[0].servers,
            utilization_mean=sum(utils) / len(utils),
            utilization_max=max(utils),
            queue_wait_ms_p99=fleet.wait_histogram().quantile(0.99),
            p_wait=p_wait,
            queue_wait_ms_mean=wait_ms_mean,
            # fleet-wide at full scale: the cell carries a fraction `sample` of the traffic, whatever
            # share of the fleet's instances it simulates (that share sets per-instance load only)
            ops_per_sec=rate(completions),
            ops_per_sec_per_instance=completions / measured / len(utils) if measured > 0 else math.nan,
            rejected=sum(st.rejections for st in fleet.stations),
            per_instance_load_factor=cell.load_factor(name),
        )
        for st, u in zip(fleet.stations, utils, strict=True):
            st_p_wait, st_wait_ms_mean = queue_figures(st.at_once, st.queued, st.wait_s)
            rows.append({
                "component": name,
                "instance": st.index,
                "servers": st.servers,
                "utilization": u,
                "ops_per_sec": st.completions / measured if measured > 0 else math.nan,
                "arrivals": st.arrivals,
                "rejected": st.rejections,
                "mean_jobs": st.jobs_area / measured if measured > 0 else math.nan,
                "p_wait": st_p_wait,
                "queue_wait_ms_mean": st_wait_ms_mean,
            })

    cache = None
    if state.cache is not None:
        lookups = state.redis_hits + state.redis_misses
        cache = CacheSummary(
            hit_ratio=state.redis_hits / lookups if lookups else math.nan,
            model_hit_ratio=state.cache.hit_ratio,
            # the cell's cache gets a fraction `sample` of the fleet's memory (sim/cache.py)
            memory_used_gb=state.cache.memory_used_gb / cell.sample,
            working_set_gb=state.cache.working_set_gb / cell.sample,
            memory_configured_gb=_configured_cache_gb(state),
        )

    overall = succeeded_clients / finished_clients if finished_clients else math.nan
    faults = [FaultSummary.model_validate(f) for f in fault_report(rec.rows, sc.faults, clients)]
    tails = {op: ops[op].breakdown.tail(ops[op].latency_ms.quantile(0.99)) for op in ops}
    draft = Summary(
        scenario=sc.name,
        description=sc.description,
        engine=engine,
        seed=sc.seed,
        sample=SampleBlock.model_validate(sample_block(sc, cell)),  # the cell and what it cannot show
        sim_seconds=state.sim_seconds,
        warmup_seconds=sc.warmup_s,
        measured_seconds=measured,
        wall_seconds=state.wall_seconds,
        events=state.events,
        drained=state.drained,
        workload=WorkloadMix(
            **state.mix,
            note="traffic-weighted over the (cell's) conversations; nominal: group_share "
                 f"{sc.workload.group_share} of conversations",
        ) if system.preset == "messaging" else None,  # a design has no messaging mix
        offered_per_sec={op: rate(ops[op].offered_m) for op in clients},
        throughput_per_sec={op: rate(ops[op].succeeded_m) for op in ops},
        latency_ms={op: LatencySummary(**ops[op].latency_ms.summary()) for op in ops},
        latency_breakdown={op: TailBreakdown(**tail) if tail else None for op, tail in tails.items()},
        availability=Availability.of(
            {op: fraction(op) for op in ops},
            overall=overall,
            nines=nines(overall),
            windows=AvailabilityWindows(
                **availability_windows(rec.rows, sc.availability_target, sc.warmup_s, clients)),
        ),
        errors=dict(sorted(errors.items())),
        async_errors=dict(sorted(state.async_errors.items())),
        requests=conservation,
        checks=Checks(
            conservation_holds=all(c.holds for c in conservation.values()),
            little={op: LittleCheck(**figures) for op, figures in rec.little(measured).items()},
        ),
        components=components,
        analytic=_analytic(state),
        # priced at the run's realised recipients per message (the hit ratio does not enter the cost)
        # a design is priced from its own loads (monthly_cost: design_loads of its system)
        cost=CostSummary.model_validate(
            (monthly_cost(sc) if system.preset is None else
             monthly_cost(sc, offered_loads(sc, recipients=state.mix["mean_recipients"], hit_ratio=0.0)))
            .as_summary()),
        cache=cache,
        kafka=KafkaSummary(
            consumer_lag_max_s=state.kafka_lag_max_s,
            consumer_lag_max_msgs=state.kafka_lag_max_msgs,
            backlog_at_end_msgs=state.kafka_backlog,
        ) if "kafka" in state.fleets else None,
        faults=faults,
        recovery={f.label: f.recovery for f in faults},
        resilience=Resilience(
            edges={edge: EdgeStats.model_validate(stats) for edge, stats in state.edges.items()},
            cassandra=CassandraFaults(**state.cassandra_faults) if state.cassandra_faults else None,
            kafka_unavailable=state.kafka_unavailable,
            lost_writes=state.cassandra_faults.get("lost_writes", 0),
        ),
    )
    # last: an SLO may name any figure above
    verdicts = evaluate_slos(draft.model_dump(), sc.slo)
    typed = draft.model_copy(update={"slo": {k: SloVerdict(**v) for k, v in verdicts.items()}})

    latency = pd.DataFrame(
        [
            {"op": op, "quantile": q, "latency_ms": v}
            for op in ops
            for q, v in zip(LATENCY_QUANTILES, ops[op].latency_ms.quantiles(list(LATENCY_QUANTILES)),
                            strict=True)
        ]
    )
    return Result(
        summary=typed.model_dump(),
        latency=latency,
        components=pd.DataFrame(rows),
        timeseries=pd.DataFrame(rec.rows),
        histograms={op: ops[op].latency_ms for op in ops},
        typed=typed,
    )


def _analytic(state: RunState) -> dict[str, AnalyticEstimate]:
    """The M/M/c estimate per instance at the load each simulated instance was offered.

    Uses the run's realised fan-out and hit ratio and each fleet's per-instance load factor, so
    it speaks of the same load as the simulated figures beside it. A design's loads come from its
    traffic equations (sim.system.loads.design_loads); the run's realised hit ratio replaces the
    cache model where the run tells it apart: the run counts lookups over all redis components
    together, so only a design whose cache steps use one redis component gets its realised ratio.
    """
    lookups = state.redis_hits + state.redis_misses
    hit = state.redis_hits / lookups if lookups else None
    system = state.system
    if system is not None and system.preset is None:
        from sim.system.loads import design_loads
        from sim.system.model import CacheLookup, walk

        caches = {s.component for f in system.flows.values() for s in walk(f.steps)
                  if isinstance(s, CacheLookup)}
        realised = {next(iter(caches)): hit} if hit is not None and len(caches) == 1 else None
        loads = design_loads(system, realised).loads
    else:
        loads = offered_loads(state.scenario, recipients=state.mix["mean_recipients"], hit_ratio=hit).loads
    out: dict[str, AnalyticEstimate] = {}
    for name, load in loads.items():
        per_instance = load.ops_per_sec / load.instances * state.cell.load_factor(name)
        est = erlang_c(load.servers, per_instance, load.service_ms)
        out[name] = AnalyticEstimate(
            ops_per_sec_per_instance=per_instance,
            utilization=est.utilization,
            stable=est.stable,
            p_wait=est.p_wait,
            wait_ms_mean=est.wait_ms_mean,
            wait_ms_p99=est.wait_ms_p99,
        )
    return out


def _configured_cache_gb(state: RunState) -> float:
    """The memory of the redis component whose cache the run modelled (the messaging sections' redis,
    or a design's caching component), at full scale."""
    sc = state.scenario
    if not sc.is_design:
        return sc.redis.shards * sc.redis.memory_gb_per_shard
    spec = sc.components[state.cache_component or ""]
    return spec.shards * spec.memory_gb_per_shard  # type: ignore[union-attr]
