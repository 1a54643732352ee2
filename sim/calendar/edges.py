"""Resilience policies in the calendar kernel: each caller->callee edge's parameters, counters and
circuit breaker (sim/des/policy.py's rules), as arrays.

A breaker opens when, over its sliding window, at least `min_requests` outcomes were recorded and
their failure share reaches `error_rate`; it stays open `open_s`, then lets `half_open_probes`
probes through and closes when they all succeed. The DES keeps every outcome of the window; here
the window is WINDOW_BUCKETS buckets of window_s / WINDOW_BUCKETS, so an outcome leaves it up to
one bucket (0.5% of the window) early: the bound on this approximation.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

WINDOW_BUCKETS = 200
# edge parameters (float): a NaN timeout or budget means none
(E_TIMEOUT_S, E_MAX_ATT, E_BACKOFF_S, E_MULT, E_JITTER, E_BUDGET_RATIO, E_BREAKER, E_RATE, E_WINDOW_S,
 E_MIN, E_OPEN_S, E_PROBES) = range(12)
EDGE_PARAMS = 12
# edge counters and breaker state (int)
(X_CALLS, X_RETRIES, X_TIMEOUTS, X_DENIED, X_REJECTED, X_STATE, X_OPENED, X_CLOSED, X_PROBES_LEFT,
 X_PROBES_OK, X_N, X_FAILED, X_HEAD) = range(13)
EDGE_COUNTS = 13
# edge floats: the retry budget, when the breaker opened, the start of the window's newest bucket
F_BUDGET, F_OPENED_AT, F_HEAD_T = range(3)
CLOSED, OPEN, HALF_OPEN = 0, 1, 2


@nb.njit(cache=True, _nrt=False)
def breaker_allows(e: np.int64, now: float, ep: np.ndarray, ex: np.ndarray, ef: np.ndarray) -> bool:
    """May an attempt go through the edge's breaker now (closed, or a half-open probe)?"""
    if ep[e, E_BREAKER] == 0.0:
        return True
    if ex[e, X_STATE] == OPEN:
        if now - ef[e, F_OPENED_AT] < ep[e, E_OPEN_S]:
            return False
        ex[e, X_STATE] = HALF_OPEN
        ex[e, X_PROBES_LEFT] = np.int64(ep[e, E_PROBES])
        ex[e, X_PROBES_OK] = 0
    if ex[e, X_STATE] == HALF_OPEN:
        if ex[e, X_PROBES_LEFT] == 0:
            return False
        ex[e, X_PROBES_LEFT] -= 1
    return True


@nb.njit(cache=True, _nrt=False)
def _open(e: np.int64, now: float, ex: np.ndarray, ef: np.ndarray, tot: np.ndarray, bad: np.ndarray) -> None:
    ex[e, X_STATE] = OPEN
    ef[e, F_OPENED_AT] = now
    ex[e, X_OPENED] += 1
    _clear(e, ex, tot, bad)


@nb.njit(cache=True, _nrt=False)
def _clear(e: np.int64, ex: np.ndarray, tot: np.ndarray, bad: np.ndarray) -> None:
    for b in range(tot.shape[1]):
        tot[e, b] = 0
        bad[e, b] = 0
    ex[e, X_N] = 0
    ex[e, X_FAILED] = 0


@nb.njit("void(i8, f8, b1, f8[:, ::1], i8[:, ::1], f8[:, ::1], i8[:, ::1], i8[:, ::1])", cache=True,
         _nrt=False)  # one signature: not a copy per literal `failed`
def breaker_records(e: np.int64, now: float, failed: bool, ep: np.ndarray, ex: np.ndarray, ef: np.ndarray,
                    tot: np.ndarray, bad: np.ndarray) -> None:
    """An attempt's outcome (at the time the caller learns it)."""
    if ep[e, E_BREAKER] == 0.0:
        return
    state = ex[e, X_STATE]
    if state == HALF_OPEN:
        if failed:
            _open(e, now, ex, ef, tot, bad)
        else:
            ex[e, X_PROBES_OK] += 1
            if ex[e, X_PROBES_OK] >= np.int64(ep[e, E_PROBES]):
                ex[e, X_STATE] = CLOSED
                ex[e, X_CLOSED] += 1
                _clear(e, ex, tot, bad)
        return
    if state == OPEN:
        return
    nb_ = tot.shape[1]
    width = ep[e, E_WINDOW_S] / nb_
    head_t = ef[e, F_HEAD_T]
    if now >= head_t + ep[e, E_WINDOW_S] + width:  # the whole window has passed: start afresh
        _clear(e, ex, tot, bad)
        ef[e, F_HEAD_T] = math.floor(now / width) * width
    else:
        h = ex[e, X_HEAD]
        while now >= ef[e, F_HEAD_T] + width:  # the window slides: its oldest bucket leaves
            h = h + 1 if h + 1 < nb_ else 0
            ex[e, X_N] -= tot[e, h]
            ex[e, X_FAILED] -= bad[e, h]
            tot[e, h] = 0
            bad[e, h] = 0
            ef[e, F_HEAD_T] += width
        ex[e, X_HEAD] = h
    h = ex[e, X_HEAD]
    tot[e, h] += 1
    ex[e, X_N] += 1
    if failed:
        bad[e, h] += 1
        ex[e, X_FAILED] += 1
    n = ex[e, X_N]
    if n >= np.int64(ep[e, E_MIN]) and ex[e, X_FAILED] >= ep[e, E_RATE] * n:
        _open(e, now, ex, ef, tot, bad)
