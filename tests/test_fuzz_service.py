"""Fuzz: hostile messages through the service's real handler (issue 14, item 10).

A seeded generator drives 12,000 messages of 37 kinds (``tests/_hostile.py``) through
:class:`~streamal.service.handlers.MessageHandler` with in-memory transports, and a
smaller hypothesis test throws arbitrary bytes and JSON at it. Every message must be
accounted for exactly once (decided, learned, counted duplicate, or dead-lettered with a
known reason), nothing may raise, a dead letter must leave the learner's state as it
was, the budget must never be overspent and the pending store must stay bounded.
Checkpoints with the real :class:`~streamal.core.checkpoint.Checkpointer` run along the way,
so the fuzzed state must also survive the restricted unpickler.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import _hostile as hostile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamal.core.checkpoint import Checkpointer, Snapshot
from streamal.defaults import DEFAULT_BUDGET
from streamal.messages import Limits
from streamal.offline.replay import build_learner
from streamal.service.handlers import MessageHandler, Topics
from streamal.service.outputs import REASONS
from streamal.transports import Envelope, MemoryBroker, MemorySink

TOPICS = Topics()
TOPIC = {hostile.SAMPLES: TOPICS.samples, hostile.LABELS: TOPICS.labels}
#: The service's limits, with the feature count and meta size lowered so that the
#: generator can cross them cheaply (the mechanism is the same at any size).
LIMITS = Limits(max_features=64, max_meta_bytes=4096)
UNCHANGED_AFTER = set(REASONS) - {"label_unknown", "label_expired"}


class Fuzzed:
    """The handler under test and the invariants it must keep."""

    def __init__(
        self, model: str, tmp: Path, classes: tuple[Any, ...] | None = None, max_pending: int = 300
    ) -> None:
        self.broker = MemoryBroker()
        self.learner = build_learner(
            model, "entropy", DEFAULT_BUDGET, 0.2, seed=7, ttl=500.0, classes=classes
        )
        self.learner.pending.max_size = max_pending
        self.handler = MessageHandler(self.learner, MemorySink(self.broker), TOPICS, limits=LIMITS)
        self.checkpointer = Checkpointer(tmp, keep=1, key=b"fuzz")
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.queries = 0
        self.offset = 0

    def _counts(self) -> tuple[int, int, int, int]:
        stats = self.handler.learner.stats
        return (
            stats.seen,
            stats.applied,
            stats.duplicate,
            len(self.broker.records(TOPICS.dead_letters)),
        )

    def feed(self, topic: str, value: bytes | None, check_state: bool) -> str:
        before = self._counts()
        state = pickle.dumps(self.handler.learner) if check_state else b""
        self.offset += 1
        self.handler.handle(Envelope(topic, 0, self.offset, None, value))
        after = self._counts()
        deltas = [b - a for a, b in zip(before, after, strict=True)]
        assert sorted(deltas) == [0, 0, 0, 1], (topic, value[:200] if value else value, deltas)
        outcome = ("decided", "learned", "duplicate", "dead")[deltas.index(1)]
        if outcome == "dead":
            dead = self.broker.records(TOPICS.dead_letters)[-1]
            reason = (dead.header("streamal.reason") or b"").decode()
            assert reason in REASONS, reason
            self.reasons[reason] += 1
            outcome = f"dead:{reason}"
            if check_state and reason in UNCHANGED_AFTER:
                assert pickle.dumps(self.handler.learner) == state, reason
        self.outcomes[outcome] += 1
        counts = self.handler.metrics.counts
        assert counts.samples + sum(counts.messages.values()) == self.offset, "not counted"
        self.check_invariants()
        return outcome

    def check_invariants(self) -> None:
        learner = self.handler.learner
        budget = learner.budget
        assert budget.seen == learner.stats.seen
        # The promise, with the default's initial allowance (reserve_quantile:initial=N
        # may spend the budget of the first N arrivals from the first arrival on).
        assert budget.spent <= budget.promised(budget.seen)
        assert learner.stats.queried == budget.spent
        assert len(learner.pending) <= learner.pending.max_size

    def checkpoint(self) -> None:
        """Publish the outbox and round-trip the learner through a signed snapshot."""
        ids = [key for _, key, _ in self.handler.outbox]
        assert len(ids) == len(set(ids)), "a sample was queried twice in one checkpoint"
        self.queries += len(ids)
        self.handler.outbox.clear()
        self.checkpointer.save(Snapshot(self.handler.learner))
        restored = self.checkpointer.load()
        assert restored is not None
        self.handler.learner = restored.learner


@pytest.mark.parametrize(
    ("model", "count", "classes"),
    [("logreg", 12_000, None), ("arf", 2_000, (True, False))],
)
def test_hostile_stream_through_the_handler(
    model: str, count: int, classes: tuple[Any, ...] | None, tmp_path: Path
) -> None:
    fuzz = Fuzzed(model, tmp_path, classes)
    kinds: Counter[str] = Counter()
    for i, (kind, topic, value) in enumerate(hostile.hostile_stream(count, seed=11)):
        kinds[kind] += 1
        fuzz.feed(TOPIC[topic], value, check_state=i % 4 == 0)
        if i % 1000 == 999:
            fuzz.checkpoint()
    fuzz.checkpoint()
    assert sum(fuzz.outcomes.values()) == count
    assert len(kinds) >= 30, sorted(kinds)
    assert len(set(hostile.kind_names())) >= 20
    # The stream really exercised the learner and the rejections alike.
    assert fuzz.outcomes["decided"] > count // 5 and fuzz.outcomes["learned"] > count // 200
    for reason in ("too_deep", "out_of_range", "unknown_class", "sample_pending"):
        assert fuzz.reasons[reason] > 0, reason
    assert fuzz.queries == fuzz.handler.learner.stats.queried
    print(model, count, dict(fuzz.outcomes), file=sys.stderr)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.text(max_size=10),
        "sample_id": json_values | st.text(max_size=10),
        "x": st.dictionaries(st.text(max_size=5), json_values, max_size=5),
        "y": json_values,
        "ts": json_values,
        "meta": json_values,
        "annotator": json_values,
        "schema_version": json_values,
    },
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.binary(max_size=200) | messages.map(lambda m: json.dumps(m).encode()),
    as_label=st.booleans(),
)
def test_arbitrary_bytes_and_json_are_accounted_for(
    raw: bytes, as_label: bool, tmp_path: Path
) -> None:
    fuzz = Fuzzed("logreg", tmp_path)
    for i in range(3):  # a little state first, so labels can land
        fuzz.feed(TOPICS.samples, json.dumps({"id": str(i), "x": {"a": i}}).encode(), False)
    fuzz.feed(TOPICS.labels if as_label else TOPICS.samples, raw, check_state=True)
