"""The open queries a labelling page shows (:class:`QueryBoard`).

The board learns of a query when the service *publishes* it (:class:`BoardSink` wraps
the service's sink), that is once the decision behind it is in a snapshot: a page never
offers a query that a crash could undo. A query leaves the board when a label for it is
accepted over HTTP, or when the learner no longer waits for it (answered through the
labels topic, expired, or evicted), asked through ``is_open``.

Examples
--------
>>> from streamal.messages import Query, encode
>>> board = QueryBoard(max_size=2)
>>> for i in range(3):
...     _ = board.published(encode(Query(sample_id=str(i), x={"a": i}, score=0.5,
...                                  strategy="Entropy", model_version=0)))
>>> [q["sample_id"] for q in board.open()]
['1', '2']
>>> board.answered(["1"]); [q["sample_id"] for q in board.open()], len(board)
(['2'], 1)
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from streamal.transports.base import Header, Sink

__all__ = ["BoardSink", "QueryBoard"]


class QueryBoard:
    """A bounded, thread-safe list of the newest open queries, oldest first.

    Parameters
    ----------
    max_size
        Queries kept (the oldest leave first): a page shows the newest this many.
    is_open
        Whether the learner still waits for a label for this sample id; ``None``: only
        labels accepted over HTTP close a query.
    """

    def __init__(self, max_size: int = 1000, is_open: Callable[[str], bool] | None = None) -> None:
        self.max_size = max_size
        self.is_open = is_open
        self._queries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def published(self, value: bytes) -> str | None:
        """A query was published (its wire bytes); its sample id, if it is a query."""
        try:
            query = json.loads(value)
        except ValueError:
            return None
        if not isinstance(query, dict) or not isinstance(query.get("sample_id"), str):
            return None
        with self._lock:
            queries = self._queries
            queries[query["sample_id"]] = query
            queries.move_to_end(query["sample_id"])
            while len(queries) > self.max_size:
                queries.popitem(last=False)
        return str(query["sample_id"])

    def answered(self, sample_ids: Iterable[str]) -> None:
        """Labels for these samples were accepted: take them off the board."""
        with self._lock:
            for sample_id in sample_ids:
                self._queries.pop(sample_id, None)

    def open(self, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` open queries, oldest first (closed ones are dropped)."""
        with self._lock:
            candidates = list(self._queries.values())
        is_open = self.is_open
        out: list[dict[str, Any]] = []
        closed: list[str] = []
        for query in candidates:
            if is_open is not None and not _safe(is_open, query["sample_id"]):
                closed.append(query["sample_id"])
                continue
            if len(out) < limit:
                out.append(query)
        if closed:
            self.answered(closed)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._queries)


def _safe(is_open: Callable[[str], bool], sample_id: str) -> bool:
    try:
        return is_open(sample_id)
    except Exception:  # a store another thread is changing: show it, check next time
        return True


class BoardSink:
    """A sink that tells a :class:`QueryBoard` about every query it sends.

    Parameters
    ----------
    sink
        The sink that sends.
    topic
        The queries topic.
    board
        The board to tell.
    """

    def __init__(self, sink: Sink, topic: str, board: QueryBoard) -> None:
        self.sink = sink
        self.topic = topic
        self.board = board

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[Header] = ()
    ) -> None:
        self.sink.send(topic, value, key, headers)
        if topic == self.topic:
            self.board.published(value)

    def flush(self, timeout: float) -> bool:
        return self.sink.flush(timeout)

    def close(self, timeout: float) -> None:
        self.sink.close(timeout)
