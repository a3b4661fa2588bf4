"""Group mode with the in-memory transports: decisions, replicated learning, moving state.

Several :class:`~streamal.service.group.GroupService` instances share one
:class:`~streamal.transports.MemoryBroker` (``MemorySource(share=True)`` splits the
samples partitions among them as a consumer group does). The Kafka version of these
promises runs in ``test_integration_group.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _helpers import memory_group_broker, memory_group_member

from streamal.core.checkpoint import Checkpointer
from streamal.core.learner import ActiveLearner
from streamal.core.partition import (
    PartitionState,
    decision_state,
    decode_state,
    encode_state,
    restore_decisions,
)
from streamal.core.registry import BUDGETS
from streamal.core.spec import LearnerSpec, WindowSpec, build_active_learner, build_learner
from streamal.exceptions import CheckpointError, ConfigError, TransportError
from streamal.messages import Label, Sample, encode
from streamal.offline.streams import open_source
from streamal.service.group import GroupService
from streamal.service.loop import LoopPolicy, Service, Topics
from streamal.transports import MemoryBroker, MemoryReader, MemorySink, MemorySource

RATE = 0.1
PARTITIONS = 6
TOPICS = Topics(predictions="streamal.predictions")
POLICY = LoopPolicy(tune_gc=False)


def _spec(seed: int = 7) -> LearnerSpec:
    return LearnerSpec("logreg", "margin", "reserve_quantile", RATE, seed=seed)


def _broker() -> MemoryBroker:
    return memory_group_broker(TOPICS, samples_partitions=PARTITIONS)  # type: ignore[no-any-return]


def _member(
    broker: MemoryBroker, folder: Path, name: str, key: bytes | None = None
) -> GroupService:
    return memory_group_member(broker, folder, name, _spec(), TOPICS, decider_seed=7, key=key)  # type: ignore[no-any-return]


class Oracle:
    """Answers every new query id once, with the sample's true label."""

    def __init__(self, broker: MemoryBroker, truth: dict[str, Any]) -> None:
        self.broker, self.truth = broker, truth
        self.answered: set[str] = set()
        self._read = 0

    def answer(self) -> None:
        records = self.broker.records(TOPICS.queries)
        for env in records[self._read :]:
            sid = json.loads(env.value or b"")["sample_id"]
            if sid not in self.answered:
                self.answered.add(sid)
                label = encode(Label(sample_id=sid, y=self.truth[sid]))
                self.broker.produce(TOPICS.labels, label, sid.encode())
        self._read = len(records)


def _stream(n: int) -> list[Sample]:
    return list(open_source(f"synth:SEA:n={n}", seed=3))


def _feed(
    broker: MemoryBroker,
    samples: list[Sample],
    members: list[Any],
    oracle: Oracle,
    chunk: int = 100,
    between: Callable[[int], None] | None = None,
) -> None:
    """Produce the stream in chunks; after each, every member runs once, then the oracle."""
    for first in range(0, len(samples), chunk):
        for s in samples[first : first + chunk]:
            wire = Sample(id=s.id, x=s.x)
            broker.produce(TOPICS.samples, encode(wire), s.id.encode())
        for member in members:
            member.run(timeout=0.0)
        oracle.answer()
        if between is not None:
            between(first // chunk)
    for _ in range(3):  # the last labels (and queries) reach every member
        for member in members:
            member.run(timeout=0.0)
        oracle.answer()


def _states(broker: MemoryBroker) -> dict[int, PartitionState]:
    found = {}
    for env in broker.records("streamal.state"):
        state = decode_state(env.value or b"")
        found[state.partition] = state
    return found


def _check_promise(broker: MemoryBroker, members: list[GroupService], oracle: Oracle, n: int):
    states = _states(broker)
    assert sorted(states) == list(range(PARTITIONS))
    ends = {p: len(broker.topics[TOPICS.samples].partitions[p]) for p in range(PARTITIONS)}
    asked = {env.key for env in broker.records(TOPICS.queries)}
    spent = 0
    for p, state in states.items():
        stats, budget = state.decider["stats"], state.decider["budget"]
        assert state.offset == ends[p] == stats.seen  # each sample decided once, durably
        assert stats.queried == budget.spent <= RATE * stats.seen  # per partition
        spent += stats.queried
    assert spent == len(asked) <= RATE * n  # nothing paid twice, the rate overall
    for member in members:  # every label learned exactly once by every member
        replica = member.replica
        assert replica.model_version == replica.stats.applied == len(oracle.answered)
        assert replica.stats.duplicate == replica.stats.unknown == 0
        assert len(replica.pending) == 0
    return states


def test_three_members_decide_each_sample_once_and_learn_every_label(tmp_path: Path) -> None:
    broker, n = _broker(), 3000
    samples = _stream(n)
    oracle = Oracle(broker, {s.id: s.y for s in samples})
    members = [_member(broker, tmp_path, name) for name in "abc"]
    _feed(broker, samples, members, oracle)
    _check_promise(broker, members, oracle, n)
    assert [sorted(m.deciders) for m in members] == [[0, 3], [1, 4], [2, 5]]
    registry_sums = [
        m.metrics.registry.get_sample_value(
            "streamal_partition_samples_total", {"partition": str(p)}
        )
        or 0.0
        for m in members
        for p in range(PARTITIONS)
    ]
    assert sum(registry_sums) >= n


def test_a_member_leaving_and_coming_back_keeps_the_promise(tmp_path: Path) -> None:
    broker, n = _broker(), 2400
    samples = _stream(n)
    oracle = Oracle(broker, {s.id: s.y for s in samples})
    members = [_member(broker, tmp_path, name) for name in "abc"]

    def churn(round_: int) -> None:
        if round_ == 6:  # c stops; its partitions move to a and b
            members[2].close()
        if round_ == 12:  # c comes back from its own snapshot (a new object, same folder)
            members[2] = _member(broker, tmp_path, "c")

    class InGroup:
        """Member ``index`` takes its turn only while it is in the group."""

        def __init__(self, index: int) -> None:
            self.index = index

        def run(self, timeout: float) -> int:
            member = members[self.index]
            if member.source.closed:  # type: ignore[attr-defined]
                return 0
            return member.run(timeout=timeout)

    _feed(broker, samples, [InGroup(i) for i in range(3)], oracle, between=churn)
    _check_promise(broker, members, oracle, n)
    back = members[2]
    assert back.replica.model_version == members[0].replica.model_version
    assert sorted(back.deciders) == [2, 5]


def test_group_accuracy_equals_one_instance(tmp_path: Path) -> None:
    """Label efficiency: the same stream and oracle, one instance against a group of three.

    Prequential accuracy over every sample (the prediction published before its label).
    """
    n = 3000
    samples = _stream(n)
    truth = {s.id: s.y for s in samples}

    def accuracy(broker: MemoryBroker) -> float:
        preds = [json.loads(v or b"") for v in broker.values(TOPICS.predictions)]
        assert len(preds) == n
        return sum(p["prediction"] == truth[p["sample_id"]] for p in preds) / n

    single_broker = _broker()
    single = Service(
        build_learner(_spec()),
        MemorySource(single_broker),
        MemorySink(single_broker),
        Checkpointer(tmp_path / "single"),
        TOPICS,
        POLICY,
    )
    single_oracle = Oracle(single_broker, truth)
    _feed(single_broker, samples, [single], single_oracle)
    group_broker = _broker()
    members = [_member(group_broker, tmp_path, name) for name in "abc"]
    group_oracle = Oracle(group_broker, truth)
    _feed(group_broker, samples, members, group_oracle)

    one, three = accuracy(single_broker), accuracy(group_broker)
    labels_one, labels_three = len(single_oracle.answered), len(group_oracle.answered)
    print(f"\naccuracy one {one:.4f} ({labels_one} labels), three {three:.4f} ({labels_three})")
    majority = max(sum(truth.values()), n - sum(truth.values())) / n
    assert one > majority + 0.05 and three > majority + 0.05  # both learned
    assert abs(one - three) < 0.03
    assert abs(labels_one - labels_three) <= 0.1 * labels_one


def test_a_label_before_its_query_waits_for_it(tmp_path: Path) -> None:
    broker = _broker()
    member = _member(broker, tmp_path, "a")
    label = encode(Label(sample_id="early", y=True))
    broker.produce(TOPICS.labels, label, b"early")
    member.run(timeout=0.0)
    assert member.replica.model_version == 0
    # another member's query for it arrives later
    other = build_learner(LearnerSpec("logreg", "margin", "full", 1.0))
    sample = Sample(id="early", x={"a": 1.0})
    query = other.query_json(sample, other.process(sample))
    broker.produce(TOPICS.queries, query, b"early")
    member.run(timeout=0.0)
    assert member.replica.model_version == member.replica.stats.applied == 1


def test_state_records_are_signed_and_checked(tmp_path: Path) -> None:
    broker = _broker()
    planted = PartitionState(0, 0, {}, config_hash="h")
    broker.produce("streamal.state", encode_state(planted), b"0")  # unsigned
    member = _member(broker, tmp_path, "a", key=b"secret")
    member.run(timeout=0.0)  # refused (logged and counted), not loaded, not fatal
    refused = member.metrics.registry.get_sample_value("streamal_state_records_refused_total")
    assert refused == 1
    assert member.states == {} and member.deciders[0].stats.seen == 0


def test_state_of_other_settings_is_refused(tmp_path: Path) -> None:
    broker = _broker()
    first = _member(broker, tmp_path, "a")
    broker.produce(TOPICS.samples, encode(Sample(id="s", x={"a": 1.0})), b"s")
    first.run(timeout=0.0)
    first.close()
    second = _member(broker, tmp_path, "b")
    second.config_hash = "other"
    with pytest.raises(CheckpointError, match="same learner settings"):
        second.run(timeout=0.0)


def test_window_mode_is_refused(tmp_path: Path) -> None:
    broker = _broker()
    spec = LearnerSpec("logreg", "margin", "reserve_quantile", RATE, window=WindowSpec("topk", 10))
    with pytest.raises(ConfigError, match="window mode"):
        GroupService(
            build_learner(spec),
            MemorySource(broker, share=True),
            MemorySink(broker),
            Checkpointer(tmp_path),
            reader=MemoryReader(broker),
            state_reader=MemoryReader(broker),
            new_decider=lambda p: build_learner(_spec()),
        )


def test_a_missing_state_topic_stops_the_member(tmp_path: Path) -> None:
    broker = _broker()
    del broker.topics["streamal.state"]
    member = _member(broker, tmp_path, "a")
    broker.produce(TOPICS.samples, encode(Sample(id="s", x={"a": 1.0})), b"s")
    with pytest.raises(TransportError, match="does not exist: create it"):
        member.run(timeout=0.0)


def test_a_planted_state_record_cannot_run_code() -> None:
    import os

    planted = encode_state(PartitionState(0, 0, {"budget": os.getcwd}))
    with pytest.raises(CheckpointError, match="not on the allow-list"):
        decode_state(planted)
    tampered = bytearray(encode_state(PartitionState(0, 0, {}), key=b"k"))
    tampered[-3] ^= 1
    with pytest.raises(CheckpointError, match="bad signature"):
        decode_state(bytes(tampered), key=b"k")


def test_ready_once_caught_up_even_without_a_partition(tmp_path: Path) -> None:
    broker = _broker()
    member = _member(broker, tmp_path, "a")
    assert member.readiness() == (False, "restoring the snapshot")
    member.restore()
    assert member.readiness() == (False, "catching up on queries and labels")
    member.catch_up()
    assert member.readiness() == (True, "ok")  # no partition assigned yet: a standby
    assert not member.deciders


@pytest.mark.parametrize("budget", sorted(BUDGETS))
def test_every_budget_manager_moves_with_its_partition(budget: str) -> None:
    """Each registered manager's state survives the state record: same decisions after."""

    def decider(seed: int) -> ActiveLearner:
        return build_active_learner(LearnerSpec("logreg", "margin", budget, 0.2, seed=seed))

    samples = [Sample(id=str(i), x={"a": float(i % 5), "b": (i % 3) / 3}) for i in range(400)]
    staying = decider(5)
    for s in samples[:200]:
        staying.process(s)
    record = encode_state(PartitionState(0, 200, decision_state(staying)), key=b"k")
    moved = restore_decisions(decider(99), decode_state(record, key=b"k").decider)
    moved.model, moved.strategy = staying.model, staying.strategy
    for s in samples[200:]:
        assert moved.process(s).queried == staying.process(s).queried
    assert moved.budget.spent == staying.budget.spent


def test_serve_refuses_group_mode_with_window_or_sqlite_before_connecting() -> None:
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_service

    for learner in ({"window_selector": "topk"}, {"pending": "sqlite"}):
        settings = load_settings(
            overrides={
                "group": {"enabled": True},
                "learner": {"model": "logreg", **learner},
                "kafka": {"bootstrap_servers": "127.0.0.1:1"},  # never reached
            }
        )
        with pytest.raises(ConfigError, match="group mode"):
            build_service(settings, CollectorRegistry())


def test_a_zombie_owners_late_record_cannot_roll_a_partition_back(tmp_path: Path) -> None:
    # a owns the partitions, then loses them to b without noticing (a paused "zombie"):
    # a record it writes after b took over, even one claiming a later offset, ranks
    # below b's by ownership epoch, so the next owner resumes from b's state.
    broker = _broker()
    samples = _stream(1200)
    oracle = Oracle(broker, {s.id: s.y for s in samples})
    a = _member(broker, tmp_path, "a")
    _feed(broker, samples[:600], [a], oracle)
    late = next(
        decode_state(env.value or b"")
        for env in reversed(broker.records("streamal.state"))
        if env.key == b"0"
    )
    assert late.epoch == 1  # the first owner of a partition with no record
    a.close()
    b = _member(broker, tmp_path, "b")
    _feed(broker, samples[600:], [b], oracle)
    assert {s.epoch for s in _states(broker).values()} == {2}
    expected = b.deciders[0].stats.seen, b.deciders[0].budget.spent
    late.offset += 10_000  # the zombie went on deciding on its stale copy
    broker.produce("streamal.state", encode_state(late), b"0")
    b.close()
    c = _member(broker, tmp_path, "c")
    c.run(timeout=0.0)
    assert (c.deciders[0].stats.seen, c.deciders[0].budget.spent) == expected
    assert c.samples_positions[0] < late.offset
    c.run(timeout=0.0)  # c claims every partition it took with the next epoch
    assert {s.epoch for s in _states(broker).values()} == {3}
