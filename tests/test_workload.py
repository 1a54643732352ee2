"""The population model: a conversation's traffic comes from its members (sim/workload.py).

Checked against a brute-force re-derivation written here from the model's definition, and
against draws: the sender and reader draws reproduce the rates the model states.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import ScenarioError, load_scenario
from sim.scenario import Workload
from sim.workload import Population, draw_member, hottest_keys, workload_mix, zipf_cell_weights

SMALL = Workload(users=400, conversations=1_000, group_share=0.3, sends_per_sec=1_000, reads_per_sec=5_000,
                 group_size={"dist": "lognormal", "mean": 6, "p99": 40, "min": 3, "max": 60})


def _brute_force(w: Workload, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Send and read rates per conversation, straight from the definition, one membership at a time."""
    n_conv = pop.conversations.recipients.size
    members = [pop.conversations.members(c, w.users) for c in range(n_conv)]
    activity = zipf_cell_weights(w.users, w.user_zipf_s, 1.0)
    size = np.array([m.size for m in members], dtype=float)
    v = size ** -w.send_size_exponent
    weight_sum = np.zeros(w.users)
    degree = np.zeros(w.users)
    for c, ms in enumerate(members):
        for m in ms:
            weight_sum[m] += v[c]
            degree[m] += 1
    sends = np.array([sum(activity[m] * v[c] / weight_sum[m] for m in ms) for c, ms in enumerate(members)])
    reads = np.array([sum(activity[m] / degree[m] for m in ms) for c, ms in enumerate(members)])
    return sends / sends.sum(), reads / reads.sum()


@pytest.mark.parametrize("exponent", [0.0, 1.0])
def test_conversation_rates_come_from_members(exponent: float) -> None:
    w = SMALL.model_copy(update={"send_size_exponent": exponent})
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(3))
    sends, reads = _brute_force(w, pop)
    np.testing.assert_allclose(pop.send_weights, sends, rtol=1e-9)
    np.testing.assert_allclose(pop.read_weights, reads, rtol=1e-9)
    # no conversation is busier than its members together: each sends at most its activity
    activity = pop.user_weights
    for c in np.argsort(pop.send_weights)[-20:]:
        assert pop.send_weights[c] <= activity[pop.conversations.members(c, w.users)].sum() + 1e-12


def test_group_traffic_grows_with_size_only_without_damping() -> None:
    flat = workload_mix(SMALL.model_copy(update={"send_size_exponent": 0.0}))
    damped = workload_mix(SMALL.model_copy(update={"send_size_exponent": 1.0}))
    # at e = 0 a big group's members all post there, so messages are size-biased towards groups
    assert flat["mean_recipients"] > 2 * damped["mean_recipients"]
    assert flat["group_message_share"] > damped["group_message_share"]


def test_sender_draws_give_each_user_their_activity() -> None:
    """Drawing a conversation by its rate and then its sender by the model's member weights gives
    every user their activity share: the model's telescoping identity, checked by simulation."""
    w = SMALL
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(3))
    rng = np.random.default_rng(11)
    n = 200_000
    convs = rng.choice(pop.send_weights.size, size=n, p=pop.send_weights)
    counts = np.zeros(w.users)
    for conv, u in zip(convs, rng.random(n), strict=True):
        members = pop.conversations.members(int(conv), w.users)
        counts[members[draw_member(members, pop.send_member_weights, float(u))]] += 1
    top = np.argsort(pop.user_weights)[-10:]  # enough draws each for a tight binomial interval
    expected = pop.user_weights[top] * n
    sd = np.sqrt(expected * (1 - pop.user_weights[top]))
    assert np.all(np.abs(counts[top] - expected) < 4.0 * sd), (counts[top], expected)


def test_hot_conversation_takes_its_declared_share() -> None:
    w = Workload.model_validate({**SMALL.model_dump(), "hot_conversations": [
        {"members": 300, "sends_per_sec": 50, "reads_per_sec": 2_500}]})
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(3))
    assert pop.conversations.recipients.size == w.conversations + 1
    assert pop.send_weights[-1] == pytest.approx(50 / 1_000)
    assert pop.read_weights[-1] == pytest.approx(2_500 / 5_000)
    assert pop.conversations.recipients[-1] == 299
    assert pop.send_weights.sum() == pytest.approx(1.0)


def test_rates_and_member_bounds_hold_for_conversations_larger_than_a_block() -> None:
    """The build lists members _AHEAD (64) at a time (sim/workload.py); a larger conversation is a
    block of its own. Both against the definition: rates, and each conversation's
    float32 bound on its members' weights (the nearest float32 at or above their largest)."""
    w = Workload(users=400, conversations=1_000, group_share=0.5, sends_per_sec=1_000, reads_per_sec=5_000,
                 group_size={"dist": "lognormal", "mean": 40, "p99": 190, "min": 3, "max": 200})
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(5))
    sizes = pop.conversations.size()
    assert (sizes > 64).sum() > 50 and (sizes <= 64).sum() > 50
    sends, reads = _brute_force(w, pop)
    np.testing.assert_allclose(pop.send_weights, sends, rtol=1e-9)
    np.testing.assert_allclose(pop.read_weights, reads, rtol=1e-9)
    for c in range(sizes.size):
        ms = pop.conversations.members(c, w.users)
        for bound, weights in ((pop.send_member_max, pop.send_member_weights),
                               (pop.read_member_max, pop.read_member_weights)):
            top = weights[ms].max()
            assert bound[c] >= top and np.nextafter(bound[c], np.float32(-np.inf)) < top


def test_inbox_reads_read_every_conversation_of_the_reader() -> None:
    w = SMALL
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(3), inbox_reads=True)
    degree = np.zeros(w.users)
    for c in range(w.conversations):
        for m in pop.conversations.members(c, w.users):
            degree[m] += 1
    for user in (0, 7, 399):
        convs = pop.inbox(user)
        assert convs.size == degree[user]
        assert all(user in pop.conversations.members(int(c), w.users) for c in convs)
    assert pop.lookups_per_read == pytest.approx(float(np.dot(pop.user_weights, degree)))


def test_reference_design_has_no_artefact_hot_key() -> None:
    """The old model drew a request's conversation independently of its user: the busiest
    conversation (possibly a 1:1 chat) took ~2% of all reads, ~210k reads/s. From members, the
    busiest conversation is read at most as often as its members read, and sends stay below the
    busiest user's own rate times two (a 1:1 chat has two members)."""
    sc = load_scenario("scenarios/interview-small.yaml")
    hot = hottest_keys(sc)
    w = sc.workload
    assert hot.conversation_reads_per_sec < 0.002 * w.reads_per_sec
    assert hot.conversation_sends_per_sec <= 2 * hot.user_sends_per_sec


def test_retired_field_gets_one_clear_line(tmp_path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("workload: {conversation_zipf_s: 0.9}\n")
    with pytest.raises(ScenarioError, match="conversation_zipf_s was removed"):
        load_scenario(path)


def test_hot_rates_cannot_exceed_the_total(tmp_path) -> None:
    path = tmp_path / "hot.yaml"
    path.write_text("workload: {sends_per_sec: 10, hot_conversations: [{members: 10, sends_per_sec: 20}]}\n")
    with pytest.raises(ScenarioError, match="at most the total"):
        load_scenario(path)


def test_fan_out_on_read_loads_every_conversation_of_the_reader_in_the_des(tmp_path) -> None:
    """Both sides of the fan-out trade-off show: on read, an inbox load looks up every
    conversation of the reader (Redis ops per read = the population's lookups per read) and no
    inbox is written; on write, each read is one lookup and every recipient's inbox is written."""
    from sim import simulate

    base = tmp_path / "base.yaml"
    base.write_text(
        "name: fanout\nduration_s: 8\nwarmup_s: 1\n"
        "workload: {users: 2000, conversations: 5000, sends_per_sec: 300, reads_per_sec: 600}\n"
        "gateway: {enabled: false}\nredis: {shards: 2, hit_ratio: 1.0}\n"
        "kafka: {brokers: 3, partitions: 6}\ncassandra: {nodes: 6}\n")
    read = simulate(load_scenario(base, ["group_service.fan_out=read",
                                         "message_service.partition_key=conversation"])).summary
    write = simulate(load_scenario(base)).summary
    lookups = read["workload"]["lookups_per_read"]
    w = load_scenario(base).workload
    pop = Population.build(w, w.users, w.conversations, 1.0, np.random.default_rng(0), inbox_reads=True)
    degree = np.diff(pop.inbox_offsets)
    assert lookups == pytest.approx(float(np.dot(pop.user_weights, degree)), rel=0.05)
    assert lookups > 3
    measured = read["measured_seconds"]
    reads = read["offered_per_sec"]["read"] * measured
    sends = read["offered_per_sec"]["send"] * measured
    redis_ops = read["components"]["redis"]["ops_per_sec"] * measured
    # every hit (hit_ratio 1): one GET per conversation of each reader, one append per send
    var = float(np.dot(pop.user_weights, (degree - lookups) ** 2))
    se = np.sqrt(reads * (var + lookups**2))  # compound Poisson: reads x lookups each
    assert abs(redis_ops - sends - reads * lookups) < 5 * se
    # on write: one lookup per read
    w_ops = write["components"]["redis"]["ops_per_sec"] * write["measured_seconds"]
    w_reads = write["offered_per_sec"]["read"] * write["measured_seconds"]
    w_sends = write["offered_per_sec"]["send"] * write["measured_seconds"]
    assert abs(w_ops - w_sends - w_reads) < 5 * np.sqrt(w_sends + w_reads)
    assert write["workload"]["lookups_per_read"] == 1.0


def test_hottest_keys_are_computed_once_and_kept_whole(tmp_path, monkeypatch) -> None:
    """The full-scale figure is cached per workload in the user's cache directory; a second
    process reads the same numbers back, and a different workload gets its own entry."""
    from sim import workload as wl

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    wl._hottest.cache_clear()
    small = "scenarios/interview-small.yaml"
    sc = load_scenario(small, ["workload.users=5000", "workload.conversations=9000"])
    first = hottest_keys(sc)
    files = list((tmp_path / "capsim" / "hotkeys").glob("*.json"))
    assert len(files) == 1 and not list(files[0].parent.glob("*.tmp"))
    wl._hottest.cache_clear()

    def no_build(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the population was built again")

    with monkeypatch.context() as m:
        m.setattr(wl.Population, "build", no_build)
        assert hottest_keys(sc) == first  # read back from the file, not recomputed
    other = load_scenario(small, ["workload.users=6000", "workload.conversations=9000"])
    wl._hottest.cache_clear()
    hottest_keys(other)
    assert len(list(files[0].parent.glob("*.json"))) == 2


def test_float32_upper_bounds_are_the_nearest_float32_at_or_above_each_value() -> None:
    from sim.workload import _upper_f32
    rng = np.random.default_rng(9)
    x = np.r_[rng.random(100_000) * 1e-7, rng.random(1000) * 1e30, 0.0, 1.0, 1 / 3, 1e-45, 3.4e38]
    got = _upper_f32(x)
    assert got.dtype == np.float32
    assert np.all(got.astype(np.float64) >= x)  # a bound
    below = np.nextafter(got, np.float32(-np.inf)).astype(np.float64)
    assert np.all(below < x)  # the least one: the next float32 down is under x
    exact = x.astype(np.float32).astype(np.float64) == x
    np.testing.assert_array_equal(got[exact], x[exact].astype(np.float32))  # exact ones unchanged
