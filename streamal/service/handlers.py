"""From consumed messages to learner calls and outgoing messages.

:class:`MessageHandler` routes each envelope by topic. A sample is decoded, decided by
the learner, and, when queried, its :class:`~streamal.messages.Query` goes to the
*outbox* (published by the service's checkpoint once the decision is durable); its
prediction goes out at once when a predictions topic is set. A label is decoded and
applied; duplicates are ignored (and counted), labels for unknown or expired queries
go to dead letters. A message that cannot be decoded goes to dead letters with its
reason, and processing goes on.

One rule covers every message: whatever goes wrong with it, from decoding to the
model's update, sends it to dead letters with a reason code and changes no state.
Decoding, the :class:`~streamal.messages.Limits` and the learner's checks (a sample id
already pending, a label outside the known classes or of another type) all run before
anything changes; an exception the model raises on one message is caught here too
(``model_error``). Only transport failures (the sink) stop the loop.

Examples
--------
>>> from streamal.core.spec import LearnerSpec, build_learner
>>> from streamal.transports import Envelope, MemoryBroker, MemorySink
>>> broker = MemoryBroker()
>>> learner = build_learner(LearnerSpec("logreg", "entropy", "full", 1.0, seed=1))
>>> handler = MessageHandler(learner, MemorySink(broker), Topics())
>>> handler.handle(Envelope("streamal.samples", 0, 0, None, b'{"id": "a", "x": {"f": 1}}'))
>>> [q[1] for q in handler.outbox]
[b'a']
>>> handler.handle(Envelope("streamal.labels", 0, 0, None, b'{"sample_id": "zz", "y": 1}'))
>>> [env.header("streamal.reason") for env in broker.records("streamal.dead-letters")]
[b'label_unknown']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from streamal.core.learner import Decision, LabelOutcome
from streamal.core.protocol import Learner
from streamal.core.registry import strategy_name
from streamal.exceptions import DecodeError, MessageRejected, TransportError
from streamal.labelling.policy import LabelPolicy
from streamal.messages import Limits, Sample, check_label, check_sample, decode_label, decode_sample
from streamal.service.metrics import Metrics
from streamal.service.outputs import (
    LABEL_DEAD_LETTER_BYTES,
    classify,
    dead_letter,
    prediction_message,
)
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
        The :class:`~streamal.core.protocol.Learner` (an active learner, or a window
        learner whose queries come when a window closes).
    sink
        Where predictions and dead letters go.
    topics
        Topic names.
    metrics
        Metrics to update (a private registry when omitted).
    dead_letter_max_bytes
        Dead letters are cut to this size (see :mod:`streamal.service.outputs`).
    limits
        Bounds on each decoded message (:class:`~streamal.messages.Limits`).
    """

    def __init__(
        self,
        learner: Learner,
        sink: Sink,
        topics: Topics,
        metrics: Metrics | None = None,
        dead_letter_max_bytes: int = 900_000,
        limits: Limits | None = None,
    ) -> None:
        self.learner = learner
        self.sink = sink
        self.topics = topics
        self.metrics = Metrics(CollectorRegistry()) if metrics is None else metrics
        self._count_sample = self.metrics.counts.sample
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.limits = Limits() if limits is None else limits
        #: Queries decided since the last checkpoint, in decision order.
        self.outbox: list[Outgoing] = []
        #: Classes offered, query meta size, unsolicited labels (the factory sets it
        #: from the settings; see :mod:`streamal.labelling.policy`).
        self.policy = LabelPolicy()

    def handle(self, env: Envelope) -> None:
        """Process one consumed message (messages of other topics are ignored)."""
        if env.topic == self.topics.samples:
            self._on_sample(env)
        elif env.topic == self.topics.labels:
            self._on_label(env)

    def _on_sample(self, env: Envelope) -> None:
        learner = self.learner
        try:
            sample = decode_sample(env.value or b"")
            check_sample(sample, self.limits)
            decision = learner.process(sample)
        except DecodeError as err:
            self._dead_letter(env, classify(env.value, err), str(err), "sample")
            return
        except MessageRejected as err:
            self._dead_letter(env, err.code, str(err), "sample")
            return
        except (TransportError, MemoryError):
            raise
        except Exception as err:  # the model or strategy raised on this sample
            self._dead_letter(env, "model_error", f"{type(err).__name__}: {err}", "sample")
            return
        self._count_sample(decision.score, decision.prediction is not None)
        if decision.queried:
            self._queue(sample, decision)
        for chosen, chosen_decision in learner.take_queried():  # window mode
            self._queue(chosen, chosen_decision)
        if self.topics.predictions is not None:
            self.sink.send(
                self.topics.predictions, prediction_message(decision), sample.id.encode()
            )

    def _queue(self, sample: Sample, decision: Decision) -> None:
        """Put the query for a queried arrival in the outbox (sent at the next checkpoint)."""
        learner = self.learner
        policy = self.policy
        value = learner.query_json(
            sample, decision, classes=policy.offered, meta_bytes=policy.meta_bytes
        )
        self.outbox.append((self.topics.queries, sample.id.encode(), value))
        self.metrics.query(strategy_name(learner.strategy), decision.purpose, sample.id)

    def _on_label(self, env: Envelope) -> None:
        try:
            label = decode_label(env.value or b"")
            check_label(label, self.limits)
            refused = self.policy.refuse(label.y)  # learner.classes of the settings
            if refused is not None:
                raise MessageRejected("unknown_class", refused)
            learner = self.learner
            if label.x is not None and self.policy.unsolicited:
                outcome = learner.learn_unsolicited(label)
            else:
                outcome = learner.apply(label)
        except DecodeError as err:
            self._dead_letter(env, classify(env.value, err), str(err), "label")
            return
        except MessageRejected as err:
            self._dead_letter(env, err.code, str(err), "label")
            return
        except (TransportError, MemoryError):
            raise
        except Exception as err:  # raised before the learner changed anything
            self._dead_letter(env, "model_error", f"{type(err).__name__}: {err}", "label")
            return
        self.metrics.label(outcome.value, label.sample_id)
        if outcome in (LabelOutcome.UNKNOWN, LabelOutcome.EXPIRED):
            error = f"label for {outcome.value} query {label.sample_id!r}"
            self._dead_letter(env, f"label_{outcome.value}", error, "label")

    def dead_letter(self, env: Envelope, reason: str, error: str, kind: str) -> None:
        """Send ``env`` to dead letters with ``reason`` and ``error``; count it."""
        self._dead_letter(env, reason, error, kind)

    def _dead_letter(self, env: Envelope, reason: str, error: str, kind: str) -> None:
        limit = self.dead_letter_max_bytes
        if reason.startswith("label_"):  # labels the learner could not use: keep them short
            limit = min(limit, LABEL_DEAD_LETTER_BYTES)
        value, headers = dead_letter(env, reason, error, limit)
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
