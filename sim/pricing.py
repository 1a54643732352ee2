"""The pricing and hardware catalog: instance types, storage, network and API-gateway prices.

Catalogs are data (sim/data/pricing/<name>.yaml): every price with its public source page
(`source_url`, an https address), a note on how it was read (`source`) and its date. Instance types
also give their hardware: vCPUs, memory, local disk, and network bandwidth both as AWS's burst
("up to") figure and as the sustained (baseline) bandwidth, which AWS specifies for each direction
separately (in and out at once); sizing plans on the sustained figure. A scenario names its
catalog (`pricing.catalog`: a name or a YAML path) and may override instance prices
(`pricing.usd_per_hour`). Bad catalog data raises `ScenarioError` naming the file and field.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import ScenarioError
from sim.scenario import Scenario

CATALOG_DIR = Path(__file__).parent / "data" / "pricing"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


URL = r"^https://\S+$"
DATE = r"^\d{4}-\d{2}(-\d{2})?$"


class InstanceType(_Data):
    usd_per_hour: float = Field(ge=0)
    vcpu: int = Field(ge=1)
    memory_gb: float = Field(gt=0)
    local_disk_gb: float = Field(0, ge=0)
    network_gbps: float = Field(gt=0, description="burst ('up to') bandwidth, Gbit/s each direction")
    network_gbps_sustained: float = Field(
        gt=0, description="baseline bandwidth an instance sustains, Gbit/s in each direction")
    source: str = Field(description="how the price was read (and whether to verify it)")
    source_url: str = Field(pattern=URL, description="the public price page")
    hardware_url: str = Field(pattern=URL, description="the public page of the hardware figures")
    date: str = Field(pattern=DATE, description="when the price was read, YYYY-MM or YYYY-MM-DD")


class Price(_Data):
    value: float = Field(ge=0)
    source: str
    source_url: str = Field(pattern=URL)
    date: str = Field(pattern=DATE)


class Tier(_Data):
    up_to: float | None = Field(None, gt=0, description="upper bound of the tier (None: no bound)")
    usd: float = Field(ge=0, description="price per unit within the tier")


class TieredPrice(_Data):
    tiers: list[Tier] = Field(min_length=1)
    source: str
    source_url: str = Field(pattern=URL)
    date: str = Field(pattern=DATE)

    @model_validator(mode="after")
    def _ordered(self) -> TieredPrice:
        bounds = [t.up_to for t in self.tiers]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may be unbounded (up_to: null)")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(finite) or len(set(finite)) != len(finite):
            raise ValueError("tier bounds must increase")
        return self


class Storage(_Data):
    ebs_gp3_usd_per_gb_month: Price
    msk_usd_per_gb_month: Price
    s3_standard_usd_per_gb_month: TieredPrice  # tiers in TB per month


class Network(_Data):
    cross_zone_usd_per_gb_each_direction: Price
    cross_region_usd_per_gb: Price


class ApiGateway(_Data):
    rest: TieredPrice  # tiers in millions of requests per month
    http: TieredPrice


class Catalog(_Data):
    catalog: str
    currency: str
    hours_per_month: float = Field(gt=0)
    instances: dict[str, InstanceType]
    storage: Storage
    network: Network
    api_gateway: ApiGateway

    def instance(self, name: str | None, where: str) -> InstanceType:
        if name is None:
            raise ScenarioError(where, f"no instance_type given; allowed: "
                                       f"{', '.join(sorted(self.instances))}")
        if name not in self.instances:
            raise ScenarioError(where, f"instance type {name!r} is not in catalog {self.catalog!r}; "
                                       f"allowed: {', '.join(sorted(self.instances))}")
        return self.instances[name]


def _normalise_tiers(raw: object) -> object:
    """Catalog files name tier bounds and prices by unit (up_to_tb, usd_per_million, ...)."""
    if isinstance(raw, dict):
        out = {}
        for key, value in raw.items():
            if key == "tiers" and isinstance(value, list):
                value = [_tier(t) for t in value]
            out[key] = _normalise_tiers(value)
        return out
    return raw


def _tier(t: object) -> object:
    if not isinstance(t, dict):
        return t
    up = [k for k in t if k.startswith("up_to")]
    usd = [k for k in t if k.startswith("usd")]
    if len(up) != 1 or len(usd) != 1 or len(t) != 2:
        return t  # let validation name the problem
    return {"up_to": t[up[0]], "usd": t[usd[0]]}


@lru_cache(maxsize=16)
def load_catalog(name_or_path: str) -> Catalog:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CATALOG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CATALOG_DIR.glob("*.yaml")))
        raise ScenarioError("pricing.catalog",
                            f"{name_or_path!r} not found; allowed: {known}, or a YAML path")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), f"not valid YAML: {' '.join(str(exc).split())}") from None
    try:
        return Catalog.model_validate(_normalise_tiers(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{path}: {field}", err["msg"].removeprefix("Value error, ")) from None


def check_pricing(scenario: Scenario) -> None:
    """Fail at load time, not after a simulation, on a bad catalog or an unknown instance type."""
    catalog = catalog_for(scenario)
    for name, enabled, _count, instance_type in scenario.fleets():
        if enabled and instance_type is not None:
            section = f"components.{name}" if scenario.is_design else name
            catalog.instance(instance_type, f"{section}.instance_type")


def catalog_for(scenario: Scenario) -> Catalog:
    """The scenario's catalog with its `pricing.usd_per_hour` overrides applied."""
    catalog = load_catalog(scenario.pricing.catalog)
    if not scenario.pricing.usd_per_hour:
        return catalog
    instances = dict(catalog.instances)
    for name, price in scenario.pricing.usd_per_hour.items():
        if name not in instances:
            raise ScenarioError(f"pricing.usd_per_hour.{name}", f"not in catalog {catalog.catalog!r}; "
                                f"allowed: {', '.join(sorted(instances))}")
        if price < 0:
            raise ScenarioError(f"pricing.usd_per_hour.{name}", f"got {price}; allowed: a price >= 0")
        instances[name] = instances[name].model_copy(update={"usd_per_hour": price})
    return catalog.model_copy(update={"instances": instances})
