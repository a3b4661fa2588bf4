"""Hostile messages through a real broker into ``streamal serve`` (issue 14, item 10).

2,400 messages of the fuzz generator's kinds (``tests/_hostile.py``: deep JSON, huge
numbers, absurd clocks, third classes, repeated ids, garbage, oversized...) are
produced to a tansu broker; one ``streamal serve`` subprocess must consume them all
without exiting, account for each (decided, a label outcome, or a dead letter with a
known reason), and stop gracefully with its budget and pending bounds intact.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import _hostile as hostile
import pytest
from _helpers import wait_until

from streamal.core.checkpoint import Checkpointer
from streamal.service.outputs import REASONS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Polls every 0.2 s.
_wait = partial(wait_until, interval=0.2)

ROLES = ("samples", "labels", "queries", "dead_letters", "predictions")
COUNT = 2_400
RATE = 0.2


def _sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_hostile_stream_through_serve(
    kafka_broker: Any, kafka_topics: Any, serve_process: Any, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    topics = dict(zip(ROLES, kafka_topics(*ROLES, partitions=1), strict=True))
    producer = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap,
        max_request_size=4 << 20,
        **kafka_broker.producer_settings,
    )
    kinds: Counter[str] = Counter()
    sent = Counter[str]()
    for kind, role, value in hostile.hostile_stream(COUNT, seed=5, oversized_every=800):
        kinds[kind] += 1
        sent[role] += 1
        producer.send(topics[role], value, key=kind.encode())  # a tombstone needs a key
    producer.flush(30)
    producer.close(5)
    assert len(kinds) >= 30

    state = tmp_path / "state"
    env = kafka_broker.env(
        KAFKA__GROUP_ID=topics["samples"] + "-svc",
        LEARNER__MODEL="logreg",
        LEARNER__RATE=str(RATE),
        LEARNER__TTL="500",
        LEARNER__MAX_PENDING="300",
        LEARNER__CLASSES="[true, false]",
        LIMITS__MAX_FEATURES="64",
        LIMITS__MAX_META_BYTES="4096",
        CHECKPOINT__KEY="integration-key",
        CHECKPOINT__INTERVAL="0.5",
        SERVICE__HTTP_HOST="127.0.0.1",
        **{f"TOPICS__{role.upper()}": topics[role] for role in ROLES},
    )
    serve = serve_process(env, state, startup=60)

    def consumed() -> bool:
        assert serve.proc.poll() is None, f"serve exited:\n{serve.log.read_text()[-3000:]}"
        return _sum(serve.get("/metrics")[1], "streamal_messages_consumed_total") >= COUNT

    _wait(consumed, 240, "every message consumed")
    text = serve.get("/metrics")[1]
    assert _sum(text, "streamal_messages_consumed_total") == COUNT
    dead = _sum(text, "streamal_dead_letters_total")
    reasons = dict(
        (m[0], float(m[1]))
        for m in re.findall(r'^streamal_dead_letters_total{reason="([^"]+)"} (\S+)$', text, re.M)
    )
    assert set(reasons) <= set(REASONS)
    assert serve.stop(60) == 0, serve.log.read_text()[-3000:]
    assert "Traceback" not in serve.log.read_text()

    letters = kafka_broker.read(topics["dead_letters"], count=int(dead), timeout=30)
    assert len(letters) == dead
    assert Counter(dict(r.headers)["streamal.reason"].decode() for r in letters) == reasons

    snap = Checkpointer(state, key=b"integration-key").load()
    assert snap is not None
    learner = snap.learner
    stats = learner.stats
    # Every sample is decided once or dead-lettered; every label is applied, a duplicate
    # or dead-lettered (unknown and expired labels included).
    sources = Counter(dict(r.headers)["streamal.source"].decode().split("/")[0] for r in letters)
    assert stats.seen + sources[topics["samples"]] == sent["samples"]
    assert stats.applied + stats.duplicate + sources[topics["labels"]] == sent["labels"]
    assert learner.budget.spent <= learner.budget.promised(learner.budget.seen)  # the promise
    assert len(learner.pending) <= 300
    assert reasons.get("too_deep", 0) > 0 and reasons.get("unknown_class", 0) > 0
    print(f"serve: {COUNT} messages, {len(kinds)} kinds, {dict(reasons)}", file=sys.stderr)


def test_serve_before_its_samples_topic_exists(
    kafka_broker: Any, kafka_topics: Any, serve_process: Any, tmp_path: Path
) -> None:
    # Found 7: started before its samples topic existed, serve decided nothing for more
    # than 90 s while /readyz said ok.
    from streamal.messages import Sample, encode

    others = dict(zip(ROLES[1:], kafka_topics(*ROLES[1:], partitions=1), strict=True))
    samples = f"late-{others['labels']}"
    topics = {"samples": samples, **others}
    env = kafka_broker.env(
        KAFKA__GROUP_ID=samples + "-svc",
        LEARNER__MODEL="logreg",
        SERVICE__HTTP_HOST="127.0.0.1",
        **{f"TOPICS__{role.upper()}": topics[role] for role in ROLES},
    )
    serve = serve_process(env, tmp_path / "s", startup=60)
    try:
        _wait(
            lambda: "no partition of" in serve.get("/readyz")[1], 30, "not ready: nothing assigned"
        )
        assert serve.get("/readyz")[0] == 503
        kafka_broker.create_topics(samples, partitions=1)
        sent = [encode(Sample(id=f"s{i}", x={"a": float(i)})) for i in range(5)]
        kafka_broker.send(samples, sent)
        started = time.monotonic()

        def decided() -> bool:
            return _sum(serve.get("/metrics")[1], "streamal_samples_total") >= len(sent)

        _wait(decided, 90, "the samples of the late topic to be decided")
        waited = time.monotonic() - started
        assert serve.get("/readyz") == (200, "ok\n")
        assert serve.stop(60) == 0
        print(f"late samples topic: decided {waited:.1f} s after it was created", file=sys.stderr)
    finally:
        kafka_broker.delete_topics(samples)
