"""Accuracy estimates from the labels an active learner receives.

Labels arrive only for queried samples, so the model's accuracy on them is a biased
estimate of its accuracy on the stream: a strategy queries the samples the model is
unsure about, where it is wrong more often. :class:`LabelEvaluation` keeps three
prequential estimates (the prediction made when the sample was queried, compared with
the label that answers it):

* **queried**: plain accuracy on the labels of the strategy's own queries
  (``purpose="learn"``); biased, usually low;
* **audit**: accuracy on the audit slice (``purpose="audit"``), samples drawn uniformly
  at random, so an unbiased estimate of the accuracy on the whole stream;
* **ipw**: the inverse-propensity-weighted (self-normalised, Hájek) accuracy on the
  strategy's queries whose query probability ``p`` is known: each counts ``1 / p``
  (Horvitz & Thompson 1952, "A generalization of sampling without replacement from a
  finite universe", JASA 47; Hájek 1971). Unbiased only when every arrival had ``p > 0``.

Each estimate is kept since the start and over the last ``window`` labels of its kind.

Examples
--------
>>> ev = LabelEvaluation(window=2)
>>> ev.observe("learn", False, None)
>>> ev.observe("learn", True, 0.5)
>>> ev.observe("audit", True, 0.01)
>>> ev.queried.mean, ev.audit.mean, ev.ipw.mean
(0.5, 1.0, 1.0)
>>> ev.summary()["audit_labels"]
1
"""

from __future__ import annotations

from collections import deque

__all__ = ["LabelEvaluation", "RunningMean"]


class RunningMean:
    """A weighted mean since the start and over the last ``window`` observations.

    Parameters
    ----------
    window
        How many recent observations :attr:`window_mean` covers.

    Examples
    --------
    >>> m = RunningMean(window=2)
    >>> for value in (1.0, 0.0, 0.0):
    ...     m.add(value)
    >>> round(m.mean, 3), m.window_mean, m.count
    (0.333, 0.0, 3)
    >>> RunningMean().mean is None
    True
    """

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self.count = 0
        self._total = 0.0
        self._weight = 0.0
        self._recent: deque[tuple[float, float]] = deque()
        self._recent_total = 0.0
        self._recent_weight = 0.0

    def add(self, value: float, weight: float = 1.0) -> None:
        """Add ``value`` with ``weight``."""
        self.count += 1
        self._total += weight * value
        self._weight += weight
        self._recent.append((weight * value, weight))
        self._recent_total += weight * value
        self._recent_weight += weight
        if len(self._recent) > self.window:
            old_total, old_weight = self._recent.popleft()
            self._recent_total -= old_total
            self._recent_weight -= old_weight
            if not self._recent:  # pragma: no cover - window >= 1 keeps one item
                self._recent_total = self._recent_weight = 0.0
        if self.count % 10_000 == 0:  # bound floating-point drift of the running sums
            self._recent_total = sum(t for t, _ in self._recent)
            self._recent_weight = sum(w for _, w in self._recent)

    @property
    def mean(self) -> float | None:
        """The weighted mean since the start (``None`` before the first observation)."""
        return self._total / self._weight if self._weight > 0 else None

    @property
    def window_mean(self) -> float | None:
        """The weighted mean of the last ``window`` observations."""
        return self._recent_total / self._recent_weight if self._recent_weight > 0 else None


class LabelEvaluation:
    """Queried, audit and inverse-propensity-weighted accuracy of applied labels.

    Parameters
    ----------
    window
        Labels of each kind covered by the windowed estimates.
    """

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self.queried = RunningMean(window)
        self.audit = RunningMean(window)
        self.ipw = RunningMean(window)

    def observe(self, purpose: str, correct: bool, propensity: float | None) -> None:
        """One applied label: was the prediction made at query time right?

        ``propensity`` is the probability with which the sample was queried, if known.
        """
        hit = 1.0 if correct else 0.0
        if purpose == "audit":
            self.audit.add(hit)
            return
        self.queried.add(hit)
        if propensity is not None and propensity > 0.0:
            self.ipw.add(hit, 1.0 / propensity)

    def summary(self) -> dict[str, float | int | None]:
        """The estimates since the start, with the label counts behind them."""
        return {
            "queried_accuracy": self.queried.mean,
            "audit_accuracy": self.audit.mean,
            "ipw_accuracy": self.ipw.mean,
            "queried_labels": self.queried.count,
            "audit_labels": self.audit.count,
            "ipw_labels": self.ipw.count,
        }
