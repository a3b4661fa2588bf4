"""``streamal serve`` in a subprocess against a real Kafka-protocol broker (tansu).

End to end through every topic, poison messages, SIGKILL of the service again and again,
and the broker killed under the running service. The promise is checked from the topics
and the final snapshot.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from _helpers import ServeProcess, default_budget_bound, wait_until

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.messages import Label, Sample, encode

pytestmark = pytest.mark.kafka

RATE = 0.1
ROLES = ("samples", "labels", "queries", "dead_letters", "predictions")


def _env(broker: Any, topics: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **_settings(broker.bootstrap, topics, **extra)}


def _settings(bootstrap: str, topics: dict[str, str], **extra: str) -> dict[str, str]:
    env = {
        "STREAMAL_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "STREAMAL_KAFKA__GROUP_ID": topics["samples"] + "-service",
        "STREAMAL_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "STREAMAL_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
        "STREAMAL_KAFKA__MAX_POLL_INTERVAL_MS": "10000",
        "STREAMAL_LEARNER__MODEL": "logreg",
        "STREAMAL_LEARNER__STRATEGY": "entropy",
        "STREAMAL_LEARNER__RATE": str(RATE),
        "STREAMAL_CHECKPOINT__EVERY": "50",
        "STREAMAL_CHECKPOINT__INTERVAL": "0.5",
        "STREAMAL_SERVICE__MAX_BATCH": "50",
        "STREAMAL_SERVICE__HEALTH_INTERVAL": "0.5",
        "STREAMAL_SERVICE__HTTP_HOST": "127.0.0.1",
    }
    env.update({f"STREAMAL_TOPICS__{role.upper()}": topics[role] for role in ROLES})
    env.update({f"STREAMAL_{k.upper()}": v for k, v in extra.items()})
    return env


def _producer(broker: Any) -> Any:
    from kafka import KafkaProducer

    # 4 MiB requests: one poison message is larger than the 1 MiB wire limit on purpose.
    return KafkaProducer(
        bootstrap_servers=broker.bootstrap, max_request_size=4 << 20, **broker.producer_settings
    )


def _sample(i: int) -> bytes:
    rng = random.Random(i)
    return encode(Sample(id=f"s{i}", x={"a": float(i % 10), "b": rng.random(), "c": "xyz"[i % 3]}))


class Oracle(threading.Thread):
    """Answers each distinct query id once, reading the queries topic without a group."""

    def __init__(self, broker: Any, queries: str, labels: str) -> None:
        super().__init__(daemon=True)
        self.broker, self.queries, self.labels = broker, queries, labels
        self.answered: set[str] = set()
        self.messages = 0
        self.last_answer = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, enable_auto_commit=False)
        producer = _producer(self.broker)
        try:
            parts = sorted(
                wait_until(lambda: consumer.partitions_for_topic(self.queries), 10, "topic")
            )
            consumer.assign([TopicPartition(self.queries, p) for p in parts])
            consumer.seek_to_beginning()
            while not self.done.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for r in records:
                        self.messages += 1
                        sid = json.loads(r.value)["sample_id"]
                        if sid not in self.answered:
                            y = int(sid[1:]) % 10 > 4
                            value = encode(Label(sample_id=sid, y=y))
                            producer.send(self.labels, value, key=sid.encode()).get(10)
                            self.answered.add(sid)
                            self.last_answer = time.monotonic()
        finally:
            consumer.close()
            producer.close(5)


@pytest.fixture
def oracle_factory() -> Iterator[Callable[..., Oracle]]:
    started: list[Oracle] = []

    def start(broker: Any, topics: dict[str, str]) -> Oracle:
        oracle = Oracle(broker, topics["queries"], topics["labels"])
        oracle.start()
        started.append(oracle)
        return oracle

    yield start
    for oracle in started:
        oracle.done.set()
        oracle.join(10)


def _names(make_topics: Callable[..., list[str]]) -> dict[str, str]:
    return dict(zip(ROLES, make_topics(*ROLES, partitions=2), strict=True))


def _final(state: Path) -> Snapshot:
    snap = Checkpointer(state).load()
    assert snap is not None
    return snap


def _check_promise(snap: Snapshot, broker: Any, topics: dict[str, str], n: int, oracle: Oracle):
    learner, stats = snap.learner, snap.learner.stats
    assert stats.seen == n  # every sample decided, exactly once in the durable state
    asked = {json.loads(r.value)["sample_id"] for r in broker.read(topics["queries"])}
    assert len(asked) == stats.queried == learner.budget.spent  # no phantom query
    assert stats.queried <= default_budget_bound(RATE, stats.seen)  # budget not overspent
    # every label the oracle sent was learned exactly once; the rest still wait
    assert stats.applied == len(oracle.answered) == learner.model_version
    assert stats.duplicate == stats.unknown == 0
    assert {e.sample_id for e in learner.pending} == asked - oracle.answered
    predicted = {json.loads(r.value)["sample_id"] for r in broker.read(topics["predictions"])}
    assert predicted == {f"s{i}" for i in range(n)}  # at least once, so none skipped
    return asked


def _drain(serve: ServeProcess, oracle: Oracle, n: int, timeout: float = 60) -> None:
    """Wait until every sample was seen, then stop the oracle and let its last labels in."""
    seen = partial(serve.metric, "streamal_learner_events", event="seen")
    queried = partial(serve.metric, "streamal_learner_events", event="queried")
    # Queries leave the service at its next checkpoint (the outbox), so wait until the
    # oracle has answered every query decided so far, not only until every sample is seen.
    wait_until(
        lambda: (
            seen() == n
            and len(oracle.answered) >= queried()
            and time.monotonic() - oracle.last_answer > 1.5
        ),
        timeout,
        "seen",
    )
    oracle.done.set()
    oracle.join(10)
    applied = partial(serve.metric, "streamal_learner_events", event="applied")
    wait_until(lambda: applied() == len(oracle.answered), 30, "the last labels")


POISON = {
    "invalid_json": b'{"id": "p1", "x": ',
    "non_finite": b'{"id": "p2", "x": {"a": NaN}}',
    "invalid_schema": b'{"id": "p3", "x": {"a": [1, 2]}}',
    "oversized": b'{"id": "p4", "x": {"a": "' + b"z" * 1_100_000 + b'"}}',
    "empty": None,
}


def test_end_to_end_through_every_topic_with_poison(
    kafka_broker: Any, kafka_topics: Any, oracle_factory: Any, serve_process: Any, tmp_path: Path
) -> None:
    topics, state, n = _names(kafka_topics), tmp_path / "state", 300
    producer = _producer(kafka_broker)
    for i in range(n):
        producer.send(topics["samples"], _sample(i), key=b"s%d" % i)
        if i % 50 == 25 and i // 50 < len(POISON):
            kind = list(POISON)[i // 50]
            producer.send(topics["samples"], POISON[kind], key=kind.encode())
    producer.send(topics["labels"], encode(Label(sample_id="ghost", y=True)), key=b"ghost")
    producer.flush(10)
    producer.close(5)
    oracle = oracle_factory(kafka_broker, topics)
    serve = serve_process(_env(kafka_broker, topics), state)
    assert serve.get("/healthz") == (200, "ok\n")
    wait_until(lambda: serve.get("/readyz")[0] == 200, 20, "readiness")
    _drain(serve, oracle, n)
    assert serve.metric("streamal_dead_letters_total", reason="label_unknown") == 1
    for kind in POISON:
        assert serve.metric("streamal_dead_letters_total", reason=kind) == 1
    assert serve.stop() == 0
    assert "stopped gracefully" in serve.log.read_text()

    snap = _final(state)
    stats = snap.learner.stats
    assert stats.unknown == 1  # the ghost label
    snap.learner.stats.unknown = 0
    asked = _check_promise(snap, kafka_broker, topics, n, oracle)
    assert 0 < len(asked) <= default_budget_bound(RATE, n) and stats.applied > 0
    letters = {r.key: r for r in kafka_broker.read(topics["dead_letters"])}
    for kind, value in POISON.items():
        headers = dict(letters[kind.encode()].headers)
        assert headers["streamal.reason"] == kind.encode()
        if kind == "oversized":
            assert int(headers["streamal.truncated_from"]) == len(value)  # type: ignore[arg-type]
        elif value is not None:
            assert letters[kind.encode()].value == value
    assert dict(letters[b"ghost"].headers)["streamal.reason"] == b"label_unknown"


@pytest.mark.slow
def test_sigkill_again_and_again_keeps_the_promise(
    kafka_broker: Any, kafka_topics: Any, oracle_factory: Any, serve_process: Any, tmp_path: Path
) -> None:
    topics, state = _names(kafka_topics), tmp_path / "state"
    rng = random.Random(2024)
    oracle = oracle_factory(kafka_broker, topics)
    produced, enough = [0], threading.Event()

    def produce() -> None:  # a steady stream while the service dies and comes back
        producer = _producer(kafka_broker)
        while not enough.is_set():
            i = produced[0]
            producer.send(topics["samples"], _sample(i), key=b"s%d" % i)
            produced[0] = i + 1
            time.sleep(0.02)
        producer.flush(10)
        producer.close(5)

    feeder = threading.Thread(target=produce, daemon=True)
    feeder.start()
    kills, started = 0, time.monotonic()
    while kills < int(os.environ.get("STREAMAL_TEST_KILLS", "6")):  # 20 for the issue 14 run
        serve = serve_process(_env(kafka_broker, topics), state)
        # Kill at a random moment once this incarnation is processing.
        wait_until(
            partial(serve.metric, "streamal_messages_consumed_total", kind="sample"), 60, "work"
        )
        time.sleep(rng.uniform(0.0, 1.5))
        serve.kill()
        kills += 1
    enough.set()
    feeder.join(30)
    n = produced[0]
    serve = serve_process(_env(kafka_broker, topics), state)
    _drain(serve, oracle, n, timeout=90)
    assert serve.stop() == 0
    elapsed = time.monotonic() - started
    snap = _final(state)
    asked = _check_promise(snap, kafka_broker, topics, n, oracle)
    restored = sum("restored snapshot" in p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert restored >= kills  # every restart resumed from a snapshot
    print(
        f"\n{kills} SIGKILLs in {elapsed:.0f} s: {n} samples, {len(asked)} queries "
        f"({oracle.messages} query messages read), {len(oracle.answered)} labels learned once"
    )


def test_broker_killed_under_the_service(
    own_kafka_broker: Any, serve_process: Any, tmp_path: Path
) -> None:
    broker, state = own_kafka_broker, tmp_path / "state"
    topics = {role: f"{role}-{os.getpid()}" for role in ROLES}
    broker.create_topics(*topics.values(), partitions=2)

    def send(first: int, last: int) -> None:
        # A producer per batch: kafka-python leaks a socket per failed reconnect, so no
        # client of this test process stays alive across an outage.
        producer = _producer(broker)
        for i in range(first, last):
            producer.send(topics["samples"], _sample(i), key=b"s%d" % i).get(10)
        producer.close(5)

    send(0, 100)
    serve = serve_process(_env(broker, topics, SERVICE__BROKER_TIMEOUT="6"), state)
    wait_until(
        lambda: serve.metric("streamal_learner_events", event="seen") == 100,
        30,
        "100 seen",
        log=serve.log,
    )
    # A short outage: the service rides it out and reads the re-created (empty) topics.
    broker.kill()
    # Noticed by the next probe, or at worst by the flush of a checkpoint in progress.
    wait_until(
        lambda: serve.get("/readyz") == (503, "broker unreachable\n"),
        15,
        "not ready",
        log=serve.log,
    )
    time.sleep(1.0)
    broker.restart()
    broker.create_topics(*topics.values(), partitions=2)
    wait_until(lambda: serve.get("/readyz")[0] == 200, 20, "ready again", log=serve.log)
    send(100, 150)
    # Noticed on re-assignment (the topics' new ids) or, when the client kept its
    # assignment and restarted the partitions itself, by their offsets going back: the
    # second needs messages, so they are sent first (it failed 2 CI runs in 4 before).
    wait_until(
        lambda: serve.metric("streamal_offset_resets_total", kind="sample") > 0,
        30,
        "reset",
        log=serve.log,
    )
    wait_until(
        lambda: serve.metric("streamal_learner_events", event="seen") == 150,
        30,
        "150 seen",
        log=serve.log,
    )
    assert serve.proc.poll() is None
    # (the broker keeps nothing across a restart: what the snapshot lacks is lost with it)
    wait_until(
        lambda: _final(state).learner.stats.seen == 150, 10, "150 in the snapshot", log=serve.log
    )
    # A long outage: the service exits non-zero with a clear message ...
    broker.kill()
    assert serve.proc.wait(30) == 3
    assert "unreachable for" in serve.log.read_text()
    # ... and an orchestrator's restart resumes from the snapshot.
    broker.restart()
    broker.create_topics(*topics.values(), partitions=2)
    send(150, 180)
    serve = serve_process(_env(broker, topics), state)
    wait_until(
        lambda: serve.metric("streamal_learner_events", event="seen") == 180,
        40,
        "180 seen",
        log=serve.log,
    )
    assert serve.stop() == 0
    assert _final(state).learner.stats.seen == 180
