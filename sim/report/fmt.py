"""Numbers as the report writes them, and numbers read defensively from summary.json mappings.

A figure the run did not measure (absent, None, NaN, not a number) reads as None and is written
"-"; an unbounded one (an overloaded queue's wait) as "inf".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def num(value: Any) -> float | None:
    """A finite number, or None (bools are flags, not figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def numeric_items(mapping: Any) -> dict[str, float]:
    """{key: number} from a mapping; a nested mapping counts as the sum of its numbers."""
    out: dict[str, float] = {}
    if not isinstance(mapping, Mapping):
        return out
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = sum(numeric_items(value).values())
        x = num(value)
        if x is not None:
            out[str(key)] = x
    return out


def fmt(value: Any, digits: int = 3) -> str:
    """Three significant digits below 1,000, whole numbers with separators above."""
    x = num(value)
    if x is None:
        return "inf" if isinstance(value, float) and math.isinf(value) else "-"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def ms(value: Any) -> str:
    """Milliseconds: 0.123 ms, 12.3 ms, 3,760 ms."""
    text = fmt(value)
    return text if text in ("-", "inf") else f"{text} ms"


def pct(value: Any, digits: int = 1) -> str:
    x = num(value)
    if x is None:
        return ">= 100%" if isinstance(value, float) and math.isinf(value) else "-"
    return f"{x:.{digits}%}"


def availability(value: Any) -> str:
    x = num(value)
    return "-" if x is None else f"{x:.4%}"


def usd(amount: float) -> str:
    return f"${amount:,.0f}" if abs(amount) >= 100 else f"${amount:,.2f}"
