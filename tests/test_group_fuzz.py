"""Fuzz: hostile samples, labels, queries and state records through group mode.

Two (then three) :class:`~streamal.service.group.GroupService` instances share an
in-memory broker while the hostile generator of ``tests/_hostile.py`` feeds the samples
and labels topics, crafted bad queries feed the queries topic, and records an outsider
wrote (garbage, truncated, wrong magic or version, unsigned or wrongly signed, a
pickle of a class off the allow-list, malformed fields, another partition's record, a
tombstone, a key that is no partition) land on the state topic. The instances must keep
running; every bad sample, label and query must be dead-lettered exactly once across
the group with a known reason; refused labels and queries must leave every replica's
state as it was; a refused state record must change nothing (the partition resumes from
its previous owner's last good record).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
from collections import Counter
from pathlib import Path

import _hostile as hostile
import pytest
from _helpers import memory_group_broker, memory_group_member

from streamal.core.learner import ActiveLearner
from streamal.core.partition import (
    STATE_MAGIC,
    PartitionState,
    check_state,
    decision_state,
    decode_state,
    encode_state,
)
from streamal.core.spec import LearnerSpec
from streamal.exceptions import CheckpointError
from streamal.messages import Label, Limits, Sample, encode
from streamal.service.group import KEEP_STATES, GroupService
from streamal.service.loop import LoopPolicy, Topics
from streamal.service.outputs import REASONS
from streamal.transports import MemoryBroker

TOPICS = Topics()
POLICY = LoopPolicy(tune_gc=False)
STATE = "streamal.state"
LIMITS = Limits(max_features=64, max_meta_bytes=4096)
TOPIC = {hostile.SAMPLES: TOPICS.samples, hostile.LABELS: TOPICS.labels}
Planted = tuple[bytes | None, bytes | None]


def _broker() -> MemoryBroker:
    return memory_group_broker(TOPICS)  # type: ignore[no-any-return]


def _member(broker: MemoryBroker, folder: Path, name: str, key: bytes | None) -> GroupService:
    spec = LearnerSpec("logreg", "entropy", "random", 0.3, seed=1)
    return memory_group_member(  # type: ignore[no-any-return]
        broker, folder, name, spec, TOPICS, decider_seed=0, key=key, limits=LIMITS
    )


def _bad_queries(known: str) -> list[bytes]:
    """Queries nobody should accept: broken, mistyped, oversized, absurd."""
    good = {"sample_id": "q", "x": {"a": 1.0}, "score": 0.5, "strategy": "e", "model_version": 1}
    return [
        b"{not json",
        b"",
        b"[]",
        json.dumps({**good, "sample_id": 7}).encode(),
        json.dumps({**good, "x": [1, 2]}).encode(),
        json.dumps({**good, "score": "high"}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "x"}).encode(),
        json.dumps({**good, "sample_id": "z" * 20_000}).encode(),
        json.dumps({**good, "x": {f"f{i}": i for i in range(500)}}).encode(),
        json.dumps({**good, "x": {"a": 1e300}}).encode(),
        b'{"sample_id": "n", "x": {"a": NaN}, "score": 0, "strategy": "e", "model_version": 1}',
        json.dumps({**good, "ts": 1e300}).encode(),
        json.dumps({**good, "model_version": "v1"}).encode(),
        json.dumps({**good, "sample_id": known, "purpose": "steal"}).encode(),
        b"\xff\xfe" + b"x" * 100,
    ]


def _bad_labels() -> list[bytes | None]:
    return [
        b"garbage \x00\x01",
        None,
        b"[1, 2]",
        json.dumps({"sample_id": "x", "y": 1, "schema_version": 99}).encode(),
        json.dumps({"sample_id": "l" * 20_000, "y": True}).encode(),
        json.dumps({"sample_id": "x", "y": {"deep": [1]}}).encode(),
    ]


def _frame(payload: bytes, version: int = 1, flags: int = 0, magic: bytes = STATE_MAGIC) -> bytes:
    """A record framed as streamal frames them, with an unkeyed SHA-256 checksum."""
    header = struct.pack(">8sHB32s", magic, version, flags, hashlib.sha256(payload).digest())
    return header + payload


def _planted(learner: ActiveLearner) -> tuple[list[Planted], list[bytes]]:
    """Records an outsider could write on the state topic, as ``(key, value)``: those a
    reader refuses at once (no partition key, a tombstone, a bad frame, checksum or
    signature), and those framed with a valid unkeyed checksum whose content is bad
    (refused when the partition is taken; without ``checkpoint.key`` anyone can frame
    a record, so only these reach the unpickler, which builds allow-listed classes only).
    """
    good = decision_state(learner)
    at_once: list[Planted] = [
        (b"0", b"garbage"),
        (b"0", b""),
        (b"0", None),  # a tombstone
        (b"zero", encode_state(PartitionState(0, 0, good))),
        (None, encode_state(PartitionState(0, 0, good))),
        (b"-1", encode_state(PartitionState(0, 0, good))),
        (b"0", _frame(pickle.dumps(PartitionState(0, 0, good)), magic=b"STRMLPSX")),
        (b"0", _frame(pickle.dumps(PartitionState(0, 0, good)), version=9)),
        (b"0", encode_state(PartitionState(0, 0, good), key=b"not the key")),
        (b"0", b"STRMLPST" + b"\x00" * 10),
    ]
    framed = [
        _frame(b"\x80\x04not a pickle"),
        _frame(pickle.dumps(PartitionState(0, 0, {"budget": os.getcwd}))),
        _frame(pickle.dumps(PartitionState(0, "x", good))),  # type: ignore[arg-type]
        _frame(pickle.dumps(PartitionState(0, 0, {"budget": 1}))),
        _frame(pickle.dumps(PartitionState(0, 0, {**good, "budget": 5}))),
        _frame(pickle.dumps(PartitionState(0, 0, {**good, "pending": [(1, "t", None)]}))),
        _frame(pickle.dumps(PartitionState(1, 0, good))),  # another partition's record
        _frame(pickle.dumps({"partition": 0})),
    ]
    return at_once, framed


def _plant(broker: MemoryBroker, p: int, at_once: list[Planted], framed: list[bytes]) -> int:
    """Write ``at_once`` as they are and ``framed`` under partition ``p``'s key."""
    for key, value in at_once:
        broker.produce(STATE, value, key)
    for value in framed:
        broker.produce(STATE, value, b"%d" % p)
    return len(at_once) + len(framed)


def _kept(broker: MemoryBroker, p: int, key: bytes | None) -> list[bytes]:
    """The records of partition ``p`` a member keeps (the newest that pass the frame check)."""
    kept = []
    for env in broker.records(STATE):
        if env.key == b"%d" % p and env.value is not None:
            try:
                check_state(env.value, key)
            except CheckpointError:
                continue
            kept.append(env.value)
    return kept[-KEEP_STATES:]


def _decodes(record: bytes, key: bytes | None, p: int) -> bool:
    try:
        return decode_state(record, key).partition == p
    except CheckpointError:
        return False


def _dead_sources(broker: MemoryBroker) -> Counter[str]:
    return Counter(
        (env.header("streamal.source") or b"").decode()
        for env in broker.records(TOPICS.dead_letters)
    )


def _reasons(broker: MemoryBroker) -> Counter[str]:
    return Counter(
        (env.header("streamal.reason") or b"").decode()
        for env in broker.records(TOPICS.dead_letters)
    )


def _rejected(member: GroupService) -> float:
    value = member.metrics.registry.get_sample_value(
        "streamal_labels_total", {"outcome": "rejected"}
    )
    return value or 0.0


def _state_refused(member: GroupService) -> float:
    value = member.metrics.registry.get_sample_value("streamal_state_records_refused_total")
    return value or 0.0


def _answer(broker: MemoryBroker, answered: set[str]) -> None:
    for env in broker.records(TOPICS.queries):
        try:
            sid = json.loads(env.value or b"")["sample_id"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(sid, str) and sid not in answered and len(sid) < 100:
            answered.add(sid)
            label = encode(Label(sample_id=sid, y=hash(sid) % 2 == 0))
            broker.produce(TOPICS.labels, label, sid.encode())


def _run(members: list[GroupService], rounds: int = 2) -> None:
    for _ in range(rounds):
        for member in members:
            member.run(timeout=0.0)


@pytest.mark.parametrize("key", [None, b"group-key"])
def test_hostile_messages_and_planted_state_records_in_group_mode(
    key: bytes | None, tmp_path: Path
) -> None:
    broker = _broker()
    a, b = _member(broker, tmp_path, "a", key), _member(broker, tmp_path, "b", key)
    answered: set[str] = set()
    samples = 0
    # 1. The hostile stream on samples and labels, with an oracle answering the queries.
    for i, (_kind, topic, value) in enumerate(hostile.hostile_stream(3000, seed=5)):
        k = None if topic == hostile.LABELS or value is None else b"%d" % i
        broker.produce(TOPIC[topic], value, k)
        samples += topic == hostile.SAMPLES
        if i % 250 == 249:
            _run([a, b], 1)
            _answer(broker, answered)
    _run([a, b])
    assert sorted(a.deciders) == [0] and sorted(b.deciders) == [1]
    # Each sample is decided by its partition's owner or dead-lettered: once.
    sources = _dead_sources(broker)
    assert max(sources.values()) == 1, sources.most_common(3)
    sample_dead = sum(n for s, n in sources.items() if s.startswith(TOPICS.samples))
    seen = a.deciders[0].stats.seen + b.deciders[1].stats.seen
    assert seen + sample_dead == samples
    # Every refused label is counted by both instances and dead-lettered once.
    label_dead = sum(n for s, n in sources.items() if s.startswith(TOPICS.labels))
    assert label_dead > 50
    assert _rejected(a) == _rejected(b) == label_dead
    assert set(_reasons(broker)) <= set(REASONS)
    assert a.replica.model_version == b.replica.model_version > 0

    # 2. Only bad labels and queries: dead-lettered once each, no replica changes.
    open_id = next(iter(e.sample_id for e in b.deciders[1].pending))
    before = [pickle.dumps(m.replica) for m in (a, b)]
    deciders = [pickle.dumps(decision_state(d)) for d in (a.deciders[0], b.deciders[1])]
    bad = []
    for value in _bad_queries(open_id):
        bad.append(broker.produce(TOPICS.queries, value, b"q"))
    for label in _bad_labels():
        bad.append(broker.produce(TOPICS.labels, label, b"l"))
    _run([a, b])
    sources = _dead_sources(broker)
    for env in bad:
        assert sources[f"{env.topic}/{env.partition}/{env.offset}"] == 1, env.value
    assert max(sources.values()) == 1
    assert [pickle.dumps(m.replica) for m in (a, b)] == before
    assert [pickle.dumps(decision_state(d)) for d in (a.deciders[0], b.deciders[1])] == deciders

    # 3. Planted records on the state topic, then partition 0 moves from a to b: b
    # refuses them all and resumes from a's last good record. (At most KEEP_STATES - 1
    # framed ones before each move: more, only possible without a key, would push the
    # last good record out and the partition would start afresh.)
    at_once, framed = _planted(a.deciders[0])
    assert len(framed) <= 3 * (KEEP_STATES - 1)
    batches = [framed[i::3] for i in range(3)]

    def stats(d: ActiveLearner) -> tuple[int, int, int]:
        return d.stats.seen, d.stats.queried, d.budget.spent

    expected = stats(a.deciders[0])
    planted = _plant(broker, 0, at_once, batches[0])
    a.close()
    _run([b])
    assert sorted(b.deciders) == [0, 1] and stats(b.deciders[0]) == expected
    assert _state_refused(b) == planted

    # 4. A third member joins and takes partition 1 over more planted records.
    expected = stats(b.deciders[1])
    planted += _plant(broker, 1, at_once, batches[1])
    c = _member(broker, tmp_path, "c", key)
    _run([c, b, c])
    assert sorted(b.deciders) == [0] and sorted(c.deciders) == [1]
    assert stats(c.deciders[1]) == expected
    # c read every record; with a key it refuses the framed ones as it reads them,
    # without it it unpickles (and refuses) only those of the partition it takes.
    refused = 2 * len(at_once) + len(batches[1]) + (len(batches[0]) if key else 0)
    assert _state_refused(c) == refused

    def more_samples(first: int, n: int) -> int:
        for i in range(first, first + n):
            value = encode(Sample(id=f"t{i}", x={"a": float(i % 7)}))
            broker.produce(TOPICS.samples, value, b"%d" % i)
        return n

    samples += more_samples(3000, 200)  # new good records for both partitions
    _run([b, c])

    # 5. b leaves: c takes partition 0 over the last planted records; the stream goes
    # on and nothing is decided or dead-lettered twice.
    expected = stats(b.deciders[0])
    planted += _plant(broker, 0, [], batches[2])
    b.close()
    # With a key, c refuses the last batch as it reads it. Without, it ranks every kept
    # record of partition 0 by ownership epoch, so it unpickles (and refuses) each kept
    # one that does not decode (planted ones that decode rank below the good ones and
    # are never tried); partition 1's bad records were refused for good in step 4.
    undecodable = sum(not _decodes(record, key, 0) for record in _kept(broker, 0, key))
    assert undecodable == 0 if key else undecodable >= 1
    _run([c])
    assert sorted(c.deciders) == [0, 1] and stats(c.deciders[0]) == expected
    assert _state_refused(c) == refused + (len(batches[2]) if key else undecodable)
    samples += more_samples(3200, 400)
    _run([c, c])
    sources = _dead_sources(broker)
    assert max(sources.values()) == 1
    sample_dead = sum(n for s, n in sources.items() if s.startswith(TOPICS.samples))
    assert c.deciders[0].stats.seen + c.deciders[1].stats.seen + sample_dead == samples
    c.close()
