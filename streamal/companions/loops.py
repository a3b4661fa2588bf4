"""Companions of the live service: feed it samples, record topics, answer its queries.

Each function takes a transport :class:`~streamal.transports.base.Source` or
:class:`~streamal.transports.base.Sink` (Kafka in production, the in-memory doubles in
tests) and returns counts; the ``streamal produce/record/oracle/annotate`` commands wire
them to Kafka.

- :func:`produce` paces samples into the samples topic (``rate`` messages per second).
- :func:`record` dumps a topic to JSON lines, one message per line.
- :func:`answer_queries` is the annotator loop: it reads queries, hands each to an
  :class:`Answerer` (see :mod:`streamal.companions.annotators`), publishes the labels it makes
  ready, and commits a query's offset only once its label has been sent and flushed. A
  restarted annotator therefore answers again rather than forgets; the service ignores
  the duplicate label.

Examples
--------
>>> from streamal.companions.annotators import OracleAnswerer
>>> from streamal.messages import Query, Sample, decode_label
>>> from streamal.offline.oracle import SimulatedOracle
>>> from streamal.transports import MemoryBroker, MemorySink, MemorySource
>>> broker = MemoryBroker()
>>> produce([Sample(id="1", x={"a": 1.0}, y=True)], MemorySink(broker), "samples")
1
>>> broker.values("samples")
[b'{"schema_version":1,"id":"1","x":{"a":1.0},"meta":{}}']
>>> q = Query(sample_id="1", x={"a": 1.0}, score=0.9, strategy="entropy", model_version=3)
>>> _ = broker.produce("queries", encode(q))
>>> answerer = OracleAnswerer({"1": True}, SimulatedOracle("0s"))
>>> stats = answer_queries(MemorySource(broker), MemorySink(broker), "queries", "labels",
...                        answerer, count=1)
>>> stats.labels, [decode_label(v).y for v in broker.values("labels")]
(1, [True])
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from streamal.exceptions import DecodeError
from streamal.messages import Label, Query, Sample, decode_query, encode
from streamal.transports.base import Envelope, Sink, Source, TopicPartition

__all__ = [
    "AnnotatorStats",
    "Answerer",
    "FromStart",
    "answer_queries",
    "poll_until",
    "produce",
    "record",
]

#: Flush the producer every this many samples, so an interrupted run loses little and the
#: client's buffer stays bounded.
FLUSH_EVERY = 1000
#: Longest wait for a flush before it is called failed, in seconds.
FLUSH_TIMEOUT = 30.0
#: Messages fetched per poll by the consuming companions.
POLL_BATCH = 500
#: Longest wait of one poll, in seconds: also the precision of the oracle's delays and
#: how quickly a stop request is noticed.
POLL_TIMEOUT = 0.1


def produce(
    samples: Iterable[Sample],
    sink: Sink,
    topic: str,
    *,
    rate: float | None = None,
    keep_y: bool = False,
    limit: int | None = None,
    on_sent: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send ``samples`` to ``topic`` keyed by sample id, ``rate`` per second (``None``: no pause).

    The true label ``y`` is removed unless ``keep_y`` (a live stream does not know it).
    Stops after ``limit`` samples or when ``should_stop()``. Returns how many samples
    were sent; all of them are flushed.
    """
    start = clock()
    sent = 0
    for sample in samples:
        if (limit is not None and sent >= limit) or should_stop():
            break
        if rate:
            wait = start + sent / rate - clock()
            if wait > 0:
                sleep(wait)
        if not keep_y and sample.y is not None:
            sample = sample.model_copy(update={"y": None})
        sink.send(topic, encode(sample), key=sample.id.encode())
        sent += 1
        if sent % FLUSH_EVERY == 0:
            sink.flush(FLUSH_TIMEOUT)
        if on_sent is not None:
            on_sent(sent)
    sink.flush(FLUSH_TIMEOUT)
    return sent


class FromStart:
    """Rebalance listener that replays assigned partitions from their first message.

    With ``from_beginning=False`` it leaves positions to the group's committed offsets.
    """

    def __init__(self, source: Source, from_beginning: bool) -> None:
        self.source = source
        self.from_beginning = from_beginning

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        pass

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        if self.from_beginning:
            self.source.seek_to_beginning(partitions)


def poll_until(
    source: Source,
    *,
    count: int | None,
    idle: float | None,
    timeout: float | None,
    should_stop: Callable[[], bool],
) -> Iterator[list[Envelope]]:
    """Poll batches until ``count`` messages, ``idle`` quiet seconds, ``timeout`` or a stop.

    The idle clock starts once the source has partitions: joining a group takes seconds.
    """
    start = last = time.monotonic()
    seen = 0
    while not should_stop():
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            return
        if not seen and not source.assignment():
            last = now
        elif idle is not None and now - last >= idle:
            return
        want = POLL_BATCH if count is None else min(POLL_BATCH, count - seen)
        batch = source.poll(want, POLL_TIMEOUT)
        if batch:
            last = time.monotonic()
            seen += len(batch)
        yield batch
        if count is not None and seen >= count:
            return


def record(
    source: Source,
    topic: str,
    out: IO[str],
    *,
    count: int | None = None,
    idle: float | None = 3.0,
    timeout: float | None = None,
    from_beginning: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
    headers: bool | None = None,
) -> tuple[int, int]:
    """Write the JSON values of ``topic`` to ``out``, one compact object per line.

    Stops after ``count`` messages, ``idle`` seconds without one, ``timeout`` seconds,
    or when ``should_stop()``. Values that are not JSON objects are skipped. Returns
    ``(written, skipped)``. Offsets are not committed: recording never moves a group.

    A message with its headers is written as ``{"headers": {name: value}, "value": V}``,
    where ``V`` is the value's JSON, or its text when it is not JSON (``null`` when
    empty): always when ``headers`` is true, never when false, and by default
    (``None``) for dead letters only (messages with a ``streamal.reason`` header), whose
    reason, error and origin are in their headers and whose value is often not JSON.
    """
    source.subscribe([topic], FromStart(source, from_beginning))
    written = skipped = 0
    batches = poll_until(source, count=count, idle=idle, timeout=timeout, should_stop=should_stop)
    for batch in batches:
        for env in batch:
            try:
                value = json.loads(env.value or b"")
            except ValueError:
                value = None
            wrap = headers if headers is not None else env.header("streamal.reason") is not None
            if wrap:
                value = _with_headers(env, value)
            elif not isinstance(value, dict):
                skipped += 1
                continue
            out.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n")
            written += 1
    out.flush()
    return written, skipped


def _with_headers(env: Envelope, parsed: Any) -> dict[str, Any]:
    """A recorded message with its headers (see :func:`record`)."""
    raw = env.value
    if raw is None or not raw:
        value: Any = None
    elif parsed is not None or raw.strip() == b"null":
        value = parsed
    else:
        value = raw.decode("utf-8", errors="replace")
    names = {name: data.decode("utf-8", errors="replace") for name, data in env.headers}
    return {"headers": names, "value": value}


class Answerer(Protocol):
    """Who answers queries: ``ask`` takes one, ``due`` returns the labels ready now."""

    def ask(self, query: Query) -> bool:
        """Take a query; ``False`` if it will never be answered (unknown sample, skipped)."""
        ...

    def due(self) -> list[Label]:
        """Labels ready to publish now."""
        ...

    def waiting(self) -> int:
        """How many answers are not yet due."""
        ...


@dataclass
class AnnotatorStats:
    """What an annotator loop did."""

    queries: int = 0
    labels: int = 0
    unanswered: int = 0
    undecodable: int = 0
    by_class: dict[str, int] = field(default_factory=dict)


class _Outstanding:
    """Offsets of queries not yet answered, so that only fully handled ones are committed."""

    def __init__(self) -> None:
        self.high: dict[TopicPartition, int] = {}
        self.open: dict[TopicPartition, dict[int, str]] = {}
        self.where: dict[str, list[tuple[TopicPartition, int]]] = {}

    def seen(self, env: Envelope, sample_id: str | None) -> None:
        self.high[env.tp] = max(self.high.get(env.tp, 0), env.next_offset)
        if sample_id is not None:
            self.open.setdefault(env.tp, {})[env.offset] = sample_id
            self.where.setdefault(sample_id, []).append((env.tp, env.offset))

    def answered(self, sample_id: str) -> None:
        places = self.where.get(sample_id)
        if places:
            tp, offset = places.pop(0)
            self.open[tp].pop(offset, None)
            if not places:
                del self.where[sample_id]

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition: the first unanswered query's offset, else past the last one seen."""
        out = {}
        for tp, high in self.high.items():
            still_open = self.open.get(tp)
            out[tp] = min(still_open) if still_open else high
        return out


def answer_queries(
    source: Source,
    sink: Sink,
    queries_topic: str,
    labels_topic: str,
    answerer: Answerer,
    *,
    count: int | None = None,
    idle: float | None = None,
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_label: Callable[[Label], None] | None = None,
    commit_every: float = 1.0,
    drain: float = 60.0,
) -> AnnotatorStats:
    """Answer queries from ``queries_topic`` with labels on ``labels_topic``.

    Stops after ``count`` queries, ``idle`` quiet seconds or ``timeout``, then waits for
    the answers still delayed (at most ``drain`` seconds); ``should_stop()`` stops at once.
    Answers not sent by then are dropped, and their queries stay uncommitted, so a
    restarted annotator answers them. Offsets are committed every ``commit_every``
    seconds and at the end, each only past queries whose label was sent and flushed.
    """
    stats = AnnotatorStats()
    track = _Outstanding()
    source.subscribe([queries_topic], FromStart(source, from_beginning=False))
    last_commit = time.monotonic()

    def publish() -> None:
        for label in answerer.due():
            sink.send(labels_topic, encode(label), key=label.sample_id.encode())
            track.answered(label.sample_id)
            stats.labels += 1
            stats.by_class[str(label.y)] = stats.by_class.get(str(label.y), 0) + 1
            if on_label is not None:
                on_label(label)

    def commit() -> None:
        if sink.flush(FLUSH_TIMEOUT):
            offsets = track.committable()
            if offsets:
                source.commit(offsets)

    batches = poll_until(source, count=count, idle=idle, timeout=timeout, should_stop=should_stop)
    for batch in batches:
        for env in batch:
            stats.queries += 1
            try:
                query = decode_query(env.value or b"")
            except DecodeError:
                stats.undecodable += 1
                track.seen(env, None)
                continue
            asked = answerer.ask(query)
            if not asked and should_stop():
                break  # stopped while answering: leave this query to the next annotator
            track.seen(env, query.sample_id if asked else None)
            stats.unanswered += not asked
            publish()
        publish()  # answers whose delay ran out while no query came
        if time.monotonic() - last_commit >= commit_every:
            commit()
            last_commit = time.monotonic()
    deadline = time.monotonic() + drain
    while answerer.waiting() and not should_stop() and time.monotonic() < deadline:
        time.sleep(POLL_TIMEOUT)
        publish()
    publish()
    commit()
    return stats
