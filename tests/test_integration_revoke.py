"""Single mode: a rebalance under a running service (tansu, kafka-python 3).

kafka-python 3 calls a synchronous rebalance listener on the consumer's I/O thread,
where a blocking offset commit raises ``RuntimeError`` ("Cannot block on net.run()
from the IO thread itself"). The service checkpoints in ``on_revoked`` and commits
there, so a second member joining the group used to crash the first one. These tests
start two single-mode services on the same group (each with its own snapshots) and
check that the first survives the rebalance and that its checkpoint's offsets were
committed before its partitions went, so the second member decides none of its
samples again.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _helpers import wait_until

from streamal.core.checkpoint import Checkpointer
from streamal.core.spec import LearnerSpec, build_learner
from streamal.messages import Sample, encode
from streamal.service.handlers import Topics
from streamal.service.loop import Service
from streamal.service.policy import LoopPolicy
from streamal.transports.kafka import KafkaSink, KafkaSource

pytestmark = pytest.mark.kafka

PARTITIONS = 2


def _service(broker: Any, topics: Topics, group: str, directory: Path) -> Service:
    client = {"bootstrap_servers": broker.bootstrap}
    spec = LearnerSpec("logreg", "entropy", "full", 0.2, seed=1)
    return Service(
        build_learner(spec),
        KafkaSource(client, group, broker.consumer_settings),
        KafkaSink(client, {"linger_ms": 0}),
        Checkpointer(directory),
        topics,
        LoopPolicy(poll_timeout=0.1, commit_interval=5.0, tune_gc=False),
    )


def _produce(broker: Any, topic: str, start: int, stop: int, pause: float = 0.0) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, **broker.producer_settings)
    try:
        for i in range(start, stop):
            value = encode(Sample(id=f"s{i}", x={"a": float(i % 5)}))
            producer.send(topic, value, key=b"k%d" % i).get(timeout=5)
            time.sleep(pause)
    finally:
        producer.close(timeout=5)


def _committed(broker: Any, group: str, topic: str) -> int:
    """The sum of the group's committed offsets on ``topic`` (read without joining)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum(consumer.committed(tp) or 0 for tp in parts)
    finally:
        consumer.close(autocommit=False)


def test_a_second_member_joining_does_not_crash_the_first_and_nothing_is_decided_twice(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    (samples,) = kafka_topics("samples", partitions=PARTITIONS)
    labels, queries, dead = kafka_topics("labels", "queries", "dead")
    topics = Topics(samples=samples, labels=labels, queries=queries, dead_letters=dead)
    group = kafka_broker.unique("g")
    n = 300
    first = _service(kafka_broker, topics, group, tmp_path / "a")
    _produce(kafka_broker, samples, 0, 20)
    wait_until(
        lambda: first.run(timeout=0.3) is not None and first.learner.stats.seen >= 20,
        30,
        "the first member alone to decide the first samples",
    )
    # Samples keep coming while the second member joins, so the first has decided
    # samples since its last checkpoint when its partitions are revoked (a checkpoint
    # with nothing new commits nothing, and would not show the crash).
    producer = threading.Thread(target=_produce, args=(kafka_broker, samples, 20, n, 0.02))
    producer.start()
    second = _service(kafka_broker, topics, group, tmp_path / "b")
    errors: list[BaseException] = []
    done = threading.Event()

    def run_second() -> None:
        try:
            while not done.is_set():
                second.run(timeout=0.3)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    thread = threading.Thread(target=run_second, daemon=True)
    try:
        thread.start()
        # The second member's join revokes the first one's partitions: with a blocking
        # commit inside the revoke callback, this run raised RuntimeError.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            producer.is_alive() or first.learner.stats.seen + second.learner.stats.seen < n
        ):
            first.run(timeout=1.0)
        assert first.source.assignment() and second.source.assignment()
    finally:
        done.set()
        producer.join(30)
        thread.join(20)
        first.close()
        second.close()
    assert not errors, errors
    # Every sample decided exactly once across the two members: the first member's
    # revoke committed its checkpoint's offsets before its partition moved.
    assert first.learner.stats.seen + second.learner.stats.seen == n
    assert second.learner.stats.seen > 0
    assert _committed(kafka_broker, group, samples) == n
