"""From consumed messages to learner calls and outgoing messages.

:class:`MessageHandler` routes each envelope by topic. A sample is decoded, decided by
the learner, and, when queried, its :class:`~streamal.messages.Query` goes to the
*outbox* (published by the service's checkpoint once the decision is durable); its
prediction goes out at once when a predictions topic is set. A label is decoded and
applied; duplicates are ignored (and counted), labels for unknown or expired queries
go to dead letters. A message that cannot be decoded goes to dead letters with its
reason, and processing goes on.

Examples
--------
>>> from streamal.replay import build_learner
>>> from streamal.transports import Envelope, MemoryBroker, MemorySink
>>> broker = MemoryBroker()
>>> handler = MessageHandler(
...     build_learner("logreg", "entropy", "full", 1.0, seed=1), MemorySink(broker), Topics()
... )
>>> handler.handle(Envelope("streamal.samples", 0, 0, None, b'{"id": "a", "x": {"f": 1}}'))
>>> [q[1] for q in handler.outbox]
[b'a']
>>> handler.handle(Envelope("streamal.labels", 0, 0, None, b'{"sample_id": "zz", "y": 1}'))
>>> [env.header("streamal.reason") for env in broker.records("streamal.dead-letters")]
[b'label_unknown']
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from streamal.exceptions import DecodeError
from streamal.labelling.policy import LabelPolicy
from streamal.learner import Decision, LabelOutcome
from streamal.messages import Query, Sample, decode_label, decode_sample, encode
from streamal.service.metrics import Metrics
from streamal.service.outputs import classify, dead_letter, prediction_message
from streamal.transports.base import Envelope, Sink

__all__ = ["MessageHandler", "Topics"]

log = logging.getLogger("streamal.service")

#: A message waiting to be published: topic, key, value.
Outgoing = tuple[str, bytes | None, bytes]


@dataclass(frozen=True)
class Topics:
    """Topic names; ``predictions=None`` publishes no predictions."""

    samples: str = "streamal.samples"
    labels: str = "streamal.labels"
    queries: str = "streamal.queries"
    dead_letters: str = "streamal.dead-letters"
    predictions: str | None = None


class MessageHandler:
    """Applies consumed messages to ``learner`` and sends what results.

    Parameters
    ----------
    learner
        An :class:`~streamal.learner.ActiveLearner` (or anything with ``process``,
        ``apply`` and ``query_for``; ``take_queries`` is used when present).
    sink
        Where predictions and dead letters go.
    topics
        Topic names.
    metrics
        Metrics to update (a private registry when omitted).
    dead_letter_max_bytes
        Dead letters are cut to this size (see :mod:`streamal.service.outputs`).
    """

    def __init__(
        self,
        learner: Any,
        sink: Sink,
        topics: Topics,
        metrics: Metrics | None = None,
        dead_letter_max_bytes: int = 900_000,
    ) -> None:
        self.learner = learner
        self.sink = sink
        self.topics = topics
        self.metrics = Metrics(CollectorRegistry()) if metrics is None else metrics
        self._count_sample = self.metrics.counts.sample
        self.dead_letter_max_bytes = dead_letter_max_bytes
        #: Queries decided since the last checkpoint, in decision order.
        self.outbox: list[Outgoing] = []
        #: Window mode only: the samples of the open window, by id.
        self.window_samples: OrderedDict[str, Sample] = OrderedDict()
        #: Classes offered and taken, query meta size, unsolicited labels (the factory
        #: sets it from the settings; see :mod:`streamal.labelling.policy`).
        self.policy = LabelPolicy()

    @property
    def learner(self) -> Any:
        """The learner messages go to (replaced when a snapshot is restored)."""
        return self._learner

    @learner.setter
    def learner(self, learner: Any) -> None:
        self._learner = learner
        self._take_queries = getattr(learner, "take_queries", None)

    def handle(self, env: Envelope) -> None:
        """Process one consumed message (messages of other topics are ignored)."""
        if env.topic == self.topics.samples:
            self._on_sample(env)
        elif env.topic == self.topics.labels:
            self._on_label(env)

    def _on_sample(self, env: Envelope) -> None:
        try:
            sample = decode_sample(env.value or b"")
        except DecodeError as err:
            self._dead_letter(env, classify(env.value, err), str(err), "sample")
            return
        learner = self._learner
        decision = learner.process(sample)
        self._count_sample(decision.score, decision.prediction is not None)
        if decision.queried:
            self._queue_decided(sample, decision)
        take = self._take_queries
        if take is not None:
            self._windowed(sample, take())
        if self.topics.predictions is not None:
            self.sink.send(
                self.topics.predictions, prediction_message(decision), sample.id.encode()
            )

    def _windowed(self, sample: Sample, decisions: list[Decision]) -> None:
        # Window mode picks queries when a window closes, among its recent arrivals:
        # keep one window of samples to build the queries from.
        recent = self.window_samples
        recent[sample.id] = sample
        learner = self.learner
        query_for = getattr(learner, "query_for", None) or learner.learner.query_for
        for decision in decisions:
            chosen = recent.get(decision.sample_id)
            if chosen is None:
                log.warning(
                    "window query for %r: sample no longer known",
                    decision.sample_id,
                    extra={"sample_id": decision.sample_id},
                )
                continue
            policy = self.policy
            self._queue(
                query_for(chosen, decision, classes=policy.offered, meta_bytes=policy.meta_bytes)
            )
        while len(recent) > max(1, getattr(learner, "window", 1)):
            recent.popitem(last=False)

    def _queue_decided(self, sample: Sample, decision: Decision) -> None:
        learner = self._learner
        query_json = getattr(learner, "query_json", None)
        policy = self.policy
        offered, meta_bytes = policy.offered, policy.meta_bytes
        if query_json is None:
            self._queue(learner.query_for(sample, decision, classes=offered, meta_bytes=meta_bytes))
            return
        value = query_json(sample, decision, classes=offered, meta_bytes=meta_bytes)
        self.outbox.append((self.topics.queries, sample.id.encode(), value))
        self.metrics.query(type(learner.strategy).__name__, decision.purpose, sample.id)

    def _queue(self, query: Query) -> None:
        self.outbox.append((self.topics.queries, query.sample_id.encode(), encode(query)))
        self.metrics.query(query.strategy, query.purpose, query.sample_id)

    def _on_label(self, env: Envelope) -> None:
        try:
            label = decode_label(env.value or b"")
        except DecodeError as err:
            self._dead_letter(env, classify(env.value, err), str(err), "label")
            return
        policy = self.policy
        refused = policy.refuse(label.y)
        if refused is not None:
            self._dead_letter(env, "label_class", refused, "label")
            return
        learner = self.learner
        if label.x is not None and policy.unsolicited and hasattr(learner, "learn_unsolicited"):
            outcome = learner.learn_unsolicited(label)
        else:
            outcome = learner.apply(label)
        self.metrics.label(outcome.value, label.sample_id)
        if outcome in (LabelOutcome.UNKNOWN, LabelOutcome.EXPIRED):
            error = f"label for {outcome.value} query {label.sample_id!r}"
            self._dead_letter(env, f"label_{outcome.value}", error, "label")

    def _dead_letter(self, env: Envelope, reason: str, error: str, kind: str) -> None:
        value, headers = dead_letter(env, reason, error, self.dead_letter_max_bytes)
        self.sink.send(self.topics.dead_letters, value, env.key, headers)
        self.metrics.dead_letter(reason, kind)
        if not reason.startswith("label_"):
            log.warning(
                "dead letter from %s/%d/%d: %s: %s",
                env.topic,
                env.partition,
                env.offset,
                reason,
                error,
            )
