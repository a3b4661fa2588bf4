"""Waiting is visible: progress lines, and /readyz false while nothing is assigned (item 7)."""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import pytest

from streamal.core.checkpoint import Checkpointer
from streamal.exceptions import TransportError
from streamal.offline.replay import build_learner
from streamal.service.loop import Service
from streamal.transports import MemoryBroker, MemorySink, MemorySource
from streamal.transports.kafka import wait_for_broker


def test_waiting_for_the_broker_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Found 7: with no broker, serve, produce and annotate printed nothing for 60 s.
    caplog.set_level(logging.WARNING, "streamal.transports.kafka")
    with pytest.raises(TransportError):
        wait_for_broker("bob:pa55@127.0.0.1:9", timeout=1.5, progress_every=0.3)
    notes = [
        r.getMessage() for r in caplog.records if "waiting for the Kafka broker" in r.getMessage()
    ]
    assert notes, caplog.text
    assert all("pa55" not in note for note in notes)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _service(clock: Clock, broker: MemoryBroker) -> Service:
    learner = build_learner("logreg", "entropy", "full", 1.0, seed=1)
    return Service(
        learner,
        MemorySource(broker),
        MemorySink(broker),
        Checkpointer(tempfile.mkdtemp()),
        clock=clock,
    )


def test_not_ready_until_a_samples_partition_is_assigned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Found 7: a serve started before its samples topic existed said ok on /readyz.
    clock, broker = Clock(), MemoryBroker()
    service = _service(clock, broker)
    service.restore()
    service.source.subscribe(["streamal.samples", "streamal.labels"], service)
    service._subscribed, service._subscribed_at = True, 0.0
    assert service.readiness() == (False, "no partition of streamal.samples assigned yet")
    caplog.set_level(logging.WARNING, "streamal.service")
    clock.now = 5.0
    service._note_waiting()
    assert "assigned after" not in caplog.text  # not yet: a group takes a few seconds
    clock.now = 12.0
    service._note_waiting()
    service._note_waiting()  # once per 30 s
    assert caplog.text.count("no partition of streamal.samples assigned after 12 s") == 1
    service.on_assigned([("streamal.labels", 0)])
    assert service.readiness()[0] is False
    service.on_assigned([("streamal.samples", 0)])
    assert service.readiness() == (True, "ok")
    service.on_revoked([("streamal.samples", 0), ("streamal.labels", 0)])
    assert service.readiness()[0] is False


def test_ready_once_running_on_memory_transports() -> None:
    clock, broker = Clock(), MemoryBroker()
    broker.produce("streamal.samples", b'{"id": "a", "x": {"f": 1}}')
    service: Any = _service(clock, broker)
    assert service.run(count=1) == 1
    assert service.readiness() == (True, "ok")
