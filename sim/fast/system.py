"""The simulated system as the fast engine builds it from a scenario, once per engine: the fleets
and their stations (with the faults' capacity windows), the placement (ring, partitions, shards,
popularity), the cache model, the compiled parameters of the Kafka and storage kernels, the
service distributions and the random keys of every purpose.

The stations' arrays hold their state as the run advances; everything else here is fixed.
"""

from __future__ import annotations

import math

import numpy as np

from sim.arrays.placement import Popularity, Ring, TokenBuckets, salt_mixed
from sim.arrays.rng import compile_dist, purpose_key, sample_many
from sim.arrays.station import DOWN, Stations, build_stations
from sim.arrays.windows import fault_windows
from sim.cache import CacheModel, scenario_cache_model
from sim.fast.kafka import KafkaParams
from sim.fast.storage import StorageParams
from sim.fast.tables import T_INBOX, TIMED_EDGES
from sim.sampling import make_cell
from sim.scenario import Scenario, replies_needed
from sim.streams import stream_rngs
from sim.workload import Population

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


class System:
    """A scenario's system as the fast engine runs it (see the module's docstring)."""

    def __init__(self, scenario: Scenario, chunk_s: float | None = None) -> None:
        self.scenario = sc = scenario
        self.cell = cell = make_cell(sc)
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
            timeout_s=self.timeout_s("message_service->kafka"),
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
            timeouts_s=np.array([self.timeout_s(edge) for edge in TIMED_EDGES[: T_INBOX + 1]]),
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
    def timeout_s(self, edge: str) -> float:
        policy = self.scenario.policies.get(edge)
        return policy.timeout_ms / 1e3 if policy is not None and policy.timeout_ms else math.inf
    def draw(self, dist: str, purpose: str, gid: np.ndarray, j: int = 0) -> np.ndarray:
        d = self.dists[dist]
        return sample_many(d.params, d.values, self.keys[purpose], gid, np.int64(j))
    def draw_hop(self, purpose: str, gid: np.ndarray, j: int = 0) -> np.ndarray:
        return sample_many(self.hop.params, self.hop.values, self.keys[purpose], gid, np.int64(j))
