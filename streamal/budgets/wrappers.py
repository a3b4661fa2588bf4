"""Managers that wrap another manager: a hard capacity cap and an exploration floor.

A wrapper sees every arrival first, tells the inner manager whether it may spend
(``decide(..., allowed=False)`` makes the inner manager treat the arrival as if its
budget were exhausted, so its state stays consistent), and may add queries of its own.
The inner manager is given as a spec (``"variable_threshold"``; inner parameters are
separated by ``;`` because ``,`` separates the wrapper's own:
``"capped:inner=variable_threshold:step=0.02;budget_window=200,max_pending=50"``) or as
a :class:`~streamal.budgets.base.BudgetManager`.
"""

from __future__ import annotations

import math
import random
from collections import deque

from streamal.budgets.base import BudgetManager, Verdict, _verdict
from streamal.exceptions import ConfigError

__all__ = ["ExplorationFloor", "HardCap", "Wrapper"]


def _build_inner(inner: str | BudgetManager, rate: float, seed: int | None) -> BudgetManager:
    if isinstance(inner, BudgetManager):
        return inner
    from streamal.core.registry import make_budget  # the registry imports this module

    return make_budget(inner.replace(";", ","), rate=rate, seed=seed)


class Wrapper(BudgetManager):
    """Base class of managers that wrap an inner manager.

    Subclasses override :meth:`_gate` (may the inner manager spend on this arrival?),
    :meth:`_extra` (a query of the wrapper's own when the inner manager declined) and
    :meth:`_spend` (bookkeeping after a label was bought). The wrapper's own guards
    (:meth:`budget_left`) count every label, the inner manager's and its own.
    """

    def __init__(
        self,
        inner: str | BudgetManager = "variable_threshold",
        rate: float | None = None,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        if isinstance(inner, BudgetManager) and rate is not None:
            if not math.isclose(rate, inner.rate):
                raise ConfigError(f"rate {rate} differs from the inner manager's {inner.rate}")
        built = _build_inner(inner, 0.1 if rate is None else rate, seed)
        # The inner manager's rate rules (the "full" baseline always has rate 1).
        super().__init__(rate=built.rate, window=window, seed=seed)
        self.inner = inner
        self._inner = built

    @property
    def threshold(self) -> float | None:
        return self._inner.threshold

    def pace(self, parts: int) -> None:
        """:meth:`BudgetManager.pace` for the wrapper's guards and the inner manager's."""
        super().pace(parts)
        self._inner.pace(parts)

    @property
    def manager(self) -> BudgetManager:
        """The inner manager."""
        return self._inner

    #: Arrivals on which the wrapper's gate (a hard cap) closed while the budget guards
    #: left a label: chances to query that the cap took away.
    refused: int = 0

    def decide(
        self, score: float, ts: float | None = None, pending: int = 0, *, allowed: bool = True
    ) -> bool:
        # A wrapper's rule is its verdict (the gate, the inner manager, its own extras).
        return self.verdict(score, ts, pending, allowed=allowed)[0]

    def verdict(
        self, score: float, ts: float | None = None, pending: int = 0, *, allowed: bool = True
    ) -> Verdict:
        self._seen += 1
        left = allowed and self.budget_left()
        gate = left and self._gate(ts, pending)
        query, inner_allowed, probability = self._inner.verdict(score, ts, pending, allowed=gate)
        if left and not gate:
            self.refused += 1
        if not query and gate and self._extra(score):
            query, inner_allowed, probability = True, True, None
        self.last_allowed = inner_allowed
        self.last_probability = probability
        if query:
            self._spent += 1
            self._recent.append(self._seen)
        self._spend(query, ts)
        return _verdict((query, inner_allowed, probability))

    def spend_extra(self, ts: float | None = None, pending: int = 0) -> bool:
        # The cap binds labels bought outside the inner manager's rule too.
        if not self._gate(ts, pending) or not super().spend_extra(ts, pending):
            return False
        self._spend(True, ts)
        return True

    def on_label(self, correct: bool) -> None:
        self._inner.on_label(correct)

    def _gate(self, ts: float | None, pending: int) -> bool:
        return True

    def _extra(self, score: float) -> bool:
        return False

    def _spend(self, query: bool, ts: float | None) -> None:
        """Bookkeeping after each arrival (``query``: whether a label was bought)."""

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        raise NotImplementedError("wrappers decide through their inner manager")


class HardCap(Wrapper):
    """Never exceed annotator capacity, whatever the inner manager wants.

    Composes with any manager: at most ``labels_per_window`` labels in any
    ``cap_window`` consecutive arrivals, at most ``labels_per_period`` labels in any
    ``period`` of stream time (seconds of ``ts``; arrivals when samples carry no time),
    and no new query while ``max_pending`` queries still wait for their label. Each
    limit is exact (sliding windows, not estimates), and the inner manager's own guards
    still hold, so there is no start-up burst either.

    Parameters
    ----------
    inner
        The wrapped manager (a spec or an instance).
    rate
        Target label rate (taken from ``inner`` when it is an instance).
    labels_per_window, cap_window
        At most this many labels per ``cap_window`` arrivals (``None``: no limit).
    labels_per_period, period
        At most this many labels per ``period`` of stream time (``None``: no limit).
        3,600 s, because annotator capacity is usually planned per hour.
    max_pending
        At most this many unanswered queries (``None``: no limit).

    Examples
    --------
    >>> m = HardCap("full", max_pending=2)
    >>> [m.decide(1.0, pending=p) for p in (0, 1, 2, 3, 1)]
    [True, True, False, False, True]
    >>> m = HardCap("full", labels_per_period=2, period=10.0)
    >>> [m.decide(1.0, ts=t) for t in (0.0, 1.0, 2.0, 10.5, 11.5)]
    [True, True, False, True, True]
    """

    def __init__(
        self,
        inner: str | BudgetManager = "variable_threshold",
        rate: float | None = None,
        labels_per_window: int | None = None,
        cap_window: int = 1000,
        labels_per_period: int | None = None,
        period: float = 3600.0,
        max_pending: int | None = None,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(inner=inner, rate=rate, window=window, seed=seed)
        self.labels_per_window = labels_per_window
        self.cap_window = cap_window
        self.labels_per_period = labels_per_period
        self.period = period
        self.max_pending = max_pending
        self._by_arrival: deque[int] = deque()
        self._by_time: deque[float] = deque()

    def _gate(self, ts: float | None, pending: int) -> bool:
        if self.max_pending is not None and pending >= self.max_pending:
            return False
        if self.labels_per_window is not None:
            recent, oldest = self._by_arrival, self._seen - self.cap_window
            while recent and recent[0] <= oldest:
                recent.popleft()
            if len(recent) >= self.labels_per_window:
                return False
        if self.labels_per_period is not None:
            times = self._by_time
            oldest_t = (self._seen if ts is None else ts) - self.period
            while times and times[0] <= oldest_t:
                times.popleft()
            if len(times) >= self.labels_per_period:
                return False
        return True

    def _spend(self, query: bool, ts: float | None) -> None:
        if query:
            if self.labels_per_window is not None:
                self._by_arrival.append(self._seen)
            if self.labels_per_period is not None:
                self._by_time.append(float(self._seen) if ts is None else ts)


class ExplorationFloor(Wrapper):
    """Guarantee that a starved manager still asks now and then.

    When ``patience`` arrivals in a row went unlabelled and the guards leave a label,
    each further arrival is labelled with probability ``probability`` (uniformly at
    random) until a label is bought. An overconfident model that drives every score to
    0 can then never stop learning (a fixed threshold alone deadlocks). Exploration
    spends at most one label per ``patience`` arrivals, i.e. at most
    ``1 / (patience · rate)`` of the budget (10 % with the default patience).

    Parameters
    ----------
    inner
        The wrapped manager (a spec or an instance).
    rate
        Target label rate (taken from ``inner`` when it is an instance).
    patience
        Quiet arrivals before exploring; default ``ceil(10 / rate)``, ten mean gaps.
    probability
        Chance to label each arrival once exploring; default ``rate``.

    Examples
    --------
    >>> m = ExplorationFloor("fixed_threshold", rate=0.1, seed=0)
    >>> spent = sum(m.decide(0.0) for _ in range(10_000))  # scores never reach θ
    >>> 40 < spent <= 100
    True
    """

    def __init__(
        self,
        inner: str | BudgetManager = "fixed_threshold",
        rate: float | None = None,
        patience: int | None = None,
        probability: float | None = None,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(inner=inner, rate=rate, window=window, seed=seed)
        self.patience = patience
        self.probability = probability
        self._patience = math.ceil(10 / self.rate) if patience is None else patience
        self._probability = self.rate if probability is None else probability
        self._quiet = 0
        self._rng = random.Random(None if seed is None else f"{seed}/explore")
        self.explored = 0

    def _extra(self, score: float) -> bool:
        if self._quiet < self._patience or self._rng.random() >= self._probability:
            return False
        self.explored += 1
        return True

    def _spend(self, query: bool, ts: float | None) -> None:
        self._quiet = 0 if query else self._quiet + 1
