"""Random budget managers: seeded coin flips, and every label."""

from __future__ import annotations

import random

from streamal.budgets.base import BudgetManager

__all__ = ["FullBudget", "RandomBudget"]


class RandomBudget(BudgetManager):
    """Ask each arrival with probability ``rate``, whatever its score (seeded).

    The guards still apply, so the realized rate never exceeds ``rate`` (plain coin flips
    overshoot by chance: scikit-activeml's random sampling ends at up to 1.25 × target).

    Examples
    --------
    >>> m = RandomBudget(rate=0.1, seed=42)
    >>> spent = sum(m.decide(0.0) for _ in range(10_000))
    >>> 900 < spent <= 1000
    True
    """

    def __init__(self, rate: float = 0.1, window: int = 1000, seed: int | None = None) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self._rng = random.Random(seed)
        self.last_probability = rate

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        return self._rng.random() < self.rate


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
