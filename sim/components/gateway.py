"""The API gateway: instances of an instance type, or a managed API gateway priced per request
(`gateway.pricing: api_gateway_rest | api_gateway_http`: no instances, compute 0, and the month's
(sends + reads) priced through the catalog's graduated tiers, in millions of requests). A design's
gateway prices the requests its flows send it (the flows' calls to it, sim/traffic.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.base import ComponentKind
from sim.components.cost_rows import CostRow, basis_number, graduated_usd, price_source

if TYPE_CHECKING:
    from sim.pricing import Catalog
    from sim.scenario import Scenario
    from sim.traffic import DesignTraffic


@dataclass(frozen=True)
class GatewayKind(ComponentKind):
    def managed_note(self, sc: Scenario) -> str:
        pricing = self.section(sc).pricing
        if pricing == "instances":
            return ""
        return f"managed {pricing}: priced per request by sim/cost.py"

    def compute_rows(self, sc: Scenario, catalog: Catalog, instances: int) -> list[CostRow]:
        pricing = self.section(sc).pricing
        if pricing != "instances":
            return [CostRow(self.name, "compute", 0.0,
                            f"{self.field_path}.pricing {pricing}: managed, no instances")]
        return super().compute_rows(sc, catalog, instances)

    def request_rows(self, sc: Scenario, catalog: Catalog, month_s: float) -> list[CostRow]:
        gw = sc.gateway
        if not gw.enabled or gw.pricing == "instances":
            return []
        prices = catalog.api_gateway.rest if gw.pricing == "api_gateway_rest" else catalog.api_gateway.http
        w = sc.workload
        n = basis_number
        millions = (w.sends_per_sec + w.reads_per_sec) * month_s / 1e6
        usd, parts = graduated_usd(millions, prices.tiers)
        tiers = " + ".join(f"{n(units)}M x ${price:g}" for units, price in parts) or "0"
        basis = (f"({n(w.sends_per_sec)} sends + {n(w.reads_per_sec)} reads)/s x {n(month_s)} s = "
                 f"{n(millions)}M requests/month, {gw.pricing} tiers: {tiers}")
        return [CostRow(self.name, "requests", usd, basis, price_source(catalog, prices))]

    def design_request_rows(self, sc: Scenario, catalog: Catalog, demand: DesignTraffic,
                            month_s: float) -> list[CostRow]:
        gw = self.section(sc)
        if gw.pricing == "instances":
            return []
        prices = catalog.api_gateway.rest if gw.pricing == "api_gateway_rest" else catalog.api_gateway.http
        n = basis_number
        per_flow: dict[str, float] = {}
        for call in demand.to(self.name):
            per_flow[call.flow] = per_flow.get(call.flow, 0.0) + call.per_sec
        rate = sum(per_flow.values())
        millions = rate * month_s / 1e6
        usd, parts = graduated_usd(millions, prices.tiers)
        tiers = " + ".join(f"{n(units)}M x ${price:g}" for units, price in parts) or "0"
        flows = " + ".join(f"{n(r)} {f}" for f, r in per_flow.items()) or "0"
        basis = (f"({flows})/s x {n(month_s)} s = {n(millions)}M requests/month, {gw.pricing} tiers: "
                 f"{tiers}")
        return [CostRow(self.name, "requests", usd, basis, price_source(catalog, prices))]

    def design_diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        return self.diagram_lines(sc, "key")

    def diagram_lines(self, sc: Scenario, limited: str = "user") -> tuple[str, ...]:
        g = self.section(sc)
        settings = [f"{g.workers} workers"]
        if g.rate_limit is not None:
            settings.append(f"limit {g.rate_limit.per_user_per_sec:g}/s per {limited}")
        if g.pricing != "instances":
            settings.append(f"priced as {g.pricing}")
        return (", ".join(settings),)


GATEWAY = GatewayKind(name="gateway", label="API gateway", diagram_rank=1, diagram_layer=1)
