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

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from streamal.core.learner import LearnerStats
from streamal.core.protocol import Learner
from streamal.service.counts import MessageCounts

__all__ = ["ESTIMATES", "LEARNER_EVENTS", "Metrics"]

#: The learner's counters mirrored by ``streamal_learner_events{event=...}``.
LEARNER_EVENTS = ("seen", "queried", "applied", "duplicate", "unknown", "expired", "evicted")
# Scores live in [0, 1]: ten equal buckets show where the threshold cuts.
_SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))
# One batch takes about a millisecond per hundred samples for linear models and up to
# seconds for large ensembles.
_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Annotators answer in seconds (a person at a screen) to days (a lab test, a chargeback).
_DELAY_BUCKETS = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    3 * 3600.0,
    6 * 3600.0,
    12 * 3600.0,
    86400.0,
    2 * 86400.0,
    4 * 86400.0,
    7 * 86400.0,
)
#: Accuracy estimates exported by ``streamal_accuracy_ratio{estimate=...}``.
ESTIMATES = ("queried", "audit", "ipw")
#: Samples covered (at least) by ``streamal_budget_realized_window_ratio``.
RATE_WINDOW = 1000
# Query times kept to measure label delays (the oldest are forgotten first).
_MAX_TRACKED = 100_000
TopicPartition = tuple[str, int]
# A checkpoint pickles the model and the pending store: milliseconds to tens of seconds.
_CHECKPOINT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@runtime_checkable
class _Highwater(Protocol):
    """A source that knows the end offset of a partition (``None`` when unknown)."""

    def highwater(self, partition: TopicPartition) -> int | None: ...


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
        #: Messages consumed, samples, predictions and scores: plain counters on the
        #: per-sample path, exported at each scrape.
        self.counts = MessageCounts(_SCORE_BUCKETS)
        registry.register(self.counts)
        self._count_query = self.counts.query
        self.labels = counter("labels_total", "Labels received, by outcome.", "outcome")
        self.dead_letters = counter(
            "dead_letters_total", "Messages sent to dead letters.", "reason"
        )
        self.decode_failures = counter(
            "decode_failures_total", "Messages that failed to decode.", "kind"
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
        self.lag = gauge(
            "consumer_lag", "Messages in the partition not yet consumed.", "topic", "partition"
        )
        self.realized_window = gauge(
            "budget_realized_window_ratio",
            f"Labels bought per sample over (at least) the last {RATE_WINDOW} samples.",
        )
        self.audit_share = gauge("budget_audit_ratio", "Share of the budget for the audit slice.")
        self.audit_refused = gauge(
            "audit_refused",
            "Audits a capacity cap refused (the audit estimate is unbiased while this is 0).",
        )
        self.warm_start_labels = gauge(
            "warm_start_labels", "Labels the model learned from its warm start, charged or not."
        )
        self.refused = counter(
            "budget_refused_total",
            "Arrivals a hard cap closed to queries while the budget left a label.",
        )
        self.expired = counter(
            "expired_queries_total", "Queries closed without a label, by reason.", "reason"
        )
        self.updates = counter("model_updates_total", "Labels the model learned from.")
        self.accuracy = gauge(
            "accuracy_ratio",
            "Prequential accuracy over the last 1000 labels of each kind: queried (biased), "
            "audit (unbiased), ipw (inverse-propensity weighted).",
            "estimate",
        )
        self.accuracy_labels = gauge(
            "accuracy_labels", "Labels behind each accuracy estimate, since the start.", "estimate"
        )
        self.label_delay = Histogram(
            "streamal_label_delay_seconds",
            "Wall time from a query's decision to its (applied) label.",
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        for reason in ("ttl", "evicted"):
            self.expired.labels(reason)
        # Present from the start, so that "no label applied" is a 0, not a missing series.
        for outcome in ("applied", "duplicate", "unknown", "expired"):
            self.labels.labels(outcome)
        self._asked: OrderedDict[str, float] = OrderedDict()
        self._history: deque[tuple[int, int]] = deque()
        self._last: dict[str, int] | None = None
        self._lag_source: object = None
        self._positions: Callable[[], Mapping[TopicPartition, int]] | None = None

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"streamal_{name}", doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(f"streamal_{name}", doc, labels, registry=self.registry)

    # -- per message ---------------------------------------------------------------
    def sample(self, score: float, predicted: bool) -> None:
        """A sample was decided."""
        self.counts.sample(score, predicted)

    def query(self, strategy: str, purpose: str, sample_id: str | None = None) -> None:
        """A query was issued (its time is kept to measure the label delay)."""
        self._count_query(strategy, purpose)
        if sample_id is not None:
            asked = self._asked
            asked[sample_id] = time.time()
            if len(asked) > _MAX_TRACKED:
                asked.popitem(last=False)

    def label(self, outcome: str, sample_id: str | None = None) -> None:
        """A label was received and handed to the learner."""
        self.counts.message("label")
        self.labels.labels(outcome).inc()
        if sample_id is not None:
            asked = self._asked.pop(sample_id, None)
            if asked is not None and outcome == "applied":
                self.label_delay.observe(max(0.0, time.time() - asked))

    def dead_letter(self, reason: str, kind: str) -> None:
        """A message of ``kind`` (``sample`` or ``label``) went to dead letters."""
        self.dead_letters.labels(reason).inc()
        if not reason.startswith("label_"):
            self.counts.message(kind)
            self.decode_failures.labels(kind).inc()

    # -- per batch -----------------------------------------------------------------
    def batch(self, seconds: float, learner: Learner) -> None:
        """A batch was processed; refresh the learner's gauges and the consumer lag."""
        self.batch_seconds.observe(seconds)
        self.observe_learner(learner)
        self.observe_lag()

    def track_lag(
        self, source: object, positions: Callable[[], Mapping[TopicPartition, int]]
    ) -> None:
        """Export the lag of ``positions()`` (next offsets) behind ``source.highwater``.

        Sources without a ``highwater`` method (the in-memory double) export no lag.
        """
        self._lag_source, self._positions = source, positions

    def observe_lag(self) -> None:
        """Refresh ``streamal_consumer_lag`` (needs :meth:`track_lag` and a highwater)."""
        source = self._lag_source
        if not isinstance(source, _Highwater) or self._positions is None:
            return
        highwater = source.highwater
        for (topic, partition), position in list(self._positions().items()):
            end = highwater((topic, partition))
            if end is not None:
                self.lag.labels(topic, str(partition)).set(max(0, end - position))

    def observe_learner(self, learner: Learner) -> None:
        """Copy the learner's state into the gauges (window learners included)."""
        stats = learner.stats
        self.pending.set(len(learner.pending))
        self.realized.set(stats.queried / stats.seen if stats.seen else 0.0)
        self.target.set(learner.target_rate)
        threshold = learner.threshold
        self.threshold.set(float("nan") if threshold is None else threshold)
        self.model_version.set(learner.model_version)
        events = (
            stats.seen,
            stats.queried,
            stats.applied,
            stats.duplicate,
            stats.unknown,
            stats.expired,
            stats.evicted,
        )
        for event, value in zip(LEARNER_EVENTS, events, strict=True):
            self.learner_events.labels(event).set(value)
        self._observe_rate(stats.seen, stats.queried)
        self._observe_counts(stats, learner.model_version, learner.budget.refused)
        self.audit_share.set(learner.audit)
        self.audit_refused.set(learner.audit_refused)
        self.warm_start_labels.set(stats.warm_start)
        evaluation = learner.evaluation
        means = {"queried": evaluation.queried, "audit": evaluation.audit, "ipw": evaluation.ipw}
        for name in ESTIMATES:
            mean = means[name]
            recent = mean.window_mean
            self.accuracy.labels(name).set(math.nan if recent is None else recent)
            self.accuracy_labels.labels(name).set(mean.count)

    def _observe_rate(self, seen: int, queried: int) -> None:
        history = self._history
        if history and seen < history[-1][0]:  # a restored snapshot: start over
            history.clear()
        history.append((seen, queried))
        while len(history) > 2 and seen - history[1][0] >= RATE_WINDOW:
            history.popleft()
        first_seen, first_queried = history[0]
        if seen > first_seen:
            self.realized_window.set((queried - first_queried) / (seen - first_seen))

    def _observe_counts(self, stats: LearnerStats, version: int, refused: int) -> None:
        # Counters advance by what the learner did since the last look; the first look
        # (after a restore) only sets the baseline.
        now = {
            "ttl": stats.expired_queries,
            "evicted": stats.evicted,
            "updates": version,
            "refused": refused,
        }
        last, self._last = self._last, now
        if last is None:
            return
        for reason in ("ttl", "evicted"):
            self.expired.labels(reason).inc(max(0, now[reason] - last[reason]))
        self.updates.inc(max(0, now["updates"] - last["updates"]))
        self.refused.inc(max(0, now["refused"] - last["refused"]))

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
