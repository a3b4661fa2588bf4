"""Feeds a :class:`~streamal.labelling.board.QueryBoard` from the topics themselves.

For a labelling page that runs apart from the service (``streamal label --web``): a
thread reads the queries and labels topics from their beginning, puts each query on
the board and takes off every query a label answered (in either order).

Examples
--------
>>> from streamal.labelling.board import QueryBoard
>>> from streamal.messages import Label, Query, encode
>>> from streamal.transports import MemoryBroker, MemorySource
>>> broker, board = MemoryBroker(), QueryBoard()
>>> for i in range(3):
...     _ = broker.produce("q", encode(Query(sample_id=str(i), x={}, score=1.0,
...                                          strategy="Entropy", model_version=0)))
>>> _ = broker.produce("l", encode(Label(sample_id="1", y=True)))
>>> feed = TopicFeed(MemorySource(broker), "q", "l", board)
>>> feed.step()
4
>>> [q["sample_id"] for q in board.open()]
['0', '2']
"""

from __future__ import annotations

import threading
from collections import deque

from streamal.exceptions import DecodeError
from streamal.labelling.board import QueryBoard
from streamal.messages import decode_label
from streamal.transports.base import Source, TopicPartition

__all__ = ["TopicFeed"]

#: Answered ids remembered to drop a query read after its label (oldest forgotten).
REMEMBER_ANSWERED = 100_000


class _FromStart:
    def __init__(self, source: Source) -> None:
        self.source = source

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        pass

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.source.seek_to_beginning(partitions)


class TopicFeed(threading.Thread):
    """A daemon thread that keeps ``board`` in step with the two topics.

    Parameters
    ----------
    source
        A source of its own (a consumer group nobody else uses: it reads from the start).
    queries_topic, labels_topic
        The topics to read.
    board
        The board to feed.
    """

    def __init__(
        self, source: Source, queries_topic: str, labels_topic: str, board: QueryBoard
    ) -> None:
        super().__init__(name="streamal-label-feed", daemon=True)
        self.source = source
        self.queries_topic = queries_topic
        self.labels_topic = labels_topic
        self.board = board
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._answered: set[str] = set()
        self._order: deque[str] = deque()
        self._subscribed = False

    def step(self, timeout: float = 0.5) -> int:
        """Read one batch; return how many messages it held."""
        if not self._subscribed:
            self.source.subscribe([self.queries_topic, self.labels_topic], _FromStart(self.source))
            self._subscribed = True
        batch = self.source.poll(500, timeout)
        for env in batch:
            if env.topic == self.labels_topic:
                try:
                    self._answer(decode_label(env.value or b"").sample_id)
                except DecodeError:
                    continue
            elif env.value is not None:
                sample_id = self.board.published(env.value)
                if sample_id in self._answered:
                    self.board.answered([sample_id])
        return len(batch)

    def _answer(self, sample_id: str) -> None:
        if sample_id not in self._answered:
            self._answered.add(sample_id)
            self._order.append(sample_id)
            if len(self._order) > REMEMBER_ANSWERED:
                self._answered.discard(self._order.popleft())
        self.board.answered([sample_id])

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self.step()
        except BaseException as err:  # reported by the command
            self.error = err

    def stop(self) -> None:
        """Ask the thread to end after the current poll."""
        self._stop_event.set()
