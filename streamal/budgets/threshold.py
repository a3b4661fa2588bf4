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

import math
import random

from streamal.budgets.base import BudgetManager
from streamal.budgets.estimate import EstimatedBudget

__all__ = ["FixedThreshold", "RandomizedVariableThreshold", "Split", "VariableThreshold"]


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

    can_starve = True

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
        Relative threshold adjustment ``s``. The paper (and scikit-activeml) use 0.01; we
        default to 0.1, which spreads labels more evenly in time and measured better on
        most streams (``docs/benchmarks.md``, "Figures behind design choices").
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
        step: float = 0.1,
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
        theta = self._theta
        if self._crosses(score):
            self._theta = max(1e-9, theta * (1.0 - self.step))
            estimate.update(True)
            return True
        self._theta = min(self._theta_max, theta * (1.0 + self.step))
        estimate.update(False)
        return False

    def _crosses(self, score: float) -> bool:
        """Whether the confidence ``1 − score`` is below the (current) threshold."""
        return 1.0 - score < self._theta


class RandomizedVariableThreshold(VariableThreshold):
    """Variable uncertainty with a randomized threshold ``θ · η``, ``η ~ N(1, δ)``.

    The noise makes the manager label some confident arrivals too, so that a change far
    from the decision boundary is noticed (Žliobaitė et al., 2014, "uncertainty
    strategy with randomization"). ``η`` is drawn only when the budget allows a label.
    ``θ`` is not capped as in :class:`VariableThreshold`: noise can refuse an arrival
    even when ``θ > 1``, and the paper lets ``θ`` keep relaxing then.

    Parameters
    ----------
    delta
        Standard deviation ``δ`` of the threshold noise (paper default 1.0).

    Examples
    --------
    >>> m = RandomizedVariableThreshold(rate=0.1, seed=1)
    >>> spent = sum(m.decide(0.0) for _ in range(5000))
    >>> 0 < spent <= 500
    True
    """

    def __init__(
        self,
        rate: float = 0.1,
        step: float = 0.01,
        theta: float = 1.0,
        delta: float = 1.0,
        budget_window: int = 100,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rate=rate, step=step, theta=theta, budget_window=budget_window, window=window, seed=seed
        )
        self.delta = delta
        self._rng = random.Random(seed)
        self._theta_max = math.inf

    def _crosses(self, score: float) -> bool:
        return 1.0 - score < self._theta * self._rng.gauss(1.0, self.delta)


class Split(VariableThreshold):
    """Split strategy: a share ``v`` of the arrivals is decided at random, the rest by
    variable uncertainty.

    While the budget estimate allows a label, an arrival goes to the random part with
    probability ``v`` and is then asked with probability ``rate``, which keeps an
    unbiased sample of the stream for change detection; otherwise the variable
    threshold decides (and only then moves).

    Parameters
    ----------
    v
        Share of arrivals decided at random (scikit-activeml default 0.1).

    Examples
    --------
    >>> m = Split(rate=0.1, seed=2)
    >>> spent = sum(m.decide(0.3) for _ in range(5000))
    >>> 0 < spent <= 500
    True
    """

    def __init__(
        self,
        rate: float = 0.1,
        v: float = 0.1,
        step: float = 0.01,
        theta: float = 1.0,
        budget_window: int = 100,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            rate=rate, step=step, theta=theta, budget_window=budget_window, window=window, seed=seed
        )
        self.v = v
        self._rng = random.Random(seed)

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        estimate = self._estimate
        if allowed and estimate.available() and self._rng.random() < self.v:
            query = self._rng.random() <= self.rate
            estimate.update(query)
            return query
        return super()._wants(score, allowed, ts, pending)
