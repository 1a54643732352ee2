"""Each flow's tail breakdown summed in bounded memory, from marked requests' seconds per label
(the array engines': sim/calendar/marks.py and sim/stations mark a systematic sample of the
requests, and hand over a success's seconds per label of its flow with its outcome row).

The buckets are sim/metrics.Breakdown's (5% wide, by latency); counts and sums are scaled by the
number of requests a marked one stands for, per flow. Bounded: flows x MARK_BUCKETS x columns
numbers. Latencies beyond the last bucket (1.05^510 us, ~17 hours) share it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np

from sim.metrics import Breakdown

MARK_BUCKETS = 512
_PER_LOG = 1.0 / math.log(Breakdown.GROWTH)


class TailSums:
    """Each flow's measured successes per latency bucket: how many (`counts`), and the seconds per
    label (`sums`, NaN: no request of the bucket carried the label, as Breakdown names only the parts
    it saw). Bucket b + 1 is Breakdown's b (0: latencies <= 1 us, Breakdown's -1)."""

    def __init__(self, flows: list[str], names: list[list[str]], columns: int,
                 every: int | Sequence[int]) -> None:
        self.flows, self.names = flows, names  # per flow, its labels' names by column
        # one request in `every` (per flow, or one for all) is marked: counts and sums are scaled by it
        self.every = [every] * len(flows) if isinstance(every, int) else list(every)
        self.counts = np.zeros((len(flows), MARK_BUCKETS), np.int64)
        self.sums = np.full((len(flows), MARK_BUCKETS, columns), np.nan)

    def add(self, out_i: np.ndarray, out_f: np.ndarray, warmup_s: float, horizon_s: float) -> None:
        """A batch of the kernel's outcome rows (flow, ok, cause) and (t0, started, end, seconds per
        column; -inf: not marked); no GIL held."""
        _add(out_i, out_f, warmup_s, horizon_s, self.counts, self.sums)

    def into(self, breakdowns: dict[str, Breakdown]) -> None:
        for fl, flow in enumerate(self.flows):
            for b in np.flatnonzero(self.counts[fl]).tolist():
                entry = breakdowns[flow].buckets.setdefault(b - 1, [0, {}])
                entry[0] += int(self.counts[fl, b]) * self.every[fl]
                parts = entry[1]
                for k in np.flatnonzero(~np.isnan(self.sums[fl, b])).tolist():
                    name = self.names[fl][k]
                    parts[name] = parts.get(name, 0.0) + float(self.sums[fl, b, k]) * self.every[fl]


@nb.njit(cache=True, nogil=True, _nrt=False)
def _add(out_i: np.ndarray, out_f: np.ndarray, warmup_s: float, horizon_s: float, counts: np.ndarray,
         sums: np.ndarray) -> None:
    """Rows (flow, ok, cause) and (t0, started, end, seconds per column): the successes measured
    (t0 after the warm-up, ended within the horizon) into their flow's bucket, Breakdown.add's
    floor(log(ms / 1e-3) / log(1.05)) (times the reciprocal: a bucket edge may round either way)."""
    for o in range(out_i.shape[0]):
        if (out_i[o, 1] != 1 or out_f[o, 0] < warmup_s or not out_f[o, 2] < horizon_s
                or out_f[o, 3] == -math.inf):  # (-inf: a request not marked)
            continue
        fl = out_i[o, 0]
        us = (out_f[o, 2] - out_f[o, 0]) * 1e6
        b = np.int64(math.log(us) * _PER_LOG) + 1 if us > 1.0 else np.int64(0)
        if b >= MARK_BUCKETS:
            b = MARK_BUCKETS - 1
        counts[fl, b] += 1
        for k in range(sums.shape[2]):
            v = out_f[o, 3 + k]
            if v == v:  # marked (not NaN)
                s = sums[fl, b, k]
                sums[fl, b, k] = v if s != s else s + v
