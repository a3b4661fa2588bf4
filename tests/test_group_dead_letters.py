"""Group mode: a refused label goes to dead letters exactly once across the group.

Every instance reads every label, so every instance counts a label it refuses
(``labels_total{outcome="rejected"}``), but only the owner of samples partition 0
writes its dead letter. These tests move partition 0 between instances with the
in-memory transports: to an instance that has read fewer labels than the previous
owner (it must not write them again) and to one that has read more (it must write
the ones the previous owner had not read).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from _helpers import memory_group_broker, memory_group_member

from streamal.core.partition import decode_state
from streamal.core.spec import LearnerSpec
from streamal.messages import Label, Sample, encode
from streamal.service.group import DEAD_LETTER_PARTITION, GroupService
from streamal.service.loop import LoopPolicy, Topics
from streamal.transports import MemoryBroker

TOPICS = Topics()
POLICY = LoopPolicy(tune_gc=False)


def _broker() -> MemoryBroker:
    return memory_group_broker(TOPICS)  # type: ignore[no-any-return]


def _member(broker: MemoryBroker, folder: Path, name: str) -> GroupService:
    spec = LearnerSpec("logreg", "entropy", "full", 1.0, seed=1)
    return memory_group_member(broker, folder, name, spec, TOPICS, decider_seed=0)  # type: ignore[no-any-return]


def _answer_all(broker: MemoryBroker) -> None:
    asked = {json.loads(env.value or b"")["sample_id"] for env in broker.records(TOPICS.queries)}
    for sid in sorted(asked):
        label = encode(Label(sample_id=sid, y=int(sid[1:]) % 2 == 0))
        broker.produce(TOPICS.labels, label, sid.encode())


def _bad_labels(broker: MemoryBroker, tag: str, known_id: str) -> list[str]:
    """Produce refused labels of several kinds; return their ``topic/partition/offset``."""
    values = [
        b"not json " + tag.encode(),
        b'{"sample_id": 5, "y": true}',  # wrong type of id
        json.dumps({"sample_id": f"{tag}-x", "y": {"nested": 1}}).encode(),  # wrong type of y
        json.dumps({"sample_id": known_id, "y": "eggs"}).encode(),  # a class of another type
    ]
    sources = []
    for i, value in enumerate(values):
        env = broker.produce(TOPICS.labels, value, partition=i % 2)
        sources.append(f"{env.topic}/{env.partition}/{env.offset}")
    return sources


def _dead_letters(broker: MemoryBroker) -> Counter[str]:
    return Counter(
        (env.header("streamal.source") or b"").decode()
        for env in broker.records(TOPICS.dead_letters)
    )


def _rejected(member: GroupService) -> float:
    registry = member.metrics.registry
    return registry.get_sample_value("streamal_labels_total", {"outcome": "rejected"}) or 0.0


def test_refused_labels_are_dead_lettered_once_through_partition_moves(tmp_path: Path) -> None:
    broker = _broker()
    for i in range(40):
        broker.produce(TOPICS.samples, encode(Sample(id=f"s{i}", x={"a": float(i)})), b"%d" % i)
    a, b = _member(broker, tmp_path, "a"), _member(broker, tmp_path, "b")
    for _ in range(2):
        a.run(timeout=0.0)
        b.run(timeout=0.0)
    assert sorted(a.deciders) == [DEAD_LETTER_PARTITION] and sorted(b.deciders) == [1]
    _answer_all(broker)
    for member in (a, b):
        member.run(timeout=0.0)
    # A query still open on partition 1's owner, and known to every replica.
    for i in range(40, 60):
        broker.produce(TOPICS.samples, encode(Sample(id=f"s{i}", x={"a": float(i)})), b"%d" % i)
    for member in (a, b, a, b):
        member.run(timeout=0.0)
    open_id = next(iter(e.sample_id for e in b.deciders[1].pending))

    # 1. Both instances read the refused labels; only the owner of partition 0 writes.
    first = _bad_labels(broker, "one", open_id)
    for member in (a, b, a, b):
        member.run(timeout=0.0)
    assert _dead_letters(broker) == Counter(first)
    reasons = Counter(
        (env.header("streamal.reason") or b"").decode()
        for env in broker.records(TOPICS.dead_letters)
    )
    assert reasons["invalid_json"] == 1 and reasons["unknown_class"] == 1, reasons
    assert _rejected(a) == _rejected(b) == len(first)
    assert open_id in b.deciders[1].pending  # the query stays open

    # 2. Partition 0 moves to an instance that had read the same labels (b): not again.
    second = _bad_labels(broker, "two", open_id)
    a.run(timeout=0.0)  # a writes them, and its state record says how far it read
    state = decode_state(broker.records("streamal.state")[-1].value or b"")
    assert state.partition == DEAD_LETTER_PARTITION and sum(state.read.values()) > 0
    a.close()
    b.run(timeout=0.0)  # b reads them before it takes partition 0 over
    b.run(timeout=0.0)
    assert sorted(b.deciders) == [0, 1]
    assert _dead_letters(broker) == Counter(first + second)

    # 3. Partition 0 moves to an instance that read labels its owner had not (c).
    c = _member(broker, tmp_path, "c")
    c.run(timeout=0.0)  # joins: b keeps partition 0 (until its next poll), c gets 1
    third = _bad_labels(broker, "three", open_id)
    c.run(timeout=0.0)  # c reads them without partition 0: counted and kept
    assert _rejected(c) >= len(third)
    assert _dead_letters(broker) == Counter(first + second)
    b.close()  # b leaves without having read them
    c.run(timeout=0.0)
    c.run(timeout=0.0)
    assert DEAD_LETTER_PARTITION in c.deciders
    assert _dead_letters(broker) == Counter(first + second + third)
    c.close()
