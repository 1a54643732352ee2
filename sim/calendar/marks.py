"""The tail breakdown on the calendar engine: each request's critical path, summed where it ends.

The DES marks a request's path as it goes (sim/des/flows.py): a step marks its component when it
ends on the request's critical path, i.e. outside any join or as the answer its innermost join still
waits for alone; a cache marks at its lookup's answer, a consumer its lag when it takes the record
and its own service when that ends; a triggered flow opens with its producer's "<flow>_and_produce"
(the producer's t0 to the commit); a client attempt starts with no marks, and only the answering
attempt's are kept. sim/metrics.py's Breakdown sums, per 5% latency bucket, the time between
successive marks by component.

A label is a component (its index), Kafka consumer lag (the number of components) or a flow's
produce (that plus one plus the producing flow's index). Each flow has its own few: the components
of its steps, and for a triggered flow its consumer, the lag and the produce of each flow feeding it
(`label_table`). A request's row holds the time its last part ended and, per label of its flow, the
seconds spent there (NaN: never marked), so a row is as wide as the flow with the most labels (5 in
the messaging preset): a mark looks its column up in the flow table's extra columns (FI_LABELS on),
by the flow its frame carries. Frames carry their client attempt's number (-1: a request not
marked), and the request's row the attempt it keeps marks for (-1 once answered), so an abandoned
attempt's late steps mark nothing.

Past MARKED_PER_SEC client requests a simulated second, every k-th request (in the order requests
start) is marked, the others' frames say so at once: at full scale a request's row is out of the
cache by its next step, and marking every request cost ~15% of the reference design's run.

A marked request that succeeds hands its seconds over with its outcome row; the recorder's helper
thread adds the measured ones to their flow's buckets (sim/arrays/tails.py's `TailSums`, a compiled
pass that releases the GIL), the same buckets as Breakdown's, counts and sums times k.
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
    RQF_MARK,
    RQF_OPEN,
    RQF_PART0,
    S_MARK_EVERY,
    S_SEQ,
    T_JOIN,
    T_MISSED,
    T_UNAWAITED,
)
from sim.system.model import CacheLookup, Call, Produce, System, walk

# Requests a simulated second whose critical paths are marked, at most: beyond it every k-th request
# is (k = the client rate over this, rounded up; the reference design at full scale: 1 in 11). A mark
# touches its request's row, by then out of the cache at full scale: marking every request cost ~15%
# of the run there. The breakdown's shares and means are then those of a systematic sample of the
# requests (taken in the order they start, so independent of their latency), and its counts are the
# sample's times k.
MARKED_PER_SEC = 1_000_000
FI_LABELS = 4  # the flow table's columns from here: per label, its column in the flow's marks (-1: none)


def label_table(system: System, comp_names: list[str],
                flows: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """Per flow and label, the label's column in the flow's marks (-1: the flow never marks it), and
    per flow its labels' names in column order."""
    n_comps = len(comp_names)
    comp_at = {name: i for i, name in enumerate(comp_names)}
    names_all = [*comp_names, "kafka_consumer_lag", *(f"{f}_and_produce" for f in flows)]
    table = np.full((len(flows), len(names_all)), -1, np.int64)
    names: list[list[str]] = []
    for i, name in enumerate(flows):
        flow = system.flows[name]
        mine = [comp_at[s.component] for s in walk(flow.steps) if isinstance(s, Call | CacheLookup | Produce)]
        if flow.consumer is not None:
            mine += [comp_at[flow.consumer.component], n_comps]
            mine += [n_comps + 1 + j for j, g in enumerate(flows)
                     if any(isinstance(s, Produce) and s.then == name for s in walk(system.flows[g].steps))]
        mine = list(dict.fromkeys(mine))
        table[i, mine] = np.arange(len(mine))
        names.append([names_all[k] for k in mine])
    return table, names


@nb.njit(cache=True, _nrt=False)
def draw_marked(state: np.ndarray) -> np.int64:
    """1 if the next request is marked: every S_MARK_EVERY-th in the order they start (independent of
    how long they take), else 0."""
    seq = state[S_SEQ]
    state[S_SEQ] = seq + 1
    return np.int64(1) if seq % state[S_MARK_EVERY] == 0 else np.int64(0)


@nb.njit(cache=True, _nrt=False)
def open_marks(rqf: np.ndarray, r: np.int64, since: float, attempt: np.int64) -> None:
    """Request r's path starts afresh at `since` (its t0: a new request, or a client attempt's)."""
    rqf[r, RQF_MARK] = since
    rqf[r, RQF_OPEN] = attempt
    for j in range(RQF_PART0, rqf.shape[1]):
        rqf[r, j] = math.nan


@nb.njit(cache=True, _nrt=False)
def mark(rqf: np.ndarray, flow_i: np.ndarray, fl: np.int64, r: np.int64, label: np.int64,
         now: float) -> None:
    """Request r's (of flow fl) part of its path at `label` ended now."""
    col = flow_i[fl, FI_LABELS + label]
    if col < 0:  # label_table missed a label this flow marks: a bug, never a silent loss
        raise RuntimeError("calendar: a mark outside its flow's labels (sim/calendar/marks.py label_table)")
    j = RQF_PART0 + col
    seconds = now - rqf[r, RQF_MARK]
    rqf[r, j] = seconds if math.isnan(rqf[r, j]) else rqf[r, j] + seconds
    rqf[r, RQF_MARK] = now


@nb.njit(cache=True, _nrt=False)
def on_path(fr: np.ndarray, jn: np.ndarray, rqf: np.ndarray, f: np.int64) -> bool:
    """A step of frame f that ends now is on its request's critical path: the request is unanswered,
    the frame belongs to the attempt it keeps marks for, and the frame is outside any join or the
    answer its innermost join waits for alone (a cache's miss branch is in its parent's join)."""
    att = fr[f, FR_ATT]  # -1: a frame of a request not marked (the frame's row: no other read)
    if att < 0 or rqf[fr[f, FR_REQ], RQF_OPEN] != att:  # (-1 once the request is answered)
        return False
    while fr[f, FR_THEN] == T_MISSED:
        f = fr[f, FR_LINK]
    then = fr[f, FR_THEN]
    if then == T_UNAWAITED:
        return False
    return then != T_JOIN or jn[fr[f, FR_LINK], JN_PENDING] == 1
