"""One bad message never stops the service and changes no state (issue 14, items 1, 3, 9).

Each test feeds the real :class:`MessageHandler` (in-memory transports) a message that
crashed or corrupted the service before, and checks that it became a dead letter with
its reason while the learner's state stayed exactly as it was.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from streamal.exceptions import MessageRejected
from streamal.messages import Label, Limits, Sample
from streamal.offline.replay import build_learner
from streamal.service.handlers import MessageHandler, Topics
from streamal.service.outputs import REASONS
from streamal.transports import Envelope, MemoryBroker, MemorySink

SAMPLES, LABELS, DEAD = "streamal.samples", "streamal.labels", "streamal.dead-letters"


class Harness:
    """A handler over an in-memory broker, with helpers to send and to snapshot state."""

    def __init__(self, model: str = "logreg", ttl: float | None = None, **kw: Any) -> None:
        self.broker = MemoryBroker()
        learner = build_learner(model, "entropy", "full", 1.0, seed=1, ttl=ttl)
        for key, value in kw.items():
            setattr(learner, key, value)
        self.handler = MessageHandler(learner, MemorySink(self.broker), Topics())
        self.offset = 0

    def send(self, topic: str, value: bytes | dict[str, Any]) -> None:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.offset += 1
        self.handler.handle(Envelope(topic, 0, self.offset, None, data))

    def sample(self, sid: str, x: dict[str, Any], **kw: Any) -> None:
        self.send(SAMPLES, {"id": sid, "x": x, **kw})

    def label(self, sid: str, y: Any, **kw: Any) -> None:
        self.send(LABELS, {"sample_id": sid, "y": y, **kw})

    def state(self) -> bytes:
        return pickle.dumps(self.handler.learner)

    def reasons(self) -> list[str]:
        return [
            (env.header("streamal.reason") or b"").decode() for env in self.broker.records(DEAD)
        ]

    def warm(self, labels: list[Any], x: str = "f") -> None:
        for i, y in enumerate(labels):
            self.sample(f"w{i}", {x: float(i)})
            self.label(f"w{i}", y)
        assert self.reasons() == []


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


@pytest.mark.parametrize("depth", [40, 150, 1_000, 50_000])
def test_deep_meta_is_a_dead_letter(depth: int) -> None:
    # Found 1: 1,000+ levels raised RecursionError in the dead-letter classifier.
    h = Harness()
    h.warm([True, False])
    before = h.state()
    h.send(SAMPLES, b'{"id": "deep", "x": {"f": 1}, "meta": ' + nested(depth) + b"}")
    assert h.reasons() == ["too_deep"]
    assert h.state() == before


@pytest.mark.parametrize("depth", [300, 5_000])
def test_deep_label_is_a_dead_letter(depth: int) -> None:
    h = Harness()
    before = h.state()
    h.send(LABELS, b'{"sample_id": "a", "y": 1, "annotator": ' + nested(depth) + b"}")
    assert h.reasons() == ["too_deep"]
    assert h.state() == before


def test_huge_integer_feature_is_a_dead_letter() -> None:
    # Found 1: a 400-digit integer raised OverflowError in the scaler once f had varied.
    h = Harness()
    h.warm([True, False, True])
    before = h.state()
    h.sample("big", {"f": 10**400})
    h.sample("big2", {"f": -1e200})
    assert h.reasons() == ["out_of_range", "out_of_range"]
    assert h.state() == before
    h.sample("ok", {"f": 1e99})  # within the default bound: decided as usual
    assert h.reasons() == ["out_of_range", "out_of_range"]


def test_third_class_for_binary_model_is_a_dead_letter() -> None:
    # Found 1: exit 2 ("switch model") on a label of a third class for logreg.
    h = Harness("logreg")
    h.warm(["a", "b"])
    h.sample("c", {"f": 3.0})
    before = h.state()
    h.label("c", "c")
    assert h.reasons() == ["unknown_class"]
    assert h.state() == before
    h.label("c", "a")  # the query is still open: the right label is learned
    assert h.reasons() == ["unknown_class"]
    assert h.handler.learner.stats.applied == 3


def test_multiclass_model_grows_classes() -> None:
    h = Harness("ovr")
    h.warm(["a", "b", "c"])
    assert h.handler.learner.stats.applied == 3


def test_known_classes_are_enforced_before_learning() -> None:
    h = Harness("ovr", classes=("a", "b"), _class_keys={(str, "a"), (str, "b")})
    h.warm(["a", "b"])
    h.sample("x", {"f": 1.0})
    before = h.state()
    h.label("x", "c")
    h.label("x", True)
    assert h.reasons() == ["unknown_class", "unknown_class"]
    assert h.state() == before


def test_string_label_on_bool_stream_with_arf() -> None:
    # Found 1: ARF learned "yes" on a bool stream, then every prediction raised TypeError.
    h = Harness("arf")
    h.warm([True, False, True, False])
    h.sample("s", {"f": 1.0})
    before = h.state()
    h.label("s", "yes")
    h.label("s", 1)  # an int is not a bool either
    assert h.reasons() == ["unknown_class", "unknown_class"]
    assert h.state() == before
    h.sample("t", {"f": 2.0})  # predictions still work
    assert h.reasons() == ["unknown_class", "unknown_class"]


class Exploding:
    """A model whose update raises for one label and whose prediction raises for one x."""

    def __init__(self) -> None:
        self.learned: list[Any] = []

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        if x.get("boom"):
            raise ValueError("cannot predict")
        return {True: 0.5, False: 0.5}

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        if y == "poison":
            raise ZeroDivisionError("bad update")
        self.learned.append(y)


def test_model_exceptions_are_dead_letters_and_change_nothing() -> None:
    h = Harness()
    h.handler.learner.model = Exploding()
    h.sample("a", {"f": 1.0})
    before = h.state()
    h.sample("b", {"f": 1.0, "boom": 1})
    assert h.reasons() == ["model_error"]
    assert h.state() == before
    h.label("a", "poison")
    assert h.reasons() == ["model_error", "model_error"]
    assert h.state() == before  # the query is pending again, nothing learned
    h.label("a", "fine")
    assert h.handler.learner.model.learned == ["fine"]


def test_pending_id_is_not_queried_twice() -> None:
    # Found 3: a repeated id was queried and paid twice; its label learned on other x.
    h = Harness()
    h.sample("dup", {"f": 1.0})
    spent = h.handler.learner.stats.queried
    before = h.state()
    h.sample("dup", {"f": 99.0})
    assert h.reasons() == ["sample_pending"]
    assert h.state() == before
    assert h.handler.learner.stats.queried == spent
    assert [q[1] for q in h.handler.outbox] == [b"dup"]
    entry = h.handler.learner.pending.pop("dup")
    assert entry.x == {"f": 1.0}


def test_absurd_ts_does_not_expire_every_query() -> None:
    # Found 3: one sample with ts=1e300 expired every pending query (TTL set).
    h = Harness(ttl=60.0)
    for i in range(5):
        h.sample(str(i), {"f": float(i)}, ts=1000.0 + i)
    assert len(h.handler.learner.pending) == 5
    before = h.state()
    h.sample("late", {"f": 1.0}, ts=1e300)
    h.label("0", True, ts=1e300)
    assert h.reasons() == ["out_of_range", "out_of_range"]
    assert h.state() == before
    assert len(h.handler.learner.pending) == 5


def test_ids_and_meta_are_bounded() -> None:
    # Found 3: 100 kB ids doubled memory and grew every snapshot from 7 KB to 19.5 MB.
    h = Harness()
    before = h.state()
    h.sample("i" * 100_000, {"f": 1.0})
    h.sample("m", {"f": 1.0}, meta={"blob": "z" * 100_000})
    h.sample("n", {f"f{i}": 1.0 for i in range(10_001)})
    h.label("l" * 100_000, True)
    h.label("a", True, annotator="x" * 10_000)
    assert h.reasons() == ["limit_exceeded"] * 5
    assert h.state() == before


def test_limits_are_settable() -> None:
    h = Harness()
    h.handler.limits = Limits(max_id_length=4, max_features=1)
    h.sample("12345", {"f": 1.0})
    h.sample("1", {"f": 1.0, "g": 2.0})
    h.sample("2", {"f": 1.0})
    assert h.reasons() == ["limit_exceeded", "limit_exceeded"]


def test_docs_and_behaviour_agree() -> None:
    # Found 9: NaN in meta and label ts, a string schema_version, were accepted.
    h = Harness()
    before = h.state()
    h.send(SAMPLES, b'{"id": "a", "x": {"f": 1}, "meta": {"a": NaN}}')
    h.send(SAMPLES, b'{"id": "a", "x": {"f": 1}, "meta": {"a": [1, 2, Infinity]}}')
    h.send(LABELS, b'{"sample_id": "a", "y": 1, "ts": NaN}')
    h.send(SAMPLES, b'{"id": "a", "x": {"f": 1}, "schema_version": "1"}')
    h.send(SAMPLES, b'{"id": "a", "x": {"f": 1}, "schema_version": 1.0}')
    assert h.reasons() == ["non_finite"] * 3 + ["invalid_schema"] * 2
    assert h.state() == before


def test_json_errors_carry_the_json_reason() -> None:
    # Found 9: reason invalid_schema with the text "not valid JSON" (a lone surrogate).
    h = Harness()
    h.send(SAMPLES, b'{"id": "\\ud800", "x": {}}')
    errors = [env.header("streamal.error") or b"" for env in h.broker.records(DEAD)]
    for reason, error in zip(h.reasons(), errors, strict=True):
        assert (reason == "invalid_json") == error.startswith(b"not valid JSON"), (reason, error)


def test_unknown_labels_are_not_copied_whole() -> None:
    h = Harness()
    h.send(LABELS, {"sample_id": "nobody", "y": 1, "annotator": "a" * 500} | {"ts": 1.0})
    big = json.dumps({"sample_id": "nobody", "y": "y" * 200_000}).encode()
    h.send(LABELS, big)
    dead = h.broker.records(DEAD)
    assert h.reasons() == ["label_unknown", "label_unknown"]
    assert len(dead[1].value or b"") <= 4096
    assert dead[1].header("streamal.truncated_from") == str(len(big)).encode()


def test_every_reason_is_documented() -> None:
    for code in ("too_deep", "limit_exceeded", "out_of_range", "unknown_class"):
        assert code in REASONS
    assert {"sample_pending", "model_error"} <= set(REASONS)


def test_learner_rejects_before_changing_anything() -> None:
    learner = build_learner("logreg", "entropy", "full", 1.0, seed=1)
    learner.process(Sample(id="a", x={"f": 1.0}))
    learner.apply(Label(sample_id="a", y=True))
    learner.process(Sample(id="b", x={"f": 2.0}))
    before = pickle.dumps(learner)
    with pytest.raises(MessageRejected) as err:
        learner.process(Sample(id="b", x={"f": 3.0}))
    assert err.value.code == "sample_pending"
    with pytest.raises(MessageRejected) as err:
        learner.apply(Label(sample_id="b", y="x"))
    assert err.value.code == "unknown_class"
    assert pickle.dumps(learner) == before


def test_settings_set_classes_and_limits(tmp_path: Any) -> None:
    from prometheus_client import CollectorRegistry

    from streamal.service.config import load_settings
    from streamal.service.factory import build_service, config_hash
    from streamal.transports import MemorySource

    base = {"checkpoint": {"dir": str(tmp_path)}}
    settings = load_settings(
        overrides={
            **base,
            "learner": {"model": "ovr", "budget": "full", "classes": ["a", "b"]},
            "limits": {"max_id_length": 8},
        }
    )
    assert config_hash(settings) != config_hash(load_settings(overrides=base))
    broker = MemoryBroker()
    service = build_service(settings, CollectorRegistry(), MemorySource(broker), MemorySink(broker))
    service.handler.handle(Envelope(SAMPLES, 0, 0, None, b'{"id": "s1", "x": {"f": 1}}'))
    service.handler.handle(Envelope(SAMPLES, 0, 1, None, b'{"id": "s123456789", "x": {}}'))
    service.handler.handle(Envelope(LABELS, 0, 0, None, b'{"sample_id": "s1", "y": "c"}'))
    reasons = [env.header("streamal.reason") for env in broker.records(DEAD)]
    assert reasons == [b"limit_exceeded", b"unknown_class"]
    assert tuple(service.handler.policy.classes or ()) == ("a", "b")  # the label policy
