"""Kafka's consumer groups in the calendar kernel: a consumer takes records from the partitions it
owns, in turn, while it has fewer than `max_in_flight` in progress (the DES's Consumer.pump); each
record starts the triggered flow's request at the consumer's station."""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.calendar.marks import mark
from sim.calendar.program import (
    C_BASE,
    C_CONS_COMP,
    C_CONS_NODE,
    C_CONS_OFF,
    C_COUNT,
    C_MAX_IN_FLIGHT,
    C_PART_OFF,
    C_PARTS,
)
from sim.calendar.tables import (
    FR_ATT,
    FR_CALLER,
    FR_FLOW,
    FR_LINK,
    FR_NODE,
    FR_REQ,
    FR_STATION,
    FR_THEN,
    OK,
    P_FRAME,
    RQ_CONS,
    RQ_FLOW,
    RQ_KEY,
    RQ_MARKED,
    RQ_REFS,
    RQ_USER,
    RQF_STARTED,
    RQF_T0,
    T_FINISH,
    W_START,
    _alloc,
    _win,
)


@nb.njit(cache=True, _nrt=False)
def pump(kc: np.int64, c_local: np.int64, now: float, W: float, window_s: float, nw: np.int64,
          nodes: np.ndarray, node_f: np.ndarray, comps: np.ndarray, dists: np.ndarray, dvals: np.ndarray,
          hop_d: np.int64, key_hop: np.uint64, key_node: np.ndarray, flow_i: np.ndarray,
          ht: np.ndarray, hp: np.ndarray, state: np.ndarray,
          rq: np.ndarray, rqf: np.ndarray, fr: np.ndarray, fr_keys: np.ndarray, fr_extra: np.ndarray,
          fr_t0: np.ndarray, fr_free: np.ndarray, wl_op: np.ndarray, wl_f: np.ndarray, wl_e: np.ndarray,
          wl: int,
          log_head: np.ndarray, log_len: np.ndarray, rq_next_col: int, cons_in: np.ndarray,
          cons_cursor: np.ndarray, win_lag: np.ndarray, win_take: np.ndarray, lag_max: np.ndarray) -> int:
    """Consumer c_local of kafka component kc takes records while it has slots: from its partitions
    (p = c_local, c_local + n, ...) in turn, each in order, as the DES's Consumer.pump."""
    cons_comp = comps[kc, C_CONS_COMP]
    n_cons = comps[cons_comp, C_COUNT]
    parts = comps[kc, C_PARTS]
    poff = comps[kc, C_PART_OFF]
    cons = comps[kc, C_CONS_OFF] + c_local
    mine = (parts - c_local + n_cons - 1) // n_cons  # partitions it owns
    node = comps[kc, C_CONS_NODE]
    limit = comps[kc, C_MAX_IN_FLIGHT]
    while cons_in[cons] < limit and mine > 0:
        found = -1
        for j in range(mine):
            m = (cons_cursor[cons] + j) % mine
            p = poff + c_local + m * n_cons
            if log_len[p] > 0:
                cons_cursor[cons] = (m + 1) % mine
                found = p
                break
        if found < 0:
            break
        p = found
        r = log_head[p]
        log_head[p] = rq[r, rq_next_col]
        log_len[p] -= 1
        lag = now - rqf[r, RQF_STARTED]
        w = _win(now, window_s, nw)
        win_take[w] += 1
        if lag > win_lag[w]:
            win_lag[w] = lag
        if now >= W and lag > lag_max[0]:
            lag_max[0] = lag
        cons_in[cons] += 1
        if rq[r, RQ_MARKED] != 0:  # the lag: since the commit (or the last mark)
            mark(rqf, flow_i, rq[r, RQ_FLOW], r, comps.shape[0], now)
        f = _alloc(fr_free, state, P_FRAME)
        fl = rq[r, RQ_FLOW]
        fr[f, FR_REQ] = r
        fr[f, FR_NODE] = node
        fr[f, FR_THEN] = T_FINISH
        fr[f, FR_LINK] = -1
        fr[f, FR_STATION] = comps[cons_comp, C_BASE] + c_local
        fr[f, FR_CALLER] = -1
        fr[f, FR_ATT] = 0 if rq[r, RQ_MARKED] != 0 else -1
        fr[f, FR_FLOW] = fl
        fr_keys[f, flow_i[fl, 1]] = rq[r, RQ_KEY]
        if flow_i[fl, 3] >= 0:
            fr_keys[f, flow_i[fl, 3]] = rq[r, RQ_USER]
        fr_extra[f] = 0.0
        fr_t0[f] = rqf[r, RQF_T0]
        rq[r, RQ_REFS] += 1
        rq[r, RQ_CONS] = cons
        wl_op[wl], wl_f[wl], wl_e[wl] = W_START, f, OK
        wl += 1
    return wl
