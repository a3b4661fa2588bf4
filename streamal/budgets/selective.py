"""Selective sampling: ask at random, more often the smaller the margin.

References
----------
Cesa-Bianchi, N., Gentile, C., & Zaniboni, L. (2006). Worst-case analysis of selective
sampling for linear classification. Journal of Machine Learning Research, 7, 1205–1230.
"""

from __future__ import annotations

import math
import random

from streamal.budgets.base import BudgetManager

__all__ = ["SelectiveSampling"]

# b is kept within these bounds so that one long run of equal scores cannot push it to
# 0 or infinity, from where it would take thousands of arrivals to come back.
_B_MIN, _B_MAX = 1e-6, 1e6


class SelectiveSampling(BudgetManager):
    """Ask with probability ``b / (b + m)``, where ``m = 1 − score`` is the margin.

    Cesa-Bianchi et al.'s rule asks with probability ``b / (b + |p̂|)`` for a linear
    classifier's margin ``|p̂|``; MOA applies it to ``|max posterior − 1/C|``. In the
    score space of streamal, the model's confidence ``1 − score`` plays the margin: for
    least-confidence scores it is ``|max p − 1/C|`` rescaled to ``[0, 1]``.

    With ``b`` given, the rule is the paper's: ``b`` trades labels for mistakes and the
    guards cap the rate. With ``b=None`` (the default), ``b`` adapts so that the share of
    arrivals the rule wants matches the rate: ``b ← b · exp(step · (rate − wanted))``.
    The query probability is exposed as :attr:`last_probability` (for inverse-propensity
    weighting).

    Parameters
    ----------
    rate
        Target label rate.
    b
        Fixed ``b``, or ``None`` to adapt it to the rate (starting at ``rate``).
    step
        Adaptation speed of ``b`` (per arrival, in log space).

    Examples
    --------
    >>> m = SelectiveSampling(rate=0.1, seed=0)
    >>> spent = sum(m.decide(s / 100) for s in range(100) for _ in range(50))
    >>> 400 <= spent <= 500
    True
    >>> round(SelectiveSampling(b=1.0, seed=0)._probability(0.0), 2)
    0.5
    """

    def __init__(
        self,
        rate: float = 0.1,
        b: float | None = None,
        step: float = 0.01,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate=rate, window=window, seed=seed)
        self.b = b
        self.step = step
        self._b = rate if b is None else b
        self._rng = random.Random(seed)

    @property
    def threshold(self) -> float | None:
        """The current ``b``."""
        return self._b

    def _probability(self, score: float) -> float:
        margin = max(0.0, 1.0 - score)
        b = self._b
        return b / (b + margin) if margin > 0.0 else 1.0

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        p = self.last_probability = self._probability(score)
        wanted = self._rng.random() < p
        if self.b is None:
            b = self._b * math.exp(self.step * (self.rate - wanted))
            self._b = min(_B_MAX, max(_B_MIN, b))
        return wanted
