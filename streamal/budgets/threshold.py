"""Threshold rules of Žliobaitė et al. (2014): fixed and variable uncertainty.

Scores are informativeness in ``[0, 1]``; the paper's rules compare the model's
confidence ``1 − score`` with a threshold ``θ`` and ask when ``1 − score < θ``.

References
----------
Žliobaitė, I., Bifet, A., Pfahringer, B., & Holmes, G. (2014). Active learning with
drifting streaming data. IEEE Transactions on Neural Networks and Learning Systems,
25(1), 27–39.
"""

from __future__ import annotations

from streamal.budgets.base import BudgetManager
from streamal.budgets.estimate import EstimatedBudget

__all__ = ["FixedThreshold", "VariableThreshold"]


class FixedThreshold(BudgetManager):
    """Ask when the score reaches a fixed threshold and the budget estimate allows.

    With ``threshold=None`` the threshold is ``1 − rate``: for least-confidence scores
    this is the paper's default ``θ = 1/C + B (1 − 1/C)`` on the top posterior.
    A fixed threshold can starve (an overconfident model never reaches it); prefer
    :class:`VariableThreshold`, which re-opens.

    Examples
    --------
    >>> m = FixedThreshold(rate=0.5)
    >>> [m.decide(s) for s in (0.9, 0.9, 0.1, 0.9, 0.9)]
    [False, True, False, True, False]
    """

    def __init__(
        self,
        rate: float = 0.1,
        threshold: float | None = None,
        budget_window: int = 100,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self.threshold_ = 1.0 - rate if threshold is None else threshold
        self.budget_window = budget_window
        self._estimate = EstimatedBudget(rate, budget_window)

    @property
    def threshold(self) -> float | None:
        return self.threshold_

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        query = allowed and self._estimate.available() and score >= self.threshold_
        self._estimate.update(query)
        return query


class VariableThreshold(BudgetManager):
    """Variable uncertainty: a threshold that tightens after a query and relaxes otherwise.

    While the windowed budget estimate allows a label, the arrival is queried when its
    confidence ``1 − score`` is below ``θ``; then ``θ ← θ (1 − step)``, otherwise
    ``θ ← θ (1 + step)``. ``θ`` may rise just above 1, where every arrival qualifies, so
    an overconfident model (posterior exactly 1) is still asked: no deadlock.

    Parameters
    ----------
    rate
        Target label rate.
    step
        Relative threshold adjustment ``s`` (paper default 0.01).
    theta
        Initial threshold ``θ₀`` (paper default 1.0: the first arrivals are asked).
    budget_window
        Window ``w`` of the budget estimate.

    Examples
    --------
    >>> m = VariableThreshold(rate=0.2)
    >>> decisions = [m.decide(0.5) for _ in range(1000)]
    >>> sum(decisions) <= 200
    True
    """

    def __init__(
        self,
        rate: float = 0.1,
        step: float = 0.01,
        theta: float = 1.0,
        budget_window: int = 100,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self.step = step
        self.theta = theta
        self.budget_window = budget_window
        self._theta = theta
        # Above 1 every arrival qualifies; one query brings θ back to at most 1.
        self._theta_max = 1.0 / (1.0 - step)
        self._estimate = EstimatedBudget(rate, budget_window)

    @property
    def threshold(self) -> float | None:
        return self._theta

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        estimate = self._estimate
        if not (allowed and estimate.available()):
            estimate.update(False)
            return False
        query = 1.0 - score < self._theta
        if query:
            self._theta = max(1e-9, self._theta * (1.0 - self.step))
        else:
            self._theta = min(self._theta_max, self._theta * (1.0 + self.step))
        estimate.update(query)
        return query
