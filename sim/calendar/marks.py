"""The tail breakdown on the calendar engine: each request's critical path, summed where it ends.

The DES marks a request's path as it goes (sim/des/flows.py): a step marks its component when it
ends on the request's critical path, i.e. outside any join or as the answer its innermost join still
waits for alone; a cache marks at its lookup's answer, a consumer its lag when it takes the record
and its own service when that ends; a triggered flow opens with its producer's "<flow>_and_produce"
(the producer's t0 to the commit); a client attempt starts with no marks, and only the answering
attempt's are kept. sim/metrics.py's Breakdown sums, per 5% latency bucket, the time between
successive marks by component.

Here a request's row holds the time its last part ended and, per label, the seconds spent there
(NaN: never marked); frames carry their client attempt's number, so an abandoned attempt's late
steps mark nothing. When a measured request succeeds its row is added to its flow's bucket in
`sums` (NaN: no request of the bucket carried the label, as Breakdown names only the parts it saw)
and `counts`, the same buckets as Breakdown's. Bounded: flows x MARK_BUCKETS x labels numbers.
Latencies beyond the last bucket (1.05^510 us, ~17 hours) share it.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.calendar.tables import (
    FR_ATT,
    FR_LINK,
    FR_REQ,
    FR_THEN,
    JN_PENDING,
    RQ_DONE,
    RQ_MARKS,
    RQF_MARK,
    RQF_PART0,
    T_JOIN,
    T_MISSED,
    T_UNAWAITED,
)
from sim.metrics import Breakdown

MARK_BUCKETS = 512
_LOG_GROWTH = math.log(Breakdown.GROWTH)


def labels(comp_names: list[str], flows: list[str]) -> list[str]:
    """Label -> name: the components, then Kafka consumer lag, then each flow's produce."""
    return [*comp_names, "kafka_consumer_lag", *(f"{f}_and_produce" for f in flows)]


@nb.njit(cache=True, _nrt=False)
def open_marks(rqf: np.ndarray, r: np.int64, since: float) -> None:
    """Request r's path starts afresh at `since` (its t0: a new request, or a client attempt)."""
    rqf[r, RQF_MARK] = since
    for j in range(RQF_PART0, rqf.shape[1]):
        rqf[r, j] = math.nan


@nb.njit(cache=True, _nrt=False)
def mark(rqf: np.ndarray, r: np.int64, label: np.int64, now: float) -> None:
    """Request r's part of its path at `label` ended now."""
    j = RQF_PART0 + label
    seconds = now - rqf[r, RQF_MARK]
    rqf[r, j] = seconds if math.isnan(rqf[r, j]) else rqf[r, j] + seconds
    rqf[r, RQF_MARK] = now


@nb.njit(cache=True, _nrt=False)
def on_path(fr: np.ndarray, jn: np.ndarray, rq: np.ndarray, f: np.int64) -> bool:
    """A step of frame f that ends now is on its request's critical path: the request is unanswered,
    the frame belongs to the attempt it keeps marks for, and the frame is outside any join or the
    answer its innermost join waits for alone (a cache's miss branch is in its parent's join)."""
    r = fr[f, FR_REQ]
    if rq[r, RQ_DONE] != 0 or fr[f, FR_ATT] != rq[r, RQ_MARKS]:
        return False
    while fr[f, FR_THEN] == T_MISSED:
        f = fr[f, FR_LINK]
    then = fr[f, FR_THEN]
    if then == T_UNAWAITED:
        return False
    return then != T_JOIN or jn[fr[f, FR_LINK], JN_PENDING] == 1


@nb.njit(cache=True, _nrt=False)
def tally(rqf: np.ndarray, r: np.int64, fl: np.int64, latency_s: float, sums: np.ndarray,
          counts: np.ndarray) -> None:
    """A measured request's success: its marks into its flow's latency bucket (Breakdown.add's)."""
    ms = latency_s * 1e3
    b = np.int64(math.floor(math.log(ms / 1e-3) / _LOG_GROWTH)) + 1 if ms > 1e-3 else np.int64(0)
    if b >= MARK_BUCKETS:
        b = MARK_BUCKETS - 1
    counts[fl, b] += 1
    for j in range(RQF_PART0, rqf.shape[1]):
        v = rqf[r, j]
        if not math.isnan(v):
            k = j - RQF_PART0
            sums[fl, b, k] = v if math.isnan(sums[fl, b, k]) else sums[fl, b, k] + v


def into_breakdowns(breakdowns: dict[str, Breakdown], flows: list[str], names: list[str], sums: np.ndarray,
                    counts: np.ndarray) -> None:
    """Add the kernel's buckets to each flow's Breakdown (bucket index b + 1 is Breakdown's b)."""
    for fl, flow in enumerate(flows):
        for b in np.flatnonzero(counts[fl]).tolist():
            entry = breakdowns[flow].buckets.setdefault(b - 1, [0, {}])
            entry[0] += int(counts[fl, b])
            parts = entry[1]
            for k in np.flatnonzero(~np.isnan(sums[fl, b])).tolist():
                parts[names[k]] = parts.get(names[k], 0.0) + float(sums[fl, b, k])
