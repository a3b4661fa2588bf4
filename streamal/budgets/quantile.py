"""Balanced incremental quantile filter (BIQF).

References
----------
Kottke, D., Krempl, G., & Spiliopoulou, M. (2015). Probabilistic active learning in
datastreams. Advances in Intelligent Data Analysis XIV (IDA 2015), LNCS 9385, 145–157.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from streamal.budgets.base import BudgetManager

__all__ = ["QuantileFilter", "quantile"]


def quantile(ordered: list[float], q: float) -> float:
    """The ``q``-quantile of an ascending list, interpolated linearly.

    The arithmetic is that of :func:`numpy.quantile`'s default ``"linear"`` method
    (including its two-sided interpolation), so the results agree bit for bit.

    Examples
    --------
    >>> quantile([0.0, 1.0, 2.0, 3.0], 0.5)
    1.5
    >>> quantile([4.0], 0.9)
    4.0
    """
    n = len(ordered)
    h = (n - 1) * q
    if h >= n - 1:
        return ordered[-1]
    j = math.floor(h)
    g = h - j
    a, b = ordered[j], ordered[j + 1]
    d = b - a
    return b - d * (1.0 - g) if g >= 0.5 else a + d * g


class QuantileFilter(BudgetManager):
    """Ask when the score reaches the ``(1 − rate)``-quantile of the last ``w`` scores,
    shifted by how far spending lags behind the budget.

    ``θ`` is the ``(1 − rate)``-quantile of the last ``w`` scores (the current one
    included); ``θ_bal = θ − range · (rate · n − spent) / w_tol`` lowers it while labels
    are left over and raises it after overspending, so bursts of high scores are
    absorbed within about ``w_tol`` arrivals. Unlike a fixed threshold it follows the
    score distribution, so it suits strategies whose scores are not calibrated (PAL,
    expected gradient length).

    Parameters
    ----------
    rate
        Target label rate.
    w
        Number of recent scores the quantile is taken over (paper default 100).
    w_tol
        Tolerance window: how many arrivals a deviation from the budget is spread over
        (paper default 50).

    Examples
    --------
    >>> m = QuantileFilter(rate=0.2)
    >>> spent = sum(m.decide((i * 37 % 100) / 100) for i in range(1000))
    >>> 190 <= spent <= 200
    True
    """

    def __init__(
        self,
        rate: float = 0.1,
        w: int = 100,
        w_tol: float = 50,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self.w = w
        self.w_tol = w_tol
        self._history: deque[float] = deque()
        self._sorted: list[float] = []
        self._theta = 1.0

    @property
    def threshold(self) -> float | None:
        """The last balanced threshold ``θ_bal``."""
        return self._theta

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        history, ordered = self._history, self._sorted
        history.append(score)
        bisect.insort(ordered, score)
        if len(history) > self.w:
            del ordered[bisect.bisect_left(ordered, history.popleft())]
        spread = ordered[-1] - ordered[0]
        left = self.rate * self._seen - self._spent
        self._theta = quantile(ordered, 1.0 - self.rate) - spread * (left / self.w_tol)
        return score >= self._theta
