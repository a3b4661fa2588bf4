"""What the service needs from a message broker: envelopes, sources and sinks.

Wire messages (:mod:`streamal.messages`) know nothing about the broker; an
:class:`Envelope` carries the raw bytes together with where they came from. A
:class:`Source` delivers envelopes from a consumer group's partitions and tells a
:class:`RebalanceListener` when partitions come and go; a :class:`Sink` sends bytes.
Broker failures surface as :class:`~streamal.exceptions.TransportError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

__all__ = [
    "Envelope",
    "Header",
    "Reader",
    "RebalanceListener",
    "Sink",
    "Source",
    "TopicPartition",
]

#: A topic name and a partition number.
TopicPartition = tuple[str, int]
#: A message header: a name and its raw value.
Header = tuple[str, bytes]


class Envelope(NamedTuple):
    """One consumed message: its bytes and where it came from.

    A named tuple: the service makes one per consumed message, and a tuple is made in
    a seventh of the time of a frozen dataclass.

    Examples
    --------
    >>> env = Envelope("samples", 0, 7, b"k", b"{}", (("reason", b"x"),))
    >>> env.next_offset, env.header("reason"), env.header("missing")
    (8, b'x', None)
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp_ms: int | None = None

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message is processed."""
        return self.offset + 1

    @property
    def tp(self) -> TopicPartition:
        """``(topic, partition)``."""
        return (self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``, if any."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RebalanceListener(Protocol):
    """Told by a :class:`Source` when the group gives or takes partitions.

    Both hooks run inside :meth:`Source.poll`, on the caller's thread, before the poll
    returns records of the new assignment.
    """

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Partitions are being taken away: commit what was processed now."""
        ...

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Partitions were given; the listener may :meth:`Source.seek` them."""
        ...


class Source(Protocol):
    """Consumes messages of a consumer group, with manual offset control."""

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        """Join the group for ``topics``; ``listener`` hears about (re)assignments."""
        ...

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        """Up to ``max_records`` messages, waiting at most ``timeout`` seconds for some."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> None:
        """Record ``offsets`` (next offset to consume) as the group's position.

        With ``wait=False`` the commit may complete after the call returns (a failure is
        logged, not raised): for periodic checkpoints, whose snapshot holds the offsets
        anyway. Commits before a partition leaves (revoke, stop) wait.
        """
        ...

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Continue assigned partitions from the given offsets."""
        ...

    def seek_to_beginning(self, partitions: Iterable[TopicPartition]) -> None:
        """Continue assigned partitions from their first message."""
        ...

    def assignment(self) -> set[TopicPartition]:
        """The partitions currently assigned."""
        ...

    def topic_id(self, topic: str) -> str | None:
        """The broker's id of ``topic`` (changes when the topic is re-created), if known."""
        ...

    def ping(self, timeout: float) -> None:
        """Raise :class:`~streamal.exceptions.TransportError` if the broker cannot be reached."""
        ...

    def close(self) -> None:
        """Leave the group and release resources (commits nothing)."""
        ...


class Reader(Protocol):
    """Reads whole topics outside any consumer group, at positions the caller keeps.

    Scale-out (group) mode reads every partition of the queries and labels topics on
    every instance (learning is replicated), and the state topic on each assignment.
    """

    def assign(self, topics: Sequence[str]) -> list[TopicPartition]:
        """Read every partition of ``topics`` that exists; return them all.

        Partitions already assigned keep their positions; new ones start at their
        beginning. Call again to pick up topics created (or grown) since.
        """
        ...

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Continue assigned partitions from the given offsets."""
        ...

    def poll(self, max_records: int, timeout: float) -> list[Envelope]:
        """Up to ``max_records`` messages, waiting at most ``timeout`` seconds for some."""
        ...

    def position(self, tp: TopicPartition) -> int:
        """The next offset this reader will return for ``tp``."""
        ...

    def end_offsets(self) -> dict[TopicPartition, int]:
        """The end (next offset to be written) of every assigned partition, now."""
        ...

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 if it does not exist); assigns nothing."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


class Sink(Protocol):
    """Sends messages; delivery is confirmed by :meth:`flush`."""

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
    ) -> None:
        """Queue one message; raise ``TransportError`` if it cannot even be queued."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait for queued messages; ``False`` if some are still in flight at ``timeout``.

        Raises ``TransportError`` if a message was dropped (it will never be delivered).
        """
        ...

    def close(self, timeout: float) -> None:
        """Release resources, waiting at most ``timeout`` seconds for queued messages."""
        ...
