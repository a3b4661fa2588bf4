"""``POST /labels`` and ``/label/data`` on the service's HTTP port (in-process, memory broker)."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamal.messages import Sample, decode_label, encode
from streamal.service.config import load_settings
from streamal.service.factory import build_labelling, build_service
from streamal.service.http import HttpServer
from streamal.transports import MemoryBroker, MemorySink, MemorySource


class Stack:
    def __init__(self, **labelling: Any) -> None:
        self.broker = MemoryBroker()
        self.settings = load_settings(
            overrides={
                "learner": {"model": "logreg", "budget": "full", "classes": [True, False]},
                "checkpoint": {"dir": tempfile.mkdtemp()},
                "labelling": labelling,
            }
        )
        broker = self.broker
        self.service = build_service(
            self.settings, CollectorRegistry(), MemorySource(broker), MemorySink(broker)
        )
        self.app = build_labelling(self.settings, self.service, MemorySink(broker))
        self.http = HttpServer(
            CollectorRegistry(),
            self.service.health,
            self.service.readiness,
            port=0,
            routes=self.app,
            max_body=self.settings.labelling.max_request_bytes,
        )
        self.http.start()

    def samples(self, n: int) -> None:
        for i in range(n):
            sample = Sample(id=f"s{i}", x={"a": float(i % 2)}, meta={"url": f"https://e.org/{i}"})
            self.broker.produce("streamal.samples", encode(sample))
        self.service.run(count=n)

    def request(
        self, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.http.port}{path}", data=data)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            text = err.read()
            return err.code, json.loads(text) if text.startswith(b"{") else text


@pytest.fixture
def stack() -> Iterator[Stack]:
    s = Stack()
    yield s
    s.http.stop()


def test_posted_labels_go_through_the_topic_and_a_retry_is_learned_once(stack: Stack) -> None:
    stack.samples(4)
    body = [{"sample_id": "s0", "y": True}, {"sample_id": "s1", "y": False}]
    for _ in range(2):  # the client retries the same request
        code, answer = stack.request("/labels", body)
        assert code == 200 and answer["accepted"] == 2
    labels = [decode_label(v or b"") for v in stack.broker.values("streamal.labels")]
    assert [(label.sample_id, label.y) for label in labels] == [
        ("s0", True),
        ("s1", False),
        ("s0", True),
        ("s1", False),
    ]
    stack.service.run(count=4)
    stats = stack.service.learner.stats
    assert (stats.applied, stats.duplicate) == (2, 2)
    assert stack.service.learner.model_version == 2


def test_each_label_is_checked_and_refusals_say_why(stack: Stack) -> None:
    stack.samples(1)
    code, answer = stack.request(
        "/labels", [{"sample_id": "s0", "y": "maybe"}, {"sample_id": "s0"}, {"y": True}]
    )
    assert code == 200 and answer["accepted"] == 0
    reasons = [r["reason"] for r in answer["results"]]
    assert "not among the classes" in reasons[0]
    assert reasons[1].startswith("field 'y'") and reasons[2].startswith("field 'sample_id'")
    assert stack.broker.values("streamal.labels") == []
    assert stack.request("/labels", raw=b"{not json")[0] == 400
    assert stack.request("/labels", [1, 2])[0] == 400


def test_one_label_object_is_taken_and_the_page_data_follows(stack: Stack) -> None:
    stack.samples(3)
    code, data = stack.request("/label/data")
    assert code == 200 and [q["sample_id"] for q in data["queries"]] == ["s0", "s1", "s2"]
    first = data["queries"][0]
    assert first["meta"] == {"url": "https://e.org/0"} and first["classes"] == [True, False]
    assert data["counts"]["pending"] == 3 and data["counts"]["spent"] == 3
    assert stack.request("/labels", {"sample_id": "s1", "y": True})[1]["accepted"] == 1
    code, data = stack.request("/label/data")
    assert [q["sample_id"] for q in data["queries"]] == ["s0", "s2"]
    assert data["counts"]["labelled_today"] == 1


def test_token_and_size_limits() -> None:
    stack = Stack(token="s3cret", max_request_bytes=2000, max_labels=3)
    try:
        stack.samples(1)
        label = {"sample_id": "s0", "y": True}
        assert stack.request("/labels", [label])[0] == 401
        assert stack.request("/labels", [label], token="wrong")[0] == 401
        assert stack.request("/label/data")[0] == 401
        assert stack.request("/label/data", token="s3cret")[0] == 200
        assert stack.request("/labels", [label] * 4, token="s3cret")[0] == 413
        big = [{"sample_id": "s0", "y": True, "annotator": "x" * 3000}]
        assert stack.request("/labels", big, token="s3cret")[0] == 413
        assert stack.request("/labels", [label], token="s3cret")[0] == 200
        assert "s3cret" not in json.dumps(stack.settings.masked())
    finally:
        stack.http.stop()
