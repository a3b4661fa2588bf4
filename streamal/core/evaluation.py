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
  labels whose query probability ``p`` is known: each counts ``1 / p`` (Horvitz &
  Thompson 1952, "A generalization of sampling without replacement from a finite
  universe", JASA 47; Hájek 1971). Unbiased only when every arrival had ``p > 0``:
  with an audit slice, every arrival has ``p ≥ 1/K`` and every query logs its ``p``,
  so the estimate uses the strategy's labels and the audit's together; without one,
  only managers that report their probability (random, selective sampling) give it.

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
from collections.abc import Sequence
from itertools import repeat
from operator import mul
from typing import Any

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
        # weight * value and weight of the last ``window`` observations; the window
        # sums are taken when read (a scrape), not on every observation.
        self._recent_values: deque[float] = deque(maxlen=window)
        self._recent_weights: deque[float] = deque(maxlen=window)

    def add(self, value: float, weight: float = 1.0) -> None:
        """Add ``value`` with ``weight``."""
        self.extend([value], [weight])

    def extend(self, values: Sequence[float], weights: Sequence[float] | None = None) -> None:
        """Add many ``values`` at once (``weights``: one per value, default 1)."""
        n = len(values)
        if weights is None:
            weighted: Sequence[float] = values
            self._weight += n
            self._recent_weights.extend(repeat(1.0, n))
        else:
            weighted = list(map(mul, values, weights))
            self._weight += sum(weights)
            self._recent_weights.extend(weights)
        self.count += n
        self._total += sum(weighted)
        self._recent_values.extend(weighted)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Means pickled by earlier versions kept (weighted, weight) pairs and running
        # window sums.
        if "_recent" in state:
            pairs = state.pop("_recent")
            state.pop("_recent_total", None)
            state.pop("_recent_weight", None)
            window = state["window"]
            state["_recent_values"] = deque((t for t, _ in pairs), maxlen=window)
            state["_recent_weights"] = deque((w for _, w in pairs), maxlen=window)
        self.__dict__.update(state)

    @property
    def mean(self) -> float | None:
        """The weighted mean since the start (``None`` before the first observation)."""
        return self._total / self._weight if self._weight > 0 else None

    @property
    def window_mean(self) -> float | None:
        """The weighted mean of the last ``window`` observations."""
        weight = sum(self._recent_weights)
        return sum(self._recent_values) / weight if weight > 0 else None


class LabelEvaluation:
    """Queried, audit and inverse-propensity-weighted accuracy of applied labels.

    Parameters
    ----------
    window
        Labels of each kind covered by the windowed estimates.
    """

    #: Applied labels kept raw before they are folded into the means: observing a label
    #: is one append on the learner's hot path; the means are brought up to date when
    #: read, or every this many labels.
    FOLD_EVERY = 1024

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._queried = RunningMean(window)
        self._audit = RunningMean(window)
        self._ipw = RunningMean(window)
        self._raw: list[tuple[str, bool, float | None]] = []

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Evaluations pickled before the raw buffer kept their means public.
        for name in ("queried", "audit", "ipw"):
            if name in state:
                state[f"_{name}"] = state.pop(name)
        state.setdefault("_raw", [])
        self.__dict__.update(state)

    def observe(self, purpose: str, correct: bool, propensity: float | None) -> None:
        """One applied label: was the prediction made at query time right?

        ``propensity`` is the probability with which the sample was queried, if known.
        """
        raw = self._raw
        raw.append((purpose, correct, propensity))
        if len(raw) >= self.FOLD_EVERY:
            self._fold()

    def extend(
        self,
        purposes: Sequence[str],
        hits: Sequence[bool],
        propensities: Sequence[float | None],
    ) -> None:
        """Many applied labels at once, in order (the arguments of :meth:`observe`)."""
        self._fold()
        if purposes:
            self._add(purposes, hits, propensities)

    def _fold(self) -> None:
        raw, self._raw = self._raw, []
        if raw:
            self._add(*zip(*raw, strict=True))

    def _add(
        self,
        purposes: Sequence[str],
        hits: Sequence[bool],
        propensities: Sequence[float | None],
    ) -> None:
        # Every label whose inclusion probability is known counts in the IPW estimate,
        # audit labels too (with an audit slice the learner logs it for every query).
        weights = [1.0 / p for p in propensities if p is not None and p > 0.0]
        if len(weights) == len(hits):
            self._ipw.extend(hits, weights)
        elif weights:
            known = [c for c, p in zip(hits, propensities, strict=True) if p is not None and p > 0]
            self._ipw.extend(known, weights)
        if "audit" in purposes:
            raw = list(zip(purposes, hits, strict=True))
            self._audit.extend([c for purpose, c in raw if purpose == "audit"])
            hits = [c for purpose, c in raw if purpose != "audit"]
            if not hits:
                return
        self._queried.extend(hits)

    @property
    def queried(self) -> RunningMean:
        """Accuracy on the strategy's own queries (biased)."""
        self._fold()
        return self._queried

    @property
    def audit(self) -> RunningMean:
        """Accuracy on the audit slice (unbiased)."""
        self._fold()
        return self._audit

    @property
    def ipw(self) -> RunningMean:
        """Inverse-propensity-weighted accuracy on the strategy's queries."""
        self._fold()
        return self._ipw

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
