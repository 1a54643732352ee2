"""The joins of the storage steps' replies: a send's Redis append and Cassandra write (k of the
replicas asked), and a delivery's inbox writes (done at the last, failed at the first failure).

As sim/des: a Cassandra write goes to the live replicas of its key (a crashed one gets a hint,
not replayed here) and succeeds at the k-th reply; it fails once k successes are impossible (at
the (n-k+1)-th failure of the n asked). A step with a policy timeout fails at the timeout if it
has not answered by then (its work goes on at the stations). The replies are applied after the
slices (sim/fast/storage.py), in request order.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.arrays.station import cause
from sim.fast.tables import CI, CW, E_CASS, E_REDIS, FAILED, OK, RS, T_CASS, T_INBOX, T_REDIS, TIMEOUT


@nb.njit(cache=True)
def _kth_smallest(values: np.ndarray, k: np.int64, scratch: np.ndarray) -> tuple[np.int64, float]:
    """(how many values are not NaN, the k-th smallest of them or NaN)."""
    m = 0
    for i in range(values.size):
        v = values[i]
        if not math.isnan(v):
            j = m
            while j > 0 and scratch[j - 1] > v:
                scratch[j] = scratch[j - 1]
                j -= 1
            scratch[j] = v
            m += 1
    return m, scratch[k - 1] if m >= k else math.nan


@nb.njit(cache=True)
def _kth(ok: np.ndarray, rej: np.ndarray, k: np.int64, scratch: np.ndarray) -> tuple[bool, float]:
    """(success, time) of a k-of-n join over the n replicas that answered (a down replica is not
    asked: the coordinator keeps a hint): the k-th smallest reply, or the (n-k+1)-th smallest
    rejection, the one that makes k successes impossible."""
    m, at = _kth_smallest(ok, k, scratch)
    if m >= k:
        return True, at
    n = m
    for i in range(rej.size):
        if not math.isnan(rej[i]):
            n += 1
    m, at = _kth_smallest(rej, n - k + 1, scratch)
    return False, at


@nb.njit(cache=True)
def _why(rej: np.ndarray, why: np.ndarray, at: float) -> np.int64:
    """The cause of the rejection at `at` (the one that failed a join)."""
    for i in range(rej.size):
        if rej[i] == at:
            return np.int64(why[i])
    return np.int64(0)


@nb.njit(cache=True)
def join_leaves(
    rf: np.int64,
    k_write: np.int64,
    timeouts_s: np.ndarray,
    redis_required: bool,
    cass_required: bool,
    sends: np.ndarray,
    inbox: np.ndarray,
    done: np.ndarray,
    row: np.ndarray,
    slot: np.ndarray,
    stage: np.ndarray,
    leaf_start: np.ndarray,
    leaf_t: np.ndarray,
    D: float,
    async_errors: np.ndarray,
    timed_out: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Apply the served Redis appends, Cassandra writes and inbox writes to their sends, in input
    (request) order: the rows are then read in sequence, not in the stations' order. Nothing in
    the slices reads what this writes, and the joins (k-th reply, latest and first failure) do not
    depend on the order they see the replies in.

    A step answers at its join, or fails at its edge's timeout if that comes first (the work goes
    on at the stations, as in the DES: the caller only stops waiting)."""
    for x in range(done.size):
        kind = stage[x]
        if not done[x] or not (kind == RS or kind == CW or kind == CI):  # noqa: SIM109 (numba)
            continue
        r, sl, at, failed = row[x], slot[x], leaf_t[x], leaf_start[x] < 0.0
        if kind == RS:
            sends[r].out -= 1
            err = E_REDIS + cause(leaf_start[x]) if failed else 0
            limit = sends[r].store + timeouts_s[T_REDIS]
            if at > limit:
                failed, at, err = True, limit, E_REDIS + TIMEOUT
                timed_out[T_REDIS] += 1
            sends[r].rs_st = FAILED if failed else OK
            sends[r].rs_t = at
            sends[r].rs_err = err
            if failed and not redis_required and at < D:
                async_errors[err] += 1
        elif kind == CW:
            sends[r].out -= 1
            _replica_answer(sends[r].cw_ok, sends[r].cw_rej, sends[r].cw_why, sl, at, leaf_start[x])
            sends[r].cw_left -= 1
            if sends[r].cw_left == 0:
                ok, t_k, err = _write_outcome(
                    sends[r].cw_ok[:rf], sends[r].cw_rej[:rf], sends[r].cw_why[:rf], k_write,
                    sends[r].store + timeouts_s[T_CASS], timed_out, T_CASS, scratch,
                )
                sends[r].cw_st = OK if ok else FAILED
                sends[r].cw_t = t_k
                sends[r].cw_err = err
                if not ok and not cass_required and t_k < D:
                    async_errors[err] += 1
        else:  # CI
            _replica_answer(inbox[r].ok, inbox[r].rej, inbox[r].why, sl, at, leaf_start[x])
            inbox[r].left -= 1
            if inbox[r].left == 0:
                p = inbox[r].parent
                ok, t_k, err = _write_outcome(
                    inbox[r].ok[:rf], inbox[r].rej[:rf], inbox[r].why[:rf], k_write,
                    sends[p].g_end + timeouts_s[T_INBOX], timed_out, T_INBOX, scratch,
                )
                _inbox_done(sends, p, ok, t_k, err)


@nb.njit(cache=True)
def fail_inbox(inbox: np.ndarray, sends: np.ndarray, rows: np.ndarray, at: np.ndarray, err: np.int64) -> None:
    """Inbox writes answered at once without asking a replica (too few live: "unavailable")."""
    for n in range(rows.size):
        inbox[rows[n]].left = 0
        _inbox_done(sends, inbox[rows[n]].parent, False, at[n], err)


@nb.njit(inline="always", cache=True)
def _replica_answer(
    ok: np.ndarray, rej: np.ndarray, why: np.ndarray, slot: np.int64, at: float, start: float
) -> None:
    """Replica `slot` of a write answered at `at`: a success, or a failure of code `start` < 0."""
    if start < 0.0:
        rej[slot] = at
        why[slot] = cause(start)
    else:
        ok[slot] = at


@nb.njit(cache=True)
def _write_outcome(
    ok: np.ndarray,
    rej: np.ndarray,
    why: np.ndarray,
    k: np.int64,
    limit: float,
    timed_out: np.ndarray,
    edge: np.int64,
    scratch: np.ndarray,
) -> tuple[bool, float, np.int64]:
    """(success, time, error code) of a write whose asked replicas have all answered: its k-of-n
    join, or a timeout at `limit` if that comes first."""
    success, at = _kth(ok, rej, k, scratch)
    err = np.int64(0) if success else E_CASS + _why(rej, why, at)
    if at > limit:
        success, at, err = False, limit, np.int64(E_CASS + TIMEOUT)
        timed_out[edge] += 1
    return success, at, err


@nb.njit(cache=True)
def _inbox_done(sends: np.ndarray, p: np.int64, ok: bool, at: float, err: np.int64) -> None:
    """One inbox write of send p's delivery answered: the delivery is done at the last success,
    or failed at the earliest failure, once every write has answered."""
    sends[p].out -= 1
    if ok:
        sends[p].in_max = max(sends[p].in_max, at)
    elif at < sends[p].in_fail:
        sends[p].in_fail = at
        sends[p].in_err = err
    sends[p].in_left -= 1
    if sends[p].in_left == 0:
        if sends[p].in_fail < math.inf:
            sends[p].d_st = FAILED
            sends[p].d_fin = sends[p].in_fail
            sends[p].d_err = sends[p].in_err
        else:
            sends[p].d_st = OK
            sends[p].d_fin = sends[p].in_max
