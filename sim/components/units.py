"""Number and size texts for plans and bases, and the instance count that holds a load.

Units: GB = 1e9 bytes (disk, transfer), GiB = 2^30 bytes (memory, as Redis counts it)."""

from __future__ import annotations

import math

BYTES_PER_GB = 1e9
BITS_PER_GBIT = 1e9
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86_400.0


def ceil_instances(x: float) -> int:
    """Instances to hold `x` instance-loads: ceil, forgiving float noise (2.0000000001 -> 2)."""
    if not math.isfinite(x):
        raise ValueError(f"cannot size for {x} instance-loads")
    return max(0, math.ceil(x - 1e-9 * max(1.0, abs(x))))


def number(x: float) -> str:
    """Three significant figures below 100, whole numbers with separators above."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def byte_text(b: float) -> str:
    """Decimal units, four significant figures: 3.1536e16 -> '31.54 PB'."""
    for unit, size in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(b) >= size:
            return f"{b / size:.4g} {unit}"
    return f"{b:.4g} B"


def amount(value: float, unit: str) -> str:
    """`value` in `unit`; GB as a byte text."""
    if unit == "GB":
        return byte_text(value * BYTES_PER_GB)
    return f"{number(value)} {unit}"
