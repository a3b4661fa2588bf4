"""``POST /labels``: labels from people, checked and written to the labels topic.

The body is one label or a JSON list of labels (the :class:`~streamal.messages.Label`
schema). Each is checked (schema, known classes) and the ones that pass are written to
the labels topic and flushed before the answer, which says per label whether it was
accepted. The service learns them from the topic like any other label, so a retried
request is learned once: the second copy is counted as a duplicate by the learner.

Status codes: ``200`` with one result per label (some may be refused), ``400`` for a
body that is not JSON or not a label or a list of them, ``401`` without the bearer token
(when ``labelling.token`` is set), ``413`` for a body above ``labelling.max_request_bytes``
or more than ``labelling.max_labels`` labels, ``503`` when the broker did not take them.

Examples
--------
>>> from streamal.transports import MemoryBroker, MemorySink
>>> broker = MemoryBroker()
>>> gateway = LabelGateway(MemorySink(broker), "streamal.labels", LabelPolicy(classes=("a", "b")))
>>> code, answer = gateway.post(b'[{"sample_id": "1", "y": "a"}, {"sample_id": "2", "y": "z"}]')
>>> code, answer["accepted"], answer["results"][1]["reason"]
(200, 1, "label 'z' is not among the classes ['a', 'b']")
>>> broker.values("streamal.labels")
[b'{"schema_version":1,"sample_id":"1","y":"a"}']
>>> LabelGateway(MemorySink(broker), "streamal.labels", token="s3cret").post(b"{}")[0]
401
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from streamal.exceptions import DecodeError, TransportError
from streamal.labelling.policy import LabelPolicy
from streamal.messages import Label, decode, encode
from streamal.transports.base import Sink

__all__ = ["LabelGateway"]

#: Seconds a request waits for the broker to take its labels before answering 503.
FLUSH_TIMEOUT = 10.0

Answer = dict[str, Any]


class LabelGateway:
    """Checks posted labels and writes the good ones to the labels topic.

    Parameters
    ----------
    sink
        Its own producer (not the service loop's: a failed delivery here must not be
        mistaken for one of the loop's, nor hide one).
    topic
        The labels topic.
    policy
        Which labels are taken (:class:`~streamal.labelling.policy.LabelPolicy`).
    token
        Bearer token the ``Authorization`` header must carry; ``None``: no check.
    max_bytes, max_labels
        The largest body and the most labels one request may carry.
    clock
        Wall clock (seconds since the epoch), for the labels-per-day count.
    """

    def __init__(
        self,
        sink: Sink,
        topic: str,
        policy: LabelPolicy | None = None,
        token: str | None = None,
        max_bytes: int = 1_048_576,
        max_labels: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.topic = topic
        self.policy = LabelPolicy() if policy is None else policy
        self.max_bytes = max_bytes
        self.max_labels = max_labels
        self.clock = clock
        self._token = token
        self._lock = threading.Lock()
        self._day = ""
        self._today = 0
        self.on_accepted: Callable[[list[str]], None] | None = None

    @property
    def labelled_today(self) -> int:
        """Labels accepted since midnight UTC."""
        with self._lock:
            return self._today if self._day == _day(self.clock()) else 0

    def authorized(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries the token (if one is set)."""
        if self._token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self._token)

    def post(self, body: bytes, authorization: str | None = None) -> tuple[int, Answer]:
        """Handle one request body; return the status code and the JSON answer."""
        if not self.authorized(authorization):
            return 401, {"error": "a bearer token is required (Authorization: Bearer ...)"}
        if len(body) > self.max_bytes:
            return 413, {"error": f"body of {len(body)} bytes exceeds {self.max_bytes}"}
        try:
            data = json.loads(body)
        except ValueError as err:
            return 400, {"error": f"not valid JSON ({err})"}
        items = data if isinstance(data, list) else [data]
        if len(items) > self.max_labels:
            return 413, {"error": f"{len(items)} labels exceed the limit of {self.max_labels}"}
        if not all(isinstance(item, dict) for item in items):
            return 400, {"error": "send a label object or a list of label objects"}
        results, good = self._check(items)
        if good:
            try:
                self._write(good)
            except TransportError as err:
                return 503, {"error": f"the labels topic did not take the labels: {err}"}
        accepted = sum(r["accepted"] for r in results)
        return 200, {"accepted": accepted, "refused": len(results) - accepted, "results": results}

    def _check(self, items: list[dict[str, Any]]) -> tuple[list[Answer], list[Label]]:
        results: list[Answer] = []
        good: list[Label] = []
        for item in items:
            sample_id = item.get("sample_id")
            result: Answer = {"sample_id": sample_id if isinstance(sample_id, str) else None}
            try:
                label = decode(json.dumps(item), Label)
            except DecodeError as err:
                results.append({**result, "accepted": False, "reason": str(err)})
                continue
            refused = self.policy.refuse(label.y)
            if refused is not None:
                results.append({**result, "accepted": False, "reason": refused})
                continue
            results.append({**result, "accepted": True})
            good.append(label)
        return results, good

    def _write(self, labels: list[Label]) -> None:
        with self._lock:  # one request's labels at a time on this producer
            for label in labels:
                self.sink.send(self.topic, encode(label), label.sample_id.encode())
            if not self.sink.flush(FLUSH_TIMEOUT):
                raise TransportError(f"not delivered within {FLUSH_TIMEOUT:.0f} s")
            day = _day(self.clock())
            if day != self._day:
                self._day, self._today = day, 0
            self._today += len(labels)
        if self.on_accepted is not None:
            self.on_accepted([label.sample_id for label in labels])


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))
