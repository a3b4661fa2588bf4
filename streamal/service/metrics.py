"""Prometheus metrics of the service, on an injected registry (never the global one).

Names follow Prometheus conventions: prefix ``streamal_``, base units, ``_total`` for
counters, ratios in ``[0, 1]``, no per-sample labels. Counters count what *this process*
did; the ``streamal_learner_*`` gauges mirror the learner's own counters, which live in
the snapshot and so continue across restarts.

Examples
--------
>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = Metrics(registry)
>>> metrics.dead_letter("invalid_json", "sample")
>>> registry.get_sample_value("streamal_dead_letters_total", {"reason": "invalid_json"})
1.0
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

__all__ = ["LEARNER_EVENTS", "Metrics"]

#: The learner's counters mirrored by ``streamal_learner_events{event=...}``.
LEARNER_EVENTS = ("seen", "queried", "applied", "duplicate", "unknown", "expired", "evicted")
# Scores live in [0, 1]: ten equal buckets show where the threshold cuts.
_SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))
# One batch takes about a millisecond per hundred samples for linear models and up to
# seconds for large ensembles.
_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A checkpoint pickles the model and the pending store: milliseconds to tens of seconds.
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics, registered on ``registry``.

    Parameters
    ----------
    registry
        Where the metrics are registered; tests pass a private one.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        counter, gauge = self._counter, self._gauge
        self.messages = counter("messages_consumed_total", "Messages consumed.", "kind")
        self.samples = counter("samples_total", "Samples decided (scored).")
        self.predictions = counter("predictions_total", "Samples that got a prediction.")
        self.queries = counter("queries_total", "Label queries issued.", "strategy", "purpose")
        self.labels = counter("labels_total", "Labels received, by outcome.", "outcome")
        self.dead_letters = counter(
            "dead_letters_total", "Messages sent to dead letters.", "reason"
        )
        self.decode_failures = counter(
            "decode_failures_total", "Messages that failed to decode.", "kind"
        )
        self.scores = Histogram(
            "streamal_score", "Informativeness scores.", buckets=_SCORE_BUCKETS, registry=registry
        )
        self.batch_seconds = Histogram(
            "streamal_batch_duration_seconds",
            "Time to process one polled batch.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.pending = gauge("pending_queries", "Queries waiting for a label.")
        self.realized = gauge("budget_realized_ratio", "Labels bought per sample since the start.")
        self.target = gauge("budget_target_ratio", "Target label rate.")
        self.threshold = gauge("budget_threshold", "Threshold of threshold-based managers.")
        self.model_version = gauge("model_version", "Model updates since the model was created.")
        self.learner_events = gauge(
            "learner_events",
            "The learner's own counters (kept in snapshots, so they span restarts).",
            "event",
        )
        self.checkpoint_seconds = Histogram(
            "streamal_checkpoint_duration_seconds",
            "Time of a checkpoint: flush, snapshot, commit.",
            buckets=_CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.checkpoint_last = gauge(
            "checkpoint_last_success_timestamp_seconds",
            "Unix time of the last successful checkpoint.",
        )
        self.checkpoint_failures = counter(
            "checkpoint_failures_total", "Checkpoints that did not complete."
        )
        self.offset_resets = counter(
            "offset_resets_total",
            "Partitions restarted from the beginning because their topic was re-created.",
            "kind",
        )
        self.broker_up = gauge("broker_up", "1 if the broker answered the last probe.")
        self.build = Info("streamal_build", "Version and configuration.", registry=registry)

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"streamal_{name}", doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"streamal_{name}", doc, labels, registry=self.registry)

    # -- per message ---------------------------------------------------------------
    def sample(self, score: float, predicted: bool) -> None:
        """A sample was decided."""
        self.messages.labels("sample").inc()
        self.samples.inc()
        self.scores.observe(score)
        if predicted:
            self.predictions.inc()

    def query(self, strategy: str, purpose: str) -> None:
        """A query was issued."""
        self.queries.labels(strategy, purpose).inc()

    def label(self, outcome: str) -> None:
        """A label was received and handed to the learner."""
        self.messages.labels("label").inc()
        self.labels.labels(outcome).inc()

    def dead_letter(self, reason: str, kind: str) -> None:
        """A message of ``kind`` (``sample`` or ``label``) went to dead letters."""
        self.dead_letters.labels(reason).inc()
        if not reason.startswith("label_"):
            self.messages.labels(kind).inc()
            self.decode_failures.labels(kind).inc()

    # -- per batch -----------------------------------------------------------------
    def batch(self, seconds: float, learner: Any) -> None:
        """A batch was processed; refresh the learner's gauges."""
        self.batch_seconds.observe(seconds)
        self.observe_learner(learner)

    def observe_learner(self, learner: Any) -> None:
        """Copy the learner's state into the gauges (window learners included)."""
        stats = learner.stats
        self.pending.set(len(learner.pending))
        self.realized.set(stats.queried / stats.seen if stats.seen else 0.0)
        budget = getattr(learner, "budget", None) or learner.learner.budget
        self.target.set(getattr(learner, "_rate", budget.rate))
        threshold = budget.threshold if hasattr(learner, "budget") else None
        self.threshold.set(float("nan") if threshold is None else threshold)
        self.model_version.set(learner.model_version)
        for event in LEARNER_EVENTS:
            self.learner_events.labels(event).set(getattr(stats, event))

    # -- lifecycle -----------------------------------------------------------------
    def checkpoint(self, seconds: float) -> None:
        """A checkpoint completed."""
        self.checkpoint_seconds.observe(seconds)
        self.checkpoint_last.set(time.time())

    def checkpoint_failed(self) -> None:
        """A checkpoint was abandoned (it is retried later)."""
        self.checkpoint_failures.inc()

    def offset_reset(self, kind: str) -> None:
        """A partition of ``kind`` restarted from its beginning."""
        self.offset_resets.labels(kind).inc()

    def broker(self, up: bool) -> None:
        """The result of a broker probe."""
        self.broker_up.set(1.0 if up else 0.0)
