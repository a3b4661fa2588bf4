"""Progress of ``streamal demo``: what the monitor reads from the topics and /metrics.

:class:`ProgressTracker` turns the predictions, queries and labels topics into a
:class:`DemoProgress`: prequential accuracy against the true labels (each prediction is
made before the sample's label can be learned; a missing prediction counts as wrong),
distinct queries, labels answered and how many samples after their query they came.
The service's own counters (labels learned, model version) come from its ``/metrics``.

Examples
--------
>>> from streamal.transports import Envelope
>>> topics = {"predictions": "p", "queries": "q", "labels": "l"}
>>> tracker = ProgressTracker(DemoProgress(), topics, {"1": True, "2": False})
>>> first = b'{"sample_id": "1", "prediction": true, "queried": true}'
>>> tracker.observe(Envelope("p", 0, 0, b"1", first))
>>> tracker.observe(Envelope("p", 0, 1, b"2", b'{"sample_id": "2", "prediction": true}'))
>>> tracker.observe(Envelope("q", 0, 0, b"1", b"{}"))
>>> tracker.observe(Envelope("l", 0, 0, b"1", b"{}"))
>>> p = tracker.progress
>>> p.accuracy, p.label_rate, p.labels, p.label_delay
(0.5, 0.5, 1, 1.0)
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamal.transports.base import Envelope

__all__ = ["DemoProgress", "ProgressTracker", "scrape"]


@dataclass
class DemoProgress:
    """Where the demo stands; ``accuracy`` is prequential over every decided sample."""

    total: int = 0
    produced: int = 0
    decided: int = 0
    correct: int = 0
    queries: int = 0
    labels: int = 0
    learned: int = 0
    model_version: int = 0
    delay_sum: int = 0
    delayed: int = 0
    elapsed: float = 0.0
    phase: str = "starting"
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.decided if self.decided else 0.0

    @property
    def label_rate(self) -> float:
        return self.queries / self.decided if self.decided else 0.0

    @property
    def label_delay(self) -> float:
        """Mean samples decided between a query and the arrival of its label."""
        return self.delay_sum / self.delayed if self.delayed else 0.0


def scrape(url: str, timeout: float = 2.0) -> dict[str, float]:
    """Metrics at ``url`` as ``{'name{label="v"}': value}`` (empty if unreachable)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
    return out


class ProgressTracker:
    """Updates a :class:`DemoProgress` from monitored envelopes and scraped metrics.

    Parameters
    ----------
    progress
        The progress to update in place.
    topics
        Topic names by role (``predictions``, ``queries``, ``labels``).
    truth
        The true label of each sample id.
    """

    def __init__(
        self, progress: DemoProgress, topics: Mapping[str, str], truth: Mapping[str, Any]
    ) -> None:
        self.progress = progress
        self.topics = topics
        self.truth = truth
        self._queries: set[bytes | None] = set()
        self._asked_at: dict[str, int] = {}  # sample id -> samples decided when queried
        self._received = 0.0

    def observe(self, env: Envelope) -> None:
        """Count one message of the monitored topics."""
        p = self.progress
        if env.topic == self.topics["predictions"]:
            pred = json.loads(env.value or b"{}")
            p.decided += 1
            p.correct += pred.get("prediction") == self.truth.get(pred.get("sample_id"))
            if pred.get("queried"):
                self._asked_at[pred["sample_id"]] = p.decided
        elif env.topic == self.topics["queries"]:
            self._queries.add(env.key)  # re-published queries keep their key
            p.queries = len(self._queries)
        elif env.topic == self.topics["labels"]:
            p.labels += 1
            asked = self._asked_at.pop((env.key or b"").decode(), None)
            if asked is not None:
                p.delay_sum += p.decided - asked
                p.delayed += 1

    def observe_metrics(self, metrics: dict[str, float]) -> None:
        """Take the service's counters from a :func:`scrape` (ignored when empty)."""
        if not metrics:
            return
        p = self.progress
        p.metrics = metrics
        p.learned = int(metrics.get('streamal_learner_events{event="applied"}', 0))
        p.model_version = int(metrics.get("streamal_model_version", 0))
        self._received = sum(
            v for k, v in metrics.items() if k.startswith("streamal_labels_total{")
        )

    def settled(self, oracle_waiting: int) -> bool:
        """Every sent sample decided, every query answered and its label received."""
        p = self.progress
        return (
            p.decided >= p.produced
            and oracle_waiting == 0
            and p.labels >= p.queries
            and self._received >= p.labels
        )
