"""Uncertainty sampling: least confidence, margin, entropy.

All three map the model's posterior to ``[0, 1]``: 0 for a certain prediction, 1 for a
uniform posterior or a model that has not learned anything yet (empty posterior).
A posterior over a single class counts as certain.

References
----------
Lewis, D. D., & Gale, W. A. (1994). A sequential algorithm for training text
classifiers. SIGIR '94, 3–12.
Scheffer, T., Decomain, C., & Wrobel, S. (2001). Active hidden Markov models for
information extraction. IDA 2001 (margin, "breaking ties").
Settles, B. (2009). Active learning literature survey. University of Wisconsin–Madison,
Computer Sciences Technical Report 1648.
"""

from __future__ import annotations

import math
from typing import Any

from streamal.strategies.base import Strategy, normalize

__all__ = ["Entropy", "LeastConfidence", "Margin"]

_INF = math.inf
#: ``log C`` for small class counts (computed once; the same values ``math.log`` gives).
_LOG = [0.0, 0.0] + [math.log(c) for c in range(2, 64)]
_INV_LOG2 = 1.0 / _LOG[2]


class LeastConfidence(Strategy):
    """One minus the top class probability, rescaled to ``[0, 1]``.

    ``score = (1 - max p) * C / (C - 1)`` for ``C`` classes, so that a uniform posterior
    scores 1 whatever the number of classes.

    Examples
    --------
    >>> s = LeastConfidence()
    >>> s.score({}, {"a": 0.5, "b": 0.5})
    1.0
    >>> round(s.score({}, {"a": 0.9, "b": 0.1}), 3)
    0.2
    >>> s.score({}, {})
    1.0
    """

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        p = normalize(proba)
        c = len(p)
        if c < 2:
            return 1.0 if c == 0 else 0.0
        return max(0.0, (1.0 - max(p)) * c / (c - 1))


def _binary_gap(proba: dict[Any, float]) -> float | None:
    """``|p(a) − p(b)|`` of a two-class posterior with both values finite and positive.

    The same floats as :func:`~streamal.strategies.base.normalize` and a scan for the
    two largest give, without the lists (binary streams are the common case); ``None``
    when a value is zero, negative or not finite (the general path handles those).
    :meth:`Margin.score` writes it out (one call less per arrival).

    Examples
    --------
    >>> _binary_gap({"a": 0.75, "b": 0.25}), _binary_gap({"a": 2.0, "b": 6.0})
    (0.5, 0.5)
    >>> _binary_gap({"a": 1.0, "b": 0.0}) is None
    True
    """
    a, b = proba.values()
    if not (0.0 < a < _INF and 0.0 < b < _INF):
        return None
    total = a + b
    if total != 1.0:
        a, b = a / total, b / total
    return a - b if a >= b else b - a


class Margin(Strategy):
    """One minus the gap between the two most probable classes ("breaking ties").

    Examples
    --------
    >>> s = Margin()
    >>> round(s.score({}, {"a": 0.6, "b": 0.3, "c": 0.1}), 3)
    0.7
    >>> s.score({}, {"a": 1.0})
    0.0
    """

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        if len(proba) == 2:  # _binary_gap(proba), written out (one call per arrival)
            a, b = proba.values()
            if 0.0 < a < _INF and 0.0 < b < _INF:
                total = a + b
                if total != 1.0:
                    a, b = a / total, b / total
                return 1.0 - (a - b if a >= b else b - a)
        p = normalize(proba)
        if len(p) < 2:
            return 0.0 if p else 1.0
        first = second = 0.0
        for v in p:
            if v > first:
                first, second = v, first
            elif v > second:
                second = v
        return 1.0 - (first - second)


class Entropy(Strategy):
    """Shannon entropy of the posterior divided by ``log C``.

    Examples
    --------
    >>> s = Entropy()
    >>> s.score({}, {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25})
    1.0
    >>> round(s.score({}, {"a": 0.9, "b": 0.1}), 3)
    0.469
    """

    def score(self, x: dict[str, Any], proba: dict[Any, float], model: Any = None) -> float:
        log = math.log
        if len(proba) == 2:  # binary streams: the same arithmetic without the lists
            a, b = proba.values()
            if 0.0 < a < 1.0 and 0.0 < b < 1.0:  # the usual case: both terms are > 0
                total = a + b
                if total != 1.0:
                    a, b = a / total, b / total
                h = -(a * log(a) + b * log(b)) * _INV_LOG2
                return h if h < 1.0 else 1.0
            a = a if 0.0 < a < _INF else 0.0
            b = b if 0.0 < b < _INF else 0.0
            total = a + b
            if total <= 0.0:
                a = b = 0.5
            elif total != 1.0:
                a, b = a / total, b / total
            h = 0.0
            if a > 0.0:
                h += a * log(a)
            if b > 0.0:
                h += b * log(b)
            return min(1.0, max(0.0, -h / _LOG[2]))
        p = normalize(proba)
        c = len(p)
        if c < 2:
            return 1.0 if c == 0 else 0.0
        h = 0.0
        for v in p:
            if v > 0.0:
                h += v * log(v)
        h = -h
        return min(1.0, max(0.0, h / (_LOG[c] if c < 64 else log(c))))
