"""The messaging preset's fan-outs over a relation in the calendar kernel: a conversation's members
but the sender (a delivery), or a user's conversations (an inbox load under fan-out on read, the
population's CSR: `inbox_off[u]` .. `inbox_off[u + 1]` index `inbox_conv`). How many branches a
fan-out starts, and each branch's key, as the DES's FlowRunner.fan_out and Engine.next_fan_size
find them; a group fan-out (its size drawn) is the kernel's own."""

from __future__ import annotations

import numba as nb
import numpy as np

from sim.arrays.placement import member
from sim.calendar.program import FAN_INBOX, FAN_MEMBERS, N_B, N_C


@nb.njit(cache=True)
def related(fan: np.int64, f: np.int64, nodes: np.ndarray, fr_keys: np.ndarray, recipients: np.ndarray,
            inbox_off: np.ndarray) -> np.int64:
    """Branches of fan-out node `fan` for frame f's keys: the conversation's recipients, or the
    user's conversations; -1 for a group fan-out (whose size is drawn)."""
    rel = nodes[fan, N_B]
    if rel == FAN_MEMBERS:
        return np.int64(recipients[fr_keys[f, nodes[fan, N_C]]])
    if rel == FAN_INBOX:
        u = fr_keys[f, nodes[fan, N_C]]
        return inbox_off[u + 1] - inbox_off[u]
    return np.int64(-1)


@nb.njit(cache=True)
def related_key(fan: np.int64, f: np.int64, m: np.int64, sender: np.int64, nodes: np.ndarray,
                fr_keys: np.ndarray, inbox_off: np.ndarray, inbox_conv: np.ndarray, n_users: np.int64,
                member_salt: np.uint64) -> np.int64:
    """The key of branch m of a relation's fan-out: the m-th member but the sender (member slot
    `sender`), a user; or the user's m-th conversation."""
    key = fr_keys[f, nodes[fan, N_C]]
    if nodes[fan, N_B] == FAN_MEMBERS:
        return member(key, m if m < sender else m + 1, n_users, member_salt)
    return np.int64(inbox_conv[inbox_off[key] + m])
