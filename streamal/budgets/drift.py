"""Drift-aware spending: label more right after a drift, pay it back later.

References
----------
Page, E. S. (1954). Continuous inspection schemes. Biometrika 41(1/2), 100–115
(the Page-Hinkley test).
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
from typing import Any

from streamal.budgets.base import BudgetManager
from streamal.budgets.wrappers import Wrapper
from streamal.exceptions import ConfigError

__all__ = ["DriftAware"]

#: Detection arrivals remembered (for reports of the delay to the boost).
_KEEP_DETECTIONS = 100
#: Marks a detector pickled as its attributes (see ``DriftAware.__getstate__``).
_DETECTOR_STATE = "streamal.detector-state"


class DriftAware(Wrapper):
    """Raise the label rate for a while after a detected drift, then pay it back.

    A change detector watches the prequential error of the labelled arrivals (the
    learner reports each applied label through :meth:`on_label`): by default a one-sided
    Page-Hinkley test (``detector="page_hinkley"``), which reacts to a rise of the mean
    error by more than ``delta`` once the accumulated rise exceeds ``alarm``;
    ``detector="adwin"`` uses ADWIN (``delta``: its confidence, checked at every label).
    When it detects a rise, a *boost* starts: for ``boost_length`` arrivals, arrivals
    the inner manager declines are also labelled with probability ``boost · rate``,
    uniformly at random (after a drift, unbiased labels show best where the concept
    changed). Then, during ``payback`` arrivals, spending stays below the rate until the
    borrowed labels are returned. Falls of the error (a model still learning) never
    start a boost.

    The labels of the boost are a different mix (random, not only uncertain arrivals),
    so the detector starts afresh at each detection and hears no label until the labels
    of every query made up to the end of the boost came in (or the payback is over);
    the error level it then learns is that of the inner manager's labels again.

    Why not the earlier default: the labels an uncertainty strategy buys are the hard
    cases, with an error of 20–50 % before any drift, and arrive at only ``rate`` per
    arrival; ADWIN at ``delta=0.002``, checked every 32 labels, found no drift on the
    abrupt SEA stream at all and took 570–6,300 arrivals on Agrawal (docs/strategies.md).

    The borrowing is bounded, and this is the manager's documented exception to the
    budget promise:

    * after ``n`` arrivals at most ``floor(rate · n) + B`` labels were spent, with
      ``B = floor(boost · rate · boost_length)`` (the credit, which shrinks linearly to 0
      during the payback), and once the payback is over again at most ``floor(rate · n)``;
      with the defaults at ``rate=0.1``, ``B = 100`` labels;
    * any ``window`` consecutive arrivals hold at most
      ``floor((1 + boost) · rate · window)`` labels (twice the rate with the defaults),
      and at most ``floor(rate · window)`` when no boost or payback is under way.

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
        Page-Hinkley: the rise of the error tolerated without alarm (default 0.05);
        ADWIN: its confidence parameter (default 0.002).
    alarm
        Page-Hinkley's alarm threshold on the accumulated rise, in errors.
    detector
        ``"page_hinkley"`` or ``"adwin"``.

    Examples
    --------
    >>> m = DriftAware("variable_threshold", rate=0.1, seed=0)
    >>> for i in range(3000):
    ...     if m.decide(0.5):
    ...         m.on_label(i < 1500 or i % 2 == 0)  # the error jumps at arrival 1500
    >>> m.drifts, 1500 < m.detections[0] < 2000, m.spent <= 300 + m.max_borrow
    (1, True, True)
    """

    def __init__(
        self,
        inner: str | BudgetManager = "variable_threshold",
        rate: float | None = None,
        boost: float = 1.0,
        boost_length: int = 1000,
        payback: int = 4000,
        delta: float | None = None,
        window: int = 1000,
        seed: int | None = None,
        alarm: float = 8.0,
        detector: str = "page_hinkley",
    ) -> None:
        super().__init__(inner=inner, rate=rate, window=window, seed=seed)
        if payback < boost * boost_length:
            raise ConfigError(
                f"payback ({payback}) must be at least boost * boost_length "
                f"({boost * boost_length:g}) so that borrowed labels are paid back"
            )
        if detector not in ("page_hinkley", "adwin"):
            raise ConfigError(f"detector must be page_hinkley or adwin, got {detector!r}")
        self.boost = boost
        self.boost_length = boost_length
        self.payback = payback
        self.delta = delta
        self.alarm = alarm
        self.detector = detector
        self.max_borrow = math.floor(boost * self.rate * boost_length + 1e-9)
        self._boost_cap = max(1, math.floor((1.0 + boost) * self.rate * window + 1e-9))
        self._recent = deque(maxlen=self._boost_cap)
        self._detector = self._new_detector()
        self._boost_until = 0
        self._payback_until = 0
        self._rng = random.Random(None if seed is None else f"{seed}/drift")
        #: Number of drifts (error increases) detected so far.
        self.drifts = 0
        #: Arrival numbers at which the latest drifts were detected (the boost starts).
        self.detections: deque[int] = deque(maxlen=_KEEP_DETECTIONS)
        #: Labels heard through :meth:`on_label`.
        self.heard = 0
        self._deaf_until_heard = 0

    def _new_detector(self) -> Any:
        # Imported here: river.drift pulls in river.datasets (about 1 s at start-up).
        from river.drift import ADWIN, PageHinkley

        if self.detector == "adwin":
            return ADWIN(delta=0.002 if self.delta is None else self.delta, clock=1)
        return PageHinkley(
            min_instances=30,
            delta=0.05 if self.delta is None else self.delta,
            threshold=self.alarm,
            alpha=1.0,
            mode="up",
        )

    def __getstate__(self) -> dict[str, Any]:
        # river's PageHinkley keeps its drift test as a bound method, which pickles
        # through builtins.getattr: the restricted unpickler of snapshots refuses that
        # (a snapshot could not be restored). Its other attributes are plain state.
        state = self.__dict__.copy()
        detector = state.get("_detector")
        if detector is not None and "_test_drift" in vars(detector):
            kept = {k: v for k, v in vars(detector).items() if k != "_test_drift"}
            state["_detector"] = (_DETECTOR_STATE, kept)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Managers pickled before the Page-Hinkley default kept an ADWIN and no deafness.
        state.setdefault("detector", "adwin")
        state.setdefault("alarm", 8.0)
        state.setdefault("detections", deque(maxlen=_KEEP_DETECTIONS))
        state.setdefault("heard", 0)
        state.setdefault("_deaf_until_heard", 0)
        saved = state.get("_detector")
        super().__setstate__(state)
        if isinstance(saved, tuple) and saved and saved[0] == _DETECTOR_STATE:
            detector = self._new_detector()  # its drift test, bound to the new object
            vars(detector).update(saved[1])
            self._detector = detector

    @property
    def boosting(self) -> bool:
        """Whether a boost is under way."""
        return self._seen < self._boost_until

    @property
    def listening(self) -> bool:
        """Whether the detector hears the labels (not during and right after a boost)."""
        if self._seen < self._boost_until:
            return False
        return self.heard >= self._deaf_until_heard or self._seen >= self._payback_until

    def credit(self) -> float:
        """Labels that may currently be spent beyond ``rate · seen``."""
        seen = self._seen
        if seen <= self._boost_until:
            return float(self.max_borrow)
        if seen < self._payback_until:
            return self.max_borrow * (self._payback_until - seen) / self.payback
        return 0.0

    def pace(self, parts: int) -> None:
        """:meth:`BudgetManager.pace`, the boosted window cap shared alike."""
        super().pace(parts)  # checks parts and freshness, paces the inner manager
        if self.rate < 1.0:
            boosted = max(1, math.floor((1.0 + self.boost) * self.rate * self.window + 1e-9))
            self._boost_cap = max(1, boosted // parts)
            self._recent = deque(self._recent, maxlen=self._recent_kept())

    def _recent_kept(self) -> int:
        # A window overlapping a boost may hold the boosted number of labels.
        return self._boost_cap

    def window_cap(self) -> int:
        """The sliding-window cap that applies now (raised around a boost)."""
        elevated = self._payback_until and self._seen < self._payback_until + self._span
        return self._boost_cap if elevated else self._window_cap

    def budget_left(self) -> bool:
        credit = self.credit()
        if self._spent + 1 > self.rate * self._seen + credit + 1e-9:
            return False
        # A window that overlaps a boost or its payback may hold the boosted amount.
        elevated = self._payback_until and self._seen < self._payback_until + self._span
        cap, recent = (self._boost_cap if elevated else self._window_cap), self._recent
        return len(recent) < cap or recent[-cap] <= self._seen - self._span

    def _spend(self, query: bool, ts: float | None) -> None:
        if self._seen == self._boost_until:
            # The boost ends: its labels are in once as many were heard as were asked.
            self._deaf_until_heard = self._spent

    def on_label(self, correct: bool) -> None:
        super().on_label(correct)
        self.heard += 1
        if not self.listening:
            return
        detector = self._detector
        before = detector.estimation if self.detector == "adwin" else None
        detector.update(0.0 if correct else 1.0)
        if not detector.drift_detected:
            return
        if before is not None and detector.estimation <= before:
            return  # ADWIN saw the error fall
        self.drifts += 1
        self.detections.append(self._seen)
        self._boost_until = self._seen + self.boost_length
        self._payback_until = self._boost_until + self.payback
        self._deaf_until_heard = 1 << 62  # set when the boost ends
        self._detector = self._new_detector()

    def _extra(self, score: float) -> bool:
        return self.boosting and self._rng.random() < self.boost * self.rate
