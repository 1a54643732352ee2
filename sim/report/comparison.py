"""The analytic estimate beside the simulated figure: where the two part, and why.

summary.json's `analytic` holds, per component, the M/M/c estimate (Poisson arrivals,
exponential service, load spread evenly) for the per-instance load the run simulated. The
simulation keeps what M/M/c leaves out, so where the figures part the likely causes are:
service times whose coefficient of variation (cv) is not 1 (Allen–Cunneen: waits scale by about
(1 + cv^2) / 2), uneven load over the instances (a hot shard), arrivals that are not Poisson
(replica fan-out, Kafka consumers with bounded in-flight work, a round-robin balancer), queue
limits that reject work, an overloaded station whose queue grows for as long as the run lasts,
and the noise of a short run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.distributions import Deterministic, Empirical, Exponential, Gamma, Lognormal, mean_of
from sim.scenario import Scenario, replies_needed
from sim.system.compile import system_of
from sim.system.model import CacheLookup, Call, Produce, System, walk

AGREE, PART, NO_ESTIMATE = "agree", "part", "no estimate"
UTIL_ABS_TOL = 0.03  # utilization points
UTIL_REL_TOL = 0.10
WAIT_RATIO_TOL = 1.5  # waits part when one is more than 1.5x the other ...
WAIT_ABS_TOL_MS = 0.1  # ... and they differ by more than this
CV_TOL = 0.25  # service cv this far from 1 is worth naming
SHORT_RUN_S = 10.0
SATURATED = 0.95  # simulated utilization at which a station counts as saturated


@dataclass(frozen=True)
class Comparison:
    component: str
    utilization_sim: float | None
    utilization_est: float | None
    wait_p99_sim_ms: float | None
    wait_p99_est_ms: float | None
    stable: bool | None
    verdict: str  # AGREE, PART or NO_ESTIMATE
    parts_on: list[str] = field(default_factory=list)  # "utilization", "p99 wait"
    reasons: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        """One line for the report: what parts, by how much, and why."""
        if self.verdict != PART:
            return f"{self.component}: {self.verdict}"
        gaps = []
        if "utilization" in self.parts_on:
            gaps.append(f"utilization simulated {_pct(self.utilization_sim)} vs estimated "
                        f"{_pct(self.utilization_est)}")
        if "p99 wait" in self.parts_on:
            gaps.append(f"p99 queue wait simulated {_ms(self.wait_p99_sim_ms)} vs estimated "
                        f"{_ms(self.wait_p99_est_ms)}")
        why = "; ".join(self.reasons) if self.reasons else "no modelled cause found"
        return f"{self.component}: {', '.join(gaps)}. Why: {why}."


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else (math.inf if value == math.inf else None)


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    return "overloaded (>= 100%)" if math.isinf(x) else f"{x:.1%}"


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return "unbounded" if math.isinf(x) else f"{x:.3g} ms"


def cv_of(spec: Any) -> float | None:
    """Coefficient of variation of a distribution spec, before any min/max clipping."""
    if isinstance(spec, Exponential):
        return 1.0
    if isinstance(spec, Deterministic):
        return 0.0
    if isinstance(spec, Lognormal):
        return math.sqrt(math.expm1(spec.shape[1] ** 2))
    if isinstance(spec, Gamma):
        return spec.cv
    if isinstance(spec, Empirical):
        values = spec.values()
        mean = float(values.mean())
        return float(values.std()) / mean if mean > 0 else None
    return None


def mixture_cv(parts: list[tuple[float, Any]]) -> float | None:
    """cv of a mix of service-time specs, each weighted by its share of the arrivals."""
    parts = [(w, s) for w, s in parts if w > 0]
    total = sum(w for w, _ in parts)
    if total <= 0:
        return None
    mean = second = 0.0
    for w, spec in parts:
        cv = cv_of(spec)
        if cv is None:
            return None
        m = mean_of(spec)
        mean += w / total * m
        second += w / total * m * m * (1 + cv * cv)
    return math.sqrt(max(0.0, second / (mean * mean) - 1)) if mean > 0 else None


def design_cvs(system: System) -> dict[str, float]:
    """Per component of a design, the cv of its service time where the flows use operations of one
    cv only (a mix of unlike operations would need each one's share of the calls, left out)."""
    used: dict[str, set[str]] = {}
    for flow in system.flows.values():
        for step in walk(flow.steps):
            if isinstance(step, Call):
                used.setdefault(step.component, set()).add(step.op)
            elif isinstance(step, CacheLookup):
                used.setdefault(step.component, set()).update({"get", "set"} if step.fill else {"get"})
            elif isinstance(step, Produce):
                used.setdefault(step.component, set()).add("produce")
        if flow.consumer is not None:
            used.setdefault(flow.consumer.component, set()).add(flow.consumer.op)
    out = {}
    for name, ops in used.items():
        component = system.components[name]
        cvs = {cv_of(component.ops[op].service_ms) for op in ops if op in component.ops}
        if len(cvs) == 1 and None not in cvs:
            (cv,) = cvs
            assert cv is not None
            out[name] = cv
    return out


def service_cvs(scenario: Scenario, summary: Mapping[str, Any]) -> dict[str, float]:
    """Per component, the cv of its service time over the run's operation mix."""
    sc = scenario
    if sc.is_design:
        return design_cvs(system_of(sc))
    w = sc.workload
    hit = _num((summary.get("cache") or {}).get("hit_ratio"))
    recipients = _num((summary.get("workload") or {}).get("mean_recipients")) or 1.0
    c = sc.cassandra
    gs = sc.group_service
    writes = w.sends_per_sec * c.replication_factor
    if gs.enabled and gs.fan_out == "write":
        writes *= 1 + recipients
    misses = w.reads_per_sec * (1 - (hit if hit is not None else 0.0))
    mixes: dict[str, list[tuple[float, Any]]] = {
        "gateway": [(1.0, sc.gateway.service_ms)],
        "message_service": [(w.sends_per_sec, sc.message_service.send_service_ms),
                            (w.reads_per_sec, sc.message_service.read_service_ms)],
        "redis": [(1.0, sc.redis.service_ms)],
        "cassandra": [(writes, c.write_service_ms),
                      (misses * replies_needed(c.read_consistency, c.replication_factor),
                       c.read_service_ms)],
        "kafka": [(1.0, sc.kafka.append_ms)],
        "group_service": [(1.0, gs.service_ms)],
    }
    out = {}
    for name, mix in mixes.items():
        cv = mixture_cv(mix)
        if cv is not None:
            out[name] = cv
    return out


def _arrival_reasons(name: str, scenario: Scenario | None) -> list[str]:
    reasons: list[str] = []
    if scenario is None:
        return reasons
    if scenario.is_design:
        return _design_arrival_reasons(name, scenario)
    if name == "cassandra":
        reasons.append(f"each write reaches {scenario.cassandra.replication_factor} replicas at once "
                       "and a group message's inbox writes arrive together: bursts, where M/M/c "
                       "assumes Poisson arrivals")
    elif name == "kafka":
        reasons.append(f"each produce is appended on {scenario.kafka.replication_factor} brokers at "
                       "once: bursts, where M/M/c assumes Poisson arrivals")
    elif name == "group_service":
        reasons.append(f"its work comes from Kafka consumers holding at most "
                       f"{scenario.group_service.max_in_flight} events each (a closed loop, not "
                       "Poisson), and per-recipient work varies with group size")
    fleet = getattr(scenario, name, None)
    if getattr(fleet, "balancer", None) == "round_robin":
        reasons.append("the round_robin balancer makes each instance's arrivals more regular than "
                       "Poisson, which shortens waits")
    return reasons


def _design_arrival_reasons(name: str, scenario: Scenario) -> list[str]:
    """Why a design's component `name` sees arrivals burstier or smoother than Poisson."""
    spec = scenario.components.get(name)
    if spec is None:
        return []
    reasons = []
    if spec.kind == "cassandra":
        reasons.append(f"each write reaches {spec.replication_factor} replicas at once: bursts, where "
                       "M/M/c assumes Poisson arrivals")
    elif spec.kind == "kafka":
        reasons.append(f"each produce is appended on {spec.replication_factor} brokers at once: bursts, "
                       "where M/M/c assumes Poisson arrivals")
    consumers = [f for f in system_of(scenario).flows.values()
                 if f.consumer is not None and f.consumer.component == name]
    for flow in consumers:
        assert flow.consumer is not None
        reasons.append(f"it consumes flow {flow.name} from Kafka holding at most "
                       f"{flow.consumer.max_in_flight} records per consumer (a closed loop, not Poisson)")
    if getattr(spec, "balancer", None) == "round_robin":
        reasons.append("the round_robin balancer makes each instance's arrivals more regular than "
                       "Poisson, which shortens waits")
    return reasons


def compare_component(name: str, simulated: Mapping[str, Any], estimate: Mapping[str, Any] | None,
                      cv: float | None = None, scenario: Scenario | None = None,
                      measured_s: float | None = None, failed_elsewhere: int = 0) -> Comparison:
    """Set one component's M/M/c estimate beside its simulated figures and explain any gap.
    `failed_elsewhere`: requests that failed (anywhere) in the run, which may have starved it."""
    u_sim = _num(simulated.get("utilization_mean"))
    u_max = _num(simulated.get("utilization_max"))
    w_sim = _num(simulated.get("queue_wait_ms_p99"))
    if not estimate:
        return Comparison(name, u_sim, None, w_sim, None, None, NO_ESTIMATE)
    u_est = _num(estimate.get("utilization"))
    w_est = _num(estimate.get("wait_ms_p99"))
    stable = estimate.get("stable")
    stable = bool(stable) if isinstance(stable, bool) else None
    if stable is False:
        u_est = u_est if u_est is not None else math.inf
        w_est = math.inf
    parts_on = []
    if u_sim is not None and u_est is not None and abs(u_sim - u_est) > max(
            UTIL_ABS_TOL, UTIL_REL_TOL * (u_est if math.isfinite(u_est) else 1.0)):
        parts_on.append("utilization")
    if w_sim is not None and w_est is not None:
        hi, lo = max(w_sim, w_est), min(w_sim, w_est)
        if hi - lo > WAIT_ABS_TOL_MS and (lo <= 0 or hi / lo > WAIT_RATIO_TOL):
            parts_on.append("p99 wait")
    if not parts_on:
        return Comparison(name, u_sim, u_est, w_sim, w_est, stable, AGREE)

    reasons: list[str] = []
    rejected = _num(simulated.get("rejected")) or 0
    starved = bool(failed_elsewhere) and not rejected and u_sim is not None and u_est is not None \
        and u_sim < u_est
    if stable is False and (u_sim is None or u_sim >= SATURATED):
        reasons.append("M/M/c finds the station overloaded (utilization >= 100%): its queue grows "
                       "for as long as the run lasts, so the simulated figures depend on the run "
                       "length, not on a steady state")
    elif stable is False:
        reasons.append("M/M/c finds the station overloaded at the offered load, but in the simulation "
                       "less load reached it")
    if rejected > 0:
        reasons.append(f"{rejected:,.0f} requests were rejected at the queue limit, which caps the "
                       "queue (and so the wait) and removes load")
    if starved:
        reasons.append(f"{failed_elsewhere:,.0f} requests failed elsewhere in the run (rejected "
                       "upstream, say), so it carried less than the offered load the estimate assumes")
    if "p99 wait" in parts_on and stable is not False:
        if cv is not None and abs(cv - 1) > CV_TOL:
            factor = (1 + cv * cv) / 2
            text = (f"service times have cv {cv:.2f} where M/M/c assumes 1: by Allen–Cunneen waits "
                    f"scale by about (1 + cv²)/2 = {factor:.2g}x")
            if w_est and w_sim and math.isfinite(w_est) and w_est > 0:
                adjusted = w_est * factor
                close = max(adjusted, w_sim) / max(min(adjusted, w_sim), 1e-9) <= WAIT_RATIO_TOL
                text += f", to {adjusted:.3g} ms" + (", which accounts for most of the gap" if close
                                                    else "")
            reasons.append(text)
        if u_sim and u_max is not None and u_max - u_sim > 0.1 and u_max / u_sim > 1.25:
            reasons.append(f"load is uneven (hottest instance {u_max:.0%}, mean {u_sim:.0%}): M/M/c "
                           "spreads it evenly, while the fleet's p99 wait comes from the hottest "
                           "instances")
        reasons.extend(_arrival_reasons(name, scenario))
        if w_est == 0 and (w_sim or 0) > 0:
            reasons.append("M/M/c puts the p99 wait at 0 because fewer than 1% of arrivals wait in "
                           "its model; any extra burstiness lifts the simulated p99 above 0")
    if "utilization" in parts_on and stable is not False and not rejected and not starved:
        reasons.append("the simulated operation mix (cache hit ratio, recipients per message) or a "
                       "short run's Poisson noise moves the load away from the estimate's inputs")
    if measured_s is not None and measured_s < SHORT_RUN_S:
        reasons.append(f"the run measured only {measured_s:g} s, so tail figures are noisy")
    return Comparison(name, u_sim, u_est, w_sim, w_est, stable, PART, parts_on, reasons)


def compare(summary: Mapping[str, Any], scenario: Scenario | None = None) -> list[Comparison]:
    """One Comparison per simulated component, in the summary's order."""
    components = summary.get("components") or {}
    analytic = summary.get("analytic") or {}
    cvs: dict[str, float] = {}
    if scenario is not None:
        try:
            cvs = service_cvs(scenario, summary)
        except (ValueError, AttributeError, TypeError):  # a custom or partial scenario
            cvs = {}
    measured = _num(summary.get("measured_seconds"))
    failed = int(sum(v for v in (summary.get("errors") or {}).values() if _num(v)))
    out = []
    for name, sim in components.items():
        if not isinstance(sim, Mapping):
            continue
        est = analytic.get(name) if isinstance(analytic, Mapping) else None
        # a fleet's own rejections are not load lost before it
        lost = failed - int(_num(sim.get("rejected")) or 0)
        out.append(compare_component(name, sim, est, cvs.get(name), scenario, measured, max(0, lost)))
    return out
