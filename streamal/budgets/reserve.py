"""Reserve quantile: ask for the arrivals that rank high among recent scores, holding a
small reserve of saved labels so that the guards rarely refuse an informative arrival.

References
----------
Kottke, D., Krempl, G., & Spiliopoulou, M. (2015). Probabilistic active learning in
datastreams. IDA 2015, LNCS 9385, 145–157 (the balanced incremental quantile filter,
whose quantile-of-recent-scores idea this manager keeps).
Žliobaitė, I., Bifet, A., Pfahringer, B., & Holmes, G. (2014). Active learning with
drifting streaming data. IEEE TNNLS, 25(1), 27–39 (a random share of the budget spent
regardless of the score, to notice changes where the model is confidently wrong).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left as _bisect_left
from bisect import insort as _insort
from collections import deque
from typing import Any

from streamal.budgets.base import BudgetManager
from streamal.budgets.quantile import quantile

__all__ = ["ReserveQuantile"]


class ReserveQuantile(BudgetManager):
    """Ask when the score ranks in the top share ``p`` of the last ``w`` scores, where
    ``p`` follows the labels saved so far.

    The guards of :class:`~streamal.budgets.base.BudgetManager` allow a label only while
    ``spent + 1 <= rate · n``. A threshold rule that wants more often than that is cut
    to "the first arrival after the guard reopens" (periodic sampling). This manager
    instead reads what the guard allows: the saved allowance ``a = rate · n − spent``
    (labels it may still spend) and asks for an arrival when its score reaches the
    ``(1 − p)``-quantile of the last ``w`` scores, with::

        p = rate · a / target,    target = max(1, rate · reserve)

    so it is choosy (``p`` small) while little is saved, and as the saving grows past
    ``target`` it takes a larger share of the arrivals. In equilibrium it holds about
    ``target`` labels in reserve, which it spends on a run of informative arrivals
    instead of refusing them. The saving is bounded: allowance beyond
    ``cap = max(2, rate · save)`` labels is forfeited (not carried forward), so a long
    confident stretch cannot turn into a burst later; forfeited labels are counted in
    :attr:`forfeited`. The guards still hold every label: ``spent <= floor(rate · n)``
    at every ``n`` and at most ``floor(rate · window)`` labels in any ``window``
    consecutive arrivals.

    With ``explore > 0``, a share ``explore`` of the budget goes to arrivals drawn at
    random whatever their score (each arrival with probability ``explore · rate``; a
    draw the guards refuse is owed to the next arrival they allow), so regions where the
    model is confidently wrong are labelled too.

    Parameters
    ----------
    rate
        Target label rate.
    w
        Number of recent scores the quantile is taken over.
    reserve
        Arrivals' worth of budget held in reserve: ``target = rate · reserve`` labels
        (at least 1). A larger reserve is choosier (on uniform scores at rate 0.1 the
        mean queried percentile is 0.80 with 10, 0.90 with 100) but holds labels back;
        10 measured best on the label-efficiency suite (docs/benchmarks.md).
    save
        Arrivals' worth of budget that may be saved at most: ``cap = rate · save``
        labels (at least 2); the rest is forfeited.
    explore
        Share of the budget spent on random arrivals, in ``[0, 1)`` (default 0.25,
        measured against 0 and 0.1 in docs/benchmarks.md).
    initial
        Initial allowance, in arrivals: the budget of the first ``initial`` arrivals,
        ``k = floor(rate · initial)`` labels, may be spent from the first arrival on
        (cold start: the first labels are worth the most). ``k`` is capped at
        ``floor(rate · window)``, so the sliding-window promise is unchanged.
    repay
        Arrivals over which the initial allowance is paid back (at least ``initial``;
        default ``initial``). The cumulative promise becomes ``spent <= floor(A(n))``
        with ``A(n) = rate · n + k · (1 − n / repay)`` for ``n < repay`` and
        ``rate · n`` from arrival ``repay`` on, except that with ``repay == initial``
        the advance stands whole, ``A(n) = max(rate · n, k)``, until arrival
        ``initial``. A ``repay`` longer than ``initial`` keeps labels coming after the
        first burst (at ``rate · (1 − initial / repay)`` per arrival until arrival
        ``repay``) instead of leaving the stretch after it without any: on a stream
        whose neighbouring arrivals are alike (Elec2) the burst alone buys one day's
        worth of near-duplicates. :meth:`promised` gives ``floor(A(n))``.
    window
        Length of the guard's sliding window.
    seed
        Seed of the exploration draws.

    Examples
    --------
    >>> m = ReserveQuantile(rate=0.1, seed=0)
    >>> scores = [(i * 37 % 100) / 100 for i in range(2000)]
    >>> asked = [s for s in scores if m.decide(s)]
    >>> len(asked) <= 200
    True
    >>> sum(asked) / len(asked) > 0.8   # the informative arrivals, not every tenth one
    True
    """

    def __init__(
        self,
        rate: float = 0.1,
        w: int = 100,
        reserve: float = 10.0,
        save: float = 300.0,
        explore: float = 0.25,
        initial: int = 0,
        repay: int | None = None,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        if not 0.0 <= explore < 1.0:
            from streamal.exceptions import ConfigError

            raise ConfigError(f"explore must be in [0, 1), got {explore}")
        self.w = w
        self.reserve = reserve
        self.save = save
        self.explore = explore
        if repay is not None and repay < initial:
            from streamal.exceptions import ConfigError

            raise ConfigError(f"repay must be at least initial ({initial}), got {repay}")
        self.initial = initial
        self.repay = initial if repay is None else repay
        #: Arrivals of this manager over which the advance is repaid (paced: a share).
        self._repay = float(self.repay)
        # Within the first window, so that the sliding-window guard is unchanged.
        self._initial = min(max(0, math.floor(rate * initial + 1e-9)), self._window_cap)
        self._target = max(1.0, rate * reserve)
        self._cap = max(2.0, rate * save, self._target, float(self._initial))
        self._history: deque[float] = deque()
        self._sorted: list[float] = []
        self._rng = random.Random(seed)
        self._owed = False
        self._forfeited = 0.0
        self._theta = 1.0

    def budget_left(self) -> bool:
        """The guards, with the first ``initial`` labels allowed from the first arrival."""
        # BudgetManager.budget_left's two guards written out (one call less per
        # arrival), with the cumulative one raised while the initial advance lasts.
        spent, seen = self._spent, self._seen
        if spent + 1 > self.rate * seen + 1e-9 and (
            seen >= self._repay or spent + 1 > self._allowance(seen) + 1e-9
        ):
            return False
        recent, cap = self._recent, self._window_cap
        return len(recent) < cap or recent[-cap] <= seen - self._span

    def pace(self, parts: int) -> None:
        """:meth:`BudgetManager.pace`, and the initial allowance shared too.

        Each of the ``parts`` managers may spend ``floor(k / parts)`` labels from its
        first arrival (``k = floor(rate · initial)``) and repays them over ``repay /
        parts`` of its own arrivals, so that the partitions of one stream together
        spend at most what one manager would.
        """
        super().pace(parts)
        whole = max(0, math.floor(self.rate * self.initial + 1e-9))
        self._initial = min(whole // parts, self._window_cap)
        self._repay = self.repay / parts
        self._cap = max(2.0, self.rate * self.save, self._target, float(self._initial))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Managers pickled before ``repay`` existed held the whole advance until
        # arrival ``initial``, which is ``repay == initial``.
        super().__setstate__(state)
        if "repay" not in state:
            self.repay = self.initial
            self._repay = float(self.initial) / self._parts

    def _allowance(self, seen: int) -> float:
        """``A(seen)``: the labels the cumulative promise allows, before flooring."""
        allowance = self.rate * seen
        k, repay = self._initial, self._repay
        if seen >= repay or k <= 0:
            return allowance
        if self.repay == self.initial:  # the whole advance stands until it is due
            return k if k > allowance else allowance
        return allowance + k * (1.0 - seen / repay)

    def promised(self, seen: int) -> int:
        """Most labels the cumulative promise allows after ``seen`` arrivals.

        Examples
        --------
        >>> m = ReserveQuantile(rate=0.1, initial=500, repay=1000)
        >>> [m.promised(n) for n in (0, 100, 500, 1000, 2000)]
        [50, 55, 75, 100, 200]
        >>> ReserveQuantile(rate=0.1, initial=500).promised(100)
        50
        """
        return math.floor(self._allowance(seen) + 1e-9)

    @property
    def threshold(self) -> float | None:
        """The last quantile threshold."""
        return self._theta

    @property
    def forfeited(self) -> float:
        """Labels of allowance given up because the saving exceeded its cap."""
        return self._forfeited

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        # Called once per arrival: _at_least and _clip01 are written out here.
        history, ordered = self._history, self._sorted
        history.append(score)
        _insort(ordered, score)
        if len(history) > self.w:
            del ordered[_bisect_left(ordered, history.popleft())]
        rate = self.rate
        explore = self.explore
        if explore:
            if self._rng.random() < explore * rate:
                self._owed = True
            if self._owed and allowed:
                self._owed = False
                return True
        seen = self._seen
        # _allowance(seen), written out for the arrivals after the advance is repaid.
        allowance = self._allowance(seen) if seen < self._repay else rate * seen
        saved = allowance - self._spent - self._forfeited
        cap = self._cap
        if saved > cap:
            self._forfeited += saved - cap
            saved = cap
        share = rate * saved / self._target
        if share > 0.0:  # _clip01(share) > 0
            theta = self._theta = quantile(ordered, 1.0 - share if share < 1.0 else 0.0)
            return score >= theta
        self._theta = 1.0
        return False
