"""The API gateway: instances of an instance type, or a managed API gateway priced per request
(`gateway.pricing: api_gateway_rest | api_gateway_http`: no instances, compute 0, and the month's
(sends + reads) priced through the catalog's graduated tiers, in millions of requests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.components.base import ComponentKind
from sim.components.cost_rows import CostRow, basis_number, graduated_usd, price_source

if TYPE_CHECKING:
    from sim.pricing import Catalog
    from sim.scenario import Scenario


@dataclass(frozen=True)
class GatewayKind(ComponentKind):
    def managed_note(self, sc: Scenario) -> str:
        if sc.gateway.pricing == "instances":
            return ""
        return f"managed {sc.gateway.pricing}: priced per request by sim/cost.py"

    def compute_rows(self, sc: Scenario, catalog: Catalog, instances: int) -> list[CostRow]:
        if sc.gateway.pricing != "instances":
            return [CostRow(self.name, "compute", 0.0,
                            f"gateway.pricing {sc.gateway.pricing}: managed, no instances")]
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

    def diagram_lines(self, sc: Scenario) -> tuple[str, ...]:
        g = sc.gateway
        settings = [f"{g.workers} workers"]
        if g.rate_limit is not None:
            settings.append(f"limit {g.rate_limit.per_user_per_sec:g}/s per user")
        if g.pricing != "instances":
            settings.append(f"priced as {g.pricing}")
        return (", ".join(settings),)


GATEWAY = GatewayKind(name="gateway", label="API gateway", diagram_rank=1, diagram_layer=1)
