"""Shared pytest fixtures: a real Kafka-protocol broker (tansu) for ``kafka`` tests.

Fixtures
--------
``kafka_broker``
    The session's :class:`KafkaTestBroker`, started once (about 0.1 s) and guaranteed
    running at the start of every test that asks for it. ``.bootstrap`` is
    ``"127.0.0.1:PORT"``; ``.kill()`` crashes it (all data lost, it is in memory) and
    ``.restart()`` brings up an empty broker on the same port. Topics must be created
    again after a restart; other tests are unaffected because each test makes its own.
``own_kafka_broker``
    A private broker for this test only, for tests that kill or restart it while other
    clients would care.
``kafka_topics``
    A factory: ``kafka_topics("samples", "labels", partitions=1)`` creates uniquely named
    topics (``samples-<hex>``...) on the session broker, returns their names in order, and
    deletes them after the test. Never rely on auto-create (tansu makes 4 partitions).
``serve_process``
    A factory: ``serve_process(env)`` starts ``streamal serve`` with HTTP on a free port
    and returns a ``_helpers.ServeProcess`` (``.get(path)``, ``.metric(name)``, ``.stop()``,
    ``.kill()``, ``.log``); every process it started is stopped after the test.

Helpers that are not fixtures (``wait_until``, ``ServeProcess``, ``labelling_serve_env``)
live in ``tests/_helpers.py``; ``pythonpath`` puts ``tests`` on ``sys.path``, so test
modules ``from _helpers import ...``.

The broker object also carries the client settings for tests (test modules cannot import
this file under ``--import-mode=importlib``): ``kafka_broker.consumer_settings`` (a group
joins in ~3 s with these), ``kafka_broker.producer_settings`` (non-idempotent, so it
survives a broker restart), ``kafka_broker.unique("group")`` for group ids,
``kafka_broker.send(topic, values)``, ``kafka_broker.read(topic, count=, timeout=)``
(reads a topic from the start without a group, so no join wait), ``kafka_broker.client``
(kafka-python connection settings) and ``kafka_broker.env(TOPICS__SAMPLES=name, ...)``
(an environment for ``streamal`` subprocesses: this broker, fast group joins, and any
``STREAMAL_*`` settings you add). Mark tests that use these
fixtures with ``@pytest.mark.kafka``. Every consume loop needs a deadline.

See ``streamal/dev/broker.py`` for the broker itself and the KAFKA notes for tansu's quirks
(no ``latest`` offsets after batched produce, no transactions isolation, no restart state).
"""

from __future__ import annotations

import os

# Small scikit-learn fits run up to 30x slower on 2 cores when BLAS spawns a thread per
# core in every worker; one thread each keeps the suite's time predictable.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _helpers import ServeProcess

from streamal.dev.broker import LocalBroker
from streamal.transports.admin import create_topics, delete_topics

__all__ = ["TEST_CONSUMER", "TEST_PRODUCER", "KafkaTestBroker", "unique"]

#: Group consumer settings for tests: tansu accepts short sessions, and a group joins in
#: about session/2 (≈3 s); the max poll interval only has to exceed one test step.
TEST_CONSUMER: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "max_poll_interval_ms": 10000,
    "auto_offset_reset": "earliest",
}
#: Producer settings for tests: kafka-python 3 defaults to an idempotent producer, which
#: fails for good after a tansu restart (its producer id is gone); linger 0 keeps tansu's
#: end offsets exact.
TEST_PRODUCER: dict[str, Any] = {
    "enable_idempotence": False,
    "acks": "all",
    "linger_ms": 0,
    "request_timeout_ms": 5000,
    "max_block_ms": 5000,
    "reconnect_backoff_max_ms": 1000,
}


def unique(prefix: str) -> str:
    """A name nobody else in this run uses: ``prefix-<12 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class KafkaTestBroker:
    """A :class:`~streamal.dev.broker.LocalBroker` with the small admin helpers tests need."""

    consumer_settings = TEST_CONSUMER
    producer_settings = TEST_PRODUCER
    unique = staticmethod(unique)

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return self.broker.bootstrap

    def kill(self) -> None:
        """SIGKILL the broker (a crash); its topics and offsets are lost."""
        self.broker.kill()

    def restart(self) -> None:
        """Kill it and start an empty broker on the same port and cluster id."""
        self.broker.restart()

    def create_topics(self, *names: str, partitions: int = 1) -> None:
        """Create topics explicitly (idempotent: an existing topic is left as it is)."""
        create_topics(self.client, names, partitions)

    def delete_topics(self, *names: str) -> None:
        """Delete topics, ignoring ones that are gone (e.g. after a restart)."""
        if self.broker.running:
            delete_topics(self.client, names)

    @property
    def client(self) -> dict[str, Any]:
        """kafka-python connection settings for this broker."""
        return {"bootstrap_servers": self.bootstrap, **_ADMIN}

    def env(self, **settings: Any) -> dict[str, str]:
        """``os.environ`` plus ``STREAMAL_*`` variables pointing the CLI at this broker.

        The consumer settings make groups join in ~3 s. ``settings`` adds more, as
        ``SECTION__KEY=value`` (e.g. ``TOPICS__SAMPLES="s-1"``).
        """
        import os

        env = {
            **os.environ,
            "STREAMAL_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "STREAMAL_KAFKA__SESSION_TIMEOUT_MS": str(TEST_CONSUMER["session_timeout_ms"]),
            "STREAMAL_KAFKA__HEARTBEAT_INTERVAL_MS": str(TEST_CONSUMER["heartbeat_interval_ms"]),
            "STREAMAL_KAFKA__MAX_POLL_INTERVAL_MS": str(TEST_CONSUMER["max_poll_interval_ms"]),
        }
        env.update({f"STREAMAL_{key.upper()}": str(value) for key, value in settings.items()})
        return env

    def send(self, topic: str, values: Iterable[bytes], key: bytes | None = None) -> int:
        """Produce ``values`` to ``topic`` (sync, in order) and return how many were sent."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, **TEST_PRODUCER)
        try:
            n = 0
            for value in values:
                producer.send(topic, value, key=key).get(timeout=5)
                n += 1
            return n
        finally:
            producer.close(timeout=5)

    def read(self, topic: str, *, count: int | None = None, timeout: float = 10.0) -> list[Any]:
        """All records of ``topic`` from offset 0 (no group), in partition order.

        Stops at ``count`` records, or when ``timeout`` seconds pass, or (without
        ``count``) after 1 s without new records.
        """
        import time

        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **_ADMIN
        )
        try:
            parts = sorted(consumer.partitions_for_topic(topic) or ())
            if not parts:
                return []
            consumer.assign([TopicPartition(topic, p) for p in parts])
            consumer.seek_to_beginning()
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            quiet_until = time.monotonic() + 1.0
            while time.monotonic() < deadline and (count is None or len(records) < count):
                batch = consumer.poll(timeout_ms=100)
                for recs in batch.values():
                    records.extend(recs)
                if batch:
                    quiet_until = time.monotonic() + 1.0
                elif count is None and time.monotonic() > quiet_until:
                    break
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            consumer.close()


# Admin clients fail fast in tests instead of kafka-python's 30 s bootstrap wait.
_ADMIN = {"bootstrap_timeout_ms": 5000, "request_timeout_ms": 5000}


@contextmanager
def _running(log: Path) -> Iterator[KafkaTestBroker]:
    broker = LocalBroker(log_path=log)
    try:
        broker.start()
        yield KafkaTestBroker(broker)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def _session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaTestBroker]:
    with _running(tmp_path_factory.mktemp("tansu") / "broker.log") as broker:
        yield broker


@pytest.fixture
def kafka_broker(_session_broker: KafkaTestBroker) -> KafkaTestBroker:
    """The session broker, restarted first if an earlier test left it killed."""
    _session_broker.broker.start()
    return _session_broker


@pytest.fixture
def own_kafka_broker(tmp_path: Path) -> Iterator[KafkaTestBroker]:
    """A broker for this test alone (kill and restart it freely)."""
    with _running(tmp_path / "broker.log") as broker:
        yield broker


@pytest.fixture
def kafka_topics(kafka_broker: KafkaTestBroker) -> Iterator[Callable[..., list[str]]]:
    """Factory creating unique topics on the session broker; deleted after the test."""
    made: list[str] = []

    def make(*prefixes: str, partitions: int = 1) -> list[str]:
        names = [unique(p) for p in prefixes]
        kafka_broker.create_topics(*names, partitions=partitions)
        made.extend(names)
        return names

    yield make
    kafka_broker.delete_topics(*made)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory: ``serve_process(env)`` starts ``streamal serve`` (HTTP on a free port).

    ``serve_process(env, state)`` uses the checkpoint directory ``state`` (a restart
    resumes from it); ``startup=60`` allows longer for the port to show. Every process
    it started is stopped (SIGTERM, then SIGKILL) after the test.
    """
    started: list[ServeProcess] = []

    def start(env: dict[str, str], state: Path | None = None, startup: float = 30) -> ServeProcess:
        state = tmp_path / f"state-{len(started)}" if state is None else state
        proc = ServeProcess(env, state, startup)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.stop()
