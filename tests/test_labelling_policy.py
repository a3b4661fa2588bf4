"""What a query offers an annotator, which labels are taken, unsolicited labels."""

from __future__ import annotations

import tempfile

from streamal.core.checkpoint import Checkpointer
from streamal.core.learner import LabelOutcome
from streamal.labelling.policy import LabelPolicy
from streamal.messages import Label, Sample, decode_query, encode
from streamal.offline.replay import build_learner
from streamal.service.config import load_settings
from streamal.service.factory import config_hash, label_policy
from streamal.service.loop import Service
from streamal.transports import MemoryBroker, MemorySink, MemorySource


def _service(policy: LabelPolicy, model: str = "logreg") -> tuple[Service, MemoryBroker]:
    broker = MemoryBroker()
    learner = build_learner(model, "entropy", "full", 1.0, seed=1)
    service = Service(
        learner, MemorySource(broker), MemorySink(broker), Checkpointer(tempfile.mkdtemp())
    )
    service.handler.policy = policy
    return service, broker


def _sample(i: int, **meta: str) -> bytes:
    return encode(Sample(id=f"s{i}", x={"a": float(i % 3), "b": float(i % 2)}, meta=meta))


def test_queries_carry_meta_prediction_and_the_configured_classes() -> None:
    service, broker = _service(LabelPolicy(classes=("spam", "ham"), meta_bytes=64))
    broker.produce("streamal.samples", _sample(0, url="https://example.org/0.png"))
    broker.produce("streamal.samples", _sample(1, text="y" * 500))
    service.run(count=2)
    first, second = (decode_query(v or b"") for v in broker.values("streamal.queries"))
    assert first.meta == {"url": "https://example.org/0.png"}
    assert first.classes == ["spam", "ham"]
    assert second.meta == {"_truncated": 1}  # 500 characters do not fit in 64 bytes


def test_without_classes_queries_offer_the_classes_the_model_learned() -> None:
    service, broker = _service(LabelPolicy(), model="hoeffding")
    broker.produce("streamal.samples", _sample(0))
    service.run(count=1)
    assert decode_query(broker.values("streamal.queries")[0] or b"").classes is None
    for i, y in enumerate(["cat", "dog", "bird"]):
        broker.produce("streamal.labels", encode(Label(sample_id="s0", y=y)))
        broker.produce("streamal.samples", _sample(i + 1))
        broker.produce("streamal.labels", encode(Label(sample_id=f"s{i + 1}", y=y)))
    broker.produce("streamal.samples", _sample(9))
    service.run(count=10)
    last = decode_query(broker.values("streamal.queries")[-1] or b"")
    assert sorted(last.classes or []) == ["bird", "cat", "dog"]  # a growing model


def test_a_label_outside_the_classes_is_a_dead_letter_and_not_learned() -> None:
    service, broker = _service(LabelPolicy(classes=("spam", "ham")))
    broker.produce("streamal.samples", _sample(0))
    broker.produce("streamal.labels", encode(Label(sample_id="s0", y="eggs")))
    service.run(count=2)
    assert service.learner.model_version == 0 and "s0" in service.learner.pending
    (dead,) = broker.records("streamal.dead-letters")
    assert dead.header("streamal.reason") == b"unknown_class"
    assert b"not among the classes" in (dead.header("streamal.error") or b"")
    broker.produce("streamal.labels", encode(Label(sample_id="s0", y="ham")))
    service.run(count=1)
    assert service.learner.stats.applied == 1


def test_unsolicited_labels_are_learned_only_when_allowed_and_never_charged() -> None:
    label = encode(Label(sample_id="c1", y=True, x={"a": 2.0, "b": 1.0}))
    off, broker = _service(LabelPolicy())
    broker.produce("streamal.labels", label)
    off.run(count=1)
    assert off.learner.model_version == 0
    assert broker.records("streamal.dead-letters")[0].header("streamal.reason") == (
        b"label_unknown"
    )
    on, broker = _service(LabelPolicy(unsolicited=True))
    broker.produce("streamal.labels", label)
    broker.produce("streamal.labels", label)  # a retry: a duplicate, learned once
    on.run(count=2)
    stats = on.learner.stats
    assert (stats.unsolicited, stats.duplicate, stats.applied, stats.queried) == (1, 1, 0, 0)
    assert on.learner.budget.spent == 0 and on.learner.model_version == 1
    assert (
        on.metrics.registry.get_sample_value("streamal_labels_total", {"outcome": "unsolicited"})
        == 1.0
    )


def test_an_unsolicited_label_for_a_pending_query_answers_it() -> None:
    learner = build_learner("logreg", "entropy", "full", 1.0, seed=1)
    learner.process(Sample(id="q", x={"a": 1.0}))
    outcome = learner.learn_unsolicited(Label(sample_id="q", y=True, x={"a": 9.0}))
    assert outcome is LabelOutcome.APPLIED and learner.stats.unsolicited == 0


def test_classes_settings_do_not_change_the_snapshot_identity() -> None:
    plain = load_settings()
    labelled = load_settings(overrides={"learner": {"classes": [True, False], "unsolicited": True}})
    assert config_hash(plain) == config_hash(labelled)
    assert label_policy(labelled).refuse(1) is not None
