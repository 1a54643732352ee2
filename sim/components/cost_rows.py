"""A cost row and the pure price arithmetic the kinds' rows share (sim/cost.py's docstring gives
the rules; each kind's module writes its own rows with these)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sim.components.units import BYTES_PER_GB
from sim.pricing import Catalog, Tier

Kind = Literal["compute", "storage", "network", "requests"]
KINDS: tuple[Kind, ...] = ("compute", "storage", "network", "requests")


@dataclass(frozen=True)
class CostRow:
    component: str
    kind: Kind
    monthly_usd: float
    basis: str  # the arithmetic, in words
    source: str = ""  # where the price came from, and its date

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "kind": self.kind, "monthly_usd": self.monthly_usd,
                "basis": self.basis, "source": self.source}


def graduated_usd(quantity: float, tiers: Sequence[Tier]) -> tuple[float, list[tuple[float, float]]]:
    """Price `quantity` through graduated tiers (each tier's price applies to the units inside it).

    Returns the total and the (units, unit price) of every tier used. Tier bounds are cumulative
    (`up_to`, None = unbounded), in the same unit as `quantity`.
    """
    total, parts, lower = 0.0, [], 0.0
    for tier in tiers:
        upper = math.inf if tier.up_to is None else tier.up_to
        units = min(quantity, upper) - lower
        if units <= 0:
            break
        total += units * tier.usd
        parts.append((units, tier.usd))
        lower = upper
    return total, parts


def instance_monthly_usd(instances: int, usd_per_hour: float, hours_per_month: float) -> float:
    return instances * usd_per_hour * hours_per_month


def stored_gb(bytes_per_sec: float, retention_s: float, copies: float, headroom: float = 1.0) -> float:
    """Data on disk at steady state: a retention period's writes, times copies and headroom."""
    return bytes_per_sec * retention_s * copies * headroom / BYTES_PER_GB


def price_source(catalog: Catalog, price: Any) -> str:
    return f"{catalog.catalog}: {price.source}, {price.source_url}, {price.date}"


def basis_number(x: float) -> str:
    """A number for a basis text: thousands separators, at most 4 significant digits past them."""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{x:,.0f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"
