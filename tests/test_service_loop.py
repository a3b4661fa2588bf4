"""The service loop on in-memory transports: data path, commit order, failures, restarts."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.exceptions import CheckpointError, TransportError
from streamal.messages import Label, Sample, encode
from streamal.offline.replay import build_learner
from streamal.service import LoopPolicy, Metrics, Service, Topics
from streamal.transports import MemoryBroker, MemorySink, MemorySource

TOPICS = Topics(predictions="streamal.predictions")
POLICY = LoopPolicy(commit_every=50, commit_interval=1e9, health_interval=1.0, broker_timeout=10.0)


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TickingSource(MemorySource):
    """A memory source whose empty polls take ``timeout`` seconds of the fake clock."""

    def __init__(self, broker: MemoryBroker, clock: Clock, group: str = "streamal") -> None:
        super().__init__(broker, group)
        self.clock = clock

    def poll(self, max_records: int, timeout: float) -> list[Any]:
        batch = super().poll(max_records, timeout)
        if not batch:
            self.clock.t += timeout
        return batch


def sample(i: int, ts: float | None = None) -> bytes:
    return encode(Sample(id=f"s{i}", x={"a": float(i % 10), "b": float(i % 3)}, ts=ts))


def label(sample_id: str, y: Any = True) -> bytes:
    return encode(Label(sample_id=sample_id, y=y))


def make(
    broker: MemoryBroker,
    folder: Path,
    *,
    budget: str = "variable_threshold",
    rate: float = 0.2,
    ttl: float | None = None,
    policy: LoopPolicy = POLICY,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    **parts: Any,
) -> Service:
    clock = clock or Clock()
    learner = build_learner("logreg", "entropy", budget, rate, seed=7, ttl=ttl)
    return Service(
        learner,
        parts.get("source") or TickingSource(broker, clock),
        parts.get("sink") or MemorySink(broker),
        parts.get("checkpointer") or Checkpointer(folder),
        TOPICS,
        policy,
        Metrics(registry or CollectorRegistry()),
        parts.get("config_hash", "h1"),
        clock,
    )


def query_ids(broker: MemoryBroker) -> list[str]:
    return [json.loads(v)["sample_id"] for v in broker.values(TOPICS.queries)]  # type: ignore[arg-type]


# -- the data path ---------------------------------------------------------------------
def test_samples_queries_predictions_and_labels(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(100):
        broker.produce(TOPICS.samples, sample(i))
    registry = CollectorRegistry()
    service = make(broker, tmp_path, registry=registry)
    assert service.run(count=100) == 100
    asked = query_ids(broker)
    assert 0 < len(asked) <= 20 and len(set(asked)) == len(asked)
    preds = [json.loads(v) for v in broker.values(TOPICS.predictions)]  # type: ignore[arg-type]
    assert [p["sample_id"] for p in preds] == [f"s{i}" for i in range(100)]
    assert {p["sample_id"] for p in preds if p["queried"]} == set(asked)
    query = json.loads(broker.values(TOPICS.queries)[0])  # type: ignore[arg-type]
    assert query["strategy"] == "entropy" and "proba" in query and query["model_version"] == 0
    for sid in asked:
        broker.produce(TOPICS.labels, label(sid, y=True))
    broker.produce(TOPICS.labels, label(asked[0]))  # a duplicate
    service.run(count=len(asked) + 1)
    learner = service.learner
    assert learner.stats.applied == len(asked) == learner.model_version
    assert learner.stats.duplicate == 1 and len(learner.pending) == 0
    get = registry.get_sample_value
    assert get("streamal_samples_total") == 100
    assert get("streamal_labels_total", {"outcome": "applied"}) == len(asked)
    assert get("streamal_labels_total", {"outcome": "duplicate"}) == 1
    assert get("streamal_queries_total", {"strategy": "entropy", "purpose": "learn"}) == len(asked)
    assert get("streamal_pending_queries") == 0
    assert get("streamal_budget_target_ratio") == 0.2
    assert get("streamal_learner_events", {"event": "seen"}) == 100
    assert broker.values(TOPICS.dead_letters) == []


POISON = {
    "invalid_json": b'{"id": "p1", "x": ',
    "non_finite": b'{"id": "p2", "x": {"a": NaN}}',
    "invalid_schema": b'{"id": "p3", "x": {"a": [1, 2]}}',
    "oversized": b'{"id": "p4", "x": {"a": "' + b"z" * 1_100_000 + b'"}}',
    "empty": None,
}


def test_poison_messages_go_to_dead_letters_and_processing_goes_on(tmp_path: Path) -> None:
    broker = MemoryBroker()
    kinds = list(POISON)
    for i in range(30):
        broker.produce(TOPICS.samples, sample(i), key=b"k%d" % i)
        if i % 6 == 0:
            kind = kinds[i // 6]
            broker.produce(TOPICS.samples, POISON[kind], key=kind.encode())
    broker.produce(TOPICS.labels, b"not json")
    broker.produce(TOPICS.labels, label("never-asked"))
    registry = CollectorRegistry()
    service = make(broker, tmp_path, registry=registry)
    service.run(count=37)
    assert service.learner.stats.seen == 30
    records = broker.records(TOPICS.dead_letters)
    by_topic = {
        topic: {
            e.header("streamal.reason").decode(): e
            for e in records
            if e.header("streamal.source").startswith(topic.encode())
        }  # type: ignore[union-attr]
        for topic in (TOPICS.samples, TOPICS.labels)
    }
    letters = by_topic[TOPICS.samples]
    assert set(letters) == set(kinds)
    assert set(by_topic[TOPICS.labels]) == {"invalid_json", "label_unknown"}
    for kind in kinds:
        env = letters[kind]
        assert env.key == kind.encode()
        assert env.header("streamal.error")
        assert env.header("streamal.source").startswith(TOPICS.samples.encode())  # type: ignore[union-attr]
        if kind == "oversized":
            assert len(env.value) == POLICY.dead_letter_max_bytes  # type: ignore[arg-type]
            assert env.header("streamal.truncated_from") == str(len(POISON[kind])).encode()  # type: ignore[arg-type]
        elif kind != "empty":
            assert env.value == POISON[kind]
    get = registry.get_sample_value
    assert get("streamal_decode_failures_total", {"kind": "sample"}) == 5
    assert get("streamal_decode_failures_total", {"kind": "label"}) == 1
    assert get("streamal_dead_letters_total", {"reason": "label_unknown"}) == 1


def test_expired_labels_are_counted_and_dead_lettered(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(10):
        broker.produce(TOPICS.samples, sample(i, ts=float(i)))
    service = make(broker, tmp_path, budget="full", rate=1.0, ttl=2.0)
    service.run(count=10)
    broker.produce(TOPICS.labels, label("s0"))  # asked at t=0, expired at t=2
    broker.produce(TOPICS.labels, label("s9"))  # still open
    service.run(count=2)
    stats = service.learner.stats
    assert stats.applied == 1 and stats.expired >= 1
    reasons = [e.header("streamal.reason") for e in broker.records(TOPICS.dead_letters)]
    assert reasons == [b"label_expired"]


# -- the commit order --------------------------------------------------------------------
class Spy:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.waits: list[bool] = []


class SpySink(MemorySink):
    def __init__(self, broker: MemoryBroker, spy: Spy) -> None:
        super().__init__(broker)
        self.spy = spy

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = ()) -> None:
        self.spy.events.append(f"send:{topic}")
        super().send(topic, value, key, headers)

    def flush(self, timeout: float) -> bool:
        self.spy.events.append("flush")
        return super().flush(timeout)


class SpyCheckpointer(Checkpointer):
    def __init__(self, folder: Path, spy: Spy) -> None:
        super().__init__(folder)
        self.spy = spy

    def save(self, snapshot: Snapshot) -> Path:
        self.spy.events.append(f"save:{len(snapshot.outbox)}")
        return super().save(snapshot)


class SpySource(TickingSource):
    def __init__(self, broker: MemoryBroker, spy: Spy) -> None:
        super().__init__(broker, Clock())
        self.spy = spy

    def commit(self, offsets: Any, wait: bool = True) -> None:
        self.spy.events.append("commit")
        self.spy.waits.append(wait)
        super().commit(offsets, wait)


def test_commit_order_flush_save_publish_commit(tmp_path: Path) -> None:
    broker, spy = MemoryBroker(), Spy()
    for i in range(3):
        broker.produce(TOPICS.samples, sample(i))
    service = make(
        broker,
        tmp_path,
        budget="full",
        rate=1.0,
        sink=SpySink(broker, spy),
        source=SpySource(broker, spy),
        checkpointer=SpyCheckpointer(tmp_path, spy),
    )
    service.run(count=3)
    q, p = f"send:{TOPICS.queries}", f"send:{TOPICS.predictions}"
    assert spy.events == [p, p, p, "flush", "save:3", q, q, q, "commit"]
    snap = Checkpointer(tmp_path).load()
    assert snap is not None and snap.offsets == {(TOPICS.samples, 0): 3}
    assert [json.loads(v)["sample_id"] for _, _, v in snap.outbox] == ["s0", "s1", "s2"]
    assert broker.committed["streamal"] == {(TOPICS.samples, 0): 3}


def test_checkpoint_every_n_messages_or_t_seconds(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(120):
        broker.produce(TOPICS.samples, sample(i))
    clock = Clock()
    policy = LoopPolicy(commit_every=50, commit_interval=30.0, max_batch=10)
    service = make(broker, tmp_path, policy=policy, clock=clock)
    service.run(count=100)  # 2 by count (50, 100), then the final one has nothing new
    assert [p.name[-8:-5] for p in service.checkpointer.paths()] == ["001", "002"]
    service.run(count=5)  # graceful end of run: a third
    assert len(service.checkpointer.paths()) == 3
    clock.t += 31.0  # the interval elapses while the next batch is processed
    service.run(count=5)
    assert Checkpointer(tmp_path).load().offsets == {(TOPICS.samples, 0): 110}  # type: ignore[union-attr]


def test_revoke_checkpoints_and_assignment_seeks_to_snapshot_offsets(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(20):
        broker.produce(TOPICS.samples, sample(i))
    source = TickingSource(broker, Clock())
    service = make(broker, tmp_path, source=source)
    service.run(count=10)
    saves = len(service.checkpointer.paths())
    broker.committed["streamal"] = {(TOPICS.samples, 0): 0}  # group offsets lag behind
    for i in range(3):
        service.handler.handle(source.poll(1, 0.0)[0])  # processed, not yet checkpointed
        service.offsets.positions[(TOPICS.samples, 0)] = 11 + i
    service._since_commit = 3
    source.rebalance()
    assert len(service.checkpointer.paths()) == saves + 1  # revoke checkpointed
    service.run(count=7)  # assignment seeks to 13, not to the group's 0
    assert service.learner.stats.seen == 20


def test_recreated_topic_is_read_from_the_beginning(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(10):
        broker.produce(TOPICS.samples, sample(i))
    registry = CollectorRegistry()
    make(broker, tmp_path, registry=registry).run(count=10)
    broker.create_topic(TOPICS.samples)  # the broker lost the topic
    for i in range(10, 14):
        broker.produce(TOPICS.samples, sample(i))
    registry = CollectorRegistry()
    service = make(broker, tmp_path, registry=registry)
    assert service.run(count=4) == 4
    assert service.learner.stats.seen == 14
    assert registry.get_sample_value("streamal_offset_resets_total", {"kind": "sample"}) == 1


class NoTopicIds(TickingSource):
    """A consumer whose metadata has no topic ids until ``shown`` is set."""

    shown = False

    def topic_id(self, topic: str) -> str | None:
        return super().topic_id(topic) if self.shown else None


def test_recreated_topic_the_metadata_did_not_show_is_counted_when_it_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The snapshot's offset (10) is beyond the re-created topic's end (4): the client
    # restarts the partition from the beginning; the service sees offset 0 after 10.
    broker = MemoryBroker()
    for i in range(10):
        broker.produce(TOPICS.samples, sample(i))
    make(broker, tmp_path).run(count=10)
    broker.create_topic(TOPICS.samples)
    for i in range(10, 14):
        broker.produce(TOPICS.samples, sample(i))
    registry, clock = CollectorRegistry(), Clock()
    source = NoTopicIds(broker, clock)
    service = make(broker, tmp_path, registry=registry, source=source, clock=clock)
    with caplog.at_level(logging.WARNING, logger="streamal.service"):
        assert service.run(count=4) == 4
    assert service.learner.stats.seen == 14
    assert registry.get_sample_value("streamal_offset_resets_total", {"kind": "sample"}) == 1
    assert "restarted at offset 0 (expected 10)" in caplog.text
    assert service.offsets.positions[(TOPICS.samples, 0)] == 4
    # A later re-assignment, with the new id now in the metadata, must not take the
    # topic for re-created again (it would read samples 10-13 twice, learning twice).
    source.shown = True
    source.rebalance()
    broker.produce(TOPICS.samples, sample(14))
    assert service.run(timeout=1.0) == 1
    assert service.learner.stats.seen == 15
    snap = Checkpointer(tmp_path).load()
    assert snap is not None and snap.learner.stats.seen == 15
    assert snap.topic_ids[TOPICS.samples] == broker.topics[TOPICS.samples].id


# -- failures ----------------------------------------------------------------------------
def test_broker_outage_is_ridden_out_then_exits_when_too_long(tmp_path: Path) -> None:
    broker, clock = MemoryBroker(), Clock()
    broker.produce(TOPICS.samples, sample(0))
    service = make(broker, tmp_path, clock=clock)
    service.run(count=1)
    assert service.readiness() == (True, "ok")
    broker.down = True
    service.run(timeout=3.0)  # a short outage: nothing to flush, no error
    assert service.readiness() == (False, "broker unreachable")
    broker.down = False
    service.run(timeout=2.0)
    assert service.readiness() == (True, "ok")
    broker.down = True
    with pytest.raises(TransportError, match="unreachable for 1[0-9] s"):
        service.run(timeout=60.0)
    assert service.health() == (False, "the loop failed")


class RaisingSource(TickingSource):
    """Polls raise while the broker is down, as kafka-python 3's do on a refused
    connection (the memory source's return nothing)."""

    def poll(self, max_records: int, timeout: float) -> list[Any]:
        if self.broker.down:
            self.clock.t += 0.5
            raise TransportError("poll failed: KafkaConnectionError: 111 ECONNREFUSED")
        return super().poll(max_records, timeout)


def test_polls_that_raise_are_an_outage_not_a_crash(tmp_path: Path) -> None:
    broker, clock = MemoryBroker(), Clock()
    broker.produce(TOPICS.samples, sample(0))
    policy = replace(POLICY, poll_timeout=0.01)
    service = make(
        broker, tmp_path, clock=clock, policy=policy, source=RaisingSource(broker, clock)
    )
    service.run(count=1)
    broker.down = True
    service.run(timeout=3.0)  # a short outage: polls raise, the loop rides it out
    assert service.readiness() == (False, "broker unreachable")
    broker.down = False
    broker.produce(TOPICS.samples, sample(1))
    service.run(count=1)
    assert service.readiness() == (True, "ok")
    assert service.learner.stats.seen == 2
    broker.down = True
    with pytest.raises(TransportError, match="unreachable for 1[0-9] s .*ECONNREFUSED"):
        service.run(timeout=60.0)


class RecordingSink(MemorySink):
    """A memory sink that records the timeout of every flush and of its close."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.flushes: list[float] = []
        self.closed_with: float | None = None

    def flush(self, timeout: float) -> bool:
        self.flushes.append(timeout)
        return super().flush(timeout)

    def close(self, timeout: float) -> None:
        self.closed_with = timeout
        super().close(timeout)


def test_no_checkpoint_waits_on_a_broker_known_to_be_down(tmp_path: Path) -> None:
    # Each checkpoint would wait flush_timeout for a broker that cannot answer: the loop
    # skips them until a probe finds it again, and closing does not wait either.
    broker, clock = MemoryBroker(), Clock()
    sink = RecordingSink(broker)
    policy = LoopPolicy(
        commit_every=1,
        commit_interval=1.0,
        health_interval=1.0,
        broker_timeout=10.0,
        flush_timeout=7.0,
    )
    service = make(broker, tmp_path, clock=clock, policy=policy, sink=sink)
    broker.produce(TOPICS.samples, sample(0))
    service.run(count=1)
    broker.produce(TOPICS.samples, sample(1))
    service._process(service.source.poll(1, 0.0))  # work not checkpointed yet
    broker.down = True
    sink.send(TOPICS.queries, b"in flight")  # stuck: every flush now times out
    sink.flushes.clear()
    with pytest.raises(TransportError, match="unreachable"):
        service.run(timeout=60.0)
    assert sink.flushes == [7.0]  # the one that found the broker down, then none
    service.close()
    assert sink.closed_with == 0.0
    # Once the broker answers again, closing waits for the producer as before.
    broker.down = False
    service.watch.observe(got_records=True)
    service.close()
    assert sink.closed_with == 7.0


def test_stop_flush_timeout_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    broker = MemoryBroker()
    service = make(broker, tmp_path)
    broker.produce(TOPICS.samples, sample(0))
    service.run(count=1)
    broker.produce(TOPICS.samples, sample(1))
    source = service.source
    batch = source.poll(1, 0.0)
    broker.down = True
    service._process(batch)  # its prediction is stuck in the sink
    with pytest.raises(TransportError, match="could not flush"):
        service.run(count=0)
    snap = Checkpointer(tmp_path).load()
    assert snap is not None and snap.offsets == {(TOPICS.samples, 0): 1}


class SlowFlushSink(MemorySink):
    """A sink whose next ``fail`` flushes time out."""

    fail = 0

    def flush(self, timeout: float) -> bool:
        if self.fail:
            self.fail -= 1
            return False
        return super().flush(timeout)


def test_a_failed_flush_is_not_undone_by_the_records_polled_before_it(tmp_path: Path) -> None:
    # The flush that times out makes the broker unreachable until a probe or a later poll
    # says otherwise; before, the records of the same turn said "reachable" at once, and
    # the next turn's checkpoint waited for another flush timeout (while /readyz said 200).
    broker = MemoryBroker()
    sink = SlowFlushSink(broker)
    broker.produce(TOPICS.samples, sample(0))
    once = LoopPolicy(commit_every=1, commit_interval=1e9, health_interval=1.0)
    service = make(broker, tmp_path, policy=once, sink=sink)
    sink.fail = 1
    service.run(count=1)  # its checkpoint's flush times out; the stop's succeeds
    assert service.readiness() == (False, "broker unreachable")


def test_lost_deliveries_fail_the_run_without_a_snapshot(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(5):
        broker.produce(TOPICS.samples, sample(i))
    service = make(broker, tmp_path)
    broker.drop_sends = True
    with pytest.raises(TransportError, match="could not be delivered"):
        service.run(count=5)
    assert Checkpointer(tmp_path).paths() == []
    assert broker.committed == {}


def test_stop_ends_gracefully_and_fail_skips_the_checkpoint(tmp_path: Path) -> None:
    broker = MemoryBroker()
    for i in range(4):
        broker.produce(TOPICS.samples, sample(i))
    one = LoopPolicy(max_batch=1)  # stop() is noticed after the current batch
    service = make(broker, tmp_path, policy=one)
    service.handler.handle = _stop_after(service, 2, fail=False)  # type: ignore[method-assign]
    assert service.run() == 2
    assert Checkpointer(tmp_path).load().offsets == {(TOPICS.samples, 0): 2}  # type: ignore[union-attr]
    service2 = make(broker, tmp_path, policy=one)
    service2.handler.handle = _stop_after(service2, 1, fail=True)  # type: ignore[method-assign]
    service2.run()
    assert Checkpointer(tmp_path).load().offsets == {(TOPICS.samples, 0): 2}  # type: ignore[union-attr]


def _stop_after(service: Service, n: int, fail: bool) -> Any:
    real, calls = service.handler.handle, [0]

    def handle(env: Any) -> None:
        real(env)
        calls[0] += 1
        if calls[0] == n:
            service.stop(fail=fail)

    return handle


def test_snapshot_of_other_settings_is_refused(tmp_path: Path) -> None:
    broker = MemoryBroker()
    broker.produce(TOPICS.samples, sample(0))
    make(broker, tmp_path, config_hash="aaa").run(count=1)
    with pytest.raises(CheckpointError, match="other learner settings"):
        make(broker, tmp_path, config_hash="bbb").run(count=1)


def test_periodic_commits_do_not_wait_final_one_does(tmp_path: Path) -> None:
    broker, spy = MemoryBroker(), Spy()
    for i in range(25):
        broker.produce(TOPICS.samples, sample(i))
    policy = LoopPolicy(commit_every=10, commit_interval=30.0, max_batch=5)
    service = make(broker, tmp_path, policy=policy, source=SpySource(broker, spy))
    service.run(count=25)
    # two periodic checkpoints (10, 20) commit asynchronously; the end of the run waits
    assert spy.waits == [False, False, True]
    assert broker.committed["streamal"] == {(TOPICS.samples, 0): 25}


_GC_PROBE = """
import gc, sys, tempfile
from streamal.core.checkpoint import Checkpointer
from streamal.offline.replay import build_learner
from streamal.service import LoopPolicy, Service
from streamal.transports import MemoryBroker, MemorySink, MemorySource
broker = MemoryBroker()
broker.produce("streamal.samples", b'{"id": "1", "x": {"a": 1}}')
service = Service(
    build_learner("logreg", "entropy", "full", 1.0, seed=1), MemorySource(broker),
    MemorySink(broker), Checkpointer(tempfile.mkdtemp()),
    policy=LoopPolicy(tune_gc=sys.argv[1] == "on"),
)
service.run(count=1)
print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(("tune", "expected"), [("on", "10000 True"), ("off", "700 False")])
def test_the_loop_tunes_the_garbage_collector_unless_told_not_to(tune: str, expected: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, tune], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[-2] == expected
