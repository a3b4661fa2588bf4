"""Kafka transports on kafka-python: a group consumer and a producer.

Every kafka-python error is turned into :class:`~streamal.exceptions.TransportError` in
one place, :func:`map_kafka_errors`, so nothing above this module sees a Kafka type.

Choices, and why:

- the consumer never auto-commits: the service commits after its snapshot;
- the producer is **not idempotent** (kafka-python 3 defaults to idempotence): an
  idempotent producer cannot survive a broker that forgot its producer id (tansu's
  memory storage after a restart), while at-least-once delivery with stable keys and
  ids is all the service needs;
- ``acks="all"``: a query or dead letter counts as delivered only when the broker has it;
- polls are bounded with ``max_records`` and partitions are never paused (kafka-python
  3.0 loses a paused partition whose fetched batch was partly consumed);
- the rebalance listener is asynchronous: kafka-python 3 runs rebalance callbacks on
  the consumer's I/O thread, where a blocking commit raises ``RuntimeError``; a commit
  that must wait, asked for inside a callback (the service's checkpoint on revoke), is
  sent at once and awaited by the listener before the partitions go
  (:meth:`KafkaSource.commit`);
- the ``crc32c`` package makes kafka-python's checksums several times faster
  (``docs/benchmarks.md``); without it a warning is logged (:func:`crc32c_accelerated`).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from streamal.exceptions import TransportError
from streamal.redact import redact
from streamal.transports.base import Envelope, Header, RebalanceListener, TopicPartition

_new_tuple = tuple.__new__

__all__ = [
    "KafkaReader",
    "KafkaSink",
    "KafkaSource",
    "connect_any",
    "crc32c_accelerated",
    "map_kafka_errors",
    "wait_for_broker",
]

log = logging.getLogger("streamal.transports.kafka")
#: Longest single kafka-python poll inside :meth:`KafkaSource.poll` (see there).
_POLL_SLICE_MS = 10


@contextmanager
def map_kafka_errors(action: str) -> Iterator[None]:
    """Re-raise kafka-python (and socket) errors as ``TransportError`` naming ``action``.

    Examples
    --------
    >>> with map_kafka_errors("sending"):
    ...     raise kafka_errors.KafkaTimeoutError("no metadata")
    Traceback (most recent call last):
    ...
    streamal.exceptions.TransportError: sending: KafkaTimeoutError: KafkaTimeoutError: no metadata
    """
    try:
        yield
    except (kafka_errors.KafkaError, OSError) as err:
        raise TransportError(f"{action}: {type(err).__name__}: {err}") from err


def crc32c_accelerated() -> bool:
    """Whether kafka-python checksums record batches with the C ``crc32c`` package."""
    from kafka.record import util

    return util.crc32c_c is not None


def _servers(value: str | Sequence[str]) -> list[str]:
    """Bootstrap servers as a list of ``host:port``.

    Examples
    --------
    >>> _servers("a:1, b:2"), _servers(["[::1]:9092"])
    (['a:1', 'b:2'], ['[::1]:9092'])
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s.strip()]


def connect_any(servers: str | Sequence[str], timeout: float) -> None:
    """Open (and close) a TCP connection to one of ``servers``, or raise ``TransportError``."""
    errors = []
    for server in _servers(servers):
        host, _, port = server.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout).close()
            return
        except (OSError, ValueError) as err:
            errors.append(f"{server}: {err}")
    raise TransportError(f"cannot connect to {'; '.join(errors) or 'no bootstrap server'}")


def wait_for_broker(
    servers: str | Sequence[str], timeout: float, progress_every: float = 5.0
) -> None:
    """Wait until one of ``servers`` accepts a TCP connection, for at most ``timeout`` s.

    The Kafka clients are only built once this passes: kafka-python leaks its sockets
    when its constructor gives up on an unreachable broker. While it waits, a warning
    says so every ``progress_every`` seconds (``serve``, ``produce`` and ``annotate``
    would otherwise sit silent).
    """
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + progress_every
    while True:
        try:
            connect_any(servers, min(1.0, timeout))
            return
        except TransportError as err:
            now = time.monotonic()
            if now >= deadline:
                raise
            if now >= next_note:
                next_note = now + progress_every
                log.warning(
                    "waiting for the Kafka broker (%.0f s so far, giving up after %.0f s): %s",
                    now - started,
                    timeout,
                    redact(str(err)),
                )
            time.sleep(0.2)


def _tp(tp: TopicPartition) -> KafkaTopicPartition:
    return KafkaTopicPartition(tp[0], tp[1])


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Calls the service's (synchronous) listener, then awaits the commits it asked for.

    kafka-python awaits these methods on the consumer's I/O thread before it rejoins
    the group, so a commit awaited here lands before the partitions move to another
    member: the next owner starts after the offsets of the revoking member's checkpoint.
    """

    def __init__(self, target: RebalanceListener, source: KafkaSource) -> None:
        self.target = target
        self.source = source

    async def on_partitions_revoked(self, revoked: Iterable[KafkaTopicPartition]) -> None:
        source = self.source
        source._in_callback = True
        try:
            self.target.on_revoked(sorted((tp.topic, tp.partition) for tp in revoked))
        finally:
            source._in_callback = False
        await source._await_deferred()

    async def on_partitions_assigned(self, assigned: Iterable[KafkaTopicPartition]) -> None:
        source = self.source
        source._in_callback = True
        try:
            self.target.on_assigned(sorted((tp.topic, tp.partition) for tp in assigned))
        finally:
            source._in_callback = False
        await source._await_deferred()


def _log_commit_failure(offsets: Any, result: Any) -> None:
    """Callback of an asynchronous commit: a failure is logged (the snapshot holds the
    offsets, and the next commit carries newer ones)."""
    if isinstance(result, BaseException):
        log.warning("asynchronous offset commit failed: %s", result)


class KafkaSource:
    """A consumer-group member with manual commits.

    Parameters
    ----------
    client
        kafka-python settings shared with the producer (``bootstrap_servers``, security).
    group_id
        The consumer group.
    options
        Further ``KafkaConsumer`` settings (session timeout, fetch sizes...).
    commit_timeout
        Seconds a commit may wait for the group coordinator (kafka-python would wait
        forever while the broker is away).
    """

    def __init__(
        self,
        client: Mapping[str, Any],
        group_id: str,
        options: Mapping[str, Any] | None = None,
        commit_timeout: float = 5.0,
    ) -> None:
        self.client = dict(client)
        self.group_id = group_id
        self.options = dict(options or {})
        self.commit_timeout = commit_timeout
        if not crc32c_accelerated():
            log.warning("the crc32c package is missing: kafka-python will be 4-9x slower")
        settings = {"auto_offset_reset": "earliest", **self.options}
        servers = self.client.get("bootstrap_servers", "localhost:9092")
        wait_for_broker(servers, settings.get("bootstrap_timeout_ms", 30_000) / 1000)
        with map_kafka_errors(
            f"cannot start a consumer for {self.client.get('bootstrap_servers')}"
        ):
            self._consumer = KafkaConsumer(
                **self.client, group_id=group_id, enable_auto_commit=False, **settings
            )
        self._topics: list[str] = []
        #: Whether the last poll returned messages (see :meth:`poll`).
        self._flowing = False
        #: Whether a rebalance callback is running (on kafka-python's I/O thread).
        self._in_callback = False
        #: Commits asked to wait inside a callback: the listener awaits them.
        self._deferred: list[Any] = []

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self._topics = list(topics)
        with map_kafka_errors("cannot subscribe"):
            self._consumer.subscribe(self._topics, listener=_Listener(listener, self))

    async def _await_deferred(self) -> None:
        """Await the commits deferred by :meth:`commit` in a callback (on the I/O thread).

        A failure is logged, not raised: the snapshot (single mode) or the state record
        (group mode) holds the offsets, and a commit that failed only makes the next
        owner of the partition start from older committed offsets.
        """
        deferred, self._deferred = self._deferred, []
        for future in deferred:
            try:
                await future
            except Exception as err:  # kafka-python's future raises its failure
                log.warning(
                    "offset commit before a rebalance failed: %s: %s", type(err).__name__, err
                )

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        consumer, limit = self._consumer, max(1, max_records)
        deadline = time.monotonic() + timeout
        with map_kafka_errors("poll failed"):
            # While messages flow, polls of at most _POLL_SLICE_MS each: when
            # kafka-python finds no buffered record and no fetch in flight (as happens
            # for a moment right after a fetch completes), it sleeps retry_backoff_ms
            # (100 ms) before it looks again, which made the service's 99th-percentile
            # decision latency about 100 ms at 1,000 samples/s; a slice bounds the
            # sleep. Once a poll found nothing, one poll waits for the whole timeout
            # (slices cost about 1 ms of CPU each, 10% of a core on an idle stream).
            while True:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000))
                wait_ms = min(left_ms, _POLL_SLICE_MS) if self._flowing else left_ms
                batches = consumer.poll(timeout_ms=wait_ms, max_records=limit)
                if batches or wait_ms >= left_ms:
                    break
        self._flowing = bool(batches)
        return _envelopes(batches)

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> None:
        """Commit ``offsets`` of assigned partitions; ``wait`` for the coordinator's answer.

        Inside a rebalance callback a blocking commit is impossible (kafka-python 3 runs
        callbacks on its I/O thread and raises ``RuntimeError``): a commit asked to wait
        is then sent at once and awaited by the listener when the callback returns, still
        before the group rebalances.
        """
        assigned = self._consumer.assignment()
        todo = {
            _tp(tp): OffsetAndMetadata(offset, "", -1)
            for tp, offset in offsets.items()
            if _tp(tp) in assigned
        }
        if not todo:
            return
        with map_kafka_errors("offset commit failed"):
            if wait and self._in_callback:
                self._deferred.append(self._consumer.commit_async(todo))
            elif wait:
                self._consumer.commit(todo, timeout_ms=int(self.commit_timeout * 1000))
            else:
                self._consumer.commit_async(todo, callback=_log_commit_failure)

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        assigned = self._consumer.assignment()
        with map_kafka_errors("seek failed"):
            for tp, offset in offsets.items():
                if _tp(tp) in assigned:
                    self._consumer.seek(_tp(tp), offset)

    def seek_to_beginning(self, partitions: Iterable[TopicPartition]) -> None:
        parts = [_tp(tp) for tp in partitions]
        if parts:
            with map_kafka_errors("seek failed"):
                self._consumer.seek_to_beginning(*parts)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as of the last fetch (``None`` before one, or when
        the partition is not assigned to this consumer)."""
        try:
            end: int | None = self._consumer.highwater(_tp(tp))
        except kafka_errors.IllegalStateError:
            return None
        return end

    def assignment(self) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def topic_id(self, topic: str) -> str | None:
        # kafka-python keeps the ids from metadata responses on its cluster object;
        # there is no public accessor, so read it defensively.
        cluster = getattr(self._consumer, "_cluster", None)
        getter = getattr(cluster, "topic_id", None)
        found = getter(topic) if getter is not None else None
        return None if found is None else str(found)

    def ping(self, timeout: float) -> None:
        # A TCP connect, not a Kafka request: requests share the group coordinator's
        # connection, where a JoinGroup can hold them for seconds.
        connect_any(self.client.get("bootstrap_servers", "localhost:9092"), timeout)

    def close(self) -> None:
        with map_kafka_errors("consumer close failed"):
            self._consumer.close(autocommit=False)


def _envelopes(batches: Mapping[Any, Any]) -> list[Envelope]:
    """Envelopes of a kafka-python poll result, partition by partition."""
    return [
        _new_tuple(
            Envelope,
            (
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                tuple([(k, v or b"") for k, v in r.headers]) if r.headers else (),
                r.timestamp,
            ),
        )
        for records in batches.values()
        for r in records
    ]


class KafkaReader:
    """Reads every partition of some topics, with no consumer group (manual assignment).

    Scale-out (group) mode reads the queries and labels topics whole on every instance,
    and the partition state topic on each assignment; the positions are the caller's
    (kept in its own snapshot), nothing is committed.

    Parameters
    ----------
    client
        kafka-python settings shared with the producer (``bootstrap_servers``, security).
    options
        Further ``KafkaConsumer`` settings (fetch sizes, ``bootstrap_timeout_ms``...).
    """

    def __init__(self, client: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> None:
        self.client = dict(client)
        settings = {"auto_offset_reset": "earliest", **dict(options or {})}
        servers = self.client.get("bootstrap_servers", "localhost:9092")
        wait_for_broker(servers, settings.get("bootstrap_timeout_ms", 30_000) / 1000)
        with map_kafka_errors(f"cannot start a reader for {servers}"):
            self._consumer = KafkaConsumer(
                **self.client, group_id=None, enable_auto_commit=False, **settings
            )
        self._flowing = False

    def assign(self, topics: Sequence[str]) -> list[TopicPartition]:
        consumer = self._consumer
        with map_kafka_errors("cannot read the topics' partitions"):
            parts = [
                KafkaTopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if set(parts) != consumer.assignment():
                consumer.assign(parts)
        return [(tp.topic, tp.partition) for tp in parts]

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        assigned = self._consumer.assignment()
        with map_kafka_errors("seek failed"):
            for tp, offset in offsets.items():
                if _tp(tp) in assigned:
                    self._consumer.seek(_tp(tp), offset)

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        with map_kafka_errors("poll failed"):
            batches = self._consumer.poll(
                timeout_ms=int(timeout * 1000), max_records=max(1, max_records)
            )
        return _envelopes(batches)

    def position(self, tp: TopicPartition) -> int:
        with map_kafka_errors("cannot read a position"):
            return int(self._consumer.position(_tp(tp)))

    def partition_count(self, topic: str) -> int:
        with map_kafka_errors(f"cannot read the partitions of {topic}"):
            return len(self._consumer.partitions_for_topic(topic) or ())

    def end_offsets(self) -> dict[TopicPartition, int]:
        """End offsets as the broker lists them, and never below the last fetch's
        high watermark (tansu lists the last *batch*'s base offset + 1)."""
        consumer = self._consumer
        parts = list(consumer.assignment())
        if not parts:
            return {}
        with map_kafka_errors("cannot list the end offsets"):
            listed = consumer.end_offsets(parts)
        out = {}
        for tp in parts:
            high = consumer.highwater(tp)
            out[(tp.topic, tp.partition)] = max(int(listed.get(tp, 0)), int(high or 0))
        return out

    def close(self) -> None:
        with map_kafka_errors("reader close failed"):
            self._consumer.close(autocommit=False)


class KafkaSink:
    """A producer that remembers failed deliveries until the next :meth:`flush`.

    Parameters
    ----------
    client
        kafka-python settings shared with the consumer.
    options
        Further ``KafkaProducer`` settings.
    """

    def __init__(self, client: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> None:
        self.client = dict(client)
        self.options = dict(options or {})
        # linger 5 ms batches a poll's worth of predictions without adding visible delay;
        # 512 KiB batches take a checkpoint's queries in one request, where kafka-python's
        # 16 KiB would wake its I/O thread mid-burst (which then competes for the GIL).
        settings = {
            "acks": "all",
            "linger_ms": 5,
            "batch_size": 512 * 1024,
            **self.options,
            "enable_idempotence": False,
        }
        servers = self.client.get("bootstrap_servers", "localhost:9092")
        wait_for_broker(servers, settings.get("bootstrap_timeout_ms", 30_000) / 1000)
        with map_kafka_errors(
            f"cannot start a producer for {self.client.get('bootstrap_servers')}"
        ):
            self._producer = KafkaProducer(**self.client, **settings)
        self._failures: list[BaseException] = []
        self._sole_partition: dict[str, int | None] = {}

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[Header] = ()
    ) -> None:
        # (try/except, not map_kafka_errors: a generator context costs a microsecond a send)
        try:
            future = self._producer.send(
                topic, value=value, key=key, headers=list(headers), partition=self._sole(topic)
            )
        except (kafka_errors.KafkaError, OSError) as err:
            raise TransportError(f"cannot send to {topic}: {type(err).__name__}: {err}") from err
        future.add_errback(self._failures.append)  # runs on the client's I/O thread

    def _sole(self, topic: str) -> int | None:
        """0 for a topic of one partition, else ``None`` (the key picks the partition).

        Naming the partition spares kafka-python's partitioner (a fifth of a send) where
        its answer is known. A topic that gains partitions later keeps getting partition
        0 from this producer, which every consumer of the topic still reads.
        """
        sole = self._sole_partition.get(topic, -1)
        if sole == -1:
            partitions = self._producer.partitions_for(topic)
            sole = self._sole_partition[topic] = 0 if partitions == {0} else None
        return sole

    def flush(self, timeout: float) -> bool:
        try:
            self._producer.flush(timeout=timeout)
            done = True
        except kafka_errors.KafkaTimeoutError:
            done = False
        if self._failures:
            failures, self._failures = self._failures, []
            raise TransportError(
                f"{len(failures)} message(s) could not be delivered "
                f"(first: {type(failures[0]).__name__}: {failures[0]})"
            )
        return done

    def close(self, timeout: float) -> None:
        with map_kafka_errors("producer close failed"):
            self._producer.close(timeout=timeout)
