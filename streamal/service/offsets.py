"""Where the service stands in each partition, and what to do when partitions arrive.

The next offset to consume per partition is kept with the id the broker gave the
topic. When the group assigns partitions, :meth:`Offsets.assign` seeks them to the
kept offsets, which therefore win over the group's committed offsets. A topic whose
id changed was deleted and re-created (or the broker lost its data, as an in-memory
broker does on restart): its kept offsets point into a log that no longer exists, so
its partitions start again from the beginning (Kafka itself would only notice when an
offset is past the end; a new log that has grown beyond the old offset would be
skipped silently).

Examples
--------
>>> from streamal.transports import MemoryBroker, MemorySource
>>> broker = MemoryBroker(); broker.create_topic("s")
>>> source = MemorySource(broker); source.subscribe(["s"], None)
>>> _ = source.poll(1, 0.0)  # joins: partition ("s", 0) assigned
>>> offsets = Offsets({("s", 0): 5}, {"s": source.topic_id("s")})
>>> offsets.assign(source, [("s", 0)]), source._positions
([], {('s', 0): 5})
>>> broker.create_topic("s")  # re-created: new id
>>> offsets.assign(source, [("s", 0)]), offsets.positions
([('s', 0)], {})
"""

from __future__ import annotations

import logging

from streamal.transports.base import Source, TopicPartition

__all__ = ["Offsets"]

log = logging.getLogger("streamal.service")


class Offsets:
    """Next offset per partition and the broker's topic ids.

    Parameters
    ----------
    positions
        Next offset to consume, per ``(topic, partition)``.
    topic_ids
        The broker's id of each topic when the positions were taken.
    """

    def __init__(
        self,
        positions: dict[TopicPartition, int] | None = None,
        topic_ids: dict[str, str] | None = None,
    ) -> None:
        self.positions = {} if positions is None else dict(positions)
        self.topic_ids = {} if topic_ids is None else dict(topic_ids)

    def assign(self, source: Source, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Seek newly assigned ``partitions``; return those restarted from the beginning."""
        recreated = set()
        for topic in sorted({t for t, _ in partitions}):
            current, known = source.topic_id(topic), self.topic_ids.get(topic)
            if current is not None and known is not None and current != known:
                recreated.add(topic)
                log.warning(
                    "topic %s was re-created (id %s, was %s): reading it from the beginning",
                    topic,
                    current,
                    known,
                )
                for tp in [tp for tp in self.positions if tp[0] == topic]:
                    del self.positions[tp]
            if current is not None:
                self.topic_ids[topic] = current
        reset = [tp for tp in partitions if tp[0] in recreated]
        source.seek({tp: self.positions[tp] for tp in partitions if tp in self.positions})
        source.seek_to_beginning(reset)
        return reset

    def adopt(self, source: Source, topic: str) -> None:
        """Take the positions of ``topic`` as being in its current log (the client restarted
        a partition of a re-created topic by itself): keep the id the metadata shows now
        if it is new, else forget the old one, so that the next :meth:`assign` adopts
        whichever id the broker reports instead of restarting the topic again."""
        known, current = self.topic_ids.pop(topic, None), source.topic_id(topic)
        if current is not None and current != known:
            self.topic_ids[topic] = current
