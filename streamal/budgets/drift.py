"""Drift-aware spending: label more right after a drift, pay it back later.

References
----------
Bifet, A., & Gavaldà, R. (2007). Learning from time-changing data with adaptive
windowing. SIAM International Conference on Data Mining (SDM 2007), 443–448 (ADWIN).
Castellani, A., Schmitt, S., & Hammer, B. (2022). Stream-based active learning with
verification latency in non-stationary environments. ICANN 2022 (drift-dependent
dynamic budget).
"""

from __future__ import annotations

import math
import random
from collections import deque

from streamal.budgets.base import BudgetManager
from streamal.budgets.wrappers import Wrapper
from streamal.exceptions import ConfigError

__all__ = ["DriftAware"]


class DriftAware(Wrapper):
    """Raise the label rate for a while after a detected drift, then pay it back.

    ADWIN watches the prequential error of the labelled arrivals (the learner reports
    each applied label through :meth:`on_label`). When it detects that the error rose,
    a *boost* starts: for ``boost_length`` arrivals, arrivals the inner manager declines
    are also labelled with probability ``boost · rate``, uniformly at random (after a
    drift, unbiased labels show best where the concept changed). Then, during
    ``payback`` arrivals, spending stays below the rate until the borrowed labels are
    returned.

    The borrowing is bounded, and this is the manager's documented exception to the
    budget promise:

    * after ``n`` arrivals at most ``floor(rate · n) + B`` labels were spent, with
      ``B = floor(boost · rate · boost_length)`` (the credit, which shrinks linearly to 0
      during the payback), and once the payback is over again at most ``floor(rate · n)``;
    * any ``window`` consecutive arrivals hold at most
      ``floor((1 + boost) · rate · window)`` labels, and at most
      ``floor(rate · window)`` when no boost or payback is under way.

    river's ADWIN restarts after each detection, so a rise of the error that follows a
    detected fall within a few dozen labels is seen only once the new level is
    established; falls of the error (a model still learning) never start a boost.

    Parameters
    ----------
    inner
        The wrapped manager (a spec or an instance); it decides outside the boost.
    rate
        Target label rate (taken from ``inner`` when it is an instance).
    boost
        Extra label rate during the boost, as a multiple of ``rate``.
    boost_length
        Length of the boost, in arrivals.
    payback
        Arrivals over which the borrowed labels are paid back; at least
        ``boost · boost_length``, so that the allowance never shrinks.
    delta
        ADWIN's confidence parameter.

    Examples
    --------
    >>> m = DriftAware("variable_threshold", rate=0.1, seed=0)
    >>> for i in range(3000):
    ...     if m.decide(0.5):
    ...         m.on_label(i < 1500 or i % 2 == 0)  # the error jumps at arrival 1500
    >>> m.drifts >= 1, m.spent <= 300 + m.max_borrow
    (True, True)
    """

    def __init__(
        self,
        inner: str | BudgetManager = "variable_threshold",
        rate: float | None = None,
        boost: float = 1.0,
        boost_length: int = 500,
        payback: int = 2000,
        delta: float = 0.002,
        window: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__(inner=inner, rate=rate, window=window, seed=seed)
        if payback < boost * boost_length:
            raise ConfigError(
                f"payback ({payback}) must be at least boost * boost_length "
                f"({boost * boost_length:g}) so that borrowed labels are paid back"
            )
        self.boost = boost
        self.boost_length = boost_length
        self.payback = payback
        self.delta = delta
        self.max_borrow = math.floor(boost * self.rate * boost_length + 1e-9)
        self._boost_cap = max(1, math.floor((1.0 + boost) * self.rate * window + 1e-9))
        self._recent = deque(maxlen=self._boost_cap)
        # Imported here: river.drift pulls in river.datasets (about 1 s at start-up).
        from river.drift import ADWIN

        self._detector = ADWIN(delta=delta)
        self._boost_until = 0
        self._payback_until = 0
        self._rng = random.Random(None if seed is None else f"{seed}/drift")
        #: Number of drifts (error increases) detected so far.
        self.drifts = 0

    @property
    def boosting(self) -> bool:
        """Whether a boost is under way."""
        return self._seen < self._boost_until

    def credit(self) -> float:
        """Labels that may currently be spent beyond ``rate · seen``."""
        seen = self._seen
        if seen <= self._boost_until:
            return float(self.max_borrow)
        if seen < self._payback_until:
            return self.max_borrow * (self._payback_until - seen) / self.payback
        return 0.0

    def _recent_kept(self) -> int:
        # A window overlapping a boost may hold the boosted number of labels.
        return self._boost_cap

    def budget_left(self) -> bool:
        credit = self.credit()
        if self._spent + 1 > self.rate * self._seen + credit + 1e-9:
            return False
        # A window that overlaps a boost or its payback may hold the boosted amount.
        elevated = self._payback_until and self._seen < self._payback_until + self.window
        cap, recent = (self._boost_cap if elevated else self._window_cap), self._recent
        return len(recent) < cap or recent[-cap] <= self._seen - self.window

    def on_label(self, correct: bool) -> None:
        super().on_label(correct)
        detector = self._detector
        before = detector.estimation
        detector.update(0.0 if correct else 1.0)
        if detector.drift_detected and detector.estimation > before:
            self.drifts += 1
            self._boost_until = self._seen + self.boost_length
            self._payback_until = self._boost_until + self.payback

    def _extra(self, score: float) -> bool:
        return self.boosting and self._rng.random() < self.boost * self.rate
