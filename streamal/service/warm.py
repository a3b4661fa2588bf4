"""Warm start of the live service: labelled data learned once, before the first decision.

``streamal serve`` can seed its model from a labelled file (``learner.warm_start``: JSONL
samples with their ``y``, or CSV with the target in the last column) and from a Kafka
topic of labelled samples (``learner.warm_start_topic``), read once from its beginning
to the end it has at start-up. Each warm start is recorded by name in the learner
(:attr:`~streamal.core.learner.ActiveLearner.warm_starts`: ``file:PATH``, ``topic:NAME``),
and the learner travels in every snapshot, so that a service restarted from a snapshot
does not learn the same data twice; a restart before the first snapshot starts a fresh
model and learns it once again, once.

Examples
--------
>>> import json, tempfile
>>> from streamal.offline.replay import build_learner
>>> path = tempfile.mktemp(suffix=".jsonl")
>>> with open(path, "w") as fh:
...     for i in range(30):
...         print(json.dumps({"id": f"w{i}", "x": {"a": i % 2}, "y": i % 2 == 0}), file=fh)
>>> learner = build_learner("logreg", "entropy", "variable_threshold", 0.1, seed=1)
>>> warm_start_file(learner, path, first=20), warm_start_file(learner, path)
(20, 0)
>>> learner.stats.warm_start, learner.budget.spent
(20, 0)
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from streamal.core.protocol import Learner
from streamal.exceptions import ConfigError, DecodeError, TransportError
from streamal.messages import Sample, decode_sample

__all__ = ["read_topic_once", "warm_start_file", "warm_start_hook", "warm_start_topic"]

log = logging.getLogger("streamal.service.warm")


def _labelled(samples: Iterator[Sample], where: str) -> Iterator[Sample]:
    for sample in samples:
        if sample.y is None:
            raise ConfigError(f"warm-start sample {sample.id!r} in {where} has no label y")
        yield sample


def warm_start_file(
    learner: Learner, path: str, *, first: int | None = None, charge: bool = False
) -> int:
    """Learn the labelled samples of ``path`` (the first ``first``) unless done before.

    Returns how many labels were learned (0 if the learner already did this warm start).
    """
    from streamal.offline.streams import open_source  # the offline reader of JSONL/CSV files

    name = f"file:{path}"
    if name in learner.warm_starts:
        return 0
    rows = itertools.islice(_labelled(iter(open_source(path)), path), first)
    return int(learner.warm_start(rows, charge=charge, name=name))


def read_topic_once(
    client: Mapping[str, Any], topic: str, timeout: float = 60.0
) -> Iterator[Sample]:
    """The samples on ``topic`` from its beginning up to its end at the time of the call.

    No consumer group and no commit: the topic is read the same way on every start.
    Messages that are not valid samples raise :class:`~streamal.exceptions.DecodeError`
    naming the partition and offset. Raises :class:`~streamal.exceptions.TransportError`
    if the end is not reached within ``timeout`` seconds.
    """
    from kafka import KafkaConsumer, TopicPartition

    from streamal.transports.kafka import map_kafka_errors

    with map_kafka_errors(f"cannot read the warm-start topic {topic!r}"):
        consumer = KafkaConsumer(**client, enable_auto_commit=False)
    try:
        with map_kafka_errors(f"cannot read the warm-start topic {topic!r}"):
            parts = sorted(consumer.partitions_for_topic(topic) or ())
            if not parts:
                raise TransportError(f"the warm-start topic {topic!r} does not exist")
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = {tp: end for tp, end in consumer.end_offsets(tps).items() if end > 0}
            deadline = time.monotonic() + timeout
            while ends:
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"the warm-start topic {topic!r} was not read to its end in {timeout:g} s"
                    )
                batch = consumer.poll(timeout_ms=200)
                for tp, records in sorted(batch.items(), key=lambda kv: kv[0].partition):
                    end = ends.get(tp)
                    for record in records:
                        if end is None or record.offset >= end:
                            break
                        try:
                            yield decode_sample(record.value)
                        except DecodeError as err:
                            raise DecodeError(
                                f"warm-start topic {topic!r} partition {tp.partition} "
                                f"offset {record.offset}: {err}"
                            ) from None
                    if end is not None and consumer.position(tp) >= end:
                        del ends[tp]
    finally:
        consumer.close()


def warm_start_topic(
    learner: Learner,
    client: Mapping[str, Any],
    topic: str,
    *,
    first: int | None = None,
    charge: bool = False,
    timeout: float = 60.0,
) -> int:
    """Learn the labelled samples on ``topic`` (the first ``first``) unless done before."""
    name = f"topic:{topic}"
    if name in learner.warm_starts:
        return 0
    rows = itertools.islice(_labelled(read_topic_once(client, topic, timeout), topic), first)
    return int(learner.warm_start(rows, charge=charge, name=name))


def warm_start_hook(
    path: str | None,
    topic: str | None,
    client: Mapping[str, Any],
    first: int | None = None,
    charge: bool = False,
    timeout: float = 60.0,
) -> Callable[[Learner], int] | None:
    """What :class:`~streamal.service.loop.Service` runs on its learner after the restore.

    ``None`` when there is nothing to learn. The hook returns the number of labels
    learned (0 after a restart from a snapshot that holds the warm start).
    """
    if path is None and topic is None:
        return None

    def hook(learner: Learner) -> int:
        learned = 0
        if path is not None:
            n = warm_start_file(learner, path, first=first, charge=charge)
            _report(learner, f"file:{path}", n, charge)
            learned += n
        if topic is not None:
            n = warm_start_topic(
                learner, client, topic, first=first, charge=charge, timeout=timeout
            )
            _report(learner, f"topic:{topic}", n, charge)
            learned += n
        return learned

    return hook


def _report(learner: Learner, name: str, n: int, charge: bool) -> None:
    if n:
        log.info(
            "warm start from %s: %d labels learned (%s the budget)",
            name,
            n,
            "charged to" if charge else "not charged to",
        )
    else:
        done = learner.warm_starts.get(name, 0)
        log.info("warm start from %s: already done (%d labels, in the snapshot)", name, done)
