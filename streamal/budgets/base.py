"""The budget-manager interface: do we spend a label on this arrival?"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from river import base

__all__ = ["BudgetManager", "Verdict"]


class Verdict(NamedTuple):
    """A budget manager's decision on one arrival, with what the learner reports of it."""

    #: Whether a label is bought.
    query: bool
    #: Whether the guards left a label to spend (``False``: the budget said no).
    allowed: bool
    #: Probability with which the arrival was queried, if the manager knows it.
    probability: float | None


#: ``Verdict`` from a tuple of its fields, without the named tuple's keyword handling
#: (one per arrival).
_verdict: Callable[[tuple[bool, bool, float | None]], Verdict] = partial(tuple.__new__, Verdict)
#: The verdicts of a manager that knows no probability, and a certain query (shared:
#: tuples are immutable).
_QUERY = Verdict(True, True, None)
_QUERY_SURE = Verdict(True, True, 1.0)
_NOT_WANTED = Verdict(False, True, None)
_NOT_ALLOWED = Verdict(False, False, None)


class BudgetManager(base.Base):  # type: ignore[misc]
    """Decides, arrival by arrival, whether to buy a label; keeps the budget promise.

    Every manager is held by two guards that make the label rate a promise rather than
    an average that may overshoot:

    * **cumulative**: after ``n`` arrivals at most ``floor(rate * n)`` labels were spent;
    * **sliding window**: at most ``max(1, floor(rate * window))`` labels in any
      ``window`` consecutive arrivals (no burst after a quiet period).

    Subclasses implement :meth:`_wants`, which sees the score and whether the guards
    leave a label to spend; if they do and ``_wants`` returns ``True``, the label is
    spent. Subclasses store their constructor arguments under their own names.

    Parameters
    ----------
    rate
        Target label rate in ``(0, 1]``: the share of arrivals that may be labelled.
    window
        Length of the guard's sliding window, in arrivals. 1,000 arrivals is long enough
        to let a strategy concentrate labels where it wants and short enough that
        annotators see no burst of more than ``rate * 1000`` queries.
    seed
        Seed of the manager's random choices, if it makes any.
    """

    #: Set by managers that may stop asking for good (a fixed threshold above every
    #: score); the conformance suite's no-deadlock check skips them.
    can_starve: bool = False
    #: Arrivals on which a hard cap closed the gate while the guards left a label (only
    #: :class:`~streamal.budgets.wrappers.HardCap` refuses; ``0`` for every other manager).
    refused: int = 0

    def __init__(self, rate: float = 0.1, window: int = 1000, seed: int | None = None) -> None:
        if not 0.0 < rate <= 1.0:
            from streamal.exceptions import ConfigError

            raise ConfigError(f"rate must be in (0, 1], got {rate}")
        self.rate = rate
        self.window = window
        self.seed = seed
        self._seen = 0
        self._spent = 0
        self._window_cap = max(1, math.floor(rate * window + 1e-9))
        #: Arrivals the sliding-window guard looks back over (``window``, unless paced).
        self._span = window
        #: Partitions of one stream this manager shares the window promise with.
        self._parts = 1
        #: Arrival numbers of the latest labels (as many as the window guard looks at).
        self._recent: deque[int] = deque(maxlen=self._window_cap)
        #: Probability with which the last arrival was queried, if the manager knows it
        #: (``None`` for deterministic rules); used for inverse-propensity weighting.
        self.last_probability: float | None = None
        #: Whether the guards left a label to spend on the last arrival.
        self.last_allowed = True

    def _recent_kept(self) -> int:
        """How many of the latest labels the sliding-window guard must remember."""
        return self._window_cap

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Managers pickled by earlier versions kept an unbounded deque, pruned lazily.
        self.__dict__.update(state)
        if "_span" not in state:  # pickled before managers could be paced
            self._span, self._parts = self.window, 1
        if self._recent.maxlen is None:
            self._recent = deque(self._recent, maxlen=self._recent_kept())

    def pace(self, parts: int) -> None:
        """Share the sliding-window promise with ``parts - 1`` other managers of one stream.

        In group mode each samples partition has its own manager, so the window guard
        holds per partition. Paced, this manager guards ``ceil(window / parts)`` of its
        own arrivals, with at most ``max(1, floor(cap / parts))`` labels in them, where
        ``cap = max(1, floor(rate · window))`` is the unpaced cap. When the stream is
        spread evenly over the ``parts`` partitions (in turn, as a round-robin
        producer does), any ``window`` consecutive arrivals of the whole stream hold at
        most ``ceil(window / parts)`` arrivals of each partition, hence at most
        ``parts · floor(cap / parts) <= cap`` labels: the promise of one manager over
        the whole stream, as long as ``cap >= parts`` (below that, each partition still
        gets one label per span, so a window may hold ``parts`` labels). The cost: a
        partition cannot spend faster than ``floor(cap / parts) / ceil(window / parts)``
        of its arrivals for long (0.0958 for rate 0.1 and 6 partitions), a little under
        ``rate`` when ``parts`` does not divide ``window`` and ``cap``.

        The cumulative guard (``floor(rate · n)`` labels after ``n`` arrivals) stays as
        it is. Call this on a fresh manager, before its first arrival; the pacing is
        part of the manager's state (it travels in snapshots and partition records).

        Examples
        --------
        >>> from streamal.budgets import RandomBudget
        >>> m = RandomBudget(rate=0.1, seed=0)
        >>> m.pace(6)
        >>> m.paced
        (167, 16)
        """
        if parts < 1:
            from streamal.exceptions import ConfigError

            raise ConfigError(f"parts must be at least 1, got {parts}")
        if self._seen:
            raise ValueError("pace() needs a fresh manager (it has decided arrivals already)")
        self._parts = parts
        if self.rate >= 1.0:  # every arrival may be labelled: no window to share
            return
        total = max(1, math.floor(self.rate * self.window + 1e-9))
        self._span = -(-self.window // parts)
        self._window_cap = max(1, total // parts)
        self._recent = deque(self._recent, maxlen=self._recent_kept())

    @property
    def paced(self) -> tuple[int, int]:
        """The sliding-window guard: (arrivals it looks back over, labels allowed in them)."""
        return self._span, self._window_cap

    @property
    def seen(self) -> int:
        """Arrivals decided so far."""
        return self._seen

    @property
    def spent(self) -> int:
        """Labels bought so far."""
        return self._spent

    @property
    def realized_rate(self) -> float:
        """Labels bought per arrival since the start."""
        return self._spent / self._seen if self._seen else 0.0

    @property
    def threshold(self) -> float | None:
        """Current score threshold of threshold-based managers (``None`` otherwise)."""
        return None

    def promised(self, seen: int) -> int:
        """Most labels the cumulative promise allows after ``seen`` arrivals.

        ``floor(rate · seen)``; a manager with an initial allowance
        (:class:`~streamal.budgets.ReserveQuantile`) says how it raises it.

        Examples
        --------
        >>> from streamal.budgets import RandomBudget
        >>> RandomBudget(rate=0.1).promised(1234)
        123
        """
        return math.floor(self.rate * seen + 1e-9)

    def budget_left(self) -> bool:
        """Whether the guards allow one more label for the current arrival."""
        seen = self._seen
        if self._spent + 1 > self.rate * seen + 1e-9:
            return False
        # Under the cap unless the cap-th latest label was spent inside the window.
        recent, cap = self._recent, self._window_cap
        return len(recent) < cap or recent[-cap] <= seen - self._span

    def decide(
        self, score: float, ts: float | None = None, pending: int = 0, *, allowed: bool = True
    ) -> bool:
        """Decide whether to buy a label for an arrival with ``score``.

        Parameters
        ----------
        score
            The strategy's informativeness score in ``[0, 1]``.
        ts
            Stream time of the arrival (used by time-based caps).
        pending
            Number of queries still waiting for their label (used by capacity caps).
        allowed
            ``False`` forbids spending on this arrival whatever the guards say (a wrapper
            such as :class:`~streamal.budgets.wrappers.HardCap` uses it); the manager
            still sees the arrival and updates its state as when the budget is exhausted.
        """
        # The rule of verdict(), without building a Verdict (one call per arrival in
        # loops that only need the choice); a subclass that overrides verdict overrides
        # decide to go through it (as streamal.budgets.wrappers.Wrapper does).
        seen = self._seen = self._seen + 1
        allowed = self.last_allowed = allowed and self.budget_left()
        if self._wants(score, allowed, ts, pending) and allowed:
            self._spent += 1
            self._recent.append(seen)
            return True
        return False

    def verdict(
        self, score: float, ts: float | None = None, pending: int = 0, *, allowed: bool = True
    ) -> Verdict:
        """:meth:`decide`, returned with whether the guards allowed it and its probability.

        The learner calls this (one call per arrival); ``last_allowed`` and
        ``last_probability`` keep the same for code that reads them afterwards.

        Examples
        --------
        >>> from streamal.budgets import FullBudget
        >>> FullBudget().verdict(0.3)
        Verdict(query=True, allowed=True, probability=1.0)
        """
        # decide()'s rule (kept in step with it), returning the tuple the learner reads.
        # Deterministic managers (no probability) share three prebuilt verdicts.
        seen = self._seen = self._seen + 1
        allowed = self.last_allowed = allowed and self.budget_left()
        if self._wants(score, allowed, ts, pending) and allowed:
            self._spent += 1
            self._recent.append(seen)
            probability = self.last_probability
            if probability is None:
                return _QUERY
            if probability == 1.0 and probability.__class__ is float:  # the full budget
                return _QUERY_SURE
            return _verdict((True, True, probability))
        probability = self.last_probability
        if probability is None:
            if allowed is True:
                return _NOT_WANTED
            if allowed is False:
                return _NOT_ALLOWED
        return _verdict((False, allowed, probability))

    def spend_extra(self, ts: float | None = None, pending: int = 0) -> bool:
        """Spend one label on the arrival just decided, outside the manager's own rule.

        For queries chosen by someone else (the learner's audit slice): the label is
        counted like the manager's own, so the guards (and with them the rate promise)
        hold for the sum; ``ts`` and ``pending`` are the arrival's, as for :meth:`decide`
        (hard caps check them). ``False`` if no label may be spent on this arrival.
        """
        if not self.budget_left():
            return False
        self._spent += 1
        self._recent.append(self._seen)
        return True

    def on_label(self, correct: bool) -> None:
        """Hear whether the model's prediction for a labelled arrival was right.

        Called by the learner for every applied label (prequential outcome of the
        labelled samples). A no-op here; drift-aware managers watch it.
        """

    def _wants(self, score: float, allowed: bool, ts: float | None, pending: int) -> bool:
        """Whether to buy the label; ``allowed`` says whether the guards leave one."""
        raise NotImplementedError
