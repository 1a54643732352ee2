"""MSER-5: where to truncate the initial transient of an output series.

White's Marginal Standard Error Rule (White 1997; Franklin & White 2008) on batch means of 5:
group the series into n = floor(N / 5) non-overlapping batch means Z_1..Z_n (a trailing partial
batch is dropped) and for each candidate cut d compute

    MSER(d) = sum_{i > d} (Z_i - mean(Z_{d+1..n}))^2 / (n - d)^2,

the squared standard error of the truncated mean, up to a constant. The cut is the d that
minimises it, searched over d <= n / 2 (a cut in the second half would say the run never
reached steady state): removing early batches pays while they pull the mean away, and stops
paying when what is left is steady. The observations cut are the first 5 d.

The rule is a heuristic with two known weak spots, both reported in `MserCut.note`: a minimum at
the half-way limit (the series may still be trending: run longer), and short series (fewer than
10 batches), where the statistic has little to go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BATCH = 5
MIN_BATCHES = 10  # below this the cut is reported as rough


@dataclass(frozen=True)
class MserCut:
    observations: int  # series length N
    batches: int  # n = floor(N / batch)
    cut_batches: int  # d*
    cut_observations: int  # batch x d*: how many leading observations to discard
    statistic: tuple[float, ...]  # MSER(d) for d = 0 .. limit
    reliable: bool
    note: str | None


def mser(series: Sequence[float] | np.ndarray, batch: int = BATCH) -> MserCut:
    """The MSER-`batch` truncation point of `series` (finite values, oldest first)."""
    x = np.asarray(series, dtype=float)
    if x.ndim != 1:
        raise ValueError("mser needs a one-dimensional series")
    if not np.isfinite(x).all():
        raise ValueError("mser needs finite values (fill or drop NaN windows first)")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    n = x.size // batch
    if n < 2:
        return MserCut(x.size, n, 0, 0, (), False,
                       f"{x.size} observations make fewer than 2 batches of {batch}: no cut")
    z = x[: n * batch].reshape(n, batch).mean(axis=1)
    limit = n // 2
    # suffix sums: the batches kept after cutting d are z[d:]
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    kept = n - np.arange(limit + 1)
    ss = np.maximum(s2[: limit + 1] - s1[: limit + 1] ** 2 / kept, 0.0)
    stat = ss / kept.astype(float) ** 2
    d = int(np.argmin(stat))
    notes = []
    if n < MIN_BATCHES:
        notes.append(f"only {n} batches of {batch} (fewer than {MIN_BATCHES}): the cut is rough")
    if d == limit and limit > 0:
        notes.append("the cut reached half the run: the series may still be trending; run longer")
    return MserCut(x.size, n, d, d * batch, tuple(float(v) for v in stat), not notes,
                   "; ".join(notes) or None)
