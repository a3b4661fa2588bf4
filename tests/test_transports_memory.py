"""The in-memory transports behave like the Kafka ones where the service can tell."""

from __future__ import annotations

import pytest

from streamal.exceptions import TransportError
from streamal.transports import Envelope, MemoryBroker, MemorySink, MemorySource
from streamal.transports.base import TopicPartition


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, list[TopicPartition]]] = []

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("revoked", partitions))

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.events.append(("assigned", partitions))


def test_delivers_in_produce_order_across_topics_and_bounds_batches() -> None:
    broker = MemoryBroker()
    broker.create_topic("s", partitions=2)
    for i in range(6):
        broker.produce("s" if i % 2 else "l", str(i).encode(), key=str(i).encode())
    source = MemorySource(broker)
    source.subscribe(["s", "l"], Recorder())
    first = source.poll(4, 0.0)
    rest = source.poll(100, 0.0)
    assert [e.value for e in first + rest] == [str(i).encode() for i in range(6)]
    assert len(first) == 4 and source.poll(10, 0.0) == []
    assert {e.partition for e in first + rest if e.topic == "s"} <= {0, 1}


def test_group_offsets_seek_and_rebalance_callbacks() -> None:
    broker = MemoryBroker()
    for i in range(5):
        broker.produce("s", b"%d" % i)
    listener = Recorder()
    source = MemorySource(broker, group="g")
    source.subscribe(["s"], listener)
    assert [e.offset for e in source.poll(2, 0.0)] == [0, 1]
    assert listener.events == [("assigned", [("s", 0)])]
    source.commit({("s", 0): 2})
    source.rebalance()
    assert [e.offset for e in source.poll(1, 0.0)] == [2]  # from the committed offset
    assert listener.events[1:] == [("revoked", [("s", 0)]), ("assigned", [("s", 0)])]
    source.seek({("s", 0): 4, ("other", 0): 9})  # unassigned partitions are ignored
    assert [e.offset for e in source.poll(10, 0.0)] == [4]
    source.seek_to_beginning([("s", 0)])
    assert len(source.poll(10, 0.0)) == 5
    assert source.assignment() == {("s", 0)}


def test_recreated_topic_gets_a_new_id_and_loses_data_and_offsets() -> None:
    broker = MemoryBroker()
    broker.produce("s", b"x")
    source = MemorySource(broker, group="g")
    before = source.topic_id("s")
    source.commit({("s", 0): 1})
    broker.create_topic("s")
    assert source.topic_id("s") != before and broker.records("s") == []
    assert broker.committed["g"] == {}
    assert source.topic_id("missing") is None


def test_outage_polls_nothing_commit_and_ping_raise_sends_wait() -> None:
    broker = MemoryBroker()
    source, sink = MemorySource(broker), MemorySink(broker)
    source.subscribe(["s"], Recorder())
    broker.down = True
    sink.send("s", b"late", key=b"k")
    assert source.poll(10, 0.0) == []
    with pytest.raises(TransportError):
        source.commit({("s", 0): 0})
    with pytest.raises(TransportError):
        source.ping(1.0)
    assert sink.flush(1.0) is False and broker.records("s") == []
    broker.down = False
    assert sink.flush(1.0) is True
    assert [e.value for e in source.poll(10, 0.0)] == [b"late"]


def test_dropped_sends_fail_the_next_flush() -> None:
    broker = MemoryBroker()
    sink = MemorySink(broker)
    broker.drop_sends = True
    sink.send("q", b"lost")
    with pytest.raises(TransportError, match="1 message"):
        sink.flush(1.0)
    assert sink.flush(1.0) is True  # the failure is reported once


def test_envelope_helpers() -> None:
    env = Envelope("t", 3, 9, None, b"v", (("a", b"1"), ("a", b"2")))
    assert env.tp == ("t", 3) and env.next_offset == 10 and env.header("a") == b"1"
