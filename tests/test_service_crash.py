"""Crash safety on in-memory transports: crash at random points, restart, check the promise.

Every incarnation of the service gets a fresh learner and fresh transports on the same
broker and checkpoint folder; a crash is an exception that escapes at a random point
(while handling a message, before or after a snapshot is written, while publishing the
outbox, while committing). A simulated oracle answers the queries it sees on the
queries topic between incarnations. At the end the promise must hold exactly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.messages import Label, Sample, encode
from streamal.offline.replay import build_learner
from streamal.service import LoopPolicy, Service, Topics
from streamal.transports import MemoryBroker, MemorySink, MemorySource

TOPICS = Topics()
RATE = 0.15
N_SAMPLES = 600


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


class Fuse:
    def __init__(self, at: int) -> None:
        self.left = at

    def tick(self) -> None:
        self.left -= 1
        if self.left == 0:
            raise Crash


class CrashSink(MemorySink):
    def __init__(self, broker: MemoryBroker, fuse: Fuse | None) -> None:
        super().__init__(broker)
        self.fuse = fuse

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = ()) -> None:
        if self.fuse is not None and topic == TOPICS.queries:
            self.fuse.tick()
        super().send(topic, value, key, headers)


class CrashCheckpointer(Checkpointer):
    def __init__(self, folder: Path, fuse: Fuse | None, after: bool) -> None:
        super().__init__(folder)
        self.fuse, self.after = fuse, after

    def save(self, snapshot: Snapshot) -> Path:
        if self.fuse is not None and not self.after:
            self.fuse.tick()
        path = super().save(snapshot)
        if self.fuse is not None and self.after:
            self.fuse.tick()
        return path


class CrashSource(MemorySource):
    """Also the clock: an empty poll takes its whole timeout."""

    def __init__(self, broker: MemoryBroker, fuse: Fuse | None, seed: int) -> None:
        super().__init__(broker, group="g", interleave_seed=seed)
        self.fuse = fuse
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def poll(self, max_records: int, timeout: float) -> list[Any]:
        batch = super().poll(max_records, timeout)
        if not batch:
            self.now += timeout
        return batch

    def commit(self, offsets: Any, wait: bool = True) -> None:
        if self.fuse is not None:
            self.fuse.tick()
        super().commit(offsets, wait)


def incarnation(broker: MemoryBroker, folder: Path, kind: str | None, at: int) -> Service:
    fuse = Fuse(at) if kind is not None else None
    pick = {k: (fuse if kind == k else None) for k in ("send", "save", "saved", "commit")}
    # Each incarnation interleaves samples and labels differently, as Kafka may.
    source = CrashSource(broker, pick["commit"], seed=at + len(broker.records(TOPICS.labels)))
    service = Service(
        build_learner("logreg", "margin", "variable_threshold", RATE, seed=3),
        source,
        CrashSink(broker, pick["send"]),
        CrashCheckpointer(folder, pick["save"] or pick["saved"], after=kind == "saved"),
        TOPICS,
        LoopPolicy(commit_every=40, commit_interval=1e9, max_batch=25),
        clock=source,
    )
    if kind == "handle" and fuse is not None:
        real = service.handler.handle

        def handle(env: Any) -> None:
            fuse.tick()
            real(env)

        service.handler.handle = handle  # type: ignore[method-assign]
    return service


class Oracle:
    """Answers every query id it has not answered yet; sometimes twice, sometimes never."""

    def __init__(self, broker: MemoryBroker, rng: random.Random) -> None:
        self.broker, self.rng = broker, rng
        self.seen = 0
        self.answered: set[str] = set()
        self.ignored: set[str] = set()
        self.duplicates = 0
        self.unknown = 0

    def answer(self) -> None:
        records = self.broker.records(TOPICS.queries)
        for env in records[self.seen :]:
            sid = json.loads(env.value)["sample_id"]  # type: ignore[arg-type]
            if sid in self.answered or sid in self.ignored:
                continue
            if self.rng.random() < 0.1:
                self.ignored.add(sid)
                continue
            y = int(sid[1:]) % 10 > 4
            self.broker.produce(TOPICS.labels, encode(Label(sample_id=sid, y=y)))
            self.answered.add(sid)
            if self.rng.random() < 0.1:
                self.broker.produce(TOPICS.labels, encode(Label(sample_id=sid, y=y)))
                self.duplicates += 1
        self.seen = len(records)
        if self.rng.random() < 0.2:
            self.broker.produce(TOPICS.labels, encode(Label(sample_id="ghost", y=True)))
            self.unknown += 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_promise_holds_after_repeated_crashes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    broker = MemoryBroker()
    oracle = Oracle(broker, rng)
    produced = 0
    crashes = 0
    kinds = ["handle", "send", "save", "saved", "commit"]
    incarnations = 0
    while (crashes < 8 or produced < N_SAMPLES) and incarnations < 1000:
        for _ in range(min(rng.randint(20, 120), N_SAMPLES - produced)):
            x = {"a": float(produced % 10), "b": rng.random()}
            broker.produce(TOPICS.samples, encode(Sample(id=f"s{produced}", x=x)))
            produced += 1
        kind = rng.choice(kinds)
        # How many events of that kind an incarnation sees: messages, queries, checkpoints.
        events = {"handle": 150, "send": 20}.get(kind, 4)
        service = incarnation(broker, tmp_path, kind, rng.randint(1, events))
        incarnations += 1
        try:
            service.run(count=rng.randint(10, 200), timeout=5.0)
        except Crash:
            crashes += 1
        oracle.answer()
    # A last, clean incarnation drains everything (labels answered on the way too).
    for _ in range(3):
        incarnation(broker, tmp_path, None, 0).run(timeout=5.0)
        oracle.answer()
    incarnation(broker, tmp_path, None, 0).run(timeout=5.0)
    total = len(broker.records(TOPICS.samples)) + len(broker.records(TOPICS.labels))

    snap = Checkpointer(tmp_path).load()
    assert snap is not None and crashes >= 8
    learner, stats = snap.learner, snap.learner.stats
    # Every sample decided exactly once (the durable state saw each one once).
    assert stats.seen == N_SAMPLES
    assert sum(snap.offsets.values()) == total
    # Every query on the topic belongs to a durable decision; the budget is kept.
    asked = {json.loads(v)["sample_id"] for v in broker.values(TOPICS.queries)}  # type: ignore[arg-type]
    assert len(asked) == stats.queried == learner.budget.spent
    assert stats.queried <= RATE * stats.seen + 1e-9
    pending = {e.sample_id for e in learner.pending}
    assert pending == asked - oracle.answered
    # Every received label learned exactly once; duplicates and ghosts recognised.
    assert stats.applied == len(oracle.answered) == learner.model_version
    assert stats.duplicate == oracle.duplicates
    assert stats.unknown == oracle.unknown
