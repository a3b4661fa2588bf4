"""In-memory transports: a tiny broker with partitions, group offsets and outages.

They behave like the Kafka transports where the service can tell the difference
(partitions, committed offsets, seek, rebalance callbacks, topic re-creation, a broker
that goes down), so the service loop is tested without a broker. Messages are delivered
in the order they were produced across all topics, which lets a test interleave samples
and labels exactly.

Examples
--------
>>> broker = MemoryBroker()
>>> broker.produce("samples", b'{"id": "1", "x": {}}').offset
0
>>> source = MemorySource(broker, group="g")
>>> source.subscribe(["samples"], listener=None)
>>> [e.offset for e in source.poll(10, 0.0)]
[0]
>>> source.commit({("samples", 0): 1}); broker.committed["g"]
{('samples', 0): 1}
"""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from streamal.exceptions import TransportError
from streamal.transports.base import Envelope, Header, RebalanceListener, TopicPartition

__all__ = ["MemoryBroker", "MemoryReader", "MemorySink", "MemorySource"]


@dataclass
class _Topic:
    id: str
    partitions: list[list[tuple[int, Envelope]]] = field(default_factory=list)


class MemoryBroker:
    """Topics with partitions, committed group offsets, and switches to simulate failures.

    Attributes
    ----------
    down
        While ``True`` the broker is unreachable: polls return nothing, commits and pings
        raise, sends stay queued in the sink.
    drop_sends
        While ``True`` every send is dropped: the next flush raises ``TransportError``.
    """

    def __init__(self) -> None:
        self.topics: dict[str, _Topic] = {}
        self.committed: dict[str, dict[TopicPartition, int]] = {}
        #: Members of each group that share its partitions (``MemorySource(share=True)``).
        self.members: dict[str, list[MemorySource]] = {}
        self.down = False
        self.drop_sends = False
        self._seq = itertools.count()
        self._ids = itertools.count(1)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create ``name`` (again: a re-created topic is empty and gets a new id)."""
        self.topics[name] = _Topic(f"{name}#{next(self._ids)}", [[] for _ in range(partitions)])
        for offsets in self.committed.values():
            for tp in [tp for tp in offsets if tp[0] == name]:
                del offsets[tp]

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
    ) -> Envelope:
        """Append one message (auto-creating the topic with one partition)."""
        if topic not in self.topics:
            self.create_topic(topic)
        parts = self.topics[topic].partitions
        if partition is None:
            partition = zlib.crc32(key) % len(parts) if key is not None else 0
        log = parts[partition]
        env = Envelope(topic, partition, len(log), key, value, tuple(headers))
        log.append((next(self._seq), env))
        return env

    def records(self, topic: str) -> list[Envelope]:
        """All messages of ``topic`` in the order they were produced."""
        if topic not in self.topics:
            return []
        entries = [e for part in self.topics[topic].partitions for e in part]
        return [env for _, env in sorted(entries, key=lambda e: e[0])]

    def values(self, topic: str) -> list[bytes | None]:
        """The values of :meth:`records`."""
        return [env.value for env in self.records(topic)]

    def _check(self) -> None:
        if self.down:
            raise TransportError("memory broker is down")


def _earliest_when_out_of_range(
    topics: Mapping[str, _Topic], positions: dict[TopicPartition, int]
) -> None:
    """Restart from offset 0 every position beyond its partition's end (as kafka-python's
    ``auto_offset_reset="earliest"`` does on an out-of-range fetch)."""
    for (topic, p), pos in positions.items():
        if pos > len(topics[topic].partitions[p]):
            positions[(topic, p)] = 0


class MemorySource:
    """A consumer of a :class:`MemoryBroker` that owns every partition of its topics.

    By default a poll returns messages in the order they were produced. With
    ``interleave_seed`` set, each poll takes whole runs of messages partition by
    partition in a seeded random order, as a Kafka fetch may: the order within a
    partition is kept, the order across partitions and topics is not.

    With ``share=True`` the sources of one group on one broker share its partitions
    as a consumer group does: member ``i`` of ``n`` (in joining order) gets the
    partitions ``p`` with ``p % n == i``; a member joining (subscribe) or leaving
    (close) makes every member's next poll revoke and re-assign.

    A position beyond a partition's end (a topic re-created while the source held an
    offset into the old one) restarts from the beginning, as kafka-python does with
    ``auto_offset_reset="earliest"`` on an out-of-range fetch.
    """

    def __init__(
        self,
        broker: MemoryBroker,
        group: str = "streamal",
        interleave_seed: int | None = None,
        share: bool = False,
    ) -> None:
        self.broker = broker
        self.group = group
        self.share = share
        self.interleave_seed = interleave_seed
        self._rng = None if interleave_seed is None else random.Random(interleave_seed)
        self._topics: list[str] = []
        self._listener: RebalanceListener | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._assign_due = False
        self._rejoin_due = False
        self.closed = False

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None) -> None:
        self._topics = list(topics)
        self._listener = listener
        self._assign_due = True
        if self.share:
            members = self.broker.members.setdefault(self.group, [])
            if self not in members:
                members.append(self)
            self._rebalance_group()

    def _rebalance_group(self) -> None:
        for member in self.broker.members.get(self.group, []):
            if member is not self:
                member._rejoin_due = True  # revoked and re-assigned inside its next poll

    def rebalance(self) -> None:
        """Make the next poll revoke every partition and assign them again."""
        if self._positions and self._listener is not None:
            self._listener.on_revoked(sorted(self._positions))
        self._positions.clear()
        self._assign_due = True

    def _assign(self) -> None:
        broker = self.broker
        committed = broker.committed.get(self.group, {})
        members = broker.members.get(self.group, []) if self.share else [self]
        index, count = members.index(self), len(members)
        for topic in self._topics:
            if topic not in broker.topics:
                broker.create_topic(topic)
            for p in range(len(broker.topics[topic].partitions)):
                if p % count == index:
                    self._positions[(topic, p)] = committed.get((topic, p), 0)
        self._assign_due = False
        if self._listener is not None:
            self._listener.on_assigned(sorted(self._positions))

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        if self.broker.down:
            return []
        if self._rejoin_due:
            self._rejoin_due = False
            self.rebalance()
        if self._assign_due:
            self._assign()
        topics, positions = self.broker.topics, self._positions
        _earliest_when_out_of_range(topics, positions)
        runs = [
            topics[topic].partitions[p][pos : pos + max_records]
            for (topic, p), pos in positions.items()
        ]
        if self._rng is None:
            heads = sorted((e for run in runs for e in run), key=lambda e: e[0])
        else:
            rng = self._rng
            rng.shuffle(runs)
            heads = [e for run in runs if run for e in run[: rng.randint(1, max_records)]]
        out = [env for _, env in heads[:max_records]]
        for env in out:
            self._positions[env.tp] = env.offset + 1
        return out

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> None:
        self.broker._check()
        self.broker.committed.setdefault(self.group, {}).update(offsets)

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._positions:
                self._positions[tp] = offset

    def seek_to_beginning(self, partitions: Iterable[TopicPartition]) -> None:
        self.seek({tp: 0 for tp in partitions})

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def topic_id(self, topic: str) -> str | None:
        found = self.broker.topics.get(topic)
        return None if found is None else found.id

    def ping(self, timeout: float) -> None:
        self.broker._check()

    def close(self) -> None:
        self.closed = True
        self._positions.clear()
        members = self.broker.members.get(self.group, [])
        if self in members:
            members.remove(self)
            self._rebalance_group()


class MemoryReader:
    """Reads every partition of some topics of a :class:`MemoryBroker`, with no group.

    Examples
    --------
    >>> broker = MemoryBroker(); broker.create_topic("q", partitions=2)
    >>> _ = broker.produce("q", b"a", partition=1)
    >>> reader = MemoryReader(broker)
    >>> reader.assign(["q", "missing"]), [e.value for e in reader.poll(10, 0.0)]
    ([('q', 0), ('q', 1)], [b'a'])
    >>> reader.end_offsets(), reader.position(("q", 1))
    ({('q', 0): 0, ('q', 1): 1}, 1)
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._positions: dict[TopicPartition, int] = {}
        self.closed = False

    def assign(self, topics: Sequence[str]) -> list[TopicPartition]:
        parts = [
            (topic, p)
            for topic in topics
            if topic in self.broker.topics
            for p in range(len(self.broker.topics[topic].partitions))
        ]
        self._positions = {tp: self._positions.get(tp, 0) for tp in parts}
        return parts

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._positions:
                self._positions[tp] = offset

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        if self.broker.down:
            return []
        topics, positions = self.broker.topics, self._positions
        _earliest_when_out_of_range(topics, positions)
        heads = sorted(
            (
                e
                for (topic, p), pos in self._positions.items()
                for e in topics[topic].partitions[p][pos : pos + max_records]
            ),
            key=lambda e: e[0],
        )
        out = [env for _, env in heads[:max_records]]
        for env in out:
            self._positions[env.tp] = env.offset + 1
        return out

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def partition_count(self, topic: str) -> int:
        found = self.broker.topics.get(topic)
        return 0 if found is None else len(found.partitions)

    def end_offsets(self) -> dict[TopicPartition, int]:
        self.broker._check()
        topics = self.broker.topics
        return {(t, p): len(topics[t].partitions[p]) for t, p in self._positions}

    def close(self) -> None:
        self.closed = True


class MemorySink:
    """A producer for a :class:`MemoryBroker`; holds messages while the broker is down."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self._queued: list[tuple[str, bytes, bytes | None, tuple[Header, ...]]] = []
        self._dropped = 0
        self.closed = False

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[Header] = ()
    ) -> None:
        if self.broker.drop_sends:
            self._dropped += 1
            return
        self._queued.append((topic, value, key, tuple(headers)))
        if not self.broker.down:
            self._deliver()

    def _deliver(self) -> None:
        for topic, value, key, headers in self._queued:
            self.broker.produce(topic, value, key, headers)
        self._queued.clear()

    def flush(self, timeout: float) -> bool:
        if self._dropped:
            lost, self._dropped = self._dropped, 0
            raise TransportError(f"{lost} message(s) could not be delivered")
        if self.broker.down:
            return not self._queued
        self._deliver()
        return True

    def close(self, timeout: float) -> None:
        self.closed = True
