"""Score-blind budget managers: coin flips, every label, periodic, the windowed estimate.

These are baselines: they ignore the score, so any gain over them is the strategy's.
"""

from __future__ import annotations

import math
import random

from streamal.budgets.base import BudgetManager
from streamal.budgets.estimate import EstimatedBudget

__all__ = ["EstimatedGreedy", "FullBudget", "Periodic", "RandomBudget"]


class RandomBudget(BudgetManager):
    """Label a uniformly random ``rate`` share of arrivals, whatever their score (seeded).

    Arrivals are taken in blocks of ``window``; in each block ``rate · window`` positions
    are drawn uniformly without replacement. A drawn position that the guards refuse
    (the cumulative promise lags the draw) is owed and paid at the next arrival the
    guards allow, so the realized rate meets the target instead of falling short, and
    never exceeds it (plain coin flips overshoot by chance: scikit-activeml's random
    sampling ends at up to 1.25 × target). The choice never depends on the sample, so
    the labelled set is an unbiased sample of the stream.

    Examples
    --------
    >>> m = RandomBudget(rate=0.1, seed=42)
    >>> sum(m.decide(0.0) for _ in range(10_000))
    1000
    """

    def __init__(self, rate: float = 0.1, window: int = 1000, seed: int | None = None) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self._rng = random.Random(seed)
        self.last_probability = rate
        # A block holds at least one label, so tiny rates still draw positions.
        self._block = max(window, math.ceil(1.0 / rate))
        self._per_block = max(1, round(rate * self._block))
        self._plan: set[int] = set()
        self._owed = 0

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        position = (self._seen - 1) % self._block
        if position == 0:
            self._plan = set(self._rng.sample(range(self._block), self._per_block))
        if position in self._plan:
            self._owed += 1
        if allowed and self._owed:
            self._owed -= 1
            return True
        return False


class FullBudget(BudgetManager):
    """Ask every arrival: the full-label baseline.

    Examples
    --------
    >>> m = FullBudget()
    >>> all(m.decide(0.0) for _ in range(5))
    True
    """

    def __init__(self, rate: float = 1.0, window: int = 1000, seed: int | None = None) -> None:
        super().__init__(rate=1.0, window=window, seed=seed)
        self.last_probability = 1.0

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        return True


class Periodic(BudgetManager):
    """Ask as soon as a whole label of budget has accrued: every ``1 / rate``-th arrival.

    The cumulative guard already allows exactly ``floor(rate · n)`` labels after ``n``
    arrivals, so this manager only has to want every label it is allowed
    (scikit-activeml's ``PeriodicSampling``).

    Examples
    --------
    >>> m = Periodic(rate=0.25)
    >>> [m.decide(0.0) for _ in range(8)]
    [False, False, False, True, False, False, False, True]
    """

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        return True


class EstimatedGreedy(BudgetManager):
    """Ask whenever Žliobaitė's windowed spending estimate is below the rate.

    This is the budget estimate the threshold managers gate on (see
    :class:`~streamal.budgets.estimate.EstimatedBudget`), used alone and score-blind:
    a baseline that shows what the estimate does without any strategy.

    Parameters
    ----------
    budget_window
        Window ``w`` of the estimate.

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B., & Holmes, G. (2014). Active learning with
    drifting streaming data. IEEE TNNLS, 25(1), 27–39.

    Examples
    --------
    >>> m = EstimatedGreedy(rate=0.1)
    >>> sum(m.decide(0.0) for _ in range(1000))
    100
    """

    def __init__(
        self,
        rate: float = 0.1,
        budget_window: int = 100,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self.budget_window = budget_window
        self._estimate = EstimatedBudget(rate, budget_window)

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        query = allowed and self._estimate.available()
        self._estimate.update(query)
        return query
