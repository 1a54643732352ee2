"""Random-variable specs of a scenario and the block samplers that draw them.

A spec is `{dist: exponential|deterministic|lognormal|gamma|empirical, ...}`, or a bare number
meaning deterministic. Lognormal may be given by `mean` and `p99` (how operators know their
systems) or by `mean` and `sigma`. Any spec may carry `min`/`max` to clip samples. The unit is
the unit of the field that holds the spec (`service_ms` is in milliseconds).

Samplers draw 4,096 values at a time from their own numpy Generator and hand them out one by
one through a C-level iterator, so the hot path costs one call per sample.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

Z99 = 2.3263478740408408  # standard normal quantile at 0.99
BLOCK = 4096


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _check_clip(self) -> _Spec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not exceed max ({self.max:g}); allowed: min <= max")
        return self


class Exponential(_Spec):
    dist: Literal["exponential"]
    mean: float = Field(gt=0)


class Deterministic(_Spec):
    dist: Literal["deterministic"]
    value: float = Field(ge=0)


class Lognormal(_Spec):
    dist: Literal["lognormal"]
    mean: float = Field(gt=0)
    p99: float | None = Field(default=None, gt=0)
    sigma: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_shape(self) -> Lognormal:
        if self.p99 is not None and self.sigma is not None:
            raise ValueError("lognormal takes mean and one of p99 or sigma, not both")
        if self.p99 is None and self.sigma is None:
            raise ValueError(
                "lognormal needs p99 or sigma besides mean, e.g. {dist: lognormal, mean: 1, p99: 5}")
        if self.p99 is not None:
            ratio = self.p99 / self.mean
            limit = math.exp(Z99**2 / 2)
            if ratio <= 1.0:
                raise ValueError(
                    f"p99 ({self.p99:g}) must be above mean ({self.mean:g}); allowed for a lognormal: "
                    f"{self.mean:g} < p99 <= {limit * self.mean:.4g} ({limit:.3g}x mean)"
                )
            if ratio > limit:
                raise ValueError(
                    f"p99 ({self.p99:g}) is {ratio:.3g}x mean ({self.mean:g}); a lognormal allows at most "
                    f"{limit:.3g}x, so p99 <= {limit * self.mean:.4g} (an empirical dist can be heavier)"
                )
        return self

    @property
    def shape(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        if self.sigma is not None:
            sigma = self.sigma
        else:
            assert self.p99 is not None
            # mean = exp(mu + s^2/2), p99 = exp(mu + z s)  =>  s^2/2 - z s + ln(p99/mean) = 0
            sigma = Z99 - math.sqrt(Z99**2 - 2 * math.log(self.p99 / self.mean))
        return math.log(self.mean) - sigma**2 / 2, sigma


class Gamma(_Spec):
    dist: Literal["gamma"]
    mean: float = Field(gt=0)
    cv: float = Field(gt=0, description="coefficient of variation (std/mean); shape = 1/cv^2")


class Empirical(_Spec):
    dist: Literal["empirical"]
    file: str
    column: str | None = None
    base_dir: str = Field(default=".", exclude=True)

    @model_validator(mode="after")
    def _readable(self) -> Empirical:
        self.values()
        return self

    def values(self) -> np.ndarray:
        path = Path(self.file)
        if not path.is_absolute():
            path = Path(self.base_dir) / path
        return _load_empirical(str(path), self.column)


@lru_cache(maxsize=64)
def _load_empirical(path: str, column: str | None) -> np.ndarray:
    # Messages start with the field they are about (`file`, `column`): the scenario loader turns
    # that into the error's path, e.g. `gateway.service_ms.file: 'x.csv' does not exist; ...`.
    allowed = "allowed: a CSV of non-negative numbers, one per row, with an optional header row"
    if not Path(path).is_file():
        raise ValueError(f"file {path!r} does not exist; allowed: a CSV path, relative to the scenario file")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [(n, r) for n, r in enumerate(csv.reader(fh), 1) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"file {path!r} cannot be read as CSV ({exc}); {allowed}") from None
    if not rows:
        raise ValueError(f"file {path!r} is empty; {allowed}")
    header, col, body = rows[0][1], 0, rows
    if column is not None:
        if column not in header:
            raise ValueError(f"column {column!r} is not in the header of {path!r}; allowed: "
                             f"{', '.join(header)}")
        col, body = header.index(column), rows[1:]
    else:
        try:
            float(header[0])
        except ValueError:
            body = rows[1:]
    numbers = []
    for n, row in body:
        cell = row[col] if col < len(row) else ""
        try:
            x = float(cell)
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and x >= 0):
            raise ValueError(f"file {path!r} line {n} has {cell!r}; {allowed}")
        numbers.append(x)
    if not numbers:
        raise ValueError(f"file {path!r} has a header but no values; {allowed}")
    values = np.array(numbers, dtype=float)
    values.setflags(write=False)
    return values


DistSpec = Annotated[
    Exponential | Deterministic | Lognormal | Gamma | Empirical, Field(discriminator="dist")
]


def as_spec(value: object) -> object:
    """Accept a bare number as deterministic (used as a pydantic before-validator)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "deterministic", "value": float(value)}
    return value


def mean_of(spec: _Spec) -> float:
    """The spec's mean before clipping (empirical: the sample mean)."""
    if isinstance(spec, Deterministic):
        return spec.value
    if isinstance(spec, Empirical):
        return float(spec.values().mean())
    return float(spec.mean)  # type: ignore[attr-defined]


def draw(spec: _Spec, rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` independent samples of `spec`, clipped to [min, max] when given."""
    if isinstance(spec, Exponential):
        out = rng.exponential(spec.mean, size)
    elif isinstance(spec, Deterministic):
        out = np.full(size, spec.value)
    elif isinstance(spec, Lognormal):
        mu, sigma = spec.shape
        out = rng.lognormal(mu, sigma, size)
    elif isinstance(spec, Gamma):
        shape = 1.0 / spec.cv**2
        out = rng.gamma(shape, spec.mean / shape, size)
    elif isinstance(spec, Empirical):
        out = rng.choice(spec.values(), size)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown distribution {spec!r}")
    if spec.min is not None or spec.max is not None:
        out = np.clip(out, spec.min, spec.max)
    return out


Draw = Callable[[], float]


def stream(block: Callable[[], list[Any]]) -> Callable[[], Any]:
    """A C-level callable handing out the values of successive `block()` lists, one per call."""
    return itertools.chain.from_iterable(iter(block, None)).__next__


def sampler(spec: _Spec, rng: np.random.Generator, scale: float = 1.0) -> Draw:
    """Samples of `spec` times `scale` (e.g. 1e-3: milliseconds to seconds), one per call,
    drawn from `rng` in blocks of 4,096 (the same values, in the same order, however consumed)."""
    if isinstance(spec, Deterministic):
        value = spec.value
        if spec.min is not None:
            value = max(value, spec.min)
        if spec.max is not None:
            value = min(value, spec.max)
        return itertools.repeat(value * scale).__next__
    return stream(lambda: (draw(spec, rng, BLOCK) * scale).tolist())


def uniforms(rng: np.random.Generator) -> Draw:
    """Uniform [0, 1) values, one per call, drawn in blocks."""
    return stream(lambda: rng.random(BLOCK).tolist())
