"""The fast engine: every request of the scenario, in time chunks, fleet by fleet, with arrays.

Flows and rules are sim/des/engine.py's (the reference): send = gateway -> message service ->
{Cassandra write at the write consistency, Redis append, Kafka produce}, acknowledged when the
`ack_after` steps have succeeded; delivery = Kafka commit -> the partition's consumer (group
service) -> one inbox write per recipient (fan-out on write); read = gateway -> message service
-> Redis GET -> on a miss a Cassandra read, then a cache fill nobody waits for.

A chunk [t, t + T) takes the requests arriving in it and moves every job through the fleets in
this order: gateway, message service, Kafka (time slices: followers come back to the brokers),
the consumers' gates, the group service, Redis with Cassandra (time slices: fills come back to
Redis). At every fleet only the jobs arriving before t + T are served; later ones wait for the
next chunk, where nothing can arrive earlier than t + T. Each station therefore serves its
arrivals in time order across chunks, carrying its servers' free times and its waiting jobs, and
the results do not depend on T (tests/test_fast.py checks that). Requests still in flight at a
chunk's end keep their rows; finished ones are recorded and dropped, so memory follows the
requests in flight, not the run's length.

Where this engine departs from the DES (documented in README and checked where it matters):
* the consumer's `max_in_flight` bound is a FIFO gate of that many slots in front of the group
  service, each slot held for the hop and the group-service work, not for the group service's
  queueing nor the inbox writes; the DES takes records from a consumer's partitions round robin
  and holds the slot until the last inbox write. The two agree while the bound does not bind
  (`summary.sample.notes` says when it did);
* a `round_robin` message service rotates in order of the requests' arrival at the system, the
  DES in order of their leaving the gateway (both a strict rotation);
* random numbers are counter-based (sim/fast/rng.py): same seed, same results, but not the DES's
  sample path; the two agree statistically (tests/test_fast.py).
"""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from collections.abc import Callable

import numba as nb
import numpy as np

from sim.cache import CacheModel, scenario_cache_model
from sim.fast.consumers import backlog
from sim.fast.faults import fault_windows
from sim.fast.fleet import serve_jobs
from sim.fast.kafka import KafkaParams, follower_bound, run_kafka
from sim.fast.placement import (
    Popularity,
    Ring,
    TokenBuckets,
    draw_members,
    member,
    partitions_of,
    salt_mixed,
    shards_of,
)
from sim.fast.record import FastRecorder, FleetView, Marks, StationView, histogram_from
from sim.fast.rng import compile_dist, purpose_key, sample_each, sample_many, uniform, uniform_many
from sim.fast.sources import arrivals, merge_order
from sim.fast.station import (
    ARRIVALS,
    BUSY_S,
    COMPLETIONS,
    D_AT,
    DOWN,
    JOBS_S,
    LAST_EVENT,
    QUEUED,
    REJECTIONS,
    SERVED,
    SERVERS,
    STARTED,
    UNAVAILABLE,
    W_AT,
    WAIT_S,
    Stations,
    build_stations,
    cause,
    down_mask,
)
from sim.fast.storage import StorageParams, fail_inbox, get_bounds, issue_read, run_storage
from sim.fast.support import check_supported
from sim.fast.tables import (
    CI,
    CR,
    CW,
    E_CASS,
    E_GROUP,
    E_GW,
    E_MS,
    E_RATE,
    E_TIMEOUT,
    ERRORS,
    FAILED,
    GATE,
    GROUP,
    GW_READ,
    GW_SEND,
    KF,
    KL,
    MS_READ,
    MS_SEND,
    NONE,
    OK,
    PENDING,
    READ_DTYPE,
    RG,
    RS,
    T_INBOX,
    TIMED_EDGES,
    Jobs,
    add_at,
    add_rows,
    concat_jobs,
    empty_jobs,
    inbox_dtype,
    keep_rows,
    make_jobs,
    new_rows,
    remap_jobs,
    send_dtype,
    take_jobs,
)
from sim.run_state import RunState
from sim.sampling import make_cell
from sim.scenario import Scenario, replies_needed
from sim.streams import stream_rngs
from sim.workload import Population

Progress = Callable[[float, float], None]

# fleets, in the order their statistics are kept; "consumer" is the gate of each consumer's slots
FLEETS = ("gateway", "message_service", "group_service", "cassandra", "redis", "kafka", "consumer")
# random purposes (append only: each name's numbers stay put when others are added)
PURPOSES = (
    "send.gap",
    "read.gap",
    "send.user",
    "send.conv",
    "read.user",
    "read.conv",
    "send.gw.pick",
    "read.gw.pick",
    "send.ms.pick",
    "read.ms.pick",
    "send.gw.hop",
    "read.gw.hop",
    "send.gw.svc",
    "read.gw.svc",
    "send.ms.hop",
    "read.ms.hop",
    "send.ms.svc",
    "read.ms.svc",
    "cw.hop",
    "cw.svc",
    "rs.hop",
    "rs.svc",
    "kl.hop",
    "kl.svc",
    "kf.hop",
    "kf.svc",
    "group.hop",
    "group.svc",
    "ci.hop",
    "ci.svc",
    "rg.hop",
    "rg.svc",
    "read.hit",
    "read.offset",
    "cr.hop",
    "cr.svc",
    "fill.hop",
    "fill.svc",
)
STEP_NAMES = ("", "cassandra", "redis", "kafka")
TARGET_REQUESTS_PER_CHUNK = 100_000


@nb.njit(cache=True)
def _inbox_jobs(
    sends: np.ndarray,
    rows: np.ndarray,
    g_end: np.ndarray,
    n_users: np.int64,
    user_pos: np.ndarray,
    replicas: np.ndarray,
    node_base: np.int64,
    rf: np.int64,
    hop: np.ndarray,
    hop_v: np.ndarray,
    svc: np.ndarray,
    svc_v: np.ndarray,
    key_hop: np.uint64,
    key_svc: np.uint64,
    salt: np.uint64,
) -> tuple:
    """Inbox rows (parent, gid, recipient) and their write jobs for deliveries leaving the group
    service: job q * rf + i is replica i of inbox row q, drawn at index (recipient * rf + i)."""
    total = 0
    for n in range(rows.size):
        total += sends[rows[n]].recips
    parent = np.empty(total, np.int64)
    gid = np.empty(total, np.int64)
    rec = np.empty(total, np.int64)
    user = np.empty(total, np.int64)
    q = 0
    for n in range(rows.size):
        r = rows[n]
        g = sends[r].gid
        conv = sends[r].conv
        sender = sends[r].slot
        for k in range(sends[r].recips):
            parent[q], gid[q], rec[q] = r, g, k
            user[q] = member(conv, k + (k >= sender), n_users, salt)  # every member but the sender
            q += 1
    jid = np.empty(total * rf, np.int64)
    jidx = np.empty(total * rf, np.int64)
    jst = np.empty(total * rf, np.int64)
    jrow = np.empty(total * rf, np.int64)
    jslot = np.empty(total * rf, np.int64)
    for q in range(total):
        pos = user_pos[user[q]]  # a cache miss; kept apart from the draws so that misses overlap
        for i in range(rf):
            x = q * rf + i
            jid[x], jidx[x], jrow[x], jslot[x] = gid[q], rec[q] * rf + i, q, i
            jst[x] = node_base + replicas[pos, i]
    jt = sample_each(hop, hop_v, key_hop, jid, jidx)
    x = 0
    for n in range(rows.size):
        for _ in range(sends[rows[n]].recips * rf):
            jt[x] += g_end[n]
            x += 1
    jsvc = sample_each(svc, svc_v, key_svc, jid, jidx)
    return parent, gid, rec, jt, jst, jrow, jslot, jsvc


@nb.njit(cache=True)
def _read_jobs(
    P: StorageParams, ints: np.ndarray, win: np.ndarray, reads: np.ndarray, rows: np.ndarray, at: np.ndarray
) -> tuple:
    """Cassandra read jobs of reads going to Cassandra at `at` (row-major, replica-minor); a read
    with too few live replicas fails at once (sim/fast/storage.py issue_read)."""
    cap = rows.size * P.k_read
    t, svc, lb = np.empty(cap), np.empty(cap), np.empty(cap)
    st, row = np.empty(cap, np.int64), np.empty(cap, np.int64)
    slot, stage = np.empty(cap, np.int64), np.empty(cap, np.int64)
    n = 0
    for i in range(rows.size):
        n = issue_read(P, ints, win, reads, rows[i], at[i], t, st, row, slot, stage, svc, lb, n)
    return t[:n], st[:n], row[:n], slot[:n], svc[:n], lb[:n]


def _causes(codes: np.ndarray) -> np.ndarray:
    """cause() of each failure code (start < 0) of sim/fast/station.py."""
    return (-codes).astype(np.int64) - 1


@nb.njit(cache=True)
def _leader_bounds(P: KafkaParams, gid: np.ndarray, t: np.ndarray, svc: np.ndarray) -> np.ndarray:
    out = np.empty(gid.size)
    for n in range(gid.size):
        out[n] = follower_bound(P, gid[n], t[n], svc[n])
    return out


class FastEngine:
    """Build once from a scenario; `run()` simulates it and returns the DES's RunState shape."""

    def __init__(
        self, scenario: Scenario, progress: Progress | None = None, chunk_s: float | None = None
    ) -> None:
        check_supported(scenario)
        self.scenario = sc = scenario
        self.cell = cell = make_cell(sc)
        self.progress = progress
        self.keys = {name: purpose_key(sc.seed, i) for i, name in enumerate(PURPOSES)}
        # the system's structure (group sizes, the ring) from the DES's own streams and code
        # (sim/streams.py): for a seed both engines simulate the same system
        structure = stream_rngs(sc.seed)
        w = sc.workload
        self.n_users = cell.users
        self.population = pop = Population.build(w, cell.users, cell.conversations, cell.sample,
                                                  structure["conversations"])
        self.n_conv = pop.conversations.recipients.size  # the declared hot conversations included
        self.send_pop = Popularity(pop.send_weights)
        self.read_pop = Popularity(pop.read_weights)
        self.conversations = pop.conversations
        self.mix = pop.mix()
        self.recipients = self.conversations.recipients.astype(np.int32)
        self.hop = compile_dist(sc.network.hop_ms, 1e-3)
        total_rate = cell.sends_per_sec + cell.reads_per_sec
        self.chunk_s = chunk_s or float(min(1.0, max(1e-3, TARGET_REQUESTS_PER_CHUNK / max(total_rate, 1.0))))

        # fleets and stations
        servers: list[int] = []
        qlimits: list[int | None] = []
        fleet_of: list[int] = []
        self.base: dict[str, int] = {}
        self.count: dict[str, int] = {}

        def add(name: str, n: int, c: int, q: int | None) -> None:
            self.base[name] = len(servers)
            self.count[name] = n
            servers.extend([c] * n)
            qlimits.extend([q] * n)
            fleet_of.extend([FLEETS.index(name)] * n)

        ms, gs = sc.message_service, sc.group_service
        if sc.gateway.enabled:
            add("gateway", cell.fleets["gateway"].simulated, sc.gateway.workers, sc.gateway.queue_limit)
        if ms.enabled:
            add("message_service", cell.fleets["message_service"].simulated, ms.workers, ms.queue_limit)
        self.group_on = gs.enabled and sc.kafka.enabled
        if self.group_on:
            add("group_service", cell.fleets["group_service"].simulated, gs.workers, gs.queue_limit)
            add("consumer", cell.fleets["group_service"].simulated, gs.max_in_flight, None)
        c = sc.cassandra
        self.rf = c.replication_factor if c.enabled else 1
        if c.enabled:
            add("cassandra", cell.fleets["cassandra"].simulated, c.workers, c.queue_limit)
        if sc.redis.enabled:
            add("redis", cell.fleets["redis"].simulated, sc.redis.workers, sc.redis.queue_limit)
        if sc.kafka.enabled:
            add("kafka", cell.fleets["kafka"].simulated, sc.kafka.workers, sc.kafka.queue_limit)
        windows = fault_windows(sc, self.base, self.count, servers)
        self.stations: Stations = build_stations(servers, qlimits, fleet_of, len(FLEETS), windows)
        self.crashed = {
            fleet
            for fleet in self.base
            for st, w in windows.items()
            if self.base[fleet] <= st < self.base[fleet] + self.count[fleet] and (w.servers == DOWN).any()
        }
        self.cass_crashes = "cassandra" in self.crashed

        # placement
        self.ring = None
        self.user_pos = np.zeros(1, np.int64)
        self.conv_pos: np.ndarray | None = None
        self.send_key_is_user = ms.partition_key == "user"
        self.read_key_is_user = (gs.enabled and gs.fan_out == "write") or ms.partition_key == "user"
        if c.enabled:
            self.ring = Ring(sc, self.count["cassandra"], structure["cassandra"])
            self.user_pos = self.ring.positions(np.arange(cell.users), salt=10)
            if not (self.send_key_is_user and self.read_key_is_user):
                self.conv_pos = self.ring.positions(np.arange(self.n_conv), salt=11)
        self.cache: CacheModel | None = None
        self.hit_p = np.zeros(1)
        if sc.redis.enabled:
            self.cache = scenario_cache_model(self.scenario, pop.read_weights, self.cell.sample)
            self.hit_p = np.ascontiguousarray(self.cache.hit_probability, dtype=np.float64)
        self.partitions = cell.fleets["kafka_partitions"].simulated if sc.kafka.enabled else 1
        self.required = set(ms.ack_after or ())
        self.buckets = None
        if sc.gateway.enabled and sc.gateway.rate_limit is not None:
            rl = sc.gateway.rate_limit
            self.buckets = TokenBuckets(cell.users, rl.per_user_per_sec, rl.burst)

        # compiled parameters of the cycles
        replicas = self.ring.replicas if self.ring is not None else np.zeros((1, 1), np.int64)
        k = self.keys
        self.kp = KafkaParams(
            rf=np.int64(sc.kafka.replication_factor),
            acks={"0": 0, "1": 1, "all": 2}[sc.kafka.acks],
            required="kafka" in self.required,
            broker_base=np.int64(self.base.get("kafka", 0)),
            brokers=np.int64(self.count.get("kafka", 1)),
            hop=self.hop.params,
            hop_values=self.hop.values,
            append=compile_dist(sc.kafka.append_ms, 1e-3).params,
            append_values=compile_dist(sc.kafka.append_ms, 1e-3).values,
            key_hop=k["kf.hop"],
            key_svc=k["kf.svc"],
            timeout_s=self._timeout_s("message_service->kafka"),
        )
        redis_svc = compile_dist(sc.redis.service_ms, 1e-3)
        cass_read = compile_dist(c.read_service_ms, 1e-3)
        self.sp = StorageParams(
            rf=np.int64(self.rf),
            k_write=np.int64(replies_needed(c.write_consistency, self.rf)),
            k_read=np.int64(replies_needed(c.read_consistency, self.rf)),
            redis_on=sc.redis.enabled,
            cass_on=c.enabled,
            redis_required="redis" in self.required,
            cass_required="cassandra" in self.required,
            shard_base=np.int64(self.base.get("redis", 0)),
            shards=np.int64(self.count.get("redis", 0)),
            node_base=np.int64(self.base.get("cassandra", 0)),
            nodes=np.int64(self.count.get("cassandra", 0)),
            replicas=replicas,
            hop=self.hop.params,
            hop_values=self.hop.values,
            cass_read=cass_read.params,
            cass_read_values=cass_read.values,
            redis_svc=redis_svc.params,
            redis_svc_values=redis_svc.values,
            key_hit=k["read.hit"],
            key_cr_hop=k["cr.hop"],
            key_cr_svc=k["cr.svc"],
            key_fill_hop=k["fill.hop"],
            key_fill_svc=k["fill.svc"],
            window_s=1.0,
            timeouts_s=np.array([self._timeout_s(edge) for edge in TIMED_EDGES[: T_INBOX + 1]]),
            redis_crashes="redis" in self.crashed,
        )
        self.dists = {
            "gw": compile_dist(sc.gateway.service_ms, 1e-3),
            "ms.send": compile_dist(ms.send_service_ms, 1e-3),
            "ms.read": compile_dist(ms.read_service_ms, 1e-3),
            "cw": compile_dist(c.write_service_ms, 1e-3),
            "redis": redis_svc,
            "append": compile_dist(sc.kafka.append_ms, 1e-3),
            "group": compile_dist(gs.service_ms, 1e-3),
        }
        self.salts = {"members": salt_mixed(2), "shard": salt_mixed(3), "partition": salt_mixed(4)}

    def _timeout_s(self, edge: str) -> float:
        policy = self.scenario.policies.get(edge)
        return policy.timeout_ms / 1e3 if policy is not None and policy.timeout_ms else math.inf

    def _coordinate(self, st: np.ndarray, at: np.ndarray) -> np.ndarray | None:
        """The replicas a Cassandra write coordinator asks, [writes, RF], for writes sent at `at` to
        the nodes `st`, as the DES's: the live ones (a down one gets a hint, not replayed here),
        none when fewer than k are live (the write is "unavailable" at once). None: no crash in
        the scenario, every replica is asked."""
        if not self.cass_crashes:
            return None
        S = self.stations
        rf = st.shape[1]
        live = ~down_mask(S.ints, S.win, st.ravel(), np.repeat(at, rf)).reshape(st.shape)
        enough = live.sum(axis=1) >= self.sp.k_write
        self.cass_faults["unavailable"] += int((~enough).sum())
        self.cass_faults["hints_stored"] += int((~live[enough]).sum())
        return live & enough[:, None]

    # -- draws -----------------------------------------------------------------------------------
    def _draw(self, dist: str, purpose: str, gid: np.ndarray, j: int = 0) -> np.ndarray:
        d = self.dists[dist]
        return sample_many(d.params, d.values, self.keys[purpose], gid, np.int64(j))

    def _hop(self, purpose: str, gid: np.ndarray, j: int = 0) -> np.ndarray:
        return sample_many(self.hop.params, self.hop.values, self.keys[purpose], gid, np.int64(j))

    def _pick(
        self, fleet: str, purpose: str, gid: np.ndarray, ranks: np.ndarray | None, t: np.ndarray
    ) -> np.ndarray:
        """Instance of each request picked at `t`: random (u), or a strict rotation over `ranks`
        (arrival order). Health-checked as the DES's Fleet.pick: a random pick of a crashed
        instance is drawn again until it is a live one (uniform over the live instances), up to
        64 times (then all are down: the call finds it "unavailable")."""
        n = self.count[fleet]
        section = getattr(self.scenario, fleet)
        if section.balancer == "round_robin" and ranks is not None:
            picks = (self._rr[fleet] + ranks) % n
            return self.base[fleet] + picks
        u = uniform_many(self.keys[purpose], gid, np.int64(0))
        st = self.base[fleet] + np.minimum((u * n).astype(np.int64), n - 1)
        if fleet in self.crashed:
            S = self.stations
            down = np.flatnonzero(down_mask(S.ints, S.win, st, t))
            for j in range(1, 65):
                if down.size == 0:
                    break
                u = uniform_many(self.keys[purpose], gid[down], np.int64(j))
                st[down] = self.base[fleet] + np.minimum((u * n).astype(np.int64), n - 1)
                down = down[down_mask(S.ints, S.win, st[down], t[down])]
        return st

    # -- the run ---------------------------------------------------------------------------------
    def run(self, drain: bool = False) -> RunState:
        sc = self.scenario
        wall0 = time.perf_counter()
        D = sc.duration_s
        W = sc.warmup_s
        self.horizon = math.inf if drain else D
        self.stations.glob[W_AT], self.stations.glob[D_AT] = W, self.horizon
        self.rec = FastRecorder(W, self.horizon, D)
        self.sends = new_rows(send_dtype(self.rf), 0)
        self.reads = new_rows(READ_DTYPE, 0)
        self.inbox = new_rows(inbox_dtype(self.rf), 0)
        self.pending: dict[str, Jobs] = {
            f: empty_jobs()
            for f in ("gateway", "message_service", "kafka", "consumer", "group_service", "storage")
        }
        self.async_errors = np.zeros(len(ERRORS), np.int64)  # by error code
        self.timed_out = np.zeros(len(TIMED_EDGES), np.int64)
        self.refilled = nb.typed.Dict.empty(nb.types.int64, nb.types.float64)
        self.client_timeouts = 0
        # as the DES reports them; hints are not replayed and data is not lost (sim/fast/support.py)
        self.cass_faults = dict.fromkeys(
            ("unavailable", "hints_stored", "hints_replayed", "hedged_reads", "lost_writes"), 0
        )
        self.edge_calls = Counter()  # calls per policy edge, as the DES's Edge.calls
        n_win = self.rec.n_windows + 2
        self.hits = np.zeros(n_win, np.int64)
        self.misses = np.zeros(n_win, np.int64)
        self.lag_win = np.zeros(n_win)
        self.commit_win = np.zeros(n_win, np.int64)
        self.take_win = np.zeros(n_win, np.int64)
        self.lag_max_s = 0.0
        self.lag_max_msgs = 0
        self.gate_waits = 0
        self.part_counts = np.zeros(self.partitions, np.int64)
        n_cons = self.count.get("consumer", 0)
        self.fifo = (np.zeros(0), np.zeros(0, np.int64), np.zeros(n_cons + 1, np.int64))
        self.rate_limited = 0
        self.gate_jobs = 0  # consumer-gate passes are bookkeeping, not station visits
        self.slices = {"kafka": 0, "storage": 0}
        self.slot_s = np.zeros(max(n_cons, 1))  # consumer slot-seconds held take -> delivery done
        self._rr = {"gateway": 0, "message_service": 0}
        self._next = {"send": (0, math.nan), "read": (0, math.nan)}
        for op, rate, purpose in (
            ("send", self.cell.sends_per_sec, "send.gap"),
            ("read", self.cell.reads_per_sec, "read.gap"),
        ):
            if rate > 0:
                first = (
                    -math.log(float(uniform(self.keys[purpose], np.int64(0), np.int64(0)))) / rate
                    if sc.workload.arrivals == "poisson"
                    else 1.0 / rate
                )
                self._next[op] = (0, first)
        # Everything built so far (populations, tables, the scenario) is long-lived: keep the cyclic
        # garbage collector from re-scanning it at every allocation burst (it cost ~9% of a run).
        gc.freeze()
        try:
            t = 0.0
            while t < D:
                t1 = min(D, (math.floor(t / self.chunk_s + 1e-9) + 1) * self.chunk_s)
                self._chunk(t, t1, arrivals=True)
                t = t1
                if self.progress is not None:
                    self.progress(t, D)
            end = D
            if drain:
                self._chunk(D, math.inf, arrivals=False)
                end = max(D, float(self.stations.glob[LAST_EVENT]))
        finally:
            gc.unfreeze()
        return self._state(end, time.perf_counter() - wall0, drain)

    # -- one chunk -------------------------------------------------------------------------------
    def _chunk(self, t0c: float, t1c: float, arrivals: bool) -> None:
        incoming: dict[str, list[Jobs]] = {f: [] for f in self.pending}
        self.incoming = incoming
        if arrivals:
            self._sources(t1c)
        for fleet in ("gateway", "message_service"):
            if fleet in self.base:
                self._front(fleet, t1c)
        if "kafka" in self.base:
            self._kafka(t0c, t1c)
        if self.group_on:
            self._consumers(t1c)
            self._group(t1c)
        if "cassandra" in self.base or "redis" in self.base:
            self._storage(t0c, t1c)
        self._acks()
        self._record()
        self._compact()

    def _sources(self, t1c: float) -> None:
        sc = self.scenario
        poisson = sc.workload.arrivals == "poisson"
        times = {}
        for op, rate in (("send", self.cell.sends_per_sec), ("read", self.cell.reads_per_sec)):
            gid0, t_next = self._next[op]
            if rate <= 0:
                times[op] = (np.zeros(0), np.zeros(0, np.int64))
                continue
            t, t_after = arrivals(self.keys[f"{op}.gap"], np.int64(gid0), t_next, t1c, rate, poisson)
            gid = np.arange(gid0, gid0 + t.size, dtype=np.int64)
            self._next[op] = (gid0 + t.size, t_after)
            times[op] = (t, gid)
        (ts, gs), (tr, gr) = times["send"], times["read"]
        s_rows = self._new_sends(ts, gs)
        r_rows = self._new_reads(tr, gr)
        self.rec.start("send", ts, ts)
        self.rec.start("read", tr, tr)
        self.edge_calls["client->gateway"] += ts.size + tr.size
        rank_s = rank_r = None
        if self.buckets is not None or any(
            getattr(sc, f).balancer == "round_robin" for f in ("gateway", "message_service") if f in self.base
        ):
            rank_s, rank_r = merge_order(ts, tr)
        self._ranks = {"send": rank_s, "read": rank_r}
        if "gateway" not in self.base:
            self._after_gateway("send", s_rows, ts)
            self._after_gateway("read", r_rows, tr)
            return
        if self.buckets is not None:
            order = np.empty(ts.size + tr.size, np.int64)
            who = np.empty(ts.size + tr.size, np.int64)
            assert rank_s is not None and rank_r is not None
            order[rank_s] = np.arange(ts.size)
            who[rank_s] = 0
            order[rank_r] = np.arange(tr.size)
            who[rank_r] = 1
            t_all = np.empty(ts.size + tr.size)
            t_all[rank_s] = ts
            t_all[rank_r] = tr
            u_all = np.empty(ts.size + tr.size, np.int64)
            u_all[rank_s] = self.sends["user"][s_rows]
            u_all[rank_r] = self.reads["user"][r_rows]
            allowed = self.buckets.allow(t_all, u_all)
            ok_s = allowed[rank_s]
            ok_r = allowed[rank_r]
            # the rotation counts only admitted requests (the DES picks after the token bucket)
            admitted_rank = np.cumsum(allowed) - 1
            self._ranks = {"send": admitted_rank[rank_s], "read": admitted_rank[rank_r]}
            self.rate_limited += int((~allowed).sum())
            for table, rows, ok, t in ((self.sends, s_rows, ok_s, ts), (self.reads, r_rows, ok_r, tr)):
                table["st"][rows[~ok]] = FAILED
                table["fin"][rows[~ok]] = t[~ok]
                table["err"][rows[~ok]] = E_RATE
        else:
            ok_s = np.ones(ts.size, bool)
            ok_r = np.ones(tr.size, bool)
        for op, table, rows, gids, ok, t, stage in (
            ("send", self.sends, s_rows, gs, ok_s, ts, GW_SEND),
            ("read", self.reads, r_rows, gr, ok_r, tr, GW_READ),
        ):
            rows, t, gid = rows[ok], t[ok], gids[ok]
            ranks = self._ranks[op][ok] if self._ranks[op] is not None else None
            st = self._pick("gateway", f"{op}.gw.pick", gid, ranks, t)
            jobs = make_jobs(
                t + self._hop(f"{op}.gw.hop", gid), st, rows, stage, self._draw("gw", f"{op}.gw.svc", gid)
            )
            add_at(table["out"], rows, 1)
            self.incoming["gateway"].append(jobs)
        self._advance_rr(int(ok_s.sum() + ok_r.sum()), fleet="gateway")

    def _advance_rr(self, n: int, fleet: str | None = None) -> None:
        for f in (fleet,) if fleet else ("gateway", "message_service"):
            if f in self.count:
                self._rr[f] = (self._rr[f] + n) % self.count[f]

    def _new_sends(self, t: np.ndarray, gid: np.ndarray) -> np.ndarray:
        n = t.size
        start = self.sends.size
        self.sends = add_rows(self.sends, n)
        rows = self.sends[start:]
        rows["gid"], rows["t0"] = gid, t
        conv = self.send_pop.draw(uniform_many(self.keys["send.conv"], gid, np.int64(0)))
        rows["slot"], rows["user"] = draw_members(
            conv, uniform_many(self.keys["send.user"], gid, np.int64(0)), self.recipients,
            self.population.send_member_weights, np.int64(self.n_users), self.salts["members"])
        rows["conv"] = conv
        rows["recips"] = self.recipients[conv]
        if "kafka" in self.base:
            rows["part"] = partitions_of(conv, np.int64(self.partitions), self.salts["partition"])
        if "redis" in self.base:
            rows["shard"] = shards_of(conv, np.int64(self.count["redis"]), self.salts["shard"])
        if self.ring is not None:
            rows["pos"] = self.user_pos[rows["user"]] if self.send_key_is_user else self.conv_pos[conv]
        return np.arange(start, start + n, dtype=np.int64)

    def _new_reads(self, t: np.ndarray, gid: np.ndarray) -> np.ndarray:
        n = t.size
        start = self.reads.size
        self.reads = add_rows(self.reads, n)
        rows = self.reads[start:]
        rows["gid"], rows["t0"] = gid, t
        conv = self.read_pop.draw(uniform_many(self.keys["read.conv"], gid, np.int64(0)))
        _, rows["user"] = draw_members(
            conv, uniform_many(self.keys["read.user"], gid, np.int64(0)), self.recipients,
            self.population.read_member_weights, np.int64(self.n_users), self.salts["members"])
        rows["conv"] = conv
        if "redis" in self.base:
            rows["hitp"] = self.hit_p[conv]
            rows["shard"] = shards_of(conv, np.int64(self.count["redis"]), self.salts["shard"])
        if self.ring is not None:
            rows["pos"] = self.user_pos[rows["user"]] if self.read_key_is_user else self.conv_pos[conv]
            u = uniform_many(self.keys["read.offset"], gid, np.int64(0))
            rows["off"] = np.minimum((u * self.rf).astype(np.int64), self.rf - 1)
        return np.arange(start, start + n, dtype=np.int64)

    # -- gateway and message service -------------------------------------------------------------
    def _serve(self, fleet: str, t1c: float) -> tuple[Jobs, np.ndarray, np.ndarray, np.ndarray]:
        jobs, part = concat_jobs([self.pending[fleet], *self.incoming[fleet]])
        if not jobs.n:
            self.pending[fleet] = jobs
            return jobs, np.zeros(0), np.zeros(0), np.zeros(0, bool)
        start, end, done = serve_jobs(self.stations, jobs.t, jobs.st, jobs.svc, part, t1c)
        self.pending[fleet] = take_jobs(jobs, ~done)
        return jobs, start, end, done

    def _front(self, fleet: str, t1c: float) -> None:
        jobs, start, end, done = self._serve(fleet, t1c)
        if not jobs.n:
            return
        gw = fleet == "gateway"
        for table, stage, op in (
            (self.sends, GW_SEND if gw else MS_SEND, "send"),
            (self.reads, GW_READ if gw else MS_READ, "read"),
        ):
            sel = done & (jobs.stage == stage)
            rows, e = jobs.row[sel], end[sel]
            add_at(table["out"], rows, -1)
            code = start[sel]
            rej = code < 0  # failed: `end` is when (sim/fast/station.py)
            bad = rows[rej]
            table["st"][bad] = FAILED
            table["fin"][bad] = e[rej]
            table["err"][bad] = (E_GW if gw else E_MS) + _causes(code[rej])
            good, at = rows[~rej], e[~rej]
            table["gw_end" if gw else "ms_end"][good] = at
            if gw:
                self._after_gateway(op, good, at)
            elif op == "send":
                self._store(good, at)
            else:
                self._lookup(good, at)

    def _after_gateway(self, op: str, rows: np.ndarray, at: np.ndarray) -> None:
        table = self.sends if op == "send" else self.reads
        if "message_service" not in self.base:
            if op == "send":
                self._store(rows, at)
            else:
                self._lookup(rows, at)
            return
        gid = table["gid"][rows]
        ranks = None
        if self.scenario.message_service.balancer == "round_robin":
            # a strict rotation in order of arrival at the system (the DES: of leaving the gateway)
            ranks = np.argsort(np.argsort(table["t0"][rows], kind="stable"), kind="stable")
            ranks = (ranks + self._rr["message_service"]) % self.count["message_service"]
            self._rr["message_service"] = (self._rr["message_service"] + rows.size) % self.count[
                "message_service"
            ]
            st = self.base["message_service"] + ranks
        else:
            st = self._pick("message_service", f"{op}.ms.pick", gid, None, at)
        stage = MS_SEND if op == "send" else MS_READ
        svc = self._draw(f"ms.{op}", f"{op}.ms.svc", gid)
        self.incoming["message_service"].append(
            make_jobs(at + self._hop(f"{op}.ms.hop", gid), st, rows, stage, svc)
        )
        add_at(table["out"], rows, 1)

    # -- the steps of a send and a read ----------------------------------------------------------
    def _store(self, rows: np.ndarray, at: np.ndarray) -> None:
        """A send leaves the message service: Cassandra write, Redis append, Kafka produce."""
        s = self.sends
        s["store"][rows] = at
        if rows.size == 0:
            return
        gid = s["gid"][rows]
        for step in ("cassandra", "redis", "kafka"):
            if step in self.base:
                self.edge_calls[f"message_service->{step}"] += rows.size
        if "cassandra" in self.base:
            rf = self.rf
            s["cw_left"][rows] = rf
            s["cw_st"][rows] = PENDING
            pos = s["pos"][rows]
            t = np.empty((rows.size, rf))
            svc = np.empty((rows.size, rf))
            st = np.empty((rows.size, rf), np.int64)
            for i in range(rf):
                t[:, i] = at + self._hop("cw.hop", gid, i)
                svc[:, i] = self._draw("cw", "cw.svc", gid, i)
                st[:, i] = self.base["cassandra"] + self.ring.replicas[pos, i]
            slot = np.broadcast_to(np.arange(rf), (rows.size, rf))
            ask = self._coordinate(st, at)
            if ask is None:
                self.incoming["storage"].append(
                    make_jobs(t.ravel(), st.ravel(), np.repeat(rows, rf), CW, svc.ravel(), slot.ravel())
                )
                add_at(s["out"], rows, rf)
            else:  # a crash: hints for down replicas, "unavailable" with fewer than k up
                n_ask = ask.sum(axis=1)
                bad = n_ask == 0
                s["cw_st"][rows[bad]] = FAILED
                s["cw_t"][rows[bad]] = at[bad]
                s["cw_err"][rows[bad]] = E_CASS + cause(UNAVAILABLE)
                if "cassandra" not in self.required:
                    self.async_errors[E_CASS + cause(UNAVAILABLE)] += int((at[bad] < self.horizon).sum())
                s["cw_left"][rows] = n_ask
                flat = ask.ravel()
                self.incoming["storage"].append(
                    make_jobs(
                        t.ravel()[flat], st.ravel()[flat], np.repeat(rows, rf)[flat], CW, svc.ravel()[flat],
                        slot.ravel()[flat],
                    )
                )
                s["out"][rows] += n_ask
        if "redis" in self.base:
            s["rs_st"][rows] = PENDING
            t = at + self._hop("rs.hop", gid)
            st = self.base["redis"] + s["shard"][rows]
            self.incoming["storage"].append(make_jobs(t, st, rows, RS, self._draw("redis", "rs.svc", gid)))
            add_at(s["out"], rows, 1)
        if "kafka" in self.base:
            if self.kp.acks == 0:
                s["ka_st"][rows] = OK
                s["ka_t"][rows] = at
            else:
                s["ka_st"][rows] = PENDING
            t = at + self._hop("kl.hop", gid)
            svc = self._draw("append", "kl.svc", gid)
            st = self.base["kafka"] + s["part"][rows] % self.count["kafka"]
            lb = _leader_bounds(self.kp, gid, t, svc)
            self.incoming["kafka"].append(make_jobs(t, st, rows, KL, svc, lb=lb))
            add_at(s["out"], rows, 1)

    def _lookup(self, rows: np.ndarray, at: np.ndarray) -> None:
        """A read leaves the message service: Redis GET, or Cassandra, or done (no storage)."""
        r = self.reads
        if rows.size == 0:
            return
        gid = r["gid"][rows]
        if "redis" in self.base:
            t = at + self._hop("rg.hop", gid)
            st = self.base["redis"] + r["shard"][rows]
            lb = get_bounds(self.sp, r, rows, t)
            self.incoming["storage"].append(
                make_jobs(t, st, rows, RG, self._draw("redis", "rg.svc", gid), lb=lb)
            )
            add_at(r["out"], rows, 1)
        elif "cassandra" in self.base:
            S = self.stations
            t, st, row, slot, svc, lb = _read_jobs(self.sp, S.ints, S.win, r, rows, at)
            self.incoming["storage"].append(make_jobs(t, st, row, CR, svc, slot, lb))
        else:
            r["st"][rows] = OK
            r["fin"][rows] = at

    # -- Kafka, consumers, group service ---------------------------------------------------------
    def _kafka(self, t0c: float, t1c: float) -> None:
        jobs, part = concat_jobs([self.pending["kafka"], *self.incoming["kafka"]])
        if not jobs.n:
            return
        before = self.sends["commit"].copy() if self.group_on else None
        done, gt, gst, grow, gslot, gsvc, slices = run_kafka(
            self.stations,
            self.kp,
            self.sends,
            *jobs,  # t, st, row, slot, stage, svc, lb
            part,
            t0c,
            t1c,
            self.async_errors,
            self.timed_out,
        )
        self.slices["kafka"] += slices
        left = make_jobs(gt, gst, grow, KF, gsvc, gslot)
        self.pending["kafka"], _ = concat_jobs([take_jobs(jobs, ~done), left])
        if before is not None:
            s = self.sends
            new = np.flatnonzero(np.isnan(before) & ~np.isnan(s["commit"]) & (s["d_st"] == NONE))
            if new.size:
                self._deliver(new)

    def _deliver(self, rows: np.ndarray) -> None:
        """Committed records reach their consumer's gate (the delivery starts at the commit)."""
        s = self.sends
        commit = s["commit"][rows]
        s["d_st"][rows] = PENDING
        s["in_max"][rows] = -math.inf
        s["in_fail"][rows] = math.inf
        self.rec.start("delivery", s["t0"][rows], commit)
        gid = s["gid"][rows]
        hop = self._hop("group.hop", gid)
        svc = (
            self._draw("group", "group.svc", gid)
            + s["recips"][rows] * self.scenario.group_service.per_recipient_ms * 1e-3
        )
        consumer = s["part"][rows] % self.count["consumer"]
        self.incoming["consumer"].append(
            make_jobs(commit, self.base["consumer"] + consumer, rows, GATE, hop + svc)
        )
        add_at(s["out"], rows, 1)

    def _consumers(self, t1c: float) -> None:
        jobs, start, _end, done = self._serve("consumer", t1c)
        if not jobs.n:
            return
        rows, commit, take = jobs.row[done], jobs.t[done], start[done]
        self.gate_jobs += int(done.sum())
        s = self.sends
        add_at(s["out"], rows, -1)
        s["take"][rows] = take
        lag = take - commit
        W, H = self.scenario.warmup_s, self.horizon
        self.gate_waits += int((lag > 0).sum())
        measured = (take >= W) & (take < H)
        if measured.any():
            self.lag_max_s = max(self.lag_max_s, float(lag[measured].max()))
        win = self._window(take)
        np.maximum.at(self.lag_win, win, lag)
        np.add.at(self.take_win, win, 1)
        np.add.at(self.commit_win, self._window(commit), 1)
        # backlog per partition at each append, consumer by consumer (gate order)
        from sim.fast.order import order_jobs

        sub = take_jobs(jobs, done)
        perm, off = order_jobs(
            sub.st, sub.t, np.zeros(sub.n, np.int64), np.int64(self.stations.ints.shape[0])
        )
        best, ft, fp, fo = backlog(
            perm,
            off,
            np.int64(self.base["consumer"]),
            np.int64(self.base["consumer"] + self.count["consumer"]),
            sub.t,
            take,
            s["part"][sub.row].astype(np.int64),
            self.part_counts,
            *self.fifo,
            W,
            H,
        )
        self.fifo = (ft, fp, fo)
        self.lag_max_msgs = max(self.lag_max_msgs, int(best))
        gid = s["gid"][rows]
        hop = self._hop("group.hop", gid)
        svc = (
            self._draw("group", "group.svc", gid)
            + s["recips"][rows] * self.scenario.group_service.per_recipient_ms * 1e-3
        )
        st = self.base["group_service"] + (jobs.st[done] - self.base["consumer"])
        self.incoming["group_service"].append(make_jobs(take + hop, st, rows, GROUP, svc))
        add_at(s["out"], rows, 1)

    def _window(self, t: np.ndarray) -> np.ndarray:
        return 1 + np.minimum(np.floor(t / self.rec.window_s).astype(np.int64), self.rec.n_windows)

    def _group(self, t1c: float) -> None:
        jobs, start, end, done = self._serve("group_service", t1c)
        if not jobs.n:
            return
        s = self.sends
        rows, e = jobs.row[done], end[done]
        add_at(s["out"], rows, -1)
        code = start[done]
        rej = code < 0  # failed: `end` is when
        bad = rows[rej]
        s["d_st"][bad] = FAILED
        s["d_fin"][bad] = e[rej]
        s["d_err"][bad] = E_GROUP + _causes(code[rej])
        good, at = rows[~rej], e[~rej]
        s["g_end"][good] = at
        if self.scenario.group_service.fan_out == "read" or good.size == 0:
            s["d_st"][good] = OK
            s["d_fin"][good] = at
            return
        d, rf = self.dists["cw"], self.rf
        parent, gid, rec, jt, jst, jrow, jslot, jsvc = _inbox_jobs(
            s,
            good,
            at,
            np.int64(self.n_users),
            self.user_pos,
            self.ring.replicas,
            np.int64(self.base["cassandra"]),
            np.int64(rf),
            self.hop.params,
            self.hop.values,
            d.params,
            d.values,
            self.keys["ci.hop"],
            self.keys["ci.svc"],
            self.salts["members"],
        )
        start_row = self.inbox.size
        self.inbox = add_rows(self.inbox, parent.size)
        rows_new = self.inbox[start_row:]
        rows_new["parent"], rows_new["gid"], rows_new["r"], rows_new["left"] = parent, gid, rec, rf
        s["in_left"][good] = s["recips"][good]
        s["out"][good] += s["recips"][good]
        self.edge_calls["group_service->cassandra"] += parent.size
        sent = s["g_end"][parent]
        ask = self._coordinate(jst.reshape(-1, rf), sent)
        if ask is not None:  # a crash: hints for down replicas, "unavailable" with fewer than k up
            n_ask = ask.sum(axis=1)
            rows_new["left"] = n_ask
            bad = np.flatnonzero(n_ask == 0)
            fail_inbox(self.inbox, s, bad + start_row, sent[bad], np.int64(E_CASS + cause(UNAVAILABLE)))
            flat = ask.ravel()
            jt, jst, jrow, jsvc, jslot = jt[flat], jst[flat], jrow[flat], jsvc[flat], jslot[flat]
        self.incoming["storage"].append(make_jobs(jt, jst, jrow + start_row, CI, jsvc, jslot))

    # -- Redis and Cassandra ---------------------------------------------------------------------
    def _storage(self, t0c: float, t1c: float) -> None:
        jobs, part = concat_jobs([self.pending["storage"], *self.incoming["storage"]])
        if not jobs.n:
            return
        done, gt, gst, grow, gslot, gstage, gsvc, glb, slices = run_storage(
            self.stations,
            self.sp,
            self.sends,
            self.reads,
            self.inbox,
            *jobs,  # t, st, row, slot, stage, svc, lb
            part,
            t0c,
            t1c,
            self.async_errors,
            self.timed_out,
            self.hits,
            self.misses,
            self.refilled,
        )
        self.slices["storage"] += slices
        left = Jobs(gt, gst, grow, gslot, gstage, gsvc, glb)
        self.pending["storage"], _ = concat_jobs([take_jobs(jobs, ~done), left])

    # -- outcomes --------------------------------------------------------------------------------
    def _acks(self) -> None:
        """Sends whose ack steps have all answered: done at the last success or the first failure."""
        s = self.sends
        cand = np.flatnonzero((s["st"] == NONE) & ~np.isnan(s["store"]))
        if cand.size == 0:
            return
        steps = [(c, f"{p}_st", f"{p}_t", f"{p}_err") for c, p in ((1, "cw"), (2, "rs"), (3, "ka"))]
        need = [(code, st_f, t_f, err) for code, st_f, t_f, err in steps if STEP_NAMES[code] in self.required]
        ready = np.ones(cand.size, bool)
        for _, st_f, _, _ in need:
            st = s[st_f][cand]
            ready &= (st == OK) | (st == FAILED)
        rows = cand[ready]
        if rows.size == 0:
            return
        fail_t = np.full(rows.size, math.inf)
        fail_e = np.zeros(rows.size, np.int8)
        ok_t = s["store"][rows].copy()
        last = np.zeros(rows.size, np.int8)
        for code, st_f, t_f, err in need:
            st, t = s[st_f][rows], s[t_f][rows]
            failed = (st == FAILED) & (t < fail_t)
            fail_t[failed] = t[failed]
            fail_e[failed] = s[err][rows][failed]
            later = (st == OK) & (t >= ok_t)
            ok_t[later] = t[later]
            last[later] = code
        failed = fail_t < math.inf
        s["st"][rows] = np.where(failed, FAILED, OK)
        s["fin"][rows] = np.where(failed, fail_t, ok_t)
        s["err"][rows] = np.where(failed, fail_e, 0)
        s["last"][rows] = np.where(failed, 0, last)

    def _record(self) -> None:
        s, r = self.sends, self.reads
        # sends
        rows = np.flatnonzero(((s["st"] == OK) | (s["st"] == FAILED)) & ((s["rec"] & 1) == 0))
        if rows.size:
            t0, last = s["t0"][rows], s["last"][rows]
            fin, ok, err = self._client_deadline(t0, s["fin"][rows], s["st"][rows] == OK, s["err"][rows])
            marks = [("gateway", s["gw_end"][rows]), ("message_service", s["ms_end"][rows])]
            marks += [(STEP_NAMES[c], np.where(last == c, fin, np.nan)) for c in (1, 2, 3)]
            self.rec.finish("send", t0, t0, fin, ok, err, ERRORS, Marks(marks))
            s["rec"][rows] |= 1
        # deliveries
        rows = np.flatnonzero(((s["d_st"] == OK) | (s["d_st"] == FAILED)) & ((s["rec"] & 2) == 0))
        if rows.size:
            ok = s["d_st"][rows] == OK
            marks = [
                ("send_and_produce", s["commit"][rows]),
                ("kafka_consumer_lag", s["take"][rows]),
                ("group_service", s["g_end"][rows]),
            ]
            if self.scenario.group_service.fan_out == "write":
                marks.append(("cassandra", np.where(ok, s["in_max"][rows], np.nan)))
            self.rec.finish(
                "delivery",
                s["t0"][rows],
                s["commit"][rows],
                s["d_fin"][rows],
                ok,
                s["d_err"][rows],
                ERRORS,
                Marks(marks),
            )
            # how long each delivery held its consumer's slot in the DES's terms (take -> done)
            take, fin = s["take"][rows], s["d_fin"][rows]
            lo, hi = np.maximum(take, self.scenario.warmup_s), np.minimum(fin, self.horizon)
            held = np.where(np.isnan(take), 0.0, np.clip(hi - lo, 0.0, None))
            np.add.at(self.slot_s, s["part"][rows] % self.count["consumer"], held)
            s["rec"][rows] |= 2
        # reads
        rows = np.flatnonzero(((r["st"] == OK) | (r["st"] == FAILED)) & (r["rec"] == 0))
        if rows.size:
            t0 = r["t0"][rows]
            fin, ok, err = self._client_deadline(t0, r["fin"][rows], r["st"][rows] == OK, r["err"][rows])
            via_cass = ok & ~np.isnan(r["cr_max"][rows]) & (r["cr_max"][rows] > -math.inf)
            marks = [
                ("gateway", r["gw_end"][rows]),
                ("message_service", r["ms_end"][rows]),
                ("redis", r["rg_end"][rows]),
                ("cassandra", np.where(via_cass, fin, np.nan)),
            ]
            sent = r["cr_at"][rows]
            self.edge_calls["message_service->cassandra"] += int((~np.isnan(sent)).sum())
            at_once = (err == E_CASS + cause(UNAVAILABLE)) & (fin == sent)  # the coordinator's answer
            self.cass_faults["unavailable"] += int(at_once.sum())
            self.rec.finish("read", t0, t0, fin, ok, err, ERRORS, Marks(marks))
            r["rec"][rows] = 1

    def _client_deadline(
        self, t0: np.ndarray, fin: np.ndarray, ok: np.ndarray, err: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Outcomes as the client sees them: with a client->gateway timeout, a request not answered
        by t0 + timeout fails then ("timeout"; its work goes on, as in the DES)."""
        limit = t0 + self._timeout_s("client->gateway")
        late = fin > limit
        if not late.any():
            return fin, ok, err
        self.client_timeouts += int(late.sum())
        return np.where(late, limit, fin), ok & ~late, np.where(late, E_TIMEOUT, err)

    def _compact(self) -> None:
        s, r, ib = self.sends, self.reads, self.inbox
        keep_s = s["out"] > 0
        keep_r = r["out"] > 0
        keep_i = ib["left"] > 0
        if keep_s.all() and keep_r.all() and keep_i.all():
            return
        smap = np.cumsum(keep_s) - 1
        smap[~keep_s] = -1
        rmap = np.cumsum(keep_r) - 1
        rmap[~keep_r] = -1
        imap = np.cumsum(keep_i) - 1
        imap[~keep_i] = -1
        self.sends = keep_rows(s, keep_s)
        self.reads = keep_rows(r, keep_r)
        self.inbox = keep_rows(ib, keep_i)
        if self.inbox.size:
            parent = smap[self.inbox["parent"]]
            if (parent < 0).any():
                raise RuntimeError("an inbox write outlived its delivery")
            self.inbox["parent"] = parent
        for name, jobs in self.pending.items():
            if jobs.n:
                self.pending[name] = remap_jobs(jobs, smap, rmap, imap)

    # -- the result ------------------------------------------------------------------------------
    def _edge_stats(self) -> dict[str, dict[str, int]]:
        """The policies' edges as the DES reports them (timeouts only: nothing else is supported)."""
        out = {}
        for edge in self.scenario.policies:
            timeouts = (
                self.client_timeouts
                if edge == "client->gateway"
                else int(self.timed_out[TIMED_EDGES.index(edge)])
            )
            out[edge] = {
                "calls": int(self.edge_calls[edge]),
                "retries": 0,
                "timeouts": timeouts,
                "retries_denied_by_budget": 0,
            }
        return out

    def _state(self, end: float, wall_s: float, drain: bool) -> RunState:
        sc = self.scenario
        s, r = self.sends, self.reads
        # requests that never got an outcome: in flight at the end
        self.rec.unfinished("send", s["t0"][(s["rec"] & 1) == 0])
        started = (s["d_st"] != NONE) & ((s["rec"] & 2) == 0)
        self.rec.unfinished("delivery", s["commit"][started])
        self.rec.unfinished("read", r["t0"][r["rec"] == 0])
        measured = end - sc.warmup_s
        extra: dict[str, np.ndarray] = {}
        n = self.rec.n_windows
        if "redis" in self.base:
            h, m = self.hits[1 : n + 1], self.misses[1 : n + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                extra["cache_hit_ratio"] = np.where(h + m > 0, h / np.maximum(h + m, 1), np.nan)
        if self.group_on:
            extra["kafka_lag_max_s"] = self.lag_win[1 : n + 1]
            backlog = np.cumsum(self.commit_win) - np.cumsum(self.take_win)
            extra["kafka_backlog_msgs"] = backlog[1 : n + 1]
        recorder = self.rec.close(end, 1.0 / self.cell.sample, extra)
        fleets = {}
        S = self.stations
        for name in FLEETS[:-1]:
            if name not in self.base:
                continue
            f = FLEETS.index(name)
            b, cnt = self.base[name], self.count[name]
            views = [
                StationView(
                    i,
                    int(S.ints[b + i, SERVERS]),
                    int(S.ints[b + i, ARRIVALS]),
                    int(S.ints[b + i, REJECTIONS]),
                    int(S.ints[b + i, COMPLETIONS]),
                    float(S.floats[b + i, BUSY_S]),
                    float(S.floats[b + i, JOBS_S]),
                    int(S.ints[b + i, STARTED]),
                    int(S.ints[b + i, QUEUED]),
                    float(S.floats[b + i, WAIT_S]),
                )
                for i in range(cnt)
            ]
            zero = int(S.waits[f, -1])
            total, vmax, vmin = S.wait_stats[f]
            waits = histogram_from(
                S.waits[f, :-1], zero, float(total), 0.0 if zero else float(vmin), max(float(vmax), 0.0)
            )
            fleets[name] = FleetView(name, views, waits)
        async_errors = Counter({ERRORS[i]: int(x) for i, x in enumerate(self.async_errors) if x})
        backlog_end = int(self.commit_win.sum() - self.take_win.sum()) if not drain else 0
        state = RunState(
            scenario=sc,
            cell=self.cell,
            recorder=recorder,
            fleets=fleets,  # type: ignore[arg-type]
            cache=self.cache,
            redis_hits=int(self.hits[0]),
            redis_misses=int(self.misses[0]),
            kafka_lag_max_s=self.lag_max_s,
            kafka_lag_max_msgs=self.lag_max_msgs,
            kafka_backlog=backlog_end,
            async_errors=async_errors,
            mix=self.mix,
            edges=self._edge_stats(),
            cassandra_faults=dict(self.cass_faults) if "cassandra" in self.base else {},
            kafka_unavailable=0,
            rate_limited=self.rate_limited,
            events=int(S.counts[SERVED]) - self.gate_jobs,
            sim_seconds=end,
            measured_seconds=measured,
            wall_seconds=wall_s,
            drained=drain,
        )
        if self.group_on:
            limit = sc.group_service.max_in_flight
            busiest = float(self.slot_s.max()) / measured if measured > 0 else 0.0
            if self.gate_waits or busiest > 0.2 * limit:
                self.cell.notes.append(
                    f"fast engine: the busiest consumer had {busiest:,.0f} deliveries in flight on average "
                    f"from taking a record to its last inbox write, against group_service.max_in_flight "
                    f"= {limit} ({self.gate_waits:,} records waited for a slot); the fast engine holds a "
                    f"slot only for the group-service work, so where the bound binds, delivery latency "
                    f"and consumer lag are too optimistic: confirm with --engine des"
                )
        return state
