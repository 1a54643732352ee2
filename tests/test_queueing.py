"""Validation against queueing theory: the simulator reproduces textbook closed forms.

Each test runs a scenario from scenarios/validation/ (whose header comment states the closed form
and its numbers), reads the model's parameters back from that file, and compares an estimate from
`summary.json` with theory at a tolerance derived from the estimator's standard error:

* Queue samples are autocorrelated, so one run's mean has no simple standard error. We run
  R = 10 independent replications (seeds 1..10, separate runs, each with its own warm-up), take
  each replication's statistic, and use SE = stdev(replication values) / sqrt(R). The mean of the
  replications must lie within T_CRIT x SE of theory, where T_CRIT = 4.78 is the two-sided 99.9%
  Student-t quantile with R - 1 = 9 degrees of freedom (the SE is itself estimated from 10 values;
  with 9 df, 4.78 has the 99.9% coverage that z = 3.29 has when the SE is known).
* Where the samples are iid (the k-of-n runs, in which nothing queues) the SE comes from the exact
  variance under the closed form and the bound is Z_CRIT = 3.29 (two-sided 99.9%, normal).
* Quantiles come from the log-bucketed histogram, within sqrt(1.02) - 1 < 1% of the exact sample
  quantile (sim/histogram.py); quantile tolerances add that relative error on top of the SE term.

About 40 checks at a 0.1% false-alarm rate each: a correct model fails one with probability of
about 4% for a given set of seeds; seeds are fixed, so the outcome is reproducible. Scenarios run
with the same seed share their arrival stream (common random numbers), so their deviations from
theory are correlated across scenarios; each check on its own keeps its 0.1% rate.

The replications run in a pool of CAPSIM_TEST_PROCS processes (default: the CPU count).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import PoolMap
from scipy import optimize, stats

from sim import Scenario, load_scenario, simulate
from sim.histogram import GROWTH

VALIDATION = Path(__file__).resolve().parent.parent / "scenarios" / "validation"
R = 10
SEEDS = tuple(range(1, R + 1))
ALPHA = 0.001  # two-sided false-alarm rate per check
T_CRIT = float(stats.t.ppf(1 - ALPHA / 2, R - 1))  # 4.781
Z_CRIT = float(stats.norm.ppf(1 - ALPHA / 2))  # 3.291
HIST_REL_ERR = math.sqrt(GROWTH) - 1  # 0.995%: the histogram's quantile error bound

pytestmark = pytest.mark.slow

Summary = dict[str, Any]
Getter = Callable[[Summary], float]
Job = tuple[str, tuple[str, ...], bool]  # scenario name, overrides, drain


# --------------------------------------------------------------------------------------------
# Running scenarios


def _scenario(name: str, overrides: list[str] | None = None) -> Scenario:
    return load_scenario(VALIDATION / f"{name}.yaml", overrides)


def _run(job: Job) -> Summary:
    """One simulation run (a top-level function so a process pool can call it), on the DES: this file
    validates the reference (the calendar's closed forms are tests/test_calendar.py's)."""
    name, overrides, drain = job
    return simulate(_scenario(name, list(overrides)), drain=drain, engine="des").summary


def _settings(seed: int, duration_s: float, warmup_s: float, *extra: str) -> tuple[str, ...]:
    return (f"seed={seed}", f"duration_s={duration_s}", f"warmup_s={warmup_s}", *extra)


RunJobs = Callable[[list[Job]], list[Summary]]


@pytest.fixture(scope="module")
def run_jobs(pool_map: PoolMap) -> RunJobs:
    """Independent runs, in parallel where the platform forks cheaply (tests/conftest.py)."""
    return lambda jobs: pool_map(_run, jobs)


def _replications(run_jobs: RunJobs, name: str, duration_s: float, warmup_s: float) -> list[Summary]:
    """R independent runs of a scenario, one per seed."""
    return run_jobs([(name, _settings(seed, duration_s, warmup_s), False) for seed in SEEDS])


@pytest.fixture(scope="module")
def mm1_runs(run_jobs: RunJobs) -> list[Summary]:
    return _replications(run_jobs, "mm1", duration_s=80, warmup_s=2)


@pytest.fixture(scope="module")
def mmc_runs(run_jobs: RunJobs) -> list[Summary]:
    return _replications(run_jobs, "mmc", duration_s=10, warmup_s=1)


@pytest.fixture(scope="module")
def md1_runs(run_jobs: RunJobs) -> list[Summary]:
    return _replications(run_jobs, "md1", duration_s=50, warmup_s=2)


@pytest.fixture(scope="module")
def tandem_runs(run_jobs: RunJobs) -> list[Summary]:
    return _replications(run_jobs, "tandem", duration_s=35, warmup_s=2)


@pytest.fixture(scope="module")
def forkjoin_runs(run_jobs: RunJobs) -> list[Summary]:
    return _replications(run_jobs, "forkjoin", duration_s=40, warmup_s=2)


LEVELS = {"ONE": 1, "QUORUM": 2, "ALL": 3}


@pytest.fixture(scope="module")
def quorum_runs(run_jobs: RunJobs) -> dict[str, Summary]:
    """One run per consistency level (writes and reads at that level): samples are iid."""
    jobs = [
        ("quorum", _settings(1, 15, 1, f"cassandra.write_consistency={level}",
                             f"cassandra.read_consistency={level}"), False)
        for level in LEVELS
    ]
    return dict(zip(LEVELS, run_jobs(jobs), strict=True))


# --------------------------------------------------------------------------------------------
# Estimates and checks


@dataclass(frozen=True)
class Estimate:
    value: float
    se: float


def replicated(runs: list[Summary], get: Getter) -> Estimate:
    """Mean over replications, with SE = stdev of the replication values / sqrt(R)."""
    xs = np.array([get(s) for s in runs], dtype=float)
    return Estimate(float(xs.mean()), float(xs.std(ddof=1) / math.sqrt(len(xs))))


def check(label: str, est: Estimate, theory: float, crit: float, quantile: bool = False) -> None:
    """Assert |estimate - theory| <= crit x SE (+ the histogram's 1% for a quantile)."""
    tol = crit * est.se
    if quantile:
        tol += HIST_REL_ERR * (theory + crit * est.se)
    print(f"{label}: theory {theory:.5g}, simulated {est.value:.5g}, SE {est.se:.3g}, "
          f"tolerance {tol:.3g} ({tol / theory:.2%})")
    assert abs(est.value - theory) <= tol, (
        f"{label}: simulated {est.value:.6g} vs theory {theory:.6g}: off by "
        f"{abs(est.value - theory):.3g} > tolerance {tol:.3g} ({crit:.3g} x SE {est.se:.3g}"
        f"{' + histogram 1%' if quantile else ''})"
    )


def latency(key: str, op: str = "send") -> Getter:
    return lambda s: s["latency_ms"][op][key]


def component(name: str, key: str) -> Getter:
    return lambda s: s["components"][name][key]


# --------------------------------------------------------------------------------------------
# Closed forms (times in ms, rates per ms)


def per_ms(per_sec: float) -> float:
    return per_sec / 1e3


def erlang_c(c: int, a: float) -> float:
    """Probability an arrival waits in M/M/c with offered load a = lambda/mu < c:
    C = [a^c/c! / (1 - a/c)] / [sum_{k<c} a^k/k! + a^c/c! / (1 - a/c)]."""
    top = a**c / math.factorial(c) / (1 - a / c)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_wait_quantile(p: float, c: int, lam: float, mu: float) -> float:
    """Quantile of the M/M/c queue wait, P(Wq > t) = C exp(-(c mu - lambda) t), atom 1 - C at 0."""
    C = erlang_c(c, lam / mu)
    return math.log(C / (1 - p)) / (c * mu - lam) if 1 - p < C else 0.0


def hypoexponential_cdf(t: float, rates: list[float]) -> float:
    """P(sum of independent Exp(r_i) <= t) for distinct rates:
    1 - sum_i prod_{j != i} r_j/(r_j - r_i) exp(-r_i t)."""
    tail = 0.0
    for i, ri in enumerate(rates):
        coeff = math.prod(rj / (rj - ri) for j, rj in enumerate(rates) if j != i)
        tail += coeff * math.exp(-ri * t)
    return 1.0 - tail


def order_stat_cdf(t: float, j: int, m: int, mu: float) -> float:
    """P(j-th smallest of m iid Exp(mu) <= t) = sum_{i=j}^{m} C(m,i) F^i (1-F)^(m-i)."""
    F = 1 - math.exp(-mu * t)
    return sum(math.comb(m, i) * F**i * (1 - F) ** (m - i) for i in range(j, m + 1))


def order_stat_pdf(t: float, j: int, m: int, mu: float) -> float:
    """Density of the j-th smallest of m: m!/((j-1)!(m-j)!) F^(j-1) (1-F)^(m-j) f."""
    F = 1 - math.exp(-mu * t)
    coeff = math.factorial(m) / (math.factorial(j - 1) * math.factorial(m - j))
    return coeff * F ** (j - 1) * (1 - F) ** (m - j) * mu * math.exp(-mu * t)


def order_stat_moments(j: int, m: int, mu: float) -> tuple[float, float]:
    """Mean (H_m - H_{m-j})/mu and variance sum_{i=m-j+1}^{m} 1/(i mu)^2 (Renyi's representation
    of exponential spacings: X_(j) = sum_{i=m-j+1}^{m} E_i / (i mu))."""
    terms = range(m - j + 1, m + 1)
    return sum(1 / (i * mu) for i in terms), sum(1 / (i * mu) ** 2 for i in terms)


def quantile_of(cdf: Callable[[float], float], p: float, hi: float) -> float:
    return float(optimize.brentq(lambda t: cdf(t) - p, 0.0, hi, xtol=1e-12))


# --------------------------------------------------------------------------------------------
# 1. M/M/1


def _mm1_params() -> tuple[float, float]:
    sc = _scenario("mm1")
    return per_ms(sc.workload.sends_per_sec), 1 / sc.gateway.service_ms.mean


def test_mm1_mean_response(mm1_runs: list[Summary]) -> None:
    """M/M/1: W = 1/(mu - lambda)."""
    lam, mu = _mm1_params()
    check("M/M/1 mean response ms", replicated(mm1_runs, latency("mean")), 1 / (mu - lam), T_CRIT)


def test_mm1_p99_response(mm1_runs: list[Summary]) -> None:
    """M/M/1: the response is Exp(mu - lambda), so p99 = ln(100)/(mu - lambda)."""
    lam, mu = _mm1_params()
    check("M/M/1 p99 response ms", replicated(mm1_runs, latency("p99")), math.log(100) / (mu - lam),
          T_CRIT, quantile=True)


def test_mm1_queue_wait_p99(mm1_runs: list[Summary]) -> None:
    """M/M/1 wait: P(Wq > t) = rho exp(-(mu - lambda) t), so p99 = ln(rho/0.01)/(mu - lambda)."""
    lam, mu = _mm1_params()
    check("M/M/1 p99 queue wait ms", replicated(mm1_runs, component("gateway", "queue_wait_ms_p99")),
          mmc_wait_quantile(0.99, 1, lam, mu), T_CRIT, quantile=True)


def test_mm1_utilization(mm1_runs: list[Summary]) -> None:
    """M/M/1: the server is busy a fraction rho = lambda/mu of the time."""
    lam, mu = _mm1_params()
    check("M/M/1 utilization", replicated(mm1_runs, component("gateway", "utilization_mean")), lam / mu,
          T_CRIT)


def test_mm1_offered_rate(mm1_runs: list[Summary]) -> None:
    """Poisson arrivals: the count in the measured window is Poisson(lambda T), variance lambda T."""
    lam_s = _scenario("mm1").workload.sends_per_sec
    total = sum(s["offered_per_sec"]["send"] * s["measured_seconds"] for s in mm1_runs)
    seconds = sum(s["measured_seconds"] for s in mm1_runs)
    check("M/M/1 offered sends/s", Estimate(total / seconds, math.sqrt(lam_s * seconds) / seconds), lam_s,
          Z_CRIT)


# --------------------------------------------------------------------------------------------
# 2. M/M/c (Erlang C)


def _mmc_params() -> tuple[int, float, float]:
    sc = _scenario("mmc")
    return sc.gateway.workers, per_ms(sc.workload.sends_per_sec), 1 / sc.gateway.service_ms.mean


def test_mmc_mean_response(mmc_runs: list[Summary]) -> None:
    """M/M/c: W = Wq + 1/mu with Wq = C/(c mu - lambda), C = Erlang C."""
    c, lam, mu = _mmc_params()
    wq = erlang_c(c, lam / mu) / (c * mu - lam)
    est = replicated(mmc_runs, latency("mean"))
    print(f"M/M/c mean queue wait ms: theory {wq:.5g}, simulated (W - 1/mu) {est.value - 1 / mu:.5g}")
    check("M/M/c mean response ms", est, wq + 1 / mu, T_CRIT)


def test_mmc_queue_wait_p99(mmc_runs: list[Summary]) -> None:
    """M/M/c: P(Wq > t) = C exp(-(c mu - lambda) t), so the wait's p99 = ln(C/0.01)/(c mu - lambda)
    (C > 0.01; the rest of the distribution is an atom at 0)."""
    c, lam, mu = _mmc_params()
    check("M/M/c p99 queue wait ms", replicated(mmc_runs, component("gateway", "queue_wait_ms_p99")),
          mmc_wait_quantile(0.99, c, lam, mu), T_CRIT, quantile=True)


def test_mmc_p_wait_and_mean_queue_wait(mmc_runs: list[Summary]) -> None:
    """M/M/c: an arrival waits with probability C = Erlang C(c, a), and the mean wait over all jobs
    (zero waits included) is Wq = C/(c mu - lambda); the run's `analytic` block carries C too."""
    c, lam, mu = _mmc_params()
    C = erlang_c(c, lam / mu)
    check("M/M/c P(wait)", replicated(mmc_runs, component("gateway", "p_wait")), C, T_CRIT)
    check("M/M/c mean queue wait ms", replicated(mmc_runs, component("gateway", "queue_wait_ms_mean")),
          C / (c * mu - lam), T_CRIT)
    for s in mmc_runs:
        assert s["analytic"]["gateway"]["p_wait"] == pytest.approx(C, rel=1e-9)


def test_mmc_utilization(mmc_runs: list[Summary]) -> None:
    """M/M/c: each of the c servers is busy a fraction rho = lambda/(c mu) of the time."""
    c, lam, mu = _mmc_params()
    check("M/M/c utilization", replicated(mmc_runs, component("gateway", "utilization_mean")),
          lam / (c * mu), T_CRIT)


# --------------------------------------------------------------------------------------------
# 3. M/D/1 (Pollaczek-Khinchine)


def test_md1_mean_response(md1_runs: list[Summary]) -> None:
    """M/D/1: Wq = rho/(2 mu (1 - rho)) (P-K with E[S^2] = 1/mu^2), W = Wq + 1/mu."""
    sc = _scenario("md1")
    lam, mu = per_ms(sc.workload.sends_per_sec), 1 / sc.gateway.service_ms.value
    rho = lam / mu
    check("M/D/1 mean response ms", replicated(md1_runs, latency("mean")),
          rho / (2 * mu * (1 - rho)) + 1 / mu, T_CRIT)
    check("M/D/1 utilization", replicated(md1_runs, component("gateway", "utilization_mean")), rho, T_CRIT)


# --------------------------------------------------------------------------------------------
# 4. Jackson tandem of three M/M/1 stations


def _tandem_params() -> tuple[float, dict[str, float]]:
    """Arrival rate and each station's service rate (per ms)."""
    sc = _scenario("tandem")
    means = {
        "gateway": sc.gateway.service_ms.mean,
        "message_service": sc.message_service.send_service_ms.mean,
        "cassandra": sc.cassandra.write_service_ms.mean,
    }
    return per_ms(sc.workload.sends_per_sec), {name: 1 / m for name, m in means.items()}


def test_tandem_mean_response(tandem_runs: list[Summary]) -> None:
    """Jackson/Burke: each station sees Poisson(lambda), so W = sum_i 1/(mu_i - lambda)."""
    lam, mus = _tandem_params()
    check("tandem mean response ms", replicated(tandem_runs, latency("mean")),
          sum(1 / (mu - lam) for mu in mus.values()), T_CRIT)


def test_tandem_p99_response(tandem_runs: list[Summary]) -> None:
    """Single-server stations in series: a customer's sojourn times are independent Exp(mu_i -
    lambda) (Reich 1957), so the response is hypoexponential; p99 solves its CDF = 0.99."""
    lam, mus = _tandem_params()
    rates = [mu - lam for mu in mus.values()]
    theory = quantile_of(lambda t: hypoexponential_cdf(t, rates), 0.99, 1e3)
    check("tandem p99 response ms", replicated(tandem_runs, latency("p99")), theory, T_CRIT, quantile=True)


@pytest.mark.parametrize("station", ["gateway", "message_service", "cassandra"])
def test_tandem_station_is_mm1(tandem_runs: list[Summary], station: str) -> None:
    """Each station of the tandem is an M/M/1 queue: utilization lambda/mu_i and queue-wait p99
    ln(rho_i/0.01)/(mu_i - lambda)."""
    lam, mus = _tandem_params()
    mu = mus[station]
    check(f"tandem {station} utilization", replicated(tandem_runs, component(station, "utilization_mean")),
          lam / mu, T_CRIT)
    check(f"tandem {station} p99 queue wait ms",
          replicated(tandem_runs, component(station, "queue_wait_ms_p99")),
          mmc_wait_quantile(0.99, 1, lam, mu), T_CRIT, quantile=True)


# --------------------------------------------------------------------------------------------
# 5. k-of-n order statistics (Cassandra consistency levels, no queueing)


@pytest.mark.parametrize("op", ["send", "read"])
@pytest.mark.parametrize("level", list(LEVELS))
def test_consistency_level_order_statistic(quorum_runs: dict[str, Summary], level: str, op: str) -> None:
    """With nothing queueing, a write at level k (sent to all 3 replicas, done at the k-th reply) is
    the k-th smallest of 3 iid Exp(mu); a read at level k (sent to k replicas, needs all) is the
    largest of k. Mean (H_m - H_{m-j})/mu; CDF sum_{i=j}^{m} C(m,i) F^i (1-F)^(m-i). Samples are
    iid: SE = sd/sqrt(n) for the mean, sqrt(p(1-p)/n)/f(t_p) for the quantile t_p."""
    sc = _scenario("quorum")
    assert sc.cassandra.nodes == sc.cassandra.replication_factor == 3
    k = LEVELS[level]
    j, m = (k, 3) if op == "send" else (k, k)
    mu = 1 / (sc.cassandra.write_service_ms if op == "send" else sc.cassandra.read_service_ms).mean
    summary = quorum_runs[level]["latency_ms"][op]
    n = summary["count"]
    mean, var = order_stat_moments(j, m, mu)
    label = f"{op} at {level} (order statistic {j} of {m})"
    check(f"{label} mean ms", Estimate(summary["mean"], math.sqrt(var / n)), mean, Z_CRIT)
    for p, key in ((0.5, "p50"), (0.99, "p99")):
        t_p = quantile_of(lambda t, j=j, m=m: order_stat_cdf(t, j, m, mu), p, 1e3)
        se = math.sqrt(p * (1 - p) / n) / order_stat_pdf(t_p, j, m, mu)
        check(f"{label} {key} ms", Estimate(summary[key], se), t_p, Z_CRIT, quantile=True)


# --------------------------------------------------------------------------------------------
# 6. Fork-join of two M/M/1 queues (Nelson-Tantawi)


def test_forkjoin_mean_response(forkjoin_runs: list[Summary]) -> None:
    """Two M/M/1 queues fed by the same Poisson stream, a job done when both parts are:
    R = (12 - rho)/8 / (mu - lambda) (Nelson & Tantawi 1988, exact for two servers)."""
    sc = _scenario("forkjoin")
    assert sc.cassandra.nodes == sc.cassandra.replication_factor == 2
    assert sc.cassandra.write_consistency == "ALL" and sc.cassandra.workers == 1
    lam, mu = per_ms(sc.workload.sends_per_sec), 1 / sc.cassandra.write_service_ms.mean
    rho = lam / mu
    check("fork-join mean response ms", replicated(forkjoin_runs, latency("mean")),
          (12 - rho) / 8 / (mu - lam), T_CRIT)
    check("fork-join node utilization", replicated(forkjoin_runs, component("cassandra", "utilization_mean")),
          rho, T_CRIT)


# --------------------------------------------------------------------------------------------
# 7. Little's law and conservation


def _conserved(summary: Summary) -> None:
    """sent = succeeded + failed + in flight, per operation, with nothing failing (no queue bounds)."""
    assert summary["checks"]["conservation_holds"]
    for op, c in summary["requests"].items():
        assert c["sent"] == c["succeeded"] + c["failed"] + c["in_flight"], (op, c)
        assert c["in_flight"] >= 0 and c["failed"] == 0, (op, c)


def test_conservation_on_every_run(
    mm1_runs: list[Summary], mmc_runs: list[Summary], md1_runs: list[Summary],
    tandem_runs: list[Summary], forkjoin_runs: list[Summary], quorum_runs: dict[str, Summary],
) -> None:
    runs = [*mm1_runs, *mmc_runs, *md1_runs, *tandem_runs, *forkjoin_runs, *quorum_runs.values()]
    for summary in runs:
        _conserved(summary)
        assert summary["requests"]["send"]["sent"] > 0


def test_little_law_on_long_runs(mm1_runs: list[Summary]) -> None:
    """L = lambda W holds on a sample path up to boundary terms at the ends of the measured window
    T: the time spent after the warm-up by requests that arrived before it (expected
    E[N(N+1)]/(2 mu) for M/M/1 FIFO, the j-th in line leaving after j services), the time before
    the end spent by requests still in flight (the same by reversibility), and the in-flight count at
    the end times W (expected L W). Relative to L T that is (E[N(N+1)]/mu + L W)/(L T), about 2e-4
    here; these terms have geometric/exponential tails, so we allow 10 times the expected size."""
    lam, mu = _mm1_params()
    rho = lam / mu
    L = rho / (1 - rho)
    n_n1 = rho * (1 + rho) / (1 - rho) ** 2 + L  # E[N^2] + E[N] for N geometric
    for summary in mm1_runs:
        little = summary["checks"]["little"]["send"]
        T_ms = summary["measured_seconds"] * 1e3
        bound = 10 * (n_n1 / mu + L / (mu - lam)) / (L * T_ms)
        print(f"Little's law (M/M/1, seed {summary['seed']}): relative difference "
              f"{little['relative_difference']:.2e}, bound {bound:.2e}")
        assert little["relative_difference"] <= bound, little


@pytest.mark.parametrize("name", ["tandem", "quorum", "forkjoin"])
def test_drain_empties_and_little_is_exact(run_jobs: RunJobs, name: str) -> None:
    """With no warm-up the system starts empty, and with `drain` it ends empty, so L T and the sum
    of sojourn times are the same integral: L = lambda W up to float rounding, nothing in flight."""
    (summary,) = run_jobs([(name, _settings(7, 10, 0), True)])
    assert summary["drained"]
    _conserved(summary)
    for op, c in summary["requests"].items():
        assert c["in_flight"] == 0, (op, c)
    assert summary["requests"]["send"]["succeeded"] > 0
    for op, little in summary["checks"]["little"].items():
        assert little["relative_difference"] < 1e-9, (op, little)
