"""Who sends and reads what: user and conversation populations, keys, and request streams.

Users are ranked by activity (Zipf with exponent s: weight of rank r is r**-s). A conversation's
traffic comes from its members: every conversation has members (2 for a direct chat, its group
size for a group), each user belongs to the conversations that list them, and a user's messages
are spread over their conversations with weight size**-send_size_exponent (0: evenly, so a group's
traffic grows with its members; 1: a group gets about what a direct chat gets: few write, most
read). So conversation c's send rate is

    lambda_c = sum over members m of  activity_m * size_c**-e / sum over m's conversations of size**-e

and the sender of a message in c is member m with probability proportional to that term. Reads
are spread evenly over a user's conversations (every member reads; e = 0). No conversation can be
busier than its members make it. A deliberate hot key (a celebrity's channel, a live event) is
declared as `workload.hot_conversations`, with its own rates.

A sampled cell of fraction F has F of the users and of the conversations; cell user i stands for
a contiguous bin of about 1/F full-population ranks and carries its bin's average activity, so
each cell conversation's rate is a full-population conversation's, except that a single
extreme user's rate is smoothed into its bin, which only F = 1 shows.

Keys are placed by a 64-bit mixing hash (splitmix64), vectorised over whole populations at build
time, so the per-request path only indexes precomputed arrays.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numba as nb
import numpy as np

import sim.arrays  # noqa: F401  (first: it sets the directory of the compiled kernels below)
from sim.arrays.prefetch import prefetch_row
from sim.distributions import BLOCK, draw, stream
from sim.scenario import Scenario, Workload
from sim.threads import in_parts, usable_cores

_GOLDEN = (5**0.5 - 1) / 2
_SQRT2 = 2**0.5
_EXACT_SUMS = 2_000_000
_SIZE_QUANTILES = 200_000  # sorted draws of group_size that stand for its quantile function


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a well-mixed uint64 for each uint64 input."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_keys(ids: np.ndarray, salt: int) -> np.ndarray:
    """A uint64 hash of integer ids, different for each salt."""
    with np.errstate(over="ignore"):
        salted = np.asarray(ids, dtype=np.uint64) ^ splitmix64(np.array([salt], dtype=np.uint64))[0]
    return splitmix64(salted)


def hash_unit(ids: np.ndarray, salt: int) -> np.ndarray:
    """A uniform [0, 1) value per id, fixed by the id and salt."""
    return (hash_keys(ids, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def cell_size(full: int, sample: float) -> int:
    return max(1, math.ceil(full * sample - 1e-9))


def zipf_partial_sums(ranks: np.ndarray, s: float) -> np.ndarray:
    """S(m) = sum_{r=1..m} r**-s for each m in `ranks`: exact up to 2M, Euler-Maclaurin beyond."""
    ranks = np.asarray(ranks, dtype=np.int64)
    exact_upto = int(min(ranks.max(initial=0), _EXACT_SUMS))
    table = _zipf_table(exact_upto, s)
    out = table[np.minimum(ranks, exact_upto)]
    far = ranks > exact_upto
    if far.any():
        lo, hi = exact_upto + 0.5, ranks[far] + 0.5
        tail = np.log(hi / lo) if s == 1 else (hi ** (1 - s) - lo ** (1 - s)) / (1 - s)
        out[far] += tail
    return out


@lru_cache(maxsize=4)
def _zipf_table(exact_upto: int, s: float) -> np.ndarray:
    """[S(0), S(1), ..., S(exact_upto)], summed in order (16 MB at most; kept for the next chunk)."""
    table = np.concatenate([[0.0], np.cumsum(np.arange(1, exact_upto + 1, dtype=np.float64) ** -s)])
    table.flags.writeable = False
    return table


CELL_CHUNK = 1 << 20  # cell keys a chunk of a key space's build takes: its temporaries are ~8 MB each
CHUNK_THREADS = 4  # threads that build chunks at once, at most (each holds ~50 MB of temporaries)


def in_chunks(n: int, chunk: Callable[[int, int], None]) -> None:
    """chunk(a, b) over 0..n in CELL_CHUNK pieces, the pieces shared among a thread per core (up to
    CHUNK_THREADS; numpy's array operations let go of the GIL): the same pieces whatever the number
    of threads, so each piece, computed alone, gives the same bits."""
    starts = range(0, n, CELL_CHUNK)

    def part(lo: int, hi: int) -> None:
        for a in starts[lo:hi]:
            chunk(a, min(a + CELL_CHUNK, n))

    in_parts(len(starts), part, threads=min(usable_cores(), CHUNK_THREADS))


def zipf_cell_weights(n_cell: int, s: float, sample: float, out: np.ndarray | None = None) -> np.ndarray:
    """Normalised traffic share of each cell member: its bin of ~1/F full-population ranks.

    Built CELL_CHUNK members at a time into `out` (or a new array), on every core, so that a space
    of 10^8 keys costs its 8 bytes a key and no more: each weight is S(edge_{i+1}) - S(edge_i),
    written over the partial sums, then divided by their (pairwise) sum; the same bits as the
    whole-array expression."""
    n_full = max(n_cell, round(n_cell / sample))
    ratio = n_full / n_cell
    w = np.empty(n_cell) if out is None else out

    def sums(a: int, b: int) -> None:  # w[i] = S(edge_{i+1})
        w[a:b] = zipf_partial_sums(np.floor(np.arange(a + 1, b + 1) * ratio).astype(np.int64), s)

    in_chunks(n_cell, sums)
    before = w[CELL_CHUNK - 1:n_cell - 1:CELL_CHUNK].copy()  # S(edge_a) of each chunk's first member a

    def diffs(a: int, b: int) -> None:  # w[i] -= S(edge_i); S(edge_0) = S(0) = 0
        lower = np.empty(b - a)
        lower[0] = before[a // CELL_CHUNK - 1] if a else 0.0
        lower[1:] = w[a:b - 1]
        w[a:b] -= lower

    in_chunks(n_cell, diffs)
    total = w.sum()
    in_chunks(n_cell, lambda a, b: np.divide(w[a:b], total, out=w[a:b]))
    return w


def running_sum(x: np.ndarray) -> np.ndarray:
    """np.cumsum(x, out=x) a chunk at a time: in order, the same bits, no whole-array temporary."""
    carry = 0.0
    for a in range(0, x.size, CELL_CHUNK):
        part = x[a:a + CELL_CHUNK]
        part[0] += carry
        np.cumsum(part, out=part)
        carry = part[-1]
    return x


def popularity(weights: np.ndarray, rng: np.random.Generator) -> Callable[[], int]:
    """Member indices (0 = most popular) drawn by `weights`, one per call, by inverse CDF."""
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    return by_cdf(cdf, rng)


def by_cdf(cdf: np.ndarray, rng: np.random.Generator) -> Callable[[], int]:
    """Indices drawn by inverse CDF from cumulative weights `cdf` (the last 1), one per call."""
    return stream(lambda: np.searchsorted(cdf, rng.random(BLOCK), side="right").tolist())


MEMBER_SLOT_BITS = 20  # member slot j of conversation c hashes the id c << 20 | j
_SALT_MEMBERS = 2


@dataclass(frozen=True)
class Conversations:
    """Per-conversation facts of the cell, indexed by conversation id.

    Which conversations are groups, and how big, is spread evenly over conversation ids with two
    Kronecker (golden-ratio and sqrt 2) sequences rather than drawn at random, so that every
    stretch of ids has the scenario's group share and size distribution: conversation i is a
    group when frac((i + 1) * 0.618...) < group_share, and its size is the frac((i + 1) * sqrt 2)
    quantile of `group_size`. Declared hot conversations follow the regular ones.
    """

    recipients: np.ndarray  # int32: members - 1 (1 for a direct conversation)
    is_group: np.ndarray  # bool

    @classmethod
    def build(cls, workload: Workload, n_conv: int, rng: np.random.Generator,
              hot_members: list[int] | None = None) -> Conversations:
        is_group = _kronecker_groups(n_conv, workload.group_share)
        recipients = np.ones(n_conv, dtype=np.int32)
        if is_group.any():
            sizes = np.sort(np.maximum(np.rint(draw(workload.group_size, rng, _SIZE_QUANTILES)), 2))
            _kronecker_sizes(is_group, sizes, recipients)
        hot = np.asarray(hot_members or [], dtype=np.int64)
        return cls(recipients=np.concatenate([recipients, np.maximum(hot - 1, 1).astype(np.int32)]),
                   is_group=np.concatenate([is_group, np.ones(hot.size, bool)]))

    def size(self) -> np.ndarray:
        """Members per conversation (recipients + the sender)."""
        return self.recipients.astype(np.int64) + 1

    def mix(self, weights: np.ndarray) -> dict[str, float]:
        """Traffic-weighted share of group messages and mean recipients per message."""
        return {
            # np.sum of products, not np.dot: BLAS may split a dot product over threads, and the
            # figures must be the same bits in every process (same scenario and seed, same numbers)
            "group_message_share": float(np.sum(weights * self.is_group)),
            "mean_recipients": float(np.sum(weights * self.recipients)),
        }

    def members(self, conv: int, n_users: int) -> np.ndarray:
        """Every member's user id, slot 0 .. size - 1 (a fixed hash of the conversation id and slot)."""
        n = int(self.recipients[conv]) + 1
        return member_ids(np.full(n, conv, np.int64), np.arange(n, dtype=np.int64), n_users)


def member_ids(conv: np.ndarray, slot: np.ndarray, n_users: int) -> np.ndarray:
    """User id in member slot `slot` of conversation `conv` (vectorised)."""
    ids = conv.astype(np.uint64) * np.uint64(1 << MEMBER_SLOT_BITS) + slot.astype(np.uint64)
    return (hash_keys(ids, salt=_SALT_MEMBERS) % np.uint64(n_users)).astype(np.int64)


@dataclass(frozen=True)
class Population:
    """Who talks in which conversation, and how much: the traffic model both engines draw from.

    Weights are shares of the cell's traffic (each array sums to 1). A send picks a conversation
    by `send_weights`, then its sender among the members by `send_member_weights`; the recipients
    are the other members. A read under fan-out on write picks a conversation by `read_weights`
    and its reader among the members by `read_member_weights`; under fan-out on read, a read is an
    inbox load: a reader by `user_weights`, who reads every conversation they belong to
    (`inbox_offsets`/`inbox_conversations`), so `read_weights` is then each conversation's share
    of those lookups.
    """

    users: int
    conversations: Conversations
    user_weights: np.ndarray
    send_weights: np.ndarray
    read_weights: np.ndarray
    send_member_weights: np.ndarray
    read_member_weights: np.ndarray
    lookups_per_read: float
    # per conversation, an upper bound (float32, rounded up) of its members' send and read member
    # weights: the calendar engine draws a member by rejection against it (sim/arrays/placement.py)
    send_member_max: np.ndarray | None = None
    read_member_max: np.ndarray | None = None
    inbox_offsets: np.ndarray | None = None
    inbox_conversations: np.ndarray | None = None

    @classmethod
    def build(cls, workload: Workload, n_users: int, n_conv: int, sample: float,
              rng: np.random.Generator, inbox_reads: bool = False, threads: int | None = None) -> Population:
        """The population of a cell of `n_users` users and `n_conv` regular conversations.

        `inbox_reads` (fan-out on read): a read loads the reader's whole inbox. The loops over every
        membership run on `threads` threads (default: every core this process may use); the
        result is the same bits whatever the number.
        """
        hot = workload.hot_conversations
        conv = Conversations.build(workload, n_conv, rng, [min(h.members, n_users) for h in hot])
        sizes = conv.size()
        regular = sizes[:n_conv]
        activity = zipf_cell_weights(n_users, workload.user_zipf_s, sample)
        v = regular.astype(np.float64) ** -workload.send_size_exponent
        salt = np.uint64(splitmix64(np.array([_SALT_MEMBERS], dtype=np.uint64))[0])
        weight_sum, degree = _per_user(sizes, n_conv, v, n_users, salt, threads)
        send_mw = np.divide(activity, weight_sum, out=np.zeros(n_users), where=weight_sum > 0)
        read_mw = np.divide(activity, degree, out=np.zeros(n_users), where=degree > 0)
        sends, reads, send_max, read_max = _per_conversation(
            sizes, n_conv, v, send_mw, activity if inbox_reads else read_mw, read_mw, n_users, salt, threads)
        # what follows works in place and drops each array once used: at 10M users and 40M
        # conversations every float64 array is 320 MB, and the build's peak is the process's peak
        del v, weight_sum
        send_max32, read_max32 = _upper_f32(send_max), _upper_f32(read_max)
        del send_max, read_max
        lookups = float(np.sum(activity * degree)) if inbox_reads else 1.0
        send_hot = [h.sends_per_sec / workload.sends_per_sec if workload.sends_per_sec else 0.0 for h in hot]
        read_hot = [h.reads_per_sec / workload.reads_per_sec if workload.reads_per_sec else 0.0 for h in hot]
        send_w = _with_hot(sends, n_conv, send_hot)
        if inbox_reads and reads.sum() > 0:  # each member reads every conversation of theirs
            read_w = np.divide(reads, reads.sum(), out=reads)
        else:
            read_w = _with_hot(reads, n_conv, read_hot)
        offsets = members_of = None
        if inbox_reads:
            offsets, members_of = _inbox(sizes, degree, n_users, salt, threads)
        return cls(users=n_users, conversations=conv, user_weights=activity, send_weights=send_w,
                   read_weights=read_w, send_member_weights=send_mw, read_member_weights=read_mw,
                   lookups_per_read=lookups, send_member_max=send_max32,
                   read_member_max=read_max32, inbox_offsets=offsets,
                   inbox_conversations=members_of)

    def mix(self) -> dict[str, float]:
        """The realised traffic mix: group message share, recipients per message, lookups per read."""
        return {**self.conversations.mix(self.send_weights), "lookups_per_read": self.lookups_per_read}

    def inbox(self, user: int) -> np.ndarray:
        """The conversations `user` belongs to (fan-out on read only)."""
        assert self.inbox_offsets is not None and self.inbox_conversations is not None
        return self.inbox_conversations[self.inbox_offsets[user]:self.inbox_offsets[user + 1]]


def _with_hot(rates: np.ndarray, n_regular: int, hot_shares: list[float]) -> np.ndarray:
    """Regular conversations share what the declared hot ones leave; each hot one has its share.
    In place: `rates` (float64, regular then hot conversations) becomes the answer."""
    out = rates
    total = rates[:n_regular].sum()
    left = max(0.0, 1.0 - sum(hot_shares))
    regular = out[:n_regular]
    if total > 0:
        np.divide(regular, total, out=regular)
        np.multiply(regular, left, out=regular)
    else:
        regular[:] = 0.0
    out[n_regular:] = hot_shares
    if out.sum() <= 0:
        out[:] = 1.0
    return np.divide(out, out.sum(), out=out)


@nb.njit(cache=True, nogil=True)
def _kronecker_groups(n_conv: int, group_share: float) -> np.ndarray:
    """Conversation i (0-based) is a group when frac((i + 1) x golden ratio) < group_share."""
    out = np.empty(n_conv, np.bool_)
    for i in range(n_conv):
        x = (i + 1) * _GOLDEN
        out[i] = x - np.floor(x) < group_share  # exact: the fractional part of a positive float
    return out


@nb.njit(cache=True, nogil=True)
def _kronecker_sizes(is_group: np.ndarray, sizes: np.ndarray, recipients: np.ndarray) -> None:
    """Group i's recipients: the frac((i + 1) x sqrt 2) quantile of the sorted `sizes`, minus one."""
    for i in range(is_group.size):
        if is_group[i]:
            u = (i + 1) * _SQRT2
            recipients[i] = np.int32(sizes[np.int64((u - np.floor(u)) * sizes.size)] - 1)


@nb.njit(cache=True, nogil=True)
def _member(conv: np.int64, slot: np.int64, n_users: np.int64, salt: np.uint64) -> np.int64:
    """member_ids for one slot: splitmix64((conv << 20 | slot) ^ splitmix64(salt)) mod n_users."""
    z = ((np.uint64(conv) << np.uint64(MEMBER_SLOT_BITS)) | np.uint64(slot)) ^ salt
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(n_users))


def _per_user(sizes: np.ndarray, n_regular: int, v: np.ndarray, n_users: int, salt: np.uint64,
              threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per user: the sum of size**-e over their regular conversations, and their conversation count.
    Each thread walks every membership and keeps those of its range of users (so each user's sum
    is added up in conversation order, as in one thread). A user's two sums sit side by side: a
    membership's update is one cache miss, not two (at 10M users, 3.9 -> 3.3 s on 2 vCPUs)."""
    sums = np.zeros((n_users, 2))
    in_parts(n_users, lambda lo, hi: _per_user_part(
        sizes, n_regular, v, n_users, salt, lo, hi, sums), threads)
    return sums[:, 0], sums[:, 1]


_AHEAD = 64  # memberships whose rows are asked for before the first of them is used


@nb.njit(cache=True, nogil=True)
def _per_user_part(sizes: np.ndarray, n_regular: int, v: np.ndarray, n_users: int, salt: np.uint64,
                   lo: int, hi: int, sums: np.ndarray) -> None:
    """The memberships of users lo..hi, in conversation order, _AHEAD at a time: each one's row is
    hinted when it is found and updated when _AHEAD more have been, so the rows' misses overlap
    (the same additions in the same order: the same bits)."""
    ms = np.empty(_AHEAD, np.int64)
    cs = np.empty(_AHEAD, np.int64)
    n = 0
    for c in range(sizes.size):
        for j in range(sizes[c]):
            m = _member(c, j, n_users, salt)
            if lo <= m < hi:
                prefetch_row(sums, m)
                ms[n], cs[n] = m, c
                n += 1
                if n == _AHEAD:
                    _add_memberships(ms, cs, n, n_regular, v, sums)
                    n = 0
    _add_memberships(ms, cs, n, n_regular, v, sums)


@nb.njit(cache=True, nogil=True, inline="always")
def _add_memberships(ms: np.ndarray, cs: np.ndarray, n: int, n_regular: int, v: np.ndarray,
                     sums: np.ndarray) -> None:
    for i in range(n):
        m, c = ms[i], cs[i]
        sums[m, 1] += 1.0
        if c < n_regular:
            sums[m, 0] += v[c]


def _per_conversation(sizes: np.ndarray, n_regular: int, v: np.ndarray, send_mw: np.ndarray,
                      read_rate_w: np.ndarray, read_mw: np.ndarray, n_users: int, salt: np.uint64,
                      threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per conversation: the members' sends into it (regular ones), their reads of it, and the
    largest send and read member weight among its members (threads split the conversations)."""
    out = tuple(np.zeros(sizes.size) for _ in range(4))
    in_parts(sizes.size, lambda lo, hi: _per_conversation_part(
        sizes, n_regular, v, send_mw, read_rate_w, read_mw, n_users, salt, lo, hi, *out), threads)
    return out


@nb.njit(cache=True, nogil=True)
def _per_conversation_part(sizes: np.ndarray, n_regular: int, v: np.ndarray, send_mw: np.ndarray,
                           read_rate_w: np.ndarray, read_mw: np.ndarray, n_users: int, salt: np.uint64,
                           lo: int, hi: int, sends: np.ndarray, reads: np.ndarray, send_max: np.ndarray,
                           read_max: np.ndarray) -> None:
    """Conversations lo..hi, a block at a time (whole conversations, ~_AHEAD memberships, or one
    larger conversation): the block's members are listed and their three weights hinted, then each
    conversation sums its members in order (the same bits as one pass)."""
    ms = np.empty(max(_AHEAD, sizes[lo:hi].max() if hi > lo else 0), np.int64)
    c = lo
    while c < hi:
        n, end = 0, c
        while end < hi and (end == c or n + sizes[end] <= _AHEAD):
            for j in range(sizes[end]):
                m = _member(end, j, n_users, salt)
                prefetch_row(send_mw, m)
                prefetch_row(read_rate_w, m)
                prefetch_row(read_mw, m)
                ms[n] = m
                n += 1
            end += 1
        i = 0
        for k in range(c, end):
            s = r = s_max = r_max = 0.0
            for _ in range(sizes[k]):
                m = ms[i]
                i += 1
                if k < n_regular:
                    s += send_mw[m] * v[k]
                r += read_rate_w[m]
                s_max = max(s_max, send_mw[m])
                r_max = max(r_max, read_mw[m])
            sends[k], reads[k], send_max[k], read_max[k] = s, r, s_max, r_max
        c = end


def _upper_f32(x: np.ndarray) -> np.ndarray:
    """`x` as float32, each value rounded up: a bound that stays a bound in half the memory."""
    out = np.empty(x.size, np.float32)
    in_parts(x.size, lambda lo, hi: _upper_f32_part(x, lo, hi, out))
    return out


@nb.njit(cache=True, nogil=True)
def _upper_f32_part(x: np.ndarray, lo: int, hi: int, out: np.ndarray) -> None:
    for i in range(lo, hi):
        y = np.float32(x[i])  # the nearest float32, as numpy's astype
        out[i] = np.nextafter(y, np.float32(np.inf)) if np.float64(y) < x[i] else y


def _inbox(sizes: np.ndarray, degree: np.ndarray, n_users: int, salt: np.uint64,
           threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each user's conversations (a conversation once per member slot the user holds in it), as
    offsets (int64, one per user and one past the end) into one int32 array sorted by user, each
    user's in conversation order: a counting sort over the members' hashes, so nothing the size of
    every membership is kept but the answer (4 bytes a membership). Threads split the users."""
    offsets = np.zeros(n_users + 1, np.int64)
    np.cumsum(degree.astype(np.int64), out=offsets[1:])
    conv = np.empty(offsets[n_users], np.int32)
    in_parts(n_users, lambda lo, hi: _inbox_part(sizes, offsets, n_users, salt, lo, hi, conv), threads)
    return offsets, conv


@nb.njit(cache=True, nogil=True)
def _inbox_part(sizes: np.ndarray, offsets: np.ndarray, n_users: int, salt: np.uint64, lo: int, hi: int,
                conv: np.ndarray) -> None:
    """Users lo..hi's memberships, _AHEAD at a time as in _per_user_part (the same order)."""
    cursor = offsets[lo:hi].copy()
    us = np.empty(_AHEAD, np.int64)
    cs = np.empty(_AHEAD, np.int64)
    n = 0
    for c in range(sizes.size):
        for j in range(sizes[c]):
            m = _member(c, j, n_users, salt)
            if lo <= m < hi:
                prefetch_row(cursor, m - lo)
                us[n], cs[n] = m - lo, c
                n += 1
                if n == _AHEAD:
                    _list_memberships(us, cs, n, cursor, conv)
                    n = 0
    _list_memberships(us, cs, n, cursor, conv)


@nb.njit(cache=True, nogil=True, inline="always")
def _list_memberships(us: np.ndarray, cs: np.ndarray, n: int, cursor: np.ndarray, conv: np.ndarray) -> None:
    for i in range(n):
        conv[cursor[us[i]]] = cs[i]
        cursor[us[i]] += 1


def draw_member(members: np.ndarray, weights: np.ndarray, u: float) -> int:
    """The slot of the member chosen by uniform `u`, each member weighted by `weights[user]`
    (uniform among members when every weight is zero)."""
    w = np.cumsum(weights[members])
    total = w[-1]
    if total <= 0:
        return min(int(u * members.size), members.size - 1)
    return min(int(np.searchsorted(w, u * total, side="right")), members.size - 1)


def mean_group_size(workload: Workload, rng: np.random.Generator, n: int = 200_000) -> float:
    """Monte Carlo mean of the configured group size after rounding and clipping."""
    return float(np.maximum(np.rint(draw(workload.group_size, rng, n)), 2).mean())


@dataclass(frozen=True)
class HotKeys:
    """The busiest keys of the full population (full scale, whatever the cell), per second.

    A cell of fraction F < 1 smooths the busiest users' rates into their bins (and a declared hot
    conversation's rate is scaled by F with the rest of the traffic); these figures are what one
    instance has to absorb for the busiest key at full scale.
    """

    conversation_sends_per_sec: float  # sends into the busiest conversation (its Kafka partition)
    conversation_reads_per_sec: float  # cache lookups of the most-read conversation (its Redis shard)
    conversation_recipients: int  # recipients per message of the busiest conversation
    user_sends_per_sec: float  # sends by the most active user (its partition when keyed by user)
    user_reads_per_sec: float  # reads by the most active reader


_STRUCTURE_SEED = 0  # group sizes of the reference population that sizing and hot keys read


def _inbox_reads(scenario: Scenario) -> bool:
    gs = scenario.group_service
    return bool(gs.enabled and gs.fan_out == "read")


def keys_of(population: Population, workload: Workload, sample: float = 1.0) -> HotKeys:
    """The busiest keys of `population`, in requests/s of a run that carries `sample` of the
    workload's traffic (1: full scale)."""
    top = int(np.argmax(population.send_weights))
    # a user's send rate is the sum over their conversations of lambda_c x their chance of being
    # the sender, which telescopes to their activity (times what declared hot keys leave)
    hot_sends = sum(h.sends_per_sec for h in workload.hot_conversations)
    busiest_user = float(population.user_weights.max())
    return HotKeys(
        conversation_sends_per_sec=float(population.send_weights[top]) * workload.sends_per_sec * sample,
        conversation_reads_per_sec=float(population.read_weights.max()) * workload.reads_per_sec
        * population.lookups_per_read * sample,
        conversation_recipients=int(population.conversations.recipients[top]),
        user_sends_per_sec=busiest_user * max(0.0, workload.sends_per_sec - hot_sends) * sample,
        user_reads_per_sec=busiest_user * workload.reads_per_sec * sample,
    )


def hottest_keys(scenario: Scenario) -> HotKeys:
    """The busiest conversation and user at full scale, from the population model (no simulation).

    Building the full population takes about 10 s and 3 GB at the reference design's 10M users and
    40M conversations, so the answer (not the population) is kept per workload, in memory and in
    the user's cache directory (capsim/hotkeys/<hash>.json).
    """
    return _hottest(scenario.workload.model_dump_json(), _inbox_reads(scenario))


@lru_cache(maxsize=16)
def _hottest(workload_json: str, inbox_reads: bool) -> HotKeys:
    from sim.scenario import Workload as _Workload

    key = hashlib.sha256(f"{_MODEL_VERSION}|{inbox_reads}|{workload_json}".encode()).hexdigest()[:32]
    path = user_cache_dir() / "hotkeys" / f"{key}.json"
    try:
        return HotKeys(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    w = _Workload.model_validate_json(workload_json)
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(_STRUCTURE_SEED),
                           inbox_reads=inbox_reads)
    keys = keys_of(pop, w)
    try:  # written whole or not at all: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(keys)))
        os.replace(tmp, path)
    except OSError:
        pass  # no cache directory: the next run computes it again
    return keys


_MODEL_VERSION = 1  # bump when the population model changes what these figures mean


def user_cache_dir() -> Path:
    """capsim's cache directory: $XDG_CACHE_HOME/capsim (when absolute) or ~/.cache/capsim."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "capsim"


@lru_cache(maxsize=16)
def _reference(workload_json: str, fan_out: str, max_users: int) -> tuple[Population, float]:
    from sim.scenario import Workload as _Workload

    w = _Workload.model_validate_json(workload_json)
    sample = min(1.0, max_users / w.users)
    pop = Population.build(w, cell_size(w.users, sample), cell_size(w.conversations, sample), sample,
                           np.random.default_rng(_STRUCTURE_SEED), inbox_reads=fan_out == "read")
    return pop, sample


def reference_population(workload: Workload, fan_out: str = "write",
                         max_users: int = 200_000) -> tuple[Population, float]:
    """A cell of up to `max_users` users that stands for the workload in closed-form estimates
    (sizing, cost, the expected hit ratio), with its sample fraction. The mix is an average, so a
    cell of 200k users estimates it within about 1%."""
    return _reference(workload.model_dump_json(), fan_out, max_users)


def workload_mix(workload: Workload, fan_out: str = "write") -> dict[str, float]:
    """The traffic-weighted mix that runs realise: group message share, mean recipients per
    message, and conversation lookups per read (1 under fan-out on write; every conversation of
    the reader under fan-out on read). Sizing and cost use it, so `size` and `run` share one model
    of the workload."""
    return reference_population(workload, fan_out)[0].mix()
