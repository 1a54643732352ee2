"""The station-order engine (sim/stations) against queueing theory and the DES.

* Closed forms, R = 10 replications (seeds 1..10) on the stations engine: each statistic's mean over
  them within T_CRIT x SE of theory, SE = stdev / sqrt(R), T_CRIT the two-sided 99.9% Student-t
  quantile at 9 degrees of freedom (4.78), as tests/test_queueing.py. The models: M/M/8 at rho 0.85
  (Erlang C), an open Jackson network of two flows over three stations (the header of
  scenarios/validation/design-chain.yaml derives it), M/M/1/K in overload, k-of-n order statistics
  at Cassandra (design-quorum.yaml) and a probabilistic tandem through a cache (design-cache-tandem).
* Against the DES, R = 8 replications per engine, p50, p99 and availability of each flow and each
  error cause's share agreeing by Welch's t at a family alpha of 0.001 split over the figures
  (tests/agreement.py, as the calendar's agreement): a chain with several instances per fleet
  picked at random, lognormal hops and services and a queue bound that rejects
  (tests/data/stations-chain.yaml); and a design with Zipf keys, a cache lookup whose miss reads
  Cassandra at QUORUM, a parallel write joined at all, and replicas rejected by a queue bound
  (tests/data/stations-design.yaml), its hit ratio compared too.
* Round robin: over a drained run each fleet's instances take the same number of calls, to one
  (the rotation is exact); p50, p99, availability and rejections agree with the DES as above.
* Rate limits: a token bucket admits its burst plus its rate and no more, to two requests, on all
  three engines; with Zipf-popular users (tests/data/stations-limits.yaml) the refused share, p50,
  p99 and availability agree with the DES as above.
* Fan-outs: a ride request fanning out to 1-50 drivers (tests/data/stations-fanout.yaml) agrees
  with the DES; with deterministic times its latency, lookups and tail breakdown are the closed form
  on all three engines. A client's timeout on M/M/8: the timed-out share is the sojourn's tail
  (Erlang C wait plus service) in closed form, within T_CRIT x SE over 10 seeds.
* A cache fill (the one loop, run in slices of LOOP_SLICE_S): with exponential times it is a BCMP
  product-form network (design-cache-fill.yaml) in closed form on all three engines; a drained run
  serves one set per miss; with lognormal hops, Zipf keys and shards that refuse lookups and fills
  (tests/data/stations-fill.yaml) it agrees with the DES as above; auto passes the stations engine
  over for it, and an explicit --engine stations says it approximates.
* Faults (tests/data/stations-faults.yaml): crashes of an api instance and of the whole fleet,
  a slow Cassandra node, GC pauses and a load spike agree with the DES as above; the calls made
  while every instance is down fail at once, as many as the Poisson count (over 10 seeds); a lost
  Redis shard (stations-fill.yaml) fails its lookups and fills and comes back empty as the DES's.
* Exact: the same seed gives the same summary; one thread or two give the same summary (draws are
  numbered by station); every request sent is succeeded, failed or in flight; a drained run leaves
  none in flight.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from agreement import disagreements, flows, share, tail_share
from scipy import stats
from typer.testing import CliRunner

import sim.stations.engine as stations_engine
from sim import load_scenario, simulate
from sim.analytic import erlang_c
from sim.engines import ENGINES, choose

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "scenarios" / "validation"
CHAIN = VALIDATION / "design-chain.yaml"
MMC = VALIDATION / "design-mmc.yaml"
BOUND = VALIDATION / "design-queue-bound.yaml"
QUORUM = VALIDATION / "design-quorum.yaml"
CACHE_TANDEM = VALIDATION / "design-cache-tandem.yaml"
AGREE = Path(__file__).parent / "data" / "stations-chain.yaml"
DESIGN = Path(__file__).parent / "data" / "stations-design.yaml"
CACHE_FILL = VALIDATION / "design-cache-fill.yaml"
FILL = Path(__file__).parent / "data" / "stations-fill.yaml"
FAULTS = Path(__file__).parent / "data" / "stations-faults.yaml"
R = 10
T_CRIT = float(stats.t.ppf(1 - 0.001 / 2, R - 1))
Summary = dict[str, Any]


def runs(path: Path, engine: str = "stations", n: int = R, overrides: tuple[str, ...] = ()) -> list[Summary]:
    return [simulate(load_scenario(path, [f"seed={seed}", *overrides]), engine=engine).summary
            for seed in range(1, n + 1)]


def within(values: list[float], theory: float) -> None:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - theory) <= T_CRIT * se, f"{mean:.5f} vs {theory:.5f} (T_CRIT x SE = {T_CRIT * se:.5f})"


def mm1_ms(lam: float, mean_ms: float) -> float:
    return 1000.0 / (1000.0 / mean_ms - lam)


def test_mmc_is_erlang_c() -> None:
    sc = load_scenario(MMC)
    pool = sc.components["pool"]
    theory = erlang_c(pool.workers, sc.flows["work"].rate_per_sec, 1.0)
    assert theory.utilization == pytest.approx(0.85)
    out = runs(MMC)
    within([s["latency_ms"]["work"]["mean"] for s in out], theory.response_ms_mean)
    within([s["components"]["pool"]["p_wait"] for s in out], theory.p_wait)
    within([s["components"]["pool"]["utilization_mean"] for s in out], theory.utilization)


def test_two_flows_through_three_stations_are_a_jackson_network() -> None:
    edge, api, db = mm1_ms(500, 0.5), mm1_ms(300, 1.0), mm1_ms(500, 1.2)
    assert edge + api + db == pytest.approx(5.09524, abs=1e-5)  # the scenario's header
    out = runs(CHAIN)
    within([s["latency_ms"]["checkout"]["mean"] for s in out], edge + api + db)
    within([s["latency_ms"]["browse"]["mean"] for s in out], edge + db)
    for comp, rho in (("edge", 0.25), ("api", 0.3), ("db", 0.6)):
        within([s["components"][comp]["utilization_mean"] for s in out], rho)


def test_a_bounded_queue_in_overload_is_mm1k() -> None:
    out = runs(BOUND)
    within([s["availability"]["work"] for s in out], 0.63459)  # the scenario's header
    within([s["latency_ms"]["work"]["mean"] for s in out], 3.75829)
    assert all(set(s["errors"]) == {"work:pool.rejected"} for s in out)


def test_cassandra_replies_are_k_of_n_order_statistics() -> None:
    theory = {"write_one": 1 / 3, "write_quorum": 1 / 3 + 1 / 2, "write_all": 1 / 3 + 1 / 2 + 1,
              "read_one": 1.0, "read_quorum": 1 / 2 + 1, "read_all": 1 / 3 + 1 / 2 + 1}  # the header's
    out = runs(QUORUM)
    for flow, mean_ms in theory.items():
        within([s["latency_ms"][flow]["mean"] for s in out], mean_ms)


def test_a_cache_lookup_and_its_miss_are_a_probabilistic_tandem() -> None:
    lam, hit = 400.0, 0.7
    theory = mm1_ms(lam, 1.0) + mm1_ms(lam, 0.5) + (1 - hit) * mm1_ms(lam * (1 - hit), 2.0)
    assert theory == pytest.approx(3.0811, abs=1e-4)  # the scenario's header
    out = runs(CACHE_TANDEM)
    within([s["latency_ms"]["get"]["mean"] for s in out], theory)
    within([s["cache"]["hit_ratio"] for s in out], hit)


@pytest.mark.parametrize("engine", ["stations", "calendar", "des"])
def test_a_cache_fill_is_a_product_form_network_in_closed_form(engine: str) -> None:
    """The fill is the one loop: the cache serves lookups and, after each miss's read, a set that
    nobody waits for (design-cache-fill.yaml's header derives the BCMP figures)."""
    lam, hit = 400.0, 0.5
    cache = mm1_ms(lam * (2 - hit), 1.0)  # the cache's sojourn: lookups and fills, 600/s
    theory = mm1_ms(lam, 1.0) + cache + (1 - hit) * mm1_ms(lam * (1 - hit), 2.0)
    assert theory == pytest.approx(5.8333, abs=1e-4) and cache == pytest.approx(2.5)  # the header's
    out = runs(CACHE_FILL, engine)
    within([s["latency_ms"]["get"]["mean"] for s in out], theory)
    within([s["components"]["cache"]["utilization_mean"] for s in out], lam * (2 - hit) / 1000)


def test_a_drained_cache_fill_sets_the_key_once_a_miss() -> None:
    """Every lookup and every fill reaches the cache once, and nothing else does: over a drained run
    from time 0 its shard serves hits + 2 x misses, and the database the misses."""
    from sim.stations.engine import StationsEngine

    engine = StationsEngine(load_scenario(CACHE_FILL, ["warmup_s=0", "duration_s=20"]))
    state = engine.run(drain=True)
    assert engine.joins_in_use == 0 and engine.jobs_queued == 0
    (shard,), (node,) = state.fleets["cache"].stations, state.fleets["db"].stations
    assert state.redis_misses > 3000 and state.redis_hits > 3000
    assert shard.arrivals == shard.completions == state.redis_hits + 2 * state.redis_misses
    assert node.arrivals == state.redis_misses


def test_a_design_with_hops_instances_and_rejections_agrees_with_the_des() -> None:
    figures = [*flows("checkout"), *flows("browse", avail=False), share("checkout:api.rejected")]
    st, des = runs(AGREE, "stations", 8), runs(AGREE, "des", 8)
    for s in st + des:
        assert s["availability"]["browse"] == 1.0  # browse never meets the bounded api
        assert 0.05 < s["errors"]["checkout:api.rejected"] / s["requests"]["checkout"]["sent"] < 0.3
    failures = disagreements("stations-chain", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


def test_keys_caches_joins_and_quorums_agree_with_the_des() -> None:
    hit_ratio = ("cache.hit_ratio", lambda s: s["cache"]["hit_ratio"], False)
    figures = [*flows("get"), *flows("put"), share("get:db.rejected"), share("put:db.rejected"), hit_ratio,
               *(tail_share(flow, part) for flow in ("get", "put") for part in ("edge", "api", "db"))]
    st, des = runs(DESIGN, "stations", 8), runs(DESIGN, "des", 8)
    for s in st + des:
        assert set(s["errors"]) <= {"get:db.rejected", "put:db.rejected"}
        assert s["errors"].get("get:db.rejected", 0) > 0
    failures = disagreements("stations-design", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


def test_a_cache_fill_agrees_with_the_des() -> None:
    """Lognormal hops, Zipf keys through an LRU cache too small for them, and shards whose queue bound
    rejects lookups and fills: the fills (~40% of the cache's work) wait and are refused as the DES's
    are, in slices (a fill due within its lookup's slice waits for the next: LOOP_SLICE_S)."""
    def async_share(cause: str) -> tuple[str, Any, bool]:
        return (f"async_errors[{cause}] / get sent",
                lambda s: s["async_errors"].get(cause, 0) / s["requests"]["get"]["sent"], False)

    figures = [*flows("get", avail=False), async_share("cache.fill_rejected"), async_share("cache.rejected"),
               ("cache.hit_ratio", lambda s: s["cache"]["hit_ratio"], False),
               ("cache utilization", lambda s: s["components"]["cache"]["utilization_mean"], False),
               ("cache wait", lambda s: s["components"]["cache"]["queue_wait_ms_mean"], False)]
    st, des = runs(FILL, "stations", 8), runs(FILL, "des", 8)
    for s in st + des:
        assert s["availability"]["get"] == 1.0  # a rejected lookup is a miss; the database never refuses
        assert s["async_errors"]["cache.fill_rejected"] > 0 and s["async_errors"]["cache.rejected"] > 0
    failures = disagreements("stations-fill", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


def test_crashes_slow_nodes_gc_pauses_and_a_load_spike_agree_with_the_des() -> None:
    """tests/data/stations-faults.yaml: an api instance crashes (its calls fail as `crashed`, later
    ones go to the others), then the whole api fleet (calls made then fail as `unavailable`), a slow
    Cassandra node, GC pauses on an edge instance and a load spike: the windows of
    sim/arrays/windows.py, as the calendar's, and the DES's health-checked pick."""
    figures = [*flows("get"), share("get:api.unavailable"), share("get:api.crashed"),
               ("get sent", lambda s: s["requests"]["get"]["sent"], False),
               ("api utilization", lambda s: s["components"]["api"]["utilization_mean"], False),
               ("edge utilization max", lambda s: s["components"]["edge"]["utilization_max"], False)]
    st, des = runs(FAULTS, "stations", 8), runs(FAULTS, "des", 8)
    for s in st + des:
        assert set(s["errors"]) <= {"get:api.crashed", "get:api.unavailable"}
        assert s["errors"]["get:api.unavailable"] > 400  # ~600 calls made while every instance is down
    failures = disagreements("stations-faults", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


def test_a_lost_redis_shard_comes_back_empty_as_the_des() -> None:
    """tests/data/stations-fill.yaml with the hot shard lost for 0.5 s: its lookups and fills fail as
    `unavailable` (a lookup then a miss), and once back it holds only the keys refilled since, so
    the hit ratio drops and the database takes the misses (kernel.after's filled_at)."""
    def async_share(cause: str) -> tuple[str, Any, bool]:
        return (f"async_errors[{cause}] / get sent",
                lambda s: s["async_errors"].get(cause, 0) / s["requests"]["get"]["sent"], False)

    lost = ("faults=[{kind: shard_loss, component: cache, nodes: [0], start_s: 1.5, duration_s: 0.5}]",)
    figures = [*flows("get", avail=False), async_share("cache.unavailable"),
               async_share("cache.fill_unavailable"),
               ("cache.hit_ratio", lambda s: s["cache"]["hit_ratio"], False),
               ("db utilization max", lambda s: s["components"]["db"]["utilization_max"], False)]
    st, des = runs(FILL, "stations", 8, lost), runs(FILL, "des", 8, lost)
    plain = runs(FILL, "stations", 8)
    for s, before in zip(st, plain, strict=True):
        assert s["async_errors"]["cache.unavailable"] > 300  # ~680 lookups reach the shard while it is down
        assert s["cache"]["hit_ratio"] < before["cache"]["hit_ratio"] - 0.05  # the cold shard's misses
    failures = disagreements("stations-shard-loss", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


def test_a_redis_shards_crash_is_its_loss() -> None:
    """A crash of a Redis shard is a shard loss: its key's calls still go to it (no other shard holds
    the key) and fail while it is down, and it comes back empty: the same numbers."""
    fault = "faults=[{{kind: {}, component: cache, nodes: [0], start_s: 1.5, duration_s: 0.5}}]"
    crash, lost = (simulate(load_scenario(FILL, [fault.format(kind)]), engine="stations").summary
                   for kind in ("crash", "shard_loss"))
    assert crash["async_errors"]["cache.unavailable"] > 300
    for s in (crash, lost):
        s.pop("wall_seconds")
        s.pop("faults")  # (their labels name the kind)
        s.pop("recovery")
    assert crash == lost


def test_calls_made_while_every_instance_is_down_fail_at_once() -> None:
    """With every api instance down for 0.2 s of a 3,000/s flow, the calls made then (~600, Poisson)
    fail as `unavailable` at once (within T_CRIT x the Poisson SD over 10 seeds), and no request
    fails otherwise but those in service or queued at the crash."""
    out = runs(FAULTS, overrides=("faults=[{kind: crash, component: api, count: 3, start_s: 3.2, "
                                  "duration_s: 0.2}]",))
    lost = [s["errors"]["get:api.unavailable"] for s in out]
    expected = 3000 * 0.2  # the load spike is over by then
    assert abs(statistics.fmean(lost) - expected) <= T_CRIT * math.sqrt(expected / R), lost
    assert all(s["errors"].get("get:api.crashed", 0) <= 10 for s in out)  # 12 servers' jobs at most


@pytest.mark.parametrize("engine", ["stations", "calendar", "des"])
def test_the_tail_breakdown_is_the_critical_path_in_closed_form(engine: str) -> None:
    """Every time deterministic (hop h, each service its value) and the load so light that nothing
    queues (8 workers a station): each request's critical path is known, and the tail breakdown's
    mean per part must be it, to rounding, on every engine (the DES's rule, sim/des/flows.py). A
    get's tail (its misses): the gateway h + 0.3, the service h + 0.4, the lookup h + 0.001 (one
    Redis thread: a microsecond lest two lookups meet), the QUORUM read h + 1.0. A put: gateway
    h + 0.3, service h + 0.6, then of its two joined writes only Cassandra's h + 0.6; the cache's set
    answers first, off the critical path."""
    h = 0.25
    sc = load_scenario(DESIGN, [
        "flows.get.rate_per_sec=60", "flows.put.rate_per_sec=60", f"network.hop_ms={h}",
        *(f"components.{c}.workers=8" for c in ("edge", "api", "db")),
        "components.edge.service_ms=0.3", "components.api.ops.get=0.4", "components.api.ops.put=0.6",
        "components.cache.service_ms=0.001", "components.db.read_service_ms=1.0",
        "components.db.write_service_ms=0.6"])
    s = simulate(sc, engine=engine).summary
    assert s["engine"] == engine
    expected = {"get": {"edge": h + 0.3, "api": h + 0.4, "cache": h + 0.001, "db": h + 1.0},
                "put": {"edge": h + 0.3, "api": h + 0.6, "db": h + 0.6}}
    for flow, parts in expected.items():
        tail = s["latency_breakdown"][flow]
        assert tail["requests"] > 20, tail
        assert tail["mean_ms"] == pytest.approx(parts, abs=1e-9), (flow, tail)


def test_marking_every_kth_request_changes_nothing_but_the_breakdowns_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MARKED_PER_SEC requests a second, one in k of a flow is marked (sim/stations/engine.py):
    the rest of the summary is the same to the bit, and the breakdown of the sample names no part
    the whole's lacks, with its tail count (n marked, times k) within 4 sd of the whole's (sd about
    sqrt(count x k)) and each share within 4 standard errors of the whole's (a share is a latency-
    weighted mean of fractions in [0, 1]: sd <= 0.5, so SE <= 0.5 / sqrt(n))."""
    sc = load_scenario(DESIGN, ["duration_s=16"])
    full = simulate(sc, engine="stations").summary
    monkeypatch.setattr(stations_engine, "MARKED_PER_SEC", 2000 / 4)
    thinned = simulate(sc, engine="stations").summary
    drop = {"latency_breakdown", "wall_seconds"}
    rest = [{k: v for k, v in s.items() if k not in drop} for s in (full, thinned)]
    assert rest[0] == rest[1]
    for flow, k in (("get", 4), ("put", 3)):  # 2000/s and 1200/s over 500
        a, b = full["latency_breakdown"][flow], thinned["latency_breakdown"][flow]
        n = b["requests"] / k
        assert n > 50, b
        assert abs(b["requests"] - a["requests"]) <= 4 * math.sqrt(a["requests"] * k), (a, b)
        assert set(b["shares"]) <= set(a["shares"])
        for part, share_ in a["shares"].items():
            assert abs(b["shares"].get(part, 0.0) - share_) <= 4 * 0.5 / math.sqrt(n), (flow, part, a, b)


ROBIN = ["components.edge.balancer=round_robin", "components.api.balancer=round_robin",
         "components.db.balancer=round_robin"]


def test_a_round_robin_fleet_takes_its_calls_in_one_rotation() -> None:
    """Round robin gives each call the next instance in the order calls are made (the DES's Fleet.pick),
    so over a drained run (no warm-up cut) the instances' arrivals differ by one at most, the first
    instances taking the remainder; a random pick spreads them by ~sqrt(n) (thousands here)."""
    from sim.stations.engine import StationsEngine

    state = StationsEngine(load_scenario(AGREE, [*ROBIN, "warmup_s=0"])).run(drain=True)
    for name in ("edge", "api", "db"):
        arrivals = [st.arrivals for st in state.fleets[name].stations]
        base, extra = divmod(sum(arrivals), len(arrivals))
        assert arrivals == [base + 1] * extra + [base] * (len(arrivals) - extra), (name, arrivals)


def test_round_robin_agrees_with_the_des() -> None:
    """The chain with every fleet round robin: the queue-bounded api rejects about half as many
    checkouts as at random (6.5% against 12.8% on seed 1), as many on both engines."""
    st = [simulate(load_scenario(AGREE, [*ROBIN, f"seed={seed}"]), engine="stations").summary
          for seed in range(1, 9)]
    des = [simulate(load_scenario(AGREE, [*ROBIN, f"seed={seed}"]), engine="des").summary
           for seed in range(1, 9)]
    figures = [*flows("checkout"), *flows("browse", avail=False), share("checkout:api.rejected")]
    failures = disagreements("stations-chain, round robin", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


LIMITS = Path(__file__).parent / "data" / "stations-limits.yaml"


@pytest.mark.parametrize("engine", ["stations", "des", "calendar"])
def test_a_token_bucket_admits_its_burst_and_its_rate_and_no_more(engine: str) -> None:
    """Every request on one key, 2,000 a second against a bucket of 100 a second and a burst of 50,
    over 4 s from a full bucket: the bucket admits at most 50 + 100 x 4 = 450 (its guarantee), and,
    requests coming every 0.5 ms on average, it never holds a whole token for long: at least 448."""
    sc = load_scenario(LIMITS, ["keys.user.count=1", "flows.go.rate_per_sec=2000", "warmup_s=0",
                                "components.edge.rate_limit={per_user_per_sec: 100, burst: 50}"])
    s = simulate(sc, engine=engine, drain=True).summary
    go = s["requests"]["go"]
    assert set(s["errors"]) == {"go:edge.rate_limited"} and go["in_flight"] == 0
    assert 448 <= go["succeeded"] <= 450, go
    assert go["failed"] == s["errors"]["go:edge.rate_limited"] > 7_000


def test_rate_limits_agree_with_the_des() -> None:
    st, des = runs(LIMITS, "stations", 8), runs(LIMITS, "des", 8)
    for s in st + des:
        assert 0.3 < s["errors"]["go:edge.rate_limited"] / s["requests"]["go"]["sent"] < 0.5
    failures = disagreements("stations-limits", [*flows("go"), share("go:edge.rate_limited")], st, des, 0.001,
                             engine="stations")
    assert not failures, "\n".join(failures)


FANOUT = Path(__file__).parent / "data" / "stations-fanout.yaml"


def test_fan_outs_and_their_cost_per_member_agree_with_the_des() -> None:
    figures = [*flows("request_ride", avail=False), *flows("trip_status", avail=False),
               *(tail_share("request_ride", part) for part in ("edge", "dispatch", "locations", "trips")),
               ("locations per s", lambda s: s["components"]["locations"]["ops_per_sec"], False),
               ("dispatch utilization", lambda s: s["components"]["dispatch"]["utilization_mean"], False)]
    st, des = runs(FANOUT, "stations", 8), runs(FANOUT, "des", 8)
    failures = disagreements("stations-fanout", figures, st, des, 0.001, engine="stations")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("engine", ["stations", "calendar", "des"])
def test_a_fan_out_in_closed_form(engine: str, tmp_path: Path) -> None:
    """Five members, every time deterministic (hop h), nothing queueing (Redis answers at once): a
    ride request takes 4 h + 0.3 + (1.0 + 5 x 0.05) + 0 + 0.35 ms, its lookups one per member (5 per
    request at Redis), and its tail breakdown is that path, the members' lookups once (they tie: one
    of them is the last the join waits for)."""
    h = 0.25
    path = tmp_path / "fan.yaml"
    path.write_text(f"""extends: {FANOUT}
network: {{hop_ms: {h}}}
components:
  edge: {{service_ms: 0.3}}
  dispatch: {{workers: 8, ops: {{match: {{service_ms: 1.0, per_member_ms: 0.05}}, read: 0.3}}}}
  locations: {{service_ms: 0}}
  trips: {{write_service_ms: 0.35, read_service_ms: 1.0, workers: 8}}
flows:
  request_ride:
    rate_per_sec: 100
    key: trip.new
    steps:
      - call: edge
      - call: dispatch.match
      - fan_out: {{members: 5, key: driver, steps: [{{call: locations.get}}]}}
      - {{call: trips.write, consistency: QUORUM}}
  trip_status: {{rate_per_sec: 50}}
""")
    s = simulate(load_scenario(path), engine=engine).summary
    ride = s["latency_ms"]["request_ride"]
    assert ride["p50"] == pytest.approx(4 * h + 1.9, rel=0.05)  # (histogram buckets: 5% wide)
    assert ride["max"] == pytest.approx(4 * h + 1.9, abs=1e-9)
    assert ride["mean"] == pytest.approx(4 * h + 1.9, abs=1e-9)  # (every request: the mean is the max)
    lookups = s["components"]["locations"]["ops_per_sec"] * 3.5 / ride["count"]  # (3.5 s measured)
    assert lookups == pytest.approx(5, rel=0.01)
    tail = s["latency_breakdown"]["request_ride"]
    assert tail["mean_ms"] == pytest.approx({"edge": h + 0.3, "dispatch": h + 1.25, "locations": h,
                                             "trips": h + 0.35}, abs=1e-9), tail


def test_a_clients_timeout_on_mmc_is_the_sojourn_tail_in_closed_form() -> None:
    """M/M/8 at rho 0.85 (design-mmc.yaml) behind a client timeout of T = 3 ms: a request times out
    when its sojourn, an Erlang C wait (P(Wq > t) = C e^(-theta t), theta = c mu - lambda) plus an
    exponential service, exceeds T: P = e^(-mu T) + C mu (e^(-mu T) - e^(-theta T)) / (theta - mu)
    = 0.1141. Measured over 10 seeds (the timed-out share of the measured requests) within T_CRIT x
    SE; the edge counts every request a call and each timeout once, with no retries."""
    c_erlang, mu, theta, t = erlang_c(8, 6800, 1.0).p_wait, 1000.0, 1200.0, 0.003
    theory = math.exp(-mu * t) + c_erlang * mu * (math.exp(-mu * t) - math.exp(-theta * t)) / (theta - mu)
    shares = []
    for seed in range(1, R + 1):
        s = simulate(load_scenario(MMC, ['policies={"client->pool": {timeout_ms: 3}}', "duration_s=20",
                                         f"seed={seed}"]), engine="stations").summary
        timed_out = s["errors"]["work:timeout"]
        shares.append(timed_out / (timed_out + s["latency_ms"]["work"]["count"]))
        edge = s["resilience"]["edges"]["client->pool"]
        assert edge["calls"] == s["requests"]["work"]["sent"] and edge["retries"] == 0
        assert edge["timeouts"] == s["requests"]["work"]["failed"]  # (every failure a timeout)
        assert s["latency_ms"]["work"]["max"] <= 3.0 * 1.05  # no answer counts after the deadline
        assert s["checks"]["conservation_holds"]
    within(shares, theory)
    # the same names and counters as the DES's (the figures: the closed form above)
    short = [f"seed={R}", 'policies={"client->pool": {timeout_ms: 3}}', "duration_s=3", "warmup_s=1"]
    des = simulate(load_scenario(MMC, short), engine="des").summary
    st = simulate(load_scenario(MMC, short), engine="stations").summary
    assert set(des["errors"]) == set(st["errors"]) == {"work:timeout"}
    assert des["resilience"]["edges"].keys() == st["resilience"]["edges"].keys() == {"client->pool"}
    edges = [s["resilience"]["edges"]["client->pool"] for s in (des, st)]
    assert edges[0].keys() == edges[1].keys()


def test_only_a_clients_timeout_is_run_of_the_policies() -> None:
    supports = ENGINES["stations"].supports
    assert supports(load_scenario(MMC, ['policies={"client->pool": {timeout_ms: 3}}'])) == []
    (retry,) = supports(load_scenario(MMC, ['policies={"client->pool": {timeout_ms: 3, retry: {}}}']))
    assert retry.where == "policies.client->pool" and "a client's timeout" in str(retry)


def _same(a: Summary, b: Summary) -> None:
    a, b = dict(a), dict(b)
    for s in (a, b):
        s.pop("wall_seconds")
    assert a == b


# every feature at once: a fan-out with its cost per member, round robin, a rate limit that refuses,
# a client's timeout, Cassandra quorums, marks
EVERYTHING = (FANOUT, ["components.dispatch.balancer=round_robin", "components.edge.balancer=round_robin",
                       "components.edge.rate_limit={per_user_per_sec: 0.5, burst: 1}", "keys.trip.count=1000",
                       'policies={"client->edge": {timeout_ms: 8}}'])


@pytest.mark.parametrize("case", [(AGREE, []), EVERYTHING, (FILL, []), (FAULTS, [])],
                         ids=["chain", "everything", "fill", "faults"])
def test_same_seed_same_numbers_on_one_thread_or_two(monkeypatch: pytest.MonkeyPatch,
                                                     case: tuple[Path, list[str]]) -> None:
    sc = load_scenario(*case)
    first = simulate(sc, engine="stations").summary
    _same(first, simulate(sc, engine="stations").summary)
    monkeypatch.setattr(stations_engine, "THREADS", 1)
    _same(first, simulate(sc, engine="stations").summary)


def test_every_feature_at_once_accounts_for_every_request_and_a_drain_holds_nothing() -> None:
    """A drained run of EVERYTHING: every request succeeded or failed (rate-limited trip reads, timed
    out rides), and no join row, queued job or mark row is left."""
    from sim.stations.engine import StationsEngine

    engine = StationsEngine(load_scenario(*EVERYTHING))
    state = engine.run(drain=True)
    assert engine.joins_in_use == 0 and engine.jobs_queued == 0 and engine.marks_in_use == 0
    s = simulate(load_scenario(*EVERYTHING), engine="stations", drain=True).summary
    assert s["checks"]["conservation_holds"]
    assert all(r["in_flight"] == 0 for r in s["requests"].values())
    assert s["errors"].get("trip_status:edge.rate_limited", 0) > 0
    assert s["errors"].get("request_ride:timeout", 0) > 0
    assert state.rate_limited > 0


def test_every_request_is_accounted_for_and_a_drain_ends_them_all() -> None:
    sc = load_scenario(AGREE)
    for drain in (False, True):
        s = simulate(sc, engine="stations", drain=drain).summary
        for flow, r in s["requests"].items():
            assert r["sent"] == r["succeeded"] + r["failed"] + r["in_flight"], flow
            assert r["sent"] > 0
            if drain:
                assert r["in_flight"] == 0
        assert s["checks"]["conservation_holds"]
        # Little's law, L against lambda x W: they differ only by the requests in flight at the
        # measured window's two ends, ~L / (lambda x T) = 0.14% of each here
        for flow, little in s["checks"]["little"].items():
            assert little["relative_difference"] < 0.01, (flow, little)


def test_a_drained_run_holds_nothing_and_a_long_one_holds_only_what_is_in_flight() -> None:
    """Join rows are freed once settled and answered, mark rows once their request ends, and queues
    hold only jobs in flight: after a drained run nothing is held; after a plain one, at most the
    requests in flight hold rows (two joins each at most: a parallel write and its Cassandra
    quorum; one mark row each)."""
    from sim.stations.engine import StationsEngine

    drained = StationsEngine(load_scenario(DESIGN))
    drained.run(drain=True)
    assert drained.joins_in_use == 0 and drained.jobs_queued == 0 and drained.marks_in_use == 0
    engine = StationsEngine(load_scenario(DESIGN, ["duration_s=8"]))
    state = engine.run()
    in_flight = sum(s.in_flight for s in state.recorder.ops.values())
    assert engine.joins_in_use <= 2 * in_flight
    assert 0 < engine.marks_in_use <= in_flight


def test_the_live_view_gets_a_row_a_second_with_each_instance_busy_share() -> None:
    rows: list[dict[str, Any]] = []
    s = simulate(load_scenario(DESIGN), engine="stations", on_window=rows.append).summary
    assert [row["t_s"] for row in rows] == [1.0, 2.0, 3.0, 4.0]
    for row in rows:
        util = row["utilization"]
        assert set(util) == {"edge", "api", "cache", "db"} and len(util["db"]) == 4
        assert all(0.0 <= u <= 1.0 for shares in util.values() for u in shares)
    # db's busy share over seconds 1-4 against its utilization measured over [0.5, 4): both estimate
    # one stationary figure (~0.48); ~4,500 replica visits/s of ~0.8 ms on 8 servers give a 3-second
    # mean a standard error of ~0.006 (sqrt(lambda E[S^2] / (c^2 T))), so 0.05 is ~8 of them
    busy = [sum(row["utilization"]["db"]) / 4 for row in rows[1:]]
    assert abs(sum(busy) / len(busy) - s["components"]["db"]["utilization_mean"]) < 0.05


def test_it_refuses_what_it_cannot_run_in_one_line_each() -> None:
    supports = ENGINES["stations"].supports
    assert supports(load_scenario(MMC)) == [] and supports(load_scenario(CHAIN)) == []
    (messaging,) = supports(load_scenario(VALIDATION / "mmc.yaml"))
    assert messaging.where == "flows" and "messaging preset" in str(messaging)
    assert supports(load_scenario(QUORUM)) == [] and supports(load_scenario(DESIGN)) == []
    url = load_scenario(ROOT / "scenarios" / "designs" / "url-shortener.yaml")
    assert supports(url) == []  # and only approximately:
    (fill,) = ENGINES["stations"].approximates(url)
    assert fill.where == "flows.resolve.steps[2].fill" and "in slices of 0.5 ms" in str(fill)
    assert ENGINES["stations"].approximates(load_scenario(DESIGN)) == []
    fields = {e.where for e in supports(load_scenario(ROOT / "scenarios" / "designs" / "ride-hailing.yaml"))}
    assert fields == {"components.location_stream", "flows.track", "flows.location.steps[2].steps[1]"}
    news = supports(load_scenario(ROOT / "scenarios" / "designs" / "news-feed.yaml"))
    (members,) = [e for e in news if e.where == "flows.fanout.steps[0].members"]
    assert "a max of 1000000" in str(members) and "at most 256 members" in str(members)
    assert all("\n" not in str(e) for e in supports(load_scenario(ROOT / "scenarios" / "designs" /
                                                                   "ride-hailing.yaml")))
    crash = ('faults=[{kind: crash, component: db, count: 1, start_s: 1, duration_s: 1}, '
             '{kind: zone_outage, zone: 0, start_s: 1, duration_s: 1}]')
    assert [(e.where, "a crash of db, a cassandra" in str(e) or "zone_outage" in str(e))
            for e in supports(load_scenario(FAULTS, [crash]))] == [("faults[0]", True), ("faults[1]", True)]
    assert supports(load_scenario(FAULTS)) == []
    (sample,) = supports(load_scenario(MMC, ["sample=0.5"]))
    assert sample.where == "sample"


def test_auto_picks_it_for_what_it_runs_and_the_calendar_otherwise(tmp_path: Path) -> None:
    from cli import app

    assert choose(load_scenario(CHAIN)) == ("stations", "engine: stations (jobs in station order, every "
                                                        "request, on both cores)")
    assert choose(load_scenario(CHAIN, ["sample=0.5"])) == (
        "calendar", "engine: calendar (stations cannot run it: sample: a sample cell)")
    out = CliRunner().invoke(app, ["run", str(MMC), "--duration", "2", "--warmup", "0.5", "--quiet",
                                   "--out", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert [line for line in out.stderr.splitlines() if line.startswith("engine: ")] == [
        "engine: stations (jobs in station order, every request, on both cores)"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["engine"] == "stations" and summary["latency_breakdown"]["work"]["requests"] > 0


def test_the_cli_refuses_it_for_a_design_it_cannot_run(tmp_path: Path) -> None:
    from cli import app

    news = ROOT / "scenarios" / "designs" / "news-feed.yaml"
    out = CliRunner().invoke(app, ["run", str(news), "--engine", "stations", "--out", str(tmp_path / "r")])
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "components.post_events: a kafka component" in lines[0], out.output
    assert "(and 3 more the stations engine cannot run)" in lines[0]
    assert not (tmp_path / "r").exists()


def test_the_cli_says_what_it_runs_only_approximately(tmp_path: Path) -> None:
    from cli import app

    out = CliRunner().invoke(app, ["run", str(CACHE_FILL), "--engine", "stations", "--duration", "2",
                                   "--warmup", "0.5", "--quiet", "--out", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert [line for line in out.stderr.splitlines() if line.startswith("engine: ")] == [
        "engine: stations approximates flows.get.steps[1].fill: a cache fill, in slices of 0.5 ms (a fill "
        "due within its lookup's slice is served in the next); the calendar and des engines run it exactly"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["engine"] == "stations"
    assert choose(load_scenario(CACHE_FILL)) == (
        "calendar", "engine: calendar (stations only approximates it: flows.get.steps[1].fill: a cache fill, "
                    "in slices of 0.5 ms)")
