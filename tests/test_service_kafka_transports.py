"""The Kafka source and sink against a real broker (tansu)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streamal.exceptions import TransportError
from streamal.transports.base import Envelope, TopicPartition
from streamal.transports.kafka import KafkaSink, KafkaSource, crc32c_accelerated

pytestmark = pytest.mark.kafka


class Listener:
    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []
        self.revoked: list[list[TopicPartition]] = []

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.revoked.append(partitions)


def _poll_until(source: KafkaSource, count: int, timeout: float = 20.0) -> list[Envelope]:
    got: list[Envelope] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += source.poll(100, 0.2)
    return got


def test_round_trip_commit_seek_and_topic_ids(kafka_broker: Any, kafka_topics: Any) -> None:
    assert crc32c_accelerated()
    (topic,) = kafka_topics("t", partitions=2)
    client = {"bootstrap_servers": kafka_broker.bootstrap}
    sink = KafkaSink(client, {"linger_ms": 0})
    for i in range(6):
        sink.send(topic, b"v%d" % i, key=b"k%d" % i, headers=[("h", b"x%d" % i)])
    assert sink.flush(10.0) is True
    group = kafka_broker.unique("g")
    source = KafkaSource(client, group, kafka_broker.consumer_settings)
    listener = Listener()
    source.subscribe([topic], listener)
    got = _poll_until(source, 6)
    assert sorted(e.value for e in got) == [b"v%d" % i for i in range(6)]  # type: ignore[type-var]
    first = next(e for e in got if e.value == b"v3")
    assert first.key == b"k3" and first.header("h") == b"x3" and first.topic == topic
    assert sorted(listener.assigned) == [(topic, 0), (topic, 1)]
    assert source.assignment() == {(topic, 0), (topic, 1)}
    assert source.topic_id(topic) and source.topic_id("no-such-topic") is None
    ends = {(topic, p): 1 + max(e.offset for e in got if e.partition == p) for p in (0, 1)}
    source.commit(ends)
    source.seek_to_beginning([(topic, 0), (topic, 1)])
    assert len(_poll_until(source, 6)) == 6
    source.seek({tp: off - 1 for tp, off in ends.items()})
    assert len(_poll_until(source, 2)) == 2
    source.ping(1.0)
    source.close()
    sink.close(5.0)
    again = KafkaSource(client, group, kafka_broker.consumer_settings)
    again.subscribe([topic], Listener())
    assert _poll_until(again, 1, timeout=8.0) == []  # resumes after the committed offsets
    again.close()


def test_errors_become_transport_errors(kafka_broker: Any, kafka_topics: Any) -> None:
    (topic,) = kafka_topics("t")
    sink = KafkaSink({"bootstrap_servers": kafka_broker.bootstrap}, {"max_request_size": 1000})
    with pytest.raises(TransportError, match=f"cannot send to {topic}: MessageSizeTooLarge"):
        sink.send(topic, b"x" * 5000)
    sink.close(5.0)
    source = KafkaSource({"bootstrap_servers": kafka_broker.bootstrap}, "g")
    source.client["bootstrap_servers"] = "127.0.0.1:9"  # the probe follows this address
    with pytest.raises(TransportError, match="cannot connect to 127.0.0.1:9"):
        source.ping(0.5)
    source.close()
    with pytest.raises(TransportError, match="cannot connect to 127.0.0.1:9"):
        KafkaSource({"bootstrap_servers": "127.0.0.1:9"}, "g", {"bootstrap_timeout_ms": 500})
    with pytest.raises(TransportError, match="cannot connect to 127.0.0.1:9"):
        KafkaSink({"bootstrap_servers": "127.0.0.1:9"}, {"bootstrap_timeout_ms": 500})


class _StubConsumer:
    """Records the timeouts it is polled with; returns records from ``script``."""

    def __init__(self, script: list[dict[Any, Any]]) -> None:
        self.script = script
        self.timeouts: list[int] = []

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.timeouts.append(timeout_ms)
        if self.script:
            return self.script.pop(0)
        time.sleep(timeout_ms / 1000)
        return {}


def test_poll_slices_its_wait_while_messages_flow_and_waits_whole_when_idle() -> None:
    import streamal.transports.kafka as kafka_transport

    record = type(
        "Record",
        (),
        {
            "topic": "t",
            "partition": 0,
            "offset": 3,
            "key": None,
            "value": b"{}",
            "headers": [],
            "timestamp": 1,
        },
    )()
    source = KafkaSource.__new__(KafkaSource)
    source._flowing = False
    stub = _StubConsumer([{}, {("t", 0): [record]}])
    source._consumer = stub  # type: ignore[assignment]
    assert source.poll(10, 0.2) == []  # idle: one poll for the whole timeout
    assert len(stub.timeouts) == 1 and stub.timeouts[0] > 150
    assert [e.offset for e in source.poll(10, 0.2)] == [3]  # messages: now flowing
    stub.timeouts.clear()
    assert source.poll(10, 0.06) == []  # flowing: slices, so a client stall stays short
    assert max(stub.timeouts) <= kafka_transport._POLL_SLICE_MS
    assert len(stub.timeouts) >= 3
    stub.timeouts.clear()
    source.poll(10, 0.06)  # nothing came: back to one whole wait
    assert len(stub.timeouts) == 1
